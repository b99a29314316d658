"""A SOCKS5 proxy on 127.0.0.1 through which Chromium makes every connection, each one judged.

Route handlers and the CDP session of :mod:`crawler.rendering` judge the *requests* of a
rendered page. A few of Chromium's connections pass both: speculation-rules prefetches,
WebSockets of a page's workers, and above all Chromium's own DNS lookups, made after our
check (a name that answers a public address to the guard and a loopback one to Chromium,
DNS rebinding, reached the internal host). When Chromium has no upstream HTTP proxy (with
one, the proxy connects and resolves: the request-level checks are what we have), it is
launched with this proxy instead. Chromium hands a SOCKS5 proxy the host *name* and port
of each connection; the proxy resolves the name itself, refuses the connection when any
address is internal (:func:`crawler.safety.address_block_reason`, unless the crawl's guard
allows it: ``XXGK_SSRF_ALLOW_HOSTS``, sites with ``allow_private``), and connects to the
very address it judged. Refusals count in the stat ``xxgk/ssrf_blocked_connections``.

Only ``CONNECT`` without authentication is served, on 127.0.0.1; the proxy lives in the
crawl's event loop and stops with the download handler.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import struct
from collections.abc import Callable
from typing import Any

from crawler.safety import IPAddress, address_block_reason, addresses_of, is_local_name, parse_ip_literal

logger = logging.getLogger(__name__)

#: SOCKS5 reply codes (RFC 1928).
SUCCEEDED, NOT_ALLOWED, HOST_UNREACHABLE, REFUSED, COMMAND_UNSUPPORTED, ADDRESS_UNSUPPORTED = 0, 2, 4, 5, 7, 8
_CHUNK = 64 * 1024


class ConnectionGuard:
    """The proxy. ``allowed(host, ip)``: whether an internal ``ip`` may be reached for ``host``."""

    def __init__(self, allowed: Callable[[str, IPAddress], bool], *, connect_timeout: float = 30.0,
                 on_refused: Callable[[str, str], None] | None = None,
                 unreachable: frozenset[str] = frozenset()) -> None:
        self.allowed = allowed
        #: names never connected to (Chromium's own services: see crawler.browser)
        self.unreachable = unreachable
        self.connect_timeout = connect_timeout
        self.on_refused = on_refused
        self.refused: list[tuple[str, str]] = []
        self._server: asyncio.AbstractServer | None = None
        self._tasks: set[asyncio.Task] = set()

    @property
    def url(self) -> str:
        assert self._server is not None, "start() first"
        return f"socks5://127.0.0.1:{self._server.sockets[0].getsockname()[1]}"

    async def start(self) -> str:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return self.url

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            for task in list(self._tasks):
                task.cancel()
            with contextlib.suppress(Exception):
                await self._server.wait_closed()
            self._server = None

    # -- judging ------------------------------------------------------------------------------
    async def judge(self, host: str, port: int) -> tuple[list[str], str | None]:
        """(addresses to try, None), ([], None) for a host that cannot be reached, or
        ([], why the connection is refused)."""
        name = host.rstrip(".").lower()
        if name in self.unreachable:
            return [], None
        literal = parse_ip_literal(name)
        if literal is not None:
            addresses: list[IPAddress] = [literal]
        elif is_local_name(name):
            return [], f"{name} is a metadata or local host name"
        else:
            try:
                infos = await asyncio.get_running_loop().getaddrinfo(name, port, type=socket.SOCK_STREAM)
            except (OSError, UnicodeError):
                return [], None  # as a direct connection would fail: not a refusal
            addresses = addresses_of(infos)
        for ip in addresses:
            reason = address_block_reason(ip)
            if reason and not self.allowed(name, ip):
                return [], f"{name} resolves to {ip}, a {reason}" if literal is None else f"{ip} is a {reason}"
        return [str(ip) for ip in dict.fromkeys(addresses)], None

    # -- SOCKS5 ---------------------------------------------------------------------------------
    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
        try:
            await self._session(reader, writer)
        except (OSError, asyncio.IncompleteReadError, ValueError):
            pass  # the client went away or spoke something else: nothing to answer
        finally:
            if task is not None:
                self._tasks.discard(task)
            writer.close()

    async def _session(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        version, count = await reader.readexactly(2)
        methods = await reader.readexactly(count)
        if version != 5 or 0 not in methods:
            writer.write(b"\x05\xff")  # no acceptable method
            return
        writer.write(b"\x05\x00")
        version, command, _reserved, kind = await reader.readexactly(4)
        if kind == 1:
            host = socket.inet_ntop(socket.AF_INET, await reader.readexactly(4))
        elif kind == 4:
            host = socket.inet_ntop(socket.AF_INET6, await reader.readexactly(16))
        elif kind == 3:
            host = (await reader.readexactly((await reader.readexactly(1))[0])).decode("idna")
        else:
            await self._reply(writer, ADDRESS_UNSUPPORTED)
            return
        (port,) = struct.unpack("!H", await reader.readexactly(2))
        if command != 1:  # CONNECT only: no BIND, no UDP
            await self._reply(writer, COMMAND_UNSUPPORTED)
            return
        addresses, refusal = await self.judge(host, port)
        if refusal:
            self.refused.append((f"{host}:{port}", refusal))
            if self.on_refused is not None:
                self.on_refused(f"{host}:{port}", refusal)
            await self._reply(writer, NOT_ALLOWED)
            return
        upstream = await self._connect(addresses, port) if addresses else None
        if upstream is None:
            await self._reply(writer, HOST_UNREACHABLE)
            return
        up_reader, up_writer = upstream
        await self._reply(writer, SUCCEEDED)
        try:
            await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))
        finally:
            up_writer.close()

    async def _connect(self, addresses: list[str], port: int) -> tuple[Any, Any] | None:
        for address in addresses:  # the judged addresses, never a new lookup
            try:
                return await asyncio.wait_for(asyncio.open_connection(address, port), self.connect_timeout)
            except (OSError, TimeoutError):
                continue
        return None

    @staticmethod
    async def _reply(writer: asyncio.StreamWriter, code: int) -> None:
        writer.write(bytes([5, code, 0, 1, 0, 0, 0, 0, 0, 0]))
        await writer.drain()


async def _pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
    try:
        while data := await source.read(_CHUNK):
            sink.write(data)
            await sink.drain()
    except OSError:
        pass
    finally:
        with contextlib.suppress(OSError, RuntimeError):
            if sink.can_write_eof():
                sink.write_eof()
