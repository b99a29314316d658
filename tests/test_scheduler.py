"""The crawl scheduler: schedules, overlaps, locks, kills, reloads, graceful stop.

Crawls here are fake but real subprocesses (``python -c "time.sleep(...)"``) driven by a
runner that keeps ``crawls`` rows the way :func:`xxgk.runcrawl.run_crawl` does; one test
uses the real ``run_crawl``. Schedules are sped up: the registry's 5-field cron is read one
unit finer (``"*/1 * * * *"`` fires every second) through ``trigger_factory``.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from apscheduler.triggers.cron import CronTrigger

from archive.db import open_db
from archive.store import finish_crawl, start_crawl
from schedules.cli import main as cli_main
from schedules.locks import SiteLock, lock_dir_for
from schedules.registry import load_registry
from schedules.scheduler import (
    Scheduler,
    cron_trigger,
    extended_cron_trigger,
    iso_utc,
    latest_fire_time,
)
from xxgk.runcrawl import CrawlResult

ROOT = Path(__file__).resolve().parent.parent
TESTS = Path(__file__).resolve().parent
EVERY_SECOND = "*/1 * * * *"  # with fast_trigger: every second
RARELY = "0 0 1 1 *"          # with fast_trigger: 01:00:00 on the 1st of each month

# A crawl child that behaves like Scrapy on SIGINT: it stops promptly and exits 0.
CHILD = ("import signal, sys, time\n"
         "signal.signal(signal.SIGINT, lambda *a: sys.exit(0))\n"
         "time.sleep(float(sys.argv[1]))\n"
         "sys.exit(int(sys.argv[2]))\n")


def fast_trigger(expr: str, tz):
    """Test clock: a registry cron read one unit finer, seconds first."""
    return extended_cron_trigger(f"{expr} *", tz)


def write_registry(path: Path, sites: dict[str, str | None], *, bump: bool = True) -> Path:
    text = ""
    for site_id, schedule in sites.items():
        text += (f'[[site]]\nid = "{site_id}"\nportal = "http://127.0.0.1:9/{site_id}/"\n'
                 'allow_private = true\nrender = "never"\n')
        if schedule:
            text += f'schedule = "{schedule}"\n'
        text += "\n"
    path.write_text(text, encoding="utf-8")
    if bump:  # make the change visible even within one mtime tick
        stamp = time.time_ns() + 1_000_000_000
        os.utime(path, ns=(stamp, stamp))
    return path


class FakeRunner:
    """``run_crawl``'s contract with a sleeping child: rows opened, pid recorded, rows closed."""

    def __init__(self, durations: dict[str, float] | None = None, default: float = 0.0,
                 exit_code: int = 0) -> None:
        self.durations = durations or {}
        self.default = default
        self.exit_code = exit_code
        self.calls: list[tuple[str, float, float, str | None]] = []  # site, start, end, scheduled_at
        self.registries: list[Path] = []
        self.running = 0
        self.max_running = 0
        self._lock = threading.Lock()

    def __call__(self, sites, *, db_path, registry_path, settings=None, scheduled_at=None, **_):
        site = sites[0]
        with self._lock:
            self.registries.append(Path(registry_path))
            self.running += 1
            self.max_running = max(self.max_running, self.running)
        start = time.monotonic()
        db = open_db(db_path)
        try:
            crawl_id = start_crawl(db, site.id, scheduled_at=scheduled_at)
            child = subprocess.Popen(
                [sys.executable, "-c", CHILD, str(self.durations.get(site.id, self.default)),
                 str(self.exit_code)], start_new_session=True)
            db.execute("UPDATE crawls SET pid = ? WHERE id = ?", [child.pid, crawl_id])
            code = child.wait()
            status = "finished" if code == 0 else "killed" if code < 0 else "failed"
            finish_crawl(db, crawl_id, status, exit_code=code, finish_reason=f"exit {code}")
        finally:
            db.conn.close()
            with self._lock:
                self.running -= 1
                self.calls.append((site.id, start, time.monotonic(), scheduled_at))
        return CrawlResult({site.id: crawl_id}, code, Path(str(db_path) + ".log"))

    def runs(self, site_id: str) -> list[tuple[float, float]]:
        with self._lock:
            return [(s, e) for (i, s, e, _) in self.calls if i == site_id]


def wait_until(predicate, timeout: float = 10.0, interval: float = 0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"condition not met within {timeout}s")


def crawl_rows(db_path: Path) -> list[dict]:
    db = open_db(db_path)
    try:
        cursor = db.execute("SELECT * FROM crawls ORDER BY id")
        names = [d[0] for d in cursor.description]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
    finally:
        db.conn.close()


@pytest.fixture
def paths(tmp_path):
    db_path = tmp_path / "archive.db"
    open_db(db_path).conn.close()
    return tmp_path / "sites.toml", db_path


def make_scheduler(registry: Path, db_path: Path, runner, **options) -> Scheduler:
    options.setdefault("trigger_factory", fast_trigger)
    options.setdefault("reload_interval", 0.2)
    options.setdefault("stop_timeout", 10)
    return Scheduler(registry, db_path, crawl_runner=runner, **options)


@pytest.fixture
def schedulers():
    started: list[Scheduler] = []
    yield started
    for scheduler in started:
        scheduler.stop()


# --------------------------------------------------------------------------- triggers


def test_registry_cron_uses_standard_weekdays():
    from zoneinfo import ZoneInfo

    tz = ZoneInfo("Asia/Shanghai")
    monday_noon = datetime(2024, 1, 1, 12, 0, tzinfo=tz)  # a Monday
    nxt = cron_trigger("0 3 * * 1", tz).get_next_fire_time(None, monday_noon)
    assert (nxt.date().isoformat(), nxt.hour) == ("2024-01-08", 3)   # next Monday, 03:00 Beijing
    assert cron_trigger("0 3 * * 0", tz).get_next_fire_time(None, monday_noon).date().isoformat() == "2024-01-07"
    assert cron_trigger("0 3 * * 7", tz).get_next_fire_time(None, monday_noon).date().isoformat() == "2024-01-07"
    with pytest.raises(ValueError):
        cron_trigger("*/2 * * * * *", tz)                           # 6 fields only via tests' factory
    assert extended_cron_trigger("*/2 * * * * *", tz).get_next_fire_time(
        None, monday_noon) == monday_noon
    hourly = CronTrigger(minute=5, timezone=tz)
    assert latest_fire_time(hourly, monday_noon, 3600) == monday_noon - timedelta(minutes=55)
    assert latest_fire_time(hourly, monday_noon, 60) is None


# --------------------------------------------------------------------------- scheduling


def test_job_runs_on_schedule_with_scheduled_at(paths, schedulers):
    registry, db_path = paths
    write_registry(registry, {"a": EVERY_SECOND, "manual": None})
    runner = FakeRunner()
    scheduler = make_scheduler(registry, db_path, runner)
    schedulers.append(scheduler)
    scheduler.start()
    assert set(scheduler.next_run_times()) == {"a"}                  # no schedule, no job
    scheduler.wait_for_results(3, timeout=10)
    scheduler.stop()
    results = [r for r in scheduler.results if r.outcome != "skipped"]  # skipped: fired while stopping
    assert len(results) >= 3 and all(r.ok and r.site_id == "a" for r in results)
    rows = crawl_rows(db_path)
    assert len(rows) == len(results)
    assert all(r["status"] == "finished" for r in rows)
    stamps = [r["scheduled_at"] for r in rows]
    assert stamps == sorted(set(stamps))                              # one row per fire time
    for stamp in stamps:
        fired = datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
        assert abs((datetime.now(UTC) - fired).total_seconds()) < 30


def test_slow_crawl_blocks_its_next_run_but_not_other_sites(paths, schedulers):
    registry, db_path = paths
    write_registry(registry, {"slow": EVERY_SECOND, "quick": EVERY_SECOND})
    runner = FakeRunner({"slow": 2.5, "quick": 0.0})
    scheduler = make_scheduler(registry, db_path, runner, max_concurrent=2)
    schedulers.append(scheduler)
    scheduler.start()
    wait_until(lambda: runner.runs("slow"), timeout=12)
    scheduler.stop()
    slow = runner.runs("slow")
    first_start, first_end = slow[0]
    for (_, end), (start, _) in zip(slow, slow[1:], strict=False):
        assert start >= end                                           # never overlapping
    quick_during = [s for s, _ in runner.runs("quick") if first_start < s < first_end]
    assert len(quick_during) >= 2                                     # other sites kept running
    assert runner.max_running <= 2


def test_concurrent_crawls_are_capped(paths, schedulers):
    registry, db_path = paths
    write_registry(registry, {"a": EVERY_SECOND, "b": EVERY_SECOND, "c": EVERY_SECOND})
    runner = FakeRunner(default=0.8)
    scheduler = make_scheduler(registry, db_path, runner, max_concurrent=1)
    schedulers.append(scheduler)
    scheduler.start()
    scheduler.wait_for_results(3, timeout=10)
    scheduler.stop()
    assert runner.max_running == 1
    assert len({r.site_id for r in scheduler.results if r.ok}) >= 2


def test_crashing_runner_does_not_stop_the_scheduler(paths, schedulers):
    registry, db_path = paths
    write_registry(registry, {"a": EVERY_SECOND})

    def broken(sites, **_):
        raise RuntimeError("crawler exploded")

    scheduler = make_scheduler(registry, db_path, broken)
    schedulers.append(scheduler)
    scheduler.start()
    results = scheduler.wait_for_results(2, timeout=10)
    scheduler.stop()
    assert [r.outcome for r in results[:2]] == ["error", "error"]
    assert "crawler exploded" in results[0].message
    assert not SiteLock(db_path, "a").is_locked()                     # lock released after a crash


def test_an_unusable_archive_is_an_explained_error_not_a_traceback(paths, caplog, capsys):
    """The archive (not the crawler) failing: the job's result says so, without a traceback,
    and ``schedule run-once`` exits 3 like every verb meeting an unusable archive."""
    from archive.db import ArchiveError

    registry, db_path = paths
    write_registry(registry, {"a": None})

    def read_only(sites, **_):
        raise ArchiveError(f"archive {db_path} cannot be written: it is read-only")

    scheduler = make_scheduler(registry, db_path, read_only)
    scheduler.load_sites()
    result = scheduler.run_site("a")
    assert (result.outcome, result.archive_unusable) == ("error", True) and "read-only" in result.message
    assert "Traceback" not in caplog.text
    # The registry's snapshot cannot be kept beside the archive (its lock folder is a file):
    import shutil

    shutil.rmtree(lock_dir_for(db_path))
    lock_dir_for(db_path).write_text("not a folder")
    code = cli_main(["schedule", "run-once", "--site", "a", "--registry", str(registry), "--db", str(db_path)])
    assert code == 3
    assert "cannot keep the registry's snapshot" in capsys.readouterr().err


def test_missed_run_within_grace_is_caught_up_at_start(paths, schedulers):
    registry, db_path = paths
    write_registry(registry, {"a": RARELY})
    missed = datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=30)

    def hourly(expr, tz):  # fired 30 s ago, next in ~an hour
        return CronTrigger(minute=missed.minute, second=missed.second, timezone=UTC)

    late = make_scheduler(registry, db_path, FakeRunner(), trigger_factory=hourly, misfire_grace_time=10)
    late.start()
    time.sleep(1.0)
    late.stop()
    assert late.results == []                                          # beyond the grace time

    runner = FakeRunner()
    scheduler = make_scheduler(registry, db_path, runner, trigger_factory=hourly, misfire_grace_time=120)
    schedulers.append(scheduler)
    scheduler.start()
    (result,) = scheduler.wait_for_results(1, timeout=10)
    scheduler.stop()
    assert result.ok and result.scheduled_at == iso_utc(missed)

    again = make_scheduler(registry, db_path, FakeRunner(), trigger_factory=hourly, misfire_grace_time=120)
    again.start()
    time.sleep(1.0)
    again.stop()
    assert again.results == []                                         # that run already happened


# --------------------------------------------------------------------------- locks and kills


def test_probing_a_lock_never_makes_a_job_think_the_site_busy(tmp_path):
    """``is_locked`` (``xxgk schedule status``) takes the lock for a moment; a job starting
    at that moment must not be recorded busy and skip its run."""
    db_path = tmp_path / "a.db"
    first = SiteLock(db_path, "a")
    assert first.acquire()
    first.release()
    stop = threading.Event()

    def probe() -> None:
        while not stop.is_set():
            SiteLock(db_path, "a").is_locked()

    prober = threading.Thread(target=probe)
    prober.start()
    try:
        busy = 0
        for _ in range(300):
            lock = SiteLock(db_path, "a")
            if lock.acquire():
                lock.release()
            else:
                busy += 1
    finally:
        stop.set()
        prober.join()
    assert busy == 0
    with SiteLock(db_path, "a"):  # a real holder is still busy to others, at once
        started = time.monotonic()
        assert not SiteLock(db_path, "a").acquire()
        assert time.monotonic() - started < 1


def _sleeping(pid: int) -> bool:
    """The fake crawl child is in its ``time.sleep``, so its SIGINT handler is installed
    (sleeping, and in a sleep call where the kernel names it); True without ``/proc``."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        wchan = Path(f"/proc/{pid}/wchan").read_text()
    except (OSError, IndexError):
        return True
    return state == "S" and (wchan in ("", "0") or "sleep" in wchan)


def _child_pid(db_path: Path) -> int | None:
    """The fake crawl child's pid, once FakeRunner has recorded it (``start_crawl`` records
    this process's pid first)."""
    rows = crawl_rows(db_path)
    pid = rows[0]["pid"] if rows else None
    return pid if pid and pid != os.getpid() else None


def test_lock_blocks_concurrent_run_once_in_another_process(paths, schedulers):
    registry, db_path = paths
    write_registry(registry, {"a": RARELY})
    # The crawl holds the lock until the test lets go (SIGINT below), however long the CLI
    # subprocess takes to start on a loaded machine: a fixed-length crawl could end first,
    # and the CLI then found the lock free and crawled for real.
    runner = FakeRunner({"a": 120.0})
    scheduler = make_scheduler(registry, db_path, runner)
    schedulers.append(scheduler)
    scheduler.start()
    job = threading.Thread(target=scheduler.run_site, args=("a",))
    job.start()
    child_pid = None
    try:
        wait_until(lambda: SiteLock(db_path, "a").is_locked())
        child_pid = wait_until(lambda: _child_pid(db_path))
        other = subprocess.run(
            [sys.executable, "-m", "schedules.cli", "schedule", "run-once", "--site", "a",
             "--registry", str(registry), "--db", str(db_path)],
            cwd=ROOT, capture_output=True, text=True, timeout=120)
        assert other.returncode == 1, other.stdout + other.stderr
        assert "a: busy" in other.stdout and f"pid {os.getpid()}" in other.stdout
        assert len(crawl_rows(db_path)) == 1                          # no second crawl started
        assert job.is_alive()                                         # the lock was held throughout
        wait_until(lambda: _sleeping(child_pid))
        os.kill(child_pid, signal.SIGINT)                             # the fake crawl stops, exit 0
        job.join(timeout=30)
        assert not job.is_alive()
    finally:
        if job.is_alive() and child_pid is not None:                  # a failure above: leave nothing
            with contextlib.suppress(ProcessLookupError):
                os.kill(child_pid, signal.SIGKILL)
            job.join(timeout=30)
    assert (lock_dir_for(db_path) / "a.lock").exists()
    assert scheduler.results[0].ok
    # A scheduled run also waits its turn while another process holds the lock.
    runner.durations["a"] = 0.0
    with SiteLock(db_path, "a"):
        assert scheduler.run_site("a").outcome == "busy"
    assert scheduler.run_site("a").ok


def test_killed_crawl_is_recorded_and_abandoned_rows_closed_at_start(paths, schedulers):
    registry, db_path = paths
    write_registry(registry, {"a": RARELY})
    db = open_db(db_path)
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    orphan = start_crawl(db, "a", pid=gone.pid)                       # a scheduler killed mid-crawl
    db.conn.close()

    scheduler = make_scheduler(registry, db_path, FakeRunner({"a": 30.0}))
    schedulers.append(scheduler)
    scheduler.start()
    rows = crawl_rows(db_path)
    assert rows[0]["id"] == orphan and rows[0]["status"] == "incomplete"

    outcome = {}
    job = threading.Thread(target=lambda: outcome.setdefault("r", scheduler.run_site("a")))
    job.start()
    pid = wait_until(lambda: next((r["pid"] for r in crawl_rows(db_path)[1:]
                                   if r["pid"] and r["pid"] != os.getpid()), None))
    os.kill(pid, signal.SIGKILL)
    job.join(timeout=10)
    result = outcome["r"]
    assert result.outcome == "failed" and result.exit_code == -signal.SIGKILL
    row = crawl_rows(db_path)[1]
    assert row["status"] == "killed" and row["exit_code"] == -9 and row["finished_at"]


def test_real_run_crawl_records_a_closed_row(paths):
    registry, db_path = paths
    write_registry(registry, {"dead": RARELY})
    scheduler = Scheduler(registry, db_path, settings={"CLOSESPIDER_TIMEOUT": "20", "RETRY_ENABLED": "False"})
    scheduler.load_sites()
    result = scheduler.run_site("dead", scheduled_at="2024-05-06T19:00:00Z")
    assert result.outcome in ("finished", "failed")
    (row,) = crawl_rows(db_path)
    assert row["scheduled_at"] == "2024-05-06T19:00:00Z"
    assert row["status"] != "running" and row["finished_at"] and row["log_path"]
    assert row["exit_code"] == result.exit_code


# --------------------------------------------------------------------------- reloads


def test_bad_registry_change_is_rejected_and_old_schedule_keeps_running(paths, schedulers):
    registry, db_path = paths
    write_registry(registry, {"a": EVERY_SECOND})
    runner = FakeRunner()
    scheduler = make_scheduler(registry, db_path, runner)
    schedulers.append(scheduler)
    scheduler.start()
    scheduler.wait_for_results(1, timeout=10)
    registry.write_text('[[site]]\nid = "a"\nportal = "not a url"\n', encoding="utf-8")
    os.utime(registry, ns=(time.time_ns() + 2 * 10**9,) * 2)
    wait_until(lambda: scheduler.last_reload_error)
    assert "field 'portal'" in scheduler.last_reload_error
    count = len(scheduler.results)
    scheduler.wait_for_results(count + 2, timeout=10)
    assert set(scheduler.next_run_times()) == {"a"}
    assert scheduler.sites["a"].portal == ("http://127.0.0.1:9/a/",)
    # crawls read the last accepted registry, not the broken file
    assert runner.registries[-1] != registry
    assert [s.id for s in load_registry(runner.registries[-1])] == ["a"]
    registry.write_text("[[site]]\nthis is = not toml = at all\n", encoding="utf-8")
    assert scheduler.reload() is False and "not valid TOML" in scheduler.last_reload_error
    scheduler.stop()
    assert all(r.ok for r in scheduler.results if r.outcome != "skipped")


def test_good_registry_change_adds_removes_and_reschedules(paths, schedulers):
    registry, db_path = paths
    write_registry(registry, {"gone": EVERY_SECOND, "later": RARELY})
    scheduler = make_scheduler(registry, db_path, FakeRunner())
    schedulers.append(scheduler)
    scheduler.start()
    assert set(scheduler.next_run_times()) == {"gone", "later"}
    first_later = scheduler.next_run_times()["later"]
    write_registry(registry, {"later": EVERY_SECOND, "new": EVERY_SECOND, "manual": None})
    wait_until(lambda: set(scheduler.next_run_times()) == {"later", "new"})
    assert scheduler.next_run_times()["later"] < first_later
    assert scheduler.last_reload_error is None and "manual" in scheduler.sites
    wait_until(lambda: {"later", "new"} <= {r.site_id for r in scheduler.results}, timeout=10)
    seen = len([r for r in scheduler.results if r.site_id == "gone"])
    time.sleep(1.5)
    assert len([r for r in scheduler.results if r.site_id == "gone"]) == seen   # removed for good
    scheduler.stop()


# --------------------------------------------------------------------------- processes and CLI

SCHEDULER_SCRIPT = textwrap.dedent("""
    import sys
    sys.path[:0] = [{root!r}, {tests!r}]
    from test_scheduler import FakeRunner, fast_trigger
    from schedules.cli import _configure_logging
    from schedules.scheduler import Scheduler
    _configure_logging()
    scheduler = Scheduler({registry!r}, {db!r}, crawl_runner=FakeRunner(default=30.0),
                          trigger_factory=fast_trigger, reload_interval=0.2, stop_timeout=20)
    raise SystemExit(scheduler.run_forever())
""")


def test_sigterm_stops_gracefully_interrupting_running_crawls(paths, tmp_path):
    registry, db_path = paths
    write_registry(registry, {"a": EVERY_SECOND, "b": EVERY_SECOND})
    script = SCHEDULER_SCRIPT.format(root=str(ROOT), tests=str(TESTS), registry=str(registry),
                                     db=str(db_path))
    log = (tmp_path / "scheduler.log").open("w")
    process = subprocess.Popen([sys.executable, "-c", script], cwd=ROOT, stderr=log)
    try:
        children = wait_until(lambda: [r["pid"] for r in crawl_rows(db_path)
                                       if r["status"] == "running" and r["pid"] != process.pid], timeout=15)
        started = time.monotonic()
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=20) == 0
        assert time.monotonic() - started < 10                        # crawls were interrupted
    finally:
        if process.poll() is None:
            process.kill()
        log.close()
    rows = crawl_rows(db_path)
    assert rows and not [r for r in rows if r["status"] == "running"]
    for pid in children:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
    text = (tmp_path / "scheduler.log").read_text()
    assert "sending SIGINT" in text and "scheduler stopped" in text


def test_cli_run_reloads_on_sighup_and_exits_0_on_sigterm(paths, tmp_path):
    registry, db_path = paths
    write_registry(registry, {"a": "0 3 * * 1"})
    log_path = tmp_path / "run.log"
    with log_path.open("w") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "schedules.cli", "schedule", "run", "--registry", str(registry),
             "--db", str(db_path), "--reload-interval", "60"], cwd=ROOT, stderr=log)
        try:
            wait_until(lambda: "Scheduler started" in log_path.read_text(), timeout=15)
            registry.write_text('[[site]]\nid = "a"\nportal = "http://x/"\nschedule = "61 * * * *"\n')
            process.send_signal(signal.SIGHUP)
            wait_until(lambda: "registry change rejected" in log_path.read_text())
            write_registry(registry, {"a": "0 3 * * 1", "b": "30 3 * * 1"})
            process.send_signal(signal.SIGHUP)
            wait_until(lambda: "site b: scheduled" in log_path.read_text())
            process.send_signal(signal.SIGTERM)
            assert process.wait(timeout=15) == 0
        finally:
            if process.poll() is None:
                process.kill()
    assert "schedule '61 * * * *' is not a valid cron" in log_path.read_text()


def test_cli_list_and_usage_errors(paths, capsys):
    registry, db_path = paths
    write_registry(registry, {"a": "0 3 * * 1", "manual": None})
    db = open_db(db_path)
    crawl = start_crawl(db, "a", scheduled_at="2024-01-01T19:00:00Z")
    finish_crawl(db, crawl, "finished", exit_code=0)
    db.conn.close()
    assert cli_main(["schedule", "list", "--registry", str(registry), "--db", str(db_path)]) == 0
    out = capsys.readouterr().out
    line_a = next(line for line in out.splitlines() if line.startswith("a\t"))
    next_run = datetime.strptime(line_a.split("\t")[2], "%Y-%m-%d %H:%M CST")
    assert (next_run.weekday(), next_run.hour, next_run.minute) == (0, 3, 0)   # Monday 03:00
    assert f"#{crawl} finished" in line_a
    assert "manual\t(manual)\t-\tnever\tidle" in out
    bad = write_registry(registry.with_name("bad.toml"), {"a": "not cron"})
    assert cli_main(["schedule", "list", "--registry", str(bad), "--db", str(db_path)]) == 2
    assert cli_main(["schedule", "run", "--registry", str(registry), "--db", str(db_path),
                     "--timezone", "Nowhere/Atlantis"]) == 2
    assert cli_main(["schedule", "run-once", "--site", "zzz", "--registry", str(registry),
                     "--db", str(db_path)]) == 2
    assert cli_main(["schedule"]) == 2


def test_a_fixed_hour_runs_once_on_the_day_the_clock_goes_back():
    """``30 2 * * *`` under Europe/Berlin fired at 02:30 CEST and again at 02:30 CET on the
    autumn day (two crawls of every site an hour apart); cron runs it once. An hourly
    schedule keeps both 02:00 (two real hours)."""
    from zoneinfo import ZoneInfo

    berlin = ZoneInfo("Europe/Berlin")

    def fires(expr: str, start: datetime, count: int) -> list[datetime]:
        trigger, previous, now, out = cron_trigger(expr, berlin), None, start, []
        for _ in range(count):
            previous = trigger.get_next_fire_time(previous, now)
            out.append(previous.astimezone(UTC))
            now = previous.astimezone(UTC) + timedelta(microseconds=1)
        return out

    assert fires("30 2 * * *", datetime(2026, 10, 24, 12, 0, tzinfo=berlin), 3) == [
        datetime(2026, 10, 25, 0, 30, tzinfo=UTC), datetime(2026, 10, 26, 1, 30, tzinfo=UTC),
        datetime(2026, 10, 27, 1, 30, tzinfo=UTC)]
    assert fires("0 * * * *", datetime(2026, 10, 25, 1, 30, tzinfo=berlin), 3) == [
        datetime(2026, 10, 25, 0, 0, tzinfo=UTC), datetime(2026, 10, 25, 1, 0, tzinfo=UTC),
        datetime(2026, 10, 25, 2, 0, tzinfo=UTC)]
    shanghai = cron_trigger("30 2 * * *", ZoneInfo("Asia/Shanghai"))  # no DST: every day as before
    assert shanghai.get_next_fire_time(None, datetime(2026, 10, 25, 0, 0, tzinfo=UTC)).astimezone(UTC) == datetime(
        2026, 10, 25, 18, 30, tzinfo=UTC)


def test_the_start_up_catch_up_across_daylight_saving_changes():
    """``--timezone Europe/Berlin``: a run missed within the grace time across the spring
    change is caught up; one outside it across the autumn change is not; the autumn day's
    repeated 02:30 does not make the search spin (local times compare by wall clock)."""
    from zoneinfo import ZoneInfo

    berlin = ZoneInfo("Europe/Berlin")
    calls = 0
    nightly = cron_trigger("30 2 * * *", berlin)

    class Counting:
        def get_next_fire_time(self, *args):
            nonlocal calls
            calls += 1
            return nightly.get_next_fire_time(*args)

    latest = latest_fire_time(Counting(), datetime(2026, 10, 25, 3, 0, tzinfo=berlin), 6 * 3600)
    # the first 02:30 (CEST): the repeated one is not a run of its own (as in cron)
    assert latest is not None and latest.astimezone(UTC) == datetime(2026, 10, 25, 0, 30, tzinfo=UTC)
    assert calls < 10
    # 01:30 CEST (23:30Z) is 100 minutes before 02:10 CET (01:10Z): outside an hour's grace
    after_change = datetime(2026, 10, 25, 2, 10, tzinfo=berlin, fold=1)
    assert latest_fire_time(cron_trigger("30 1 * * *", berlin), after_change, 3600) is None
    # 01:30 CET (00:30Z) is 40 minutes before 03:10 CEST (01:10Z): inside it
    spring = latest_fire_time(cron_trigger("30 1 * * *", berlin), datetime(2026, 3, 29, 3, 10, tzinfo=berlin), 3600)
    assert spring is not None and spring.astimezone(UTC) == datetime(2026, 3, 29, 0, 30, tzinfo=UTC)
