"""Distributed crawling at scale: thousands of portals, 1, 2, 3 workers, a killed worker,
and the single writer's ceiling.

    python -m benchmarks.bench_distributed [--hosts 2000] [--pages 3] [--big-hosts 8]
        [--big-pages 120] [--latency 0.25] [--workers 1,2,3] [--no-kill] [--no-single]
        [--writer-items 40000] [--quick]

Needs ``redis-server`` (started here on a free loopback port, no persistence).

The web: ``--hosts`` generated university portals, ``u0000.bench-univ.edu.cn`` ..., each a
:class:`benchmarks.bigweb.BigWeb` portal of ``--pages`` pages (home page, a list, articles,
a PDF attachment), and ``--big-hosts`` of them with ``--big-pages`` pages (so that per-host
limits are reached). One asyncio forward proxy serves them all, every answer delayed by
``--latency`` seconds as far-away servers are, and counts on its side: every (method, URL)
fetched, and the most requests in flight at once per host.

Runs, all over the same registry: one ordinary ``xxgk crawl`` (no Redis); 1, 2 and 3
``xxgk crawl --workers`` processes plus one ``xxgk archive-writer``; then 3 workers again,
one of them SIGKILLed when the job has seen about 40% of its URLs. Every process may have
``CONCURRENT_REQUESTS`` (16) requests in flight, 4 per host (distributed: 4 per host across
all workers, enforced in Redis). Reported per run: URLs checked (``link_checks``) and
whether URLs and states equal the single-process crawl; URLs the proxy saw fetched more
than once; the most in flight on one host (proxy-side); wall time and URLs/s; peak RSS of
the largest crawl process; Redis' peak memory and key count.

Writer ceiling: ``--writer-items`` items in a crawl's mix (per page one ``LinkCheck`` with
an 8 KB body and seven ``LinkSource`` links) are queued in Redis, then one
:class:`archive.itemqueue.ArchiveWriterLoop` drains them into a fresh archive.

Nothing here asserts timings; on the 2-core benchmark machine the workers, the writer,
the proxy and Redis share the CPU.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import platform
import re
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from benchmarks.bigweb import BigWeb

ROOT = Path(__file__).resolve().parent.parent
DOMAIN = "bench-univ.edu.cn"
CONCURRENCY = 16
HOST_LIMIT = 4
SETTINGS = ["-s", "DOWNLOAD_DELAY=0", "-s", "AUTOTHROTTLE_ENABLED=False",
            "-s", f"CONCURRENT_REQUESTS={CONCURRENCY}", "-s", f"CONCURRENT_REQUESTS_PER_DOMAIN={HOST_LIMIT}",
            "-s", "XXGK_DOWNLOAD_TIMEOUT=20", "-s", "RETRY_TIMES=1", "-s", "LOG_LEVEL=INFO",
            # The generated host names resolve only at the proxy; the SSRF guard would ask this
            # machine's resolver about each of them in every process (here up to 5 s per name).
            "-s", "XXGK_SSRF_GUARD=False"]
DISTRIBUTED = ["-s", f"XXGK_HOST_CONCURRENCY={HOST_LIMIT}", "-s", "XXGK_WORKER_TTL=5"]


class ManyHostsWeb(BigWeb):
    """Many generated portals behind one proxy; every answer delayed; server-side counts."""

    def __init__(self, hosts: int, pages: int, latency: float, big_hosts: int = 0, big_pages: int = 0) -> None:
        super().__init__(pages)
        self.hosts = [f"u{i:04d}.{DOMAIN}" for i in range(hosts)]
        small, big = BigWeb(pages), BigWeb(big_pages or pages)
        self.sites = {h: (big if i < big_hosts else small) for i, h in enumerate(self.hosts)}
        self.latency = latency
        self.active: Counter[str] = Counter()
        self.peak: Counter[str] = Counter()
        self.fetches: Counter[tuple[str, str]] = Counter()

    def reset(self) -> None:
        self.requests = 0
        self.active.clear()
        self.peak.clear()
        self.fetches.clear()

    def expected_urls(self) -> int:
        """Distinct URLs a crawl should check (pages + attachments), over all hosts."""
        return sum(_urls_of(web) for web in self.sites.values())

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                line = head.split(b"\r\n", 1)[0].decode("latin-1")
                method, target = (line.split(" ") + ["", ""])[:2]
                length = re.search(rb"\r\ncontent-length:\s*(\d+)", head, re.I)
                if length:
                    await reader.readexactly(int(length.group(1)))
                match = re.match(r"^https?://([^/:]+)", target)
                host = match.group(1) if match else ""
                path = re.sub(r"^https?://[^/]+", "", target).split("?", 1)[0] or "/"
                self.fetches[(method, target)] += 1
                self.active[host] += 1
                self.peak[host] = max(self.peak[host], self.active[host])
                try:
                    await asyncio.sleep(self.latency)
                finally:
                    self.active[host] -= 1
                site = self.sites.get(host)
                if site is not None:
                    status, ctype, body = site.answer(path)
                else:
                    status, ctype, body = 502, "text/plain", b"unknown host"
                self.requests += 1
                reason = {200: "OK", 404: "Not Found", 502: "Bad Gateway"}[status]
                payload = (f"HTTP/1.1 {status} {reason}\r\nContent-Type: {ctype}\r\n"
                           f"Content-Length: {len(body)}\r\nServer: bench\r\n\r\n").encode()
                payload += b"" if method == "HEAD" else body
                writer.write(payload)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError):
            pass
        finally:
            with contextlib.suppress(RuntimeError):
                writer.close()

    def registry(self, path: Path) -> Path:
        lines = []
        for i, host in enumerate(self.hosts):
            lines += ["[[site]]", f'id = "u{i:04d}"', f'name = "基准大学{i:04d}"',
                      f'portal = "http://{host}/index.htm"', f'allowed_domains = ["{host}"]',
                      'render = "never"', "max_pages = 100000", ""]
        path.write_text("\n".join(lines), encoding="utf-8")
        return path


def _urls_of(web: BigWeb) -> int:
    attachments = sum(1 for n in range(web.lists) for k in range(web._articles_in(n)) if k % 50 == 0)
    return web.pages + attachments


# -- redis ---------------------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_redis(workdir: Path) -> tuple[subprocess.Popen, str]:
    import redis

    server = shutil.which("redis-server")
    if server is None:
        raise SystemExit("redis-server is not installed (Debian: apt-get install -y redis-server)")
    port = free_port()
    process = subprocess.Popen([server, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                                "--appendonly", "no", "--dir", str(workdir)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    client = redis.Redis(port=port)
    for _ in range(200):
        try:
            client.ping()
            return process, f"redis://127.0.0.1:{port}/0"
        except redis.ConnectionError:
            time.sleep(0.05)
    process.kill()
    raise SystemExit("redis-server did not start")


# -- measuring -----------------------------------------------------------------------------------
def _descendants(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def _hwm_kb(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status") as f:
            match = re.search(r"^VmHWM:\s+(\d+)", f.read(), re.M)
    except OSError:
        return 0
    return int(match.group(1)) if match else 0


@contextlib.contextmanager
def sampler(redis_url: str | None) -> Iterator[dict[str, int]]:
    """Peak RSS of any process under this one, Redis memory and key count, sampled twice a second."""
    peaks = {"rss_kb": 0, "redis_bytes": 0, "redis_keys": 0}
    stop = threading.Event()
    client = None
    if redis_url:
        import redis

        client = redis.Redis.from_url(redis_url)

    def loop() -> None:
        while not stop.wait(0.5):
            for pid in _descendants(os.getpid()):
                peaks["rss_kb"] = max(peaks["rss_kb"], _hwm_kb(pid))
            if client is not None:
                with contextlib.suppress(Exception):
                    peaks["redis_bytes"] = max(peaks["redis_bytes"], int(client.info("memory")["used_memory"]))
                    peaks["redis_keys"] = max(peaks["redis_keys"], int(client.dbsize()))

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    try:
        yield peaks
    finally:
        stop.set()
        thread.join(5)


def states(db_path: Path) -> dict[str, str]:
    with sqlite3.connect(db_path) as conn:
        return dict(conn.execute("SELECT url, state FROM link_checks"))


def _archive_facts(db_path: Path) -> dict[str, Any]:
    with sqlite3.connect(db_path) as conn:
        checks = conn.execute("SELECT COUNT(*) FROM link_checks").fetchone()[0]
        dupes = conn.execute("SELECT COUNT(*) FROM (SELECT 1 FROM link_checks GROUP BY crawl_id, url"
                             " HAVING COUNT(*) > 1)").fetchone()[0]
        crawls = dict(conn.execute("SELECT status, COUNT(*) FROM crawls GROUP BY status"))
    return {"checks": checks, "dupes": dupes, "crawls": crawls, "states": states(db_path)}


def _refetched(web: ManyHostsWeb) -> int:
    """(method, URL) pairs the proxy served more than once (probe URLs are random: never)."""
    return sum(1 for n in web.fetches.values() if n > 1)


# -- runs ----------------------------------------------------------------------------------------
def _env(web: ManyHostsWeb) -> dict[str, str]:
    return {**os.environ, "http_proxy": web.proxy_url, "https_proxy": web.proxy_url, "no_proxy": ""}


def run_single(web: ManyHostsWeb, registry: Path, work: Path) -> dict[str, Any]:
    db_path = work / "single.db"
    web.reset()
    with sampler(None) as peaks:
        started = time.perf_counter()
        result = subprocess.run([sys.executable, "-m", "xxgk", "crawl", "--registry", str(registry),
                                 "--db", str(db_path), *SETTINGS], cwd=ROOT, env=_env(web),
                                capture_output=True, text=True)
        wall = time.perf_counter() - started
    if result.returncode != 0:
        raise SystemExit(f"the single-process crawl failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
    return {"mode": "single process (no Redis)", "workers": 1, "wall": wall, **_archive_facts(db_path),
            "peak": max(web.peak.values() or [0]), "refetched": _refetched(web), "requests": web.requests,
            "rss_mb": peaks["rss_kb"] / 1024, "redis_mb": None, "redis_keys": None}


def run_distributed(web: ManyHostsWeb, registry: Path, work: Path, redis_url: str, workers: int, *,
                    kill_at: float | None = None, expected: int = 0) -> dict[str, Any]:
    """``workers`` workers + the writer; ``kill_at``: SIGKILL one non-coordinating worker's crawl
    process once the job has seen that fraction of ``expected`` URLs."""
    db_path = work / f"distributed-{workers}{'-kill' if kill_at else ''}.db"
    prefix = f"bench{workers}{'k' if kill_at else ''}"
    env = _env(web)
    web.reset()
    cli = [sys.executable, "-m", "xxgk.distributed_cli"]
    writer = subprocess.Popen([*cli, "archive-writer", "--redis", redis_url, "--db", str(db_path),
                               "--prefix", prefix, "--no-post-crawl"], cwd=ROOT, env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    procs: list[subprocess.Popen] = []
    killed: dict[str, Any] | None = None
    with sampler(redis_url) as peaks:
        started = time.perf_counter()
        try:
            for i in range(workers):
                procs.append(subprocess.Popen([*cli, "crawl", "--workers", redis_url, "--prefix", prefix,
                                               "--registry", str(registry), "--db", str(db_path),
                                               *SETTINGS, *DISTRIBUTED], cwd=ROOT, env=env,
                                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True))
                if i == 0:  # let the first one create the job, so the others join it
                    _wait_for_job(redis_url, prefix, timeout=600)
            if kill_at is not None:
                killed = _kill_one(redis_url, prefix, procs[0].pid, int(expected * kill_at))
            outputs = [p.communicate(timeout=7200)[0] for p in procs]
            wall = time.perf_counter() - started
        finally:
            for p in procs:
                if p.poll() is None:
                    p.kill()
            writer.send_signal(signal.SIGTERM)
            writer_out = writer.communicate(timeout=300)[0]
    codes = [p.returncode for p in procs]
    if kill_at is None and any(codes):
        raise SystemExit("a worker failed:\n" + "\n".join(o[-3000:] for o in outputs))
    if kill_at is not None and sorted(codes) != [0] * (workers - 1) + [1]:
        raise SystemExit(f"workers exited with {codes}:\n" + "\n".join(o[-3000:] for o in outputs))
    rate = re.search(r"\((\d+) items/s while writing\)", writer_out)
    items = re.search(r"wrote (\d+) items", writer_out)
    stats = _job_stats(redis_url, prefix)
    label = f"distributed, {workers} worker{'s' if workers > 1 else ''}"
    if kill_at is not None:
        label += ", 1 killed"
    return {"mode": label, "workers": workers, "wall": wall, **_archive_facts(db_path),
            "peak": max(web.peak.values() or [0]), "refetched": _refetched(web), "requests": web.requests,
            "rss_mb": peaks["rss_kb"] / 1024, "redis_mb": peaks["redis_bytes"] / 2**20,
            "redis_keys": peaks["redis_keys"], "writer_rate": int(rate.group(1)) if rate else None,
            "writer_items": int(items.group(1)) if items else None, "killed": killed, "stats": stats}


def _job_stats(redis_url: str, prefix: str) -> dict[str, int]:
    import redis

    client = redis.Redis.from_url(redis_url)
    job = client.get(f"{prefix}:job:current")
    raw = client.hgetall(f"{prefix}:job:{job.decode()}:stats") if job else {}
    return {k.decode(): int(v) for k, v in raw.items()}


def _wait_for_job(redis_url: str, prefix: str, timeout: float = 60) -> None:
    import redis

    client = redis.Redis.from_url(redis_url)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = client.get(f"{prefix}:job:current")
        if job and client.get(f"{prefix}:job:{job.decode()}:state") in (b"starting", b"running"):
            return
        time.sleep(0.05)
    raise SystemExit("the first worker did not start a job")


def _kill_one(redis_url: str, prefix: str, coordinator_cli: int, seen_target: int) -> dict[str, Any]:
    """SIGKILL the crawl process of a worker other than the coordinator's, holding leases."""
    from archive.itemqueue import connect
    from crawler.distributed import Jobs

    jobs = Jobs(connect(redis_url), prefix)
    deadline = time.monotonic() + 3600
    while time.monotonic() < deadline:
        job = jobs.current()
        if job is not None and jobs.state(job) == "running":
            seen = int(jobs.server.scard(f"{prefix}:job:{job}:dupefilter"))
            if seen >= seen_target:
                for worker_id, info in jobs.workers(job).items():
                    pid = info.get("pid")
                    if info["alive"] and info["in_flight"] >= 2 and _ppid(pid) != coordinator_cli:
                        os.kill(pid, signal.SIGKILL)
                        time.sleep(0.2)
                        held = int(jobs.server.hlen(f"{prefix}:job:{job}:inflight:{worker_id}"))
                        return {"seen": seen, "in_flight": held}
        time.sleep(0.05)
    raise SystemExit("no worker to kill")


def _ppid(pid: int) -> int:
    with open(f"/proc/{pid}/stat") as f:
        return int(f.read().rsplit(")", 1)[1].split()[1])


def writer_ceiling(redis_url: str, work: Path, items: int, sites: int = 1) -> dict[str, Any]:
    """Queue ``items`` items in a crawl's mix, spread over ``sites`` crawls, then time one
    writer draining them."""
    from archive.itemqueue import ArchiveWriterLoop, ItemQueue, connect, encode_control, encode_item
    from crawler.items import LinkCheck, LinkSource

    server = connect(redis_url)
    prefix = f"ceiling{sites}"
    queue = ItemQueue(server, prefix)
    rows = [{"id": f"c{i}", "name": f"C{i}", "portal": f'["http://c{i}.edu.cn/"]',
             "allowed_domains": f'["c{i}.edu.cn"]', "schedule": None, "render": "never", "max_pages": 10**6,
             "kind": None} for i in range(sites)]
    server.set(f"{prefix}:job:1:state", "running")
    queue.push(encode_control("start_crawls", job=1, sites=rows))
    loop = ArchiveWriterLoop(server, work / f"ceiling{sites}.db", prefix=prefix, post_crawl=False)
    loop.run(drain=True)
    crawl_ids = {k.decode(): int(v) for k, v in server.hgetall(f"{prefix}:job:1:crawls").items()}
    paragraph = "学校坚持以公开为常态、不公开为例外，依法依规做好信息公开工作。".encode()
    pages = max(1, items // 8)
    pipe = server.pipeline(transaction=False)
    for n in range(pages):
        site = f"c{n % sites}"
        crawl_id = crawl_ids[site]
        url = f"http://{site}.edu.cn/info/{n}.htm"
        body = b"<html><body>" + paragraph * 70 + str(n).encode() + b"</body></html>"  # ~8 KB, unique
        pipe.rpush(queue.key, encode_item(LinkCheck(
            site_id=site, crawl_id=crawl_id, url=url, checked_at="2026-01-01T00:00:00Z", state="ok",
            rule="http-200", status_code=200, content_type="text/html; charset=utf-8", body=body,
            headers={"content-type": "text/html; charset=utf-8"}, title=f"第{n}号", main_text="正文" * 200)))
        for k in range(7):
            pipe.rpush(queue.key, encode_item(LinkSource(site, crawl_id, url, f"http://{site}.edu.cn/info/{n + k + 1}.htm",
                                                         f"关于第{n + k + 1}号", "2026-01-01T00:00:00Z")))
        if n % 500 == 0:
            pipe.execute()
    pipe.execute()
    queued = queue.backlog()
    started = time.perf_counter()
    stats = loop.run(drain=True)
    wall = time.perf_counter() - started
    loop.close()
    return {"items": stats.items, "queued": queued, "wall": wall, "items_per_s": stats.items / wall,
            "pages_per_s": pages / wall, "sites": sites}


# -- report --------------------------------------------------------------------------------------
def report(rows: list[dict[str, Any]], ceilings: list[dict[str, Any]], expected: int) -> str:
    out: list[str] = []
    single = next((r for r in rows if r["mode"].startswith("single")), None)
    base = next((r for r in rows if r["workers"] == 1 and r["mode"].startswith("distributed")), None)
    base = base or (rows[0] if rows else None)
    base_rate = base["checks"] / base["wall"] if base else 1.0
    out += ["| run | URLs checked | = single | in archive twice | fetched twice | max in flight per host "
           "| wall s | URLs/s | vs 1 worker | peak RSS MB | Redis MB / keys |",
           "|---|---:|:-:|---:|---:|---:|---:|---:|---:|---:|---:|"] if rows else []
    for r in rows:
        same = "-" if single is None or r is single else ("yes" if r["states"] == single["states"] else
                                                           f"NO ({_diff(r['states'], single['states'])})")
        rate = r["checks"] / r["wall"]
        redis_cell = "-" if r["redis_mb"] is None else f"{r['redis_mb']:.0f} / {r['redis_keys']:,}"
        out.append(f"| {r['mode']} | {r['checks']:,} | {same} | {r['dupes']} | {r['refetched']} | {r['peak']} "
                   f"| {r['wall']:.1f} | {rate:.1f} | {rate / base_rate:.2f}x | {r['rss_mb']:.0f} | {redis_cell} |")
    out.append("")
    out.append(f"Expected URLs: {expected:,}. 'in archive twice': (crawl, URL) pairs with two verdicts; "
               "'fetched twice': (method, URL) pairs the proxy served more than once.")
    for r in rows:
        if r.get("killed"):
            k, st = r["killed"], r["stats"]
            out.append(f"Killed worker: SIGKILL at {k['seen']:,} URLs seen, holding {k['in_flight']} leased "
                       f"request(s); {st.get('requeued', 0)} re-queued from {st.get('dead_workers', 0)} dead "
                       f"worker(s); crawls {r['crawls']}.")
        if r.get("writer_rate"):
            out.append(f"Writer during '{r['mode']}': {r['writer_items']:,} items, {r['writer_rate']:,} items/s "
                       "while writing.")
    for c in ceilings:
        out.append(f"Single archive writer ceiling, {c['sites']:,} crawl(s): {c['items_per_s']:,.0f} items/s "
                   f"(~{c['pages_per_s']:,.0f} pages/s at 1 check + 7 links per page; "
                   f"{c['items']:,} items in {c['wall']:.1f} s)")
    return "\n".join(out)


def _diff(a: dict[str, str], b: dict[str, str]) -> str:
    missing = len(set(b) - set(a))
    extra = len(set(a) - set(b))
    changed = sum(1 for u in set(a) & set(b) if a[u] != b[u])
    return f"{missing} missing, {extra} extra, {changed} other state"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--workers", default="1,2,3", help="worker counts to run (default 1,2,3)")
    parser.add_argument("--hosts", type=int, default=2000, help="generated portals (default 2000)")
    parser.add_argument("--pages", type=int, default=3, help="pages per portal (default 3)")
    parser.add_argument("--big-hosts", type=int, default=8, help="portals with --big-pages pages (default 8)")
    parser.add_argument("--big-pages", type=int, default=120, help="pages of a big portal (default 120)")
    parser.add_argument("--latency", type=float, default=0.25, help="seconds per answer (default 0.25)")
    parser.add_argument("--writer-items", type=int, default=40000, help="items for the writer ceiling")
    parser.add_argument("--no-single", action="store_true", help="skip the single-process baseline")
    parser.add_argument("--no-kill", action="store_true", help="skip the killed-worker run")
    parser.add_argument("--quick", action="store_true", help="small sizes (a smoke run)")
    args = parser.parse_args(argv)
    if args.quick:
        args.hosts, args.pages, args.big_hosts, args.big_pages = 60, 3, 2, 40
        args.latency, args.writer_items = 0.1, 4000
    counts = [int(n) for n in args.workers.split(",") if n]
    with tempfile.TemporaryDirectory(prefix="xxgk-bench-distributed-") as tmp:
        work = Path(tmp)
        redis_process, redis_url = start_redis(work)
        try:
            rows = []
            with ManyHostsWeb(args.hosts, args.pages, args.latency, args.big_hosts, args.big_pages) as web:
                registry = web.registry(work / "sites.toml")
                expected = web.expected_urls()
                print(f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; {platform.node()}, "
                      f"{os.cpu_count()} CPU(s), Python {platform.python_version()}", flush=True)
                print(f"generated web: {args.hosts:,} hosts ({args.big_hosts} of {args.big_pages} pages, the others "
                      f"{args.pages}), {expected:,} URLs, {args.latency:.2f} s per answer; each process "
                      f"{CONCURRENCY} requests in flight, {HOST_LIMIT} per host", flush=True)
                runs: list[tuple[str, Any]] = []
                if not args.no_single:
                    runs.append(("single", None))
                runs += [("distributed", n) for n in counts]
                if not args.no_kill:
                    runs.append(("kill", max(3, max(counts, default=3))))
                for kind, n in runs:
                    if kind == "single":
                        row = run_single(web, registry, work)
                    else:
                        row = run_distributed(web, registry, work, redis_url, n,
                                              kill_at=0.4 if kind == "kill" else None, expected=expected)
                    rows.append(row)
                    print(f"  {row['mode']}: {row['checks']:,} URLs checked in {row['wall']:.1f} s, "
                          f"{row['requests']:,} requests served", flush=True)
            ceilings = [writer_ceiling(redis_url, work, args.writer_items, n)
                        for n in (1, args.hosts) if args.writer_items]
        finally:
            redis_process.terminate()
            redis_process.wait(10)
    print()
    print(report(rows, ceilings, expected))
    return 0


if __name__ == "__main__":
    sys.exit(main())
