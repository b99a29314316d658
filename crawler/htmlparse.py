"""Reading raw HTML the way the classifier needs it: visible text, lists, render hints.

:func:`analyze` returns a :class:`PageInfo`: the title, headings, the *own* text of each
block element (the text nodes whose nearest block ancestor it is, so a message ``<p>`` is
one short block even inside a big template), the visible text length, how much of it sits
inside links (navigation), inline scripts, ``alert()`` messages and a few markers. Text
inside ``script``/``style``/``noscript``/``template``, comments and elements hidden with
``display:none``/``hidden`` is not visible.

:func:`list_entries` finds the entries of a list/column page, returning ``(href, text)``
pairs (``href`` resolved against ``url``) or None when no list container is recognised:

1. WebPlus (博达/Sudy WebPlus): ``#wp_news_wN``, ``ul.news_list`` / ``li.news``,
   ``.wp_article_list``; when a ``portletmode="simpleList"`` window exists, only it counts
   (side windows on a column page are other lists).
2. VSB (博达站群): ``li[id^=line_u]`` items, ``table.winstyleN`` windows, ``ul`` under
   ``.list`` holding ``info/...`` links.
3. Generic: the block (``ul``/``ol``/``table``/``div``/``dl``) holding most linked entries
   that carry a date (``2021-06-01``, ``2021年6月1日``, ``06-01``).
4. Containers named as lists (``ul``/``tbody``/``div`` whose id/class contains ``list``,
   ``lb``, ``liebiao``): their links when they have some, ``[]`` when all are empty; explicit
   zero counts (WebPlus ``em.all_count`` = 0, ``共0条``, ``暂无信息``,
   ``没有任何记录``) give ``[]``.

Paging links (下一页, 尾页, numbers, ``javascript:``) are never entries.

:func:`needs_render` says why a browser should fetch the page again (None when the raw
HTML is enough): ``script-redirect`` (little text, a script assigns ``location`` outside a named function),
``script-only-body`` (scripts that run — external ones, or inline code outside named
functions — but almost no visible text: app shells, cookie scripts),
``scripted-list`` (an empty list container and an inline script that writes HTML or loads
data: ``innerHTML``, ``document.write``, ``$.ajax``, JSON arrays...).
"""

from __future__ import annotations

import re
from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any
from urllib.parse import parse_qsl, urljoin, urlsplit

import lxml.html
from lxml import etree

BLOCK_TAGS = frozenset(
    {
        "html", "body", "div", "p", "td", "th", "li", "dd", "dt", "h1", "h2", "h3", "h4", "h5",
        "h6", "center", "section", "article", "main", "header", "footer", "aside", "nav",
        "table", "tr", "ul", "ol", "dl", "form", "blockquote", "pre", "address", "fieldset",
        "figure", "figcaption", "caption", "br", "hr", "tbody", "thead", "tfoot",
    }
)
_INVISIBLE_TAGS = frozenset(
    {"script", "style", "noscript", "template", "head", "title", "object", "embed", "svg", "math"}
)
_NAV_TAGS = frozenset({"a", "option", "select", "button"})
_MEDIA_TAGS = ("img", "iframe", "frame", "frameset", "embed", "object", "video", "canvas")
_HIDDEN_STYLE_RE = re.compile(r"display\s*:\s*none|visibility\s*:\s*hidden", re.I)
_WS_RE = re.compile(r"\s+")
_ALERT_RE = re.compile(r"""\balert\s*\(\s*(['"])(.*?)(?<!\\)\1""", re.S)
_XML_DECL_RE = re.compile(r"^\s*<\?xml[^>]*\?>", re.I)


def collapse(text: str) -> str:
    """Whitespace (also U+3000 and NBSP) collapsed to single spaces, stripped."""
    return _WS_RE.sub(" ", text).strip()


def dense_len(text: str) -> int:
    """Length of ``text`` without any whitespace (Chinese text has no spaces to count)."""
    return len(_WS_RE.sub("", text))


@dataclass
class PageInfo:
    """What a page shows, from raw HTML (no scripts run)."""

    title: str = ""
    headings: list[str] = field(default_factory=list)     # h1-h4 text outside links
    blocks: list[str] = field(default_factory=list)       # own text of block elements
    content_blocks: list[str] = field(default_factory=list)  # the same without link text
    text: str = ""                                          # all visible text, collapsed
    text_len: int = 0                                       # visible characters, no spaces
    link_text_len: int = 0                                  # of which inside a/option/button
    scripts: list[str] = field(default_factory=list)       # inline script bodies
    script_count: int = 0                                   # inline + src
    alerts: list[str] = field(default_factory=list)        # alert('...') messages
    has_media: bool = False                                 # img/iframe/frame/embed/object/video
    has_password: bool = False
    meta_refresh: str = ""
    #: The parser could not read the whole page (unparsable, or past libxml2's limits):
    #: what is missing is unknown, so the page is never judged blank.
    truncated: bool = False

    @property
    def content_len(self) -> int:
        """Visible characters outside links: the page's own content, not its navigation."""
        return max(0, self.text_len - self.link_text_len)


def parse(html: str) -> Any | None:
    """The lxml document for ``html`` (cached; treat it as read-only), None if unparsable."""
    return _parse_checked(html)[0]


#: ``huge_tree``: libxml2's default limits (256 levels, 10 MB text nodes) cut real pages
#: short (editor output nests deep) and would make them look blank; bodies are already capped
#: by DOWNLOAD_MAXSIZE. Deeper than 2048 levels is still cut: see ``PageInfo.truncated``.
_PARSER = lxml.html.HTMLParser(huge_tree=True)


@lru_cache(maxsize=16)
def _parse_checked(html: str) -> tuple[Any | None, bool]:
    """(document or None, whether libxml2 hit a resource limit: depth 256, 10 MB nodes).

    One parse per page, shared by the classifier and the link extractor (the cache); the
    flag tells :func:`page_links` when this tree is cut short where Scrapy's huge-tree
    parse is not, so that it can fall back to exactly what the spider did before.
    """
    if not html or not html.strip():
        return None, False
    cleaned = _XML_DECL_RE.sub("", html, count=1).replace("\x00", "")
    parser = _PARSER  # named to read its error log
    try:
        root = lxml.html.document_fromstring(cleaned, parser=parser)
    except (etree.ParserError, ValueError):
        return None, True
    limited = any(e.type_name == "ERR_RESOURCE_LIMIT" or "XML_PARSE_HUGE" in e.message
                  for e in parser.error_log)
    return root, limited


#: Elements whose URL the spider follows: ``href`` of a/area, ``src`` of iframe/frame/embed,
#: ``data`` of object, and ``pdfsrc`` (WebPlus' PDF player: often an article's only link to
#: its attachment, an annual report among them).
LINK_XPATH = ("//a[@href] | //area[@href] | //iframe[@src] | //frame[@src] | //embed[@src]"
              " | //object[@data] | //*[@pdfsrc]")
#: A pdf.js viewer page showing ``?file=``: the file is the link (the viewer is a script page
#: that says nothing about it). WebPlus embeds one as /_js/.../pdfjs/web/viewer.html.
_PDF_VIEWER_RE = re.compile(r"(?:^|/)(?:pdfjs/(?:web/)?)?viewer\.html?(?:\?|$)", re.I)


#: Link elements whose text is their anchor (an embedded player's is not).
_TEXT_ANCHORED = frozenset({"a", "area", "iframe", "frame"})


def link_target(attrib: Any) -> str:
    """The URL an element of :data:`LINK_XPATH` links to (a pdf.js viewer's file)."""
    href = (attrib.get("href") or attrib.get("src") or attrib.get("pdfsrc") or attrib.get("data") or "").strip()
    if "file=" in href and _PDF_VIEWER_RE.search(href.split("#", 1)[0]):
        query = urlsplit(href).query
        shown = next((value for key, value in parse_qsl(query, keep_blank_values=True) if key == "file"), "")
        if shown.strip():
            # pdf.js resolves the file against the viewer's own address
            return urljoin(href, shown.strip())
    return href
_LINKS = etree.XPath(LINK_XPATH)
_BASE_HREF = etree.XPath("//base/@href", smart_strings=False)
_STRING = etree.XPath("string(.)", smart_strings=False)


_IMG_ALTS = etree.XPath(".//img/@alt", smart_strings=False)
#: Dots a CMS appends when it cuts a title to fit a box ("2021-2022学年信息公开工作年度...").
_TRUNCATION_MARKS = ("..", "…")
_ANCHOR_MAX = 300


def anchor_text(text: str, title: str = "", alts: Iterable[str] = ()) -> str:
    """A link's anchor: its text, whitespace collapsed, at most 300 characters.

    A visibly truncated text (ending in ``..``, ``...`` or ``…``) gives way to the
    ``title`` attribute when that starts with the visible part or is longer (the CMS keeps
    the full title there); an empty text (an image link) is its ``title``, else the first
    non-empty image ``alt``.
    """
    text = " ".join(text.split())
    title = " ".join(title.split())
    if not text:
        alt = next((a for a in (" ".join(alt.split()) for alt in alts) if a), "")
        return (title or alt)[:_ANCHOR_MAX]
    if title and text.endswith(_TRUNCATION_MARKS):
        # Compare without spaces: CMSs cut and pad titles inconsistently.
        visible = "".join(text.rstrip(".…").split())
        full = "".join(title.split())
        if full != visible and (full.startswith(visible) or len(full) > len(visible)):
            return title[:_ANCHOR_MAX]
    return text[:_ANCHOR_MAX]


#: TRS WCM list pages write their pager with a script: ``createPageHTML(count, current,
#: "index", "html")`` (numbers, or variables set just before: ``var countPage = 3``) links
#: ``index.html``, ``index_1.html`` ... ``index_<count-1>.html``. Real TRS output has no other
#: link to the pages after the first.
_TRS_PAGER_RE = re.compile(r"createPageHTML\s*\(([^()]{0,300})\)")
_JS_NUMBER_VAR_RE = re.compile(r"\b(?:var|let|const)\s+([A-Za-z_$][\w$]{0,40})\s*=\s*(\d{1,6})\s*;?")
_PAGER_NAME_RE = re.compile(r"^[\w.-]{1,100}$")
#: More pages than a real list has: a count past it is noise, not a pager.
_TRS_MAX_PAGES = 2000


def script_paging_links(html: str) -> list[str]:
    """Relative URLs of the list pages a TRS ``createPageHTML`` pager writes (in order)."""
    if "createPageHTML" not in html:
        return []
    numbers = {name: int(value) for name, value in _JS_NUMBER_VAR_RE.findall(html)}
    links: list[str] = []
    for match in _TRS_PAGER_RE.finditer(html):
        args = [a.strip().strip("'\"") for a in match.group(1).split(",")]
        if len(args) < 4 or not (_PAGER_NAME_RE.match(args[2]) and _PAGER_NAME_RE.match(args[3])):
            continue
        count = int(args[0]) if args[0].isdigit() else numbers.get(args[0])
        if count is None or not 1 < count <= _TRS_MAX_PAGES:
            continue
        prefix, ext = args[2], args[3]
        links += [f"{prefix}.{ext}", *(f"{prefix}_{n}.{ext}" for n in range(1, count))]
        if len(links) >= _TRS_MAX_PAGES:  # a page repeating the call: one pager's worth
            return links[:_TRS_MAX_PAGES]
    return links


def page_links(html: str) -> tuple[str | None, list[tuple[str, str]]]:
    """(first ``<base href>``, ``[(raw href/src, anchor text)]`` in document order, then the
    pages a script pager writes, :func:`script_paging_links`, without anchor).

    The anchor is :func:`anchor_text` of the element's text, ``title`` and image ``alt``s.
    Read from the cached :func:`parse` tree (the classifier has usually
    parsed the page already); a page that tree cannot hold in full (too deep, a node over
    10 MB, unparsable) goes through a Scrapy selector as before, whose parser has no limits.
    """
    root, limited = _parse_checked(html)
    if root is None or limited:
        return _page_links_selector(html)
    bases = _BASE_HREF(root)
    links = []
    for node in _LINKS(root):
        attrib = node.attrib
        href = link_target(attrib)
        # an embedded player's own content (the parser may nest what follows a void <embed>
        # in it) is not its anchor: its title is
        text = _STRING(node) if _tag(node) in _TEXT_ANCHORED else ""
        alts = _IMG_ALTS(node) if not text.strip() else ()  # only image links need them
        links.append((href, anchor_text(text, attrib.get("title", ""), alts)))
    links += [(url, "") for url in script_paging_links(html)]
    return (bases[0] if bases else None), links


def _page_links_selector(html: str) -> tuple[str | None, list[tuple[str, str]]]:
    import scrapy

    selector = scrapy.Selector(text=html, type="html")
    links = []
    for node in selector.xpath(LINK_XPATH):
        href = link_target(node.attrib)
        text = node.xpath("string(.)").get("") if (node.root.tag or "").lower() in _TEXT_ANCHORED else ""
        alts = node.xpath(".//img/@alt").getall() if not text.strip() else ()
        links.append((href, anchor_text(text, node.attrib.get("title", ""), alts)))
    links += [(url, "") for url in script_paging_links(html)]
    return selector.xpath("//base/@href").get(), links


#: Own words of a heading (compiled once: analyze() runs it on every h1-h4).
_HEADING_TEXT = etree.XPath(
    ".//text()[not(ancestor::a) and not(ancestor::script) and not(ancestor::style)]", smart_strings=False)


def _is_hidden(el: Any) -> bool:
    if el.get("hidden") is not None:
        return True
    style = el.get("style")
    return bool(style and _HIDDEN_STYLE_RE.search(style))


def _tag(el: Any) -> str | None:
    tag = el.tag
    return tag.lower() if isinstance(tag, str) else None


@lru_cache(maxsize=16)
def analyze(html: str) -> PageInfo:
    """Title, headings, blocks, text sizes and scripts of ``html`` (see :class:`PageInfo`)."""
    info = PageInfo()
    root, info.truncated = _parse_checked(html)
    if root is None:
        return info
    # One walk for title, meta refresh, scripts, password fields and media (each tag's
    # elements still come in document order).
    title_el = None
    for el in root.iter("title", "meta", "script", "input", *_MEDIA_TAGS):
        tag = el.tag
        if tag == "title":
            if title_el is None and el is not root:  # what root.find(".//title") returns
                title_el = el
        elif tag == "meta":
            if (el.get("http-equiv") or "").lower() == "refresh":
                info.meta_refresh = el.get("content") or ""
        elif tag == "script":
            info.script_count += 1
            if not el.get("src"):
                body = el.text or ""
                if body.strip():
                    info.scripts.append(body)
                    info.alerts.extend(collapse(m.group(2)) for m in _ALERT_RE.finditer(body))
        elif tag == "input":
            if (el.get("type") or "").lower() == "password":
                info.has_password = True
        else:
            info.has_media = True
    if title_el is not None:
        info.title = collapse(title_el.text_content())

    # Attribute each text node to its nearest block ancestor; track link text and hiding.
    # (The hot loop of the classifier: helpers inlined, add() only called with text.)
    state: dict[Any, tuple[Any, bool, bool]] = {}
    own: dict[Any, list[str]] = {}
    own_content: dict[Any, list[str]] = {}
    visible: list[str] = []
    link_len = 0
    top = (root, False, False)

    def add(text: str, block: Any, in_nav: bool) -> None:
        nonlocal link_len
        if not text.strip():
            visible.append(" ")
            return
        visible.append(text)
        own.setdefault(block, []).append(text)
        if in_nav:
            link_len += dense_len(text)
        else:
            own_content.setdefault(block, []).append(text)

    for el in root.iter():
        # the root's parent is None, never a key: it gets ``top`` like before
        p_block, p_nav, p_skip = state.get(el.getparent(), top)
        tag = el.tag
        if not isinstance(tag, str):  # comment or processing instruction: only its tail is text
            state[el] = (p_block, p_nav, True)
            if not p_skip and (text := el.tail):
                add(text, p_block, p_nav)
            continue
        tag = tag.lower()
        skipped = p_skip or tag in _INVISIBLE_TAGS or el.get("hidden") is not None or bool(
            (style := el.get("style")) and _HIDDEN_STYLE_RE.search(style))  # _is_hidden(el)
        block = el if tag in BLOCK_TAGS else p_block
        in_nav = p_nav or tag in _NAV_TAGS
        state[el] = (block, in_nav, skipped)
        if not skipped:
            if tag in ("br", "hr"):
                visible.append(" ")
                own.setdefault(p_block, []).append(" ")
                own_content.setdefault(p_block, []).append(" ")
            if text := el.text:
                add(text, block, in_nav)
        if not p_skip and el is not root and (text := el.tail):
            add(text, p_block, p_nav)
        if not skipped and tag in ("h1", "h2", "h3", "h4"):
            # own words only: a list entry such as <h3><a>title</a></h3> is not a heading
            heading = collapse("".join(_HEADING_TEXT(el)))
            if heading:
                info.headings.append(heading)
    collapsed: dict[Any, str] = {}
    for block, pieces in own.items():
        block_text = collapsed[block] = collapse("".join(pieces))
        if block_text:
            info.blocks.append(block_text)
    for block, pieces in own_content.items():
        # a block without link text has the same pieces in both: collapse them once
        block_text = collapsed[block] if pieces == own.get(block) else collapse("".join(pieces))
        if block_text:
            info.content_blocks.append(block_text)
    info.text = collapse("".join(visible))
    info.text_len = dense_len(info.text)
    info.link_text_len = min(link_len, info.text_len)
    return info


def visible_text(html: str) -> str:
    """The visible text of ``html``, whitespace collapsed."""
    return analyze(html).text


def title_of(html: str) -> str:
    """The ``<title>`` of ``html`` ('' when none)."""
    return analyze(html).title


# --------------------------------------------------------------------------- list pages

_DATE_RE = re.compile(
    r"(?:19|20)\d{2}\s*[-/.年]\s*\d{1,2}(?:\s*[-/.月]\s*\d{1,2}\s*日?)?|(?<!\d)\d{1,2}-\d{1,2}(?!\d)"
    r"|\[\s*\d{1,2}[-/]\d{1,2}\s*\]"
)
_PAGING_TEXT_RE = re.compile(
    r"^(?:[<>«»‹›]+|首页|尾页|末页|上一?页|下一?页|前一?页|后一?页|第一页|最后一?页|跳转|go|更多|more|"
    r"\d{1,4}|\.\.\.|…|prev(?:ious)?|next|first|last|返回|返回列表|返回首页)[>»]*$",
    re.I,
)
_ZERO_COUNT_RE = re.compile(
    r"共(?:有)?0(?:条|篇|项|个|页|记录)|总共0记录|总记录数?[:：]?0(?!\d)|记录数[:：]0(?!\d)|共0条记录"
)
_EMPTY_MSG_RE = re.compile(
    r"^(?:该栏目下?)?(?:暂无|暂时没有|目前没有|没有任何|没有找到|没有|无)(?:相关|任何)?"
    r"(?:数据|信息|内容|记录|文章|新闻|公告|通知|公开信息|信息公开内容|资料|文件)[!！。.]*$"
    r"|^(?:no\s+(?:records?|data|items?|entries)(?:\s+found)?|nothing\s+found)[.!]*$",
    re.I,
)
_SCRIPT_WRITES_RE = re.compile(
    r"innerHTML|document\.write|\.html\s*\(|\.append\s*\(|\.appendChild\s*\(|\$\.ajax|\$\.get(?:JSON)?\s*\(|"
    r"\$\.post\s*\(|\bfetch\s*\(|XMLHttpRequest|axios|\.load\s*\(\s*['\"]|template\s*\(|new\s+Vue|createApp\s*\(|"
    r"\[\s*\{\s*['\"]?\w+['\"]?\s*:",
)
_SCRIPT_REDIRECT_RE = re.compile(
    r"(?:window|top|self|parent|document)?\.?location(?:\.href)?\s*=(?!=)|location\.(?:replace|assign)\s*\(",
)
_LIST_NAME_RE = re.compile(r"list|(?:^|[\s_-])lb(?:$|[\s\d_-])|liebiao", re.I)


def _entry_anchors(container: Any) -> list[Any]:
    anchors = []
    for a in container.iter("a"):
        href = (a.get("href") or "").strip()
        if not href or href.startswith("#") or href.lower().startswith(("javascript:", "mailto:", "tel:")):
            continue
        text = collapse(a.text_content()) or collapse(a.get("title") or "")
        if not text or _PAGING_TEXT_RE.match(text.replace(" ", "")):
            continue
        anchors.append(a)
    return anchors


def _entries(anchors: list[Any], url: str) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    seen: set[str] = set()
    seen_anchors: set[Any] = set()
    for a in anchors:
        # an anchor listed again (nested containers) gives the same URL: skip it before urljoin
        if a in seen_anchors:
            continue
        seen_anchors.add(a)
        href = a.get("href").strip()
        full = urljoin(url, href) if url else href
        if full in seen:
            continue
        seen.add(full)
        text = collapse(a.get("title") or "") or collapse(a.text_content())
        out.append((full, text))
    return out


def _outermost(containers: list[Any]) -> list[Any]:
    """``containers`` without those inside (or equal to) one listed before them.

    Their entry anchors are all that earlier one's already, so dropping them changes no
    entry (nor the order of first occurrences) and spares collecting every anchor again
    for each of thousands of nested containers. Each kept container's subtree is walked
    once: kept containers listed in document order never nest, so this is linear.
    """
    kept: list[Any] = []
    covered: set[Any] = set()
    for container in containers:
        if container in covered:
            continue
        kept.append(container)
        covered.update(container.iter())
    return kept


def _container_anchors(containers: list[Any]) -> list[Any]:
    """The entry anchors of ``containers`` in turn (an anchor may come more than once)."""
    return [a for c in _outermost(containers) for a in _entry_anchors(c)]


def _has_class(el: Any, name: str) -> bool:
    return name in (el.get("class") or "").split()


#: Elements that may carry a list marker (an id or class, or a ``ul``), in document order: a
#: prefilter that spares building a Python proxy for every element of the page. Computed
#: once per page and shared by both finders (WebPlus markers all need an id or class).
_MARKED_OR_UL = etree.XPath("descendant-or-self::*[@id or @class or translate(name(), 'UL', 'ul') = 'ul']")
_VSB_LINE_RE = re.compile(r"line_u\d+_\d+$")
_VSB_WINSTYLE_RE = re.compile(r"\bwinstyle\d+\b")


def _webplus_containers(marked: list[Any]) -> list[Any]:
    found = [
        el for el in marked
        if _tag(el) and (
            (el.get("id") or "").startswith("wp_news_w")
            or (_tag(el) == "ul" and _has_class(el, "news_list"))
            or _has_class(el, "wp_article_list")
        )
    ]
    main = [
        el for el in found
        if any((anc.get("portletmode") or "") == "simpleList" for anc in el.iterancestors())
    ]
    return main or found


def _vsb_containers(marked: list[Any]) -> list[Any]:
    found: list[Any] = []
    for el in marked:
        tag = _tag(el)
        if not tag:
            continue
        if _VSB_LINE_RE.match(el.get("id") or ""):
            parent = el.getparent()
            if parent is not None and parent not in found:
                found.append(parent)
        elif _VSB_WINSTYLE_RE.search(el.get("class") or ""):
            found.append(el)
        elif tag == "ul" and any(
            _has_class(anc, "list") for anc in el.iterancestors()
        ) and any("info/" in (a.get("href") or "") for a in el.iter("a")):
            found.append(el)
    return found


_ITEM_TAGS = ("li", "tr", "dd", "dt", "p", "div")

#: Where a match of ``_DATE_RE`` can start, and where the shortest text that still holds it
#: from there ends (the alternatives start differently, so at most one matches at a place):
#: a year-month up to the month's first digit, a bracketed day in full, and a day-month
#: (lookbehind kept) up to the day's first digit when its day has one or two digits.
_DATE_STARTS_RE = re.compile(
    r"(?=((?:19|20)\d{2}\s*[-/.年]\s*\d)|(\[\s*\d{1,2}[-/]\d{1,2}\s*\])|(?<!\d)(\d{1,2}-\d)\d?(?!\d))"
)
_DAY_MONTH_RE = re.compile(r"\d{1,2}-\d{1,2}(?!\d)")  # _DATE_RE's day-month without its lookbehind
#: Runs of the characters of a text that _EMPTY_MSG_RE sees, apart from whitespace: message
#: characters, the punctuation its messages may end with, and of that what ``[.!]*`` refuses.
_CORE_RUN_RE = re.compile(r"[^\s!！。.]+")
_PUNCT_RUN_RE = re.compile(r"[!！。.]+")
_WIDE_PUNCT_RUN_RE = re.compile(r"[！。]+")
#: More message characters (whitespace and end punctuation aside) than any _EMPTY_MSG_RE
#: message has (该栏目下暂时没有相关信息公开内容: 16). A message made longer, or holding
#: ``!！。.`` other than at its end, needs this and :meth:`_PageText.blank_or_empty_message`
#: revisited (tests/test_pathological_pages.py compares it with the direct test).
_EMPTY_MSG_MAX = 40
#: Characters of element text read with ``text_content()`` per page before :class:`_PageText`
#: indexes the page's text instead (same answers, linear in the page; nested items or
#: containers would otherwise each re-read the text of all those inside them).
_TEXT_BUDGET = 500_000


def _runs(regex: re.Pattern[str], text: str) -> tuple[list[int], list[int]]:
    starts, ends = [], []
    for m in regex.finditer(text):
        starts.append(m.start())
        ends.append(m.end())
    return starts, ends


def _meets(runs: tuple[list[int], list[int]], start: int, end: int) -> bool:
    """Whether one of ``runs`` (sorted, disjoint) has a character in ``[start, end)``."""
    starts, ends = runs
    k = bisect_right(ends, start)
    return start < end and k < len(starts) and starts[k] < end


class _PageText:
    """The two text tests of list finding, on each of many elements of one page.

    ``has_date(el)`` is ``bool(_DATE_RE.search(el.text_content()))``; ``blank_or_empty_message(el)``
    is whether ``el.text_content()`` is blank or, collapsed and without spaces, an
    ``_EMPTY_MSG_RE`` message. Both read ``text_content()`` until ``_TEXT_BUDGET`` characters
    are read; after that (thousands of nested items, each re-reading the text of the items
    inside it, took seconds) they answer from the page's whole text ``string(root)``, walked
    once, in which each element's ``text_content()`` is the slice ``text[start:end]``:

    * a date: each place where a ``_DATE_RE`` match can start is found once, with the end of
      the shortest text holding it; a slice holds one when some place in it has its end
      within the slice (a suffix minimum), or at its edges, where its lookarounds see the
      slice's ends rather than the neighbouring text: a day-month right at its start, or one
      whose day the slice's end cuts short (searched directly: a few characters).
    * an empty message: only whitespace and message characters matter, and runs of end
      punctuation only as far as ``[!！。.]*`` or ``[.!]*`` tell them apart; so a slice with
      more than ``_EMPTY_MSG_MAX`` message characters is no message, and otherwise its
      message characters with one stand-in for each run of punctuation are tested instead.
    """

    def __init__(self, root: Any) -> None:
        self._root = root
        self._budget = _TEXT_BUDGET
        self._text: str | None = None
        self._spans: dict[Any, tuple[int, int]] = {}
        self._date_starts: list[int] | None = None
        self._date_min_ends: list[int] = []
        self._runs: list[tuple[list[int], list[int]]] | None = None

    def _read(self, el: Any) -> str | None:
        """``el.text_content()`` while the budget lasts, else None (use the index)."""
        if self._budget <= 0:
            return None
        text = el.text_content()
        self._budget -= len(text)
        return text

    def _span(self, el: Any) -> tuple[str, int, int]:
        if self._text is None:
            pieces: list[str] = []
            opened: list[int] = []
            pos = 0
            for event, node in etree.iterwalk(self._root, events=("start", "end", "comment", "pi")):
                if event == "start":
                    opened.append(pos)
                    if text := node.text:
                        pieces.append(text)
                        pos += len(text)
                    continue
                if event == "end":
                    self._spans[node] = (opened.pop(), pos)
                # the root's tail is not in its text; a comment's own text is in no text
                if node is not self._root and (text := node.tail):
                    pieces.append(text)
                    pos += len(text)
            self._text = "".join(pieces)
        start, end = self._spans[el]
        return self._text, start, end

    def has_date(self, el: Any) -> bool:
        text = self._read(el)
        if text is not None:
            return bool(_DATE_RE.search(text))
        page, start, end = self._span(el)
        if self._date_starts is None:
            self._date_starts, ends = [], []
            for m in _DATE_STARTS_RE.finditer(page):
                self._date_starts.append(m.start())
                ends.append(m.end(m.lastindex or 0))
            for i in range(len(ends) - 2, -1, -1):
                ends[i] = min(ends[i], ends[i + 1])
            self._date_min_ends = ends
        i = bisect_left(self._date_starts, start)
        if i < len(self._date_starts) and self._date_min_ends[i] <= end:
            return True
        # the edges: a day-month at the very start (nothing before it in the slice), or one
        # ending where the slice ends (its day cut short); a search from inside the slice
        # finds only matches the slice holds (its lookbehind sees the real text before)
        return bool(_DAY_MONTH_RE.match(page, start, end) or _DATE_RE.search(page, max(start, end - 6), end))

    def blank_or_empty_message(self, el: Any) -> bool:
        text = self._read(el)
        if text is not None:
            return not collapse(text) or bool(_EMPTY_MSG_RE.match(collapse(text).replace(" ", "")))
        page, start, end = self._span(el)
        if self._runs is None:
            self._runs = [_runs(regex, page) for regex in (_CORE_RUN_RE, _PUNCT_RUN_RE, _WIDE_PUNCT_RUN_RE)]
        (core_starts, core_ends), punct, wide = self._runs
        first = bisect_right(core_ends, start)
        last = bisect_left(core_starts, end)  # core runs first..last-1 meet [start, end)
        if last - first > _EMPTY_MSG_MAX or sum(
            min(core_ends[k], end) - max(core_starts[k], start) for k in range(first, last)
        ) > _EMPTY_MSG_MAX:
            return False
        parts: list[str] = []
        gap = start
        for k in range(first, last + 1):
            # what lies between message characters: whitespace and end punctuation only
            stop = max(core_starts[k], start) if k < last else end
            if _meets(punct, gap, stop):
                parts.append("。" if _meets(wide, gap, stop) else ".")
            if k < last:
                gap = min(core_ends[k], end)
                parts.append(page[stop:gap])
        message = "".join(parts)
        return not message or bool(_EMPTY_MSG_RE.match(message))


def _generic_entries(anchors: list[Any], texts: _PageText | None = None) -> list[Any]:
    """Anchors of the block holding most dated entries ([] when no dated entry exists).

    ``anchors``: the page's entry anchors (:func:`_entry_anchors` of the root); ``texts``:
    the page's :class:`_PageText` (one is made when not given).
    """
    groups: dict[Any, list[Any]] = {}
    order: list[Any] = []
    # whether an item's text holds a date, once per item: a site map's thousands of links
    # can share one item, whose whole text would otherwise be searched once per link
    dated_items: dict[Any, bool] = {}
    if texts is None and anchors:
        texts = _PageText(anchors[0].getroottree().getroot())
    for a in anchors:
        item = a
        for _ in range(4):
            parent = item.getparent()
            if parent is None:
                break
            item = parent
            if _tag(item) in _ITEM_TAGS:
                break
        if _tag(item) not in _ITEM_TAGS:
            continue
        dated = dated_items.get(item)
        if dated is None:
            assert texts is not None
            dated = dated_items[item] = texts.has_date(item)
        if not dated:
            continue
        container = item.getparent()
        if container is None:
            continue
        if container not in groups:
            groups[container] = []
            order.append(container)
        groups[container].append(a)
    if not groups:
        return []
    best = max(order, key=lambda c: len(groups[c]))
    return groups[best]


def _named_empty_containers(
    root: Any, anchors: list[Any], texts: _PageText | None = None
) -> tuple[list[Any], list[Any]]:
    """(empty, non-empty) containers whose id/class names a list.

    ``anchors``: the page's entry anchors (:func:`_entry_anchors` of ``root``); a container
    is non-empty when one of them is inside it (found once for the page, not by collecting
    the anchors of each of thousands of nested containers again). ``texts``: the page's
    :class:`_PageText` (one is made when not given).
    """
    empty, full = [], []
    holding: set[Any] | None = None  # the ancestors of entry anchors, when first needed
    if texts is None:
        texts = _PageText(root)
    for el in root.iter("ul", "ol", "tbody", "div", "table", "dl"):
        name = f"{el.get('id') or ''} {el.get('class') or ''}"
        if not _LIST_NAME_RE.search(name) or _is_hidden(el):
            continue
        if holding is None:
            holding = set()
            for a in anchors:
                for ancestor in a.iterancestors():
                    if ancestor in holding:  # and so are all of its ancestors
                        break
                    holding.add(ancestor)
        if el in holding:
            full.append(el)
        elif texts.blank_or_empty_message(el):
            empty.append(el)
    return empty, full


def _zero_signal(root: Any, info: PageInfo) -> bool:
    for em in root.iter("em"):
        if _has_class(em, "all_count") and collapse(em.text_content()) == "0":
            return True
    for block in info.blocks:
        dense = block.replace(" ", "")
        if "0" in dense and _ZERO_COUNT_RE.search(dense):  # each of its forms has a 0
            return True
        if len(dense) <= 40 and _EMPTY_MSG_RE.match(dense):
            return True
    return False


def _find_list(html: str, url: str) -> tuple[list[tuple[str, str]] | None, list[Any]]:
    """(entries or None, the empty containers seen) for :func:`list_entries`/needs_render."""
    root = parse(html)
    if root is None:
        return None, []
    marked = _MARKED_OR_UL(root)
    for finder in (_webplus_containers, _vsb_containers):
        containers = finder(marked)
        if containers:
            anchors = _container_anchors(containers)
            if anchors:
                return _entries(anchors, url), []
            return [], containers
    page_anchors = _entry_anchors(root)
    texts = _PageText(root)
    dated = _generic_entries(page_anchors, texts)
    if dated:
        return _entries(dated, url), []
    empty, full = _named_empty_containers(root, page_anchors, texts)
    info = analyze(html)
    if _zero_signal(root, info):
        return [], empty
    if full:
        return _entries(_container_anchors(full), url), []
    if empty:
        return [], empty
    return None, []


def list_entries(html: str, url: str) -> list[tuple[str, str]] | None:
    """Entries ``(href, text)`` of the page's main list; None when no list is recognised."""
    return _find_list(html, url)[0]


_FUNCTION_HEAD_RE = re.compile(r"\bfunction\s+[\w$]+\s*\(")
_BODY_OPEN_RE = re.compile(r"\s*\{")


def _named_function_spans(js: str) -> Iterator[tuple[int, int]]:
    r"""(start, end) of each ``function name(params) {`` in ``js``: the matches of
    ``re.finditer(r"\bfunction\s+[\w$]+\s*\([^)]*\)\s*\{", js)``, in linear time.

    That regex scans from each ``function f(`` to the next ``)``: thousands of unclosed
    ``function a(`` made it quadratic. The params end at the first ``)`` after the head, so
    that position is found once and reused by every head before it.
    """
    pos = 0
    close, close_from = -1, len(js) + 1  # the first ")" at or after close_from (-1: none)
    while (head := _FUNCTION_HEAD_RE.search(js, pos)) is not None:
        params = head.end()
        if params < close_from or (close != -1 and close < params):
            close, close_from = js.find(")", params), params
        if close == -1:  # no ")" after this head, so none after any later one either
            return
        body = _BODY_OPEN_RE.match(js, close + 1)
        if body is None:
            pos = head.start() + 1
            continue
        yield head.start(), body.end()
        pos = body.end()


def _without_named_functions(js: str) -> str:
    """``js`` without the bodies of named function declarations (they run only when called:
    ``function goPage(n){ location.href = 'list.jsp?page=' + n; }`` is no redirect)."""
    out = []
    pos = 0
    for start, end in _named_function_spans(js):
        if start < pos:
            continue
        out.append(js[pos:start])
        depth, i = 1, end
        while i < len(js) and depth:
            depth += {"{": 1, "}": -1}.get(js[i], 0)
            i += 1
        pos = i
    out.append(js[pos:])
    return "".join(out)


def needs_render(html: str, url: str) -> str | None:
    """Why the raw HTML is not what a browser shows (a reason string), or None."""
    root = parse(html)
    if root is None:
        return None
    info = analyze(html)
    if not info.script_count:
        return None
    scripts = "\n".join(info.scripts)
    if info.content_len < 200 and _SCRIPT_REDIRECT_RE.search(_without_named_functions(scripts)):
        return "script-redirect"
    active = info.script_count > len(info.scripts) or any(
        _without_named_functions(js).strip() for js in info.scripts)
    if active and info.text_len < 50 and not info.has_media and not info.has_password:
        return "script-only-body"
    entries = _find_list(html, url)[0]
    if entries == [] and _SCRIPT_WRITES_RE.search(scripts):
        return "scripted-list"
    if entries is None and info.content_len < 300 and _SCRIPT_WRITES_RE.search(scripts):
        ids = [el.get("id") for el in root.iter() if _tag(el) and el.get("id")]
        if any(i and i in scripts for i in ids):
            return "scripted-content"
    return None
