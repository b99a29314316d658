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
``XXGK_CHALLENGE_PASSES``   browser passes of one host's anti-bot challenge per crawl (default 3;
                            see crawler.challenges: the browser's cookies carry the rest)
``XXGK_CHALLENGE_RELOADS``  reloads after which a challenge counts as unpassable (see crawler.rendering)
``XXGK_REUSE_ANSWERS``      recent answers kept to serve redirects to pages already downloaded in this
                            crawl (default 256; 0 = off; see crawler.middlewares.AnswerReuseMiddleware)
``XXGK_REUSE_BYTES``        ...and their total size (default 8 MB)
``XXGK_EXTRACT_TIMEOUT``    seconds a report file's text extraction may take in its child process
                            (default 60; see archive.reports.isolated, with ``XXGK_EXTRACT_MEMORY_MB``)
``XXGK_TRAP_REVISIT_BUDGET``  URLs a recrawl visits of a calendar family whose budget (50) ran out in
                            the site's last finished crawl (default 10; see crawler.urls.TrapGuard)

Safety: ``crawler.safety.SSRFGuardMiddleware`` refuses loopback, private, link-local and
metadata origins (also after redirects and DNS) unless the site has ``allow_private``;
see its module docstring for ``XXGK_SSRF_*`` settings.

Politeness: robots.txt obeyed, per-host concurrency 4 with a 0.25 s delay, AutoThrottle
on, transient failures retried twice (giving up is logged at INFO: the link's state records
it; see crawler.extensions.FindingsNotErrors for robots.txt failures). A robots.txt that
answers 5xx or cannot be fetched disallows its whole host for the crawl, as RFC 9309 says
(``crawler.robots.PoliteRobotsTxtMiddleware``; a 4xx still allows all): its links are
recorded ``excluded`` (a host that is not there at all, no DNS or refusing connections, is
checked as before: its links record that). A ``Crawl-delay`` is a per-host floor under the
delay, capped (``crawler.politeness``):

``XXGK_MAX_CRAWL_DELAY``      longest robots.txt Crawl-delay honoured, seconds (default 30)

The limits hold per origin host (also through a proxy) because ``DOWNLOADER`` is
``crawler.politeness.PoliteDownloader`` (Scrapy's own lets a host's whole queue through at
once under the asyncio reactor when there is no delay).
``Retry-After`` (``crawler.politeness.RetryAfterMiddleware``): a 429, or a 503 carrying
``Retry-After``, pauses the host as long as the header asks (seconds or HTTP date) and
retries the request, never in a tight loop; each such answer also doubles the host's delay
for the rest of the crawl. Beyond the cap, or once retries are used up, the URL is recorded
``rate_limited``:

``XXGK_RETRY_AFTER_MAX``      longest Retry-After honoured, seconds (default 60)
``XXGK_RETRY_AFTER_TIMES``    retries per request after 429/503 (default 2)
``XXGK_RETRY_AFTER_DEFAULT``  wait when the header is missing, doubled per retry (default 10)
Proxies: ``crawler.proxy.HostCachedProxyMiddleware`` (Scrapy's ``HttpProxyMiddleware``,
``no_proxy`` decided once per host) reads ``http_proxy``/``https_proxy``/``no_proxy``;
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
DOWNLOADER = "crawler.politeness.PoliteDownloader"
# Judges the address each connection is made to (DNS rebinding): see crawler.safety.
TWISTED_DNS_RESOLVER = "crawler.safety.GuardedResolver"
DOWNLOAD_HANDLERS = {
    "http": "crawler.rendering.BoundedPlaywrightDownloadHandler",
    "https": "crawler.rendering.BoundedPlaywrightDownloadHandler",
}

CONCURRENT_REQUESTS = 16
# A crawl covers several hosts: take the next request from the least busy one, so a slow or
# paused (Retry-After) host does not fill the downloader and hold the others back.
SCHEDULER_PRIORITY_QUEUE = "scrapy.pqueues.DownloaderAwarePriorityQueue"
# Items per response processed at once. Scrapy's default (100) starts 100 asyncio tasks for
# every response; our pipeline is synchronous, so they only cost CPU (~20% of a crawl's).
CONCURRENT_ITEMS = 4
# Scrapy re-reads and re-parses a callback's source (inspect + ast) on every response to warn
# about `return value` in generators: its cache is keyed by the bound method, which is new
# each time. Our callbacks are checked by ruff and tests instead (~0.2 ms a page saved).
WARN_ON_GENERATOR_RETURN_VALUE = False
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
# A link still failing after its retries is a finding (recorded with its state), not a
# crawler error: ERROR lines in a crawl's log are left for the crawler's own faults.
RETRY_GIVE_UP_LOG_LEVEL = "INFO"
REDIRECT_MAX_TIMES = 10
# Scrapy's default, stated because crawler.challenges relies on it: the cookies a browser
# got passing a host's anti-bot challenge go into this jar (host-only), so the host's other
# URLs pass without a browser. Off, every challenged URL gets its own browser retry.
COOKIES_ENABLED = True
METAREFRESH_MAXDELAY = 10

DOWNLOADER_MIDDLEWARES = {
    "crawler.safety.SSRFGuardMiddleware": 50,  # before robots.txt (100): never even ask
    # Scrapy's, but a robots.txt answering 5xx or unreachable disallows all (RFC 9309).
    "scrapy.downloadermiddlewares.robotstxt.RobotsTxtMiddleware": None,
    "crawler.robots.PoliteRobotsTxtMiddleware": 100,
    "scrapy.downloadermiddlewares.redirect.RedirectMiddleware": None,
    "scrapy.downloadermiddlewares.redirect.MetaRefreshMiddleware": None,
    # Sees responses before RetryMiddleware (550): a 503 with Retry-After waits, not retries at once.
    "crawler.politeness.RetryAfterMiddleware": 560,
    # Keeps decompressed answers (HttpCompression is 590) and answers before redirects are followed.
    "crawler.middlewares.AnswerReuseMiddleware": 575,
    "crawler.middlewares.ChainMetaRefreshMiddleware": 580,
    "crawler.middlewares.ChainRedirectMiddleware": 600,
    "crawler.middlewares.ConditionalRequestMiddleware": 650,
    # Scrapy's, with no_proxy decided once per host, not per request (crawler.proxy).
    "scrapy.downloadermiddlewares.httpproxy.HttpProxyMiddleware": None,
    "crawler.proxy.HostCachedProxyMiddleware": 750,
    # Last before the download handler: sees every answer as it came (see its docstring).
    "crawler.middlewares.WireBytesMiddleware": 900,
}
# robots.txt bytes reach the archive as OverheadBytes items (crawls.overhead_bytes).
SPIDER_MIDDLEWARES = {"crawler.overhead.RobotsBytesMiddleware": 950}
ITEM_PIPELINES = {"crawler.pipelines.ArchivePipeline": 300}
# No "Scraped from" log record per item below DEBUG (one item per link adds up).
LOG_FORMATTER = "crawler.pipelines.ItemLogFormatter"
EXTENSIONS = {"crawler.extensions.DumpStateOnSignal": 0, "crawler.extensions.StopWhenParentDies": 0,
              "crawler.extensions.FindingsNotErrors": 0,
              "crawler.extensions.OfflinePublicSuffixList": 0}

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
XXGK_TRAP_REVISIT_BUDGET = int(os.environ.get("XXGK_TRAP_REVISIT_BUDGET", "10"))
XXGK_RETRY_AFTER_MAX = float(os.environ.get("XXGK_RETRY_AFTER_MAX", "60"))
XXGK_RETRY_AFTER_TIMES = int(os.environ.get("XXGK_RETRY_AFTER_TIMES", "2"))
XXGK_RETRY_AFTER_DEFAULT = float(os.environ.get("XXGK_RETRY_AFTER_DEFAULT", "10"))
XXGK_MAX_CRAWL_DELAY = float(os.environ.get("XXGK_MAX_CRAWL_DELAY", "30"))

from crawler.browser import launch_options  # noqa: E402  (after the constants it reads)

PLAYWRIGHT_LAUNCH_OPTIONS = launch_options()
