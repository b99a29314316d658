"""In-memory model of the simulated web: resources, hosts, and the truth crawl.

A :class:`World` is built for one *day* by :func:`simweb.sites.build_world`.  It maps
canonical URLs to :class:`Resource` objects (status, headers, body, truth state)
and holds host-level fallbacks (slow host, anti-bot hosts, calendar trap, 404s).
:meth:`World.expected_links` walks the model like a perfect crawler and returns the
expected state of every URL linked from a reachable page.
"""

from __future__ import annotations

import hashlib
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import format_datetime
from html.parser import HTMLParser

from simweb.urls import canonical_url, host_of, path_of, resolve

STATES: tuple[str, ...] = (
    "ok",
    "redirected",
    "not_found",
    "soft_404",
    "server_error",
    "blocked",
    "rate_limited",
    "timeout",
    "dns_error",
    "connection_error",
    "tls_error",
    "redirect_loop",
    "type_mismatch",
    "empty",
    "excluded",
)

Header = tuple[str, "str | bytes"]

# Pages in these states are parsed for links by the truth crawl.
_PARSED_STATES = {"ok", "soft_404", "empty", "redirected"}


@dataclass
class Resource:
    """One answer of the simulated web for one URL (on one day)."""

    status: int = 200
    body: bytes = b""
    content_type: str | None = "text/html; charset=utf-8"
    state: str = "ok"
    headers: list[Header] = field(default_factory=list)
    modified: datetime | None = None  # Last-Modified (200 only)
    validators: bool = True  # send ETag/Last-Modified and honour conditionals
    delay: float = 0.0  # seconds (multiplied by delay_scale) before answering
    send_bytes: int | None = None  # send only this many body bytes, then close
    chunked: bool = False  # Transfer-Encoding: chunked, no Content-Length (send_bytes: no last chunk)
    gzip: bool = False  # Content-Encoding: gzip; Content-Length and send_bytes count gzip bytes
    # gzip: send only this many bytes of the gzip stream, as the whole body (a matching
    # Content-Length): a server or cache serving a cut compressed file.
    gzip_cut: int | None = None
    headers_on_304: bool = True  # False: a 304 carries the validators only (no ``headers``)
    encoding: str = "utf-8"  # how to decode the body for link extraction
    follow_to: str | None = None  # meta-refresh / JS redirect target (truth crawl)
    implicit: bool = False  # produced by a host's catch-all 404 handler
    # The first ``throttle_first`` requests (per server and day) answer ``throttle_status``
    # with ``Retry-After: throttle_retry_after`` instead: a host shedding load, which a
    # polite crawler waits out (truth keeps ``state``, what the URL answers afterwards).
    throttle_first: int = 0
    throttle_status: int = 429
    throttle_retry_after: str = "1"
    # Behind a 加速乐-style gate: a request without the host's current ``__jsl_clearance_s``
    # cookie gets the 521 challenge whose script sets it and reloads (a browser passes;
    # truth keeps ``state``, what a client carrying the cookie sees). See ``SimWeb``.
    clearance: bool = False

    def __post_init__(self) -> None:
        assert self.state in STATES, self.state

    @property
    def etag(self) -> str:
        """Strong ETag derived from the body."""
        return '"' + hashlib.sha1(self.body).hexdigest()[:20] + '"'

    @property
    def last_modified(self) -> str | None:
        """``Last-Modified`` header value, if any."""
        if self.modified is None:
            return None
        return format_datetime(self.modified.astimezone(UTC), usegmt=True)

    @property
    def is_html(self) -> bool:
        """True when the body is an HTML document."""
        return bool(self.content_type) and self.content_type.split(";")[0].strip() == "text/html"

    @property
    def location(self) -> str | None:
        """Value of the ``Location`` header, if any."""
        for name, value in self.headers:
            if name.lower() == "location":
                return value if isinstance(value, str) else value.decode("latin-1")
        return None


HostHandler = Callable[[str], "Resource | None"]


@dataclass
class SiteInfo:
    """A simulated university as listed in ``demo_sites.toml``."""

    id: str
    name: str
    portal: list[str]
    allowed_domains: list[str]
    kind: str = "本科"
    render: str = "auto"
    max_pages: int = 2000


class _LinkParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.links: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        want = {"a": "href", "area": "href", "frame": "src", "iframe": "src"}.get(tag)
        if not want:
            return
        for name, value in attrs:
            if name == want and value:
                self.links.append(value)


def extract_links(html: str) -> list[str]:
    """Raw ``href``/``src`` values of ``<a>``, ``<area>``, ``<frame>``, ``<iframe>``."""
    parser = _LinkParser()
    parser.feed(html)
    parser.close()
    return parser.links


@dataclass
class World:
    """Everything the proxy serves on one day, plus what truth needs."""

    day: int
    resources: dict[str, Resource] = field(default_factory=dict)
    host_handlers: dict[str, HostHandler] = field(default_factory=dict)
    not_found: dict[str, HostHandler] = field(default_factory=dict)
    robots: dict[str, list[str]] = field(default_factory=dict)  # host -> Disallow prefixes
    sites: list[SiteInfo] = field(default_factory=list)
    js_only: dict[str, list[str]] = field(default_factory=dict)
    js_redirects: dict[str, str] = field(default_factory=dict)
    trap_prefixes: list[str] = field(default_factory=list)
    reports: list[dict] = field(default_factory=list)
    report_items: dict[str, dict[int, str]] = field(default_factory=dict)
    tls_hosts: set[str] = field(default_factory=set)
    # Pages whose bytes differ from day to day only by page furniture (visit counters, "today
    # is" widgets, generation times): the article text is the same, so not a content change.
    cosmetic: set[str] = field(default_factory=set)

    # -- building -----------------------------------------------------------
    def add(self, url: str, res: Resource) -> Resource:
        """Register ``res`` under the canonical form of ``url``."""
        key = canonical_url(url)
        if key in self.resources:
            raise ValueError(f"duplicate resource {key}")
        self.resources[key] = res
        return res

    def mark_cosmetic(self, url: str) -> None:
        """Declare that ``url`` only changes cosmetically between days (see ``cosmetic``)."""
        self.cosmetic.add(canonical_url(url))

    def known_host(self, host: str) -> bool:
        """True if the proxy knows ``host`` (anything else is NXDOMAIN)."""
        return host in self._hosts()

    def _hosts(self) -> set[str]:
        hosts = {host_of(u) for u in self.resources}
        return hosts | set(self.host_handlers) | set(self.not_found) | self.tls_hosts

    # -- serving ------------------------------------------------------------
    def lookup(self, url: str) -> Resource | None:
        """The resource answering ``url`` (canonicalised); ``None`` = unknown host."""
        key = canonical_url(url)
        res = self.resources.get(key)
        if res is not None:
            return res
        host = host_of(key)
        handler = self.host_handlers.get(host)
        if handler is not None:
            res = handler(key)
            if res is not None:
                return res
        if path_of(key) == "/robots.txt" and host in self.robots:
            return robots_resource(self.robots[host])
        nf = self.not_found.get(host)
        if nf is not None:
            return nf(key)
        return None

    # -- truth --------------------------------------------------------------
    def is_excluded(self, url: str) -> bool:
        """True if robots.txt of the URL's host disallows it."""
        rules = self.robots.get(host_of(url), [])
        path = path_of(url)
        return any(path.startswith(prefix) for prefix in rules)

    def is_trap(self, url: str) -> bool:
        """True for URLs inside a crawler trap (see ``TRAP_PREFIXES``)."""
        return any(url.startswith(p) for p in self.trap_prefixes)

    def state_of(self, url: str) -> str:
        """Expected link state of ``url`` on this day."""
        if self.is_excluded(url):
            return "excluded"
        res = self.lookup(url)
        if res is None:
            return "dns_error"
        return res.state

    def page_links(self, url: str, res: Resource) -> list[str]:
        """Canonical absolute links found on a 200 HTML page (plus JS-revealed ones)."""
        out: list[str] = []
        if res.status == 200 and res.is_html:
            text = res.body.decode(res.encoding, errors="replace")
            for href in extract_links(text):
                absolute = resolve(url, href)
                if absolute:
                    out.append(absolute)
        out.extend(self.js_only.get(url, []))
        return out

    def crawl(self) -> tuple[dict[str, str], list[str]]:
        """Walk every site from its portal like a perfect crawler.

        Returns ``(links, undeclared)``: the state of every linked URL (trap URLs
        left out) and the linked URLs that only exist as implicit 404s (model bugs).
        """
        links: dict[str, str] = {}
        undeclared: list[str] = []
        for site in self.sites:
            allowed = set(site.allowed_domains)
            queue: deque[str] = deque(canonical_url(u) for u in site.portal)
            seen: set[str] = set(queue)
            for u in queue:
                links[u] = self.state_of(u)
            while queue:
                url = queue.popleft()
                if self.is_excluded(url) or self.is_trap(url):
                    continue
                res = self.lookup(url)
                if res is None:
                    continue
                nxt: list[str] = []
                if res.status in (301, 302, 303, 307, 308) and res.location:
                    target = resolve(url, res.location)
                    if target:
                        nxt.append(target)
                elif res.status == 200 and res.state in _PARSED_STATES:
                    if res.follow_to:
                        nxt.append(canonical_url(res.follow_to))
                    for link in self.page_links(url, res):
                        if self.is_trap(link):
                            continue
                        if link not in links:
                            links[link] = self.state_of(link)
                            target_res = self.lookup(link)
                            if target_res is not None and target_res.implicit:
                                if not self.is_excluded(link):
                                    undeclared.append(link)
                        nxt.append(link)
                for link in nxt:
                    if link not in seen and host_of(link) in allowed:
                        seen.add(link)
                        queue.append(link)
        return links, undeclared


def robots_resource(disallow: list[str]) -> Resource:
    """A ``robots.txt`` answer with the given ``Disallow`` prefixes."""
    lines = ["User-agent: *"] + [f"Disallow: {p}" for p in disallow]
    if not disallow:
        lines.append("Disallow:")
    body = ("\n".join(lines) + "\n").encode()
    return Resource(
        body=body,
        content_type="text/plain",
        modified=datetime(2020, 1, 1, tzinfo=UTC),
    )
