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


@pytest.mark.parametrize("path", PATHS)
def test_embedded_players_link_their_files(path: str) -> None:
    """WebPlus articles often show their attachment (an annual report among them) only in a
    PDF player: ``pdfsrc``, ``<embed>``, ``<object>``, or a pdf.js viewer whose ``?file=``
    is the file (the viewer page itself is a script that says nothing about it). None was
    followed: the report was never fetched (found by a review of real portal patterns)."""
    html = ('<html><body><div class="wp_pdf_player" pdfsrc="/_upload/article/files/aa/report.pdf"'
            ' title="2021-2022学年信息公开年度报告"></div>'
            '<iframe class="wp_pdf_player" src="/_js/_portletPlugs/swfPlayer/pdfjs/web/viewer.html'
            '?file=/_upload/article/files/bb/zszc.pdf"></iframe>'
            '<iframe src="/js/pdfjs/web/viewer.html?file=..%2F..%2Ffiles%2Fc.pdf#page=2"></iframe>'
            '<embed src="/files/d.pdf"><object data="/files/e.swf"></object>'
            '<a href="/news/x.htm">新闻</a><iframe src="/viewer.html?id=3"></iframe></body></html>')
    assert PATHS[path](html)[1] == [
        ("/_upload/article/files/aa/report.pdf", "2021-2022学年信息公开年度报告"),
        ("/_upload/article/files/bb/zszc.pdf", ""),
        ("/js/files/c.pdf", ""),  # resolved against the viewer, as pdf.js does
        ("/files/d.pdf", ""), ("/files/e.swf", ""), ("/news/x.htm", "新闻"),
        ("/viewer.html?id=3", ""),  # a page called viewer.html showing no file: itself
    ]


@pytest.mark.parametrize("path", PATHS)
def test_a_trs_pager_written_by_script_links_its_pages(path: str) -> None:
    """Real TRS WCM lists write their pager with ``createPageHTML(count, current, "index",
    "html")`` and no other link to pages 2..N: the crawl stopped at the first page (found by
    a review; the simulated TRS site also linked the pages statically)."""
    html = ('<html><body><ul class="list_ul"><li><a href="./202105/t20210501_1.html">通知</a></li></ul>'
            '<script>var currentPage = 0;\nvar countPage = 3\n'
            'createPageHTML(countPage, currentPage, "index", "html");</script>'
            "<script>createPageHTML(2, 0, 'list', 'htm')</script>"
            '<script>createPageHTML(1, 0, "one", "html"); createPageHTML(x, 0, "unknown", "html");'
            ' createPageHTML(5, 0, "../../evil", "html")</script></body></html>')
    assert PATHS[path](html)[1] == [
        ("./202105/t20210501_1.html", "通知"), ("index.html", ""), ("index_1.html", ""), ("index_2.html", ""),
        ("list.htm", ""), ("list_1.htm", "")]
    many = "<script>" + 'createPageHTML(2000, 0, "index", "html");' * 5000 + "</script>"
    assert len(PATHS[path](many)[1]) == 2000  # one pager's worth, however often it is called
