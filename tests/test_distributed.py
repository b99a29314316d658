"""Distributed crawling: a real ``redis-server`` on loopback, three worker processes, one
archive writer, the simulated web.

Shown against a single-process crawl of the same web and against ``simweb.truth``:

* the same URLs with the same states (every URL of the truth, nothing lost, one verdict each);
* no URL fetched twice (``robots.txt`` included: once per job, not per worker), except what a
  single-process crawl also fetches more than once (browser renders, retries, challenge reloads);
* per-host limits hold across workers: at most ``XXGK_HOST_CONCURRENCY`` requests at once per
  host, counted by the proxy itself (each request to the JSP college is made to last 40 ms);
* a worker killed with SIGKILL mid-crawl loses nothing: its leased requests go back to the
  queue, the very requests it held are checked by the others, and the archive has every URL
  of the truth exactly once.

Leases are released through public Scrapy APIs only (a spider middleware, an errback
wrapper, the scheduler, item signals): unit tests below show a lease outliving its callback
until every request and item it produced is handed on.

Needs ``redis-server`` (Debian: ``apt-get install -y redis-server``) and the Python packages
``redis`` and ``scrapy-redis``; skipped, saying so, only when they are missing.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

ROOT = Path(__file__).resolve().parent.parent
REDIS_SERVER = shutil.which("redis-server")
try:
    import redis  # noqa: F401
    import scrapy_redis  # noqa: F401

    MISSING_PACKAGES = None
except ImportError as exc:  # pragma: no cover - depends on the machine
    MISSING_PACKAGES = str(exc)

pytestmark = [
    pytest.mark.skipif(REDIS_SERVER is None,
                       reason="redis-server is not installed (Debian: apt-get install -y redis-server)"),
    pytest.mark.skipif(MISSING_PACKAGES is not None,
                       reason=f"distributed mode needs `pip install redis scrapy-redis` ({MISSING_PACKAGES})"),
]

CRAWL_SETTINGS = ["-s", "XXGK_DOWNLOAD_TIMEOUT=1", "-s", "DOWNLOAD_DELAY=0",
                  "-s", "AUTOTHROTTLE_ENABLED=False", "-s", "CONCURRENT_REQUESTS_PER_DOMAIN=8",
                  "-s", "RETRY_TIMES=1", "-s", "XXGK_CONFIRM_HOURS=0"]
HOST_LIMIT = 2
# DEBUG: the workers' logs name every retried request (a retry is a legitimate second fetch).
DISTRIBUTED_SETTINGS = ["-s", f"XXGK_HOST_CONCURRENCY={HOST_LIMIT}", "-s", "XXGK_WORKER_TTL=3",
                        "-s", "LOG_LEVEL=DEBUG"]
#: A host whose every request is Scrapy's (render = "never": no browser sub-requests), made
#: slow enough that requests overlap; the proxy counts how many are in flight at once.
MEASURED_HOST = "info.jsp-college.edu.cn"
LATENCY = 0.04
WORKERS = 3


# -- infrastructure ----------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def redis_url(tmp_path_factory) -> Iterator[str]:
    """A private redis-server on a free loopback port, no persistence."""
    import redis as redis_py

    workdir = tmp_path_factory.mktemp("redis")
    for _attempt in range(5):
        port = free_port()
        process = subprocess.Popen(
            [REDIS_SERVER, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", str(workdir), "--protected-mode", "yes"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        client = redis_py.Redis(port=port, socket_connect_timeout=1)
        for _ in range(100):
            try:
                client.ping()
                break
            except redis_py.ConnectionError:
                if process.poll() is not None:
                    break
                time.sleep(0.05)
        else:
            process.kill()
            continue
        if process.poll() is None:
            break
    else:  # pragma: no cover
        pytest.fail("could not start redis-server")
    try:
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        process.terminate()
        process.wait(timeout=10)


def demo_registry() -> Path:
    import simweb

    return Path(simweb.__file__).with_name("demo_sites.toml")


class HostTracker:
    """Counts requests in flight per host inside the simulated web's proxy."""

    def __init__(self, latency: dict[str, float]) -> None:
        self.latency = latency
        self.lock = threading.Lock()
        self.active: Counter[str] = Counter()
        self.peak: Counter[str] = Counter()
        self.total: Counter[str] = Counter()


@contextlib.contextmanager
def tracked_web(latency: dict[str, float]) -> Iterator[tuple[Any, HostTracker]]:
    from simweb import SimWeb
    from simweb.server import _Handler

    tracker = HostTracker(latency)
    original = _Handler._serve

    def serve(handler: Any, head: bool) -> None:
        url = handler._absolute_url()
        host = urlsplit(url).hostname if url else None
        if host is None:
            return original(handler, head)
        with tracker.lock:
            tracker.active[host] += 1
            tracker.total[host] += 1
            tracker.peak[host] = max(tracker.peak[host], tracker.active[host])
        try:
            if host in tracker.latency:
                time.sleep(tracker.latency[host])
        finally:
            # No longer in flight *before* the answer is written: a client frees its host slot
            # only once it has the answer, so a request counted while this one still is
            # really overlapped it. (Counting until after the write let a descheduled server
            # thread overlap the next worker's request by a moment on a loaded machine.)
            with tracker.lock:
                tracker.active[host] -= 1
        return original(handler, head)

    _Handler._serve = serve
    try:
        # The slow host answers after 30 s x 0.2 = 6 s, well after the 1 s timeout even on a
        # loaded machine (at 0.05, 1.5 s, the answer beat the timeout under load: 'ok', not 'timeout').
        with SimWeb(port=0, day=1, delay_scale=0.2) as web:
            yield web, tracker
    finally:
        _Handler._serve = original


def run_env(web: Any) -> dict[str, str]:
    return {**os.environ, "http_proxy": web.proxy_url, "https_proxy": web.proxy_url, "no_proxy": "",
            "PYTHONPATH": str(ROOT)}


def start(args: list[str], env: dict[str, str], log: Path | None = None) -> subprocess.Popen:
    out = open(log, "w") if log else subprocess.PIPE
    return subprocess.Popen([sys.executable, *args], cwd=ROOT, env=env, stdout=out,
                            stderr=subprocess.STDOUT, text=True)


def states_of(db_path: Path) -> dict[str, str]:
    import sqlite3

    with sqlite3.connect(db_path) as conn:
        return dict(conn.execute("SELECT url, state FROM link_checks ORDER BY id").fetchall())


def duplicate_checks(db_path: Path) -> list[tuple]:
    import sqlite3

    with sqlite3.connect(db_path) as conn:
        return conn.execute("SELECT crawl_id, url, COUNT(*) FROM link_checks GROUP BY 1, 2"
                            " HAVING COUNT(*) > 1").fetchall()


def crawl_rows(db_path: Path) -> list[tuple]:
    import sqlite3

    with sqlite3.connect(db_path) as conn:
        return conn.execute("SELECT site_id, status, pages, links_checked, finish_reason FROM crawls"
                            " ORDER BY id").fetchall()


def wait_for_text(path: Path, text: str, process: subprocess.Popen, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and text in path.read_text():
            return
        if process.poll() is not None:
            raise AssertionError(f"{path.name}: exited with {process.returncode}:\n{path.read_text()}")
        time.sleep(0.05)
    raise AssertionError(f"{path.name}: no {text!r} after {timeout} s")


def worker_log(output: str) -> str:
    """The Scrapy log a worker's output names."""
    import re

    log = re.search(r"^log: (.+)$", output, re.M)
    assert log, output
    return Path(log.group(1)).read_text()


def worker_requests(output: str) -> int:
    """``downloader/request_count`` from a worker's Scrapy log."""
    import re

    count = re.search(r"'downloader/request_count': (\d+)", worker_log(output))
    return int(count.group(1)) if count else 0


def retried(outputs: list[str]) -> set[tuple[str, str]]:
    """(method, URL) of every request some worker retried (timeouts, 5xx)."""
    import re

    return {(m, u) for out in outputs for m, u in re.findall(r"Retrying <(\w+) (\S+)>", worker_log(out))}


def timed_out_hosts(outputs: list[str]) -> set[str]:
    """Hosts some worker gave up a request to after the download timeout: the proxy may still
    be serving it when the slot goes to the next request."""
    import re

    return {urlsplit(u).hostname or "" for out in outputs
            for u in re.findall(r"<\w+ (\S+)>[^\n]*took longer than", worker_log(out))}


def _ppid(pid: int) -> int:
    with open(f"/proc/{pid}/stat") as f:
        return int(f.read().rsplit(")", 1)[1].split()[1])


def distributed_crawl(redis_url: str, prefix: str, tmp: Path, *, kill_after: int | None = None,
                      settings: tuple[str, ...] = (), env_extra: dict[str, str] | None = None,
                      ) -> dict[str, Any]:
    """Writer + WORKERS workers against a tracked simulated web; optionally SIGKILL one worker
    once the crawl has checked ``kill_after`` URLs and the victim holds leased requests."""
    from archive.itemqueue import connect
    from crawler.distributed import Jobs

    db_path = tmp / "archive.db"
    result: dict[str, Any] = {"db": db_path}
    with tracked_web({MEASURED_HOST: LATENCY}) as (web, tracker):
        env = {**run_env(web), **(env_extra or {})}
        writer = start(["-m", "xxgk.distributed_cli", "archive-writer", "--redis", redis_url,
                        "--db", str(db_path), "--prefix", prefix], env, tmp / "writer.out")
        workers = []
        try:
            for i in range(WORKERS):
                workers.append(start(["-m", "xxgk.distributed_cli", "crawl", "--workers", redis_url,
                                      "--prefix", prefix, "--registry", str(demo_registry()),
                                      "--db", str(db_path), *CRAWL_SETTINGS, *DISTRIBUTED_SETTINGS,
                                      *settings],
                                     env, tmp / f"worker{i}.out"))
                if i == 0:  # the first one coordinates; the others join its job
                    wait_for_text(tmp / "worker0.out", "coordinating", workers[0])
            jobs = Jobs(connect(redis_url), prefix)
            if kill_after is not None:
                result["killed"] = kill_one_worker(jobs, workers[0].pid, kill_after)
            codes = [w.wait(timeout=240) for w in workers]
            result["job"] = jobs.current()
            result["stats"] = jobs.stats(result["job"])
        finally:
            for w in workers:
                if w.poll() is None:
                    w.kill()
            writer.send_signal(signal.SIGTERM)
            writer.wait(timeout=60)
        result["log"] = web.request_log
        result["peak"] = dict(tracker.peak)
        result["total"] = dict(tracker.total)
    result["codes"] = codes
    result["outputs"] = [(tmp / f"worker{i}.out").read_text() for i in range(WORKERS)]
    result["writer"] = (tmp / "writer.out").read_text()
    return result


def kill_one_worker(jobs: Any, coordinator_cli_pid: int, kill_after: int) -> dict[str, Any]:
    """SIGKILL a non-coordinator worker process while it holds leases; return what it held."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        job = jobs.current()
        if job is not None and jobs.state(job) == "running":
            seen = jobs.server.scard(f"{jobs.prefix}:job:{job}:dupefilter")
            for worker_id, info in jobs.workers(job).items():
                pid = info.get("pid")
                if (seen >= kill_after and info["alive"] and info["in_flight"] >= 2
                        and _ppid(pid) != coordinator_cli_pid):
                    os.kill(pid, signal.SIGKILL)
                    time.sleep(0.2)
                    # What it held when it died (the reaper acts only once its heartbeat expires).
                    leased = jobs.server.hvals(f"{jobs.prefix}:job:{job}:inflight:{worker_id}")
                    return {"worker": worker_id, "pid": pid, "in_flight": len(leased), "seen": seen,
                            "urls": [leased_url(v) for v in leased]}
        time.sleep(0.02)
    raise AssertionError("no worker to kill: the crawl ended or never started")


def leased_url(entry: bytes) -> str:
    """The URL of an in-flight entry (``score\\nhost\\0request``, scrapy-redis' pickled dict)."""
    import pickle

    _score, _, member = entry.partition(b"\n")
    _host, _, data = member.partition(b"\0")
    return pickle.loads(data)["url"]


@pytest.fixture(scope="module")
def single(tmp_path_factory) -> dict[str, Any]:
    """The same crawl by one process (the default mode, no Redis), for comparison."""
    tmp = tmp_path_factory.mktemp("single")
    db_path = tmp / "archive.db"
    with tracked_web({MEASURED_HOST: LATENCY}) as (web, tracker):
        result = subprocess.run([sys.executable, "-m", "xxgk", "crawl", "--registry", str(demo_registry()),
                                 "--db", str(db_path), *CRAWL_SETTINGS], cwd=ROOT, env=run_env(web),
                                capture_output=True, text=True, timeout=300)
        assert result.returncode == 0, result.stdout + result.stderr
        return {"db": db_path, "log": web.request_log, "peak": dict(tracker.peak)}


@pytest.fixture(scope="module")
def distributed(redis_url, tmp_path_factory) -> dict[str, Any]:
    return distributed_crawl(redis_url, "plain", tmp_path_factory.mktemp("distributed"))


@pytest.fixture(scope="module")
def killed(redis_url, tmp_path_factory) -> dict[str, Any]:
    return distributed_crawl(redis_url, "killed", tmp_path_factory.mktemp("killed"), kill_after=150)


# -- the end-to-end proof ----------------------------------------------------------------------
def test_same_urls_and_states_as_truth_and_single_process(distributed, single):
    from simweb.truth import expected_links

    assert distributed["codes"] == [0] * WORKERS, distributed["outputs"]
    expected = expected_links(1)
    found = states_of(distributed["db"])
    mismatches = {u: (s, found.get(u, "MISSING")) for u, s in expected.items() if found.get(u) != s}
    assert not mismatches
    baseline = states_of(single["db"])
    assert {u: found[u] for u in expected} == {u: baseline[u] for u in expected}
    assert not duplicate_checks(distributed["db"])  # one verdict per URL and crawl
    rows = crawl_rows(distributed["db"])
    assert len(rows) == 4 and all(r[1] == "finished" and r[2] > 0 and r[3] > 0 for r in rows)
    summary = distributed["outputs"][0]
    assert "links by state:" in summary and "annual reports found: 5" in summary


def crawl_url(url: str) -> bool:
    """A URL the crawler itself requests: a linked URL of the truth, a trap page or a robots.txt
    (not what Chromium fetches for the pages it renders: scripts, styles, calls home)."""
    from simweb.truth import TRAP_PREFIXES, expected_links

    return (url in expected_links(1) or url.startswith(tuple(TRAP_PREFIXES))
            or ("://" in url and urlsplit(url).path == "/robots.txt"))


def test_no_url_fetched_twice(distributed, single):
    counts = Counter((m, u) for m, u, _s in distributed["log"] if crawl_url(u))
    baseline = Counter((m, u) for m, u, _s in single["log"] if crawl_url(u))
    assert sum(counts.values()) > 700
    repeated_anyway = {k for k, n in baseline.items() if n > 1}  # renders, retries, challenge reloads
    repeated_anyway |= retried(distributed["outputs"])  # a timeout on a loaded machine is retried
    # A challenge page is reloaded by Chromium while it tries the cookie script; workers do not
    # share the single process's one-pass-per-host bookkeeping, so each challenged URL may be.
    repeated_anyway |= {(m, u) for m, u, status in distributed["log"] if status in (412, 521)}
    # A redirect to a page already downloaded is answered from that download, but only by the
    # worker that downloaded it (crawler.middlewares.AnswerReuseMiddleware keeps no shared copy).
    import sqlite3

    with sqlite3.connect(single["db"]) as conn:
        repeated_anyway |= {("GET", u) for (u,) in conn.execute(
            "SELECT DISTINCT final_url FROM link_checks WHERE final_url IS NOT NULL AND final_url <> url")}
    # Likewise Chromium renders from the crawl's own download only in the worker that has it
    # (crawler.rendering.DOCUMENTS); another worker's browser downloads the page itself.
    for db in (single["db"], distributed["db"]):
        with sqlite3.connect(db) as conn:
            repeated_anyway |= {("GET", u) for (u,) in conn.execute(
                "SELECT DISTINCT url FROM snapshots WHERE rendered = 1")}
    twice = {k: n for k, n in counts.items() if n > 1 and k not in repeated_anyway}
    assert not twice, twice
    # robots.txt too: fetched once for the job (as often as one process fetches it), not per worker.
    robots = {k: n for k, n in counts.items() if urlsplit(k[1]).path == "/robots.txt"}
    assert robots and all(n <= baseline[k] for k, n in robots.items()), robots
    # Work was shared: every worker fetched a fair part.
    shares = [worker_requests(out) for out in distributed["outputs"]]
    assert all(n > 50 for n in shares), shares


def test_same_evidence_screenshots_as_single_process(distributed, single):
    """Workers keep evidence of the pages a single process keeps it of: the checklist URLs
    come from the writer as they were when the job started, not from each worker's own read
    of a growing archive."""
    import sqlite3

    def evidence(db: Path) -> set[str]:
        with sqlite3.connect(db) as conn:
            return {u for (u,) in conn.execute(
                "SELECT url FROM snapshots WHERE rendered = 1 AND render_reason LIKE 'evidence%'")}

    # A render that failed (a deadline on a loaded machine) is logged and leaves no row.
    import re

    logs = [f.read_text() for db in (single["db"], distributed["db"]) for f in (db.parent / (db.name + ".logs")).glob("*.log")]
    failed = {u for text in logs for u in re.findall(r"no screenshot for (\S+):", text)}
    assert evidence(single["db"]) and evidence(distributed["db"]) - failed == evidence(single["db"]) - failed


def test_per_host_limit_holds_across_workers(distributed, single):
    # Three workers with 8 requests per host each would put up to 24 at once on the host;
    # the shared limit keeps it at HOST_LIMIT, and the limit is what held it (it was reached).
    assert distributed["total"][MEASURED_HOST] > 100
    if MEASURED_HOST in timed_out_hosts(distributed["outputs"]):  # a loaded machine: 0.04 s took > 1 s
        assert HOST_LIMIT <= distributed["peak"][MEASURED_HOST] <= HOST_LIMIT + 1
    else:
        assert distributed["peak"][MEASURED_HOST] == HOST_LIMIT
    assert single["peak"][MEASURED_HOST] > HOST_LIMIT  # the same crawl alone goes wider
    # No host ever saw more than the limit (the slow host is left out: its answers outlast
    # the 1 s download timeout, so the proxy still serves requests the crawler gave up on).
    over = {h: n for h, n in distributed["peak"].items() if n > HOST_LIMIT and not h.startswith("slow.")}
    browser_hosts = {"xxgk.webplus-univ.edu.cn", "xxgk.vsb-univ.edu.cn", "www.trs-univ.edu.cn",
                     "zsb.webplus-univ.edu.cn", "cwc.vsb-univ.edu.cn"}
    assert not set(over) - browser_hosts, over  # Chromium's own sub-requests are not Scrapy's


def test_killed_worker_loses_nothing(killed):
    from simweb.truth import expected_links

    victim = killed["killed"]
    assert victim["in_flight"] >= 1  # it died holding leased requests
    codes = killed["codes"]
    assert codes[0] == 0 and sorted(codes[1:]) == [0, 1], killed["outputs"]
    assert killed["stats"].get("requeued", 0) >= victim["in_flight"]
    assert killed["stats"].get("dead_workers") == 1
    expected = expected_links(1)
    found = states_of(killed["db"])
    mismatches = {u: (s, found.get(u, "MISSING")) for u, s in expected.items() if found.get(u) != s}
    assert not mismatches  # none lost, and each with the verdict a whole crawl gives it
    assert not duplicate_checks(killed["db"])  # and each checked exactly once in the archive
    # The very requests the victim held when it died were re-queued and checked by the others
    # (the not-found probes excepted: their URLs are random, and they are not checks).
    held = [u for u in victim["urls"] if u in expected]
    assert held, victim["urls"]
    assert all(u in found for u in held), held
    rows = crawl_rows(killed["db"])
    assert all(r[1] == "finished" for r in rows)
    assert any("re-queued" in (r[4] or "") for r in rows)
    assert "recovered:" in killed["outputs"][0]


# -- pieces ------------------------------------------------------------------------------------
def test_a_second_job_revisits_only_a_few_pages_of_the_calendar_the_first_cut_short(redis_url, tmp_path):
    """End to end: two distributed jobs, one after the other, crawl the JSP college and its
    endless calendar; the second job's workers learn from the writer which calendar family
    the first job cut short, and fetch only the revisit budget of it."""
    from simweb import SimWeb
    from simweb.truth import TRAP_PREFIXES

    registry = tmp_path / "jsp.toml"
    registry.write_text('[[site]]\nid = "jsp"\nname = "模拟职业技术学院"\n'
                        'portal = ["http://info.jsp-college.edu.cn/index.jsp"]\n'
                        'allowed_domains = ["info.jsp-college.edu.cn"]\nrender = "never"\nmax_pages = 1500\n',
                        encoding="utf-8")
    db_path, prefix = tmp_path / "archive.db", "revisit-e2e"
    calendar_requests = []
    with SimWeb(port=0, day=1, delay_scale=0.05) as web:
        env = run_env(web)
        writer = start(["-m", "xxgk.distributed_cli", "archive-writer", "--redis", redis_url,
                        "--db", str(db_path), "--prefix", prefix], env, tmp_path / "writer.out")
        try:
            for day in (1, 2):
                before = len(web.request_log)
                worker = start(["-m", "xxgk.distributed_cli", "crawl", "--workers", redis_url, "--prefix", prefix,
                                "--registry", str(registry), "--db", str(db_path), *CRAWL_SETTINGS,
                                "-s", "XXGK_TRAP_REVISIT_BUDGET=7"], env, tmp_path / f"worker{day}.out")
                assert worker.wait(timeout=240) == 0, (tmp_path / f"worker{day}.out").read_text()
                calendar_requests.append(sum(1 for _m, url, _s in web.request_log[before:]
                                             if url.startswith(tuple(TRAP_PREFIXES))))
        finally:
            writer.send_signal(signal.SIGTERM)
            writer.wait(timeout=60)
    import sqlite3

    with sqlite3.connect(db_path) as conn:
        crawls = [crawl_id for (crawl_id,) in conn.execute("SELECT id FROM crawls WHERE status = 'finished' ORDER BY id")]
        refused = [conn.execute("SELECT COUNT(*) FROM link_checks WHERE crawl_id = ? AND rule = 'trap-guard'"
                                " AND error LIKE 'pattern-budget:%' AND url LIKE '%calendar%'", [c]).fetchone()[0]
                   for c in crawls]
    assert len(crawls) == 2 and all(refused), refused  # both jobs record the family as cut short
    assert calendar_requests[0] >= 50 and 0 < calendar_requests[1] <= 7, calendar_requests


def test_items_round_trip_through_the_wire_format():
    from archive.itemqueue import ItemDecodeError, decode, encode_control, encode_item
    from crawler.items import Evidence, LinkCheck, LinkSource, OverheadBytes

    check = LinkCheck(site_id="s", crawl_id=3, url="http://a.cn/x", checked_at="2026-01-01T00:00:00Z",
                      state="ok", rule="http-200", body=b"\x00\xffbody" * 1000, screenshot=b"png",
                      headers={"etag": '"1"'}, redirect_chain=["http://a.cn/"], title="标题")
    assert decode(encode_item(check)) == check
    source = LinkSource("s", 3, "http://a.cn/", "http://a.cn/x", "链接", "2026-01-01T00:00:00Z")
    assert decode(encode_item(source)) == source
    evidence = Evidence("s", 3, "u", "f", "t", 200, "text/html", b"<html>", b"\x89PNG", "evidence: empty")
    assert decode(encode_item(evidence)) == evidence
    overhead = OverheadBytes("s", 3, "http://a.cn/robots.txt", 120)
    assert decode(encode_item(overhead)) == overhead
    assert decode(encode_control("finish_crawls", job=1)) == {"t": "control", "op": "finish_crawls", "job": 1}
    with pytest.raises(ItemDecodeError):
        decode(b"\x80\x04pickle")
    with pytest.raises(TypeError):
        encode_item({"not": "an item"})


def test_writer_keeps_one_verdict_and_recovers_an_unfinished_batch(redis_url, tmp_path):
    from archive.itemqueue import ArchiveWriterLoop, ItemQueue, connect, encode_control, encode_item
    from crawler.items import LinkCheck, LinkSource

    server = connect(redis_url)
    prefix = "writer-test"
    queue = ItemQueue(server, prefix)
    sites = [{"id": "s", "name": "S", "portal": '["http://a.cn/"]', "allowed_domains": '["a.cn"]',
              "schedule": None, "render": "auto", "max_pages": 10, "kind": None}]
    server.set(f"{prefix}:job:7:state", "starting")
    queue.push(encode_control("start_crawls", job=7, sites=sites))
    queue.push(encode_control("start_crawls", job=8, sites=sites))  # given up: no crawls for it
    db_path = tmp_path / "a.db"
    loop = ArchiveWriterLoop(server, db_path, prefix=prefix, post_crawl=False)
    loop.run(drain=True)
    crawl_id = int(server.hget(f"{prefix}:job:7:crawls", "s"))
    assert not server.exists(f"{prefix}:job:8:crawls")

    def check(url: str, state: str = "ok") -> bytes:
        return encode_item(LinkCheck(site_id="s", crawl_id=crawl_id, url=url, checked_at="2026-01-01T00:00:00Z",
                                     state=state, rule="r", body=b"same bytes"))

    for payload in [check("http://a.cn/1"), check("http://a.cn/1", "not_found"), check("http://a.cn/2"),
                    encode_item(LinkSource("s", crawl_id, "http://a.cn/1", "http://a.cn/2", "x", "t")),
                    encode_item(LinkSource("s", crawl_id, "http://a.cn/1", "http://a.cn/2", "x", "t")),
                    b"garbage"]:
        queue.push(payload)
    stats = loop.run(drain=True)
    assert stats.items == 4 and stats.skipped_duplicates == 1 and stats.dead == 1  # sources: INSERT OR IGNORE
    loop.close()
    # A writer that died after taking a batch: the next one re-applies it, writing nothing twice.
    queue.push(check("http://a.cn/3"))
    queue.push(check("http://a.cn/2"))
    assert len(queue.take(10)) == 2
    loop = ArchiveWriterLoop(server, db_path, prefix=prefix, post_crawl=False)
    queue.push(encode_control("finish_crawls", job=7, status="finished"))
    server.set(f"{prefix}:job:7:state", "done")
    loop.run(drain=True)
    loop.close()
    import sqlite3

    with sqlite3.connect(db_path) as conn:
        assert dict(conn.execute("SELECT url, state FROM link_checks")) == {
            "http://a.cn/1": "ok", "http://a.cn/2": "ok", "http://a.cn/3": "ok"}
        assert conn.execute("SELECT COUNT(*) FROM blobs").fetchone()[0] == 1  # content-addressed
        assert conn.execute("SELECT COUNT(*) FROM link_sources").fetchone()[0] == 1
        assert conn.execute("SELECT status, links_checked FROM crawls").fetchone() == ("finished", 3)
    assert server.get(f"{prefix}:job:7:state") == b"closed"
    assert server.llen(f"{prefix}:items:dead") == 1


def test_a_page_a_worker_cannot_process_leaves_its_sites_crawl_incomplete(redis_url, tmp_path):
    """As in single-process crawls (tests/test_processing_faults.py): a callback exception on
    one worker costs that page, and its site's crawl ends incomplete, not finished."""
    import json
    import sqlite3

    fault = ("-s", "SPIDER_MIDDLEWARES=" + json.dumps(
        {"crawler.overhead.RobotsBytesMiddleware": 950, "tests.faultinject.RaiseInCallback": 960}))
    result = distributed_crawl(redis_url, "pagefault", tmp_path, settings=fault,
                               env_extra={"XXGK_TEST_FAULT_URL": "info.jsp-college.edu.cn/BigClass.jsp?id=72"})
    with sqlite3.connect(result["db"]) as conn:
        rows = {site: (status, reason) for site, status, reason
                in conn.execute("SELECT site_id, status, finish_reason FROM crawls")}
        checked = {url for (url,) in conn.execute("SELECT url FROM link_checks WHERE site_id = 'jsp'")}
    status, reason = rows.pop("jsp")
    assert status == "incomplete", reason
    assert reason.startswith("processing_errors: 1 page(s)") and "BigClass.jsp?id=72" in reason
    assert {status for status, _reason in rows.values()} == {"finished"}
    assert "http://info.jsp-college.edu.cn/index.jsp" in checked  # the rest of the site is archived


def test_items_the_writer_cannot_store_leave_their_crawl_incomplete(redis_url, tmp_path):
    from archive.itemqueue import ArchiveWriterLoop, ItemQueue, connect, encode_control, encode_item
    from crawler.distributed import DistributedCrawl
    from crawler.items import LinkCheck

    server = connect(redis_url)
    prefix = "unstored-test"
    queue = ItemQueue(server, prefix)
    sites = [{"id": site, "name": site.upper(), "portal": f'["http://{site}.cn/"]', "allowed_domains": f'["{site}.cn"]',
              "schedule": None, "render": "auto", "max_pages": 10, "kind": None} for site in ("s", "t", "u")]
    server.set(f"{prefix}:job:3:state", "starting")
    queue.push(encode_control("start_crawls", job=3, sites=sites))
    db_path = tmp_path / "a.db"
    loop = ArchiveWriterLoop(server, db_path, prefix=prefix, post_crawl=False)
    loop.run(drain=True)
    crawls = {k.decode(): int(v) for k, v in server.hgetall(f"{prefix}:job:3:crawls").items()}

    def check(site: str, url: str, state: str = "ok") -> bytes:
        return encode_item(LinkCheck(site_id=site, crawl_id=crawls[site], url=url,
                                     checked_at="2026-01-01T00:00:00Z", state=state, rule="r", body=b"x"))

    for payload in [check("s", "http://s.cn/1"), check("s", "http://s.cn/2", "not-a-state"),
                    check("t", "http://t.cn/1"), check("u", "http://u.cn/1")]:
        queue.push(payload)
    # A worker met a page of site u it could not process.
    server.hset(f"{prefix}:job:3:meta", "sites", "[]")  # what a coordinator publishes for its workers
    DistributedCrawl(server, prefix=prefix, job=3).record_processing_error("u", "http://u.cn/2: RuntimeError: x")
    queue.push(encode_control("finish_crawls", job=3, status="finished"))
    server.set(f"{prefix}:job:3:state", "done")
    loop.run(drain=True)
    loop.close()
    import sqlite3

    with sqlite3.connect(db_path) as conn:
        rows = {site: (status, reason) for site, status, reason
                in conn.execute("SELECT site_id, status, finish_reason FROM crawls")}
        assert conn.execute("SELECT COUNT(*) FROM link_checks WHERE url = 'http://s.cn/2'").fetchone()[0] == 0
    assert rows["t"] == ("finished", "finished")
    assert rows["s"][0] == "incomplete" and rows["s"][1].startswith("processing_errors: 1 ")
    assert "http://s.cn/2" in rows["s"][1] and "not-a-state" in rows["s"][1]
    assert rows["u"][0] == "incomplete" and "http://u.cn/2: RuntimeError: x" in rows["u"][1]
    assert not server.exists(f"{prefix}:processing_errors")  # spent once the crawls closed


def test_leases_of_a_dead_worker_return_to_the_queue(redis_url):
    import json

    from archive.itemqueue import connect
    from crawler.distributed import DistributedCrawl

    server = connect(redis_url)
    prefix, job = "lease-test", 1
    server.hset(f"{prefix}:job:{job}:meta", "sites", json.dumps([{"id": "s", "name": "S", "portal": ["http://a.cn/"],
                                                                  "allowed_domains": ["a.cn"]}]))
    server.hset(f"{prefix}:job:{job}:crawls", "s", 1)
    server.set(f"{prefix}:job:{job}:state", "running")
    # Heartbeats that outlive any Redis round trip on a loaded machine (a 0.5 s one expired
    # mid-test); a's death is made explicit below, as its heartbeat key's expiry would.
    a = DistributedCrawl(server, prefix=prefix, job=job, worker_id="a", ttl=60)
    b = DistributedCrawl(server, prefix=prefix, job=job, worker_id="b", ttl=60)
    a.beat()
    b.beat()
    assert 0 < server.pttl(a.heartbeat_key) <= 60_000  # a heartbeat that does expire
    assert a.push(b"r1", 0, "fp1") and a.push(b"r2", -1, "fp2")
    assert not b.push(b"r1-again", 0, "fp1")  # seen: not queued twice
    assert a.claim_seeding() and not b.claim_seeding()
    a.seeding_done()
    lease1, data1 = a.pop()
    assert data1 == b"r2"  # highest priority first (score -1)
    assert a.try_finish() == 0  # something is in flight
    assert b.reap() == (0, 0)  # a is alive
    assert server.delete(a.heartbeat_key) == 1  # a dies: its heartbeat expires
    assert b.reap() == (1, 1)
    assert server.zcard(b.queue_key) == 2
    popped = [b.pop(), b.pop()]
    assert sorted(d for _, d in popped) == [b"r1", b"r2"]
    assert b.try_finish() == 0
    for lease, _ in popped:
        b.server.hdel(b.inflight_key, lease)
    assert b.try_finish() == 1 and b.try_finish() == 2
    assert server.get(f"{prefix}:job:{job}:state") == b"done"
    assert server.llen(f"{prefix}:items") == 1  # the finish message, queued with the state change


class _Released:
    """Stands in for DistributedCrawl: records which leases were dropped or queued again."""

    def __init__(self) -> None:
        self.acked: list[str] = []
        self.nacked: list[str] = []

    def ack(self, lease: str, host: str) -> None:
        self.acked.append(lease)

    def nack(self, lease: str, host: str) -> None:
        self.nacked.append(lease)


def test_a_lease_is_dropped_only_once_everything_it_produced_is_handed_on():
    from scrapy import Request
    from twisted.python.failure import Failure

    from crawler.distributed import LeaseSpiderMiddleware, LeaseTracker, _unwrapped_errback
    from crawler.items import LinkSource

    released = _Released()
    tracker = LeaseTracker(released)  # type: ignore[arg-type]
    middleware = LeaseSpiderMiddleware(tracker)

    def errback(failure: Failure) -> list[Any]:
        return [LinkSource("s", 1, "http://a.cn/", "http://a.cn/x", "x", "t")]

    # A response: the callback's output passes the middleware; the lease waits for each of
    # its requests to be queued and each item to leave the pipeline, in whatever order.
    parent = Request("http://a.cn/", errback=errback)
    tracker.leased(parent, "1", "a.cn")
    assert _unwrapped_errback(parent) is errback  # what scrapy-redis serializes
    from scrapy.http import HtmlResponse

    response = HtmlResponse("http://a.cn/", body=b"<html></html>", request=parent)
    item = LinkSource("s", 1, "http://a.cn/", "http://a.cn/y", "y", "t")
    copy = parent.replace(url="http://a.cn/z")  # a new request built from the parent
    output = list(middleware.process_spider_output(response, iter([Request("http://a.cn/y"), item, copy])))
    assert "xxgk_lease" not in copy.meta  # a child, not the parent's replacement
    assert released.acked == []  # the callback is done, but nothing it produced is in Redis yet
    tracker.child_done(output[0])
    tracker.item_scraped(item)
    assert released.acked == []
    tracker.child_done(copy)
    assert released.acked == ["1"]

    # A failure: the spider's errback runs through the wrapper, its output is counted too.
    failing = Request("http://a.cn/gone", errback=errback)
    tracker.leased(failing, "2", "a.cn")
    produced = list(failing.errback(Failure(ValueError("boom"))))
    assert released.acked == ["1"]
    tracker.item_error(produced[0])  # the item could not be handed on: the request goes back
    assert released.nacked == ["2"]

    # No errback: the failure goes on to Scrapy unchanged and the lease is dropped.
    plain = Request("http://a.cn/plain")
    tracker.leased(plain, "3", "a.cn")
    failure = Failure(ValueError("boom"))
    assert plain.errback(failure) is failure and released.acked == ["1", "3"]

    # A redirect or retry: the replacement carries the lease; queueing it ends the original.
    redirected = Request("http://a.cn/old")
    tracker.leased(redirected, "4", "a.cn")
    replacement = redirected.replace(url="http://a.cn/new")
    entry = tracker.get(replacement.meta)
    assert entry is not None and not tracker.child_done(replacement)
    tracker.end(entry)
    assert released.acked == ["1", "3", "4"] and len(tracker) == 0


def test_shared_budget_and_trap_guard_decide_as_one_process_does(redis_url):
    import json

    from archive.itemqueue import connect
    from crawler.distributed import DistributedCrawl
    from crawler.spiders.portal import SiteRun
    from schedules.registry import Site

    server = connect(redis_url)
    prefix, job = "admit-test", 1
    site = {"id": "s", "name": "S", "portal": ["http://a.cn/"], "allowed_domains": ["a.cn"], "max_pages": 120}
    server.hset(f"{prefix}:job:{job}:meta", "sites", json.dumps([site]))
    server.hset(f"{prefix}:job:{job}:crawls", "s", 1)
    workers = [DistributedCrawl(server, prefix=prefix, job=job, worker_id=w) for w in ("a", "b")]
    runs = [w.new_run(w.sites[0]) for w in workers]
    alone = SiteRun(Site(**{k: tuple(v) if isinstance(v, list) else v for k, v in site.items()}), 1)
    urls = ["http://a.cn/list.jsp"]  # the plain path is one of its query variants
    urls += [f"http://a.cn/list.jsp?k{i}=1" for i in range(25)]  # 20 variants in all, then refused
    urls += [f"http://a.cn/list.jsp?k{i}=2" for i in range(3)]  # known variants: still fine
    urls += [f"http://a.cn/cal.jsp?year=2020&month={m}&day={d}" for m in range(1, 4) for d in range(1, 21)]
    urls += [f"http://a.cn/info/{n}.htm" for n in range(60)]  # until the page budget runs out
    decided = [runs[i % 2].admit(u) for i, u in enumerate(urls)]  # two workers share the work
    assert decided == [alone.admit(u) for u in urls]
    assert decided.count(True) == 120 and decided[-1] is False  # the budget ran out
    assert decided[:26].count(False) == 6 and decided[26:29] == [True] * 3  # query variants
    assert decided[29:89].count(False) == 10  # 50 URLs per calendar pattern
    assert runs[0].admit(urls[0]) and runs[1].admit(urls[1])  # admitted before: admitted again
    # Per site a handful of keys, not one per path or URL.
    assert len(list(server.scan_iter(f"{prefix}:job:{job}:site:s:*"))) <= 5


def test_workers_learn_from_the_writer_what_the_archive_knew_when_the_job_started(redis_url, tmp_path):
    """The writer publishes, with a job's crawl ids, what each site's last finished crawl
    refused for a used-up pattern budget, and the checklist item URLs known: every worker's
    trap guard then gives those calendar families the revisit budget, and every worker keeps
    evidence of the same pages, as a single-machine crawl does (workers may have no archive)."""
    import json

    from archive.db import open_db
    from archive.itemqueue import ArchiveWriterLoop, ItemQueue, connect, encode_control
    from archive.store import ArchiveWriter, finish_crawl, start_crawl, upsert_sites
    from crawler.distributed import DistributedCrawl
    from crawler.items import LinkCheck
    from crawler.spiders.portal import TRAP_REFUSALS, SiteRun, _evidence_urls, _known_traps
    from crawler.urls import TrapGuard
    from schedules.registry import Site

    db_path = tmp_path / "a.db"
    site = {"id": "s", "name": "S", "portal": ["http://a.cn/"], "allowed_domains": ["a.cn"], "max_pages": 500}
    row = {**site, "portal": json.dumps(site["portal"]), "allowed_domains": json.dumps(site["allowed_domains"])}
    db = open_db(db_path)
    upsert_sites(db, [row])
    previous = start_crawl(db, "s")
    writer = ArchiveWriter(db)
    for url, reason in (("http://a.cn/cal.jsp?year=2020&month=1&day=21", "pattern-budget"),
                        ("http://a.cn/list.jsp?page=61", "pattern-budget"),  # paging: keeps its budget
                        ("http://a.cn/a/b/c/d/e/f/g/h/i/j/k/l/m.htm", "depth")):
        writer.record_check(LinkCheck(site_id="s", crawl_id=previous, url=url, checked_at="2026-01-01T00:00:00Z",
                                      state="excluded", rule="trap-guard", detail=TRAP_REFUSALS[reason]))
    writer.commit()
    finish_crawl(db, previous, "finished")
    db["site_items"].insert({"site_id": "s", "item_number": 1, "url": "http://a.cn/zsjz.htm", "source": "report",
                             "first_seen": "2026-01-01T00:00:00Z", "last_seen": "2026-01-01T00:00:00Z"})
    db.conn.close()

    server = connect(redis_url)
    prefix, job = "revisit-test", 1
    server.hset(f"{prefix}:job:{job}:meta", "sites", json.dumps([site]))
    server.set(f"{prefix}:job:{job}:state", "starting")
    ItemQueue(server, prefix).push(encode_control("start_crawls", job=job, sites=[row]))
    loop = ArchiveWriterLoop(server, db_path, prefix=prefix, post_crawl=False)
    loop.run(drain=True)
    loop.close()
    crawl_id = int(server.hget(f"{prefix}:job:{job}:crawls", "s"))
    assert json.loads(server.hget(f"{prefix}:job:{job}:trap_refusals", "s")) == [
        "http://a.cn/cal.jsp?year=2020&month=1&day=21", "http://a.cn/list.jsp?page=61"]

    workers = [DistributedCrawl(server, prefix=prefix, job=job, worker_id=w, revisit_budget=5) for w in "ab"]
    assert workers[1].evidence_urls == _evidence_urls(str(db_path)) == {"http://a.cn/zsjz.htm"}
    # The URLs the site's reports cite: every worker seeds the same (checked linked or not).
    assert workers[0].cited_urls == workers[1].cited_urls == {"s": ["http://a.cn/zsjz.htm"]}
    runs = [w.new_run(w.sites[0]) for w in workers]
    known = _known_traps(str(db_path), "s", crawl_id)
    assert runs[0].guard.known_traps == known == {"a.cn/cal.jsp?day=0&month=0&year=0"}
    alone = SiteRun(Site(**{k: tuple(v) if isinstance(v, list) else v for k, v in site.items()}), crawl_id,
                    guard=TrapGuard(known_traps=known, revisit_budget=5))
    urls = [f"http://a.cn/cal.jsp?year=2020&month=2&day={d}" for d in range(1, 21)]
    urls += [f"http://a.cn/list.jsp?page={n}" for n in range(1, 61)]
    decided = [runs[i % 2].admit(u) for i, u in enumerate(urls)]
    assert decided == [alone.admit(u) for u in urls]
    assert decided[:20].count(True) == 5  # the known calendar: the revisit budget
    assert decided[20:].count(True) == 60  # paging: its own (larger) budget, not the calendar's
    # a calendar URL past the budget: refused, and recorded so (the next crawl knows too)
    late = "http://a.cn/cal.jsp?year=2020&month=3&day=1"
    assert runs[1].admit(late) is alone.admit(late) is False
    assert runs[1].refusal == alone.refusal == "pattern-budget"


def test_host_slots_are_shared_and_freed_when_a_worker_dies(redis_url):
    from archive.itemqueue import connect
    from crawler.distributed import _ACQUIRE

    server = connect(redis_url)
    acquire = server.register_script(_ACQUIRE)
    keys = ["slot-test:host:h:slots", "slot-test:host:h:next"]
    server.delete(*keys)
    # Heartbeats that outlive any Redis round trip on a loaded machine (300 ms ones expired
    # mid-test); w1's death is made explicit below, as its heartbeat key's expiry would.
    server.set("slot-test:worker:w1", 1, px=60_000)
    server.set("slot-test:worker:w2", 1, px=60_000)

    def take(token: str, delay_ms: int = 0) -> int:
        return int(acquire(keys=keys, args=[token, 2, delay_ms, 60_000, "slot-test:worker:"]))

    assert take("w1|1") == 0 and take("w2|1") == 0
    assert take("w2|2") > 0  # two in flight on the host: the third waits
    server.zrem(keys[0], "w2|1")
    assert take("w2|2") == 0
    assert take("w2|3") > 0  # still busy: w1's slot is held while w1 lives
    assert server.delete("slot-test:worker:w1") == 1  # w1 dies holding its slot: the slot is freed
    assert take("w2|3") == 0
    server.delete(keys[0])
    # A delay between starts no Redis round trip outlasts, however slow the machine.
    assert take("w2|4", delay_ms=60_000) == 0
    server.zrem(keys[0], "w2|4")
    assert 0 < take("w2|5", delay_ms=60_000) <= 60_000  # the delay between starts holds too
    server.delete(*keys, "slot-test:worker:w2")


def test_single_machine_mode_never_imports_redis():
    code = ("import sys; import xxgk.cli, xxgk.distributed_cli, crawler.spiders.portal, crawler.pipelines;"
            "xxgk.cli.build_parser(); print('redis' in sys.modules, 'scrapy_redis' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                            env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=60)
    assert result.stdout.split() == ["False", "False"], result.stderr
