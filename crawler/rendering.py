"""scrapy-playwright with a hard deadline per rendered request, and pages always closed.

scrapy-playwright bounds ``page.goto`` with the navigation timeout, but not what follows:
a page that reloads itself forever (an anti-bot cookie script the browser cannot pass)
makes ``page.content()`` wait indefinitely, and the crawl never ends. This handler wraps
every rendered download in ``asyncio.wait_for`` and closes the page on every path
(success, error, deadline), so the number of open pages stays bounded.

Settings:

``XXGK_RENDER_TIMEOUT``  seconds a rendered request may take in all (default:
                         2 x ``DOWNLOAD_TIMEOUT`` + 10); a request's ``xxgk_render_timeout``
                         meta key may ask for less (challenge retries do)
"""

from __future__ import annotations

import asyncio
from typing import Any

from scrapy import Request
from scrapy.http import Response
from scrapy_playwright.handler import ScrapyPlaywrightDownloadHandler


class RenderDeadlineError(TimeoutError):
    """Rendering a page took longer than ``XXGK_RENDER_TIMEOUT``."""


class BoundedPlaywrightDownloadHandler(ScrapyPlaywrightDownloadHandler):
    def __init__(self, crawler: Any) -> None:
        super().__init__(crawler)
        settings = crawler.settings
        default = 2 * settings.getfloat("DOWNLOAD_TIMEOUT", 30) + 10
        self.render_timeout = settings.getfloat("XXGK_RENDER_TIMEOUT", 0) or default
        #: Launching the browser and waiting for a free page may add this much.
        self.setup_allowance = 60.0

    async def _download_request(self, request: Request, spider: Any = None) -> Response:
        # Safety net around everything, page creation included: whatever hangs (a page slot
        # never freed, a browser call that never answers), the request ends.
        outer = self._deadline(request) + self.setup_allowance
        try:
            return await asyncio.wait_for(super()._download_request(request, spider), timeout=outer)
        except TimeoutError as exc:
            self.stats.inc_value("xxgk/render_setup_deadline_exceeded")
            page = request.meta.pop("playwright_page", None)
            if page is not None and not page.is_closed():
                await _close_quietly(page)
            raise RenderDeadlineError(f"rendering {request.url} did not finish in {outer:.0f} s") from exc

    def _deadline(self, request: Request) -> float:
        return min(self.render_timeout, request.meta.get("xxgk_render_timeout") or self.render_timeout)

    async def _download_request_with_page(self, request: Request, page: Any, spider: Any) -> Response:
        # The deadline starts once the page exists: launching the browser and waiting for a
        # free page slot are bounded elsewhere and must not eat into it.
        request.meta["playwright_include_page"] = True  # we, not scrapy-playwright, close it
        timeout = self._deadline(request)
        try:
            return await asyncio.wait_for(
                super()._download_request_with_page(request, page, spider), timeout=timeout)
        except TimeoutError as exc:
            self.stats.inc_value("xxgk/render_deadline_exceeded")
            raise RenderDeadlineError(f"rendering {request.url} took longer than {timeout:.0f} s") from exc
        finally:
            request.meta.pop("playwright_page", None)
            request.meta.pop("playwright_include_page", None)
            if not page.is_closed():
                await _close_quietly(page)
                self.stats.inc_value("playwright/page_count/closed")


async def _close_quietly(page: Any) -> None:
    try:
        await asyncio.wait_for(page.close(), timeout=10)
    except Exception:  # the browser may already be gone; nothing left to leak
        pass
