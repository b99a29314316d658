"""Facts stated in an annual report: year, period, signature date, timeliness, counts.

Everything here reads report *text* (see :func:`archive.reports.text.reflow`) and keeps
the sentence each fact came from, so a reader can check it. A statement of absence
("未收到信息公开申请", "没有受到举报", "未收取任何费用") is a fact with value 0; a topic the
report does not mention yields no fact at all.

The deadline is 31 October after the academic year: 《高等学校信息公开办法》 (教育部令第29号)
asks schools to publish the report on the previous academic year by the end of October. A
signature giving only a month decides timeliness when the whole month is on one side of the
deadline; a report on a calendar year has no academic year, hence no deadline.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal, InvalidOperation

from archive.reports.text import (
    CN_DATE_RE,
    CN_NUM_CHARS,
    DATE_RE,
    cn_to_int,
    fold_width,
    is_heading_start,
    parse_number,
    reflow,
    squeeze_cjk,
)

__all__ = [
    "FACT_NAMES",
    "Fact",
    "ReportFacts",
    "academic_year_from_title",
    "deadline_for",
    "extract_facts",
    "extract_title",
    "find_academic_year",
    "find_period",
    "find_published_date",
    "find_signed_date",
    "find_signed_month",
    "is_annual_report_title",
    "is_calendar_year_period",
    "normalise_academic_year",
    "timeliness",
]

#: The count facts :func:`extract_facts` may report, in a stable order. After them come,
#: when the report has them, ``signed_month`` (YYYYMM, e.g. 202110, from a signature line
#: without a day) and ``calendar_year`` (e.g. 2021, for a report whose statistics period is
#: a calendar year): report_facts.value is an integer column, so these are numbers too.
FACT_NAMES: tuple[str, ...] = (
    "applications_received",
    "applications_answered",
    "agreed",
    "partly_agreed",
    "refused",
    "fees_charged",
    "complaints",
    "reconsiderations",
    "lawsuits",
    "items_published",
)


@dataclass(frozen=True)
class Fact:
    """A number the report states, with the sentence that states it."""

    fact: str
    value: int
    sentence: str


@dataclass
class ReportFacts:
    """What :func:`extract_facts` found; fields are None when the report does not say."""

    title: str | None = None
    academic_year: str | None = None
    period_start: str | None = None
    period_end: str | None = None
    signed_date: str | None = None
    signed_month: str | None = None  # "YYYY-MM" when the signature line gives no day
    calendar_year: str | None = None  # "YYYY" when the statistics period is a calendar year
    published_date: str | None = None  # a web page's "发布时间", when the text has one
    deadline: str | None = None
    timeliness: str = "unknown"
    timeliness_evidence: str = ""
    facts: list[Fact] = field(default_factory=list)

    def value(self, name: str) -> int | None:
        """The value of the first fact called ``name``, or None."""
        for f in self.facts:
            if f.fact == name:
                return f.value
        return None


# ----------------------------------------------------------------------------- years

_YEAR = r"(?:19|20)\d{2}"
_CN_YEAR = r"[〇○零Ｏ一二三四五六七八九]{4}"
_DASH = r"[-—–~～－‐―_/至到]{1,3}"
#: Never two ``\s*`` side by side (``\s*年?\s*``): a run of spaces after a year would be
#: split between them in every way before failing (cubic). Same language, same matches.
_RANGE_RE = re.compile(rf"(?<!\d)({_YEAR})\s*(?:年\s*)?(?:度\s*)?{_DASH}\s*({_YEAR})(?!\d)")
_SHORT_RANGE_RE = re.compile(rf"(?<!\d)({_YEAR})\s*[-—–~～－]\s*(\d{{2}})(?!\d)\s*学?年")
_CN_RANGE_RE = re.compile(rf"({_CN_YEAR})\s*(?:年\s*)?{_DASH}\s*({_CN_YEAR})")
_CAL_YEAR_RE = re.compile(rf"(?<![\d\-—–~～])({_YEAR})\s*年\s*(?:度)?")
_CN_CAL_YEAR_RE = re.compile(rf"({_CN_YEAR})\s*年\s*(?:度)?")


def normalise_academic_year(text: str) -> str | None:
    """The first academic-year range in ``text`` as "YYYY-YYYY" (end = start + 1), or None.

    Accepts 2020-2021, 2020—2021, 2020～2021学年, 2020 -2021, 2020年-2021年, 2020-21学年
    and 二〇二〇—二〇二一.
    """
    folded = fold_width(text)
    for regex in (_RANGE_RE, _CN_RANGE_RE):
        for m in regex.finditer(folded):
            a, b = cn_to_int(m.group(1)), cn_to_int(m.group(2))
            if a is not None and b == a + 1:
                return f"{a}-{b}"
    for m in _SHORT_RANGE_RE.finditer(folded):
        a = int(m.group(1))
        if int(m.group(2)) == (a + 1) % 100:
            return f"{a}-{a + 1}"
    return None


def _calendar_year(text: str) -> int | None:
    folded = fold_width(text)
    m = _CAL_YEAR_RE.search(folded)
    if m:
        return int(m.group(1))
    m = _CN_CAL_YEAR_RE.search(folded)
    return cn_to_int(m.group(1)) if m else None


def academic_year_from_title(title: str) -> str | None:
    """The academic year a report title names: a range, or year-1..year for "2024年…报告"."""
    year = normalise_academic_year(title)
    if year:
        return year
    cal = _calendar_year(title)
    return f"{cal - 1}-{cal}" if cal else None


_TITLE_EXCLUDE = (
    "教学质量", "就业质量", "质量年度报告", "质量报告", "艺术教育", "学术委员会", "财务", "决算",
    "预算", "审计", "社会责任", "毕业生", "人才培养", "学科", "研究生教育", "招生", "基金会",
    "教代会", "工会", "自评", "评估", "科研", "统计", "体育", "资产", "发展报告", "专业",
)


def is_annual_report_title(title: str) -> bool:
    """Whether a link or page title names a school's 信息公开工作年度报告.

    True for "…信息公开工作年度报告", "…信息公开年度报告", "…信息公开工作报告" and a bare
    "2020-2021学年度报告"; False for other yearly reports (本科教学质量年度报告,
    就业质量年度报告, 决算 …) and for the ministry's notices about writing the report.
    """
    t = re.sub(r"\s", "", fold_width(title))
    if not t or any(word in t for word in _TITLE_EXCLUDE):
        return False
    if "通知" in t and any(w in t for w in ("做好", "报送", "编制", "编写", "开展", "提交")):
        return False
    if "信息公开" in t and ("报告" in t or "年报" in t):
        return True
    year = rf"(?:{_YEAR}(?:年)?(?:{_DASH}{_YEAR})?|{_CN_YEAR})"
    return bool(re.fullmatch(
        rf"(?:.{{0,30}}?(?:大学|学院|学校))?{year}(?:学年|年)?度?(?:工作)?(?:年度)?报告"
        r"(?:[(（].{0,12}[)）])?(?:\.(?:pdf|docx?))?", t, re.IGNORECASE,
    ))


# ----------------------------------------------------------------------------- title

#: Leading spaces only from where their run starts: a match from inside a run also matches
#: from its start, which is tried first, so the splits are the same, without rescanning a
#: long run of spaces from each of them (quadratic).
_CRUMB_SEP_RE = re.compile(r"(?:(?<!\s)\s+)?[>›»＞→]+\s*")
_NAV_START = ("首页", "网站首页", "当前位置", "您的位置", "您现在的位置", "所在位置")


def _names_dated_report(text: str) -> bool:
    """Whether ``text`` names a report and a year: what a title left after navigation has."""
    return "报告" in text and bool(normalise_academic_year(text) or _calendar_year(text))


def _is_navigation(line: str) -> bool:
    """Whether a line is a web page's menu bar or breadcrumb ("首页 信息公开指南 … 通知公告")."""
    if _calendar_year(line) or normalise_academic_year(line) or re.search(r"[。，；,;]", line):
        return False
    if line.startswith(_NAV_START):
        return True
    if line.endswith(("大学", "学院", "学校")):
        return False  # "哈尔滨 工程 大学": the first line of a wrapped title
    labels = [t for t in re.split(r"[\s|｜/·>›»＞→]+", line) if t]
    return len(labels) >= 3 and all(2 <= len(t) <= 10 for t in labels)


def _drop_navigation(line: str, raw_lines: list[str]) -> str:
    """``line`` without the navigation an HTML page puts before the report's title.

    Reflow may glue a page's menu bar (a line of its own in the extracted text) to the title
    that follows; a breadcrumb ("首页 > 年度报告 > …") may share the title's line. Either is
    dropped only when what is left still names a report and its year.
    """
    crumbs = _CRUMB_SEP_RE.split(line)
    if len(crumbs) > 1 and _names_dated_report(crumbs[-1]) and \
            not any(_names_dated_report(c) for c in crumbs[:-1]):
        line = crumbs[-1].strip()
    for _ in range(3):  # a site name, a menu bar and a breadcrumb at most
        for raw in raw_lines:
            rest = line[len(raw):].strip()
            if raw and line.startswith(raw) and _is_navigation(raw) and _names_dated_report(rest):
                line = rest
                break
        else:
            break
    return line


def extract_title(text: str) -> str | None:
    """The report's title: a short line near the top naming the report, else the top lines.

    A web page's navigation glued before the title is dropped (see :func:`_drop_navigation`).
    """
    lines = [ln.strip() for ln in reflow(text).split("\n")[:40]]
    raw_lines = [ln.strip() for ln in text.split("\n")[:80] if ln.strip()]
    for i, full_line in enumerate(lines):
        line = _drop_navigation(full_line, raw_lines)
        compact = re.sub(r"\s", "", line)
        if (len(compact) <= 60 and "报告" in compact and "。" not in compact
                and not is_heading_start(compact) and "\t" not in line
                and ("信息公开" in compact or "年度" in compact)
                and not compact.startswith(("按照", "根据", "本"))):
            if i > 0 and line == full_line:
                prev = re.sub(r"\s", "", lines[i - 1])
                if (len(prev) <= 25 and prev.endswith(("大学", "学院", "学校"))
                        and prev not in compact):
                    return re.sub(r"\s+", " ", f"{lines[i - 1]} {line}")
            return re.sub(r"\s+", " ", line)
    head = []
    for line in lines[:3]:
        if len(line) > 40 or any(p in line for p in "，。；,"):
            break
        head.append(line)
    return re.sub(r"\s+", " ", " ".join(head)) if head else None


# ----------------------------------------------------------------------------- dates

_SP = r"[ \t\u3000]*"


_CN_MONTH = "[一二三四五六七八九十]{1,3}"
_CN_DAY = "[一二三四五六七八九十]{1,4}"
#: ``{_SP}(?:起{_SP})?``, not ``{_SP}(?:起)?{_SP}``: the same separators, without splitting
#: a run of spaces between two ``{_SP}`` every way before failing (quadratic).
_PERIOD_SEP = rf"{_SP}(?:起{_SP})?(?:至|到|—+|–|-|~|～|－){_SP}"


def _date_part(n: int, year: str = _YEAR, month: str = r"\d{1,2}", day: str = r"\d{1,2}") -> str:
    """Year (optional), month and day (optional) of date ``n`` of a range, 年/月/日 spelled out."""
    return (
        rf"(?:(?P<y{n}>{year}){_SP}年{_SP})?(?P<m{n}>{month}){_SP}月"
        rf"(?:{_SP}(?P<d{n}>{day}){_SP}[日号])?"
    )


def _dotted_part(n: int) -> str:
    """"2020.9.1", "2020/09/01", "2020-09-01" or "2020.9": one separator within a date."""
    sep = "(?P<s>[./-])" if n == 1 else "(?P=s)"
    return rf"(?P<y{n}>{_YEAR}){sep}(?P<m{n}>\d{{1,2}})(?:(?P=s)(?P<d{n}>\d{{1,2}}))?"


#: Statistics periods: "2020年9月1日至2021年8月31日", the same in Chinese numerals
#: ("二〇二〇年九月一日至二〇二一年八月三十一日"), and "2020.9.1-2021.8.31".
_PERIOD_RES = (
    re.compile(_date_part(1) + _PERIOD_SEP + _date_part(2)),
    re.compile(_date_part(1, _CN_YEAR, _CN_MONTH, _CN_DAY) + _PERIOD_SEP
               + _date_part(2, _CN_YEAR, _CN_MONTH, _CN_DAY)),
    re.compile(rf"(?<![\d.]){_dotted_part(1)}{_PERIOD_SEP}{_dotted_part(2)}(?!\d)"),
)
_PERIOD_HINTS = ("统计", "起止", "时间段", "时间为", "期间", "时间跨度", "执行情况", "时段")


def _month_end(year: int, month: int) -> date:
    nxt = date(year + (month == 12), month % 12 + 1, 1)
    return date.fromordinal(nxt.toordinal() - 1)


def _period_from_match(m: re.Match[str]) -> tuple[date, date] | None:
    # cn_to_int reads Arabic digits too, so one function serves all of _PERIOD_RES
    y1, m1, m2 = cn_to_int(m["y1"] or ""), cn_to_int(m["m1"]), cn_to_int(m["m2"])
    if y1 is None or m1 is None or m2 is None or not 1 <= m2 <= 12:
        return None  # _month_end would roll a month 13 over into January
    y2 = cn_to_int(m["y2"]) if m["y2"] else (y1 if m2 >= m1 else y1 + 1)
    d1 = cn_to_int(m["d1"]) if m["d1"] else 1
    d2 = cn_to_int(m["d2"]) if m["d2"] else None
    try:
        start = date(y1, m1, d1 or 0)
        end = date(y2 or 0, m2, d2 or 0) if m["d2"] else _month_end(y2 or 0, m2)
    except ValueError:
        return None
    if not (date(1990, 1, 1) <= start < end) or (end - start).days > 800:
        return None
    return start, end


def find_period(text: str) -> tuple[date, date, str] | None:
    """The statistics period the report states: (start, end, sentence) or None.

    Prefers a range in a sentence about the statistics ("统计数据的起止时间为2020年9月1日
    至2021年8月31日"); otherwise the first full date range in the opening of the report.
    Dates may be in Chinese numerals ("二〇二〇年九月一日") or dotted ("2020.9.1-2021.8.31").
    """
    flat = fold_width(reflow(text))
    fallback = None
    for sentence in _sentences(flat):
        matches = sorted((m for r in _PERIOD_RES for m in r.finditer(sentence)),
                         key=lambda m: m.start())
        for m in matches:
            period = _period_from_match(m)
            if period is None:
                continue
            if any(h in sentence for h in _PERIOD_HINTS):
                return period[0], period[1], sentence
            if fallback is None and flat.find(sentence) < 3000:
                fallback = (period[0], period[1], sentence)
    return fallback


_ISO_LINE_DATE = r"(?P<iy>(?:19|20)\d{2})[-./](?P<im>\d{1,2})[-./](?P<id>\d{1,2})"
_CN_LINE_DATE = (
    CN_DATE_RE.pattern.replace("(?P<y>", "(?P<cy>")
    .replace("(?P<m>", "(?P<cm>").replace("(?P<d>", "(?P<cd>")
)
_SIGN_PREFIX = r"^[(（]?(?P<prefix>[^，。；;,:：\d\t]{0,30}?|(?:发布|签发|编制)?日期[:：]?)\s*"
_SIGN_LINE_RE = re.compile(
    rf"{_SIGN_PREFIX}(?P<date>{DATE_RE.pattern}|{_CN_LINE_DATE}|{_ISO_LINE_DATE})"
    r"\s*[)）]?$"
)
#: A signature that gives the month only: "2021 年 10 月", "二〇二一年十月".
_SIGN_MONTH_LINE_RE = re.compile(
    rf"{_SIGN_PREFIX}(?P<date>(?P<y>{_YEAR}){_SP}年{_SP}(?P<m>\d{{1,2}}){_SP}月"
    rf"|(?P<cy>{_CN_YEAR}){_SP}年{_SP}(?P<cm>[一二三四五六七八九十]{{1,2}}){_SP}月)"
    r"\s*[)）]?$"
)
_NOT_SIGNATURE_PREFIX = ("至", "到", "截至", "截止", "于", "为", "在", "自", "从", "止", "日")


def _signature_lines(text: str, regex: re.Pattern[str]) -> list[tuple[re.Match[str], str]]:
    """Lines that are nothing but a date of ``regex``'s form, as (match, line), in order.

    The title block (first three lines), table rows and dates wrapped out of a sentence
    ("截至\n2021年8月31日") are skipped.
    """
    lines = reflow(text).split("\n")
    found = []
    for idx, raw in enumerate(lines):
        if idx < 3 or "\t" in raw:
            continue
        m = regex.match(fold_width(raw).strip())
        if not m:
            continue
        prefix = (m["prefix"] or "").strip()
        before = lines[idx - 1].strip() if idx else ""
        if prefix.endswith(_NOT_SIGNATURE_PREFIX) or \
                (not prefix and before.endswith((*_NOT_SIGNATURE_PREFIX, "，", ",", "、"))):
            continue  # "截至\n2021年8月31日": a date wrapped out of a sentence
        found.append((m, raw.strip()))
    return found


def find_signed_date(text: str) -> tuple[date, str] | None:
    """The date line that closes the report (below the school's name): (date, line).

    Only a line that is nothing but a date (optionally after the school's name or
    "日期：") counts, so dates inside body sentences ("截至2021年8月31日，…") never do.
    The last such line wins; the title block (first three lines) is skipped.
    """
    found = None
    for m, line in _signature_lines(text, _SIGN_LINE_RE):
        if m["y"]:
            y, mo, d = int(m["y"]), int(m["m"]), int(m["d"])
        elif m["cy"]:
            y, mo, d = cn_to_int(m["cy"]), cn_to_int(m["cm"]), cn_to_int(m["cd"])
        else:
            y, mo, d = int(m["iy"]), int(m["im"]), int(m["id"])
        try:
            found = (date(y or 0, mo or 0, d or 0), line)
        except ValueError:
            continue
    return found


def find_signed_month(text: str) -> tuple[int, int, str] | None:
    """A closing date line without a day ("2021 年 10 月"): (year, month, line), or None.

    Same rules as :func:`find_signed_date` (the last such line wins). A report signed with a
    full date has a signed date; call this only when :func:`find_signed_date` finds none.
    """
    found = None
    for m, line in _signature_lines(text, _SIGN_MONTH_LINE_RE):
        y = int(m["y"]) if m["y"] else cn_to_int(m["cy"])
        mo = int(m["m"]) if m["m"] else cn_to_int(m["cm"])
        if y and mo and 1 <= mo <= 12:
            found = (y, mo, line)
    return found


_PUBLISHED_RE = re.compile(
    rf"(?:发布|发表|发文|上传|更新|公开)(?:时间|日期)\s*(?:[:：]\s*)?"
    rf"(?:{DATE_RE.pattern}|(?P<iy>(?:19|20)\d{{2}})[-./](?P<im>\d{{1,2}})[-./](?P<id>\d{{1,2}}))"
)


def find_published_date(text: str) -> tuple[date, str] | None:
    """A web page's own publication date ("发布时间：2021-10-28"): (date, match) or None."""
    m = _PUBLISHED_RE.search(fold_width(text))
    if not m:
        return None
    y, mo, d = (m["y"], m["m"], m["d"]) if m["y"] else (m["iy"], m["im"], m["id"])
    try:
        return date(int(y), int(mo), int(d)), m.group(0)
    except ValueError:
        return None


def deadline_for(academic_year: str) -> date | None:
    """31 October of the academic year's end year ("2020-2021" -> 2021-10-31)."""
    m = re.fullmatch(r"(\d{4})-(\d{4})", academic_year or "")
    return date(int(m.group(2)), 10, 31) if m else None


def timeliness(signed: date | None, deadline: date | None) -> tuple[str, str]:
    """("on_time" | "late" | "unknown", evidence) from the signed date and the deadline."""
    if deadline is None:
        return "unknown", "academic year unknown, so no deadline"
    if signed is None:
        return "unknown", f"no signed date found; deadline {deadline.isoformat()}"
    if signed <= deadline:
        return "on_time", f"signed {signed.isoformat()}, on or before deadline {deadline.isoformat()}"
    days = (signed - deadline).days
    return "late", f"signed {signed.isoformat()}, {days} day(s) after deadline {deadline.isoformat()}"


def _month_timeliness(year: int, month: int, deadline: date) -> tuple[str, str]:
    """Timeliness from a signature month: decided when the whole month is on one side."""
    signed = f"signed in {year:04d}-{month:02d} (no day given)"
    if _month_end(year, month) <= deadline:
        return "on_time", f"{signed}, on or before deadline {deadline.isoformat()}"
    if date(year, month, 1) > deadline:
        days = (date(year, month, 1) - deadline).days
        return "late", f"{signed}, at least {days} day(s) after deadline {deadline.isoformat()}"
    return "unknown", f"{signed}, the month of the deadline {deadline.isoformat()}"


def is_calendar_year_period(period: tuple[date, date] | None) -> bool:
    """Whether a statistics period is a calendar year (January to December of one year)."""
    return period is not None and period[0].year == period[1].year and \
        (period[0].month, period[1].month) == (1, 12)


def find_academic_year(text: str, title: str | None = None,
                       period: tuple[date, date] | None = None) -> str | None:
    """The academic year a report covers, "YYYY-YYYY".

    A range in the title wins; a calendar-year title ("2024年信息公开年度报告", "二〇二一年度")
    takes the year from the statistics period when it spans two years, else year-1..year;
    then a range near the top of the text; then the period alone. A report whose period is
    a calendar year ("2021年1月1日至2021年12月31日") covers no academic year: None, unless
    its title names one. Without ``period``, the period is looked up in ``text``.
    """
    title = title if title is not None else extract_title(text)
    if period is None:
        found = find_period(text)
        period = (found[0], found[1]) if found else None
    head = fold_width(reflow(text))[:600]
    if title:
        year = normalise_academic_year(title)
        if year:
            return year
    if is_calendar_year_period(period):
        return None  # inventing year-1..year would give a deadline before the period ends
    if title:
        cal = _calendar_year(title)
        if cal:
            if period and period[1].year == period[0].year + 1:
                return f"{period[0].year}-{period[1].year}"
            return f"{cal - 1}-{cal}"
    year = normalise_academic_year(head)
    if year:
        return year
    if period and period[1].year == period[0].year + 1:
        return f"{period[0].year}-{period[1].year}"
    return None


# ----------------------------------------------------------------------------- counts

#: A count: "12", "1,320", "1.2 万", "3万", "十二". A decimal only with 万 ("1.2 万余条").
_NUM = rf"(\d[\d,，]*(?:\.\d+)?{_SP}万|\d[\d,，]*|[{CN_NUM_CHARS}]+)"
#: :data:`_NUM` for patterns that *begin* with the count ("3件…不予公开"). Such a search tries
#: every character as a start, and each start inside a run of digits would rescan the rest
#: of the run (quadratic). A count matched inside a run also matches from the run's start,
#: which is tried first, so starting only where a number starts finds the same counts: not
#: after a digit, nor after a digit and a comma, nor after a Chinese numeral. At most 16
#: digits and commas (a count printed longer is no count), so starts after ",," stay cheap.
_NUM_LEAD = (rf"((?<!\d)(?<!\d[,，])\d[\d,，]{{0,15}}(?:\.\d+)?{_SP}万"
             rf"|(?<!\d)(?<!\d[,，])\d[\d,，]{{0,15}}"
             rf"|(?<![{CN_NUM_CHARS}])[{CN_NUM_CHARS}]+)")
_UNIT = r"(?:件|次|份|个|项|条|起|宗|例|人次)"
_NEG = r"(?:未|没有|无(?![论法需须])|零|不曾)"


def _sentences(text: str) -> list[str]:
    return [s.strip() for s in re.split(r"(?<=[。！？；;!?])|\n", text) if s.strip()]


def _clauses(sentence: str) -> list[str]:
    return [c for c in re.split(r"[，,；;]", sentence) if c.strip()]


#: A negation just before a count ("未收到一件", "没有受到过任何一起", "无一件"): "not even one".
_NEG_BEFORE_COUNT = re.compile(r"(?:(?:未|没|不曾)[^，,。；;\d]{0,6}|无)\s*$")


def _num(raw: str) -> int | None:
    wan = re.fullmatch(r"([\d,，]+(?:\.\d+)?)\s*万", raw.strip())
    if wan:
        try:
            return int(Decimal(re.sub(r"[,，]", "", wan.group(1))) * 10_000)
        except InvalidOperation:
            return None
    return parse_number(raw)


def _count(s: str, m: re.Match[str]) -> int | None:
    """The count ``m`` matched in ``s``: 0 for a negated one ("未收到一件申请")."""
    value = _num(m.group(1))
    clause = re.split(r"[，,；;。]", s[:m.start(1)])[-1]
    if value == 1 and _NEG_BEFORE_COUNT.search(clause):
        return 0
    return value


_RECEIVED = (
    re.compile(rf"(?:收到|受理|接到|接收)[^。；，,]{{0,20}}?申请[^。；，,\d]{{0,8}}?"
               rf"(?:共计|共|合计)?\s*{_NUM}\s*{_UNIT}"),
    re.compile(rf"(?:收到|受理|接到|接收)[^。；，,\d]{{0,6}}?{_NUM}\s*{_UNIT}[^。；，,]{{0,12}}?申请"),
    re.compile(rf"(?:信息公开申请|公开申请|申请公开信息)\s*(?:(?:共计|共|合计)\s*)?{_NUM}\s*{_UNIT}"),
)
_RECEIVED_NONE = (
    re.compile(rf"{_NEG}(?:收到|受理|接到|接收)(?:过)?(?:任何)?[^。；，,]{{0,15}}?申请"),
    re.compile(rf"{_NEG}(?:信息公开|依申请公开|公开)申请"),
)
#: Optional words take their own trailing spaces ("\s*(?:了\s*)?", not "\s*(?:了)?\s*") in
#: all the count patterns: two ``\s*`` side by side make a run of spaces quadratic.
_ANSWERED = re.compile(rf"(?:答复|回复|办结)\s*(?:了\s*)?{_NUM}\s*{_UNIT}")
_ANSWERED_ALL = re.compile(
    r"(?:一一|均|全部|都|逐一|逐件)(?:已|已经)?(?:按时|及时|依法|依规|按规定|按照规定|按相关程序)?"
    r"(?:予以|给予|给与|作出|做出|进行)?(?:了)?(?:答复|回复|办结)"
    r"|(?:按照规定|按规定|依法|依规|及时|按时)?(?:予以|给予|给与|作出|做出)(?:了)?(?:答复|回复)"
)
_DECISIONS = {
    "partly_agreed": r"部分(?:同意)?公开",
    "refused": r"不(?:予|同意)公开",
    "agreed": r"(?<!部分)(?<!不)(?:同意公开|予以公开|全部公开)",
}
_KEYS = {
    "complaints": ("举报", "投诉"),
    "reconsiderations": ("复议",),
    "lawsuits": ("诉讼",),
}


def _find_count_facts(sentences: list[str]) -> list[Fact]:
    facts: dict[str, Fact] = {}

    def add(name: str, value: int | None, _folded: str) -> None:
        if value is not None and name not in facts:
            facts[name] = Fact(name, value, original[:300])

    for original in sentences:
        s = squeeze_cjk(fold_width(original))
        has_application = "申请" in s and "公开" in s
        if has_application:
            for regex in _RECEIVED:
                m = regex.search(s)
                if m:
                    add("applications_received", _count(s, m), s)
                    break
            else:
                if any(r.search(s) for r in _RECEIVED_NONE):
                    add("applications_received", 0, s)
            m = _ANSWERED.search(s)
            if m:
                add("applications_answered", _num(m.group(1)), s)
            elif _ANSWERED_ALL.search(s) and "applications_received" in facts:
                received = facts["applications_received"]
                if received.sentence == original[:300] and received.value > 0:
                    add("applications_answered", received.value, s)
            for name, pattern in _DECISIONS.items():
                m = (re.search(rf"{pattern}[^。；，,\d]{{0,6}}?{_NUM}\s*{_UNIT}", s)
                     or re.search(rf"{_NUM_LEAD}\s*{_UNIT}[^。；，,]{{0,6}}?{pattern}", s))
                if m:
                    add(name, _num(m.group(1)), s)
                elif re.search(rf"{_NEG}[^。；，,]{{0,6}}?{pattern}", s):
                    add(name, 0, s)
        if ("申请" in s or "信息公开" in s) and re.search(r"收取|收费|费用", s):
            m = re.search(r"(?:收取|收费|费用)[^。；]{0,10}?(\d[\d,]*(?:\.\d+)?)\s*元", s)
            if m:
                add("fees_charged", int(float(m.group(1).replace(",", ""))), s)
            elif (re.search(rf"{_NEG}[^。；，,]{{0,20}}?(?:收取|收费)", s)
                  or re.search(rf"{_NEG}[^。；，,]{{0,6}}?费用", s)
                  or re.search(r"免费|免收", s)):
                add("fees_charged", 0, s)
        if "信息公开" in s:
            for clause in _clauses(s):
                for name, keys in _KEYS.items():
                    for key in keys:
                        if key not in clause:
                            continue
                        m = (re.search(rf"{key}[^，。；\d]{{0,8}}?{_NUM}\s*{_UNIT}", clause)
                             or re.search(rf"{_NUM_LEAD}\s*{_UNIT}[^，。；]{{0,8}}?{key}", clause))
                        if m:
                            add(name, _count(clause, m), s)
                        elif re.search(rf"{_NEG}[^，。；]{{0,25}}?{key}", clause):
                            add(name, 0, s)
        if "累计" not in s:
            m = (re.search(rf"(?:信息公开网|信息公开专栏|信息公开网站)[^。；，,]{{0,12}}?(?:发布|公开)"
                           rf"[^。；，,\d]{{0,10}}?信息\s*(?:(?:共计|共|合计)\s*)?{_NUM}\s*(?:余\s*)?条", s)
                 or re.search(rf"主动公开(?:各类)?信息\s*(?:(?:共计|共|合计)\s*)?{_NUM}\s*(?:余\s*)?条",
                              s)
                 or re.search(rf"公开信息\s*(?:共计|合计)\s*{_NUM}\s*(?:余\s*)?条", s))
            if m:
                add("items_published", _num(m.group(1)), s)
    return [facts[n] for n in FACT_NAMES if n in facts]


def extract_facts(text: str) -> ReportFacts:
    """All facts of a report text; never raises on odd text."""
    flat = reflow(text)
    result = ReportFacts(title=extract_title(text))
    period = find_period(text)
    span = (period[0], period[1]) if period else None
    if period:
        result.period_start, result.period_end = period[0].isoformat(), period[1].isoformat()
    result.academic_year = find_academic_year(text, result.title, span)
    dated: list[Fact] = []  # facts about dates, after the counts
    if period and result.academic_year is None and is_calendar_year_period(span):
        result.calendar_year = str(period[0].year)
        sentence = next((s for s in _sentences(flat) if fold_width(s) == period[2]), period[2])
        dated.append(Fact("calendar_year", period[0].year, sentence[:300]))
    signed = find_signed_date(text)
    month = None if signed else find_signed_month(text)
    if signed:
        result.signed_date = signed[0].isoformat()
    if month:  # signed_date stays None: the column holds whole dates only
        result.signed_month = f"{month[0]:04d}-{month[1]:02d}"
        dated.append(Fact("signed_month", month[0] * 100 + month[1], month[2][:300]))
    deadline = deadline_for(result.academic_year) if result.academic_year else None
    result.deadline = deadline.isoformat() if deadline else None
    if result.calendar_year and span:
        result.timeliness_evidence = (
            f"calendar year {result.calendar_year} report (period {span[0].isoformat()} to "
            f"{span[1].isoformat()}): the 31 October deadline is for academic-year reports"
        )
    elif month and deadline:
        result.timeliness, result.timeliness_evidence = _month_timeliness(
            month[0], month[1], deadline
        )
    else:
        result.timeliness, result.timeliness_evidence = timeliness(
            signed[0] if signed else None, deadline
        )
    published = find_published_date(text)
    if published:
        result.published_date = published[0].isoformat()
        if result.timeliness == "unknown" and signed is None and deadline is not None:
            if published[0] <= deadline:
                result.timeliness = "on_time"
                result.timeliness_evidence = (
                    f"no signed date; page says {published[1]!r}, on or before deadline "
                    f"{deadline.isoformat()}"
                )
            else:  # the page may be a later re-publication: not proof of lateness
                result.timeliness_evidence += f"; page says {published[1]!r}"
        elif signed is not None and deadline is not None and published[0] > deadline:
            # The signature decides (a page date may be a re-publication's), but a reader
            # must see that the page says it went up after the deadline.
            result.timeliness_evidence += (f"; but the page says {published[1]!r}, after the deadline "
                                           "(published late, or re-published)")
    result.facts = _find_count_facts(_sentences(flat)) + dated
    return result
