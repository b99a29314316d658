"""The archive pipeline: every item the spider yields goes into the SQLite archive.

Settings read in :meth:`ArchivePipeline.from_crawler`:

``XXGK_DB``              database path
``XXGK_CONFIRM_CHECKS``  consecutive failing checks before a link is dead
``XXGK_CONFIRM_HOURS``   hours those checks must span
``XXGK_COMMIT_EVERY``    items per transaction

The spider carries ``sites`` (registry entries) and ``crawl_ids`` (site id -> ``crawls.id``,
created by ``xxgk crawl`` before Scrapy starts; created here when a spider is run directly).
"""

from __future__ import annotations

import logging
from typing import Any

from scrapy import signals

from archive.db import open_db
from archive.store import ArchiveWriter, start_crawl, upsert_sites
from crawler.items import Evidence, LinkCheck, LinkSource

logger = logging.getLogger(__name__)


class ArchivePipeline:
    def __init__(self, db_path: str, confirm_checks: int, confirm_hours: float, commit_every: int) -> None:
        self.db_path = db_path
        self.confirm_checks = confirm_checks
        self.confirm_hours = confirm_hours
        self.commit_every = commit_every
        self.writer: ArchiveWriter | None = None
        self.reports_ingested = 0

    @classmethod
    def from_crawler(cls, crawler: Any) -> ArchivePipeline:
        s = crawler.settings
        pipeline = cls(
            s.get("XXGK_DB"), s.getint("XXGK_CONFIRM_CHECKS", 2),
            s.getfloat("XXGK_CONFIRM_HOURS", 20.0), s.getint("XXGK_COMMIT_EVERY", 200),
        )
        pipeline.crawler = crawler
        # The finish reason (finished, shutdown, closespider_timeout, ...) is only known in
        # the spider_closed signal, which Scrapy sends after pipelines' close_spider.
        crawler.signals.connect(pipeline.spider_closed, signal=signals.spider_closed)
        return pipeline

    def open_spider(self, spider: Any = None) -> None:
        spider = spider or self.crawler.spider
        db = open_db(self.db_path)
        self.writer = ArchiveWriter(db, confirm_checks=self.confirm_checks,
                                    confirm_hours=self.confirm_hours, commit_every=self.commit_every)
        sites = getattr(spider, "sites", [])
        upsert_sites(db, [site.to_row() for site in sites])
        crawl_ids = getattr(spider, "crawl_ids", None)
        if crawl_ids is None:
            spider.crawl_ids = crawl_ids = {}
        for site in sites:
            if site.id not in crawl_ids:
                crawl_ids[site.id] = start_crawl(db, site.id)
        self.owned_crawls = dict(crawl_ids)

    def process_item(self, item: Any, spider: Any = None) -> Any:
        writer = self.writer
        assert writer is not None
        if isinstance(item, LinkCheck):
            _check_id, snapshot_id = writer.record_check(item)
            if item.report_hint and snapshot_id and item.body and item.state in ("ok", "redirected"):
                self._ingest_report(item, snapshot_id)
        elif isinstance(item, LinkSource):
            writer.record_source(item)
        elif isinstance(item, Evidence):
            writer.record_evidence(item)
        return item

    def _ingest_report(self, item: LinkCheck, snapshot_id: int) -> None:
        from archive.reports.ingest import ingest_report

        writer = self.writer
        assert writer is not None
        try:
            ingest_report(writer.db, item.site_id, item.body, filename=item.filename,
                          url=item.url, content_type=item.content_type, crawl_id=item.crawl_id,
                          snapshot_id=snapshot_id, seen_at=item.checked_at,
                          require_report=item.expect != "attachment")
            self.reports_ingested += 1
        except Exception:  # a bad report must not cost the crawl: the error is logged, crawl goes on
            logger.exception("could not ingest report %s", item.url)

    def close_spider(self, spider: Any = None) -> None:
        if self.writer is not None:
            self.writer.commit()

    def spider_closed(self, spider: Any, reason: str) -> None:
        """Close this run's ``crawls`` rows: ``finished`` only if Scrapy finished normally."""
        writer = self.writer
        if writer is None:
            return
        status = "finished" if reason == "finished" else "incomplete"
        for crawl_id in self.owned_crawls.values():
            writer.close_crawl(crawl_id, status, finish_reason=reason)
        writer.commit()
        writer.db.conn.close()
        self.writer = None

