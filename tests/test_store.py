"""Pipelines/DB tier: the archive writer on a temporary database."""

from __future__ import annotations

import contextlib
import dataclasses
import os
import sqlite3
import zlib

import pytest

from archive.blobs import BlobError, load_blob, store_blob
from archive.fixity import verify_blobs
from archive.store import ArchiveWriter, mark_abandoned_crawls, start_crawl, upsert_sites
from crawler.items import LinkCheck, LinkSource


def check(url: str, state: str, at: str, crawl_id: int, body: bytes | None = None, **kw) -> LinkCheck:
    return LinkCheck(site_id="s", crawl_id=crawl_id, url=url, checked_at=at, state=state,
                     rule="test", status_code=kw.pop("status", 200), body=body, **kw)


@pytest.fixture
def writer(db):
    upsert_sites(db, [{"id": "s", "name": "Site", "portal": '["http://s.cn/"]'}])
    return ArchiveWriter(db, confirm_checks=2, confirm_hours=20, commit_every=3)


def test_blobs_are_content_addressed_and_compressed(db):
    body = "信息公开".encode() * 1000
    digest = store_blob(db, body)
    assert store_blob(db, body) == digest
    assert db.execute("SELECT COUNT(*) FROM blobs").fetchone()[0] == 1
    size, stored, compression = db.execute("SELECT size, stored_size, compression FROM blobs").fetchone()
    assert (size, compression) == (len(body), "zlib") and stored < size / 10
    assert load_blob(db, digest) == body


def test_fixity_finds_corrupt_and_missing_blobs(db, writer):
    crawl = start_crawl(db, "s")
    writer.record_check(check("http://s.cn/a", "ok", "2026-01-01T00:00:00Z", crawl, body=b"A" * 500))
    writer.record_check(check("http://s.cn/b", "ok", "2026-01-01T00:00:00Z", crawl, body=b"B" * 500))
    writer.commit()
    assert verify_blobs(db).ok
    sha_a = db.execute("SELECT sha256 FROM snapshots WHERE url = 'http://s.cn/a'").fetchone()[0]
    sha_b = db.execute("SELECT sha256 FROM snapshots WHERE url = 'http://s.cn/b'").fetchone()[0]
    db.execute("UPDATE blobs SET content = ? WHERE sha256 = ?", [zlib.compress(b"tampered"), sha_a])
    db.execute("DELETE FROM blobs WHERE sha256 = ?", [sha_b])
    result = verify_blobs(db)
    assert (result.corrupt, result.missing) == (1, 1)
    with pytest.raises(BlobError, match="corrupt"):
        load_blob(db, sha_a)
    assert db.execute("SELECT missing, corrupt FROM fixity_checks ORDER BY id DESC").fetchone() == (1, 1)


def test_link_health_needs_confirmation_over_time(db, writer):
    url = "http://s.cn/item"
    c1, c2, c3, c4 = (start_crawl(db, "s") for _ in range(4))
    writer.record_check(check(url, "ok", "2026-01-01T00:00:00Z", c1))
    writer.record_check(check(url, "not_found", "2026-01-02T00:00:00Z", c2, status=404))
    row = db.execute("SELECT state, health, broken_since, consecutive_failures, last_ok FROM links").fetchone()
    assert row == ("not_found", "suspect", "2026-01-02T00:00:00Z", 1, "2026-01-01T00:00:00Z")
    # a second failure only 1 hour later is not yet "dead": the checks must span 20 hours
    writer.record_check(check(url, "not_found", "2026-01-02T01:00:00Z", c3, status=404))
    assert db.execute("SELECT health FROM links").fetchone()[0] == "suspect"
    writer.record_check(check(url, "timeout", "2026-01-03T00:00:00Z", c4, status=None))
    assert db.execute("SELECT health, broken_since, consecutive_failures FROM links").fetchone() == (
        "dead", "2026-01-02T00:00:00Z", 3)
    writer.record_check(check(url, "ok", "2026-01-04T00:00:00Z", c4))
    assert db.execute("SELECT health, broken_since, recovered_at, consecutive_failures FROM links").fetchone() == (
        "ok", None, "2026-01-04T00:00:00Z", 0)
    assert db.execute("SELECT COUNT(*) FROM link_checks WHERE url = ?", [url]).fetchone()[0] == 5


def test_blocked_is_inconclusive_and_does_not_reset_or_extend_a_failure_run(db, writer):
    url = "http://s.cn/waf"
    crawl = start_crawl(db, "s")
    writer.record_check(check(url, "server_error", "2026-01-01T00:00:00Z", crawl, status=500))
    writer.record_check(check(url, "blocked", "2026-01-02T00:00:00Z", crawl, status=412))
    assert db.execute("SELECT health, consecutive_failures FROM links").fetchone() == ("inconclusive", 1)


def test_unchanged_page_costs_a_row_not_a_copy(db, writer):
    crawl = start_crawl(db, "s")
    body = b"<html><title>x</title>" + b"y" * 5000
    writer.record_check(check("http://s.cn/p", "ok", "2026-01-01T00:00:00Z", crawl, body=body))
    sha = db.execute("SELECT sha256 FROM snapshots").fetchone()[0]
    writer.record_check(check("http://s.cn/p", "ok", "2026-01-02T00:00:00Z", crawl, body=body,
                              not_modified=True, previous_sha256=sha))
    writer.commit()
    assert db.execute("SELECT COUNT(*) FROM snapshots").fetchone()[0] == 2
    assert db.execute("SELECT COUNT(*) FROM blobs").fetchone()[0] == 1
    assert db.execute("SELECT not_modified, bytes_received FROM snapshots JOIN link_checks"
                      " ON link_checks.snapshot_id = snapshots.id ORDER BY snapshots.id").fetchall() == [
        (0, len(body)), (1, 0)]


def test_a_reused_answer_is_archived_but_counts_no_bytes_received(db, writer):
    crawl = start_crawl(db, "s")
    body = b"<html><title>home</title>" + b"z" * 3000
    writer.record_check(check("http://s.cn/main.htm", "ok", "2026-01-01T00:00:00Z", crawl, body=body))
    writer.record_check(check("http://s.cn/index.htm", "ok", "2026-01-01T00:00:01Z", crawl, body=body,
                              final_url="http://s.cn/main.htm", reused=True))
    writer.close_crawl(crawl, "finished")
    rows = db.execute("SELECT lc.url, lc.bytes_received, s.sha256 FROM link_checks lc"
                      " JOIN snapshots s ON s.id = lc.snapshot_id ORDER BY lc.id").fetchall()
    assert [(url, size) for url, size, _ in rows] == [("http://s.cn/main.htm", len(body)), ("http://s.cn/index.htm", 0)]
    assert rows[0][2] == rows[1][2]
    assert db.execute("SELECT bytes_received FROM crawls WHERE id = ?", [crawl]).fetchone()[0] == len(body)


def test_sources_and_crawl_counters(db, writer):
    crawl = start_crawl(db, "s")
    writer.record_source(LinkSource("s", crawl, "http://s.cn/", "http://s.cn/dead", "招生信息", "2026-01-01T00:00:00Z"))
    writer.record_source(LinkSource("s", crawl, "http://s.cn/", "http://s.cn/dead", "招生信息", "2026-01-01T00:00:00Z"))
    writer.record_check(check("http://s.cn/dead", "not_found", "2026-01-01T00:00:00Z", crawl, status=404,
                              detail="HTTP 404"))
    writer.close_crawl(crawl, "finished")
    assert db.execute("SELECT COUNT(*) FROM link_sources").fetchone()[0] == 1
    status, checked, new_broken, errors = db.execute(
        "SELECT status, links_checked, new_broken, errors FROM crawls WHERE id = ?", [crawl]).fetchone()
    assert (status, checked, new_broken, errors) == ("finished", 1, 1, 1)


def test_abandoned_running_crawl_is_marked_incomplete(db):
    crawl = start_crawl(db, "s", pid=2**22 + 12345)  # no such process
    assert mark_abandoned_crawls(db) == [crawl]
    assert db.execute("SELECT status FROM crawls WHERE id = ?", [crawl]).fetchone()[0] == "incomplete"


def test_source_batching_writes_the_same_rows_in_the_same_transactions(tmp_path):
    """``batch_sources`` (the crawl pipeline's writer) only changes when rows are sent:
    what a commit makes durable is the same as writing each row at once."""
    from archive.db import open_db

    def run(batch: bool) -> list[tuple]:
        db = open_db(tmp_path / f"batch-{batch}.db")
        upsert_sites(db, [{"id": "s", "name": "Site", "portal": '["http://s.cn/"]'}])
        crawl = start_crawl(db, "s")
        w = ArchiveWriter(db, commit_every=4, batch_sources=batch)
        committed = []
        for page in range(5):
            url = f"http://s.cn/{page}"
            w.record_check(check(url, "ok", "2026-01-01T00:00:00Z", crawl, body=f"<p>{page}</p>".encode()))
            for to in range(3):
                w.record_source(LinkSource("s", crawl, url, f"http://s.cn/{to}", f"链接{to}", "2026-01-01T00:00:00Z"))
            w.record_source(LinkSource("s", crawl, url, "http://s.cn/0", "链接0", "2026-01-01T00:00:00Z"))  # duplicate
            with contextlib.closing(sqlite3.connect(tmp_path / f"batch-{batch}.db")) as other:
                committed.append(other.execute("SELECT COUNT(*) FROM link_sources").fetchone()[0])
        w.commit()
        rows = db.execute("SELECT crawl_id, site_id, from_url, to_url, anchor_text, seen_at FROM link_sources"
                          " ORDER BY id").fetchall()
        db.conn.close()
        return [*rows, tuple(committed)]

    assert run(True) == run(False)


class _Engine:
    def __init__(self) -> None:
        self.closed: list[str] = []

    def close_spider_async(self, *, reason: str):
        from twisted.internet import defer

        self.closed.append(reason)
        return defer.succeed(None)


def test_archive_error_closes_the_spider_and_fails_the_crawl(tmp_path):
    """A full disk mid-crawl (here: ``max_page_count``): the batch is rolled back, the spider
    closed with ``archive_error``, later items dropped without writes, the crawl ``failed``."""
    from types import SimpleNamespace

    from scrapy.settings import Settings
    from scrapy.statscollectors import MemoryStatsCollector

    from archive.db import open_db
    from crawler.pipelines import ArchivePipeline, ArchiveUnavailable

    path = tmp_path / "archive.db"
    db = open_db(path)
    crawl = start_crawl(db, "s")
    db.conn.close()
    engine = _Engine()
    crawler = SimpleNamespace(engine=engine, spider=None, settings=Settings())
    crawler.stats = MemoryStatsCollector(crawler)
    pipeline = ArchivePipeline(str(path), 2, 20.0, 1000)
    pipeline.crawler = crawler
    spider = SimpleNamespace(sites=[], crawl_ids={"s": crawl})
    pipeline.open_spider(spider)
    pipeline.process_item(check("http://s.cn/a", "ok", "2026-01-01T00:00:00Z", crawl, body=b"a" * 100), spider)
    conn = pipeline.writer.db.conn
    pages = conn.execute("PRAGMA page_count").fetchone()[0]
    conn.execute(f"PRAGMA max_page_count = {pages + 2}")  # no room for a 200 KB incompressible body
    with pytest.raises(ArchiveUnavailable, match="full"):
        pipeline.process_item(check("http://s.cn/big", "ok", "2026-01-01T00:00:00Z", crawl,
                                    body=os.urandom(200_000)), spider)
    assert engine.closed == ["archive_error"]
    assert "full" in crawler.stats.get_value("xxgk/archive_error")
    with pytest.raises(ArchiveUnavailable):  # no more writes, and no second close
        pipeline.process_item(LinkSource("s", crawl, "http://s.cn/", "http://s.cn/x", "x", "t"), spider)
    assert engine.closed == ["archive_error"]
    pipeline.close_spider(spider)
    pipeline.spider_closed(spider, "archive_error")
    with contextlib.closing(sqlite3.connect(path)) as other:
        status, reason = other.execute("SELECT status, finish_reason FROM crawls WHERE id = ?", [crawl]).fetchone()
        checks = other.execute("SELECT COUNT(*) FROM link_checks").fetchone()[0]
        sources = other.execute("SELECT COUNT(*) FROM link_sources").fetchone()[0]
        assert other.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert status == "failed" and reason.startswith("archive_error: ") and "full" in reason
    assert (checks, sources) == (0, 0)  # the uncommitted batch went back whole: no half items


def test_archive_errors_still_raise_outside_a_scrapy_crawl(tmp_path):
    """The distributed writer loop calls the pipeline without a crawler: it handles errors itself."""
    from types import SimpleNamespace

    from archive.db import DatabaseUnusable, open_db
    from crawler.pipelines import ArchivePipeline

    path = tmp_path / "archive.db"
    db = open_db(path)
    crawl = start_crawl(db, "s")
    db.conn.close()
    pipeline = ArchivePipeline(str(path), 2, 20.0, 1000)
    pipeline.open_spider(SimpleNamespace(sites=[], crawl_ids={"s": crawl}))
    conn = pipeline.writer.db.conn
    conn.execute(f"PRAGMA max_page_count = {conn.execute('PRAGMA page_count').fetchone()[0]}")
    with pytest.raises(DatabaseUnusable):
        pipeline.process_item(check("http://s.cn/big", "ok", "2026-01-01T00:00:00Z", crawl, body=os.urandom(200_000)))
    pipeline.writer.rollback()
    pipeline.writer.db.conn.close()


def test_known_traps_are_the_calendar_families_cut_short_in_the_last_finished_crawl(db, writer, tmp_path):
    from archive.store import finish_crawl
    from crawler.spiders.portal import TRAP_REFUSALS, _known_traps

    budget, depth = TRAP_REFUSALS["pattern-budget"], TRAP_REFUSALS["depth"]

    def excluded(url: str, crawl: int, detail: str) -> LinkCheck:
        return check(url, "excluded", "2026-01-01T00:00:00Z", crawl, detail=detail, status=None)

    first = start_crawl(db, "s")
    for item in (excluded("http://s.cn/calendar.jsp?month=3&year=2022", first, budget),
                 excluded("http://s.cn/BigClass.jsp?id=7&page=60", first, budget),  # paging: not a calendar
                 excluded("http://s.cn/cal.jsp?date=2022-05-01", first, depth)):    # not the budget
        writer.record_check(dataclasses.replace(item, rule="trap-guard"))
    writer.commit()
    path = db.conn.execute("PRAGMA database_list").fetchone()[2]
    assert _known_traps(path, "s", None) == frozenset()  # the crawl is still running
    finish_crawl(db, first, "finished")
    running = start_crawl(db, "s")
    assert _known_traps(path, "s", running) == {"s.cn/calendar.jsp?month=0&year=0"}
    assert _known_traps(path, "s", first) == frozenset()  # only crawls before this one
    assert _known_traps(path, "other", running) == frozenset()
    assert _known_traps(str(tmp_path / "missing.db"), "s", running) == frozenset()


def test_overhead_bytes_count_in_the_crawls_bytes_received(db, writer):
    """robots.txt and the not-found probe are no link's check, but what they cost the site is
    part of what the crawl cost it; kept apart in overhead_bytes."""
    from archive.store import finish_crawl
    from crawler.items import OverheadBytes

    crawl = start_crawl(db, "s")
    writer.record_check(check("http://s.cn/", "ok", "2026-01-01T00:00:00Z", crawl, body=b"x" * 1000))
    writer.record_overhead(OverheadBytes("s", crawl, "http://s.cn/robots.txt", 120))
    writer.record_overhead(OverheadBytes("s", crawl, "http://s.cn/xxgk-probe-1.htm", 30))
    writer.record_overhead(OverheadBytes("s", None, "http://s.cn/robots.txt", 999))  # no crawl: nothing
    writer.commit()
    finish_crawl(db, crawl, "finished")
    assert db.execute("SELECT bytes_received, overhead_bytes FROM crawls WHERE id = ?",
                      [crawl]).fetchone() == (1150, 150)
    finish_crawl(db, crawl, "finished")  # closing again recomputes the same total
    assert db.execute("SELECT bytes_received FROM crawls WHERE id = ?", [crawl]).fetchone()[0] == 1150


def test_new_broken_is_counted_from_the_archive_whoever_wrote_the_checks(db, writer):
    """A distributed job's archive writer may be restarted mid-crawl: the crawl's count of
    newly broken links comes from its checks, not from the memory of the writer closing it.
    Broken before (dead on) and inconclusive before (rate limited, then gone) count as the
    newly_broken query counts them."""
    from archive.store import ArchiveWriter

    first = start_crawl(db, "s")
    writer.record_check(check("http://s.cn/a", "ok", "2026-01-01T00:00:00Z", first))
    writer.record_check(check("http://s.cn/b", "not_found", "2026-01-01T00:00:00Z", first, status=404))
    writer.record_check(check("http://s.cn/c", "rate_limited", "2026-01-01T00:00:00Z", first, status=429))
    writer.close_crawl(first, "finished")
    second = start_crawl(db, "s")
    writer.record_check(check("http://s.cn/a", "not_found", "2026-01-02T00:00:00Z", second, status=404))
    writer.commit()
    restarted = ArchiveWriter(db)  # a new writer process: it wrote none of the above
    restarted.record_check(check("http://s.cn/b", "not_found", "2026-01-02T00:00:01Z", second, status=404))
    restarted.record_check(check("http://s.cn/c", "not_found", "2026-01-02T00:00:02Z", second, status=404))
    restarted.close_crawl(second, "finished")
    assert db.execute("SELECT new_broken FROM crawls WHERE id = ?", [second]).fetchone()[0] == 2  # a and c
