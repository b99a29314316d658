"""Proxies from ``http_proxy``/``https_proxy``/``no_proxy``: one reading, one ``no_proxy`` meaning.

Scrapy (:class:`HostCachedProxyMiddleware`) and the Chromium of rendered pages
(:mod:`crawler.browser`) must send each URL the same way, so both read the environment here:

* **Which variable.** As :func:`urllib.request.getproxies_environment` (Scrapy's own reading):
  a lowercase variable wins whenever it is set, *even empty* (``http_proxy=`` with
  ``HTTP_PROXY=A`` means no HTTP proxy); :func:`proxy_variables` is that reading for any mapping.
* **Which proxy.** ``http_proxy`` for ``http://`` URLs, ``https_proxy`` for ``https://`` URLs,
  none (direct) for a scheme without one; user and password in the URL are percent-decoded.
  Scrapy's downloader speaks HTTP to its proxies only: :func:`check_proxy_environment` refuses
  a SOCKS proxy before a crawl starts instead of letting every request fail.
* **``no_proxy``** (:func:`no_proxy_rules`), the meaning curl and Python users expect,
  whatever Chromium's bypass-list syntax would make of the same text: comma-separated
  entries, spaces and case ignored;

  - ``*`` sends everything direct;
  - a name (``example.edu.cn``, ``.example.edu.cn`` or ``*.example.edu.cn``) matches that host
    and every host under it;
  - ``name:port`` the same, on that port only (the URL's port, 80/443 when it has none);
  - an IP address (``10.0.0.7``, ``::1``, ``[::1]:8080``) or a CIDR block (``10.0.0.0/8``)
    matches URLs whose host is such an IP literal (no DNS lookups: names never match them);
  - anything else (a URL, a pattern with ``*`` inside) is ignored, by both sides.

  Python's ``proxy_bypass`` ignored ports and CIDR blocks, and Chromium read a bare name as
  that exact host only; :meth:`NoProxyRules.chromium_bypass_list` writes the rules above in
  Chromium's syntax.

Scrapy's ``HttpProxyMiddleware`` asks ``urllib.request.proxy_bypass(host)`` for every
request, and that re-reads the whole process environment each time (~60 µs a request,
several percent of a crawl's CPU). The environment does not change during a crawl, so
:class:`HostCachedProxyMiddleware` keeps the answer per host name (per host and port when an
entry names a port); everything else, ``meta["proxy"]`` included, is Scrapy's. It replaces
Scrapy's middleware at the same place in ``DOWNLOADER_MIDDLEWARES`` (750).
"""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from urllib.parse import unquote
from urllib.request import _parse_proxy  # type: ignore[attr-defined]  # Scrapy parses with it too

from scrapy import Request, Spider
from scrapy.downloadermiddlewares.httpproxy import HttpProxyMiddleware
from scrapy.http import Response
from scrapy.utils.httpobj import urlparse_cached

#: Hosts whose bypass answer is kept; a crawl of every portal in China has ~3,000.
MAX_HOSTS = 65536
DEFAULT_PORTS = {"http": 80, "https": 443}
#: The schemes whose URLs go through a proxy variable's proxy (Scrapy's and Chromium's).
SCHEMES = ("http", "https")

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
_NAME_RE = re.compile(r"[a-z0-9_-]+(?:\.[a-z0-9_-]+)*")


class ProxyConfigError(ValueError):
    """A proxy environment the crawl cannot honour (said before anything starts)."""


# --------------------------------------------------------------------------- the variables

def proxy_variables(environ: Mapping[str, str] | None = None) -> dict[str, tuple[str, str]]:
    """``{scheme: (variable, value)}`` read exactly as ``urllib.request.getproxies_environment``
    reads ``os.environ`` (what Scrapy uses), for any mapping: lowercase variables win, and an
    empty lowercase one unsets the scheme."""
    env = os.environ if environ is None else environ
    found: dict[str, tuple[str, str]] = {}
    for name, value in env.items():
        lower = name.lower()
        if value and lower[-6:] == "_proxy":
            found[lower[:-6]] = (name, value)
    # CVE-2016-1000110, as urllib: under CGI, HTTP_PROXY may come from a request's Proxy: header
    if "REQUEST_METHOD" in env:
        found.pop("http", None)
    for name, value in env.items():
        if name[-6:] == "_proxy":  # lowercase suffix only: urllib's second pass
            if value:
                found[name.lower()[:-6]] = (name, value)
            else:
                found.pop(name.lower()[:-6], None)
    return found


@dataclass(frozen=True)
class SchemeProxy:
    """The proxy one scheme's URLs go through."""

    variable: str            # where it came from, e.g. "https_proxy"
    kind: str | None         # the proxy URL's own scheme ("http", "socks5"...), None when absent
    hostport: str
    username: str | None     # percent-decoded, as Scrapy sends them
    password: str | None

    @property
    def server(self) -> str:
        """Without credentials (a schemeless value is an HTTP proxy, as for curl and Chromium)."""
        return f"{self.kind or 'http'}://{self.hostport}"

    @property
    def credentials(self) -> tuple[str, str] | None:
        return (self.username, self.password or "") if self.username else None


def scheme_proxies(environ: Mapping[str, str] | None = None) -> dict[str, SchemeProxy]:
    """``{"http": ..., "https": ...}``: the proxy of each scheme that has one."""
    proxies: dict[str, SchemeProxy] = {}
    variables = proxy_variables(environ)
    for scheme in SCHEMES:
        if scheme not in variables:
            continue
        variable, value = variables[scheme]
        try:
            kind, user, password, hostport = _parse_proxy(value)
        except ValueError:  # Scrapy skips what it cannot parse too (the scheme goes direct)
            continue
        proxies[scheme] = SchemeProxy(variable, kind, hostport, unquote(user) if user else None,
                                      unquote(password) if password else None)
    return proxies


def no_proxy_value(environ: Mapping[str, str] | None = None) -> str:
    return proxy_variables(environ).get("no", ("", ""))[1]


def browser_credentials(proxies: Mapping[str, SchemeProxy]) -> tuple[str, str] | None:
    """The one user name and password Chromium gets for its proxies.

    Playwright answers *every* proxy's authentication challenge with one pair of credentials
    (its ``proxy`` option), so two proxies with different ones (or one with and one without)
    cannot be expressed: the other proxy would fail or be handed a password not meant for it.
    """
    pairs = {p.credentials for p in proxies.values()}
    if len(pairs) > 1:
        names = " and ".join(p.variable for p in proxies.values())
        raise ProxyConfigError(
            f"{names} carry different credentials: the browser of rendered pages can give only one "
            "user name and password to whichever proxy asks; use the same credentials in both, "
            "or one proxy for both")
    return pairs.pop() if pairs else None


def check_proxy_environment(environ: Mapping[str, str] | None = None) -> None:
    """Refuse (:class:`ProxyConfigError`) a proxy environment a crawl cannot use, before it starts."""
    proxies = scheme_proxies(environ)
    for proxy in proxies.values():
        if proxy.kind and proxy.kind.lower().startswith("socks"):
            # Scrapy's downloader fails every request with UnsupportedURLSchemeError: the
            # crawl would end at once with its portal "excluded" (robots.txt unreachable).
            raise ProxyConfigError(
                f"{proxy.variable} is a SOCKS proxy ({proxy.server}): the crawler (Scrapy) can use "
                f"HTTP proxies only; set {proxy.variable} to an http:// proxy or unset it")
    if not no_proxy_rules(no_proxy_value(environ)).bypass_all:
        browser_credentials(proxies)


# --------------------------------------------------------------------------- no_proxy

@dataclass(frozen=True)
class NoProxyRule:
    """One ``no_proxy`` entry: a domain (``name``) or an IP block (``network``), maybe a port."""

    name: str | None = None
    network: IPNetwork | None = None
    port: int | None = None

    def matches(self, host: str, ip: ipaddress.IPv4Address | ipaddress.IPv6Address | None,
                port: int | None) -> bool:
        if self.port is not None and self.port != port:
            return False
        if self.network is not None:
            return ip is not None and ip.version == self.network.version and ip in self.network
        assert self.name is not None
        return host == self.name or host.endswith("." + self.name)

    def chromium(self) -> list[str]:
        """The same rule in Chromium's bypass-list syntax (which reads ``name`` as that host only)."""
        if self.network is not None:
            if self.port is None:
                return [self.network.with_prefixlen]  # a CIDR rule: IP-literal hosts only
            address = self.network.network_address
            literal = f"[{address}]" if address.version == 6 else str(address)
            return [f"{literal}:{self.port}"]
        port = f":{self.port}" if self.port is not None else ""
        return [f"{self.name}{port}", f"*.{self.name}{port}"]


@dataclass(frozen=True)
class NoProxyRules:
    rules: tuple[NoProxyRule, ...] = ()
    bypass_all: bool = False

    @property
    def has_ports(self) -> bool:
        return any(rule.port is not None for rule in self.rules)

    def bypasses(self, host: str, port: int | None = None) -> bool:
        """Whether a URL on ``host`` (``port``: its port, default included) goes direct."""
        if self.bypass_all:
            return True
        host = host.lower().strip("[]")
        try:
            ip = ipaddress.ip_address(host)
        except ValueError:
            ip = None
        return any(rule.matches(host, ip, port) for rule in self.rules)

    def chromium_bypass_list(self) -> list[str]:
        return ["*"] if self.bypass_all else [entry for rule in self.rules for entry in rule.chromium()]


def _split_entry(entry: str) -> tuple[str, int | None] | None:
    """(host, port) of a ``no_proxy`` entry, None when it is not one."""
    port_text = ""
    if entry.startswith("["):
        host, bracket, rest = entry[1:].partition("]")
        if not bracket or (rest and not rest.startswith(":")):
            return None
        port_text = rest[1:]
    elif entry.count(":") == 1:
        host, _, port_text = entry.partition(":")
    else:  # a name, or an IPv6 address without brackets (no port then)
        host = entry
    if not port_text:
        return host, None
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        return None
    return host, int(port_text)


def _parse_entry(entry: str) -> NoProxyRule | None:
    if "/" in entry:  # a CIDR block (no port)
        try:
            return NoProxyRule(network=ipaddress.ip_network(entry.strip("[]"), strict=False))
        except ValueError:
            return None
    split = _split_entry(entry)
    if split is None:
        return None
    host, port = split
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        pass
    else:
        return NoProxyRule(network=ipaddress.ip_network(address), port=port)
    # "*.name" and ".name" mean what "name" means: the domain and everything under it
    name = host.removeprefix("*").lstrip(".")
    if not name.isascii():
        try:
            name = name.encode("idna").decode("ascii")
        except UnicodeError:
            return None
    if not _NAME_RE.fullmatch(name):
        return None
    return NoProxyRule(name=name, port=port)


@lru_cache(maxsize=64)
def no_proxy_rules(value: str) -> NoProxyRules:
    """The rules of a ``no_proxy`` value (see the module docstring)."""
    rules: list[NoProxyRule] = []
    for raw in value.split(","):
        entry = raw.strip().lower()
        if entry == "*":
            return NoProxyRules(bypass_all=True)
        rule = _parse_entry(entry) if entry else None
        if rule is not None and rule not in rules:
            rules.append(rule)
    return NoProxyRules(tuple(rules))


def split_host_port(host: str) -> tuple[str, int | None]:
    """``host``, ``host:port``, ``[v6]:port`` or a bare IPv6 address -> (host, port or None)."""
    split = _split_entry(host)
    return split if split is not None else (host, None)


def join_host_port(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def proxy_bypass(host: str, environ: Mapping[str, str] | None = None) -> bool:
    """Whether ``no_proxy`` sends ``host`` (``host:port`` for port entries to apply) direct:
    ``urllib.request.proxy_bypass`` with the semantics of this module."""
    name, port = split_host_port(host)
    return no_proxy_rules(no_proxy_value(environ)).bypasses(name, port)


# --------------------------------------------------------------------------- Scrapy's side

class HostCachedProxyMiddleware(HttpProxyMiddleware):
    """``HttpProxyMiddleware`` with this module's ``no_proxy``, asked once per host name."""

    def __init__(self, auth_encoding: str | None = "latin-1") -> None:
        super().__init__(auth_encoding)
        self._bypass: dict[str, bool] = {}
        # Only an entry with a port needs each URL's port; otherwise the host name decides alone.
        self._by_port = no_proxy_rules(no_proxy_value()).has_ports

    def bypass(self, host: str) -> bool:
        """Whether ``no_proxy`` sends ``host`` (or ``host:port``) direct (cached)."""
        answer = self._bypass.get(host)
        if answer is None:
            answer = bool(proxy_bypass(host))
            if len(self._bypass) >= MAX_HOSTS:
                self._bypass.clear()
            self._bypass[host] = answer
        return answer

    def _bypass_key(self, request: Request) -> str | None:
        parsed = urlparse_cached(request)
        host = parsed.hostname
        if not host or not self._by_port:
            return host
        try:
            port = parsed.port
        except ValueError:
            port = None
        return join_host_port(host, port or DEFAULT_PORTS[parsed.scheme])

    def process_request(self, request: Request, spider: Spider | None = None) -> Request | Response | None:
        if "proxy" in request.meta or not self.proxies:
            return super().process_request(request)
        creds, proxy_url, scheme = None, None, None
        parsed = urlparse_cached(request)
        # as Scrapy: no_proxy applies to http(s) only
        if parsed.scheme not in SCHEMES:
            direct = False
        else:
            key = self._bypass_key(request)
            direct = not key or self.bypass(key)
        if not direct and parsed.scheme in self.proxies:
            scheme = parsed.scheme
            creds, proxy_url = self.proxies[scheme]
        self._set_proxy_and_creds(request, proxy_url, creds, scheme)
        return None
