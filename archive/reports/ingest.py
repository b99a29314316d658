"""Store an annual report and everything derived from it: one call, one transaction.

:func:`ingest_report` keeps the file's bytes as a blob, extracts its text, and writes the
``reports`` row, its ``report_facts``, its ``report_items`` (the 清单 table) and the
``site_items`` rows (``source='report'``) for every item URL the table gives. It is
idempotent per (site, sha256): the same bytes again return the existing report id and
only refresh ``site_items.last_seen``. A file that cannot be read, or is not a report,
still gets a ``reports`` row, with ``error`` set; nothing is raised for bad files.
``reports.text`` holds the reflowed text (PDF line breaks undone) so that full-text
search finds words across the original line breaks.
"""

from __future__ import annotations

from sqlite_utils import Database

from archive.blobs import store_blob
from archive.db import utcnow
from archive.reports.checklist import CHECKLIST, parse_checklist_table
from archive.reports.extract import Extracted, extract_text
from archive.reports.facts import ReportFacts, extract_facts, is_annual_report_title
from archive.reports.parts import detect_parts
from archive.reports.text import reflow

__all__ = ["ensure_checklist", "ingest_report", "is_report_text"]


def ensure_checklist(db: Database) -> int:
    """Fill ``checklist_items`` from :data:`CHECKLIST` (idempotent); return the row count."""
    db["checklist_items"].upsert_all(
        (
            {"number": i.number, "category_number": i.category_number, "category": i.category,
             "title": i.title, "yearly": int(i.yearly)}
            for i in CHECKLIST
        ),
        pk="number",
    )
    return db.execute("SELECT COUNT(*) FROM checklist_items").fetchone()[0]


def is_report_text(text: str, title: str | None = None) -> bool:
    """Whether ``text`` is an annual report rather than a page that mentions one.

    Two or more of the eight part headings, or a report title over a text long enough
    to be the report (a notice "关于公布…年度报告的通知" with a link is not).
    """
    parts = detect_parts(text)
    if len([n for n in parts.present if n != 8]) >= 2:
        return True
    return bool(title and is_annual_report_title(title) and len(text) >= 800)


def _seen_date(seen_at: str) -> str:
    return seen_at[:10]


def report_known(db: Database, site_id: str, data: bytes) -> bool:
    """True when ``site_id`` already has a report with these exact bytes (ingesting them
    again only refreshes ``last_seen``: no text extraction needed)."""
    from archive.blobs import sha256_hex

    return db.execute("SELECT 1 FROM reports WHERE site_id = ? AND sha256 = ?",
                      [site_id, sha256_hex(data)]).fetchone() is not None


def ingest_report(
    db: Database,
    site_id: str,
    data: bytes,
    *,
    filename: str | None = None,
    url: str | None = None,
    content_type: str | None = None,
    crawl_id: int | None = None,
    snapshot_id: int | None = None,
    seen_at: str | None = None,
    require_report: bool = False,
    extracted: Extracted | None = None,
) -> int | None:
    """Store one report file for ``site_id`` and return its ``reports.id``.

    With ``require_report`` (crawls, for pages that merely *might* be a report: a column
    page, an article announcing one) nothing is written and None returned unless the
    content reads as an annual report; ``xxgk ingest-report`` records every failure.

    ``seen_at`` (ISO-8601 UTC, default now) is ``first_seen`` and, when the report has no
    signed date, the evidence for timeliness: a report already online on or before the
    deadline was on time; first seen later proves nothing, so it stays unknown.

    ``extracted`` is the file's text when the caller already has it (the crawl extracts in
    a child process, see :mod:`archive.reports.isolated`); otherwise it is extracted here.
    """
    seen_at = seen_at or utcnow()
    if db.execute("SELECT COUNT(*) FROM checklist_items").fetchone()[0] != len(CHECKLIST):
        ensure_checklist(db)
    with db.atomic():
        sha256 = store_blob(db, data)
        row = db.execute(
            "SELECT id FROM reports WHERE site_id = ? AND sha256 = ?", [site_id, sha256]
        ).fetchone()
        if row is not None:
            db.execute(
                "UPDATE site_items SET last_seen = MAX(last_seen, ?) WHERE report_id = ?",
                [seen_at, row[0]],
            )
            return int(row[0])
        if extracted is None:
            extracted = extract_text(data, filename, content_type)
        raw = extracted.text
        text = reflow(raw) if raw.strip() else ""
        error = extracted.error
        facts = ReportFacts()
        report_like = False
        if text:
            facts = extract_facts(raw)
            report_like = is_report_text(raw, facts.title or extracted.title)
            if not report_like and error is None:
                error = "not an annual report (no report headings or title found)"
        if require_report and not report_like:
            return None
        if report_like and facts.timeliness == "unknown" and facts.deadline and \
                facts.signed_date is None and _seen_date(seen_at) <= facts.deadline:
            facts.timeliness = "on_time"
            facts.timeliness_evidence = (
                f"no signed date; first seen {seen_at}, on or before deadline {facts.deadline}"
            )
        stem = filename.rsplit("/", 1)[-1].rsplit(".", 1)[0] if filename else None
        candidates = [t for t in (facts.title, extracted.title, stem) if t]
        title = next((t for t in candidates if is_annual_report_title(t)),
                     candidates[0] if candidates else None)
        report_id = db["reports"].insert(
            {
                "site_id": site_id,
                "academic_year": facts.academic_year if report_like else None,
                "period_start": facts.period_start if report_like else None,
                "period_end": facts.period_end if report_like else None,
                "title": title,
                "source_url": url,
                "format": extracted.format,
                "sha256": sha256,
                "signed_date": facts.signed_date if report_like else None,
                "deadline": facts.deadline if report_like else None,
                "timeliness": facts.timeliness if report_like else "unknown",
                "timeliness_evidence": facts.timeliness_evidence if report_like else None,
                "first_seen": seen_at,
                "crawl_id": crawl_id,
                "snapshot_id": snapshot_id,
                "error": error,
                "text": text or None,
            }
        ).last_pk
        if report_like:
            _write_derived(db, int(report_id), site_id, raw, facts, seen_at)
        return int(report_id)


def _write_derived(db: Database, report_id: int, site_id: str, raw: str, facts: ReportFacts,
                   seen_at: str) -> None:
    db["report_facts"].insert_all(
        {"report_id": report_id, "fact": f.fact, "value": f.value, "sentence": f.sentence}
        for f in facts.facts
    )
    rows = parse_checklist_table(raw)
    db["report_items"].insert_all(
        {"report_id": report_id, "item_number": r.item_number, "category": r.category,
         "title": r.title, "url": r.url, "note": r.note}
        for r in rows
    )
    for r in rows:
        if r.url is None or r.item_number is None:
            continue
        db.execute(
            "INSERT INTO site_items (site_id, item_number, url, source, report_id, first_seen,"
            " last_seen) VALUES (?, ?, ?, 'report', ?, ?, ?)"
            " ON CONFLICT(site_id, item_number, url, source) DO UPDATE SET"
            " report_id = CASE WHEN excluded.last_seen >= site_items.last_seen"
            "   THEN excluded.report_id ELSE site_items.report_id END,"
            " first_seen = MIN(site_items.first_seen, excluded.first_seen),"
            " last_seen = MAX(site_items.last_seen, excluded.last_seen)",
            [site_id, r.item_number, r.url, report_id, seen_at, seen_at],
        )
