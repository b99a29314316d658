"""Opening the archive database: WAL, busy timeouts, migrations.

One writer at a time: every write path goes through :func:`open_db`, which sets a busy
timeout so a second writer waits instead of failing with "database is locked", and WAL
mode so Datasette readers never block the crawl.
"""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from pathlib import Path

from sqlite_utils import Database

from archive.schema import apply_migrations

BUSY_TIMEOUT_MS = 30_000


class ArchiveError(Exception):
    """A database problem explained for the user (read-only, disk full, not an archive)."""


def utcnow() -> str:
    """Now as an ISO-8601 UTC string with second precision, the archive's time format."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def open_db(path: str | Path, *, migrate: bool = True) -> Database:
    """Open (creating if needed) the archive at ``path`` and apply pending migrations."""
    path = Path(path)
    try:
        conn = sqlite3.connect(str(path), timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None)
        conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = NORMAL")
        conn.execute("PRAGMA foreign_keys = OFF")
        db = Database(conn)
        if migrate:
            apply_migrations(db)
    except sqlite3.DatabaseError as exc:
        raise ArchiveError(f"cannot open archive {path}: {exc}") from exc
    return db
