"""What a crawl downloads besides its link checks: robots.txt, counted into the archive.

:class:`RobotsBytesMiddleware` (a spider middleware) sees every answer the engine downloads
(the ``response_received`` signal), notes the body bytes of each host's ``robots.txt``
(Scrapy's ``RobotsTxtMiddleware``, and the distributed mode's shared copy, fetch it with
``dont_obey_robotstxt``), and hands them on as a :class:`crawler.items.OverheadBytes` item
with the next answer from that host that reaches the spider: robots.txt is fetched because
a request to the host is waiting, and that request's answer comes next. The item names the
answer's site and crawl, so ``crawls.bytes_received`` is what the crawl cost each site (the
spider reports its not-found probe itself). A host whose every request failed (the errback
does not pass spider middlewares) leaves its robots.txt uncounted.

No settings.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Iterator
from typing import Any
from urllib.parse import urlsplit

from scrapy import signals
from scrapy.http import Request, Response

from crawler.items import OverheadBytes
from crawler.middlewares import WIRE_BYTES


class RobotsBytesMiddleware:
    def __init__(self, crawler: Any) -> None:
        self.crawler = crawler
        #: Host -> (robots.txt URL, body bytes) not yet handed on.
        self.pending: dict[str, list[tuple[str, int]]] = {}
        crawler.signals.connect(self.response_received, signal=signals.response_received)

    @classmethod
    def from_crawler(cls, crawler: Any) -> RobotsBytesMiddleware:
        return cls(crawler)

    def response_received(self, response: Response, request: Request, **_kw: Any) -> None:
        parts = urlsplit(request.url)
        if request.meta.get("dont_obey_robotstxt") and parts.path == "/robots.txt":
            # Retried attempts included (WireBytesMiddleware), as for a link's check.
            size = request.meta.get(WIRE_BYTES, len(response.body))
            if size:
                self.pending.setdefault((parts.hostname or "").lower(), []).append((request.url, size))

    def _overhead(self, response: Response) -> Iterator[OverheadBytes]:
        if not self.pending:
            return
        xxgk = response.meta.get("xxgk") or {}
        run = getattr(self.crawler.spider, "runs", {}).get(xxgk.get("site"))
        if run is None:
            return
        for url in (*response.meta.get("redirect_urls", ()), response.url):
            for robots_url, size in self.pending.pop((urlsplit(url).hostname or "").lower(), ()):
                yield OverheadBytes(site_id=run.site.id, crawl_id=run.crawl_id, url=robots_url,
                                    bytes_received=size)

    def process_spider_output(self, response: Response, result: Iterable[Any]) -> Iterator[Any]:
        yield from self._overhead(response)
        yield from result

    async def process_spider_output_async(self, response: Response,
                                          result: AsyncIterator[Any]) -> AsyncIterator[Any]:
        for item in self._overhead(response):
            yield item
        async for obj in result:
            yield obj
