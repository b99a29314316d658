"""Soft 404s: pages that answer 200 but say, or show, that the linked content is gone.

A false "dead" costs a watchdog its credibility, so every test here asks for the
not-found wording to be *the page's message*, not a word somewhere in a page:

* **title** — a title segment (split on ``-``, ``|``, ``_``, ``—``...) that *is* a
  not-found phrase (the phrase covers at least half of the segment: "页面不存在 - XX大学"
  yes, "关于'页面不存在'问题的整改说明" no; a notice-like title "关于...的通知——旧版页面
  已下线" is judged whole) or is just "404"; and the page has no content of its own (at
  most 400 characters of non-link text outside footer lines and headings, no block over
  50);
* **message** — a heading (its own words, not a linked list entry), a short block (at most
  60 characters, of which the phrase is at least a quarter) or an ``alert()`` text (only on
  pages showing at most 200 characters) carrying a not-found phrase, on a page whose
  *other* non-link content is small (at most 400 characters outside footer lines, no other
  block over 50 characters). A long article quoting "页面不存在" in a paragraph, a
  sentence such as "当用户访问的页面不存在时，系统将给出明确提示", or a short notice with
  real paragraphs never qualifies;
* **blank** — nothing visible at all (no text, no script, no image, frame or embed);
* **home redirect** — a deep link that was redirected to a home page (a start URL of the
  site or ``/``, ``/index.htm(l)``, ``/main.htm``, ``/index.jsp``, ``/default.aspx``...).
  Not when the link itself is a home page; not when the link is an *entry page* by name
  (``index``/``default``/``main``/``home``/``portal``/``xxgk*``/``zwgk``, at most two
  segments deep: ``/old/xxgk.htm``, ``/xxgk/index.htm``) and lands on one of the site's
  start URLs (an old entry point moved to the new portal); not when a *directory* link
  (``/xxgk/``) moved to the root of another host (a section that became its own site); not
  when the home page is on a host that is neither the link's nor one of the site's start
  URLs' (a redirect link to another site's home page, 学校主页 or 教育部);
* **error-page redirect** — redirected to ``/404.html``, ``/error.jsp``, ``notfound.htm``,
  ``...?aspxerrorpath=``;
* **probe** — :class:`SiteProbe` compares the page with the site's answer to a random
  non-existent URL from :func:`probe_url` (Bar-Yossef, Broder, Kumar and Tomkins, "Sic
  transit gloria telae", WWW 2004): the same redirect target, or the same title and nearly
  the same visible text (4-character shingles of non-link text with digits and URLs
  normalised; Jaccard >= 0.9 and at most ``5 + 2 %`` shingles of its own).

Phrases (matched without whitespace; English case-insensitively): "(您访问的)页面/文章/
信息/内容/栏目/文件/记录... 不存在 / 已(被)删除 / 已下架 / 已失效 / 未发布 / 找不到 / 未找到 /
走丢了", "找不到(该)页面", "无此信息", "信息ID不存在", "参数错误/非法参数", "该页无法显示", "404 Not Found", "Page not found",
"HTTP Status 404", "The resource cannot be found", "the page you requested could not be
found", "No such file"...
"""

from __future__ import annotations

import posixpath
import random
import re
import string
import zlib
from dataclasses import dataclass, field
from functools import lru_cache
from urllib.parse import urlsplit, urlunsplit

from crawler.decode import decode_body, sniff_kind
from crawler.fetch import Fetch
from crawler.htmlparse import PageInfo, analyze, dense_len
from crawler.urls import canonicalize, host_of

_OBJ = (
    r"(?:页面|网页|文章|信息|内容|新闻|栏目|频道|文件|附件|资源|链接|记录|数据|稿件|公告|通知|"
    r"地址|网址|url|资料|主题|帖子)"
)
_FILL = r"(?:暂时|可能|或者?|已经?|也许|或已|或已经|或者已|已被管理员|可能已)*"
_GONE = (
    r"(?:不存在|已?(?:经)?(?:被)?(?:删除|移除|撤销|撤回|下线|下架|关闭|失效|过期|屏蔽|删掉)了?|未发布|"
    r"无法(?:找到|访问|显示)|找不到|未找到|没有找到|不见了|走丢了|丢失了|飞走了|迷路了|去火星了|出错了)"
)
CJK_PATTERNS: tuple[re.Pattern[str], ...] = tuple(
    re.compile(p, re.I)
    for p in (
        rf"(?:(?:您|你)?所?要?(?:访问|请求|查看|浏览|查找|打开|查询)的)?{_OBJ}{_FILL}{_GONE}(?:[,，]?(?:或|或者|也可能){_FILL}{_GONE})*",
        rf"(?:找不到|无法找到|未能找到|未找到|没有找到|查无|无此|没有此|没有该)(?:该|此|您|你)?(?:要|所)?"
        rf"(?:访问|请求|查找|浏览|查看|需要)?的?{_OBJ}",
        r"参数(?:错误|有误|不正确|非法|无效|异常|不合法)|(?:非法|无效|错误)的?参数",
        r"(?:文章|信息|新闻|栏目)(?:id|编号)(?:错误|有误|不正确|无效|不存在)",
        r"该页无法显示|无法显示(?:此|该)?(?:网)?页",
    )
)
EN_PATTERNS: tuple[re.Pattern[str], ...] = tuple(
    re.compile(p, re.I)
    for p in (
        r"\b(?:page|file|document|article|resource|url|object|item|content|post)\s+(?:was\s+)?not\s+found\b",
        r"\b(?:404|410)\b\s*[-:–—|.]?\s*(?:not\s+found|gone|error|page\s+not\s+found|file\s+not\s+found)",
        r"\berror\s*[:#]?\s*404\b|\bhttp\s*(?:status|error)?\s*[:#]?\s*404\b",
        r"\bthe\s+(?:requested\s+)?(?:page|url|resource|file|document|article)\b[^.]{0,60}?\b"
        r"(?:could\s+not\s+be\s+found|cannot\s+be\s+found|can't\s+be\s+found|does\s+not\s+exist|"
        r"doesn't\s+exist|was\s+not\s+found|is\s+no\s+longer\s+available|has\s+been\s+removed)",
        r"\bno\s+such\s+(?:page|file|article|document)\b",
        r"\bpage\s+(?:does\s+not|doesn't)\s+exist\b",
        r"^\s*not\s+found\s*[.!]?\s*$",
    )
)
_GONE_RE = re.compile(_GONE, re.I)
#: Any character an EN_PATTERNS letter can match under re.I (with its non-ASCII folds).
_LATIN_RE = re.compile(r"[a-z\u0130\u0131\u017f\u212a]", re.I)
_TITLE_404_RE = re.compile(r"^(?:http)?(?:错误|error|status)?404(?:错误|error|页面|page|notfound|-notfound)?$", re.I)
_TITLE_SPLIT_RE = re.compile(r"\s[-_|·:]\s|[|｜—–_]+|\s-|-\s|::|：")
_TITLE_FILLER_RE = re.compile(
    r"404|410|错误|提示|信息提示|系统提示|温馨提示|抱歉|对不起|很抱歉|您好|sorry|oops|error|http|[^\w]", re.I
)
_FOOTER_RE = re.compile(
    r"版权|copyright|©|备案|icp|技术支持|地址[:：]|电话[:：]|邮编|e-?mail|传真|powered|访问量|"
    r"浏览次数|联系我们|主办|承办|维护|公网安备|建议使用|分辨率", re.I
)
MESSAGE_MAX = 60
MESSAGE_COVERAGE = 0.25
OTHER_CONTENT_MAX = 400
OTHER_BLOCK_MAX = 50
TITLE_OTHER_MAX = 400
TITLE_BLOCK_MAX = 50
ALERT_PAGE_MAX = 200


def find_phrase(text: str) -> str | None:
    """The first not-found phrase in ``text`` (whitespace ignored for Chinese), or None."""
    # Cached for short texts: the soft-404 rules ask about each block several times per
    # page, and template blocks (navigation, footer lines) repeat on every page of a site.
    if isinstance(text, str) and len(text) <= 1000:
        return _find_phrase_cached(text)
    return _find_phrase(text)


#: ``_GONE`` without its optional parts (已/经/被 before a verb, 了 after it): it matches
#: somewhere exactly when ``_GONE_RE`` does, and is several times faster to search.
_GONE_CORE_RE = re.compile(
    r"不存在|删除|移除|撤销|撤回|下线|下架|关闭|失效|过期|屏蔽|删掉|未发布|无法(?:找到|访问|显示)|找不到|未找到|没有找到|"
    r"不见了|走丢了|丢失了|飞走了|迷路了|去火星了|出错了",
    re.I,
)
_WS_RE = re.compile(r"\s+")


def _find_phrase(text: str) -> str | None:
    dense = _WS_RE.sub("", text)
    # Cheap necessary conditions first (most blocks fail them), in pattern order: the first,
    # slowest pattern cannot match without a _GONE word, each other CJK one without one of
    # its literal words.
    cjk1, cjk2, cjk3, cjk4, cjk5 = CJK_PATTERNS
    for pattern, possible in (
        (cjk1, _GONE_CORE_RE.search(dense) is not None),
        (cjk2, "找" in dense or "查无" in dense or "无此" in dense or "没有" in dense),
        (cjk3, "参数" in dense),
        (cjk4, "误" in dense or "不正确" in dense or "无效" in dense or "不存在" in dense),
        (cjk5, "无法显示" in dense),
    ):
        if possible:
            match = pattern.search(dense)
            if match:
                return match.group(0)
    # No English pattern matches without a Latin letter, nor without its word in lower case
    # (none of these words holds i, k or s, which re.I also matches with non-ASCII letters).
    if not _LATIN_RE.search(text):
        return None
    lower = text.lower()
    en1, en2, en3, en4, en5, en6, en7 = EN_PATTERNS
    for pattern, possible in (
        (en1, "found" in lower),
        (en2, "404" in lower or "410" in lower),
        (en3, "404" in lower),
        (en4, "the" in lower),
        (en5, "no" in lower),
        (en6, "page" in lower),
        (en7, "found" in lower),
    ):
        if possible:
            match = pattern.search(text)
            if match:
                return match.group(0)
    return None


_find_phrase_cached = lru_cache(maxsize=4096)(_find_phrase)


_NOTICE_TITLE_RE = re.compile(r"关于|通知|公告|通报|说明|公示|决定|办法|报告|简介|新闻|动态")


def title_says_not_found(title: str) -> str | None:
    """The title segment that *is* a not-found message, or None.

    A title that reads like a notice ("关于...的通知——旧版页面已下线") only counts when the
    phrase dominates the whole title, not one of its segments.
    """
    segments = [title] if _NOTICE_TITLE_RE.search(title) else [title, *_TITLE_SPLIT_RE.split(title)]
    for segment in segments:
        segment = segment.strip()
        if not segment:
            continue
        dense = re.sub(r"\s+", "", segment)
        if _TITLE_404_RE.match(dense):
            return segment
        phrase = find_phrase(segment)
        if not phrase:
            continue
        rest = _TITLE_FILLER_RE.sub("", segment)
        core = _TITLE_FILLER_RE.sub("", phrase)
        if len(core) * 2 >= len(rest):
            return segment
    return None


def is_footer_block(block: str) -> bool:
    """A copyright/address/ICP line: template, not content."""
    return len(block) <= 300 and bool(_FOOTER_RE.search(block))


def _other_content(info: PageInfo, message: str | None = None) -> tuple[int, int]:
    """(total, largest block) of the page's non-link text that is not template or message."""
    others = [
        dense_len(b) for b in info.content_blocks
        if b != message and not is_footer_block(b) and not find_phrase(b) and b not in info.headings
    ]
    return sum(others), max(others, default=0)


#: A heading at least this long (dense characters) is an article's title, not a column's name.
ARTICLE_HEADING_MIN = 8


def _notice_heading(info: PageInfo) -> str | None:
    """The page's own notice title (关于...的通知, ...终止公告): a heading of article length
    that reads like a notice, says nothing of its own absence and is (part of) the page's
    title. Its short text ("原公告已撤销", "旧版网页已关闭") is the notice, not a not-found
    message."""
    title = _WS_RE.sub("", info.title)
    for heading in info.headings:
        dense = _WS_RE.sub("", heading)
        if (len(dense) >= ARTICLE_HEADING_MIN and dense in title and _NOTICE_TITLE_RE.search(dense)
                and not find_phrase(heading)):
            return heading
    return None


def message_says_not_found(info: PageInfo) -> tuple[str, str] | None:
    """(kind, text) of a prominent not-found message on a page with little else, or None
    (also when the page is a notice with a title of its own: :func:`_notice_heading`)."""
    if _notice_heading(info) is not None:
        return None
    candidates: list[tuple[str, str]] = [("heading", h) for h in info.headings]
    candidates += [("message", b) for b in info.content_blocks]
    if info.text_len <= ALERT_PAGE_MAX:  # alert() only speaks for pages that show nothing else
        candidates += [("alert", a) for a in info.alerts]
    for kind, text in candidates:
        size = dense_len(text)
        if size > MESSAGE_MAX:
            continue
        phrase = find_phrase(text)
        if not phrase or dense_len(phrase) < MESSAGE_COVERAGE * size:
            continue
        total, largest = _other_content(info, text)
        if total <= OTHER_CONTENT_MAX and largest <= OTHER_BLOCK_MAX:
            return kind, text
    return None


def text_soft404(info: PageInfo) -> tuple[str, str] | None:
    """(rule, detail) when the page's own words say it is not there; None otherwise."""
    if info.title:
        segment = title_says_not_found(info.title)
        if segment:  # the other-content scan reads every block: only when the title speaks
            total, largest = _other_content(info)
            if total <= TITLE_OTHER_MAX and largest <= TITLE_BLOCK_MAX:
                return "soft404-title", f"title {info.title!r}"
    found = message_says_not_found(info)
    if found:
        kind, text = found
        rule = "soft404-alert" if kind == "alert" else "soft404-message"
        return rule, f"{kind} {text[:120]!r}"
    return None


def is_blank(info: PageInfo) -> bool:
    """Nothing at all to see: no text, no script, no image/frame/embed, no meta refresh."""
    return (
        info.text_len == 0 and info.script_count == 0 and not info.has_media and not info.meta_refresh
        and not info.truncated
    )


# --------------------------------------------------------------------------- redirects

HOME_PATHS = frozenset(
    {
        "/", "/index.htm", "/index.html", "/index.shtml", "/index.jsp", "/index.php",
        "/index.asp", "/index.aspx", "/index.do", "/main.htm", "/main.html", "/main.jsp",
        "/main.asp", "/main.aspx", "/default.htm", "/default.html", "/default.asp",
        "/default.aspx", "/default.jsp", "/home.htm", "/home.html", "/index", "/home",
        "/portal", "/portal/",
    }
)
_INDEX_NAME_RE = re.compile(r"^(?:index|default|main|home)\.(?:s?html?|jsp|php|aspx?|do)$", re.I)
_ERROR_PAGE_RE = re.compile(
    r"(?:^|/)(?:40\d|50\d|error|errors|err|errpage|error_?page|errorpage|notfound|not[-_]found|"
    r"page[-_]?not[-_]?found|nopage|no[-_]page|404page|page404|error404|404error|404_error)"
    r"(?:\.[a-z0-9]+)?/?$"
    r"|(?:^|/)(?:404|error|errors|notfound)/(?:index\.[a-z]+)?$",
    re.I,
)


def _canon(url: str | None) -> str | None:
    return canonicalize(url) if url else None


def _bare_host(url: str) -> str:
    host = host_of(url)
    return host[4:] if host.startswith("www.") else host


def is_home_url(url: str, home_urls: tuple[str, ...] | list[str] = ()) -> bool:
    """True for a site's start URL or a root/index path."""
    canon = _canon(url)
    if canon and canon in {_canon(h) for h in home_urls}:
        return True
    try:
        path = urlsplit(url).path or "/"
    except ValueError:
        return False
    return path.lower() in HOME_PATHS


def was_redirected(fetch: Fetch) -> bool:
    """True when the fetch ended at another URL (HTTP redirect, meta refresh, script)."""
    if fetch.redirect_chain:
        return True
    final = fetch.final_url
    if not final or final == fetch.url:  # the usual case: equal strings, equal canonical forms
        return False
    return _canon(final) != _canon(fetch.url)


def _dir_like(url: str) -> bool:
    parts = urlsplit(url)
    if parts.query:
        return False
    last = parts.path.rsplit("/", 1)[-1]
    return not last or _INDEX_NAME_RE.match(last) is not None or "." not in last


_ENTRY_NAME_RE = re.compile(r"^(?:index|default|main|home|portal|xxgk\w{0,4}|zwgk|gk)$", re.I)


def _entry_like(url: str) -> bool:
    """A link whose own name says it is a site's entry page (``/old/xxgk.htm``)."""
    segments = [s for s in urlsplit(url).path.split("/") if s]
    if not segments or len(segments) > 2:
        return not segments
    stem = posixpath.splitext(segments[-1])[0]
    return bool(_ENTRY_NAME_RE.match(stem))


def home_redirect(fetch: Fetch) -> str | None:
    """Evidence that a deep link was sent to a home page, or None (see module docstring)."""
    final = fetch.final_url
    if fetch.is_home_page or not final or not was_redirected(fetch):
        return None
    if is_home_url(fetch.url, fetch.home_urls) or not is_home_url(final, fetch.home_urls):
        return None
    if _canon(final) == _canon(fetch.url):
        return None
    if _entry_like(fetch.url) and _canon(final) in {_canon(h) for h in fetch.home_urls}:
        return None
    final_host = _bare_host(final)
    if final_host == _bare_host(fetch.url):
        return f"deep link redirected to home page {final}"
    # Another host's root is that site's own page (WebPlus "外部链接" /_redirect?... entries
    # answer 302 to 学校主页 or 教育部): only the linking site's portal hosts count as "home".
    if final_host in {_bare_host(h) for h in fetch.home_urls} and not _dir_like(fetch.url):
        return f"deep link redirected to home page {final}"
    return None


def error_redirect(fetch: Fetch) -> str | None:
    """Evidence that the link was redirected to an error page, or None."""
    final = fetch.final_url
    if not final or not was_redirected(fetch):
        return None
    try:
        final_parts = urlsplit(final)
        own_path = urlsplit(fetch.url).path
    except ValueError:
        return None
    if _ERROR_PAGE_RE.search(own_path):
        return None
    if _ERROR_PAGE_RE.search(final_parts.path) or "aspxerrorpath=" in final_parts.query.lower():
        return f"redirected to error page {final}"
    return None


# --------------------------------------------------------------------------- site probe

_URLISH_RE = re.compile(r"(?:https?://|www\.)\S+|/[\w\-./%?=&;]{3,}", re.I)
_DIGIT_RE = re.compile(r"\d+")


def _normalize(text: str) -> str:
    text = _URLISH_RE.sub("", text.lower())
    text = _DIGIT_RE.sub("0", text)
    return re.sub(r"\s+", "", text)


def shingles(text: str, size: int = 4) -> frozenset[int]:
    """Stable hashes of the ``size``-character shingles of normalised ``text``."""
    norm = _normalize(text)
    if not norm:
        return frozenset()
    if len(norm) <= size:
        return frozenset({zlib.crc32(norm.encode("utf-8"))})
    return frozenset(zlib.crc32(norm[i:i + size].encode("utf-8")) for i in range(len(norm) - size + 1))


def _page_of(fetch: Fetch) -> PageInfo:
    if not fetch.body or sniff_kind(fetch.body) not in (None, "html", "xml"):
        return PageInfo()
    text = fetch.text
    if text is None:
        text, _ = decode_body(fetch.body, fetch.headers, fetch.final_url or fetch.url)
    return analyze(text)


def _digest(fetch: Fetch) -> int:
    return zlib.crc32(_normalize(fetch.body.decode("latin-1")).encode("latin-1", "replace"))


def _is_2xx(status: int | None) -> bool:
    return status is not None and 200 <= status < 300


@dataclass(frozen=True)
class SiteProbe:
    """The site's answer to a URL that cannot exist, as a fingerprint to compare pages with."""

    url: str
    status: int | None
    final_url: str | None = None
    title: str = ""
    shingles: frozenset[int] = field(default_factory=frozenset)
    digest: int = 0

    @classmethod
    def from_fetch(cls, fetch: Fetch) -> SiteProbe:
        """Build the probe from the fetch of a :func:`probe_url` URL."""
        info = _page_of(fetch)
        return cls(
            url=fetch.url,
            status=fetch.status,
            final_url=fetch.final_url,
            title=_normalize(info.title),
            shingles=shingles(" ".join(info.content_blocks)),
            digest=_digest(fetch),
        )

    @property
    def redirected(self) -> bool:
        return bool(self.final_url) and _canon(self.final_url) != _canon(self.url)

    @property
    def answers_200(self) -> bool:
        """True when the site answers nonsense URLs with 2xx: soft 404s are possible."""
        return _is_2xx(self.status)

    def matches(self, fetch: Fetch) -> bool:
        """True when ``fetch`` looks like the site's not-found answer (see module docstring)."""
        if fetch.is_home_page or not _is_2xx(fetch.status):
            return False
        own = _canon(fetch.url)
        if self.redirected and fetch.final_url:
            target = _canon(self.final_url)
            if target == _canon(fetch.final_url) and target != own and was_redirected(fetch):
                # an old entry page sent to the portal home says nothing either way
                return not (_entry_like(fetch.url) and is_home_url(fetch.final_url, fetch.home_urls))
        if not self.answers_200:
            return False
        info = _page_of(fetch)
        if _normalize(info.title) != self.title:
            return False
        mine = shingles(" ".join(info.content_blocks))
        if not mine or not self.shingles:
            return not mine and not self.shingles and _digest(fetch) == self.digest
        union = len(mine | self.shingles)
        jaccard = len(mine & self.shingles) / union if union else 1.0
        extra = len(mine - self.shingles)
        return jaccard >= 0.9 and extra <= 5 + 0.02 * len(mine)

    def describe(self) -> str:
        where = f" -> {self.final_url}" if self.redirected else ""
        return f"same as the site's answer to {self.url} ({self.status}{where})"


_LISTISH_STEM_RE = re.compile(r"^(?:list\d*|index(?:_\d+)?|main|default|page|home)$", re.I)


def _token(rng: random.Random, size: int = 6) -> str:
    letters = string.ascii_lowercase
    chars = [rng.choice(string.digits)] + [rng.choice(letters + string.digits) for _ in range(size - 2)]
    chars.append(rng.choice(letters))
    head, tail = chars[0], chars[1:]
    rng.shuffle(tail)
    return head + "".join(tail)


def _random_digits(rng: random.Random, size: int) -> str:
    return str(rng.randrange(10 ** (size - 1), 10 ** size))


def probe_url(site_url: str, seed: str) -> str:
    """A URL in the style of ``site_url`` that cannot exist (deterministic for a seed).

    ``/2751/list.htm`` -> ``/9xk2q7/list.htm``; ``/info/1021/1234.htm`` ->
    ``/info/1021/98237461.htm``; ``?id=12`` -> ``?id=<12 digits>``;
    ``/xxgk/201910/t20191010_123.html`` -> ``/xxgk/201910/t20191010_<8 digits>.html``;
    ``/`` -> ``/<token>.htm``.
    """
    rng = random.Random(f"{seed}|{site_url}")
    parts = urlsplit(site_url)
    path = parts.path or "/"
    query = parts.query
    if query:
        pieces = query.split("&")
        numeric = [i for i, p in enumerate(pieces) if p.partition("=")[2].isdigit()]
        if numeric:
            idish = [i for i in numeric if re.search(r"id$|^id|no$|num", pieces[i].partition("=")[0], re.I)]
            index = (idish or numeric)[-1]
            key = pieces[index].partition("=")[0]
            pieces[index] = f"{key}={_random_digits(rng, 12)}"
            return urlunsplit((parts.scheme, parts.netloc, path, "&".join(pieces), ""))
    dirname, _, name = path.rpartition("/")
    stem, ext = posixpath.splitext(name)
    if stem and _LISTISH_STEM_RE.match(stem) and dirname:
        head, _, parent = dirname.rpartition("/")
        if parent.isdigit() or not re.search(r"\d", parent):
            parent = _token(rng)
        else:
            runs = list(_DIGIT_RE.finditer(parent))
            last = runs[-1]
            parent = parent[:last.start()] + _random_digits(rng, max(8, len(last.group()) + 2)) + parent[last.end():]
        new_path = f"{head}/{parent}/{name}"
    elif stem and re.search(r"\d", stem):
        runs = list(_DIGIT_RE.finditer(stem))
        last = runs[-1]
        new_stem = stem[:last.start()] + _random_digits(rng, max(8, len(last.group()) + 2)) + stem[last.end():]
        new_path = f"{dirname}/{new_stem}{ext}"
    elif stem and not (_LISTISH_STEM_RE.match(stem) and not dirname):
        new_path = f"{dirname}/{_token(rng)}{ext}"
    else:
        new_path = f"{dirname}/{_token(rng)}{ext or '.htm'}"
    return urlunsplit((parts.scheme, parts.netloc, new_path, query, ""))
