"""``xxgk evaluate``: score each site's disclosure (checklist, report, publication) with evidence.

Wiring (in ``xxgk/cli.py``)::

    add_evaluate_parser(sub)                    # in build_parser()
    COMMANDS["evaluate"] = run_evaluate_command

Prints one line per evaluation (scores and the change since the previous evaluation of the
same site, year and method); the evidence is in ``evaluation_findings`` (Datasette:
``/xxgk/evaluation_findings?evaluation_id=N``), rankings in ``evaluation_ranking``.
Exit codes follow ``xxgk``: 0 done (possibly nothing to evaluate: a warning says so),
2 bad usage (year, site, registry or method file), 3 no usable archive.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_DB = 0, 1, 2, 3
DEFAULT_DB = "xxgk.db"


def add_evaluate_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add the ``evaluate`` command to ``xxgk``'s subparsers; return its parser."""
    parser = subparsers.add_parser(
        "evaluate", help="score sites' disclosure: 清单 items, annual report, publication",
        description="A third-party evaluation of each site's information disclosure from the "
                    "archive: completion of the 50-item 清单, completeness of the annual report "
                    "(eight parts), and whether it was published on time, in the annual-report "
                    "column, reachable from the portal home without JavaScript. Weights: "
                    "archive/evaluation_method.toml. Every point lost is recorded with its "
                    "evidence in evaluation_findings.")
    parser.add_argument("--site", metavar="ID", help="only this site (default: every site)")
    parser.add_argument("--year", metavar="YYYY-YYYY",
                        help="only this academic year, e.g. 2021-2022 (default: the years of the "
                             "site's reports and the latest year whose report is due)")
    parser.add_argument("--db", default=DEFAULT_DB, help=f"archive database (default: {DEFAULT_DB})")
    parser.add_argument("--registry", metavar="FILE",
                        help="site registry TOML: per-site applicable_items and report_column "
                             "(default: the values stored by an earlier run, else all 50 items)")
    parser.add_argument("--as-of", metavar="DATE",
                        help="judge as on this date (YYYY-MM-DD; default: today): freshness and "
                             "which report is due")
    parser.add_argument("--method", metavar="FILE", type=Path,
                        help="evaluation method TOML (default: archive/evaluation_method.toml)")
    return parser


def _fmt(value: float | None) -> str:
    return "   -  " if value is None else f"{value:6.1f}"


def _delta(value: float | None) -> str:
    return "" if value is None else f"{value:+.1f}"


def run_evaluate_command(args: argparse.Namespace) -> int:
    """Run ``xxgk evaluate``; print the scores; return an exit code."""
    from archive.db import ArchiveError, open_db
    from archive.evaluate import MethodError, evaluate, evaluation_diff, load_method
    from schedules.registry import RegistryError

    year = getattr(args, "year", None)
    if year is not None:
        m = re.fullmatch(r"(\d{4})-(\d{4})", year)
        if not m or int(m.group(2)) != int(m.group(1)) + 1:
            print(f"xxgk evaluate: --year must look like 2021-2022 (got {year!r})", file=sys.stderr)
            return EXIT_USAGE
    as_of = getattr(args, "as_of", None)
    if as_of is not None and not re.fullmatch(r"\d{4}-\d{2}-\d{2}", as_of):
        print(f"xxgk evaluate: --as-of must be a date YYYY-MM-DD (got {as_of!r})", file=sys.stderr)
        return EXIT_USAGE
    method_path = getattr(args, "method", None)
    try:
        method = load_method(method_path)
    except MethodError as exc:
        print(f"xxgk evaluate: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if not Path(args.db).exists():
        print(f"xxgk: no archive at {args.db}", file=sys.stderr)
        return EXIT_DB
    try:
        db = open_db(args.db)
    except ArchiveError as exc:
        print(f"xxgk: {exc}", file=sys.stderr)
        return EXIT_DB
    try:
        site = getattr(args, "site", None)
        if site and not any(db.execute(sql, [site]).fetchone() for sql in (
                "SELECT 1 FROM sites WHERE id = ?", "SELECT 1 FROM reports WHERE site_id = ? LIMIT 1")):
            print(f"xxgk evaluate: no site {site!r} in {args.db}", file=sys.stderr)
            return EXIT_USAGE
        try:
            ids = evaluate(db, site_id=site, academic_year=year,
                           registry_path=getattr(args, "registry", None), now=as_of,
                           method_path=method_path)
        except (RegistryError, ValueError) as exc:
            print(f"xxgk evaluate: {exc}", file=sys.stderr)
            return EXIT_USAGE
        if not ids:
            print("xxgk evaluate: nothing to evaluate (no crawled site and no annual report)",
                  file=sys.stderr)
            return EXIT_OK
        print(f"{'site':<12} {'year':<10} overall checklist report publication  change  findings")
        for row in db.query(
            f"SELECT id, site_id, academic_year, score_overall, score_checklist, score_report,"
            f" score_publication, findings FROM evaluations WHERE id IN ({','.join('?' * len(ids))})"
            " ORDER BY site_id, academic_year", ids,
        ):
            diff = evaluation_diff(db, row["id"])
            change = _delta(diff["delta_overall"])
            if diff["previous_id"] is not None and (diff["gained"] or diff["resolved"]):
                change += f" (+{len(diff['gained'])}/-{len(diff['resolved'])} findings)"
            print(f"{row['site_id']:<12} {row['academic_year'] or '-':<10} {_fmt(row['score_overall'])} "
                  f"  {_fmt(row['score_checklist'])}  {_fmt(row['score_report'])}  "
                  f"{_fmt(row['score_publication'])}    {change:<7} {row['findings']:>4}")
        as_of_row = db.execute("SELECT as_of FROM evaluations WHERE id = ?", [ids[0]]).fetchone()
        print(f"{len(ids)} evaluation(s) recorded, method {method.version}, as of {as_of_row[0]}; "
              "evidence: evaluation_findings, ranking: evaluation_ranking")
        return EXIT_OK
    finally:
        db.conn.close()
