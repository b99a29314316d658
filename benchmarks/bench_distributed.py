"""Distributed crawling: throughput with 1, 2, 3 workers, and the single writer's ceiling.

    python -m benchmarks.bench_distributed [--workers 1,2,3] [--hosts 64] [--pages 16]
                                           [--latency 1.0] [--writer-items 20000] [--quick]

Needs ``redis-server`` (started here on a free loopback port, no persistence).

Crawl throughput: a generated web of ``--hosts`` university portals (each the
:class:`benchmarks.bigweb.BigWeb` portal of ``--pages`` pages, served under its own host
name by one asyncio proxy) whose every answer takes ``--latency`` seconds, as far-away
servers do. The same registry is crawled by one ordinary ``xxgk crawl`` process (no Redis),
then by 1, 2 and 3 ``xxgk crawl --workers`` processes plus the archive writer. Every process
may have 16 requests in flight and 4 per host (distributed: 4 per host across all workers,
enforced in Redis), so more workers help when a worker's own concurrency is the bound, as
with slow, far-away servers. The last column is the most requests the proxy ever had in
flight on one host.

Writer ceiling: ``--writer-items`` items in the mix a real crawl produces (per page one
``LinkCheck`` with an 8 KB body and seven ``LinkSource`` links) are queued in Redis, then
one :class:`archive.itemqueue.ArchiveWriterLoop` drains them into a fresh archive: items/s
and pages/s it can write, which bounds any number of workers.

Nothing here asserts timings; on the 2-core benchmark machine, CPU (workers, writer, proxy
and Redis share it) limits scaling before the network does.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

from benchmarks.bigweb import BigWeb

ROOT = Path(__file__).resolve().parent.parent
DOMAIN = "bench-univ.edu.cn"
SETTINGS = ["-s", "DOWNLOAD_DELAY=0", "-s", "AUTOTHROTTLE_ENABLED=False", "-s", "CONCURRENT_REQUESTS=16",
            "-s", "CONCURRENT_REQUESTS_PER_DOMAIN=4", "-s", "XXGK_DOWNLOAD_TIMEOUT=10", "-s", "RETRY_TIMES=1"]
DISTRIBUTED = ["-s", "XXGK_HOST_CONCURRENCY=4", "-s", "XXGK_WORKER_TTL=5"]


class ManyHostsWeb(BigWeb):
    """``hosts`` copies of the BigWeb portal, ``u00.bench-univ.edu.cn`` ..., each answer delayed."""

    def __init__(self, hosts: int, pages: int, latency: float) -> None:
        super().__init__(pages)
        self.hosts = [f"u{i:02d}.{DOMAIN}" for i in range(hosts)]
        self.latency = latency
        self.active: Counter[str] = Counter()
        self.peak: Counter[str] = Counter()

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
                self.active[host] += 1
                self.peak[host] = max(self.peak[host], self.active[host])
                try:
                    await asyncio.sleep(self.latency)
                finally:
                    self.active[host] -= 1
                if host in self.hosts:
                    status, ctype, body = self.answer(path)
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
            writer.close()

    def registry(self, path: Path) -> Path:
        lines = []
        for i, host in enumerate(self.hosts):
            lines += ["[[site]]", f'id = "u{i:02d}"', f'name = "基准大学{i:02d}"',
                      f'portal = "http://{host}/index.htm"', f'allowed_domains = ["{host}"]',
                      'render = "never"', "max_pages = 100000", ""]
        path.write_text("\n".join(lines), encoding="utf-8")
        return path


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


# -- runs ----------------------------------------------------------------------------------------
def _counts(db_path: Path) -> tuple[int, int]:
    with sqlite3.connect(db_path) as conn:
        checks = conn.execute("SELECT COUNT(*) FROM link_checks").fetchone()[0]
        pages = conn.execute("SELECT COUNT(*) FROM snapshots").fetchone()[0]
    return checks, pages


def run_single(web: ManyHostsWeb, registry: Path, work: Path) -> dict[str, Any]:
    db_path = work / "single.db"
    env = {**os.environ, "http_proxy": web.proxy_url, "https_proxy": web.proxy_url, "no_proxy": ""}
    web.peak.clear()
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "xxgk", "crawl", "--registry", str(registry), "--db", str(db_path),
                    *SETTINGS], cwd=ROOT, env=env, check=True, capture_output=True)
    wall = time.perf_counter() - started
    checks, pages = _counts(db_path)
    return {"mode": "single process (no Redis)", "workers": 1, "wall": wall, "checks": checks,
            "pages": pages, "peak": max(web.peak.values() or [0])}


def run_distributed(web: ManyHostsWeb, registry: Path, work: Path, redis_url: str, workers: int) -> dict[str, Any]:
    db_path = work / f"distributed-{workers}.db"
    prefix = f"bench{workers}"
    env = {**os.environ, "http_proxy": web.proxy_url, "https_proxy": web.proxy_url, "no_proxy": ""}
    web.peak.clear()
    cli = [sys.executable, "-m", "xxgk.distributed_cli"]
    writer = subprocess.Popen([*cli, "archive-writer", "--redis", redis_url, "--db", str(db_path),
                               "--prefix", prefix, "--no-post-crawl"], cwd=ROOT, env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    started = time.perf_counter()
    procs = []
    try:
        for i in range(workers):
            procs.append(subprocess.Popen([*cli, "crawl", "--workers", redis_url, "--prefix", prefix,
                                           "--registry", str(registry), "--db", str(db_path),
                                           *SETTINGS, *DISTRIBUTED], cwd=ROOT, env=env,
                                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True))
            if i == 0:  # let the first one create the job, so the others join it
                _wait_for_job(redis_url, prefix)
        outputs = [p.communicate(timeout=1800)[0] for p in procs]
        wall = time.perf_counter() - started
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
        writer.send_signal(signal.SIGTERM)
        writer_out = writer.communicate(timeout=120)[0]
    if any(p.returncode for p in procs):
        raise SystemExit("a worker failed:\n" + "\n".join(outputs))
    checks, pages = _counts(db_path)
    rate = re.search(r"\((\d+) items/s while writing\)", writer_out)
    return {"mode": f"distributed, {workers} worker(s)", "workers": workers, "wall": wall, "checks": checks,
            "pages": pages, "peak": max(web.peak.values() or [0]),
            "writer_rate": int(rate.group(1)) if rate else None}


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


def writer_ceiling(redis_url: str, work: Path, items: int) -> dict[str, Any]:
    """Queue ``items`` items in a crawl's mix, then time one writer draining them."""
    from archive.itemqueue import ArchiveWriterLoop, ItemQueue, connect, encode_control, encode_item
    from crawler.items import LinkCheck, LinkSource

    server = connect(redis_url)
    prefix = "ceiling"
    queue = ItemQueue(server, prefix)
    sites = [{"id": "c", "name": "C", "portal": '["http://c.edu.cn/"]', "allowed_domains": '["c.edu.cn"]',
              "schedule": None, "render": "never", "max_pages": 10**6, "kind": None}]
    server.set(f"{prefix}:job:1:state", "running")
    queue.push(encode_control("start_crawls", job=1, sites=sites))
    loop = ArchiveWriterLoop(server, work / "ceiling.db", prefix=prefix, post_crawl=False)
    loop.run(drain=True)
    crawl_id = int(server.hget(f"{prefix}:job:1:crawls", "c"))
    paragraph = "学校坚持以公开为常态、不公开为例外，依法依规做好信息公开工作。".encode()
    pages = max(1, items // 8)
    pipe = server.pipeline(transaction=False)
    for n in range(pages):
        url = f"http://c.edu.cn/info/{n}.htm"
        body = b"<html><body>" + paragraph * 70 + str(n).encode() + b"</body></html>"  # ~8 KB, unique
        pipe.rpush(queue.key, encode_item(LinkCheck(
            site_id="c", crawl_id=crawl_id, url=url, checked_at="2026-01-01T00:00:00Z", state="ok",
            rule="http-200", status_code=200, content_type="text/html; charset=utf-8", body=body,
            headers={"content-type": "text/html; charset=utf-8"}, title=f"第{n}号", main_text="正文" * 200)))
        for k in range(7):
            pipe.rpush(queue.key, encode_item(LinkSource("c", crawl_id, url, f"http://c.edu.cn/info/{n + k + 1}.htm",
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
            "pages_per_s": pages / wall}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workers", default="1,2,3", help="worker counts to run (default 1,2,3)")
    parser.add_argument("--hosts", type=int, default=64, help="generated portals (default 64)")
    parser.add_argument("--pages", type=int, default=16, help="pages per portal (default 16)")
    parser.add_argument("--latency", type=float, default=1.0, help="seconds per answer (default 1.0)")
    parser.add_argument("--writer-items", type=int, default=20000, help="items for the writer ceiling")
    parser.add_argument("--no-single", action="store_true", help="skip the single-process baseline")
    parser.add_argument("--quick", action="store_true", help="small sizes (a smoke run)")
    args = parser.parse_args(argv)
    if args.quick:
        args.hosts, args.pages, args.latency, args.writer_items = 6, 30, 0.2, 2000
    counts = [int(n) for n in args.workers.split(",") if n]
    with tempfile.TemporaryDirectory(prefix="xxgk-bench-distributed-") as tmp:
        work = Path(tmp)
        redis_process, redis_url = start_redis(work)
        try:
            rows = []
            with ManyHostsWeb(args.hosts, args.pages, args.latency) as web:
                registry = web.registry(work / "sites.toml")
                print(f"generated web: {args.hosts} hosts x {web.pages} pages, {args.latency:.2f} s per answer; "
                      f"{os.cpu_count()} CPU(s)", flush=True)
                if not args.no_single:
                    rows.append(run_single(web, registry, work))
                    print(f"  {rows[-1]['mode']}: {rows[-1]['wall']:.1f} s", flush=True)
                for n in counts:
                    rows.append(run_distributed(web, registry, work, redis_url, n))
                    print(f"  {rows[-1]['mode']}: {rows[-1]['wall']:.1f} s", flush=True)
            ceiling = writer_ceiling(redis_url, work, args.writer_items)
        finally:
            redis_process.terminate()
            redis_process.wait(10)
    base = next((r for r in rows if r["workers"] == 1 and "distributed" in r["mode"]), rows[0])
    print()
    print("| run | URLs checked | pages archived | wall s | URLs/s | vs 1 worker | max in flight per host |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        rate = r["checks"] / r["wall"]
        speedup = rate / (base["checks"] / base["wall"])
        print(f"| {r['mode']} | {r['checks']} | {r['pages']} | {r['wall']:.1f} | {rate:.1f} | {speedup:.2f}x "
              f"| {r['peak']} |")
    print()
    print(f"Single archive writer ceiling: {ceiling['items_per_s']:.0f} items/s "
          f"(~{ceiling['pages_per_s']:.0f} pages/s at 1 check + 7 links per page; "
          f"{ceiling['items']} items in {ceiling['wall']:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
