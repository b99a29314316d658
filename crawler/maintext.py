"""Main text of an HTML page: what a reader would quote, without the page furniture.

Navigation, headers, footers, scripts, visit counters and "current date" widgets change on
every load or are the same on every page; dropping them keeps snapshots comparable so that
only real content changes count as changes.
"""

from __future__ import annotations

import re

from lxml import etree
from lxml import html as lxml_html
from lxml.etree import ParserError

FURNITURE_TAGS = ("script", "style", "noscript", "nav", "header", "footer", "iframe", "form",
                  "select", "button", "template")
FURNITURE_HINT = re.compile(
    r"(^|[\s_-])(nav|menu|footer|foot|header|head|banner|breadcrumb|crumb|sidebar|copyright|"
    r"visit|counter|hits|clock|date-now|today|share|search|login|topbar|links?)([\s_-]|$|\d)",
    re.I,
)
_WEEKDAY = r"(?:星期|周|礼拜)[一二三四五六日天]"
# 农历 as date widgets print it: 农历壬寅年九月廿八, 农历十月初一, 农历闰二月十五
_LUNAR = (r"农历\s*(?:[甲乙丙丁戊己庚辛壬癸][子丑寅卯辰巳午未申酉戌亥]\s*(?:[鼠牛虎兔龙蛇马羊猴鸡狗猪]\s*)?年\s*)?"
          r"闰?[正一二三四五六七八九十冬腊]{1,2}月\s*(?:初[一二三四五六七八九十]|十[一二三四五六七八九]?|"
          r"二十[一二三四五六七八九]?|廿[一二三四五六七八九]?|三十|卅)")
# what a "today" widget prints after the date, in any order: 星期一, 农历…
_WIDGET_TAIL = r"(?:\s*(?:" + _WEEKDAY + "|" + _LUNAR + r"))*"
# An optional ":" between a label and its value. Written ``\s*(?:[:：]\s*)?``, not
# ``\s*[:：]?\s*`` (the same text): two ``\s*`` that can meet split a long run of spaces
# every possible way before giving up, quadratic in the run.
_OPT_COLON = r"\s*(?:[:：]\s*)?"
_DATE_TIME = (r"\d{4}\s*[-/.年]\s*\d{1,2}\s*[-/.月]\s*\d{1,2}\s*日?"
              r"(?:\s*\d{1,2}\s*[:：时]\s*\d{1,2}(?:\s*[:：分]\s*\d{1,2}\s*秒?)?)?")
#: A bare date widget: the date followed by its weekday or 农历 ("2022年11月21日 星期一").
#: (No ``_WIDGET_TAIL`` after the ``+``: it matched nothing more, but a failed fullmatch
#: then tried every split of a long run of weekdays between the two.)
BARE_DATE_WIDGET = re.compile(r"\d{4}\s*年\s*\d{1,2}\s*月\s*\d{1,2}\s*日(?:\s*(?:" + _WEEKDAY + "|" + _LUNAR
                              + "))+")
#: Text that changes on every load without the page changing (counters, "today" widgets,
#: generation times): dropped from the main text, and again before comparing snapshots.
VOLATILE_PATTERNS: tuple[re.Pattern[str], ...] = (
    # visit counters: 浏览次数：123, 点击数: 45次, 您是第 1234 位访问者, 阅读量 56
    # (a counter is no date: "详情请查看：2022年招生简章" keeps its text)
    re.compile(r"(?:浏览|点击|阅读|访问|查看)\s*(?:(?:次数|量|数|人次)\s*)?[:：]\s*\d+(?![\d年月日./-])\s*(?:次|人次|人)?"),
    re.compile(r"(?:浏览|点击|阅读|访问)(?:次数|量|数)\s*\d+\s*次?|(?:浏览|点击|阅读)\s*\d+\s*次"),
    re.compile(r"您是(?:本站|本网站)?第\s*\d+\s*(?:位|个|名)?\s*(?:访问者|访客|浏览者)?"),
    re.compile(r"(?:总|今日|本日|在线)(?:访问|访客|浏览|点击)(?:量|人数|次数)?" + _OPT_COLON + r"\d+"),
    # who is online right now: 当前在线：12人, 在线人数 8 (not "在线申请", no number follows)
    re.compile(r"(?:(?:当前|现在|目前)在线(?:人数|用户|访客)?|在线(?:人数|用户数?|访客数?))"
               + _OPT_COLON + r"\d+\s*(?:人|位)?"),
    # "今天是2021年10月10日 星期日", "今天是：2022年11月21日 星期一 农历壬寅年九月廿八", clocks
    re.compile(r"(?:今天是|今日是|今天|今日|当前时间|现在时间|当前日期|系统时间|北京时间)" + _OPT_COLON
               + _DATE_TIME + _WIDGET_TAIL),
    BARE_DATE_WIDGET,
    # page generation: 页面生成时间：2021-10-10 12:00:00, 执行时间 0.023 秒, Processed in 0.01 second(s)
    re.compile(r"(?:页面|网页|本页)?(?:生成|执行|运行|加载|查询|刷新|缓存)(?:时间|耗时|用时)" + _OPT_COLON + "(?:"
               + _DATE_TIME + r"|[\d.]+\s*(?:毫秒|秒|ms|s))"),
    re.compile(r"(?:processed|generated|executed|rendered)\s+in\s+[\d.]+\s*(?:second\(s\)|seconds?|secs?|ms|s)"
               r"(?:\s*,\s*\d+\s+quer(?:y|ies))?", re.I),
    re.compile(r"(?:page\s+)?(?:generated|cached|rendered)\s+(?:at|on)" + _OPT_COLON
               + r"\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}(?::\d{2})?(?:\.\d+)?Z?", re.I),
)
#: Elements that start a new line; text of anything else (span, a, em, font…) stays on its
#: block's line, so a label and its number in separate inline nodes
#: (``浏览次数：<span class="WP_VisitCount">1287</span>``) are read, and dropped, together.
BLOCK_TAGS = frozenset({
    "address", "article", "aside", "blockquote", "body", "br", "caption", "center", "dd", "details",
    "dialog", "dir", "div", "dl", "dt", "fieldset", "figcaption", "figure", "h1", "h2", "h3", "h4",
    "h5", "h6", "hr", "html", "li", "main", "menu", "ol", "p", "pre", "section", "summary", "table",
    "tbody", "td", "tfoot", "th", "thead", "title", "tr", "ul",
})
_ASCII_WORD = re.compile(r"[0-9A-Za-z]")
_DIGIT = re.compile(r"\d")
#: Words at least one of which each of VOLATILE_PATTERNS needs (a keyword, or for the bare
#: date widget its weekday or 农历): a line with none of them, like most, skips the patterns.
#: tests/test_parse_speed_equivalence.py checks that the gate changes no answer.
_VOLATILE_GATE = re.compile(r"浏览|点击|阅读|访问|访客|查看|您是|在线|今天|今日|当前日期|时间|耗时|用时|"
                            r"星期|周|礼拜|农历|processed|generated|executed|rendered|cached", re.I)


def strip_volatile(text: str, *, line: bool = False) -> str:
    """``text`` with visit counters, date widgets and generation times blanked out.

    ``line``: ``text`` is one rendered line of a page; a bare "date + weekday" goes only when
    it is the whole line (a widget), not from a sentence ("定于2022年11月25日 周五召开").
    """
    # every volatile pattern has a number and a gate word in it
    if not _DIGIT.search(text) or not _VOLATILE_GATE.search(text):
        return text
    for pattern in VOLATILE_PATTERNS:
        if line and pattern is BARE_DATE_WIDGET:
            if pattern.fullmatch(text.strip()):
                return ""
            continue
        text = pattern.sub(" ", text)
    return text


MAX_INPUT = 4 * 1024 * 1024
#: Editor output can nest deeper than libxml2's default 256 levels; past them text is lost.
_PARSER = lxml_html.HTMLParser(huge_tree=True)
_MARKED = etree.XPath("descendant-or-self::*[@class or @id]")


def main_text(page_html: str) -> str:
    """Visible main text, one block per line, volatile counters removed."""
    if not page_html or not page_html.strip():
        return ""
    try:
        root = lxml_html.fromstring(page_html[:MAX_INPUT], parser=_PARSER)
    except (ParserError, ValueError):
        return ""
    for element in root.iter(*FURNITURE_TAGS):
        element.drop_tree() if element.getparent() is not None else None
    for element in _MARKED(root):  # only elements with a class or id can be hinted furniture
        if element.getparent() is None:
            continue
        marker = f"{element.get('class', '')} {element.get('id', '')}"
        if marker.strip() and FURNITURE_HINT.search(marker):
            element.drop_tree()
    lines = []
    for block in _blocks(root):
        text = " ".join(strip_volatile(block, line=True).split())
        if text:
            lines.append(text)
    return "\n".join(lines)


def _blocks(root: lxml_html.HtmlElement) -> list[str]:
    """Text of ``root`` as rendered lines: one per block element, inline text joined."""
    blocks: list[str] = []
    current: list[str] = []

    def add(piece: str | None) -> None:
        if not piece:
            return
        # inline nodes render side by side: Chinese needs no space, but a title and its date
        # ("…通知" + "2022-10-29") or two numbers must not run together
        if current and (_ASCII_WORD.match(piece[:1]) or _ASCII_WORD.match(current[-1][-1:])):
            current.append(" ")
        current.append(piece)

    def flush() -> None:
        if current:
            blocks.append("".join(current))
            current.clear()

    # iterwalk, not recursion: hostile pages nest thousands of levels deep
    for event, element in etree.iterwalk(root, events=("start", "end")):
        tag = element.tag if isinstance(element.tag, str) else None  # comments, PIs: no text
        if event == "start":
            if tag in BLOCK_TAGS:
                flush()
            if tag is not None:
                add(element.text)
        else:
            if tag in BLOCK_TAGS:
                flush()
            if element is not root:
                add(element.tail)
    flush()
    return blocks
