"""The archive's SQLite schema, applied as sqlite-utils migrations.

The schema is public API: table and column names appear in users' bookmarked Datasette
URLs. Never edit a migration that has shipped; append a new one. ``tests/test_schema.py``
pins the resulting schema so an accidental change fails CI.

Times are ISO-8601 UTC strings (``2026-11-23T14:55:41Z``); JSON columns hold JSON text.
"""

from __future__ import annotations

import functools
import sqlite3

from sqlite_utils import Database
from sqlite_utils.migrations import Migrations

migrations = Migrations("xxgk")


@migrations()
def m001_core(db: Database) -> None:
    """Sites, crawls, link health, link graph, snapshots and content-addressed blobs."""
    db.executescript(
        """
        CREATE TABLE sites (
            id TEXT PRIMARY KEY,
            name TEXT NOT NULL,
            portal TEXT NOT NULL,            -- JSON list of start URLs
            allowed_domains TEXT,            -- JSON list
            schedule TEXT,
            render TEXT NOT NULL DEFAULT 'auto',
            max_pages INTEGER,
            kind TEXT,                       -- 本科 / 专科, from the registry
            updated_at TEXT
        );
        CREATE TABLE crawls (
            id INTEGER PRIMARY KEY,
            site_id TEXT REFERENCES sites(id),
            scheduled_at TEXT,
            started_at TEXT NOT NULL,
            finished_at TEXT,
            status TEXT NOT NULL,            -- running | finished | failed | killed | incomplete
            pages INTEGER NOT NULL DEFAULT 0,
            links_checked INTEGER NOT NULL DEFAULT 0,
            bytes_received INTEGER NOT NULL DEFAULT 0,
            new_broken INTEGER NOT NULL DEFAULT 0,
            errors INTEGER NOT NULL DEFAULT 0,
            exit_code INTEGER,
            pid INTEGER,
            log_path TEXT,
            finish_reason TEXT
        );
        CREATE TABLE links (
            url TEXT PRIMARY KEY,
            site_id TEXT REFERENCES sites(id),
            state TEXT NOT NULL,
            status_code INTEGER,
            content_type TEXT,
            final_url TEXT,
            title TEXT,
            is_external INTEGER NOT NULL DEFAULT 0,
            health TEXT NOT NULL DEFAULT 'unknown',  -- ok | suspect | dead | inconclusive
            first_seen TEXT NOT NULL,
            last_checked TEXT,
            last_ok TEXT,
            broken_since TEXT,
            consecutive_failures INTEGER NOT NULL DEFAULT 0,
            recovered_at TEXT,
            last_check_id INTEGER
        );
        CREATE INDEX idx_links_site_state ON links(site_id, state);
        CREATE INDEX idx_links_health ON links(health);
        CREATE TABLE link_checks (
            id INTEGER PRIMARY KEY,
            crawl_id INTEGER REFERENCES crawls(id),
            site_id TEXT REFERENCES sites(id),
            url TEXT NOT NULL,
            checked_at TEXT NOT NULL,
            state TEXT NOT NULL,
            status_code INTEGER,
            elapsed_ms INTEGER,
            final_url TEXT,
            redirect_chain TEXT,             -- JSON list of URLs before final_url
            method TEXT,
            content_type TEXT,
            content_length INTEGER,
            bytes_received INTEGER,
            error TEXT,
            rule TEXT,                       -- the classifier rule that decided the state
            snapshot_id INTEGER
        );
        CREATE INDEX idx_link_checks_url ON link_checks(url, checked_at);
        CREATE INDEX idx_link_checks_crawl ON link_checks(crawl_id, state);
        CREATE TABLE link_sources (
            id INTEGER PRIMARY KEY,
            crawl_id INTEGER REFERENCES crawls(id),
            site_id TEXT REFERENCES sites(id),
            from_url TEXT NOT NULL,
            to_url TEXT NOT NULL,
            anchor_text TEXT,
            seen_at TEXT NOT NULL,
            UNIQUE (crawl_id, from_url, to_url, anchor_text)
        );
        CREATE INDEX idx_link_sources_to ON link_sources(to_url);
        CREATE INDEX idx_link_sources_from ON link_sources(from_url, crawl_id);
        CREATE TABLE blobs (
            sha256 TEXT PRIMARY KEY,         -- of the uncompressed body
            size INTEGER NOT NULL,
            stored_size INTEGER NOT NULL,
            compression TEXT NOT NULL,       -- zlib | none
            content BLOB NOT NULL,
            created_at TEXT NOT NULL
        );
        CREATE TABLE snapshots (
            id INTEGER PRIMARY KEY,
            crawl_id INTEGER REFERENCES crawls(id),
            site_id TEXT REFERENCES sites(id),
            url TEXT NOT NULL,
            final_url TEXT,
            fetched_at TEXT NOT NULL,
            status_code INTEGER,
            content_type TEXT,
            headers TEXT,                    -- JSON object of response headers
            sha256 TEXT REFERENCES blobs(sha256),
            size INTEGER,
            encoding TEXT,
            title TEXT,
            filename TEXT,                   -- from Content-Disposition, decoded
            etag TEXT,
            last_modified TEXT,
            not_modified INTEGER NOT NULL DEFAULT 0,  -- 1: a 304, content = previous snapshot's
            rendered INTEGER NOT NULL DEFAULT 0,
            render_reason TEXT,
            screenshot_sha256 TEXT REFERENCES blobs(sha256),
            main_text TEXT
        );
        CREATE INDEX idx_snapshots_url ON snapshots(url, fetched_at);
        CREATE INDEX idx_snapshots_crawl ON snapshots(crawl_id);
        CREATE INDEX idx_snapshots_sha ON snapshots(sha256);
        """
    )


@migrations()
def m002_reports_checklist(db: Database) -> None:
    """Annual reports, their facts and 清单 tables; the MOE checklist; per-site items."""
    db.executescript(
        """
        CREATE TABLE checklist_items (
            number INTEGER PRIMARY KEY,      -- 1..50 of 教办函〔2014〕23号
            category_number INTEGER NOT NULL,-- 1..10
            category TEXT NOT NULL,
            title TEXT NOT NULL,
            yearly INTEGER NOT NULL DEFAULT 0 -- 1: must be refreshed every year
        );
        CREATE TABLE reports (
            id INTEGER PRIMARY KEY,
            site_id TEXT REFERENCES sites(id),
            academic_year TEXT,              -- "2020-2021"
            period_start TEXT,
            period_end TEXT,
            title TEXT,
            source_url TEXT,
            format TEXT,                     -- pdf | doc | docx | rtf | html | txt
            sha256 TEXT REFERENCES blobs(sha256),
            signed_date TEXT,                -- the date line at the end, YYYY-MM-DD
            deadline TEXT,                   -- 31 October after the academic year
            timeliness TEXT,                 -- on_time | late | unknown
            timeliness_evidence TEXT,
            first_seen TEXT NOT NULL,
            crawl_id INTEGER REFERENCES crawls(id),
            snapshot_id INTEGER REFERENCES snapshots(id),
            error TEXT,                      -- extraction failure, recorded not raised
            text TEXT,
            UNIQUE (site_id, sha256)
        );
        CREATE INDEX idx_reports_site_year ON reports(site_id, academic_year);
        CREATE TABLE report_facts (
            id INTEGER PRIMARY KEY,
            report_id INTEGER NOT NULL REFERENCES reports(id),
            fact TEXT NOT NULL,              -- applications_received, ... (see README)
            value INTEGER,
            sentence TEXT
        );
        CREATE INDEX idx_report_facts_report ON report_facts(report_id);
        CREATE TABLE report_items (
            id INTEGER PRIMARY KEY,
            report_id INTEGER NOT NULL REFERENCES reports(id),
            item_number INTEGER REFERENCES checklist_items(number),
            category TEXT,
            title TEXT,
            url TEXT,
            note TEXT
        );
        CREATE INDEX idx_report_items_report ON report_items(report_id);
        CREATE INDEX idx_report_items_url ON report_items(url);
        CREATE TABLE site_items (
            id INTEGER PRIMARY KEY,
            site_id TEXT NOT NULL REFERENCES sites(id),
            item_number INTEGER NOT NULL REFERENCES checklist_items(number),
            url TEXT,
            source TEXT NOT NULL,            -- report | portal | registry
            report_id INTEGER REFERENCES reports(id),
            first_seen TEXT NOT NULL,
            last_seen TEXT NOT NULL,
            UNIQUE (site_id, item_number, url, source)
        );
        CREATE INDEX idx_site_items_url ON site_items(url);
        """
    )
    db["reports"].enable_fts(["title", "text"], tokenize="trigram", create_triggers=True)


@migrations()
def m003_fixity(db: Database) -> None:
    """Fixity checks: each ``xxgk verify`` run, so archivists can show it was checked."""
    db.executescript(
        """
        CREATE TABLE fixity_checks (
            id INTEGER PRIMARY KEY,
            checked_at TEXT NOT NULL,
            blobs_checked INTEGER NOT NULL,
            bytes_checked INTEGER NOT NULL,
            missing INTEGER NOT NULL,        -- referenced by snapshots/reports, absent from blobs
            corrupt INTEGER NOT NULL,        -- bytes no longer hash to their sha256
            details TEXT                     -- JSON list of {sha256, problem}
        );
        """
    )


@migrations()
def m004_changes(db: Database) -> None:
    """Change detection between snapshots of the same URL, and links removed from pages."""
    db.executescript(
        """
        CREATE TABLE changes (
            id INTEGER PRIMARY KEY,
            site_id TEXT REFERENCES sites(id),
            url TEXT NOT NULL,
            crawl_id INTEGER REFERENCES crawls(id),
            detected_at TEXT NOT NULL,
            kind TEXT NOT NULL,              -- new | changed | removed | reappeared | link_removed_from_source
            prev_snapshot_id INTEGER REFERENCES snapshots(id),
            new_snapshot_id INTEGER REFERENCES snapshots(id),
            diff TEXT,                       -- short unified diff of the main text
            size_of_change INTEGER,          -- characters added + removed in the main text
            detail TEXT                      -- e.g. the removed link's target and anchor text
        );
        CREATE INDEX idx_changes_site ON changes(site_id, detected_at);
        CREATE INDEX idx_changes_url ON changes(url);
        """
    )


@migrations()
def m005_compliance_view(db: Database) -> None:
    """``compliance``: one row per site and academic year (a site with no report: one row).

    Items are judged on their current link state: present = at least one live URL;
    empty = reachable but its list has no entries; dead = only broken URLs;
    missing = neither in a report's 清单 table nor linked from the portal.
    """
    db.executescript(
        """
        CREATE VIEW item_status AS
        SELECT si.site_id, si.item_number,
          CASE
            WHEN MAX(CASE WHEN l.state IN ('ok', 'redirected') THEN 1 ELSE 0 END) = 1 THEN 'present'
            WHEN MAX(CASE WHEN l.state = 'empty' THEN 1 ELSE 0 END) = 1 THEN 'empty'
            WHEN MAX(CASE WHEN l.state IN ('blocked', 'rate_limited', 'excluded') THEN 1 ELSE 0 END) = 1
              THEN 'inconclusive'
            WHEN MAX(CASE WHEN l.state IS NULL THEN 1 ELSE 0 END) = 1 THEN 'unchecked'
            ELSE 'dead'
          END AS status,
          group_concat(DISTINCT si.url) AS urls,
          group_concat(DISTINCT si.source) AS sources
        FROM site_items si LEFT JOIN links l ON l.url = si.url
        GROUP BY si.site_id, si.item_number;

        CREATE VIEW compliance AS
        WITH per_site AS (
          SELECT s.id AS site_id,
            SUM(CASE WHEN i.status = 'present' THEN 1 ELSE 0 END) AS items_present,
            SUM(CASE WHEN i.status = 'empty' THEN 1 ELSE 0 END) AS items_empty,
            SUM(CASE WHEN i.status = 'dead' THEN 1 ELSE 0 END) AS items_dead,
            SUM(CASE WHEN i.status IN ('inconclusive', 'unchecked') THEN 1 ELSE 0 END) AS items_unknown,
            50 - COUNT(i.item_number) AS items_missing
          FROM sites s LEFT JOIN item_status i ON i.site_id = s.id
          GROUP BY s.id
        )
        SELECT s.id AS site_id, s.name, r.academic_year, r.id AS report_id, r.signed_date,
          r.deadline, COALESCE(r.timeliness, 'no report') AS timeliness,
          (SELECT f.value FROM report_facts f WHERE f.report_id = r.id
             AND f.fact = 'applications_received' LIMIT 1) AS applications_received,
          p.items_present, p.items_empty, p.items_dead, p.items_unknown, p.items_missing
        FROM sites s JOIN per_site p ON p.site_id = s.id
        LEFT JOIN reports r ON r.site_id = s.id AND r.error IS NULL
          AND r.id = (SELECT MAX(r2.id) FROM reports r2 WHERE r2.site_id = s.id
                      AND r2.academic_year IS r.academic_year AND r2.error IS NULL);
        """
    )


@migrations()
def m006_evaluations(db: Database) -> None:
    """Automated third-party evaluations (``archive/evaluate.py``) with evidence per point lost.

    ``evaluations``: one row per site, academic year and run: a 0-100 score per dimension
    (checklist, report, publication; NULL = nothing could be judged) and overall, under the
    versioned method of ``archive/evaluation_method.toml``. ``evaluation_findings``: one row
    per point lost (and per check that could not be made, with 0 points), with the URL,
    snapshot and sha256 that prove it. ``sites.applicable_items`` / ``sites.report_column``
    mirror the registry fields of the same names (JSON lists; NULL = all 50 items / none).
    Views: ``evaluation_ranking`` (the latest evaluation per site, year and method, ranked
    within the year) and ``evaluation_changes`` (score deltas since the previous evaluation);
    "latest" orders by ``as_of``, then ``evaluated_at``, then ``id``.
    """
    db.executescript(
        """
        ALTER TABLE sites ADD COLUMN applicable_items TEXT;  -- JSON list of item numbers
        ALTER TABLE sites ADD COLUMN report_column TEXT;     -- JSON list of URLs
        CREATE TABLE evaluations (
            id INTEGER PRIMARY KEY,
            site_id TEXT REFERENCES sites(id),
            academic_year TEXT,              -- "2020-2021"
            method_version TEXT NOT NULL,    -- evaluation_method.toml's method_version
            method_sha256 TEXT,              -- hash of the method file used
            evaluated_at TEXT NOT NULL,
            as_of TEXT NOT NULL,             -- the date judged at (YYYY-MM-DD)
            crawl_id INTEGER REFERENCES crawls(id),  -- the crawl whose evidence was used
            report_id INTEGER REFERENCES reports(id),
            timeliness TEXT,                 -- on_time | late | unknown | no report
            parts_found INTEGER,             -- of the eight report parts
            items_applicable INTEGER,
            items_published INTEGER,
            items_empty INTEGER,
            items_dead INTEGER,
            items_missing INTEGER,
            items_stale INTEGER,
            items_unverified INTEGER,
            score_checklist REAL,
            score_report REAL,
            score_publication REAL,
            score_overall REAL,
            findings INTEGER NOT NULL DEFAULT 0
        );
        CREATE INDEX idx_evaluations_site ON evaluations(site_id, academic_year, evaluated_at);
        CREATE TABLE evaluation_findings (
            id INTEGER PRIMARY KEY,
            evaluation_id INTEGER NOT NULL REFERENCES evaluations(id),
            dimension TEXT NOT NULL,         -- checklist | report | publication
            item TEXT NOT NULL,              -- checklist item 1..50, report part 1..8, report,
                                             -- on_time, column, home, no_js
            kind TEXT NOT NULL,              -- missing | dead | empty | stale | undated | late |
                                             -- unknown | too_deep | js_only | unverified | ...
            title TEXT,
            expected TEXT,
            found TEXT,
            points_lost REAL NOT NULL DEFAULT 0,  -- of the dimension's 100
            url TEXT,
            snapshot_id INTEGER REFERENCES snapshots(id),
            sha256 TEXT,
            link_check_id INTEGER REFERENCES link_checks(id)
        );
        CREATE INDEX idx_evaluation_findings_evaluation ON evaluation_findings(evaluation_id);

        CREATE VIEW evaluation_ranking AS
        WITH latest AS (
          SELECT e.*, ROW_NUMBER() OVER (
            PARTITION BY e.site_id, e.academic_year, e.method_version
            ORDER BY e.as_of DESC, e.evaluated_at DESC, e.id DESC) AS rn
          FROM evaluations e
        )
        SELECT l.academic_year, l.method_version,
          RANK() OVER (PARTITION BY l.academic_year, l.method_version
                       ORDER BY l.score_overall DESC) AS rank,
          l.site_id, s.name, l.score_overall, l.score_checklist, l.score_report,
          l.score_publication, l.timeliness, l.parts_found, l.items_published,
          l.items_applicable, l.findings, l.as_of, l.evaluated_at, l.id AS evaluation_id
        FROM latest l LEFT JOIN sites s ON s.id = l.site_id
        WHERE l.rn = 1
        ORDER BY l.academic_year DESC, l.method_version, rank;

        CREATE VIEW evaluation_changes AS
        WITH ordered AS (
          SELECT e.*,
            LAG(e.id) OVER (PARTITION BY e.site_id, e.academic_year, e.method_version
                            ORDER BY e.as_of, e.evaluated_at, e.id) AS previous_id,
            ROW_NUMBER() OVER (PARTITION BY e.site_id, e.academic_year, e.method_version
                               ORDER BY e.as_of DESC, e.evaluated_at DESC, e.id DESC) AS rn
          FROM evaluations e
        )
        SELECT o.site_id, s.name, o.academic_year, o.method_version,
          o.id AS evaluation_id, o.evaluated_at, o.as_of,
          o.previous_id AS previous_evaluation_id, p.evaluated_at AS previous_evaluated_at,
          o.score_overall, p.score_overall AS previous_score_overall,
          ROUND(o.score_overall - p.score_overall, 2) AS delta_overall,
          ROUND(o.score_checklist - p.score_checklist, 2) AS delta_checklist,
          ROUND(o.score_report - p.score_report, 2) AS delta_report,
          ROUND(o.score_publication - p.score_publication, 2) AS delta_publication,
          o.findings - p.findings AS delta_findings
        FROM ordered o
        LEFT JOIN evaluations p ON p.id = o.previous_id
        LEFT JOIN sites s ON s.id = o.site_id
        WHERE o.rn = 1
        ORDER BY o.academic_year DESC, o.site_id;
        """
    )


@migrations()
def m007_registry_checks(db: Database) -> None:
    """``xxgk registry check``: whether each registry portal URL answered, and how.

    One row per portal URL per check, kept forever. ``state`` uses the link-state
    vocabulary (``ok``, ``dns_error``, ``soft_404``...), ``ok`` is 1 for ``ok``/``redirected``;
    ``method`` is the request that decided (HEAD, or GET when HEAD was refused).
    """
    db.executescript(
        """
        CREATE TABLE registry_checks (
            id INTEGER PRIMARY KEY,
            site_id TEXT NOT NULL,
            url TEXT NOT NULL,
            checked_at TEXT NOT NULL,
            method TEXT,
            status_code INTEGER,
            final_url TEXT,
            elapsed_ms INTEGER,
            state TEXT NOT NULL,
            ok INTEGER NOT NULL,
            rule TEXT,
            error TEXT,
            via_proxy INTEGER NOT NULL DEFAULT 0
        );
        CREATE INDEX idx_registry_checks_site ON registry_checks(site_id, checked_at);
        """
    )


@migrations()
def m008_query_indexes(db: Database) -> None:
    """Indexes the canned queries need on a large archive (see benchmarks/RESULTS.md)."""
    db.executescript(
        """
        CREATE INDEX idx_link_checks_crawl_url ON link_checks(crawl_id, url);
        CREATE INDEX idx_link_checks_state_time ON link_checks(state, checked_at);
        CREATE INDEX idx_links_site_health ON links(site_id, health);
        CREATE INDEX idx_crawls_site ON crawls(site_id, id);
        """
    )


#: The broken link states (``archive.states.BROKEN_STATES``) as m009 froze them, sorted: the
#: partial indexes below are used only by queries whose ``state IN (...)`` is this exact list
#: (``archive.queries.BROKEN``; ``tests/test_schema.py`` checks they agree).
M009_BROKEN = ("('connection_error', 'dns_error', 'empty', 'not_found', 'redirect_loop', "
               "'server_error', 'soft_404', 'timeout', 'tls_error', 'type_mismatch')")
_M009_GOOD = "('ok', 'redirected')"
_M009_INCONCLUSIVE = "('blocked', 'excluded', 'rate_limited')"
_M009_COUNTED = ("checked", "broken", "inconclusive", "good")


def _m009_count_triggers() -> str:
    """Triggers keeping ``crawl_link_counts`` / ``crawl_state_counts`` equal to counting
    distinct URLs in ``link_checks`` per crawl (and per state). A check counts only if no
    other check of the same URL in the same crawl is already counted in that bucket."""
    def others(row: str) -> str:
        # the other checks of this URL in this crawl, by bucket (one index probe)
        return (f"(SELECT COUNT(*) AS n, TOTAL(o.state = {row}.state) AS same,"
                f" TOTAL(o.state IN {M009_BROKEN}) AS broken,"
                f" TOTAL(o.state IN {_M009_INCONCLUSIVE}) AS inconclusive,"
                f" TOTAL(o.state IN {_M009_GOOD}) AS good"
                f" FROM link_checks o WHERE o.crawl_id = {row}.crawl_id AND o.url = {row}.url"
                f" AND o.id != {row}.id)")

    def flags(row: str) -> list[str]:
        # 1 when this check is the only one of its URL in the crawl in the bucket
        return ["x.n = 0", f"{row}.state IN {M009_BROKEN} AND x.broken = 0",
                f"{row}.state IN {_M009_INCONCLUSIVE} AND x.inconclusive = 0",
                f"{row}.state IN {_M009_GOOD} AND x.good = 0"]

    decrements = ", ".join(f"crawl_link_counts.{column} - ({flag})"
                           for column, flag in zip(_M009_COUNTED, flags("old"), strict=True))
    recount = _M009_BACKFILL.replace("WHERE crawl_id IS NOT NULL",
                                     "WHERE crawl_id IN (old.crawl_id, new.crawl_id)")
    return f"""
        CREATE TRIGGER link_checks_counts_ai AFTER INSERT ON link_checks
        WHEN new.crawl_id IS NOT NULL BEGIN
          INSERT INTO crawl_state_counts (crawl_id, state, urls)
            SELECT new.crawl_id, new.state, 1 FROM {others('new')} x WHERE x.same = 0
            ON CONFLICT (crawl_id, state) DO UPDATE SET urls = urls + 1;
          INSERT INTO crawl_link_counts (crawl_id, checked, broken, inconclusive, good)
            SELECT new.crawl_id, {', '.join(flags('new'))} FROM {others('new')} x WHERE true
            ON CONFLICT (crawl_id) DO UPDATE SET checked = checked + excluded.checked,
              broken = broken + excluded.broken, inconclusive = inconclusive + excluded.inconclusive,
              good = good + excluded.good;
        END;
        CREATE TRIGGER link_checks_counts_ad AFTER DELETE ON link_checks
        WHEN old.crawl_id IS NOT NULL BEGIN
          UPDATE crawl_state_counts SET urls = urls - 1
            WHERE crawl_id = old.crawl_id AND state = old.state
              AND (SELECT x.same FROM {others('old')} x) = 0;
          UPDATE crawl_link_counts SET (checked, broken, inconclusive, good) = (
              SELECT {decrements} FROM {others('old')} x)
            WHERE crawl_id = old.crawl_id;
        END;
        -- checks are never edited; if one is, recount the crawls involved
        CREATE TRIGGER link_checks_counts_au AFTER UPDATE OF crawl_id, url, state ON link_checks
        BEGIN
          DELETE FROM crawl_state_counts WHERE crawl_id IN (old.crawl_id, new.crawl_id);
          DELETE FROM crawl_link_counts WHERE crawl_id IN (old.crawl_id, new.crawl_id);{recount}
        END;
        """


_M009_BACKFILL = f"""
          INSERT INTO crawl_state_counts (crawl_id, state, urls)
            SELECT crawl_id, state, COUNT(DISTINCT url) FROM link_checks
            WHERE crawl_id IS NOT NULL GROUP BY crawl_id, state;
          INSERT INTO crawl_link_counts (crawl_id, checked, broken, inconclusive, good)
            SELECT crawl_id, COUNT(DISTINCT url),
              COUNT(DISTINCT CASE WHEN state IN {M009_BROKEN} THEN url END),
              COUNT(DISTINCT CASE WHEN state IN {_M009_INCONCLUSIVE} THEN url END),
              COUNT(DISTINCT CASE WHEN state IN {_M009_GOOD} THEN url END)
            FROM link_checks WHERE crawl_id IS NOT NULL GROUP BY crawl_id;"""


def _referrer_exists(row: str) -> str:
    return (f"EXISTS (SELECT 1 FROM link_referrers r WHERE r.to_url = {row}.to_url"
            f" AND r.from_url = {row}.from_url AND r.anchor_text IS {row}.anchor_text)")


def _source_exists(row: str) -> str:
    return (f"EXISTS (SELECT 1 FROM link_sources s WHERE s.to_url = {row}.to_url"
            f" AND s.from_url = {row}.from_url AND s.anchor_text IS {row}.anchor_text)")


_M009_REFERRERS_BACKFILL = """
          INSERT INTO link_referrers (to_url, from_url, anchor_text)
            SELECT DISTINCT to_url, from_url, anchor_text FROM link_sources;"""


@migrations()
def m009_query_speed(db: Database) -> None:
    """What the canned queries need to answer in < 100 ms on a 10 M-check archive.

    * ``snapshots_fts``: a trigram FTS5 index of ``snapshots.main_text`` (external content,
      kept in sync by triggers), so ``search`` finds pages without scanning every snapshot;
    * ``crawl_link_counts`` / ``crawl_state_counts``: per crawl, distinct URLs checked,
      broken, inconclusive and good, and per broken state — ``broken_over_time`` without
      counting every check of every crawl; kept by triggers on ``link_checks``;
    * ``link_referrers``: each distinct (target, citing page, anchor text) of
      ``link_sources`` once, kept by triggers — a broken link's referrers (``broken_now``,
      ``feed_broken``) without reading the same citation again for every crawl;
    * indexes: broken checks by time (partial, ``feed_broken``); snapshots by site and time,
      and by site and URL (``search``).

    No ``ANALYZE``: statistics taken on a new, empty archive would mislead the planner once
    it is large; the queries are written to plan well without them.
    """
    db.executescript(
        f"""
        CREATE TABLE crawl_link_counts (
            crawl_id INTEGER PRIMARY KEY REFERENCES crawls(id),
            checked INTEGER NOT NULL DEFAULT 0,      -- distinct URLs checked
            broken INTEGER NOT NULL DEFAULT 0,       -- ... with a broken state
            inconclusive INTEGER NOT NULL DEFAULT 0, -- ... blocked, rate limited, excluded
            good INTEGER NOT NULL DEFAULT 0          -- ... ok or redirected
        );
        CREATE TABLE crawl_state_counts (
            crawl_id INTEGER NOT NULL REFERENCES crawls(id),
            state TEXT NOT NULL,
            urls INTEGER NOT NULL,                   -- distinct URLs with a check in this state
            PRIMARY KEY (crawl_id, state)
        ) WITHOUT ROWID;
        {_M009_BACKFILL}
        {_m009_count_triggers()}
        CREATE INDEX idx_link_checks_broken_time ON link_checks(checked_at, site_id)
          WHERE state IN {M009_BROKEN};
        CREATE INDEX idx_snapshots_site_time ON snapshots(site_id, fetched_at DESC);
        CREATE INDEX idx_snapshots_site_url ON snapshots(site_id, url);

        CREATE TABLE link_referrers (
            to_url TEXT NOT NULL,
            from_url TEXT NOT NULL,
            anchor_text TEXT
        );
        CREATE UNIQUE INDEX idx_link_referrers ON link_referrers(to_url, from_url, anchor_text);
        {_M009_REFERRERS_BACKFILL}
        CREATE TRIGGER link_sources_referrers_ai AFTER INSERT ON link_sources
        WHEN NOT {_referrer_exists('new')} BEGIN
          INSERT INTO link_referrers (to_url, from_url, anchor_text)
            VALUES (new.to_url, new.from_url, new.anchor_text);
        END;
        CREATE TRIGGER link_sources_referrers_ad AFTER DELETE ON link_sources
        WHEN NOT {_source_exists('old')} BEGIN
          DELETE FROM link_referrers WHERE to_url = old.to_url AND from_url = old.from_url
            AND anchor_text IS old.anchor_text;
        END;
        CREATE TRIGGER link_sources_referrers_au AFTER UPDATE OF to_url, from_url, anchor_text
        ON link_sources BEGIN
          DELETE FROM link_referrers WHERE to_url = old.to_url AND from_url = old.from_url
            AND anchor_text IS old.anchor_text AND NOT {_source_exists('old')};
          INSERT INTO link_referrers (to_url, from_url, anchor_text)
            SELECT new.to_url, new.from_url, new.anchor_text WHERE NOT {_referrer_exists('new')};
        END;

        CREATE VIRTUAL TABLE snapshots_fts USING fts5(
            main_text, content='snapshots', content_rowid='id', tokenize='trigram');
        INSERT INTO snapshots_fts (rowid, main_text)
          SELECT id, main_text FROM snapshots WHERE main_text IS NOT NULL;
        CREATE TRIGGER snapshots_fts_ai AFTER INSERT ON snapshots
        WHEN new.main_text IS NOT NULL BEGIN
          INSERT INTO snapshots_fts (rowid, main_text) VALUES (new.id, new.main_text);
        END;
        CREATE TRIGGER snapshots_fts_ad AFTER DELETE ON snapshots
        WHEN old.main_text IS NOT NULL BEGIN
          INSERT INTO snapshots_fts (snapshots_fts, rowid, main_text)
            VALUES ('delete', old.id, old.main_text);
        END;
        CREATE TRIGGER snapshots_fts_au AFTER UPDATE OF id, main_text ON snapshots BEGIN
          INSERT INTO snapshots_fts (snapshots_fts, rowid, main_text)
            SELECT 'delete', old.id, old.main_text WHERE old.main_text IS NOT NULL;
          INSERT INTO snapshots_fts (rowid, main_text)
            SELECT new.id, new.main_text WHERE new.main_text IS NOT NULL;
        END;
        """
    )


@migrations()
def m010_broken_links_index(db: Database) -> None:
    """``broken_now`` without sorting every broken link of every site: the links whose
    health is suspect or dead (a few percent of all links), in the query's own order."""
    db.executescript(
        """
        CREATE INDEX idx_links_broken ON links(site_id, health, state, url)
          WHERE health IN ('suspect', 'dead');
        """
    )


@migrations()
def m011_crawl_overhead_bytes(db: Database) -> None:
    """Body bytes of robots.txt and the not-found probe, which are no link's check: part of
    ``crawls.bytes_received`` (what the crawl cost the site) from now on, and shown apart."""
    db.executescript("ALTER TABLE crawls ADD COLUMN overhead_bytes INTEGER NOT NULL DEFAULT 0;")


@migrations()
def m012_item_status_confirmed_and_applicable(db: Database) -> None:
    """``item_status`` no longer calls an item ``dead`` on one failure that may pass (a 5xx, a
    timeout, a refused connection: one 500 marked an item dead until the next crawl found it
    fine): such an item is ``suspect`` until the failure is confirmed (``links.health``
    dead); a 404, a soft 404 and the like are evidence at once. ``compliance`` counts missing
    items among those the site's registry entry says apply (``sites.applicable_items``; all
    50 when unset), and suspect items as unknown. Same columns; the status ``suspect`` is new."""
    db.executescript(
        """
        DROP VIEW compliance;
        DROP VIEW item_status;
        CREATE VIEW item_status AS
        SELECT si.site_id, si.item_number,
          CASE
            WHEN MAX(CASE WHEN l.state IN ('ok', 'redirected') THEN 1 ELSE 0 END) = 1 THEN 'present'
            WHEN MAX(CASE WHEN l.state = 'empty' THEN 1 ELSE 0 END) = 1 THEN 'empty'
            WHEN MAX(CASE WHEN l.state IN ('blocked', 'rate_limited', 'excluded') THEN 1 ELSE 0 END) = 1
              THEN 'inconclusive'
            WHEN MAX(CASE WHEN l.state IS NULL THEN 1 ELSE 0 END) = 1 THEN 'unchecked'
            WHEN MAX(CASE WHEN l.health = 'dead'
                            OR l.state NOT IN ('server_error', 'timeout', 'connection_error')
                          THEN 1 ELSE 0 END) = 1 THEN 'dead'
            ELSE 'suspect'
          END AS status,
          group_concat(DISTINCT si.url) AS urls,
          group_concat(DISTINCT si.source) AS sources
        FROM site_items si LEFT JOIN links l ON l.url = si.url
        GROUP BY si.site_id, si.item_number;

        CREATE VIEW compliance AS
        WITH applicable AS (
          SELECT s.id AS site_id, CAST(j.value AS INTEGER) AS item_number
          FROM sites s, json_each(COALESCE(NULLIF(s.applicable_items, ''),
            '[1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,'
            || '31,32,33,34,35,36,37,38,39,40,41,42,43,44,45,46,47,48,49,50]')) j
        ), per_site AS (
          SELECT a.site_id,
            SUM(CASE WHEN i.status = 'present' THEN 1 ELSE 0 END) AS items_present,
            SUM(CASE WHEN i.status = 'empty' THEN 1 ELSE 0 END) AS items_empty,
            SUM(CASE WHEN i.status = 'dead' THEN 1 ELSE 0 END) AS items_dead,
            SUM(CASE WHEN i.status IN ('inconclusive', 'unchecked', 'suspect') THEN 1 ELSE 0 END)
              AS items_unknown,
            SUM(CASE WHEN i.status IS NULL THEN 1 ELSE 0 END) AS items_missing
          FROM applicable a
          LEFT JOIN item_status i ON i.site_id = a.site_id AND i.item_number = a.item_number
          GROUP BY a.site_id
        )
        SELECT s.id AS site_id, s.name, r.academic_year, r.id AS report_id, r.signed_date,
          r.deadline, COALESCE(r.timeliness, 'no report') AS timeliness,
          (SELECT f.value FROM report_facts f WHERE f.report_id = r.id
             AND f.fact = 'applications_received' LIMIT 1) AS applications_received,
          p.items_present, p.items_empty, p.items_dead, p.items_unknown, p.items_missing
        FROM sites s JOIN per_site p ON p.site_id = s.id
        LEFT JOIN reports r ON r.site_id = s.id AND r.error IS NULL
          AND r.id = (SELECT MAX(r2.id) FROM reports r2 WHERE r2.site_id = s.id
                      AND r2.academic_year IS r.academic_year AND r2.error IS NULL);
        """
    )



_M013_SITE_LINKS_BACKFILL = """
INSERT INTO site_links (site_id, url, first_checked, last_checked)
  SELECT site_id, url, MIN(checked_at), MAX(checked_at) FROM link_checks
  WHERE site_id IS NOT NULL GROUP BY site_id, url;
"""


@migrations()
def m013_site_links(db: Database) -> None:
    """``site_links``: which sites check (cite) each link. ``links`` holds one row per URL
    and its ``site_id`` is the first site that checked it, so a link two universities cite
    counted, and showed in ``broken_now?site=``, for the first one only. Kept by a trigger
    on ``link_checks`` (every writer, the distributed one included), filled from the checks
    so far."""
    db.executescript(
        """
        CREATE TABLE site_links (
          site_id TEXT NOT NULL,
          url TEXT NOT NULL,
          first_checked TEXT NOT NULL,
          last_checked TEXT NOT NULL,
          PRIMARY KEY (site_id, url)
        ) WITHOUT ROWID;
        CREATE INDEX idx_site_links_url ON site_links(url, site_id);
        CREATE TRIGGER link_checks_site_links AFTER INSERT ON link_checks
        WHEN new.site_id IS NOT NULL
        BEGIN
          INSERT INTO site_links (site_id, url, first_checked, last_checked)
            VALUES (new.site_id, new.url, new.checked_at, new.checked_at)
            ON CONFLICT (site_id, url) DO UPDATE SET last_checked = MAX(last_checked, excluded.last_checked);
        END;
        """
        + _M013_SITE_LINKS_BACKFILL
    )



@migrations()
def m014_truncated_captures(db: Database) -> None:
    """``snapshots.truncated``: the body is not the whole answer — the connection closed
    before the end (chunked or compressed answers, where no Content-Length says so; Scrapy
    keeps what came) or the server sent part of it (206). Such a capture was stored as a
    complete file, became the base of the next crawl's conditional request, and its 304
    kept the cut copy for as long as the ETag held."""
    db.executescript("ALTER TABLE snapshots ADD COLUMN truncated INTEGER NOT NULL DEFAULT 0;")



@migrations()
def m015_postcrawl_done(db: Database) -> None:
    """``crawls.postcrawl_at``: when the work after the crawl (changes, unlinked links,
    checklist items from the portal, evaluation) ran for it. A crawl whose caller died before
    that work (the parent killed once the child had closed the row, a scheduler stopped) had
    its changes never recorded: the next run catches up on closed crawls without it. Crawls
    closed before this migration count as done."""
    db.executescript(
        """
        ALTER TABLE crawls ADD COLUMN postcrawl_at TEXT;
        UPDATE crawls SET postcrawl_at = COALESCE(finished_at, started_at) WHERE status <> 'running';
        """
    )



#: Each (site, academic year, method)'s latest evaluation, looked up by index per key (the
#: views of m016 share it).
_LATEST_EVALUATIONS = """keys AS (
          SELECT DISTINCT site_id, academic_year, method_version FROM evaluations
        ), latest AS (
          SELECT e.* FROM keys k JOIN evaluations e ON e.id = (
            SELECT n.id FROM evaluations n
            WHERE n.site_id = k.site_id AND n.academic_year IS k.academic_year
              AND n.method_version = k.method_version
            ORDER BY n.as_of DESC, n.evaluated_at DESC, n.id DESC LIMIT 1)
        )"""


@migrations()
def m016_latest_evaluations_by_index(db: Database) -> None:
    """``evaluation_ranking`` and ``evaluation_changes`` numbered every evaluation ever
    written to find each (site, year, method)'s latest: a second a page once daily crawls
    of 300 sites had written 100,000. They look the latest up in an index now, per key.
    Same columns, same rows."""
    db.executescript(
        """
        CREATE INDEX idx_evaluations_latest
          ON evaluations(site_id, academic_year, as_of, evaluated_at, id, method_version);
        DROP VIEW evaluation_ranking;
        DROP VIEW evaluation_changes;

        CREATE VIEW evaluation_ranking AS
        WITH {latest}
        SELECT l.academic_year, l.method_version,
          RANK() OVER (PARTITION BY l.academic_year, l.method_version
                       ORDER BY l.score_overall DESC) AS rank,
          l.site_id, s.name, l.score_overall, l.score_checklist, l.score_report,
          l.score_publication, l.timeliness, l.parts_found, l.items_published,
          l.items_applicable, l.findings, l.as_of, l.evaluated_at, l.id AS evaluation_id
        FROM latest l LEFT JOIN sites s ON s.id = l.site_id
        ORDER BY l.academic_year DESC, l.method_version, rank;

        CREATE VIEW evaluation_changes AS
        WITH {latest}, ordered AS (
          SELECT l.*, (
            SELECT p.id FROM evaluations p
            WHERE p.site_id = l.site_id AND p.academic_year IS l.academic_year
              AND p.method_version = l.method_version
              AND (p.as_of, p.evaluated_at, p.id) < (l.as_of, l.evaluated_at, l.id)
            ORDER BY p.as_of DESC, p.evaluated_at DESC, p.id DESC LIMIT 1) AS previous_id
          FROM latest l
        )
        SELECT o.site_id, s.name, o.academic_year, o.method_version,
          o.id AS evaluation_id, o.evaluated_at, o.as_of,
          o.previous_id AS previous_evaluation_id, p.evaluated_at AS previous_evaluated_at,
          o.score_overall, p.score_overall AS previous_score_overall,
          ROUND(o.score_overall - p.score_overall, 2) AS delta_overall,
          ROUND(o.score_checklist - p.score_checklist, 2) AS delta_checklist,
          ROUND(o.score_report - p.score_report, 2) AS delta_report,
          ROUND(o.score_publication - p.score_publication, 2) AS delta_publication,
          o.findings - p.findings AS delta_findings
        FROM ordered o
        LEFT JOIN evaluations p ON p.id = o.previous_id
        LEFT JOIN sites s ON s.id = o.site_id
        ORDER BY o.academic_year DESC, o.site_id;
        """.replace("{latest}", _LATEST_EVALUATIONS)
    )


def rebuild_derived(conn: sqlite3.Connection) -> None:
    """Recompute what the triggers of m009 and m013 maintain — the per-crawl counts, the
    distinct link referrers, the snapshots' full-text index and the sites checking each link
    — from the tables themselves (after a bulk load without the triggers)."""
    conn.executescript("DELETE FROM crawl_state_counts; DELETE FROM crawl_link_counts;"
                       + _M009_BACKFILL + "\nDELETE FROM link_referrers;" + _M009_REFERRERS_BACKFILL
                       + "\nINSERT INTO snapshots_fts (snapshots_fts) VALUES ('rebuild');"
                       + "\nDELETE FROM site_links;" + _M013_SITE_LINKS_BACKFILL)


class SchemaError(Exception):
    """The database is not an archive this version can use (another program's, or newer)."""


@migrations()
def m017_items_of_uncrawled_sites_are_unknown(db: Database) -> None:
    """``compliance`` counted every checklist item of a site whose portal was never crawled
    (only its annual report ingested) as missing: 50 items "not published" on no evidence,
    while the evaluation said "unverified". Until a crawl of the site has reached a page,
    items without a status count as unknown (``items_unknown``), not ``items_missing``.
    Same columns."""
    db.executescript(
        """
        DROP VIEW compliance;
        CREATE VIEW compliance AS
        WITH applicable AS (
          SELECT s.id AS site_id, CAST(j.value AS INTEGER) AS item_number
          FROM sites s, json_each(COALESCE(NULLIF(s.applicable_items, ''),
            '[1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,'
            || '31,32,33,34,35,36,37,38,39,40,41,42,43,44,45,46,47,48,49,50]')) j
        ), crawled AS (
          -- a crawl of the site ended having reached a page: the portal was looked at
          SELECT s.id AS site_id, EXISTS (
            SELECT 1 FROM crawls c WHERE c.site_id = s.id AND c.status <> 'running'
              AND EXISTS (SELECT 1 FROM link_checks lc WHERE lc.crawl_id = c.id
                            AND lc.state IN ('ok', 'redirected'))) AS crawled
          FROM sites s
        ), per_site AS (
          SELECT a.site_id,
            SUM(CASE WHEN i.status = 'present' THEN 1 ELSE 0 END) AS items_present,
            SUM(CASE WHEN i.status = 'empty' THEN 1 ELSE 0 END) AS items_empty,
            SUM(CASE WHEN i.status = 'dead' THEN 1 ELSE 0 END) AS items_dead,
            SUM(CASE WHEN i.status IN ('inconclusive', 'unchecked', 'suspect')
                       OR (i.status IS NULL AND NOT cr.crawled) THEN 1 ELSE 0 END) AS items_unknown,
            SUM(CASE WHEN i.status IS NULL AND cr.crawled THEN 1 ELSE 0 END) AS items_missing
          FROM applicable a
          JOIN crawled cr ON cr.site_id = a.site_id
          LEFT JOIN item_status i ON i.site_id = a.site_id AND i.item_number = a.item_number
          GROUP BY a.site_id
        )
        SELECT s.id AS site_id, s.name, r.academic_year, r.id AS report_id, r.signed_date,
          r.deadline, COALESCE(r.timeliness, 'no report') AS timeliness,
          (SELECT f.value FROM report_facts f WHERE f.report_id = r.id
             AND f.fact = 'applications_received' LIMIT 1) AS applications_received,
          p.items_present, p.items_empty, p.items_dead, p.items_unknown, p.items_missing
        FROM sites s JOIN per_site p ON p.site_id = s.id
        LEFT JOIN reports r ON r.site_id = s.id AND r.error IS NULL
          AND r.id = (SELECT MAX(r2.id) FROM reports r2 WHERE r2.site_id = s.id
                      AND r2.academic_year IS r.academic_year AND r2.error IS NULL);
        """
    )


def migrations_pending(db: Database) -> bool:
    """Whether :func:`apply_migrations` has anything to do or to refuse (cheap: one read)."""
    applied = {migration.name for migration in migrations.applied(db)}
    return applied != _known_migrations()


@functools.cache
def _known_migrations() -> frozenset[str]:
    """The names of this version's migrations (all registered once the module is imported)."""
    return frozenset(migration.name for migration in migrations.pending(Database(memory=True)))


def apply_migrations(db: Database) -> None:
    """Bring ``db`` up to the current schema (idempotent).

    Refuses (:class:`SchemaError`, nothing written) a database that is not an archive (it
    has tables but no migration of ours: another program's data, which must not get our
    tables) and one a newer version migrated (its schema may not be what this one reads).
    """
    applied = {migration.name for migration in migrations.applied(db)}
    known = _known_migrations()
    if applied - known:
        raise SchemaError("it was written by a newer xxgk-archive (schema migrations "
                          f"{', '.join(sorted(applied - known))} are unknown here): upgrade to use it")
    if not applied:
        tables = [name for name in db.table_names() if not name.startswith("sqlite_")]
        if tables:
            shown = ", ".join(tables[:5]) + (", ..." if len(tables) > 5 else "")
            raise SchemaError(f"it is an SQLite database but not an xxgk archive (tables {shown}); "
                              "nothing was changed")
    migrations.apply(db)
