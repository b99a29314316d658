"""Writing crawl results into the archive: crawls, checks, link state, snapshots, sources.

:class:`ArchiveWriter` is the single write path used by the Scrapy pipeline (and by tests).
It batches writes into transactions of ``commit_every`` items so a crash loses at most one
uncommitted batch and never leaves half an item behind (a crash between two statements of
an item rolls back with its batch; an exception inside :meth:`ArchiveWriter.one_item` rolls
back that item alone).

Link health (how a watchdog should read ``links``):

* every check is appended to ``link_checks``; ``links`` holds the current verdict;
* ``health`` is ``ok`` for good states, ``inconclusive`` for blocked / rate limited /
  excluded (never evidence that a page is gone), ``suspect`` for a broken state not yet
  confirmed, and ``dead`` once it failed in ``confirm_checks`` consecutive checks spanning at
  least ``confirm_hours`` hours;
* ``unlinked`` (set after a crawl, :func:`archive.postcrawl.retire_unlinked`): a broken link
  the pages that cited it no longer link to;
* ``broken_since`` is the first failing check of the current failure run,
  ``recovered_at`` the first good check after one.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlite_utils import Database

from archive.blobs import store_blob
from archive.db import utcnow
from archive.states import BROKEN_STATES, GOOD_STATES, INCONCLUSIVE_STATES

CRAWL_STATUSES = ("running", "finished", "failed", "killed", "incomplete")


def upsert_sites(db: Database, rows: list[dict]) -> None:
    """Record the registry's sites (the ``sites`` table mirrors the registry)."""
    now = utcnow()
    for row in rows:
        db["sites"].upsert({**row, "updated_at": now}, pk="id")


#: ``crawls.finish_reason`` prefix of a crawl that ended with pages or items it could not
#: process (status ``incomplete``; see :mod:`crawler.pipelines`).
PROCESSING_ERRORS = "processing_errors"


def processing_errors_reason(count: int, first: str) -> str:
    """``crawls.finish_reason`` of a crawl that left ``count`` pages or items unprocessed."""
    return (f"{PROCESSING_ERRORS}: {count} page(s) or item(s) could not be processed, see the log;"
            f" first: {first}")[:1000]


def unstored_item(item: Any, exc: BaseException) -> str:
    """How an item the archive could not store is named in ``processing_errors`` reasons."""
    url = getattr(item, "url", None) or getattr(item, "from_url", None) or ""
    return f"{type(item).__name__} {url}: {type(exc).__name__}: {exc}"


def start_crawl(db: Database, site_id: str, *, pid: int | None = None, log_path: str | None = None,
                scheduled_at: str | None = None) -> int:
    cursor = db.execute(
        "INSERT INTO crawls (site_id, scheduled_at, started_at, status, pid, log_path)"
        " VALUES (?, ?, ?, 'running', ?, ?)",
        [site_id, scheduled_at, utcnow(), pid or os.getpid(), log_path],
    )
    return int(cursor.lastrowid)


def count_new_broken(db: Database, crawl_id: int) -> int:
    """URLs the crawl found broken in a check that starts a run of failures: the URL's last
    check before it that was not inconclusive (blocked, rate limited, excluded) was good or
    there was none. The rule of the newly_broken and feed_broken queries."""
    from archive.queries import BROKEN as broken  # the SQL list of the broken states
    from archive.queries import became_broken, previous_state

    return db.execute(
        f"""SELECT COUNT(DISTINCT c.url) FROM (
              SELECT c.id, c.url, c.checked_at, {previous_state('c')} AS previous_state
              FROM link_checks c WHERE c.crawl_id = ? AND c.state IN {broken} LIMIT -1) c
            WHERE {became_broken('c', 'c.previous_state')}""",
        [crawl_id]).fetchone()[0]


def finish_crawl(db: Database, crawl_id: int, status: str, *, exit_code: int | None = None,
                 finish_reason: str | None = None) -> None:
    """Close a crawl row, computing its counters from what was recorded."""
    if status not in CRAWL_STATUSES:
        raise ValueError(f"unknown crawl status {status!r}")
    counts = db.execute(
        "SELECT COUNT(*), COALESCE(SUM(bytes_received), 0),"
        " SUM(CASE WHEN error IS NOT NULL THEN 1 ELSE 0 END)"
        " FROM link_checks WHERE crawl_id = ?",
        [crawl_id],
    ).fetchone()
    pages = db.execute(
        "SELECT COUNT(*) FROM snapshots WHERE crawl_id = ?", [crawl_id]
    ).fetchone()[0]
    db.execute(
        "UPDATE crawls SET finished_at = ?, status = ?, exit_code = COALESCE(?, exit_code),"
        " finish_reason = COALESCE(?, finish_reason), pages = ?, links_checked = ?,"
        " bytes_received = ? + overhead_bytes, errors = ? WHERE id = ?",
        [utcnow(), status, exit_code, finish_reason, pages, counts[0], counts[1], counts[2] or 0,
         crawl_id],
    )


# What a crawl learns from the archive when it starts (single-machine crawls read it, a
# distributed job's writer publishes it to the workers). ``conn``: sqlite3 or sqlite-utils.
def trap_budget_refusals(conn: Any, site_id: str, before_crawl_id: int | None) -> list[str]:
    """URLs the trap guard refused because their URL pattern's budget ran out, in the site's
    last *finished* crawl before ``before_crawl_id`` (None: the last finished crawl). The
    crawler turns them into known trap families."""
    return [url for (url,) in conn.execute(
        "SELECT url FROM link_checks WHERE crawl_id = (SELECT MAX(id) FROM crawls WHERE site_id = ?"
        " AND status = 'finished' AND (? IS NULL OR id < ?)) AND state = 'excluded'"
        " AND rule = 'trap-guard' AND error LIKE 'pattern-budget:%'", [site_id, before_crawl_id, before_crawl_id])]


def evidence_urls(conn: Any) -> list[str]:
    """Checklist item URLs already known (from reports, portals, the registry): a crawl keeps
    a screenshot of each as evidence."""
    return [url for (url,) in conn.execute("SELECT DISTINCT url FROM site_items WHERE url IS NOT NULL")]


def cited_urls(conn: Any) -> dict[str, list[str]]:
    """URLs a site's annual reports cite (their 清单 tables), per site: every crawl checks
    them, linked from the portal or not (a dead URL a report prints is what a watchdog looks
    for, and a crawl that follows the portal's links alone would never check it)."""
    cited: dict[str, list[str]] = {}
    for site_id, url in conn.execute(
            "SELECT site_id, url FROM site_items WHERE url IS NOT NULL AND source <> 'portal'"
            " UNION SELECT r.site_id, i.url FROM report_items i JOIN reports r ON r.id = i.report_id"
            " WHERE i.url IS NOT NULL AND r.site_id IS NOT NULL ORDER BY 1, 2"):
        cited.setdefault(site_id, []).append(url)
    return cited


#: How long after its ``crawls`` row a crawl's process may have started (the child starts
#: right after the row is written): a process with that pid started later is another one.
PROCESS_START_SLACK = 120.0


def _proc_stat(pid: int) -> list[str] | None:
    """The fields of ``/proc/<pid>/stat`` after the command name (state first), or None."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as stat:
            return stat.read().rsplit(")", 1)[-1].split()
    except OSError:
        return None


def _process_started(fields: list[str]) -> float | None:
    """When the process of ``fields`` (:func:`_proc_stat`) started, in epoch seconds, or None:
    how long ago it started (both counts since boot), so a clock set since boot does not matter."""
    try:
        ticks = int(fields[19])  # field 22: starttime
        with open("/proc/uptime", encoding="ascii") as uptime:
            up = float(uptime.read().split()[0])
        return time.time() - (up - ticks / os.sysconf("SC_CLK_TCK"))
    except (OSError, ValueError, IndexError):
        return None


def pid_alive(pid: int | None, started_at: str | None = None) -> bool:
    """Is process ``pid`` running (a zombie, killed but never reaped, is not)? With
    ``started_at`` (the crawl's), a process that started well after it is not the crawl's:
    its pid was reused (a restarted container hands out the same small pids)."""
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    fields = _proc_stat(pid)
    if not fields:
        return True
    if fields[0] == "Z":  # a killed crawl nobody reaped (PID 1 in a container) is a zombie: dead
        return False
    began = _process_started(fields)
    if started_at and began is not None:
        try:
            crawl_began = datetime.strptime(started_at, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC).timestamp()
        except ValueError:
            return True
        return began <= crawl_began + PROCESS_START_SLACK
    return True


def running_crawl(db: Database, site_id: str) -> tuple[int, int | None] | None:
    """(id, pid) of a crawl of ``site_id`` still running after :func:`mark_abandoned_crawls`
    closed those whose process is gone; None when there is none."""
    mark_abandoned_crawls(db)
    row = db.execute("SELECT id, pid FROM crawls WHERE site_id = ? AND status = 'running'", [site_id]).fetchone()
    return (row[0], row[1]) if row else None


def mark_abandoned_crawls(db: Database) -> list[int]:
    """Mark ``running`` crawls whose process is gone as ``incomplete``; return their ids."""
    rows = db.execute("SELECT id, pid, started_at FROM crawls WHERE status = 'running'").fetchall()
    abandoned = [crawl_id for crawl_id, pid, started_at in rows if not pid_alive(pid, started_at)]
    for crawl_id in abandoned:
        finish_crawl(db, crawl_id, "incomplete", finish_reason="process ended without closing the crawl")
    return abandoned


def _hours_between(start: str, end: str) -> float:
    fmt = "%Y-%m-%dT%H:%M:%SZ"
    return (datetime.strptime(end, fmt) - datetime.strptime(start, fmt)).total_seconds() / 3600


@dataclass
class LinkUpdate:
    """What one check changed in ``links``: used for the crawl's ``new_broken`` count."""

    url: str
    health: str
    became_broken: bool


class ArchiveWriter:
    """Append checks, snapshots and link sources; keep ``links`` current."""

    def __init__(self, db: Database, *, confirm_checks: int = 2, confirm_hours: float = 20.0,
                 commit_every: int = 200, batch_sources: bool = False,
                 commit_seconds: float | None = None) -> None:
        self.db = db
        self.confirm_checks = confirm_checks
        self.confirm_hours = confirm_hours
        self.commit_every = max(1, commit_every)
        #: Longest a write transaction stays open (None: no limit). Other processes writing
        #: the archive (a second crawl, the scheduler, ``xxgk ingest-report``) wait for it, and
        #: give up after the busy timeout: a batch must not hold the lock across slow pages.
        self.commit_seconds = commit_seconds
        self._began: float | None = None
        self._last_write = 0.0
        self._pending = 0
        # One cursor for every write: sqlite-utils' ``Database.execute`` makes a new cursor
        # per statement, and a page costs ~10 statements (still the archive's own cursor
        # class, so unusable-database errors are explained the same way).
        self._cursor = db.conn.cursor()
        # With ``batch_sources``, ``link_sources`` rows wait here and go in with one
        # ``executemany`` before the next other write or the commit: same rows, same
        # transaction, fewer round trips. Off for callers that wrap each item in a savepoint
        # (the distributed writer loop): a flush inside a later item's savepoint would be
        # rolled back with that item.
        self.batch_sources = batch_sources
        self._sources: list[tuple] = []
        #: Inside :meth:`one_item` (nesting depth): batches commit only between items.
        self._in_item = 0

    # -- transactions -------------------------------------------------------------------
    def _begin(self) -> None:
        if not self.db.conn.in_transaction:
            self._cursor.execute("BEGIN IMMEDIATE")
            self._began = time.monotonic()

    def _tick(self) -> None:
        self._pending += 1
        self._last_write = time.monotonic()
        if not self._in_item and self._commit_due():
            self.commit()

    def _commit_due(self) -> bool:
        return self._pending >= self.commit_every or self._overdue()

    @contextlib.contextmanager
    def one_item(self) -> Iterator[None]:
        """One item's writes, stored whole or not at all: a savepoint inside the open batch.
        An exception inside rolls back this item's rows only (the batch's earlier items stay)
        and propagates. Link sources waiting to be written go in first, so that a failing
        item cannot take them with it; the batch commits, when due, after the item."""
        self._flush_sources()
        self._begin()
        self._in_item += 1
        try:
            with self.db.atomic():
                yield
        finally:
            self._in_item -= 1
        if not self._in_item and self._commit_due():
            self.commit()

    def _overdue(self) -> bool:
        return (self.commit_seconds is not None and self._began is not None
                and time.monotonic() - self._began >= self.commit_seconds)

    def commit_if_overdue(self, idle: float = 0.0) -> bool:
        """For a timer: commit the open batch once it is ``commit_seconds`` old, or as soon as
        no item came for ``idle`` seconds. A batch committed on age alone would start again at
        the next item and hold the write lock nearly all the time; committed when the items
        pause (between a slow host's pages), the lock is free while nothing is written."""
        now = time.monotonic()
        due = self._began is not None and (self._overdue() or (idle > 0 and now - self._last_write >= idle))
        # Link sources waiting outside a transaction go in now too (a quick write of their own).
        if not due and not (self._sources and not self.db.conn.in_transaction):
            return False
        self.commit()
        return True

    def _flush_sources(self) -> None:
        if self._sources:
            rows, self._sources = self._sources, []
            self._begin()
            self._cursor.executemany(
                "INSERT OR IGNORE INTO link_sources (crawl_id, site_id, from_url, to_url, anchor_text,"
                " seen_at) VALUES (?,?,?,?,?,?)", rows)

    def commit(self) -> None:
        self._flush_sources()
        if self.db.conn.in_transaction:
            self._cursor.execute("COMMIT")
        self._pending = 0
        self._began = None

    def rollback(self) -> None:
        """Drop the uncommitted batch (after a failed write: an item is stored whole or not at all)."""
        self._sources = []
        self._pending = 0
        self._began = None
        if self.db.conn.in_transaction:
            self.db.conn.rollback()

    # -- writes -------------------------------------------------------------------------
    def record_snapshot(self, item) -> int:
        """Store the body (once per sha256) and a ``snapshots`` row; return its id."""
        self._flush_sources()
        self._begin()
        cur = self._cursor
        sha256 = item.previous_sha256 if item.not_modified and item.previous_sha256 else None
        if sha256 is None and item.body is not None:
            sha256 = store_blob(cur, item.body)
        screenshot = store_blob(cur, item.screenshot) if item.screenshot else None
        headers = item.headers or {}
        cursor = cur.execute(
            "INSERT INTO snapshots (crawl_id, site_id, url, final_url, fetched_at, status_code,"
            " content_type, headers, sha256, size, encoding, title, filename, etag, last_modified,"
            " not_modified, rendered, render_reason, screenshot_sha256, main_text, truncated)"
            " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            [item.crawl_id, item.site_id, item.url, item.final_url, item.checked_at,
             item.status_code, item.content_type, json.dumps(headers, ensure_ascii=False), sha256,
             len(item.body) if item.body is not None else None, item.encoding, item.title,
             item.filename, headers.get("etag"), headers.get("last-modified"),
             int(item.not_modified), int(item.rendered), item.render_reason, screenshot,
             item.main_text, int(getattr(item, "truncated", False))],
        )
        return int(cursor.lastrowid)

    def record_evidence(self, item) -> int:
        """A browser rendering kept as evidence: rendered HTML and a full-page PNG."""
        self._flush_sources()
        self._begin()
        cur = self._cursor
        sha256 = store_blob(cur, item.body)
        screenshot = store_blob(cur, item.screenshot)
        cursor = cur.execute(
            "INSERT INTO snapshots (crawl_id, site_id, url, final_url, fetched_at, status_code,"
            " content_type, sha256, size, rendered, render_reason, screenshot_sha256)"
            " VALUES (?,?,?,?,?,?,?,?,?,1,?,?)",
            [item.crawl_id, item.site_id, item.url, item.final_url, item.fetched_at,
             item.status_code, item.content_type, sha256, len(item.body), item.reason, screenshot],
        )
        snapshot_id = int(cursor.lastrowid)
        if getattr(item, "transferred", 0) and item.crawl_id is not None:
            # What the screenshot cost the site is part of what checking the page cost it,
            # so crawls.bytes_received (summed from the checks) includes it.
            cur.execute(
                "UPDATE link_checks SET bytes_received = COALESCE(bytes_received, 0) + ? WHERE id ="
                " (SELECT MAX(id) FROM link_checks WHERE crawl_id = ? AND url = ?)",
                [item.transferred, item.crawl_id, item.url])
        self._tick()
        return snapshot_id

    def record_check(self, item) -> tuple[int, int | None]:
        """Record one :class:`crawler.items.LinkCheck`; return (check id, snapshot id)."""
        self._flush_sources()
        self._begin()
        snapshot_id = self.record_snapshot(item) if item.body is not None else None
        reused = item.not_modified or getattr(item, "reused", False)
        bytes_received = 0 if reused else (len(item.body) if item.body is not None else None)
        if getattr(item, "transferred", None) is not None:
            bytes_received = item.transferred
        cursor = self._cursor.execute(
            "INSERT INTO link_checks (crawl_id, site_id, url, checked_at, state, status_code,"
            " elapsed_ms, final_url, redirect_chain, method, content_type, content_length,"
            " bytes_received, error, rule, snapshot_id) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            [item.crawl_id, item.site_id, item.url, item.checked_at, item.state, item.status_code,
             item.elapsed_ms, item.final_url, json.dumps(item.redirect_chain) if item.redirect_chain else None,
             item.method, item.content_type, item.content_length, bytes_received,
             item.detail if item.state not in GOOD_STATES else None, item.rule, snapshot_id],
        )
        check_id = int(cursor.lastrowid)
        self._update_link(item, check_id)
        self._tick()
        return check_id, snapshot_id

    def _update_link(self, item, check_id: int) -> LinkUpdate:
        now = item.checked_at
        row = self._cursor.execute(
            "SELECT first_seen, last_ok, broken_since, consecutive_failures, health, recovered_at,"
            " title FROM links WHERE url = ?",
            [item.url],
        ).fetchone()
        first_seen, last_ok, broken_since, failures, old_health, recovered_at, old_title = (
            row if row else (now, None, None, 0, "unknown", None, None)
        )
        became_broken = False
        if item.state in GOOD_STATES:
            if failures:
                recovered_at = now
            health, last_ok, broken_since, failures = "ok", now, None, 0
        elif item.state in INCONCLUSIVE_STATES:
            health = "inconclusive"
        elif item.state in BROKEN_STATES:
            failures += 1
            broken_since = broken_since or now
            confirmed = (failures >= self.confirm_checks
                         and _hours_between(broken_since, now) >= self.confirm_hours)
            health = "dead" if confirmed else "suspect"
            became_broken = failures == 1
        else:
            raise ValueError(f"unknown link state {item.state!r} for {item.url}")
        self._cursor.execute(
            "INSERT INTO links (url, site_id, state, status_code, content_type, final_url, title,"
            " is_external, health, first_seen, last_checked, last_ok, broken_since,"
            " consecutive_failures, recovered_at, last_check_id)"
            " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)"
            " ON CONFLICT(url) DO UPDATE SET state=excluded.state, status_code=excluded.status_code,"
            " content_type=excluded.content_type, final_url=excluded.final_url,"
            " title=COALESCE(excluded.title, links.title), is_external=excluded.is_external,"
            " health=excluded.health, last_checked=excluded.last_checked, last_ok=excluded.last_ok,"
            " broken_since=excluded.broken_since, consecutive_failures=excluded.consecutive_failures,"
            " recovered_at=excluded.recovered_at, last_check_id=excluded.last_check_id",
            [item.url, item.site_id, item.state, item.status_code, item.content_type, item.final_url,
             item.title or old_title, int(item.is_external), health, first_seen, now, last_ok,
             broken_since, failures, recovered_at, check_id],
        )
        return LinkUpdate(item.url, health, became_broken)

    def record_source(self, item) -> None:
        """Record that ``item.from_url`` links to ``item.to_url`` in this crawl (written with
        the next other write or commit, in the same transaction as before)."""
        self._begin()
        self._sources.append((item.crawl_id, item.site_id, item.from_url, item.to_url,
                              item.anchor_text, item.seen_at))
        if not self.batch_sources or len(self._sources) >= 1000:
            self._flush_sources()
        self._tick()

    def record_sources(self, items: list) -> None:
        """:meth:`record_source` for every item of a page; each counts towards ``commit_every``
        as before, but the page's rows commit together."""
        self._begin()
        self._sources.extend((i.crawl_id, i.site_id, i.from_url, i.to_url, i.anchor_text, i.seen_at)
                             for i in items)
        if not self.batch_sources or len(self._sources) >= 1000:
            self._flush_sources()
        self._pending += len(items) - 1
        self._tick()

    def record_overhead(self, item) -> None:
        """Add a :class:`crawler.items.OverheadBytes` to its crawl's ``overhead_bytes``."""
        if item.crawl_id is None or item.bytes_received <= 0:
            return
        self._flush_sources()
        self._begin()
        self._cursor.execute("UPDATE crawls SET overhead_bytes = overhead_bytes + ? WHERE id = ?",
                             [int(item.bytes_received), item.crawl_id])
        self._tick()

    def close_crawl(self, crawl_id: int, status: str, *, finish_reason: str | None = None) -> None:
        self.commit()
        finish_crawl(self.db, crawl_id, status, finish_reason=finish_reason)
        # Counted from the archive, not from this writer's memory: a distributed job's writer
        # may have been restarted during the crawl (it counted only what it wrote itself).
        self.db.execute("UPDATE crawls SET new_broken = ? WHERE id = ?",
                        [count_new_broken(self.db, crawl_id), crawl_id])
