"""Run one crawl of some registry sites: ``scrapy crawl portal`` in a subprocess.

The Twisted reactor cannot restart inside one process, and a crashed crawl must not take
its caller (the CLI or the scheduler) down with it, so every crawl is a child process.
The parent owns the ``crawls`` rows: it creates them before the child starts and closes
any the child could not (a crash, a kill), so every run is accounted for.
"""

from __future__ import annotations

import ast
import contextlib
import os
import re
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from sqlite_utils import Database

from archive.db import ArchiveError, changed_since, file_identity, open_db
from archive.store import PROCESSING_ERRORS, finish_crawl, mark_abandoned_crawls, start_crawl, upsert_sites
from crawler.extensions import PARENT_GONE_SIGNAL
from schedules.registry import Site

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def _die_with_parent() -> None:
    """Linux: stop the crawl if its parent dies, so no orphan crawls on after a kill (the
    crawl closes gracefully on the first such signal: crawler.extensions.StopWhenParentDies)."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, PARENT_GONE_SIGNAL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


@dataclass
class CrawlResult:
    crawl_ids: dict[str, int]
    exit_code: int
    log_path: Path
    #: Final ``crawls.status`` per site id.
    statuses: dict[str, str] = field(default_factory=dict)
    #: The crawl was stopped before its end: Ctrl-C, a signal to the child (Scrapy closes
    #: with reason ``shutdown``), or the ``timeout``. Its rows say ``incomplete``.
    interrupted: bool = False
    #: Some pages or items could not be processed (their rows say ``incomplete``, reason
    #: ``processing_errors: ...``): what the crawl checked is archived, but not everything.
    unprocessed: bool = False

    @property
    def ok(self) -> bool:
        """The process exited 0, was not interrupted, and no crawl row says it failed (Scrapy
        exits 0 even when the pipeline closed the spider because the archive could not be
        written, and after a graceful stop)."""
        return (self.exit_code == 0 and not self.interrupted and not self.unprocessed
                and "failed" not in self.statuses.values())


def log_dir_for(db_path: Path) -> Path:
    return db_path.with_name(db_path.name + ".logs")


def run_crawl(sites: list[Site], *, db_path: str | Path, registry_path: str | Path,
              settings: dict[str, str] | None = None, env: dict[str, str] | None = None,
              scheduled_at: str | None = None, echo: bool = False,
              timeout: float | None = None) -> CrawlResult:
    """Crawl ``sites`` into ``db_path`` in a child ``scrapy crawl`` process and wait for it."""
    from crawler.proxy import check_proxy_environment

    # Before any crawl row (the scheduler comes here without `xxgk crawl`'s own check): a
    # proxy the crawler or its browser cannot use fails every request (ProxyConfigError).
    check_proxy_environment({**os.environ, **(env or {})})
    db_path = Path(db_path).resolve()
    db = open_db(db_path)
    identity = file_identity(db_path)
    mark_abandoned_crawls(db)
    upsert_sites(db, [site.to_row() for site in sites])
    logs = log_dir_for(db_path)
    try:
        logs.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ArchiveError(f"cannot create the crawl log directory {logs}: {exc.strerror or exc}") from exc
    crawl_ids = {site.id: start_crawl(db, site.id, pid=None, scheduled_at=scheduled_at) for site in sites}
    try:
        process, log_path = _start_child(db, crawl_ids, db_path, registry_path, settings, env, echo)
    except BaseException as exc:
        # The rows exist, with this process's pid: close them whatever went wrong (a busy or
        # full archive, a failing preexec_fn, Ctrl-C), or they would say "running" for as long
        # as this process lives (the scheduler's: every later crawl of the site refused).
        with contextlib.suppress(Exception):
            for crawl_id in crawl_ids.values():
                finish_crawl(db, crawl_id, "failed",
                             finish_reason=f"the crawler could not start: {type(exc).__name__}: {exc}")
        db.conn.close()
        if isinstance(exc, OSError):
            raise ArchiveError(f"the crawl could not start: {exc}") from exc
        raise
    interrupted = False
    try:
        exit_code = process.wait(timeout=timeout)
    except (KeyboardInterrupt, subprocess.TimeoutExpired):
        interrupted = True
        # Let Scrapy close cleanly (it flushes the pipeline), then insist.
        process.send_signal(signal.SIGINT)
        try:
            exit_code = process.wait(timeout=60)
        except (KeyboardInterrupt, subprocess.TimeoutExpired):  # a second Ctrl-C insists too
            process.kill()
            exit_code = process.wait()
    changed = changed_since(db_path, identity)
    if changed:  # the rows are in the old file: nothing to close, nothing to add to the new one
        db.conn.close()
        raise ArchiveError(f"the archive {db_path} {changed} while the crawl ran: the crawl's results"
                           f" went to the old file and are not in it (log: {log_path})")
    statuses: dict[str, str] = {}
    unprocessed = False
    for site_id, crawl_id in crawl_ids.items():
        status, reason = db.execute("SELECT status, finish_reason FROM crawls WHERE id = ?", [crawl_id]).fetchone()
        interrupted = interrupted or (status == "incomplete" and reason == "shutdown")
        unprocessed = unprocessed or (status == "incomplete" and (reason or "").startswith(PROCESSING_ERRORS))
        if status == "running":
            status = "killed" if exit_code < 0 else "failed"
            finish_crawl(db, crawl_id, status, exit_code=exit_code,
                         finish_reason=f"crawler process exited with {exit_code}")
        else:
            db.execute("UPDATE crawls SET exit_code = ? WHERE id = ?", [exit_code, crawl_id])
        statuses[site_id] = status
    db.conn.close()
    return CrawlResult(crawl_ids, exit_code, log_path, statuses, interrupted, unprocessed)


def _start_child(db: Database, crawl_ids: dict[str, int], db_path: Path,
                 registry_path: str | Path, settings: dict[str, str] | None,
                 env: dict[str, str] | None, echo: bool) -> tuple[subprocess.Popen, Path]:
    """Start ``scrapy crawl`` for the opened crawl rows; (process, log path). OSError when
    the log cannot be written or the process not started."""
    logs = log_dir_for(db_path)
    first = min(crawl_ids.values())
    log_path = logs / f"crawl-{first}.log"
    db.execute(
        f"UPDATE crawls SET log_path = ? WHERE id IN ({','.join('?' * len(crawl_ids))})",
        [str(log_path), *crawl_ids.values()],
    )
    command = [
        sys.executable, "-m", "scrapy", "crawl", "portal",
        "-a", f"registry={Path(registry_path).resolve()}",
        "-a", f"sites={','.join(crawl_ids)}",
        "-a", "crawls=" + ",".join(f"{k}:{v}" for k, v in crawl_ids.items()),
        "-s", f"XXGK_DB={db_path}",
    ]
    for name, value in (settings or {}).items():
        command += ["-s", f"{name}={value}"]
    child_env = {**os.environ, **(env or {}), "SCRAPY_SETTINGS_MODULE": "crawler.settings"}
    # crawler/settings.py derives Scrapy settings (DOWNLOAD_TIMEOUT, ...) from XXGK_* values
    # at import time, so those travel as environment variables too.
    child_env.update({k: str(v) for k, v in (settings or {}).items() if k.startswith("XXGK_")})
    child_env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(PROJECT_ROOT), child_env.get("PYTHONPATH")]))
    # Everything the child prints (Scrapy's log, and any traceback before logging starts)
    # goes to the crawl's log file, named on its crawls rows.
    log_file = None if echo else open(log_path, "ab")
    try:
        process = subprocess.Popen(command, cwd=PROJECT_ROOT, env=child_env, stdout=log_file,
                                   stderr=subprocess.STDOUT if log_file else None,
                                   start_new_session=True, preexec_fn=_die_with_parent)
    finally:
        if log_file:
            log_file.close()
    try:
        db.execute(
            f"UPDATE crawls SET pid = ? WHERE id IN ({','.join('?' * len(crawl_ids))})",
            [process.pid, *crawl_ids.values()],
        )
    except BaseException:
        # Nobody would wait for a child whose rows cannot say it runs: stop it.
        process.kill()
        process.wait()
        raise
    return process, log_path


def crawl_stats(log_path: str | Path) -> dict:
    """The stats Scrapy dumped at the end of a crawl's log ({} if it never got there)."""
    text = Path(log_path).read_text("utf-8", "replace")
    start = text.rfind("Dumping Scrapy stats:")
    if start < 0:
        return {}
    dump = text[start:]
    try:
        body = dump[dump.index("{"): dump.index("}") + 1]
        # datetime(...) values are not literals; nobody reads them from here
        return ast.literal_eval(re.sub(r"datetime\.datetime\([^)]*\)", "None", body))
    except (ValueError, SyntaxError):
        return {}
