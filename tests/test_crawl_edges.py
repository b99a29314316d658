"""Crawl edge cases of real portals the bundled simulated web did not have (found by a review).

Each test serves a few pages of its own through the simulated web's proxy (``SimWeb(extra=)``)
and crawls them with ``xxgk crawl``: the page budget counts pages, not links to them; a GBK
page's raw Chinese query is sent GBK-encoded, as browsers send it; a link that redirects to
another site does not make that site's links ours; a report first linked without report
wording is still ingested when a later link says what it is.
"""

from __future__ import annotations

from datetime import date

from simweb.content import html_page
from simweb.model import Resource

ROBOTS = Resource(body=b"User-agent: *\nDisallow:\n", content_type="text/plain", validators=False)


def _page(title: str, body: str) -> Resource:
    return Resource(body=html_page(title, body).encode(), validators=False)


def test_the_page_budget_counts_pages_not_links_to_them(crawl_pages):
    """Every page repeats the same navigation (each column linked twice), as WebPlus and VSB
    templates do: 13 pages under max_pages = 20 are all fetched and archived. Links to a page
    already requested used to count again, and to be refused "max_pages reached" once the
    count ran out, throwing away the answers of pages that had been fetched."""
    host = "http://xxgk.budget-univ.edu.cn"
    nav = "".join(f'<a href="/col{i}/list.htm">栏目{i}</a> <a href="/col{i}/list.htm">更多&gt;&gt;</a> '
                  for i in range(6))

    def page(title: str, more: str = "") -> Resource:
        return _page(title, f"<div class='nav'>{nav}</div><h1>{title}</h1><p>{'学校信息公开的正文内容。' * 30}</p>{more}")

    pages = {f"{host}/robots.txt": ROBOTS, f"{host}/main.htm": page("首页")}
    for i in range(6):
        pages[f"{host}/col{i}/list.htm"] = page(
            f"栏目{i}", f'<ul class="news_list"><li><a href="/col{i}/a1.htm">文章{i}</a> 2024-05-01</li></ul>')
        pages[f"{host}/col{i}/a1.htm"] = page(f"文章{i}")
    conn, log = crawl_pages(pages, f"{host}/main.htm", "max_pages = 20\n")
    assert not conn.execute("SELECT url FROM link_checks WHERE rule = 'budget'").fetchall()
    assert conn.execute("SELECT COUNT(DISTINCT url) FROM snapshots").fetchone()[0] == 13
    assert len({url for method, url, _ in log if method == "GET" and "robots" not in url}) == 13


def test_a_gbk_pages_raw_chinese_query_is_sent_gbk_encoded(crawl_pages):
    """A GBK JSP links list.jsp?lm=信息公开; browsers send the query in the page's encoding.
    UTF-8 bytes are garbage to the JSP ("参数错误"): a false soft 404 before."""
    host = "http://info.gbkquery-college.edu.cn"
    gbk = lambda text: text.encode("gbk")  # noqa: E731
    home = gbk('<html><head><meta http-equiv="Content-Type" content="text/html; charset=gb2312"><title>信息公开</title>'
               '</head><body><h1>信息公开</h1><p>' + "学院信息公开网首页说明文字。" * 20
               + '</p><a href="list.jsp?lm=信息公开">信息公开目录</a></body></html>')
    column = gbk('<html><head><meta charset="gbk"><title>信息公开目录</title></head><body><h1>信息公开目录</h1><p>'
                 + "栏目正文内容。" * 50 + "</p></body></html>")
    wrong = gbk('<html><head><meta charset="gbk"><title>提示</title></head><body><p>参数错误！</p></body></html>')
    gbk_url = f"{host}/list.jsp?lm=%D0%C5%CF%A2%B9%AB%BF%AA"
    pages = {f"{host}/robots.txt": ROBOTS,
             f"{host}/index.jsp": Resource(body=home, content_type="text/html", validators=False),
             gbk_url: Resource(body=column, content_type="text/html", validators=False),
             f"{host}/list.jsp?lm=%E4%BF%A1%E6%81%AF%E5%85%AC%E5%BC%80": Resource(
                 body=wrong, content_type="text/html", validators=False, state="soft_404")}
    conn, _log = crawl_pages(pages, f"{host}/index.jsp")
    states = dict(conn.execute("SELECT url, state FROM link_checks"))
    assert states.get(gbk_url) == "ok", states
    assert [u for (u,) in conn.execute("SELECT to_url FROM link_sources")] == [gbk_url]


def test_a_link_redirecting_to_another_site_does_not_make_its_links_ours(crawl_pages):
    host, other = "http://xxgk.redir-univ.edu.cn", "http://www.moe-sim.gov.cn"
    pages = {f"{host}/robots.txt": ROBOTS, f"{other}/robots.txt": ROBOTS,
             f"{host}/main.htm": _page("首页", "<p>" + "说明文字。" * 40 + "</p><a href='/_redirect?articleId=3'>教育部通知</a>"),
             f"{host}/_redirect?articleId=3": Resource(status=302, body=b"", headers=[("Location", f"{other}/a/1.htm")],
                                                        state="redirected", validators=False),
             f"{other}/a/1.htm": _page("通知", "<p>" + "通知正文。" * 40 + "</p>"
                                        + "".join(f"<a href='/a/{n}.htm'>文件{n}</a>" for n in range(2, 6)))}
    conn, log = crawl_pages(pages, f"{host}/main.htm")
    assert not [url for _m, url, _s in log if url.startswith(f"{other}/a/") and not url.endswith("/1.htm")]
    state, final = conn.execute("SELECT state, final_url FROM link_checks WHERE url LIKE '%_redirect%'").fetchone()
    assert (state, final) == ("redirected", f"{other}/a/1.htm")
    assert not conn.execute("SELECT 1 FROM link_sources WHERE from_url LIKE ?", [f"{other}%"]).fetchall()


def test_a_report_first_linked_without_report_wording_is_still_ingested(crawl_pages):
    """The home page's "latest" box links the PDF with truncated text; its article page links
    it again as "附件1" under the report's title: that second link carries the report hint."""
    from simweb.reports import ReportSpec, render

    host = "http://xxgk.hint-univ.edu.cn"
    title = "测试大学2021-2022学年信息公开工作年度报告"
    pdf_url, article = f"{host}/_upload/report.pdf", f"{host}/2022/1020/c2001a1/page.htm"
    spec = ReportSpec(site_id="t", school="测试大学", year_form="2021-2022学年", academic_year="2021-2022",
                      fmt="pdf", url=pdf_url, page_url=article, portal=f"{host}/main.htm", items={},
                      applications=3, applications_text="本年度共收到信息公开申请3件。", signed=date(2022, 10, 20))
    main = (f"<h1>首页</h1><p>{'说明文字。' * 40}</p><ul><li><a href='/_upload/report.pdf'>{title[:6]}...</a></li></ul>"
            f"<ul class='news_list'><li><a href='/2022/1020/c2001a1/page.htm'>{title}</a> 2022-10-20</li></ul>")
    body = f"<h1>{title}</h1><p>{'现将我校信息公开工作年度报告予以公布。' * 5}</p><p>附件：<a href='/_upload/report.pdf'>附件1</a></p>"
    pages = {f"{host}/robots.txt": ROBOTS, f"{host}/main.htm": _page("首页", main), article: _page(title, body),
             pdf_url: Resource(body=render(spec), content_type="application/pdf", validators=False)}
    conn, _log = crawl_pages(pages, f"{host}/main.htm")
    reports = conn.execute("SELECT source_url, academic_year FROM reports").fetchall()
    assert reports == [(pdf_url, "2021-2022")], reports


def test_real_portal_patterns_reach_every_list_page_and_attachment(crawl_pages):
    """Patterns of real portals the simulated sites did not have (found by a review): a
    WebPlus article whose PDF is shown only by its PDF player (``pdfsrc``) or a pdf.js viewer
    (``viewer.html?file=``); a JSP column paged past the calendar budget of 50; a TRS list
    whose pager exists only as ``createPageHTML(...)``. Every page and file is fetched."""
    from simweb.docs import simple_pdf

    host = "http://xxgk.patterns-univ.edu.cn"
    pdf = Resource(body=simple_pdf("年度报告", ("学校信息公开工作年度报告正文。",)), content_type="application/pdf",
                   validators=False)
    text = f"<p>{'学校信息公开的正文内容。' * 30}</p>"
    article = _page("2021-2022学年信息公开工作年度报告",
                    f"<h1>年度报告</h1>{text}<div class='wp_pdf_player' pdfsrc='/_upload/files/report.pdf'></div>"
                    "<iframe src='/_js/_portletPlugs/swfPlayer/pdfjs/web/viewer.html?file=/_upload/files/zszc.pdf'>"
                    "</iframe>")
    pages = {f"{host}/robots.txt": ROBOTS, f"{host}/_upload/files/report.pdf": pdf,
             f"{host}/_upload/files/zszc.pdf": pdf, f"{host}/2021/0501/c1a1/page.htm": article}
    for n in range(1, 61):  # BigClass.jsp?id=71&page=N, 60 pages chained by 下一页
        more = f"<a href='BigClass.jsp?id=71&page={n + 1}'>下一页</a>" if n < 60 else ""
        pages[f"{host}/BigClass.jsp?id=71&page={n}"] = _page(
            f"信息公开 第{n}页", f"{text}<ul class='news_list'><li><a href='Show.jsp?id={n}'>文章{n}</a>"
            f" 2024-05-01</li></ul>{more}")
        pages[f"{host}/Show.jsp?id={n}"] = _page(f"文章{n}", text)
    for n in range(3):  # TRS channel: the pager is a script call
        name = "index.html" if n == 0 else f"index_{n}.html"
        pages[f"{host}/zc/{name}"] = _page(
            f"政策 第{n + 1}页", f"{text}<ul class='list_ul'><li><a href='./t{n}.html'>政策{n}</a> 2024-05-01</li></ul>"
            f"<script>var currentPage = {n};\nvar countPage = 3\n"
            "createPageHTML(countPage, currentPage, \"index\", \"html\");</script>")
        pages[f"{host}/zc/t{n}.html"] = _page(f"政策{n}", text)
    home = _page("信息公开网", f"{text}<a href='/2021/0501/c1a1/page.htm'>年度报告</a>"
                                f"<a href='/BigClass.jsp?id=71&page=1'>信息公开</a><a href='/zc/index.html'>政策</a>")
    pages[f"{host}/main.htm"] = home
    conn, log = crawl_pages(pages, f"{host}/main.htm", "max_pages = 500\n")
    checked = dict(conn.execute("SELECT url, state FROM link_checks"))
    missing = sorted(set(pages) - {f"{host}/robots.txt"} - set(checked))
    assert not missing, missing
    assert {checked[url] for url in pages if url in checked} == {"ok"}, {
        url: state for url, state in checked.items() if state != "ok"}
    assert not conn.execute("SELECT url FROM link_checks WHERE rule IN ('trap-guard', 'budget')").fetchall()
