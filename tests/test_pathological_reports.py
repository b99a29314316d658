"""Pathological report texts: annual-report parsing stays linear in hostile input.

``archive.reports.ingest.ingest_report`` runs in the crawl's process for every page or
attachment that looks like a report, so one crafted text must not stall a crawl. Each test
builds an input on which the former regular expressions or joins took 10 s to a minute of
CPU (runs of spaces, digits or caption lines; a URL grown piece by piece), asserts that
the parse now takes a small fraction of a generous CPU budget, and that what the text
does state is still found.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import date
from typing import Any

from archive.reports.checklist import _MARKER_C, match_item, parse_checklist_table
from archive.reports.facts import (
    extract_facts,
    find_period,
    find_published_date,
    normalise_academic_year,
)

#: CPU seconds a call may take; each took over 10 s before the fix and takes well under
#: a second now.
BUDGET = 2.0

TITLE = "XX大学2020-2021学年信息公开工作年度报告\n"
HEAD = TITLE + "一、概述\n学校坚持以公开为常态。\n二、主动公开情况\n本学年主动公开信息。\n"


def cpu(fn: Callable[..., Any], *args: Any) -> tuple[Any, float]:
    """``fn(*args)`` and the CPU seconds it took."""
    start = time.process_time()
    result = fn(*args)
    return result, time.process_time() - start


def test_whitespace_run_after_a_year_in_the_first_line():
    """facts._RANGE_RE (finding 7): "\\s*年?\\s*(?:度)?\\s*" was cubic in the spaces after a
    year; extract_title tries every raw line of the head as navigation."""
    text = "2021" + "\u2005" * 1900 + "信息公开\n" + HEAD  # U+2005 survives HTML extraction
    facts, seconds = cpu(extract_facts, text)
    assert seconds < BUDGET
    assert facts.title is not None and facts.title.endswith(TITLE.strip())
    assert facts.academic_year == "2020-2021"

    year, seconds = cpu(normalise_academic_year, "2020" + " " * 3000 + "年 度" + " " * 3000 + "x")
    assert seconds < BUDGET
    assert year is None
    assert normalise_academic_year("2020" + " " * 3000 + "年度 — 2021") == "2020-2021"

    # the same pattern in Chinese numerals ("二〇二〇 年 —二〇二一") was quadratic
    year, seconds = cpu(normalise_academic_year, "二〇二〇" + " " * 60000 + "x")
    assert seconds < BUDGET
    assert year is None
    assert normalise_academic_year("二〇二〇" + " " * 3000 + "年—二〇二一") == "2020-2021"


def test_digit_run_after_a_decision_phrase():
    """facts._DECISIONS (finding 8): "{_NUM}\\s*{_UNIT}…不予公开" has no literal start, so
    every digit of a run started a rescan of the rest of the run (quadratic)."""
    counts = "本年度共收到信息公开申请12件，同意公开9件，3件不予公开。\n"
    text = HEAD + "依申请公开" + "1" * 20000 + "\n" + counts
    facts, seconds = cpu(extract_facts, text)
    assert seconds < BUDGET
    assert facts.value("applications_received") == 12
    assert facts.value("agreed") == 9
    assert facts.value("refused") == 3

    # the same shape for 举报/复议/诉讼 ("…2起举报"), read per clause
    text = HEAD + "信息公开举报" + "1" * 20000 + "\n信息公开工作受到2起举报。\n"
    facts, seconds = cpu(extract_facts, text)
    assert seconds < BUDGET
    assert facts.value("complaints") == 2


def test_space_runs_in_period_separator_and_cell_markers():
    """facts._PERIOD_SEP "{_SP}(?:起)?{_SP}" and checklist._MARKER_C "(?<=  )[ \\t]*"
    (finding 9): quadratic in a run of spaces."""
    text = "一、概述\n9月" + " " * 40000 + "x\n统计数据的起止时间为2020年9月1日 起 至2021年8月31日。\n"
    period, seconds = cpu(find_period, text)
    assert seconds < BUDGET
    assert period is not None and period[:2] == (date(2020, 9, 1), date(2021, 8, 31))

    markers, seconds = cpu(lambda s: list(_MARKER_C.finditer(s)), " " * 40000 + "x")
    assert seconds < BUDGET
    assert markers == []

    rows = "".join(f"{n}\t学校章程\t{n}. 规章制度{n}  http://xxgk.a.edu.cn/{n}.htm\n" for n in range(1, 6))
    table = "序号\t类别\t公开事项\t网址\n" + rows + " " * 40000 + "x\n"
    found, seconds = cpu(parse_checklist_table, table)
    assert seconds < BUDGET
    assert [r.url for r in found] == [f"http://xxgk.a.edu.cn/{n}.htm" for n in range(1, 6)]


def test_space_runs_in_count_date_and_title_patterns():
    """Siblings of finding 9: two ``\\s*`` side by side around an optional word in the count
    patterns ("答复\\s*(?:了)?\\s*", "信息\\s*(?:共计)?\\s*", "\\s*余?\\s*条"), "发布时间\\s*[:：]?\\s*",
    a breadcrumb separator starting in every space of a run, and match_item's leading
    "\\s*[(（]?\\s*"."""
    spaces = " " * 40000
    for sentence in ("申请公开答复", "信息公开申请", "主动公开信息"):
        text = HEAD + sentence + spaces + "x\n主动公开信息共计1,320条，收到信息公开申请5件，均已答复5件。\n"
        facts, seconds = cpu(extract_facts, text)
        assert seconds < BUDGET, sentence
        assert facts.value("items_published") == 1320
        assert facts.value("applications_received") == 5
        assert facts.value("applications_answered") == 5

    found, seconds = cpu(find_published_date, "发布时间" + spaces + "x 发布时间：2021-10-28")
    assert seconds < BUDGET
    assert found == (date(2021, 10, 28), "发布时间:2021-10-28")  # read width-folded

    facts, seconds = cpu(extract_facts, "首页" + spaces + "x\n" + HEAD)
    assert seconds < BUDGET
    assert facts.title == TITLE.strip()

    number, seconds = cpu(match_item, spaces + "x")
    assert seconds < BUDGET
    assert number is None
    assert match_item("  ( 2 ) 学校章程及制定的各项规章制度") == 2


def test_many_checklist_caption_lines():
    """checklist._find_region (finding 10): the rest of the text was re-joined and
    re-scanned for "(n)" markers and URLs after every "清单…事项" caption line."""
    table = "".join(f"（{n}）规章制度{n} http://xxgk.a.edu.cn/{n}.htm\n" for n in range(1, 6))
    text = HEAD + "信息公开事项清单\n" + table + "清单事项\n" * 12000
    rows, seconds = cpu(parse_checklist_table, text)
    assert seconds < BUDGET
    assert [(r.item_number, r.url) for r in rows] == [
        (n, f"http://xxgk.a.edu.cn/{n}.htm") for n in range(1, 6)
    ]


def test_url_grown_piece_by_piece():
    """checklist._join_broken_urls and _join_spaced_urls (finding 11): a URL broken over
    many lines, or continued by many spaced parts, was re-split and re-read in full at
    each step (quadratic). URLs stop growing past 2048 characters."""
    header = "序号 类别 公开事项 网址\n"
    rows, seconds = cpu(parse_checklist_table, header + "http://a.cn/\n" + "a/\n" * 40000)
    assert seconds < BUDGET
    assert rows[0].url is not None and rows[0].url.startswith("http://a.cn/a/a/a/")
    assert len(rows[0].url) <= 2048

    rows, seconds = cpu(parse_checklist_table, header + "http://a.cn/" + " /a.htm?/" * 20000 + "\n")
    assert seconds < BUDGET
    assert rows[0].url is not None and rows[0].url.startswith("http://a.cn//a.htm?//a.htm?/")
    assert len(rows[0].url) <= 2048

    # real breaks are still joined
    table = header + "".join(
        f"（{n}）规章制度{n} http://xxgk.a.edu.cn/2598/\n\nlist{n}.htm\n" if n % 2 else
        f"（{n}）规章制度{n} http://xxgk.a.edu.cn/2598/ list{n}.htm\n" for n in range(1, 6)
    )
    assert [r.url for r in parse_checklist_table(table)] == [
        f"http://xxgk.a.edu.cn/2598/list{n}.htm" for n in range(1, 6)
    ]


def test_a_space_run_in_the_introduction_before_its_part_count():
    """The introduction's "共 N 个部分" pattern split a long run of spaces every way (12,000
    spaces: over a second on every ingest). The declared count is still read."""
    from archive.reports.parts import detect_parts

    intro = TITLE + "本报告包括" + " " * 40_000 + "等内容，共8个部分。\n一、概述\n学校坚持以公开为常态。\n"
    result, seconds = cpu(detect_parts, intro)
    assert seconds < BUDGET
    assert result.declared_count == 8
