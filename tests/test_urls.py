"""Canonical URLs, scope, attachment/list guesses and the trap guard."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crawler.soft404 import probe_url
from crawler.urls import (
    MAX_URL_LENGTH,
    TrapGuard,
    attachment_extension,
    canonicalize,
    host_of,
    in_scope,
    is_list_page,
    looks_like_attachment,
)

BASE = "http://xxgk.example-univ.edu.cn/xxgk/zsxx/index.htm"


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("HTTP://XXGK.Example-Univ.EDU.cn:80/a/../info/1021/1234.htm#top",
         "http://xxgk.example-univ.edu.cn/info/1021/1234.htm"),
        ("https://xxgk.example-univ.edu.cn:443/", "https://xxgk.example-univ.edu.cn/"),
        ("http://xxgk.example-univ.edu.cn:8080/a.htm", "http://xxgk.example-univ.edu.cn:8080/a.htm"),
        ("http://xxgk.example-univ.edu.cn.", "http://xxgk.example-univ.edu.cn/"),
        ("http://例子.中国/路径.htm", "http://xn--fsqu00a.xn--fiqs8s/%E8%B7%AF%E5%BE%84.htm"),
        ("http://例子。中国/", "http://xn--fsqu00a.xn--fiqs8s/"),
        (" \u3000http://x.edu.cn/a.htm\u200b ", "http://x.edu.cn/a.htm"),
        ("http://x.edu.cn/a\n/b.htm", "http://x.edu.cn/a/b.htm"),
        ("http://x.edu.cn/BigClass.jsp;jsessionid=0A1B2C3D4E5F?id=71", "http://x.edu.cn/BigClass.jsp?id=71"),
        ("http://x.edu.cn/list.jsp?JSESSIONID=abc&id=3&PHPSESSID=zz&sessionid=1",
         "http://x.edu.cn/list.jsp?id=3"),
        ("http://x.edu.cn/a.jsp?id=201&sid=7f3a9b2c4d5e6f708192a3b4", "http://x.edu.cn/a.jsp?id=201"),
        ("http://x.edu.cn/ShowArticle.jsp?id=201&sid=8f3a0001", "http://x.edu.cn/ShowArticle.jsp?id=201"),
        ("http://x.edu.cn/a.jsp?id=201&sid=12", "http://x.edu.cn/a.jsp?id=201&sid=12"),
        ("http://x.edu.cn/2580/list.htm?utm_source=home&utm_medium=x&spm=a.b.c&fbclid=z",
         "http://x.edu.cn/2580/list.htm"),
        ("http://x.edu.cn/a.htm?from=singlemessage&isappinstalled=0", "http://x.edu.cn/a.htm"),
        ("http://x.edu.cn/list.jsp?from=20&size=10", "http://x.edu.cn/list.jsp?from=20&size=10"),
        ("http://x.edu.cn/list.jsp?_=1623456789012&b=2&a=1", "http://x.edu.cn/list.jsp?a=1&b=2"),
        ("http://x.edu.cn/search.jsp?q=%D6%D0%CE%C4", "http://x.edu.cn/search.jsp?q=%D6%D0%CE%C4"),
        ("http://x.edu.cn/a%7e/%e4%b8%ad.htm", "http://x.edu.cn/a~/%E4%B8%AD.htm"),
        ("https://mp.weixin.qq.com/s?__biz=MzA5&mid=26&idx=1&sn=ab&chksm=8b&scene=21#wechat_redirect",
         "https://mp.weixin.qq.com/s?__biz=MzA5&idx=1&mid=26&sn=ab"),
        # A host ending in a number is an IPv4 address, as browsers read it (WHATWG URL),
        # whichever w3lib is installed.
        ("http://2130706433/a.htm", "http://127.0.0.1/a.htm"),
        ("http://0x7F.1:8080/", "http://127.0.0.1:8080/"),
        ("http://0177.0.0.1./", "http://127.0.0.1/"),
        ("http://202.118.176.9/xxgk/", "http://202.118.176.9/xxgk/"),
        ("http://xxgk.hrbeu.edu.cn.123abc/", "http://xxgk.hrbeu.edu.cn.123abc/"),
        ("http://a.0/", None),
        ("http://1.2.3.256/", None),
        ("http://1.2.3.4.5/", None),
        ("http://08.1.1.1/", None),
    ],
)
def test_canonicalize(url, expected):
    assert canonicalize(url) == expected


@pytest.mark.parametrize(
    ("href", "expected"),
    [
        ("../../info/1021/1234.htm", "http://xxgk.example-univ.edu.cn/info/1021/1234.htm"),
        ("..\\..\\info\\1021\\1234.htm", "http://xxgk.example-univ.edu.cn/info/1021/1234.htm"),
        ("/2580/list.htm", "http://xxgk.example-univ.edu.cn/2580/list.htm"),
        ("?page=2", "http://xxgk.example-univ.edu.cn/xxgk/zsxx/index.htm?page=2"),
        ("#content", "http://xxgk.example-univ.edu.cn/xxgk/zsxx/index.htm"),
        ("//www.moe.gov.cn/", "http://www.moe.gov.cn/"),
        ("https://WWW.MOE.gov.cn/jyb_xxgk/", "https://www.moe.gov.cn/jyb_xxgk/"),
    ],
)
def test_canonicalize_relative(href, expected):
    assert canonicalize(href, BASE) == expected


def test_canonicalize_query_in_page_encoding():
    assert canonicalize("search.jsp?q=中文", BASE, encoding="gbk") == (
        "http://xxgk.example-univ.edu.cn/xxgk/zsxx/search.jsp?q=%D6%D0%CE%C4")


@pytest.mark.parametrize(
    "url",
    [
        "javascript:void(0)", "JavaScript:openWin('a.htm')", "mailto:xxgk@example-univ.edu.cn", "tel:027-87654321",
        "data:text/html,<p>x</p>", "file:///C:/a.doc", "ftp://ftp.example.edu.cn/a.pdf", "", "   ", "#top",
        "info/1021/1234.htm", "//host.only/without/base", "http://", "http:///a", "http://x.edu.cn:99999/",
        "http://x.edu.cn:abc/", "http://a..b/", "http://exa mple.edu.cn/", "http://[::1/",
        "http://x.edu.cn/" + "a" * MAX_URL_LENGTH,
    ],
)
def test_not_fetchable(url):
    assert canonicalize(url) is None


def test_javascript_relative_to_base_is_still_none():
    assert canonicalize("javascript:void(0)", BASE) is None
    assert canonicalize("mailto:a@b.cn", BASE) is None


URL_PIECES = st.lists(
    st.sampled_from(
        ["a", "info", "1021", "列表", "%E4%B8%AD", "%zz", "..", ".", "", " ", "a b", "%2F", ";jsessionid=X", "~",
         "list.htm", "下载.pdf", "?", "&", "=", "#", "\\", "%", "+", "utm_source=x", "sid=0123456789abcdef01"]
    ),
    max_size=8,
)


@st.composite
def urlish(draw) -> str:
    scheme = draw(st.sampled_from(["http://", "https://", "HTTP://", "ftp://", "", "//", "javascript:"]))
    host = draw(st.sampled_from(["x.edu.cn", "XXGK.Example.EDU.cn", "例子.中国", "x.edu.cn:80", "x.edu.cn:8080",
                                 "[::1]", "a..b", "", "x.edu.cn.", "user:pw@x.edu.cn"]))
    path = "/".join(draw(URL_PIECES))
    query = "&".join(draw(URL_PIECES))
    return f"{scheme}{host}/{path}?{query}#{draw(st.text(max_size=5))}"


@settings(max_examples=400, deadline=None)
@given(urlish())
def test_canonicalize_is_idempotent(url):
    once = canonicalize(url)
    if once is not None:
        assert canonicalize(once) == once
        assert urlsplit(once).scheme in ("http", "https")
        assert len(once) <= MAX_URL_LENGTH


@settings(max_examples=400, deadline=None)
@given(st.text(max_size=200), st.one_of(st.none(), st.just(BASE), st.text(max_size=30)))
def test_canonicalize_never_raises(text, base):
    out = canonicalize(text, base)
    assert out is None or urlsplit(out).scheme in ("http", "https")
    if out is not None:
        assert canonicalize(out) == out


def test_host_and_scope():
    assert host_of("http://XXGK.Example.EDU.cn:8080/a") == "xxgk.example.edu.cn"
    assert host_of("http://例子.中国/") == "xn--fsqu00a.xn--fiqs8s"
    assert host_of("not a url") == ""
    allowed = ["example-univ.edu.cn"]
    assert in_scope("http://xxgk.example-univ.edu.cn/a", allowed)
    assert in_scope("http://example-univ.edu.cn/a", allowed)
    assert not in_scope("http://badexample-univ.edu.cn/a", allowed)
    assert not in_scope("http://example-univ.edu.cn.evil.com/a", allowed)
    assert in_scope("http://xxgk.例子.中国/", ["例子.中国"])
    assert in_scope("http://xxgk.example-univ.edu.cn/", [".Example-Univ.edu.cn", "http://other.cn/"])
    assert not in_scope("mailto:a@example-univ.edu.cn", allowed)


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("http://x.edu.cn/_upload/article/files/a/b/报告.PDF", True),
        ("http://x.edu.cn/files/a.docx", True),
        ("http://x.edu.cn/files/a.wps", True),
        ("http://x.edu.cn/files/a.et", True),
        ("http://x.edu.cn/files/a.7z", True),
        ("http://x.edu.cn/system/_content/download.jsp?urltype=news.DownloadAttachUrl&owner=12&wbfileid=34", True),
        ("http://x.edu.cn/DownLoad.asp?id=3", True),
        ("http://x.edu.cn/down.jsp?file=/upload/2021/ndbg.xls", True),
        ("http://x.edu.cn/download.jsp", False),
        ("http://x.edu.cn/info/1021/1234.htm", False),
        ("http://x.edu.cn/pdf/index.htm", False),
    ],
)
def test_looks_like_attachment(url, expected):
    assert looks_like_attachment(url) is expected


def test_attachment_extension():
    assert attachment_extension("http://x.edu.cn/a/%E6%8A%A5%E5%91%8A.Pdf") == ".pdf"
    assert attachment_extension("http://x.edu.cn/down.jsp?name=a.doc") == ".doc"
    assert attachment_extension("http://x.edu.cn/a.htm") is None


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("http://x.edu.cn/2751/list.htm", True),
        ("http://x.edu.cn/2751/list3.htm", True),
        ("http://x.edu.cn/xxgk/list.psp", True),
        ("http://x.edu.cn/list.jsp?urltype=tree.TreeTempUrl&wbtreeid=1011", True),
        ("http://x.edu.cn/xxgk/zsxx/2.htm", True),
        ("http://x.edu.cn/BigClass.jsp?id=71", True),
        ("http://x.edu.cn/News_List.asp?id=7", True),
        ("http://x.edu.cn/list.asp?id=7", True),
        ("http://x.edu.cn/xxgk/zsxx/index_3.html", True),
        ("http://x.edu.cn/col/col1234/index.html", True),
        ("http://x.edu.cn/xxgk/zsxx.htm", False),  # VSB column page: not guessable from the URL
        ("http://x.edu.cn/info/1021/1234.htm", False),
        ("http://x.edu.cn/2021/0601/c2751a123456/page.htm", False),
        ("http://x.edu.cn/", False),
    ],
)
def test_is_list_page(url, expected):
    assert is_list_page(url) is expected


# --------------------------------------------------------------------------- trap guard

def test_trap_guard_ends_an_infinite_calendar():
    guard = TrapGuard(max_year=2026)
    year, month, fetched = 2022, 11, 0
    for _ in range(100_000):  # "next month" forever
        url = f"http://info.jsp-college.edu.cn/calendar.jsp?year={year}&month={month}"
        if not guard.allow(url):
            break
        fetched += 1
        month += 1
        if month > 12:
            year, month = year + 1, 1
    else:
        pytest.fail("the calendar never ended")
    assert fetched <= 50
    assert sum(guard.denied.values()) == 1


def test_trap_guard_calendar_year_range():
    guard = TrapGuard(max_year=2026)
    assert guard.allow("http://x.edu.cn/cal.jsp?date=2024-05-01")
    assert not guard.allow("http://x.edu.cn/cal.jsp?date=2031-05-01")
    assert not guard.allow("http://x.edu.cn/cal.jsp?year=1969")
    assert guard.denied["calendar-range"] == 2
    assert guard.allow("http://x.edu.cn/info/2031/1234.htm")  # path years are not calendars


def test_trap_guard_pattern_budget():
    guard = TrapGuard(per_pattern=5)
    allowed = [guard.allow(f"http://x.edu.cn/cal.jsp?date=2024-05-{n:02d}") for n in range(1, 20)]
    assert allowed == [True] * 5 + [False] * 14
    assert guard.allow("http://x.edu.cn/cal.jsp?date=2024-05-01")  # seen before: free
    assert guard.allow("http://x.edu.cn/other.jsp?date=2024-05-01")
    assert guard.denied["pattern-budget"] == 14
    paging = TrapGuard(per_pattern=5, paging_budget=8)
    allowed = [paging.allow(f"http://x.edu.cn/list.jsp?page={n}") for n in range(1, 20)]
    assert allowed == [True] * 8 + [False] * 11


def test_real_list_paging_is_not_cut_at_the_calendar_budget():
    """A column's list pages past the 50th are as real as the first (old articles are where
    dead links pile up): paging alone has its own, larger budget; calendars keep 50. A
    one-letter key is a calendar field beside a year only: ``list.asp?t=4&page=N`` is column
    4's paging, not one calendar with every column in it (found by a review)."""
    guard = TrapGuard()
    for url in ("http://x.edu.cn/BigClass.jsp?id=71&page={}", "http://x.edu.cn/index.html?uid=456&pageNum={}",
                "http://x.edu.cn/list.jsp?urltype=tree.TreeTempUrl&wbtreeid=1021&PAGENUM={}"):
        assert all(guard.allow(url.format(n)) for n in range(1, 121)), url
    months = [guard.allow(f"http://x.edu.cn/cal.jsp?year=2024&month={m}&day={d}")
              for m in range(1, 13) for d in range(1, 8)]
    assert months.count(True) == 50
    columns = TrapGuard(per_pattern=10, paging_budget=10)
    for column in range(1, 6):
        assert all(columns.allow(f"http://x.edu.cn/list.asp?t={column}&page={n}") for n in range(1, 11))
    assert TrapGuard.calendar_pattern("http://x.edu.cn/list.asp?t=4&page=2") is None
    assert TrapGuard.calendar_pattern("http://x.edu.cn/cal.asp?y=2021&m=4") == "x.edu.cn/cal.asp?m=0&y=0"
    assert TrapGuard.calendar_pattern("http://x.edu.cn/cal.asp?d=2021-04-05") is not None


def test_trap_guard_revisits_a_known_calendar_with_its_revisit_budget():
    calendar = "http://info.jsp-college.edu.cn/calendar.jsp?year={}&month={}"
    paging = "http://x.edu.cn/BigClass.jsp?id=71&page={}"
    known = {TrapGuard.calendar_pattern(calendar.format(2022, 1))}
    guard = TrapGuard(known_traps=known, revisit_budget=4, max_year=2026)
    months = [guard.allow(calendar.format(2022, month)) for month in range(1, 13)]
    assert months == [True] * 4 + [False] * 8
    assert guard.denied["pattern-budget"] == 8
    # Only the known pattern: another calendar and a paging pattern keep the full budget.
    assert all(guard.allow(f"http://x.edu.cn/cal.jsp?date=2022-{m:02d}-01") for m in range(1, 13))
    assert all(guard.allow(paging.format(n)) for n in range(1, 13))
    assert TrapGuard(known_traps=known, revisit_budget=500).budget_for(next(iter(known))) == 50


def test_calendar_pattern_is_calendar_not_paging():
    assert TrapGuard.calendar_pattern("http://a.cn/calendar.jsp?month=10&year=2021") == "a.cn/calendar.jsp?month=0&year=0"
    assert TrapGuard.calendar_pattern("http://a.cn/news.jsp?page=2&date=2021-05") is not None
    assert TrapGuard.calendar_pattern("http://a.cn/calendar/2021/05.htm") is not None
    assert TrapGuard.calendar_pattern("http://a.cn/BigClass.jsp?id=71&page=3") is None
    assert TrapGuard.calendar_pattern("http://a.cn/x.jsp?p=3") is None
    assert TrapGuard.calendar_pattern("http://a.cn/info/1021/2021.htm") is None


def test_trap_guard_never_budgets_articles():
    guard = TrapGuard()
    for n in range(500):
        assert guard.allow(f"http://x.edu.cn/2022/03{n % 28 + 1:02d}/c2585a{300000 + n}/page.htm")
        assert guard.allow(f"http://x.edu.cn/info/1021/{1000 + n}.htm")
        assert guard.allow(f"http://x.edu.cn/ShowArticle.jsp?id={n}")
    assert not guard.denied


def test_trap_guard_paging_budget_is_per_column():
    guard = TrapGuard(per_pattern=10, paging_budget=10)
    for column in (71, 72):
        allowed = [guard.allow(f"http://x.edu.cn/BigClass.jsp?id={column}&page={n}") for n in range(1, 30)]
        assert allowed.count(True) == 10


def test_trap_guard_calendar_directory():
    guard = TrapGuard(max_year=2026)
    assert guard.allow("http://x.edu.cn/calendar/2024/05/")
    assert not guard.allow("http://x.edu.cn/calendar/2099/01/")
    assert guard.pattern("http://x.edu.cn/calendar/2024/05/") == guard.pattern("http://x.edu.cn/calendar/2025/11/")
    assert guard.pattern("http://x.edu.cn/info/1021/1234.htm") is None


def test_trap_guard_depth_and_repetition():
    guard = TrapGuard()
    assert guard.allow("http://x.edu.cn/xxgk/xxgk/index.htm")  # one bad relative link: still checked
    assert not guard.allow("http://x.edu.cn/xxgk/xxgk/xxgk/index.htm")
    assert not guard.allow("http://x.edu.cn/a/b/a/b/a/b/c.htm")
    assert guard.allow("http://x.edu.cn/a/b/a/b/c.htm")
    assert not guard.allow("http://x.edu.cn/" + "/".join(f"d{i}" for i in range(13)) + "/x.htm")
    assert guard.denied["repeated-segments"] == 2 and guard.denied["depth"] == 1


def test_trap_guard_query_variants():
    guard = TrapGuard(max_query_variants=3)
    assert guard.allow("http://x.edu.cn/search.jsp?a=1")
    assert guard.allow("http://x.edu.cn/search.jsp?b=1")
    assert guard.allow("http://x.edu.cn/search.jsp?a=1&b=1")
    assert not guard.allow("http://x.edu.cn/search.jsp?c=1")
    assert guard.allow("http://x.edu.cn/search.jsp?a=2")  # a known combination
    assert guard.denied["query-variants"] == 1


# --------------------------------------------------------------------------- probe URLs

@pytest.mark.parametrize(
    ("site_url", "shape"),
    [
        ("http://x.edu.cn/2751/list.htm", r"^http://x\.edu\.cn/[0-9a-z]{6}/list\.htm$"),
        ("http://x.edu.cn/info/1021/1234.htm", r"^http://x\.edu\.cn/info/1021/\d{8}\.htm$"),
        ("http://x.edu.cn/ShowArticle.jsp?id=201", r"^http://x\.edu\.cn/ShowArticle\.jsp\?id=\d{12}$"),
        ("http://x.edu.cn/xxgk/201910/t20191010_123.html", r"^http://x\.edu\.cn/xxgk/201910/t20191010_\d{8}\.html$"),
        ("http://x.edu.cn/2021/0601/c2751a123456/page.htm", r"^http://x\.edu\.cn/2021/0601/c2751a\d{8}/page\.htm$"),
        ("http://x.edu.cn/index.jsp", r"^http://x\.edu\.cn/[0-9a-z]{6}\.jsp$"),
        ("http://x.edu.cn/", r"^http://x\.edu\.cn/[0-9a-z]{6}\.htm$"),
        ("http://x.edu.cn/xxgk/zsxx.htm", r"^http://x\.edu\.cn/xxgk/[0-9a-z]{6}\.htm$"),
    ],
)
def test_probe_url_keeps_the_style(site_url, shape):
    import re

    probe = probe_url(site_url, "seed-1")
    assert re.match(shape, probe), probe
    assert probe != site_url
    assert probe_url(site_url, "seed-1") == probe  # deterministic
    assert probe_url(site_url, "seed-2") != probe
