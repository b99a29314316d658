"""URL handling for the crawler: one canonical form per page, scope, guesses, trap guard.

Canonical form (:func:`canonicalize`)
    The archive keys ``links.url`` on this string, so two spellings of one page must give
    one string, and the function must be idempotent (``canonicalize(canonicalize(u)) ==
    canonicalize(u)``; a hypothesis test pins it). Steps, in order:

    * strip surrounding whitespace (also U+3000, NBSP, zero-width), drop tabs/newlines
      inside (as browsers do), turn ``\\`` into ``/`` before the query (IIS-era links such
      as ``..\\info\\1021\\1.htm`` work in browsers);
    * resolve against ``base``; keep only ``http``/``https`` (``javascript:``, ``mailto:``,
      ``tel:``, ``data:``, ``file:``, ``ftp:`` ... give ``None``), and nothing without a host;
    * host lower-cased, trailing dot removed, IDN to punycode (UTS 46), default port
      removed; an invalid host or port gives ``None``;
    * session ids removed: ``;jsessionid=`` style path parameters, query parameters
      ``JSESSIONID``, ``PHPSESSID``, ``sessionid``, ``session_id``, ``ASPSESSIONID*``,
      ``CFID``/``CFTOKEN``, and ``sid`` **only when its value looks like a token** (6+
      characters with letters, ``sid=8f3a0001``): a numeric ``sid=12`` is a section id in
      several Chinese CMSs, and the crawler fetches the canonical URL, so dropping a real
      parameter would fetch another page;
    * tracking parameters removed: ``utm_*``, ``spm``, ``fbclid``, ``gclid``, ``msclkid``,
      ``yclid``, ``mc_cid``/``mc_eid``, ``_hsenc``/``_hsmkt``, ``isappinstalled``, ``_``
      with a numeric value (jQuery cache buster) and ``from`` **only when not numeric**
      (``from=singlemessage`` is a WeChat share mark, ``from=20`` is paging); on
      ``mp.weixin.qq.com`` also the WeChat share/session parameters;
    * then :func:`w3lib.url.canonicalize_url` (sorted query, normalised percent-encoding,
      dot segments, no fragment). Query values are never decoded and re-encoded here, so
      GBK percent-escapes (``?q=%D6%D0``) survive intact;
    * ``None`` for anything longer than :data:`MAX_URL_LENGTH` (2048) before or after.

Guesses
    :func:`looks_like_attachment` (file extension or a download script such as VSB's
    ``download.jsp?...DownloadAttachUrl``) and :func:`is_list_page` (conservative: WebPlus
    ``/NNNN/list.htm``/``listN.htm``, VSB ``list.jsp?wbtreeid=``, VSB paging
    ``/column/2.htm``, JSP/ASP ``BigClass.jsp``/``List.jsp``, TRS ``index_N.html``, Hanweb
    ``/col/colN/index.html``). A VSB column page such as ``/xxgk/zsxx.htm`` looks exactly like
    an article, so it is *not* guessed; the spider passes ``expect="list"`` when it knows.

Trap guard (:class:`TrapGuard`)
    Stops crawler traps with budgets rather than guesses about content: a per-pattern
    budget (default 50) where the pattern collapses the digits of *trap-prone* parts —
    calendar and paging parameters, date-like values, calendar directories — so
    ``cal.jsp?y=2031&m=4`` and ``cal.jsp?y=2032&m=1`` share one pattern; at most N
    query-key combinations per path; a maximum path depth (12); no segment sequence
    repeated three times in a row (``/a/b/a/b/a/b``); calendar years outside 1990..next
    year. Article URLs are not pattern-budgeted (see :class:`TrapGuard` for why).
"""

from __future__ import annotations

import posixpath
import re
from collections import Counter
from collections.abc import Iterable
from datetime import UTC, datetime
from functools import lru_cache
from urllib.parse import unquote, urljoin, urlsplit, urlunsplit

from w3lib.url import canonicalize_url

try:  # UTS 46 (IDNA 2008); the stdlib codec (IDNA 2003) is the fallback
    import idna as _idna
except ImportError:  # pragma: no cover
    _idna = None

MAX_URL_LENGTH = 2048
DEFAULT_PORTS = {"http": 80, "https": 443}

#: Extensions of documents and archives linked from disclosure pages.
ATTACHMENT_EXTENSIONS = frozenset(
    {
        ".pdf", ".doc", ".docx", ".xls", ".xlsx", ".ppt", ".pptx", ".zip", ".rar", ".7z",
        ".wps", ".et", ".dps", ".ofd", ".rtf", ".csv",
    }
)

_STRIP_CHARS = " \t\r\n\x00\x0b\x0c\u3000\xa0\ufeff\u200b\u200c\u200d\u2060"
_SCHEME_RE = re.compile(r"^([a-zA-Z][a-zA-Z0-9+.\-]*):")
_HOST_RE = re.compile(r"^[a-z0-9_](?:[a-z0-9_\-]{0,61}[a-z0-9_])?$")
_PATH_SESSION_RE = re.compile(
    r";(?:jsessionid|phpsessid|sessionid|session_id|sid|aspsessionid\w*)=[^/;?#]*", re.I
)
_SESSION_PARAMS = frozenset(
    {"jsessionid", "phpsessid", "sessionid", "session_id", "cfid", "cftoken"}
)
_TRACKING_PARAMS = frozenset(
    {
        "spm", "fbclid", "gclid", "dclid", "msclkid", "yclid", "mc_cid", "mc_eid",
        "_hsenc", "_hsmkt", "igshid", "isappinstalled",
    }
)
_WECHAT_PARAMS = frozenset(
    {
        "chksm", "scene", "subscene", "sessionid", "clicktime", "enterid", "ascene",
        "devicetype", "version", "nettype", "lang", "exportkey", "pass_ticket", "wx_header",
        "key", "uin", "poc_token", "share_token",
    }
)
_TOKEN_RE = re.compile(r"^(?=.*[A-Za-z])[A-Za-z0-9\-_.!*]{6,}$")


def _clean_input(url: str) -> str:
    url = url.strip(_STRIP_CHARS)
    url = url.replace("\t", "").replace("\r", "").replace("\n", "")
    # Backslashes before the query are path separators for browsers (special schemes).
    cut = min((i for i in (url.find("?"), url.find("#")) if i >= 0), default=len(url))
    if "\\" in url[:cut]:
        url = url[:cut].replace("\\", "/") + url[cut:]
    return url


#: Every link of a page is resolved against the same base (pure: safe to cache; bases are
#: page URLs, at most MAX_URL_LENGTH or so, or the canonicalize cache's bounded arguments).
_clean_base = lru_cache(maxsize=256)(_clean_input)


@lru_cache(maxsize=4096)  # a crawl sees few hosts, each on every link (pure: safe to cache)
def _encode_host(host: str) -> str | None:
    """Lower-case, IDN-encoded host, or None when it is not a valid host name."""
    host = host.strip().rstrip(".").lower()
    if not host:
        return None
    if host.startswith("["):  # IPv6 literal, already validated by urlsplit
        return host if host.endswith("]") else None
    if "%" in host:
        try:
            host = unquote(host, errors="strict")
        except UnicodeDecodeError:
            return None
    if not host.isascii():
        try:
            if _idna is not None:
                host = _idna.encode(host, uts46=True).decode("ascii")
            else:  # pragma: no cover
                host = host.encode("idna").decode("ascii")
        except (UnicodeError, ValueError):
            return None
    host = host.rstrip(".")
    if not host or len(host) > 253:
        return None
    labels = host.split(".")
    if _ipv4_number(labels[-1]) is not None:
        return _ipv4_host(labels)
    if any(not _HOST_RE.match(label) for label in labels):
        return None
    return host


def _ipv4_number(label: str) -> int | None:
    """A host label read as a WHATWG IPv4 number (decimal, 0-led octal, 0x hex), or None."""
    if label[:2].lower() == "0x":
        digits, radix = label[2:], 16
    elif len(label) > 1 and label.startswith("0"):
        digits, radix = label[1:], 8
    else:
        digits, radix = label, 10
    if not digits:
        return 0 if radix != 10 else None
    try:
        return int(digits, radix) if digits.isascii() and digits.isalnum() else None
    except ValueError:
        return None


def _ipv4_host(labels: list[str]) -> str | None:
    """The dotted quad a host ending in a number denotes (``2130706433``, ``0x7f.1``), or None.

    As the WHATWG URL standard (and so browsers) parse hosts: a host whose last label is a
    number is an IPv4 address or no host at all (``a.0``). Done here, not left to w3lib,
    which keeps such hosts as written up to 2.5 and rewrites them from 2.6.
    """
    numbers = [_ipv4_number(label) for label in labels]
    if len(numbers) > 4 or any(n is None for n in numbers):
        return None
    *parts, last = numbers
    if any(n > 255 for n in parts) or last >= 256 ** (5 - len(numbers)):
        return None
    value = last
    for index, part in enumerate(parts):
        value += part * 256 ** (3 - index)
    return ".".join(str((value >> shift) & 255) for shift in (24, 16, 8, 0))


def _keep_param(key_raw: str, value_raw: str, wechat: bool) -> bool:
    key = unquote(key_raw).strip().lower()
    if key.startswith("utm_") or key in _TRACKING_PARAMS or key in _SESSION_PARAMS:
        return False
    if key.startswith("aspsessionid"):
        return False
    if key == "sid" and _TOKEN_RE.match(unquote(value_raw)) and not value_raw.isdigit():
        return False
    if key == "from" and not value_raw.strip().isdigit():
        return False
    if key == "_" and value_raw.isdigit():
        return False
    if wechat and (key in _WECHAT_PARAMS or key.startswith("sharer_") or key == "from"):
        return False
    return True


def _filter_query(query: str, host: str) -> str:
    if not query:
        return ""
    wechat = host == "mp.weixin.qq.com"
    kept = []
    for piece in query.split("&"):
        if not piece:
            continue
        key, _, value = piece.partition("=")
        if _keep_param(key, value, wechat):
            kept.append(piece)
    return "&".join(kept)


def canonicalize(url: str, base: str | None = None, *, encoding: str | None = None) -> str | None:
    """The canonical http(s) form of ``url`` (resolved against ``base``), or None.

    ``encoding`` is the linking page's encoding, used (as browsers do) to percent-encode
    raw non-ASCII characters in the query; the path is always UTF-8.
    """
    try:
        if len(url) + len(base or "") <= _CACHEABLE:
            return _canonicalize_cached(url, base, encoding)
    except TypeError:  # unhashable or odd arguments: not cacheable, take the plain path
        pass
    return _canonicalize_safe(url, base, encoding)


def _canonicalize_safe(url: str, base: str | None, encoding: str | None) -> str | None:
    try:
        return _canonicalize(url, base, encoding)
    except (ValueError, UnicodeError, TypeError, LookupError):
        return None


#: A page's links are canonicalized several times each (link extraction, scope, redirect
#: checks in the classifier) and nav links repeat on every page: a pure function of
#: strings, so a bounded cache is safe and saves most of the work.
#: Only ordinary-sized arguments are kept (a hostile page's megabyte data: URIs are not),
#: which bounds the cache to a few megabytes.
_canonicalize_cached = lru_cache(maxsize=8192)(_canonicalize_safe)
_CACHEABLE = 2 * MAX_URL_LENGTH


def _canonicalize(url: str, base: str | None, encoding: str | None) -> str | None:
    if not isinstance(url, str):
        return None
    url = _clean_input(url)
    if not url or len(url) > MAX_URL_LENGTH:
        return None
    match = _SCHEME_RE.match(url)
    if match and match.group(1).lower() not in DEFAULT_PORTS:
        return None
    if base:
        base_c = _clean_base(base)
        base_match = _SCHEME_RE.match(base_c)
        if not base_match or base_match.group(1).lower() not in DEFAULT_PORTS:
            if not match:
                return None
        else:
            url = urljoin(base_c, url)
    elif not match:
        return None
    # What follows depends on the absolute URL alone: cached on it, so a link reached
    # from many pages (navigation, each page relative to its own base) and the
    # classifier's re-canonicalization of an already absolute URL share one computation.
    if len(url) <= _CACHEABLE:
        try:
            return _canonical_absolute_cached(url, encoding)
        except TypeError:  # an unhashable encoding: not cacheable
            pass
    return _canonical_absolute(url, encoding)


def _canonical_absolute(url: str, encoding: str | None) -> str | None:
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS or not parts.netloc:
        return None
    netloc = parts.netloc
    userinfo, _, hostport = netloc.rpartition("@")
    if hostport.startswith("["):
        end = hostport.find("]")
        if end < 0:
            return None
        host_raw, port_raw = hostport[: end + 1], hostport[end + 1:]
        if port_raw and not port_raw.startswith(":"):
            return None
        port_raw = port_raw[1:]
    else:
        host_raw, _, port_raw = hostport.partition(":")
    host = _encode_host(host_raw)
    if host is None:
        return None
    port: int | None = None
    if port_raw:
        if not port_raw.isascii() or not port_raw.isdigit():
            return None
        port = int(port_raw)
        if not 0 < port <= 65535:
            return None
        if port == DEFAULT_PORTS[scheme]:
            port = None
    netloc = host if port is None else f"{host}:{port}"
    if userinfo:
        netloc = f"{userinfo}@{netloc}"
    path = _PATH_SESSION_RE.sub("", parts.path) or "/"
    query = _filter_query(parts.query, host)
    rebuilt = urlunsplit((scheme, netloc, path, query, ""))
    out = canonicalize_url(rebuilt, keep_fragments=False, encoding=encoding)
    # canonicalize_url may percent-encode a userinfo or path differently on a second pass;
    # run it to a fixed point (twice is always enough in practice, bounded here). When the
    # first pass (same arguments as the second) changed nothing, it is a fixed point already.
    for _ in range(0 if out == rebuilt and not encoding else 3):
        again = canonicalize_url(out, keep_fragments=False)
        if again == out:
            break
        out = again
    if len(out) > MAX_URL_LENGTH:
        return None
    check = urlsplit(out)
    if check.scheme not in DEFAULT_PORTS or not check.hostname:
        return None
    return out


_canonical_absolute_cached = lru_cache(maxsize=8192)(_canonical_absolute)


def host_of(url: str) -> str:
    """The lower-case (punycode) host of ``url``; '' when it has none or is malformed."""
    try:
        if len(url) <= _CACHEABLE:
            return _host_of_cached(url)
    except TypeError:  # unhashable or odd arguments: not cacheable
        pass
    return _host_of(url)


def _host_of(url: str) -> str:
    try:
        host = urlsplit(_clean_input(url)).hostname or ""
    except (ValueError, TypeError, AttributeError):
        return ""
    if host.startswith("[") or ":" in host:
        return host
    return _encode_host(host) or ""


#: in_scope() asks for the host of every link of every page (pure, so cached).
_host_of_cached = lru_cache(maxsize=8192)(_host_of)


@lru_cache(maxsize=1024)
def _normalize_domain(domain: str) -> str:
    domain = domain.strip().lower()
    if "://" in domain:
        domain = host_of(domain)
    domain = domain.split("/", 1)[0].split(":", 1)[0].lstrip(".")
    return _encode_host(domain) or domain


def in_scope(url: str, allowed_domains: list[str] | tuple[str, ...] | set[str] | frozenset[str]) -> bool:
    """True when the host of ``url`` is an allowed domain or a subdomain of one."""
    host = host_of(url)
    if not host:
        return False
    for domain in allowed_domains:
        d = _normalize_domain(domain)
        if d and (host == d or host.endswith("." + d)):
            return True
    return False


_DOWNLOAD_SCRIPT_RE = re.compile(
    r"^(?:down(?:load)?(?:_?file)?|attach(?:ment)?(?:_?download)?|getfile|file_?down(?:load)?|"
    r"downfile|download_?attach\w*)\.(?:jsp|asp|aspx|php|do|action|ashx|cgi)$",
    re.I,
)


def attachment_extension(url: str) -> str | None:
    """The attachment extension (``.pdf``...) of the URL's path or of a file-name parameter."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    last = unquote(parts.path.rsplit("/", 1)[-1]).lower()
    ext = posixpath.splitext(last)[1]
    if ext in ATTACHMENT_EXTENSIONS:
        return ext
    for piece in parts.query.split("&"):
        value = unquote(piece.partition("=")[2]).lower().rstrip()
        ext = posixpath.splitext(value.rsplit("/", 1)[-1])[1]
        if ext in ATTACHMENT_EXTENSIONS:
            return ext
    return None


def looks_like_attachment(url: str) -> bool:
    """True for document/archive URLs: by extension, or a download script with a query
    (VSB ``download.jsp?urltype=news.DownloadAttachUrl&...``, ``DownLoad.asp?id=3``)."""
    if attachment_extension(url):
        return True
    try:
        parts = urlsplit(url)
    except ValueError:
        return False
    last = unquote(parts.path.rsplit("/", 1)[-1])
    if _DOWNLOAD_SCRIPT_RE.match(last) and parts.query:
        return True  # a bare /download.jsp is usually a 下载中心 page, not a file
    return "downloadattachurl" in url.lower()


_LIST_PATTERNS = [
    # WebPlus: /2751/list.htm, /xxgk/list2.htm, /_s12/2751/list.psp
    re.compile(r"/[^/]+/list\d*\.(?:htm|html|shtml|psp|jsp)$", re.I),
    # VSB paging of a static column page: /xxgk/zsxx/2.htm (column dir, small page number)
    re.compile(r"/(?!info/)[a-z][a-z0-9_]*/\d{1,3}\.htm$", re.I),
    # JSP/ASP list scripts
    re.compile(
        r"/(?:big|small)?class\.(?:jsp|asp|aspx|php)$|/(?:news|article|info|art)?_?list\.(?:jsp|asp|aspx|php|do|action)$",
        re.I,
    ),
    # TRS paging, Hanweb columns
    re.compile(r"/index_\d+\.s?html?$", re.I),
    re.compile(r"/col/col\d+/index\.html?$", re.I),
]


def is_list_page(url: str) -> bool:
    """A conservative guess that ``url`` is a list/column page (see module docstring)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return False
    path = parts.path
    if any(p.search(path) for p in _LIST_PATTERNS):
        return True
    lower = url.lower()
    return path.lower().endswith("list.jsp") and ("wbtreeid=" in lower or "treetempurl" in lower)


# --------------------------------------------------------------------------- trap guard

_DIGITS_RE = re.compile(r"\d+")
_CALENDAR_KEY_RE = re.compile(
    r"^(?:year|yr|y|month|mon|m|day|d|date|dt|ym|ymd|yyyymm|yyyymmdd|nian|yue|ri|riqi|rq|"
    r"calendar|cal|caldate|week|start_?date|end_?date|begin_?date|time|t)$",
    re.I,
)
#: One-letter calendar keys are also what CMSs call a column or a type (``list.asp?t=4``):
#: calendar keys only beside a year (``?y=2021&m=4``) or with a date-like value.
_AMBIGUOUS_CALENDAR_KEY_RE = re.compile(r"^[ymdt]$", re.I)
_YEAR_VALUE_RE = re.compile(r"^(?:1[89]|2\d)\d{2}$")
_PAGING_KEY_RE = re.compile(
    r"^(?:page|pages|pageno|page_no|pagenum|pagenumber|pageindex|page_index|pn|p|pg|curpage|"
    r"currentpage|current|cpage|start|offset|begin|startrecord|startrow)$",
    re.I,
)
_ID_KEY_RE = re.compile(r"id$|^id|code|no$|num", re.I)
_DATE_VALUE_RE = re.compile(
    r"^(?:1[89]|2\d)\d{2}(?:[-/.年]\d{1,2}(?:[-/.月]\d{1,2}日?)?|(?:0[1-9]|1[0-2])(?:[0-3]\d)?)$"
)
_CALENDAR_DIR_RE = re.compile(r"^(?:calendar|cal|rili|riqi|date|dates|archives?|日历|校历)$", re.I)
_YEAR_RE = re.compile(r"(?<!\d)(\d{4})(?:\d{2}|\d{4})?(?!\d)|(?<!\d)(\d{4})(?=[-/年.])")


def _calendar_key(key: str, value: str, beside_year: bool) -> bool:
    """Whether ``key`` (unquoted) names a calendar field here (see _AMBIGUOUS_CALENDAR_KEY_RE)."""
    if not _CALENDAR_KEY_RE.match(key):
        return False
    return not _AMBIGUOUS_CALENDAR_KEY_RE.match(key) or beside_year or bool(_DATE_VALUE_RE.match(unquote(value)))


def _has_year(query: str) -> bool:
    """A query with a year in a calendar key (``year=2021``, ``y=2021``): its one-letter
    keys are calendar fields."""
    for piece in query.split("&"):
        key, _, value = piece.partition("=")
        if _CALENDAR_KEY_RE.match(unquote(key)) and (_YEAR_VALUE_RE.match(unquote(value))
                                                     or _DATE_VALUE_RE.match(unquote(value))):
            return True
    return False


def _trap_param(key: str, value: str, beside_year: bool = True) -> bool:
    """A query parameter whose values can run forever: calendar fields, paging, dates."""
    key = unquote(key)
    if _calendar_key(key, value, beside_year) or _PAGING_KEY_RE.match(key):
        return True
    return not _ID_KEY_RE.search(key) and bool(_DATE_VALUE_RE.match(unquote(value)))


class TrapGuard:
    """Per-crawl budgets that end crawler traps; ``allow(url)`` records and decides.

    Refusal reasons (counted in ``denied``): ``depth`` (more than ``max_depth`` path
    segments), ``repeated-segments`` (a run of segments repeated more than ``max_repeats``
    times in a row: ``/xxgk/xxgk/xxgk/``, ``/a/b/a/b/a/b``), ``calendar-range`` (a calendar
    parameter or calendar directory with a year outside ``min_year..max_year``),
    ``query-variants`` (more than ``max_query_variants`` different sets of query keys on
    one path) and ``pattern-budget`` (more than ``per_pattern`` URLs of one pattern).

    The pattern of a URL collapses the digits of its *trap-prone* parts only — calendar
    and paging parameters (``year``, ``month``, ``date``, ``page``, ``pageNo``, ``start``...),
    date-like values (``2021-05``, ``20210501``) and segments under a calendar directory —
    so ``calendar.jsp?year=2031&month=4`` and ``...year=2032&month=1`` share a pattern while
    ``BigClass.jsp?id=71&page=N`` keeps one pattern per column. Item URLs
    (``/info/1021/1234.htm``, ``ShowArticle.jsp?id=201``, WebPlus ``.../c2585a300001/
    page.htm``) have no trap-prone part and no pattern budget: collapsing *all* digits
    would put every article of a site under one budget of 50, and the site's page budget
    (``max_pages``) already bounds them. A URL seen before is always allowed again.

    ``known_traps`` are calendar patterns (see :meth:`calendar_pattern`) whose budget ran
    out in the site's previous crawl: a recrawl gives them ``revisit_budget`` URLs instead
    of ``per_pattern``. Their members are interchangeable generated pages (one month of a
    calendar without validators is re-sent in full every crawl); revisiting a few keeps
    the family checked without re-downloading fifty of them each time. Paging patterns
    keep their full budget: deeper list pages lead to older articles.

    A paging pattern alone (``BigClass.jsp?id=71&page=N``, ``?pageNum=N``) gets
    ``paging_budget`` URLs, not ``per_pattern``: a column's sixtieth list page is as real as
    its first (old articles, where dead links pile up, are beyond page 50), and a list ends
    where its pages stop linking a next one; ``max_pages`` still bounds the site.
    """

    def __init__(
        self,
        per_pattern: int = 50,
        *,
        paging_budget: int = 500,
        max_depth: int = 12,
        max_query_variants: int = 20,
        max_repeats: int = 2,
        min_year: int = 1990,
        max_year: int | None = None,
        known_traps: Iterable[str] = (),
        revisit_budget: int = 10,
    ) -> None:
        self.per_pattern = per_pattern
        self.paging_budget = max(paging_budget, per_pattern)
        self.known_traps = frozenset(known_traps)
        self.revisit_budget = min(revisit_budget, per_pattern)
        self.max_depth = max_depth
        self.max_query_variants = max_query_variants
        self.max_repeats = max_repeats
        self.min_year = min_year
        self.max_year = max_year if max_year is not None else datetime.now(UTC).year + 1
        self._seen: set[str] = set()
        self._patterns: Counter[str] = Counter()
        self._query_keys: dict[str, set[tuple[str, ...]]] = {}
        self.denied: Counter[str] = Counter()

    @staticmethod
    def _collapse(url: str) -> tuple[str | None, bool]:
        """(:meth:`pattern` of ``url``, whether a calendar part, not paging alone, made it)."""
        parts = urlsplit(url)
        trap = calendar = False
        segments = parts.path.split("/")
        for i in range(1, len(segments)):
            if _CALENDAR_DIR_RE.match(segments[i - 1]) or (
                i > 1 and _CALENDAR_DIR_RE.match(segments[i - 2]) and segments[i - 1].isdigit()
            ):
                if _DIGITS_RE.search(segments[i]):
                    segments[i] = _DIGITS_RE.sub("0", segments[i])
                    trap = calendar = True
        pieces = []
        beside_year = _has_year(parts.query)
        for piece in parts.query.split("&"):
            if not piece:
                continue
            key, _, value = piece.partition("=")
            if _trap_param(key, value, beside_year) and _DIGITS_RE.search(value):
                piece = f"{key}={_DIGITS_RE.sub('0', value)}"
                trap = True
                calendar = calendar or not _PAGING_KEY_RE.match(unquote(key))
            pieces.append(piece)
        if not trap:
            return None, False
        return f"{parts.hostname or ''}{'/'.join(segments)}?{'&'.join(sorted(pieces))}", calendar

    @classmethod
    def pattern(cls, url: str) -> str | None:
        """The URL with the digits of its trap-prone parts collapsed; None when it has none."""
        return cls._collapse(url)[0]

    @classmethod
    def calendar_pattern(cls, url: str) -> str | None:
        """The pattern of ``url`` when a calendar part makes it trap-prone (a calendar or
        date parameter, a date-like value, a calendar directory), else None: paging alone
        (``page=N``) is not a calendar."""
        pattern, calendar = cls._collapse(url)
        return pattern if calendar else None

    @classmethod
    def calendar_patterns(cls, urls: Iterable[str]) -> frozenset[str]:
        """The calendar patterns of ``urls`` (the guard's refusals of a previous crawl): its
        ``known_traps``."""
        return frozenset(pattern for url in urls if (pattern := cls.calendar_pattern(url)))

    def budget_for(self, pattern: str, *, calendar: bool = True) -> int:
        """How many URLs of ``pattern`` this crawl may visit (``calendar``: not paging alone)."""
        if pattern in self.known_traps:
            return self.revisit_budget
        return self.per_pattern if calendar else self.paging_budget

    def budget_of(self, url: str) -> tuple[str | None, int]:
        """(:meth:`pattern` of ``url``, how many URLs of it this crawl may visit)."""
        pattern, calendar = self._collapse(url)
        return pattern, (self.budget_for(pattern, calendar=calendar) if pattern is not None else 0)

    def _repeated(self, segments: list[str]) -> bool:
        """True when some run of segments repeats more than ``max_repeats`` times in a row."""
        limit = self.max_repeats + 1
        n = len(segments)
        for period in range(1, n // limit + 1):
            for i in range(n - limit * period + 1):
                block = segments[i:i + period]
                if all(segments[i + k * period:i + (k + 1) * period] == block for k in range(1, limit)):
                    return True
        return False

    def _out_of_range(self, text: str) -> bool:
        for match in _YEAR_RE.finditer(text):
            year = int(match.group(1) or match.group(2))
            if not self.min_year <= year <= self.max_year:
                return True
        return False

    def _calendar_out_of_range(self, segments: list[str], query: str) -> bool:
        for piece in query.split("&"):
            key, _, value = piece.partition("=")
            if _CALENDAR_KEY_RE.match(unquote(key)) or (
                not _ID_KEY_RE.search(unquote(key)) and _DATE_VALUE_RE.match(unquote(value))
            ):
                if self._out_of_range(unquote(value)):
                    return True
        for i in range(1, len(segments)):
            if _CALENDAR_DIR_RE.match(segments[i - 1]) and self._out_of_range(segments[i]):
                return True
        return False

    def check(self, url: str) -> str | None:
        """The reason ``url`` would be refused, or None when it is allowed (records it)."""
        if url in self._seen:
            return None
        try:
            parts = urlsplit(url)
        except ValueError:
            return "malformed"
        segments = [s for s in parts.path.split("/") if s]
        if len(segments) > self.max_depth:
            return "depth"
        if self._repeated(segments):
            return "repeated-segments"
        if self._calendar_out_of_range(segments, parts.query):
            return "calendar-range"
        path_key = f"{parts.hostname or ''}{parts.path}"
        keys = tuple(sorted({q.partition("=")[0] for q in parts.query.split("&") if q}))
        variants = self._query_keys.setdefault(path_key, set())
        if keys not in variants and len(variants) >= self.max_query_variants:
            return "query-variants"
        pattern, budget = self.budget_of(url)
        if pattern is not None and self._patterns[pattern] >= budget:
            return "pattern-budget"
        variants.add(keys)
        if pattern is not None:
            self._patterns[pattern] += 1
        self._seen.add(url)
        return None

    def refuse(self, url: str) -> str | None:
        """Why ``url`` is refused (counted in ``denied``), or None when it may be crawled."""
        reason = self.check(url)
        if reason is not None:
            self.denied[reason] += 1
        return reason

    def allow(self, url: str) -> bool:
        """True when ``url`` may be crawled; a refusal is counted in ``denied``."""
        return self.refuse(url) is None
