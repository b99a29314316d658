"""The baseline: a bare Scrapy link checker that writes raw bodies to files, no archive.

    python -m benchmarks.bare_spider --registry FILE --out DIR [-s NAME=VALUE ...]

Same walk as ``crawler.spiders.portal`` without what makes the archive: from each
registry site's portal, follow links within ``allowed_domains`` (GET, every status kept;
the same crawler-trap guard and ``max_pages`` budget, or it would crawl calendars forever),
check links elsewhere with HEAD (never followed), obey robots.txt with the project's user
agent, and write each body to ``DIR/<sha1 of URL>``. No classification, no SQLite, no
rendering, no conditional requests. Prints ``links checked: N``.
"""

from __future__ import annotations

import argparse
import hashlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import scrapy
from scrapy.crawler import CrawlerProcess
from scrapy.http import Response, TextResponse
from w3lib.url import canonicalize_url

LINKS = "a::attr(href), area::attr(href), iframe::attr(src), frame::attr(src)"


class BareSpider(scrapy.Spider):
    name = "bare"

    def __init__(self, sites: list[Any], out: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.sites_ = sites
        self.out = Path(out)
        self.out.mkdir(parents=True, exist_ok=True)
        self.checked = 0
        self.seen: set[str] = set()
        from crawler.urls import TrapGuard

        self.guards = {site.id: TrapGuard() for site in sites}
        self.budget = {site.id: site.max_pages for site in sites}

    async def start(self) -> Any:
        for site in self.sites_:
            for url in site.portal:
                self.seen.add(url)
                yield scrapy.Request(url, callback=self.parse, errback=self.failed,
                                     cb_kwargs={"domains": site.allowed_domains, "site": site.id})

    def _in_scope(self, url: str, domains: tuple[str, ...]) -> bool:
        host = urlsplit(url).hostname or ""
        return any(host == d or host.endswith("." + d) for d in domains)

    def parse(self, response: Response, domains: tuple[str, ...], site: str) -> Iterator[scrapy.Request]:
        self.checked += 1
        name = hashlib.sha1(response.url.encode()).hexdigest()
        (self.out / name).write_bytes(response.body)
        if not isinstance(response, TextResponse) or response.status >= 400:
            return
        for href in response.css(LINKS).getall():
            url = canonicalize_url(response.urljoin(href.strip()))
            if not url.startswith(("http://", "https://")) or url in self.seen:
                continue
            self.seen.add(url)
            if self._in_scope(url, domains):
                if self.budget[site] <= 0 or not self.guards[site].allow(url):
                    continue
                self.budget[site] -= 1
                yield scrapy.Request(url, callback=self.parse, errback=self.failed,
                                     cb_kwargs={"domains": domains, "site": site})
            else:
                yield scrapy.Request(url, method="HEAD", callback=self.external, errback=self.failed)

    def external(self, response: Response) -> None:
        self.checked += 1

    def failed(self, failure: Any) -> None:
        self.checked += 1


def main(argv: list[str] | None = None) -> int:
    from crawler import settings as project
    from schedules.registry import load_registry

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--registry", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("-s", "--set", action="append", default=[])
    args = parser.parse_args(argv)
    settings = {
        "USER_AGENT": project.USER_AGENT, "ROBOTSTXT_OBEY": True, "HTTPERROR_ALLOW_ALL": True,
        "CONCURRENT_REQUESTS": project.CONCURRENT_REQUESTS, "DOWNLOAD_TIMEOUT": project.DOWNLOAD_TIMEOUT,
        "RETRY_TIMES": project.RETRY_TIMES, "REDIRECT_MAX_TIMES": project.REDIRECT_MAX_TIMES,
        "DOWNLOAD_MAXSIZE": project.DOWNLOAD_MAXSIZE, "TELNETCONSOLE_ENABLED": False, "LOG_LEVEL": "WARNING",
        "DOWNLOAD_FAIL_ON_DATALOSS": False,
        # The same engine settings as the project, so the comparison measures the archive:
        # the per-host limit must really hold (Scrapy's stock downloader let 16 requests at
        # once through to one host with CONCURRENT_REQUESTS_PER_DOMAIN=8 under the asyncio
        # reactor: see crawler.politeness), and items-per-response concurrency is an engine knob.
        "CONCURRENT_ITEMS": getattr(project, "CONCURRENT_ITEMS", 100),
        "WARN_ON_GENERATOR_RETURN_VALUE": getattr(project, "WARN_ON_GENERATOR_RETURN_VALUE", True),
        "TWISTED_REACTOR": project.TWISTED_REACTOR,
    }
    if getattr(project, "DOWNLOADER", None):
        settings["DOWNLOADER"] = project.DOWNLOADER
    for item in args.set:
        name, _, value = item.partition("=")
        settings[name] = value
        if name == "XXGK_DOWNLOAD_TIMEOUT":  # the project reads it at import: the same timeout here
            settings["DOWNLOAD_TIMEOUT"] = value
    process = CrawlerProcess(settings)
    crawler = process.create_crawler(BareSpider)
    process.crawl(crawler, sites=load_registry(args.registry), out=args.out)
    process.start()
    print(f"links checked: {crawler.spider.checked}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
