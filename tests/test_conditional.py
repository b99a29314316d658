"""ConditionalRequestMiddleware on a temp archive: validators and the 304's body come from the
newest raw capture of an *earlier* crawl, never from the crawl running now."""

from __future__ import annotations

import hashlib
from types import SimpleNamespace

import pytest
from scrapy import Request
from scrapy.http import Response

from archive.blobs import BlobError, load_blob, store_blob
from archive.store import ArchiveWriter, start_crawl, upsert_sites
from crawler.items import LinkCheck
from crawler.middlewares import ConditionalRequestMiddleware
from simweb.content import html_page
from simweb.model import Resource

URL = "http://a.test/index.htm"


def _capture(writer: ArchiveWriter, crawl_id: int, body: bytes, etag: str) -> None:
    writer.record_check(LinkCheck(site_id="s", crawl_id=crawl_id, url=URL, checked_at="2026-01-01T00:00:00Z",
                                  state="ok", rule="ok", status_code=200, content_type="text/html",
                                  body=body, headers={"etag": etag, "content-type": "text/html"}))
    writer.commit()


def _middleware(db, running: dict[str, int]) -> ConditionalRequestMiddleware:
    path = db.conn.execute("PRAGMA database_list").fetchone()[2]
    stats = SimpleNamespace(values={}, inc_value=lambda key: stats.values.update({key: stats.values.get(key, 0) + 1}))
    crawler = SimpleNamespace(spider=SimpleNamespace(crawl_ids=running), stats=stats)
    return ConditionalRequestMiddleware(path, True, crawler)


def test_a_recrawl_asks_with_the_previous_crawls_validators_and_restores_its_body_on_304(db):
    upsert_sites(db, [{"id": "s", "name": "S", "portal": '["http://a.test/"]'}])
    writer = ArchiveWriter(db)
    previous = start_crawl(db, "s")
    _capture(writer, previous, b"<html>day 1</html>", '"v1"')
    running = start_crawl(db, "s")
    middleware = _middleware(db, {"s": running})
    request = Request(URL)
    middleware.process_request(request)
    assert request.headers[b"If-None-Match"] == b'"v1"'
    restored = middleware.process_response(request, Response(URL, status=304, request=request))
    assert restored.status == 200 and restored.body == b"<html>day 1</html>"
    assert request.meta["xxgk_not_modified"] is True


def test_a_capture_of_the_crawl_running_now_is_not_a_previous_capture(db):
    """The archive fills while the crawl runs: a URL asked for again in this crawl (a
    redirect's target, another worker's copy) must not be answered 304 "not modified since
    the previous crawl" against this crawl's own capture."""
    upsert_sites(db, [{"id": "s", "name": "S", "portal": '["http://a.test/"]'}])
    writer = ArchiveWriter(db)
    previous = start_crawl(db, "s")
    _capture(writer, previous, b"<html>day 1</html>", '"v1"')
    running = start_crawl(db, "s")
    _capture(writer, running, b"<html>day 2</html>", '"v2"')
    request = Request(URL)
    _middleware(db, {"s": running}).process_request(request)
    assert request.headers[b"If-None-Match"] == b'"v1"'  # the earlier crawl's, not this one's
    first_crawl_only = Request(URL)
    fresh = start_crawl(db, "t")
    db.execute("DELETE FROM snapshots WHERE crawl_id = ?", [previous])
    _middleware(db, {"s": running, "t": fresh}).process_request(first_crawl_only)
    assert b"If-None-Match" not in first_crawl_only.headers  # only this crawl's capture: ask plainly


def test_a_body_cut_short_is_never_the_previous_capture(db):
    """An attachment whose download stopped before its Content-Length: asking for it with its
    ETag would get a 304 and keep the cut copy for as long as the ETag holds."""
    upsert_sites(db, [{"id": "s", "name": "S", "portal": '["http://a.test/"]'}])
    writer = ArchiveWriter(db)
    previous = start_crawl(db, "s")
    writer.record_check(LinkCheck(site_id="s", crawl_id=previous, url=URL, checked_at="2026-01-01T00:00:00Z",
                                  state="type_mismatch", rule="attach-truncated", status_code=200,
                                  content_type="application/pdf", body=b"%PDF-1.4 cut",
                                  headers={"etag": '"v1"', "content-length": "3165"}))
    writer.commit()
    request = Request(URL)
    _middleware(db, {"s": start_crawl(db, "s")}).process_request(request)
    assert b"If-None-Match" not in request.headers  # downloaded in full instead


def test_a_capture_restored_from_a_304_is_not_asked_with_again(db):
    """Day 3 asks with day 1's download (the original), not with day 2's 304 stand-in."""
    upsert_sites(db, [{"id": "s", "name": "S", "portal": '["http://a.test/"]'}])
    writer = ArchiveWriter(db)
    _capture(writer, start_crawl(db, "s"), b"<html>day 1</html>", '"v1"')
    day2 = start_crawl(db, "s")
    _capture(writer, day2, b"<html>day 1</html>", '"v1"')
    db.execute("UPDATE snapshots SET not_modified = 1, etag = '\"stand-in\"' WHERE crawl_id = ?", [day2])
    request = Request(URL)
    _middleware(db, {"s": start_crawl(db, "s")}).process_request(request)
    assert request.headers[b"If-None-Match"] == b'"v1"'


# -- a capture whose blob is lost (row deleted) or corrupt is never the base of a conditional
# request that would end in a bare 304: the page is downloaded and archived in full again.

def _sha(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()


def test_a_capture_without_its_blob_is_not_a_previous_capture(db):
    upsert_sites(db, [{"id": "s", "name": "S", "portal": '["http://a.test/"]'}])
    writer = ArchiveWriter(db)
    _capture(writer, start_crawl(db, "s"), b"<html>day 1</html>", '"v1"')
    _capture(writer, start_crawl(db, "s"), b"<html>day 2</html>", '"v2"')
    db.execute("DELETE FROM blobs WHERE sha256 = ?", [_sha(b"<html>day 2</html>")])
    db.conn.commit()
    middleware = _middleware(db, {"s": start_crawl(db, "s")})
    request = Request(URL)
    middleware.process_request(request)
    assert request.headers[b"If-None-Match"] == b'"v1"'  # the newest capture that has its body
    assert request.meta["xxgk_previous_sha256"] == _sha(b"<html>day 1</html>")
    db.execute("DELETE FROM blobs")
    db.conn.commit()
    plain = Request(URL)
    middleware.process_request(plain)
    assert b"If-None-Match" not in plain.headers and "xxgk_previous_sha256" not in plain.meta


def test_a_304_for_an_unreadable_body_is_asked_again_once_without_validators(db):
    upsert_sites(db, [{"id": "s", "name": "S", "portal": '["http://a.test/"]'}])
    writer = ArchiveWriter(db)
    _capture(writer, start_crawl(db, "s"), b"<html>day 1</html>", '"v1"')
    middleware = _middleware(db, {"s": start_crawl(db, "s")})
    request = Request(URL, meta={"xxgk_wire_bytes": 0})
    request.headers[b"If-Modified-Since"] = b"Thu, 01 Jan 2026 00:00:00 GMT"
    middleware.process_request(request)
    assert request.headers[b"If-None-Match"] == b'"v1"'
    # the blob goes bad after the request was sent
    db.execute("UPDATE blobs SET compression = 'none', content = X'00', stored_size = 1")
    db.conn.commit()
    again = middleware.process_response(request, Response(URL, status=304, request=request))
    assert isinstance(again, Request) and again.url == URL and again.dont_filter
    assert b"If-None-Match" not in again.headers and b"If-Modified-Since" not in again.headers
    assert again.meta[ConditionalRequestMiddleware.UNCONDITIONAL] is True
    assert "xxgk_previous_sha256" not in again.meta and again.meta["xxgk_wire_bytes"] == 0
    assert b"If-None-Match" in request.headers  # the original is left as it was
    assert middleware.crawler.stats.values == {"xxgk/conditional_lost_body_refetched": 1}
    # the repeat gets no validators, and an answer to it is left alone (at most one repeat)
    middleware.process_request(again)
    assert b"If-None-Match" not in again.headers
    ok = Response(URL, status=200, body=b"<html>day 2</html>", request=again)
    assert middleware.process_response(again, ok) is ok
    odd = Response(URL, status=304, request=again)
    assert middleware.process_response(again, odd) is odd


@pytest.mark.parametrize("body", [b"<html>" + "信息公开".encode() * 300 + b"</html>", bytes(range(256))],
                         ids=["zlib", "none"])
def test_storing_the_same_bytes_again_repairs_a_corrupt_blob(db, body):
    sha = store_blob(db, body)
    created = db.execute("SELECT created_at FROM blobs").fetchone()[0]
    db.execute("UPDATE blobs SET compression = 'none', content = X'00', stored_size = 1, size = 1")
    with pytest.raises(BlobError):
        load_blob(db, sha)
    assert store_blob(db, body) == sha
    assert load_blob(db, sha) == body
    assert db.execute("SELECT COUNT(*), created_at FROM blobs").fetchone() == (1, created)
    assert store_blob(db, body) == sha  # a sound copy is left alone


# -- end to end: two crawls of the simulated web, blobs lost in between -------------------------
HOST = "http://xxgk.lost-univ.edu.cn"
ROBOTS = Resource(body=b"User-agent: *\nDisallow:\n", content_type="text/plain", validators=False)
PAGES = {path: html_page(title, f"<h1>{title}</h1><p>{title}的正文内容。" * 20 + "</p>").encode()
         for path, title in (("/news/deleted.htm", "删除"), ("/news/corrupt.htm", "损坏"),
                             ("/news/kept.htm", "完好"))}


def test_recrawl_archives_again_a_page_whose_blob_was_lost(tmp_path, crawl_pages):
    links = "".join(f'<li><a href="{path}">{path}</a></li>' for path in PAGES)
    home = Resource(body=html_page("首页", f"<h1>信息公开</h1><ul>{links}</ul>").encode(), validators=False)
    pages = {f"{HOST}/robots.txt": ROBOTS, f"{HOST}/main.htm": home,
             **{HOST + path: Resource(body=body) for path, body in PAGES.items()}}
    conn, _ = crawl_pages(pages, f"{HOST}/main.htm")
    conn.execute("DELETE FROM blobs WHERE sha256 = ?", [_sha(PAGES["/news/deleted.htm"])])
    conn.execute("UPDATE blobs SET compression = 'none', content = CAST('tampered' AS BLOB), stored_size = 8"
                 " WHERE sha256 = ?", [_sha(PAGES["/news/corrupt.htm"])])
    conn.commit()
    conn.close()

    conn, log = crawl_pages(pages, f"{HOST}/main.htm")  # day 2, into the same archive
    statuses = {}
    for method, url, status in log:
        if method == "GET" and url.startswith(HOST + "/news/"):
            statuses.setdefault(url[len(HOST):], []).append(status)
    assert statuses == {"/news/deleted.htm": [200],  # its capture no longer counts: asked plainly
                        "/news/corrupt.htm": [304, 200],  # the 304 could not be restored: asked again
                        "/news/kept.htm": [304]}
    day2 = {url[len(HOST):]: row for url, *row in conn.execute(
        "SELECT url, status_code, not_modified, sha256, size FROM snapshots WHERE crawl_id = 2")}
    for path, body in PAGES.items():
        assert day2[path] == [200, int(path == "/news/kept.htm"), _sha(body), len(body)], path
        assert load_blob(conn, _sha(body)) == body, path
    checks = dict(conn.execute("SELECT url, status_code FROM link_checks WHERE crawl_id = 2"))
    assert all(checks[HOST + path] == 200 for path in PAGES), checks
