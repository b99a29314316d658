"""Scrapy settings for xxgk-archive.

Project settings (all overridable with ``-s NAME=value`` or environment variables of the
same name, which ``xxgk crawl`` passes through):

``XXGK_DB``                 archive database path (default ``xxgk.db``)
``XXGK_REGISTRY``           site registry TOML (default ``schedules/sites.toml``)
``XXGK_DOWNLOAD_TIMEOUT``   seconds before a request is a ``timeout`` (default 30)
``XXGK_CONFIRM_CHECKS``     consecutive failing checks before a link is ``dead`` (default 2)
``XXGK_CONFIRM_HOURS``      ...which must span at least this many hours (default 20)
``XXGK_CONTACT_URL``        contact URL named in the User-Agent
``XXGK_PROBE_SOFT404``      probe each site with a random URL to learn its not-found page (default on)
``XXGK_COMMIT_EVERY``       items per database transaction (default 200)
``XXGK_RENDER_TIMEOUT``     seconds a browser-rendered request may take in all (see crawler.rendering)
``XXGK_RENDER_SETTLE_MS``   how long a rendered page may take to reach network idle (default 5000)

Safety: ``crawler.safety.SSRFGuardMiddleware`` refuses loopback, private, link-local and
metadata origins (also after redirects and DNS) unless the site has ``allow_private``;
see its module docstring for ``XXGK_SSRF_*`` settings.

Politeness: robots.txt obeyed, per-host concurrency 4 with a 0.25 s delay, AutoThrottle
on, ``Retry-After`` respected for 429/503, transient failures retried twice with backoff.
Proxies: Scrapy's ``HttpProxyMiddleware`` reads ``http_proxy``/``https_proxy``/``no_proxy``;
``crawler.browser`` passes the same to Chromium.
"""

from __future__ import annotations

import os

BOT_NAME = "xxgk"
SPIDER_MODULES = ["crawler.spiders"]
NEWSPIDER_MODULE = "crawler.spiders"

XXGK_CONTACT_URL = os.environ.get("XXGK_CONTACT_URL", "https://github.com/xxgk-archive/xxgk-archive")
USER_AGENT = f"xxgk-archive/0.1 (+{XXGK_CONTACT_URL}; disclosure-portal archiver)"
ROBOTSTXT_OBEY = True

TWISTED_REACTOR = "twisted.internet.asyncioreactor.AsyncioSelectorReactor"
DOWNLOAD_HANDLERS = {
    "http": "crawler.rendering.BoundedPlaywrightDownloadHandler",
    "https": "crawler.rendering.BoundedPlaywrightDownloadHandler",
}

CONCURRENT_REQUESTS = 16
CONCURRENT_REQUESTS_PER_DOMAIN = 4
DOWNLOAD_DELAY = 0.25
AUTOTHROTTLE_ENABLED = True
AUTOTHROTTLE_START_DELAY = 0.25
AUTOTHROTTLE_TARGET_CONCURRENCY = 2.0
DOWNLOAD_TIMEOUT = int(os.environ.get("XXGK_DOWNLOAD_TIMEOUT", "30"))
DOWNLOAD_MAXSIZE = 64 * 1024 * 1024
DOWNLOAD_WARNSIZE = 16 * 1024 * 1024
DOWNLOAD_FAIL_ON_DATALOSS = False  # a truncated attachment is evidence, not an exception

# Every status reaches the spider: a 404 is a finding, not an error to drop.
HTTPERROR_ALLOW_ALL = True
RETRY_ENABLED = True
RETRY_TIMES = 2
RETRY_HTTP_CODES = [500, 502, 503, 504, 522, 524, 408]
REDIRECT_MAX_TIMES = 10
METAREFRESH_MAXDELAY = 10

DOWNLOADER_MIDDLEWARES = {
    "crawler.safety.SSRFGuardMiddleware": 50,  # before robots.txt (100): never even ask
    "scrapy.downloadermiddlewares.redirect.RedirectMiddleware": None,
    "scrapy.downloadermiddlewares.redirect.MetaRefreshMiddleware": None,
    "crawler.middlewares.ChainMetaRefreshMiddleware": 580,
    "crawler.middlewares.ChainRedirectMiddleware": 600,
    "crawler.middlewares.ConditionalRequestMiddleware": 650,
}
ITEM_PIPELINES = {"crawler.pipelines.ArchivePipeline": 300}
EXTENSIONS = {"crawler.extensions.DumpStateOnSignal": 0}

PLAYWRIGHT_BROWSER_TYPE = "chromium"
PLAYWRIGHT_MAX_PAGES_PER_CONTEXT = 4
PLAYWRIGHT_MAX_CONTEXTS = 2
# A browser needs longer than a plain GET (scripts, subresources, a loaded machine).
PLAYWRIGHT_DEFAULT_NAVIGATION_TIMEOUT = max(DOWNLOAD_TIMEOUT, 20) * 1000

LOG_LEVEL = os.environ.get("XXGK_LOG_LEVEL", "INFO")
TELNETCONSOLE_ENABLED = False
REQUEST_FINGERPRINTER_IMPLEMENTATION = "2.7"
FEED_EXPORT_ENCODING = "utf-8"

XXGK_DB = os.environ.get("XXGK_DB", "xxgk.db")
XXGK_REGISTRY = os.environ.get("XXGK_REGISTRY", "")
XXGK_CONFIRM_CHECKS = int(os.environ.get("XXGK_CONFIRM_CHECKS", "2"))
XXGK_CONFIRM_HOURS = float(os.environ.get("XXGK_CONFIRM_HOURS", "20"))
XXGK_PROBE_SOFT404 = os.environ.get("XXGK_PROBE_SOFT404", "1") not in ("0", "false", "no")
XXGK_COMMIT_EVERY = int(os.environ.get("XXGK_COMMIT_EVERY", "200"))

from crawler.browser import launch_options  # noqa: E402  (after the constants it reads)

PLAYWRIGHT_LAUNCH_OPTIONS = launch_options()
