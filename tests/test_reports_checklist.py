"""The 50-item checklist as data, ``match_item`` and the 清单 table parser on many layouts."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from archive.reports.checklist import (
    CATEGORIES,
    CHECKLIST,
    match_category,
    match_item,
    parse_checklist_table,
)

COUNTS = [6, 8, 7, 5, 9, 4, 3, 4, 2, 2]
WUST_SEED = Path(__file__).parent / "fixtures" / "reports" / "seeds" / "wust_2020-2021.txt"
HEADER = "附件\n学校清单事项公开情况表\n序号\t类别\t公开事项\t网 址\n"


def url(n: int) -> str:
    return f"http://xxgk.example.edu.cn/{1000 + n}/list.htm"


def test_checklist_shape():
    assert [i.number for i in CHECKLIST] == list(range(1, 51))
    assert len(CATEGORIES) == 10
    for cat_number, count in enumerate(COUNTS, start=1):
        items = [i for i in CHECKLIST if i.category_number == cat_number]
        assert len(items) == count
        assert {i.category for i in items} == {CATEGORIES[cat_number - 1]}
    yearly = {i.number for i in CHECKLIST if i.yearly}
    # 信息公开年度报告, 招生计划, 录取, 预算, 决算, 收费, 就业质量报告, 本科教学质量报告 ...
    assert {6, 7, 9, 19, 20, 21, 33, 35} <= yearly
    assert not {2, 15, 36, 39, 42, 48} & yearly  # rules and mechanisms are not yearly
    assert CHECKLIST[5].title == "信息公开年度报告"
    assert CHECKLIST[22].title == "校级领导干部因公出国（境）情况"


@pytest.mark.parametrize("item", CHECKLIST, ids=lambda i: str(i.number))
def test_match_item_on_every_title(item):
    assert match_item(item.title) == item.number
    messy = item.title.replace("，", ", ").replace("（", "(").replace("）", ")")
    assert match_item(f"({item.number}) {messy}") == item.number
    assert match_item(" ".join(item.title)) == item.number  # PDF letter spacing


@pytest.mark.parametrize("title,number", [
    ("招生章程", 7),
    ("信息公开年度报告", 6),
    ("2020-2021学年信息公开工作年度报告", 6),
    ("本科教学质量报告", 35),
    ("高职人才培养质量年度报告", 35),
    ("毕业生就业质量年度报告", 33),
    ("收费标准", 21),
    ("部门预算", 19),
    ("部门决算", 20),
    ("学校概况", 1),
    ("规章制度", 2),
    ("研究生招生咨询及申诉渠道", 14),
    ("招生咨询及考生申诉渠道", 10),
    ("学生申诉办法", 39),
    ("巡视整改", 49),
    ("来华留学生管理规定", 48),
    ("首页", None),
    ("联系我们", None),
    ("", None),
])
def test_match_item_free_text(title, number):
    assert match_item(title) == number


@pytest.mark.parametrize("cell,category", [
    ("基本信息 (6项)", "基本信息"),
    ("招生考试 信息 （8项）", "招生考试信息"),
    ("财务、 资产及 收费信息", "财务、资产及收费信息"),
    ("学位、学 科信息", "学位、学科信息"),
    ("一、对外交流与合作信息（2项）", "对外交流与合作信息"),
    ("其它", "其他"),
    ("学风建设机构", None),
    ("办学规模", None),
])
def test_match_category(cell, category):
    assert match_category(cell) == category


def _table(items, *, sep="\t", fullwidth=False, break_urls=False, wrap=False,
           no_url=frozenset(), cells_on_lines=False, repeat_category=False):
    """A 清单 table in the style of real reports (WUST layout unless told otherwise)."""
    lines = [HEADER.rstrip("\n")]
    previous_cat = None
    for item in items:
        lp, rp = ("（", "）") if fullwidth else ("(", ")")
        cat_cell = ""
        if item.category_number != previous_cat or repeat_category:
            count = COUNTS[item.category_number - 1]
            cat_cell = f"{item.category_number}{sep}{item.category} {lp}{count}项{rp}"
        previous_cat = item.category_number
        title = item.title
        if not fullwidth:
            title = title.replace("，", ",").replace("（", "(").replace("）", ")")
        if wrap and len(title) > 12:
            title = title[:10] + "\n" + title[10:]
        link = url(item.number)
        if break_urls:
            link = link[:-12] + "\n" + link[-12:]
        last = "不适用" if item.number in no_url else link
        marker = f"{lp}{item.number}{rp} "
        if cells_on_lines:
            parts = [p for p in (cat_cell.replace(sep, "\n"), marker + title, last) if p]
            lines.append("\n".join(parts))
        else:
            lead = cat_cell if cat_cell else sep
            lines.append(f"{lead}{sep}{marker}{title}{sep}{last}")
    return "正文……\n" + "\n".join(lines) + "\n"


def _expect(items, no_url=frozenset()):
    return {i.number: (None if i.number in no_url else url(i.number)) for i in items}


def _mapping(rows):
    return {r.item_number: r.url for r in rows}


@pytest.mark.parametrize("options", [
    {},
    {"sep": " "},
    {"sep": "  "},
    {"fullwidth": True},
    {"break_urls": True},
    {"wrap": True},
    {"cells_on_lines": True},
    {"repeat_category": True},
    {"sep": " ", "fullwidth": True, "break_urls": True, "wrap": True},
], ids=repr)
def test_table_layouts(options):
    rows = parse_checklist_table(_table(CHECKLIST, **options))
    assert _mapping(rows) == _expect(CHECKLIST)
    assert [r.category for r in rows] == [i.category for i in CHECKLIST]
    titles = {r.item_number: r.title for r in rows}
    assert titles[23].replace("(", "（").replace(")", "）") == CHECKLIST[22].title


def test_items_without_url_keep_their_note():
    no_url = frozenset({23, 34, 47, 48})
    rows = parse_checklist_table(_table(CHECKLIST, no_url=no_url))
    assert _mapping(rows) == _expect(CHECKLIST, no_url)
    notes = {r.item_number: r.note for r in rows if r.note}
    assert notes == {n: "不适用" for n in no_url}
    assert {r.item_number: r.title for r in rows}[34] == "艺术教育发展年度报告"


def test_note_with_spaces_only_and_wust_style_split_count():
    text = HEADER + (
        "8\t学位、学 科信息\t(43) 授予博士、硕士、学士学位的基本要求\thttp://a.edu.cn/43.htm\n"
        "\t(4项)\t(44) 拟授予硕士、博士学位同等学力人员资格审查和学力水平认定 无\n"
        "\t\t(45) 新增硕士、博士学位授权学科或专业学位授权点审核办法\thttp://a.edu.cn/45.htm\n"
        "9 对外交流与合作信息 (2项) (47) 中外合作办学情况 暂无\n"
        "\t\t(48) 来华留学生管理相关规定\thttp://a.edu.cn/48.htm\n"
    )
    rows = parse_checklist_table(text)
    assert [(r.item_number, r.category, r.url, r.note) for r in rows] == [
        (43, "学位、学科信息", "http://a.edu.cn/43.htm", None),
        (44, "学位、学科信息", None, "无"),
        (45, "学位、学科信息", "http://a.edu.cn/45.htm", None),
        (47, "对外交流与合作信息", None, "暂无"),
        (48, "对外交流与合作信息", "http://a.edu.cn/48.htm", None),
    ]


def test_running_row_numbers_form():
    lines = ["序号\t公开事项\t公开网址"]
    for item in CHECKLIST[:12]:
        lines.append(f"{item.number}\t{item.title}\t{url(item.number)}")
    rows = parse_checklist_table("\n".join(lines))
    assert _mapping(rows) == _expect(CHECKLIST[:12])


def test_category_numbers_are_not_item_numbers():
    """Rows numbered by category ("1 基本信息 办学规模…") are numbered by their titles."""
    lines = ["序号\t类别\t公开事项\t网址"]
    for item in CHECKLIST:
        lines.append(f"{item.category_number}\t{item.category}\t{item.title}\t{url(item.number)}")
    rows = parse_checklist_table("\n".join(lines))
    assert _mapping(rows) == _expect(CHECKLIST)


def test_numbering_restarting_per_category():
    lines = ["序号\t公开事项\t网址"]
    for cat in range(1, 11):
        items = [i for i in CHECKLIST if i.category_number == cat]
        lines.append(f"{CATEGORIES[cat - 1]}")
        for k, item in enumerate(items, start=1):
            lines.append(f"（{k}）{item.title}\t{url(item.number)}")
    rows = parse_checklist_table("\n".join(lines))
    assert _mapping(rows) == _expect(CHECKLIST)


def test_urls_broken_over_blank_lines_and_complete_urls_left_alone():
    text = HEADER + (
        "1\t基本信息 (6项)\t(1) 办学规模等办学基本情况\thttp://xxgk.a.edu.cn/25\n\n"
        "98/list.htm\n\n\t\t(2) 学校章程及制定的各项规章制度\thttp://xxgk.a.edu.cn/\n"
        "2\t招生考试信息 (8项)\t(7) 招生章程及特殊类型招生办法\thttp://zs.a.edu.cn/list.\n\nhtm\n"
        "\t\t(8) 特殊类型招生入选考生资格及测试结果\thttp://zs.a.edu.cn/a/b/li\nst.jsp?id=8\n"
    )
    rows = parse_checklist_table(text)
    assert [(r.item_number, r.category, r.url) for r in rows] == [
        (1, "基本信息", "http://xxgk.a.edu.cn/2598/list.htm"),
        (2, "基本信息", "http://xxgk.a.edu.cn/"),
        (7, "招生考试信息", "http://zs.a.edu.cn/list.htm"),
        (8, "招生考试信息", "http://zs.a.edu.cn/a/b/list.jsp?id=8"),
    ]


def test_multiple_urls_give_one_row_each():
    text = HEADER + "1\t基本信息\t(1) 办学规模等办学基本情况\thttp://a.cn/1 http://b.cn/1\n" \
        "\t\t(2) 学校章程及制定的各项规章制度\thttp://a.cn/2\n" \
        "\t\t(3) 教职工代表大会相关制度、工作报告\thttp://a.cn/3\n"
    rows = parse_checklist_table(text)
    assert [(r.item_number, r.url) for r in rows] == [
        (1, "http://a.cn/1"), (1, "http://b.cn/1"), (2, "http://a.cn/2"), (3, "http://a.cn/3")]


def test_url_query_strings_and_https():
    text = HEADER + "".join(
        f"\t\t({n}) {CHECKLIST[n - 1].title}\thttps://xxgk.a.edu.cn/list.jsp?urltype=tree&id={n}，\n"
        for n in range(1, 6)
    )
    rows = parse_checklist_table(text)
    # in canonical form (sorted query), as links.url has it: report rows join the crawl
    assert _mapping(rows) == {n: f"https://xxgk.a.edu.cn/list.jsp?id={n}&urltype=tree"
                              for n in range(1, 6)}


@pytest.mark.parametrize("host", ["xxgk.example.edu.cn", "XXGK.Example.edu.cn:80"])
def test_urls_without_a_scheme_are_http(host):
    """Printed as "xxgk.wust.edu.cn/2598/list.htm": read as http://, in canonical form."""
    text = _table(CHECKLIST).replace("http://xxgk.example.edu.cn", host)
    rows = parse_checklist_table(text)
    assert _mapping(rows) == _expect(CHECKLIST)
    assert {r.item_number: r.title for r in rows}[6] == "信息公开年度报告"  # no URL glued on


def test_www_urls_without_a_scheme_join_the_crawled_links():
    text = _table(CHECKLIST).replace("http://xxgk.example.edu.cn/", "www.example.edu.cn/xxgk/")
    rows = parse_checklist_table(text)
    assert _mapping(rows) == {i.number: f"http://www.example.edu.cn/xxgk/{1000 + i.number}/list.htm"
                              for i in CHECKLIST}


def test_urls_without_a_scheme_broken_across_lines():
    text = HEADER + (
        "1\t基本信息 (6项)\t(1) 办学规模等办学基本情况\txxgk.a.edu.cn/25\n"
        "98/list.htm\n\t\t(2) 学校章程及制定的各项规章制度\txxgk.a.edu.cn/2599/li\nst.htm\n"
        "\t\t(3) 教职工代表大会相关制度、工作报告\txxgk.a.edu.cn/\n"
        "xxgk.b.edu.cn/2600/list.htm\n"
    )
    rows = parse_checklist_table(text)
    assert [(r.item_number, r.url) for r in rows] == [
        (1, "http://xxgk.a.edu.cn/2598/list.htm"),
        (2, "http://xxgk.a.edu.cn/2599/list.htm"),
        (3, "http://xxgk.a.edu.cn/"),  # the next line is a URL of its own
        (3, "http://xxgk.b.edu.cn/2600/list.htm"),
    ]


def test_file_names_and_mail_addresses_are_not_urls():
    text = HEADER + (
        "1\t基本信息\t(1) 办学规模等办学基本情况 见附件1.pdf\thttp://a.edu.cn/1.htm\n"
        "\t\t(2) 学校章程及制定的各项规章制度 xxgk@a.edu.cn\thttp://a.edu.cn/2.htm\n"
        "\t\t(3) 教职工代表大会相关制度、工作报告\thttp://a.edu.cn/3.htm\n"
    )
    rows = parse_checklist_table(text)
    assert [(r.item_number, r.url) for r in rows] == [
        (1, "http://a.edu.cn/1.htm"), (2, "http://a.edu.cn/2.htm"), (3, "http://a.edu.cn/3.htm")]


@pytest.mark.parametrize("old,new", [
    ("http://", "http：//"),
    ("xxgk.example.edu.cn", "xxgk．example．edu．cn"),
    ("/list.htm", "／list.htm"),
    ("http://xxgk.example.edu.cn/", "ｈｔｔｐ：／／ｘｘｇｋ．ｅｘａｍｐｌｅ．ｅｄｕ．ｃｎ／"),
], ids=["colon", "dots", "slash", "all"])
def test_full_width_characters_inside_urls(old, new):
    rows = parse_checklist_table(_table(CHECKLIST).replace(old, new))
    assert _mapping(rows) == _expect(CHECKLIST)


def _wust() -> tuple[str, str]:
    """The WUST seed split before its 清单 table's header row: (body, table)."""
    head, sep, table = WUST_SEED.read_text(encoding="utf-8").partition("序号\t类别")
    return head, sep + table


def test_wust_rows_numbered_with_a_dot():
    """"1." .. "50." instead of "(1)": the line-start numbers are category numbers."""
    head, table = _wust()
    dotted = re.sub(r"\((\d{1,2})\) ?", r"\1. ", table)
    assert "\n\t(4项)\t44. 拟授予" in dotted and "\n2\t招生考试 信息 (8项)\t7. " in dotted
    rows = parse_checklist_table(head + dotted)
    assert rows == parse_checklist_table(head + table)
    assert [r.item_number for r in rows] == list(range(1, 51))
    assert all(r.url and r.url.endswith("/list.htm") and r.note is None for r in rows)


def test_wust_space_inside_urls():
    """"…/2598/ list.htm", as PDF and Word text extraction print a URL wrapped in its cell."""
    head, table = _wust()
    rows = parse_checklist_table(head + table.replace("/list.htm", "/ list.htm"))
    assert rows == parse_checklist_table(head + table)
    assert rows[0].url == "http://xxgk.wust.edu.cn/2598/list.htm" and rows[0].note is None


@pytest.mark.parametrize("cell,expected", [
    ("http://a.edu.cn/ 2598/list.htm", ("http://a.edu.cn/2598/list.htm", None)),
    ("http://a.edu.cn/2598 /page.jsp?id=3", ("http://a.edu.cn/2598/page.jsp?id=3", None)),
    ("http://a.edu.cn/2598/list. htm", ("http://a.edu.cn/2598/list.htm", None)),
    ("http://a.edu.cn/2598/ main.htm", ("http://a.edu.cn/2598/main.htm", None)),
    # not the URL's rest: a note, another URL, a complete URL, a host, a bare word
    ("http://a.edu.cn/2598/ 不适用", ("http://a.edu.cn/2598/", "不适用")),
    ("http://a.edu.cn/2598/ www.b.edu.cn/x.htm", ("http://a.edu.cn/2598/", None)),
    ("http://a.edu.cn/list.htm /x.htm", ("http://a.edu.cn/list.htm", "/x.htm")),
    ("http://a.edu.cn list.htm", ("http://a.edu.cn/", "list.htm")),
    ("http://a.edu.cn/2598/ list", ("http://a.edu.cn/2598/", "list")),
])
def test_spaces_inside_urls_joined_only_before_their_rest(cell, expected):
    text = HEADER + "".join(
        f"\t\t({n}) {CHECKLIST[n - 1].title}\t{cell if n == 1 else url(n)}\n" for n in range(1, 6))
    first = parse_checklist_table(text)[0]
    assert (first.url, first.note) == expected


def _columns(runs: list[list[int]], header: str = HEADER) -> str:
    """A table as pdfminer reads it when single-line cells of neighbouring rows make one
    text box each: a run's titles, then the run's URLs, broken before "htm"."""
    lines = [header.rstrip("\n")]
    for run in runs:
        for n in run:
            item = CHECKLIST[n - 1]
            if n == 1 or CHECKLIST[n - 2].category_number != item.category_number:
                count = COUNTS[item.category_number - 1]
                lines += ["", str(item.category_number), "", f"{item.category} ({count}项)"]
            lines += ["", f"({n}) {item.title}"]
        for n in run:
            lines += ["", url(n)[:-3], url(n)[-3:]]
    return "\n".join(lines) + "\n"


def test_table_read_column_by_column():
    """Rows 2..6 as titles 2..6 then URLs 2..6 (variants/wust.pdf, pdfminer's reading)."""
    runs = [[1], [2, 3, 4, 5, 6], [7], [8], [9, 10, 11], [12, 13, 14, 15, 16, 17]]
    runs += [[n] for n in range(18, 22)] + [list(range(22, 27))] + [[n] for n in range(27, 51)]
    rows = parse_checklist_table(_columns(runs))
    assert _mapping(rows) == _expect(CHECKLIST)
    assert len(rows) == 50
    assert [r.category for r in rows] == [i.category for i in CHECKLIST]


def test_several_urls_of_one_row_stay_together():
    """URLs on one line, or more than the rows before them lack, belong to their row."""
    text = HEADER + (
        "1\t基本信息\t(1) 办学规模等办学基本情况\thttp://a.cn/1\n"
        "\t\t(2) 学校章程及制定的各项规章制度\n"
        "\t\t(3) 教职工代表大会相关制度、工作报告\thttp://a.cn/3 http://b.cn/3\n"
        "\t\t(4) 学术委员会相关制度、年度报告\n"
        "\t\t(5) 学校发展规划、年度工作计划及重点工作安排\n\nhttp://a.cn/5\n\nhttp://b.cn/5\n"
        "http://c.cn/5\n"
        "\t\t(6) 信息公开年度报告\t不适用\n"
        "\t\t(7) 招生章程及特殊类型招生办法\n\nhttp://a.cn/7\n\nhttp://b.cn/7\n"
    )
    rows = parse_checklist_table(text)
    assert [(r.item_number, r.url) for r in rows] == [
        (1, "http://a.cn/1"), (2, None), (3, "http://a.cn/3"), (3, "http://b.cn/3"),
        # a run of 1 row without URL takes 2 URLs, not 3
        (4, None), (5, "http://a.cn/5"), (5, "http://b.cn/5"), (5, "http://c.cn/5"),
        (6, None), (7, "http://a.cn/7"), (7, "http://b.cn/7"),  # a note ends a run
    ]


def test_caption_like_line_of_body_text_is_not_a_table():
    """A wrapped PDF line naming the 事项清单 is no caption (variants/zjut.pdf)."""
    text = (
        "的意见》，严格落实《高等学校信息公开办法》和《教育部关于公布〈高等学校信\n\n"
        "息公开事项清单〉的通知》要求，坚持“以公开为常态、不公开为例外”原则，将信\n\n"
        "息公开作为推进学校治理体系和治理能力现代化建设的抓手，加大主动公开力度，\n\n"
        "新媒体平台发布最新招生政策和信息。公开的招生信息主要包括：（1）研究生招生\n\n"
        "简章、招生政策及规定、招生专业目录和分专业招生计划、复试录取办法及实施细\n\n"
        "则；（2）参加研究生复试考生名单；（3）研究生综合成绩排名、拟录取研究生名\n\n"
        "单公示；（4）研究生招生咨询及申诉渠道；（5）研究生招生历年情况等。学校结\n\n"
        "合研究生招生工作实际，开展研究生招生宣传工作。\n"
    )
    assert parse_checklist_table(text) == []
    # a real caption still opens a table that has no header row
    table = "\n".join(f"({n}) {CHECKLIST[n - 1].title} {url(n)}" for n in range(1, 8))
    rows = parse_checklist_table(text + "附件：学校信息公开事项清单公开情况表\n" + table)
    assert _mapping(rows) == _expect(CHECKLIST[:7])


def test_body_text_is_not_a_table():
    body = "\n".join(f"（{k}）第{k}项工作。学校开展了相关工作，取得了成效。" for k in range(1, 12))
    assert parse_checklist_table(body) == []
    numbered = "\n".join(f"{k}.学校持续推进信息公开工作第{k}项。" for k in range(1, 15))
    assert parse_checklist_table(numbered) == []
    assert parse_checklist_table("") == []


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    picked=st.sets(st.integers(1, 50), min_size=3, max_size=50),
    sep=st.sampled_from(["\t", " ", "  ", "\t "]),
    fullwidth=st.booleans(),
    break_urls=st.booleans(),
    wrap=st.booleans(),
    cells_on_lines=st.booleans(),
    data=st.data(),
)
def test_table_roundtrip_property(picked, sep, fullwidth, break_urls, wrap, cells_on_lines, data):
    items = [i for i in CHECKLIST if i.number in picked]
    no_url = frozenset(data.draw(st.sets(st.sampled_from(sorted(picked)), max_size=2)))
    if len(no_url) >= len(items) - 2:
        no_url = frozenset()
    text = _table(items, sep=sep, fullwidth=fullwidth, break_urls=break_urls, wrap=wrap,
                  no_url=no_url, cells_on_lines=cells_on_lines)
    rows = parse_checklist_table(text)
    assert _mapping(rows) == _expect(items, no_url)
    assert all(r.category == CHECKLIST[r.item_number - 1].category for r in rows)
