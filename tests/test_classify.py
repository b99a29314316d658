"""One test per classifier rule, on fixture responses from real portal software.

Fixtures live in ``tests/fixtures/responses/`` (see its README). Near misses — pages that
mention 404, 找不到, 验证码 or 页面不存在 but are real content — must stay ``ok``: a false
"dead" costs the watchdog its credibility.
"""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import pytest

from archive import states as S
from crawler.classify import NEEDS_RENDER_RULE, RULES, SiteProbe, classify, probe_url
from crawler.fetch import Fetch
from crawler.htmlparse import list_entries, needs_render

FIXTURES = Path(__file__).parent / "fixtures" / "responses"
URL = "http://xxgk.example-univ.edu.cn/info/1021/1234.htm"
HOME = "http://xxgk.example-univ.edu.cn/index.htm"
HTML = {"content-type": b"text/html; charset=utf-8"}


def fx(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def page(body: bytes | str = b"", status: int = 200, url: str = URL, headers: dict | None = None,
         **kwargs) -> Fetch:
    if isinstance(body, str):
        body = body.encode("utf-8")
    kwargs.setdefault("final_url", url)
    kwargs.setdefault("home_urls", (HOME,))
    return Fetch(url=url, status=status, headers={**HTML, **(headers or {})}, body=body, **kwargs)


def failure(error_type: str, error: str = "", **kwargs) -> Fetch:
    return Fetch(url=URL, error_type=error_type, error=error, home_urls=(HOME,), **kwargs)


def check(fetch: Fetch, state: str, rule: str | None = None, **kwargs):
    verdict = classify(fetch, **kwargs)
    assert verdict.state == state, verdict
    assert verdict.state in S.STATES
    if rule is not None:
        assert verdict.rule == rule, verdict
    return verdict


def test_rules_are_named_functions_in_order():
    names = [rule.__name__ for rule in RULES]
    assert len(names) == len(set(names))
    assert names[-1] == "final_ok"
    assert names.index("http_gone") < names.index("challenge_jsl") < names.index("http_status")
    assert names.index("soft404_text") < names.index("render_needed") < names.index("soft404_probe")


# --------------------------------------------------------------------------- network failures

@pytest.mark.parametrize(
    ("error_type", "error", "state", "rule"),
    [
        ("IgnoreRequest", "Forbidden by robots.txt", S.EXCLUDED, "net-robots"),
        ("IgnoreRequest", "max redirections reached", S.REDIRECT_LOOP, "net-redirect-limit"),
        ("IgnoreRequest", "redirect loop: http://a/1 -> http://a/2 -> http://a/1", S.REDIRECT_LOOP,
         "net-redirect-limit"),
        ("IgnoreRequest", "Filtered offsite request", S.EXCLUDED, "net-ignored"),
        ("DownloadCancelledError",
         "Received 70000000 bytes which is larger than download max size (67108864) in request <GET http://x/a.pdf>.",
         S.EXCLUDED, "net-oversize"),
        ("UnsupportedURLSchemeError", "Unsupported URL scheme 'ftp': no handler available", S.EXCLUDED,
         "net-unsupported"),
        ("TimeoutError", "User timeout caused connection failure: Getting http://x/ took longer than 180.0 seconds..",
         S.TIMEOUT, "net-timeout"),
        ("TCPTimedOutError", "TCP connection timed out: 110: Connection timed out.", S.TIMEOUT, "net-timeout"),
        ("DownloadTimeoutError", "Getting https://x.edu.cn/ssl/a.htm took longer than 30.0 seconds.", S.TIMEOUT,
         "net-timeout"),
        ("DNSLookupError", "DNS lookup failed: no results for hostname lookup: xxgk.gone.edu.cn.", S.DNS_ERROR,
         "net-dns"),
        ("CannotResolveHostError", "DNS lookup failed: no results for hostname lookup: x.", S.DNS_ERROR, "net-dns"),
        ("ConnectionRefusedError", "Connection was refused by other side: 111: Connection refused.",
         S.CONNECTION_ERROR, "net-connection"),
        ("DownloadConnectionRefusedError", "Connection was refused by other side: 111: Connection refused.",
         S.CONNECTION_ERROR, "net-connection"),
        ("ConnectionLost", "Connection to the other side was lost in a non-clean fashion.", S.CONNECTION_ERROR,
         "net-connection"),
        ("ConnectionDone", "Connection was closed cleanly.", S.CONNECTION_ERROR, "net-connection"),
        ("ResponseNeverReceived",
         "[<twisted.python.failure.Failure twisted.internet.error.ConnectionLost: Connection to the other side "
         "was lost in a non-clean fashion: Connection lost.>]", S.CONNECTION_ERROR, "net-connection"),
        ("ResponseNeverReceived",
         "[<twisted.python.failure.Failure OpenSSL.SSL.Error: [('SSL routines', '', 'unsafe legacy renegotiation "
         "disabled')]>]", S.TLS_ERROR, "net-tls"),
        ("DownloadFailedError",
         "[<twisted.python.failure.Failure OpenSSL.SSL.Error: [('SSL routines', '', 'certificate verify failed')]>]",
         S.TLS_ERROR, "net-tls"),
        ("SSLError", "[SSL: WRONG_VERSION_NUMBER] wrong version number (_ssl.c:1000)", S.TLS_ERROR, "net-tls"),
        ("BadStatusLine", "b'\\x15\\x03\\x01\\x00\\x02\\x02'", S.SERVER_ERROR, "net-protocol"),
        ("TunnelError", "Could not open CONNECT tunnel with proxy 127.0.0.1:3128 [{'status': 503, 'reason': "
         "'Service Unavailable'}]", S.CONNECTION_ERROR, "net-proxy-tunnel"),
        ("TunnelError", "Could not open CONNECT tunnel with proxy 127.0.0.1:3128 [{'status': 407, 'reason': "
         "'Proxy Authentication Required'}]", S.BLOCKED, "net-proxy-tunnel"),
        ("SomethingNew", "a failure nobody has seen", S.CONNECTION_ERROR, "net-error"),
    ],
)
def test_network_failures(error_type, error, state, rule):
    check(failure(error_type, error), state, rule)


@pytest.mark.parametrize(
    ("error_type", "error", "expect"),
    [
        # Content-Length announced a body over the cap: the download never starts.
        ("DownloadCancelledError", "Expected to receive 999999999 bytes which is larger than download max "
         "size (2000000) in request <GET http://x/a.pdf>.", "attachment"),
        # No Content-Length: the HTTP/1.1 handler cancels mid-body, with no message at all.
        ("DownloadCancelledError", "", "page"),
        ("DownloadCancelledError", "", "attachment"),
        # A decompression bomb: HttpCompressionMiddleware stops inflating at the cap.
        ("IgnoreRequest", "Ignored response <200 http://x/a.htm> because its body (194421 B compressed, "
         "2031616 B decompressed so far) exceeded DOWNLOAD_MAXSIZE (2000000 B) during decompression.", "page"),
    ],
)
def test_bodies_over_the_size_cap_are_excluded_however_they_end(error_type, error, expect):
    """Same state and rule with or without Content-Length, and for bombs: we declined."""
    verdict = check(failure(error_type, error, expect=expect), S.EXCLUDED, "net-oversize")
    assert "DOWNLOAD_MAXSIZE" in verdict.detail or "max size" in verdict.detail


def test_a_cancelled_render_is_not_an_oversize_body():
    # asyncio's CancelledError (a browser render cut short) says nothing about the size.
    assert classify(failure("CancelledError", "")).rule != "net-oversize"


@pytest.mark.parametrize(
    ("error_type", "error"),
    [
        ("error", "Error -3 while decompressing data: invalid code lengths set"),  # zlib: gzip that is not
        ("error", "Error -3 while decompressing data: incorrect header check"),     # deflate that is not
        ("error", "brotli: decoder failed"),                                       # brotli.error
        ("BadGzipFile", "Not a gzipped file (b'<h')"),
        ("ZstdError", "Unknown frame descriptor"),
        ("DecodingError", "Error -3 while decompressing data: invalid stored block lengths"),  # httpx
        ("ClientPayloadError", "400, message: Can not decode content-encoding: gzip"),         # aiohttp
    ],
)
def test_a_body_that_contradicts_its_content_encoding_is_a_server_error(error_type, error):
    for expect in ("page", "attachment"):
        verdict = check(failure(error_type, error, expect=expect), S.SERVER_ERROR, "net-bad-encoding")
        assert "Content-Encoding" in verdict.detail


def test_generic_errors_without_decoder_words_stay_connection_errors():
    check(failure("error", "[Errno 104] Connection reset by peer"), S.CONNECTION_ERROR, "net-connection")
    check(failure("OSError", "something odd"), S.CONNECTION_ERROR, "net-error")


def test_no_status_and_no_error_is_a_connection_error():
    check(Fetch(url=URL), S.CONNECTION_ERROR, "no-response")


def test_data_loss_on_an_attachment_is_a_truncated_file():
    fetch = failure("ResponseDataLossError", "", expect="attachment")
    check(fetch, S.TYPE_MISMATCH, "attach-truncated")
    check(failure("ResponseDataLossError", ""), S.CONNECTION_ERROR, "net-connection")


def test_http_error_with_a_status_is_judged_by_the_status():
    fetch = page(b"<h1>404 Not Found</h1>", status=404, error_type="HttpError", error="Ignoring non-200 response")
    check(fetch, S.NOT_FOUND, "http-404")


# --------------------------------------------------------------------------- proxy verdicts

@pytest.mark.parametrize(
    ("header", "state"),
    [
        (b"ERR_DNS_FAIL 0", S.DNS_ERROR),
        (b"ERR_CONNECT_FAIL 111", S.CONNECTION_ERROR),
        (b"ERR_CONNECT_FAIL 110", S.TIMEOUT),
        (b"ERR_READ_TIMEOUT 0", S.TIMEOUT),
        (b"ERR_LIFETIME_EXP 0", S.TIMEOUT),
        (b"ERR_SECURE_CONNECT_FAIL 71", S.TLS_ERROR),
        (b"ERR_ZERO_SIZE_OBJECT 0", S.CONNECTION_ERROR),
        (b"ERR_ACCESS_DENIED 0", S.BLOCKED),
    ],
)
def test_squid_header_is_the_proxys_verdict(header, state):
    fetch = page(fx("squid_dns_fail.html"), status=503, headers={"x-squid-error": header}, via_proxy=True)
    check(fetch, state, "proxy-squid")


def test_squid_header_without_a_proxy_is_the_origins_5xx():
    """A Squid *reverse* proxy in front of the site: its failure is the site's failure."""
    fetch = page(fx("squid_dns_fail.html"), status=503, headers={"x-squid-error": b"ERR_DNS_FAIL 0"})
    check(fetch, S.SERVER_ERROR, "http-503")


@pytest.mark.parametrize(
    ("fixture", "status", "state"),
    [
        ("squid_dns_fail.html", 503, S.DNS_ERROR),
        ("squid_connect_fail.html", 502, S.CONNECTION_ERROR),
        ("privoxy_no_such_domain.html", 404, S.DNS_ERROR),
    ],
)
def test_proxy_error_pages_without_header(fixture, status, state):
    check(page(fx(fixture), status=status, via_proxy=True), state, "proxy-page")


def test_tinyproxy_page():
    body = ("<html><head><title>500 Unable to connect</title></head><body><h1>Unable to connect</h1>"
            "<p>Tinyproxy was unable to connect to the remote web server.</p><hr />"
            "<p><em>Generated by tinyproxy version 1.11.1.</em></p></body></html>")
    check(page(body, status=500, via_proxy=True), S.CONNECTION_ERROR, "proxy-page")


def test_bare_nginx_502_through_a_proxy_stays_server_error():
    body = "<html><head><title>502 Bad Gateway</title></head><body><center><h1>502 Bad Gateway</h1></center><hr><center>nginx</center></body></html>"
    check(page(body, status=502, via_proxy=True), S.SERVER_ERROR, "http-502")


# --------------------------------------------------------------------------- HTTP statuses

@pytest.mark.parametrize("status", [404, 410])
def test_404_and_410_are_not_found(status):
    check(page(b"<h1>Not Found</h1>", status=status), S.NOT_FOUND, f"http-{status}")


def test_404_branded_by_a_waf_is_still_not_found():
    check(page(fx("safedog_block.html"), status=404), S.NOT_FOUND, "http-404")


@pytest.mark.parametrize(
    ("status", "state", "rule"),
    [
        (429, S.RATE_LIMITED, "http-429"),
        (408, S.TIMEOUT, "http-408"),
        (400, S.NOT_FOUND, "http-400"),
        (414, S.NOT_FOUND, "http-414"),
        (451, S.NOT_FOUND, "http-451"),
        (401, S.BLOCKED, "http-401"),
        (403, S.BLOCKED, "http-403"),
        (412, S.BLOCKED, "http-412"),
        (500, S.SERVER_ERROR, "http-500"),
        (502, S.SERVER_ERROR, "http-502"),
        (503, S.SERVER_ERROR, "http-503"),
        (304, S.OK, "http-304"),
        (302, S.SERVER_ERROR, "http-3xx-unfollowed"),
    ],
)
def test_status_codes(status, state, rule):
    check(page(b"<html><body><h1>Error</h1></body></html>", status=status), state, rule)


def test_plain_403_is_blocked_not_dead():
    body = "<html><head><title>403 Forbidden</title></head><body><center><h1>403 Forbidden</h1></center><hr><center>nginx</center></body></html>"
    verdict = check(page(body, status=403), S.BLOCKED, "http-403")
    assert verdict.state in S.INCONCLUSIVE_STATES


def test_3xx_pointing_back_is_a_loop():
    fetch = page(b"", status=302, headers={"location": URL.encode()})
    check(fetch, S.REDIRECT_LOOP, "http-3xx-loop")


def test_head_answers_are_not_trusted():
    check(page(b"", status=405, method="HEAD"), S.BLOCKED, "head-unsupported")
    check(page(b"", status=200, method="HEAD"), S.OK, "ok")


def test_cloudflare_521_origin_down_is_a_server_error():
    check(page(fx("cloudflare_521.html"), status=521), S.SERVER_ERROR, "http-521")


# --------------------------------------------------------------------------- challenges

def test_jsl_521_cookie_script():
    fetch = page(fx("jsl_521.html"), status=521, headers={"set-cookie": b"__jsluid_s=7b9e2c; max-age=31536000; path=/"})
    check(fetch, S.BLOCKED, "challenge-jsl")


def test_jsl_521_cookie_alone():
    check(page(b"<script>eval(x)</script>", status=521, headers={"set-cookie": b"__jsluid_h=1"}),
          S.BLOCKED, "challenge-jsl")


def test_jsl_cookie_on_a_normal_page_is_not_a_challenge():
    fetch = page(fx("webplus_article.html"), headers={"set-cookie": b"__jsluid_s=7b9e2c; path=/"})
    check(fetch, S.OK, "ok")


@pytest.mark.parametrize("status", [412, 202, 200])
def test_ruishu(status):
    check(page(fx("ruishu_412.html"), status=status), S.BLOCKED, "challenge-ruishu")


def test_cloudflare_challenge():
    check(page(fx("cloudflare_challenge.html"), status=403), S.BLOCKED, "challenge-cloudflare")
    check(page(b"", status=403, headers={"cf-mitigated": b"challenge"}), S.BLOCKED, "challenge-cloudflare")


@pytest.mark.parametrize("status", [200, 403])
def test_safedog_block_page(status):
    check(page(fx("safedog_block.html"), status=status), S.BLOCKED, "waf-safedog")


@pytest.mark.parametrize(
    ("body", "vendor"),
    [
        ("<html><head><title>访问被拦截</title></head><body><div class='yunsuologo'></div><p>您的访问被云锁拦截</p></body></html>",
         "yunsuo"),
        ("<html><head><title>创宇盾</title></head><body><p>当前访问疑似黑客攻击，已被创宇盾拦截。</p></body></html>", "knownsec"),
        ("<html><body><p>很抱歉，由于您访问的URL有可能对网站造成安全威胁，您的访问被阻断。</p>"
         "<a href='https://errors.aliyun.com/'>errors.aliyun.com</a></body></html>", "aliyun"),
        ("<html><head><title>宝塔网站防火墙</title></head><body><h1>您的请求带有不合法参数</h1></body></html>", "safedog"),
        ("<html><body>The requested URL was rejected. Please consult with your administrator.<br>"
         "Your support ID is: 1234567890</body></html>", "f5"),
    ],
)
def test_waf_vendor_pages(body, vendor):
    check(page(body, status=403), S.BLOCKED, f"waf-{vendor}")


def test_waf_header_on_an_error_status():
    check(page(b"<html><body>denied</body></html>", status=405, headers={"x-powered-by-360wzb": b"wangzhan.360.cn"}),
          S.BLOCKED, "waf-header")


def test_cookie_reload_script_on_200():
    check(page(fx("cookie_reload_200.html")), S.BLOCKED, "challenge-cookie-script")


def test_cookie_then_plain_redirect_on_200_is_not_a_challenge():
    body = "<html><body><script>document.cookie='lang=zh';window.location.href='/xxgk/index.htm';</script></body></html>"
    check(page(body), S.OK, NEEDS_RENDER_RULE)


@pytest.mark.parametrize("status", [403, 200])
def test_captcha_page(status):
    check(page(fx("captcha_403.html"), status=status), S.BLOCKED, "challenge-captcha")


def test_apply_form_with_a_captcha_field_is_ok():
    """依申请公开 pages carry a captcha field: they are content, not a challenge."""
    check(page(fx("apply_form_with_captcha.html")), S.OK, "ok")


def test_rate_limit_text():
    body = "<html><head><title>提示</title></head><body><p>您的访问过于频繁，请稍后再试。</p></body></html>"
    check(page(body, status=403), S.RATE_LIMITED, "rate-limit-text")


def test_challenge_words_in_a_500_page_stay_a_server_error():
    body = "<html><body><h1>HTTP Status 500</h1><pre>com.example.CaptchaServlet: 验证码 generation failed</pre></body></html>"
    check(page(body, status=500), S.SERVER_ERROR, "http-500")


# --------------------------------------------------------------------------- login walls

def test_redirect_to_cas_login_is_blocked():
    fetch = page(b"<html><body><form><input type=password></form></body></html>",
                 final_url="https://authserver.example-univ.edu.cn/authserver/login?service=" + URL,
                 redirect_chain=[URL])
    check(fetch, S.BLOCKED, "login-wall")


def test_small_login_form_is_blocked():
    body = "<html><head><title>统一身份认证 - 登录</title></head><body><form><input name=u><input type=password name=p></form></body></html>"
    check(page(body), S.BLOCKED, "login-wall")


# --------------------------------------------------------------------------- attachments

PDF = b"%PDF-1.5\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<< /Type /Catalog >>\nendobj\ntrailer\n<< /Root 1 0 R >>\n%%EOF\n"
OLE = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 504


def _docx() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        zf.writestr("[Content_Types].xml", "<Types/>")
        zf.writestr("word/document.xml", "<w:document/>")
    return buffer.getvalue()


def attachment(body: bytes, url: str = "http://xxgk.example-univ.edu.cn/_upload/article/files/a/b/report.pdf",
               headers: dict | None = None, **kwargs) -> Fetch:
    base = {"content-type": b"application/octet-stream", "content-length": str(len(body)).encode()}
    return page(body, url=url, headers={**base, **(headers or {})}, expect="attachment", **kwargs)


def test_pdf_served_as_octet_stream_is_ok():
    check(attachment(PDF), S.OK, "ok")


def test_office_formats_accept_each_other():
    check(attachment(_docx(), url="http://x.edu.cn/files/a.docx"), S.OK)
    check(attachment(OLE, url="http://x.edu.cn/files/a.doc"), S.OK)
    check(attachment(_docx(), url="http://x.edu.cn/files/a.doc"), S.OK)  # Word opens it
    check(attachment(b"{\\rtf1\\ansi hello}", url="http://x.edu.cn/files/a.doc"), S.OK)
    check(attachment(OLE, url="http://x.edu.cn/files/a.wps"), S.OK)


def test_zero_byte_attachment():
    check(attachment(b""), S.TYPE_MISMATCH, "attach-zero-byte")


def test_truncated_attachment():
    fetch = attachment(PDF[:40], headers={"content-length": str(len(PDF)).encode()})
    check(fetch, S.TYPE_MISMATCH, "attach-truncated")


def test_truncated_attachment_without_content_length():
    """A body re-served from the archive after a 304 has no Content-Length to compare."""
    fetch = attachment(PDF[:40])
    del fetch.headers["content-length"]
    check(fetch, S.TYPE_MISMATCH, "attach-truncated")
    docx = _docx()
    check(attachment(docx[: len(docx) // 2], url="http://x.edu.cn/files/a.docx"), S.TYPE_MISMATCH, "attach-truncated")


def test_compressed_attachment_length_is_not_compared():
    fetch = attachment(PDF, headers={"content-length": b"30", "content-encoding": b"gzip"})
    fetch.headers["content-length"] = str(len(PDF) * 5).encode()
    check(fetch, S.OK, "ok")


def test_html_instead_of_pdf():
    verdict = check(attachment(fx("file_not_found_for_pdf.html"), headers=HTML), S.TYPE_MISMATCH, "attach-html")
    assert ".pdf" in verdict.detail


def test_wrong_magic_bytes():
    check(attachment(OLE), S.TYPE_MISMATCH, "attach-magic")
    check(attachment(PDF, url="http://x.edu.cn/files/a.xlsx"), S.TYPE_MISMATCH, "attach-magic")
    check(attachment(b"\x89PNG\r\n\x1a\n" + b"\x00" * 100, url="http://x.edu.cn/files/a.zip"),
          S.TYPE_MISMATCH, "attach-magic")


def test_word_html_document_is_ok():
    check(attachment(fx("word_html.doc"), url="http://x.edu.cn/files/ndbg.doc", headers={"content-type": b"application/msword"}),
          S.OK, "ok")


def test_content_disposition_name_counts():
    headers = {"content-disposition": b"attachment; filename*=UTF-8''%E6%8A%A5%E5%91%8A.pdf"}
    url = "http://x.edu.cn/system/_content/download.jsp?urltype=news.DownloadAttachUrl&owner=1&wbfileid=2"
    check(attachment(PDF, url=url, headers=headers), S.OK)
    check(attachment(OLE, url=url, headers=headers), S.TYPE_MISMATCH, "attach-magic")


def test_download_script_answering_a_script_page_needs_render():
    body = b"<html><body><script>window.location.href='/_upload/files/a.pdf';</script></body></html>"
    url = "http://x.edu.cn/download.jsp?id=12"
    check(attachment(body, url=url, headers=HTML), S.OK, NEEDS_RENDER_RULE)


# --------------------------------------------------------------------------- soft 404s

@pytest.mark.parametrize(
    ("fixture", "rule"),
    [
        ("webplus_404.html", "soft404-message"),
        ("vsb_error.html", "soft404-message"),
        ("jsp_param_error_gbk.html", "soft404-alert"),
        ("jsp_param_error_table_gbk.html", "soft404-message"),
        ("trs_404.html", "soft404-title"),
    ],
)
def test_portal_soft_404_templates(fixture, rule):
    headers = {"content-type": b"text/html"} if "gbk" in fixture else None
    check(page(fx(fixture), headers=headers), S.SOFT_404, rule)


@pytest.mark.parametrize(
    "title",
    ["404 Not Found", "页面不存在 - 某某大学", "HTTP Status 404 – Not Found", "信息不存在", "404"],
)
def test_soft_404_titles(title):
    check(page(f"<html><head><title>{title}</title></head><body><p>x</p></body></html>"), S.SOFT_404, "soft404-title")


@pytest.mark.parametrize(
    "message",
    ["抱歉，找不到该页面！", "页面未找到", "对不起，您访问的文章不存在", "该信息已删除", "栏目不存在",
     "页面不存在或已被删除", "The page you requested could not be found.", "Page Not Found",
     # CMS wordings a review found caught only by the site probe (which says nothing
     # about content.jsp?id= pages): withdrawn, unknown id, never published
     "该信息已下架", "对不起，无此信息！", "信息ID不存在", "该信息未发布或已过期"],
)
def test_soft_404_messages(message):
    body = f"<html><head><title>某某大学信息公开网</title></head><body><div class='nav'><a href='/'>首页</a></div><div class='msg'><p>{message}</p></div></body></html>"
    check(page(body), S.SOFT_404, "soft404-message")


@pytest.mark.parametrize("title, text", [
    ("XX大学采购项目终止公告", "原公告已撤销。"),
    ("关于网站改版的通知", "旧版网页已关闭。"),
    ("关于撤销部分信息公开栏目的说明", "原“招生考试”栏目已撤销。"),
    ("关于信息公开网维护的通知", "部分链接页面不存在，正在修复。"),
])
def test_a_short_notice_with_its_own_title_is_not_a_soft_404(title, text):
    """Disclosure notices are short and speak of things withdrawn (撤销, 关闭, 不存在): a
    notice whose heading is its title is a page, not a not-found message (found by a review:
    a procurement termination notice was recorded soft_404)."""
    body = (f"<html><head><title>{title}</title></head><body><div class='nav'><a href='/'>首页</a></div>"
            f"<h1>{title}</h1><p>{text}</p><p>XX大学</p><p>2024年5月1日</p></body></html>")
    check(page(body), S.OK)
    # A column's name over a not-found message is still a soft 404, as is a short notice title.
    for heading in ("通知公告", "关于XX的通知"):
        still = body.replace(f"<h1>{title}</h1>", f"<h1>{heading}</h1>").replace(text, "您访问的页面不存在！")
        check(page(still.replace(f"<title>{title}</title>", f"<title>{heading}</title>")), S.SOFT_404,
              "soft404-message")


@pytest.mark.parametrize(
    "fixture",
    ["news_404_optimization.html", "article_find_job.html", "article_quoting_phrase.html", "webplus_article.html"],
)
def test_near_misses_stay_ok(fixture):
    check(page(fx(fixture)), S.OK, "ok")


def test_short_notice_with_a_not_found_sentence_stays_ok():
    body = ("<html><head><title>关于学校网站404错误页面优化工作的说明</title></head><body>"
            "<h1>关于学校网站404错误页面优化工作的说明</h1>"
            "<p>近期学校对信息公开网进行了改版，为改善访问体验，对404错误页面进行了优化：当用户访问的页面不存在时，"
            "系统将给出明确提示并引导返回首页。</p><p>本次优化后，旧栏目地址将自动跳转到新栏目，欢迎师生提出意见建议。</p>"
            "</body></html>")
    check(page(body), S.OK, "ok")


def test_title_quoting_the_phrase_is_not_a_title_match():
    body = "<html><head><title>关于“页面不存在”问题的整改说明</title></head><body><p>" + "整改内容。" * 200 + "</p></body></html>"
    check(page(body), S.OK, "ok")


def test_deep_link_redirected_home():
    fetch = page(fx("webplus_article.html"), final_url=HOME, redirect_chain=[URL])
    check(fetch, S.SOFT_404, "soft404-home-redirect")
    fetch = page(fx("webplus_article.html"), final_url="http://xxgk.example-univ.edu.cn/", redirect_chain=[URL])
    check(fetch, S.SOFT_404, "soft404-home-redirect")


def test_home_redirects_that_are_fine():
    # the home page itself, http -> https
    check(page(b"<p>home</p>", url="http://xxgk.example-univ.edu.cn/", final_url="https://xxgk.example-univ.edu.cn/index.htm",
               redirect_chain=["http://xxgk.example-univ.edu.cn/"], is_home_page=True), S.REDIRECTED)
    # an old entry page moved to the new portal home
    old = "http://xxgk.example-univ.edu.cn/old/xxgk.htm"
    check(page(fx("webplus_article.html"), url=old, final_url=HOME, redirect_chain=[old]), S.REDIRECTED, "redirected")
    # a section that became its own site
    section = "http://www.example-univ.edu.cn/xxgk/"
    check(page(fx("webplus_article.html"), url=section, final_url="http://xxgk.example-univ.edu.cn/",
               redirect_chain=[section]), S.REDIRECTED, "redirected")


def test_redirect_link_to_another_sites_home_is_not_soft_404():
    """WebPlus "外部链接" entries (/_redirect?...) answer 302 to 学校主页 or 教育部: that
    site's own home page, as ok as a direct link to it; a deep link sent to the portal's
    home page stays a soft 404 (deleted article), as does an off-site page sent home."""
    link = "http://xxgk.example-univ.edu.cn/_redirect?siteId=43&columnId=2001&articleId=1"
    for root in ("http://www.example-univ.edu.cn/", "http://www.moe.gov.cn/", "https://www.moe.gov.cn/index.html"):
        verdict = check(page(fx("webplus_article.html"), url=link, final_url=root, redirect_chain=[link]),
                        S.REDIRECTED, "redirected")
        assert verdict.rule != "soft404-home-redirect"
    check(page(fx("webplus_article.html"), url=link, final_url=HOME, redirect_chain=[link]),
          S.SOFT_404, "soft404-home-redirect")
    # a page on another host of the site (allowed domain) sent to the portal's home page
    other = "http://www.example-univ.edu.cn/info/1021/1234.htm"
    check(page(fx("webplus_article.html"), url=other, final_url=HOME, redirect_chain=[other]),
          S.SOFT_404, "soft404-home-redirect")
    # an off-site article whose own site sends it home
    moe = "http://www.moe.gov.cn/srcsite/A08/s7052/201004/t20100406_171904.html"
    check(page(fx("webplus_article.html"), url=moe, final_url="http://moe.gov.cn/", redirect_chain=[moe],
               expect="external"), S.SOFT_404, "soft404-home-redirect")


def test_redirect_to_error_page():
    fetch = page(b"<html><body><img src=/404.png></body></html>",
                 final_url="http://xxgk.example-univ.edu.cn/404.html", redirect_chain=[URL])
    check(fetch, S.SOFT_404, "soft404-error-redirect")
    fetch = page(b"<html><body>x</body></html>",
                 final_url="http://x.edu.cn/Error.aspx?aspxerrorpath=/a.aspx", redirect_chain=[URL])
    check(fetch, S.SOFT_404, "soft404-error-redirect")


def test_blank_page():
    check(page(b""), S.SOFT_404, "soft404-blank")
    check(page(b"<html><head><title></title></head><body>  </body></html>"), S.SOFT_404, "soft404-blank")
    # a frameset or a scanned notice (image only) is not blank
    check(page(b"<html><frameset><frame src='/main.htm'></frameset></html>"), S.OK)
    check(page(b"<html><body><img src='/notice.jpg'></body></html>"), S.OK)


def test_probe_match_is_soft_404():
    template = fx("template_unknown_url.html").decode("utf-8")
    probe_at = probe_url(URL, "seed")
    probe = SiteProbe.from_fetch(page(template.replace("{path}", probe_at[30:]), url=probe_at))
    assert probe.answers_200
    dead = "http://xxgk.example-univ.edu.cn/info/1021/999.htm"
    check(page(template.replace("{path}", "info/1021/999.htm"), url=dead), S.SOFT_404, "soft404-probe", probe=probe)
    # a real page in the same template is not the not-found answer
    check(page(fx("template_real_short.html"), url=dead), S.OK, "ok", probe=probe)
    # nor is the home page
    check(page(template.replace("{path}", ""), url=HOME, is_home_page=True), S.OK, probe=probe)


def test_probe_same_redirect_target():
    probe_at = probe_url(URL, "s")
    probe = SiteProbe.from_fetch(page(fx("webplus_article.html"), url=probe_at, final_url="http://xxgk.example-univ.edu.cn/xxgk/tips.htm",
                                      redirect_chain=[probe_at]))
    fetch = page(fx("webplus_article.html"), final_url="http://xxgk.example-univ.edu.cn/xxgk/tips.htm", redirect_chain=[URL])
    check(fetch, S.SOFT_404, "soft404-probe", probe=probe)


def test_probe_from_a_404_site_never_matches():
    probe = SiteProbe.from_fetch(page(b"<h1>404 Not Found</h1>", status=404, url=probe_url(URL, "s")))
    assert not probe.answers_200
    check(page(fx("template_real_short.html")), S.OK, "ok", probe=probe)


# --------------------------------------------------------------------------- render hints

@pytest.mark.parametrize(
    ("fixture", "reason"),
    [("script_redirect.html", "script-redirect"), ("spa_shell.html", "script-only-body"),
     ("webplus_list_js.html", "scripted-list")],
)
def test_needs_render(fixture, reason):
    html = fx(fixture).decode("utf-8")
    assert needs_render(html, URL) == reason
    verdict = check(page(html, url="http://xxgk.example-univ.edu.cn/2580/list.htm"), S.OK, NEEDS_RENDER_RULE)
    assert verdict.detail == reason


def test_rendered_fetch_is_judged_on_its_own():
    """After rendering, an empty scripted list is empty (the browser ran the script)."""
    fetch = page(fx("webplus_list_js.html"), url="http://xxgk.example-univ.edu.cn/2580/list.htm", expect="list")
    check(fetch, S.EMPTY, "empty-list", rendered=True)


def test_plain_pages_need_no_render():
    for name in ("webplus_article.html", "webplus_list.html", "vsb_list.html", "apply_form_with_captcha.html"):
        assert needs_render(fx(name).decode("utf-8"), URL) is None, name


# --------------------------------------------------------------------------- empty lists

WP_LIST = "http://xxgk.example-univ.edu.cn/2580/list.htm"


def test_webplus_list_entries_and_empty():
    html = fx("webplus_list.html").decode("utf-8")
    entries = list_entries(html, WP_LIST)
    assert len(entries) == 3  # the side window (portletmode="simpleNews") is not the list
    assert entries[0] == ("http://xxgk.example-univ.edu.cn/2021/0601/c2580a123401/page.htm",
                          "关于公布2021年第1批信息公开事项的通知")
    check(page(html, url=WP_LIST), S.OK, "ok")
    check(page(fx("webplus_list_empty.html"), url=WP_LIST), S.EMPTY, "empty-list")


def test_vsb_list_entries_and_empty():
    url = "http://xxgk.example-univ.edu.cn/xxgk/zsxx.htm"
    entries = list_entries(fx("vsb_list.html").decode("utf-8"), url)
    assert [href for href, _ in entries] == [
        "http://xxgk.example-univ.edu.cn/info/1021/3320.htm", "http://xxgk.example-univ.edu.cn/info/1021/3321.htm"]
    check(page(fx("vsb_list.html"), url=url), S.OK, "ok")
    # the URL does not say "list": recognised by content (empty container, no text of its own)
    check(page(fx("vsb_list_empty.html"), url=url), S.EMPTY, "empty-list-content")
    check(page(fx("vsb_list_empty.html"), url=url, expect="list"), S.EMPTY, "empty-list")


def test_jsp_bigclass_gbk():
    url = "http://info.example-college.edu.cn/BigClass.jsp?id=73"
    headers = {"content-type": b"text/html"}
    assert len(list_entries(fx("jsp_bigclass_gbk.html").decode("gbk"), url)) == 2
    check(page(fx("jsp_bigclass_gbk.html"), url=url, headers=headers), S.OK, "ok")
    check(page(fx("jsp_bigclass_empty_gbk.html"), url=url, headers=headers), S.EMPTY, "empty-list")


def test_article_pages_are_never_empty():
    check(page(fx("webplus_article.html"), expect="list"), S.OK, "ok")
    assert list_entries(fx("webplus_article.html").decode("utf-8"), URL) is None


def test_home_page_is_not_checked_for_emptiness_by_content():
    check(page(fx("vsb_list_empty.html"), url=HOME, is_home_page=True), S.OK, "ok")


# --------------------------------------------------------------------------- ok / redirected

def test_ok_and_redirected():
    check(page(fx("webplus_article.html")), S.OK, "ok")
    moved = "http://xxgk.example-univ.edu.cn/info/1021/1235.htm"
    check(page(fx("webplus_article.html"), final_url=moved, redirect_chain=[URL]), S.REDIRECTED, "redirected")


def test_non_html_page_body_is_ok():
    check(page(PDF, headers={"content-type": b"application/pdf"}), S.OK, "ok")


def test_every_verdict_is_in_the_vocabulary():
    for name in sorted(p.name for p in FIXTURES.iterdir()):
        for status in (200, 403, 404, 412, 503):
            verdict = classify(page(fx(name), status=status))
            assert verdict.state in S.STATES
            assert verdict.rule


# --------------------------------------------------------------------------- more near misses

def test_list_entries_quoting_the_phrase_stay_ok():
    items = "".join(
        f"<li><h3><a href='/info/1021/{n}.htm'>关于“页面不存在”问题的第{n}次整改说明</a></h3><span>2022-03-{n:02d}</span></li>"
        for n in range(1, 6)
    )
    body = f"<html><head><title>通知公告</title></head><body><ul class='news_list'>{items}</ul></body></html>"
    check(page(body, url="http://xxgk.example-univ.edu.cn/2580/list.htm"), S.OK, "ok")


def test_alert_in_a_script_function_of_a_normal_page_stays_ok():
    html = fx("webplus_list.html").decode("utf-8").replace(
        "</body>", "<script>function dl(id){ if(!id){ alert('文件不存在！'); return false; } }</script></body>")
    check(page(html, url="http://xxgk.example-univ.edu.cn/2580/list.htm"), S.OK, "ok")


def test_migration_notice_title_stays_ok():
    body = ("<html><head><title>关于启用新版信息公开网的通知——旧版页面已下线</title></head><body>"
            "<h1>关于启用新版信息公开网的通知——旧版页面已下线</h1>"
            "<p>为进一步做好信息公开工作，学校新版信息公开网已于2022年9月1日正式上线运行，旧版信息公开网同时停止更新，"
            "原有栏目内容已全部迁移至新版网站，请广大师生通过新版网站查阅学校公开信息，如有疑问请与学校办公室联系。</p>"
            "</body></html>")
    check(page(body), S.OK, "ok")


def test_small_notice_naming_a_waf_product_stays_ok():
    body = ("<html><head><title>关于部署云锁服务器安全防护系统的通知</title></head><body>"
            "<h1>关于部署云锁服务器安全防护系统的通知</h1><p>网络中心将于本周末部署云锁，届时网站短暂停止服务。</p>"
            "</body></html>")
    check(page(body), S.OK, "ok")


def test_relative_location_is_not_a_loop():
    fetch = page(b"", status=302, url="http://xxgk.example-univ.edu.cn/a/", headers={"location": b"/"})
    check(fetch, S.SERVER_ERROR, "http-3xx-unfollowed")


def test_short_notice_with_a_gone_heading_stays_ok():
    body = ("<html><head><title>某某大学信息公开网</title></head><body><h1>旧版页面已下线</h1>"
            "<p>学校新版信息公开网已于2022年9月1日正式上线运行，旧版信息公开网同时停止更新，原有栏目内容已全部迁移至新版网站，"
            "请广大师生通过新版网站查阅学校公开信息。</p></body></html>")
    check(page(body), S.OK, "ok")


def test_paging_function_is_not_a_script_redirect():
    html = ("<html><head><title>通知公告</title><script>function goPage(n){ window.location.href = 'list.jsp?page=' + n; }"
            "</script></head><body><ul class='list'><li><a href='/info/1021/1.htm'>通知一</a><span>2022-01-01</span></li>"
            "</ul><a href='javascript:goPage(2)'>下一页</a></body></html>")
    assert needs_render(html, URL) is None


def test_probe_redirecting_home_does_not_condemn_an_entry_page():
    probe_at = probe_url(URL, "s")
    probe = SiteProbe.from_fetch(page(fx("webplus_article.html"), url=probe_at, final_url=HOME, redirect_chain=[probe_at]))
    old = "http://xxgk.example-univ.edu.cn/old/xxgk.htm"
    check(page(fx("webplus_article.html"), url=old, final_url=HOME, redirect_chain=[old]), S.REDIRECTED, probe=probe)
    check(page(fx("webplus_article.html"), final_url=HOME, redirect_chain=[URL]), S.SOFT_404, probe=probe)


ARTICLE = "<p>" + "关于公布2021年本科招生章程的通知，学校信息公开网。" * 20 + "</p>"


@pytest.mark.parametrize("depth", [300, 3000])
def test_deeply_nested_pages_are_judged_on_their_content_not_read_as_blank(depth):
    """libxml2 stops at 256 levels by default; a page nested deeper (WYSIWYG editors do it)
    must not become an empty tree and a false soft_404."""
    body = "<html><head><title>招生章程</title></head><body>" + "<div>" * depth + ARTICLE + \
        "</div>" * depth + "</body></html>"
    verdict = classify(page(body))
    assert verdict.state == S.OK, verdict


def test_a_text_node_over_ten_megabytes_is_not_a_blank_page():
    body = "<html><head><title>公示</title></head><body><p>" + "公开" * 5_300_000 + "</p></body></html>"
    verdict = classify(page(body))
    assert verdict.state == S.OK, verdict
