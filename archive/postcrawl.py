"""Work done once a crawl has finished: what can only be computed over the whole crawl.

* ``changes``: what changed, broke, appeared or lost a link since the previous crawl;
* ``evaluations``: the automated third-party evaluation of every site (issue #12);
* ``site_items`` from portal navigation: a link whose anchor text names a checklist item
  (e.g. "招生章程及特殊类型招生办法") tells where the site publishes that item.
"""

from __future__ import annotations

from sqlite_utils import Database

from archive.db import utcnow


def portal_site_items(db: Database, crawl_ids: list[int]) -> int:
    """Record checklist items linked from portal pages; return rows added or refreshed."""
    from archive.reports.checklist import match_item
    from archive.reports.ingest import ensure_checklist

    ensure_checklist(db)
    if not crawl_ids:
        return 0
    marks = ",".join("?" * len(crawl_ids))
    rows = db.execute(
        f"SELECT DISTINCT site_id, to_url, anchor_text FROM link_sources"
        f" WHERE crawl_id IN ({marks}) AND anchor_text <> ''", crawl_ids,
    ).fetchall()
    now = utcnow()
    count = 0
    with db.atomic():
        for site_id, url, anchor in rows:
            number = match_item(anchor)
            if number is None:
                continue
            db.execute(
                "INSERT INTO site_items (site_id, item_number, url, source, first_seen, last_seen)"
                " VALUES (?, ?, ?, 'portal', ?, ?)"
                " ON CONFLICT(site_id, item_number, url, source) DO UPDATE SET last_seen = excluded.last_seen",
                [site_id, number, url, now, now],
            )
            count += 1
    return count


def after_crawl(db: Database, crawl_ids: list[int]) -> None:
    """Everything that runs after each crawl, in order."""
    from archive.changes import detect_changes
    from archive.evaluate import evaluate

    portal_site_items(db, crawl_ids)
    detect_changes(db, crawl_ids)
    evaluate(db)
