"""Proxy credentials from ``http_proxy``/``https_proxy`` (``http://user:password@host:port``).

* ``xxgk registry check`` through a proxy that wants them: a refused CONNECT tunnel is judged
  as the crawler judges it (Scrapy's ``TunnelError`` words, read by ``net-proxy-tunnel``): the
  proxy's 407 is ``blocked``, its 504 a ``timeout``; the credentials are never recorded.
* Distributed mode: a retried or redirected request keeps the ``Proxy-Authorization`` header
  the proxy middleware gave it; queued for another worker, it must not carry that header
  (into Redis, and on to the other worker's proxy). The worker that pops it sends its own.
"""

from __future__ import annotations

import base64
import os
import select
import socket
import socketserver
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
PASSWORD = "pa@ss"  # "%40" in a proxy URL


class AuthProxy:
    """A forward proxy that wants Basic credentials (407 without the right ones) and tunnels
    CONNECT through the simulated web's proxy; a CONNECT to a host of ``gateway_timeout`` is
    answered 504, as a proxy that gave up reaching the origin answers."""

    def __init__(self, upstream: tuple[str, int], user: str, password: str,
                 gateway_timeout: frozenset[str] = frozenset()) -> None:
        self.upstream = upstream
        self.expected = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
        self.gateway_timeout = gateway_timeout
        self.log: list[tuple[str, str, bool]] = []  # (method, target, credentials accepted)
        proxy = self

        class Handler(socketserver.StreamRequestHandler):
            def handle(self) -> None:
                proxy._serve(self)

        self.server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url_host = f"127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def _serve(self, handler: socketserver.StreamRequestHandler) -> None:
        method, target, _ = handler.rfile.readline().decode("latin-1").split(" ", 2)
        headers = {}
        while (line := handler.rfile.readline().decode("latin-1").strip()):
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        accepted = headers.get("proxy-authorization") == self.expected
        self.log.append((method, target, accepted))
        if not accepted:
            handler.wfile.write(b"HTTP/1.1 407 Proxy Authentication Required\r\n"
                                b'Proxy-Authenticate: Basic realm="test"\r\nContent-Length: 0\r\n\r\n')
        elif method != "CONNECT":
            handler.wfile.write(b"HTTP/1.1 501 Not Implemented\r\nContent-Length: 0\r\n\r\n")
        elif target.rsplit(":", 1)[0] in self.gateway_timeout:
            handler.wfile.write(b"HTTP/1.1 504 Gateway Timeout\r\nContent-Length: 0\r\n\r\n")
        else:  # the simulated web's proxy answers the CONNECT and carries the tunnel
            with socket.create_connection(self.upstream) as upstream:
                upstream.sendall(f"CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n\r\n".encode())
                ends = [handler.connection, upstream]
                while (ready := select.select(ends, [], [], 10)[0]):
                    for end in ready:
                        data = end.recv(65536)
                        if not data:
                            return
                        (upstream if end is handler.connection else handler.connection).sendall(data)


def _check(registry: Path, db: Path, proxy: AuthProxy, password: str) -> dict[str, tuple]:
    """``xxgk registry check`` with ``https_proxy`` naming ``proxy`` with ``password``."""
    url = f"http://user:{password.replace('@', '%40')}@{proxy.url_host}"
    env = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}
    env.update(http_proxy=url, https_proxy=url, no_proxy="")
    result = subprocess.run([sys.executable, "-m", "xxgk.distributed_cli", "registry", "check", "--registry",
                             str(registry), "--db", str(db), "--timeout", "5"],
                            cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 1, result.stdout + result.stderr  # no portal answers
    for secret in (password, base64.b64encode(f"user:{password}".encode()).decode()):
        assert secret not in result.stdout + result.stderr
    with sqlite3.connect(db) as conn:
        rows = conn.execute("SELECT url, state, rule, error, via_proxy FROM registry_checks").fetchall()
    for row in rows:
        assert password not in (row[3] or "") and "user:" not in (row[3] or ""), row
    return {url: (state, rule, error) for url, state, rule, error, via in rows if via}


def test_registry_check_judges_a_refused_tunnel_as_the_crawler_does(tmp_path):
    from simweb import SimWeb

    registry = tmp_path / "sites.toml"
    registry.write_text('[[site]]\nid = "tls"\nname = "证书"\nportal = "https://tls-bad.example-univ.edu.cn/"\n'
                        '[[site]]\nid = "slow"\nname = "慢"\nportal = "https://slow.example-univ.edu.cn/"\n',
                        encoding="utf-8")
    with SimWeb(port=0, day=1, delay_scale=0.02) as web:
        upstream = ("127.0.0.1", int(web.proxy_url.rsplit(":", 1)[1]))
        proxy = AuthProxy(upstream, "user", PASSWORD, gateway_timeout=frozenset({"slow.example-univ.edu.cn"}))
        try:
            wrong = _check(registry, tmp_path / "wrong.db", proxy, "nope")
            assert all(accepted is False for _, _, accepted in proxy.log)
            right = _check(registry, tmp_path / "right.db", proxy, PASSWORD)
        finally:
            proxy.close()
    assert proxy.log and all(method == "CONNECT" for method, _, _ in proxy.log)
    # The proxy's 407 on CONNECT: our proxy said no, as a crawl records it (not connection_error).
    for url in ("https://tls-bad.example-univ.edu.cn/", "https://slow.example-univ.edu.cn/"):
        state, rule, error = wrong[url]
        assert (state, rule) == ("blocked", "net-proxy-tunnel"), wrong[url]
        assert error.startswith(f"Could not open CONNECT tunnel with proxy {proxy.url_host} [")
        assert "'status': 407" in error
    # With the right credentials the tunnel opens (the origin then fails TLS), and the proxy's
    # 504 is a timeout.
    assert right["https://tls-bad.example-univ.edu.cn/"][0] == "tls_error"
    assert right["https://slow.example-univ.edu.cn/"][:2] == ("timeout", "net-proxy-tunnel")


# -- distributed mode ------------------------------------------------------------------------------
class _SharedQueue:
    """Stands in for DistributedCrawl (and its Redis): what one worker pushes, another pops."""

    def __init__(self) -> None:
        from crawler.distributed import LeaseTracker

        self.stored: list[bytes] = []
        self.leases = LeaseTracker(self)  # type: ignore[arg-type]

    def push(self, data: bytes, score: float, fingerprint: str | None) -> bool:
        self.stored.append(data)
        return True

    def pop(self) -> tuple[str, bytes] | None:
        return (str(len(self.stored)), self.stored.pop(0)) if self.stored else None

    def started(self, host: str) -> None:
        pass


@pytest.fixture
def worker(monkeypatch: pytest.MonkeyPatch) -> Any:
    """``worker(proxy_url)``: (its queue, its proxy middleware, its spider), the proxy in its
    environment as ``http_proxy``. All workers share one queue."""
    pytest.importorskip("scrapy_redis")
    from scrapy import Spider
    from scrapy.utils.test import get_crawler
    from scrapy_redis import picklecompat

    from crawler.distributed import LeasedPriorityQueue
    from crawler.proxy import HostCachedProxyMiddleware

    for name in list(os.environ):
        if name.lower().endswith("_proxy"):
            monkeypatch.delenv(name)
    shared = _SharedQueue()

    def start(proxy_url: str) -> tuple[Any, Any, Any]:
        monkeypatch.setenv("http_proxy", proxy_url)
        middleware = HostCachedProxyMiddleware()  # reads the environment once
        crawler = get_crawler(Spider)
        spider = crawler.spider = Spider.from_crawler(crawler, name="portal")
        spider.distributed = shared
        return LeasedPriorityQueue(None, spider, "%(spider)s:requests", picklecompat), middleware, crawler

    return start


def _replacement(how: str, request: Any, crawler: Any) -> Any:
    """The request Scrapy schedules again after ``request`` was downloaded through the proxy."""
    from scrapy.downloadermiddlewares.redirect import RedirectMiddleware
    from scrapy.downloadermiddlewares.retry import get_retry_request
    from scrapy.http import Response

    if how == "retry":
        return get_retry_request(request, spider=crawler.spider, reason="timeout")
    moved = Response(request.url, status=302, headers={"Location": "/xxgk/new.htm"}, request=request)
    return RedirectMiddleware.from_crawler(crawler).process_response(request, moved)


@pytest.mark.parametrize("how", ["retry", "redirect"])
def test_queued_request_carries_no_proxy_credentials(worker, how):
    from scrapy import Request

    queue_a, proxy_a, crawler_a = worker("http://user:pa%40ss@proxy-a.test:3128")
    first = Request("http://xxgk.example.edu.cn/xxgk/index.htm")
    proxy_a.process_request(first)
    credentials = b"Basic " + base64.b64encode(f"user:{PASSWORD}".encode())
    assert first.headers[b"Proxy-Authorization"] == credentials
    again = _replacement(how, first, crawler_a)
    assert again is not None and again.headers.get(b"Proxy-Authorization") == credentials  # as Scrapy leaves it

    queue_a.push(again)
    (stored,) = queue_a.dist.stored
    assert base64.b64encode(f"user:{PASSWORD}".encode()) not in stored and b"Proxy-Authorization" not in stored
    assert b"proxy-a.test" not in stored
    # The request in memory is as it was (only the copy for Redis leaves the proxy out).
    assert again.headers[b"Proxy-Authorization"] == credentials
    assert again.meta["proxy"] == "http://proxy-a.test:3128" and again.meta["_scheme_proxy"]

    # Worker B, another proxy without credentials: its own proxy, no credentials sent to it.
    queue_b, proxy_b, _ = worker("http://proxy-b.test:8080")
    popped = queue_b.pop()
    assert popped.url == again.url and b"Proxy-Authorization" not in popped.headers
    proxy_b.process_request(popped)
    assert popped.meta["proxy"] == "http://proxy-b.test:8080"
    assert b"Proxy-Authorization" not in popped.headers

    # Worker C, with credentials of its own: those are sent.
    queue_a.push(again)
    queue_c, proxy_c, _ = worker("http://other:secret@proxy-c.test:8080")
    popped = queue_c.pop()
    proxy_c.process_request(popped)
    assert popped.meta["proxy"] == "http://proxy-c.test:8080"
    assert popped.headers[b"Proxy-Authorization"] == b"Basic " + base64.b64encode(b"other:secret")


def test_a_proxy_the_spider_chose_keeps_its_credentials(worker):
    """Only a proxy from the worker's environment is the worker's: one set in the request's
    meta (with its credentials) belongs to the request and is queued with it."""
    from scrapy import Request

    queue_a, proxy_a, _ = worker("http://user:pa%40ss@proxy-a.test:3128")
    request = Request("http://xxgk.example.edu.cn/a.htm", meta={"proxy": "http://own:key@chosen.test:1080"})
    proxy_a.process_request(request)
    queue_a.push(request)
    queue_b, _, _ = worker("http://proxy-b.test:8080")
    popped = queue_b.pop()
    assert popped.meta["proxy"] == "http://chosen.test:1080"
    assert popped.headers[b"Proxy-Authorization"] == b"Basic " + base64.b64encode(b"own:key")
