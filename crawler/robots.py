"""robots.txt that cannot be read: RFC 9309 §2.3.1.4, not "allow everything".

Scrapy's ``RobotsTxtMiddleware`` parses whatever a robots.txt request answered, a 500 error
page included (no rules: everything allowed), and allows everything when the request fails.
RFC 9309 says a robots.txt answering a server error (5xx), or unreachable, is *undefined*
and the crawler MUST assume complete disallow (4xx means "unavailable": allow all, as
before). :class:`PoliteRobotsTxtMiddleware` (``DOWNLOADER_MIDDLEWARES`` priority 100, in
place of Scrapy's) judges the robots.txt outcome, after ``RetryMiddleware``'s retries, with
:func:`crawler.classify.classify`, so a proxy's error page is read as the proxy's verdict on
the host and not as the origin's 5xx:

* the origin answered 5xx (``server_error``, or ``rate_limited``: a 503 whose Retry-After
  retries are used up), or the request failed otherwise (a timeout, a protocol error): the
  host's requests are refused at once with ``IgnoreRequest("Forbidden by robots.txt: ...")``
  naming what robots.txt answered (also logged at INFO, once per host); the classifier
  records them ``excluded`` (net-robots; its detail is its own fixed text, for now).
  Nothing waits: requests queued behind the robots.txt fetch get the refusal as soon as it
  is decided, later ones from the cache, for the rest of the crawl (no retry of robots.txt
  within a crawl: "for a while");
* the host is not there at all (no DNS, connection refused, TLS handshake failed; from the
  network or from the proxy's error page, e.g. Squid's ``ERR_DNS_FAIL``): Scrapy's way, the
  requests go ahead. Nothing can reach a server that does not exist or accept connections,
  so there is nobody to be polite to, and each link records what its own attempt found
  (``dns_error``, ``connection_error``, ``tls_error``): a link checker must say a host is
  gone, not that it forbade us (the simulated web's truth says so too). A connection that
  was made and then lost or reset is a server in trouble: disallow, as above;
* anything else (2xx-4xx, an anti-bot challenge answering 521, robots.txt refused by our
  own SSRF guard): Scrapy's behaviour.

It also fixes a Scrapy 2.19 leak: requests that arrive while a host's robots.txt is being
fetched all wait for it, but only the first got the parsed rules; the others got None and
were allowed whatever robots.txt said (see :meth:`PoliteRobotsTxtMiddleware.robot_parser`).

``Crawl-delay`` is read from the parsed file by :class:`crawler.politeness.PoliteDownloader`
(the ``robots_parsed`` signal). Distributed crawls use
``crawler.distributed.SharedRobotsTxtMiddleware`` instead (this one steps aside), a subclass
that judges the job's shared copy of each robots.txt the same way.
"""

from __future__ import annotations

import logging
import re
from typing import Any

from scrapy import Request
from scrapy.downloadermiddlewares.robotstxt import RobotsTxtMiddleware
from scrapy.exceptions import IgnoreRequest, NotConfigured
from scrapy.http import Response
from scrapy.utils.httpobj import urlparse_cached
from twisted.internet.defer import Deferred

from archive import states as S
from crawler.classify import classify
from crawler.fetch import Fetch, went_through_proxy

__all__ = ["PoliteRobotsTxtMiddleware", "Undefined", "judge_answer", "judge_failure"]

logger = logging.getLogger(__name__)

RFC = "RFC 9309: assume complete disallow"

#: Connection failures that mean nobody listens (as opposed to a connection lost mid-answer).
NOBODY_THERE = re.compile(r"refused|ERR_CONNECT_FAIL|no route to host|network is unreachable", re.I)
#: States of a host that is not there at all (see the module docstring).
ABSENT_STATES = frozenset({S.DNS_ERROR, S.TLS_ERROR})


class Undefined:
    """A robots.txt that could not be read: everything is disallowed, for a stated reason."""

    def __init__(self, reason: str) -> None:
        self.reason = reason

    def allowed(self, url: str | bytes, user_agent: str | bytes) -> bool:
        return False

    def crawl_delay(self, user_agent: str | bytes) -> float | None:
        return None

    def refusal(self) -> IgnoreRequest:
        """The exception a request to this host fails with (``excluded``, net-robots)."""
        return IgnoreRequest(f"Forbidden by robots.txt: {self.reason}; {RFC}")


def _absent(state: str, rule: str, detail: str) -> bool:
    """True when a verdict says nobody is there (no DNS, nobody listening, no TLS)."""
    if state in ABSENT_STATES:
        return True
    # net-proxy-tunnel: the proxy could not connect for our CONNECT (its own verdict).
    return state == S.CONNECTION_ERROR and (rule == "net-proxy-tunnel" or bool(NOBODY_THERE.search(detail)))


def judge_answer(response: Response) -> Undefined | None:
    """An :class:`Undefined` for a robots.txt answer that is a server error (or a proxy's
    verdict that the server failed); None when the file may be parsed as usual."""
    if response.status < 500:
        return None
    request = getattr(response, "request", None)
    meta = request.meta if request is not None else {}
    fetch = Fetch(url=response.url, status=response.status,
                  headers={k.decode("latin-1").lower(): b", ".join(v) for k, v in response.headers.items()},
                  body=response.body, expect="external",
                  via_proxy=went_through_proxy(meta))
    verdict = classify(fetch)
    if _absent(verdict.state, verdict.rule, verdict.detail):
        return None  # the proxy says nobody is there: the pages' own attempts say so too
    if verdict.state in (S.SERVER_ERROR, S.RATE_LIMITED, S.TIMEOUT, S.CONNECTION_ERROR):
        return Undefined(f"robots.txt answered HTTP {response.status} ({verdict.state})")
    return None  # e.g. an anti-bot challenge answering 521: the pages meet it too


def judge_failure(exc: Exception, url: str) -> Undefined | None:
    """An :class:`Undefined` for a robots.txt request that failed; None for our own refusals
    and for a host that is not there at all."""
    if isinstance(exc, IgnoreRequest):  # the SSRF guard (which refuses the pages too), filters
        return None
    # Judged as the failure of any request: the file's name would make the classifier say
    # "excluded" (our own robots.txt refusal), whatever the failure was.
    text = re.sub(r"robots\.txt", "robots file", str(exc), flags=re.I)
    fetch = Fetch(url=url, error_type=type(exc).__name__, error=text[:500], expect="external")
    verdict = classify(fetch)
    if _absent(verdict.state, verdict.rule, verdict.detail):
        return None
    what = f"{type(exc).__name__}: {text[:200]}".strip(": ")
    return Undefined(f"robots.txt unreachable ({verdict.state}, {what})")


class PoliteRobotsTxtMiddleware(RobotsTxtMiddleware):
    """Scrapy's robots.txt middleware; a robots.txt that answers 5xx or fails disallows all."""

    def __init__(self, crawler: Any) -> None:
        middlewares = crawler.settings.getdict("DOWNLOADER_MIDDLEWARES")
        if (type(self) is PoliteRobotsTxtMiddleware
                and middlewares.get("crawler.distributed.SharedRobotsTxtMiddleware") is not None):
            # Distributed mode registers its own (a subclass of Scrapy's): one is enough.
            raise NotConfigured("distributed mode: SharedRobotsTxtMiddleware obeys robots.txt")
        super().__init__(crawler)

    async def robot_parser(self, request: Request) -> Any:
        parser = await super().robot_parser(request)
        # Scrapy hands the parser to the first request that waited for robots.txt only: the
        # Deferred the others await fires them with None (asFuture's callback returns None),
        # which Scrapy reads as "no robots.txt, allow all". The settled parser is in the cache.
        settled = self._parsers.get(urlparse_cached(request).netloc)
        return parser if settled is None or isinstance(settled, Deferred) else settled

    def process_request_2(self, rp: Any, request: Request) -> None:
        if isinstance(rp, Undefined):
            self._stats.inc_value("robotstxt/forbidden_undefined")
            raise rp.refusal()
        super().process_request_2(rp, request)

    async def _parse_robots(self, response: Response, netloc: str, request: Request) -> None:
        undefined = judge_answer(response)
        if undefined is None:
            await super()._parse_robots(response, netloc, request)
            return
        self._stats.inc_value("robotstxt/response_count")
        self._stats.inc_value(f"robotstxt/response_status_count/{response.status}")
        self._settle(netloc, undefined)

    def _robots_error(self, exc: Exception, netloc: str) -> None:
        parser = self._parsers.get(netloc)
        undefined = judge_failure(exc, f"//{netloc}/robots.txt")
        if undefined is None or not isinstance(parser, Deferred):
            super()._robots_error(exc, netloc)
            return
        self._stats.inc_value(f"robotstxt/exception_count/{type(exc)}")
        self._settle(netloc, undefined)

    def _settle(self, netloc: str, undefined: Undefined) -> None:
        """Every request waiting for ``netloc``'s robots.txt (and every later one) is refused."""
        logger.info("robots.txt of %s undefined (%s): disallowing the host for this crawl", netloc,
                    undefined.reason)
        waiting = self._parsers[netloc]
        self._parsers[netloc] = undefined  # type: ignore[assignment]
        if isinstance(waiting, Deferred):
            waiting.callback(undefined)
