"""What one request to one URL produced: the input every classifier rule reads.

Built by the spider from a Scrapy response or failure, then handed to
:func:`crawler.classify.classify`. Plain data, so the rules can be tested on fixtures
without Scrapy.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

_CONTENT_RANGE_RE = re.compile(r"bytes\s+(\d+)-(\d+)/(\d+)", re.I)


def site_of(meta: dict | None) -> str | None:
    """The registry site a request (its ``meta``) belongs to, as the portal spider records it
    (``meta["xxgk"]["site"]``); None for a request it did not make."""
    xxgk = (meta or {}).get("xxgk")
    return xxgk.get("site") if isinstance(xxgk, dict) else None


def page_error(url: str, failure: Any) -> str:
    """How a page the spider could not process is named in ``processing_errors`` reasons."""
    return f"{url}: {failure.type.__name__}: {failure.value}"


def went_through_proxy(meta: dict) -> bool:
    """Whether a request (its ``meta``) went through an HTTP proxy, as Scrapy's proxy
    middleware records it (``proxy``, or ``_auth_proxy`` for one with credentials)."""
    return bool(meta.get("proxy") or meta.get("_auth_proxy"))


@dataclass
class Fetch:
    url: str                                   # the URL as linked (canonical form)
    status: int | None = None                  # final HTTP status, None on network failure
    headers: dict[str, bytes] = field(default_factory=dict)  # lower-case name -> raw value
    body: bytes = b""
    final_url: str | None = None               # after redirects / meta refresh
    redirect_chain: list[str] = field(default_factory=list)  # URLs before final_url
    error_type: str | None = None              # exception class name on failure (TimeoutError, DNSLookupError, ...)
    error: str | None = None                   # exception message / reason text
    expect: str = "page"                       # page | list | attachment | external
    is_home_page: bool = False                 # the URL is a site's start URL
    home_urls: tuple[str, ...] = ()            # the site's start URLs (deep link -> home = soft 404)
    method: str = "GET"
    elapsed_ms: int | None = None
    via_proxy: bool = False                    # the request went through an HTTP proxy
    #: The body is not the whole answer: the connection closed before its end (Scrapy's
    #: ``dataloss`` flag: chunked or compressed answers, no Content-Length to compare with).
    dataloss: bool = False
    #: The body came whole but its compressed stream (Content-Encoding) ends before its end:
    #: what was decoded is the start of the answer only (``crawler.middlewares.STREAM_CUT``).
    stream_cut: bool = False
    #: ``decode_body(body, headers, final_url or url)[0]`` when the caller has it already
    #: (the spider decodes every page once); None: the classifier decodes the body itself.
    text: str | None = field(default=None, repr=False, compare=False)

    def incomplete(self) -> str | None:
        """Why the body is not the whole answer, or None: the connection closed early, its
        compressed stream stops short, or a 206 sent part of it (the crawler asks for no
        ranges, so a part is all it got)."""
        if self.dataloss:
            return f"the connection closed after {len(self.body)} bytes"
        if self.stream_cut:
            coding = self.header("content-encoding").strip() or "compressed"
            return f"the {coding} stream ends early ({len(self.body)} bytes decoded)"
        if self.status == 206:
            span = self.header("content-range").strip()
            match = _CONTENT_RANGE_RE.fullmatch(span)
            if match and int(match[1]) == 0 and int(match[2]) + 1 == int(match[3]) == len(self.body):
                return None  # the whole representation after all
            return f"206 Partial Content ({span or 'no Content-Range'}), {len(self.body)} bytes"
        return None

    def header(self, name: str) -> str:
        """A header decoded leniently as latin-1 text ('' when absent)."""
        value = self.headers.get(name.lower(), b"")
        return value.decode("latin-1") if isinstance(value, bytes) else str(value)


@dataclass
class Verdict:
    state: str            # one of archive.states.STATES
    rule: str             # short id of the rule that decided, e.g. "http-404", "soft404-text"
    detail: str = ""      # human-readable evidence (matched text, header, ...)
