"""CLI verbs for crawling at scale: distributed workers, the archive writer, bulk registry tools.

Wired into ``xxgk`` (:mod:`xxgk.cli`) by:

* :func:`add_distributed_crawl_arguments` on the ``crawl`` parser, and
  ``if args.workers: return run_distributed_crawl(args)`` first thing in ``cmd_crawl``;
* :func:`add_archive_writer_parser` on the top-level subparsers, ``run_archive_writer``;
* :func:`add_registry_bulk_parsers` on the ``registry`` subparsers, and
  ``run_registry_bulk_command`` for ``registry import`` / ``registry check``.

``python -m xxgk.distributed_cli`` offers the same verbs on their own. Nothing here imports
redis or scrapy-redis until a distributed verb runs.

Exit codes as in :mod:`xxgk.cli`: 0 success, 1 the job ran and failed, 2 bad usage or
registry, 3 database unusable.
"""

from __future__ import annotations

import argparse
import logging
import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

from xxgk.argtypes import positive_int, positive_seconds

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_DB = 0, 1, 2, 3


def _say(text: str) -> None:
    print(f"xxgk: {text}", file=sys.stderr, flush=True)


# -- xxgk crawl --workers ------------------------------------------------------------------------
def add_distributed_crawl_arguments(crawl: argparse.ArgumentParser) -> None:
    """Options of ``xxgk crawl`` for distributed mode (the parser has --registry, --site, --db, -s)."""
    group = crawl.add_argument_group(
        "distributed crawling",
        "Run any number of `xxgk crawl --workers redis://HOST:PORT/0` processes, on any machines, "
        "plus one `xxgk archive-writer --redis ... --db ...` that owns the archive. The first worker "
        "(or --coordinator) starts the job from its registry; the others join it.")
    group.add_argument("--workers", metavar="REDIS_URL",
                       help="be a worker of the distributed crawl coordinated through this Redis")
    role = group.add_mutually_exclusive_group()
    role.add_argument("--coordinator", action="store_true",
                      help="start a new job (refused while one is running); default: join the running "
                           "job, or start one when none is running")
    role.add_argument("--join", action="store_true", help="only join a running job (wait for one)")
    role.add_argument("--abort", action="store_true",
                      help="abandon the running job: workers stop, its crawls end as incomplete")
    role.add_argument("--status", action="store_true", help="show the running job and its workers")
    group.add_argument("--prefix", default="xxgk",
                       help="Redis key prefix: one per archive (default: xxgk)")
    group.add_argument("--wait", type=float, default=300.0, metavar="SECONDS",
                       help="how long to wait for the archive writer / a job to join (default 300)")


def _worker_log_path(args: argparse.Namespace, job: int) -> Path:
    name = f"worker-{job}-{socket.gethostname()}-{os.getpid()}.log"
    if args.db:
        from xxgk.runcrawl import log_dir_for

        logs = log_dir_for(Path(args.db).resolve())
        logs.mkdir(parents=True, exist_ok=True)
        return logs / name
    return Path.cwd() / f"xxgk-{name}"


def launch_worker(*, redis_url: str, prefix: str, job: int, settings: dict[str, str],
                  db_path: str | None, log_path: Path | None, extra_env: dict[str, str] | None = None,
                  ) -> subprocess.Popen:
    """Start one ``scrapy crawl portal`` worker process of ``job`` (not waited for)."""
    from xxgk.runcrawl import PROJECT_ROOT, _die_with_parent

    db_setting = str(Path(db_path).resolve()) if db_path else ""
    command = [sys.executable, "-m", "scrapy", "crawl", "portal",
               "-s", f"XXGK_REDIS_URL={redis_url}", "-s", f"XXGK_JOB={job}",
               "-s", f"XXGK_REDIS_PREFIX={prefix}", "-s", f"XXGK_DB={db_setting}"]
    for name, value in settings.items():
        command += ["-s", f"{name}={value}"]
    env = {**os.environ, **(extra_env or {}), "SCRAPY_SETTINGS_MODULE": "crawler.settings",
           "XXGK_DB": db_setting}
    # crawler/settings.py derives Scrapy settings from XXGK_* values at import time.
    env.update({k: str(v) for k, v in settings.items() if k.startswith("XXGK_")})
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(PROJECT_ROOT), env.get("PYTHONPATH")]))
    log_file = open(log_path, "ab") if log_path else None
    try:
        return subprocess.Popen(command, cwd=PROJECT_ROOT, env=env, stdout=log_file,
                                stderr=subprocess.STDOUT if log_file else None,
                                start_new_session=True, preexec_fn=_die_with_parent)
    finally:
        if log_file:
            log_file.close()


def _wait_child(process: subprocess.Popen) -> int:
    import signal

    try:
        return process.wait()
    except KeyboardInterrupt:
        # Scrapy closes cleanly on SIGINT: unfinished requests go back to the shared queue.
        process.send_signal(signal.SIGINT)
        try:
            return process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            return process.wait()


def run_distributed_crawl(args: argparse.Namespace) -> int:
    """``xxgk crawl --workers REDIS_URL``: coordinate or join a distributed crawl, and work on it."""
    from archive.itemqueue import connect
    from crawler.distributed import JobError, Jobs
    from schedules.registry import load_registry, select_sites

    try:
        server = connect(args.workers)
    except Exception as exc:
        _say(f"cannot reach Redis at {args.workers}: {exc}")
        return EXIT_USAGE
    jobs = Jobs(server, args.prefix)
    if getattr(args, "status", False):
        return _print_status(jobs)
    if getattr(args, "abort", False):
        job = jobs.current()
        if job is None or not jobs.abort(job):
            _say("no running job to abort")
            return EXIT_FAILED
        _say(f"job {job} aborted: workers stop, the archive writer closes its crawls as incomplete")
        return EXIT_OK
    from xxgk.cli import split_setting

    own_settings = dict(split_setting(s) for s in (getattr(args, "set", None) or []))
    if getattr(args, "coordinator", False):
        mode = "create"
    elif getattr(args, "join", False):
        mode = "join"
    else:
        mode = "auto"
    sites = None
    if mode != "join":
        sites = select_sites(load_registry(args.registry), getattr(args, "site", None))
    try:
        if mode == "join":
            job = _wait_for_job(jobs, args.wait)
            role = "worker"
        else:
            role, job, _state = jobs.open(mode, starting_ttl=int(args.wait) + 60)
        if role == "coordinator":
            assert sites is not None
            log_path = _worker_log_path(args, job)
            jobs.publish(job, sites, own_settings, coordinator=socket.gethostname())
            _say(f"job {job}: coordinating {len(sites)} site(s); waiting for the archive writer")
            try:
                crawl_ids = jobs.wait_for_crawl_ids(job, len(sites), args.wait, progress=_say)
            except JobError:
                jobs.give_up(job)
                raise
            jobs.set_running(job)
            _say(f"job {job}: crawls {', '.join(f'{k}={v}' for k, v in crawl_ids.items())}")
        else:
            state = jobs.wait_running(job, args.wait)
            if state != "running":
                _say(f"job {job} is {state}: nothing to join")
                return EXIT_FAILED
            _say(f"job {job}: joining as a worker")
            log_path = _worker_log_path(args, job)
    except JobError as exc:
        _say(str(exc))
        return EXIT_USAGE
    settings = {**jobs.settings(job), **own_settings}
    process = launch_worker(redis_url=args.workers, prefix=args.prefix, job=job, settings=settings,
                            db_path=args.db if args.db and Path(args.db).exists() else None,
                            log_path=None if getattr(args, "verbose", False) else log_path)
    exit_code = _wait_child(process)
    if exit_code != 0:
        _say(f"worker process exited with {exit_code}; its unfinished requests are re-queued "
             "by the other workers (or by the next worker to join)")
    if role != "coordinator":
        print(f"log: {log_path}")
        return EXIT_OK if exit_code == 0 else EXIT_FAILED
    summary = jobs.wait_closed(job, timeout=None if args.wait <= 0 else max(args.wait, 3600), progress=_say)
    state = jobs.state(job)
    if summary is None:
        _say(f"job {job}: the archive writer has not closed the crawls yet")
        return EXIT_FAILED
    print(summary)
    stats = jobs.stats(job)
    if stats.get("requeued"):
        print(f"recovered: {stats['requeued']} request(s) re-queued from "
              f"{stats.get('dead_workers', 0)} dead worker(s)")
    print(f"log: {log_path}")
    return EXIT_OK if exit_code == 0 and state in ("closed", None) else EXIT_FAILED


def _wait_for_job(jobs: Any, timeout: float) -> int:
    import time

    from crawler.distributed import JobError

    deadline = time.monotonic() + timeout
    while True:
        try:
            return jobs.open("join")[1]
        except JobError:
            if time.monotonic() >= deadline:
                raise
            time.sleep(0.5)


def _print_status(jobs: Any) -> int:
    from archive.itemqueue import ItemQueue, job_key

    job = jobs.current()
    if job is None:
        print("no distributed crawl has run under this prefix")
        return EXIT_OK
    state = jobs.state(job) or "gone"
    queued = jobs.server.zcard(job_key(jobs.prefix, job, "requests"))
    backlog = ItemQueue(jobs.server, jobs.prefix).backlog()
    print(f"job {job}: {state}; {queued} request(s) queued; {backlog} item(s) waiting for the writer")
    crawl_ids = jobs.crawl_ids(job)
    if crawl_ids:
        print("crawls: " + ", ".join(f"{k}={v}" for k, v in crawl_ids.items()))
    for worker, info in sorted(jobs.workers(job).items()):
        print(f"  {worker}\t{'alive' if info['alive'] else 'gone'}\tpid {info.get('pid')}\t"
              f"{info['in_flight']} in flight")
    stats = jobs.stats(job)
    if stats:
        print("stats: " + ", ".join(f"{k} {v}" for k, v in sorted(stats.items())))
    return EXIT_OK


# -- xxgk archive-writer -------------------------------------------------------------------------
def add_archive_writer_parser(subparsers: Any) -> argparse.ArgumentParser:
    writer = subparsers.add_parser(
        "archive-writer", help="the single process writing distributed crawls into the archive",
        description="Pop the items that distributed crawl workers push to Redis and write them into "
                    "the SQLite archive (the only process that writes it); creates and closes the "
                    "crawls rows of each job. Stop with SIGTERM or Ctrl-C (the current batch "
                    "is finished first).")
    writer.add_argument("--redis", required=True, metavar="REDIS_URL", help="redis://HOST:PORT/DB")
    writer.add_argument("--db", default="xxgk.db", help="archive database (default: xxgk.db)")
    writer.add_argument("--prefix", default="xxgk", help="Redis key prefix (default: xxgk)")
    writer.add_argument("--batch", type=positive_int, default=500, help="items per transaction (default 500)")
    writer.add_argument("--drain", action="store_true", help="exit once no item is waiting")
    writer.add_argument("--idle-exit", type=positive_seconds, metavar="SECONDS",
                        help="exit after this long without items")
    writer.add_argument("--no-post-crawl", action="store_true",
                        help="skip change detection and evaluation when a job ends")
    writer.add_argument("--verbose", action="store_true", help="log every batch and job")
    return writer


def run_archive_writer(args: argparse.Namespace) -> int:
    from archive.db import ArchiveError
    from archive.itemqueue import ArchiveWriterLoop, connect

    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(asctime)s %(name)s %(levelname)s: %(message)s")
    try:
        server = connect(args.redis)
    except Exception as exc:
        _say(f"cannot reach Redis at {args.redis}: {exc}")
        return EXIT_USAGE
    try:
        loop = ArchiveWriterLoop(server, args.db, prefix=args.prefix, batch_size=args.batch,
                                 post_crawl=not args.no_post_crawl)
    except ArchiveError as exc:
        _say(str(exc))
        return EXIT_DB
    loop.install_signal_handlers()
    _say(f"archive writer: {args.db} <- {args.redis} (prefix {args.prefix!r})")
    try:
        stats = loop.run(drain=args.drain, idle_exit=args.idle_exit)
    finally:
        loop.close()
    print(f"wrote {stats.items} items in {stats.batches} batches ({stats.rate():.0f} items/s while "
          f"writing); {stats.skipped_duplicates} duplicates skipped; {stats.dead} unusable; "
          f"jobs closed: {', '.join(map(str, stats.jobs_closed)) or 'none'}", flush=True)
    return EXIT_OK if not stats.dead else EXIT_FAILED


# -- xxgk registry import / check ----------------------------------------------------------------
def add_registry_bulk_parsers(registry_subparsers: Any) -> None:
    from schedules.registry import DEFAULT_REGISTRY

    imp = registry_subparsers.add_parser(
        "import", help="merge institutions from a CSV file into the registry",
        description="Validate a CSV (columns: id, name, portal, and optionally allowed_domains, "
                    "schedule, render, kind, max_pages; several URLs or domains separated by spaces "
                    "or semicolons) and merge it into the registry TOML: new ids are added, known ids "
                    "updated. Duplicates and bad URLs are reported by row; any error rejects the "
                    "whole import unless --skip-bad.")
    imp.add_argument("file", type=Path, help="CSV file (UTF-8, or GB18030 as Excel saves it)")
    imp.add_argument("--registry", default=str(DEFAULT_REGISTRY),
                     help="registry TOML to merge into (created if missing; default schedules/sites.toml)")
    imp.add_argument("--skip-bad", action="store_true", help="import the good rows, skip the bad ones")
    imp.add_argument("--dry-run", action="store_true", help="report only; do not write the registry")

    check = registry_subparsers.add_parser(
        "check", help="check that every portal in the registry answers",
        description="Request every portal URL (HEAD, then GET when HEAD is refused) through the "
                    "configured proxy (http_proxy/https_proxy/no_proxy), concurrently, with a short "
                    "timeout; record the results in the archive's registry_checks table.")
    check.add_argument("--registry", default=str(DEFAULT_REGISTRY),
                       help="site registry TOML (default: schedules/sites.toml)")
    check.add_argument("--site", action="append", metavar="ID", help="check only this site (repeatable)")
    check.add_argument("--db", default="xxgk.db", help="archive database (default: xxgk.db)")
    check.add_argument("--timeout", type=positive_seconds, default=10.0, help="seconds per request (default 10)")
    check.add_argument("--concurrency", type=positive_int, default=32, help="requests at once (default 32)")


def run_registry_import(args: argparse.Namespace) -> int:
    from schedules.bulk import import_csv

    report = import_csv(args.file, args.registry, skip_bad=args.skip_bad, dry_run=args.dry_run)
    for line in report.lines():
        print(line)
    if report.fatal:
        return EXIT_USAGE
    return EXIT_OK


def run_registry_check(args: argparse.Namespace) -> int:
    from archive.db import open_db
    from schedules.bulk import check_portals, record_checks
    from schedules.registry import load_registry, select_sites

    sites = select_sites(load_registry(args.registry), args.site)
    results = check_portals(sites, timeout=args.timeout, concurrency=args.concurrency)
    db = open_db(args.db)
    record_checks(db, sites, results)
    db.conn.close()
    width = max((len(r.site_id) for r in results), default=2)
    for r in results:
        status = r.status_code if r.status_code is not None else "-"
        print(f"{r.site_id:<{width}}  {r.state:<16} {status!s:>4} {r.elapsed_ms or 0:>6} ms  {r.url}"
              + (f"  ({r.error})" if r.error else ""))
    failing = [r for r in results if not r.ok]
    print(f"{len(results) - len(failing)} of {len(results)} portal URL(s) answer; "
          f"results in {args.db} (registry_checks)")
    return EXIT_OK if not failing else EXIT_FAILED


def run_registry_bulk_command(args: argparse.Namespace) -> int:
    """Dispatch ``registry import`` / ``registry check``."""
    if args.registry_command == "import":
        return run_registry_import(args)
    if args.registry_command == "check":
        return run_registry_check(args)
    _say("registry: choose an action (validate, import, check)")
    return EXIT_USAGE


# -- standalone entry point ----------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    """The verbs of this module on their own (``python -m xxgk.distributed_cli``)."""
    from schedules.registry import DEFAULT_REGISTRY

    parser = argparse.ArgumentParser(prog="xxgk", description="distributed crawling and bulk registry")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    crawl = sub.add_parser("crawl", help="crawl as a distributed worker (needs --workers)")
    crawl.add_argument("--registry", default=str(DEFAULT_REGISTRY))
    crawl.add_argument("--site", action="append", metavar="ID")
    crawl.add_argument("--db", default=None, help="archive to read validators from (optional, read-only)")
    crawl.add_argument("-s", "--set", action="append", default=[], metavar="NAME=VALUE")
    crawl.add_argument("--verbose", action="store_true")
    add_distributed_crawl_arguments(crawl)
    add_archive_writer_parser(sub)
    registry = sub.add_parser("registry", help="registry tools")
    add_registry_bulk_parsers(registry.add_subparsers(dest="registry_command", metavar="ACTION"))
    return parser


def main(argv: list[str] | None = None) -> int:
    from archive.db import ArchiveError
    from schedules.registry import RegistryError

    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        if args.command == "crawl":
            if not args.workers:
                parser.error("crawl: --workers REDIS_URL is required here (plain crawls: xxgk crawl)")
            return run_distributed_crawl(args)
        if args.command == "archive-writer":
            return run_archive_writer(args)
        if args.command == "registry":
            return run_registry_bulk_command(args)
    except RegistryError as exc:
        _say(str(exc))
        return EXIT_USAGE
    except ArchiveError as exc:
        _say(str(exc))
        return EXIT_DB
    parser.print_help()
    return EXIT_USAGE


if __name__ == "__main__":
    sys.exit(main())
