"""``xxgk export warc|wacz``: write snapshots as a WARC file or a WACZ package.

Wiring (in ``xxgk/cli.py``)::

    add_export_parser(sub)                      # in build_parser()
    COMMANDS["export"] = run_export_command

Exit codes follow ``xxgk``: 0 written (possibly empty: a warning says so), 1 cannot write (the
output exists and is a symlink or not a regular file, or an OS error) or a blob is
missing/corrupt (the file is still written without it), 2 bad usage, 3 no usable archive.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_DB = 0, 1, 2, 3
DEFAULT_DB = "xxgk.db"


def add_export_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add the ``export`` command to ``xxgk``'s subparsers; return its parser."""
    parser = subparsers.add_parser(
        "export", help="export snapshots as WARC or WACZ",
        description="Write archived snapshots as a WARC 1.1 file (request/response/revisit "
                    "records, exact bodies) or a WACZ 1.1.1 package (WARC + CDXJ index + pages), "
                    "for pywb, ReplayWeb.page and other web archives.")
    parser.add_argument("format", choices=("warc", "wacz"), help="output format")
    parser.add_argument("--site", metavar="ID", help="only this site's snapshots (default: all sites)")
    parser.add_argument("--since", metavar="DATE",
                        help="only snapshots fetched at or after DATE (YYYY-MM-DD or ISO-8601 UTC)")
    parser.add_argument("--until", metavar="DATE",
                        help="only snapshots fetched at or before DATE (a bare date includes that day)")
    parser.add_argument("-o", "--output", required=True, type=Path, metavar="FILE",
                        help="file to write (.warc.gz or .wacz)")
    parser.add_argument("--db", default=DEFAULT_DB, help=f"archive database (default: {DEFAULT_DB})")
    return parser


def run_export_command(args: argparse.Namespace) -> int:
    """Run ``xxgk export``; print what was written; return an exit code."""
    from archive.db import ArchiveError, open_db
    from archive.warc import normalize_bound

    if not Path(args.db).exists():
        print(f"xxgk: no archive at {args.db}", file=sys.stderr)
        return EXIT_DB
    try:
        for bound, end in ((args.since, False), (args.until, True)):
            normalize_bound(bound, end=end)
    except ValueError as exc:
        print(f"xxgk export: {exc}", file=sys.stderr)
        return EXIT_USAGE
    try:
        db = open_db(args.db)
    except ArchiveError as exc:
        print(f"xxgk: {exc}", file=sys.stderr)
        return EXIT_DB
    try:
        if args.site and not db.execute("SELECT 1 FROM sites WHERE id = ?", [args.site]).fetchone() \
                and not db.execute("SELECT 1 FROM snapshots WHERE site_id = ? LIMIT 1",
                                   [args.site]).fetchone():
            print(f"xxgk export: no site {args.site!r} in {args.db}", file=sys.stderr)
            return EXIT_USAGE
        skipped: list[tuple[int, str]] = []
        filters = {"site_id": args.site, "since": args.since, "until": args.until,
                   "on_skip": lambda snapshot_id, reason: skipped.append((snapshot_id, reason))}
        if args.format == "warc":
            from archive.warc import export_warc

            records = export_warc(db, args.output, **filters)
        else:
            from archive.wacz import export_wacz

            records = export_wacz(db, args.output, **filters)
    except OSError as exc:
        print(f"xxgk export: cannot write {args.output}: {exc.strerror or exc}", file=sys.stderr)
        return EXIT_FAILED
    finally:
        db.conn.close()
    print(f"wrote {args.output}: {records} WARC records")
    if records <= 1 and not skipped:  # else every match was left out: the lines below say why
        print("xxgk export: no snapshots matched the filters", file=sys.stderr)
    for snapshot_id, reason in skipped:
        print(f"xxgk export: left out snapshot {snapshot_id}: {reason}", file=sys.stderr)
    return EXIT_FAILED if skipped else EXIT_OK
