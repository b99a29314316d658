"""A fast synthetic portal of any size, served as an HTTP forward proxy (asyncio, stdlib).

    with BigWeb(pages=100_000) as web:       # web.proxy_url, web.portal, web.requests
        ...

The simulated web (``simweb``) is a few hundred hand-made pages; this one is generated:
one host, ``xxgk.big-univ.edu.cn``, with a home page, list pages of 100 entries
(``/list/N.htm``, each linking to the next) and article pages (``/info/N/K.htm``, ~2 KB
of Chinese text, one in 50 with a small PDF attachment), ``pages`` in all. Answers are
built on the fly from the path (nothing is stored), with keep-alive, so one core serves
thousands of requests a second. ``robots.txt`` allows everything; unknown paths are 404.

Also :class:`HeaderRelay`, a forward proxy that relays to another proxy and adds a
response header (LinkChecker only drops its built-in per-host delay of 0.1-0.6 s for
servers that answer with a ``LinkChecker`` header).
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import threading
from types import TracebackType

HOST = "xxgk.big-univ.edu.cn"
PER_LIST = 100
_PARAGRAPH = "学校坚持以公开为常态、不公开为例外，依法依规做好信息公开工作，主动接受师生和社会监督。"
_PDF = b"%PDF-1.4\n1 0 obj<</Type/Catalog>>endobj\ntrailer<</Root 1 0 R>>\n" + b"0" * 2000 + b"\n%%EOF\n"
_INFO = re.compile(r"^/info/(\d+)/(\d+)\.htm$")
_LIST = re.compile(r"^/list/(\d+)\.htm$")
_FILE = re.compile(r"^/files/(\d+)/(\d+)\.pdf$")


class BigWeb:
    """A generated portal of ``pages`` pages behind a forward proxy on 127.0.0.1."""

    def __init__(self, pages: int = 100_000) -> None:
        self.lists = max(1, -(-(pages - 1) // (PER_LIST + 1)))
        self.articles = max(0, pages - 1 - self.lists)
        self.requests = 0
        self.bytes_sent = 0
        self.portal = f"http://{HOST}/index.htm"
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: asyncio.AbstractServer | None = None
        self._thread: threading.Thread | None = None
        self._port = 0

    @property
    def pages(self) -> int:
        return 1 + self.lists + self.articles

    @property
    def proxy_url(self) -> str:
        return f"http://127.0.0.1:{self._port}"

    # -- content -------------------------------------------------------------------------
    def _page(self, title: str, body: str) -> bytes:
        return (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{title}-模拟大学信息公开网</title>"
                f"</head><body><div class='nav'><a href='/index.htm'>首页</a></div>{body}"
                "<div class='footer'>版权所有 模拟大学</div></body></html>").encode()

    def _articles_in(self, list_no: int) -> int:
        return max(0, min(PER_LIST, self.articles - list_no * PER_LIST))

    def answer(self, path: str) -> tuple[int, str, bytes]:
        if path in ("/", "/index.htm"):
            links = "".join(f"<li><a href='/list/{i}.htm'>栏目{i}</a></li>" for i in range(min(self.lists, 200)))
            return 200, "text/html; charset=utf-8", self._page("首页", f"<ul>{links}</ul>")
        if path == "/robots.txt":
            return 200, "text/plain", b"User-agent: *\nAllow: /\n"
        if match := _LIST.match(path):
            n = int(match.group(1))
            if n < self.lists:
                items = "".join(f"<li><a href='/info/{n}/{k}.htm'>关于公布第{n}-{k}号信息的通知</a>"
                                f"<span>2022-10-01</span></li>" for k in range(self._articles_in(n)))
                more = f"<a href='/list/{n + 1}.htm'>下一页</a>" if n + 1 < self.lists else ""
                return 200, "text/html; charset=utf-8", self._page(f"栏目{n}", f"<ul class='list'>{items}</ul>{more}")
        if match := _INFO.match(path):
            n, k = int(match.group(1)), int(match.group(2))
            if n < self.lists and k < self._articles_in(n):
                attachment = f"<p><a href='/files/{n}/{k}.pdf'>附件：第{k}号.pdf</a></p>" if k % 50 == 0 else ""
                text = "".join(f"<p>{_PARAGRAPH}（第{n}-{k}-{i}段）</p>" for i in range(12))
                return 200, "text/html; charset=utf-8", self._page(
                    f"第{n}-{k}号", f"<h1>关于公布第{n}-{k}号信息的通知</h1>{text}{attachment}"
                    f"<a href='/list/{n}.htm'>返回列表</a>")
        if match := _FILE.match(path):
            return 200, "application/pdf", _PDF
        return 404, "text/html; charset=utf-8", b"<html><head><title>404 Not Found</title></head><body>404</body></html>"

    # -- server --------------------------------------------------------------------------
    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                line = head.split(b"\r\n", 1)[0].decode("latin-1")
                method, target, _version = (line.split(" ") + ["", ""])[:3]
                length = re.search(rb"\r\ncontent-length:\s*(\d+)", head, re.I)
                if length:
                    await reader.readexactly(int(length.group(1)))
                path = re.sub(r"^https?://[^/]+", "", target).split("?", 1)[0] or "/"
                host = re.match(r"^https?://([^/:]+)", target)
                if host and host.group(1) != HOST:
                    status, ctype, body = 502, "text/plain", b"unknown host"
                else:
                    status, ctype, body = self.answer(path)
                self.requests += 1
                reason = {200: "OK", 404: "Not Found", 502: "Bad Gateway"}[status]
                headers = (f"HTTP/1.1 {status} {reason}\r\nContent-Type: {ctype}\r\n"
                           f"Content-Length: {len(body)}\r\nServer: bigweb\r\n\r\n").encode()
                payload = headers + (b"" if method == "HEAD" else body)
                self.bytes_sent += len(payload)
                writer.write(payload)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError):
            pass
        finally:
            with contextlib.suppress(RuntimeError):  # the loop may be gone at interpreter exit
                writer.close()

    def __enter__(self) -> BigWeb:
        ready = threading.Event()

        def run() -> None:
            self._loop = asyncio.new_event_loop()
            self._server = self._loop.run_until_complete(
                asyncio.start_server(self._handle, "127.0.0.1", 0, backlog=1024))
            self._port = self._server.sockets[0].getsockname()[1]
            ready.set()
            self._loop.run_forever()

        self._thread = threading.Thread(target=run, daemon=True)
        self._thread.start()
        ready.wait(10)
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self._loop is not None and self._server is not None:
            self._loop.call_soon_threadsafe(self._server.close)
            self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread is not None:
            self._thread.join(10)


class HeaderRelay:
    """A forward proxy relaying each request to ``upstream`` (another proxy), adding a header."""

    def __init__(self, upstream: str, header: bytes = b"LinkChecker: xxgk-benchmark") -> None:
        match = re.match(r"^https?://([^:/]+):(\d+)", upstream)
        assert match, upstream
        self.upstream = (match.group(1), int(match.group(2)))
        self.header = header
        self._inner = BigWeb(1)
        self._inner._handle = self._relay  # type: ignore[method-assign]

    @property
    def proxy_url(self) -> str:
        return self._inner.proxy_url

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = re.search(rb"\r\ncontent-length:\s*(\d+)", head, re.I)
                body = await reader.readexactly(int(length.group(1))) if length else b""
                head = re.sub(rb"\r\n(?:proxy-)?connection:[^\r]*", b"", head, flags=re.I)
                head = head[:-4] + b"\r\nConnection: close\r\n\r\n"
                up_reader, up_writer = await asyncio.open_connection(*self.upstream)
                up_writer.write(head + body)
                await up_writer.drain()
                response = await up_reader.read()
                up_writer.close()
                status_end = response.find(b"\r\n")
                response = response[:status_end + 2] + self.header + b"\r\n" + response[status_end + 2:]
                response = re.sub(rb"\r\nConnection: close", b"", response, count=1, flags=re.I)
                writer.write(response)
                await writer.drain()
                if not re.search(rb"\r\ncontent-length:", response.split(b"\r\n\r\n", 1)[0], re.I):
                    break  # the body ended with the upstream connection: end ours too
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError):
            pass
        finally:
            with contextlib.suppress(RuntimeError):
                writer.close()

    def __enter__(self) -> HeaderRelay:
        self._inner.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self._inner.__exit__(None, None, None)
