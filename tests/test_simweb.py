"""Tests of the simulated web (simweb): proxy behaviour, truth tables, reports, day 2."""

from __future__ import annotations

import hashlib
import http.client
import io
import re
import socket
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
import zipfile
from collections import Counter
from collections.abc import Iterator
from email.message import Message
from pathlib import Path

import pytest

from simweb import SimWeb, truth
from simweb.model import STATES
from simweb.sites import build_world
from simweb.truth import (
    SITES,
    TRAP_PREFIXES,
    canonical_url,
    expected_item_states,
    expected_links,
    expected_report_items,
    expected_reports,
)

ROOT = Path(__file__).resolve().parents[1]
WEBPLUS = "http://xxgk.webplus-univ.edu.cn"
VSB = "http://xxgk.vsb-univ.edu.cn"
JSP = "http://info.jsp-college.edu.cn"
TRS = "http://www.trs-univ.edu.cn"


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: object, **kwargs: object) -> None:  # type: ignore[override]
        return None


class Client:
    """urllib through the proxy; returns (status, headers, body) instead of raising."""

    def __init__(self, proxy: str) -> None:
        proxies = urllib.request.ProxyHandler({"http": proxy, "https": proxy})
        self.plain = urllib.request.build_opener(proxies, _NoRedirect())
        self.follow = urllib.request.build_opener(proxies)

    def get(
        self, url: str, *, follow: bool = False, headers: dict[str, str] | None = None, timeout: float = 10
    ) -> tuple[int, Message, bytes]:
        opener = self.follow if follow else self.plain
        req = urllib.request.Request(url, headers=headers or {})
        try:
            with opener.open(req, timeout=timeout) as resp:
                return resp.status, resp.headers, resp.read()
        except urllib.error.HTTPError as err:
            return err.code, err.headers, err.read()


@pytest.fixture(scope="module")
def web() -> Iterator[SimWeb]:
    with SimWeb(port=0, day=1, delay_scale=0.02) as sim:
        yield sim


@pytest.fixture(scope="module")
def client(web: SimWeb) -> Client:
    return Client(web.proxy_url)


# -- truth tables ---------------------------------------------------------------------


def test_expected_links_cover_all_states() -> None:
    links = expected_links(1)
    assert len(links) >= 300
    counts = Counter(links.values())
    assert set(counts) == set(STATES), set(STATES) - set(counts)
    for url in links:
        assert canonical_url(url) == url
        assert not any(url.startswith(p) for p in TRAP_PREFIXES)
        assert "utm_" not in url and "jsessionid" not in url.lower() and "sid=" not in url


def test_no_accidental_404s_in_model() -> None:
    for day in (1, 2):
        _, undeclared = build_world(day).crawl()
        assert undeclared == []


def test_sites_registry_matches_model() -> None:
    ids = [s["id"] for s in SITES]
    assert ids == ["webplus", "vsb", "jsp", "trs"]
    world_sites = {s.id: s for s in build_world(1).sites}
    for site in SITES:
        assert re.fullmatch(r"[a-z0-9_-]+", site["id"])
        ws = world_sites[site["id"]]
        assert site["portal"] == ws.portal
        assert site["allowed_domains"] == ws.allowed_domains
        assert site["kind"] in ("本科", "专科")
        assert site["render"] in ("auto", "never", "always")
    assert expected_links(1)[SITES[0]["portal"][0]] == "ok"


def test_every_state_answers_as_declared(client: Client) -> None:
    links = expected_links(1)
    world = build_world(1)
    for url, state in sorted(links.items()):
        if state in ("timeout", "tls_error", "excluded"):
            continue
        if url in truth.THROTTLED:  # answers "come back later" first (test_throttled_pages)
            continue
        try:
            status, headers, body = client.get(url)
        except http.client.IncompleteRead:
            assert state == "type_mismatch", url
            continue
        if state == "ok":
            assert status == 200, url
        elif state == "not_found":
            assert status in (404, 410), url
        elif state == "soft_404":
            assert status == 200 or (status == 302 and headers["Location"].endswith("/xxgk/index.html")), url
        elif state == "server_error":
            assert 500 <= status < 600 and "X-Squid-Error" not in headers, url
        elif state == "blocked":
            assert status in (403, 412, 521), url
        elif state == "rate_limited":
            assert status == 429 and headers["Retry-After"] == "2", url
        elif state == "dns_error":
            assert status == 503 and headers["X-Squid-Error"] == "ERR_DNS_FAIL 0", url
        elif state == "connection_error":
            assert status == 502 and headers["X-Squid-Error"] == "ERR_CONNECT_FAIL 111", url
        elif state == "redirected":
            # HTTP, meta refresh, or a script redirect that a rendering crawler follows
            assert status in (301, 302) or b'http-equiv="refresh"' in body or b"window.location" in body, url
        elif state == "redirect_loop":
            assert status in (301, 302), url
        elif state == "type_mismatch":
            assert status == 200, url
            is_html = headers.get_content_type() == "text/html"
            assert is_html or len(body) == 0 or not body.startswith(b"%PDF"), url
        elif state == "empty":
            assert status == 200, url
        assert world.state_of(url) == state, url


def test_representative_pages(client: Client) -> None:
    status, headers, body = client.get(WEBPLUS + "/main.htm")
    assert status == 200 and headers["ETag"] and headers["Last-Modified"]
    assert 'id="wp_news_w6"' in client.get(WEBPLUS + "/2580/list.htm")[2].decode()
    assert "news_meta" in client.get(WEBPLUS + "/2580/list2.htm")[2].decode()
    # near misses stay ok
    near = [u for u, s in expected_links(1).items() if s == "ok" and "c2580a100002" in u]
    assert near and "404错误页面" in client.get(near[0])[2].decode()
    status, _, body = client.get(JSP + "/ShowArticle.jsp?id=140")
    assert status == 200 and "找不到工作" in body.decode("gbk")
    # soft 404 templates
    assert "您访问的页面不存在" in client.get(WEBPLUS + "/2699/list.htm")[2].decode()
    assert "页面不存在或已被删除" in client.get(VSB + "/xxgk/qd/item30.htm")[2].decode()
    assert "抱歉，找不到该页面" in client.get(JSP + "/BigClass.jsp?id=105")[2].decode("gbk")
    assert "<title>404 - 页面未找到</title>" in client.get(TRS + "/xxgk/qd/xm31/index.html")[2].decode()
    # anti-bot
    status, headers, body = client.get("http://cwc.vsb-univ.edu.cn/info/1011/1001.htm")
    assert status == 521 and b"__jsl_clearance" in body
    status, _, body = client.get("http://zsb.webplus-univ.edu.cn/")
    assert status == 412 and b"$_ts" in body
    status, _, body = client.get(TRS + "/xxgk/ysqgk/index.html")
    assert status == 403 and "验证码" in body.decode()
    # empty list container
    body = client.get(WEBPLUS + "/2696/list.htm")[2].decode()
    assert re.search(r'<ul class="news_list list2">\s*</ul>', body)
    # unknown host
    status, headers, _ = client.get("http://no-such-host.example.org/")
    assert status == 503 and headers["X-Squid-Error"].startswith("ERR_DNS_FAIL")


def test_redirects(client: Client) -> None:
    status, headers, _ = client.get(VSB + "/old/xxgk.htm")
    assert status == 301
    status2, headers2, _ = client.get(
        VSB + headers["Location"] if headers["Location"].startswith("/") else headers["Location"]
    )
    assert status2 == 302
    status, _, body = client.get(VSB + "/old/xxgk.htm", follow=True)
    assert status == 200 and "模拟师范大学" in body.decode()
    with pytest.raises(urllib.error.HTTPError, match="infinite loop|redirect"):
        client.follow.open(VSB + "/system/login.jsp", timeout=5)
    body = client.get(WEBPLUS + "/index.htm")[2].decode()
    assert '<meta http-equiv="refresh" content="0;url=/main.htm">' in body
    body = client.get(VSB + "/xxgk.htm")[2].decode()
    assert 'window.location.href="xxgk/xxgkml.htm"' in body
    assert truth.JS_REDIRECTS == {VSB + "/xxgk.htm": VSB + "/xxgk/xxgkml.htm"}
    status, headers, _ = client.get(TRS + "/xxgk/qd/xm35/index.html")
    assert status == 302 and headers["Location"] == TRS + "/xxgk/index.html"


def test_timeout_and_tls(client: Client, web: SimWeb) -> None:
    start = time.monotonic()
    with pytest.raises((TimeoutError, socket.timeout, urllib.error.URLError)):
        client.get("http://slow.example-univ.edu.cn/", timeout=0.2)
    assert time.monotonic() - start < 2
    status, _, _ = client.get("http://slow.example-univ.edu.cn/", timeout=5)  # 30 s x 0.02
    assert status == 200
    with pytest.raises(urllib.error.URLError) as info:
        client.follow.open("https://tls-bad.example-univ.edu.cn/", timeout=5)
    assert isinstance(info.value.reason, (ssl.SSLError, ConnectionError, OSError))
    assert ("CONNECT", "tls-bad.example-univ.edu.cn:443", 200) in web.request_log


def test_attachment_pathologies(client: Client) -> None:
    links = expected_links(1)
    mismatches = [u for u, s in links.items() if s == "type_mismatch"]
    kinds = set()
    for url in mismatches:
        try:
            status, headers, body = client.get(url)
        except http.client.IncompleteRead as err:
            kinds.add("truncated")
            assert err.partial.startswith(b"%PDF")
            continue
        if headers.get_content_type() == "text/html":
            kinds.add("html")
        elif not body:
            kinds.add("zero")
            assert headers["Content-Length"] == "0"
        elif body.startswith(b"GIF8"):
            kinds.add("magic")
    assert kinds == {"truncated", "html", "zero", "magic"}
    # a real PDF with a wrong content type is ok
    world = build_world(1)
    octet = [
        u
        for u, s in links.items()
        if s == "ok" and u.endswith(".pdf") and world.lookup(u).content_type == "application/octet-stream"
    ]  # type: ignore[union-attr]
    assert octet
    status, headers, body = client.get(octet[0])
    assert status == 200 and body.startswith(b"%PDF")
    status, _, body = client.get([u for u in links if u.endswith(".xls")][0])
    assert body.startswith(bytes.fromhex("D0CF11E0A1B11AE1"))
    status, _, _ = client.get([u for u, s in links.items() if s == "not_found" and u.endswith(".pdf")][0])
    assert status == 410


def test_content_disposition_variants(client: Client) -> None:
    base = VSB + "/system/_content/download.jsp?owner=1256789&urltype=news.DownloadAttachUrl&wbfileid="
    _, h1, b1 = client.get(base + "4561")
    assert h1["Content-Disposition"].startswith("attachment; filename*=UTF-8''%E6") and b1.startswith(b"%PDF")
    _, h2, b2 = client.get(base + "4562")
    raw = h2["Content-Disposition"].encode("latin-1")
    assert "收费标准.xls".encode("gbk") in raw
    _, h3, b3 = client.get(base + "4563")
    raw = h3["Content-Disposition"].encode("latin-1")
    assert "学生学籍管理办法.docx".encode() in raw and b3.startswith(b"PK")
    # query order does not matter to the server
    reordered = (
        VSB + "/system/_content/download.jsp?urltype=news.DownloadAttachUrl&owner=1256789&wbfileid=4561"
    )
    assert client.get(reordered)[2] == b1


def test_conditional_requests(client: Client) -> None:
    for url in (WEBPLUS + "/main.htm", VSB + "/index.htm", JSP + "/index.jsp", expected_reports(1)[0]["url"]):
        status, headers, _ = client.get(url)
        assert status == 200
        etag, lm = headers["ETag"], headers["Last-Modified"]
        assert client.get(url, headers={"If-None-Match": etag})[0] == 304
        assert client.get(url, headers={"If-Modified-Since": lm})[0] == 304
        assert client.get(url, headers={"If-None-Match": '"other"'})[0] == 200
        assert client.get(url, headers={"If-Modified-Since": "Mon, 01 Jan 2001 00:00:00 GMT"})[0] == 200
    _, headers, body = client.get(WEBPLUS + "/main.htm", headers={"If-None-Match": "x"})
    assert int(headers["Content-Length"]) == len(body)


def test_gbk_jsp_site(client: Client) -> None:
    status, headers, body = client.get(JSP + "/index.jsp")
    assert status == 200 and headers["Content-Type"] == "text/html"
    text = body.decode("gbk")
    assert '<meta charset="gbk">' in text and "模拟职业技术学院" in text
    with pytest.raises(UnicodeDecodeError):
        body.decode("utf-8")
    assert ";jsessionid=ABC123?id=71" in text
    # the mislabelled page
    ((url, real),) = truth.MISLABELED_CHARSET.items()
    body = client.get(url)[2]
    assert b"charset=utf-8" in body and "模拟职业技术学院" in body.decode(real)
    # session ids are ignored by the server and dropped from truth
    assert (
        client.get(JSP + "/BigClass.jsp;jsessionid=ABC123?id=71")[2]
        == client.get(JSP + "/BigClass.jsp?id=71")[2]
    )
    assert client.get(JSP + "/ShowArticle.jsp?id=201&sid=ffff")[0] == 200
    assert JSP + "/BigClass.jsp?id=71" in expected_links(1)


def test_calendar_trap_is_unbounded(client: Client) -> None:
    url = JSP + "/calendar.jsp?month=10&year=2021"
    seen = set()
    for _ in range(30):
        status, _, body = client.get(url)
        assert status == 200
        seen.add(url)
        nxt = re.search(r'href="(calendar\.jsp\?[^"]+)">下一月', body.decode("gbk"))
        assert nxt
        url = JSP + "/" + nxt.group(1).replace("&amp;", "&")
    assert len(seen) == 30 and url.endswith("year=2024")
    assert TRAP_PREFIXES == [JSP + "/calendar.jsp"]


def test_js_only_pages(client: Client) -> None:
    pages = truth.JS_ONLY_PAGES
    assert len(pages) == 2
    links = expected_links(1)
    for page, revealed in pages.items():
        body = client.get(page)[2].decode()
        without_scripts = re.sub(r"<script.*?</script>", "", body, flags=re.S)
        for target in revealed:
            path = target.split("/", 3)[3]
            assert path not in without_scripts
            assert links[target] == "ok"
        assert "document.write" in body or "innerHTML" in body


def test_robots_and_request_log(client: Client, web: SimWeb) -> None:
    excluded = [u for u, s in expected_links(1).items() if s == "excluded"]
    assert len(excluded) >= 4
    for url in excluded:
        host_root = url.split("/", 3)
        robots = client.get(f"{host_root[0]}//{host_root[2]}/robots.txt")[2].decode()
        assert any(
            url.split(host_root[2], 1)[1].startswith(line.split(": ", 1)[1])
            for line in robots.splitlines()
            if line.startswith("Disallow: /")
        )
        assert not web.was_requested(url)
    client.get(WEBPLUS + "/2580/list.htm?utm_source=test")
    assert web.was_requested(WEBPLUS + "/2580/list.htm")
    assert (("GET", WEBPLUS + "/2580/list.htm?utm_source=test", 200)) in web.request_log


def test_throttled_pages_answer_retry_after_first() -> None:
    throttled = truth.THROTTLED
    assert {status for status, _, _ in throttled.values()} == {429, 503}
    with SimWeb(port=0, day=1, delay_scale=0.02) as web:
        client = Client(web.proxy_url)
        for url, (status, retry_after, times) in throttled.items():
            assert expected_links(1)[url] == "ok"
            for _ in range(times):
                got, headers, _ = client.get(url)
                assert got == status and headers["Retry-After"] == retry_after, url
            assert client.get(url)[0] == 200
            assert client.get(url)[0] == 200
        web.set_day(2)  # a new day throttles again
        url, (status, _, _) = next(iter(throttled.items()))
        assert client.get(url)[0] == status and client.get(url)[0] == 200
    assert truth.RATE_LIMITED and all(expected_links(1)[u] == "rate_limited" for u in truth.RATE_LIMITED)


def test_unknown_jsp_urls_answer_the_empty_frame(client: Client) -> None:
    """The JSP site's soft 404s: status 200, the site's own template, no not-found words."""
    frames = set()
    for url in [*truth.PROBE_ONLY_SOFT404, JSP + "/ShowArticle.jsp?id=987654321", JSP + "/q7x2k9.jsp"]:
        status, headers, body = client.get(url)
        assert status == 200 and headers.get_content_type() == "text/html", url
        text = body.decode("gbk")
        assert "模拟职业技术学院" in text and 'class="artcontent"' in text
        assert not re.search(r"404|不存在|找不到|未找到|not found|删除", text, re.I), url
        frames.add(body)
    assert len(frames) == 1  # one frame for every unknown URL
    assert {expected_links(d)[u] for d in (1, 2) for u in truth.PROBE_ONLY_SOFT404} == {"soft_404"}
    # real pages of the site are not that frame
    assert client.get(JSP + "/ShowArticle.jsp?id=141")[2] not in frames


def test_in_flight_per_host_and_timed_events() -> None:
    """The server counts requests in flight per origin host and times every answer."""
    import concurrent.futures

    with SimWeb(port=0, day=1, delay_scale=0.02, latency={"www.trs-univ.edu.cn": 0.3}) as web:
        client = Client(web.proxy_url)
        urls = [TRS + "/xxgk/index.html", TRS + "/xxgk/qd/index.html", TRS + "/xxgk/tzgg/index.html"]
        with concurrent.futures.ThreadPoolExecutor(3) as pool:
            assert [r[0] for r in pool.map(client.get, urls)] == [200, 200, 200]
        client.get(JSP + "/index.jsp")
        client.get(JSP + "/BigClass.jsp?id=71")
        peaks = web.peak_in_flight
        assert peaks["www.trs-univ.edu.cn"] == 3 and peaks[JSP.split("//")[1]] == 1
        events = [e for e in web.events if e.host == "www.trs-univ.edu.cn"]
        assert len(events) == 3 and all(e.finished - e.started >= 0.29 for e in events)
        assert [e.url for e in web.events][-2:] == [JSP + "/index.jsp", JSP + "/BigClass.jsp?id=71"]
        web.clear_log()
        assert web.events == [] and web.peak_in_flight == {}


def test_events_count_the_body_bytes_sent() -> None:
    """What every client really downloaded: full bodies, nothing for a 304 or a HEAD."""
    with SimWeb(port=0, day=1, delay_scale=0) as web:
        client = Client(web.proxy_url)
        url = TRS + "/xxgk/index.html"
        status, headers, body = client.get(url)
        assert status == 200 and body
        again = client.get(url, headers={"If-None-Match": headers["ETag"]})
        head = urllib.request.Request(url, method="HEAD")
        urllib.request.build_opener(urllib.request.ProxyHandler({"http": web.proxy_url})).open(head).close()
        missing = client.get(TRS + "/no/such/page.html")
        assert again[0] == 304 and missing[0] == 404
        sent = [(e.method, e.status, e.body_bytes) for e in web.events if e.url.startswith(TRS)]
        assert sent == [("GET", 200, len(body)), ("GET", 304, 0), ("HEAD", 200, 0), ("GET", 404, len(missing[2]))]


def test_a_client_that_hangs_up_is_no_longer_in_flight() -> None:
    with SimWeb(port=0, day=1, delay_scale=1.0) as web:
        host, port = "127.0.0.1", web.port
        sock = socket.create_connection((host, port))
        sock.sendall(b"GET http://slow.example-univ.edu.cn/ HTTP/1.1\r\nHost: slow.example-univ.edu.cn\r\n\r\n")
        deadline = time.monotonic() + 5
        while web.peak_in_flight.get("slow.example-univ.edu.cn") != 1 and time.monotonic() < deadline:
            time.sleep(0.01)
        sock.close()  # gives up long before the 30 s answer
        while web._in_flight["slow.example-univ.edu.cn"] and time.monotonic() < deadline:
            time.sleep(0.01)
        assert web._in_flight["slow.example-univ.edu.cn"] == 0
        assert not web.was_requested("http://slow.example-univ.edu.cn/")  # never answered


# -- reports ----------------------------------------------------------------------------


def _pdf_text(data: bytes) -> str:
    from pdfminer.high_level import extract_text

    return extract_text(io.BytesIO(data))


def _rtf_text(data: bytes) -> str:
    text = data.decode("ascii")
    text = re.sub(r"\\u(\d+)\?", lambda m: chr(int(m.group(1))), text)
    text = text.replace("\\tab ", "\t").replace("\\par", "\n")
    return re.sub(r"\\[a-z]+-?\d* ?|[{}]", "", text)


def _docx_text(data: bytes) -> str:
    import docx

    doc = docx.Document(io.BytesIO(data))
    parts = [p.text for p in doc.paragraphs]
    for table in doc.tables:
        for row in table.rows:
            parts.append("\t".join(c.text for c in row.cells))
    return "\n".join(parts)


def test_reports_are_extractable_and_match_truth(client: Client) -> None:
    reports = expected_reports(1)
    assert {r["format"] for r in reports} == {"pdf", "docx", "doc", "html"}
    assert {r["site_id"] for r in reports} == {"webplus", "vsb", "jsp", "trs"}
    for rep in reports:
        status, headers, body = client.get(rep["url"])
        assert status == 200
        if rep["format"] == "pdf":
            text = _pdf_text(body)
        elif rep["format"] == "docx":
            text = _docx_text(body)
        elif rep["format"] == "doc":
            assert body.startswith(b"{\\rtf1") and "\\u" in body.decode()
            text = _rtf_text(body)
        else:
            text = re.sub(r"<[^>]+>", "\n", body.decode())
        compact = re.sub(r"\s+", "", text)
        assert rep["title"] in compact
        y0 = int(rep["academic_year"][:4])
        assert f"统计时间为{y0}年9月1日至{y0 + 1}年8月31日" in compact
        for part, keyword in [
            (3, "依申请公开"),
            (4, "评议情况"),
            (5, "复议、诉讼的情况"),
            (8, "清单事项公开情况表"),
        ]:
            assert (keyword in compact) == (part in rep["parts_present"]) or part == 3, (rep["url"], part)
        if rep["signed_date"]:
            y, m, d = (int(x) for x in rep["signed_date"].split("-"))
            assert f"{y}年{m}月{d}日" in compact
        if rep["applications_received"] == 0:
            assert "未收到信息公开申请" in compact
        else:
            assert f"申请{rep['applications_received']}件" in compact
        urls = re.findall(r"https?://[A-Za-z0-9./_?=&%-]+", text)
        items = expected_report_items(rep["site_id"])
        listed = [u for u in urls if u in set(items.values())]
        assert listed == list(items.values()), rep["url"]
    late = {r["site_id"]: r["late"] for r in reports if r["academic_year"] == "2020-2021"}
    assert late == {"webplus": False, "vsb": True, "jsp": None}


def test_report_items_states() -> None:
    for site in ("webplus", "vsb", "jsp", "trs"):
        items = expected_report_items(site)
        assert 40 <= len(items) < 50
        states = Counter(expected_item_states(site).values())
        assert states["ok"] >= 35
        assert len(states) >= 3
    assert (
        4
        not in expected_reports(1)[[r["site_id"] for r in expected_reports(1)].index("jsp")]["parts_present"]
    )


def test_documents_are_deterministic_across_processes() -> None:
    urls = [r["url"] for r in expected_reports(2) if r["format"] != "html"]
    world = build_world(2)
    here = [hashlib.sha1(world.lookup(u).body).hexdigest() for u in urls]  # type: ignore[union-attr]
    code = (
        "import hashlib,sys;from simweb.sites import build_world;w=build_world(2);"
        f"print(' '.join(hashlib.sha1(w.lookup(u).body).hexdigest() for u in {urls!r}))"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.split() == here
    docx_bytes = world.lookup(
        urls[[r["format"] for r in expected_reports(2) if r["format"] != "html"].index("docx")]
    ).body  # type: ignore[union-attr]
    assert all(
        i.date_time == (2021, 1, 1, 0, 0, 0) for i in zipfile.ZipFile(io.BytesIO(docx_bytes)).infolist()
    )


# -- day 2 -------------------------------------------------------------------------------


def test_day_two() -> None:
    changes = truth.DAY2_CHANGES
    assert changes["changed"] and changes["broke"] and changes["fixed"] and changes["new"]
    assert changes["removed_links"]
    l1, l2 = expected_links(1), expected_links(2)
    assert len(expected_reports(2)) == len(expected_reports(1)) + 1
    with SimWeb(port=0, day=1, delay_scale=0.02) as web:
        client = Client(web.proxy_url)
        etags = {}
        unchanged = [u for u, s in l1.items() if s == "ok" and u.startswith(WEBPLUS + "/20")][:10]
        for url in changes["changed"] + unchanged:
            status, headers, _ = client.get(url)
            assert status == 200
            etags[url] = (headers["ETag"], headers["Last-Modified"])
        for url in changes["new"]:
            assert client.get(url)[0] == 404, url
        removed_from, removed_to = changes["removed_links"][0]
        assert removed_to.encode() in client.get(removed_from)[2]
        web.set_day(2)
        assert web.day == 2
        for url in changes["changed"]:
            status, headers, _ = client.get(url, headers={"If-None-Match": etags[url][0]})
            assert status == 200 and headers["ETag"] != etags[url][0], url
            assert client.get(url, headers={"If-Modified-Since": etags[url][1]})[0] == 200, url
        for url in unchanged:
            if url in changes["changed"] or url in changes["broke"] or url in changes["cosmetic"]:
                continue
            assert client.get(url, headers={"If-None-Match": etags[url][0]})[0] == 304, url
            assert client.get(url, headers={"If-Modified-Since": etags[url][1]})[0] == 304, url
        for url in changes["broke"]:
            assert l1[url] == "ok" and l2[url] in ("not_found", "server_error")
            assert client.get(url)[0] >= 400
        for url in changes["fixed"]:
            assert l1[url] == "not_found" and l2[url] == "ok"
            assert client.get(url)[0] == 200
        for url in changes["new"]:
            assert client.get(url)[0] == 200, url
        assert removed_to.encode() not in client.get(removed_from)[2]
        assert {"not_found", "server_error"} <= {l2[u] for u in changes["broke"]}


def _article_text(body: str) -> str:
    """Title and article body of a page, by each CMS's own content container."""
    from lxml import html as lxml_html

    root = lxml_html.fromstring(body)
    boxes = root.xpath('//*[contains(" wp_articlecontent v_news_content TRS_Editor artcontent ",'
                       ' concat(" ", @class, " "))]')
    assert len(boxes) == 1
    return root.findtext(".//title") + "\n" + boxes[0].text_content()


def test_day_two_cosmetic_pages_change_bytes_not_article_text() -> None:
    """A visit counter, a "今天是…" widget, a generation time: new bytes on day 2 (new ETag, so a
    crawler re-downloads rather than getting a 304), same article; not in ``changed``."""
    cosmetic = truth.DAY2_CHANGES["cosmetic"]
    assert {u.split("/")[2] for u in cosmetic} == {u[len("http://"):] for u in (WEBPLUS, VSB, JSP, TRS)}
    assert not set(cosmetic) & set(truth.DAY2_CHANGES["changed"])
    w1, w2 = build_world(1), build_world(2)
    assert set(cosmetic) == w1.cosmetic == w2.cosmetic
    l1, l2 = expected_links(1), expected_links(2)
    for url in cosmetic:
        r1, r2 = w1.resources[url], w2.resources[url]
        assert l1[url] == l2[url] == "ok" and r1.body != r2.body, url
        assert _article_text(r1.body.decode(r1.encoding)) == _article_text(r2.body.decode(r2.encoding))
    with SimWeb(port=0, day=1, delay_scale=0.02) as web:
        client = Client(web.proxy_url)
        validators = {url: client.get(url)[1] for url in cosmetic}
        web.set_day(2)
        for url, headers in validators.items():
            assert client.get(url, headers={"If-None-Match": headers["ETag"]})[0] == 200, url
            assert client.get(url, headers={"If-Modified-Since": headers["Last-Modified"]})[0] == 200, url


# -- command line -------------------------------------------------------------------------


def test_cli_starts_quickly() -> None:
    start = time.monotonic()
    proc = subprocess.Popen(
        [sys.executable, "-m", "simweb", "--port", "0", "--day", "2", "--delay-scale", "0.02"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        elapsed = time.monotonic() - start
        match = re.fullmatch(r"simweb proxy on (http://127\.0\.0\.1:(\d+))\n", line)
        assert match, line
        assert elapsed < 3.0
        status, _, body = Client(match.group(1)).get(VSB + "/xxgk/ndbg.htm")
        assert status == 200 and "2021—2022学年" in body.decode()
    finally:
        proc.terminate()
        proc.wait(timeout=5)
