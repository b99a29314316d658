"""Scrapy and the Chromium of rendered pages send every URL the same way (crawler.proxy).

Each side is asked for real: Scrapy through crawler.proxy.HostCachedProxyMiddleware, Chromium
launched with crawler.browser.launch_options() and sent to each URL while local recording
proxies (one may ask for a password, 407) log what reached them. A URL the proxies never saw
went direct (its host does not resolve here, or nothing listens: the page fails, which is fine).

Found by a review: Chromium got the proxy URL with its user:password (Chromium sends no
credentials then: every rendered page failed, recorded as the site's ``connection_error``);
``no_proxy=example.edu.cn`` sent ``www.example.edu.cn`` direct in Scrapy but not in Chromium,
``host:80`` and CIDR entries the other way round; Chromium used ``https_proxy`` for http://
URLs too, and an uppercase variable when the lowercase one was set empty; a SOCKS proxy let
a crawl "finish" with its portal ``excluded``.
"""

from __future__ import annotations

import asyncio
import base64
import os
import socket
import socketserver
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path
from urllib.parse import urlsplit

import pytest

ROOT = Path(__file__).resolve().parent.parent
PROXY_VARIABLES = ("http_proxy", "https_proxy", "no_proxy", "all_proxy", "ftp_proxy")
PAGE = "http://info.jsp-college.edu.cn/index.jsp"  # a simulated-web page
USER, PASSWORD = "crawler", "pa@ss:w/rd%"  # every character that needs percent-encoding in a URL
QUOTED = "pa%40ss%3Aw%2Frd%25"


def _chromium() -> str | None:
    from crawler.browser import chromium_path

    path = chromium_path()
    return path if path and Path(path).exists() else None


needs_chromium = pytest.mark.skipif(_chromium() is None, reason="no Chromium to launch")


class RecordingProxy:
    """A forward proxy on 127.0.0.1 logging ``(method, target, Proxy-Authorization)``.

    With ``creds`` it answers 407 to any other Proxy-Authorization. Requests are relayed to
    ``upstream`` (the simulated web's proxy) or, without one, answered with a small page;
    CONNECT is refused with 502 (no test needs an HTTPS page, only where it was sent).
    """

    def __init__(self, creds: tuple[str, str] | None = None, upstream: tuple[str, int] | None = None) -> None:
        self.expected = "Basic " + base64.b64encode(f"{creds[0]}:{creds[1]}".encode()).decode() if creds else None
        self.upstream = upstream
        self.log: list[tuple[str, str, str | None]] = []
        proxy = self

        class Handler(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                proxy._serve(self.request)

        class Server(socketserver.ThreadingTCPServer):
            daemon_threads = True
            allow_reuse_address = True

        self.server = Server(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def saw(self, url: str) -> bool:
        parts = urlsplit(url)
        port = parts.port or (443 if parts.scheme == "https" else 80)
        return any(target.split("#")[0] == url or target == f"{parts.hostname}:{port}"
                   for _method, target, _auth in self.log)

    def _serve(self, client: socket.socket) -> None:
        data = b""
        try:
            while True:
                while b"\r\n\r\n" not in data:
                    chunk = client.recv(65536)
                    if not chunk:
                        return
                    data += chunk
                head, data = data.split(b"\r\n\r\n", 1)
                lines = head.decode("latin-1").split("\r\n")
                method, target, _version = lines[0].split(" ", 2)
                headers = [line.split(":", 1) for line in lines[1:] if ":" in line]
                auth = next((v.strip() for k, v in headers if k.lower() == "proxy-authorization"), None)
                self.log.append((method, target, auth))
                if self.expected and auth != self.expected:
                    body = b"<html><body><h1>407 Proxy Authentication Required</h1></body></html>"
                    client.sendall(b"HTTP/1.1 407 Proxy Authentication Required\r\nContent-Type: text/html\r\n"
                                   b'Proxy-Authenticate: Basic realm="test"\r\nContent-Length: %d\r\n\r\n'
                                   % len(body) + body)
                    continue  # the client may ask again with credentials on this connection
                if method == "CONNECT":
                    client.sendall(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                    return
                if self.upstream is None:
                    body = b"<html><head><title>via proxy</title></head><body>proxied</body></html>"
                    client.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nConnection: close\r\n"
                                   b"Content-Length: %d\r\n\r\n" % len(body) + body)
                    return
                kept = [f"{k}:{v}" for k, v in headers if k.lower() not in (
                    "proxy-authorization", "proxy-connection", "connection", "keep-alive")]
                with socket.create_connection(self.upstream) as up:
                    up.sendall((f"{method} {target} HTTP/1.1\r\n" + "\r\n".join(kept)
                                + "\r\nConnection: close\r\n\r\n").encode("latin-1"))
                    while chunk := up.recv(65536):
                        client.sendall(chunk)
                return
        except OSError:
            pass
        finally:
            client.close()


@pytest.fixture
def proxies():
    """Two recording proxies, A and B, answering by themselves."""
    a, b = RecordingProxy(), RecordingProxy()
    yield a, b
    a.close()
    b.close()


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch):
    """Sets a proxy environment on os.environ (for Scrapy's side) with no other proxy variable."""
    def set_env(env: dict[str, str]) -> None:
        for name in list(os.environ):
            if name.lower() in PROXY_VARIABLES or name == "REQUEST_METHOD":
                monkeypatch.delenv(name)
        for name, value in env.items():
            monkeypatch.setenv(name, value)

    return set_env


def scrapy_routes(env: dict[str, str], urls: list[str], names: dict[str, str], set_env) -> dict[str, str]:
    """Which proxy (by name) or "direct" Scrapy's middleware picks for each URL."""
    from scrapy import Request

    from crawler.proxy import HostCachedProxyMiddleware

    set_env(env)
    middleware = HostCachedProxyMiddleware()
    routes = {}
    for url in urls:
        request = Request(url)
        middleware.process_request(request)
        proxy = request.meta.get("proxy")
        routes[url] = names.get(proxy, proxy) if proxy else "direct"
    return routes


async def _visit(options: dict, urls: list[str], timeout_ms: int = 5000) -> dict[str, str]:
    """Sends a Chromium launched with ``options`` to each URL: "HTTP <status>", or the error."""
    from playwright.async_api import async_playwright

    results = {}
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(**options)
        try:
            for url in urls:
                page = await browser.new_page()
                try:
                    response = await page.goto(url, timeout=timeout_ms)
                    results[url] = f"HTTP {response.status if response else None}"
                except Exception as exc:  # noqa: BLE001 - the failure is the answer
                    results[url] = f"{type(exc).__name__}: {exc}"
                finally:
                    await page.close()
        finally:
            await browser.close()
    return results


def chromium_routes(env: dict[str, str], urls: list[str], recorders: dict[str, RecordingProxy]) -> dict[str, str]:
    """Which recording proxy (by name) Chromium sent each URL to, or "direct"."""
    from crawler.browser import launch_options

    for proxy in recorders.values():
        proxy.log.clear()
    asyncio.run(_visit(launch_options(env), urls))
    return {url: "+".join(name for name, proxy in recorders.items() if proxy.saw(url)) or "direct"
            for url in urls}


def assert_same_routes(env: dict[str, str], expected: dict[str, str], proxies, set_env) -> None:
    a, b = proxies
    env = {name: value.replace("{A}", a.url).replace("{B}", b.url) for name, value in env.items()}
    urls = list(expected)
    scrapy = scrapy_routes(env, urls, {a.url: "A", b.url: "B"}, set_env)
    chromium = chromium_routes(env, urls, {"A": a, "B": b})
    assert scrapy == expected, ("Scrapy", env)
    assert chromium == expected, ("Chromium", env)


# -- 2. no_proxy means the same on both sides ---------------------------------------------------
NO_PROXY_URLS = ["http://info.jsp-college.edu.cn/", "http://jsp-college.edu.cn/", "http://info.jsp-college.edu.cn:8080/",
                 "http://notjsp-college.edu.cn/", "http://xxgk.vsb-univ.edu.cn/", "https://xxgk.webplus-univ.edu.cn/",
                 "http://127.0.0.2:8099/", "http://127.0.0.9:8099/"]
JSP = {"http://info.jsp-college.edu.cn/", "http://jsp-college.edu.cn/", "http://info.jsp-college.edu.cn:8080/"}
NO_PROXY_CASES = {
    # a bare or dotted name: the domain and every host under it (Chromium: that one host)
    "jsp-college.edu.cn": JSP,
    ".jsp-college.edu.cn": JSP,
    "*.jsp-college.edu.cn": JSP,
    " JSP-College.EDU.cn , vsb-univ.edu.cn:80": JSP | {"http://xxgk.vsb-univ.edu.cn/"},
    # with a port: that port only, 80/443 when the URL has none (Python ignored such entries)
    "info.jsp-college.edu.cn:80": {"http://info.jsp-college.edu.cn/"},
    "webplus-univ.edu.cn:443": {"https://xxgk.webplus-univ.edu.cn/"},
    # IP addresses and CIDR blocks match IP hosts (Python ignored CIDR blocks)
    "127.0.0.0/29": {"http://127.0.0.2:8099/"},
    "127.0.0.2": {"http://127.0.0.2:8099/"},
    # loopback addresses are not bypassed unless listed (Chromium bypassed all of them when
    # no_proxy named localhost)
    "localhost": set(),
    "*": set(NO_PROXY_URLS),
}


@needs_chromium
@pytest.mark.parametrize("no_proxy", list(NO_PROXY_CASES))
def test_no_proxy_sends_the_same_urls_direct_in_scrapy_and_chromium(no_proxy, proxies, clean_env):
    expected = {url: "direct" if url in NO_PROXY_CASES[no_proxy] else "A" for url in NO_PROXY_URLS}
    assert_same_routes({"http_proxy": "{A}", "https_proxy": "{A}", "no_proxy": no_proxy}, expected, proxies, clean_env)


# -- 3. each scheme its own proxy; 4. a lowercase variable wins even when empty ----------------
HTTP_URL, HTTPS_URL = "http://info.jsp-college.edu.cn/", "https://xxgk.webplus-univ.edu.cn/"
OTHER_URL = "http://jsp-college.edu.cn/"
SCHEME_CASES = {
    "two proxies": ({"http_proxy": "{A}", "https_proxy": "{B}"}, {HTTP_URL: "A", HTTPS_URL: "B"}),
    "http only": ({"http_proxy": "{A}"}, {HTTP_URL: "A", HTTPS_URL: "direct"}),
    "https only": ({"https_proxy": "{B}"}, {HTTP_URL: "direct", HTTPS_URL: "B"}),
    "uppercase only": ({"HTTP_PROXY": "{A}", "HTTPS_PROXY": "{B}", "NO_PROXY": "jsp-college.edu.cn"},
                       {HTTP_URL: "direct", HTTPS_URL: "B", OTHER_URL: "direct"}),
}
LOWERCASE_CASES = {
    "empty http_proxy": ({"http_proxy": "", "HTTP_PROXY": "{A}", "https_proxy": "{B}"},
                         {HTTP_URL: "direct", HTTPS_URL: "B"}),
    "lowercase wins": ({"http_proxy": "{A}", "HTTP_PROXY": "{B}"}, {HTTP_URL: "A", HTTPS_URL: "direct"}),
    "empty no_proxy": ({"http_proxy": "{A}", "https_proxy": "{A}", "no_proxy": "", "NO_PROXY": "jsp-college.edu.cn"},
                       {HTTP_URL: "A", HTTPS_URL: "A", OTHER_URL: "A"}),
}


@needs_chromium
@pytest.mark.parametrize("case", list(SCHEME_CASES))
def test_each_scheme_goes_through_its_own_proxy(case, proxies, clean_env):
    env, expected = SCHEME_CASES[case]
    assert_same_routes(env, expected, proxies, clean_env)


@needs_chromium
@pytest.mark.parametrize("case", list(LOWERCASE_CASES))
def test_a_lowercase_variable_wins_even_when_empty(case, proxies, clean_env):
    env, expected = LOWERCASE_CASES[case]
    assert_same_routes(env, expected, proxies, clean_env)


def test_the_proxy_variables_are_read_as_urllib_reads_them(clean_env):
    import urllib.request

    from crawler.proxy import proxy_variables

    for env in ({"http_proxy": "", "HTTP_PROXY": "http://a:1"}, {"HTTP_PROXY": "http://a:1", "Https_Proxy": "http://b:2"},
                {"no_proxy": "", "NO_PROXY": "x"}, {"http_proxy": "http://a:1", "REQUEST_METHOD": "GET"},
                {"HTTP_PROXY": "http://a:1", "REQUEST_METHOD": "GET", "HTTP_proxy": "http://c:3"}):
        clean_env(env)
        assert {scheme: value for scheme, (_name, value) in proxy_variables().items()} == \
            urllib.request.getproxies_environment(), env
        assert proxy_variables(env) == proxy_variables()


# -- 1. credentials: Chromium authenticates to the proxy; its proxy errors are not the site's --
@pytest.fixture
def simweb():
    from simweb import SimWeb

    with SimWeb(port=0, day=1, delay_scale=0.02) as web:
        yield web


@needs_chromium
@pytest.mark.parametrize("https", ["same proxy", "other proxy"])
def test_chromium_gives_the_proxy_its_credentials(https, simweb, clean_env):
    """Percent-encoded user:password in the proxy URL reach the proxy, decoded, from both sides."""
    from scrapy import Request

    from crawler.browser import launch_options
    from crawler.proxy import HostCachedProxyMiddleware

    upstream = ("127.0.0.1", urlsplit(simweb.proxy_url).port)
    proxy, other = RecordingProxy((USER, PASSWORD), upstream), RecordingProxy((USER, PASSWORD), upstream)
    try:
        def url(p: RecordingProxy) -> str:
            return p.url.replace("://", f"://{USER}:{QUOTED}@")

        env = {"http_proxy": url(proxy), "https_proxy": url(proxy if https == "same proxy" else other)}
        results = asyncio.run(_visit(launch_options(env), [PAGE], timeout_ms=20000))
        assert results[PAGE] == "HTTP 200", results
        expected = "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
        assert ("GET", PAGE, expected) in proxy.log, proxy.log
        assert ("GET", PAGE, 200) in simweb.request_log, simweb.request_log
        # and Scrapy sends the very same header
        clean_env(env)
        request = Request(PAGE)
        HostCachedProxyMiddleware().process_request(request)
        assert request.headers[b"Proxy-Authorization"].decode() == expected
        assert request.meta["proxy"] == proxy.url
    finally:
        proxy.close()
        other.close()


@needs_chromium
def test_chromiums_proxy_failures_are_inconclusive_not_the_sites(simweb):
    """No credentials for a proxy that wants them, a proxy that is down, a refused CONNECT:
    real Chromium errors, classified as Scrapy's proxy 407 is (blocked), never as the page's
    connection_error. (Wrong credentials: Chromium shows the proxy's 407 page, judged by its
    status as Scrapy's is.)"""
    from archive import states as S
    from crawler.browser import launch_options
    from crawler.classify import classify
    from crawler.fetch import Fetch

    upstream = ("127.0.0.1", urlsplit(simweb.proxy_url).port)
    proxy = RecordingProxy((USER, PASSWORD), upstream)
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))  # a port nothing listens on
    down = f"http://127.0.0.1:{closed.getsockname()[1]}"
    cases = {
        "ERR_INVALID_AUTH_CREDENTIALS": ({"http_proxy": proxy.url}, PAGE),
        "ERR_PROXY_CONNECTION_FAILED": ({"http_proxy": down}, PAGE),
        "ERR_TUNNEL_CONNECTION_FAILED": ({"https_proxy": proxy.url.replace("://", f"://{USER}:{QUOTED}@")},
                                         "https://xxgk.webplus-univ.edu.cn/"),
    }
    try:
        for code, (env, url) in cases.items():
            error = asyncio.run(_visit(launch_options(env), [url], timeout_ms=20000))[url]
            assert code in error, (code, error)
            error_type, _, message = error.partition(": ")
            verdict = classify(Fetch(url=url, error_type=error_type, error=message[:1000]), rendered=True)
            assert (verdict.state, verdict.rule) == (S.BLOCKED, "net-browser-proxy"), (code, verdict)
        wrong = {"http_proxy": proxy.url.replace("://", f"://{USER}:wrong@")}
        assert asyncio.run(_visit(launch_options(wrong), [PAGE], timeout_ms=20000))[PAGE] == "HTTP 407"
    finally:
        proxy.close()
        closed.close()
    scrapy_407 = classify(Fetch(url=PAGE, status=407, via_proxy=True))
    assert (scrapy_407.state, scrapy_407.rule) == (S.BLOCKED, "http-407")
    assert S.BLOCKED in S.INCONCLUSIVE_STATES


@pytest.mark.parametrize("code", ["ERR_PROXY_AUTH_UNSUPPORTED", "ERR_PROXY_CERTIFICATE_INVALID",
                                  "ERR_MANDATORY_PROXY_CONFIGURATION_FAILED", "ERR_PROXY_HTTP_1_1_REQUIRED"])
def test_other_proxy_errors_of_chromium_are_blocked(code):
    from crawler.classify import classify
    from crawler.fetch import Fetch

    verdict = classify(Fetch(url=PAGE, error_type="Error", error=f"Page.goto: net::{code} at {PAGE}\nCall log:\n"))
    assert (verdict.state, verdict.rule) == ("blocked", "net-browser-proxy")
    # the site's own failures keep their states
    refused = classify(Fetch(url=PAGE, error_type="Error", error=f"Page.goto: net::ERR_CONNECTION_REFUSED at {PAGE}"))
    assert refused.state == "connection_error"


def test_two_proxies_with_different_credentials_are_refused():
    from crawler.browser import launch_options
    from crawler.proxy import ProxyConfigError

    same = launch_options({"http_proxy": "http://u:p@a:1", "https_proxy": "http://u:p@b:2"})
    assert (same["proxy"]["username"], same["proxy"]["password"]) == ("u", "p")
    assert "http://u" not in str(same)  # credentials never in a server string
    for env in ({"http_proxy": "http://u:p@a:1", "https_proxy": "http://v:q@b:2"},
                {"http_proxy": "http://u:p@a:1", "HTTPS_PROXY": "http://b:2"}):
        with pytest.raises(ProxyConfigError, match="different credentials"):
            launch_options(env)
    assert "proxy" not in launch_options({"http_proxy": "http://u:p@a:1", "https_proxy": "http://v:q@b:2",
                                          "no_proxy": "*"})


@needs_chromium
def test_a_rendered_crawl_through_a_proxy_with_a_password(tmp_path, simweb):
    """``xxgk crawl`` with rendering through a proxy that needs a password: the portal is
    rendered and ok (it was connection_error: Chromium sent no credentials)."""
    upstream = ("127.0.0.1", urlsplit(simweb.proxy_url).port)
    proxy = RecordingProxy((USER, PASSWORD), upstream)
    registry = tmp_path / "sites.toml"
    registry.write_text(f'[[site]]\nid = "jsp"\nname = "模拟职业技术学院"\nportal = "{PAGE}"\n'
                        'allowed_domains = ["info.jsp-college.edu.cn"]\nrender = "always"\nmax_pages = 1\n',
                        encoding="utf-8")
    auth = proxy.url.replace("://", f"://{USER}:{QUOTED}@")
    env = {k: v for k, v in os.environ.items() if k.lower() not in PROXY_VARIABLES}
    env.update(http_proxy=auth, https_proxy=auth, no_proxy="")
    try:
        result = subprocess.run(
            [sys.executable, "-m", "xxgk", "crawl", "--registry", str(registry), "--db", str(tmp_path / "a.db"),
             "-s", "XXGK_PROBE_SOFT404=0", "-s", "DOWNLOAD_DELAY=0", "-s", "XXGK_DOWNLOAD_TIMEOUT=20"],
            cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    finally:
        proxy.close()
    assert result.returncode == 0, result.stdout + result.stderr
    with sqlite3.connect(tmp_path / "a.db") as db:
        state, rule, error = db.execute("SELECT state, rule, COALESCE(error, '') FROM link_checks WHERE url = ?",
                                        [PAGE]).fetchone()
        rendered = db.execute("SELECT MAX(rendered) FROM snapshots WHERE url = ?", [PAGE]).fetchone()[0]
    assert state == "ok", (state, rule, error)
    assert rendered == 1


# -- 5. a SOCKS proxy is refused before the crawl starts -----------------------------------------
@pytest.mark.parametrize("variable", ["http_proxy", "HTTPS_PROXY"])
def test_crawl_refuses_a_socks_proxy(variable, tmp_path):
    registry = tmp_path / "sites.toml"
    registry.write_text(f'[[site]]\nid = "jsp"\nname = "模拟职业技术学院"\nportal = "{PAGE}"\nrender = "never"\n'
                        'max_pages = 2\n', encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if k.lower() not in PROXY_VARIABLES}
    env[variable] = "socks5://127.0.0.1:1080"
    result = subprocess.run(
        [sys.executable, "-m", "xxgk", "crawl", "--registry", str(registry), "--db", str(tmp_path / "a.db"),
         "-s", "XXGK_PROBE_SOFT404=0", "-s", "DOWNLOAD_DELAY=0", "-s", "XXGK_DOWNLOAD_TIMEOUT=3"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 2, result.stdout + result.stderr
    assert variable in result.stderr and "SOCKS" in result.stderr, result.stderr
    assert crawl_rows(tmp_path / "a.db") == 0


def test_crawl_refuses_proxies_chromium_cannot_authenticate_to(tmp_path):
    registry = tmp_path / "sites.toml"
    registry.write_text(f'[[site]]\nid = "jsp"\nname = "模拟职业技术学院"\nportal = "{PAGE}"\n', encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if k.lower() not in PROXY_VARIABLES}
    env.update(http_proxy="http://u:secret-one@127.0.0.1:9", https_proxy="http://v:secret-two@127.0.0.1:9")
    result = subprocess.run(
        [sys.executable, "-m", "xxgk", "crawl", "--registry", str(registry), "--db", str(tmp_path / "a.db")],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 2, result.stdout + result.stderr
    assert "http_proxy and https_proxy carry different credentials" in result.stderr, result.stderr
    assert "secret" not in result.stdout + result.stderr
    assert crawl_rows(tmp_path / "a.db") == 0


def crawl_rows(path: Path) -> int:
    if not path.exists():
        return 0
    with sqlite3.connect(path) as db:
        if not db.execute("SELECT name FROM sqlite_master WHERE name = 'crawls'").fetchone():
            return 0
        return db.execute("SELECT COUNT(*) FROM crawls").fetchone()[0]


def test_a_scheduled_crawl_refuses_a_socks_proxy_before_any_crawl_row(tmp_path):
    """The scheduler starts crawls through ``run_crawl``, not ``xxgk crawl``: the same refusal."""
    from crawler.proxy import ProxyConfigError
    from schedules.registry import load_registry
    from xxgk.runcrawl import run_crawl

    registry = tmp_path / "sites.toml"
    registry.write_text('[[site]]\nid = "t"\nname = "测试大学"\nportal = "http://xxgk.t.edu.cn/"\n', encoding="utf-8")
    with pytest.raises(ProxyConfigError, match="SOCKS"):
        run_crawl(load_registry(registry), db_path=tmp_path / "a.db", registry_path=registry,
                  env={"http_proxy": "socks5://127.0.0.1:1080", "https_proxy": "", "no_proxy": ""})
    assert not (tmp_path / "a.db").exists()
