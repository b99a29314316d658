"""Operational extensions.

``DumpStateOnSignal``: ``kill -USR1 <crawl pid>`` writes what the crawl is waiting for to
its log — requests in the downloader, and every pending asyncio task with its stack — so a
stuck crawl can be diagnosed without stopping it.
"""

from __future__ import annotations

import asyncio
import io
import logging
import signal
from typing import Any

logger = logging.getLogger(__name__)


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
