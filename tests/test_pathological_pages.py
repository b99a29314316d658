"""Pages built to be slow: each once took 20-40 s of CPU on the crawl's reactor thread.

Every test builds one hostile input of the shape a review found quadratic, checks that it
is handled within a generous CPU budget (the fixed code needs a few hundredths of a
second; the old code took 20 s or more on the same input) and that the answer is still
the right one.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest

from crawler import htmlparse, maintext

#: CPU seconds allowed per hostile input: far above what the fixed code needs, far below
#: the quadratic behaviour it replaced.
BUDGET = 2.0
URL = "http://x.edu.cn/"


def _cpu(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> tuple[Any, float]:
    start = time.process_time()
    result = fn(*args, **kwargs)
    return result, time.process_time() - start


def test_one_item_holding_thousands_of_links_is_searched_for_a_date_once() -> None:
    # a site map: 8,000 links in one <div>, whose date is at its very end; each link's item
    # is that <div>, whose text used to be extracted and searched again for every link
    n = 8000
    html = ("<html><body><div class='sitemap'>"
            + "".join(f"<a href='/col{i}/index.htm'>栏目{i}</a> " for i in range(n))
            + "更新于 2021-06-01</div></body></html>")
    entries, seconds = _cpu(htmlparse.list_entries, html, URL)
    assert seconds < BUDGET, f"{seconds:.2f} s CPU"
    assert entries == [(f"http://x.edu.cn/col{i}/index.htm", f"栏目{i}") for i in range(n)]
    # without any date it is no list at all
    undated = html.replace("2021-06-01", "")
    entries, seconds = _cpu(htmlparse.list_entries, undated, URL)
    assert seconds < BUDGET, f"{seconds:.2f} s CPU"
    assert entries is None


def test_nested_list_containers_collect_their_links_once() -> None:
    # 2,000 nested <div class="list"> around 2,000 links: each container used to collect
    # (and resolve) every link below it again
    depth = n = 2000
    html = ("<html><body>" + "<div class='list'>" * depth
            + "".join(f"<a href='/x{i}.htm'>条目{i}</a>" for i in range(n)) + "</body></html>")
    entries, seconds = _cpu(htmlparse.list_entries, html, URL)
    assert seconds < BUDGET, f"{seconds:.2f} s CPU"
    assert entries == [(f"http://x.edu.cn/x{i}.htm", f"条目{i}") for i in range(n)]


def test_nested_list_containers_give_the_same_entries_as_each_container_in_turn() -> None:
    # what every container in turn gave before: first occurrences in document order, a hidden
    # container's links only through a visible one around it, paging links never
    html = """<html><body>
      <div class="list"><a href="/a.htm">甲</a>
        <ul class="news-list"><li><a href="/b.htm">乙</a></li><li><a href="/a.htm">甲again</a></li></ul>
        <div class="list" style="display:none"><a href="/c.htm">丙</a></div>
        <a href="?page=2">下一页</a>
      </div>
      <div class="menu"><a href="/menu.htm">菜单</a></div>
      <table class="lb"><tbody class="list"><tr><td><a href="/d.htm" title="丁全名">丁</a></td></tr></tbody></table>
      <ul class="list"></ul>
    </body></html>"""
    assert htmlparse.list_entries(html, URL) == [
        ("http://x.edu.cn/a.htm", "甲"), ("http://x.edu.cn/b.htm", "乙"), ("http://x.edu.cn/c.htm", "丙"),
        ("http://x.edu.cn/d.htm", "丁全名"),
    ]
    # only empty containers: no entries, and no list when nothing is named as one
    assert htmlparse.list_entries("<div class='list'><div class='list'> 暂无数据 </div></div>", URL) == []
    assert htmlparse.list_entries("<div class='box'><p>正文</p></div>", URL) is None


def test_unclosed_named_function_heads_are_scanned_once() -> None:
    # 60,000 "function a(" and one ")" at the end, not followed by "{": the parameter list
    # used to be scanned from every head to that ")"
    script = "function a(" * 60000 + ");location.href='/x.htm';"
    html = f"<html><body><script>{script}</script><p>text</p></body></html>"
    reason, seconds = _cpu(htmlparse.needs_render, html, URL + "a.htm")
    assert seconds < BUDGET, f"{seconds:.2f} s CPU"
    assert reason == "script-redirect"  # no function declared: the redirect runs
    # no ")" at all
    html = "<html><body><script>" + "function a(" * 60000 + "</script><p>text</p></body></html>"
    reason, seconds = _cpu(htmlparse.needs_render, html, URL + "b.htm")
    assert seconds < BUDGET, f"{seconds:.2f} s CPU"
    assert reason == "script-only-body"


def test_named_function_bodies_are_still_left_out() -> None:
    js = "function goPage(n){ location.href = 'list.jsp?page=' + n; }\ninit();"
    assert htmlparse._without_named_functions(js) == "\ninit();"
    js = "function f(a) { if (a) { return 1; } } var g = function (x) { y(); }; function  h ( ) {}tail"
    assert htmlparse._without_named_functions(js) == " var g = function (x) { y(); }; tail"
    # a head whose ")" is not followed by "{" declares nothing; the next head still counts
    js = "function a(x) + 1; function b(){ location.href = '/'; } done"
    assert htmlparse._without_named_functions(js) == "function a(x) + 1;  done"
    # a script that only declares a function neither redirects nor runs
    assert htmlparse.needs_render(
        "<html><body><script>function go(){location.href='/x.htm'}</script><p>t</p></body></html>", URL
    ) is None


def test_a_long_run_of_weekdays_after_a_date_is_no_widget_quickly() -> None:
    # "2022年11月21日" + 40,000 weekdays + "x": the widget's fullmatch fails at the "x" after
    # trying every split of the weekdays between two equivalent repeats
    text = "2022年11月21日" + "周一" * 40000 + "x"
    result, seconds = _cpu(maintext.main_text, f"<html><body><p>{text}</p></body></html>")
    assert seconds < BUDGET, f"{seconds:.2f} s CPU"
    assert result == text
    # the same text compared as snapshots (not one line): the widget goes, the "x" stays
    stripped, seconds = _cpu(maintext.strip_volatile, text)
    assert seconds < BUDGET, f"{seconds:.2f} s CPU"
    assert stripped == " x"
    assert maintext.main_text("<p>2022年11月21日 星期一 农历十月廿八</p><p>正文</p>") == "正文"


@pytest.mark.parametrize(("label", "spaces"), [
    ("浏览", 80000), ("总访问", 40000), ("当前在线", 40000), ("今天", 40000), ("生成时间", 40000),
    ("generated at", 40000),
])
def test_a_long_run_of_spaces_after_a_counter_label_is_read_quickly(label: str, spaces: int) -> None:
    # a label, a long run of spaces, then no counter: two "\s*" around an optional word
    # used to split the run every possible way (block text is not collapsed yet)
    text = label + " " * spaces + "x1"
    stripped, seconds = _cpu(maintext.strip_volatile, text)
    assert seconds < BUDGET, f"{label!r}: {seconds:.2f} s CPU"
    assert stripped == text
    result, seconds = _cpu(maintext.main_text, f"<html><body><p>{text}</p></body></html>")
    assert seconds < BUDGET, f"{label!r}: {seconds:.2f} s CPU"
    assert result == f"{label} x1"


def test_counters_after_a_long_run_of_spaces_are_still_dropped() -> None:
    spaces = " " * 80000
    result, seconds = _cpu(maintext.main_text, f"<p>浏览{spaces}：123 次</p><p>正文</p>")
    assert seconds < BUDGET, f"{seconds:.2f} s CPU"
    assert result == "正文"
    assert maintext.strip_volatile(f"总访问量{spaces}：88 人").split() == ["总"]  # 访问量 is a counter
    assert maintext.strip_volatile(f"今天是{spaces}2022年11月21日 星期一").strip() == ""
    assert maintext.strip_volatile(f"页面生成时间\t{spaces}0.023 秒").strip() == ""
    assert maintext.strip_volatile(f"Page generated at{spaces}2024-01-02 03:04:05").strip() == ""


def _nested_items(n: int, dated: int | None = None) -> str:
    # n nested <div>s, each holding one link and some text: each is its link's item, and its
    # text holds the text of all the items inside it
    return ("<html><body>" + "".join(
        f"<div><a href='/n{i}.htm'>标题{i}</a>{' 2021-06-01' if i == dated else ''} 第{i}条的说明文字"
        + "说明" * 100 for i in range(n)) + "</div>" * n + "</body></html>")


def test_nested_items_are_searched_for_a_date_in_one_pass() -> None:
    # 2,000 nested items (~460,000 characters): each item's text used to be extracted and searched for a
    # date again, all the nested items' text with it
    n = 2000
    html = _nested_items(n)
    entries, seconds = _cpu(htmlparse.list_entries, html, URL)
    assert seconds < BUDGET, f"{seconds:.2f} s CPU"
    assert entries is None  # no date: no list
    # a date in the innermost item: every item's text holds it, and the first block wins
    html = _nested_items(n, dated=n - 1)
    entries, seconds = _cpu(htmlparse.list_entries, html, URL)
    assert seconds < BUDGET, f"{seconds:.2f} s CPU"
    assert entries == [("http://x.edu.cn/n0.htm", "标题0")]
    # every item holds that date, also as the page's text index (used past the budget) sees it
    root = htmlparse.parse(html)
    texts = htmlparse._PageText(root)
    texts._budget = 0
    assert all(texts.has_date(div) for div in root.iter("div"))


def test_nested_named_containers_without_links_are_read_in_one_pass() -> None:
    # 2,000 nested <div class="list"> with text and no links (~460,000 characters): each container's text
    # (all those inside it included) used to be extracted to see whether it is empty
    n = 2000
    html = ("<html><body>" + "".join(f"<div class='list'>第{i}段文字：" + "内容" * 100 for i in range(n))
            + "</div>" * n + "</body></html>")
    (entries, empty), seconds = _cpu(htmlparse._find_list, html, URL)
    assert seconds < BUDGET, f"{seconds:.2f} s CPU"
    assert entries is None and empty == []  # text, so not empty; no links, so no list
    # the same nesting holding only whitespace, an empty-list message innermost and
    # punctuation after it: every container is empty
    html = ("<html><body>" + ("<div class='list'>" + " \u3000\n" * 100) * n + "暂无数据" + "</div>！" * n
            + "</body></html>")
    (entries, empty), seconds = _cpu(htmlparse._find_list, html, URL)
    assert seconds < BUDGET, f"{seconds:.2f} s CPU"
    assert entries == [] and len(empty) == n


@pytest.mark.parametrize("text", [
    "2021-06-01", "2021 年 6", "2021年", "1-1", "11-22", "1-123", "123-1", "x1-1x", "[1-2]", "[ 1/2 ]", "[1-2",
    " ", "", "暂无数据", " 暂无 数据 ！！ . ", "暂无数据！x", "！暂无数据", "没有相关信息。", "no records", "内容",
])
def test_the_page_text_index_answers_like_text_content(text: str) -> None:
    # an element's answers from the page's whole text (after the text_content() budget) are
    # those of its own text: lookarounds see the element's ends, not the text around it
    html = (f"<html><body><div class='list'>1<p class='list'>{text}</p>1<ul class='list'><li>2"
            f"<span>{text}</span></li><li>{text}<!-- 9 -->0</li></ul>年6</div></body></html>")
    root = htmlparse.parse(html)
    texts = htmlparse._PageText(root)
    texts._budget = 0
    for el in root.iter("div", "p", "ul", "li", "span"):
        own = el.text_content()
        assert texts.has_date(el) == bool(htmlparse._DATE_RE.search(own)), (el.tag, own)
        blank_or_message = not htmlparse.collapse(own) or bool(
            htmlparse._EMPTY_MSG_RE.match(htmlparse.collapse(own).replace(" ", "")))
        assert texts.blank_or_empty_message(el) == blank_or_message, (el.tag, own)
