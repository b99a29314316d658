"""The 50 items of 《高等学校信息公开事项清单》 (教办函〔2014〕23号) and the 清单 table parser.

``CHECKLIST`` is the item list as data (titles as printed in the 武汉科技大学 2020-2021
report's 清单事项公开情况表, which follows the ministry's wording). ``parse_checklist_table``
pulls the 清单事项公开情况表 out of report text as it comes out of PDFs and Word files:
rows split across lines, merged or repeated category cells, "(4项)" counts torn from
their category, full-width punctuation (also inside URLs), tab- or space-separated columns,
URLs broken across lines, with a space at the wrap ("/2598/ list.htm") or printed without a
scheme, rows numbered "(1)" or "1." after a category-number cell, PDF tables read column by column
(titles of several rows, then their URLs) and items that have a note ("不适用", "无")
instead of a URL. URLs come out in canonical form (:func:`crawler.urls.canonicalize`), as
``links.url`` has them.
``match_item`` maps a free-text title to its item number by key phrases.
"""

from __future__ import annotations

import bisect
import re
from dataclasses import dataclass
from functools import lru_cache
from itertools import pairwise

from archive.reports.text import fold_width
from crawler.urls import MAX_URL_LENGTH, canonicalize

__all__ = [
    "CATEGORIES",
    "CHECKLIST",
    "ChecklistItem",
    "ReportItemRow",
    "category_of",
    "match_category",
    "match_item",
    "parse_checklist_table",
]


@dataclass(frozen=True)
class ChecklistItem:
    """One of the 50 items: its number, category and whether it is refreshed every year."""

    number: int
    category_number: int
    category: str
    title: str
    yearly: bool


@dataclass(frozen=True)
class ReportItemRow:
    """A row of a report's 清单事项公开情况表 (one row per URL)."""

    item_number: int | None
    category: str | None
    title: str
    url: str | None
    note: str | None


#: The ten categories, in order; numbers are 1-based positions.
CATEGORIES: tuple[str, ...] = (
    "基本信息",
    "招生考试信息",
    "财务、资产及收费信息",
    "人事师资信息",
    "教学质量信息",
    "学生管理服务信息",
    "学风建设信息",
    "学位、学科信息",
    "对外交流与合作信息",
    "其他",
)

# (category number, title, yearly). Yearly: items whose content is a yearly document or
# a yearly figure (plans and admissions, budgets and final accounts, fees, graduate
# employment, teaching-quality and art-education reports, this very annual report ...).
_ITEMS: tuple[tuple[int, str, bool], ...] = (
    (1, "办学规模、校级领导班子简介及分工、学校机构设置、学科情况、专业情况、各类在校生情况、"
        "教师和专业技术人员数量等办学基本情况", False),
    (1, "学校章程及制定的各项规章制度", False),
    (1, "教职工代表大会相关制度、工作报告", False),
    (1, "学术委员会相关制度、年度报告", True),
    (1, "学校发展规划、年度工作计划及重点工作安排", True),
    (1, "信息公开年度报告", True),
    (2, "招生章程及特殊类型招生办法，分批次、分科类招生计划", True),
    (2, "保送、自主选拔录取、高水平运动员和艺术特长生招生等特殊类型招生入选考生资格及测试结果",
     True),
    (2, "考生个人录取信息查询渠道和办法，分批次、分科类录取人数和录取最低分", True),
    (2, "招生咨询及考生申诉渠道，新生复查期间有关举报、调查及处理结果", False),
    (2, "研究生招生简章、招生专业目录、复试录取办法，各院（系、所）或学科、专业招收研究生人数",
     True),
    (2, "参加研究生复试的考生成绩", True),
    (2, "拟录取研究生名单", True),
    (2, "研究生招生咨询及申诉渠道", False),
    (3, "财务、资产管理制度", False),
    (3, "受捐赠财产的使用与管理情况", True),
    (3, "校办企业资产、负债、国有资产保值增值等信息", False),
    (3, "仪器设备、图书、药品等物资设备采购和重大基建工程的招投标", False),
    (3, "收支预算总表、收入预算表、支出预算表、财政拨款支出预算表", True),
    (3, "收支决算总表、收入决算表、支出决算表、财政拨款支出决算表", True),
    (3, "收费项目、收费依据、收费标准及投诉方式", True),
    (4, "校级领导干部社会兼职情况", False),
    (4, "校级领导干部因公出国（境）情况", False),
    (4, "岗位设置管理与聘用办法", False),
    (4, "校内中层干部任免、人员招聘信息", False),
    (4, "教职工争议解决办法", False),
    (5, "本科生占全日制在校生总数的比例、教师数量及结构", True),
    (5, "专业设置、当年新增专业、停招专业名单", True),
    (5, "全校开设课程总门数、实践教学学分占总学分比例、选修课学分占总学分比例", True),
    (5, "主讲本科课程的教授占教授总数的比例、教授授本科课程占课程总门次数的比例", True),
    (5, "促进毕业生就业的政策措施和指导服务", False),
    (5, "毕业生的规模、结构、就业率、就业流向", True),
    (5, "高校毕业生就业质量年度报告", True),
    (5, "艺术教育发展年度报告", True),
    (5, "本科教学质量报告、高等职业教育人才培养质量年度报告", True),
    (6, "学籍管理办法", False),
    (6, "学生奖学金、助学金、学费减免、助学贷款、勤工俭学的申请与管理规定", False),
    (6, "学生奖励处罚办法", False),
    (6, "学生申诉办法", False),
    (7, "学风建设机构", False),
    (7, "学术规范制度", False),
    (7, "学术不端行为查处机制", False),
    (8, "授予博士、硕士、学士学位的基本要求", False),
    (8, "拟授予硕士、博士学位同等学力人员资格审查和学力水平认定", False),
    (8, "新增硕士、博士学位授权学科或专业学位授权点审核办法", False),
    (8, "拟新增学位授权学科或专业学位授权点的申报及论证材料", False),
    (9, "中外合作办学情况", False),
    (9, "来华留学生管理相关规定", False),
    (10, "巡视组反馈意见，落实反馈意见整改情况", False),
    (10, "自然灾害等突发事件的应急处理预案、预警信息和处置情况，涉及学校的重大事件的调查和处理"
         "情况", False),
)

#: The 50 checklist items, numbered 1..50.
CHECKLIST: tuple[ChecklistItem, ...] = tuple(
    ChecklistItem(i, cat, CATEGORIES[cat - 1], title, yearly)
    for i, (cat, title, yearly) in enumerate(_ITEMS, start=1)
)


def category_of(item_number: int) -> str | None:
    """The canonical category name of an item number, or None if out of range."""
    if 1 <= item_number <= len(CHECKLIST):
        return CHECKLIST[item_number - 1].category
    return None


# Key phrases per item; a title scores the total length of the phrases it contains.
_KEYS: dict[int, tuple[str, ...]] = {
    1: ("办学规模", "办学基本情况", "校级领导班子", "机构设置", "学校概况", "学校简介"),
    2: ("学校章程", "章程及制定", "规章制度"),
    3: ("教职工代表大会", "教代会"),
    4: ("学术委员会",),
    5: ("发展规划", "年度工作计划", "重点工作安排"),
    6: ("信息公开年度报告", "信息公开工作年度报告", "信息公开工作报告"),
    7: ("招生章程", "特殊类型招生办法", "分科类招生计划", "招生计划"),
    8: ("保送", "自主选拔", "高水平运动员", "艺术特长生", "入选考生资格", "测试结果"),
    9: ("录取信息查询", "录取人数", "录取最低分", "录取信息"),
    10: ("招生咨询及考生申诉", "考生申诉", "新生复查"),
    11: ("研究生招生简章", "招生专业目录", "复试录取办法", "招收研究生人数"),
    12: ("复试的考生成绩", "复试考生成绩", "考生成绩"),
    13: ("拟录取研究生名单", "拟录取名单"),
    14: ("研究生招生咨询", "研究生招生申诉"),
    15: ("财务、资产管理制度", "财务管理制度", "资产管理制度", "财务制度"),
    16: ("受捐赠", "捐赠财产"),
    17: ("校办企业",),
    18: ("招投标", "物资设备采购", "基建工程", "采购"),
    19: ("收支预算总表", "预算"),
    20: ("收支决算总表", "决算"),
    21: ("收费项目", "收费依据", "收费标准", "收费"),
    22: ("社会兼职",),
    23: ("因公出国",),
    24: ("岗位设置", "聘用办法"),
    25: ("中层干部任免", "干部任免", "人员招聘"),
    26: ("争议解决",),
    27: ("本科生占全日制在校生", "全日制在校生总数", "教师数量及结构"),
    28: ("专业设置", "新增专业", "停招专业"),
    29: ("开设课程总门数", "实践教学学分", "选修课学分"),
    30: ("主讲本科课程的教授", "教授授本科课程", "教授授课"),
    31: ("促进毕业生就业", "政策措施和指导服务", "就业指导服务"),
    32: ("毕业生的规模", "就业率", "就业流向"),
    33: ("就业质量年度报告", "就业质量报告"),
    34: ("艺术教育",),
    35: ("本科教学质量报告", "人才培养质量年度报告", "人才培养质量报告", "教学质量报告"),
    36: ("学籍管理",),
    37: ("奖学金", "助学金", "学费减免", "助学贷款", "勤工俭学"),
    38: ("奖励处罚", "奖惩"),
    39: ("学生申诉",),
    40: ("学风建设机构",),
    41: ("学术规范",),
    42: ("学术不端",),
    43: ("学位的基本要求", "授予博士"),
    44: ("同等学力",),
    45: ("审核办法", "新增硕士"),
    46: ("申报及论证材料", "拟新增学位授权"),
    47: ("中外合作办学",),
    48: ("来华留学",),
    49: ("巡视",),
    50: ("突发事件", "应急处理预案", "重大事件"),
}

#: Markers read per table; a real 清单 has 50 items, a hostile text may have millions.
MAX_MARKERS = 400
#: Characters read after a marker: a row with its URL and the next row's category cells.
MAX_SEGMENT = 1500

_NOISE = re.compile(r"[\s,，、;；:：。.·]")
#: An optional bracket or dot takes its own spaces: ``\s*[(（]?\s*`` would split a run of
#: spaces every way before failing (quadratic). Same language, same matches.
_LEADING_MARK = re.compile(r"^\s*(?:[(（]\s*)?\d{1,2}\s*(?:[)）.、．]\s*)?")


def _compact(text: str) -> str:
    return _NOISE.sub("", fold_width(text)).replace("(", "（").replace(")", "）")


@lru_cache(maxsize=1)
def _compacted() -> tuple[dict[str, int], dict[int, tuple[str, ...]]]:
    titles = {_compact(item.title): item.number for item in CHECKLIST}
    keys = {n: tuple(_compact(k) for k in ks) for n, ks in _KEYS.items()}
    return titles, keys


def match_item(title: str) -> int | None:
    """The checklist number (1..50) a free-text item title refers to, or None.

    Scores each item by the total length of its key phrases found in the title (spaces,
    width and punctuation ignored); the best score wins, ties go to None.
    """
    text = _compact(_LEADING_MARK.sub("", fold_width(title)))[:200]
    if not text:
        return None
    titles, keys = _compacted()
    if text in titles:
        return titles[text]
    scores = {number: sum(len(k) for k in ks if k in text) for number, ks in keys.items()}
    best = max(scores.values())
    if best < 2:
        return None
    winners = [n for n, s in scores.items() if s == best]
    return winners[0] if len(winners) == 1 else None


def _category_key(text: str) -> str:
    text = fold_width(text)
    text = re.sub(r"^\s*(?:[一二三四五六七八九十]+|\d{1,2})\s*[、.．]?\s*", "", text)
    text = re.sub(r"\(\s*\d+\s*项\s*\)", "", text)
    text = re.sub(r"[\s、，,和与及]", "", text).replace("其它", "其他")
    for suffix in ("信息", "类", "信息类"):
        if text.endswith(suffix) and len(text) > len(suffix) + 1:
            text = text[: -len(suffix)]
    return text


_CATEGORY_KEYS: dict[str, str] = {_category_key(c): c for c in CATEGORIES}
_CATEGORY_KEYS.update({"招生": "招生考试信息", "人事": "人事师资信息", "师资": "人事师资信息",
                       "学生管理": "学生管理服务信息", "学位": "学位、学科信息",
                       "对外交流": "对外交流与合作信息", "学风": "学风建设信息",
                       "财务资产": "财务、资产及收费信息", "财务": "财务、资产及收费信息"})


def match_category(cell: str) -> str | None:
    """The canonical category name a table cell denotes ("招生考试 信息 (8项)"), or None."""
    key = _category_key(cell)
    return _CATEGORY_KEYS.get(key) if key else None


# --------------------------------------------------------------------------- table parser

_URL_CHARS = r"A-Za-z0-9\-._~:/?#@!$&*+;=%,"
#: Top-level domains of the hosts reports print; a host written without a scheme must end
#: in one, so file names ("附件1.pdf") and numbers ("1.2") are not taken for hosts.
_TLDS = r"(?:cn|com|net|org|edu|gov|info|top|xyz|site|hk|mo)"
#: A host without a scheme ("xxgk.wust.edu.cn/2598/list.htm"). Not preceded by URL
#: characters: "wust.edu.cn" in "xxgk@wust.edu.cn" or inside a longer URL is no start.
_BARE_HOST = (rf"(?<![A-Za-z0-9@._/\-])(?:[A-Za-z0-9](?:[A-Za-z0-9-]{{0,61}}[A-Za-z0-9])?\.)+"
              rf"{_TLDS}(?![A-Za-z0-9-])")
_URL_RE = re.compile(rf"(?:(?:https?://|www\.)[{_URL_CHARS}]+|{_BARE_HOST}[{_URL_CHARS}]*)",
                     re.IGNORECASE)
_SCHEME_START = re.compile(r"(?:https?://|www\.)", re.IGNORECASE)
_URL_START = re.compile(rf"(?:https?://|www\.|{_BARE_HOST}(?:[/:?#]|$))", re.IGNORECASE)
_HOST_END = re.compile(rf"\.{_TLDS}$", re.IGNORECASE)
_URL_TOKEN = re.compile(rf"^[{_URL_CHARS}]+$")
_EXTS = ("html", "htm", "shtml", "jsp", "jspx", "php", "asp", "aspx", "pdf", "doc", "docx",
         "xls", "xlsx")
_COMPLETE = re.compile(r"\.(?:s?html?|jspx?|php|aspx?|pdf|docx?|xlsx?)$", re.IGNORECASE)
_COUNT = re.compile(r"[(（]\s*\d{1,2}\s*项\s*[)）]")
_MARKER_A = re.compile(r"[(（]\s*(\d{1,2})\s*[)）]")
_MARKER_B = re.compile(r"(?m)^[ \t]*(\d{1,2})(?:[.、．]|[ \t]+|(?=[\u4e00-\u9fff]))(?!\d)")
#: "7." / "7、" opening a cell, also after a tab or a column gap: rows numbered "1." in
#: the 公开事项 column, on lines that begin with a category number ("2\t招生考试信息\t7. …").
#: Not three spaces or tabs back: in a run of spaces and tabs, finditer always starts the
#: match at the first position that qualifies (the run's start at a line start, else just
#: after its first tab or its first two spaces), never deeper, so excluding the deeper
#: positions finds the same markers; trying each of them would rescan the rest of the run
#: (quadratic in a long run of spaces).
_MARKER_C = re.compile(r"(?m)(?<![ \t]{3})(?:^|(?<=\t)|(?<=  ))[ \t]*(\d{1,2})[.、．](?!\d)")
_HEADER_HINTS = ("网址", "链接", "公开情况", "公开事项", "公开内容", "事项")
_NOTES = frozenset({
    "不适用", "无", "暂无", "不涉及", "未涉及", "未公开", "已公开", "待公开", "本年度无", "无此项",
    "见附件", "不公开", "非公开", "无相关信息", "本校无", "暂未公开", "依申请公开", "校内公开",
    "尚未公开", "未开展", "无此类情况", "未发生", "—", "-", "/", "／",
})
_NOTE_LIKE = re.compile(r"^(?:本年度|本学年|暂|不|无|未|尚未|已).{0,12}$")


def _clean_url(raw: str) -> str:
    """A printed URL in the form ``links.url`` has, so report rows join the crawled links.

    A host without a scheme ("xxgk.wust.edu.cn/2598/list.htm", "www.wust.edu.cn") is read
    as http://, as a browser would; what canonicalize refuses is kept as printed.
    """
    url = raw.rstrip(".,;:!")
    if not re.match(r"https?://", url, re.IGNORECASE):
        url = "http://" + url
    return canonicalize(url) or url


def _in_host(url: str) -> bool:
    """Whether ``url`` (so far) ends inside its host name: no path has begun."""
    return "/" not in _SCHEME_START.sub("", url, count=1)


def _url_continues(url: str, token: str) -> bool:
    """Whether ``token`` (the start of the next line) is the rest of a broken ``url``."""
    if not token or not _URL_TOKEN.match(token) or _SCHEME_START.match(token):
        return False
    # "wust.edu.cn/2598/list.htm" starts a URL without a scheme, unless the line before
    # broke a host name ("http://xxgk." or "http://xxgk.wu") that it completes
    if _URL_START.match(token) and (not _in_host(url) or _HOST_END.search(url)):
        return False
    if token.isdigit():  # "2" is the next row's number; "2603" may be a path
        return len(token) > 2 and url[-1] in "/._-=?&%#"
    if _COMPLETE.search(url):
        return token[0] in "/?#&="
    if url[-1] in "/._-=?&%#":
        return True
    if any(ch in token for ch in "/.=?&"):
        return True
    m = re.search(r"\.([A-Za-z]{1,4})$", url)
    return bool(m) and any((m.group(1) + token).lower() in (e, e + "l") for e in _EXTS)


#: A URL is not continued past this many characters (counting the run of URL characters
#: it ends): canonicalize refuses longer URLs, and a hostile text could otherwise make the
#: joins below re-read an ever longer URL at every step (quadratic).
_MAX_URL = MAX_URL_LENGTH
_URL_RUN = re.compile(rf"[{_URL_CHARS}]*", re.IGNORECASE)  # as in _URL_RE: "ſ" and "K" too


def _url_state(last: str) -> tuple[str, str | None]:
    """(run, url) for ``last``, the last token of a line: ``run`` is the run of URL characters
    that ends it, ``url`` the token's first URL when that URL ends the token, else None.

    A URL is made of URL characters, so one that starts before ``run`` also ends before it:
    the first URL ends the token exactly when the token has no URL before ``run`` and the
    first URL in ``run`` ends it. ``run`` only grows when a one-token line is joined on.
    """
    rev = _URL_RUN.match(last[::-1])  # always matches, if only ""
    n = rev.end() if rev else 0
    run = last[len(last) - n:]
    if not run or len(run) > _MAX_URL or _URL_RE.search(last, 0, len(last) - n):
        return run, None
    m = _URL_RE.search(run)
    return run, m.group(0) if m and m.end() == len(run) else None


def _join_broken_urls(text: str) -> str:
    """Put URLs broken across lines (blank lines between allowed) back together.

    A line goes on the last non-blank line when that line's last token ends in a URL (the
    token's first URL) and the line's first token continues it (:func:`_url_continues`).
    Linear: the URL being built is kept as it grows, never re-split out of its line.
    """
    out: list[str] = []
    last_text = -1  # index in ``out`` of the last non-blank line
    parts: list[str] = []  # out[last_text] in pieces, once something was joined to it
    run: str | None = None  # _url_state of out[last_text], computed when first needed
    url: str | None = None
    for line in text.split("\n"):
        if not line.strip():
            out.append(line)
            continue
        stripped = line.strip()
        if last_text >= 0:
            if run is None:
                run, url = _url_state(out[last_text].rsplit(None, 1)[-1])
            first = stripped.split(None, 1)[0]
            if url is not None and len(run) + len(first) <= _MAX_URL \
                    and _url_continues(url, first):
                if not parts:
                    parts.append(out[last_text].rstrip())
                parts.append(stripped)
                del out[last_text + 1:]
                if len(first) == len(stripped):  # the URL goes on in the same token
                    run += first
                    m = _URL_RE.search(run)
                    url = m.group(0) if m and m.end() == len(run) else None
                else:
                    run, url = _url_state(stripped.rsplit(None, 1)[-1])
                continue
        if parts:
            out[last_text] = "".join(parts)
            parts = []
        out.append(line)
        last_text = len(out) - 1
        run = url = None
    if parts:
        out[last_text] = "".join(parts)
    return "\n".join(out)


#: What follows a space inside a printed URL and is clearly its rest: path segments ending
#: in a page or file name ("list.htm", "2598/list.htm", "/info/page.jsp?id=3").
_SPACED_REST = re.compile(
    r" +(/?(?:[A-Za-z0-9\-._~%]+/)*[A-Za-z0-9\-_~%]+(?:\.[A-Za-z0-9\-_~%]+)*"
    r"\.(?:s?html?|jspx?|php|aspx?|pdf|docx?|xlsx?)(?:[?#][A-Za-z0-9\-._~:/?#@!$&*+=%]*)?)"
    # ends where the name ends: "list.htm，" or "list.htm。" still is one
    r"(?![A-Za-z0-9\-_~%/]|\.[A-Za-z0-9])",
    re.IGNORECASE,
)
#: The rest of a file extension cut off after a space ("list. htm").
_SPACED_EXT = re.compile(r" +(s?html?|jspx?|php|aspx?|pdf|docx?|xlsx?)(?![A-Za-z0-9])",
                         re.IGNORECASE)


def _join_spaced_urls(text: str) -> str:
    """Drop spaces that PDF and Word text extraction leave inside a URL at a wrap.

    "http://xxgk.wust.edu.cn/2598/ list.htm" is one URL. Only a URL whose path has begun
    and is not complete is continued, and only by a page or file name after a "/" ("/
    list.htm", "/ 2598/list.htm") or by an extension after a "." ("list. htm"): the next
    cell (a note, a title, another URL) is none of these.
    """
    out: list[str] = []
    pos = 0
    while (m := _URL_RE.search(text, pos)) is not None:
        url, end = m.group(0), m.end()
        # _in_host and _COMPLETE read the whole URL: it is not continued past _MAX_URL
        # characters, or a URL grown piece by piece would be re-read at every step
        while not _in_host(url) and not _COMPLETE.search(url):
            rest = _SPACED_REST.match(text, end)
            if rest and (url.endswith("/") or rest.group(1).startswith("/")) \
                    and not _URL_START.match(rest.group(1)):
                piece, piece_end = rest.group(1), rest.end()
            else:
                ext = _SPACED_EXT.match(text, end) if url.endswith(".") else None
                if not ext:
                    break
                piece, piece_end = ext.group(1), ext.end()
            if len(url) + len(piece) > _MAX_URL:
                break
            url, end = url + piece, piece_end
        out.append(text[pos:m.start()] + url)
        pos = end
    out.append(text[pos:])
    return "".join(out)


def _smart_join(tokens: list[str]) -> str:
    out = ""
    for tok in tokens:
        if out and out[-1].isascii() and tok[0].isascii() and out[-1].isalnum() and tok[0].isalnum():
            out += " "
        out += tok
    out = re.sub(r"(?<=[\u4e00-\u9fff）)]),|,(?=[\u4e00-\u9fff（(])", "，", out)
    out = re.sub(r"\((?=[\u4e00-\u9fff])", "（", out)
    out = re.sub(r"(?<=[\u4e00-\u9fff])\)", "）", out)
    return out


def _tokens(text: str) -> list[str]:
    text = _COUNT.sub(" ", fold_width(text))
    return [t for t in text.split() if t]


def _peel_category_suffix(tokens: list[str]) -> tuple[list[str], str | None]:
    """Drop row numbers and a category name (up to 4 tokens) from the end of ``tokens``."""
    tokens = list(tokens)
    while tokens and tokens[-1].isdigit():
        tokens.pop()
    for k in range(min(4, len(tokens)), 0, -1):
        cat = match_category("".join(tokens[-k:]))
        if cat:
            rest = tokens[:-k]
            while rest and rest[-1].isdigit():
                rest.pop()
            return rest, cat
    return tokens, None


def _peel_category_prefix(tokens: list[str]) -> tuple[list[str], str | None]:
    skip = 0  # leading row numbers (one slice, not pop(0) per number: a line may hold many)
    while skip < len(tokens) and tokens[skip].isdigit():
        skip += 1
    tokens = tokens[skip:]
    for k in range(min(4, len(tokens)), 0, -1):
        cat = match_category("".join(tokens[:k]))
        if cat:
            return tokens[k:], cat
    return tokens, None


def _split_note(head: str) -> tuple[str, str | None]:
    """Split a trailing note cell ("不适用") off an item's text."""
    cells = [c for c in re.split(r"\t|\n| {2,}", fold_width(head)) if c.strip()]
    if len(cells) >= 2:
        last = _COUNT.sub("", cells[-1]).strip()
        if last in _NOTES or _NOTE_LIKE.match(last):
            return "\n".join(cells[:-1]), last
    tokens = _tokens(head)
    if len(tokens) >= 2 and tokens[-1] in _NOTES:
        return " ".join(tokens[:-1]), tokens[-1]
    return head, None


@dataclass
class _Segment:
    number: int | None
    text: str


def _heading_like(line: str) -> str | None:
    """``line`` without spaces when it is short and has no sentence punctuation, else None.

    A header row or a caption is a short line; a wrapped line of body text ("息公开事项清单〉
    的通知》要求，坚持…") may be as short but has the punctuation of a sentence.
    """
    compact = re.sub(r"\s", "", line)
    if len(compact) > 40 or re.search(r"[，。；,;]", compact):
        return None
    return compact


def _find_region(text: str) -> tuple[str, bool]:
    """The table part of ``text`` and whether a header line was found."""
    lines = text.split("\n")
    for i in range(len(lines) - 1, -1, -1):
        compact = _heading_like(lines[i])
        if compact is None:
            continue
        if ("序号" in compact or "类别" in compact) and any(h in compact for h in _HEADER_HINTS):
            return "\n".join(lines[i + 1:]), True
    # A caption needs five "(n)" markers or five URLs after it. They are found once, in the
    # whole text, and counted after each caption (re-scanning the rest of the text for every
    # caption line is quadratic). The counts are those of the rest alone: no URL spans a
    # line break, and a marker that does ("(\n1)") has no "(" after the break to start
    # another one in the rest.
    a_starts: list[int] | None = None
    url_starts: list[int] = []
    rest_start = len(text) + 1  # offset of lines[i + 1]
    for i in range(len(lines) - 1, -1, -1):
        if i + 1 < len(lines):
            rest_start -= len(lines[i + 1]) + 1
        compact = _heading_like(lines[i])
        if compact and "清单" in compact and ("情况表" in compact or "事项" in compact):
            if a_starts is None:
                a_starts = [m.start() for m in _MARKER_A.finditer(text)]
                url_starts = [m.start() for m in _URL_RE.finditer(text)]
            if len(a_starts) - bisect.bisect_left(a_starts, rest_start) >= 5 or \
                    len(url_starts) - bisect.bisect_left(url_starts, rest_start) >= 5:
                return "\n".join(lines[i + 1:]), True
    return text, False


def _runs(numbers: list[int]) -> list[list[int]]:
    """Index runs of strictly increasing numbers (items may be skipped)."""
    runs: list[list[int]] = []
    for i, n in enumerate(numbers):
        if runs and numbers[runs[-1][-1]] < n:
            runs[-1].append(i)
        else:
            runs.append([i])
    return runs


def _choose(matches: list[re.Match[str]]) -> tuple[list[re.Match[str]], bool]:
    """The markers that number the rows, and whether their numbers are item numbers."""
    numbers = [int(m.group(1)) for m in matches]
    runs = _runs(numbers)
    best = max(runs, key=len)
    if len(best) >= 0.8 * len(matches):
        return [matches[i] for i in best], True
    if all(numbers[r[0]] == 1 for r in runs if len(r) > 1):  # numbering restarts per category
        return matches, False
    return [matches[i] for i in best], True


def _segments(region: str, with_header: bool) -> tuple[str, list[_Segment], str] | None:
    """Split the region at item markers: (preamble, segments, form) or None.

    Form A is "(1)" markers; otherwise whichever of B (numbers at line start) and C
    ("1." opening a cell) finds more rows, B on a tie: C only wins where the line-start
    numbers are category numbers and the item numbers stand in a later cell.
    """
    minimum = 3 if with_header else 10
    url_spans = [(m.start(), m.end()) for m in _URL_RE.finditer(region)]
    url_starts = [s for s, _ in url_spans]
    found: list[tuple[str, list[re.Match[str]], bool]] = []
    for form, regex in (("A", _MARKER_A), ("B", _MARKER_B), ("C", _MARKER_C)):
        matches = [m for m in regex.finditer(region) if 1 <= int(m.group(1)) <= 50]
        if form == "A":
            # a "(1)" inside a URL is no marker
            matches = [m for m in matches if not _inside(url_spans, url_starts, m.start())]
        matches = matches[:MAX_MARKERS]
        if not matches:
            continue
        chosen, numbered = _choose(matches)
        if len(chosen) < minimum:
            continue
        found.append((form, chosen, numbered))
        if form == "A":
            break
    if not found:
        return None
    form, chosen, numbered = max(found, key=lambda f: len(f[1]))  # the first on a tie
    segs = []
    for i, m in enumerate(chosen):
        end = chosen[i + 1].start() if i + 1 < len(chosen) else len(region)
        end = min(end, m.end() + MAX_SEGMENT)
        segs.append(_Segment(int(m.group(1)) if numbered else None, region[m.end():end]))
    return region[: chosen[0].start()], segs, form


def _inside(spans: list[tuple[int, int]], starts: list[int], pos: int) -> bool:
    i = bisect.bisect_left(starts, pos) - 1
    return i >= 0 and spans[i][0] < pos < spans[i][1]


@dataclass
class _Cells:
    """One item's cells as read from its segment."""

    lead_category: str | None  # a category cell before the title (row-number form)
    title: str
    urls: list[str]
    note: str | None
    next_category: str | None  # a category cell after the URL: it is the next row's
    stacked: bool  # several URLs, each on a line of its own


def _parse_segment(seg: str, form: str) -> _Cells:
    """The cells of one item's segment of the table."""
    urls = list(_URL_RE.finditer(seg))
    lead_cat = None
    if urls:
        head, tail = seg[: urls[0].start()], seg[urls[-1].end():]
        clean_urls = [_clean_url(u.group(0)) for u in urls]
    else:
        head, tail, clean_urls = seg, "", []
    stacked = len(urls) > 1 and all(
        not seg[a.end():b.start()].strip() and "\n" in seg[a.end():b.start()]
        for a, b in pairwise(urls)
    )
    next_cat = None
    if tail:
        rest, next_cat = _peel_category_suffix(_tokens(tail))
        note = _smart_join(rest) or None
        if note and len(note) > 20:
            note = None
    else:
        note = None
        tokens = _tokens(head)
        rest, next_cat = _peel_category_suffix(tokens)
        if next_cat and len(rest) < len(tokens):
            # cut the category tokens off the raw head text too
            head = _cut_after_tokens(head, rest)
        head, note = _split_note(head)
    tokens = _tokens(head)
    if form == "B":
        tokens, lead_cat = _peel_category_prefix(tokens)
    while tokens and tokens[-1].isdigit():
        tokens.pop()
    title = _smart_join(tokens)
    return _Cells(lead_cat, title, clean_urls, note, next_cat, stacked)


@dataclass
class _Item:
    """A parsed table row before it becomes one :class:`ReportItemRow` per URL."""

    number: int | None  # from the item marker
    matched: int | None  # from the title
    category: str | None
    title: str
    urls: list[str]
    note: str | None
    stacked: bool


def _unstack_columns(items: list[_Item]) -> None:
    """Give URLs read column by column back to their rows, in place.

    pdfminer makes one text box of a run of single-line cells, so a PDF table can come
    out as the titles of rows 2..6 followed by the URLs of rows 2..6: rows without URL,
    then one row holding a URL for each of them and its own, one per line. Rows with a
    note ("不适用") in the URL column end such a run.
    """
    start = 0
    for i, item in enumerate(items):
        if item.urls or item.note is not None:
            run = i - start
            if run and item.stacked and len(item.urls) == run + 1:
                for row, url in zip(items[start:i + 1], list(item.urls), strict=True):
                    row.urls = [url]
            start = i + 1


def _cut_after_tokens(head: str, tokens: list[str]) -> str:
    """``head`` up to the end of its first ``len(tokens)`` whitespace tokens."""
    if not tokens:
        return ""
    pos = 0
    folded = _COUNT.sub(lambda m: " " * len(m.group(0)), fold_width(head))
    for tok in tokens:
        pos = folded.index(tok, pos) + len(tok)
    return head[:pos]


def parse_checklist_table(text: str) -> list[ReportItemRow]:
    """Rows of the 清单事项公开情况表 in ``text`` (one per URL; items without URL once).

    Finds the table by its header line ("序号 类别 公开事项 网址") or caption, splits it at
    item markers ("(1)" .. "(50)", row numbers at line start, or "1." opening a cell), and
    reads each item's title, URL(s) and note. Category cells are carried forward over merged cells and
    mapped to the canonical category names. Item numbers come from the markers; when the
    numbering restarts per category they come from :func:`match_item`.
    """
    # Folded first: a full-width "：", "．" or "／" inside a URL would end it.
    text = fold_width(text.replace("\r\n", "\n").replace("\r", "\n"))
    region, with_header = _find_region(text)
    region = _join_spaced_urls(_join_broken_urls(region))
    found = _segments(region, with_header)
    if found is None:
        return _url_lines(region) if with_header else []
    preamble, segs, form = found
    _, category = _peel_category_suffix(_tokens(preamble))
    rows: list[ReportItemRow] = []
    numbers_agree = 0
    parsed: list[_Item] = []
    for seg in segs:
        cells = _parse_segment(seg.text, form)
        if cells.lead_category:
            category = cells.lead_category
        matched = match_item(cells.title)
        if seg.number is not None and matched == seg.number:
            numbers_agree += 1
        parsed.append(_Item(seg.number, matched, category, cells.title, cells.urls, cells.note,
                            cells.stacked))
        if cells.next_category:
            category = cells.next_category
    # Row numbers (forms B, C) may be category numbers or running numbers of a partial table.
    trust_numbers = form == "A" or numbers_agree >= 0.5 * len(parsed)
    with_url = sum(1 for p in parsed if p.urls)
    if with_url < (3 if with_header else 5) and \
            sum(1 for p in parsed if p.matched is not None) < 0.6 * len(parsed):
        return []  # numbered paragraphs of the report body, not a table
    _unstack_columns(parsed)
    for p in parsed:
        item = p.number if trust_numbers and p.number is not None else p.matched
        cat = p.category
        if item is not None and cat is None:
            cat = category_of(item)
        if not p.urls:
            rows.append(ReportItemRow(item, cat, p.title, None, p.note))
        for url in p.urls:
            rows.append(ReportItemRow(item, cat, p.title, url, p.note))
    return rows


def _url_lines(region: str) -> list[ReportItemRow]:
    """Fallback for tables without item numbers: one row per line holding a URL."""
    rows = []
    category = None
    for line in region.split("\n"):
        m = _URL_RE.search(line)
        if not m:
            _, cat = _peel_category_suffix(_tokens(line))
            category = cat or category
            continue
        tokens, cat = _peel_category_prefix(_tokens(line[: m.start()]))
        category = cat or category
        title = _smart_join(tokens)
        number = match_item(title)
        rows.append(ReportItemRow(number, category or (category_of(number) if number else None),
                                  title, _clean_url(m.group(0)), None))
    return rows
