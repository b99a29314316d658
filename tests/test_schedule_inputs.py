"""Scheduler and registry inputs that used to crash, hang or be misread.

Non-finite or huge ``xxgk schedule run`` seconds (an infinite reload interval killed the
control thread, after which SIGTERM was ignored), a time zone that names a directory,
signals during start-up, site ids ending in a newline, unknown top-level registry keys,
cron's day-of-month OR day-of-week rule and schedules that never fire, and ``registry
import`` into a registry with multi-line strings.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
import time
import tomllib
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from schedules.bulk import import_csv, merge_registry_text, toml_value
from schedules.cli import main as cli_main
from schedules.registry import DEFAULT_REGISTRY, RegistryError, load_registry, parse_registry
from schedules.scheduler import (
    OnceInRepeatedHour,
    Scheduler,
    cron_trigger,
    extended_cron_trigger,
    resolve_timezone,
)

ROOT = Path(__file__).resolve().parent.parent
RARELY = "0 0 1 1 *"


def _registry(path: Path, schedule: str = RARELY) -> Path:
    path.write_text(f'[[site]]\nid = "a"\nportal = "http://127.0.0.1:9/a/"\nallow_private = true\n'
                    f'schedule = "{schedule}"\n', encoding="utf-8")
    return path


def _never_called(*args, **kwargs):  # pragma: no cover - the schedules here do not fire
    raise AssertionError("no crawl expected")


def _wait_until(predicate, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return predicate()


# ------------------------------------------------------------------ 1. seconds options


@pytest.mark.parametrize(("option", "value"), [
    ("--reload-interval", "inf"), ("--reload-interval", "nan"), ("--reload-interval", "1e7"),
    ("--stop-timeout", "nan"), ("--stop-timeout", "inf"), ("--stop-timeout", "-1"),
    ("--misfire-grace-time", "100000000000"), ("--misfire-grace-time", "abc"),
])
def test_run_rejects_non_finite_or_huge_seconds(tmp_path, capsys, option, value):
    # (a missing registry: should the value pass, the run ends at once, without SystemExit)
    argv = ["schedule", "run", "--registry", str(tmp_path / "none.toml"), "--db", str(tmp_path / "a.db"),
            option, value]
    with pytest.raises(SystemExit) as exc:
        cli_main(argv)
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert f"argument {option}" in err and "Traceback" not in err


def test_run_once_wait_rejects_infinity(tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        cli_main(["schedule", "run-once", "--registry", str(tmp_path / "none.toml"), "--site", "a",
                  "--wait", "inf"])
    assert exc.value.code == 2


def test_scheduler_rejects_non_finite_intervals(tmp_path):
    registry = _registry(tmp_path / "sites.toml")
    for kwargs in ({"reload_interval": float("inf")}, {"reload_interval": float("nan")},
                   {"stop_timeout": float("nan")}, {"misfire_grace_time": 10**11}):
        with pytest.raises(ValueError):
            Scheduler(registry, tmp_path / "a.db", crawl_runner=_never_called, **kwargs)


def test_control_thread_failure_stops_the_scheduler(tmp_path):
    """A control loop that fails must not leave a scheduler nobody can stop."""
    scheduler = Scheduler(_registry(tmp_path / "sites.toml"), tmp_path / "a.db", reload_interval=0.1,
                          crawl_runner=_never_called)
    scheduler.reload_interval = float("inf")  # what --reload-interval inf did: Event.wait overflows
    scheduler.start()
    try:
        assert _wait_until(lambda: scheduler.stopping and not scheduler._aps.running, timeout=10)
    finally:
        scheduler.stop()
    assert not scheduler._aps.running


# ------------------------------------------------------------------ 2. time zone, grace time


def test_time_zone_naming_a_directory_is_unknown(tmp_path, capsys):
    with pytest.raises(ValueError, match="unknown time zone"):
        resolve_timezone("Asia")
    registry = _registry(tmp_path / "sites.toml")
    for action in ("list", "run"):
        code = cli_main(["schedule", action, "--registry", str(registry), "--db", str(tmp_path / "a.db"),
                         "--timezone", "Asia"])
        assert code == 2
        err = capsys.readouterr().err
        assert "xxgk: unknown time zone 'Asia'" in err and "Traceback" not in err


def test_misfire_grace_time_is_capped_with_a_clear_message(tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        cli_main(["schedule", "run", "--registry", str(tmp_path / "none.toml"),
                  "--misfire-grace-time", "100000000000"])
    assert exc.value.code == 2
    assert "10 years" in capsys.readouterr().err


# ------------------------------------------------------------------ 3. signals during start-up

SLOW_START = textwrap.dedent("""\
    import sys, time
    from pathlib import Path
    sys.path.insert(0, sys.argv[1])
    from schedules.cli import _configure_logging
    from schedules.scheduler import Scheduler
    marker = Path(sys.argv[4])
    original = Scheduler._read_registry
    def slow(self):  # a big registry: seconds before the scheduler is up
        if not marker.exists():
            marker.write_text("preparing")
            time.sleep(2)
        return original(self)
    Scheduler._read_registry = slow
    def never(*args, **kwargs):
        raise AssertionError("no crawl expected")
    _configure_logging()
    scheduler = Scheduler(sys.argv[2], sys.argv[3], reload_interval=0.2, crawl_runner=never)
    raise SystemExit(scheduler.run_forever())
""")


def _slow_start(tmp_path: Path) -> tuple[subprocess.Popen, Path, Path]:
    registry = _registry(tmp_path / "sites.toml")
    marker, log_path = tmp_path / "preparing", tmp_path / "scheduler.log"
    with log_path.open("w") as log:
        proc = subprocess.Popen([sys.executable, "-c", SLOW_START, str(ROOT), str(registry),
                                 str(tmp_path / "a.db"), str(marker)], stderr=log)
    assert _wait_until(marker.exists, timeout=20), log_path.read_text()
    return proc, marker, log_path


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_stop_signal_during_start_up_stops_gracefully(tmp_path, signum):
    proc, _, log_path = _slow_start(tmp_path)
    try:
        proc.send_signal(signum)
        assert proc.wait(timeout=20) == 0, log_path.read_text()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    log = log_path.read_text()
    assert "stop requested while starting" in log and "Traceback" not in log


def test_sighup_during_start_up_reloads_once_started(tmp_path):
    proc, _, log_path = _slow_start(tmp_path)
    try:
        proc.send_signal(signal.SIGHUP)
        assert _wait_until(lambda: "reloading registry" in log_path.read_text() or proc.poll() is not None,
                           timeout=20)
        assert proc.poll() is None, f"rc={proc.returncode}\n{log_path.read_text()}"
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0, log_path.read_text()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


# ------------------------------------------------------------------ 4. anchored validations


def test_site_id_with_a_trailing_newline_is_rejected(tmp_path, capsys):
    text = '[[site]]\nid = "jsp\\n"\nportal = "http://a.edu.cn/"\n'
    with pytest.raises(RegistryError, match="field 'id'"):
        parse_registry(text, "r.toml")
    registry = tmp_path / "sites.toml"
    registry.write_text(text, encoding="utf-8")
    assert cli_main(["schedule", "list", "--registry", str(registry), "--db", str(tmp_path / "a.db")]) == 2
    assert "field 'id'" in capsys.readouterr().err


def test_written_keys_ending_in_a_newline_are_quoted():
    key = "a\n"
    assert tomllib.loads("x = " + toml_value({key: 1})) == {"x": {key: 1}}


# ------------------------------------------------------------------ 5. unknown top-level keys


@pytest.mark.parametrize(("text", "key"), [
    ('[[site]]\nid="a"\nportal="http://a.edu.cn/"\n\n[[sites]]\nid="b"\nportal="http://b.edu.cn/"\n', "sites"),
    ('schedule = "0 3 * * 1"\n[[site]]\nid="a"\nportal="http://a.edu.cn/"\n', "schedule"),
    ('[[site]]\nid="a"\nportal="http://a.edu.cn/"\n[settings]\nx = 1\n', "settings"),
])
def test_unknown_top_level_keys_are_rejected(tmp_path, capsys, text, key):
    with pytest.raises(RegistryError, match=f"unknown top-level key.*{key}"):
        parse_registry(text, "r.toml")
    registry = tmp_path / "sites.toml"
    registry.write_text(text, encoding="utf-8")
    assert cli_main(["schedule", "list", "--registry", str(registry), "--db", str(tmp_path / "a.db")]) == 2
    assert key in capsys.readouterr().err


def test_shipped_registries_still_load():
    assert load_registry(DEFAULT_REGISTRY)
    assert load_registry(ROOT / "simweb" / "demo_sites.toml")
    with pytest.raises(RegistryError, match=r"no \[\[site\]\].*title"):
        parse_registry("title = 'x'\n", "r.toml")


# ------------------------------------------------------------------ 6. cron semantics


def _fires(trigger, start: datetime, count: int) -> list[datetime]:
    out, fire = [], trigger.get_next_fire_time(None, start)
    while fire is not None and len(out) < count:
        out.append(fire)
        fire = trigger.get_next_fire_time(fire, fire)
    return out


def test_day_of_month_or_day_of_week_as_in_cron():
    start = datetime(2024, 1, 2, tzinfo=UTC)  # a Tuesday
    fires = [f.date().isoformat() for f in _fires(cron_trigger("0 3 1 * 1", UTC), start, 6)]
    # every Monday, and the 1st (a Thursday in February)
    assert fires == ["2024-01-08", "2024-01-15", "2024-01-22", "2024-01-29", "2024-02-01", "2024-02-05"]
    assert isinstance(cron_trigger("0 3 1 * 1", UTC), OnceInRepeatedHour)
    # 6-field (tests' seconds-first) form too
    fires = _fires(extended_cron_trigger("0 0 3 1 * 1", UTC), start, 2)
    assert [f.date().isoformat() for f in fires] == ["2024-01-08", "2024-01-15"]
    # one of them unrestricted (or starting with "*"): both must match, as cron does
    fires = _fires(cron_trigger("0 3 */2 * 1", UTC), start, 2)
    assert all(f.weekday() == 0 and f.day % 2 == 1 for f in fires)


def test_day_or_weekday_with_a_fixed_hour_runs_once_in_a_repeated_hour():
    berlin = ZoneInfo("Europe/Berlin")  # 2024-10-27, a Sunday: 02:30 happens twice
    trigger = cron_trigger("30 2 27 * 0", berlin)
    fires = _fires(trigger, datetime(2024, 10, 26, tzinfo=berlin), 3)
    assert [f.date().isoformat() for f in fires] == ["2024-10-27", "2024-11-03", "2024-11-10"]


@pytest.mark.parametrize("schedule", ["0 0 31 2 *", "0 3 30 2 *", "0 0 31 4,6,9,11 *"])
def test_schedules_that_never_fire_are_rejected(tmp_path, capsys, schedule):
    with pytest.raises(RegistryError, match="never fires"):
        parse_registry(f'[[site]]\nid="a"\nportal="http://a.edu.cn/"\nschedule="{schedule}"\n', "r.toml")
    registry = _registry(tmp_path / "sites.toml", schedule)
    code = cli_main(["schedule", "run", "--registry", str(registry), "--db", str(tmp_path / "a.db")])
    assert code == 2
    assert "never fires" in capsys.readouterr().err


@pytest.mark.parametrize("schedule", ["0 0 29 2 *", "0 3 30 2 1"])
def test_rare_schedules_are_accepted(schedule):
    parse_registry(f'[[site]]\nid="a"\nportal="http://a.edu.cn/"\nschedule="{schedule}"\n', "r.toml")


# ------------------------------------------------------------------ 7. import into multi-line strings

MULTILINE = {
    "comment-in-string": '[[site]]\nid = "a"\nportal = "http://a.edu.cn/"\nname = """甲大学\n#分校"""\n'
                         '[[site]]\nid = "b"\nportal = "http://b.edu.cn/"\n',
    "header-in-string": '[[site]]\nid = "a"\nportal = "http://a.edu.cn/"\nname = """甲大学\n[[site]]\n"""\n\n'
                        '[[site]]\nid = "b"\nportal = "http://b.edu.cn/"\n',
    "literal-string": "# ours\n[[site]]\nid = \"a\"\nportal = \"http://a.edu.cn/\"\nname = '''甲\n[x]\n'''\n\n"
                      '[[site]]\nid = "b"\nportal = "http://b.edu.cn/"\n',
}


@pytest.mark.parametrize("name", sorted(MULTILINE))
def test_import_into_a_registry_with_multi_line_strings(tmp_path, name):
    registry = tmp_path / "sites.toml"
    registry.write_text(MULTILINE[name], encoding="utf-8")
    before = tomllib.loads(MULTILINE[name])["site"]
    csv_path = tmp_path / "new.csv"
    csv_path.write_text("id,name,portal\nb,乙大学,http://b.edu.cn/\nc,丙大学,http://c.edu.cn/\n", encoding="utf-8")
    report = import_csv(csv_path, registry)
    assert report.written and report.added == ["c"] and report.updated == ["b"]
    after = tomllib.loads(registry.read_text(encoding="utf-8"))["site"]
    expected = [before[0], {**before[1], "name": "乙大学"},
                {"id": "c", "name": "丙大学", "portal": "http://c.edu.cn/"}]
    assert after == expected
    assert [s.id for s in load_registry(registry)] == ["a", "b", "c"]


def test_merge_keeps_layout_when_the_blocks_are_sound():
    text = '# keep me\n[[site]]\nid = "a"\nportal = "http://a.edu.cn/"\nname = """one\ntwo"""\n'
    merged = merge_registry_text(text, {"b": {"id": "b", "portal": "http://b.edu.cn/"}})
    assert merged.startswith(text)
    assert [s["id"] for s in tomllib.loads(merged)["site"]] == ["a", "b"]
