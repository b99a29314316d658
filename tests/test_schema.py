"""The SQLite schema is public API: this test pins it.

If it fails you changed a table users' Datasette URLs depend on. Add a new migration in
``archive/schema.py`` instead of editing one, then regenerate the pin deliberately with
``XXGK_UPDATE_SCHEMA=1 ./run test tests/test_schema.py`` and say why in the commit.
"""

from __future__ import annotations

import os
from pathlib import Path

from archive.db import open_db
from archive.schema import migrations

PIN = Path(__file__).with_name("fixtures") / "schema.sql"


def schema_sql(db) -> str:
    rows = db.execute(
        "SELECT type, name, sql FROM sqlite_master WHERE sql IS NOT NULL"
        " AND name NOT LIKE 'sqlite_%' ORDER BY type, name"
    ).fetchall()
    return "\n".join(f"-- {kind} {name}\n{sql};" for kind, name, sql in rows) + "\n"


def test_schema_matches_pin(tmp_path):
    db = open_db(tmp_path / "a.db")
    current = schema_sql(db)
    if os.environ.get("XXGK_UPDATE_SCHEMA"):
        PIN.write_text(current, encoding="utf-8")
    assert current == PIN.read_text(encoding="utf-8")


def test_migrations_are_idempotent_and_recorded(tmp_path):
    path = tmp_path / "a.db"
    db = open_db(path)
    applied = [m.name for m in migrations.applied(db)]
    assert applied == [m.name for m in migrations._migrations]
    db.conn.close()
    db = open_db(path)  # re-opening applies nothing new and loses nothing
    assert [m.name for m in migrations.applied(db)] == applied
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_contract_columns_exist(tmp_path):
    """The columns other issues and users rely on (issue #3's contract)."""
    db = open_db(tmp_path / "a.db")
    contract = {
        "sites": {"id", "name", "portal"},
        "crawls": {"id", "site_id", "started_at", "finished_at", "status", "pages"},
        "links": {"url", "site_id", "state", "status_code", "content_type", "final_url",
                  "first_seen", "last_checked", "last_ok", "broken_since"},
        "link_checks": {"id", "crawl_id", "url", "checked_at", "state", "status_code",
                        "elapsed_ms", "final_url", "error"},
        "link_sources": {"from_url", "to_url", "anchor_text", "crawl_id"},
        "snapshots": {"id", "url", "crawl_id", "fetched_at", "status_code", "content_type", "sha256"},
        "blobs": {"sha256", "size"},
    }
    for table, columns in contract.items():
        assert columns <= set(db[table].columns_dict), table


# -- m009: what the canned queries rely on -------------------------------------------------------
def test_m009_partial_index_states_are_the_queries_broken_states():
    """``feed_broken`` uses idx_link_checks_broken_time only while its ``state IN (...)`` is
    the index's: if the broken states change, a new migration must re-create the index."""
    from archive.queries import BROKEN
    from archive.schema import M009_BROKEN

    assert M009_BROKEN == BROKEN


def _counts_by_query(db) -> tuple[list, list]:
    from archive.queries import BROKEN, GOOD, INCONCLUSIVE

    per_crawl = db.execute(
        f"SELECT crawl_id, COUNT(DISTINCT url),"
        f" COUNT(DISTINCT CASE WHEN state IN {BROKEN} THEN url END),"
        f" COUNT(DISTINCT CASE WHEN state IN {INCONCLUSIVE} THEN url END),"
        f" COUNT(DISTINCT CASE WHEN state IN {GOOD} THEN url END)"
        f" FROM link_checks WHERE crawl_id IS NOT NULL GROUP BY crawl_id ORDER BY crawl_id").fetchall()
    per_state = db.execute("SELECT crawl_id, state, COUNT(DISTINCT url) FROM link_checks"
                           " WHERE crawl_id IS NOT NULL GROUP BY crawl_id, state ORDER BY 1, 2").fetchall()
    return per_crawl, per_state


def _counts_kept(db) -> tuple[list, list]:
    per_crawl = db.execute("SELECT crawl_id, checked, broken, inconclusive, good FROM crawl_link_counts"
                           " WHERE checked > 0 ORDER BY crawl_id").fetchall()
    per_state = db.execute("SELECT crawl_id, state, urls FROM crawl_state_counts WHERE urls > 0"
                           " ORDER BY 1, 2").fetchall()
    return per_crawl, per_state


def _add_checks(db, rng, n: int, crawls: int = 3, urls: int = 60) -> list[int]:
    from archive.states import STATES

    ids = []
    for _ in range(n):
        cursor = db.execute(
            "INSERT INTO link_checks (crawl_id, site_id, url, checked_at, state) VALUES (?, 's', ?, ?, ?)",
            [rng.randint(1, crawls), f"http://x.edu.cn/{rng.randint(0, urls)}", "2026-01-01T00:00:00Z",
             rng.choice(STATES)])
        ids.append(cursor.lastrowid)
    return ids


def test_crawl_counts_follow_inserts_deletes_and_updates(tmp_path):
    """crawl_link_counts / crawl_state_counts always equal counting distinct URLs per crawl,
    including URLs checked more than once in a crawl, in the same or different states."""
    import random

    db = open_db(tmp_path / "a.db")
    db.execute("INSERT INTO sites (id, name, portal) VALUES ('s', 'S', '[]')")
    for crawl in (1, 2, 3):
        db.execute("INSERT INTO crawls (id, site_id, started_at, status) VALUES (?, 's', '2026', 'finished')",
                   [crawl])
    rng = random.Random(7)
    ids = _add_checks(db, rng, 600)
    assert _counts_kept(db) == _counts_by_query(db)
    for _ in range(150):
        victim = ids.pop(rng.randrange(len(ids)))
        db.execute("DELETE FROM link_checks WHERE id = ?", [victim])
    assert _counts_kept(db) == _counts_by_query(db)
    for _ in range(40):
        db.execute("UPDATE link_checks SET state = ?, crawl_id = ? WHERE id = ?",
                   [rng.choice(["ok", "not_found", "blocked"]), rng.randint(1, 3), rng.choice(ids)])
    assert _counts_kept(db) == _counts_by_query(db)
    db.execute("INSERT INTO link_checks (crawl_id, url, checked_at, state) VALUES (NULL, 'u', 't', 'ok')")
    assert _counts_kept(db) == _counts_by_query(db)


def _page(db, url: str, text: str | None) -> int:
    cursor = db.execute("INSERT INTO snapshots (site_id, url, fetched_at, main_text) VALUES ('s', ?, ?, ?)",
                        [url, "2026-01-01T00:00:00Z", text])
    return int(cursor.lastrowid)


def _fts(db, term: str) -> set[int]:
    return {rowid for (rowid,) in db.execute(
        "SELECT rowid FROM snapshots_fts WHERE snapshots_fts MATCH ?", ['"' + term + '"'])}


def test_snapshots_full_text_index_finds_chinese_and_follows_writes(tmp_path):
    db = open_db(tmp_path / "a.db")
    first = _page(db, "http://x.edu.cn/a", "学校关于公布二〇二六年招生章程的通知")
    second = _page(db, "http://x.edu.cn/b", "信息公开工作年度报告（2025-2026学年）")
    _page(db, "http://x.edu.cn/c", None)  # a PDF or image: no text, nothing indexed
    assert _fts(db, "招生章程") == {first}  # trigram: Chinese substrings, no word breaks needed
    assert _fts(db, "年度报告") == {second}
    db.execute("UPDATE snapshots SET main_text = '学校关于调整校历的通知' WHERE id = ?", [first])
    assert _fts(db, "招生章程") == set() and _fts(db, "调整校历") == {first}
    db.execute("UPDATE snapshots SET title = 'x' WHERE id = ?", [second])  # not the text: kept
    assert _fts(db, "年度报告") == {second}
    db.execute("DELETE FROM snapshots WHERE id = ?", [second])
    assert _fts(db, "年度报告") == set()
    assert db.execute("INSERT INTO snapshots_fts (snapshots_fts) VALUES ('integrity-check')") is not None


def test_m009_backfills_an_existing_archive(tmp_path):
    """Applied to an archive crawled before it, m009 counts the existing checks and indexes
    the existing pages."""
    import random

    from sqlite_utils import Database

    db = Database(tmp_path / "a.db")
    migrations.apply(db, stop_before="m009_query_speed")
    assert "crawl_link_counts" not in db.table_names()
    db.execute("INSERT INTO sites (id, name, portal) VALUES ('s', 'S', '[]')")
    for crawl in (1, 2, 3):
        db.execute("INSERT INTO crawls (id, site_id, started_at, status) VALUES (?, 's', '2026', 'finished')",
                   [crawl])
    _add_checks(db, random.Random(3), 300)
    page = _page(db, "http://x.edu.cn/a", "关于公布信息公开目录的通知")
    for crawl in (1, 2, 3):  # the same citation in every crawl
        db.execute("INSERT INTO link_sources (crawl_id, from_url, to_url, anchor_text, seen_at)"
                   " VALUES (?, 'http://x.edu.cn/', 'http://x.edu.cn/a', '信息公开目录', '2026')", [crawl])
    db.conn.commit()
    migrations.apply(db)
    assert _counts_kept(db) == _counts_by_query(db)
    assert _fts(db, "信息公开目录") == {page}
    assert db.execute("SELECT to_url, from_url, anchor_text FROM link_referrers").fetchall() == [
        ("http://x.edu.cn/a", "http://x.edu.cn/", "信息公开目录")]


def test_link_referrers_are_the_distinct_link_sources(tmp_path):
    """link_referrers holds each (to_url, from_url, anchor_text) of link_sources once —
    NULL anchors included — through inserts (every crawl repeats them), updates and deletes."""
    import random

    db = open_db(tmp_path / "a.db")
    rng = random.Random(5)

    def distinct_sources():
        return sorted(db.execute("SELECT DISTINCT to_url, from_url, anchor_text FROM link_sources").fetchall(),
                      key=repr)

    def referrers():
        rows = db.execute("SELECT to_url, from_url, anchor_text FROM link_referrers").fetchall()
        assert len(rows) == len(set(rows)), "each referrer once"
        return sorted(rows, key=repr)

    ids = []
    for crawl in range(1, 6):
        for _ in range(80):
            cursor = db.execute(
                "INSERT OR IGNORE INTO link_sources (crawl_id, from_url, to_url, anchor_text, seen_at)"
                " VALUES (?, ?, ?, ?, '2026')",
                [crawl, f"http://x.edu.cn/list/{rng.randrange(4)}", f"http://x.edu.cn/{rng.randrange(10)}",
                 rng.choice([None, "", "通知", "公告"])])
            if cursor.rowcount:
                ids.append(cursor.lastrowid)
    assert referrers() == distinct_sources()
    for _ in range(120):
        db.execute("DELETE FROM link_sources WHERE id = ?", [ids.pop(rng.randrange(len(ids)))])
    assert referrers() == distinct_sources()
    for _ in range(30):
        db.execute("UPDATE OR IGNORE link_sources SET anchor_text = ? WHERE id = ?",
                   [rng.choice([None, "新闻", "通知"]), rng.choice(ids)])
    assert referrers() == distinct_sources()


# -- m013: which sites check each link -----------------------------------------------------------
def _site_links_by_query(db) -> list[tuple]:
    return db.execute("SELECT site_id, url, MIN(checked_at), MAX(checked_at) FROM link_checks"
                      " WHERE site_id IS NOT NULL GROUP BY site_id, url ORDER BY site_id, url").fetchall()


def test_m013_site_links_are_every_site_checking_a_link(tmp_path):
    """Filled from the checks of an archive crawled before m013, then kept by the trigger as
    checks are written: a link two sites check belongs to both."""
    from sqlite_utils import Database

    db = Database(tmp_path / "a.db")
    migrations.apply(db, stop_before="m013_site_links")
    checks = [("a", "http://moe.gov.cn/x", "2026-01-01T00:00:00Z"), ("a", "http://a.edu.cn/", "2026-01-01T00:00:00Z"),
              ("b", "http://moe.gov.cn/x", "2026-01-02T00:00:00Z"), (None, "http://c.edu.cn/", "2026-01-02T00:00:00Z")]

    def check(site, url, at):
        db.execute("INSERT INTO link_checks (crawl_id, site_id, url, checked_at, state) VALUES (1, ?, ?, ?, 'ok')",
                   [site, url, at])

    for row in checks:
        check(*row)
    db.conn.commit()
    migrations.apply(db)
    assert db.execute("SELECT site_id, url, first_checked, last_checked FROM site_links"
                      " ORDER BY site_id, url").fetchall() == _site_links_by_query(db)
    assert {site for (site,) in db.execute("SELECT site_id FROM site_links WHERE url = 'http://moe.gov.cn/x'")} \
        == {"a", "b"}
    # later checks, in any time order, through the trigger
    for row in [("b", "http://moe.gov.cn/x", "2026-03-01T00:00:00Z"), ("b", "http://moe.gov.cn/x", "2026-02-01T00:00:00Z"),
                ("c", "http://a.edu.cn/", "2026-02-01T00:00:00Z")]:
        check(*row)
    assert db.execute("SELECT site_id, url, first_checked, last_checked FROM site_links"
                      " ORDER BY site_id, url").fetchall() == _site_links_by_query(db)


# -- m016: the latest evaluations, by index -------------------------------------------------------
_RANKING_BY_WINDOW = """
WITH latest AS (
  SELECT e.*, ROW_NUMBER() OVER (PARTITION BY e.site_id, e.academic_year, e.method_version
                                 ORDER BY e.as_of DESC, e.evaluated_at DESC, e.id DESC) AS rn
  FROM evaluations e)
SELECT l.academic_year, l.method_version,
  RANK() OVER (PARTITION BY l.academic_year, l.method_version ORDER BY l.score_overall DESC) AS rank,
  l.site_id, s.name, l.score_overall, l.score_checklist, l.score_report, l.score_publication, l.timeliness,
  l.parts_found, l.items_published, l.items_applicable, l.findings, l.as_of, l.evaluated_at, l.id
FROM latest l LEFT JOIN sites s ON s.id = l.site_id WHERE l.rn = 1"""
_CHANGES_BY_WINDOW = """
WITH ordered AS (
  SELECT e.*, LAG(e.id) OVER (PARTITION BY e.site_id, e.academic_year, e.method_version
                              ORDER BY e.as_of, e.evaluated_at, e.id) AS previous_id,
    ROW_NUMBER() OVER (PARTITION BY e.site_id, e.academic_year, e.method_version
                       ORDER BY e.as_of DESC, e.evaluated_at DESC, e.id DESC) AS rn
  FROM evaluations e)
SELECT o.site_id, s.name, o.academic_year, o.method_version, o.id, o.evaluated_at, o.as_of, o.previous_id,
  p.evaluated_at, o.score_overall, p.score_overall, ROUND(o.score_overall - p.score_overall, 2),
  ROUND(o.score_checklist - p.score_checklist, 2), ROUND(o.score_report - p.score_report, 2),
  ROUND(o.score_publication - p.score_publication, 2), o.findings - p.findings
FROM ordered o LEFT JOIN evaluations p ON p.id = o.previous_id LEFT JOIN sites s ON s.id = o.site_id
WHERE o.rn = 1"""


def test_m016_latest_evaluations_are_the_window_functions_answers(tmp_path):
    """The views look each (site, year, method)'s latest evaluation up by index: the same rows
    as numbering every evaluation (the definition), ties on dates and a NULL year included."""
    import random

    db = open_db(tmp_path / "a.db")
    rng = random.Random(16)
    db.execute("INSERT INTO sites (id, name, portal) VALUES ('a', 'A', '[]'), ('b', 'B', '[]')")
    for _ in range(400):
        db.execute(
            "INSERT INTO evaluations (site_id, academic_year, method_version, evaluated_at, as_of, score_overall,"
            " score_checklist, score_report, score_publication, findings) VALUES (?,?,?,?,?,?,?,?,?,?)",
            [rng.choice(["a", "b", "c"]), rng.choice(["2021-2022", "2022-2023", None]), rng.choice(["1", "2"]),
             f"2026-0{rng.randint(1, 3)}-01T00:00:0{rng.randint(0, 2)}Z", f"2026-0{rng.randint(1, 3)}-01",
             rng.choice([50.0, 75.5, 90.0, None]), rng.random() * 100, rng.random() * 100, rng.random() * 100,
             rng.randint(0, 40)])
    db.conn.commit()
    for view, reference in (("evaluation_ranking", _RANKING_BY_WINDOW), ("evaluation_changes", _CHANGES_BY_WINDOW)):
        got = db.execute(f"SELECT * FROM {view}").fetchall()
        expected = db.execute(reference).fetchall()
        assert len(got) == 18  # every (site, year, method) has its row: 3 x 3 x 2
        assert sorted(map(repr, got)) == sorted(map(repr, expected)), view
