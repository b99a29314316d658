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
    dead link that a site of the crawl cites (``site_links``) and that the crawl did not
    check is no longer linked from the portal when every page that ever cited it
    (``link_referrers``, the page as fetched: a redirect's target) was crawled again without
    it. Each such page is judged by its latest check made at or after the link's last check,
    in any crawl (a link two sites cite is dropped by each in its own crawl); that check
    counts when

    * the page was fetched fine (ok, redirected: the check of the URL asked for, whose
      ``final_url`` is the page) in a finished crawl that did not check the link;
    * or the page is gone (``REMOVAL_STATES``: 404, soft 404, ...): no content, no link;

    or when the page is itself ``unlinked``. A page the crawl did not reach, or whose latest
    check is inconclusive (blocked, rate limited, excluded) or a failure it may recover from
    (timeout, 5xx, connection, DNS or TLS error) proves nothing: such links keep their
    verdict; nor does a portal that dropped a URL an annual report still cites. Checked again
    later, a link gets its health from that check as usual. Returns the links retired.
    """
    from archive.changes import REMOVAL_STATES

    gone = ", ".join(f"'{state}'" for state in sorted(REMOVAL_STATES))
    # The URLs a referrer page was fetched as: itself, and the URL asked for that redirected
    # to it in the last crawl that read the page (link_checks has no index on final_url: the
    # crawl's redirects are few, found by idx_link_checks_crawl).
    fetched_as = """r.from_url, (
                      SELECT m.url FROM link_checks m
                      WHERE m.crawl_id = (SELECT MAX(s.crawl_id) FROM link_sources s WHERE s.from_url = r.from_url)
                        AND m.state = 'redirected' AND m.final_url = r.from_url
                      ORDER BY m.id DESC LIMIT 1)"""
    retired = 0
    for crawl_id in crawl_ids:
        crawl = db.execute("SELECT site_id, started_at FROM crawls WHERE id = ? AND status = 'finished'",
                           [crawl_id]).fetchone()
        if crawl is None:
            continue
        with db.atomic():
            # A page retired in one pass (a referrer itself unlinked) may let the next retire
            # the links only it cited.
            while True:
                count = db.execute(
                    f"""
                    UPDATE links SET health = 'unlinked'
                    WHERE health IN ('suspect', 'dead') AND last_checked <= :started
                      -- not checked by this crawl (times have one-second steps: a crawl may
                      -- start in the second of the previous crawl's last check)
                      AND NOT EXISTS (SELECT 1 FROM link_checks t WHERE t.crawl_id = :crawl AND t.url = links.url)
                      AND url IN (SELECT sl.url FROM site_links sl WHERE sl.site_id = :site)
                      AND EXISTS (SELECT 1 FROM link_referrers r WHERE r.to_url = links.url)
                      AND NOT EXISTS (SELECT 1 FROM site_items i WHERE i.url = links.url
                                        AND i.source <> 'portal')
                      AND NOT EXISTS (
                        SELECT 1 FROM link_referrers r WHERE r.to_url = links.url
                          AND NOT EXISTS (
                            SELECT 1 FROM links f WHERE f.url IN ({fetched_as}) AND f.health = 'unlinked')
                          AND NOT EXISTS (
                            SELECT 1 FROM link_checks c LEFT JOIN crawls k ON k.id = c.crawl_id
                            WHERE c.id = (
                                SELECT c2.id FROM link_checks c2
                                WHERE c2.url IN ({fetched_as}) AND c2.checked_at >= links.last_checked
                                ORDER BY c2.checked_at DESC, c2.id DESC LIMIT 1)
                              AND (c.state IN ({gone})
                                   OR (c.state IN ('ok', 'redirected') AND k.status = 'finished'
                                       AND NOT EXISTS (SELECT 1 FROM link_checks l
                                                       WHERE l.crawl_id = c.crawl_id AND l.url = links.url)))))
                    """, {"site": crawl[0], "started": crawl[1], "crawl": crawl_id}).rowcount
                retired += count
                if count <= 0:
                    break
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
