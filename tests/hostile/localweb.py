"""A tiny HTTP forward proxy on 127.0.0.1 serving canned answers, for safety and hostile tests.

Clients send absolute-form requests (``http_proxy=web.proxy_url``); every request is
logged with its headers, so a test can prove what the crawler did *not* ask for. Since
everything goes to this local proxy, a request to ``http://10.0.0.5/`` that slipped
through a guard would still only reach 127.0.0.1 — no test traffic leaves the machine.

``routes`` maps an absolute URL to ``(status, headers, body)``; anything else gets
``default`` (a small HTML page), ``/robots.txt`` an allow-all file unless routed. A
``Content-Length`` header of ``""`` sends the body without one, ended by closing.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType

Answer = tuple[int, dict[str, str], bytes]


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass

    def do_GET(self) -> None:  # noqa: N802
        self._serve(head=False)

    def do_HEAD(self) -> None:  # noqa: N802
        self._serve(head=True)

    def _serve(self, head: bool) -> None:
        web = self.server.web
        url = self.path if self.path.startswith(("http://", "https://")) else \
            f"http://{self.headers.get('Host', 'localhost')}{self.path}"
        with web.lock:
            web.log.append((self.command, url, {k.lower(): v for k, v in self.headers.items()}))
        answer = web.answer(url)
        status, headers, body = answer(url) if callable(answer) else answer
        self.send_response(status)
        headers = {"Content-Type": "text/html; charset=utf-8", **headers}
        if headers.get("Content-Length") == "":  # no length: the body ends when the connection does
            del headers["Content-Length"]
            headers["Connection"] = "close"
            self.close_connection = True
        elif "Content-Length" not in headers:
            headers["Content-Length"] = str(len(body))
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        if not head:
            try:
                self.wfile.write(body)
            except (BrokenPipeError, ConnectionResetError):
                pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    web: LocalWeb


class LocalWeb:
    """``with LocalWeb(routes) as web:`` — a proxy at ``web.proxy_url``; ``web.log`` of requests."""

    def __init__(self, routes: dict[str, Answer | Callable[[str], Answer]] | None = None,
                 default: Answer | None = None) -> None:
        self.routes = dict(routes or {})
        self.default = default or (200, {}, b"<html><head><title>ok</title></head><body>"
                                            b"<p>an ordinary page with enough text</p></body></html>")
        self.log: list[tuple[str, str, dict[str, str]]] = []
        self.lock = threading.Lock()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    def answer(self, url: str) -> Answer | Callable[[str], Answer]:
        if url in self.routes:
            return self.routes[url]
        if url.endswith("/robots.txt"):
            return 200, {"Content-Type": "text/plain"}, b"User-agent: *\nAllow: /\n"
        return self.default

    @property
    def proxy_url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def urls(self) -> list[str]:
        with self.lock:
            return [url for _method, url, _headers in self.log]

    def __enter__(self) -> LocalWeb:
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.web = self
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        assert self._server is not None
        self._server.shutdown()
        self._server.server_close()
