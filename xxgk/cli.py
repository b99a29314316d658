"""The ``xxgk`` command line: one verb per job.

Exit codes: 0 success; 1 the job ran but failed (a crawl crashed, blobs are corrupt);
2 bad usage or a bad registry; 3 the database cannot be used.
"""

from __future__ import annotations

import argparse
import contextlib
import sqlite3
import sys
from pathlib import Path

from archive.db import ArchiveError, explain, open_db
from schedules.registry import DEFAULT_REGISTRY, RegistryError, load_registry, select_sites
from xxgk.argtypes import base_url, port, split_setting

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_DB = 0, 1, 2, 3
DEFAULT_DB = "xxgk.db"
DEMO_DB = "xxgk-demo.db"


def _add_db(parser: argparse.ArgumentParser, default: str = DEFAULT_DB) -> None:
    parser.add_argument("--db", default=default, help=f"archive database (default: {default})")


def _add_registry(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--registry", default=str(DEFAULT_REGISTRY),
                        help="site registry TOML (default: schedules/sites.toml)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="xxgk",
        description="Crawl and archive Chinese university information-disclosure portals "
                    "(高等学校信息公开网): link health, annual reports, dated snapshots, served "
                    "with Datasette.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    crawl = sub.add_parser("crawl", help="crawl registry sites into the archive",
                           description="Crawl each site within its domains, check every link, "
                                       "archive pages, attachments and annual reports.")
    _add_registry(crawl)
    crawl.add_argument("--site", action="append", metavar="ID", help="crawl only this site (repeatable)")
    _add_db(crawl)
    crawl.add_argument("-s", "--set", action="append", default=[], metavar="NAME=VALUE",
                       help="a Scrapy/xxgk setting for this crawl, e.g. -s XXGK_DOWNLOAD_TIMEOUT=5")
    crawl.add_argument("--verbose", action="store_true", help="show Scrapy's log on the console")
    from xxgk.distributed_cli import add_distributed_crawl_arguments

    add_distributed_crawl_arguments(crawl)

    serve = sub.add_parser("serve", help="serve the archive with Datasette (read-only)")
    _add_db(serve)
    serve.add_argument("--port", type=port, default=8001)
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--base-url", default="/", type=base_url,
                       help="the path the archive is served under behind a proxy (Datasette's base_url, "
                            "e.g. /archive/): links and feed entries point under it")
    serve.add_argument("--force-https-urls", action="store_true",
                       help="absolute links (feed entries) use https, for a proxy that ends TLS")

    demo = sub.add_parser("demo", help="crawl the bundled simulated portals, then serve them",
                          description="Start the bundled simulated web (a local proxy), crawl its "
                                      "portals on day 1 and day 2, print a summary, serve Datasette.")
    _add_db(demo, DEMO_DB)
    demo.add_argument("--no-serve", action="store_true", help="stop after the crawl and summary")
    demo.add_argument("--port", type=port, default=8001, help="Datasette port")
    demo.add_argument("--days", type=int, choices=(1, 2), default=2,
                      help="crawl day 1 only, or day 1 then day 2 (default 2)")

    ingest = sub.add_parser("ingest-report", help="ingest an annual report file from disk",
                            description="Archive a 信息公开年度报告 (PDF, DOC, DOCX, HTML, TXT) and "
                                        "extract its facts, as crawls do.")
    ingest.add_argument("file", type=Path)
    ingest.add_argument("--site", required=True, metavar="ID")
    ingest.add_argument("--url", help="where the report was published")
    _add_registry(ingest)
    _add_db(ingest)

    verify = sub.add_parser("verify", help="re-hash every archived blob (fixity check)")
    _add_db(verify)

    registry = sub.add_parser("registry", help="registry tools")
    registry_sub = registry.add_subparsers(dest="registry_command", metavar="ACTION")
    validate = registry_sub.add_parser("validate", help="check the registry file and list its sites")
    _add_registry(validate)
    from xxgk.distributed_cli import add_archive_writer_parser, add_registry_bulk_parsers

    add_registry_bulk_parsers(registry_sub)
    add_archive_writer_parser(sub)
    from archive.evaluate_cli import add_evaluate_parser
    from archive.export_cli import add_export_parser
    from schedules.cli import add_schedule_parser

    add_schedule_parser(sub)
    add_export_parser(sub)
    add_evaluate_parser(sub)
    return parser


def _registry_sites(args: argparse.Namespace) -> list:
    return select_sites(load_registry(args.registry), getattr(args, "site", None))


def cmd_crawl(args: argparse.Namespace) -> int:
    from crawler.proxy import ProxyConfigError, check_proxy_environment

    try:  # before any crawl row: a proxy Scrapy or Chromium cannot use fails every request
        check_proxy_environment()
    except ProxyConfigError as exc:
        print(f"xxgk: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if getattr(args, "workers", None):
        from xxgk.distributed_cli import run_distributed_crawl

        return run_distributed_crawl(args)
    from archive.summary import crawl_summary
    from xxgk.runcrawl import run_crawl

    sites = _registry_sites(args)
    settings = dict(split_setting(s) for s in args.set)
    with contextlib.ExitStack() as held:
        # Never two crawls of one site at once: the scheduler's lock, and its check for a
        # crawl row still running (a crawl started without the lock by an older version).
        busy = _busy_sites(args.db, sites, held)
        if busy:
            print(f"xxgk: {'; '.join(busy)}: try again when it ends", file=sys.stderr)
            return EXIT_FAILED
        result = run_crawl(sites, db_path=args.db, registry_path=args.registry, settings=settings,
                           echo=args.verbose)
        db = open_db(args.db)
        from archive.postcrawl import PostcrawlError, after_crawl

        postcrawl_failed = None
        try:
            after_crawl(db, list(result.crawl_ids.values()))
        except PostcrawlError as exc:  # the crawl is archived: say so after its summary
            postcrawl_failed = exc
    print(crawl_summary(db, list(result.crawl_ids.values())))
    print(f"log: {result.log_path}")
    if result.interrupted:
        print("xxgk: the crawl was interrupted: its crawls rows say incomplete", file=sys.stderr)
    if result.unprocessed:
        print("xxgk: some pages or items could not be processed (errors in the log): the crawls rows"
              " say incomplete", file=sys.stderr)
    if postcrawl_failed is not None:
        print(f"xxgk: {postcrawl_failed}", file=sys.stderr)
    return EXIT_OK if result.ok and postcrawl_failed is None else EXIT_FAILED


def _busy_sites(db_path: str | Path, sites: list, held: contextlib.ExitStack) -> list[str]:
    """Take each site's crawl lock (kept by ``held``); why the sites that are busy are."""
    from archive.store import running_crawl
    from schedules.locks import SiteLock

    db = open_db(db_path)  # first: an unusable archive is reported as such (exit 3)
    busy = []
    for site in sites:
        lock = SiteLock(db_path, site.id)
        try:
            acquired = lock.acquire()
        except OSError as exc:
            db.conn.close()
            raise ArchiveError(f"cannot take the crawl lock {lock.path}: {exc.strerror or exc}") from exc
        if not acquired:
            busy.append(f"site {site.id!r} is already being crawled (lock held by pid {lock.holder() or '?'})")
            continue
        held.callback(lock.release)
    if busy:
        db.conn.close()
        return busy
    try:
        for site in sites:
            running = running_crawl(db, site.id)
            if running:
                busy.append(f"site {site.id!r} is already being crawled (crawl {running[0]}, pid {running[1]})")
    finally:
        db.conn.close()
    return busy


def cmd_serve(args: argparse.Namespace) -> int:
    from archive.serve import serve

    if not Path(args.db).exists():
        print(f"xxgk: no archive at {args.db}; run `xxgk crawl` or `xxgk demo` first", file=sys.stderr)
        return EXIT_DB
    open_db(args.db).conn.close()  # migrate before serving read-only
    return serve(args.db, host=args.host, port=args.port,
                 settings={"base_url": args.base_url, "force_https_urls": args.force_https_urls})


def cmd_demo(args: argparse.Namespace) -> int:
    from xxgk.demo import run_demo

    return run_demo(args.db, serve_after=not args.no_serve, port=args.port, days=args.days)


def cmd_ingest_report(args: argparse.Namespace) -> int:
    from archive.reports.ingest import ingest_report, report_known

    sites = {s.id: s for s in load_registry(args.registry)}
    if args.site not in sites:
        raise RegistryError(f"{args.registry}: no site with id {args.site!r}")
    try:
        data = args.file.read_bytes()
    except OSError as exc:
        print(f"xxgk: cannot read {args.file}: {exc.strerror or exc}", file=sys.stderr)
        return EXIT_USAGE
    db = open_db(args.db)
    from archive.store import upsert_sites

    upsert_sites(db, [sites[args.site].to_row()])
    from archive.reports.isolated import extract_isolated

    # In a child process: a hostile file cannot hang or crash the command. A report already
    # archived is only seen again (ingest_report reads no text for it).
    extracted = None if report_known(db, args.site, data) else extract_isolated(data, args.file.name)
    report_id = ingest_report(db, args.site, data, filename=args.file.name, url=args.url, extracted=extracted)
    row = db.execute("SELECT academic_year, signed_date, timeliness, error FROM reports WHERE id = ?",
                     [report_id]).fetchone()
    print(f"report {report_id}: academic year {row[0] or '?'}, signed {row[1] or '?'}, {row[2]}")
    if row[3]:
        print(f"xxgk: {args.file}: {row[3]}", file=sys.stderr)
        return EXIT_FAILED
    return EXIT_OK


def cmd_verify(args: argparse.Namespace) -> int:
    from archive.fixity import verify_blobs

    if not Path(args.db).exists():
        print(f"xxgk: no archive at {args.db}", file=sys.stderr)
        return EXIT_DB
    result = verify_blobs(open_db(args.db))
    print(result.summary())
    return EXIT_OK if result.ok else EXIT_FAILED


def cmd_registry(args: argparse.Namespace) -> int:
    if args.registry_command in ("import", "check"):
        from xxgk.distributed_cli import run_registry_bulk_command

        return run_registry_bulk_command(args)
    if args.registry_command != "validate":
        print("xxgk registry: choose an action (validate, import, check)", file=sys.stderr)
        return EXIT_USAGE
    for site in load_registry(args.registry):
        print(f"{site.id}\t{site.name}\t{' '.join(site.portal)}\t{site.schedule or '-'}")
    return EXIT_OK


def cmd_schedule(args: argparse.Namespace) -> int:
    from schedules.cli import run_schedule_command

    return run_schedule_command(args)


def cmd_export(args: argparse.Namespace) -> int:
    from archive.export_cli import run_export_command

    return run_export_command(args)


def cmd_evaluate(args: argparse.Namespace) -> int:
    from archive.evaluate_cli import run_evaluate_command

    return run_evaluate_command(args)


def cmd_archive_writer(args: argparse.Namespace) -> int:
    from xxgk.distributed_cli import run_archive_writer

    return run_archive_writer(args)


COMMANDS = {
    "archive-writer": cmd_archive_writer,
    "evaluate": cmd_evaluate,
    "export": cmd_export,
    "schedule": cmd_schedule,
    "crawl": cmd_crawl, "serve": cmd_serve, "demo": cmd_demo, "ingest-report": cmd_ingest_report,
    "verify": cmd_verify, "registry": cmd_registry,
}


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not args.command:
        parser.print_help()
        return EXIT_USAGE
    try:
        return COMMANDS[args.command](args)
    except RegistryError as exc:
        print(f"xxgk: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except ArchiveError as exc:
        print(f"xxgk: {exc}", file=sys.stderr)
        return EXIT_DB
    except sqlite3.DatabaseError as exc:
        # Raised while reading rows (corruption found mid-query), past archive.db's wrappers
        explained = explain(exc, getattr(args, "db", None) or "the archive")
        if explained is exc:
            raise
        print(f"xxgk: {explained}", file=sys.stderr)
        return EXIT_DB
