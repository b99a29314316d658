"""Faults injected into a real ``scrapy crawl`` child, for tests/test_processing_faults.py.

Not a test module: the child imports these classes by dotted path from a ``-s`` setting.
Each acts on the URLs that contain ``XXGK_TEST_FAULT_URL`` (an environment variable the
child inherits) and leaves every other URL alone.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from typing import Any


def _targeted(url: str) -> bool:
    needle = os.environ.get("XXGK_TEST_FAULT_URL", "")
    return bool(needle) and needle in url


class RaiseInCallback:
    """A spider middleware whose output for the targeted page raises: Scrapy handles it as
    an exception of the spider's callback (a bug, or input nothing anticipated)."""

    async def process_spider_output(self, response: Any, result: AsyncIterator[Any]) -> AsyncIterator[Any]:
        if _targeted(response.url):
            raise RuntimeError(f"injected callback fault for {response.url}")
        async for obj in result:
            yield obj


class UnknownStateItem:
    """An item pipeline ahead of the archive's that gives the targeted URL's check a state
    the archive refuses: ``ArchiveWriter.record_check`` fails after its ``link_checks``
    insert, in the middle of the item."""

    def process_item(self, item: Any, spider: Any = None) -> Any:
        if type(item).__name__ == "LinkCheck" and _targeted(item.url):
            item.state = "injected-bogus-state"
        return item
