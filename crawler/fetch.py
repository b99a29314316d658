"""What one request to one URL produced: the input every classifier rule reads.

Built by the spider from a Scrapy response or failure, then handed to
:func:`crawler.classify.classify`. Plain data, so the rules can be tested on fixtures
without Scrapy.
"""

from __future__ import annotations

from dataclasses import dataclass, field


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
    #: ``decode_body(body, headers, final_url or url)[0]`` when the caller has it already
    #: (the spider decodes every page once); None: the classifier decodes the body itself.
    text: str | None = field(default=None, repr=False, compare=False)

    def header(self, name: str) -> str:
        """A header decoded leniently as latin-1 text ('' when absent)."""
        value = self.headers.get(name.lower(), b"")
        return value.decode("latin-1") if isinstance(value, bytes) else str(value)


@dataclass
class Verdict:
    state: str            # one of archive.states.STATES
    rule: str             # short id of the rule that decided, e.g. "http-404", "soft404-text"
    detail: str = ""      # human-readable evidence (matched text, header, ...)
