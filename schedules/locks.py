"""Per-site crawl locks that hold across processes.

A site's crawl must never start while its previous crawl is still running, whether that
crawl was started by the scheduler, by another scheduler process or by ``xxgk schedule
run-once``. Each site has a lock file next to the archive database::

    <db>.locks/<site_id>.lock

held with ``fcntl.flock(LOCK_EX)`` for the whole job (crawl and post-crawl work). The
kernel releases the lock when its holder exits, however it exits, so there are no stale
locks to clean up. The holder writes its pid into the file, for messages only.

Settings: none; the lock directory follows ``--db``. Lock files are never deleted (deleting
a flock'ed file races with other openers); they are empty-ish and harmless.

Limitations: ``flock`` is advisory and POSIX-only, and unreliable on some network file
systems (keep the database on a local disk, as SQLite's WAL mode requires anyway).
"""

from __future__ import annotations

import fcntl
import os
import time
from pathlib import Path
from types import TracebackType


def lock_dir_for(db_path: str | Path) -> Path:
    """The directory holding the site lock files of the archive at ``db_path``."""
    db_path = Path(db_path).resolve()
    return db_path.with_name(db_path.name + ".locks")


#: :meth:`SiteLock.is_locked` takes the lock for a moment to test it: a job asking at that
#: very moment without waiting tries again for this long before calling the site busy (a
#: real holder keeps the lock for a whole crawl), so ``xxgk schedule status`` never makes a
#: starting crawl skip its run.
PROBE_GRACE = 0.2


class LockBusy(RuntimeError):
    """The site's lock is held by another job (``holder`` is its pid when known)."""

    def __init__(self, site_id: str, holder: int | None) -> None:
        who = f" by pid {holder}" if holder else ""
        super().__init__(f"site {site_id!r} is already being crawled (lock held{who})")
        self.site_id = site_id
        self.holder = holder


class SiteLock:
    """An exclusive, cross-process lock on one site's crawls.

    Use ``acquire()`` / ``release()`` or the context manager (which raises
    :class:`LockBusy` instead of waiting). Two ``SiteLock`` objects for the same site
    exclude each other even inside one process (``flock`` locks belong to open files).
    """

    def __init__(self, db_path: str | Path, site_id: str) -> None:
        self.site_id = site_id
        self.path = lock_dir_for(db_path) / f"{site_id}.lock"
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        """Whether this object holds the lock."""
        return self._fd is not None

    def acquire(self, *, blocking: bool = False, timeout: float | None = None,
                poll: float = 0.2) -> bool:
        """Take the lock; return False if it is busy (after ``timeout`` when blocking, after
        :data:`PROBE_GRACE` when not)."""
        if self._fd is not None:
            raise RuntimeError(f"lock {self.path} is already held by this object")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        if not blocking:
            timeout, poll = PROBE_GRACE, min(poll, 0.01)
        deadline = None if timeout is None else time.monotonic() + timeout
        try:
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if deadline is not None and time.monotonic() >= deadline:
                        os.close(fd)
                        return False
                    time.sleep(poll)
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        except BaseException:
            os.close(fd)
            raise
        self._fd = fd
        return True

    def release(self) -> None:
        """Release the lock (a no-op when not held)."""
        fd, self._fd = self._fd, None
        if fd is None:
            return
        try:
            os.ftruncate(fd, 0)
            fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)

    def holder(self) -> int | None:
        """The pid recorded by the current (or last) holder, if any."""
        try:
            text = self.path.read_text().strip()
        except OSError:
            return None
        return int(text) if text.isdigit() else None

    def is_locked(self) -> bool:
        """Whether some other job holds the lock right now (probes without keeping it)."""
        if self._fd is not None:
            return True
        if not self.path.exists():
            return False
        fd = os.open(self.path, os.O_RDWR | os.O_CLOEXEC)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        finally:
            os.close(fd)  # closing releases a probe lock we may have taken
        return False

    def __enter__(self) -> SiteLock:
        if not self.acquire():
            raise LockBusy(self.site_id, self.holder())
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.release()
