"""The /-/snapshot/<id> Datasette plugin: banner, sandboxed raw page, link rewriting, attachments."""

from __future__ import annotations

import asyncio
import json
import re
from urllib.parse import unquote

import pytest
from lxml import html as lxml_html

from archive.serve import make_datasette
from archive.store import ArchiveWriter, finish_crawl, start_crawl, upsert_sites
from crawler.items import LinkCheck

HOME = "http://xxgk.s.edu.cn/index.htm"
NEWS = "http://xxgk.s.edu.cn/news/1.htm"
LATER = "http://xxgk.s.edu.cn/later.htm"
PDF_URL = "http://xxgk.s.edu.cn/files/report.pdf"
PDF = b"%PDF-1.4 report bytes \x00\x01\x02"
RENDERED = "http://xxgk.s.edu.cn/item/7.htm"
PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR screenshot bytes \x00\xff"
HOME_HTML = """<!DOCTYPE html>
<html><head><meta http-equiv="Content-Type" content="text/html; charset=gb2312">
<meta http-equiv="refresh" content="5; url=http://evil.example/">
<title>信息公开网</title><link rel="stylesheet" href="http://cdn.example/site.css">
<script src="http://xxgk.s.edu.cn/js/app.js"></script>
<script>document.title = "pwned"</script></head>
<body onload="alert(1)"><h1>学校信息公开</h1>
<a href="news/1.htm#top">新闻一</a>
<a href="/news/1.htm;jsessionid=ABC123">会话链接</a>
<a href="news/1.htm?utm_source=home">跟踪链接</a>
<a href="/later.htm">以后的页面</a>
<a href="http://live.example/elsewhere">外部链接</a>
<a href="javascript:alert(2)">脚本链接</a>
<a href="#section">本页</a>
<a href="files/report.pdf">年度报告</a>
<img src="/images/logo.png" onerror="alert(3)">
<form action="http://xxgk.s.edu.cn/search"><input name="q"></form>
</body></html>"""


def run(coroutine):
    return asyncio.run(coroutine)


@pytest.fixture
def archive_path(tmp_path):
    from archive.db import open_db

    path = tmp_path / "archive.db"
    db = open_db(path)
    upsert_sites(db, [{"id": "s", "name": "S", "portal": json.dumps([HOME])}])
    writer = ArchiveWriter(db)

    def check(crawl, url, at, body, ctype, **kw):
        writer.record_check(LinkCheck(site_id="s", crawl_id=crawl, url=url, checked_at=at, state="ok",
                                      rule="test", status_code=200, body=body, content_type=ctype,
                                      headers={"content-type": ctype}, **kw))

    c1 = start_crawl(db, "s")
    check(c1, NEWS, "2026-01-01T07:00:00Z", "<html><body>新闻 v1</body></html>".encode(),
          "text/html; charset=utf-8", encoding="utf-8")
    check(c1, HOME, "2026-01-01T08:00:00Z", HOME_HTML.encode("gbk"), "text/html; charset=gb2312",
          encoding="gb2312", title="信息公开网")
    # crawled after the home page, in the same crawl: links still resolve to it
    check(c1, PDF_URL, "2026-01-01T08:05:00Z", PDF, "application/pdf", filename="2021年度报告.pdf")
    writer.commit()
    finish_crawl(db, c1, "finished")
    c2 = start_crawl(db, "s")
    check(c2, NEWS, "2026-01-05T07:00:00Z", "<html><body>新闻 v2</body></html>".encode(),
          "text/html; charset=utf-8", encoding="utf-8")
    check(c2, LATER, "2026-01-05T07:10:00Z", b"<html><body>later</body></html>", "text/html")
    check(c2, RENDERED, "2026-01-05T07:20:00Z", b"<html><body>rendered DOM</body></html>",
          "text/html", rendered=True, render_reason="javascript-only page", screenshot=PNG)
    writer.commit()
    ids = {url: sid for url, sid in db.execute("SELECT url, id FROM snapshots ORDER BY id")}
    ids["news_v1"], ids["news_v2"] = (r[0] for r in db.execute(
        "SELECT id FROM snapshots WHERE url = ? ORDER BY id", [NEWS]))
    db.conn.close()
    return path, ids


async def get(path, url):
    ds = make_datasette(path)
    return await ds.client.get(url)


def test_banner_page(archive_path):
    path, ids = archive_path
    response = run(get(path, f"/-/snapshot/{ids[HOME]}"))
    assert response.status_code == 200
    page = response.text
    assert "Archived snapshot" in page and HOME in page
    assert "2026-01-01T08:00:00Z" in page
    assert "/xxgk/url_history?url=http%3A%2F%2Fxxgk.s.edu.cn%2Findex.htm" in page
    frame = lxml_html.fromstring(page).find(".//iframe")
    assert frame.get("src") == f"/-/snapshot/{ids[HOME]}/raw"
    assert "allow-scripts" not in frame.get("sandbox") and "allow-same-origin" not in frame.get("sandbox")
    sha = re.search(r"[0-9a-f]{64}", page).group(0)
    assert f"/xxgk/blobs/{sha}" in page
    assert run(get(path, "/-/snapshot/999999")).status_code == 404


def test_raw_page_is_sandboxed_and_rewritten(archive_path):
    path, ids = archive_path
    response = run(get(path, f"/-/snapshot/{ids[HOME]}/raw"))
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    csp = response.headers["content-security-policy"]
    directives = {d.split()[0]: d.split()[1:] for d in (p.strip() for p in csp.split(";")) if d}
    assert "allow-scripts" not in directives["sandbox"] and "allow-same-origin" not in directives["sandbox"]
    assert directives["default-src"] == ["'none'"]
    assert "script-src" not in directives  # scripts fall back to default-src 'none'
    assert set(directives["img-src"]) == {"data:", "'self'"}
    assert response.headers["x-content-type-options"] == "nosniff"

    page = response.text
    assert page.startswith("<!DOCTYPE html>")
    assert "信息公开网" in page and "学校信息公开" in page  # decoded from GB2312/GBK
    doc = lxml_html.fromstring(page)
    assert doc.xpath("//script") == []
    assert not [e for e in doc.iter() if any(a.startswith("on") for a in e.attrib)]
    assert doc.xpath("//meta[@http-equiv]") == []
    assert doc.xpath("//meta/@charset") == ["utf-8"]
    links = {a.text: a for a in doc.iter("a")}
    # newest capture at or before this one
    assert links["新闻一"].get("href") == f"/-/snapshot/{ids['news_v1']}"
    assert links["新闻一"].get("target") == "_top"
    # looked up in the crawler's canonical form (session id dropped)
    assert links["会话链接"].get("href") == f"/-/snapshot/{ids['news_v1']}"
    assert links["跟踪链接"].get("href") == f"/-/snapshot/{ids['news_v1']}"
    # captured only later, in another crawl: inert
    assert links["以后的页面"].get("href") is None
    # captured later in the same crawl: linked
    assert links["年度报告"].get("href") == f"/-/snapshot/{ids[PDF_URL]}"
    assert links["外部链接"].get("href") is None
    assert links["外部链接"].get("data-archived-href") == "http://live.example/elsewhere"
    assert links["脚本链接"].get("href") is None
    assert links["本页"].get("href") == "#section"
    assert doc.find(".//img").get("src") is None
    assert doc.find(".//form").get("action") is None
    assert "live.example" not in " ".join(v for e in doc.iter() for k, v in e.attrib.items()
                                          if k in ("href", "src", "action"))


def test_attachment_served_with_original_type_and_filename(archive_path):
    path, ids = archive_path
    response = run(get(path, f"/-/snapshot/{ids[PDF_URL]}/raw"))
    assert response.status_code == 200
    assert response.content == PDF
    assert response.headers["content-type"] == "application/pdf"
    disposition = response.headers["content-disposition"]
    assert disposition.startswith("attachment;")
    encoded = re.search(r"filename\*=UTF-8''(\S+)", disposition).group(1)
    assert unquote(encoded) == "2021年度报告.pdf"
    banner = run(get(path, f"/-/snapshot/{ids[PDF_URL]}")).text
    assert "<iframe" not in banner and "2021年度报告.pdf" in banner
    original = run(get(path, f"/-/snapshot/{ids[HOME]}/raw?download=1"))
    assert original.content == HOME_HTML.encode("gbk")
    assert original.headers["content-disposition"].startswith("attachment;")


def test_cells_link_to_the_viewer(archive_path):
    path, ids = archive_path
    table = run(get(path, "/xxgk/snapshots")).text
    assert f'href="/-/snapshot/{ids[HOME]}">view</a>' in table
    checks = run(get(path, "/xxgk/link_checks")).text
    assert f'href="/-/snapshot/{ids[PDF_URL]}">view</a>' in checks


@pytest.mark.parametrize("content", ["'<html>text</html>'", "1000000000000", "x'00ff'"])
def test_a_corrupt_body_is_reported_not_crashed_on(archive_path, content):
    """A blob row edited or damaged (TEXT, a number, bytes that do not hash): a plain
    500 naming ``xxgk verify``, never a TypeError or a gigabyte allocated for a number."""
    import sqlite3

    path, ids = archive_path
    with sqlite3.connect(path) as conn:
        conn.execute(f"UPDATE blobs SET content = {content}, compression = 'none' WHERE sha256 = "
                     "(SELECT sha256 FROM snapshots WHERE id = ?)", [ids[LATER]])
    response = run(get(path, f"/-/snapshot/{ids[LATER]}/raw"))
    assert response.status_code == 500 and "xxgk verify" in response.text, response.text


def test_screenshot_is_served_as_a_sandboxed_png(archive_path):
    path, ids = archive_path
    response = run(get(path, f"/-/snapshot/{ids[RENDERED]}/screenshot"))
    assert response.status_code == 200
    assert response.content == PNG  # decompressed, not the stored zlib bytes
    assert response.headers["content-type"] == "image/png"
    assert "sandbox" in response.headers["content-security-policy"]
    assert "default-src 'none'" in response.headers["content-security-policy"]
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["content-disposition"].startswith("inline;")
    # a capture without a screenshot, and one past SQLite's integers
    assert run(get(path, f"/-/snapshot/{ids[HOME]}/screenshot")).status_code == 404
    assert run(get(path, "/-/snapshot/99999999999999999999999/screenshot")).status_code == 404


def test_banner_says_rendered_and_links_the_screenshot(archive_path):
    path, ids = archive_path
    page = run(get(path, f"/-/snapshot/{ids[RENDERED]}")).text
    doc = lxml_html.fromstring(page)
    banner = doc.get_element_by_id("xxgk-banner")
    text = banner.text_content()
    assert "Rendered" in text and "javascript-only page" in text
    assert "not the bytes the server sent" in text
    shot = f"/-/snapshot/{ids[RENDERED]}/screenshot"
    assert shot in banner.xpath(".//a/@href") and shot in banner.xpath(".//img/@src")
    # the banner sets no CSP that would block its own thumbnail
    response = run(get(path, f"/-/snapshot/{ids[RENDERED]}"))
    assert "content-security-policy" not in response.headers
    plain = run(get(path, f"/-/snapshot/{ids[HOME]}")).text
    assert "/screenshot" not in plain and "not the bytes the server sent" not in plain


def test_screenshot_cell_links_to_the_png(archive_path):
    path, ids = archive_path
    row = run(get(path, f"/xxgk/snapshots/{ids[RENDERED]}")).text
    assert f'href="/-/snapshot/{ids[RENDERED]}/screenshot">PNG</a>' in row


def test_a_corrupt_screenshot_is_reported_not_crashed_on(archive_path):
    import sqlite3

    path, ids = archive_path
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE blobs SET content = x'00ff', compression = 'none' WHERE sha256 = "
                     "(SELECT screenshot_sha256 FROM snapshots WHERE id = ?)", [ids[RENDERED]])
    response = run(get(path, f"/-/snapshot/{ids[RENDERED]}/screenshot"))
    assert response.status_code == 500 and "xxgk verify" in response.text, response.text
