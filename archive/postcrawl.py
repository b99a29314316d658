"""Work done once a crawl has finished: what can only be computed over the whole crawl.

* ``changes``: what changed, broke, appeared or lost a link since the previous crawl;
* ``links.health`` = ``unlinked`` for broken links the university has since removed;
* ``evaluations``: the automated third-party evaluation of the crawled sites (issue #12);
* ``site_items`` from portal navigation: a link whose anchor text names a checklist item
  (e.g. "招生章程及特殊类型招生办法") tells where the site publishes that item.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from sqlite_utils import Database

from archive.db import utcnow

logger = logging.getLogger(__name__)


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


def retire_unlinked(db: Database, crawl_ids: list[int]) -> int:
    """Broken links the university has since removed: ``links.health`` = ``unlinked``.

    A broken link keeps its last verdict until it is checked again, and a crawl checks only
    what pages still link to: one the university took off its pages would stay "broken now"
    for ever, with a citation that no longer exists. After a finished crawl, a suspect or
    dead link of its site that the crawl did not check, although every page that ever cited
    it was fetched fine in that crawl, is no longer linked from the portal. (A page the crawl
    did not reach proves nothing: such links keep their verdict; nor does a portal that
    dropped a URL the site's annual report still cites.) Checked again later, a link gets its
    health from that check as usual. Returns the links retired.
    """
    retired = 0
    for crawl_id in crawl_ids:
        crawl = db.execute("SELECT site_id, started_at FROM crawls WHERE id = ? AND status = 'finished'",
                           [crawl_id]).fetchone()
        if crawl is None:
            continue
        with db.atomic():
            retired += db.execute(
                """
                UPDATE links SET health = 'unlinked'
                WHERE site_id = :site AND health IN ('suspect', 'dead') AND last_checked < :started
                  AND EXISTS (SELECT 1 FROM link_referrers r WHERE r.to_url = links.url)
                  AND NOT EXISTS (SELECT 1 FROM site_items i WHERE i.site_id = :site AND i.url = links.url
                                    AND i.source <> 'portal')
                  AND NOT EXISTS (
                    SELECT 1 FROM link_referrers r WHERE r.to_url = links.url AND NOT EXISTS (
                      SELECT 1 FROM link_checks c WHERE c.crawl_id = :crawl AND c.url = r.from_url
                        AND c.state IN ('ok', 'redirected')))
                """, {"site": crawl[0], "started": crawl[1], "crawl": crawl_id}).rowcount
    return retired


def pending_postcrawl(db: Database) -> list[int]:
    """Closed crawls whose post-crawl work never ran (their caller died first)."""
    return [row[0] for row in db.execute(
        "SELECT id FROM crawls WHERE postcrawl_at IS NULL AND status <> 'running' ORDER BY id")]


class PostcrawlError(Exception):
    """Post-crawl work failed for some of the crawls asked for; every other crawl's was done."""

    def __init__(self, failures: dict[int, str]) -> None:
        self.failures = failures
        listed = "; ".join(f"crawl {crawl_id}: {error}" for crawl_id, error in sorted(failures.items()))
        super().__init__(f"post-crawl work failed ({listed}); what the crawl checked is archived,"
                         " and the work is tried again after the next crawl")


def after_crawl(db: Database, crawl_ids: list[int]) -> list[int]:
    """Everything that runs after each crawl, in order, for ``crawl_ids`` and any closed crawl
    whose post-crawl work never ran; each step can run twice harmlessly. Returns the crawls
    done (marked ``crawls.postcrawl_at`` once all of it has run).

    Each crawl's steps, and each site's evaluation, run on their own: one that raises (a bug
    met by one crawl's data) is logged, rolled back and left unmarked, to be tried again
    after the next crawl, and the others go on. :class:`PostcrawlError` names the failures
    among ``crawl_ids`` once the rest is done (a failure of an earlier crawl's retried work
    is logged only: it was reported when it first failed)."""
    from archive.changes import detect_changes
    from archive.evaluate import evaluate

    asked = set(crawl_ids)
    crawl_ids = sorted(asked | set(pending_postcrawl(db)))
    failures: dict[int, str] = {}

    def attempt(what: str, ids: list[int], step: Callable[..., object], *args: object, **kwargs: object) -> None:
        try:
            step(db, *args, **kwargs)
        except Exception as exc:
            if db.conn.in_transaction:  # a step's own atomic blocks roll back; anything else too
                db.conn.rollback()
            error = f"{what}: {type(exc).__name__}: {exc}"
            logger.error("post-crawl work of crawl(s) %s failed: %s", ", ".join(map(str, ids)), error,
                         exc_info=True)
            for crawl_id in ids:
                failures.setdefault(crawl_id, error)

    for crawl_id in crawl_ids:
        for what, step in (("site items", portal_site_items), ("unlinked links", retire_unlinked),
                           ("changes", detect_changes)):
            if crawl_id not in failures:
                attempt(what, [crawl_id], step, [crawl_id])
    # The crawled sites only: evaluating every site after each site's crawl wrote sites²
    # evaluations a day under the scheduler (`xxgk evaluate` judges them all at once).
    marks = ",".join("?" * len(crawl_ids))
    by_site: dict[str, list[int]] = {}
    for crawl_id, site_id in db.execute(f"SELECT id, site_id FROM crawls WHERE id IN ({marks})"
                                        " AND site_id IS NOT NULL ORDER BY site_id, id", crawl_ids).fetchall():
        by_site.setdefault(site_id, []).append(crawl_id)
    for site_id, ids in by_site.items():
        attempt(f"evaluation of site {site_id}", ids, evaluate, site_id=site_id)
    done = [crawl_id for crawl_id in crawl_ids if crawl_id not in failures]
    if done:
        with db.atomic():
            db.execute(f"UPDATE crawls SET postcrawl_at = ? WHERE id IN ({','.join('?' * len(done))})"
                       " AND status <> 'running'", [utcnow(), *done])
    mine = {crawl_id: error for crawl_id, error in failures.items() if crawl_id in asked}
    if mine:
        raise PostcrawlError(mine)
    return done
