"""The benchmark harness: ``python -m benchmarks.run [--quick] [--only NAMES] [--results FILE]``.

Sections (``--only`` takes a comma-separated subset):

``links``    links checked per second on the bundled simulated web (``SimWeb``, no delays):
             ``xxgk crawl`` of ``simweb/demo_sites.toml`` (as registered, and with
             ``render = "never"``), a bare Scrapy spider writing raw files
             (:mod:`benchmarks.bare_spider`), LinkChecker (its default per-host delay, and
             unthrottled through :class:`benchmarks.bigweb.HeaderRelay`) and ``wget --spider -r``
             (one process per portal, in parallel). "URLs requested" is counted at the server
             (distinct URLs, robots.txt excluded), the same way for every tool.
``overhead`` the archive's cost: ``xxgk crawl`` (render never) vs the bare spider on a
             generated portal (:mod:`benchmarks.bigweb`).
``day2``     day-2 recrawl of the simulated web: bytes transferred and new blob bytes as a
             fraction of day 1 (from ``crawls``, ``snapshots`` and ``blobs``).
``queries``  canned-query latency in Datasette on a synthetic archive
             (:mod:`benchmarks.make_synthetic`; 10 M ``link_checks``, 1 M ``snapshots``).
``rss``      peak RSS of ``xxgk crawl`` (the ``scrapy crawl`` child and its parent) over a
             100 000-page generated portal, from ``getrusage(RUSAGE_CHILDREN)``.

Every crawler runs with the same politeness: no download delay, no AutoThrottle, 8
concurrent requests per host, robots.txt obeyed. ``links`` compares with LinkChecker at two
equal levels: unthrottled (LinkChecker has no Retry-After handling, so ours gets
``XXGK_RETRY_AFTER_TIMES=0``: a 429/503 is recorded, not waited for) and at LinkChecker's
default of at most 10 requests per second per host (ours: one request at a time per host,
0.1 s apart). The row "as registered" also honours the simulated web's Retry-After. The bare
spider uses the project's
downloader (``crawler.politeness.PoliteDownloader``) so that its 8 per host really are 8:
Scrapy's stock downloader let 16 requests at once through to one host under the asyncio
reactor. Besides wall time, the tables give each tool's CPU time (user + system of its
processes, ``RUSAGE_CHILDREN``), which a machine shared with other work disturbs far less.
``--quick`` shrinks every size (the smoke
test runs it); the full run writes ``benchmarks/RESULTS.md``, and ``benchmarks/results.json``
with each section's raw tables and when it ran: ``--only`` re-runs some sections and keeps
the others' last results. Nothing here asserts timings.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import tomllib
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SECTIONS = ("links", "overhead", "day2", "queries", "rss")
QUICK_SITES = ["trs"]  # --quick crawls one simulated site, render=never: seconds, not minutes
POLITE = ["-s", "DOWNLOAD_DELAY=0", "-s", "AUTOTHROTTLE_ENABLED=False", "-s", "CONCURRENT_REQUESTS_PER_DOMAIN=8",
          "-s", "XXGK_DOWNLOAD_TIMEOUT=5", "-s", "RETRY_TIMES=1"]
NO_RETRY_AFTER = ["-s", "XXGK_RETRY_AFTER_TIMES=0"]  # LinkChecker does not wait for Retry-After either
# LinkChecker's default politeness: at most 10 requests a second to one host.
TEN_PER_HOST = [*NO_RETRY_AFTER, "-s", "CONCURRENT_REQUESTS_PER_DOMAIN=1", "-s", "DOWNLOAD_DELAY=0.1",
                "-s", "RANDOMIZE_DOWNLOAD_DELAY=False"]
TARGETS = {
    "links": "≥ 3x LinkChecker's links/s",
    "overhead": "archive overhead ≤ 25% over bare Scrapy",
    "day2": "day-2 bytes ≤ 10% of day 1",
    "queries": "canned-query p95 < 100 ms",
    "rss": "peak RSS < 500 MB",
}


@dataclass
class Results:
    quick: bool
    tables: dict[str, list[list[str]]] = field(default_factory=dict)
    verdicts: dict[str, tuple[bool | str | None, str]] = field(default_factory=dict)  # True, False, "partly"
    notes: dict[str, list[str]] = field(default_factory=dict)  # per section
    ran_at: dict[str, str] = field(default_factory=dict)  # per section: UTC time and load average

    def note(self, section: str, text: str) -> None:
        self.notes.setdefault(section, []).append(text)


def _env(proxy: str) -> dict[str, str]:
    return {**os.environ, "http_proxy": proxy, "https_proxy": proxy, "HTTP_PROXY": proxy, "HTTPS_PROXY": proxy,
            "no_proxy": "", "NO_PROXY": "", "PYTHONPATH": str(ROOT)}


def _children_cpu() -> float:
    """CPU seconds (user + system) of every child process reaped so far, grandchildren included."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


#: CPU seconds of the last command run by :func:`_timed` (or :func:`_wget`).
LAST_CPU = [0.0]


def _timed(command: list[str], env: dict[str, str], *, cwd: Path = ROOT, timeout: float = 3600) -> tuple[float, str]:
    started, cpu = time.perf_counter(), _children_cpu()
    result = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    wall = time.perf_counter() - started
    LAST_CPU[0] = _children_cpu() - cpu
    if result.returncode not in (0, 1, 4, 8):  # linkchecker 1 = broken links, wget 4/8 = network/server errors
        raise RuntimeError(f"{command[:4]} exited {result.returncode}:\n{result.stderr[-3000:]}")
    return wall, result.stdout + result.stderr


def _registry(path: Path, *, render: str | None = None, sites: list[str] | None = None,
              portal: str | None = None, max_pages: int | None = None) -> Path:
    """A registry file: the demo registry (optionally re-rendered/filtered), or one big site."""
    if portal:
        text = (f'[[site]]\nid = "big"\nname = "生成大学"\nportal = "{portal}"\nrender = "never"\n'
                f"max_pages = {max_pages or 200000}\n")
    else:
        import simweb

        source = tomllib.loads(Path(simweb.__file__).with_name("demo_sites.toml").read_text("utf-8"))
        lines = []
        for site in source["site"]:
            if sites and site["id"] not in sites:
                continue
            portals = site["portal"] if isinstance(site["portal"], list) else [site["portal"]]
            lines += ["[[site]]", f'id = "{site["id"]}"', f'name = "{site["name"]}"',
                      "portal = [" + ", ".join(f'"{u}"' for u in portals) + "]",
                      "allowed_domains = [" + ", ".join(f'"{d}"' for d in site["allowed_domains"]) + "]",
                      f'render = "{render or site.get("render", "auto")}"', f'max_pages = {site.get("max_pages", 2000)}',
                      ""]
        text = "\n".join(lines)
    path.write_text(text, encoding="utf-8")
    return path


def _requested(web: object) -> int:
    log = web.request_log  # type: ignore[attr-defined]
    return len({url for _method, url, _status in log if not url.endswith("/robots.txt")})


def _xxgk_crawl(registry: Path, db: Path, proxy: str, extra: list[str] | None = None) -> tuple[float, int]:
    wall, _out = _timed([sys.executable, "-m", "xxgk", "crawl", "--registry", str(registry), "--db", str(db),
                         *POLITE, *(extra or [])], _env(proxy))
    import sqlite3

    with sqlite3.connect(db) as conn:
        checks = conn.execute("SELECT COUNT(*) FROM link_checks WHERE crawl_id IN "
                              "(SELECT id FROM crawls WHERE id > (SELECT COALESCE(MAX(id), 0) FROM crawls) - ?)",
                              [len(tomllib.loads(registry.read_text("utf-8"))["site"])]).fetchone()[0]
    return wall, checks


def _bare_crawl(registry: Path, out: Path, proxy: str) -> tuple[float, int]:
    wall, output = _timed([sys.executable, "-m", "benchmarks.bare_spider", "--registry", str(registry),
                           "--out", str(out), *POLITE], _env(proxy))
    count = next((int(line.split(":")[1]) for line in output.splitlines() if line.startswith("links checked:")), 0)
    return wall, count


def _linkchecker(urls: list[str], proxy: str, work: Path, *, unthrottled: bool) -> tuple[float, int] | None:
    exe = shutil.which("linkchecker") or str(Path(sys.executable).with_name("linkchecker"))
    if not Path(exe).exists():
        return None
    config = work / "linkcheckerrc"
    config.write_text("[checking]\nthreads=16\nmaxrequestspersecond=1000\nrecursionlevel=-1\n"
                      "[output]\nstatus=0\nwarnings=0\n[filtering]\ncheckextern=1\n", encoding="utf-8")
    config.chmod(0o644)
    wall, _output = _timed([exe, "-f", str(config), "--check-extern", "--no-status", "--no-warnings", "-o", "csv",
                           "--user-agent", _user_agent(), *urls], _env(proxy), cwd=work)
    return wall, -1  # its CSV output is not a count of URLs checked: the server log counts


def _wget(urls: list[str], proxy: str, work: Path) -> tuple[float, int] | None:
    if not shutil.which("wget"):
        return None
    started, cpu = time.perf_counter(), _children_cpu()
    processes = [subprocess.Popen(
        ["wget", "--spider", "-r", "-l", "5", "-nv", "-e", "robots=on", "-e", "use_proxy=yes",
         "-e", f"http_proxy={proxy}", "--tries=2", "--timeout=5", f"--user-agent={_user_agent()}",
         "-P", str(work / f"wget-{i}"), url], cwd=work, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        for i, url in enumerate(urls)]
    lines = 0
    for process in processes:
        _out, err = process.communicate(timeout=3600)
        lines += sum(1 for line in err.splitlines() if " URL:" in line or "broken link" in line.lower())
    LAST_CPU[0] = _children_cpu() - cpu
    return time.perf_counter() - started, lines


def _user_agent() -> str:
    from crawler import settings as project

    return project.USER_AGENT


# -- sections ----------------------------------------------------------------------------------
def bench_links(res: Results, work: Path) -> Path:
    """Links/s of every tool on the simulated web; returns the xxgk (as registered) database."""
    from simweb import SimWeb

    rows: list[list[str]] = []
    only = QUICK_SITES if res.quick else None
    registry = _registry(work / "demo.toml", sites=only, render="never" if res.quick else None)
    never = _registry(work / "never.toml", render="never", sites=only)
    db = work / "links-auto.db"
    portals = [s.portal[0] for s in __import__("schedules.registry", fromlist=["x"]).load_registry(registry)]
    measured: dict[str, float] = {}
    with SimWeb(port=0, day=1, delay_scale=0) as web:
        def record(name: str, result: tuple[float, int] | None, note: str = "") -> None:
            if result is None:
                rows.append([name, "-", "-", "-", "-", "-", "not installed"])
                return
            wall, own = result
            requested = _requested(web)
            measured[name] = requested / wall
            rows.append([name, f"{wall:.1f}", f"{LAST_CPU[0]:.1f}", str(own) if own >= 0 else "-", str(requested),
                         f"{requested / wall:.1f}", note])

        runs = [
            ("xxgk crawl (registry as is)", lambda: _xxgk_crawl(registry, db, web.proxy_url),
             "render=never (quick)" if res.quick else "renders JS pages and challenges in Chromium; "
                                                       "waits as Retry-After asks"),
            ("xxgk crawl (as is, no Retry-After waits)",
             lambda: _xxgk_crawl(registry, work / "links-nowait.db", web.proxy_url, NO_RETRY_AFTER),
             "as LinkChecker: 429/503 recorded, not waited for"),
            ("xxgk crawl (render=never, no Retry-After waits)",
             lambda: _xxgk_crawl(never, work / "links-never.db", web.proxy_url, NO_RETRY_AFTER), ""),
            ("bare Scrapy, raw files", lambda: _bare_crawl(registry, work / "bare", web.proxy_url), "no archive"),
            ("xxgk crawl (as is, ≤ 10 requests/s per host)",
             lambda: _xxgk_crawl(registry, work / "links-ten.db", web.proxy_url, TEN_PER_HOST),
             "1 request at a time per host, 0.1 s apart; no Retry-After waits"),
            ("LinkChecker (default delay)", lambda: _linkchecker(portals, web.proxy_url, work, unthrottled=False),
             "its default: ≤ 10 requests/s per host (0.1-0.6 s apart)"),
        ]
        if res.quick:  # the same tools, fewer runs: the smoke test only proves the harness works
            runs = [runs[0], runs[3]]
        for name, run, note in runs:
            web.clear_log()
            record(name, run(), note)
        with _relay(web.proxy_url) as relay:
            web.clear_log()
            record("LinkChecker (unthrottled)", _linkchecker(portals, relay.proxy_url, work, unthrottled=True),
                   "server sends a LinkChecker header")
        web.clear_log()
        record("wget --spider -r", _wget(portals, web.proxy_url, work), "4 processes; -l 5 (no trap guard); no external links")
    res.tables["links"] = [["tool", "wall s", "CPU s", "own count", "URLs requested", "URLs/s", "note"], *rows]
    lc_free, lc_polite = measured.get("LinkChecker (unthrottled)"), measured.get("LinkChecker (default delay)")
    free = measured.get("xxgk crawl (as is, no Retry-After waits)") or measured.get("xxgk crawl (registry as is)")
    polite = measured.get("xxgk crawl (as is, ≤ 10 requests/s per host)")
    if free and lc_free:
        ratio_free = free / lc_free
        ratio_never = measured.get("xxgk crawl (render=never, no Retry-After waits)", 0) / lc_free
        ratio_waits = measured.get("xxgk crawl (registry as is)", 0) / lc_free
        text = (f"{ratio_free:.2f}x LinkChecker, both unthrottled ({ratio_never:.2f}x with render=never; "
                f"{ratio_waits:.2f}x honouring Retry-After)")
        met: bool | str = ratio_free >= 3
        if polite and lc_polite:
            ratio_polite = polite / lc_polite
            text = f"{ratio_polite:.2f}x LinkChecker at its default ≤ 10 requests/s per host; " + text
            met = "partly" if (ratio_polite >= 3) != (ratio_free >= 3) else ratio_polite >= 3
        res.verdicts["links"] = (met, text)
    return db


def _relay(upstream: str) -> object:
    from benchmarks.bigweb import HeaderRelay

    return HeaderRelay(upstream)


def bench_overhead(res: Results, work: Path, pages: int) -> None:
    from benchmarks.bigweb import BigWeb

    with BigWeb(pages=pages) as web:
        registry = _registry(work / "big.toml", portal=web.portal, max_pages=pages * 2)
        before = web.requests
        ours_wall, ours_count = _xxgk_crawl(registry, work / "overhead.db", web.proxy_url)
        ours_cpu = LAST_CPU[0]
        ours_requests = web.requests - before
        before = web.requests
        bare_wall, bare_count = _bare_crawl(registry, work / "bare-big", web.proxy_url)
        bare_cpu = LAST_CPU[0]
        bare_requests = web.requests - before
    overhead = ours_wall / bare_wall - 1
    cpu_overhead = ours_cpu / bare_cpu - 1 if bare_cpu else 0.0
    res.tables["overhead"] = [
        ["crawler", "pages", "requests", "wall s", "CPU s", "pages/s", "vs bare"],
        ["xxgk crawl (render=never)", str(ours_count), str(ours_requests), f"{ours_wall:.1f}", f"{ours_cpu:.1f}",
         f"{ours_count / ours_wall:.0f}", f"{ours_wall / bare_wall:.2f}x time, {ours_cpu / bare_cpu:.2f}x CPU"
         if bare_cpu else f"{ours_wall / bare_wall:.2f}x time"],
        ["bare Scrapy, raw files", str(bare_count), str(bare_requests), f"{bare_wall:.1f}", f"{bare_cpu:.1f}",
         f"{bare_count / bare_wall:.0f}", "1.00x"],
    ]
    res.verdicts["overhead"] = (overhead <= 0.25, f"{overhead * 100:+.0f}% wall time ({cpu_overhead * 100:+.0f}% CPU) "
                                                  f"over bare Scrapy ({pages:,}-page generated portal)")


def bench_day2(res: Results, work: Path) -> None:
    import sqlite3

    from simweb import SimWeb

    registry = _registry(work / "demo.toml", sites=QUICK_SITES if res.quick else None,
                         render="never" if res.quick else None)
    db = work / "day2.db"
    for old in work.glob("day2.db*"):
        shutil.rmtree(old) if old.is_dir() else old.unlink()
    served: dict[str, int] = {}
    # The server's count covers every client (Chromium's page loads, sub-resources and
    # evidence renders too), not only what the crawl's own accounting records.
    with SimWeb(port=0, day=1, delay_scale=0) as web:
        _xxgk_crawl(registry, db, web.proxy_url)
        served["1"] = sum(e.body_bytes for e in web.events)
        web.clear_log()
        web.set_day(2)
        _xxgk_crawl(registry, db, web.proxy_url)
        served["2"] = sum(e.body_bytes for e in web.events)
    with sqlite3.connect(db) as conn:
        ids = [r[0] for r in conn.execute("SELECT id FROM crawls ORDER BY id")]
        half = len(ids) // 2
        day1, day2 = ids[:half], ids[half:]

        def marks(xs: list[int]) -> str:
            return ",".join(str(x) for x in xs)

        sent = {d: conn.execute(f"SELECT SUM(bytes_received), SUM(links_checked) FROM crawls WHERE id IN ({marks(c)})")
                .fetchone() for d, c in (("1", day1), ("2", day2))}
        refs = ("SELECT sha256 FROM snapshots WHERE crawl_id IN ({}) AND sha256 IS NOT NULL UNION "
                "SELECT screenshot_sha256 FROM snapshots WHERE crawl_id IN ({}) AND screenshot_sha256 IS NOT NULL")
        blobs1 = conn.execute(f"SELECT COALESCE(SUM(size), 0), COALESCE(SUM(stored_size), 0) FROM blobs WHERE sha256 IN "
                              f"({refs.format(marks(day1), marks(day1))})").fetchone()
        new2 = conn.execute(f"SELECT COALESCE(SUM(size), 0), COALESCE(SUM(stored_size), 0), COUNT(*) FROM blobs WHERE "
                            f"sha256 IN ({refs.format(marks(day2), marks(day2))}) AND sha256 NOT IN "
                            f"({refs.format(marks(day1), marks(day1))})").fetchone()
        not_modified = conn.execute(f"SELECT SUM(not_modified), COUNT(*) FROM snapshots WHERE crawl_id IN ({marks(day2)})"
                                    ).fetchone()
    bytes_ratio = sent["2"][0] / sent["1"][0]
    served_ratio = served["2"] / served["1"] if served["1"] else 0.0
    blob_ratio = new2[0] / blobs1[0] if blobs1[0] else 0
    res.tables["day2"] = [
        ["measure", "day 1", "day 2", "day 2 / day 1"],
        ["body bytes transferred (crawls.bytes_received)", f"{sent['1'][0]:,}", f"{sent['2'][0]:,}", f"{bytes_ratio:.1%}"],
        ["body bytes the simulated web sent (every client, Chromium included)", f"{served['1']:,}",
         f"{served['2']:,}", f"{served_ratio:.1%}"],
        ["links checked", f"{sent['1'][1]:,}", f"{sent['2'][1]:,}", ""],
        ["blob bytes (new on day 2 vs all of day 1)", f"{blobs1[0]:,}", f"{new2[0]:,} ({new2[2]} blobs)", f"{blob_ratio:.1%}"],
        ["blob bytes stored (zlib)", f"{blobs1[1]:,}", f"{new2[1]:,}", f"{new2[1] / blobs1[1]:.1%}" if blobs1[1] else ""],
        ["day-2 snapshots answered 304", "", f"{not_modified[0]:,} of {not_modified[1]:,}", ""],
    ]
    met = True if max(bytes_ratio, served_ratio) <= 0.10 else ("partly" if bytes_ratio <= 0.10 else False)
    res.verdicts["day2"] = (met,
                            f"day 2 transferred {bytes_ratio:.1%} of day 1's body bytes ({served_ratio:.1%} as the "
                            f"server counts them, browser included); new blob bytes {blob_ratio:.1%}")


def bench_queries(res: Results, work: Path, checks: int, snapshots: int, samples: int) -> None:
    from benchmarks.make_synthetic import make_synthetic
    from benchmarks.queries import bench_queries as run
    from benchmarks.queries import percentile

    db = work / "synthetic.db"
    started = time.perf_counter()
    counts = make_synthetic(db, checks=checks, snapshots=snapshots, sites=100 if checks >= 1_000_000 else 5,
                            links_per_site=2000 if checks >= 1_000_000 else 200, echo=not res.quick)
    built = time.perf_counter() - started
    results = run(db, samples=samples)
    rows = [["query", "p50 ms", "p95 ms", "samples", "errors"]]
    for name, r in sorted(results.items(), key=lambda kv: -kv[1]["p95"]):
        rows.append([name, f"{r['p50']:.1f}", f"{r['p95']:.1f}", str(len(r["samples"])),
                     (r["errors"][0][:60] + "…") if r["errors"] else ""])
    every = [s for r in results.values() for s in r["samples"]]
    overall = percentile(every, 95)
    over = [n for n, r in results.items() if r["p95"] >= 100]
    rows.append(["all queries", f"{percentile(every, 50):.1f}", f"{overall:.1f}", str(len(every)), ""])
    res.tables["queries"] = rows
    res.note("queries", f"Synthetic archive: {counts['link_checks']:,} link_checks, {counts['snapshots']:,} snapshots, "
                     f"{counts['link_sources']:,} link_sources, {counts['links']:,} links, {counts['crawls']:,} crawls "
                     f"of {counts['sites']} sites; built in {built:.0f} s, {db.stat().st_size / 1e9:.2f} GB.")
    res.verdicts["queries"] = (overall < 100 and not over,
                               f"p95 over all canned queries {overall:.0f} ms; "
                               f"{len(over)} of {len(results)} queries have p95 ≥ 100 ms"
                               + (f" ({', '.join(sorted(over))})" if over else ""))


_RSS_HELPER = ("import resource, subprocess, sys\n"
               "r = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)\n"
               "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, r.returncode)\n")


def bench_rss(res: Results, work: Path, pages: int) -> None:
    import sqlite3

    from benchmarks.bigweb import BigWeb

    db = work / "rss.db"
    with BigWeb(pages=pages) as web:
        registry = _registry(work / "rss.toml", portal=web.portal, max_pages=pages * 2)
        started = time.perf_counter()
        output = subprocess.run(
            [sys.executable, "-c", _RSS_HELPER, sys.executable, "-m", "xxgk", "crawl", "--registry", str(registry),
             "--db", str(db), *POLITE], cwd=ROOT, env=_env(web.proxy_url), capture_output=True, text=True,
            timeout=7200).stdout.split()
        wall = time.perf_counter() - started
        requests = web.requests
    peak_kb, code = int(output[0]), int(output[1])
    with sqlite3.connect(db) as conn:
        checks, snaps = conn.execute("SELECT COUNT(*), (SELECT COUNT(*) FROM snapshots) FROM link_checks").fetchone()
    peak = peak_kb / 1024
    res.tables["rss"] = [["measure", "value"], ["pages in the portal", f"{pages:,}"],
                         ["URLs checked / snapshots", f"{checks:,} / {snaps:,}"], ["requests served", f"{requests:,}"],
                         ["wall time", f"{wall:.0f} s ({checks / wall:.0f} URLs/s)"],
                         ["peak RSS (largest process: the scrapy crawl child)", f"{peak:.0f} MB"],
                         ["exit code", str(code)], ["database size", f"{db.stat().st_size / 1e6:.0f} MB"]]
    res.verdicts["rss"] = (peak < 500, f"peak RSS {peak:.0f} MB over a {checks:,}-URL crawl")


# -- report ------------------------------------------------------------------------------------
def _table(rows: list[list[str]]) -> str:
    widths = [max(len(str(r[i])) for r in rows) for i in range(len(rows[0]))]
    lines = ["| " + " | ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)) + " |" for row in rows]
    lines.insert(1, "|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(lines)


def _machine() -> str:
    memory = next((line.split()[1] for line in Path("/proc/meminfo").read_text().splitlines()
                   if line.startswith("MemTotal")), "?") if Path("/proc/meminfo").exists() else "?"
    mem = f"{int(memory) / 1024 / 1024:.1f} GiB" if memory != "?" else "?"
    return (f"- nproc: {os.cpu_count()}\n"
            f"- memory: {mem}\n- uname -a: `{' '.join(platform.uname())}`\n- Python {platform.python_version()}")


def _stamp() -> str:
    """When a section ran, and how busy the machine was (wall times depend on it)."""
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg()) if hasattr(os, "getloadavg") else "?"
    return f"{datetime.now(UTC).strftime('%Y-%m-%d %H:%M UTC')}, load average {load}"


MET = {True: "yes", False: "NO", None: "?", "partly": "partly"}
TITLES = {"links": "Links checked per second (simulated web, SimWeb delay_scale=0)",
          "overhead": "Archive overhead (generated portal)", "day2": "Day-2 recrawl (simulated web)",
          "queries": "Canned-query latency in Datasette (synthetic archive)", "rss": "Peak memory of a large crawl"}


def report(res: Results) -> str:
    parts = [f"# Benchmarks{' (quick)' if res.quick else ''}", "", _machine(), "", "## Targets", "",
             _table([["target", "met", "result"], *[[TARGETS[k], MET[res.verdicts[k][0]], res.verdicts[k][1]]
                                                    for k in SECTIONS if k in res.verdicts]]), ""]
    for key in SECTIONS:
        if key not in res.tables:
            continue
        parts += [f"## {TITLES[key]}", ""]
        if key in res.ran_at:
            parts += [f"Run {res.ran_at[key]}.", ""]
        parts += [_table(res.tables[key]), ""]
        parts += [f"- {n}" for n in res.notes.get(key, [])]
        if res.notes.get(key):
            parts.append("")
    return "\n".join(parts)


def merge_previous(res: Results, path: Path) -> None:
    """Fill the sections this run skipped from ``path`` (the JSON of earlier runs)."""
    if not path.exists():
        return
    try:
        previous = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return
    for section in SECTIONS:
        if section in res.tables or section in res.verdicts or section not in previous.get("tables", {}):
            continue
        res.tables[section] = previous["tables"][section]
        if section in previous.get("verdicts", {}):
            met, text = previous["verdicts"][section]
            res.verdicts[section] = (met, text)
        res.notes[section] = previous.get("notes", {}).get(section, [])
        if section in previous.get("ran_at", {}):
            res.ran_at[section] = previous["ran_at"][section]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.run", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes (the smoke test)")
    parser.add_argument("--only", default=",".join(SECTIONS), help=f"sections: {','.join(SECTIONS)}")
    parser.add_argument("--results", type=Path, help="markdown output (default benchmarks/RESULTS.md, none with --quick)")
    parser.add_argument("--json", type=Path, help="raw tables as JSON (default benchmarks/results.json, none "
                                                  "with --quick); sections not run are kept from it")
    args = parser.parse_args(argv)
    wanted = [s.strip() for s in args.only.split(",") if s.strip()]
    unknown = set(wanted) - set(SECTIONS)
    if unknown:
        parser.error(f"unknown section(s): {', '.join(sorted(unknown))}")
    quick = args.quick
    res = Results(quick=quick)
    with tempfile.TemporaryDirectory(prefix="xxgk-bench-") as tmp:
        work = Path(tmp)
        for section in wanted:
            started = time.perf_counter()
            print(f"== {section} ...", flush=True)
            res.ran_at[section] = _stamp()
            try:
                if section == "links":
                    bench_links(res, work)
                elif section == "overhead":
                    bench_overhead(res, work, 200 if quick else 10_000)
                elif section == "day2":
                    bench_day2(res, work)
                elif section == "queries":
                    bench_queries(res, work, 20_000 if quick else 10_000_000, 2_000 if quick else 1_000_000,
                                  samples=2 if quick else 40)  # a p95 of 20 samples is their maximum
                elif section == "rss":
                    bench_rss(res, work, 200 if quick else 100_000)
            except Exception as exc:  # noqa: BLE001 - one failing section must not hide the others
                res.verdicts[section] = (None, f"failed: {type(exc).__name__}: {str(exc)[:300]}")
                res.note(section, f"{section} failed: {exc!r}"[:2000])
            print(f"   {section} done in {time.perf_counter() - started:.0f} s", flush=True)
    raw = args.json or (None if quick else ROOT / "benchmarks" / "results.json")
    if raw and not quick:
        merge_previous(res, raw)
    text = report(res)
    print(text)
    out = args.results or (None if quick else ROOT / "benchmarks" / "RESULTS.md")
    if out:
        previous = out.read_text(encoding="utf-8") if out.exists() else ""
        if "\n## Analysis" in previous:  # the hand-written reading of the numbers is kept
            text += previous[previous.index("\n## Analysis"):]
        out.write_text(text, encoding="utf-8")
        print(f"written to {out}")
    if raw:
        raw.write_text(json.dumps({"tables": res.tables, "verdicts": res.verdicts, "notes": res.notes,
                                   "ran_at": res.ran_at}, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    self_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"(harness peak RSS {self_rss:.0f} MB)")
    return 0 if all(v[0] is not None for v in res.verdicts.values()) else 1


if __name__ == "__main__":
    raise SystemExit(main())
