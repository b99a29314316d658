"""Which of the eight expected parts an annual report has, judged from its headings.

The eight parts (教育部 guidance on 高校信息公开工作年度报告):

1 概述; 2 主动公开情况; 3 依申请公开和不予公开情况; 4 对信息公开的评议情况;
5 因学校信息公开工作受到举报、复议、诉讼的情况; 6 主要经验、问题和改进措施;
7 其他需要报告的事项; 8 清单事项公开情况表.

Only headings count: a line that starts with a section marker (一、 （一） 1. 第一部分) or a
short unnumbered heading line, or an appendix (附件) — never the introduction sentence
that *lists* the parts ("全文内容包括概述，主动公开情况，…等7个部分"). That sentence is
reported separately as ``mentioned`` and ``declared_count``. Top-level headings may
name a part anywhere in their text ("二、学校信息主动公开情况"); sub-headings count only
when they start with the part's name ("（二）依申请公开情况和不予公开情况。…"), so
"（四）扩大信息主动公开范围" inside the 概述 is not part 2. One heading can cover several
parts ("三、依申请公开、不予公开及评议情况" -> 3 and 4). A top-level "总体情况" is the 概述.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from archive.reports.checklist import parse_checklist_table
from archive.reports.text import cn_to_int, fold_width, reflow

__all__ = ["PART_TITLES", "PartsResult", "detect_parts"]

PART_TITLES: dict[int, str] = {
    1: "概述",
    2: "主动公开情况",
    3: "依申请公开和不予公开情况",
    4: "对信息公开的评议情况",
    5: "因学校信息公开工作受到举报、复议、诉讼的情况",
    6: "主要经验、问题和改进措施",
    7: "其他需要报告的事项",
    8: "清单事项公开情况表",
}


@dataclass
class PartsResult:
    """Parts found (number -> the heading or evidence line) and parts missing."""

    present: dict[int, str]
    missing: list[int]
    mentioned: list[int] = field(default_factory=list)  # named in the introduction only
    declared_count: int | None = None  # "…等7个部分" / "八个部分" / "三部分"


_P = r"^(?:关于|对|因)?(?:本年度|本学年)?(?:学校)?(?:的)?"
_STRONG: dict[int, str] = {
    1: _P + r"(?:工作)?(?:概述|概况)(?:$|[，。,])",
    2: _P + r"(?:信息)?主动公开(?:信息)?(?:工作)?(?:的)?(?:基本)?情况",
    3: _P + r"(?:信息)?(?:依申请公开|不予公开)",
    4: _P + r"(?:信息公开)?(?:工作)?(?:的)?评议",
    5: _P + r"(?:信息公开工作)?(?:受到|遭到|被)?(?:举报|复议|诉讼)",
    6: _P + r"(?:信息公开工作)?(?:中)?(?:的)?(?:主要)?"
            r"(?:经验(?:$|[、，和与及])|(?:存在的)?问题(?:和|与|及)|不足(?:和|与|及)|改进措施)",
    7: _P + r"其[他它]需要?报告",  # "其他需要报告的事项", "其他需报告事项"
    8: _P + r"(?:信息公开)?(?:清单事项|事项清单)",
}
_WEAK: dict[int, tuple[str, ...]] = {
    1: ("概述", "概况"),
    2: ("主动公开",),
    3: ("依申请", "申请公开", "不予公开"),
    4: ("评议",),
    5: ("举报", "复议", "诉讼"),
    6: ("经验", "问题", "改进", "不足"),
    7: ("其他需要", "其它需要", "其他需报告", "其它需报告", "其他事项", "其它事项"),
    8: ("清单",),
}
#: Top-level headings only: "一、总体情况" opens many reports (the wording of the
#: 政府信息公开工作年度报告 template) as their 概述, but "（一）总体情况" is a common first
#: sub-heading of any part.
_TOP: dict[int, str] = {
    1: _P + r"(?:信息公开)?(?:工作)?(?:的)?总体情况(?:$|[，。,])",
}
# A space may stand before the 、 ("一 、概述", "1 、"): PDFs space out characters.
_L1 = re.compile(r"^(?:第[一二三四五六七八九十]+部分[、:：.\s]*|[一二三四五六七八九十]{1,3}\s*[、．.]\s*)")
_L2 = re.compile(
    r"^(?:[(（][一二三四五六七八九十]{1,3}[)）]\s*|\d{1,2}\s*[、．](?!\d)\s*|\d{1,2}\.(?!\d)\s*"
    r"|[(（]\d{1,2}[)）]\s*)"
)
_APPENDIX = re.compile(r"^(?:附件|附表)\s*\d*\s*[:：]?\s*")
# Only the number is read; no two \s* can meet (a run of spaces was split every way: quadratic)
_COUNT = re.compile(r"(?:(?:等|共|分为|包括)\s*)?([\d一二三四五六七八九十]{1,2})\s*(?:个\s*)?部分")


def _heading_text(rest: str) -> str:
    return re.split(r"[。:：；;]", rest, maxsplit=1)[0].strip()[:40]


def _strong_parts(text: str) -> set[int]:
    compact = re.sub(r"\s", "", text)
    return {n for n, pattern in _STRONG.items() if re.match(pattern, compact)}


def _weak_parts(text: str) -> set[int]:
    compact = re.sub(r"\s", "", text)
    found = {n for n, keys in _WEAK.items() if any(k in compact for k in keys)}
    if re.fullmatch(r"其[他它](?:事项)?", compact):
        found.add(7)
    return found


def _headings(lines: list[str]) -> list[tuple[str, str, set[int]]]:
    """(level, line, parts) for every heading-like line."""
    out = []
    for line in lines:
        if "\t" in line:
            continue  # a table row
        folded = fold_width(line.strip())
        m = _L1.match(folded)
        if m:
            text = _heading_text(folded[m.end():])
            parts = _weak_parts(text) | _strong_parts(text)
            if 1 in parts and 1 not in _strong_parts(text) and len(text) > 8:
                parts.discard(1)  # "概况" deep inside a long top heading is not the 概述
            compact = re.sub(r"\s", "", text)
            parts |= {n for n, pattern in _TOP.items() if re.match(pattern, compact)}
            out.append(("1", line.strip(), parts))
            continue
        m = _L2.match(folded)
        if m:
            out.append(("2", line.strip(), _strong_parts(_heading_text(folded[m.end():]))))
            continue
        m = _APPENDIX.match(folded)
        if m:
            text = folded[m.end():][:40]
            out.append(("appendix", line.strip(), _strong_parts(text) | _weak_parts(text)))
            continue
        compact = re.sub(r"\s", "", folded)
        if len(compact) <= 25 and not re.search(r"[，,。；;]", compact):
            parts = _strong_parts(compact)
            if parts:
                out.append(("plain", line.strip(), parts))
    return out


def _introduction(lines: list[str]) -> str:
    intro = []
    for line in lines[:12]:
        if _L1.match(fold_width(line.strip())):
            break
        intro.append(line)
    return "\n".join(intro)


def detect_parts(text: str) -> PartsResult:
    """Which of the eight parts ``text`` has, with the heading that shows each."""
    lines = reflow(text).split("\n")
    present: dict[int, str] = {}
    for level, line, parts in _headings(lines):
        cut = r"[。；;]" if level == "appendix" else r"[。:：；;]"
        evidence = re.split(cut, line, maxsplit=1)[0][:60]
        for n in sorted(parts):
            present.setdefault(n, evidence)
    if 8 not in present:
        rows = parse_checklist_table(text)
        if len(rows) >= 10:
            present[8] = f"清单事项公开情况表 with {len(rows)} rows"
    intro = _introduction(lines)
    mentioned: list[int] = []
    if re.search(r"包括|分为|部分", intro):
        found = _weak_parts(intro)
        if re.search(r"[、，,]其[他它](?:等|事项|需要|[、，,])", intro):
            found.add(7)
        mentioned = sorted(found)
    declared = None
    m = _COUNT.search(fold_width(intro))
    if m:
        declared = cn_to_int(m.group(1))
    return PartsResult(
        present=dict(sorted(present.items())),
        missing=[n for n in PART_TITLES if n not in present],
        mentioned=mentioned,
        declared_count=declared,
    )
