"""The crawl scheduler: one APScheduler cron job per registry site, each crawl a subprocess.

:class:`Scheduler` runs every site whose registry entry has a ``schedule`` (a standard
5-field cron expression, read in the scheduler's time zone, Asia/Shanghai by default) and
records every run in the ``crawls`` table (through :func:`xxgk.runcrawl.run_crawl`, which
owns those rows; ``scheduled_at`` is the job's fire time, ISO-8601 UTC). It is what
``xxgk schedule run`` starts (see :mod:`schedules.cli`).

Guarantees
----------
* **Crawls are subprocesses.** The Twisted reactor cannot restart in-process, and a crashed
  crawl (or a crawl runner raising) is logged as a failed run; the scheduler carries on.
* **No overlaps.** A site's job has ``max_instances=1`` and holds the site's cross-process
  lock (:mod:`schedules.locks`, ``<db>.locks/<site>.lock``) for the whole run, so neither
  ``xxgk schedule run-once`` in another process (refused, or ``--wait``) nor a second
  scheduler can start an overlapping crawl. A
  ``running`` row with a live pid (e.g. a plain ``xxgk crawl`` of that site) also blocks.
  A run that finds the site busy is skipped (logged, outcome ``busy``), not queued.
* **Bounded concurrency.** At most ``max_concurrent`` crawls run at once across sites; the
  others wait in the pool's queue (waiting there does not count against the grace time).
* **Missed runs.** ``coalesce=True`` folds a backlog into one run; a run later than
  ``misfire_grace_time`` seconds after its fire time is skipped. At start-up each site whose
  latest fire time lies within the grace time and has no crawl started since is run at
  once (the crawls table stands in for a persistent job store), so a restart or a
  short downtime does not lose the week's crawl.
* **Abandoned runs.** At start-up, ``running`` rows whose process is gone become
  ``incomplete`` (:func:`archive.store.mark_abandoned_crawls`).
* **Graceful stop** (SIGTERM/SIGINT, or :meth:`Scheduler.stop`). No new job starts; what is
  queued is dropped. ``stop_mode="interrupt"`` (default) sends the running crawls SIGINT
  (Scrapy then closes cleanly: pending items are written and the crawl row closed) and
  waits up to ``stop_timeout`` seconds before SIGKILL; ``stop_mode="finish"`` lets them
  finish. Each further signal escalates one step (finish → interrupt → kill). Post-crawl
  work (:func:`archive.postcrawl.after_crawl`) completes before exit.
* **Live reload.** SIGHUP, :meth:`Scheduler.reload`, or a change of the registry file
  (mtime/size/inode, checked every ``reload_interval`` seconds) re-reads the registry and
  adds, removes and reschedules jobs. A bad registry (:class:`RegistryError`) is rejected
  as a whole and logged; the previous schedule keeps running. Crawls read the registry
  from a snapshot of the last accepted version (``<db>.locks/registry-<sha256>.toml``), so
  a bad edit cannot break them either.

Settings (constructor arguments; ``xxgk schedule run`` options in brackets)
--------------------------------------------------------------------------
``registry_path`` [--registry], ``db_path`` [--db], ``timezone`` [--timezone,
Asia/Shanghai], ``max_concurrent`` [--max-concurrent, 2], ``misfire_grace_time``
[--misfire-grace-time, 21600 s], ``coalesce`` [--no-coalesce], ``reload_interval``
[--reload-interval, 5 s], ``stop_mode`` [--on-stop, interrupt], ``stop_timeout``
[--stop-timeout, 600 s], ``settings`` [-s NAME=VALUE, passed to every crawl].
For tests: ``crawl_runner`` (a callable with :func:`~xxgk.runcrawl.run_crawl`'s
signature; it must record the child's pid in its crawl rows, as run_crawl does, for
interrupts to reach it) and ``trigger_factory`` (``(expr, tzinfo) -> trigger``; e.g.
:func:`extended_cron_trigger` allows a 6-field, seconds-first cron).

Cron note: registry schedules follow standard cron, where day-of-week 0 and 7 are Sunday
and 1 is Monday. APScheduler 3's ``CronTrigger.from_crontab`` counts 0 as *Monday*, so
:func:`cron_trigger` translates the day-of-week field before building the trigger. Also as
cron does, a schedule with a fixed hour runs once in the hour a daylight-saving change
repeats (``30 2 * * *`` under Europe/Berlin fired at both 02:30 of the autumn day). When both
the day of month and the day of week are restricted (neither starts with ``*``), a day
matching either runs, as in cron: ``0 3 1 * 1`` runs on the 1st and on every Monday.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import math
import os
import signal
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, tzinfo
from pathlib import Path
from traceback import format_tb
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from apscheduler.events import (
    EVENT_JOB_ERROR,
    EVENT_JOB_EXECUTED,
    EVENT_JOB_MISSED,
    EVENT_SCHEDULER_STARTED,
    JobExecutionEvent,
)
from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.schedulers.base import BaseScheduler
from apscheduler.schedulers.blocking import BlockingScheduler
from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.combining import OrTrigger
from apscheduler.triggers.cron import CronTrigger

from archive.db import ArchiveError, open_db
from archive.store import mark_abandoned_crawls, pid_alive, running_crawl
from schedules.locks import SiteLock, lock_dir_for
from schedules.registry import RegistryError, Site, load_registry, parse_registry

logger = logging.getLogger("xxgk.scheduler")

DEFAULT_TIMEZONE = "Asia/Shanghai"
DEFAULT_MAX_CONCURRENT = 2
DEFAULT_MISFIRE_GRACE = 6 * 3600
DEFAULT_RELOAD_INTERVAL = 5.0
DEFAULT_STOP_TIMEOUT = 600.0
#: The longest misfire grace time (10 years): longer ones overflowed date arithmetic.
MAX_MISFIRE_GRACE = 10 * 365 * 86400
STOP_MODES = ("interrupt", "finish")

# Stop levels: how hard running crawls are being stopped.
_RUNNING, _FINISH, _INTERRUPT, _KILL = 0, 1, 2, 3

CrawlRunner = Callable[..., Any]
"""``(sites, *, db_path, registry_path, settings, scheduled_at) -> CrawlResult``-like
(``.crawl_ids: dict[str, int]``, ``.exit_code: int``), e.g. :func:`xxgk.runcrawl.run_crawl`."""

TriggerFactory = Callable[[str, tzinfo], BaseTrigger]
"""Build the trigger of a registry ``schedule`` expression in a time zone."""


# --------------------------------------------------------------------------- triggers

_CRON_WEEKDAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")


def _weekday_number(token: str) -> int:
    token = token.strip().lower()
    if token in _CRON_WEEKDAYS:
        return _CRON_WEEKDAYS.index(token)
    if token.isdigit() and 0 <= int(token) <= 7:
        return int(token)
    raise ValueError(f"bad day of week {token!r}")


def crontab_day_of_week(expr: str) -> str:
    """Translate a standard cron day-of-week field (0/7 = Sunday) to APScheduler 3 names."""
    if expr.strip() == "*":
        return "*"
    days: set[int] = set()
    for part in expr.split(","):
        span, _, step_text = part.partition("/")
        step = int(step_text) if step_text else 1
        if step < 1:
            raise ValueError(f"bad step in day of week {expr!r}")
        if span == "*":
            low, high = 0, 6
        elif "-" in span:
            first, last = span.split("-", 1)
            low, high = _weekday_number(first), _weekday_number(last)
        else:
            low = _weekday_number(span)
            high = 6 if step_text else low
        if low > high:
            raise ValueError(f"bad range in day of week {expr!r}")
        days.update(day % 7 for day in range(low, high + 1, step))
    return ",".join(_CRON_WEEKDAYS[day] for day in sorted(days))


class OnceInRepeatedHour(BaseTrigger):
    """A trigger that fires once at a wall-clock time the autumn change shows twice (the
    first time), as cron does for schedules with a fixed hour; other fire times as ``inner``."""

    def __init__(self, inner: BaseTrigger) -> None:
        self.inner = inner

    def get_next_fire_time(self, previous_fire_time: datetime | None, now: datetime) -> datetime | None:
        fire = self.inner.get_next_fire_time(previous_fire_time, now)
        # (aware times of one zone compare by wall clock, fold ignored: compare in UTC)
        while (fire is not None and previous_fire_time is not None
               and fire.astimezone(UTC) != previous_fire_time.astimezone(UTC)
               and fire.replace(tzinfo=None) == previous_fire_time.replace(tzinfo=None)):
            fire = self.inner.get_next_fire_time(fire, fire.astimezone(UTC) + timedelta(microseconds=1))
        return fire

    def __str__(self) -> str:
        return str(self.inner)

    def __repr__(self) -> str:
        return f"<OnceInRepeatedHour {self.inner!r}>"


def _days_trigger(day: str, day_of_week: str, tz: tzinfo, **fields: str) -> BaseTrigger:
    """A CronTrigger, or, as standard (Vixie) cron does when both the day of month and the
    day of week are restricted (neither starts with ``*``), the OR of the two: ``0 3 1 * 1``
    fires on the 1st of each month and on every Monday, not only on Mondays that are the 1st."""
    weekdays = crontab_day_of_week(day_of_week)
    if day.startswith("*") or day_of_week.startswith("*"):
        return CronTrigger(day=day, day_of_week=weekdays, timezone=tz, **fields)
    return OrTrigger([CronTrigger(day=day, day_of_week="*", timezone=tz, **fields),
                      CronTrigger(day="*", day_of_week=weekdays, timezone=tz, **fields)])


def cron_trigger(expr: str, tz: tzinfo) -> BaseTrigger:
    """The trigger of a standard 5-field cron expression (the registry's contract)."""
    fields = expr.split()
    if len(fields) != 5:
        raise ValueError(f"Wrong number of fields; got {len(fields)}, expected 5")
    minute, hour, day, month, day_of_week = fields
    trigger = _days_trigger(day, day_of_week, tz, minute=minute, hour=hour, month=month)
    return trigger if hour == "*" else OnceInRepeatedHour(trigger)


def extended_cron_trigger(expr: str, tz: tzinfo) -> BaseTrigger:
    """Like :func:`cron_trigger`, also accepting 6 fields with seconds first (for tests).

    ``"*/2 * * * * *"`` fires every two seconds. The registry itself only accepts 5 fields;
    pass this as ``trigger_factory`` (possibly after mapping registry expressions).
    """
    fields = expr.split()
    if len(fields) == 5:
        return cron_trigger(expr, tz)
    if len(fields) != 6:
        raise ValueError(f"Wrong number of fields; got {len(fields)}, expected 5 or 6")
    second, minute, hour, day, month, day_of_week = fields
    return _days_trigger(day, day_of_week, tz, second=second, minute=minute, hour=hour, month=month)


def resolve_timezone(name: str | tzinfo) -> tzinfo:
    """A time zone from an IANA name; ``ValueError`` when unknown."""
    if isinstance(name, tzinfo):
        return name
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError) as exc:  # OSError: "Asia" is a directory
        raise ValueError(f"unknown time zone {name!r}") from exc


def latest_fire_time(trigger: BaseTrigger, now: datetime, window: float,
                     limit: int = 100_000) -> datetime | None:
    """The trigger's last fire time in ``(now - window, now]``, if any.

    Arithmetic and comparisons in UTC: local times of one zone compare by wall clock (Python
    ignores ``fold``), so across a DST change the window was an hour off and, on the
    fall-back day, the second 02:30 kept coming back until ``limit``.
    """
    now = now.astimezone(UTC)
    start = now - timedelta(seconds=window)
    latest = None
    fire = trigger.get_next_fire_time(None, start)
    for _ in range(limit):
        if fire is None or fire.astimezone(UTC) > now:
            break
        latest = fire
        fire = trigger.get_next_fire_time(fire, fire.astimezone(UTC) + timedelta(microseconds=1))
    return latest


def iso_utc(moment: datetime) -> str:
    """The archive's time format: ISO-8601 UTC, second precision."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# --------------------------------------------------------------------------- executor


def _run_job(job: Any, jobstore_alias: str, run_times: list[datetime], logger_name: str,
             submitted: datetime) -> list[JobExecutionEvent]:
    """APScheduler's ``run_job``, passing ``scheduled_time`` to the job and measuring the
    misfire grace time at submission (time spent queued for a free worker does not count)."""
    events = []
    log = logging.getLogger(logger_name)
    for run_time in run_times:
        if job.misfire_grace_time is not None:
            late = submitted - run_time
            if late > timedelta(seconds=job.misfire_grace_time):
                events.append(JobExecutionEvent(EVENT_JOB_MISSED, job.id, jobstore_alias, run_time))
                log.warning('Run time of job "%s" was missed by %s', job, late)
                continue
        try:
            retval = job.func(*job.args, scheduled_time=run_time, **job.kwargs)
        except BaseException as exc:
            events.append(JobExecutionEvent(EVENT_JOB_ERROR, job.id, jobstore_alias, run_time,
                                            exception=exc, traceback="".join(format_tb(exc.__traceback__))))
            log.exception('Job "%s" raised an exception', job)
        else:
            events.append(JobExecutionEvent(EVENT_JOB_EXECUTED, job.id, jobstore_alias, run_time,
                                            retval=retval))
    return events


class _CrawlExecutor(ThreadPoolExecutor):
    """A thread pool (``max_workers`` = the concurrency cap) that tells jobs their fire time."""

    def _do_submit_job(self, job: Any, run_times: list[datetime]) -> None:
        submitted = datetime.now(UTC)

        def callback(future: Any) -> None:
            exc = future.exception()
            if exc:
                self._run_job_error(job.id, exc, exc.__traceback__)
            else:
                self._run_job_success(job.id, future.result())

        future = self._pool.submit(_run_job, job, job._jobstore_alias, run_times,
                                   self._logger.name, submitted)
        future.add_done_callback(callback)


# --------------------------------------------------------------------------- results


@dataclass
class JobResult:
    """What one run of a site's job did.

    ``outcome``: ``finished`` (crawl exit code 0), ``failed`` (non-zero exit, or post-crawl
    work failed), ``error`` (the crawl runner raised; ``archive_unusable`` when that was the
    archive: read-only, full, corrupt), ``busy`` (the site was already being crawled),
    ``skipped`` (stopping, or the site left the registry).
    """

    site_id: str
    outcome: str
    scheduled_at: str | None = None
    exit_code: int | None = None
    crawl_ids: dict[str, int] = field(default_factory=dict)
    message: str = ""
    archive_unusable: bool = False

    @property
    def ok(self) -> bool:
        return self.outcome == "finished"


@dataclass
class SiteStatus:
    """A site's line in ``xxgk schedule list``."""

    site_id: str
    name: str
    schedule: str | None
    next_run: datetime | None
    last_crawl: dict[str, Any] | None
    running: bool


# --------------------------------------------------------------------------- scheduler


class Scheduler:
    """Cron-scheduled crawls of the registry's sites (see the module docstring).

    ``start()`` runs in background threads (embedding, tests); ``run_forever()`` blocks the
    main thread on an APScheduler ``BlockingScheduler``, handles SIGTERM/SIGINT/SIGHUP and
    returns 0 after a graceful stop. ``run_site()`` runs one site's job now, synchronously,
    through the same code path (locks, crawl rows, post-crawl work).
    """

    def __init__(self, registry_path: str | Path, db_path: str | Path, *,
                 timezone: str | tzinfo = DEFAULT_TIMEZONE,
                 max_concurrent: int = DEFAULT_MAX_CONCURRENT,
                 misfire_grace_time: int = DEFAULT_MISFIRE_GRACE,
                 coalesce: bool = True,
                 reload_interval: float = DEFAULT_RELOAD_INTERVAL,
                 stop_mode: str = "interrupt",
                 stop_timeout: float | None = DEFAULT_STOP_TIMEOUT,
                 settings: dict[str, str] | None = None,
                 crawl_runner: CrawlRunner | None = None,
                 trigger_factory: TriggerFactory = cron_trigger) -> None:
        if max_concurrent < 1:
            raise ValueError("max_concurrent must be at least 1")
        if not 1 <= misfire_grace_time <= MAX_MISFIRE_GRACE:
            raise ValueError(f"misfire_grace_time must be 1..{MAX_MISFIRE_GRACE} seconds")
        if not (math.isfinite(reload_interval) and reload_interval > 0):
            raise ValueError("reload_interval must be a finite number of seconds above 0")
        if stop_timeout is not None and not (math.isfinite(stop_timeout) and stop_timeout >= 0):
            raise ValueError("stop_timeout must be a finite number of seconds (or None)")
        if stop_mode not in STOP_MODES:
            raise ValueError(f"stop_mode must be one of {', '.join(STOP_MODES)}")
        self.registry_path = Path(registry_path)
        self.db_path = Path(db_path).resolve()
        self.timezone = resolve_timezone(timezone)
        self.max_concurrent = max_concurrent
        self.misfire_grace_time = misfire_grace_time
        self.coalesce = coalesce
        self.reload_interval = reload_interval
        self.stop_mode = stop_mode
        self.stop_timeout = stop_timeout
        self.settings = dict(settings or {})
        if crawl_runner is None:
            from xxgk.runcrawl import run_crawl

            crawl_runner = run_crawl
        self.crawl_runner = crawl_runner
        self.trigger_factory = trigger_factory

        self.sites: dict[str, Site] = {}
        self.registry_snapshot: Path | None = None  # the accepted registry, as crawls read it
        self.last_reload_error: str | None = None
        self._schedules: dict[str, str] = {}  # site id -> schedule expression of its job
        self._registry_stamp: tuple[int, int, int] | None = None
        self._aps: BaseScheduler | None = None
        self._results: list[JobResult] = []
        self._active: Counter[str] = Counter()
        self._cond = threading.Condition()
        self._wake = threading.Event()
        self._reload_lock = threading.RLock()
        self._reload_requested = False
        self._stop_level = _RUNNING
        self._controller: threading.Thread | None = None
        self._started = False
        self._drained = False

    # ------------------------------------------------------------------ public API

    @property
    def stopping(self) -> bool:
        """Whether a stop was requested (no new job starts)."""
        return self._stop_level > _RUNNING

    @property
    def results(self) -> list[JobResult]:
        """The results of the jobs run so far, oldest first (a copy)."""
        with self._cond:
            return list(self._results)

    def running_sites(self) -> list[str]:
        """The sites whose job is in progress in this process."""
        with self._cond:
            return sorted(self._active)

    def load(self) -> list[Site]:
        """Read and validate the registry, building each trigger; raise :class:`RegistryError`."""
        return self._read_registry()[0]

    def load_sites(self) -> list[Site]:
        """Read, validate and adopt the registry's sites without scheduling them (for ``run_site``)."""
        sites, raw = self._read_registry()
        self._adopt(sites, raw)
        return sites

    def _read_registry(self) -> tuple[list[Site], bytes]:
        path = self.registry_path
        try:
            raw = path.read_bytes()
        except OSError as exc:
            raise RegistryError(f"{path}: cannot read registry: {exc.strerror or exc}") from exc
        try:
            text = raw.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise RegistryError(f"{path}: registry is not UTF-8 text ({exc})") from exc
        sites = parse_registry(text, str(path))
        for site in sites:  # every trigger must build before anything is applied
            if site.schedule:
                try:
                    self.trigger_factory(site.schedule, self.timezone)
                except ValueError as exc:
                    raise RegistryError(f"{path}: site {site.id!r}: field 'schedule' "
                                        f"{site.schedule!r} cannot be scheduled: {exc}") from exc
        return sites, raw

    def _adopt(self, sites: list[Site], raw: bytes) -> None:
        """Make ``sites`` current; crawls read the accepted registry from a snapshot file, so a
        later bad edit of the registry cannot break them."""
        snapshot = lock_dir_for(self.db_path) / f"registry-{hashlib.sha256(raw).hexdigest()[:16]}.toml"
        if not snapshot.exists():
            partial = snapshot.with_name(f".{snapshot.name}.{os.getpid()}.{threading.get_ident()}")
            try:
                snapshot.parent.mkdir(parents=True, exist_ok=True)
                partial.write_bytes(raw)
                os.replace(partial, snapshot)
            except OSError as exc:
                with contextlib.suppress(OSError):
                    partial.unlink(missing_ok=True)
                raise ArchiveError(f"cannot keep the registry's snapshot beside the archive, in "
                                   f"{snapshot.parent}: {exc.strerror or exc}") from exc
        self.registry_snapshot = snapshot
        self.sites = {site.id: site for site in sites}

    def start(self) -> None:
        """Start scheduling in background threads and return (see :meth:`stop`)."""
        self._prepare(BackgroundScheduler)
        assert self._aps is not None
        self._aps.start()

    def run_forever(self, *, handle_signals: bool = True) -> int:
        """Schedule in the foreground until SIGTERM/SIGINT (or :meth:`request_stop`); return 0.

        With ``handle_signals`` (main thread only), SIGTERM and SIGINT stop gracefully and
        SIGHUP reloads the registry; previous handlers are restored on return.
        """
        previous: dict[int, Any] = {}
        if handle_signals:
            # Before _prepare (seconds on a big registry): a signal during start-up is handled
            # as later (a stop, or a reload once started), instead of killing the process.
            for signum in (signal.SIGTERM, signal.SIGINT):
                previous[signum] = signal.signal(signum, self._on_stop_signal)
            previous[signal.SIGHUP] = signal.signal(signal.SIGHUP, self._on_reload_signal)
        try:
            self._prepare(BlockingScheduler)
            assert self._aps is not None
            try:
                if self.stopping:
                    logger.info("stop requested while starting: no crawls will start")
                else:
                    self._aps.start()  # blocks until the controller shuts it down
            finally:
                if self._stop_level == _RUNNING:  # APScheduler ended on its own (an error)
                    self._stop_level = _INTERRUPT if self.stop_mode == "interrupt" else _FINISH
                self._finish_stop()
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)
        logger.info("scheduler stopped")
        return 0

    def request_stop(self, mode: str | None = None) -> None:
        """Ask the scheduler to stop (safe from signal handlers); :meth:`stop` also waits."""
        level = _FINISH if (mode or self.stop_mode) == "finish" else _INTERRUPT
        self._stop_level = max(self._stop_level, level)
        self._wake.set()

    def stop(self, mode: str | None = None) -> None:
        """Stop a :meth:`start`-ed scheduler gracefully and wait for running crawls."""
        self.request_stop(mode)
        self._finish_stop()

    def request_reload(self) -> None:
        """Ask the controller thread to reload the registry soon (safe from signal handlers)."""
        self._reload_requested = True
        self._wake.set()

    def reload(self) -> bool:
        """Re-read the registry and apply it; on a bad registry log, keep the old jobs, return False."""
        with self._reload_lock:
            self._registry_stamp = self._stamp()
            try:
                sites, raw = self._read_registry()
            except RegistryError as exc:
                self.last_reload_error = str(exc)
                logger.error("registry change rejected, keeping the previous schedule: %s", exc)
                return False
            try:
                self._apply(sites, raw, catch_up=False)  # _adopt first: nothing changed if it fails
            except ArchiveError as exc:
                self.last_reload_error = str(exc)
                logger.error("registry change not applied, keeping the previous schedule: %s", exc)
                return False
            self.last_reload_error = None
            return True

    def next_run_times(self) -> dict[str, datetime | None]:
        """Each scheduled site's next fire time (None while paused or before start)."""
        if self._aps is None:
            return {}
        return {job.id: getattr(job, "next_run_time", None) for job in self._aps.get_jobs()}

    def run_site(self, site_id: str, *, scheduled_at: str | None = None,
                 wait_for_lock: float | None = 0) -> JobResult:
        """Run one site's crawl job now, in this thread: lock, crawl, post-crawl work.

        ``wait_for_lock``: seconds to wait for a busy site (None: forever; 0: don't wait).
        ``scheduled_at`` defaults to now (ISO UTC).
        """
        scheduled_at = scheduled_at or iso_utc(datetime.now(UTC))
        with self._cond:
            self._active[site_id] += 1
        try:
            result = self._run_site(site_id, scheduled_at, wait_for_lock)
        except ArchiveError as exc:  # explained already: no traceback
            result = JobResult(site_id, "error", scheduled_at, message=str(exc), archive_unusable=True)
        except Exception as exc:  # never let a job take the scheduler down
            logger.exception("job for site %s failed", site_id)
            result = JobResult(site_id, "error", scheduled_at, message=f"{type(exc).__name__}: {exc}")
        finally:
            with self._cond:
                self._active[site_id] -= 1
                if self._active[site_id] <= 0:
                    del self._active[site_id]
                self._cond.notify_all()
        with self._cond:
            self._results.append(result)
            self._cond.notify_all()
        log = logger.info if result.outcome in ("finished", "skipped") else logger.warning
        log("site %s: %s%s", site_id, result.outcome, f" ({result.message})" if result.message else "")
        return result

    def wait_for_results(self, count: int, timeout: float) -> list[JobResult]:
        """Wait until at least ``count`` results exist (or ``timeout``); return them all."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while len(self._results) < count and time.monotonic() < deadline:
                self._cond.wait(max(0.0, deadline - time.monotonic()))
            return list(self._results)

    # ------------------------------------------------------------------ jobs

    def _scheduled_job(self, site_id: str, *, scheduled_time: datetime | None = None) -> JobResult:
        # scheduled_time is passed by _CrawlExecutor (APScheduler checks the signature at add_job)
        return self.run_site(site_id, scheduled_at=iso_utc(scheduled_time) if scheduled_time else None)

    def _run_site(self, site_id: str, scheduled_at: str, wait_for_lock: float | None) -> JobResult:
        if self.stopping:
            return JobResult(site_id, "skipped", scheduled_at, message="scheduler is stopping")
        site = self.sites.get(site_id)
        if site is None:
            return JobResult(site_id, "skipped", scheduled_at, message="site is not in the registry")
        lock = SiteLock(self.db_path, site_id)
        if not lock.acquire(blocking=wait_for_lock != 0, timeout=wait_for_lock):
            holder = lock.holder()
            return JobResult(site_id, "busy", scheduled_at,
                             message=f"previous crawl still running (lock held by pid {holder or '?'})")
        try:
            db = open_db(self.db_path)
            try:
                running = running_crawl(db, site_id)
            finally:
                db.conn.close()
            if running:
                return JobResult(site_id, "busy", scheduled_at,
                                 message=f"crawl {running[0]} (pid {running[1]}) is still running")
            if self.stopping:
                return JobResult(site_id, "skipped", scheduled_at, message="scheduler is stopping")
            logger.info("site %s: crawl starting (scheduled at %s)", site_id, scheduled_at)
            crawl = self.crawl_runner([site], db_path=self.db_path,
                                      registry_path=self.registry_snapshot or self.registry_path,
                                      settings=self.settings or None, scheduled_at=scheduled_at)
            crawl_ids = dict(crawl.crawl_ids)
            # ``ok`` also catches a crawl the archive pipeline stopped (exit 0, row failed).
            crawl_ok = getattr(crawl, "ok", crawl.exit_code == 0)
            result = JobResult(site_id, "finished" if crawl_ok else "failed", scheduled_at,
                               exit_code=crawl.exit_code, crawl_ids=crawl_ids)
            if not crawl_ok:
                result.message = (f"crawl exited with {crawl.exit_code}" if crawl.exit_code
                                  else "crawl interrupted (its crawls row says incomplete)"
                                  if getattr(crawl, "interrupted", False)
                                  else "pages or items could not be processed (its crawls row says"
                                       " incomplete; errors in its log)"
                                  if getattr(crawl, "unprocessed", False)
                                  else "crawl failed (see its crawls row)")
            # What the crawl did check counts, failed or not (as after `xxgk crawl`).
            from archive.postcrawl import after_crawl

            db = open_db(self.db_path)
            try:
                after_crawl(db, list(crawl_ids.values()))
            except Exception as exc:
                logger.exception("site %s: post-crawl work failed", site_id)
                result.outcome = "failed"
                result.message = "; ".join(filter(None, [result.message, f"post-crawl work failed: {exc}"]))
            finally:
                db.conn.close()
            return result
        finally:
            lock.release()

    # ------------------------------------------------------------------ set-up and reload

    def _prepare(self, scheduler_class: type[BaseScheduler]) -> None:
        if self._started:
            raise RuntimeError("a Scheduler can only be started once")
        self._registry_stamp = self._stamp()
        sites, raw = self._read_registry()
        self.db_path.parent.mkdir(parents=True, exist_ok=True)
        db = open_db(self.db_path)
        try:
            abandoned = mark_abandoned_crawls(db)
        finally:
            db.conn.close()
        if abandoned:
            logger.warning("marked %d abandoned crawl(s) incomplete: %s", len(abandoned),
                           ", ".join(map(str, abandoned)))
        self._aps = scheduler_class(
            timezone=self.timezone,
            executors={"default": _CrawlExecutor(max_workers=self.max_concurrent)},
            job_defaults={"coalesce": self.coalesce, "max_instances": 1,
                          "misfire_grace_time": self.misfire_grace_time},
        )
        self._aps.add_listener(self._on_aps_started, EVENT_SCHEDULER_STARTED)
        self._apply(sites, raw, catch_up=True)
        self._started = True

    def _on_aps_started(self, event: Any) -> None:
        self._controller = threading.Thread(target=self._control, name="xxgk-scheduler-control",
                                            daemon=True)
        self._controller.start()

    def _apply(self, sites: list[Site], raw: bytes, *, catch_up: bool) -> None:
        assert self._aps is not None
        self._adopt(sites, raw)
        wanted = {site.id: site.schedule for site in sites if site.schedule}
        for site_id in [s for s in self._schedules if s not in wanted]:
            self._aps.remove_job(site_id)
            del self._schedules[site_id]
            logger.info("site %s: unscheduled", site_id)
        for site_id, expr in wanted.items():
            trigger = self.trigger_factory(expr, self.timezone)
            if site_id not in self._schedules:
                extra: dict[str, Any] = {}
                missed = self._missed_run(site_id, trigger) if catch_up else None
                if missed is not None:
                    extra["next_run_time"] = missed
                    logger.info("site %s: catching up the run missed at %s", site_id, iso_utc(missed))
                self._aps.add_job(self._scheduled_job, trigger, args=[site_id], id=site_id,
                                  name=f"crawl {site_id}", **extra)
                logger.info("site %s: scheduled %r (%s)", site_id, expr, self.timezone)
            elif self._schedules[site_id] != expr:
                self._aps.reschedule_job(site_id, trigger=trigger)
                logger.info("site %s: rescheduled %r -> %r", site_id, self._schedules[site_id], expr)
            self._schedules[site_id] = expr

    def _missed_run(self, site_id: str, trigger: BaseTrigger) -> datetime | None:
        """The site's latest fire time within the grace time, when no crawl started since."""
        fire = latest_fire_time(trigger, datetime.now(self.timezone), self.misfire_grace_time)
        if fire is None:
            return None
        db = open_db(self.db_path)
        try:
            row = db.execute("SELECT 1 FROM crawls WHERE site_id = ? AND started_at >= ? LIMIT 1",
                             [site_id, iso_utc(fire)]).fetchone()
        finally:
            db.conn.close()
        return None if row else fire

    def _stamp(self) -> tuple[int, int, int] | None:
        try:
            st = self.registry_path.stat()
        except OSError:
            return None
        return (st.st_mtime_ns, st.st_size, st.st_ino)

    # ------------------------------------------------------------------ control thread

    def _control(self) -> None:
        """Reload on request or on a registry change; on a stop request shut APScheduler down.

        Should the loop itself fail, the scheduler stops (logged) rather than running on
        with nobody left to act on SIGTERM/SIGINT.
        """
        try:
            self._control_loop()
        except BaseException:
            logger.exception("scheduler control thread failed; stopping the scheduler")
            if self._stop_level == _RUNNING:
                self._stop_level = _INTERRUPT if self.stop_mode == "interrupt" else _FINISH
            try:
                assert self._aps is not None
                self._aps.shutdown(wait=False)
            except Exception:  # already stopped
                logger.debug("scheduler already shut down", exc_info=True)

    def _control_loop(self) -> None:
        assert self._aps is not None
        while True:
            self._wake.wait(self.reload_interval)
            self._wake.clear()
            if self.stopping:
                logger.info("stopping: no new crawls will start")
                try:
                    self._aps.shutdown(wait=False)
                except Exception:  # already stopped
                    logger.debug("scheduler already shut down", exc_info=True)
                return
            try:
                if self._reload_requested or self._stamp() != self._registry_stamp:
                    self._reload_requested = False
                    logger.info("reloading registry %s", self.registry_path)
                    self.reload()
            except Exception:
                logger.exception("registry reload failed")

    def _on_stop_signal(self, signum: int, frame: Any) -> None:
        if self._stop_level == _RUNNING:
            self._stop_level = _FINISH if self.stop_mode == "finish" else _INTERRUPT
        else:
            self._stop_level = min(self._stop_level + 1, _KILL)
        self._wake.set()

    def _on_reload_signal(self, signum: int, frame: Any) -> None:
        self.request_reload()

    # ------------------------------------------------------------------ stopping

    def _finish_stop(self) -> None:
        """Wait for the controller to shut APScheduler down, then for running jobs."""
        if self._controller is not None and self._controller is not threading.current_thread():
            self._controller.join()
        elif self._aps is not None and self._aps.running:
            self._aps.shutdown(wait=False)
        if not self._drained:
            self._drain()
            self._drained = True

    def _drain(self) -> None:
        signalled: dict[int, set[int]] = {signal.SIGINT: set(), signal.SIGKILL: set()}
        interrupt_since: float | None = None
        announced = False
        db = None
        try:
            while True:
                with self._cond:
                    active = sorted(self._active)
                if not active:
                    return
                if not announced:
                    logger.info("stopping: waiting for running crawl(s) of %s", ", ".join(active))
                    announced = True
                level = self._stop_level
                if level >= _INTERRUPT:
                    if interrupt_since is None:
                        interrupt_since = time.monotonic()
                    if (level == _INTERRUPT and self.stop_timeout is not None
                            and time.monotonic() - interrupt_since > self.stop_timeout):
                        logger.warning("stopping: crawls still running after %ss; killing them",
                                       self.stop_timeout)
                        self._stop_level = level = _KILL
                    signum = signal.SIGKILL if level >= _KILL else signal.SIGINT
                    if db is None:
                        db = open_db(self.db_path)
                    for pid in self._crawl_pids(db, active):
                        if pid not in signalled[signum]:
                            signalled[signum].add(pid)
                            self._signal_crawl(pid, signum)
                with self._cond:
                    self._cond.wait(0.25)
        finally:
            if db is not None:
                db.conn.close()

    @staticmethod
    def _crawl_pids(db: Any, site_ids: list[str]) -> list[int]:
        marks = ",".join("?" * len(site_ids))
        rows = db.execute(f"SELECT DISTINCT pid FROM crawls WHERE status = 'running' AND site_id IN ({marks})",
                          site_ids).fetchall()
        return [pid for (pid,) in rows if pid and pid != os.getpid()]

    @staticmethod
    def _signal_crawl(pid: int, signum: int) -> None:
        name = signal.Signals(signum).name
        logger.info("stopping: sending %s to crawl process %d", name, pid)
        try:
            if signum == signal.SIGKILL and os.getpgid(pid) == pid:
                os.killpg(pid, signum)  # the crawl and its browser
            else:
                os.kill(pid, signum)
        except (ProcessLookupError, PermissionError):
            pass


# --------------------------------------------------------------------------- status


def schedule_status(registry_path: str | Path, db_path: str | Path, *,
                    timezone: str | tzinfo = DEFAULT_TIMEZONE,
                    trigger_factory: TriggerFactory = cron_trigger,
                    now: datetime | None = None) -> list[SiteStatus]:
    """Each registry site's next fire time and last crawl (read-only; no scheduler needed)."""
    tz = resolve_timezone(timezone)
    now = now or datetime.now(tz)
    sites = load_registry(registry_path)
    db_path = Path(db_path)
    last: dict[str, dict[str, Any]] = {}
    running: set[str] = set()
    if db_path.exists():
        db = open_db(db_path)
        try:
            cursor = db.execute(
                "SELECT c.* FROM crawls c JOIN (SELECT site_id, MAX(id) AS id FROM crawls GROUP BY site_id) m"
                " ON c.id = m.id")
            names = [d[0] for d in cursor.description]
            for row in cursor.fetchall():
                record = dict(zip(names, row, strict=True))
                last[record["site_id"]] = record
                if record["status"] == "running" and pid_alive(record["pid"], record["started_at"]):
                    running.add(record["site_id"])
        finally:
            db.conn.close()
    statuses = []
    for site in sites:
        next_run = None
        if site.schedule:
            try:
                next_run = trigger_factory(site.schedule, tz).get_next_fire_time(None, now)
            except ValueError as exc:
                raise RegistryError(f"{registry_path}: site {site.id!r}: field 'schedule' "
                                    f"{site.schedule!r} cannot be scheduled: {exc}") from exc
        busy = site.id in running or SiteLock(db_path, site.id).is_locked()
        statuses.append(SiteStatus(site.id, site.name, site.schedule, next_run, last.get(site.id), busy))
    return statuses
