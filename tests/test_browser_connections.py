"""Without an upstream proxy, every connection Chromium makes goes through crawler.socksguard.

Some connections pass every request-level check of crawler.rendering (route handlers, the
CDP session): speculation-rules prefetches, a worker's WebSocket, and Chromium's own DNS
lookups. Here a rendered page on 127.0.0.1 (allowed) reaches for 127.0.0.2 (loopback, not
allowed) in those ways; a server on 127.0.0.2 records what reached it. The unit tests speak
SOCKS5 to the proxy directly.
"""

from __future__ import annotations

import asyncio
import os
import re
import select
import socket
import sqlite3
import struct
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from crawler.socksguard import NOT_ALLOWED, SUCCEEDED, ConnectionGuard
from xxgk.runcrawl import crawl_stats

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = Path(os.environ.get("XXGK_CHROMIUM", "/usr/bin/chromium"))


# -- the proxy on its own --------------------------------------------------------------------
async def _socks_connect(proxy_port: int, host: str, port: int) -> tuple[int, asyncio.StreamReader,
                                                                         asyncio.StreamWriter]:
    reader, writer = await asyncio.open_connection("127.0.0.1", proxy_port)
    writer.write(b"\x05\x01\x00")
    assert await reader.readexactly(2) == b"\x05\x00"
    name = host.encode("idna")
    writer.write(b"\x05\x01\x00\x03" + bytes([len(name)]) + name + struct.pack("!H", port))
    reply = await reader.readexactly(10)
    return reply[1], reader, writer


def test_the_proxy_connects_allowed_addresses_and_refuses_internal_ones():
    async def scenario() -> None:
        async def echo(reader, writer):
            writer.write(await reader.read(100))
            await writer.drain()
            writer.close()

        target = await asyncio.start_server(echo, "127.0.0.1", 0)
        port = target.sockets[0].getsockname()[1]
        guard = ConnectionGuard(lambda host, ip: str(ip) == "127.0.0.1", unreachable=frozenset({"update.googleapis.com"}))
        proxy_port = int((await guard.start()).rsplit(":", 1)[1])
        try:
            code, reader, writer = await _socks_connect(proxy_port, "127.0.0.1", port)
            assert code == SUCCEEDED
            writer.write(b"hello")
            assert await reader.read(100) == b"hello"
            writer.close()
            for host in ("127.0.0.2", "localhost", "metadata.google.internal", "169.254.169.254"):
                code, _reader, writer = await _socks_connect(proxy_port, host, port)
                assert code == NOT_ALLOWED, host
                writer.close()
            code, _reader, writer = await _socks_connect(proxy_port, "update.googleapis.com", 443)
            assert code not in (SUCCEEDED, NOT_ALLOWED)  # unreachable, not counted as a refusal
            writer.close()
            assert [target for target, _why in guard.refused] == [
                f"{h}:{port}" for h in ("127.0.0.2", "localhost", "metadata.google.internal", "169.254.169.254")]
        finally:
            await guard.close()
            target.close()

    asyncio.run(scenario())


# -- a rendered crawl without a proxy ----------------------------------------------------------
class _Server(ThreadingHTTPServer):
    daemon_threads = True


@pytest.fixture
def servers() -> Iterator[tuple[str, str, list[str], list[str]]]:
    """(page origin on 127.0.0.1, forbidden origin on 127.0.0.2, what reached the latter: paths
    over HTTP, "udp" per WebRTC packet; paths the page origin served)."""
    hits: list[str] = []
    started: list[_Server] = []
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp.bind(("127.0.0.2", 0))
    udp.settimeout(0.2)
    listening = threading.Event()
    listening.set()

    def receive() -> None:
        while listening.is_set():
            try:
                udp.recvfrom(4096)
            except OSError:
                continue
            hits.append("udp")

    threading.Thread(target=receive, daemon=True).start()

    def start(address: str, handler: type) -> str:
        server = _Server((address, 0), handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        started.append(server)
        return f"http://{address}:{server.server_address[1]}"

    class Forbidden(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - stdlib naming
            hits.append(self.path)
            self.send_response(204)
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002
            pass

    forbidden = start("127.0.0.2", Forbidden)
    ws = forbidden.replace("http:", "ws:")
    page = ("<html><head><title>信息公开</title></head><body><h1>信息公开目录</h1>"
            "<p>学校信息公开工作的相关说明文字。</p><img src='/ok.png' width='1' height='1'>"
            '<script type="speculationrules">{"prefetch": [{"source": "list", "urls": '
            f'["{forbidden}/speculation"]}}]}}</script>'
            "<script>new Worker('/worker.js');</script>"
            # WebRTC's STUN packets go over UDP, past any proxy.
            "<script>try { const pc = new RTCPeerConnection({iceServers: [{urls: "
            f"'stun:127.0.0.2:{udp.getsockname()[1]}'}}]}}); pc.createDataChannel('x'); "
            "pc.createOffer().then(o => pc.setLocalDescription(o)); } catch (e) {}</script></body></html>")
    files = {"/index.htm": ("text/html; charset=utf-8", page.encode()),
             "/worker.js": ("text/javascript", f'try {{ new WebSocket("{ws}/worker-ws"); }} catch (e) {{}}'.encode()),
             "/ok.png": ("image/png", b"\x89PNG\r\n\x1a\n"),
             "/robots.txt": ("text/plain", b"User-agent: *\nDisallow:\n")}
    served: list[str] = []

    class Pages(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - stdlib naming
            served.append(self.path)
            kind, body = files.get(self.path, ("text/plain", b"not found"))
            self.send_response(200 if self.path in files else 404)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002
            pass

    yield start("127.0.0.1", Pages), forbidden, hits, served
    listening.clear()
    for server in started:
        server.shutdown()
        server.server_close()
    udp.close()


def _crawl(tmp_path: Path, origin: str, allow: str, proxy: str | None = None) -> dict:
    registry = tmp_path / "sites.toml"
    registry.write_text(f'[[site]]\nid = "local"\nportal = "{origin}/index.htm"\nrender = "always"\n', encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if k.lower() not in ("http_proxy", "https_proxy", "all_proxy")}
    if proxy:
        env["http_proxy"] = proxy
    result = subprocess.run(
        [sys.executable, "-m", "xxgk", "crawl", "--registry", str(registry), "--db", str(tmp_path / "a.db"),
         "-s", f"XXGK_SSRF_ALLOW_HOSTS={allow}", "-s", "XXGK_PROBE_SOFT404=0", "-s", "DOWNLOAD_DELAY=0",
         "-s", "XXGK_DOWNLOAD_TIMEOUT=10", "-s", "XXGK_RENDER_SETTLE_MS=1500"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    state = sqlite3.connect(tmp_path / "a.db").execute(
        "SELECT state FROM link_checks WHERE url = ?", [f"{origin}/index.htm"]).fetchone()
    return {"stats": crawl_stats(re.search(r"log: (\S+)", result.stdout).group(1)), "state": state}


@pytest.mark.skipif(not CHROMIUM.exists(), reason=f"no Chromium at {CHROMIUM}")
def test_connections_of_a_rendered_page_to_forbidden_origins_are_refused(tmp_path, servers):
    origin, _forbidden, hits, served = servers
    guarded = _crawl(tmp_path, origin, "127.0.0.1/32")
    assert guarded["state"] == ("ok",)
    assert "/worker.js" in served and "/ok.png" in served  # the page's own traffic passed the proxy
    assert not hits, hits
    assert guarded["stats"].get("xxgk/ssrf_blocked_connections", 0) >= 1, guarded["stats"]


@pytest.mark.skipif(not CHROMIUM.exists(), reason=f"no Chromium at {CHROMIUM}")
def test_the_control_reaches_the_origin_when_it_is_allowed(tmp_path, servers):
    origin, _forbidden, hits, _served = servers
    allowed = _crawl(tmp_path, origin, "127.0.0.0/8")
    assert allowed["state"] == ("ok",)
    assert "/worker-ws" in hits, hits  # so the refusal above is the proxy's doing
    assert not allowed["stats"].get("xxgk/ssrf_blocked_connections"), allowed["stats"]


class _ForwardingProxy(BaseHTTPRequestHandler):
    """A plain HTTP proxy (an office's): forwards GETs and CONNECTs to whatever it is asked."""

    def do_GET(self) -> None:  # noqa: N802 - stdlib naming
        import http.client

        target = urlsplit(self.path)
        upstream = http.client.HTTPConnection(target.hostname, target.port or 80, timeout=10)
        upstream.request("GET", target.path + (f"?{target.query}" if target.query else ""),
                         headers={k: v for k, v in self.headers.items() if k.lower() != "proxy-connection"})
        answer = upstream.getresponse()
        body = answer.read()
        self.send_response(answer.status)
        for name, value in answer.getheaders():
            if name.lower() not in ("transfer-encoding", "connection", "content-length"):
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_CONNECT(self) -> None:  # noqa: N802 - stdlib naming
        host, port = self.path.rsplit(":", 1)
        upstream = socket.create_connection((host, int(port)), timeout=10)
        self.send_response(200, "Connection established")
        self.end_headers()
        ends = [self.connection, upstream]
        while True:
            readable, _, _ = select.select(ends, [], [], 5)
            if not readable:
                break
            for end in readable:
                data = end.recv(65536)
                if not data:
                    upstream.close()
                    return
                (upstream if end is self.connection else self.connection).sendall(data)
        upstream.close()

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass


@pytest.mark.skipif(not CHROMIUM.exists(), reason=f"no Chromium at {CHROMIUM}")
def test_behind_an_upstream_proxy_a_rendered_pages_worker_cannot_reach_forbidden_origins(tmp_path, servers):
    """With an upstream proxy Chromium connects through it, not through the connection guard,
    and a dedicated worker's WebSocket passes the request-level checks: the proxy connected
    to 127.0.0.2 for it. Rendering contexts then have no Worker (nor WebRTC, ever)."""
    origin, _forbidden, hits, served = servers
    proxy = _Server(("127.0.0.3", 0), _ForwardingProxy)
    threading.Thread(target=proxy.serve_forever, daemon=True).start()
    try:
        result = _crawl(tmp_path, origin, "127.0.0.1/32", proxy=f"http://127.0.0.3:{proxy.server_address[1]}")
    finally:
        proxy.shutdown()
        proxy.server_close()
    assert result["state"] == ("ok",)
    assert "/index.htm" in served and "/ok.png" in served  # the page rendered through the proxy
    assert not hits, hits
