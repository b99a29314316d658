"""Faults, with real processes and real signals: kills mid-crawl, read-only and full
disks, and several processes writing and reading one archive at once.

What each test proves:

* SIGKILL of the ``scrapy crawl`` child: every committed check survives, the database is
  intact (``integrity_check``, WAL), the parent records the crawl ``killed``, and the next
  ``xxgk crawl`` runs cleanly.
* SIGKILL of parent and child together (nobody left to close the rows): the next
  ``xxgk crawl`` marks the orphaned crawl ``incomplete``.
* A read-only archive file, a read-only directory and a full disk: exit code 3 and one
  clear line naming the problem, never a traceback.
* The archive filling up during a crawl: the spider closes with ``archive_error`` (one
  error logged, no item-by-item drops) and the crawl row is ``failed`` with the reason.
* A crawl, ``xxgk ingest-report`` and ``xxgk verify`` in parallel, with Datasette reading:
  no "database is locked", nothing corrupted.

Read-only and full file systems are real mounts (tmpfs, bind mounts) when we are root;
otherwise the full disk is ``RLIMIT_FSIZE`` and the read-only file ``chmod``.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import os
import resource
import shutil
import signal
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SEED_REPORT = ROOT / "tests" / "fixtures" / "reports" / "seeds" / "wust_2020-2021.txt"
FAST = ["-s", "DOWNLOAD_DELAY=0", "-s", "AUTOTHROTTLE_ENABLED=False", "-s", "CONCURRENT_REQUESTS_PER_DOMAIN=8",
        "-s", "RETRY_TIMES=0", "-s", "XXGK_DOWNLOAD_TIMEOUT=3", "-s", "XXGK_PROBE_SOFT404=0"]
# One request at a time with a small delay: a crawl of ~175 URLs lasts long enough to be
# killed in the middle, and commits every 5 items so there is committed work to lose.
SLOW = ["-s", "DOWNLOAD_DELAY=0.05", "-s", "AUTOTHROTTLE_ENABLED=False", "-s", "CONCURRENT_REQUESTS_PER_DOMAIN=1",
        "-s", "RETRY_TIMES=0", "-s", "XXGK_DOWNLOAD_TIMEOUT=3", "-s", "XXGK_COMMIT_EVERY=5",
        "-s", "XXGK_PROBE_SOFT404=0", "-s", "RANDOMIZE_DOWNLOAD_DELAY=False"]
REGISTRY = textwrap.dedent("""
    [[site]]
    id = "jsp"
    name = "模拟职业技术学院"
    portal = ["http://info.jsp-college.edu.cn/index.jsp"]
    render = "never"
    """)


# -- helpers ---------------------------------------------------------------------------------
def _env(proxy: str | None = None) -> dict[str, str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    if proxy:
        env.update(http_proxy=proxy, https_proxy=proxy, no_proxy="", NO_PROXY="")
    return env


def _xxgk(*args: str, proxy: str | None = None, **kw) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "xxgk", *args], cwd=ROOT, env=_env(proxy),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)


def _run(*args: str, proxy: str | None = None, timeout: float = 180, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "xxgk", *args], cwd=ROOT, env=_env(proxy),
                          capture_output=True, text=True, timeout=timeout, **kw)


def _ro(db: Path) -> sqlite3.Connection:
    return sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30)


def _wait_for(predicate, timeout: float = 90, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(sqlite3.Error):
            if predicate():
                return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def _running_crawl(db: Path) -> tuple[int, int, int] | None:
    """(crawl id, child pid, committed checks) of the running crawl, once it has progress."""
    if not db.exists():
        return None
    with contextlib.closing(_ro(db)) as conn:
        row = conn.execute("SELECT id, pid FROM crawls WHERE status = 'running' AND pid IS NOT NULL"
                           " ORDER BY id DESC LIMIT 1").fetchone()
        if row is None:
            return None
        checks = conn.execute("SELECT COUNT(*) FROM link_checks WHERE crawl_id = ?", [row[0]]).fetchone()[0]
    return (row[0], row[1], checks) if checks >= 20 else None


def _assert_consistent(db: Path) -> None:
    with contextlib.closing(sqlite3.connect(db)) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("PRAGMA foreign_key_check").fetchall() == []
        orphans = conn.execute("SELECT COUNT(*) FROM snapshots s LEFT JOIN blobs b ON b.sha256 = s.sha256"
                               " WHERE s.sha256 IS NOT NULL AND b.sha256 IS NULL").fetchone()[0]
        assert orphans == 0, "a snapshot committed without its blob"


@pytest.fixture
def registry(tmp_path) -> Path:
    path = tmp_path / "sites.toml"
    path.write_text(REGISTRY, encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def web():
    from simweb import SimWeb

    with SimWeb(port=0, day=1, delay_scale=0.0) as running:
        yield running


@contextlib.contextmanager
def _subreaper() -> Iterator[None]:
    """Adopt orphaned grandchildren (Linux), so a killed crawl child can be reaped here."""
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    libc.prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER
    try:
        yield
    finally:
        libc.prctl(36, 0, 0, 0, 0)


def _reap(pid: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            done, _status = os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            if not Path(f"/proc/{pid}").exists():
                return
            done = 0
        if done == pid:
            return
        time.sleep(0.05)
    raise AssertionError(f"process {pid} did not go away")


# -- kills -----------------------------------------------------------------------------------
def test_sigkill_of_the_crawl_child_loses_no_committed_data(tmp_path, registry, web):
    db = tmp_path / "archive.db"
    parent = _xxgk("crawl", "--registry", str(registry), "--db", str(db), *SLOW, proxy=web.proxy_url)
    try:
        progress: list = []
        _wait_for(lambda: progress.append(_running_crawl(db)) or progress[-1], what="crawl progress")
        crawl_id, child, committed = progress[-1]
        os.kill(child, signal.SIGKILL)
        out, err = parent.communicate(timeout=120)
    finally:
        if parent.poll() is None:
            parent.kill()
    assert parent.returncode == 1, err
    assert "Traceback" not in err
    _assert_consistent(db)
    with contextlib.closing(_ro(db)) as conn:
        status, exit_code, reason, checked = conn.execute(
            "SELECT status, exit_code, finish_reason, links_checked FROM crawls WHERE id = ?", [crawl_id]).fetchone()
        kept = conn.execute("SELECT COUNT(*) FROM link_checks WHERE crawl_id = ?", [crawl_id]).fetchone()[0]
    assert (status, exit_code) == ("killed", -signal.SIGKILL), reason
    assert kept >= committed and checked == kept
    # The next crawl starts from a clean state and finishes.
    again = _run("crawl", "--registry", str(registry), "--db", str(db), *FAST, proxy=web.proxy_url)
    assert again.returncode == 0, again.stderr[-2000:]
    _assert_consistent(db)
    with contextlib.closing(_ro(db)) as conn:
        statuses = conn.execute("SELECT status FROM crawls ORDER BY id").fetchall()
    assert statuses == [("killed",), ("finished",)]


def test_sigkill_of_parent_and_child_is_marked_on_the_next_crawl(tmp_path, registry, web):
    db = tmp_path / "archive.db"
    with _subreaper():
        parent = _xxgk("crawl", "--registry", str(registry), "--db", str(db), *SLOW, proxy=web.proxy_url)
        try:
            progress: list = []
            _wait_for(lambda: progress.append(_running_crawl(db)) or progress[-1], what="crawl progress")
            crawl_id, child, committed = progress[-1]
            # Stop the child first so the SIGTERM its parent's death sends it cannot run a
            # clean shutdown: both die with nothing left to close the crawl row.
            os.kill(child, signal.SIGSTOP)
            parent.kill()
            parent.wait(30)
            os.kill(child, signal.SIGKILL)
            _reap(child)
        finally:
            if parent.poll() is None:
                parent.kill()
    _assert_consistent(db)
    with contextlib.closing(_ro(db)) as conn:
        assert conn.execute("SELECT status FROM crawls WHERE id = ?", [crawl_id]).fetchone()[0] == "running"
        kept = conn.execute("SELECT COUNT(*) FROM link_checks WHERE crawl_id = ?", [crawl_id]).fetchone()[0]
    assert kept >= committed
    again = _run("crawl", "--registry", str(registry), "--db", str(db), *FAST, proxy=web.proxy_url)
    assert again.returncode == 0, again.stderr[-2000:]
    _assert_consistent(db)
    with contextlib.closing(_ro(db)) as conn:
        rows = conn.execute("SELECT id, status, finish_reason, links_checked FROM crawls ORDER BY id").fetchall()
    assert rows[0][:2] == (crawl_id, "incomplete") and rows[0][3] == kept
    assert rows[1][1] == "finished"



# A parent with many threads starting the crawl from one of them, as the scheduler does.
_THREADED_PARENT = """
import sys, threading
from schedules.registry import load_registry
from xxgk.runcrawl import run_crawl
idle = threading.Event()
for _ in range(20):
    threading.Thread(target=idle.wait, daemon=True).start()
registry, db, *settings = sys.argv[1:]
sites = load_registry(registry)
worker = threading.Thread(target=run_crawl, args=(sites,), kwargs=dict(
    db_path=db, registry_path=registry, settings=dict(s.split("=", 1) for s in settings[1::2])))
worker.start()
worker.join()
"""


def test_the_death_of_a_threaded_parent_stops_the_crawl_once_and_cleanly(tmp_path, registry, web):
    """The kernel's parent-death signal comes once per thread of the dying parent the crawl
    passes through: as SIGTERM, the second forced Scrapy's unclean shutdown (the batch lost,
    the row left running). The crawl now closes gracefully and says so: incomplete."""
    db = tmp_path / "archive.db"
    with _subreaper():
        parent = subprocess.Popen([sys.executable, "-c", _THREADED_PARENT, str(registry), str(db), *SLOW],
                                  cwd=ROOT, env=_env(web.proxy_url), stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True)
        try:
            progress: list = []
            _wait_for(lambda: progress.append(_running_crawl(db)) or progress[-1], what="crawl progress")
            crawl_id, child, committed = progress[-1]
            parent.kill()
            parent.wait(30)
            _reap(child, timeout=60)
        finally:
            if parent.poll() is None:
                parent.kill()
    _assert_consistent(db)
    with contextlib.closing(_ro(db)) as conn:
        status, reason, checked = conn.execute(
            "SELECT status, finish_reason, links_checked FROM crawls WHERE id = ?", [crawl_id]).fetchone()
        kept = conn.execute("SELECT COUNT(*) FROM link_checks WHERE crawl_id = ?", [crawl_id]).fetchone()[0]
        log = Path(conn.execute("SELECT log_path FROM crawls WHERE id = ?", [crawl_id]).fetchone()[0])
    text = log.read_text("utf-8", "replace")
    assert "unclean shutdown" not in text
    assert (status, reason) == ("incomplete", "shutdown"), text[-3000:]
    assert kept >= committed and checked == kept

def test_a_zombie_crawl_process_is_abandoned(tmp_path):
    from archive.db import open_db
    from archive.store import mark_abandoned_crawls, start_crawl

    zombie = subprocess.Popen([sys.executable, "-c", "pass"])
    _wait_for(lambda: "Z" in Path(f"/proc/{zombie.pid}/stat").read_text().split()[2], what="zombie")
    try:
        db = open_db(tmp_path / "archive.db")
        crawl_id = start_crawl(db, "s", pid=zombie.pid)
        assert mark_abandoned_crawls(db) == [crawl_id]
    finally:
        zombie.wait()



def test_a_crawl_whose_pid_another_process_reuses_is_abandoned(tmp_path):
    """After a container restart the dead crawl's small pid goes to another process: the
    crawl stayed "running" for ever and the scheduler refused its site as busy. A process
    that started long after the crawl is not the crawl's."""
    from archive.db import open_db
    from archive.store import mark_abandoned_crawls, start_crawl

    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        db = open_db(tmp_path / "archive.db")
        old = start_crawl(db, "s", pid=other.pid)
        db.execute("UPDATE crawls SET started_at = '2026-01-01T00:00:00Z' WHERE id = ?", [old])
        current = start_crawl(db, "t", pid=other.pid)  # started with its row: the crawl's own
        assert mark_abandoned_crawls(db) == [old]
        assert [row[0] for row in db.execute("SELECT status FROM crawls ORDER BY id")] == ["incomplete", "running"]
    finally:
        other.kill()
        other.wait()
    assert current


@pytest.mark.parametrize("how", ["delete", "replace"])
def test_an_archive_deleted_or_replaced_mid_crawl_stops_it_with_a_clear_error(tmp_path, registry, web, how):
    """The crawl wrote on into the deleted file, then `xxgk crawl` created an empty archive
    and died with a traceback; a backup restored over the file got the old file's WAL
    checkpointed into it (corrupt). Now the crawl stops within a moment and says why."""
    db = tmp_path / "archive.db"
    backup = tmp_path / "backup.db"
    parent = _xxgk("crawl", "--registry", str(registry), "--db", str(db), *SLOW, proxy=web.proxy_url)
    try:
        progress: list = []
        _wait_for(lambda: progress.append(_running_crawl(db)) or progress[-1], what="crawl progress")
        if how == "replace":
            with contextlib.closing(sqlite3.connect(db)) as conn, contextlib.closing(sqlite3.connect(backup)) as out:
                conn.backup(out)
            os.replace(backup, db)
        else:
            for suffix in ("", "-wal", "-shm"):
                with contextlib.suppress(FileNotFoundError):
                    os.remove(f"{db}{suffix}")
        out, err = parent.communicate(timeout=120)
    finally:
        if parent.poll() is None:
            parent.kill()
    assert parent.returncode == 3, err
    assert "Traceback" not in err
    assert ("was deleted" if how == "delete" else "was replaced") in err
    if how == "delete":
        assert not db.exists()  # no new, empty archive
    else:
        _assert_consistent(db)

# -- unusable databases ----------------------------------------------------------------------
def _can_mount() -> bool:
    if os.geteuid() != 0 or not shutil.which("mount"):
        return False
    probe = Path(f"/tmp/xxgk-mount-probe-{os.getpid()}")
    probe.mkdir(exist_ok=True)
    try:
        ok = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(probe)],
                            capture_output=True).returncode == 0
        if ok:
            subprocess.run(["umount", str(probe)], capture_output=True)
        return ok
    finally:
        with contextlib.suppress(OSError):
            probe.rmdir()


CAN_MOUNT = _can_mount()


@contextlib.contextmanager
def _mount(*args: str) -> Iterator[None]:
    target = args[-1]
    subprocess.run(["mount", *args], check=True, capture_output=True)
    try:
        yield
    finally:
        subprocess.run(["umount", "-l", target], capture_output=True)


def _make_archive(path: Path) -> None:
    from archive.db import open_db

    open_db(path).conn.close()
    with contextlib.closing(sqlite3.connect(path)) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")


def _assert_exit_3(result: subprocess.CompletedProcess, *words: str) -> None:
    assert result.returncode == 3, (result.returncode, result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    line = result.stderr.strip().splitlines()[-1]
    assert line.startswith("xxgk: ") and all(w in line for w in words), line


def _verbs(db: Path, registry: Path) -> list[list[str]]:
    return [["verify", "--db", str(db)],
            ["ingest-report", str(SEED_REPORT), "--site", "wust", "--db", str(db)],
            ["crawl", "--registry", str(registry), "--db", str(db), *FAST]]


def test_read_only_archive_file(tmp_path, registry):
    db = tmp_path / "archive.db"
    _make_archive(db)
    if CAN_MOUNT:
        context = _mount("--bind", "-o", "ro", str(db), str(db))
    elif os.geteuid() != 0:
        db.chmod(0o444)
        context = contextlib.nullcontext()
    else:
        pytest.skip("root without mount: a read-only file cannot be made")
    with context:
        if CAN_MOUNT:  # some kernels ignore ro on the first bind mount
            subprocess.run(["mount", "-o", "remount,bind,ro", str(db)], capture_output=True)
        for verb in _verbs(db, registry):
            _assert_exit_3(_run(*verb, proxy="http://127.0.0.1:9"), str(db), "cannot be written", "read-only")
    _assert_consistent(db)


@pytest.mark.skipif(not CAN_MOUNT, reason="needs root and mount for a read-only file system")
def test_read_only_directory(tmp_path, registry):
    folder = tmp_path / "ro"
    folder.mkdir()
    with _mount("-t", "tmpfs", "-o", "size=4m", "tmpfs", str(folder)):
        db = folder / "archive.db"
        _make_archive(db)
        subprocess.run(["mount", "-o", "remount,ro", str(folder)], check=True, capture_output=True)
        for verb in _verbs(db, registry):
            _assert_exit_3(_run(*verb, proxy="http://127.0.0.1:9"), str(db), "read-only")
        # A new archive in a read-only directory: the same clear answer.
        _assert_exit_3(_run("verify", "--db", str(folder / "new.db")), "new.db")


def _limit_file_size() -> None:
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # write() fails with EFBIG instead of killing us
    resource.setrlimit(resource.RLIMIT_FSIZE, (1_500_000, 1_500_000))


def test_full_disk(tmp_path):
    big = tmp_path / "big-report.pdf"
    big.write_bytes(os.urandom(3_000_000))  # incompressible: the blob cannot fit
    folder = tmp_path / "small"
    folder.mkdir()
    db = folder / "archive.db"
    context = _mount("-t", "tmpfs", "-o", "size=1m", "tmpfs", str(folder)) if CAN_MOUNT else contextlib.nullcontext()
    # Made beside and copied in: creating the schema takes its migrations' WAL as well,
    # which outgrew the 1 MB disk as migrations were added.
    _make_archive(tmp_path / "made.db")
    with context:
        shutil.copyfile(tmp_path / "made.db", db)
        kw = {} if CAN_MOUNT else {"preexec_fn": _limit_file_size}
        result = _run("ingest-report", str(big), "--site", "wust", "--db", str(db), **kw)
        _assert_exit_3(result, str(db), "full")
        # What was committed is intact, and small writes still fail cleanly or succeed.
        _assert_consistent(db)
        verify = _run("verify", "--db", str(db), **kw)
        assert verify.returncode in (0, 3) and "Traceback" not in verify.stderr


def test_a_file_that_is_not_a_database(tmp_path):
    db = tmp_path / "archive.db"
    db.write_bytes(b"this is not SQLite" * 100)
    _assert_exit_3(_run("verify", "--db", str(db)), "not a usable archive")


def test_other_databases_are_refused_untouched(tmp_path):
    """Another program's SQLite file gets none of our tables (a read verb used to migrate it),
    and an archive a newer version migrated is not read with this version's idea of its schema."""
    from archive.db import open_db

    other = tmp_path / "other.db"
    with contextlib.closing(sqlite3.connect(other)) as conn:
        conn.execute("CREATE TABLE sites (id TEXT, budget REAL)")
        conn.commit()
    for verb in (["verify", "--db", str(other)], ["export", "warc", "--db", str(other), "-o", str(tmp_path / "o.warc.gz")],
                 ["evaluate", "--db", str(other)]):
        _assert_exit_3(_run(*verb), str(other), "not an xxgk archive", "nothing was changed")
    with contextlib.closing(sqlite3.connect(other)) as conn:
        assert [name for name, in conn.execute("SELECT name FROM sqlite_master")] == ["sites"]
    newer = tmp_path / "newer.db"
    open_db(newer).conn.close()
    with contextlib.closing(sqlite3.connect(newer)) as conn:
        conn.execute("INSERT INTO _sqlite_migrations (migration_set, name, applied_at) "
                     "VALUES ('xxgk', 'm900_future', '2030-01-01')")
        conn.commit()
    _assert_exit_3(_run("verify", "--db", str(newer)), "newer xxgk-archive", "m900_future")


def test_corruption_found_while_reading_rows_is_a_clear_error(tmp_path):
    """A file whose header and schema are fine but whose table pages are garbage fails only
    when a query reaches them (reading rows, not executing): still exit 3, no traceback."""
    from archive.db import open_db
    from archive.store import ArchiveWriter, finish_crawl, start_crawl, upsert_sites
    from crawler.items import LinkCheck

    db_path = tmp_path / "archive.db"
    db = open_db(db_path)
    upsert_sites(db, [{"id": "wust", "name": "武汉科技大学", "portal": '["http://xxgk.wust.edu.cn/"]'}])
    writer, crawl = ArchiveWriter(db), start_crawl(db, "wust")
    for n in range(400):
        writer.record_check(LinkCheck(
            site_id="wust", crawl_id=crawl, url=f"http://xxgk.wust.edu.cn/info/{n}.htm",
            checked_at="2026-01-01T08:00:00Z", state="ok", rule="t", status_code=200, body=b"<p>x</p>",
            content_type="text/html", main_text=f"第{n}条 " + "学校信息公开工作" * 150))
    writer.commit()
    finish_crawl(db, crawl, "finished")
    db.conn.close()
    _make_archive(db_path)
    with contextlib.closing(sqlite3.connect(db_path)) as conn:
        page_size = conn.execute("PRAGMA page_size").fetchone()[0]
        leaves = [n for n, in conn.execute("SELECT pageno FROM dbstat WHERE name = 'snapshots' AND pagetype = 'leaf'")]
    assert len(leaves) > 10
    with open(db_path, "r+b") as handle:  # every leaf but the first: the first rows read fine
        for page in leaves[1:]:
            handle.seek((page - 1) * page_size)
            handle.write(os.urandom(page_size))
    _assert_exit_3(_run("export", "warc", "--db", str(db_path), "-o", str(tmp_path / "a.warc.gz")),
                   str(db_path), "not a usable archive")


def test_a_crawl_that_cannot_start_leaves_no_running_row(tmp_path, registry):
    """The crawl's rows are opened before its child starts; when the child cannot start
    (here its log file cannot be opened) they are closed as failed, not left "running"."""
    db = tmp_path / "archive.db"
    (tmp_path / "archive.db.logs" / "crawl-1.log").mkdir(parents=True)  # the first crawl's log
    _assert_exit_3(_run("crawl", "--registry", str(registry), "--db", str(db), *FAST),
                   "could not start", "crawl-1.log")
    rows = sqlite3.connect(db).execute("SELECT status, finish_reason FROM crawls").fetchall()
    assert rows and all(status == "failed" and "could not start" in reason for status, reason in rows), rows


def test_any_verb_meeting_corruption_mid_read_exits_3(tmp_path, monkeypatch, capsys):
    """Rows are read past archive.db's wrappers (they explain errors of execute, not of
    fetching): the CLI explains a corruption error wherever it surfaces (here in the
    evaluation's snapshot reads, where a corrupt archive first showed it)."""
    from archive import evaluate
    from archive.db import open_db
    from xxgk.cli import main

    def corrupt(*_args, **_kwargs):
        raise sqlite3.DatabaseError("database disk image is malformed")

    db_path = tmp_path / "archive.db"
    open_db(db_path).conn.close()
    monkeypatch.setattr(evaluate, "evaluate", corrupt)
    assert main(["evaluate", "--db", str(db_path)]) == 3
    assert capsys.readouterr().err.strip() == (f"xxgk: {db_path} is not a usable archive database "
                                               "(database disk image is malformed)")


# -- concurrency -----------------------------------------------------------------------------
def test_crawl_ingest_verify_and_datasette_in_parallel(tmp_path, registry, web):
    from archive.queries import CANNED_QUERIES
    from archive.serve import make_datasette

    db = tmp_path / "archive.db"
    _make_archive(db)
    reports = []
    for i in range(6):
        path = tmp_path / f"report-{i}.txt"
        path.write_text(SEED_REPORT.read_text(encoding="utf-8") + f"\n附：第{i}份副本。\n", encoding="utf-8")
        reports.append(path)
    settings = [*SLOW, "-s", "XXGK_COMMIT_EVERY=3"]  # the later value wins: many short transactions
    crawl = _xxgk("crawl", "--registry", str(registry), "--db", str(db), *settings, proxy=web.proxy_url)
    failures: list[str] = []
    reads = [0]
    stop = threading.Event()

    def read_loop() -> None:
        async def loop() -> None:
            ds = make_datasette(db)
            paths = ["/xxgk/crawls.json", "/xxgk/link_checks.json?_size=50", "/xxgk/links.json"]
            paths += [f"/xxgk/{name}.json" for name in list(CANNED_QUERIES)[:6]]
            while not stop.is_set():
                for path in paths:
                    response = await ds.client.get(path)
                    reads[0] += 1
                    if response.status_code != 200 or "database is locked" in response.text:
                        failures.append(f"datasette {path}: {response.status_code} {response.text[:200]}")
        asyncio.run(loop())

    reader = threading.Thread(target=read_loop, daemon=True)
    reader.start()
    try:
        _wait_for(lambda: _running_crawl(db), what="crawl progress")
        jobs = [_xxgk("ingest-report", str(p), "--site", "wust", "--db", str(db)) for p in reports[:3]]
        jobs += [_xxgk("verify", "--db", str(db)) for _ in range(2)]
        jobs += [_xxgk("ingest-report", str(p), "--site", "wust", "--db", str(db)) for p in reports[3:]]
        for job in jobs:
            out, err = job.communicate(timeout=120)
            if job.returncode != 0 or "database is locked" in err or "Traceback" in err:
                failures.append(f"{job.args[3:5]}: {job.returncode} {out[-500:]} {err[-500:]}")
        out, err = crawl.communicate(timeout=180)
        if crawl.returncode != 0 or "database is locked" in err:
            failures.append(f"crawl: {crawl.returncode} {err[-1000:]}")
    finally:
        stop.set()
        reader.join(30)
        if crawl.poll() is None:
            crawl.kill()
    assert not failures, "\n".join(failures)
    assert reads[0] > 10
    _assert_consistent(db)
    with contextlib.closing(_ro(db)) as conn:
        assert conn.execute("SELECT COUNT(*) FROM reports WHERE site_id = 'wust'").fetchone()[0] == len(reports)
        assert conn.execute("SELECT COUNT(*) FROM fixity_checks").fetchone()[0] == 2
        assert conn.execute("SELECT status FROM crawls").fetchall() == [("finished",)]
    logs = "".join(p.read_text(errors="replace") for p in (tmp_path / "archive.db.logs").glob("*.log"))
    assert "database is locked" not in logs


def test_archive_full_mid_crawl_closes_the_crawl(tmp_path, registry, web):
    """The archive fills up while a crawl runs: the crawl stops at once (Scrapy close reason
    ``archive_error``) instead of checking every link and dropping each item, and its crawl
    row says why. ``RLIMIT_FSIZE`` caps the write-ahead log a little above the empty archive."""
    db = tmp_path / "archive.db"
    _make_archive(db)
    limit = db.stat().st_size + 120_000

    def limit_file_size() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    result = _run("crawl", "--registry", str(registry), "--db", str(db), *FAST, "-s", "XXGK_COMMIT_EVERY=5",
                  proxy=web.proxy_url, preexec_fn=limit_file_size)
    assert "Traceback" not in result.stderr, result.stderr[-3000:]
    log = "".join(p.read_text(errors="replace") for p in (tmp_path / "archive.db.logs").glob("*.log"))
    assert "Closing spider (archive_error)" in log, log[-3000:]
    assert "cannot write the archive" in log
    assert "Dropped:" not in log  # one clear error, not one line per item
    _assert_consistent(db)
    with contextlib.closing(_ro(db)) as conn:
        status, reason = conn.execute("SELECT status, finish_reason FROM crawls").fetchone()
        checked = conn.execute("SELECT COUNT(*) FROM link_checks").fetchone()[0]
    assert status == "failed", (status, reason, result.stderr[-2000:])
    assert result.returncode != 0, result.stdout[-2000:]  # scripts and the scheduler see the failure
    assert reason.startswith("archive_error") or "crawler process exited" in reason, reason
    stats = log[log.find("Dumping Scrapy stats"):]
    requests = int(stats.split("'downloader/request_count': ", 1)[1].split(",", 1)[0])
    assert requests < 120, requests  # stopped early: the whole site is ~175 URLs
    assert checked < requests


def test_a_crawl_never_holds_the_write_lock_for_long(tmp_path, registry):
    """Another process writing the archive meanwhile (a second scheduled crawl, the
    scheduler, xxgk ingest-report) gets the write lock within a second or so, even while the
    crawl's items come slowly (a slow host): the crawl's open batch used to keep the lock
    until 200 items had arrived, and the other writer gave up ("database is locked")."""
    from simweb import SimWeb

    db = tmp_path / "archive.db"
    _make_archive(db)
    waits: list[float] = []
    with SimWeb(port=0, day=1, delay_scale=0.0, latency={"info.jsp-college.edu.cn": 0.2}) as slow:
        crawl = subprocess.Popen(
            [sys.executable, "-m", "xxgk", "crawl", "--registry", str(registry), "--db", str(db),
             *FAST, "-s", "CONCURRENT_REQUESTS_PER_DOMAIN=1"],
            cwd=ROOT, env=_env(slow.proxy_url), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            _wait_for(lambda: _running_crawl(db) is not None, what="the crawl's first commit")
            for _ in range(12):
                other = sqlite3.connect(db, timeout=5, isolation_level=None)
                started = time.monotonic()
                other.execute("BEGIN IMMEDIATE")  # what any other writer does first
                waits.append(time.monotonic() - started)
                other.execute("COMMIT")
                other.close()
                time.sleep(0.4)
        finally:
            crawl.terminate()
            crawl.wait(60)
    assert max(waits) < 3, waits


def test_post_crawl_work_a_dead_parent_never_ran_is_caught_up(tmp_path, registry, web):
    """The parent of day 2's crawl died once the child had closed the row, before the work
    after the crawl (simulated: the crawl run without it). Day 2's changes were never
    recorded; the next crawl's post-crawl work catches up on that crawl, and marks both."""
    from simweb import SimWeb
    from xxgk.runcrawl import run_crawl

    db = tmp_path / "archive.db"
    assert _run("crawl", "--registry", str(registry), "--db", str(db), *FAST, proxy=web.proxy_url).returncode == 0
    with SimWeb(port=0, day=2, delay_scale=0.0) as day2:
        from schedules.registry import load_registry

        settings = dict(s.split("=", 1) for s in FAST[1::2])
        crashed = run_crawl(load_registry(registry), db_path=db, registry_path=registry, settings=settings,
                            env={"http_proxy": day2.proxy_url, "https_proxy": day2.proxy_url, "no_proxy": ""})
        [day2_crawl] = crashed.crawl_ids.values()
        with contextlib.closing(_ro(db)) as conn:
            assert conn.execute("SELECT status, postcrawl_at FROM crawls WHERE id = ?", [day2_crawl]).fetchone() \
                == ("finished", None)
            assert not conn.execute("SELECT COUNT(*) FROM changes WHERE crawl_id = ?", [day2_crawl]).fetchone()[0]
        again = _run("crawl", "--registry", str(registry), "--db", str(db), *FAST, proxy=day2.proxy_url)
    assert again.returncode == 0, again.stderr[-2000:]
    with contextlib.closing(_ro(db)) as conn:
        kinds = {kind for (kind,) in conn.execute("SELECT kind FROM changes WHERE crawl_id = ?", [day2_crawl])}
        unmarked = conn.execute("SELECT id FROM crawls WHERE postcrawl_at IS NULL").fetchall()
    assert {"changed", "new"} <= kinds, kinds
    assert unmarked == []


# -- a crawl started by hand ---------------------------------------------------------------------
def test_a_crawl_started_by_hand_refuses_a_site_being_crawled(tmp_path, registry, web):
    """``xxgk crawl`` took no site lock: started while the scheduler crawled the same site,
    both ran at once (two rows 'running', two processes on one portal; found by a review).
    It now takes the scheduler's lock, and refuses while a crawl row of the site runs."""
    from archive.store import start_crawl
    from schedules.locks import SiteLock

    db = tmp_path / "archive.db"
    _make_archive(db)
    with SiteLock(db, "jsp"):  # what the scheduler holds for a whole crawl
        refused = _run("crawl", "--registry", str(registry), "--db", str(db), *FAST, proxy=web.proxy_url)
    assert refused.returncode == 1, refused.stderr
    assert "site 'jsp' is already being crawled (lock held by pid" in refused.stderr
    with contextlib.closing(_ro(db)) as conn:
        assert conn.execute("SELECT COUNT(*) FROM crawls").fetchone() == (0,)
    from archive.db import open_db

    archive = open_db(db)
    running = start_crawl(archive, "jsp", pid=os.getpid())  # a crawl started without the lock, alive
    archive.conn.close()
    refused = _run("crawl", "--registry", str(registry), "--db", str(db), *FAST, proxy=web.proxy_url)
    assert refused.returncode == 1 and f"(crawl {running}, pid {os.getpid()})" in refused.stderr
    with contextlib.closing(_ro(db)) as conn:
        assert conn.execute("SELECT COUNT(*) FROM crawls").fetchone() == (1,)


def test_ctrl_c_ends_a_crawl_incomplete_and_says_so(tmp_path, registry, web):
    """One Ctrl-C stops the crawl gracefully (rows 'incomplete', what was checked kept); the
    command said nothing and exited 0, as if the crawl had finished."""
    db = tmp_path / "archive.db"
    _make_archive(db)
    # As from a terminal: a test run in the background (CI, a `&` job) has SIGINT ignored,
    # which a child inherits (Python then raises no KeyboardInterrupt).
    crawl = _xxgk("crawl", "--registry", str(registry), "--db", str(db), *SLOW, proxy=web.proxy_url,
                  preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        _wait_for(lambda: _running_crawl(db) is not None, what="the crawl's first commit")
        crawl.send_signal(signal.SIGINT)  # a terminal's Ctrl-C reaches the command (the child has its own session)
        _out, err = crawl.communicate(timeout=120)
    finally:
        if crawl.poll() is None:
            crawl.kill()
    assert crawl.returncode == 1, err
    assert "the crawl was interrupted" in err and "Traceback" not in err
    with contextlib.closing(_ro(db)) as conn:
        status, checks = conn.execute(
            "SELECT status, (SELECT COUNT(*) FROM link_checks) FROM crawls").fetchone()
    assert status == "incomplete" and checks > 0


def test_processes_opening_a_new_archive_at_once_all_get_it(tmp_path):
    """Two schedulers (or a crawl and ``xxgk serve``) started at once on a new archive: one
    saw the other's half-made migrations table and exited 3 saying the file was "not an xxgk
    archive" (3 runs in 4; found by a review). Migrating is serialized now."""
    script = ("import sys, time\nfrom archive.db import open_db\n"
              "time.sleep(max(0.0, float(sys.argv[2]) - time.time()))\nopen_db(sys.argv[1]).conn.close()\n")
    for attempt in range(4):
        db = tmp_path / f"new-{attempt}.db"
        start = time.time() + 1.5
        openers = [subprocess.Popen([sys.executable, "-c", script, str(db), str(start)], cwd=ROOT, env=_env(),
                                    stderr=subprocess.PIPE, text=True) for _ in range(4)]
        errors = [(p.wait(timeout=120), p.stderr.read()) for p in openers]
        assert all(code == 0 for code, _ in errors), errors
        with contextlib.closing(_ro(db)) as conn:
            assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
            names = [n for (n,) in conn.execute("SELECT name FROM _sqlite_migrations")]
        assert len(names) == len(set(names)) > 10
