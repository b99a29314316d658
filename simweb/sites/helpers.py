"""Helper hosts: an external ministry site, a slow host, refused/NXDOMAIN/TLS hosts, WAF hosts.

* ``www.moe-sim.gov.cn`` – external government site (a few ok pages, one 404)
* ``slow.example-univ.edu.cn`` – answers after 30 s × delay_scale (truth ``timeout``);
  its ``/robots.txt`` answers at once (404) so robots-aware crawlers are not slowed twice
* ``refused.example-univ.edu.cn`` – proxy answers 502 ``ERR_CONNECT_FAIL 111``
* ``nxdomain.example-univ.edu.cn`` (and any unknown host) – 503 ``ERR_DNS_FAIL 0``
* ``tls-bad.example-univ.edu.cn`` – ``CONNECT`` accepted, then non-TLS bytes (``tls_error``)
* ``zsb.webplus-univ.edu.cn`` – every path answers a Ruishu 412 ``$_ts`` challenge
* ``cwc.vsb-univ.edu.cn`` – every path answers a 加速乐 521 ``__jsl_clearance`` challenge
"""

from __future__ import annotations

from datetime import date

from simweb.content import dt, html_page, jsl_challenge, nginx_error, ruishu_challenge, squid_error
from simweb.model import Resource, World
from simweb.sites.common import SiteBuilder, implicit

MOE = "http://www.moe-sim.gov.cn"
MOE_HOME = MOE + "/"
MOE_XXGK = MOE + "/jyb_xxgk/"
MOE_BANFA = MOE + "/jyb_xxgk/xxgk/zhengce/guizhang/202112/t20211206_585092.html"
MOE_QINGDAN = MOE + "/srcsite/A08/s7056/201407/t20140721_171904.html"
MOE_NOTICE_2022 = MOE + "/srcsite/A08/s7056/202209/t20220915_660321.html"
MOE_GONE = MOE + "/s78/A08/moe_745/201412/t20141231_182345.html"

SLOW = "http://slow.example-univ.edu.cn/"
REFUSED = "http://refused.example-univ.edu.cn/"
NXDOMAIN = "http://nxdomain.example-univ.edu.cn/"
TLS_BAD = "https://tls-bad.example-univ.edu.cn/"
ZSB = "http://zsb.webplus-univ.edu.cn"
CWC = "http://cwc.vsb-univ.edu.cn"

SLOW_SECONDS = 30.0


def build(world: World) -> None:
    """Add the helper hosts to ``world``."""
    moe = SiteBuilder(world, "www.moe-sim.gov.cn", server="Apache", seed=7)
    pages = {
        MOE_HOME: "中华人民共和国教育部（模拟）",
        MOE_XXGK: "教育部政府信息公开",
        MOE_BANFA: "高等学校信息公开办法（教育部令第29号）",
        MOE_QINGDAN: "教育部办公厅关于公布《高等学校信息公开事项清单》的通知",
        MOE_NOTICE_2022: "教育部办公厅关于做好2022年高校信息公开年度报告工作的通知",
    }
    for url, title in pages.items():
        body = f'<h1>{title}</h1><p>{title}。</p><p><a href="/">教育部首页</a></p>'
        moe.page(url, html_page(title, body), modified=date(2021, 12, 6))
    moe.error(MOE_GONE, nginx_error(404))
    world.robots["www.moe-sim.gov.cn"] = []
    world.not_found["www.moe-sim.gov.cn"] = lambda url: implicit(nginx_error(404))

    slow_host = "slow.example-univ.edu.cn"

    def slow(url: str) -> Resource | None:
        if url.endswith("/robots.txt"):
            return nginx_error(404)
        body = html_page("校友网", "<h1>校友网</h1><p>欢迎访问校友网。</p>").encode()
        return Resource(body=body, state="timeout", delay=SLOW_SECONDS, modified=dt(date(2021, 5, 1)))

    world.host_handlers[slow_host] = slow
    world.host_handlers["refused.example-univ.edu.cn"] = lambda url: squid_error(url, "connect")
    world.host_handlers["tls-bad.example-univ.edu.cn"] = lambda url: squid_error(url, "connect")
    world.tls_hosts.add("tls-bad.example-univ.edu.cn")
    tls = squid_error(TLS_BAD, "connect")
    tls.state = "tls_error"  # only used for truth; HTTPS goes through CONNECT
    world.add(TLS_BAD, tls)
    world.host_handlers["zsb.webplus-univ.edu.cn"] = lambda url: ruishu_challenge()
    world.host_handlers["cwc.vsb-univ.edu.cn"] = lambda url: jsl_challenge()
