"""Deciding the state of one fetched link: an ordered list of small, named rules.

:func:`classify` runs :data:`RULES` in order; the first rule that returns a
:class:`~crawler.fetch.Verdict` decides. ``Verdict.rule`` is that rule's short id (stored in
``link_checks.rule``) and ``Verdict.detail`` the evidence (matched text, header, status).
States come from :mod:`archive.states` and keep their public meanings.

The principle: a watchdog loses credibility with every false "dead", so *broken* states
(not_found, soft_404, server_error, network failures, type_mismatch, empty) need evidence
that the content is gone or unusable, and anything that only shows *we* were kept out is
*inconclusive* (blocked, rate_limited, excluded).

Order of the rules
    1. **Network failures** (``error_type``/``error``; a status-less fetch). Scrapy 2.13+
       wraps Twisted errors (``DownloadTimeoutError``, ``CannotResolveHostError``,
       ``DownloadConnectionRefusedError``, ``DownloadFailedError``...), older versions and
       other handlers raise Twisted/httpx/aiohttp names; both are known. Type decides first,
       then the message (URLs removed, so ``/ssl/`` in a path means nothing):

       * ``IgnoreRequest`` "Forbidden by robots.txt" -> ``excluded`` (net-robots);
         "max redirections" -> ``redirect_loop``; other ``IgnoreRequest`` -> ``excluded``;
       * over ``DOWNLOAD_MAXSIZE`` ("larger than download max size") -> ``excluded``
         (net-oversize): the server was sending a large body, which is not evidence of
         anything broken — a 300 MB scanned report is a real document — and ``excluded``
         ("over a crawl budget") says exactly that we chose not to fetch it. This holds for
         attachments and pages alike, for a body that grew past the cap without a
         ``Content-Length`` (Scrapy's HTTP/1.1 handler then cancels the download, which
         surfaces as a bare ``DownloadCancelledError`` with no message) and for a compressed
         body that inflates past it (a decompression bomb: ``IgnoreRequest`` "exceeded
         DOWNLOAD_MAXSIZE during decompression");
       * a body that cannot be decoded as its ``Content-Encoding`` says (gzip that is not
         gzip, corrupt brotli/deflate/zstd) -> ``server_error`` (net-bad-encoding): the
         server sent an answer no client can read — a browser shows
         ERR_CONTENT_DECODING_FAILED — like garbage instead of a status line (net-protocol).
         Not ``type_mismatch``: nobody saw the content to judge its type; and like every
         server_error it is retried and needs confirming before a link is ``dead``;
       * timeouts -> ``timeout``; DNS failures -> ``dns_error``; TLS/certificate/OpenSSL
         errors (also inside ``ResponseNeverReceived``/``DownloadFailedError``) ->
         ``tls_error``; garbage instead of HTTP -> ``server_error``; refused, reset, lost,
         data loss -> ``connection_error`` (but data loss on an attachment, which Scrapy
         reports only after its retries, -> ``type_mismatch``: the file arrives
         truncated); a proxy CONNECT refusal (``TunnelError``) -> ``connection_error`` for
         502/503, ``timeout`` for 504, ``blocked`` for 403/407 (our proxy said no);
         Chromium's errors about *our* proxy (``net::ERR_INVALID_AUTH_CREDENTIALS``,
         ``ERR_PROXY_*``, ``ERR_TUNNEL_CONNECTION_FAILED``...) -> ``blocked``
         (net-browser-proxy), as Scrapy's 407 from the proxy is (http-407): Chromium does
         not say what the proxy answered, so nothing says the page is gone;
         unknown errors -> ``connection_error`` (transient, retried).
       * an ``HttpError`` that carries a status is judged by the status (rules 3-5).
    2. **Proxy verdicts** (only when ``fetch.via_proxy``): a proxy's 4xx/5xx page speaks for
       the origin. Squid's ``X-Squid-Error`` (``ERR_DNS_FAIL`` -> dns_error,
       ``ERR_CONNECT_FAIL 111`` -> connection_error, ``ERR_CONNECT_FAIL 110``/
       ``ERR_READ_TIMEOUT``/``ERR_LIFETIME_EXP`` -> timeout, ``ERR_SECURE_CONNECT_FAIL`` ->
       tls_error, ``ERR_ACCESS_DENIED`` -> blocked...), else the error page text of Squid
       (the ``ERR_*`` code or its English wording), Privoxy (``404 No such domain``!) and
       tinyproxy. A bare nginx "502 Bad Gateway" is *not* read as a proxy verdict: the
       origin's own nginx sends the same page, so it stays ``server_error``.
    3. **404/410** -> ``not_found`` (before challenge checks: some WAF products brand the
       site's real 404 page).
    4. **Challenges and WAFs** -> ``blocked``: 加速乐 ``__jsl_clearance`` cookie scripts
       (also obfuscated as ``('_')+('_')+('j')...``, and 521 with a ``__jsluid`` cookie),
       Ruishu ``$_ts=window['$_ts']`` pages (412/202/200), Cloudflare challenges
       ("Just a moment...", ``cf-mitigated``), vendor block pages (安全狗 safedog, 云锁,
       知道创宇/创宇盾, 360网站卫士, 阿里云盾, 腾讯云WAF, 宝塔, D盾, 长亭雷池, F5,
       Incapsula...), tiny pages whose script sets ``document.cookie`` and reloads, captcha
       pages (验证码, 安全验证, 滑动验证, captcha); "访问过于频繁" pages -> ``rate_limited``.
       On a 2xx answer these need a small page (a normal article may mention 验证码 or
       安全狗) and a blocking word (拦截, 阻断, 防火墙, denied...), and a captcha needs the
       title/heading to say so (依申请公开 forms have captcha fields). On 500/502/504
       only the unmistakable 加速乐/瑞数 scripts count: an origin's exception page may
       quote anything (``CaptchaServlet``), and it stays ``server_error``.
    5. **Other statuses**: 429, and 503 with ``Retry-After`` -> rate_limited (what is left
       after :mod:`crawler.politeness` waited and retried); 408 -> timeout; 400, 405, 414, 451 ->
       ``not_found`` (the server refuses this URL itself: a browser fails the same way);
       **401, 403 and the remaining 4xx -> ``blocked``**; 5xx -> ``server_error``; 304 ->
       ok; another 3xx as final answer -> ``redirect_loop`` when it points back into the
       chain, else ``server_error``. For ``HEAD`` requests 400/403/405/501 -> ``blocked``
       (rule head-unsupported): many servers mishandle HEAD, re-check with GET.

       *Plain 403.* A 403 on a disclosure page is an access failure, but not proof the
       page is gone: it is the usual answer of IP bans, geo-blocks, referer checks and
       campus-only ACLs, and the same page often opens from a browser elsewhere. It is
       therefore ``blocked`` (inconclusive, rule ``http-403``), never ``not_found`` or
       ``server_error``; the rule id keeps it apart from recognised challenges
       (``challenge-*``, ``waf-*``) so persistent plain 403s can still be reported as
       "not publicly accessible".
    6. **Login walls** -> ``blocked``: redirected to a CAS/SSO/login URL, or a small page
       with a password field titled 登录/login.
    7. **Attachments** (``expect == "attachment"``, 2xx GET): zero bytes, a body shorter
       than ``Content-Length`` (uncompressed answers only) or a PDF/ZIP without its end
       marker (``%%EOF``, end-of-central-directory), HTML instead of a document
       (except Word/Excel "HTML" documents and JS download redirects), or magic bytes that
       fit none of the extensions of the URL, the final URL and the Content-Disposition
       file name -> ``type_mismatch``. A correct PDF served as ``application/octet-stream``
       is fine; office formats accept each other (Word opens a ``.doc`` that is really
       ``.docx``), archives accept each other.
    8. **Soft 404s** (2xx HTML) from :mod:`crawler.soft404`: redirect to an error page, deep
       link redirected home, the title/message/``alert()`` says not found.
    9. **Needs render**: when the raw HTML is not what a browser shows
       (:func:`crawler.htmlparse.needs_render`) and the fetch was not rendered, the verdict
       is ``ok`` with rule ``needs-render`` (:data:`NEEDS_RENDER_RULE`): the spider should
       fetch it again with a browser and classify that with ``rendered=True``. Nothing
       after this rule (probe, blank, empty) is trusted on unrendered script pages.
    10. **Probe** (``probe`` given): the page is the site's not-found answer -> soft_404;
        **blank** page (empty body, 204, or nothing visible: no text, script, image, frame)
        -> soft_404.
    11. **Empty list**: :func:`crawler.htmlparse.list_entries` found a list container with no
        entries on ``expect == "list"`` or a recognised list URL -> ``empty``; on another
        (non-home) page only when the page has almost no text of its own (a column page
        whose URL does not say so, e.g. VSB ``/xxgk/zsxx.htm``).
    12. ``redirected`` when the fetch ended elsewhere, else ``ok``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import cached_property

from archive import states as S
from crawler.decode import decode_body, filename_from_content_disposition, sniff_kind
from crawler.fetch import Fetch, Verdict
from crawler.htmlparse import PageInfo, analyze, dense_len, list_entries, needs_render
from crawler.soft404 import (
    SiteProbe,
    error_redirect,
    home_redirect,
    is_blank,
    is_footer_block,
    probe_url,
    text_soft404,
    was_redirected,
)
from crawler.urls import attachment_extension, canonicalize, is_list_page

__all__ = ["NEEDS_RENDER_RULE", "RULES", "Context", "SiteProbe", "classify", "probe_url"]

NEEDS_RENDER_RULE = "needs-render"
SMALL_PAGE = 500  # non-link characters: above this a 2xx page is real content


class Context:
    """One fetch plus lazily computed views of it, shared by the rules."""

    def __init__(self, fetch: Fetch, probe: SiteProbe | None = None, rendered: bool = False) -> None:
        self.fetch = fetch
        self.probe = probe
        self.rendered = rendered

    @cached_property
    def kind(self) -> str | None:
        return sniff_kind(self.fetch.body)

    @cached_property
    def is_text(self) -> bool:
        body = self.fetch.body
        if not body:
            return False
        if self.kind in ("html", "xml"):
            return True
        return self.kind is None and b"\x00" not in body[:1024]

    @cached_property
    def text(self) -> str:
        if not self.is_text:
            return ""
        f = self.fetch
        if f.text is not None:  # decoded by the caller with the same arguments
            return f.text
        return decode_body(f.body, f.headers, f.final_url or f.url)[0]

    @cached_property
    def info(self) -> PageInfo:
        return analyze(self.text) if self.is_text else PageInfo()

    @cached_property
    def url(self) -> str:
        return self.fetch.final_url or self.fetch.url

    @cached_property
    def ok_status(self) -> bool:
        status = self.fetch.status
        return status is not None and 200 <= status < 300

    @cached_property
    def failed(self) -> bool:
        f = self.fetch
        if f.error_type == "HttpError" and f.status is not None:
            return False
        return bool(f.error_type or f.error) or f.status is None

    @cached_property
    def error_text(self) -> str:
        f = self.fetch
        text = f"{f.error_type or ''}: {f.error or ''}"
        return re.sub(r"\b[a-z][a-z0-9+.\-]*://\S+", " ", text, flags=re.I)

    @cached_property
    def small(self) -> bool:
        """A page too small to be real content (challenge/error page sized)."""
        return self.info.content_len <= SMALL_PAGE


Rule = Callable[[Context], "Verdict | None"]


def _v(state: str, rule: str, detail: str = "") -> Verdict:
    return Verdict(state=state, rule=rule, detail=detail[:300])


# --------------------------------------------------------------------------- 1. network

_TIMEOUT_TYPES = frozenset(
    {
        "TimeoutError", "TCPTimedOutError", "DownloadTimeoutError", "ReadTimeout", "ConnectTimeout",
        "WriteTimeout", "PoolTimeout", "TimeoutException", "ServerTimeoutError",
        "ConnectionTimeoutError", "ReadTimeoutError", "SocketTimeoutError", "timeout",
    }
)
_DNS_TYPES = frozenset(
    {"DNSLookupError", "CannotResolveHostError", "gaierror", "NameResolutionError", "ClientConnectorDNSError"}
)
_TLS_TYPES = frozenset(
    {
        "SSLError", "SSLCertVerificationError", "SSLZeroReturnError", "SSLEOFError", "CertificateError",
        "VerificationError", "ClientSSLError", "ClientConnectorCertificateError", "ClientConnectorSSLError",
    }
)
_PROTOCOL_TYPES = frozenset(
    {"BadStatusLine", "ParseError", "RemoteProtocolError", "LocalProtocolError", "ProtocolError",
     "BadHttpMessage", "InvalidResponse", "ResponseNotReady"}
)
_CONNECTION_TYPES = frozenset(
    {
        "ConnectionRefusedError", "DownloadConnectionRefusedError", "ConnectionLost", "ConnectionDone",
        "ConnectionAborted", "ConnectError", "ConnectingCancelledError", "ResponseNeverReceived",
        "ResponseFailed", "DownloadFailedError", "ResponseDataLossError", "NoRouteError",
        "ConnectionResetError", "ConnectionClosed", "_DataLoss", "PotentialDataLoss",
        "ClientConnectorError", "ServerDisconnectedError", "ClientOSError", "RemoteDisconnected",
        "NetworkError", "ReadError", "WriteError", "ProxyError", "ConnectionError", "BrokenPipeError",
        "ClientPayloadError",
    }
)
_TLS_RE = re.compile(
    r"\bssl|\btls|openssl|certificate|\bcert\b|handshake|x509|wrong version number|"
    r"legacy renegotiation|dh key too small|sslv3|alert protocol version",
    re.I,
)
_DNS_RE = re.compile(
    r"dns lookup failed|name or service not known|nodename nor servname|no address associated|"
    r"temporary failure in name resolution|getaddrinfo|could not resolve|cannot resolve|"
    r"couldn't resolve|no such host|name resolution|unknown host",
    re.I,
)
_TIMEOUT_RE = re.compile(r"took longer than|timed out|timeout", re.I)
_PROTOCOL_RE = re.compile(r"bad status line|invalid http|malformed|parse error|badstatusline", re.I)
_CONNECTION_RE = re.compile(
    r"connection (?:was )?refused|connection lost|connection reset|connection to the other side|"
    r"connection was closed|connection aborted|no route to host|network is unreachable|"
    r"data ?loss|response never received|server disconnected|broken pipe|connection done",
    re.I,
)


def net_ignored(ctx: Context) -> Verdict | None:
    """Scrapy's IgnoreRequest: robots.txt, redirect limit, filters."""
    if not ctx.failed:
        return None
    text = ctx.error_text
    if "ssrf: " in text:  # crawler.safety refused a private/loopback/metadata origin
        return _v(S.EXCLUDED, "ssrf", text[text.index("ssrf: "):].strip())
    match = re.search(r"Forbidden by robots\.txt[^\n]*", text, re.I)
    if match:  # keeps why, when crawler.robots says it (robots.txt answered 5xx, timed out)
        return _v(S.EXCLUDED, "net-robots", match.group(0).strip())
    if re.search(r"robots\.txt", text, re.I):
        return _v(S.EXCLUDED, "net-robots", "Forbidden by robots.txt")
    if re.search(r"max(?:imum)? redirect|too many redirects|redirect loop|exceeded \d+ redirects", text, re.I):
        return _v(S.REDIRECT_LOOP, "net-redirect-limit", text.strip(": "))
    return None


def net_oversize(ctx: Context) -> Verdict | None:
    """Larger than the download size limit: we declined, the server did nothing wrong."""
    if ctx.failed and re.search(r"max(?:imum)? ?size|maxsize|download size|too big|too large", ctx.error_text, re.I):
        return _v(S.EXCLUDED, "net-oversize", ctx.error_text.strip(": "))
    f = ctx.fetch
    if ctx.failed and f.error_type in _BARE_CANCEL_TYPES and not (f.error or "").strip():
        # Scrapy's HTTP/1.1 handler cancels a body that passes DOWNLOAD_MAXSIZE without a
        # Content-Length (it logs the sizes; the failure carries none). A timeout is raised as
        # DownloadTimeoutError, so nothing else cancels a download without a word.
        return _v(S.EXCLUDED, "net-oversize",
                  f"{f.error_type}: download cancelled, body larger than DOWNLOAD_MAXSIZE (no Content-Length)")
    return None


#: A cancelled download without a message: the size cap hit on a body of unannounced length.
#: (Not asyncio's bare ``CancelledError``: that is a browser render cut short at shutdown.)
_BARE_CANCEL_TYPES = frozenset({"DownloadCancelledError"})
_BAD_ENCODING_RE = re.compile(
    r"while decompressing|decompress(?:ion)? (?:error|failed)|decoder failed|not a gzipped file|"
    r"incorrect header check|invalid (?:stored )?block|invalid (?:distance|code lengths?|literal)|"
    r"unknown compression method|crc check failed|brotli|zstd|unknown frame descriptor|"
    r"can ?not decode content-encoding",
    re.I,
)
#: Decoder exceptions of Python's gzip/zstd modules, httpx and requests.
_BAD_ENCODING_TYPES = frozenset({"BadGzipFile", "ZstdError", "DecodingError", "ContentDecodingError"})
#: Generic names that are a decoding failure only when the message says so (zlib.error and
#: brotli.error are both called "error"; aiohttp wraps it in ClientPayloadError).
_MAYBE_ENCODING_TYPES = frozenset({"error", "OSError", "ValueError", "EOFError", "ClientPayloadError"})


def net_bad_encoding(ctx: Context) -> Verdict | None:
    """A body that is not what its Content-Encoding says (zlib/brotli/zstd refused it)."""
    f = ctx.fetch
    if not ctx.failed or f.error_type in _TIMEOUT_TYPES or f.error_type in _DNS_TYPES:
        return None
    if f.error_type in _BAD_ENCODING_TYPES or (
            f.error_type in _MAYBE_ENCODING_TYPES and _BAD_ENCODING_RE.search(ctx.error_text)):
        return _v(S.SERVER_ERROR, "net-bad-encoding",
                  f"body not decodable as its Content-Encoding: {ctx.error_text.strip(': ')}")
    return None


def net_unsupported(ctx: Context) -> Verdict | None:
    """A scheme or request the downloader does not support (ftp://...)."""
    f = ctx.fetch
    if ctx.failed and (
        f.error_type in ("UnsupportedURLSchemeError", "NotSupported", "SchemeNotSupported")
        or re.search(r"unsupported url scheme", ctx.error_text, re.I)
    ):
        return _v(S.EXCLUDED, "net-unsupported", ctx.error_text.strip(": "))
    return None


def net_proxy_tunnel(ctx: Context) -> Verdict | None:
    """The proxy refused the CONNECT tunnel; its status says why."""
    f = ctx.fetch
    if not ctx.failed or not (f.error_type == "TunnelError" or "CONNECT tunnel" in (f.error or "")):
        return None
    match = re.search(r"""['"]status['"]:\s*(\d{3})""", f.error or "") or re.search(
        r"\bHTTP/1\.[01] (\d{3})", f.error or "")
    status = int(match.group(1)) if match else None
    detail = (f.error or "").strip()
    if status == 504:
        return _v(S.TIMEOUT, "net-proxy-tunnel", detail)
    if status in (403, 407):
        return _v(S.BLOCKED, "net-proxy-tunnel", detail)
    return _v(S.CONNECTION_ERROR, "net-proxy-tunnel", detail)


#: Chromium's net errors about the proxy it was told to use (net/base/net_error_list.h).
#: ERR_TUNNEL_CONNECTION_FAILED is any CONNECT answer but 2xx/407 (Chromium keeps the status
#: to itself); ERR_INVALID_AUTH_CREDENTIALS is the proxy's 407 after Playwright answered it
#: (wrong or missing credentials: an origin's 401 is a response, not this error).
_BROWSER_PROXY_RE = re.compile(
    r"\bnet::(ERR_(?:PROXY_[A-Z0-9_]+|INVALID_AUTH_CREDENTIALS|TUNNEL_CONNECTION_FAILED|"
    r"MANDATORY_PROXY_CONFIGURATION_FAILED|UNEXPECTED_PROXY_AUTH|HTTPS_PROXY_TUNNEL_RESPONSE(?:_REDIRECT)?))\b")


def net_browser_proxy(ctx: Context) -> Verdict | None:
    """Chromium could not get through our proxy: the proxy's failure, not the page's."""
    if not ctx.failed:
        return None
    match = _BROWSER_PROXY_RE.search(ctx.fetch.error or "")
    if match is None:
        return None
    return _v(S.BLOCKED, "net-browser-proxy", f"{match.group(1)}: the browser's proxy refused or failed")


def net_dataloss(ctx: Context) -> Verdict | None:
    """An attachment whose connection closed before Content-Length bytes (after retries).
    Without a Content-Length (chunked, compressed) Scrapy keeps what came instead, flagged
    ``dataloss``: see :func:`attachment_body`."""
    f = ctx.fetch
    if ctx.failed and f.expect == "attachment" and (
        f.error_type in ("ResponseDataLossError", "_DataLoss", "PotentialDataLoss", "ClientPayloadError")
        or re.search(r"data ?loss", ctx.error_text, re.I)
    ):
        return _v(S.TYPE_MISMATCH, "attach-truncated", ctx.error_text.strip(": "))
    return None


def net_typed(ctx: Context) -> Verdict | None:
    """Failures whose exception class alone decides: timeouts, DNS, TLS."""
    if not ctx.failed:
        return None
    name = ctx.fetch.error_type or ""
    detail = ctx.error_text.strip(": ")
    if name in _TIMEOUT_TYPES:
        return _v(S.TIMEOUT, "net-timeout", detail)
    if name in _DNS_TYPES:
        return _v(S.DNS_ERROR, "net-dns", detail)
    if name in _TLS_TYPES or _TLS_RE.search(ctx.error_text):
        return _v(S.TLS_ERROR, "net-tls", detail)
    return None


def net_worded(ctx: Context) -> Verdict | None:
    """Generic failures decided by their message, then by their class."""
    if not ctx.failed:
        return None
    name = ctx.fetch.error_type or ""
    text = ctx.error_text
    detail = text.strip(": ")
    if _DNS_RE.search(text):
        return _v(S.DNS_ERROR, "net-dns", detail)
    if _TIMEOUT_RE.search(text):
        return _v(S.TIMEOUT, "net-timeout", detail)
    if name in _PROTOCOL_TYPES or _PROTOCOL_RE.search(text):
        return _v(S.SERVER_ERROR, "net-protocol", detail)
    if name in _CONNECTION_TYPES or _CONNECTION_RE.search(text):
        return _v(S.CONNECTION_ERROR, "net-connection", detail)
    if name == "IgnoreRequest":
        return _v(S.EXCLUDED, "net-ignored", detail)
    if ctx.fetch.status is None and not (ctx.fetch.error_type or ctx.fetch.error):
        return _v(S.CONNECTION_ERROR, "no-response", "no status and no error recorded")
    if ctx.fetch.status is None or ctx.fetch.error_type:
        return _v(S.CONNECTION_ERROR, "net-error", detail)
    return None


# --------------------------------------------------------------------------- 2. proxy

_SQUID_CODE_RE = re.compile(r"\b(ERR_[A-Z_]+)(?:\s+(\d+))?")
_SQUID_STATES: dict[str, str] = {
    "ERR_DNS_FAIL": S.DNS_ERROR,
    "ERR_CONNECT_FAIL": S.CONNECTION_ERROR,
    "ERR_READ_TIMEOUT": S.TIMEOUT,
    "ERR_LIFETIME_EXP": S.TIMEOUT,
    "ERR_CONNECT_TIMEOUT": S.TIMEOUT,
    "ERR_SECURE_CONNECT_FAIL": S.TLS_ERROR,
    "ERR_ZERO_SIZE_OBJECT": S.CONNECTION_ERROR,
    "ERR_READ_ERROR": S.CONNECTION_ERROR,
    "ERR_WRITE_ERROR": S.CONNECTION_ERROR,
    "ERR_CANNOT_FORWARD": S.CONNECTION_ERROR,
    "ERR_GATEWAY_FAILURE": S.CONNECTION_ERROR,
    "ERR_SHUTTING_DOWN": S.CONNECTION_ERROR,
    "ERR_FTP_FAILURE": S.CONNECTION_ERROR,
    "ERR_INVALID_RESP": S.SERVER_ERROR,
    "ERR_TOO_BIG": S.EXCLUDED,
    "ERR_UNSUP_REQ": S.EXCLUDED,
    "ERR_INVALID_URL": S.EXCLUDED,
    "ERR_ACCESS_DENIED": S.BLOCKED,
    "ERR_CACHE_ACCESS_DENIED": S.BLOCKED,
    "ERR_FORWARDING_DENIED": S.BLOCKED,
}
_ERRNO_STATES = {110: S.TIMEOUT, 111: S.CONNECTION_ERROR, 113: S.CONNECTION_ERROR, 101: S.CONNECTION_ERROR}


def _squid_state(code: str, errno: str | None) -> str | None:
    if code == "ERR_CONNECT_FAIL" and errno and int(errno) in _ERRNO_STATES:
        return _ERRNO_STATES[int(errno)]
    return _SQUID_STATES.get(code)


def proxy_squid_header(ctx: Context) -> Verdict | None:
    """Squid's X-Squid-Error header on a proxy's error answer."""
    f = ctx.fetch
    if not f.via_proxy or f.status is None or f.status < 400:
        return None
    raw = f.header("x-squid-error").strip()
    match = _SQUID_CODE_RE.search(raw)
    if not match:
        return None
    state = _squid_state(match.group(1), match.group(2))
    return _v(state, "proxy-squid", f"X-Squid-Error: {raw}") if state else None


_PROXY_PAGES: tuple[tuple[str, re.Pattern[str], tuple[tuple[re.Pattern[str], str], ...]], ...] = (
    (
        "squid",
        re.compile(r"squid|ERR_[A-Z_]{4,}|The requested URL could not be retrieved", re.I),
        (
            (re.compile(r"Unable to determine IP address|DNS server returned|ERR_DNS_FAIL|无法解析|域名解析", re.I), S.DNS_ERROR),
            (re.compile(r"\(110\) Connection timed out|ERR_READ_TIMEOUT|ERR_LIFETIME_EXP|Read Timeout|读取超时", re.I), S.TIMEOUT),
            (re.compile(r"ERR_SECURE_CONNECT_FAIL|Failed to establish a secure connection", re.I), S.TLS_ERROR),
            (re.compile(r"ERR_CONNECT_FAIL|Connection to \S+ failed|\(111\) Connection refused|\(113\) No route|"
                        r"ERR_ZERO_SIZE_OBJECT|ERR_READ_ERROR|Zero Sized Reply", re.I), S.CONNECTION_ERROR),
        ),
    ),
    (
        "privoxy",
        re.compile(r"privoxy", re.I),
        (
            (re.compile(r"No such domain|could not be resolved|DNS resolution", re.I), S.DNS_ERROR),
            (re.compile(r"Connection timeout|timed out", re.I), S.TIMEOUT),
            (re.compile(r"Connect(?:ion)? failed|could not be established|No server or forwarder data", re.I),
             S.CONNECTION_ERROR),
        ),
    ),
    (
        "tinyproxy",
        re.compile(r"tinyproxy", re.I),
        (
            (re.compile(r"Unable to resolve|could not be resolved|DNS", re.I), S.DNS_ERROR),
            (re.compile(r"timed? ?out", re.I), S.TIMEOUT),
            (re.compile(r"Unable to connect|could not connect|Could not retrieve", re.I), S.CONNECTION_ERROR),
        ),
    ),
)


def proxy_error_page(ctx: Context) -> Verdict | None:
    """A proxy's own error page (Squid, Privoxy, tinyproxy) when the header is missing."""
    f = ctx.fetch
    if not f.via_proxy or f.status is None or f.status < 400 or not ctx.text:
        return None
    for name, marker, phrases in _PROXY_PAGES:
        if not marker.search(ctx.text):
            continue
        if name == "squid":
            for match in _SQUID_CODE_RE.finditer(ctx.text):
                state = _squid_state(match.group(1), match.group(2))
                if state:
                    return _v(state, "proxy-page", f"{name}: {match.group(0)}")
        for phrase, state in phrases:
            match = phrase.search(ctx.text)
            if match:
                return _v(state, "proxy-page", f"{name}: {match.group(0)}")
    return None


# --------------------------------------------------------------------------- 3. gone

def http_gone(ctx: Context) -> Verdict | None:
    """404 and 410: the server says the page is not there."""
    status = ctx.fetch.status
    if status in (404, 410):
        return _v(S.NOT_FOUND, f"http-{status}", f"HTTP {status}")
    return None


# --------------------------------------------------------------------------- 4. challenges

_JSL_SQUASH_RE = re.compile(r"""['"+()\[\]\s]""")
#: "__jsl_clearance" in _JSL_SQUASH_RE.sub("", text), without building the squashed copy:
#: the name's characters with any run of squashed characters between them.
_JSL_COOKIE_RE = re.compile(r"""['"+()\[\]\s]*""".join(re.escape(c) for c in "__jsl_clearance"))
_RUISHU_RE = re.compile(r"\$_ts\s*=\s*window\s*\[\s*['\"]\$_ts['\"]\s*\]|\$_ts\.(?:cd|nsd|lcd)\s*=|<meta[^>]+\br=['\"]m['\"]", re.I)
_CLOUDFLARE_RE = re.compile(
    r"<title>\s*(?:Just a moment\.\.\.|Attention Required! \| Cloudflare|请稍候…?)\s*</title>|cf_chl_opt|"
    r"/cdn-cgi/challenge-platform/|cf-browser-verification|Sorry, you have been blocked|"
    r"Error\s*1020\b",
    re.I,
)
_WAF_PAGES: tuple[tuple[str, re.Pattern[str]], ...] = tuple(
    (vendor, re.compile(pattern, re.I))
    for vendor, pattern in (
        ("safedog", r"safedog|安全狗|您的请求带有不合法参数|网站防火墙.{0,60}(?:拦截|阻止)"),
        ("yunsuo", r"yunsuo|云锁"),
        ("knownsec", r"知道创宇|创宇盾|365cyd|ks-waf|_ks_waf|加速乐"),
        ("360", r"360wzws|360wzb|360网站卫士|网站卫士.{0,20}拦截"),
        ("aliyun", r"errors\.aliyun\.com|aliyun_waf|阿里云盾|阿里云web应用防火墙|由于您访问的URL有可能对网站造成安全威胁"),
        ("tencent", r"waf\.tencent-cloud\.com|腾讯云web应用防火墙|tencent-cloud\.com/waf"),
        ("baota", r"宝塔(?:网站)?防火墙|btwaf"),
        ("dshield", r"D盾_IIS防火墙|D_Safe|D盾拦截"),
        ("chaitin", r"safeline|长亭|雷池"),
        ("imperva", r"Incapsula incident|_Incapsula_Resource"),
        ("f5", r"The requested URL was rejected\. Please consult with your administrator"),
        ("sangfor", r"深信服|sangfor"),
        ("qianxin", r"奇安信|qianxin|网神"),
        ("nsfocus", r"绿盟|nsfocus"),
        ("wts", r"WTS-WAF"),
        ("generic", r"您的访问(?:请求)?(?:已)?被(?:拦截|阻断|拒绝)|(?:访问|请求)(?:已)?被(?:拦截|阻断)|"
                    r"疑似(?:攻击|黑客)|web应用防火墙|waf拦截|网站防火墙|access denied by waf"),
    )
)
_BLOCK_WORD_RE = re.compile(r"拦截|阻断|阻止|拒绝|禁止访问|防火墙|不合法|非法|威胁|blocked|denied|rejected|forbidden", re.I)
_WAF_HEADER_RE = re.compile(r"safedog|yunsuo|360wzb|wzws|\bjsl\b|\bwaf\b|sucuri|incapsula|safeline", re.I)
_WAF_PRESENCE_HEADERS = ("x-powered-by-360wzb", "x-safe-firewall", "x-waf", "x-yunsuo", "x-safedog")
_COOKIE_SET_RE = re.compile(r"document\s*\.\s*cookie\s*=")
_RELOAD_RE = re.compile(
    r"location\s*\.\s*reload\s*\(|location(?:\.href)?\s*=\s*(?:window\.|document\.)?location(?:\.href)?\b|"
    r"location\.replace\s*\(\s*(?:window\.)?location|location\.pathname\s*\+\s*location\.search",
)
_ANY_LOCATION_RE = re.compile(r"location(?:\.href)?\s*=|location\.(?:replace|assign|reload)\s*\(")
_CAPTCHA_RE = re.compile(
    r"验证码|captcha|安全验证|滑动验证|人机验证|请完成验证|拖动滑块|行为验证|geetest|turnstile|访问验证", re.I
)
_RATE_RE = re.compile(
    r"访问过于频繁|请求过于频繁|访问频率过高|操作过于频繁|访问太频繁|请求太频繁|请求次数过多|访问次数过多|"
    r"too many requests|rate limit(?:ed| exceeded)",
    re.I,
)


def _challenge_ok(ctx: Context, *, strong: bool = False) -> bool:
    """Whether challenge markers may decide: on 2xx only for small pages; on 500/502/504
    (origin or gateway failures, whose error pages may quote anything) only strong ones."""
    if ctx.ok_status:
        return ctx.small
    if ctx.fetch.status in (500, 502, 504):
        return strong
    return True


def challenge_jsl(ctx: Context) -> Verdict | None:
    """加速乐 (Knownsec jiasule): 521 + cookie script setting __jsl_clearance."""
    f = ctx.fetch
    cookies = f.header("set-cookie")
    if ctx.text and _JSL_COOKIE_RE.search(ctx.text[:20000]) and _challenge_ok(ctx, strong=True):
        return _v(S.BLOCKED, "challenge-jsl", f"HTTP {f.status}: __jsl_clearance cookie script")
    if f.status == 521 and "__jsluid" in cookies:
        return _v(S.BLOCKED, "challenge-jsl", "HTTP 521 with __jsluid cookie")
    return None


def challenge_ruishu(ctx: Context) -> Verdict | None:
    """Ruishu (瑞数) dynamic-security pages: $_ts bootstrap scripts, usually 412."""
    if ctx.text and _RUISHU_RE.search(ctx.text[:50000]) and _challenge_ok(ctx, strong=True):
        return _v(S.BLOCKED, "challenge-ruishu", f"HTTP {ctx.fetch.status}: $_ts bootstrap script")
    return None


def challenge_cloudflare(ctx: Context) -> Verdict | None:
    """Cloudflare interstitials and block pages."""
    f = ctx.fetch
    if "challenge" in f.header("cf-mitigated").lower():
        return _v(S.BLOCKED, "challenge-cloudflare", "cf-mitigated: challenge")
    if ctx.text and _challenge_ok(ctx):
        match = _CLOUDFLARE_RE.search(ctx.text)
        if match:
            return _v(S.BLOCKED, "challenge-cloudflare", f"HTTP {f.status}: {match.group(0)[:80]}")
    return None


def waf_page(ctx: Context) -> Verdict | None:
    """Block pages of WAF products (安全狗, 云锁, 创宇盾, 360, 阿里云, 宝塔 ...)."""
    f = ctx.fetch
    if ctx.text and _challenge_ok(ctx):
        haystack = f"{ctx.info.title} {ctx.info.text} {ctx.text[:30000] if not ctx.ok_status else ''}"
        if ctx.ok_status and not _BLOCK_WORD_RE.search(haystack):
            return None  # a small 2xx page naming a WAF product, e.g. a notice about it
        for vendor, pattern in _WAF_PAGES:
            match = pattern.search(haystack)
            if match:
                return _v(S.BLOCKED, f"waf-{vendor}", f"HTTP {f.status}: {match.group(0)[:80]}")
    if not ctx.ok_status and f.status is not None and f.status >= 400 and f.status not in (404, 410):
        for name in _WAF_PRESENCE_HEADERS:
            if f.header(name):
                return _v(S.BLOCKED, "waf-header", f"HTTP {f.status} with header {name}")
        for name in ("server", "x-powered-by", "x-cache", "via"):
            value = f.header(name)
            if value and _WAF_HEADER_RE.search(value):
                return _v(S.BLOCKED, "waf-header", f"HTTP {f.status} {name}: {value}"[:120])
    return None


def challenge_cookie_script(ctx: Context) -> Verdict | None:
    """A tiny page whose script sets a cookie and reloads: a JS challenge."""
    f = ctx.fetch
    info = ctx.info
    if not info.scripts or info.content_len > 200 or len(f.body) > 50000:
        return None
    scripts = "\n".join(info.scripts)
    if not _COOKIE_SET_RE.search(scripts):
        return None
    reload = _RELOAD_RE.search(scripts)
    if reload or (not ctx.ok_status and _ANY_LOCATION_RE.search(scripts)):
        return _v(S.BLOCKED, "challenge-cookie-script", f"HTTP {f.status}: document.cookie + reload")
    return None


def challenge_captcha(ctx: Context) -> Verdict | None:
    """Captcha / human-verification pages."""
    f = ctx.fetch
    info = ctx.info
    if not ctx.text or not _challenge_ok(ctx):
        return None
    if not ctx.ok_status:
        match = _CAPTCHA_RE.search(f"{info.title} {info.text}") or _CAPTCHA_RE.search(ctx.text[:30000])
    else:
        if info.content_len > 300:
            return None
        match = _CAPTCHA_RE.search(" ".join([info.title, *info.headings]))
    if match:
        return _v(S.BLOCKED, "challenge-captcha", f"HTTP {f.status}: {match.group(0)}")
    return None


def rate_limit_text(ctx: Context) -> Verdict | None:
    """"访问过于频繁" pages: the site asks us to slow down (429 itself is http_status's)."""
    if ctx.text and ctx.fetch.status != 429 and _challenge_ok(ctx):
        match = _RATE_RE.search(f"{ctx.info.title} {ctx.info.text}")
        if match:
            return _v(S.RATE_LIMITED, "rate-limit-text", f"HTTP {ctx.fetch.status}: {match.group(0)}")
    return None


# --------------------------------------------------------------------------- 5. statuses

_REFUSES_URL = frozenset({400, 405, 414, 451})


def http_status(ctx: Context) -> Verdict | None:
    """Every non-2xx status not decided above."""
    f = ctx.fetch
    status = f.status
    if status is None or 200 <= status < 300:
        return None
    detail = f"HTTP {status}"
    if f.method.upper() == "HEAD" and status in (400, 403, 405, 501):
        return _v(S.BLOCKED, "head-unsupported", f"{detail} to HEAD: re-check with GET")
    retry = f.header("retry-after").strip()
    if status == 429:
        return _v(S.RATE_LIMITED, "http-429", f"{detail}; Retry-After: {retry}" if retry else detail)
    if status == 503 and retry:
        # "Come back later" (crawler.politeness waited and retried): the server is
        # shedding load, which says nothing about the page.
        return _v(S.RATE_LIMITED, "http-503-retry-after", f"{detail}; Retry-After: {retry}")
    if status == 408:
        return _v(S.TIMEOUT, "http-408", detail)
    if status in _REFUSES_URL:
        return _v(S.NOT_FOUND, f"http-{status}", detail)
    if 400 <= status < 500:
        return _v(S.BLOCKED, f"http-{status}", detail)
    if 500 <= status < 600:
        return _v(S.SERVER_ERROR, f"http-{status}", detail)
    if status == 304:
        return _v(S.OK, "http-304", "304 Not Modified")
    if 300 <= status < 400:
        location = f.header("location").strip()
        target = canonicalize(location, f.final_url or f.url) if location else None
        seen = {canonicalize(u) for u in (f.url, *(f.redirect_chain or []), f.final_url) if u}
        if target and target in seen:
            return _v(S.REDIRECT_LOOP, "http-3xx-loop", f"{detail} Location: {location}")
        return _v(S.SERVER_ERROR, "http-3xx-unfollowed", f"{detail} Location: {location or '(none)'}")
    return _v(S.SERVER_ERROR, "http-unexpected", detail)


# --------------------------------------------------------------------------- 6. login

_LOGIN_URL_RE = re.compile(
    r"/(?:login|logon|signin|sign_in|sso|cas/login|authserver|passport|oauth2?|uaa|idp)(?:[/.?;]|$)|"
    r"[?&](?:service|returnurl|return_url|redirect_uri|redirecturl)=",
    re.I,
)
_LOGIN_TITLE_RE = re.compile(r"登录|登陆|统一身份认证|身份认证|log ?in|sign ?in", re.I)


def login_wall(ctx: Context) -> Verdict | None:
    """Sent to a CAS/SSO/login page: access restricted, not gone."""
    f = ctx.fetch
    if not ctx.ok_status or _LOGIN_URL_RE.search(f.url):
        return None
    if was_redirected(f) and f.final_url and _LOGIN_URL_RE.search(f.final_url):
        return _v(S.BLOCKED, "login-wall", f"redirected to login {f.final_url}")
    info = ctx.info
    if info.has_password and info.content_len <= SMALL_PAGE and _LOGIN_TITLE_RE.search(info.title):
        return _v(S.BLOCKED, "login-wall", f"login form: {info.title!r}")
    return None


# --------------------------------------------------------------------------- 7. attachments

_OFFICE = {"ole", "docx", "xlsx", "pptx", "zip", "rtf"}
_ARCHIVES = {"zip", "rar", "7z", "gzip", "docx", "xlsx", "pptx", "ofd", "odf"}
ACCEPTED_KINDS: dict[str, frozenset[str]] = {
    ".pdf": frozenset({"pdf"}),
    ".doc": frozenset({"ole", "rtf", "docx", "mht", "xml"}),
    ".wps": frozenset({"ole", "rtf", "docx", "mht"}),
    ".docx": frozenset({"docx", "zip", "ole", "rtf"}),
    ".rtf": frozenset({"rtf", "ole", "docx"}),
    ".xls": frozenset({"ole", "xlsx", "zip", "xml", "mht"}),
    ".et": frozenset({"ole", "xlsx", "zip"}),
    ".xlsx": frozenset({"xlsx", "zip", "ole"}),
    ".ppt": frozenset({"ole", "pptx", "zip"}),
    ".dps": frozenset({"ole", "pptx", "zip"}),
    ".pptx": frozenset({"pptx", "zip", "ole"}),
    ".zip": frozenset(_ARCHIVES),
    ".rar": frozenset(_ARCHIVES),
    ".7z": frozenset(_ARCHIVES),
    ".ofd": frozenset({"ofd", "zip"}),
}
_OFFICE_HTML_EXTS = frozenset({".doc", ".docx", ".xls", ".xlsx", ".wps", ".et"})
_OFFICE_HTML_RE = re.compile(rb"urn:schemas-microsoft-com:office|<o:DocumentProperties|ProgId\s*content=.?(?:Word|Excel)", re.I)


def _attachment_exts(f: Fetch) -> set[str]:
    exts = {attachment_extension(f.url), attachment_extension(f.final_url or f.url)}
    name = filename_from_content_disposition(f.headers.get("content-disposition"))
    if name:
        exts.add(attachment_extension("http://x/" + name.replace("?", "_").replace("#", "_")))
    return {e for e in exts if e}


def attachment_body(ctx: Context) -> Verdict | None:
    """Documents that are not documents: empty, truncated, HTML, wrong magic bytes."""
    f = ctx.fetch
    if f.expect != "attachment" or not ctx.ok_status or f.method.upper() == "HEAD":
        return None
    body = f.body
    if not body:
        return _v(S.TYPE_MISMATCH, "attach-zero-byte", f"HTTP {f.status} with an empty body")
    length = f.header("content-length").strip()
    if length.isdigit() and not f.header("content-encoding").strip() and f.status == 200 and int(length) > len(body):
        return _v(S.TYPE_MISMATCH, "attach-truncated", f"{len(body)} of {length} bytes")
    cut = f.incomplete()  # no Content-Length to compare (chunked, compressed), or a 206's part
    if cut:
        return _v(S.TYPE_MISMATCH, "attach-truncated", cut)
    exts = _attachment_exts(f)
    kind = ctx.kind
    if kind == "html":
        if exts & _OFFICE_HTML_EXTS and _OFFICE_HTML_RE.search(body[:20000]):
            return None
        if not ctx.rendered and (reason := needs_render(ctx.text, ctx.url)):
            return _v(S.OK, NEEDS_RENDER_RULE, f"attachment answered a script page: {reason}")
        said = text_soft404(ctx.info)
        if not exts and not said and ctx.info.content_len > SMALL_PAGE:
            return None  # a download *script* answering a real page: judge it as a page
        title = ctx.info.title or (said[1] if said else "")
        expected = "/".join(sorted(exts)) or "a document"
        return _v(S.TYPE_MISMATCH, "attach-html", f"HTML instead of {expected}: {title[:100]!r}")
    accepted: set[str] = set()
    for ext in exts:
        accepted |= ACCEPTED_KINDS.get(ext, frozenset())
    if accepted and kind not in accepted:
        return _v(
            S.TYPE_MISMATCH, "attach-magic",
            f"{'/'.join(sorted(exts))} but the bytes are {kind or 'unknown'} ({body[:8]!r})",
        )
    missing = _missing_trailer(kind, body)
    if missing:
        return _v(S.TYPE_MISMATCH, "attach-truncated", f"{kind} of {len(body)} bytes without {missing}")
    return None


def _missing_trailer(kind: str | None, body: bytes) -> str | None:
    """The end marker a complete file of this kind has and ``body`` lacks, or None.

    Catches truncation when no Content-Length is left to compare (a body re-served from
    the archive after a 304, a proxy that dropped the header): PDF readers look for
    ``%%EOF`` in the last KiB (4 KiB tolerated here), ZIP readers for the
    end-of-central-directory record in the last 64 KiB.
    """
    if kind == "pdf" and b"%%EOF" not in body[-4096:]:
        return "the %%EOF trailer"
    if kind in ("zip", "docx", "xlsx", "pptx", "ofd", "odf") and b"PK\x05\x06" not in body[-(65536 + 22):]:
        return "the zip end-of-central-directory record"
    return None


# --------------------------------------------------------------------------- 8-11. pages

def _html_2xx(ctx: Context) -> bool:
    return ctx.ok_status and ctx.fetch.method.upper() != "HEAD"


def soft404_error_redirect(ctx: Context) -> Verdict | None:
    """Redirected to /404.html, /error.jsp, ...?aspxerrorpath=."""
    if not _html_2xx(ctx):
        return None
    evidence = error_redirect(ctx.fetch)
    return _v(S.SOFT_404, "soft404-error-redirect", evidence) if evidence else None


def soft404_home_redirect(ctx: Context) -> Verdict | None:
    """A deep link redirected to the home page."""
    if not _html_2xx(ctx):
        return None
    evidence = home_redirect(ctx.fetch)
    return _v(S.SOFT_404, "soft404-home-redirect", evidence) if evidence else None


def soft404_text(ctx: Context) -> Verdict | None:
    """The page's title, main message or alert() says it does not exist."""
    if not _html_2xx(ctx) or not ctx.text:
        return None
    found = text_soft404(ctx.info)
    return _v(S.SOFT_404, found[0], found[1]) if found else None


def render_needed(ctx: Context) -> Verdict | None:
    """Raw HTML is not what a browser shows: ask for a rendered fetch."""
    if ctx.rendered or not _html_2xx(ctx) or not ctx.text:
        return None
    reason = needs_render(ctx.text, ctx.url)
    return _v(S.OK, NEEDS_RENDER_RULE, reason) if reason else None


def soft404_probe(ctx: Context) -> Verdict | None:
    """Same answer as the site gives for a URL that cannot exist."""
    if ctx.probe is None or not _html_2xx(ctx) or ctx.fetch.expect == "attachment":
        return None
    if ctx.probe.matches(ctx.fetch):
        return _v(S.SOFT_404, "soft404-probe", ctx.probe.describe())
    return None


def soft404_blank(ctx: Context) -> Verdict | None:
    """A 2xx page with nothing at all in it."""
    f = ctx.fetch
    if not _html_2xx(ctx) or f.expect == "attachment":
        return None
    if not f.body.strip():
        return _v(S.SOFT_404, "soft404-blank", f"HTTP {f.status} with an empty body")
    if ctx.is_text and ctx.kind in ("html", None) and is_blank(ctx.info):
        return _v(S.SOFT_404, "soft404-blank", "no visible text, script, image or frame")
    return None


LIST_PAGE_CONTENT = 150  # non-link, non-footer characters of a column page without entries


def empty_list(ctx: Context) -> Verdict | None:
    """A list/column page whose list container holds no entries.

    Known list URLs (``expect == "list"``, :func:`crawler.urls.is_list_page`) only need the
    empty container. Other pages (VSB column pages such as ``/xxgk/zsxx.htm`` look like
    articles) count as column pages by content: an empty list container and almost no text
    of their own (at most 150 characters outside links and footer lines); never home pages.
    """
    f = ctx.fetch
    if not _html_2xx(ctx) or not ctx.text or f.expect in ("attachment", "external"):
        return None
    listed = f.expect == "list" or is_list_page(ctx.url) or is_list_page(f.url)
    if not listed and f.is_home_page:
        return None
    if list_entries(ctx.text, ctx.url) != []:
        return None
    if listed:
        return _v(S.EMPTY, "empty-list", "list container with no entries")
    own = sum(dense_len(b) for b in ctx.info.content_blocks if not is_footer_block(b))
    if own <= LIST_PAGE_CONTENT:
        return _v(S.EMPTY, "empty-list-content", f"list container with no entries, {own} characters of text")
    return None


def final_ok(ctx: Context) -> Verdict | None:
    """Nothing wrong found: ok, or redirected when the fetch ended elsewhere."""
    f = ctx.fetch
    if was_redirected(f):
        hops = len(f.redirect_chain) or 1
        return _v(S.REDIRECTED, "redirected", f"{hops} hop(s) to {f.final_url}")
    return _v(S.OK, "ok", f"HTTP {f.status}")


#: The rules in the order they are tried; the first verdict wins.
RULES: tuple[Rule, ...] = (
    net_ignored,
    net_oversize,
    net_unsupported,
    net_proxy_tunnel,
    net_browser_proxy,
    net_bad_encoding,
    net_dataloss,
    net_typed,
    net_worded,
    proxy_squid_header,
    proxy_error_page,
    http_gone,
    challenge_jsl,
    challenge_ruishu,
    challenge_cloudflare,
    waf_page,
    challenge_cookie_script,
    challenge_captcha,
    rate_limit_text,
    http_status,
    login_wall,
    attachment_body,
    soft404_error_redirect,
    soft404_home_redirect,
    soft404_text,
    render_needed,
    soft404_probe,
    soft404_blank,
    empty_list,
    final_ok,
)


def classify(fetch: Fetch, *, probe: SiteProbe | None = None, rendered: bool = False) -> Verdict:
    """The state of one fetched link (see the module docstring for the rules and order).

    ``probe`` is the site's answer to a random non-existent URL (:func:`crawler.soft404.
    probe_url`); ``rendered`` says the body came from a browser, which turns off the
    ``needs-render`` answer.
    """
    ctx = Context(fetch, probe, rendered)
    for rule in RULES:
        verdict = rule(ctx)
        if verdict is not None:
            return verdict
    raise AssertionError("final_ok always decides")  # pragma: no cover
