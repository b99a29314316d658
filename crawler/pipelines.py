"""The archive pipeline: every item the spider yields goes into the SQLite archive.

Settings read in :meth:`ArchivePipeline.from_crawler`:

``XXGK_DB``              database path
``XXGK_CONFIRM_CHECKS``  consecutive failing checks before a link is dead
``XXGK_CONFIRM_HOURS``   hours those checks must span
``XXGK_COMMIT_EVERY``    items per transaction
``XXGK_COMMIT_SECONDS``  longest a transaction stays open, items or not (default 1.0); it is
                         also committed as soon as items pause for ``XXGK_COMMIT_IDLE`` seconds
                         (default 0.05). Another crawl, the scheduler or ``xxgk ingest-report``
                         writing the same archive waits for the write lock, and gives up after
                         the busy timeout (30 s): a crawl must not hold it while it waits for pages
``XXGK_EXTRACT_TIMEOUT`` seconds a report file's text extraction may take (child process,
                         see :mod:`archive.reports.isolated`; default 60)
``XXGK_EXTRACT_WORKERS`` report files read at once, each in its own child process (default 2)

The spider carries ``sites`` (registry entries) and ``crawl_ids`` (site id -> ``crawls.id``,
created by ``xxgk crawl`` before Scrapy starts; created here when a spider is run directly).

A page the spider could not process (an exception in its callback: a bug, or input nothing
anticipated) or an item the archive could not store for any other reason (the item's rows
are rolled back: :meth:`archive.store.ArchiveWriter.one_item`) is logged with its
traceback and counted; the crawl goes on, but its ``crawls`` row ends ``incomplete`` with
``finish_reason`` ``processing_errors: ...`` (count and first error) rather than
``finished``: what the crawl did not judge is not evidence of anything, and the post-crawl
retirement of links no page cites any more runs only after finished crawls.

When the archive cannot be written (disk full, read-only, I/O error: an
:class:`~archive.db.ArchiveError` or ``sqlite3.OperationalError``; or its file was deleted
or replaced under the crawl, checked before each commit) the uncommitted batch is
rolled back, the spider is closed with reason ``archive_error`` and this run's ``crawls``
rows are marked ``failed`` with the error as ``finish_reason`` (when that write still
succeeds; otherwise ``xxgk crawl`` marks them). A crawl that cannot store what it checks
does not carry on dropping items.

:class:`ItemLogFormatter` (the project's ``LOG_FORMATTER``) skips Scrapy's "Crawled" and
"Scraped from" DEBUG records unless DEBUG logging is on: Scrapy builds a log record per item
even when the handler drops it, and a page yields one item per link.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from scrapy import signals
from scrapy.exceptions import DropItem
from scrapy.logformatter import LogFormatter, LogFormatterResult

from archive.db import ArchiveError, changed_since, file_identity, open_db
from archive.reports.extract import Extracted
from archive.reports.ingest import report_known
from archive.reports.isolated import DEFAULT_TIMEOUT, extract_isolated, needs_isolation
from archive.store import ArchiveWriter, processing_errors_reason, start_crawl, unstored_item, upsert_sites
from crawler.fetch import page_error, site_of
from crawler.items import Evidence, LinkCheck, LinkSource, LinkSources, OverheadBytes

logger = logging.getLogger(__name__)

#: Errors that mean the archive itself cannot be written (not one bad item).
ARCHIVE_ERRORS = (ArchiveError, sqlite3.OperationalError)
#: The spider's close reason after such an error.
ARCHIVE_ERROR_REASON = "archive_error"


class ArchiveUnavailable(DropItem):
    """An item not stored because the archive cannot be written (logged once, not per item)."""


class ItemNotStored(DropItem):
    """An item not stored because storing it raised (logged by the pipeline, with the
    traceback and without the item's body)."""


class ItemLogFormatter(LogFormatter):
    """Scrapy's log formatter without a DEBUG record per response and per scraped item when
    DEBUG is not logged anyway, and without one per item dropped after an archive error
    (that error is logged once)."""

    def __init__(self, debug: bool = True) -> None:
        self.debug = debug

    @classmethod
    def from_crawler(cls, crawler: Any) -> ItemLogFormatter:
        level = crawler.settings.get("LOG_LEVEL", "DEBUG")
        level = logging.getLevelName(level) if isinstance(level, str) else level
        return cls(debug=not isinstance(level, int) or level <= logging.DEBUG)

    def crawled(self, request: Any, response: Any, spider: Any) -> LogFormatterResult | None:  # type: ignore[override]
        return super().crawled(request, response, spider) if self.debug else None

    def scraped(self, item: Any, response: Any, spider: Any) -> LogFormatterResult | None:  # type: ignore[override]
        return super().scraped(item, response, spider) if self.debug else None

    def dropped(self, item: Any, exception: BaseException, response: Any,  # type: ignore[override]
                spider: Any) -> LogFormatterResult | None:
        if isinstance(exception, (ArchiveUnavailable, ItemNotStored)):
            return None
        return super().dropped(item, exception, response, spider)


class ArchivePipeline:
    def __init__(self, db_path: str, confirm_checks: int, confirm_hours: float, commit_every: int) -> None:
        self.db_path = db_path
        self.confirm_checks = confirm_checks
        self.confirm_hours = confirm_hours
        self.commit_every = commit_every
        self.writer: ArchiveWriter | None = None
        self.reports_ingested = 0
        self.crawler: Any = None
        self.owned_crawls: dict[str, int] = {}
        #: The first archive write error, once one happened (the crawl is then closing).
        self.archive_error: str | None = None
        self.extract_timeout = DEFAULT_TIMEOUT
        #: Threads waiting on extraction children: at most this many files are read at once.
        self.extract_workers = 2
        self._extractors: ThreadPoolExecutor | None = None
        self.commit_seconds: float | None = None
        self.commit_idle = 0.05
        self._committer: Any = None  # twisted LoopingCall committing an overdue batch
        self._file: tuple[int, int] | None = None  # the archive file's identity when opened
        #: site id (None: unknown) -> (pages or items not processed, the first one's error)
        self.processing_errors: dict[str | None, tuple[int, str]] = {}

    @classmethod
    def from_crawler(cls, crawler: Any) -> ArchivePipeline:
        s = crawler.settings
        pipeline = cls(
            s.get("XXGK_DB"), s.getint("XXGK_CONFIRM_CHECKS", 2),
            s.getfloat("XXGK_CONFIRM_HOURS", 20.0), s.getint("XXGK_COMMIT_EVERY", 200),
        )
        pipeline.crawler = crawler
        pipeline.extract_timeout = s.getfloat("XXGK_EXTRACT_TIMEOUT", DEFAULT_TIMEOUT)
        pipeline.extract_workers = max(1, s.getint("XXGK_EXTRACT_WORKERS", 2))
        pipeline.commit_seconds = s.getfloat("XXGK_COMMIT_SECONDS", 1.0)
        pipeline.commit_idle = s.getfloat("XXGK_COMMIT_IDLE", 0.05)
        # The finish reason (finished, shutdown, closespider_timeout, ...) is only known in
        # the spider_closed signal, which Scrapy sends after pipelines' close_spider.
        crawler.signals.connect(pipeline.spider_closed, signal=signals.spider_closed)
        crawler.signals.connect(pipeline.spider_error, signal=signals.spider_error)
        return pipeline

    def open_spider(self, spider: Any = None) -> None:
        spider = spider or self.crawler.spider
        db = open_db(self.db_path)
        self._file = file_identity(self.db_path)
        self.writer = ArchiveWriter(db, confirm_checks=self.confirm_checks,
                                    confirm_hours=self.confirm_hours, commit_every=self.commit_every,
                                    batch_sources=True, commit_seconds=self.commit_seconds)
        if self.crawler is not None and self.commit_seconds:
            from twisted.internet import task

            # Items can stop coming for a while (a slow host): the open batch must not keep
            # the archive's write lock from other processes meanwhile.
            self._committer = task.LoopingCall(self._commit_overdue)
            self._committer.start(min(self.commit_seconds, self.commit_idle or self.commit_seconds), now=False)
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
        if self.archive_error is not None:
            raise ArchiveUnavailable(f"archive error: {self.archive_error}")
        assert writer is not None
        try:
            if isinstance(item, LinkCheck):
                with writer.one_item():
                    _check_id, snapshot_id = writer.record_check(item)
                if item.report_hint and snapshot_id and item.body and item.state in ("ok", "redirected"):
                    if (needs_isolation(item.body, item.filename, item.content_type)
                            and not report_known(writer.db, item.site_id, item.body)):
                        if self.crawler is not None:
                            # Scrapy awaits the coroutine; other items and downloads go on meanwhile.
                            return self._ingest_report_isolated(item, snapshot_id)
                        self._ingest_report(item, snapshot_id, self._extract(item))
                    else:
                        self._ingest_report(item, snapshot_id)
            elif isinstance(item, LinkSources):
                writer.record_sources(item.sources)
            elif isinstance(item, LinkSource):
                writer.record_source(item)
            elif isinstance(item, Evidence):
                with writer.one_item():
                    writer.record_evidence(item)
            elif isinstance(item, OverheadBytes):
                writer.record_overhead(item)
        except ARCHIVE_ERRORS as exc:
            if self.crawler is None:  # not in a Scrapy crawl (the distributed writer loop): its call
                raise
            self._archive_failed(exc)
            raise ArchiveUnavailable(f"archive error: {exc}") from exc
        except Exception as exc:  # this item only (rolled back): record it, carry on
            if self.crawler is None:  # the distributed writer loop keeps it as a dead letter
                raise
            error = unstored_item(item, exc)
            # Not Scrapy's "Error processing {item}": an item's repr holds its whole body.
            logger.error("could not store %s", error, exc_info=True)
            self._processing_error(getattr(item, "site_id", None), error)
            raise ItemNotStored(f"{type(exc).__name__}: {exc}") from exc
        return item

    def spider_error(self, failure: Any, response: Any, spider: Any = None) -> None:
        """A callback raised (Scrapy logged it with its traceback): count it for the site."""
        self._processing_error(site_of(getattr(response, "meta", None)),
                               page_error(getattr(response, "url", ""), failure))

    def _processing_error(self, site_id: str | None, error: str) -> None:
        count, first = self.processing_errors.get(site_id, (0, error))
        self.processing_errors[site_id] = (count + 1, first)
        if self.crawler is not None:
            self.crawler.stats.inc_value("xxgk/processing_errors")

    def _unprocessed(self, site_id: str) -> str | None:
        """``finish_reason`` for a crawl of ``site_id`` that left pages or items unprocessed."""
        errors = [self.processing_errors[k] for k in (site_id, None) if k in self.processing_errors]
        if not errors:
            return None
        return processing_errors_reason(sum(n for n, _first in errors), errors[0][1])

    def _archive_failed(self, exc: BaseException) -> None:
        """Stop the crawl: roll back the half-written batch and close the spider."""
        self.archive_error = str(exc) or type(exc).__name__
        logger.error("cannot write the archive, closing the crawl (%s): %s", ARCHIVE_ERROR_REASON,
                     self.archive_error)
        writer = self.writer
        if writer is not None:
            try:
                writer.rollback()
            except sqlite3.Error:  # the connection may be unusable too; nothing half-written commits
                logger.debug("rollback after archive error failed", exc_info=True)
        crawler = self.crawler
        crawler.stats.set_value("xxgk/archive_error", self.archive_error[:500])
        engine = crawler.engine
        if engine is not None:
            from scrapy.utils.defer import deferred_from_coro

            # Not awaited: closing waits for items in flight, this one included.
            deferred_from_coro(engine.close_spider_async(reason=ARCHIVE_ERROR_REASON))

    async def _ingest_report_isolated(self, item: LinkCheck, snapshot_id: int) -> LinkCheck:
        """Extract the report's text in a child process (from a thread: the reactor keeps
        crawling), then ingest it here, on the reactor thread that owns the archive."""
        if self._extractors is None:
            self._extractors = ThreadPoolExecutor(self.extract_workers, thread_name_prefix="xxgk-extract")
        extracted = await asyncio.get_running_loop().run_in_executor(self._extractors, self._extract, item)
        if self.archive_error is None:
            self._ingest_report(item, snapshot_id, extracted)
        return item

    def _extract(self, item: LinkCheck) -> Extracted:
        """The report file's text, read in a child process (see :mod:`archive.reports.isolated`)."""
        return extract_isolated(item.body, item.filename, item.content_type, timeout=self.extract_timeout)

    def _ingest_report(self, item: LinkCheck, snapshot_id: int, extracted: Extracted | None = None) -> None:
        from archive.reports.ingest import ingest_report

        writer = self.writer
        assert writer is not None
        try:
            ingest_report(writer.db, item.site_id, item.body, filename=item.filename,
                          url=item.url, content_type=item.content_type, crawl_id=item.crawl_id,
                          snapshot_id=snapshot_id, seen_at=item.checked_at,
                          require_report=item.expect != "attachment", extracted=extracted)
            self.reports_ingested += 1
        except Exception:  # a bad report must not cost the crawl: the error is logged, crawl goes on
            logger.exception("could not ingest report %s", item.url)

    def _archive_file_gone(self) -> bool:
        """The archive file was deleted or replaced (a backup restored) under the crawl: what
        it writes would go to the old file, and a replaced file's WAL is the old one's. Stop."""
        if self.crawler is None:  # not in a Scrapy crawl (the distributed writer loop)
            return False
        changed = changed_since(self.db_path, self._file)
        if changed:
            self._archive_failed(ArchiveError(f"the archive {self.db_path} {changed} during the crawl"))
        return changed is not None

    def _commit_overdue(self) -> None:
        if self.writer is None or self.archive_error is not None or self._archive_file_gone():
            return
        try:
            self.writer.commit_if_overdue(self.commit_idle)
        except ARCHIVE_ERRORS as exc:
            self._archive_failed(exc)

    def close_spider(self, spider: Any = None) -> None:
        if self._committer is not None and self._committer.running:
            self._committer.stop()
        if self._extractors is not None:  # idle by now: Scrapy waited for every item
            self._extractors.shutdown(wait=False)
        if self.writer is not None and self.archive_error is None and not self._archive_file_gone():
            try:
                self.writer.commit()
            except ARCHIVE_ERRORS as exc:
                self._archive_failed(exc)

    def spider_closed(self, spider: Any, reason: str) -> None:
        """Close this run's ``crawls`` rows: ``finished`` only if Scrapy finished normally with
        every page and item of the site processed, ``failed`` after an archive error,
        ``incomplete`` otherwise."""
        writer = self.writer
        if writer is None:
            return
        if self.archive_error is not None:
            status, reason = "failed", f"{ARCHIVE_ERROR_REASON}: {self.archive_error}"[:1000]
        else:
            status = "finished" if reason == "finished" else "incomplete"
        try:
            for site_id, crawl_id in self.owned_crawls.items():
                unprocessed = self._unprocessed(site_id) if status == "finished" else None
                if unprocessed:
                    writer.close_crawl(crawl_id, "incomplete", finish_reason=unprocessed)
                else:
                    writer.close_crawl(crawl_id, status, finish_reason=reason)
            writer.commit()
        except ARCHIVE_ERRORS as exc:  # still unwritable: ``xxgk crawl`` closes the rows
            logger.error("could not close the crawl rows: %s", exc)
            if self.archive_error is None:
                self.archive_error = str(exc)
            with contextlib.suppress(sqlite3.Error):
                writer.rollback()
        finally:
            writer.db.conn.close()
            self.writer = None

