"""Anti-bot challenges passed in the browser once per host, then with its cookies.

A 加速乐/Ruishu/Cloudflare-style host challenges every URL: a plain request gets a small
page whose script sets a clearance cookie and reloads. A real browser passes it once and
then carries the cookie. The spider does the same (:class:`ChallengeHosts`, per crawl):

* the first challenged URL of a host is retried in Chromium (a *browser pass*); other
  URLs of the host challenged meanwhile wait for its outcome instead of each starting
  their own browser (one render per host, not one per URL);
* the pass got through: the cookies the browser holds for that host
  (``BrowserContext.cookies``, collected by :mod:`crawler.rendering`) go into Scrapy's
  cookie jar as host-only cookies of that host (never to other hosts), and the waiting
  URLs are re-fetched once, plainly, with them; later URLs of the host carry them anyway;
* the pass failed (still challenged, or the browser timed out reloading): the waiting
  URLs and every later challenged URL of the host are recorded ``blocked`` with the rule
  and "browser retry already failed on this host in this crawl", without a browser;
* the server challenges a request that carried the current cookies (they expired): one
  more pass, at most ``XXGK_CHALLENGE_PASSES`` per host and crawl (default 3), then the
  host's challenged URLs are recorded ``blocked`` ("browser passes ... used up").

Each URL is retried at most once (in the browser, or with the browser's cookies). In a
distributed crawl (requests go through Redis to any worker, each with its own cookie
jar) or without Scrapy's cookie middleware, nothing waits and nothing is carried: each
challenged URL gets its own browser retry as before, unless the host already failed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from http.cookiejar import Cookie
from typing import Any
from urllib.parse import urlsplit

#: What to do with a challenged answer (see :meth:`HostChallenge.on_challenge`).
BROWSER, WAIT, COOKIES, FAILED, EXHAUSTED = "browser", "wait", "cookies", "failed", "exhausted"
DEFAULT_PASSES = 3


@dataclass
class HostChallenge:
    """One host's challenge state in this crawl."""

    passes: int = 0  # browser passes started
    pending: bool = False  # a browser pass is in flight
    failure: str | None = None  # why the pass failed: the host is not retried again
    cookies: tuple[str, ...] = ()  # "name=value" carried from the last successful pass
    waiting: list[Any] = field(default_factory=list)  # whatever the spider parked meanwhile

    def on_challenge(self, sent_cookie: str, *, max_passes: int, carry: bool) -> str:
        """The action for a (first) challenged answer of this host; starts a pass when it
        says :data:`BROWSER` (the caller must later call :meth:`resolve`)."""
        if self.failure is not None:
            return FAILED
        if not carry:  # nothing to wait for or carry: each URL its own browser retry
            return BROWSER
        if self.pending:
            return WAIT
        if self.cookies and not carried(sent_cookie, self.cookies):
            return COOKIES  # sent before the cookies were carried over: re-fetch with them
        if self.passes >= max_passes:  # re-challenged despite the cookies, again and again
            return EXHAUSTED
        self.passes += 1
        self.pending = True
        return BROWSER

    def resolve(self, *, passed: bool, cookies: tuple[str, ...] = (), detail: str = "") -> list[Any]:
        """A browser pass ended; returns (and forgets) what waited for it."""
        self.pending = False
        if passed:
            self.cookies = cookies or self.cookies
        elif self.failure is None:
            self.failure = detail or "still challenged"
        waiting, self.waiting = self.waiting, []
        return waiting


class ChallengeHosts:
    """Per-crawl challenge state of every host, and the cookie jar it feeds."""

    def __init__(self, max_passes: int = DEFAULT_PASSES, carry: bool = True) -> None:
        self.max_passes = max(1, max_passes)
        self.carry = carry
        self.hosts: dict[str, HostChallenge] = {}
        self._crawler: Any = None

    def configure(self, crawler: Any, *, distributed: bool) -> None:
        settings = crawler.settings
        self.max_passes = max(1, settings.getint("XXGK_CHALLENGE_PASSES", DEFAULT_PASSES))
        # Cookies are per process and requests may be run by another worker: no carrying.
        self.carry = not distributed and settings.getbool("COOKIES_ENABLED", True)
        self._crawler = crawler

    def host(self, url: str) -> HostChallenge:
        return self.hosts.setdefault(host_of(url), HostChallenge())

    def on_challenge(self, url: str, sent_cookie: str) -> str:
        return self.host(url).on_challenge(sent_cookie, max_passes=self.max_passes, carry=self.carry)

    def passed(self, url: str, browser_cookies: list[dict] | None) -> list[Any]:
        """The browser pass for ``url``'s host got through: carry its cookies over."""
        host = host_of(url)
        carried_over = self.import_cookies(host, browser_cookies or [])
        return self.host(url).resolve(passed=True, cookies=carried_over)

    def failed(self, url: str, detail: str) -> list[Any]:
        return self.host(url).resolve(passed=False, detail=detail)

    def import_cookies(self, host: str, browser_cookies: list[dict]) -> tuple[str, ...]:
        """Put the browser's cookies for ``host`` into Scrapy's default cookie jar, as
        host-only cookies of ``host``: a cookie the browser scoped wider is not sent to
        sibling hosts. Returns the ``name=value`` pairs carried over."""
        jar = self._jar()
        if jar is None or not self.carry:
            return ()
        out = []
        for item in browser_cookies:
            domain = str(item.get("domain") or "").lstrip(".").lower()
            if not domain or not (host == domain or host.endswith("." + domain)):
                continue  # the browser context is shared by all renders: other hosts' cookies
            jar.set_cookie(browser_cookie(host, item))
            out.append(f"{item['name']}={item['value']}")
        return tuple(out)

    def _jar(self) -> Any:
        from scrapy.downloadermiddlewares.cookies import CookiesMiddleware

        engine = getattr(self._crawler, "engine", None)
        manager = getattr(getattr(engine, "downloader", None), "middleware", None)
        for middleware in getattr(manager, "middlewares", ()):
            if isinstance(middleware, CookiesMiddleware):
                return middleware.jars[None]  # the jar of requests without a "cookiejar" key
        return None


def host_of(url: str) -> str:
    return (urlsplit(url).hostname or "").lower()


def carried(sent_cookie: str, cookies: tuple[str, ...]) -> bool:
    """Whether a request's ``Cookie`` header carried every one of ``cookies``."""
    sent = {part.strip() for part in sent_cookie.split(";")}
    return all(cookie in sent for cookie in cookies)


def browser_cookie(host: str, item: dict) -> Cookie:
    """A Playwright cookie (``BrowserContext.cookies`` item) as a host-only cookie of ``host``."""
    expires = item.get("expires")
    session = expires is None or expires < 0
    return Cookie(
        version=0, name=str(item["name"]), value=str(item["value"]), port=None, port_specified=False,
        domain=host, domain_specified=False, domain_initial_dot=False,
        path=str(item.get("path") or "/"), path_specified=True, secure=bool(item.get("secure")),
        expires=None if session else int(expires), discard=session, comment=None, comment_url=None,
        rest={"HttpOnly": ""} if item.get("httpOnly") else {},
    )
