"""Crawl safety: an SSRF guard that keeps the crawler off internal networks.

A registry lists public university portals, but the pages we crawl link wherever they
like, and a redirect or a hostile page can point the crawler at ``http://127.0.0.1:8001/``
(our own Datasette), ``http://10.0.0.5/`` (the campus intranet of whoever runs us) or
``http://169.254.169.254/`` (a cloud metadata service handing out credentials). The
:class:`SSRFGuardMiddleware` refuses such requests before anything is sent.

What is blocked (the *origin* of the request URL, not the proxy it may go through):

* IP literals, in every spelling a resolver accepts (``127.1``, ``2130706433``,
  ``0x7f.0.0.1``, ``[::ffff:127.0.0.1]``), that are not globally routable: loopback,
  RFC 1918 private, link-local (``169.254/16``, ``fe80::/10``), CGNAT (``100.64/10``),
  unique-local (``fc00::/7``, which holds ``fd00:ec2::254``), multicast, unspecified,
  reserved and documentation ranges; IPv6 forms that embed an IPv4 address (mapped,
  NAT64 ``64:ff9b::/96``, 6to4, Teredo) are judged by that address;
* metadata and local host names without asking DNS: ``metadata.google.internal``,
  ``metadata``, ``metadata.goog``, ``instance-data(.ec2.internal)``, ``localhost`` and
  ``*.localhost``;
* host names whose DNS answer (``socket.getaddrinfo``, in a thread, bounded by
  ``XXGK_SSRF_DNS_TIMEOUT``) contains any such address. A name that does not resolve
  here, or does not resolve in time, is **not** blocked: behind an HTTP proxy (and in the
  simulated web) origin names only resolve at the proxy, which reports DNS errors itself.

Redirects are covered: Scrapy sends a redirected request through the downloader
middlewares again, so each hop is judged. The same holds for ``robots.txt`` requests.

A blocked request raises ``IgnoreRequest("ssrf: blocked <host>: <why>")``; the message
always starts with :data:`BLOCK_PREFIX` (``"ssrf: "``) so the classifier can record it as
``excluded`` with rule ``ssrf``.

A site may opt out with ``allow_private = true`` in the registry (an intranet mirror, a
test portal on localhost): requests carrying ``request.meta["xxgk"]["site"]`` of such a
site, and requests without a site (``robots.txt``) to a host inside such a site's
``allowed_domains`` or portal hosts, are not checked.

Settings:

``XXGK_SSRF_GUARD``          enable the guard (default ``True``)
``XXGK_SSRF_DNS_TIMEOUT``    seconds to wait for ``getaddrinfo`` (default ``2.0``)
``XXGK_SSRF_CACHE_SECONDS``  how long a host's verdict is reused (default ``300``)
``XXGK_SSRF_ALLOW_HOSTS``    host names or CIDR networks never blocked, comma-separated or a
                             list (default empty), e.g. ``127.0.0.1/32`` for a local test server

Enable it in ``DOWNLOADER_MIDDLEWARES`` before Scrapy's ``RobotsTxtMiddleware`` (100), so
a blocked URL does not even trigger a ``robots.txt`` fetch: priority 50.

Pages rendered in Chromium load their sub-resources (scripts, images, frames, XHR) without
passing through Scrapy: :class:`crawler.rendering.BoundedPlaywrightDownloadHandler` asks
:meth:`SSRFGuardMiddleware.refusal` for each one in its route handler and aborts those
refused (stat ``xxgk/ssrf_blocked_subrequests``).

The address Scrapy actually connects to is judged as well: :class:`GuardedResolver`
(``TWISTED_DNS_RESOLVER``) refuses a name whose answer *at connection time* is internal,
so a DNS answer that changes between the guard's lookup and the connection (DNS
rebinding), or one slower than ``XXGK_SSRF_DNS_TIMEOUT``, is caught too; the request ends in
the same ``IgnoreRequest("ssrf: ...")``. Behind an HTTP proxy the proxy resolves origin
names, and only the guard's own lookup stands between a name and the proxy.

In Chromium, first URLs go through the route handler, every other request (redirect steps,
requests restarted after a cross-origin redirect) through a CDP ``Fetch`` session, and
WebSockets through a WebSocket route (``crawler.rendering``); without an upstream proxy,
every connection also goes through :mod:`crawler.socksguard`, which resolves and judges it.
Limits: windows a page opens itself (``window.open``, closed at once) and service workers
(blocked) are outside the request-level checks; behind an HTTP proxy, which resolves names
itself, a DNS answer that changes after our lookup is not seen.
"""

from __future__ import annotations

import ipaddress
import os
import socket
import time
from collections.abc import Iterable
from functools import lru_cache
from typing import Any
from urllib.parse import urlsplit

from scrapy import Request
from scrapy.exceptions import IgnoreRequest, NotConfigured
from scrapy.resolver import CachingThreadedResolver
from twisted.internet.error import DNSLookupError

from crawler.fetch import site_of

__all__ = [
    "BLOCK_PREFIX",
    "METADATA_HOSTS",
    "GuardedResolver",
    "SSRFGuardMiddleware",
    "address_block_reason",
    "host_block_reason",
    "parse_ip_literal",
    "url_block_reason",
]

BLOCK_PREFIX = "ssrf: "
#: Cloud metadata services and local names, blocked by name whatever DNS says.
METADATA_HOSTS = frozenset({
    "metadata.google.internal", "metadata.goog", "metadata", "instance-data",
    "instance-data.ec2.internal", "metadata.azure.internal", "localhost",
})
_CGNAT = ipaddress.ip_network("100.64.0.0/10")
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_NAT64_LOCAL = ipaddress.ip_network("64:ff9b:1::/48")
_METADATA_ADDRESSES = frozenset({
    ipaddress.ip_address("169.254.169.254"), ipaddress.ip_address("fd00:ec2::254"),
    ipaddress.ip_address("169.254.170.2"), ipaddress.ip_address("100.100.100.200"),  # ECS, Alibaba
})

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


@lru_cache(maxsize=4096)  # asked for every request's host; most are names, which raise inside
def parse_ip_literal(host: str) -> IPAddress | None:
    """The address a host string denotes when it is an IP literal in any accepted spelling.

    Besides dotted quads this accepts what ``inet_aton`` (and therefore the resolver used
    to connect) accepts: ``127.1``, ``2130706433``, ``0x7f000001``, ``0177.0.0.1``; and
    bracketed or bare IPv6, with a zone id dropped.
    """
    host = host.strip().rstrip(".")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    host = host.split("%", 1)[0]
    if not host:
        return None
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        pass
    if ":" in host or not all(c in "0123456789abcdefxABCDEFX." for c in host):
        return None
    try:
        return ipaddress.IPv4Address(socket.inet_aton(host))
    except (OSError, ValueError):
        return None


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip in _NAT64:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip.teredo is not None:
        return ip.teredo[1]
    return None


def address_block_reason(ip: IPAddress) -> str | None:
    """Why connecting to ``ip`` is refused (a short category), or None when it is public."""
    if isinstance(ip, ipaddress.IPv6Address):
        inner = _embedded_ipv4(ip)
        if inner is not None:
            reason = address_block_reason(inner)
            return f"{reason} (IPv4 {inner} embedded)" if reason else None
        if ip in _NAT64_LOCAL:
            return "local NAT64 address"
    if ip in _METADATA_ADDRESSES:
        return "cloud metadata address"
    if ip.is_loopback:
        return "loopback address"
    if ip.is_unspecified:
        return "unspecified address"
    if ip.is_link_local:
        return "link-local address"
    if isinstance(ip, ipaddress.IPv6Address) and ip.is_site_local:  # fec0::/10, deprecated, still routed inside
        return "site-local address"
    if ip.is_multicast:
        return "multicast address"
    if isinstance(ip, ipaddress.IPv4Address) and ip in _CGNAT:
        return "carrier-grade NAT address (100.64.0.0/10)"
    if ip.is_private:
        return "private address"
    if ip.is_reserved or not ip.is_global:
        return "reserved address"
    return None


def addresses_of(infos: Iterable[tuple]) -> list[IPAddress]:
    """The IP addresses of a ``getaddrinfo`` answer (zone ids dropped)."""
    addresses: list[IPAddress] = []
    for _family, _type, _proto, _canon, sockaddr in infos:
        try:
            addresses.append(ipaddress.ip_address(str(sockaddr[0]).split("%", 1)[0]))
        except ValueError:
            continue
    return addresses


def _resolve(host: str, port: int | None) -> list[IPAddress]:
    return addresses_of(socket.getaddrinfo(host, port or 80, type=socket.SOCK_STREAM))


def is_local_name(host: str) -> bool:
    """A metadata or local host name, refused whatever DNS says (lower case, no trailing dot)."""
    return host in METADATA_HOSTS or host.endswith(".localhost")


def site_covers(site: Any, host: str) -> bool:
    """Whether ``host`` is one of ``site``'s portal hosts or allowed domains, or under one."""
    hosts = {urlsplit(u).hostname or "" for u in site.portal} | set(site.allowed_domains)
    return any(host == h or host.endswith("." + h) for h in hosts if h)


def host_block_reason(host: str, port: int | None = None, *, resolve: bool = True,
                      addresses: Iterable[IPAddress] | None = None) -> str | None:
    """Why requests to ``host`` are refused, or None.

    ``addresses`` (already resolved) skips DNS; otherwise, with ``resolve``, the name is
    looked up with a blocking ``getaddrinfo`` (unresolvable names are not blocked).
    """
    host = host.strip().rstrip(".").lower()
    if not host:
        return None
    literal = parse_ip_literal(host)
    if literal is not None:
        reason = address_block_reason(literal)
        return f"{host} is a {reason}" if reason else None
    if is_local_name(host):
        return f"{host} is a metadata or local host name"
    if addresses is None:
        if not resolve:
            return None
        try:
            addresses = _resolve(host, port)
        except (OSError, UnicodeError):
            return None
    for ip in addresses:
        reason = address_block_reason(ip)
        if reason:
            return f"{host} has DNS address {ip}, a {reason}"
    return None


def url_block_reason(url: str, *, resolve: bool = True) -> str | None:
    """:func:`host_block_reason` for the host of ``url`` (None for URLs without a host)."""
    try:
        parts = urlsplit(url)
        host, port = parts.hostname, parts.port
    except ValueError:
        return None
    return host_block_reason(host, port, resolve=resolve) if host else None


def _as_list(value: Any) -> list[str]:
    if not value:
        return []
    if isinstance(value, str):
        value = value.split(",")
    return [str(v).strip().lower() for v in value if str(v).strip()]


class SSRFGuardMiddleware:
    """Downloader middleware: ``IgnoreRequest("ssrf: ...")`` for requests to internal hosts."""

    def __init__(self, crawler: Any = None, *, dns_timeout: float = 2.0, cache_seconds: float = 300.0,
                 allow: Iterable[str] = ()) -> None:
        self.crawler = crawler
        self.dns_timeout = dns_timeout
        self.cache_seconds = cache_seconds
        self.allow_hosts: set[str] = set()
        self.allow_networks: list[ipaddress.IPv4Network | ipaddress.IPv6Network] = []
        for entry in allow:
            try:
                self.allow_networks.append(ipaddress.ip_network(entry, strict=False))
            except ValueError:
                self.allow_hosts.add(entry.rstrip("."))
        self._cache: dict[tuple[str, int | None], tuple[float, str | None]] = {}
        self.blocked = 0
        #: host -> refusal message, for names :class:`GuardedResolver` refused at connection time
        self.refused_at_connect: dict[str, str] = {}
        #: hosts of requests a site with ``allow_private`` made (their connections are allowed)
        self.site_allowed: set[str] = set()

    @classmethod
    def from_crawler(cls, crawler: Any) -> SSRFGuardMiddleware:
        settings = crawler.settings
        if not settings.getbool("XXGK_SSRF_GUARD", True):
            raise NotConfigured("XXGK_SSRF_GUARD is off")
        guard = cls(crawler, dns_timeout=settings.getfloat("XXGK_SSRF_DNS_TIMEOUT", 2.0),
                    cache_seconds=settings.getfloat("XXGK_SSRF_CACHE_SECONDS", 300.0),
                    allow=_as_list(settings.get("XXGK_SSRF_ALLOW_HOSTS")))
        GuardedResolver.guard = guard  # one crawler per process: the resolver asks this guard
        return guard

    # -- the site's opt-out ------------------------------------------------------------------
    def _spider(self) -> Any:
        return getattr(self.crawler, "spider", None) if self.crawler is not None else None

    def _site_allows(self, request: Request, host: str) -> bool:
        spider = self._spider()
        runs = getattr(spider, "runs", None) or {}
        site_id = site_of(request.meta)
        if site_id is not None:
            run = runs.get(site_id)
            site = getattr(run, "site", None)
            if site is None:
                site = next((s for s in getattr(spider, "sites", []) if s.id == site_id), None)
            return bool(getattr(site, "allow_private", False))
        return self._in_private_site(host)

    def _in_private_site(self, host: str) -> bool:
        """Whether ``host`` is inside a site with ``allow_private`` (requests without a site:
        robots.txt, other components; and connections, which know only the host)."""
        spider = self._spider()
        runs = getattr(spider, "runs", None) or {}
        sites = [getattr(r, "site", None) for r in runs.values()] or list(getattr(spider, "sites", []))
        return any(site is not None and getattr(site, "allow_private", False) and site_covers(site, host)
                   for site in sites)

    def _allowed_explicitly(self, host: str) -> bool:
        if host in self.allow_hosts:
            return True
        ip = parse_ip_literal(host)
        return ip is not None and any(ip.version == n.version and ip in n for n in self.allow_networks)

    # -- checking ----------------------------------------------------------------------------
    async def _reason(self, host: str, port: int | None) -> str | None:
        key = (host, port)
        cached = self._cache.get(key)
        now = time.monotonic()
        if cached is not None and cached[0] > now:
            return cached[1]
        reason = host_block_reason(host, port, resolve=False)
        if reason is None and parse_ip_literal(host) is None:
            addresses = await self._lookup(host, port)
            if addresses:
                reason = host_block_reason(host, port, addresses=[
                    a for a in addresses if not self._allowed_address(a)])
        self._cache[key] = (now + self.cache_seconds, reason)
        return reason

    def _allowed_address(self, ip: IPAddress) -> bool:
        return any(ip.version == n.version and ip in n for n in self.allow_networks)

    async def _lookup(self, host: str, port: int | None) -> list[IPAddress]:
        """DNS in a thread, bounded by ``dns_timeout``; [] when it fails or is too slow."""
        from scrapy.utils.defer import maybe_deferred_to_future
        from twisted.internet import reactor
        from twisted.internet.threads import deferToThread

        deferred = deferToThread(_resolve, host, port)
        deferred.addTimeout(self.dns_timeout, reactor)
        try:
            return await maybe_deferred_to_future(deferred)
        except Exception:  # noqa: BLE001 - unresolvable, too slow (TimeoutError), cancelled
            return []

    async def refusal(self, url: str, request: Request | None = None) -> str | None:
        """Why the guard refuses ``url``, or None: :meth:`process_request`'s judgement for a
        request made outside Scrapy (a rendered page's sub-request), on behalf of
        ``request`` (the rendered request, whose site may allow private hosts)."""
        try:
            parts = urlsplit(url)
            host, port = (parts.hostname or "").rstrip(".").lower(), parts.port
        except ValueError:
            return None
        if not host or parts.scheme not in ("http", "https"):
            return None
        if self._allowed_explicitly(host) or self._site_allows(request or Request(url), host):
            return None
        return await self._reason(host, port)

    async def process_request(self, request: Request) -> None:
        try:
            parts = urlsplit(request.url)
            host, port = (parts.hostname or "").rstrip(".").lower(), parts.port
        except ValueError:
            return None
        if not host or parts.scheme not in ("http", "https"):
            return None
        if self._allowed_explicitly(host):
            return None
        if self._site_allows(request, host):
            self.site_allowed.add(host)  # so that connecting to it is allowed too
            return None
        refused = self.refused_at_connect.get(host)
        if refused:  # a retry of a request whose connection was refused: not again
            raise IgnoreRequest(refused)
        reason = await self._reason(host, port)
        if reason is None:
            return None
        self.blocked += 1
        if self.crawler is not None and getattr(self.crawler, "stats", None) is not None:
            self.crawler.stats.inc_value("xxgk/ssrf_blocked")
        raise IgnoreRequest(f"{BLOCK_PREFIX}blocked {host}: {reason}")

    def process_exception(self, request: Request, exception: BaseException) -> None:
        """A connection :class:`GuardedResolver` refused fails as a DNS error whose message
        Twisted replaces ("no results for hostname lookup"): it becomes the guard's refusal."""
        if isinstance(exception, DNSLookupError):
            refused = self.refused_at_connect.get((urlsplit(request.url).hostname or "").rstrip(".").lower())
            if refused:
                raise IgnoreRequest(refused)

    def allows_connection(self, host: str, ip: IPAddress) -> bool:
        """Whether connecting to ``ip`` for ``host`` is allowed although ``ip`` is internal."""
        return (host in self.site_allowed or self._allowed_explicitly(host) or self._allowed_address(ip)
                or self._in_private_site(host))


def _proxy_hosts(environ: dict[str, str] | None = None) -> frozenset[str]:
    environ = os.environ if environ is None else environ
    hosts = set()
    for name in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY"):
        value = environ.get(name)
        if value:
            try:
                hosts.add((urlsplit(value if "://" in value else f"http://{value}").hostname or "").lower())
            except ValueError:
                continue
    return frozenset(hosts - {""})


class GuardedResolver(CachingThreadedResolver):
    """Scrapy's resolver (``TWISTED_DNS_RESOLVER``), judging each address it hands out for a connection.

    :class:`SSRFGuardMiddleware` judges a host by its own DNS lookup before the request is
    sent; the downloader then resolves the name again to connect. This resolver checks that
    second answer, which is the address actually used: a name that now resolves to an internal
    address fails (DNS rebinding, or an answer the guard gave up waiting for), recorded in
    the guard's ``refused_at_connect`` so the request ends as the guard's ``IgnoreRequest``.
    Proxy hosts (``http_proxy``...) are never judged: they are ours, not the crawled web's.
    """

    #: The crawl's guard (set by :meth:`SSRFGuardMiddleware.from_crawler`); None: no checks.
    guard: SSRFGuardMiddleware | None = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.proxy_hosts = _proxy_hosts()

    def getHostByName(self, name: str, timeout: Any = ()) -> Any:  # noqa: N802 - Twisted's name
        deferred = super().getHostByName(name, timeout)
        deferred.addCallback(self._judge, name)
        return deferred

    def _judge(self, address: str, name: str) -> str:
        guard = self.guard
        host = name.rstrip(".").lower()
        if guard is None or host in self.proxy_hosts or parse_ip_literal(host) is not None:
            return address  # literals were judged as written, by the middleware
        ip = parse_ip_literal(address)
        reason = address_block_reason(ip) if ip is not None else None
        if reason is None or guard.allows_connection(host, ip):
            return address
        message = f"{BLOCK_PREFIX}blocked {host}: it resolved to {address}, a {reason}, when connecting"
        guard.refused_at_connect[host] = message
        if guard.crawler is not None and getattr(guard.crawler, "stats", None) is not None:
            guard.crawler.stats.inc_value("xxgk/ssrf_blocked_at_connect")
        raise DNSLookupError(message)
