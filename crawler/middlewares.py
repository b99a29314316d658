"""Downloader middlewares: redirect chains that survive the dupefilter, conditional recrawls,
redirect targets answered from the copy this crawl already downloaded.

Settings:

``XXGK_DB``
    Path of the archive database; read for the validators (ETag, Last-Modified) of the
    newest snapshot of each URL so recrawls are conditional.
``XXGK_CONDITIONAL`` (default ``True``)
    Send ``If-None-Match``/``If-Modified-Since``; on ``304`` the previous body is restored
    from the archive, so the spider parses it as usual and the pipeline records
    "unchanged since" without storing a copy.
``XXGK_REUSE_ANSWERS`` (default ``256``)
    How many recent ``200`` answers :class:`AnswerReuseMiddleware` keeps in memory (the
    portal home pages always, besides); ``0`` turns reuse off.
``XXGK_REUSE_BYTES`` (default ``8_000_000``)
    Their total size in bytes; a single answer over an eighth of it is not kept.
"""

from __future__ import annotations

import logging
import sqlite3
import zlib
from collections import OrderedDict
from typing import Any, NamedTuple

from scrapy import Request
from scrapy.downloadermiddlewares.redirect import MetaRefreshMiddleware, RedirectMiddleware
from scrapy.exceptions import IgnoreRequest
from scrapy.http import HtmlResponse, Response
from scrapy.responsetypes import responsetypes

from archive.blobs import BlobError, load_blob

logger = logging.getLogger(__name__)

#: Request meta key: body bytes received so far for this request and the ones it replaced.
WIRE_BYTES = "xxgk_wire_bytes"
#: The Content-Encoding the answer came with: Scrapy's HttpCompressionMiddleware deletes the
#: header once it has decoded the body, and the Content-Length beside it counts encoded bytes.
CONTENT_ENCODING = "xxgk_content_encoding"
#: Response flag: the body's compressed stream (gzip, deflate, br) ends before its end
#: marker although the HTTP body came whole (a server or cache sending a cut file with a
#: matching Content-Length). Scrapy decodes what there is without a word.
STREAM_CUT = "xxgk-stream-cut"
#: Decoded bytes :func:`compressed_stream_cut` reads at most (a bomb stays a bomb to Scrapy).
_CHECK_LIMIT = 256 * 1024 * 1024
_CHUNK = 1 << 20


def compressed_stream_cut(body: bytes, content_encoding: bytes, limit: int = _CHECK_LIMIT) -> bool:
    """True when ``body``, sent with ``content_encoding``, is a gzip/deflate/br stream that
    stops before its end. False when it is whole, not compressed, corrupt (Scrapy's
    HttpCompressionMiddleware reports that), or longer than ``limit`` decoded bytes."""
    codings = [c.strip().lower() for c in content_encoding.split(b",") if c.strip()]
    if len(codings) != 1 or not body:
        return False  # none, or stacked codings (rare, and Scrapy decodes one only)
    coding = codings[0]
    try:
        if coding in (b"gzip", b"x-gzip"):
            return _zlib_cut(body, zlib.MAX_WBITS | 16, limit)
        if coding == b"deflate":
            try:
                return _zlib_cut(body, zlib.MAX_WBITS, limit)
            except zlib.error:  # raw deflate, as some servers send it (Scrapy accepts both)
                return _zlib_cut(body, -zlib.MAX_WBITS, limit)
        if coding == b"br":
            return _brotli_cut(body, limit)
    except Exception:  # noqa: BLE001 - corrupt: judged elsewhere (net-bad-encoding)
        return False
    return False


def _zlib_cut(body: bytes, wbits: int, limit: int) -> bool:
    decoder = zlib.decompressobj(wbits)
    data, produced = body, 0
    while True:
        produced += len(decoder.decompress(data, _CHUNK))
        if produced > limit:
            return False
        if decoder.eof:
            if wbits > 0 and wbits & 16 and decoder.unused_data.startswith(b"\x1f\x8b"):
                decoder, data = zlib.decompressobj(wbits), decoder.unused_data  # next gzip member
                continue
            return False
        data = decoder.unconsumed_tail
        if not data:
            return True  # input used up, no end marker


def _brotli_cut(body: bytes, limit: int) -> bool:
    import brotli

    decoder = brotli.Decompressor()
    produced = len(decoder.process(body, output_buffer_limit=_CHUNK))
    while not decoder.is_finished():
        chunk = decoder.process(b"", output_buffer_limit=_CHUNK)
        produced += len(chunk)
        if not chunk:
            return True
        if produced > limit:
            return False
    return False


class WireBytesMiddleware:
    """Count what each answer cost the server: closest to the download handler, it adds every
    answer's body bytes as they came over the wire (before decompression) to the request's
    ``WIRE_BYTES``. Redirects and retries copy the meta into the request that replaces it, so
    the answer the spider finally sees carries the whole chain's total: redirect hops,
    attempts given up on, the final answer (a 304 adds nothing; an answer served from this
    crawl's memory, ``AnswerReuseMiddleware``, adds nothing). Browser renderings are counted
    by ``crawler.rendering`` instead. It also notes the answer's ``CONTENT_ENCODING``
    (the last answer's: the one the spider sees), and flags a compressed stream that ends
    early (``STREAM_CUT``: the body is stored, and exported, as truncated)."""

    def process_response(self, request: Request, response: Response, spider: Any = None) -> Response:
        if not request.meta.get("playwright") and not request.meta.get("xxgk_reused"):
            request.meta[WIRE_BYTES] = request.meta.get(WIRE_BYTES, 0) + len(response.body)
            encoding = b", ".join(response.headers.getlist(b"Content-Encoding"))
            request.meta[CONTENT_ENCODING] = encoding
            if encoding and request.method != "HEAD" and compressed_stream_cut(response.body, encoding):
                response.flags.append(STREAM_CUT)
        return response


class _ChainMixin:
    """Follow redirects even to URLs already crawled, and stop at the first loop.

    Scrapy's default keeps the original request's ``dont_filter``, so a deep link that
    redirects to the (already seen) home page is silently dropped by the dupefilter and
    never gets a verdict. We need every link's verdict, so redirected requests bypass it.
    """

    def _redirect(self, redirected: Request, request: Request, reason: Any) -> Request:
        chain = [*request.meta.get("redirect_urls", []), request.url]
        if redirected.url in chain:
            raise IgnoreRequest(f"redirect loop: {' -> '.join(chain + [redirected.url])}")
        result = super()._redirect(redirected, request, reason)  # type: ignore[misc]
        result.dont_filter = True
        return result


class ChainRedirectMiddleware(_ChainMixin, RedirectMiddleware):
    """HTTP 3xx redirects (replaces Scrapy's ``RedirectMiddleware``)."""


class ChainMetaRefreshMiddleware(_ChainMixin, MetaRefreshMiddleware):
    """``<meta http-equiv=refresh>`` redirects (replaces Scrapy's ``MetaRefreshMiddleware``)."""


class ConditionalRequestMiddleware:
    """Make recrawls conditional, in the spirit of Scrapy's ``RFC2616Policy``.

    Only captures of *earlier* crawls count: the archive fills while this crawl runs (the
    pipeline commits in batches; a distributed job's writer too), and a URL asked for again
    in the same crawl (a redirect's target, another worker's copy) answered 304 against this
    crawl's own capture would be recorded "not modified since the previous crawl" (and get
    no evidence screenshot).

    Only captures whose blob row exists count, and a 304 whose capture's body cannot be
    loaded after all (corrupt, or deleted meanwhile) is asked for again once without
    validators (:data:`UNCONDITIONAL`): else a lost body would never be archived again, every
    recrawl keeping an empty 304 in its place."""

    #: Request meta key: ask without validators (this request replaces a 304 whose earlier
    #: capture's body could not be loaded).
    UNCONDITIONAL = "xxgk_unconditional"
    _PREVIOUS_META = ("xxgk_previous_sha256", "xxgk_previous_content_type", "xxgk_previous_disposition")

    def __init__(self, db_path: str | None, enabled: bool, crawler: Any = None) -> None:
        self.db_path = db_path
        self.enabled = enabled and bool(db_path)
        self.crawler = crawler
        self._conn: sqlite3.Connection | None = None
        self._current: list[int] | None = None

    @classmethod
    def from_crawler(cls, crawler: Any) -> ConditionalRequestMiddleware:
        settings = crawler.settings
        return cls(settings.get("XXGK_DB"), settings.getbool("XXGK_CONDITIONAL", True), crawler)

    def _current_crawls(self) -> list[int]:
        """``crawls.id`` of this run (known once the spider is open), whose captures do not count."""
        if self._current is None:
            spider = getattr(self.crawler, "spider", None)
            ids = getattr(spider, "crawl_ids", None)
            if not ids:
                return []
            self._current = sorted(int(i) for i in ids.values())
        return self._current

    def _db(self) -> sqlite3.Connection | None:
        if self._conn is None and self.enabled:
            try:
                self._conn = sqlite3.connect(f"file:{self.db_path}?mode=ro", uri=True, timeout=30)
            except sqlite3.Error:
                self.enabled = False
        return self._conn

    def _previous(self, url: str) -> tuple | None:
        """The newest complete, downloaded, raw capture of ``url``: rendered ones hold the
        browser's DOM, not what the server sent; a body shorter than its Content-Length was
        cut short, and so was one marked ``truncated`` (a 304 against it would keep the cut
        copy for as long as the ETag holds);
        a capture restored from a 304 is its original's stand-in, not a download; a capture
        whose blob row is gone has nothing a 304 could restore (a primary-key lookup per row
        of the URL, on the blobs' covering index)."""
        conn = self._db()
        if conn is None:
            return None
        current = self._current_crawls()
        try:
            return conn.execute(
                "SELECT sha256, etag, last_modified, status_code, content_type,"
                " json_extract(headers, '$.\"content-disposition\"') FROM snapshots"
                " WHERE url = ? AND sha256 IS NOT NULL AND status_code = 200 AND rendered = 0"
                " AND not_modified = 0 AND truncated = 0"
                # an encoded answer's Content-Length counts encoded bytes, not the body's
                " AND (json_extract(headers, '$.\"content-encoding\"') IS NOT NULL"
                " OR coalesce(CAST(json_extract(headers, '$.\"content-length\"') AS INTEGER), 0) <= size)"
                f" AND (crawl_id IS NULL OR crawl_id NOT IN ({','.join('?' * len(current))}))"
                " AND EXISTS (SELECT 1 FROM blobs b WHERE b.sha256 = snapshots.sha256)"
                " ORDER BY id DESC LIMIT 1",
                [url, *current],
            ).fetchone()
        except sqlite3.Error:
            return None

    def process_request(self, request: Request, spider: Any = None) -> None:
        if (not self.enabled or request.method != "GET" or request.meta.get("playwright")
                or request.meta.get(self.UNCONDITIONAL)):
            return None
        previous = self._previous(request.url)
        if not previous:
            return None
        sha256, etag, last_modified, _status, content_type, disposition = previous
        if etag:
            request.headers.setdefault(b"If-None-Match", etag.encode("latin-1"))
        if last_modified:
            request.headers.setdefault(b"If-Modified-Since", last_modified.encode("latin-1"))
        if etag or last_modified:
            request.meta["xxgk_previous_sha256"] = sha256
            request.meta["xxgk_previous_content_type"] = content_type
            request.meta["xxgk_previous_disposition"] = disposition
        return None

    def process_response(self, request: Request, response: Response, spider: Any = None) -> Response:
        sha256 = request.meta.get("xxgk_previous_sha256")
        conn = self._db()
        if response.status != 304 or not sha256 or conn is None:
            return response
        try:
            body = load_blob(conn, sha256)
        except BlobError as exc:
            return self._unconditional(request, exc)
        headers = response.headers.copy()
        content_type = request.meta.get("xxgk_previous_content_type")
        if content_type:
            headers[b"Content-Type"] = content_type.encode("latin-1")
        disposition = request.meta.get("xxgk_previous_disposition")
        if disposition and b"Content-Disposition" not in headers:
            # the file's name: a 304 need not repeat it, and the capture names the file
            headers[b"Content-Disposition"] = str(disposition).encode("latin-1", "replace")
        request.meta["xxgk_not_modified"] = True
        cls = responsetypes.from_args(headers=headers, url=response.url, body=body)
        if cls is Response and body.lstrip()[:1] == b"<":
            cls = HtmlResponse
        return cls(url=response.url, status=200, headers=headers, body=body, request=request)

    def _unconditional(self, request: Request, exc: BlobError) -> Request:
        """``request`` again, once, without the validators: the 304 confirmed a capture whose
        body cannot be loaded, so download the page in full (and archive it again). The meta
        goes along (the 304's wire bytes, the redirect chain); the dupefilter has seen the URL."""
        retry = request.replace(dont_filter=True)
        for name in (b"If-None-Match", b"If-Modified-Since"):
            retry.headers.pop(name, None)
        for key in self._PREVIOUS_META:
            retry.meta.pop(key, None)
        retry.meta[self.UNCONDITIONAL] = True
        logger.warning("%s: 304 for a capture whose body cannot be loaded (%s);"
                                            " asking again without validators", request.url, exc)
        stats = getattr(self.crawler, "stats", None)
        if stats is not None:
            stats.inc_value("xxgk/conditional_lost_body_refetched")
        return retry


class _Answer(NamedTuple):
    """What a kept answer needs to be served again (cheaper to keep than a detached copy of
    every response: almost none is ever asked for again)."""

    cls: type[Response]
    url: str
    status: int
    headers: Any
    body: bytes
    flags: list[str]
    protocol: str | None

    @classmethod
    def of(cls, response: Response) -> _Answer:
        return cls(type(response), response.url, response.status, response.headers.copy(), response.body,
                   list(response.flags), response.protocol)

    def response(self, request: Request) -> Response:
        # copies of the headers, here and in of(): responses handed on may be changed downstream
        return self.cls(url=self.url, status=self.status, headers=self.headers.copy(), body=self.body,
                        flags=list(self.flags), request=request, protocol=self.protocol)


class AnswerReuseMiddleware:
    """Answer a URL this crawl has just downloaded from that download, not the network.

    Portals send many URLs to a few pages (``index.htm`` -> ``main.htm``, old paths and deep
    links to the home page), and those pages are crawled in their own right, so following
    each redirect would download them again. Redirected requests bypass the dupefilter
    (:class:`_ChainMixin`), so the crawl's own request for a page already reached through a
    redirect would, too. The recent ``200`` answers to plain GETs are kept (bounded by count
    and bytes, the portal home pages always); a later plain GET of the same URL in the same
    crawl gets that answer, flagged ``xxgk_reused`` in its meta so the archive counts no
    bytes received. Browser renders, challenge retries (new cookies) and other methods are
    never reused, nor answers restored from a 304 (those cost no body bytes anyway).
    """

    def __init__(self, max_answers: int = 256, max_bytes: int = 8_000_000, stats: Any = None) -> None:
        self.max_answers = max_answers
        self.max_bytes = max_bytes
        self.stats = stats
        self._recent: OrderedDict[str, _Answer] = OrderedDict()
        self._pinned: dict[str, _Answer] = {}
        self._bytes = 0

    @classmethod
    def from_crawler(cls, crawler: Any) -> AnswerReuseMiddleware:
        settings = crawler.settings
        return cls(settings.getint("XXGK_REUSE_ANSWERS", 256), settings.getint("XXGK_REUSE_BYTES", 8_000_000),
                   crawler.stats)

    @staticmethod
    def _eligible(request: Request) -> bool:
        meta = request.meta
        return (request.method == "GET" and not meta.get("playwright")
                and not meta.get("xxgk", {}).get("challenge_retry"))

    def process_request(self, request: Request, spider: Any = None) -> Response | None:
        if not self.max_answers or not self._eligible(request):
            return None
        kept = self._pinned.get(request.url)
        if kept is None:
            kept = self._recent.get(request.url)
            if kept is None:
                return None
            self._recent.move_to_end(request.url)
        request.meta["xxgk_reused"] = True
        if self.stats is not None:
            self.stats.inc_value("xxgk/reused_answers")
        return kept.response(request)

    def process_response(self, request: Request, response: Response, spider: Any = None) -> Response:
        if (not self.max_answers or response.status != 200 or request.meta.get("xxgk_reused")
                or not self._eligible(request) or request.meta.get("xxgk_not_modified")):
            return response
        size = len(response.body)
        if size > self.max_bytes // 8:
            return response
        kept = _Answer.of(response)
        if request.meta.get("xxgk", {}).get("home"):
            self._pinned[response.url] = kept
            return response
        previous = self._recent.pop(response.url, None)
        if previous is not None:
            self._bytes -= len(previous.body)
        self._recent[response.url] = kept
        self._bytes += size
        while self._recent and (len(self._recent) > self.max_answers or self._bytes > self.max_bytes):
            _url, dropped = self._recent.popitem(last=False)
            self._bytes -= len(dropped.body)
        return response
