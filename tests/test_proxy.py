"""crawler.proxy: Scrapy's proxy handling, with no_proxy decided once per host."""

from __future__ import annotations

import pytest
from scrapy import Request
from scrapy.downloadermiddlewares.httpproxy import HttpProxyMiddleware

import crawler.proxy
from crawler.proxy import HostCachedProxyMiddleware

URLS = [
    "http://portal.example.edu.cn/xxgk/index.htm",
    "https://portal.example.edu.cn/info/1011/2222.htm",
    "http://intranet.example.org/a",
    "http://sub.intranet.example.org/b",
    "https://10.0.0.7/x",
    "ftp://files.example.edu.cn/report.pdf",
    "http://127.0.0.1:8080/",
]


@pytest.fixture
def proxy_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("http_proxy", "https_proxy", "no_proxy", "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY",
                 "all_proxy", "ALL_PROXY", "ftp_proxy", "FTP_PROXY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("http_proxy", "http://user:secret@proxy.local:3128")
    monkeypatch.setenv("https_proxy", "http://proxy.local:3129")
    monkeypatch.setenv("no_proxy", "intranet.example.org,127.0.0.1")


def _answer(middleware: HttpProxyMiddleware, url: str, meta: dict | None = None) -> tuple:
    request = Request(url, meta=dict(meta or {}))
    middleware.process_request(request)
    return (request.meta.get("proxy"), request.headers.get(b"Proxy-Authorization"),
            request.meta.get("_scheme_proxy"), request.meta.get("_auth_proxy"))


@pytest.mark.usefixtures("proxy_env")
def test_same_answers_as_scrapys_middleware() -> None:
    ours, scrapys = HostCachedProxyMiddleware(), HttpProxyMiddleware()
    for url in URLS * 2:  # the second round is answered from the cache
        assert _answer(ours, url) == _answer(scrapys, url), url
    assert _answer(ours, URLS[0])[0] == "http://proxy.local:3128"
    assert _answer(ours, URLS[0])[1].startswith(b"Basic ")
    assert _answer(ours, URLS[1])[:2] == ("http://proxy.local:3129", None)
    assert _answer(ours, URLS[2])[0] is None  # no_proxy
    assert _answer(ours, URLS[3])[0] is None  # no_proxy covers subdomains


@pytest.mark.usefixtures("proxy_env")
def test_explicit_meta_proxy_wins() -> None:
    ours, scrapys = HostCachedProxyMiddleware(), HttpProxyMiddleware()
    for meta in ({"proxy": "http://other:8000"}, {"proxy": None}):
        for url in URLS[:3]:
            assert _answer(ours, url, meta) == _answer(scrapys, url, meta)
    assert _answer(ours, URLS[2], {"proxy": "http://other:8000"})[0] == "http://other:8000"
    assert _answer(ours, URLS[0], {"proxy": None})[0] is None


@pytest.mark.usefixtures("proxy_env")
def test_no_proxy_is_asked_once_per_host(monkeypatch: pytest.MonkeyPatch) -> None:
    asked: list[str] = []
    real = crawler.proxy.proxy_bypass

    def counting(host: str) -> bool:
        asked.append(host)
        return real(host)

    monkeypatch.setattr(crawler.proxy, "proxy_bypass", counting)
    middleware = HostCachedProxyMiddleware()
    for _ in range(50):
        for url in URLS:
            _answer(middleware, url)
    assert sorted(asked) == sorted({"portal.example.edu.cn", "intranet.example.org", "sub.intranet.example.org",
                                    "10.0.0.7", "127.0.0.1"})


def test_no_proxy_variables_leave_requests_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)
    middleware = HostCachedProxyMiddleware()
    assert _answer(middleware, URLS[0]) == (None, None, None, None)


def test_project_settings_use_it() -> None:
    from crawler import settings

    assert settings.DOWNLOADER_MIDDLEWARES["crawler.proxy.HostCachedProxyMiddleware"] == 750
    assert settings.DOWNLOADER_MIDDLEWARES["scrapy.downloadermiddlewares.httpproxy.HttpProxyMiddleware"] is None
