"""ConditionalRequestMiddleware on a temp archive: validators and the 304's body come from the
newest raw capture of an *earlier* crawl, never from the crawl running now."""

from __future__ import annotations

from types import SimpleNamespace

from scrapy import Request
from scrapy.http import Response

from archive.store import ArchiveWriter, start_crawl, upsert_sites
from crawler.items import LinkCheck
from crawler.middlewares import ConditionalRequestMiddleware

URL = "http://a.test/index.htm"


def _capture(writer: ArchiveWriter, crawl_id: int, body: bytes, etag: str) -> None:
    writer.record_check(LinkCheck(site_id="s", crawl_id=crawl_id, url=URL, checked_at="2026-01-01T00:00:00Z",
                                  state="ok", rule="ok", status_code=200, content_type="text/html",
                                  body=body, headers={"etag": etag, "content-type": "text/html"}))
    writer.commit()


def _middleware(db, running: dict[str, int]) -> ConditionalRequestMiddleware:
    path = db.conn.execute("PRAGMA database_list").fetchone()[2]
    crawler = SimpleNamespace(spider=SimpleNamespace(crawl_ids=running))
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
