"""One run of failures is one "newly broken" event: blocked, rate limited or excluded checks
neither end nor start a run (archive.store._update_link), so ``newly_broken``, ``feed_broken``
and ``crawls.new_broken`` (archive.store.count_new_broken) report a break once, on the check
that started the run, and ``fixed_since`` a fix when a good check follows a broken one with
only inconclusive checks in between."""

from __future__ import annotations

import json
import re
import sqlite3

from archive.queries import CANNED_QUERIES, xml_text

U1 = "http://a.edu.cn/runs.htm"     # 404 -> 403 -> 429 -> 404: broke once, on day 1
U2 = "http://a.edu.cn/fixed.htm"    # ok -> 404 -> 403 -> ok: broke on day 2, fixed on day 4
U3 = "http://a.edu.cn/late.htm"     # ok -> 403 -> 404: broke on day 3
U4 = "http://a.edu.cn/first.htm"    # 404 at its first check: broke on day 1
PLAN = {
    U1: ["not_found", "blocked", "rate_limited", "not_found"],
    U2: ["ok", "not_found", "blocked", "ok"],
    U3: ["ok", "blocked", "not_found"],
    U4: ["not_found"],
}
STATUS = {"ok": 200, "not_found": 404, "blocked": 403, "rate_limited": 429}
EXPECTED_NEW = {1: {U1, U4}, 2: {U2}, 3: {U3}, 4: set()}
EXPECTED_FIXED = {1: set(), 2: set(), 3: set(), 4: {U2}}


def canned(path, name: str, **params: str) -> list[dict]:
    """The canned query's SQL on a plain connection, as tests/test_queries.py runs it."""
    sql = CANNED_QUERIES[name]["sql"]
    wanted = set(re.findall(r"(?<!:):(\w+)", sql)) - {"00", "00Z"}
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    conn.row_factory = sqlite3.Row
    conn.create_function("xml_text", 1, xml_text)  # as archive.serve registers it
    try:
        return [dict(r) for r in conn.execute(sql, {**{p: "" for p in wanted}, **params})]
    finally:
        conn.close()


def test_a_run_of_failures_is_newly_broken_once(tmp_path):
    from archive.db import open_db
    from archive.store import ArchiveWriter, count_new_broken, start_crawl, upsert_sites
    from crawler.items import LinkCheck

    path = tmp_path / "a.db"
    db = open_db(path)
    upsert_sites(db, [{"id": "a", "name": "A", "portal": json.dumps(["http://a.edu.cn/"])}])
    writer = ArchiveWriter(db, confirm_checks=2, confirm_hours=0)
    crawls: dict[int, int] = {}
    newly: dict[int, set[str]] = {}
    fixed: dict[int, set[str]] = {}
    for day in (1, 2, 3, 4):
        crawl = crawls[day] = start_crawl(db, "a")
        at = f"2026-01-0{day}T00:00:00Z"
        for url, states in PLAN.items():
            if day <= len(states):
                state = states[day - 1]
                writer.record_check(LinkCheck(site_id="a", crawl_id=crawl, url=url, checked_at=at,
                                              state=state, rule="t", status_code=STATUS[state]))
        writer.close_crawl(crawl, "finished")
        db.conn.commit()
        rows = canned(path, "newly_broken", site="a")
        assert len(rows) == len({r["url"] for r in rows})  # one row per URL
        newly[day] = {r["url"] for r in rows}
        assert canned(path, "newly_broken") == rows
        fixed[day] = {r["url"] for r in canned(path, "fixed_since", site="a")}
        # crawls.new_broken (written when the crawl closed) and a fresh count agree with the query
        stored = db.execute("SELECT new_broken FROM crawls WHERE id = ?", [crawl]).fetchone()[0]
        assert stored == count_new_broken(db, crawl) == len(newly[day]), day
        if day == 4:
            assert {r["url"]: r["previous_state"] for r in rows} == {}
    assert newly == EXPECTED_NEW
    assert fixed == EXPECTED_FIXED
    fix = canned(path, "fixed_since", site="a")
    assert [(r["url"], r["was"], r["now_state"]) for r in fix] == [(U2, "not_found", "ok")]

    # the feed: one entry per break, on the check that started the run (previous_state is the
    # check just before it, inconclusive or not)
    feed = [r for r in canned(path, "feed_broken", site="a") if r["url"] is not None]
    entries = sorted((r["url"], r["atom_updated"][:10], r["previous_state"]) for r in feed)
    assert entries == sorted([(U1, "2026-01-01", None), (U4, "2026-01-01", None),
                              (U2, "2026-01-02", "ok"), (U3, "2026-01-03", "blocked")])
    assert len({r["atom_id"] for r in feed}) == len(feed)
    by_day = {day: {url for url, when, _ in entries if when == f"2026-01-0{day}"} for day in newly}
    assert by_day == newly
    # :since after the last break: nothing new (the 404 of day 4 continues day 1's run)
    later = canned(path, "feed_broken", site="a", since="2026-01-04")
    assert [r["url"] for r in later] == [None]
    db.conn.close()


def test_the_same_url_twice_in_one_crawl_at_the_same_time_breaks_once(tmp_path):
    """Checks are ordered by (checked_at, id) everywhere: two broken checks of a URL in the same
    second are one break, for the queries as for crawls.new_broken."""
    from archive.db import open_db
    from archive.store import ArchiveWriter, start_crawl, upsert_sites
    from crawler.items import LinkCheck

    path = tmp_path / "a.db"
    db = open_db(path)
    upsert_sites(db, [{"id": "a", "name": "A", "portal": json.dumps(["http://a.edu.cn/"])}])
    writer = ArchiveWriter(db, confirm_checks=2, confirm_hours=0)
    crawl = start_crawl(db, "a")
    for state in ("ok", "not_found", "not_found"):
        writer.record_check(LinkCheck(site_id="a", crawl_id=crawl, url=U1, checked_at="2026-01-01T00:00:00Z",
                                      state=state, rule="t", status_code=STATUS[state]))
    writer.close_crawl(crawl, "finished")
    db.conn.commit()
    assert [(r["url"], r["previous_state"]) for r in canned(path, "newly_broken")] == [(U1, "ok")]
    assert [r["url"] for r in canned(path, "feed_broken")] == [U1]
    assert db.execute("SELECT new_broken FROM crawls WHERE id = ?", [crawl]).fetchone()[0] == 1
    db.conn.close()
