"""Operational extensions.

``DumpStateOnSignal``: ``kill -USR1 <crawl pid>`` writes what the crawl is waiting for to
its log — requests in the downloader, and every pending asyncio task with its stack — so a
stuck crawl can be diagnosed without stopping it.

``StopWhenParentDies``: the crawl's parent (``xxgk crawl``, the scheduler) asks the kernel to
send the crawl ``PARENT_GONE_SIGNAL`` when it dies (``PR_SET_PDEATHSIG``, see
:mod:`xxgk.runcrawl`). The kernel sends it once more each time the crawl passes to another
thread of the dying parent (the scheduler has many): as SIGTERM, the second one made Scrapy
force an unclean shutdown and lose the uncommitted batch, the row left "running". The first
closes the crawl as one SIGTERM does (gracefully, reason ``shutdown``); the others are ignored.

``FindingsNotErrors``: a host whose robots.txt cannot be downloaded (no DNS, refused, bad
TLS) is a finding the crawl records as that host's links' states, not a crawler error:
Scrapy's ERROR record with a traceback for it becomes one INFO line, so the ERROR lines
left in a crawl's log are the crawler's own faults. (Retries given up are logged at INFO
too: ``RETRY_GIVE_UP_LOG_LEVEL`` in crawler.settings.)

``OfflinePublicSuffixList``: Scrapy's cookie middleware splits domains with tldextract,
which on first use downloads the Public Suffix List from publicsuffix.org — through the
user's proxy, a request to a site nobody registered (and, without internet, a traceback in
the crawl log). The list bundled with tldextract is used instead, unless
``TLDEXTRACT_PUBLIC_SUFFIX_LIST_URLS`` is set (tldextract's own way to name the lists).
"""

from __future__ import annotations

import asyncio
import io
import logging
import os
import signal
from typing import Any

logger = logging.getLogger(__name__)

#: The loggers that report a robots.txt download failure (Scrapy's middleware, and the
#: shared one of distributed crawls, which calls Scrapy's code).
ROBOTS_LOGGERS = ("scrapy.downloadermiddlewares.robotstxt", "crawler.distributed")


#: What the kernel sends the crawl when its parent dies (not SIGTERM: see StopWhenParentDies).
#: The crawl runs in a session of its own, so no terminal sends it a hangup.
PARENT_GONE_SIGNAL = signal.SIGHUP


class StopWhenParentDies:
    def __init__(self) -> None:
        self.signalled = False
        try:
            signal.signal(PARENT_GONE_SIGNAL, self._parent_gone)
        except ValueError:  # not the main thread (embedded use): nothing to install
            pass

    @classmethod
    def from_crawler(cls, crawler: Any) -> StopWhenParentDies:
        return cls()

    def _parent_gone(self, signum: int, frame: Any) -> None:
        if self.signalled:
            return
        self.signalled = True
        # Scrapy's own first-SIGTERM path: a graceful stop, the pipeline closes the rows
        os.kill(os.getpid(), signal.SIGTERM)


class DumpStateOnSignal:
    def __init__(self, crawler: Any) -> None:
        self.crawler = crawler
        try:
            signal.signal(signal.SIGUSR1, self._dump)
        except ValueError:  # not the main thread (embedded use): nothing to install
            pass

    @classmethod
    def from_crawler(cls, crawler: Any) -> DumpStateOnSignal:
        return cls(crawler)

    def _dump(self, signum: int, frame: Any) -> None:
        out = io.StringIO()
        engine = self.crawler.engine
        if engine is not None:
            downloader = engine.downloader
            out.write(f"downloader active: {len(downloader.active)}\n")
            for request in list(downloader.active)[:50]:
                out.write(f"  {request.method} {request.url} playwright={bool(request.meta.get('playwright'))}\n")
            for key, slot in downloader.slots.items():
                out.write(f"  slot {key}: active={len(slot.active)} queue={len(slot.queue)}"
                          f" transferring={len(slot.transferring)}\n")
        try:
            tasks = asyncio.all_tasks(asyncio.get_event_loop())
        except RuntimeError:
            tasks = set()
        out.write(f"asyncio tasks: {len(tasks)}\n")
        for task in tasks:
            task.print_stack(limit=12, file=out)
        logger.warning("state dump (SIGUSR1):\n%s", out.getvalue())


class _RobotsFailureToInfo(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno >= logging.ERROR and str(record.msg).startswith("Error downloading"):
            record.levelno, record.levelname = logging.INFO, logging.getLevelName(logging.INFO)
            record.exc_info = record.exc_text = None  # the message already names the failure
        return True


class FindingsNotErrors:
    """See the module docstring; the filter lives as long as the crawl."""

    def __init__(self, crawler: Any) -> None:
        from scrapy import signals

        self._filter = _RobotsFailureToInfo()
        for name in ROBOTS_LOGGERS:
            logging.getLogger(name).addFilter(self._filter)
        crawler.signals.connect(self.engine_stopped, signal=signals.engine_stopped)

    @classmethod
    def from_crawler(cls, crawler: Any) -> FindingsNotErrors:
        return cls(crawler)

    def engine_stopped(self) -> None:
        for name in ROBOTS_LOGGERS:
            logging.getLogger(name).removeFilter(self._filter)


class OfflinePublicSuffixList:
    """See the module docstring."""

    def __init__(self) -> None:
        from scrapy.downloadermiddlewares import cookies
        from tldextract import TLDExtract

        if "TLDEXTRACT_PUBLIC_SUFFIX_LIST_URLS" in os.environ or not hasattr(cookies, "_split_domain"):
            return
        # no cache either: the bundled list is parsed in memory once per crawl process
        cookies._split_domain = TLDExtract(cache_dir=None, suffix_list_urls=(), include_psl_private_domains=True)

    @classmethod
    def from_crawler(cls, crawler: Any) -> OfflinePublicSuffixList:
        return cls()
