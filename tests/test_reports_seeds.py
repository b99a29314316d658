"""The five real annual reports in tests/fixtures/reports/seeds, ingested end to end.

Every expected value below was read off the report text by a person, not produced by
running the parser: academic year, statistics period, the date line at the end, the
counts each report states, the headings it has, and (武汉科技大学) the 50 URLs of its
清单事项公开情况表.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from archive.reports.checklist import CHECKLIST, parse_checklist_table
from archive.reports.facts import extract_facts
from archive.reports.ingest import ensure_checklist, ingest_report
from archive.reports.parts import detect_parts
from archive.reports.search import search_reports

SEEDS = Path(__file__).parent / "fixtures" / "reports" / "seeds"
SEEN = "2026-11-23T14:55:41Z"

# What a careful reader finds in each report.
EXPECTED = {
    "hrbeu_2020-2021": {  # 哈尔滨工程大学: no date line at the end of the text
        "title": "哈尔滨工程大学 2020-2021 年度信息公开工作报告",
        "academic_year": "2020-2021",
        "period": ("2020-09-01", "2021-08-31"),  # "2020 年 9月 1 日至 2021\n\n年 8 月 31日"
        "signed_date": None,
        "deadline": "2021-10-31",
        "timeliness": "unknown",
        "facts": {
            "applications_received": 0,  # 本年度学校未收到信息公开申请。
            "fees_charged": 0,  # 本年度没有因依申请公开信息收取或减免费用情况。
            "complaints": 0,  # 没有受到举报，没有因…申请行政复议和提起行政诉讼的情况
            "reconsiderations": 0,
            "lawsuits": 0,
        },
        "absent_facts": ("applications_answered", "items_published", "agreed", "refused"),
        "present": [1, 2, 3, 4, 5, 6, 7],
        "missing": [8],  # "…其他需要报告的事项等 7 个部分": no 清单 table
        "declared": 7,
    },
    "hrbcvc_2024": {  # 哈尔滨城市职业学院: calendar-year title, signed one day late
        "title": "哈尔滨城市职业学院 2024 年信息公开年度报告",
        "academic_year": "2023-2024",  # from "统计数据的时间为 2023 年 9\n\n月 1 日至 2024 年 8 月 31 日"
        "period": ("2023-09-01", "2024-08-31"),
        "signed_date": "2024-11-01",
        "deadline": "2024-10-31",
        "timeliness": "late",
        "facts": {
            "complaints": 0,  # 未产生因信息公开工作引起举报的情况。
            "items_published": 320,  # 学校信息公开网发布信息 320 余条
        },
        # It never reports on applications, fees, 复议 or 诉讼.
        "absent_facts": ("applications_received", "applications_answered", "fees_charged",
                         "reconsiderations", "lawsuits"),
        # Headings: 一概述 二主动公开 三专项信息公开 四评议 六举报 七经验问题改进 (no 五, no 八):
        # the 依申请公开 part announced in its introduction was never written.
        "present": [1, 2, 4, 5, 6],
        "missing": [3, 7, 8],
        "declared": 8,
    },
    "qqhrtc_2021-2022": {  # 齐齐哈尔高等师范专科学校: three parts, period to the signing day
        "title": "2021—2022",  # the text has no other title line
        "academic_year": "2021-2022",
        "period": ("2021-10-01", "2022-10-25"),  # "2021年10月1日至2022年10月25日…执行情况"
        "signed_date": "2022-10-25",
        "deadline": "2022-10-31",
        "timeliness": "on_time",
        "facts": {
            "applications_received": 0,  # 收到要求公开信息的申请0件。
            "complaints": 0,  # 没有收到任何举报和投诉。
            "items_published": 406,  # 公开信息共计 406 条
        },
        "absent_facts": ("applications_answered", "fees_charged", "reconsiderations", "lawsuits"),
        # 一、概述 二、信息公开情况 [(一)主动公开 (二)依申请公开和不予公开 (三)评议 (四)举报]
        # 三、不足和改进措施. The 附件 清单 it announces is not part of this text.
        "present": [1, 2, 3, 4, 5, 6],
        "missing": [7, 8],
        "declared": 3,
        "mentioned_includes": [8],
    },
    "wust_2020-2021": {  # 武汉科技大学: all eight parts and the 50-row 清单 table
        "title": "武汉科技大学 2020-2021 学年度 信息公开工作报告",
        "academic_year": "2020-2021",
        "period": ("2020-09-01", "2021-08-31"),
        "signed_date": "2021-10-10",  # above the appendix, not at the very end
        "deadline": "2021-10-31",
        "timeliness": "on_time",
        "facts": {
            "applications_received": 2,  # 学校收到信息公开申请 2 次，…向申请人一一答复
            "applications_answered": 2,
            "complaints": 0,  # 学校未收到因信息公开工作的举报、复议、诉讼。
            "reconsiderations": 0,
            "lawsuits": 0,
        },
        "absent_facts": ("fees_charged", "items_published", "agreed", "refused"),
        "present": [1, 2, 3, 4, 5, 6, 7, 8],
        "missing": [],
        "declared": 8,
    },
    "zjut_2021-2022": {  # 浙江工业大学: no date line; six parts listed and written
        "title": "浙江工业大学 2021-2022 学年信息公开 年度工作报告",
        "academic_year": "2021-2022",
        "period": ("2021-09-01", "2022-08-31"),
        "signed_date": None,
        "deadline": "2022-10-31",
        "timeliness": "unknown",
        "facts": {
            "applications_received": 1,  # 学校收到信息公开申请 1 件，…按照规定给与答复。
            "applications_answered": 1,
            "fees_charged": 0,  # 学校没有发生有关依申请公开信息收费和费用减免的情况。
            "complaints": 0,  # 学校没有因信息公开工作遭到举报投诉的情况。
        },
        # The heading names 复议、诉讼 but the sentence only speaks of 举报投诉.
        "absent_facts": ("reconsiderations", "lawsuits", "items_published"),
        "present": [1, 2, 3, 4, 5, 6],
        "missing": [7, 8],
        "declared": None,
    },
}

_WUST = "http://xxgk.wust.edu.cn/{}/list.htm"
# Read off the 学校清单事项公开情况表 of the 武汉科技大学 report: item -> URL path number.
WUST_ITEM_URLS = {
    n: _WUST.format(page) for n, page in {
        1: 2598, 2: 2599, 3: 2600, 4: 2601, 5: 2602, 6: 2603,
        7: 2639, 8: 2640, 9: 2641, 10: 2642, 11: 2644, 12: 2645, 13: 2646, 14: 2647,
        15: 2671, 16: 2672, 17: 2673, 18: 2674, 19: 2675, 20: 2676, 21: 2677,
        22: 2695, 23: 2696, 24: 2697, 25: 2698, 26: 2699,
        27: 2707, 28: 2708, 29: 2709, 30: 2710, 31: 2711, 32: 2712, 33: 2713, 34: 2714, 35: 2715,
        36: 2593, 37: 2732, 38: 2733, 39: 2734,
        40: 2594, 41: 2745, 42: 2746,
        43: 2595, 44: 2751, 45: 2752, 46: 2753,
        47: 2762, 48: 2763,
        49: 2766, 50: 2768,
    }.items()
}


def _seed(name: str) -> bytes:
    return (SEEDS / f"{name}.txt").read_bytes()


@pytest.fixture
def loaded(db):
    """All five seeds ingested as UTF-8 text; {name: report id}."""
    return {
        name: ingest_report(db, name.split("_")[0], _seed(name), filename=f"{name}.txt",
                            url=f"https://example.edu.cn/{name}.txt", seen_at=SEEN)
        for name in EXPECTED
    }


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_report_row(db, loaded, name):
    exp = EXPECTED[name]
    row = db["reports"].get(loaded[name])
    assert row["error"] is None
    assert row["format"] == "txt"
    assert row["title"] == exp["title"]
    assert row["academic_year"] == exp["academic_year"]
    assert (row["period_start"], row["period_end"]) == exp["period"]
    assert row["signed_date"] == exp["signed_date"]
    assert row["deadline"] == exp["deadline"]
    assert row["timeliness"] == exp["timeliness"]
    assert row["timeliness_evidence"]
    assert row["first_seen"] == SEEN
    assert row["source_url"] == f"https://example.edu.cn/{name}.txt"
    blob = db.execute("SELECT size FROM blobs WHERE sha256 = ?", [row["sha256"]]).fetchone()
    assert blob == (len(_seed(name)),)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_report_facts(db, loaded, name):
    exp = EXPECTED[name]
    rows = db.execute(
        "SELECT fact, value, sentence FROM report_facts WHERE report_id = ?", [loaded[name]]
    ).fetchall()
    stated = {fact: value for fact, value, _ in rows}
    for fact, value in exp["facts"].items():
        assert stated.get(fact) == value, fact
    for fact in exp["absent_facts"]:
        assert fact not in stated, fact
    text = _seed(name).decode("utf-8")
    flat = "".join(text.split())
    for _, _, sentence in rows:  # every fact quotes a sentence of the report
        assert "".join(sentence.split())[:40] in flat


def test_late_report_evidence(db, loaded):
    row = db["reports"].get(loaded["hrbcvc_2024"])
    assert "2024-11-01" in row["timeliness_evidence"]
    assert "2024-10-31" in row["timeliness_evidence"]


def test_first_seen_before_deadline_is_evidence_of_timeliness(db):
    rid = ingest_report(db, "hrbeu", _seed("hrbeu_2020-2021"), seen_at="2021-10-20T08:00:00Z")
    row = db["reports"].get(rid)
    assert row["signed_date"] is None
    assert row["timeliness"] == "on_time"
    assert "first seen 2021-10-20T08:00:00Z" in row["timeliness_evidence"]


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_parts(name):
    exp = EXPECTED[name]
    result = detect_parts(_seed(name).decode("utf-8"))
    assert sorted(result.present) == exp["present"]
    assert result.missing == exp["missing"]
    assert result.declared_count == exp["declared"]
    for n in exp.get("mentioned_includes", []):
        assert n in result.mentioned


def test_parts_evidence_is_the_heading():
    result = detect_parts(_seed("qqhrtc_2021-2022").decode("utf-8"))
    assert result.present[3] == "（二）依申请公开情况和不予公开情况"
    assert result.present[6] == "三、信息公开工作的不足和改进措施"
    wust = detect_parts(_seed("wust_2020-2021").decode("utf-8"))
    assert wust.present[8] == "八、清单事项公开情况表"


def test_wust_items(db, loaded):
    rid = loaded["wust_2020-2021"]
    rows = db.execute(
        "SELECT item_number, category, title, url, note FROM report_items WHERE report_id = ?"
        " ORDER BY item_number", [rid]
    ).fetchall()
    assert {n: url for n, _, _, url, _ in rows} == WUST_ITEM_URLS
    assert len(rows) == 50
    by_number = {n: (cat, title, note) for n, cat, title, _, note in rows}
    for item in CHECKLIST:  # titles and categories as printed, merged cells carried down
        cat, title, note = by_number[item.number]
        assert cat == item.category
        assert title == item.title
        assert note is None
    site_items = db.execute(
        "SELECT item_number, url, source, report_id FROM site_items WHERE site_id = 'wust'"
    ).fetchall()
    assert {n: url for n, url, _, _ in site_items} == WUST_ITEM_URLS
    assert {(source, report) for _, _, source, report in site_items} == {("report", rid)}


def test_wust_table_parser_directly():
    rows = parse_checklist_table(_seed("wust_2020-2021").decode("utf-8"))
    assert {r.item_number: r.url for r in rows} == WUST_ITEM_URLS


@pytest.mark.parametrize("name", ["hrbeu_2020-2021", "hrbcvc_2024", "qqhrtc_2021-2022",
                                  "zjut_2021-2022"])
def test_no_table_no_items(db, loaded, name):
    assert db.execute("SELECT COUNT(*) FROM report_items WHERE report_id = ?",
                      [loaded[name]]).fetchone() == (0,)


def test_checklist_items_table(db, loaded):
    assert ensure_checklist(db) == 50
    assert ensure_checklist(db) == 50
    rows = db.execute(
        "SELECT category_number, COUNT(*) FROM checklist_items GROUP BY 1 ORDER BY 1"
    ).fetchall()
    assert [count for _, count in rows] == [6, 8, 7, 5, 9, 4, 3, 4, 2, 2]


def test_reingest_is_idempotent(db, loaded):
    before = {t: db[t].count for t in ("reports", "report_facts", "report_items", "site_items",
                                       "blobs")}
    again = ingest_report(db, "wust", _seed("wust_2020-2021"), seen_at="2027-01-01T00:00:00Z")
    assert again == loaded["wust_2020-2021"]
    after = {t: db[t].count for t in before}
    assert after == before
    last_seen = {r[0] for r in db.execute("SELECT last_seen FROM site_items WHERE site_id='wust'")}
    assert last_seen == {"2027-01-01T00:00:00Z"}
    # the same bytes for another site are another report (but the same blob)
    other = ingest_report(db, "other", _seed("wust_2020-2021"))
    assert other != again
    assert db["blobs"].count == before["blobs"]


@pytest.mark.parametrize("encoding", ["gbk", "gb18030", "utf-8-sig", "utf-16"])
@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_encodings(db, name, encoding):
    data = _seed(name).decode("utf-8").encode(encoding)
    rid = ingest_report(db, "enc", data, filename=f"{name}.txt")
    row = db["reports"].get(rid)
    exp = EXPECTED[name]
    assert row["error"] is None
    assert row["academic_year"] == exp["academic_year"]
    assert row["signed_date"] == exp["signed_date"]
    assert row["timeliness"] == (exp["timeliness"] if exp["signed_date"] else "unknown")
    assert row["title"] == exp["title"]
    stated = dict(db.execute("SELECT fact, value FROM report_facts WHERE report_id = ?",
                             [rid]).fetchall())
    assert {k: stated.get(k) for k in exp["facts"]} == exp["facts"]


def test_facts_module_matches_ingest():
    facts = extract_facts(_seed("wust_2020-2021").decode("utf-8"))
    assert facts.value("applications_received") == 2
    assert facts.academic_year == "2020-2021"


def test_search_three_characters_uses_fts(db, loaded):
    hits = search_reports(db, "齐齐哈尔")
    assert [h["id"] for h in hits] == [loaded["qqhrtc_2021-2022"]]
    assert "[齐齐哈尔]" in hits[0]["snippet"]
    hits = search_reports(db, "浙江工业大学")
    assert [h["id"] for h in hits] == [loaded["zjut_2021-2022"]]
    # a word broken by a PDF line break in the source is found in the reflowed text
    assert "2021\n\n年 8 月 31日" in _seed("hrbeu_2020-2021").decode("utf-8")
    hits = search_reports(db, "至 2021年 8 月")
    assert loaded["hrbeu_2020-2021"] in [h["id"] for h in hits]
    direct = db.execute(
        "SELECT rowid FROM reports_fts WHERE reports_fts MATCH ?", ['"信息公开网"']
    ).fetchall()
    assert len(direct) == 5


def test_search_two_characters_falls_back_to_like(db, loaded):
    # trigram FTS cannot match two characters ...
    assert db.execute("SELECT COUNT(*) FROM reports_fts WHERE reports_fts MATCH ?",
                      ['"复议"']).fetchone() == (0,)
    # ... so search_reports uses LIKE
    hits = {h["id"] for h in search_reports(db, "复议")}
    assert hits == {loaded[n] for n in ("hrbeu_2020-2021", "wust_2020-2021", "zjut_2021-2022")}
    hits = {h["id"] for h in search_reports(db, "齐师")}
    assert hits == {loaded["qqhrtc_2021-2022"]}
    assert search_reports(db, "  ") == []
    assert [h["id"] for h in search_reports(db, "%")] == [loaded["zjut_2021-2022"]]  # "90%以上"
    assert search_reports(db, "_") == []
    assert search_reports(db, "不存在的词语") == []
