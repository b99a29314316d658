"""Items the spider yields; the archive pipeline stores them. Plain dataclasses."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class LinkCheck:
    """The outcome of requesting one URL once, with its evidence and (optionally) its body."""

    site_id: str
    crawl_id: int | None
    url: str
    checked_at: str
    state: str
    rule: str
    detail: str = ""
    status_code: int | None = None
    final_url: str | None = None
    redirect_chain: list[str] = field(default_factory=list)
    method: str = "GET"
    content_type: str | None = None
    content_length: int | None = None
    elapsed_ms: int | None = None
    is_external: bool = False
    expect: str = "page"
    # Snapshot fields: set when the body is worth archiving.
    body: bytes | None = None
    headers: dict[str, str] = field(default_factory=dict)
    title: str | None = None
    encoding: str | None = None
    filename: str | None = None
    main_text: str | None = None
    not_modified: bool = False
    # The body is not the whole answer: the connection closed early, or a 206's part.
    truncated: bool = False
    # The body is the answer to an earlier request of this crawl (a redirect target): no bytes.
    reused: bool = False
    # Body bytes this check really cost when that is not len(body): a browser rendering
    # (the document the crawl had already downloaded, which crawler.rendering serves to
    # Chromium, plus what Chromium downloaded itself: sub-resources, script redirects).
    transferred: int | None = None
    previous_sha256: str | None = None
    rendered: bool = False
    render_reason: str | None = None
    screenshot: bytes | None = None
    # Set when the link text or page title says this is an annual report.
    report_hint: str | None = None


@dataclass
class LinkSource:
    """Page ``from_url`` links to ``to_url`` with ``anchor_text`` (seen in one crawl)."""

    site_id: str
    crawl_id: int | None
    from_url: str
    to_url: str
    anchor_text: str
    seen_at: str


@dataclass
class LinkSources:
    """Every :class:`LinkSource` of one page as one item: a page links to dozens of URLs, and
    Scrapy's per-item machinery cost more than storing each row (not used in distributed
    crawls, whose item queue carries single items)."""

    sources: list[LinkSource]


@dataclass
class Evidence:
    """A browser rendering of a page kept as evidence: full-page PNG plus the rendered HTML."""

    site_id: str
    crawl_id: int | None
    url: str
    final_url: str
    fetched_at: str
    status_code: int | None
    content_type: str | None
    body: bytes
    screenshot: bytes
    reason: str
    #: Body bytes Chromium received for this rendering (sub-resources; the page itself too
    #: when the crawl's download could not be given to it), added to the page's check.
    transferred: int = 0


@dataclass
class OverheadBytes:
    """Body bytes a crawl took from a site that are no link's check: a host's robots.txt, the
    site's not-found probe. Added to the crawl's ``bytes_received`` (``crawls.overhead_bytes``)."""

    site_id: str
    crawl_id: int | None
    url: str
    bytes_received: int
