"""Shared page templates: error pages, anti-bot challenges, Squid errors, filler text."""

from __future__ import annotations

import random
from datetime import UTC, date, datetime
from html import escape

from simweb.model import Resource

SIM_TODAY = {1: date(2022, 11, 20), 2: date(2022, 11, 21)}
"""The simulated calendar date of each day (day 2 edits are stamped with it)."""


_WEEKDAYS = "一二三四五六日"
# 农历 of the simulated days (壬寅年九月初一 = 2022-10-25), as date widgets print it.
_LUNAR = {date(2022, 11, 20): "壬寅年九月廿七", date(2022, 11, 21): "壬寅年九月廿八"}


def today_cn(day: int, *, lunar: bool = False) -> str:
    """What a "today is" widget prints on ``day``: ``2022年11月21日 星期一`` (+ ``农历…``)."""
    d = SIM_TODAY.get(day, SIM_TODAY[2])
    text = f"{d.year}年{d.month}月{d.day}日 星期{_WEEKDAYS[d.weekday()]}"
    return text + f" 农历{_LUNAR[d]}" if lunar else text


def visits(base: int, day: int, per_day: int = 37) -> int:
    """A visit counter that only grows: its value on ``day``."""
    return base + per_day * (max(day, 1) - 1)


def dt(d: date, hour: int = 9) -> datetime:
    """A UTC datetime for a model date (used for Last-Modified)."""
    return datetime(d.year, d.month, d.day, hour, 0, 0, tzinfo=UTC)


def html_page(title: str, body: str, *, charset: str = "utf-8", head_extra: str = "") -> str:
    """A minimal HTML5 document."""
    return (
        "<!DOCTYPE html>\n<html>\n<head>\n"
        f'<meta charset="{charset}">\n<title>{escape(title)}</title>\n{head_extra}'
        f"</head>\n<body>\n{body}\n</body>\n</html>\n"
    )


# -- origin error pages -------------------------------------------------------


def nginx_error(status: int, state: str = "not_found") -> Resource:
    """nginx-style plain error page (404, 410, 500, 502, 503)."""
    reason = {
        404: "Not Found",
        410: "Gone",
        500: "Internal Server Error",
        502: "Bad Gateway",
        503: "Service Temporarily Unavailable",
    }[status]
    body = (
        f"<html>\r\n<head><title>{status} {reason}</title></head>\r\n<body>\r\n"
        f"<center><h1>{status} {reason}</h1></center>\r\n<hr><center>nginx</center>\r\n"
        "</body>\r\n</html>\r\n"
    )
    return Resource(status=status, body=body.encode(), state=state, validators=False)


def tomcat_500(charset: str = "utf-8") -> Resource:
    """Apache Tomcat exception report (status 500)."""
    body = html_page(
        "HTTP Status 500 – Internal Server Error",
        "<h1>HTTP Status 500 – Internal Server Error</h1><hr>"
        "<p><b>Type</b> Exception Report</p>"
        "<p><b>Message</b> java.lang.NullPointerException</p>"
        "<pre>org.apache.jasper.JasperException: java.lang.NullPointerException\n"
        "\tat org.apache.jasper.servlet.JspServletWrapper.handleJspException(JspServletWrapper.java:560)\n"
        "\tat com.jsp_college.cms.ShowArticle.service(ShowArticle.java:88)\n</pre>"
        "<hr><h3>Apache Tomcat/7.0.76</h3>",
    )
    return Resource(
        status=500,
        body=body.encode(charset),
        content_type="text/html",
        encoding=charset,
        state="server_error",
        validators=False,
    )


# -- soft 404s (status 200) ----------------------------------------------------

SOFT_404_TEMPLATES: dict[str, tuple[str, str]] = {
    # key: (title, body html)
    "webplus": (
        "提示信息",
        '<div class="error"><img src="/_images/404.png" alt=""><p>您访问的页面不存在！</p>'
        '<p>该栏目可能已经调整，请<a href="/main.htm">返回首页</a>。</p></div>',
    ),
    "vsb": (
        "提示信息",
        '<div class="msg"><h2>页面不存在或已被删除</h2><p><a href="/index.htm">返回网站首页</a></p></div>',
    ),
    "jsp": (
        "系统提示",
        '<table width="400" align="center"><tr><td>抱歉，找不到该页面！</td></tr>'
        '<tr><td><a href="/index.jsp">返回首页</a></td></tr></table>',
    ),
    "trs": (
        "404 - 页面未找到",
        '<div class="page404"><h1>404</h1><p>请检查您输入的网址是否正确。</p>'
        '<p><a href="/xxgk/index.html">信息公开首页</a></p></div>',
    ),
}


def soft_404(kind: str, *, charset: str = "utf-8", content_type: str | None = None) -> Resource:
    """A 200 page that says the page does not exist (truth ``soft_404``)."""
    title, body = SOFT_404_TEMPLATES[kind]
    return Resource(
        body=html_page(title, body, charset=charset).encode(charset),
        content_type=content_type or f"text/html; charset={charset}",
        encoding=charset,
        state="soft_404",
        modified=dt(date(2022, 3, 1)),
    )


# -- anti-bot / WAF ------------------------------------------------------------


def jsl_challenge(clearance: str | None = None) -> Resource:
    """加速乐 (Knownsec) first-stage challenge: 521 + ``__jsl_clearance`` cookie script.

    ``clearance``: the ``__jsl_clearance_s`` value the script sets (a host gated with
    ``Resource.clearance`` accepts it); by default a value no host accepts.
    """
    script = (
        "<script>document.cookie=('__jsl_clearance_s=')+('1669000000.123|0|')+(function(){var _1=[('Q'),"
        "('%2F'),('p')];return _1.join('')})()+('xB2kG8yQz3nL%3D;max-age=3600;path=/');"
        "location.href=location.pathname+location.search</script>"
    )
    if clearance is not None:
        script = (f"<script>document.cookie=('__jsl_clearance_s=')+('{clearance}')+(';max-age=3600;path=/');"
                  "location.href=location.pathname+location.search</script>")
    return Resource(
        status=521,
        body=script.encode(),
        content_type="text/html",
        state="blocked",
        validators=False,
        headers=[
            ("Set-Cookie", "__jsluid_h=5c3e8e1f0a6b2d7c9e4f1a2b3c4d5e6f; max-age=31536000; path=/; HttpOnly"),
            ("Server", "JSL"),
        ],
    )


def ruishu_challenge() -> Resource:
    """Ruishu (瑞数) style 412 page with a ``$_ts`` bootstrap script."""
    body = (
        '<!DOCTYPE html><html><head><meta http-equiv="Content-Type" content="text/html; charset=utf-8">'
        '<meta id="9DhefwqGPrzGxEp9hPaoag" content="dKx7ZLe0GgV8s1kCz3x0S.4yHqOqg0nQ" r="m">'
        "<script type=\"text/javascript\">$_ts=window['$_ts'];if(!$_ts)$_ts={};$_ts.nsd=84511;"
        '$_ts.cd="qhzErrAlkGPlDGAoqW3xcAlhqGPEqGPrkApVcsqxrg3OW9qxqGVwrr3oDsq8lA";</script>'
        '<script type="text/javascript" charset="utf-8" src="/4QbVtADbnLVIc/c.FxJzG50F.dfe1675.js" r="m"></script>'
        "</head><body></body></html>"
    )
    return Resource(
        status=412,
        body=body.encode(),
        content_type="text/html",
        state="blocked",
        validators=False,
        headers=[
            (
                "Set-Cookie",
                "FSSBBIl1UgzbN7NO=5KqNUHqv8eDcH1.rgc; Path=/; expires=Fri, 20 Nov 2032 00:00:00 GMT; HttpOnly",
            )
        ],
    )


def captcha_page() -> Resource:
    """A WAF captcha page answered with 403."""
    body = html_page(
        "安全验证",
        '<div class="waf"><h2>访问验证</h2><p>您的访问过于频繁，请输入验证码后继续访问。</p>'
        '<form method="post" action="/waf_verify.htm"><img src="/waf_captcha.jpg" alt="验证码">'
        '<input name="captcha" type="text"><input type="submit" value="提交"></form></div>',
    )
    return Resource(status=403, body=body.encode(), state="blocked", validators=False)


def rate_limited() -> Resource:
    """429 with ``Retry-After: 2`` (always, whatever the client does)."""
    body = html_page(
        "429 Too Many Requests", "<h1>429 Too Many Requests</h1><p>请求过于频繁，请稍后再试。</p>"
    )
    return Resource(
        status=429,
        body=body.encode(),
        state="rate_limited",
        validators=False,
        headers=[("Retry-After", "2")],
    )


def throttled(status: int, retry_after: str) -> Resource:
    """What a throttled resource answers first: 429 or 503 with ``Retry-After``."""
    reason = {429: "Too Many Requests", 503: "Service Temporarily Unavailable"}[status]
    body = html_page(f"{status} {reason}", f"<h1>{status} {reason}</h1><p>服务器繁忙，请稍后再试。</p>")
    return Resource(
        status=status,
        body=body.encode(),
        state="rate_limited",
        validators=False,
        headers=[("Retry-After", retry_after)],
    )


# -- proxy (Squid) errors ------------------------------------------------------


def squid_error(url: str, kind: str) -> Resource:
    """Squid-style error answered by the proxy itself: ``dns`` or ``connect``."""
    if kind == "dns":
        status, code, state = 503, "ERR_DNS_FAIL 0", "dns_error"
        text = "Unable to determine IP address from host name"
    else:
        status, code, state = 502, "ERR_CONNECT_FAIL 111", "connection_error"
        text = "The system returned: (111) Connection refused"
    body = (
        '<!DOCTYPE html PUBLIC "-//W3C//DTD HTML 4.01//EN" "http://www.w3.org/TR/html4/strict.dtd">\n'
        "<html><head><title>ERROR: The requested URL could not be retrieved</title></head><body>\n"
        '<div id="titles"><h1>ERROR</h1><h2>The requested URL could not be retrieved</h2></div>\n'
        f'<div id="content"><p>The following error was encountered while trying to retrieve the URL: '
        f'<a href="{escape(url)}">{escape(url)}</a></p>\n'
        f'<blockquote id="error"><p><b>{text}</b></p></blockquote>\n'
        '</div><hr><div id="footer"><p>Generated by simweb (squid/4.13)</p></div></body></html>\n'
    )
    return Resource(
        status=status,
        body=body.encode(),
        state=state,
        validators=False,
        headers=[("X-Squid-Error", code), ("Server", "squid/4.13"), ("Mime-Version", "1.0")],
    )


# -- filler text ----------------------------------------------------------------

_SENTENCES = [
    "为进一步做好{topic}相关工作，根据上级有关文件精神，结合学校实际，现将有关事项公布如下。",
    "学校高度重视{topic}工作，成立了专门工作小组，明确责任分工，确保各项工作有序推进。",
    "{topic}相关材料已经学校有关会议审议通过，现予以公开，接受广大师生和社会各界监督。",
    "如对公开内容有异议，请于公示期内以书面形式向学校有关部门反映，联系电话：027-8765{n:04d}。",
    "各单位要认真组织学习，切实抓好落实，确保{topic}各项要求落到实处。",
    "本学年，学校围绕{topic}持续完善制度建设，规范工作流程，取得了良好成效。",
]


def filler(topic: str, rng: random.Random, n: int = 3) -> list[str]:
    """``n`` deterministic filler paragraphs about ``topic``."""
    out = []
    for _ in range(n):
        s = rng.choice(_SENTENCES) + rng.choice(_SENTENCES)
        out.append(s.format(topic=topic, n=rng.randrange(10000)))
    return out
