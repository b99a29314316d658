"""The HTTP forward proxy that serves the simulated world (stdlib only).

Clients set ``http_proxy=http://127.0.0.1:PORT`` and send absolute-form requests
(``GET http://host/path HTTP/1.1``).  Origin-form requests are served using the
``Host`` header, so the proxy also works as a plain virtual-host server.

* ``CONNECT`` to the TLS-broken host is accepted and answered with non-TLS bytes;
  ``CONNECT`` anywhere else gets a Squid-style error (no HTTPS origins exist).
* 200 answers carry ``ETag``/``Last-Modified`` (unless the resource is dynamic) and
  honour ``If-None-Match`` / ``If-Modified-Since`` with 304.
* Delays (slow host) are multiplied by ``delay_scale`` and interrupted by :meth:`SimWeb.stop`
  or by the client hanging up (a crawler that timed out is no longer "in flight").
* Every request is timed: :attr:`SimWeb.events` holds ``(method, url, host, status, started,
  finished, body_bytes)`` per answer (``body_bytes``: body bytes sent, so benchmarks count
  what every client, Chromium included, really downloaded) (``time.monotonic()`` of the server) and :attr:`SimWeb.peak_in_flight`
  the most requests any ``Host`` (origin host, whatever the proxy) had in flight at once, so
  tests prove per-host politeness from what the server saw, not from the client's clock.
"""

from __future__ import annotations

import gzip
import select
import socket
import threading
import time
from collections import Counter
from email.utils import formatdate, parsedate_to_datetime
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import NamedTuple
from urllib.parse import urlsplit

from simweb.content import jsl_challenge, squid_error, throttled
from simweb.model import Resource, World
from simweb.sites import build_world
from simweb.urls import canonical_url


class RequestEvent(NamedTuple):
    """One answer as the server saw it (times from the server's ``time.monotonic()``)."""

    method: str
    url: str
    host: str
    status: int
    started: float
    finished: float
    body_bytes: int = 0


def _reason(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return {521: "Web Server Is Down"}.get(status, "Unknown")


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "simweb"
    timeout = 30  # idle keep-alive connections are closed after this
    server: _Server

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - stdlib signature
        pass

    # -- request dispatch --------------------------------------------------------
    def do_GET(self) -> None:  # noqa: N802 - stdlib naming
        self._tracked(head=False)

    def do_HEAD(self) -> None:  # noqa: N802
        self._tracked(head=True)

    def do_POST(self) -> None:  # noqa: N802
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        self._tracked(head=False)

    def _tracked(self, head: bool) -> None:
        """Serve one request, counted as in flight for its origin host until answered."""
        self._started = time.monotonic()
        url = self._absolute_url()
        self._host = (urlsplit(url).hostname or "") if url else ""
        sim = self.server.sim
        sim._enter(self._host)
        try:
            latency = sim.latency.get(self._host, 0.0)
            if latency > 0 and not self._sleep(latency):
                self.close_connection = True
                return
            self._serve(head)
        finally:
            self._done()

    def _done(self) -> None:
        """The request stops counting as in flight (once), *before* its answer is written:
        a client may send its next request the moment it has read this answer."""
        host, self._host = getattr(self, "_host", ""), ""
        self.server.sim._leave(host)

    def _client_gone(self, wait: float = 0.0) -> bool:
        """True when the client closed the connection (it gave up waiting for us); waits up
        to ``wait`` seconds for that to happen."""
        try:
            readable, _, _ = select.select([self.connection], [], [], wait)
            return bool(readable) and self.connection.recv(1, socket.MSG_PEEK) == b""
        except (OSError, ValueError):
            return True

    def _sleep(self, seconds: float) -> bool:
        """Wait ``seconds``; False when the server stops or the client hangs up first."""
        sim = self.server.sim
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            if sim._stopping.is_set() or self._client_gone(min(left, 0.05)):
                return False
        return not sim._stopping.is_set()

    def _absolute_url(self) -> str | None:
        if self.path.startswith(("http://", "https://")):
            return self.path
        host = self.headers.get("Host", "")
        own = {f"127.0.0.1:{self.server.server_address[1]}", f"localhost:{self.server.server_address[1]}"}
        if not host or host in own:
            return None
        return f"http://{host}{self.path}"

    def _serve(self, head: bool) -> None:
        sim = self.server.sim
        world = sim.world
        url = self._absolute_url()
        if url is None:
            self._direct_info(head)
            return
        parts = urlsplit(url)
        res: Resource | None
        if parts.scheme == "https":
            res = squid_error(url, "connect")
        else:
            res = sim.extra.get(canonical_url(url)) or world.lookup(url)
            if res is None:
                res = squid_error(url, "dns")
        cookie = self.headers.get("Cookie", "")
        if cookie:
            sim._log_cookie(parts.hostname or "", cookie)
        if res.clearance and not sim._cleared(parts.hostname or "", cookie):
            res = jsl_challenge(sim._clearance_token(parts.hostname or ""))
        if res.throttle_first and sim._count_hit(url) <= res.throttle_first:
            res = throttled(res.throttle_status, res.throttle_retry_after)
        if res.delay > 0 and not self._sleep(res.delay * sim.delay_scale):
            self.close_connection = True
            return
        self._respond(self.command, url, res, head)

    def _respond(self, method: str, url: str, res: Resource, head: bool) -> None:
        status = res.status
        headers: list[tuple[str, str | bytes]] = [("Date", formatdate(usegmt=True))]
        headers.extend(res.headers)
        body = res.body
        send_bytes = res.send_bytes
        if status == 200 and res.validators:
            etag = res.etag
            last_modified = res.last_modified
            headers.append(("ETag", etag))
            if last_modified:
                headers.append(("Last-Modified", last_modified))
            headers.append(("Cache-Control", "no-cache"))
            if self._not_modified(res, etag):
                status, body, send_bytes = 304, b"", None
                if not res.headers_on_304:
                    headers = [h for h in headers if h not in res.headers]
        if res.gzip and status != 304:
            body = gzip.compress(body, mtime=0)[:res.gzip_cut]
            headers.append(("Content-Encoding", "gzip"))
        if status != 304:
            if res.content_type:
                headers.append(("Content-Type", res.content_type))
            if res.chunked:
                headers.append(("Transfer-Encoding", "chunked"))
            else:
                headers.append(("Content-Length", str(len(body))))
        if send_bytes is not None or self.close_connection:
            headers.append(("Connection", "close"))
            self.close_connection = True
        lines = [f"HTTP/1.1 {status} {_reason(status)}\r\n".encode("latin-1")]
        for name, value in headers:
            raw = value if isinstance(value, bytes) else value.encode("latin-1")
            lines.append(name.encode("latin-1") + b": " + raw + b"\r\n")
        lines.append(b"\r\n")
        payload = b"".join(lines)
        sent = b""
        if not head and status != 304:
            sent = body if send_bytes is None else body[:send_bytes]
            if res.chunked:  # one chunk; the last (empty) chunk only when the body is whole
                payload += b"%x\r\n%s\r\n" % (len(sent), sent) if sent else b""
                payload += b"0\r\n\r\n" if send_bytes is None else b""
            else:
                payload += sent
        self.server.sim._log(method, url, status, getattr(self, "_started", None), len(sent))
        self._done()
        try:
            self.wfile.write(payload)
            self.wfile.flush()
            if send_bytes is not None:
                self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            self.close_connection = True

    def _not_modified(self, res: Resource, etag: str) -> bool:
        inm = self.headers.get("If-None-Match")
        if inm is not None:
            tags = [t.strip() for t in inm.split(",")]
            return "*" in tags or etag in tags or f"W/{etag}" in tags
        ims = self.headers.get("If-Modified-Since")
        if ims and res.modified is not None:
            try:
                since = parsedate_to_datetime(ims)
            except (TypeError, ValueError):
                return False
            if since.tzinfo is None:
                return False
            return res.modified.replace(microsecond=0) <= since
        return False

    def _direct_info(self, head: bool) -> None:
        port = self.server.server_address[1]
        body = (
            f"simweb forward proxy. Set http_proxy=http://127.0.0.1:{port} and request e.g. "
            "http://xxgk.webplus-univ.edu.cn/main.htm\n"
        ).encode()
        res = Resource(body=body, content_type="text/plain; charset=utf-8", validators=False)
        self._respond(self.command, f"direct:{self.path}", res, head)

    def do_CONNECT(self) -> None:  # noqa: N802
        self._started = time.monotonic()
        sim = self.server.sim
        world = sim.world
        host = self.path.rsplit(":", 1)[0].strip("[]").lower()
        self.close_connection = True
        if host in world.tls_hosts:
            sim._log("CONNECT", self.path, 200)
            try:
                self.wfile.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
                self.wfile.flush()
                self.connection.settimeout(2)
                try:
                    self.connection.recv(4096)  # the ClientHello
                except OSError:
                    pass
                self.connection.sendall(b"HTTP/1.0 400 Bad Request\r\n\r\nThis is not a TLS server.\r\n")
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            return
        kind = "connect" if world.known_host(host) else "dns"
        self._respond("CONNECT", self.path, squid_error(f"https://{host}/", kind), head=False)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 256  # the default (5) drops SYNs under crawler concurrency
    sim: SimWeb


class SimWeb:
    """The simulated web as a forward proxy on 127.0.0.1.

    >>> with SimWeb(port=0, delay_scale=0.02) as web:   # doctest: +SKIP
    ...     print(web.proxy_url)
    """

    def __init__(
        self, port: int = 0, day: int = 1, delay_scale: float = 1.0, host: str = "127.0.0.1",
        latency: dict[str, float] | None = None, extra: dict[str, Resource] | None = None,
        clearance_uses: int = 0,
    ) -> None:
        self.host = host
        self._requested_port = port
        self.delay_scale = delay_scale
        #: Origin host -> seconds every request to it takes (not scaled): makes a crawler's
        #: requests to that host overlap, so a per-host limit is visibly what holds them.
        self.latency: dict[str, float] = dict(latency or {})
        #: URL -> resource served before the world's own (a test's extra pages and hosts).
        self.extra: dict[str, Resource] = {canonical_url(u): r for u, r in (extra or {}).items()}
        self._day = day
        self._world: World = build_world(day)
        self._log_lock = threading.Lock()
        self._request_log: list[tuple[str, str, int]] = []
        self._events: list[RequestEvent] = []
        self._in_flight: Counter[str] = Counter()
        self._hits: Counter[str] = Counter()  # throttled resources: requests so far today
        self._peak: Counter[str] = Counter()
        #: Resources with ``clearance``: a host's clearance cookie is good for this many
        #: requests (0: for ever), then the host re-challenges with a new value (it expired).
        self.clearance_uses = clearance_uses
        self._clearance: dict[str, list[int]] = {}  # host -> [generation, uses of it]
        self._cookies: list[tuple[str, str]] = []
        self._stopping = threading.Event()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle -----------------------------------------------------------------
    def start(self) -> SimWeb:
        """Bind and serve in a background thread; returns ``self``."""
        if self._server is not None:
            return self
        self._stopping.clear()
        server = _Server((self.host, self._requested_port), _Handler)
        server.sim = self
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, name="simweb", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving (interrupts artificial delays)."""
        self._stopping.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def serve_forever(self) -> None:
        """Serve in the calling thread until interrupted (used by ``python -m simweb``)."""
        self.start()
        assert self._thread is not None
        try:
            while self._thread.is_alive():
                self._thread.join(timeout=0.5)
        finally:
            self.stop()

    def __enter__(self) -> SimWeb:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- state -----------------------------------------------------------------------
    @property
    def port(self) -> int:
        """The bound port (after :meth:`start`)."""
        if self._server is None:
            return self._requested_port
        return int(self._server.server_address[1])

    @property
    def proxy_url(self) -> str:
        """``http://127.0.0.1:PORT``."""
        return f"http://{self.host}:{self.port}"

    @property
    def day(self) -> int:
        """The current simulated day."""
        return self._day

    @property
    def world(self) -> World:
        """The model currently served."""
        return self._world

    def set_day(self, day: int) -> None:
        """Switch the served world to ``day`` (1 or 2)."""
        world = build_world(day)
        self._day = day
        self._world = world
        with self._log_lock:
            self._hits.clear()  # a throttled URL throttles again on a new day

    @property
    def request_log(self) -> list[tuple[str, str, int]]:
        """A copy of ``(method, url, status)`` for every answer sent, in order."""
        with self._log_lock:
            return list(self._request_log)

    @property
    def events(self) -> list[RequestEvent]:
        """A copy of every answer with its host and server-side start/finish times, in order."""
        with self._log_lock:
            return list(self._events)

    @property
    def peak_in_flight(self) -> dict[str, int]:
        """Host -> the most requests for it the server was handling at once."""
        with self._log_lock:
            return dict(self._peak)

    def clear_log(self) -> None:
        """Forget the request log, the timed events and the in-flight peaks."""
        with self._log_lock:
            self._request_log.clear()
            self._events.clear()
            self._peak.clear()

    def was_requested(self, url: str) -> bool:
        """True if ``url`` (compared canonically) was ever requested."""
        from simweb.urls import canonical_url

        key = canonical_url(url)
        return any(u.startswith("http") and canonical_url(u) == key for _, u, _ in self.request_log)

    def _log(self, method: str, url: str, status: int, started: float | None = None, body_bytes: int = 0) -> None:
        now = time.monotonic()
        host = (urlsplit(url).hostname or "") if "://" in url else ""
        with self._log_lock:
            self._request_log.append((method, url, status))
            self._events.append(RequestEvent(method, url, host, status, started or now, now, body_bytes))

    @property
    def cookie_log(self) -> list[tuple[str, str]]:
        """``(host, Cookie header)`` of every request that sent cookies, in order."""
        with self._log_lock:
            return list(self._cookies)

    def _log_cookie(self, host: str, cookie: str) -> None:
        with self._log_lock:
            self._cookies.append((host, cookie))

    def _clearance_token(self, host: str) -> str:
        with self._log_lock:
            generation = self._clearance.setdefault(host, [0, 0])[0]
        return f"{host.split('.')[0]}-{generation}"

    def _cleared(self, host: str, cookie: str) -> bool:
        """Whether ``cookie`` carries ``host``'s current clearance (counted as one use)."""
        token = f"__jsl_clearance_s={self._clearance_token(host)}"
        if token not in [c.strip() for c in cookie.split(";")]:
            return False
        with self._log_lock:
            state = self._clearance[host]
            state[1] += 1
            if self.clearance_uses and state[1] >= self.clearance_uses:
                state[0], state[1] = state[0] + 1, 0  # this one passes; the next is challenged
        return True

    def _count_hit(self, url: str) -> int:
        with self._log_lock:
            key = canonical_url(url)
            self._hits[key] += 1
            return self._hits[key]

    def _enter(self, host: str) -> None:
        if not host:
            return
        with self._log_lock:
            self._in_flight[host] += 1
            self._peak[host] = max(self._peak[host], self._in_flight[host])

    def _leave(self, host: str) -> None:
        if not host:
            return
        with self._log_lock:
            self._in_flight[host] -= 1
