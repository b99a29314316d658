"""Helpers shared by the site builders."""

from __future__ import annotations

import hashlib
import random
from datetime import date, timedelta

from simweb.content import dt, html_page
from simweb.model import Header, Resource, World


class SiteBuilder:
    """Adds resources for one host to a :class:`World` with common defaults."""

    def __init__(
        self,
        world: World,
        host: str,
        *,
        server: str,
        seed: int,
        charset: str = "utf-8",
        content_type: str | None = None,
    ) -> None:
        self.world = world
        self.host = host
        self.base = f"http://{host}"
        self.server = server
        self.charset = charset
        self.content_type = content_type or f"text/html; charset={charset}"
        self.seed = seed
        self.day = world.day

    def url(self, path: str) -> str:
        """Absolute URL on this host."""
        return self.base + path

    def put(self, path_or_url: str, res: Resource) -> Resource:
        """Register ``res`` (adds the ``Server`` header)."""
        url = path_or_url if path_or_url.startswith("http") else self.url(path_or_url)
        if not any(name.lower() == "server" for name, _ in res.headers):
            res.headers.append(("Server", self.server))
        return self.world.add(url, res)

    def page(
        self,
        path: str,
        html: str,
        *,
        modified: date,
        state: str = "ok",
        follow_to: str | None = None,
    ) -> Resource:
        """An HTML page encoded in the site's charset."""
        return self.put(
            path,
            Resource(
                body=html.encode(self.charset),
                content_type=self.content_type,
                encoding=self.charset,
                state=state,
                modified=dt(modified),
                follow_to=follow_to,
            ),
        )

    def file(
        self,
        path: str,
        data: bytes,
        content_type: str,
        *,
        modified: date,
        state: str = "ok",
        headers: list[Header] | None = None,
        send_bytes: int | None = None,
    ) -> Resource:
        """A binary attachment."""
        return self.put(
            path,
            Resource(
                body=data,
                content_type=content_type,
                state=state,
                modified=dt(modified),
                headers=list(headers or []),
                send_bytes=send_bytes,
            ),
        )

    def redirect(self, path: str, target: str, *, status: int = 302, state: str = "redirected") -> Resource:
        """A redirect answer."""
        body = html_page("Redirect", f'<a href="{target}">{target}</a>').encode()
        return self.put(
            path,
            Resource(status=status, body=body, state=state, validators=False, headers=[("Location", target)]),
        )

    def error(self, path: str, res: Resource) -> Resource:
        """Register a prepared error resource."""
        return self.put(path, res)

    # -- deterministic values ------------------------------------------------
    def rng(self, key: object) -> random.Random:
        """A random generator seeded by this site and ``key`` (stable across days and runs)."""
        return random.Random(f"{self.host}|{self.seed}|{key}")

    def date_between(self, start: date, end: date, key: object) -> date:
        """A deterministic date in ``[start, end]`` chosen by ``key``."""
        return start + timedelta(days=self.rng(("date", key)).randrange((end - start).days + 1))

    def hexname(self, key: str, n: int = 32) -> str:
        """A stable hex string derived from ``key``."""
        return hashlib.md5(f"{self.host}/{key}".encode()).hexdigest()[:n]


def implicit(res: Resource) -> Resource:
    """Mark ``res`` as produced by a catch-all 404 handler."""
    res.implicit = True
    return res
