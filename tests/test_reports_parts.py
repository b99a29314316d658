"""Part detection on heading forms the seeds do not show."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from archive.reports.parts import PART_TITLES, detect_parts
from archive.reports.text import is_heading_start, reflow

SEEDS = Path(__file__).parent / "fixtures" / "reports" / "seeds"

INTRO = ("本报告包括概述，主动公开情况，依申请公开和不予公开情况，对信息公开的评议情况，"
         "因学校信息公开工作受到举报、复议、诉讼的情况，主要经验、问题和改进措施，"
         "其他需要报告的事项和清单事项公开情况表八个部分。")


def test_intro_listing_is_not_evidence():
    text = f"某大学信息公开年度报告\n{INTRO}\n一、概述\n学校高度重视。\n二、主动公开情况\n学校公开信息。\n"
    result = detect_parts(text)
    assert sorted(result.present) == [1, 2]
    assert result.missing == [3, 4, 5, 6, 7, 8]
    assert result.mentioned == [1, 2, 3, 4, 5, 6, 7, 8]
    assert result.declared_count == 8


def test_di_n_bufen_and_merged_headings():
    text = ("某大学信息公开年度报告\n第一部分 概述\n内容。\n第二部分 主动公开情况\n内容。\n"
            "第三部分 依申请公开、不予公开及评议情况\n内容。\n"
            "第四部分 举报、复议、诉讼情况\n内容。\n第五部分 存在的问题和改进措施\n内容。\n"
            "第六部分 其他\n无。\n")
    result = detect_parts(text)
    assert sorted(result.present) == [1, 2, 3, 4, 5, 6, 7]
    assert result.present[4] == "第三部分 依申请公开、不予公开及评议情况"
    assert result.missing == [8]


def test_unnumbered_headings():
    body = "学校高度重视信息公开工作，坚持以公开为常态、不公开为例外，不断完善工作机制，取得成效。"
    lines = ["某大学信息公开年度报告", "概述", body, "主动公开情况", body,
             "依申请公开和不予公开情况", "本年度未收到信息公开申请。" + body]
    result = detect_parts("\n".join(lines))
    assert sorted(result.present) == [1, 2, 3]


def test_subheadings_must_start_with_the_part_name():
    text = ("某大学信息公开年度报告\n一、概述\n（一）扩大信息主动公开范围，促进民主办学\n内容。\n"
            "（二）做好举报受理工作的宣传\n内容。\n1.经验交流与评议活动\n内容。\n")
    result = detect_parts(text)
    assert sorted(result.present) == [1]


def test_part_only_in_an_appendix():
    table = "\n".join(f"\t\t({n}) 事项{n}\thttp://xxgk.a.edu.cn/{n}.htm" for n in range(1, 16))
    text = ("某大学信息公开年度报告\n一、概述\n内容。\n二、主动公开情况\n内容。\n某大学\n2021年10月1日\n"
            "附件1：依申请公开情况统计表\n申请数\t0\n附件2\n学校清单事项公开情况表\n序号\t类别\t公开事项\t网址\n"
            + table)
    result = detect_parts(text)
    assert result.present[3] == "附件1：依申请公开情况统计表"
    assert result.present[8].startswith("附件2") or "清单" in result.present[8]
    assert result.missing == [4, 5, 6, 7]


def test_empty_text():
    result = detect_parts("")
    assert result.present == {}
    assert result.missing == list(PART_TITLES)


@pytest.mark.parametrize("seed", ["hrbeu_2020-2021", "wust_2020-2021", "zjut_2021-2022"])
def test_space_before_the_dunhao(seed):
    """"一 、概述": PDFs space characters out; the headings are the same parts."""
    text = (SEEDS / f"{seed}.txt").read_text(encoding="utf-8")
    spaced = re.sub(r"(?m)^([一二三四五六七八])、", r"\1 、", text)
    assert spaced != text
    assert detect_parts(spaced).present.keys() == detect_parts(text).present.keys()


def test_heading_start_with_a_space():
    assert is_heading_start("一 、概述")
    assert is_heading_start("3 、主动公开信息情况")
    assert not is_heading_start("1、2、3项")
    # after a full line that ends no sentence, reflow keeps the heading a line of its own
    full = "学校高度重视信息公开工作，坚持以公开为常态、不公开为例外，不断完善工作机制"
    text = f"{full}，\n{full}，\n{full}\n二 、主动公开情况\n{full}。\n"
    assert "二 、主动公开情况" in reflow(text).split("\n")
    assert 2 in detect_parts(text).present


def test_template_wordings_of_parts_1_and_7():
    body = "学校高度重视信息公开工作，坚持以公开为常态、不公开为例外，不断完善工作机制。"
    text = (f"某大学信息公开年度报告\n一、总体情况\n{body}\n二、主动公开情况\n{body}\n"
            f"七、其他需报告事项\n本年度无其他需报告事项。\n")
    result = detect_parts(text)
    assert result.present[1] == "一、总体情况"
    assert result.present[7] == "七、其他需报告事项"


def test_total_situation_sub_heading_is_not_the_overview():
    """"（一）总体情况" opens the sections of many parts: only a top heading is part 1."""
    text = ("某大学信息公开年度报告\n二、主动公开情况\n（一）总体情况\n学校公开信息。\n"
            "三、依申请公开和不予公开情况\n（一）总体情况\n本年度未收到申请。\n")
    assert sorted(detect_parts(text).present) == [2, 3]
