"""Crawl safety: the SSRF guard, robots.txt and the user agent, and archived HTML that
must never run its scripts in the Datasette origin.

The SSRF crawl goes through :class:`tests.hostile.localweb.LocalWeb`, a forward proxy on
127.0.0.1: even a request the guard failed to stop would only reach that proxy (its log
is the proof), never a private network.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import os
import socket
import sqlite3
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest
from scrapy.exceptions import IgnoreRequest
from scrapy.http import Request

from crawler import safety
from crawler.safety import (
    BLOCK_PREFIX,
    SSRFGuardMiddleware,
    address_block_reason,
    host_block_reason,
    parse_ip_literal,
    url_block_reason,
)
from crawler.urls import canonicalize

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests" / "hostile"))
from localweb import LocalWeb  # noqa: E402

CONTACT = "https://example.org/xxgk-contact"


# -- the address rules ---------------------------------------------------------------------
@pytest.mark.parametrize("address", [
    "127.0.0.1", "127.255.255.254", "10.0.0.5", "172.16.0.1", "172.31.255.255", "192.168.1.1",
    "169.254.169.254", "169.254.0.1", "100.64.0.1", "100.127.255.254", "0.0.0.0", "224.0.0.1",
    "239.255.255.250", "255.255.255.255", "192.0.2.1", "198.18.0.1", "240.0.0.1",
    "::1", "::", "fe80::1", "fd00:ec2::254", "fc00::1", "ff02::1", "ff05::2", "2001:db8::1",
    "::ffff:127.0.0.1", "::ffff:10.1.2.3", "64:ff9b::a00:1", "64:ff9b::7f00:1", "2002:a00:1::1",
    "2002:7f00:1::", "100.100.100.200", "fec0::1", "feff::1",
])
def test_internal_addresses_are_blocked(address):
    assert address_block_reason(ipaddress.ip_address(address)) is not None


@pytest.mark.parametrize("address", ["8.8.8.8", "202.114.0.1", "1.1.1.1", "2400:3200::1",
                                     "2001:4860:4860::8888", "::ffff:8.8.8.8", "64:ff9b::808:808"])
def test_public_addresses_pass(address):
    assert address_block_reason(ipaddress.ip_address(address)) is None


@pytest.mark.parametrize("host, address", [
    ("127.1", "127.0.0.1"), ("2130706433", "127.0.0.1"), ("0x7f000001", "127.0.0.1"),
    ("0177.0.0.1", "127.0.0.1"), ("0x7f.0.0.1", "127.0.0.1"), ("[::1]", "::1"),
    ("[::ffff:169.254.169.254]", "::ffff:169.254.169.254"), ("10.1", "10.0.0.1"),
    ("fe80::1%eth0", "fe80::1"), ("169.254.169.254.", "169.254.169.254"),
])
def test_every_spelling_of_an_ip_literal(host, address):
    assert parse_ip_literal(host) == ipaddress.ip_address(address)
    assert host_block_reason(host, resolve=False) is not None


@pytest.mark.parametrize("host", ["xxgk.wust.edu.cn", "dead.beef", "cafe", "abc", "例子.中国", ""])
def test_names_are_not_ip_literals(host):
    assert parse_ip_literal(host) is None


@pytest.mark.parametrize("url", [
    "http://metadata.google.internal/computeMetadata/v1/", "http://metadata/", "http://localhost:8001/",
    "http://LOCALHOST./x", "http://foo.localhost/", "http://instance-data/latest/",
    "http://169.254.169.254/latest/meta-data/", "http://[fd00:ec2::254]/", "https://[::1]:8443/",
])
def test_blocked_without_dns(url, monkeypatch):
    monkeypatch.setattr(safety, "_resolve", _no_dns)
    assert url_block_reason(url) is not None


def _no_dns(host, port):
    raise AssertionError("DNS must not be asked")


def test_dns_answers_decide_and_unresolvable_names_pass(monkeypatch):
    answers = {"intranet.example.edu.cn": ["10.2.3.4"], "mixed.example.edu.cn": ["202.114.0.1", "127.0.0.1"],
               "public.example.edu.cn": ["202.114.0.1", "2400:3200::1"]}

    def fake(host, port):
        if host not in answers:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return [ipaddress.ip_address(a) for a in answers[host]]

    monkeypatch.setattr(safety, "_resolve", fake)
    assert "10.2.3.4" in host_block_reason("intranet.example.edu.cn")
    assert "127.0.0.1" in host_block_reason("mixed.example.edu.cn")  # any bad address blocks
    assert host_block_reason("public.example.edu.cn") is None
    assert host_block_reason("nxdomain.example-univ.edu.cn") is None  # the proxy reports DNS errors
    assert url_block_reason("javascript:alert(1)") is None and url_block_reason("http://[::1") is None


def test_real_resolver_on_this_machine():
    """``localhost`` names resolve to loopback through /etc/hosts: blocked."""
    host = socket.gethostname()
    try:
        addresses = {info[4][0] for info in socket.getaddrinfo(host, 80)}
    except OSError:
        pytest.skip("host name does not resolve")
    if not all(ipaddress.ip_address(a.split("%")[0]).is_loopback for a in addresses):
        pytest.skip("host name is not loopback here")
    assert "DNS address" in host_block_reason(host)


# -- the middleware, unit ------------------------------------------------------------------
class _Site:
    def __init__(self, site_id, allow_private, domains=()):
        self.id, self.allow_private = site_id, allow_private
        self.portal, self.allowed_domains = (f"http://{domains[0]}/" if domains else "http://x/",), domains


class _Run:
    def __init__(self, site):
        self.site = site


class _Crawler:
    def __init__(self, *sites):
        self.spider = type("Spider", (), {"runs": {s.id: _Run(s) for s in sites}, "sites": list(sites)})()
        self.stats = None


def _call(mw, request):
    return asyncio.run(mw.process_request(request))


def test_middleware_blocks_with_the_ssrf_message_and_honours_allow_private():
    crawler = _Crawler(_Site("pub", False), _Site("lan", True, ("intranet.lan", "10.0.0.5")))
    mw = SSRFGuardMiddleware(crawler)
    for url in ("http://10.0.0.5/", "http://169.254.169.254/latest/meta-data/", "http://[::1]/",
                "http://metadata.google.internal/"):
        with pytest.raises(IgnoreRequest) as info:
            _call(mw, Request(url, meta={"xxgk": {"site": "pub"}}))
        assert str(info.value).startswith(BLOCK_PREFIX + "blocked ")
    assert mw.blocked == 4
    assert _call(mw, Request("http://10.0.0.5/", meta={"xxgk": {"site": "lan"}})) is None
    # robots.txt requests carry no site: allowed inside an allow_private site's domains only
    assert _call(mw, Request("http://10.0.0.5/robots.txt")) is None
    with pytest.raises(IgnoreRequest):
        _call(mw, Request("http://10.9.9.9/robots.txt"))
    assert _call(mw, Request("http://8.8.8.8/")) is None
    assert _call(mw, Request("data:text/plain,hi")) is None


def test_middleware_settings():
    from scrapy.exceptions import NotConfigured
    from scrapy.utils.test import get_crawler

    with pytest.raises(NotConfigured):
        SSRFGuardMiddleware.from_crawler(get_crawler(settings_dict={"XXGK_SSRF_GUARD": False}))
    mw = SSRFGuardMiddleware.from_crawler(get_crawler(settings_dict={
        "XXGK_SSRF_ALLOW_HOSTS": "127.0.0.1/32, localhost", "XXGK_SSRF_DNS_TIMEOUT": "0.5"}))
    assert mw.dns_timeout == 0.5
    assert mw._allowed_explicitly("127.0.0.1") and mw._allowed_explicitly("localhost")
    assert not mw._allowed_explicitly("127.0.0.2")


def test_the_classifier_keeps_ssrf_blocks_out_of_broken_states():
    from crawler.classify import classify
    from crawler.fetch import Fetch

    message = f"{BLOCK_PREFIX}blocked 169.254.169.254: 169.254.169.254 is a cloud metadata address"
    verdict = classify(Fetch(url="http://169.254.169.254/", error_type="IgnoreRequest", error=message))
    assert verdict.state == "excluded"  # the lead maps it to rule "ssrf"


# -- the middleware, in a real crawl ---------------------------------------------------------
def _page(*links: str) -> tuple[int, dict, bytes]:
    body = "<html><head><title>信息公开</title></head><body><h1>信息公开目录</h1>" + "".join(
        f'<p><a href="{href}">链接{i}</a> 学校信息公开工作的相关说明文字。</p>' for i, href in enumerate(links)
    ) + "</body></html>"
    return 200, {}, body.encode()


def _redirect(target: str) -> tuple[int, dict, bytes]:
    return 302, {"Location": target}, b""


INTERNAL = {
    "http://169.254.169.254/latest/meta-data/", "http://localhost:8001/xxgk", "http://[fd00:ec2::254]/",
    "http://2130706433/", "http://metadata.google.internal/computeMetadata/v1/", "http://10.0.0.5/intranet.htm",
    "http://192.168.1.1/", "http://100.64.1.1/", "http://127.0.0.1:8001/", "http://[::ffff:7f00:1]/",
}
PORTAL = "http://portal.example-univ.edu.cn"
LAN = "http://10.0.0.5"


def _crawl(tmp_path: Path, registry: str, proxy: str, *extra: str) -> sqlite3.Connection:
    from crawler import settings as project_settings

    reg = tmp_path / "sites.toml"
    reg.write_text(registry, encoding="utf-8")
    db = tmp_path / "archive.db"
    middlewares = {**project_settings.DOWNLOADER_MIDDLEWARES, "crawler.safety.SSRFGuardMiddleware": 50}
    env = {**os.environ, "http_proxy": proxy, "https_proxy": proxy, "no_proxy": "", "NO_PROXY": "",
           "SCRAPY_SETTINGS_MODULE": "crawler.settings", "XXGK_CONTACT_URL": CONTACT,
           "PYTHONPATH": str(ROOT), "XXGK_LOG_LEVEL": "INFO"}
    command = [sys.executable, "-m", "scrapy", "crawl", "portal", "-a", f"registry={reg}",
               "-s", f"XXGK_DB={db}", "-s", f"DOWNLOADER_MIDDLEWARES={json.dumps(middlewares)}",
               "-s", "XXGK_PROBE_SOFT404=0", "-s", "DOWNLOAD_DELAY=0", "-s", "AUTOTHROTTLE_ENABLED=0",
               "-s", "XXGK_SSRF_DNS_TIMEOUT=1", *extra]
    result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "crawler.safety.SSRFGuardMiddleware" in result.stderr  # it was enabled
    return sqlite3.connect(db)


def test_guard_in_a_crawl_blocks_direct_links_and_redirect_hops(tmp_path):
    hops = {f"{PORTAL}/go/{i}": _redirect(target) for i, target in enumerate(sorted(INTERNAL))}
    routes = {
        f"{PORTAL}/index.htm": _page(*sorted(INTERNAL), *hops, "/ok.htm", "http://www.example-univ.edu.cn/",
                                     f"http://{socket.gethostname()}/"),
        f"{PORTAL}/ok.htm": _page("/index.htm"),
        **hops,
        f"{LAN}/index.htm": _page("/a.htm"),
        f"{LAN}/a.htm": _page("/index.htm"),
    }
    registry = textwrap.dedent(f"""
        [[site]]
        id = "pub"
        portal = "{PORTAL}/index.htm"
        render = "never"

        [[site]]
        id = "lan"
        portal = "{LAN}/index.htm"
        render = "never"
        allow_private = true
        """)
    with LocalWeb(routes) as web:
        conn = _crawl(tmp_path, registry, web.proxy_url)
        asked = web.urls()
        agents = {headers.get("user-agent", "") for _m, _u, headers in web.log}
    # Nothing internal reached even the local proxy, directly or as a redirect target.
    internal = {canonicalize(url) for url in INTERNAL}  # as stored: 2130706433 is 127.0.0.1
    assert not (INTERNAL | internal) & set(asked), sorted((INTERNAL | internal) & set(asked))
    assert all(h in asked for h in hops), "each first hop was requested"
    assert f"{PORTAL}/ok.htm" in asked and "http://www.example-univ.edu.cn/" in asked
    # Each blocked link has its verdict: excluded, with the ssrf message naming the target.
    rows = dict(conn.execute(
        "SELECT url, state || ' ' || COALESCE(error, '') FROM link_checks WHERE site_id = 'pub'"))
    for url in sorted(internal) + sorted(hops):
        assert url in rows, url
        assert rows[url].startswith("excluded") and BLOCK_PREFIX + "blocked" in rows[url], (url, rows[url])
    for i, target in enumerate(sorted(INTERNAL)):  # a hop is judged as the direct link is
        # (the hop's message names the host as its Location header spelled it)
        hop, direct = rows[f"{PORTAL}/go/{i}"], rows[canonicalize(target)]
        assert hop.rpartition(" is ")[2] == direct.rpartition(" is ")[2], (target, hop, direct)
    hostname_url = f"http://{socket.gethostname()}/"
    if ipaddress.ip_address(socket.gethostbyname(socket.gethostname())).is_loopback:
        assert hostname_url not in asked and "DNS address" in rows[hostname_url]
    # The allow_private site was crawled (through the local proxy).
    assert f"{LAN}/index.htm" in asked and f"{LAN}/a.htm" in asked
    # User agent: names the project and the contact URL, on pages and robots.txt alike.
    assert agents and all("xxgk-archive" in a and CONTACT in a for a in agents), agents
    assert any(u.endswith("/robots.txt") for u in asked)


def test_robots_txt_is_obeyed_with_the_guard_on(tmp_path):
    """A simulated portal through the guard: robots.txt fetched, its exclusions never requested."""
    from simweb import SimWeb
    from simweb.truth import expected_links

    registry = textwrap.dedent("""
        [[site]]
        id = "jsp"
        name = "模拟职业技术学院"
        portal = ["http://info.jsp-college.edu.cn/index.jsp"]
        render = "never"
        """)
    with SimWeb(port=0, day=1, delay_scale=0.0) as web:
        conn = _crawl(tmp_path, registry, web.proxy_url, "-s", "XXGK_DOWNLOAD_TIMEOUT=2", "-s", "RETRY_TIMES=0")
        asked = {url for _method, url, _status in web.request_log}
    excluded = {u for u, s in expected_links(1).items() if s == "excluded" and "jsp-college" in u}
    assert excluded and "http://info.jsp-college.edu.cn/robots.txt" in asked
    assert not excluded & asked
    states = dict(conn.execute("SELECT url, state || ' ' || rule FROM link_checks"))
    assert all(states.get(u) == "excluded net-robots" for u in excluded)
    # Nothing in the simulated world is internal: the guard blocked nothing.
    assert not [u for u, s in states.items() if "ssrf" in s]
    assert len(states) > 50


FAKE_DNS = """
# Stands in for an attacker's DNS server (loaded through PYTHONPATH): every lookup of
# rebind.test answers a public address first, then 127.0.0.1 (TTL 0); slow.test answers
# 127.0.0.1 after longer than the guard waits.
import socket, time
_real, _real_name, _seen = socket.getaddrinfo, socket.gethostbyname, {}
def _answer(host):
    host = host.rstrip(".").lower() if isinstance(host, str) else host
    if host not in ("rebind.test", "slow.test"):
        return None
    _seen[host] = _seen.get(host, 0) + 1
    if host == "slow.test":
        time.sleep(1.5)
        return "127.0.0.1"
    return "93.184.216.34" if _seen[host] == 1 else "127.0.0.1"
def getaddrinfo(host, port, *args, **kwargs):
    return _real(_answer(host) or host, port, *args, **kwargs)
def gethostbyname(host):
    return _answer(host) or _real_name(host)
socket.getaddrinfo, socket.gethostbyname = getaddrinfo, gethostbyname
"""


@pytest.mark.parametrize("allow", ["", "127.0.0.1/32"])
def test_the_address_a_connection_uses_is_judged(tmp_path, loopback_server, allow):
    """DNS rebinding (public for the guard's lookup, loopback when Scrapy connects) and an
    answer slower than the guard waits: GuardedResolver refuses the connection itself.
    The control (loopback allowed) reaches the server, so the refusal is not an accident."""
    hits: list[str] = []
    base = loopback_server(b"<html><head><title>internal</title></head><body>secrets</body></html>",
                           "text/html", hits)
    port = base.rsplit(":", 1)[1]
    (tmp_path / "dns").mkdir()
    (tmp_path / "dns" / "sitecustomize.py").write_text(FAKE_DNS, encoding="utf-8")
    (tmp_path / "sites.toml").write_text(
        f'[[site]]\nid = "t"\nportal = ["http://rebind.test:{port}/index.htm", "http://slow.test:{port}/a.htm"]\n'
        'render = "never"\n', encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if k.lower() not in ("http_proxy", "https_proxy")}
    env["PYTHONPATH"] = str(tmp_path / "dns")
    result = subprocess.run(
        [sys.executable, "-m", "xxgk", "crawl", "--registry", str(tmp_path / "sites.toml"), "--db",
         str(tmp_path / "a.db"), "-s", "XXGK_PROBE_SOFT404=0", "-s", "XXGK_DOWNLOAD_TIMEOUT=5",
         "-s", "XXGK_SSRF_DNS_TIMEOUT=0.5", "-s", "DOWNLOAD_DELAY=0", "-s", "RETRY_TIMES=1",
         *(["-s", f"XXGK_SSRF_ALLOW_HOSTS={allow}"] if allow else [])],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    rows = dict(sqlite3.connect(tmp_path / "a.db").execute(
        "SELECT url, state || ' ' || rule || ' ' || COALESCE(error, '') FROM link_checks"))
    if allow:
        assert {"/index.htm", "/a.htm"} <= set(hits), hits
        assert all(row.startswith("ok") for row in rows.values()), rows
        return
    assert not hits, hits  # not even robots.txt
    for url in (f"http://rebind.test:{port}/index.htm", f"http://slow.test:{port}/a.htm"):
        assert rows[url].startswith("excluded ssrf"), rows
        assert "resolved to 127.0.0.1, a loopback address, when connecting" in rows[url]


def test_registry_check_applies_the_guard_to_portals_and_redirects(tmp_path):
    """``xxgk registry check`` requests portals itself (urllib): the same guard as a crawl."""
    from schedules.bulk import check_portals
    from schedules.registry import parse_registry

    routes = {f"{PORTAL}/index.htm": _page("/ok.htm"), f"{PORTAL}/go": _redirect("http://169.254.169.254/x"),
              f"{LAN}/index.htm": _page("/a.htm")}
    sites = parse_registry(textwrap.dedent(f"""
        [[site]]
        id = "pub"
        portal = ["{PORTAL}/index.htm", "{PORTAL}/go", "http://2130706433/", "http://[::ffff:7f00:1]/"]

        [[site]]
        id = "lan"
        portal = "{LAN}/index.htm"
        allow_private = true
        """))
    with LocalWeb(routes) as web:
        env = {"http_proxy": web.proxy_url, "https_proxy": web.proxy_url, "no_proxy": "", "NO_PROXY": ""}
        with pytest.MonkeyPatch.context() as patch:
            for name, value in env.items():
                patch.setenv(name, value)
            results = {r.url: r for r in check_portals(sites, timeout=5)}
        asked = web.urls()
    assert results[f"{PORTAL}/index.htm"].state == "ok"
    assert results[f"{LAN}/index.htm"].state == "ok"  # the site allows its private host
    for url in (f"{PORTAL}/go", "http://2130706433/", "http://[::ffff:7f00:1]/"):
        assert (results[url].state, results[url].rule) == ("excluded", "ssrf"), (url, results[url])
        assert BLOCK_PREFIX + "blocked" in results[url].error
    assert "a redirect from" in results[f"{PORTAL}/go"].error
    assert f"{PORTAL}/go" in asked  # the hop itself was asked, its target never
    assert not {u for u in asked if "169.254" in u or "2130706433" in u or "7f00" in u}, asked


def test_registry_check_connects_to_the_address_it_judged(monkeypatch):
    """A portal name whose DNS answer turns internal between the check and the connection
    (rebinding, TTL 0) was requested on loopback by ``xxgk registry check``: urllib resolved it
    again to connect. The connection is judged now; a site with allow_private still connects."""
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from schedules.bulk import check_portal
    from schedules.registry import Site

    hits: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_HEAD(self) -> None:  # noqa: N802 - stdlib naming
            hits.append(self.path)
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        do_GET = do_HEAD

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    real = socket.getaddrinfo
    answers: list[str] = []

    def rebinding(host, port, *args, **kwargs):
        if host == "portal.rebind.example":
            answers.append("public" if not answers else "loopback")
            ip = "93.184.216.34" if answers[-1] == "public" else "127.0.0.1"
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (ip, port))]
        return real(host, port, *args, **kwargs)

    for name in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(socket, "getaddrinfo", rebinding)
    url = f"http://portal.rebind.example:{server.server_address[1]}/secret-admin"
    try:
        refused = check_portal(Site(id="x", name="x", portal=(url,), allowed_domains=("portal.rebind.example",)),
                               url, timeout=5)
        assert answers[:2] == ["public", "loopback"]  # the check saw a public address
        assert (refused.state, refused.rule) == ("excluded", "ssrf"), refused
        assert "127.0.0.1, a loopback address, when connecting" in refused.error
        assert not hits, hits
        allowed = check_portal(Site(id="y", name="y", portal=(url,), allowed_domains=("portal.rebind.example",),
                                    allow_private=True), url, timeout=5)
        assert allowed.state == "ok" and hits == ["/secret-admin"], (allowed, hits)
    finally:
        server.shutdown()
        server.server_close()


def test_user_agent_setting():
    from crawler import settings as project_settings

    assert project_settings.ROBOTSTXT_OBEY is True
    assert project_settings.USER_AGENT.startswith("xxgk-archive/")
    assert project_settings.XXGK_CONTACT_URL in project_settings.USER_AGENT


# -- archived HTML never runs in the Datasette origin ----------------------------------------
HOSTILE_HTML = """<!DOCTYPE html><html><head><title>x</title>
<script>alert(document.cookie)</script><script src="http://evil.example/x.js"></script>
<meta http-equiv="refresh" content="0;url=javascript:alert(1)"><base href="javascript:alert(1)//">
<meta http-equiv="Content-Security-Policy" content="script-src *">
</head><body onload="alert(2)"><p>正文内容</p><img src=x onerror="alert(3)"><svg onload="alert(4)"><script>alert(5)</script></svg>
<iframe srcdoc="&lt;script&gt;alert(6)&lt;/script&gt;"></iframe><a href="javascript:alert(7)">j</a>
<a href=" JaVaScRiPt:alert(8)">k</a><object data="data:text/html,&lt;script&gt;alert(9)&lt;/script&gt;"></object>
<embed src="http://evil.example/x.swf"><form action="javascript:alert(10)"><button formaction="javascript:alert(11)">b</button></form>
<math><mtext><table><mglyph><style><img src=x onerror=alert(12)></style></mglyph></table></mtext></math>
<noscript><p title="</noscript><img src=x onerror=alert(13)>"></noscript>
<div style="background:url(javascript:alert(14))">styled</div></body></html>"""
SCRIPTY_TITLE = "</title><script>alert('title')</script>"


@pytest.fixture
def hostile_archive(tmp_path):
    from archive.db import open_db
    from archive.store import ArchiveWriter, start_crawl, upsert_sites
    from crawler.items import LinkCheck

    path = tmp_path / "archive.db"
    db = open_db(path)
    upsert_sites(db, [{"id": "s", "name": "S", "portal": json.dumps(["http://s.edu.cn/"])}])
    writer = ArchiveWriter(db)
    crawl = start_crawl(db, "s")
    ids = {}
    for name, url, ctype, body in [
        ("html", 'http://s.edu.cn/a.htm?"><script>alert(1)</script>', "text/html; charset=utf-8", HOSTILE_HTML.encode()),
        ("xhtml", "http://s.edu.cn/b.xhtml", "application/xhtml+xml", HOSTILE_HTML.encode()),
        ("svg", "http://s.edu.cn/c.svg", "image/svg+xml", b'<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"><script>alert(2)</script></svg>'),
        ("sniff", "http://s.edu.cn/d.png", "image/png", HOSTILE_HTML.encode()),
        ("badtype", "http://s.edu.cn/e", "text/html\r\nX-Evil: 1", HOSTILE_HTML.encode()),
    ]:
        _check_id, ids[name] = writer.record_check(LinkCheck(
            site_id="s", crawl_id=crawl, url=url, checked_at="2026-01-01T00:00:00Z", state="ok", rule="t",
            status_code=200, body=body, content_type=ctype, headers={"content-type": ctype},
            title=SCRIPTY_TITLE, encoding="utf-8", main_text="正文内容" if "html" in ctype else None))
    writer.commit()
    sha = db.execute("SELECT sha256 FROM snapshots WHERE id = ?", [ids["html"]]).fetchone()[0]
    db.conn.close()
    return path, ids, sha


def _get(path, url):
    from archive.serve import make_datasette

    return asyncio.run(make_datasette(path).client.get(url))


def _no_script(text: str) -> None:
    """No element or attribute left that could run script when the page is opened."""
    from lxml import html as lxml_html

    doc = lxml_html.document_fromstring(text)
    for element in doc.iter():
        if not isinstance(element.tag, str):
            continue
        assert element.tag.lower() not in ("script", "object", "embed", "base", "applet"), element.tag
        for name, value in element.attrib.items():
            assert not name.lower().startswith("on"), (element.tag, name)
            assert name.lower() not in ("formaction", "action"), (element.tag, name)
            assert not value.strip().lower().startswith(("javascript:", "vbscript:")), (element.tag, name)
        if element.tag.lower() == "meta":
            assert (element.get("http-equiv") or "").lower() not in ("refresh", "content-security-policy")
    assert "<script" not in text.lower()


@pytest.mark.parametrize("name", ["html", "xhtml", "badtype"])
def test_raw_snapshot_is_sandboxed_and_scriptless(hostile_archive, name):
    path, ids, _sha = hostile_archive
    response = _get(path, f"/-/snapshot/{ids[name]}/raw")
    assert response.status_code == 200
    csp = response.headers["content-security-policy"]
    assert "sandbox" in csp and "default-src 'none'" in csp and "allow-scripts" not in csp
    assert "script-src" not in csp and "allow-same-origin" not in csp
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["content-type"].startswith("text/html")
    _no_script(response.text)
    assert "正文内容" in response.text
    assert "srcdoc" not in response.text.lower()
    assert ">styled</div>" in response.text  # the page goes on after its <embed>


@pytest.mark.parametrize("name", ["svg", "sniff"])
def test_non_html_snapshots_download_and_never_render(hostile_archive, name):
    path, ids, _sha = hostile_archive
    response = _get(path, f"/-/snapshot/{ids[name]}/raw")
    assert response.status_code == 200
    assert response.headers["content-disposition"].startswith("attachment")
    assert response.headers["x-content-type-options"] == "nosniff"
    assert "sandbox" in response.headers["content-security-policy"]
    assert "html" not in response.headers["content-type"]


def test_rewriter_drops_iframe_srcdoc():
    from archive.datasette_plugins.snapshot_view import Rewriter

    page = Rewriter('<p>前</p><iframe srcdoc="&lt;script&gt;alert(1)&lt;/script&gt;" title="t"></iframe>'
                    '<p>后</p><iframe SRCDOC="<b>x</b>"></iframe>', "http://s.edu.cn/").render({}, "/-/snapshot")
    assert "srcdoc" not in page.lower() and "alert" not in page
    assert page.count("<iframe") == 2 and 'title="t"' in page and "前" in page and "后" in page


def test_rewriter_drops_data_urls_except_images():
    from archive.datasette_plugins.snapshot_view import Rewriter

    page = Rewriter('<iframe src="data:text/html,&lt;script&gt;alert(1)&lt;/script&gt;"></iframe>'
                    '<img src="data:image/gif;base64,R0lGODlhAQABAAAAACw=">', "http://s.edu.cn/").render({}, "/-/snapshot")
    assert ' src="data:text/html' not in page and 'data-archived-src="data:text/html' in page
    assert '<img src="data:image/gif;base64,' in page


def test_rewriter_leaves_no_link_out_of_the_archive():
    """SVG links (``xlink:href``), images and href animations would take the whole window
    to the live site on a click (the sandbox allows top navigation by user activation)."""
    from lxml import html as lxml_html

    from archive.datasette_plugins.snapshot_view import Rewriter

    markup = ('<p><a href="http://s.edu.cn/kept.htm">存档</a><a href="#top">本页</a></p>'
              '<svg><a xlink:href="http://live.example/x" target="_top"><text>一</text></a>'
              '<a href="https://live.example/y"><text>二</text></a><use href="#icon"></use>'
              '<image xlink:href="http://live.example/z.png"></image>'
              '<a><set attributeName="href" to="http://live.example/set"></set><text>三</text></a>'
              '<a><animate attributeName="xlink:href" values="http://live.example/anim"></animate></a>'
              '<animate attributeName="opacity" values="0;1"></animate></svg>')
    rewriter = Rewriter(markup, "http://s.edu.cn/")
    page = rewriter.render({"http://s.edu.cn/kept.htm": 7}, "/-/snapshot")
    doc = lxml_html.document_fromstring(page)
    hrefs = {value for element in doc.iter() if isinstance(element.tag, str)
             for name, value in element.attrib.items() if name.lower().endswith("href") and "archived" not in name}
    assert hrefs == {"/-/snapshot/7", "#top", "#icon"}, hrefs
    assert "live.example/set" not in page and "live.example/anim" not in page
    assert 'attributename="opacity"' in page.lower()  # other animations stay
    assert 'data-archived-href="http://live.example/x"' in page  # what the page linked, kept as data
    assert "一" in page and "三" in page


def test_style_text_cannot_become_markup_in_foreign_content():
    """lxml writes <style> text raw; inside <math>/<svg> a browser parses it as elements
    (<math><mtext><table><mglyph><style><img onerror=…>), so no "<" may survive in it."""
    import re

    from archive.datasette_plugins.snapshot_view import Rewriter

    page = "".join(Rewriter(markup, "http://s.edu.cn/").render({}, "/-/snapshot") for markup in (
        HOSTILE_HTML, '<svg><style>a{}</style><img src=x onerror=alert(15)></svg>'
                      '<style>p::before{content:"<b>"}</style>'))
    styles = re.findall(r"<style[^>]*>(.*?)</style>", page, re.S | re.I)
    assert len(styles) == 3 and not [text for text in styles if "<" in text]
    assert 'content:"\\3C b>"' in page  # still the same CSS


@pytest.mark.parametrize("markup", [
    '<body><embed src="banner.swf"><p>正文内容</p><p>第二段</p></body>',
    '<body><p>前言<embed src="a.swf">正文内容<b>加粗</b>尾巴</p><p>第二段</p></body>',
    '<body><embed src="a.swf"><embed src="b.swf"><div>正文内容</div>第二段</body>',
    '<body><video><source src="v.mp4"><track src="t.vtt">正文内容</video><p>第<wbr>二段</p></body>',
])
def test_rewriter_keeps_the_content_after_an_embed(markup):
    """libxml2 parses ``<embed>`` (and other HTML5 voids) as a container: dropping it must
    not drop the rest of the page, and the text keeps its order."""
    from lxml import html as lxml_html

    from archive.datasette_plugins.snapshot_view import Rewriter

    page = Rewriter(markup, "http://s.edu.cn/").render({}, "/-/snapshot")
    assert "<embed" not in page
    text = lxml_html.document_fromstring(page).text_content()
    assert "正文内容" in text and "第二段" in text
    assert text.index("正文内容") < text.index("第二段")
    if "前言" in markup:
        assert text.index("前言") < text.index("正文内容") < text.index("加粗") < text.index("尾巴")


def test_snapshot_ids_past_sqlite_integers_are_not_found(hostile_archive):
    path, _ids, _sha = hostile_archive
    for url in ("/-/snapshot/99999999999999999999999", "/-/snapshot/99999999999999999999999/raw",
                "/-/snapshot/999999999999999999"):
        assert _get(path, url).status_code == 404, url


def test_download_of_an_html_original_is_an_attachment(hostile_archive):
    path, ids, _sha = hostile_archive
    response = _get(path, f"/-/snapshot/{ids['html']}/raw?download=1")
    assert response.headers["content-disposition"].startswith("attachment")
    assert "sandbox" in response.headers["content-security-policy"]


def test_banner_page_escapes_and_sandboxes(hostile_archive):
    path, ids, _sha = hostile_archive
    response = _get(path, f"/-/snapshot/{ids['html']}")
    assert response.status_code == 200
    text = response.text
    assert "<script>alert" not in text and SCRIPTY_TITLE not in text
    import re

    iframes = re.findall(r"<iframe[^>]*>", text)
    assert iframes, "the archived page is shown in an iframe, not inline"
    for tag in iframes:
        sandbox = re.search(r'sandbox="([^"]*)"', tag)
        assert sandbox is not None and "allow-scripts" not in sandbox.group(1)
        assert "allow-same-origin" not in sandbox.group(1)


def test_datasette_blob_download_is_an_attachment(hostile_archive):
    path, _ids, sha = hostile_archive
    response = _get(path, f"/xxgk/blobs/{sha}.blob?_blob_column=content")
    assert response.status_code == 200
    assert "html" not in response.headers["content-type"]
    assert response.headers["content-disposition"].startswith("attachment")
    assert response.headers.get("x-content-type-options") == "nosniff"


def test_table_views_escape_archived_text(hostile_archive):
    path, ids, _sha = hostile_archive
    for url in (f"/xxgk/snapshots/{ids['html']}", "/xxgk/snapshots", "/xxgk/link_checks"):
        response = _get(path, url)
        assert response.status_code == 200
        assert "<script>alert" not in response.text, url


def test_a_crawl_never_fetches_the_public_suffix_list(monkeypatch):
    """Scrapy's cookie middleware asks tldextract whether a domain is a public suffix;
    tldextract would download the list from publicsuffix.org (through the user's proxy)
    when it has none cached. A crawl uses the bundled list: the same answers, no request."""
    import requests
    from scrapy.downloadermiddlewares import cookies
    from scrapy.utils.test import get_crawler

    from crawler.extensions import OfflinePublicSuffixList

    fetched = []

    def send(session, request, **kwargs):
        fetched.append(request.url)
        raise requests.ConnectionError("no network in this test")

    monkeypatch.setattr(requests.Session, "send", send)
    monkeypatch.delenv("TLDEXTRACT_PUBLIC_SUFFIX_LIST_URLS", raising=False)
    monkeypatch.setattr(cookies, "_split_domain", cookies._split_domain)  # restored afterwards
    OfflinePublicSuffixList.from_crawler(get_crawler())
    assert cookies._is_public_domain("edu.cn") and cookies._is_public_domain("gov.cn")
    assert not cookies._is_public_domain("xxgk.wust.edu.cn")
    assert fetched == []
