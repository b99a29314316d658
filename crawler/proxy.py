"""Proxies from ``http_proxy``/``https_proxy``/``no_proxy``, decided once per host.

Scrapy's ``HttpProxyMiddleware`` asks ``urllib.request.proxy_bypass(host)`` for every
request, and that re-reads the whole process environment each time (~60 µs a request,
several percent of a crawl's CPU). The environment does not change during a crawl, so
:class:`HostCachedProxyMiddleware` keeps the answer per host name; everything else,
``meta["proxy"]`` included, is Scrapy's. It replaces Scrapy's middleware at the same
place in ``DOWNLOADER_MIDDLEWARES`` (750).
"""

from __future__ import annotations

from urllib.request import proxy_bypass

from scrapy import Request, Spider
from scrapy.downloadermiddlewares.httpproxy import HttpProxyMiddleware
from scrapy.http import Response
from scrapy.utils.httpobj import urlparse_cached

#: Hosts whose bypass answer is kept; a crawl of every portal in China has ~3,000.
MAX_HOSTS = 65536


class HostCachedProxyMiddleware(HttpProxyMiddleware):
    """``HttpProxyMiddleware`` with ``proxy_bypass`` asked once per host name."""

    def __init__(self, auth_encoding: str | None = "latin-1") -> None:
        super().__init__(auth_encoding)
        self._bypass: dict[str, bool] = {}

    def bypass(self, host: str) -> bool:
        """Whether ``no_proxy`` sends ``host`` direct (cached)."""
        answer = self._bypass.get(host)
        if answer is None:
            answer = bool(proxy_bypass(host))
            if len(self._bypass) >= MAX_HOSTS:
                self._bypass.clear()
            self._bypass[host] = answer
        return answer

    def process_request(self, request: Request, spider: Spider | None = None) -> Request | Response | None:
        if "proxy" in request.meta or not self.proxies:
            return super().process_request(request)
        creds, proxy_url, scheme = None, None, None
        parsed = urlparse_cached(request)
        # as Scrapy: no_proxy applies to http(s) only
        if (parsed.scheme not in {"http", "https"} or (parsed.hostname and not self.bypass(parsed.hostname))) \
                and parsed.scheme in self.proxies:
            scheme = parsed.scheme
            creds, proxy_url = self.proxies[scheme]
        self._set_proxy_and_creds(request, proxy_url, creds, scheme)
        return None
