"""Anchor texts of extracted links: a CMS-truncated text gives way to the full ``title``,
an image link is named by its ``title`` or ``alt`` (both parse paths of ``page_links``)."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from crawler.htmlparse import _page_links_selector, page_links

REPORT = "测试大学2021-2022学年信息公开工作年度报告"
PATHS: dict[str, Callable[[str], tuple[str | None, list[tuple[str, str]]]]] = {
    "lxml": page_links, "selector": _page_links_selector}


def anchors(html: str, path: str) -> list[str]:
    return [anchor for _, anchor in PATHS[path](f"<html><body>{html}</body></html>")[1]]


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("dots", ["...", "…", "..", "……", " ... "])
def test_truncated_text_takes_the_title(path: str, dots: str) -> None:
    html = f"<a href='/r.pdf' title='{REPORT}'>{REPORT[:14]}{dots}</a>"
    assert anchors(html, path) == [REPORT]


@pytest.mark.parametrize("path", PATHS)
def test_truncated_text_and_a_differently_cut_title(path: str) -> None:
    # the title is longer but does not start with the visible part (a category prefix)
    html = f"<a href='/r.pdf' title='{REPORT}'>[公告]{REPORT[:10]}...</a>"
    assert anchors(html, path) == [REPORT]


@pytest.mark.parametrize("path", PATHS)
def test_text_kept_when_not_truncated_or_title_adds_nothing(path: str) -> None:
    html = (f"<a href='/a' title='{REPORT}'>年度报告</a>"          # not truncated: its own words
            "<a href='/b' title='更多'>更多...</a>"                 # title is the visible part
            "<a href='/c' title='x'>2021-2022学年信息公开...</a>"   # title shorter, unrelated
            f"<a href='/d'>{REPORT[:14]}...</a>")                  # no title
    assert anchors(html, path) == ["年度报告", "更多...", "2021-2022学年信息公开...", f"{REPORT[:14]}..."]


@pytest.mark.parametrize("path", PATHS)
def test_image_links(path: str) -> None:
    html = ("<a href='/a' title=' 信息公开\n年度报告 '><img src='a.png' alt='图片'></a>"  # title first
            "<a href='/b'><img src='b.png' alt=''><img src='c.png' alt=' 学校 主页 '></a>"
            "<a href='/c'><img src='d.png'></a>")
    assert anchors(html, path) == ["信息公开 年度报告", "学校 主页", ""]


@pytest.mark.parametrize("path", PATHS)
def test_long_titles_are_capped(path: str) -> None:
    html = f"<a href='/a' title='{'长' * 400}'>长长...</a><a href='/b' title='{'图' * 400}'><img src=x></a>"
    assert anchors(html, path) == ["长" * 300, "图" * 300]


def test_the_title_is_found_without_rescanning_unclosed_titles():
    """A page of 28,000 unclosed <title> tags took 24 s of the crawl's one thread (a regex
    re-scanning to the end from each). title_bytes answers as that regex did."""
    import re
    import time

    from hypothesis import given, settings
    from hypothesis import strategies as st

    from crawler.spiders.portal import title_bytes

    regex = re.compile(rb"<title[^>]*>(.*?)</title>", re.I | re.S)
    hostile = ("<html><head>" + "<title>" * 28000 + "</head><body>x</body></html>").encode()
    started = time.process_time()
    assert title_bytes(hostile[:200_000]) is None
    assert time.process_time() - started < 1.0

    pieces = st.sampled_from([b"<title>", b"<TITLE lang=zh>", b"</title>", b"</Title>", b"<title", b">", b"x",
                              "信息公开".encode(), b" ", b"</titl>", b"<titlex>"])

    @settings(max_examples=400, deadline=None)
    @given(st.lists(pieces, max_size=12))
    def same_as_the_regex(parts):
        head = b"".join(parts)
        match = regex.search(head)
        assert title_bytes(head) == (match.group(1) if match else None)

    same_as_the_regex()
