"""Years, periods, signature dates, timeliness and counts, on forms seen in real reports."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from archive.reports.facts import (
    academic_year_from_title,
    deadline_for,
    extract_facts,
    extract_title,
    find_academic_year,
    find_period,
    find_signed_date,
    find_signed_month,
    is_annual_report_title,
    normalise_academic_year,
    timeliness,
)
from archive.reports.text import cn_to_int, parse_date, parse_number, reflow

BODY = (
    "一、概述\n学校坚持以公开为常态、不公开为例外，截至2021年8月31日，学校信息公开网\n"
    "累计发布信息若干条。2021年1月14日，学校召开校情通报会。\n"
    "二、主动公开情况\n学校通过多种渠道主动公开信息。\n"
)


@pytest.mark.parametrize("text,year", [
    ("2020-2021", "2020-2021"),
    ("2020—2021学年", "2020-2021"),
    ("2020～2021学年度", "2020-2021"),
    ("2020 -2021 学年", "2020-2021"),
    ("2020年-2021年", "2020-2021"),
    ("2020至2021学年", "2020-2021"),
    ("２０２０－２０２１学年", "2020-2021"),
    ("2020-21学年", "2020-2021"),
    ("二〇二〇—二〇二一学年", "2020-2021"),
    ("2019-2021", None),  # not one academic year
    ("电话：027-68862860", None),
    ("2021年", None),
])
def test_normalise_academic_year(text, year):
    assert normalise_academic_year(text) == year


@pytest.mark.parametrize("title,year", [
    ("武汉科技大学2020-2021学年度信息公开工作报告", "2020-2021"),
    ("哈尔滨城市职业学院2024年信息公开年度报告", "2023-2024"),
    ("某大学二〇二一年度信息公开工作报告", "2020-2021"),
    ("信息公开工作报告", None),
])
def test_academic_year_from_title(title, year):
    assert academic_year_from_title(title) == year


def test_calendar_year_title_takes_year_from_period():
    text = ("某学院2024年信息公开年度报告\n本年度报告中统计数据的时间为2023年9月1日至2024年8月31日。\n"
            + BODY)
    assert find_academic_year(text) == "2023-2024"
    text = "某学院二〇二一年度信息公开工作报告\n" + BODY  # no period: year-1..year
    assert find_academic_year(text) == "2020-2021"
    # a calendar-year period: no academic year to invent (see test_calendar_year_report)
    text = ("某学院2021年度信息公开工作报告\n统计时间为2021年1月1日至2021年12月31日。\n" + BODY)
    assert find_academic_year(text) is None


@pytest.mark.parametrize("sentence,start,end", [
    ("本年度报告统计数据的起止时间为 2020 年 9月 1 日至 2021\n\n年 8 月 31日，根据…", "2020-09-01",
     "2021-08-31"),
    ("报告中所列数据的统计时间为２０２０年９月１日至２０２１年８月３１日。", "2020-09-01", "2021-08-31"),
    ("统计期间为2021年9月至2022年8月。", "2021-09-01", "2022-08-31"),
    ("数据统计时段：2022年9月1日—2023年8月31日。", "2022-09-01", "2023-08-31"),
    ("结合本校2021年10月1日至2022年10月25日信息公开工作执行情况编制。", "2021-10-01", "2022-10-25"),
])
def test_find_period(sentence, start, end):
    found = find_period("某大学信息公开年度报告\n" + sentence + "\n" + BODY)
    assert found is not None
    assert (found[0].isoformat(), found[1].isoformat()) == (start, end)


def test_period_prefers_the_statistics_sentence():
    text = ("某大学信息公开年度报告\n2021年1月12日至2021年1月13日，学校召开座谈会。\n"
            "本报告统计数据的时间为2020年9月1日至2021年8月31日。\n")
    found = find_period(text)
    assert found is not None and found[0] == date(2020, 9, 1)


@pytest.mark.parametrize("ending,signed", [
    ("武汉科技大学\n2021 年 10 月 10 日\n", date(2021, 10, 10)),
    ("武汉科技大学\n\n2021年10月10日", date(2021, 10, 10)),
    ("某某大学\n二〇二一年十月十日\n", date(2021, 10, 10)),
    ("某某大学\n二〇二二年十月二十八日", date(2022, 10, 28)),
    ("某某大学 2022年10月9日", date(2022, 10, 9)),
    ("日期：2022-10-09", date(2022, 10, 9)),
    ("（2022年10月9日）", date(2022, 10, 9)),
    ("学校将继续推进工作。", None),
    ("截至\n2021年8月31日", None),
])
def test_find_signed_date(ending, signed):
    found = find_signed_date("某大学信息公开年度报告\n" + BODY + ending)
    assert (found[0] if found else None) == signed


def test_signed_date_before_an_appendix():
    text = "某大学信息公开年度报告\n" + BODY + "某大学\n2021年10月10日\n附件\n序号\t类别\n1\t基本信息\n"
    assert find_signed_date(text)[0] == date(2021, 10, 10)


def test_web_page_publication_date_as_evidence():
    text = ("某大学2020-2021学年信息公开工作报告\n发布时间：2021-10-28 浏览次数：35\n" + BODY)
    facts = extract_facts(text)
    assert facts.signed_date is None and facts.published_date == "2021-10-28"
    assert facts.timeliness == "on_time"
    assert "2021-10-28" in facts.timeliness_evidence
    late = extract_facts(text.replace("2021-10-28", "2021-11-05"))
    assert late.timeliness == "unknown"  # a re-publication proves nothing
    assert "2021-11-05" in late.timeliness_evidence
    signed = extract_facts(text.replace("2021-10-28", "2021-11-05") + "某大学\n2021年10月20日\n")
    assert (signed.signed_date, signed.timeliness) == ("2021-10-20", "on_time")
    # ... but the evidence says the page went up after the deadline (a review found it silent)
    assert "2021-11-05" in signed.timeliness_evidence and "after the deadline" in signed.timeliness_evidence
    assert "page says" not in extract_facts(text + "某大学\n2021年10月20日\n").timeliness_evidence


def test_deadline_and_timeliness():
    assert deadline_for("2020-2021") == date(2021, 10, 31)
    assert deadline_for("bad") is None
    assert timeliness(date(2021, 10, 31), date(2021, 10, 31))[0] == "on_time"
    state, evidence = timeliness(date(2024, 11, 1), date(2024, 10, 31))
    assert state == "late" and "1 day(s) after" in evidence
    assert timeliness(None, date(2024, 10, 31))[0] == "unknown"
    assert timeliness(date(2024, 11, 1), None)[0] == "unknown"


def _facts(sentence: str) -> dict[str, int]:
    result = extract_facts("某大学2020-2021学年信息公开工作报告\n" + sentence)
    return {f.fact: f.value for f in result.facts}


@pytest.mark.parametrize("sentence,expected", [
    ("本年度共收到信息公开申请5件，均已按时答复。",
     {"applications_received": 5, "applications_answered": 5}),
    ("学校共受理依申请公开3件，答复2件，其中同意公开1件，部分公开1件，不予公开1件。",
     {"applications_received": 3, "applications_answered": 2, "agreed": 1, "partly_agreed": 1,
      "refused": 1}),
    ("本学年学校收到三件信息公开申请，已全部办结。",
     {"applications_received": 3, "applications_answered": 3}),
    ("本年度学校未收到信息公开申请。", {"applications_received": 0}),
    ("学校没有收到依申请公开信息的申请。", {"applications_received": 0}),
    ("学校信息公开申请共计 12 件。", {"applications_received": 12}),
    ("学校对依申请公开未收取任何费用。", {"fees_charged": 0}),
    ("依申请公开信息收取费用 120 元。", {"fees_charged": 120}),
    ("因信息公开受到举报2起，行政复议1件，行政诉讼0件。",
     {"complaints": 2, "reconsiderations": 1, "lawsuits": 0}),
    ("本年度学校信息公开工作没有受到举报，没有因学校信息公开申请行政复议和提起行政诉讼的情况。",
     {"complaints": 0, "reconsiderations": 0, "lawsuits": 0}),
    ("学校主动公开信息 1,234 条。", {"items_published": 1234}),
    ("本年度学校信息公开网发布信息 520 余条。", {"items_published": 520}),
    # not facts: no number, no negation, not about disclosure
    ("学校设立了监督举报电话，受理投诉与举报。", {}),
    ("教代会共收到代表提案 58 件。", {}),
    ("学校累计公开信息 1840 条。", {}),
    ("学校公开教育收费项目、收费标准，接受监督。", {}),
])
def test_count_facts(sentence, expected):
    assert _facts(sentence) == expected


def test_letter_spaced_pdf_text():
    spaced = " ".join("某大学2020-2021学年信息公开工作报告") + "\n" + " ".join(
        "一、概述\n学校收到信息公开申请2件，均已答复。本年度学校信息公开工作没有受到举报。\n")
    result = extract_facts(spaced)
    assert {f.fact: f.value for f in result.facts} == {
        "applications_received": 2, "applications_answered": 2, "complaints": 0}
    assert result.academic_year == "2020-2021"
    assert "学校收到信息公开申请" in reflow(spaced)


def test_fact_sentence_is_kept():
    result = extract_facts(
        "某大学2020-2021学年信息公开工作报告\n一、概述\n学校收到信息公开申请 2 次，一一答复。"
    )
    (fact,) = [f for f in result.facts if f.fact == "applications_received"]
    assert fact.sentence == "学校收到信息公开申请 2 次，一一答复。"


@pytest.mark.parametrize("title,expected", [
    ("武汉科技大学2020-2021学年度信息公开工作报告", True),
    ("哈尔滨城市职业学院2024年信息公开年度报告", True),
    ("浙江工业大学2021-2022学年信息公开年度工作报告.pdf", True),
    ("2020-2021学年度报告", True),
    ("某大学2021年度报告", True),
    ("信息公开年报（2022）", True),
    ("2020-2021学年本科教学质量年度报告", False),
    ("2021届毕业生就业质量年度报告", False),
    ("2020年度部门决算", False),
    ("关于做好2021年高校信息公开年度报告工作的通知", False),
    ("学术委员会年度报告", False),
    ("新闻动态", False),
    ("", False),
])
def test_is_annual_report_title(title, expected):
    assert is_annual_report_title(title) is expected


# ------------------------------------------------------------- reviewed variants

FIXTURES = Path(__file__).parent / "fixtures" / "reports"


def _seed_variant(name: str, *replacements: tuple[str, str]) -> str:
    """A seed report with phrases replaced (each must occur), as a reviewer made them."""
    text = (FIXTURES / "seeds" / f"{name}.txt").read_text(encoding="utf-8")
    for old, new in replacements:
        assert old in text, old
        text = text.replace(old, new)
    return text


@pytest.mark.parametrize("sentence,expected", [
    # "not even one": a negation before 一件/一起/一份/一条 is a count of 0
    ("本年度学校未收到一件信息公开申请。", {"applications_received": 0}),
    ("学校没有收到一份信息公开申请。", {"applications_received": 0}),
    ("学校没有收到一条依申请公开信息的申请。", {"applications_received": 0}),
    ("学校从未受理过任何一件信息公开申请。", {"applications_received": 0}),
    ("本年度学校信息公开工作未受到一起举报。", {"complaints": 0}),
    ("学校未发生一起因信息公开引起的举报、复议、诉讼。",
     {"complaints": 0, "reconsiderations": 0, "lawsuits": 0}),
    ("学校信息公开工作未发生一起举报、复议、诉讼。",
     {"complaints": 0, "reconsiderations": 0, "lawsuits": 0}),
    # a plain 一 is still one
    ("本年度学校收到一件信息公开申请，已依法予以答复。",
     {"applications_received": 1, "applications_answered": 1}),
    ("因信息公开受到举报一起。", {"complaints": 1}),
])
def test_negated_one_is_zero(sentence, expected):
    assert _facts(sentence) == expected


def test_negated_one_in_a_real_report():
    text = _seed_variant(
        "hrbeu_2020-2021",
        ("本年度学校未收到信息公开申请。", "本年度学校未收到一件信息公开申请。"),
        ("信息公开工作没有受到举报，", "信息公开工作未受到一起举报，"),
    )
    facts = extract_facts(text)
    assert (facts.value("applications_received"), facts.value("complaints")) == (0, 0)


@pytest.mark.parametrize("sentence,number", [
    ("本年度学校信息公开网发布信息 1.2 万余条。", 12000),
    ("学校主动公开信息3万余条。", 30000),
    ("学校主动公开信息 2.35万条。", 23500),
    ("学校主动公开信息 1,320 余条。", 1320),
    ("学校主动公开信息 １，８４０ 条。", 1840),
    ("学校主动公开信息一万二千条。", 12000),
])
def test_items_published_with_wan(sentence, number):
    assert _facts(sentence) == {"items_published": number}


def test_items_published_with_wan_in_a_real_report():
    text = _seed_variant("hrbcvc_2024", ("学校信息公开网发布信息 320 余条", "学校信息公开网发布信息 1.2 万余条"))
    assert extract_facts(text).value("items_published") == 12000


@pytest.mark.parametrize("ending,month", [
    ("武汉科技大学\n2021 年 10 月\n", (2021, 10)),
    ("武汉科技大学\n\n2021年10月", (2021, 10)),
    ("某某大学\n二〇二一年十月\n", (2021, 10)),
    ("某某大学\n二〇二一年十一月\n", (2021, 11)),
    ("某某大学 2021年9月", (2021, 9)),
    ("学校将继续推进工作。", None),
    ("截至\n2021年8月", None),
    ("武汉科技大学\n2021 年 10 月 10 日\n", None),  # a full date is a signed date, not a month
])
def test_find_signed_month(ending, month):
    found = find_signed_month("某大学信息公开年度报告\n" + BODY + ending)
    assert (found[:2] if found else None) == month


@pytest.mark.parametrize("ending,state,month", [
    ("某大学\n2021 年 10 月\n", "on_time", "2021-10"),
    ("某大学\n二〇二一年十月\n", "on_time", "2021-10"),
    ("某大学\n2021年9月\n", "on_time", "2021-09"),
    ("某大学\n2021 年 11 月\n", "late", "2021-11"),
    ("某大学\n二〇二二年一月\n", "late", "2022-01"),
])
def test_signature_month_decides_timeliness(ending, state, month):
    facts = extract_facts("某大学2020-2021学年信息公开工作报告\n" + BODY + ending)
    assert facts.signed_date is None  # a month is not a date: the column stays YYYY-MM-DD
    assert facts.signed_month == month
    assert facts.timeliness == state
    assert month in facts.timeliness_evidence and "2021-10-31" in facts.timeliness_evidence
    assert facts.value("signed_month") == int(month.replace("-", ""))


def test_signature_month_in_real_reports():
    wust = extract_facts(_seed_variant("wust_2020-2021", ("2021 年 10 月 10 日", "2021 年 10 月")))
    assert (wust.signed_date, wust.signed_month, wust.timeliness) == (None, "2021-10", "on_time")
    cn = extract_facts(_seed_variant("wust_2020-2021", ("2021 年 10 月 10 日", "二〇二一年十月")))
    assert (cn.signed_date, cn.signed_month, cn.timeliness) == (None, "2021-10", "on_time")
    hrbcvc = extract_facts(_seed_variant("hrbcvc_2024", ("2024 年 11 月 1 日", "2024 年 11 月")))
    assert (hrbcvc.signed_date, hrbcvc.signed_month, hrbcvc.timeliness) == (None, "2024-11", "late")


def test_full_signed_date_wins_over_a_month_line():
    text = "某大学2020-2021学年信息公开工作报告\n" + BODY + "某大学\n2021年10月10日\n附件\n2021年11月\n"
    facts = extract_facts(text)
    assert (facts.signed_date, facts.signed_month, facts.timeliness) == ("2021-10-10", None,
                                                                         "on_time")


def test_calendar_year_report():
    text = _seed_variant(
        "hrbeu_2020-2021",
        ("2020-2021 年度信息公开工作报告", "2021 年度信息公开工作报告"),
        ("起止时间为 2020 年 9月 1 日至 2021", "起止时间为 2021 年 1月 1 日至 2021"),
        ("年 8 月 31日，根据", "年 12 月 31日，根据"),
        ("2020-2021 年度，哈尔滨工程大学", "2021 年度，哈尔滨工程大学"),
        ("好 2020-2021年度信息公开工作的通知", "好 2021年度信息公开工作的通知"),
    ).rstrip() + "\n\n哈尔滨工程大学\n\n2022 年 1 月 20 日\n"
    facts = extract_facts(text)
    assert (facts.period_start, facts.period_end) == ("2021-01-01", "2021-12-31")
    assert facts.signed_date == "2022-01-20"
    assert facts.academic_year is None and facts.deadline is None
    assert facts.timeliness == "unknown"
    assert "calendar year 2021" in facts.timeliness_evidence
    assert facts.calendar_year == "2021" and facts.value("calendar_year") == 2021
    # an academic-year period keeps its year, and no calendar_year fact
    plain = extract_facts((FIXTURES / "seeds" / "hrbeu_2020-2021.txt").read_text("utf-8"))
    assert plain.academic_year == "2020-2021" and plain.calendar_year is None
    assert plain.value("calendar_year") is None


@pytest.mark.parametrize("sentence", [
    "本年度报告统计数据的起止时间为二〇二〇年九月一日至二〇二一年八月三十一日。",
    "本年度报告统计数据的起止时间为二〇二〇年九月一日至二〇二一\n\n年八月三十一日，根据要求编制。",
    "统计时间为二〇二〇年九月至二〇二一年八月。",
    "统计时间为2020.9.1-2021.8.31。",
    "统计时间为2020.09.01—2021.08.31。",
    "统计时间为2020/9/1至2021/8/31。",
    "统计时间为2020-09-01至2021-08-31。",
    "统计时间为 2020.9-2021.8。",
])
def test_find_period_chinese_numerals_and_dotted(sentence):
    found = find_period("某大学信息公开年度报告\n" + sentence + "\n" + BODY)
    assert found is not None
    assert (found[0].isoformat(), found[1].isoformat()) == ("2020-09-01", "2021-08-31")


def test_chinese_numeral_period_in_a_real_report():
    text = _seed_variant("hrbeu_2020-2021", ("起止时间为 2020 年 9月 1 日至 2021\n\n年 8 月 31日",
                                             "起止时间为二〇二〇年九月一日至二〇二一\n\n年八月三十一日"))
    facts = extract_facts(text)
    assert (facts.period_start, facts.period_end) == ("2020-09-01", "2021-08-31")


def test_title_without_the_page_navigation():
    # The simulated TRS site's HTML report page: site name, navigation bar, then the title.
    text = (FIXTURES / "variants" / "trs_report_page.txt").read_text(encoding="utf-8")
    assert reflow(text).split("\n")[1].startswith("首页 信息公开指南")  # glued by reflow
    assert extract_title(text) == "模拟综合大学2021-2022学年信息公开工作年度报告"
    assert extract_facts(text).title == "模拟综合大学2021-2022学年信息公开工作年度报告"


@pytest.mark.parametrize("head,title", [
    ("当前位置：首页 > 信息公开 > 年度报告 > 某某大学2021-2022学年信息公开工作年度报告",
     "某某大学2021-2022学年信息公开工作年度报告"),
    ("首页 » 年度报告 » 某某大学2021年信息公开年度报告", "某某大学2021年信息公开年度报告"),
    # a title line with spaces in it is not navigation
    ("武汉科技大学 2020-2021 学年度 信息公开工作报告", "武汉科技大学 2020-2021 学年度 信息公开工作报告"),
])
def test_title_breadcrumb_is_dropped(head, title):
    assert extract_title(head + "\n" + BODY) == title


# ----------------------------------------------------------------------- properties

_DIGITS = "〇一二三四五六七八九"


def _cn_small(n: int) -> str:
    """1..31 as written in dates: 十, 十一, 二十, 三十一."""
    tens, ones = divmod(n, 10)
    if tens == 0:
        return _DIGITS[ones]
    return ("" if tens == 1 else _DIGITS[tens]) + "十" + (_DIGITS[ones] if ones else "")


def _cn_number(n: int) -> str:
    """Any 0 <= n < 100000 in Chinese numerals (一万二千零五)."""
    if n == 0:
        return "零"
    units = [(10000, "万"), (1000, "千"), (100, "百"), (10, "十"), (1, "")]
    out, zero = "", False
    for value, unit in units:
        digit, n = divmod(n, value)
        if digit:
            if zero and out:
                out += "零"
            out += ("" if (value == 10 and digit == 1 and not out) else _DIGITS[digit]) + unit
            zero = False
        elif out:
            zero = True
    return out


spaces = st.sampled_from(["", " ", "  ", "\u3000"])


@settings(max_examples=200, deadline=None)
@given(d=st.dates(date(2000, 1, 1), date(2099, 12, 31)), s=st.lists(spaces, min_size=5,
                                                                     max_size=5))
def test_date_forms_roundtrip(d, s):
    arabic = f"{d.year}{s[0]}年{s[1]}{d.month}{s[2]}月{s[3]}{d.day}{s[4]}日"
    assert parse_date(arabic) == d
    full = arabic.translate({ord(c): chr(ord(c) + 0xFEE0) for c in "0123456789"})
    assert parse_date(full) == d
    chinese = "".join(_DIGITS[int(c)] for c in str(d.year)) + f"年{_cn_small(d.month)}月{_cn_small(d.day)}日"
    assert parse_date(chinese) == d


@settings(max_examples=100, deadline=None)
@given(d=st.dates(date(2001, 1, 1), date(2099, 12, 31)),
       body=st.dates(date(2001, 1, 1), date(2099, 12, 31)), chinese=st.booleans())
def test_signed_date_is_the_closing_line_never_a_body_date(d, body, chinese):
    body_date = f"{body.year}年{body.month}月{body.day}日"
    signed = (
        "".join(_DIGITS[int(c)] for c in str(d.year)) + f"年{_cn_small(d.month)}月{_cn_small(d.day)}日"
        if chinese else f"{d.year} 年 {d.month} 月 {d.day} 日"
    )
    text = (f"某大学信息公开年度报告\n一、概述\n截至{body_date}，学校公开信息若干条。\n"
            f"{body_date}，学校召开会议。\n某大学\n{signed}\n")
    assert find_signed_date(text)[0] == d
    assert find_signed_date(text.replace(f"某大学\n{signed}\n", "")) is None


@settings(max_examples=200, deadline=None)
@given(n=st.integers(0, 99999))
def test_chinese_numerals_roundtrip(n):
    assert cn_to_int(_cn_number(n)) == n
    assert parse_number(f"{n:,}") == n
    assert parse_number(str(n)) == n


@settings(max_examples=100, deadline=None)
@given(n=st.integers(0, 99999), chinese=st.booleans(), s=st.lists(spaces, min_size=2, max_size=2),
       unit=st.sampled_from(["件", "次", "份"]))
def test_application_count_is_read_back(n, chinese, s, unit):
    number = _cn_number(n) if chinese else str(n)
    facts = _facts(f"本学年学校收到信息公开申请{s[0]}{number}{s[1]}{unit}。")
    assert facts == {"applications_received": n}


@settings(max_examples=100, deadline=None)
@given(y=st.integers(1990, 2098), sep=st.sampled_from(["-", "—", "–", "～", "~", " - ", "至", "－"]),
       suffix=st.sampled_from(["", "学年", "学年度", "年度"]))
def test_academic_year_forms(y, sep, suffix):
    assert normalise_academic_year(f"某大学{y}{sep}{y + 1}{suffix}信息公开") == f"{y}-{y + 1}"
    assert deadline_for(f"{y}-{y + 1}") == date(y + 1, 10, 31)


@settings(max_examples=100, deadline=None)
@given(st.text(alphabet=st.sampled_from(list("信息公开报告。，、（）《》1234567890 abc\n\t一二、")),
               max_size=400))
def test_reflow_only_changes_whitespace(text):
    assert "".join(reflow(text).split()) == "".join(text.split())
