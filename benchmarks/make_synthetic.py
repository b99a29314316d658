"""A synthetic archive of realistic shape and any size, for query benchmarks.

    python -m benchmarks.make_synthetic OUT.db [--checks 10000000] [--snapshots 1000000]
                                             [--sites 100] [--links-per-site 2000]

The schema is the real one (``archive.db.open_db`` runs the migrations); the rows are
made with bulk ``INSERT ... SELECT`` over recursive CTEs (no Python per row), with the
big tables' indexes dropped during the load and rebuilt after, so the full size (10 M
``link_checks``, 1 M ``snapshots``) takes a few minutes. Triggers are dropped during the
load too; what they maintain (per-crawl counts, distinct link referrers, the snapshots'
full-text index) is rebuilt after (``archive.schema.rebuild_derived``).

Shape: ``--sites`` universities, each with ``--links-per-site`` URLs checked once per
weekly crawl, as many crawls as it takes to reach ``--checks``. About 2 % of the URLs are
dead (404 in every crawl), ~1 % fail now and then (500), 0.5 % redirect. Every check has
one ``link_sources`` row (the list page citing it). ``--snapshots`` are spread evenly over
the checks, sharing one blob per ten snapshots (as unchanged pages do), with a short
Chinese main text. Each site has five annual reports (FTS-indexed, 50 清单 rows with URLs,
some dead) and its ``site_items``. ``changes`` and ``evaluations`` stay empty.
No ``ANALYZE`` is run: a real archive has none unless the project runs it.
"""

from __future__ import annotations

import argparse
import sqlite3
import time
from pathlib import Path

BIG_TABLES = ("link_checks", "link_sources", "links", "snapshots", "crawls", "blobs")


def _ts(days: str, seconds: str = "0") -> str:
    return (f"strftime('%Y-%m-%dT%H:%M:%SZ', '2025-01-05', '+' || ({days}) || ' days', "
            f"'+' || ({seconds}) || ' seconds')")


def make_synthetic(path: str | Path, *, checks: int = 10_000_000, snapshots: int = 1_000_000,
                   sites: int = 100, links_per_site: int = 2000, echo: bool = True) -> dict[str, int]:
    """Create (replacing) a synthetic archive at ``path``; return row counts."""
    from archive.db import open_db
    from archive.reports.ingest import ensure_checklist
    from archive.schema import rebuild_derived

    path = Path(path)
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    db = open_db(path)
    ensure_checklist(db)
    db.conn.close()

    per_crawl = max(1, min(links_per_site, checks // max(1, sites)))
    crawls_per_site = max(1, checks // (sites * per_crawl))
    n_crawls = sites * crawls_per_site
    n_checks = n_crawls * per_crawl
    n_blobs = max(1, snapshots // 10)
    stride = max(1, n_checks // max(1, snapshots))
    started = time.perf_counter()

    def say(what: str) -> None:
        if echo:
            print(f"  [{time.perf_counter() - started:6.1f}s] {what}", flush=True)

    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode = OFF")
    conn.execute("PRAGMA synchronous = OFF")
    conn.execute("PRAGMA cache_size = -1000000")
    conn.execute("PRAGMA temp_store = MEMORY")
    indexes = conn.execute(
        "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL AND tbl_name IN "
        f"({','.join('?' * len(BIG_TABLES))})", BIG_TABLES).fetchall()
    for name, _sql in indexes:
        conn.execute(f"DROP INDEX {name}")
    # triggers (m009's counts, referrers, full-text index) would run per row without indexes:
    # dropped for the load, recreated after, and what they maintain rebuilt in one pass
    triggers = conn.execute(
        "SELECT name, sql FROM sqlite_master WHERE type = 'trigger' AND tbl_name IN "
        f"({','.join('?' * len(BIG_TABLES))})", BIG_TABLES).fetchall()
    for name, _sql in triggers:
        conn.execute(f"DROP TRIGGER {name}")
    conn.execute("BEGIN")
    conn.execute(f"""
        WITH RECURSIVE n(x) AS (SELECT 0 UNION ALL SELECT x + 1 FROM n WHERE x < {sites - 1})
        INSERT INTO sites (id, name, portal, allowed_domains, render, max_pages, kind, updated_at)
        SELECT printf('s%03d', x), printf('模拟大学%03d', x),
               json_array(printf('http://xxgk.s%03d.edu.cn/index.htm', x)),
               json_array(printf('xxgk.s%03d.edu.cn', x)), 'auto', 20000, '本科', '2026-01-01T00:00:00Z'
        FROM n""")
    conn.execute(f"""
        WITH RECURSIVE n(x) AS (SELECT 0 UNION ALL SELECT x + 1 FROM n WHERE x < {n_crawls - 1})
        INSERT INTO crawls (id, site_id, started_at, finished_at, status, pages, links_checked,
                            bytes_received, new_broken, errors, exit_code)
        SELECT x + 1, printf('s%03d', x % {sites}), {_ts(f'(x / {sites}) * 7')},
               {_ts(f'(x / {sites}) * 7', '3600')}, 'finished', {per_crawl // 2}, {per_crawl},
               {per_crawl * 9000}, 3, 0, 0
        FROM n""")
    say(f"{sites} sites, {n_crawls} crawls")
    state = ("CASE WHEN j % 50 = 7 THEN 'not_found' WHEN (j * 7 + k * 13) % 97 = 0 THEN 'server_error'"
             " WHEN j % 200 = 3 THEN 'redirected' ELSE 'ok' END")
    status = ("CASE WHEN j % 50 = 7 THEN 404 WHEN (j * 7 + k * 13) % 97 = 0 THEN 500 ELSE 200 END")
    conn.execute(f"""
        WITH RECURSIVE n(x) AS (SELECT 0 UNION ALL SELECT x + 1 FROM n WHERE x < {n_checks - 1}),
        v AS (SELECT x, x / {per_crawl} AS c, (x / {per_crawl}) % {sites} AS s,
                     (x / {per_crawl}) / {sites} AS k, x % {per_crawl} AS j FROM n)
        INSERT INTO link_checks (id, crawl_id, site_id, url, checked_at, state, status_code, elapsed_ms,
                                 final_url, method, content_type, content_length, bytes_received, error,
                                 rule, snapshot_id)
        SELECT x + 1, c + 1, printf('s%03d', s), printf('http://xxgk.s%03d.edu.cn/info/%d.htm', s, j),
               {_ts('k * 7', 'j')}, {state}, {status}, 20 + j % 300,
               printf('http://xxgk.s%03d.edu.cn/info/%d.htm', s, j), 'GET', 'text/html; charset=utf-8',
               9000, 9000, CASE WHEN j % 50 = 7 THEN 'HTTP 404' WHEN (j * 7 + k * 13) % 97 = 0
               THEN 'HTTP 500' END, CASE WHEN j % 50 = 7 THEN 'http-404' ELSE 'ok' END,
               CASE WHEN x % {stride} = 0 AND x / {stride} < {snapshots} THEN x / {stride} + 1 END
        FROM v""")
    say(f"{n_checks:,} link_checks")
    conn.execute(f"""
        WITH RECURSIVE n(x) AS (SELECT 0 UNION ALL SELECT x + 1 FROM n WHERE x < {n_checks - 1}),
        v AS (SELECT x, x / {per_crawl} AS c, (x / {per_crawl}) % {sites} AS s,
                     (x / {per_crawl}) / {sites} AS k, x % {per_crawl} AS j FROM n)
        INSERT INTO link_sources (crawl_id, site_id, from_url, to_url, anchor_text, seen_at)
        SELECT c + 1, printf('s%03d', s), printf('http://xxgk.s%03d.edu.cn/list/%d.htm', s, j / 20),
               printf('http://xxgk.s%03d.edu.cn/info/%d.htm', s, j), printf('关于公布第%d批信息的通知', j),
               {_ts('k * 7', 'j')}
        FROM v""")
    say(f"{n_checks:,} link_sources")
    last = crawls_per_site - 1
    conn.execute(f"""
        WITH RECURSIVE n(x) AS (SELECT 0 UNION ALL SELECT x + 1 FROM n WHERE x < {sites * per_crawl - 1}),
        v AS (SELECT x / {per_crawl} AS s, x % {per_crawl} AS j, {last} AS k FROM n)
        INSERT INTO links (url, site_id, state, status_code, content_type, final_url, title, health,
                           first_seen, last_checked, last_ok, broken_since, consecutive_failures)
        SELECT printf('http://xxgk.s%03d.edu.cn/info/%d.htm', s, j), printf('s%03d', s), {state}, {status},
               'text/html; charset=utf-8', printf('http://xxgk.s%03d.edu.cn/info/%d.htm', s, j),
               printf('关于公布第%d批信息的通知', j),
               CASE WHEN j % 50 = 7 THEN 'dead' WHEN (j * 7 + k * 13) % 97 = 0 THEN 'suspect' ELSE 'ok' END,
               {_ts('0')}, {_ts('k * 7', 'j')}, CASE WHEN j % 50 = 7 THEN NULL ELSE {_ts('k * 7', 'j')} END,
               CASE WHEN j % 50 = 7 THEN {_ts('0')} WHEN (j * 7 + k * 13) % 97 = 0 THEN {_ts('k * 7', 'j')} END,
               CASE WHEN j % 50 = 7 THEN {crawls_per_site} WHEN (j * 7 + k * 13) % 97 = 0 THEN 1 ELSE 0 END
        FROM v""")
    say(f"{sites * per_crawl:,} links")
    conn.execute(f"""
        WITH RECURSIVE n(x) AS (SELECT 0 UNION ALL SELECT x + 1 FROM n WHERE x < {n_blobs - 1})
        INSERT INTO blobs (sha256, size, stored_size, compression, content, created_at)
        SELECT printf('%064d', x), 200, 200, 'none', zeroblob(200), {_ts('0')} FROM n""")
    conn.execute(f"""
        WITH RECURSIVE n(m) AS (SELECT 0 UNION ALL SELECT m + 1 FROM n WHERE m < {snapshots - 1}),
        v AS (SELECT m, m * {stride} AS x FROM n),
        w AS (SELECT m, x / {per_crawl} AS c, (x / {per_crawl}) % {sites} AS s, (x / {per_crawl}) / {sites} AS k,
                     x % {per_crawl} AS j FROM v)
        INSERT INTO snapshots (id, crawl_id, site_id, url, final_url, fetched_at, status_code, content_type,
                               headers, sha256, size, encoding, title, etag, not_modified, rendered, main_text)
        SELECT m + 1, c + 1, printf('s%03d', s), printf('http://xxgk.s%03d.edu.cn/info/%d.htm', s, j),
               printf('http://xxgk.s%03d.edu.cn/info/%d.htm', s, j), {_ts('k * 7', 'j')}, 200,
               'text/html; charset=utf-8', '{{}}', printf('%064d', m % {n_blobs}), 200, 'utf-8',
               printf('关于公布第%d批信息的通知', j), printf('"%x"', m), m % 3 = 0, 0,
               printf('关于公布第%d批信息公开事项的通知。学校坚持以公开为常态、不公开为例外，第%d号。', j, m)
        FROM w""")
    say(f"{snapshots:,} snapshots, {n_blobs:,} blobs")
    conn.execute(f"""
        WITH RECURSIVE n(x) AS (SELECT 0 UNION ALL SELECT x + 1 FROM n WHERE x < {sites * 5 - 1})
        INSERT INTO reports (id, site_id, academic_year, title, source_url, format, sha256, signed_date, deadline,
                             timeliness, first_seen, text)
        SELECT x + 1, printf('s%03d', x / 5), printf('%d-%d', 2019 + x % 5, 2020 + x % 5),
               printf('模拟大学%03d%d-%d学年信息公开工作年度报告', x / 5, 2019 + x % 5, 2020 + x % 5),
               printf('http://xxgk.s%03d.edu.cn/ndbg/%d.pdf', x / 5, x % 5), 'pdf', printf('%064d', x % {n_blobs}),
               printf('%d-10-%02d', 2020 + x % 5, 20 + x % 15), printf('%d-10-31', 2020 + x % 5),
               CASE WHEN 20 + x % 15 <= 31 THEN 'on_time' ELSE 'late' END, {_ts('x % 300')},
               replace(hex(zeroblob(400)), '00', '信息公开工作年度报告主动公开依申请公开') || printf('收到申请%d件。', x)
        FROM n""")
    conn.execute("""
        WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n WHERE x < 50)
        INSERT INTO report_items (report_id, item_number, category, title, url)
        SELECT r.id, n.x, '学校基本信息', printf('第%d项', n.x),
               printf('http://xxgk.s%s.edu.cn/info/%d.htm', substr(r.site_id, 2), (n.x * 50 + 7) % 2000)
        FROM reports r, n""")
    conn.execute("""
        INSERT INTO report_facts (report_id, fact, value, sentence)
        SELECT id, 'applications_received', id % 40, '收到申请' || (id % 40) || '件。' FROM reports""")
    conn.execute("""
        INSERT INTO site_items (site_id, item_number, url, source, report_id, first_seen, last_seen)
        SELECT r.site_id, i.item_number, i.url, 'report', r.id, r.first_seen, r.first_seen
        FROM report_items i JOIN reports r ON r.id = i.report_id
        WHERE r.academic_year = '2023-2024'""")
    conn.execute("COMMIT")
    say("reports, report items, facts, site items")
    for name, sql in indexes:
        conn.execute(sql)
        say(f"index {name}")
    for _name, sql in triggers:
        conn.execute(sql)
    rebuild_derived(conn)
    say("per-crawl counts, link referrers, full-text index of snapshots")
    conn.execute("PRAGMA journal_mode = WAL")
    counts = {table: conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]
              for table in ("sites", "crawls", "link_checks", "link_sources", "links", "snapshots", "blobs",
                            "reports", "report_items")}
    conn.close()
    say(f"done: {path.stat().st_size / 1e9:.2f} GB")
    return counts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--checks", type=int, default=10_000_000, help="link_checks rows (default 10 M)")
    parser.add_argument("--snapshots", type=int, default=1_000_000, help="snapshots rows (default 1 M)")
    parser.add_argument("--sites", type=int, default=100)
    parser.add_argument("--links-per-site", type=int, default=2000)
    args = parser.parse_args(argv)
    counts = make_synthetic(args.out, checks=args.checks, snapshots=args.snapshots, sites=args.sites,
                            links_per_site=args.links_per_site)
    print(", ".join(f"{k} {v:,}" for k, v in counts.items()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
