"""Opening the archive database: WAL, busy timeouts, migrations.

One writer at a time: every write path goes through :func:`open_db`, which sets a busy
timeout so a second writer waits instead of failing with "database is locked", and WAL
mode so Datasette readers never block the crawl. A plain ``BEGIN`` (sqlite-utils'
``db.atomic()``) is run as ``BEGIN IMMEDIATE``: a deferred transaction that reads and
then writes cannot wait for a concurrent writer (SQLite answers "database is locked" at
once, whatever the busy timeout), an immediate one takes the write lock first and waits.

A database that cannot be written — a read-only file or directory, a full disk, a
corrupt file — raises :class:`DatabaseUnusable` (an :class:`ArchiveError` and a
``sqlite3.OperationalError``) with a message saying which and what to do, wherever
the write happens; the CLI turns it into exit code 3.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import shutil
import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

from sqlite_utils import Database

from archive.schema import SchemaError, apply_migrations, migrations_pending

BUSY_TIMEOUT_MS = 30_000


class ArchiveError(Exception):
    """A database problem explained for the user (read-only, disk full, not an archive)."""


class DatabaseUnusable(ArchiveError, sqlite3.OperationalError):
    """SQLite cannot write the archive (read-only, disk full, I/O error, not a database)."""


_UNUSABLE = ("SQLITE_READONLY", "SQLITE_FULL", "SQLITE_IOERR", "SQLITE_CANTOPEN", "SQLITE_NOTADB",
             "SQLITE_CORRUPT")
_PLAIN_BEGIN = re.compile(r"\s*begin(?:\s+deferred)?(?:\s+transaction)?\s*;?\s*", re.I)


def _read_only_reason(path: Path) -> str | None:
    for target in (path, path.parent):
        try:
            if os.statvfs(target).f_flag & os.ST_RDONLY:
                return f"{target} is on a read-only file system"
        except OSError:
            continue
    if path.exists() and not os.access(path, os.W_OK):
        return f"the file {path} is read-only"
    if not os.access(path.parent, os.W_OK):
        return (f"the directory {path.parent} is not writable (SQLite creates {path.name}-wal and "
                f"{path.name}-shm beside the archive)")
    for side in (path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        if side.exists() and not os.access(side, os.W_OK):
            return f"the file {side} is read-only"
    return None


def explain(exc: sqlite3.Error, path: str | Path) -> sqlite3.Error:
    """``exc`` as a :class:`DatabaseUnusable` with a clear message, or ``exc`` unchanged."""
    name = getattr(exc, "sqlite_errorname", "") or ""
    text = str(exc)
    if isinstance(exc, ArchiveError) or not (
            name.startswith(_UNUSABLE) or re.search(r"readonly|read-only|disk is full|disk i/o|"
                                                    r"unable to open|not a database|malformed", text, re.I)):
        return exc
    path = Path(path)
    if name.startswith("SQLITE_FULL") or "full" in text:
        message = (f"the disk holding archive {path} is full ({text}); free some space and run "
                   "again: what was committed before is intact")
    elif name.startswith(("SQLITE_READONLY", "SQLITE_CANTOPEN")) or "readonly" in text or "unable to open" in text:
        why = _read_only_reason(path) if path.parent.exists() else f"the directory {path.parent} does not exist"
        message = (f"archive {path} cannot be written: {why or text}"
                   + (f" ({text})" if why else ""))
    elif name.startswith(("SQLITE_NOTADB", "SQLITE_CORRUPT")) or "not a database" in text or "malformed" in text:
        message = f"{path} is not a usable archive database ({text})"
    elif _nearly_full(path):  # SQLite reports a full disk met while writing its journal as I/O
        message = (f"the disk holding archive {path} is full ({text}); free some space and run "
                   "again: what was committed before is intact")
    else:
        message = f"archive {path}: {text} (a disk or file system error)"
    return DatabaseUnusable(message)


def _nearly_full(path: Path) -> bool:
    try:
        return shutil.disk_usage(path.parent if path.parent.exists() else ".").free < 1024 * 1024
    except OSError:
        return False


def _reraise(exc: sqlite3.Error, path: str | Path) -> None:
    """Raise the explained form of ``exc`` when there is one (else return: the caller re-raises)."""
    unusable = explain(exc, path)
    if unusable is not exc:
        raise unusable from exc


class _Cursor(sqlite3.Cursor):
    def execute(self, sql: str, parameters: object = (), /) -> sqlite3.Cursor:  # type: ignore[override]
        if _PLAIN_BEGIN.fullmatch(sql):
            sql = "BEGIN IMMEDIATE"
        try:
            return super().execute(sql, parameters)  # type: ignore[arg-type]
        except sqlite3.Error as exc:
            _reraise(exc, self.connection.archive_path)  # type: ignore[attr-defined]
            raise

    def executemany(self, sql: str, seq: object, /) -> sqlite3.Cursor:  # type: ignore[override]
        try:
            return super().executemany(sql, seq)  # type: ignore[arg-type]
        except sqlite3.Error as exc:
            _reraise(exc, self.connection.archive_path)  # type: ignore[attr-defined]
            raise

    def executescript(self, script: str, /) -> sqlite3.Cursor:  # type: ignore[override]
        try:
            return super().executescript(script)
        except sqlite3.Error as exc:
            _reraise(exc, self.connection.archive_path)  # type: ignore[attr-defined]
            raise


class _Connection(sqlite3.Connection):
    """Archive connections: unusable-database errors explained, ``BEGIN`` made immediate."""

    archive_path: str = ""

    def cursor(self, factory: type = _Cursor) -> sqlite3.Cursor:  # type: ignore[override]
        return super().cursor(factory)

    def execute(self, sql: str, parameters: object = (), /) -> sqlite3.Cursor:  # type: ignore[override]
        return self.cursor().execute(sql, parameters)

    def executemany(self, sql: str, seq: object, /) -> sqlite3.Cursor:  # type: ignore[override]
        return self.cursor().executemany(sql, seq)

    def executescript(self, script: str, /) -> sqlite3.Cursor:  # type: ignore[override]
        return self.cursor().executescript(script)

    def commit(self) -> None:
        try:
            super().commit()
        except sqlite3.Error as exc:
            _reraise(exc, self.archive_path)
            raise


def utcnow() -> str:
    """Now as an ISO-8601 UTC string with second precision, the archive's time format."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@contextlib.contextmanager
def _directory_lock(path: Path) -> Iterator[None]:
    """Hold an exclusive ``flock`` on the archive's directory (other xxgk processes that
    migrate an archive there wait; nothing is created beside the archive). Without one (a
    directory we cannot open), go on unlocked: the migration then fails or races as before."""
    try:
        fd = os.open(path.parent if str(path.parent) else ".", os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        yield
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock


def open_db(path: str | Path, *, migrate: bool = True) -> Database:
    """Open (creating if needed) the archive at ``path`` and apply pending migrations."""
    if not str(path).strip():
        raise ArchiveError("the archive path is empty: give the archive's file name (e.g. xxgk.db)")
    if Path(path).is_dir():
        raise ArchiveError(f"{path} is a directory, not an archive file: give the archive's file name "
                           "(e.g. xxgk.db)")
    path = Path(path)
    # Two processes creating (or migrating) one archive at once raced: one saw the other's
    # half-made migrations table and called the file "not an xxgk archive", or its switch to
    # WAL answered "database is locked" (not retried). They take turns now.
    try:
        new = not path.exists() or path.stat().st_size == 0
    except OSError:
        new = False  # sqlite3 says what is wrong with it below
    try:
        with contextlib.ExitStack() as turn:
            if new:
                turn.enter_context(_directory_lock(path))
            conn = sqlite3.connect(str(path), timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None,
                                   factory=_Connection)
            conn.archive_path = str(path)
            conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA synchronous = NORMAL")
            conn.execute("PRAGMA foreign_keys = OFF")
            db = Database(conn)
            if migrate and migrations_pending(db):
                if not new:
                    turn.enter_context(_directory_lock(path))
                apply_migrations(db)
    except ArchiveError:
        raise
    except SchemaError as exc:
        db.conn.close()
        raise ArchiveError(f"{path}: {exc}") from exc
    except sqlite3.DatabaseError as exc:
        _reraise(exc, path)
        raise ArchiveError(f"cannot open archive {path}: {exc}") from exc
    return db


def file_identity(path: str | Path) -> tuple[int, int] | None:
    """(device, inode) of the archive file, None when it is not there: a file deleted or
    replaced (a backup restored) while a crawl writes has another identity, or none."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_dev, st.st_ino


def changed_since(path: str | Path, identity: tuple[int, int] | None) -> str | None:
    """How the archive file at ``path`` changed since ``identity`` was taken, or None."""
    now = file_identity(path)
    if now == identity:
        return None
    return "was deleted" if now is None else "was replaced by another file"
