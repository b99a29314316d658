"""``xxgk schedule``: run the crawl scheduler, list schedules, run one site's job now.

Wiring (in ``xxgk/cli.py``)::

    from schedules.cli import add_schedule_parser, run_schedule_command
    add_schedule_parser(sub)                     # in build_parser()
    COMMANDS["schedule"] = run_schedule_command

Actions (each takes ``--registry FILE`` and ``--db PATH``)::

    xxgk schedule run [--timezone Asia/Shanghai] [--max-concurrent 2]
                      [--misfire-grace-time 21600] [--no-coalesce] [--reload-interval 5]
                      [--on-stop interrupt|finish] [--stop-timeout 600] [-s NAME=VALUE ...]
    xxgk schedule list [--timezone Asia/Shanghai]
    xxgk schedule run-once --site ID [--wait [SECONDS]] [-s NAME=VALUE ...]

``run`` stays in the foreground (a systemd service or a container's main process): SIGTERM
or SIGINT stop it gracefully (exit 0), SIGHUP reloads the registry (so does editing the
file). ``run-once`` runs the site's job synchronously through the scheduler's code path
(site lock, ``crawls`` row, post-crawl work); a site already being crawled is refused
(exit 1) unless ``--wait``. The log goes to stderr; its level is ``XXGK_LOG_LEVEL`` (INFO).

Exit codes: 0 ok; 1 the job failed or the site was busy; 2 bad usage, a bad registry or
time zone; 3 the database cannot be used. Also runnable as ``python -m schedules.cli``.
"""

from __future__ import annotations

import argparse
import logging
import math
import os
import signal
import sys
from datetime import datetime
from typing import Any

from archive.db import ArchiveError
from schedules.registry import DEFAULT_REGISTRY, RegistryError
from schedules.scheduler import (
    DEFAULT_MAX_CONCURRENT,
    DEFAULT_MISFIRE_GRACE,
    DEFAULT_RELOAD_INTERVAL,
    DEFAULT_STOP_TIMEOUT,
    DEFAULT_TIMEZONE,
    MAX_MISFIRE_GRACE,
    STOP_MODES,
    Scheduler,
    resolve_timezone,
    schedule_status,
)

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_DB = 0, 1, 2, 3
DEFAULT_DB = "xxgk.db"
ACTIONS = ("run", "list", "run-once")


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--registry", default=str(DEFAULT_REGISTRY),
                        help="site registry TOML (default: schedules/sites.toml)")
    parser.add_argument("--db", default=DEFAULT_DB, help=f"archive database (default: {DEFAULT_DB})")


def _timezone(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--timezone", default=DEFAULT_TIMEZONE,
                        help=f"time zone of the cron schedules (default: {DEFAULT_TIMEZONE})")


def _settings(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-s", "--set", action="append", default=[], metavar="NAME=VALUE",
                        help="a Scrapy/xxgk setting for every crawl, e.g. -s XXGK_DOWNLOAD_TIMEOUT=5")


#: The longest --reload-interval, --stop-timeout or --wait (about 11.6 days): longer (or
#: infinite) waits overflowed the scheduler's control thread, which then ignored signals.
MAX_SECONDS = 1_000_000


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer (got {text})")
    return value


def _grace_seconds(text: str) -> int:
    value = _positive_int(text)
    if value > MAX_MISFIRE_GRACE:
        raise argparse.ArgumentTypeError(f"{value} is more than {MAX_MISFIRE_GRACE} seconds (10 years)")
    return value


def _non_negative_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not math.isfinite(value) or value < 0:
        raise argparse.ArgumentTypeError(f"{text} is not a finite number of seconds of at least 0")
    if value > MAX_SECONDS:
        raise argparse.ArgumentTypeError(f"{text} is more than {MAX_SECONDS} seconds")
    return value


def add_schedule_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add the ``schedule`` sub-command (actions ``run``, ``list``, ``run-once``)."""
    schedule = subparsers.add_parser(
        "schedule", help="run crawls on the registry's cron schedules",
        description="Crawl each registry site on its cron schedule (APScheduler), one crawl "
                    "subprocess per job, no overlapping crawls of a site.")
    actions = schedule.add_subparsers(dest="schedule_command", metavar="ACTION")

    run = actions.add_parser(
        "run", help="run the scheduler in the foreground",
        description="Run the scheduler until SIGTERM/SIGINT (graceful stop, exit 0). SIGHUP or "
                    "editing the registry reloads it; a bad registry is rejected and the old "
                    "schedule keeps running.")
    _common(run)
    _timezone(run)
    run.add_argument("--max-concurrent", type=_positive_int, default=DEFAULT_MAX_CONCURRENT, metavar="N",
                     help=f"crawls running at once across sites (default: {DEFAULT_MAX_CONCURRENT})")
    run.add_argument("--misfire-grace-time", type=_grace_seconds, default=DEFAULT_MISFIRE_GRACE,
                     metavar="SECONDS",
                     help="run a missed job if no later than this after its time "
                          f"(default: {DEFAULT_MISFIRE_GRACE})")
    run.add_argument("--no-coalesce", dest="coalesce", action="store_false",
                     help="run every missed run instead of one for the whole backlog")
    run.add_argument("--reload-interval", type=_non_negative_float, default=DEFAULT_RELOAD_INTERVAL,
                     metavar="SECONDS",
                     help=f"how often to check the registry file for changes (default: {DEFAULT_RELOAD_INTERVAL:g})")
    run.add_argument("--on-stop", choices=STOP_MODES, default="interrupt",
                     help="on SIGTERM: interrupt running crawls (SIGINT, Scrapy closes cleanly) "
                          "or let them finish (default: interrupt)")
    run.add_argument("--stop-timeout", type=_non_negative_float, default=DEFAULT_STOP_TIMEOUT,
                     metavar="SECONDS",
                     help="after interrupting, kill crawls still running after this long "
                          f"(default: {DEFAULT_STOP_TIMEOUT:g})")
    _settings(run)

    listing = actions.add_parser("list", help="each site's next run and last result")
    _common(listing)
    _timezone(listing)

    once = actions.add_parser(
        "run-once", help="run one site's job now (synchronously)",
        description="Run a site's crawl job now, as the scheduler would: it respects the site "
                    "lock, records a crawls row and runs the post-crawl work.")
    _common(once)
    once.add_argument("--site", required=True, metavar="ID", help="the registry site id")
    once.add_argument("--wait", nargs="?", type=_non_negative_float, const=-1.0, default=0.0,
                      metavar="SECONDS",
                      help="if the site is being crawled, wait for it (for SECONDS, or as long as it takes)")
    _settings(once)
    return schedule


def _split_settings(items: list[str]) -> dict[str, str]:
    from xxgk.argtypes import split_setting

    return dict(split_setting(text) for text in items)


def _configure_logging() -> None:
    level = os.environ.get("XXGK_LOG_LEVEL", "INFO").upper()
    logging.basicConfig(level=getattr(logging, level, logging.INFO), stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")


def _cmd_run(args: argparse.Namespace) -> int:
    _configure_logging()
    try:
        scheduler = Scheduler(
            args.registry, args.db, timezone=args.timezone, max_concurrent=args.max_concurrent,
            misfire_grace_time=args.misfire_grace_time, coalesce=args.coalesce,
            reload_interval=args.reload_interval or DEFAULT_RELOAD_INTERVAL, stop_mode=args.on_stop,
            stop_timeout=args.stop_timeout, settings=_split_settings(args.set),
        )
    except ValueError as exc:  # a bad time zone
        print(f"xxgk: {exc}", file=sys.stderr)
        return EXIT_USAGE
    return scheduler.run_forever()


def _describe_crawl(crawl: dict[str, Any] | None) -> str:
    if not crawl:
        return "never"
    end = crawl.get("finished_at") or "…"
    text = f"#{crawl['id']} {crawl['status']} {crawl['started_at']} → {end}"
    if crawl.get("exit_code") is not None:
        text += f" exit {crawl['exit_code']}"
    return text + f", {crawl.get('pages') or 0} pages, {crawl.get('errors') or 0} errors"


def _cmd_list(args: argparse.Namespace) -> int:
    try:
        tz = resolve_timezone(args.timezone)
    except ValueError as exc:
        print(f"xxgk: {exc}", file=sys.stderr)
        return EXIT_USAGE
    statuses = schedule_status(args.registry, args.db, timezone=tz, now=datetime.now(tz))
    print("\t".join(("SITE", "SCHEDULE", f"NEXT RUN ({args.timezone})", "LAST CRAWL", "STATE")))
    for status in statuses:
        next_run = status.next_run.strftime("%Y-%m-%d %H:%M %Z") if status.next_run else "-"
        print("\t".join((status.site_id, status.schedule or "(manual)", next_run,
                         _describe_crawl(status.last_crawl), "running" if status.running else "idle")))
    return EXIT_OK


def _cmd_run_once(args: argparse.Namespace) -> int:
    _configure_logging()
    scheduler = Scheduler(args.registry, args.db, settings=_split_settings(args.set))
    scheduler.load_sites()
    if args.site not in scheduler.sites:
        raise RegistryError(f"{args.registry}: no site with id {args.site!r}; "
                            f"known: {', '.join(scheduler.sites)}")
    # SIGTERM like Ctrl-C: run_crawl then stops the crawl with SIGINT and closes its rows.
    previous = signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        result = scheduler.run_site(args.site, wait_for_lock=None if args.wait < 0 else args.wait)
    except KeyboardInterrupt:
        print(f"xxgk: run of {args.site} interrupted", file=sys.stderr)
        return EXIT_FAILED
    finally:
        signal.signal(signal.SIGTERM, previous)
    ids = ", ".join(str(i) for i in result.crawl_ids.values()) or "-"
    print(f"{args.site}: {result.outcome} (crawl {ids}){': ' + result.message if result.message else ''}")
    if result.archive_unusable:
        return EXIT_DB
    return EXIT_OK if result.ok else EXIT_FAILED


def run_schedule_command(args: argparse.Namespace) -> int:
    """Run the parsed ``xxgk schedule`` action; return the exit code."""
    command = getattr(args, "schedule_command", None)
    handlers = {"run": _cmd_run, "list": _cmd_list, "run-once": _cmd_run_once}
    if command not in handlers:
        print(f"xxgk schedule: choose an action ({', '.join(ACTIONS)})", file=sys.stderr)
        return EXIT_USAGE
    try:
        return handlers[command](args)
    except RegistryError as exc:
        print(f"xxgk: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except ArchiveError as exc:
        print(f"xxgk: {exc}", file=sys.stderr)
        return EXIT_DB


def main(argv: list[str] | None = None) -> int:
    """``python -m schedules.cli schedule ACTION ...`` (the same as ``xxgk schedule ...``)."""
    parser = argparse.ArgumentParser(prog="xxgk")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    add_schedule_parser(sub)
    args = parser.parse_args(argv)
    if args.command != "schedule":
        parser.print_help()
        return EXIT_USAGE
    return run_schedule_command(args)


if __name__ == "__main__":
    raise SystemExit(main())
