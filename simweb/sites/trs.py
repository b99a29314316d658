"""Static TRS WCM imitation: ``www.trs-univ.edu.cn/xxgk/`` (模拟综合大学, 本科).

Layout: ``/xxgk/index.html``; channels ``/xxgk/<chan>/index.html`` with paging
``index_1.html``, ``index_2.html``; articles linked relatively
(``./202110/t20211010_5123.html``); attachments ``./P0…pdf`` next to the article.
The annual report is an HTML article.

Pathologies: 503 item channel, soft-404 page titled "404 - 页面未找到" (status 200),
a deep item link that 302-redirects to the home page (soft-404), a 404 item,
a 403 captcha page (依申请公开), a ``.pdf`` whose bytes are a GIF (type_mismatch),
robots-excluded ``/xxgk/internal/``, root ``/`` 302 → home (redirected), links to
a refused host and a TLS-broken host.  Day 2: an article drops its link to a ministry page.
Cosmetic: the guide article ends with "页面生成时间 0.0123 秒" (another time on day 2).
"""

from __future__ import annotations

from datetime import date, timedelta
from html import escape

from simweb.checklist import ITEMS
from simweb.content import SIM_TODAY, captcha_page, filler, html_page, nginx_error, soft_404
from simweb.docs import GIF_BYTES, simple_pdf
from simweb.model import SiteInfo, World
from simweb.reports import ReportSpec, html_fragment, report_blocks, truth_record
from simweb.sites import helpers as H
from simweb.sites.common import SiteBuilder, implicit

HOST = "www.trs-univ.edu.cn"
BASE = f"http://{HOST}"
SITE_ID = "trs"
SCHOOL = "模拟综合大学"
PORTAL = BASE + "/xxgk/index.html"

ERROR_ITEM = 18
SOFT404_ITEM = 31
REDIRECT_HOME_ITEM = 35
NOTFOUND_ITEM = 24
MISSING_ITEMS = (10, 23)
REPORT_PAGE = BASE + "/xxgk/ndbg/202210/t20221020_6001.html"
REMOVED_LINK_FROM = BASE + "/xxgk/tzgg/202209/t20220915_5101.html"
REMOVED_LINK_TO = H.MOE_NOTICE_2022


def item_url(n: int) -> str:
    """URL printed for checklist item ``n``."""
    if n == 6:
        return BASE + "/xxgk/ndbg/index.html"
    return f"{BASE}/xxgk/qd/xm{n:02d}/index.html"


def report_items() -> dict[int, str]:
    """Item number -> URL as listed in the report."""
    return {it.number: item_url(it.number) for it in ITEMS if it.number not in MISSING_ITEMS}


class _Site:
    def __init__(self, world: World) -> None:
        self.b = SiteBuilder(world, HOST, server="Apache", seed=404)
        self.day = world.day
        self.seq = 5000

    def layout(self, title: str, content: str, *, tail: str = "") -> str:
        nav = "".join(
            f'<a href="{h}">{n}</a> '
            for h, n in [
                ("/xxgk/index.html", "首页"),
                ("/xxgk/gkzn/index.html", "信息公开指南"),
                ("/xxgk/qd/index.html", "信息公开目录"),
                ("/xxgk/ysqgk/index.html", "依申请公开"),
                ("/xxgk/ndbg/index.html", "年度报告"),
                ("/xxgk/tzgg/index.html", "通知公告"),
            ]
        )
        body = (
            f'<div class="head"><h1>{SCHOOL}信息公开网</h1><div class="nav">{nav}</div></div>'
            f'<div class="content">{content}</div>'
            f'<div class="foot"><a href="{BASE}/">学校主页</a> 版权所有：{SCHOOL}</div>{tail}'
        )
        return html_page(f"{title}_{SCHOOL}信息公开网", body)

    def channel(self, chan: str, name: str, entries: list[tuple[str, str, date]], per: int = 10) -> None:
        """Entries carry article paths relative to the channel folder (``./YYYYMM/t...html``)."""
        pages = max(1, -(-len(entries) // per))
        for p in range(pages):
            chunk = entries[p * per : (p + 1) * per]
            lis = "".join(
                f'<li><a href="{rel}" target="_blank" title="{escape(t)}">{escape(t)}</a><span>{d.isoformat()}</span></li>\n'
                for t, rel, d in chunk
            )
            links = (
                " ".join(
                    f'<a href="{"index.html" if q == 0 else f"index_{q}.html"}">{q + 1}</a>'
                    for q in range(pages)
                )
                if pages > 1
                else ""
            )
            script = f'<script>var currentPage = {p};var countPage = {pages};createPageHTML(countPage, currentPage, "index", "html");</script>'
            content = (
                f'<div class="lmname">{escape(name)}</div><ul class="list_ul">\n{lis}</ul>'
                f'<div class="page">{script}{links}</div>'
            )
            fname = "index.html" if p == 0 else f"index_{p}.html"
            modified = max((d for _, _, d in chunk), default=date(2020, 9, 1))
            self.b.page(
                f"/xxgk/{chan}/{fname}",
                self.layout(name, content),
                modified=modified,
                state="ok" if entries else "empty",
            )

    def article(
        self,
        chan: str,
        title: str,
        d: date,
        html_body: str,
        *,
        modified: date | None = None,
        seq: int | None = None,
        tail: str = "",
    ) -> str:
        """Register an article; return its path relative to the channel folder."""
        if seq is None:
            self.seq += 1
            seq = self.seq
        folder = f"{d.year}{d.month:02d}"
        name = f"t{d.year}{d.month:02d}{d.day:02d}_{seq}.html"
        content = (
            f'<div class="title">{escape(title)}</div><div class="info">发布日期：{d.isoformat()}</div>'
            f'<div class="TRS_Editor">{html_body}</div>'
        )
        self.b.page(f"/xxgk/{chan}/{folder}/{name}", self.layout(title, content, tail=tail),
                    modified=modified or d)
        return f"./{folder}/{name}"

    def paras(self, texts: list[str]) -> str:
        return "".join(f'<p style="text-indent:2em">{escape(t)}</p>' for t in texts)

    def build(self) -> None:
        b = self.b
        world = b.world
        world.robots[HOST] = ["/xxgk/internal/"]
        world.not_found[HOST] = lambda url: implicit(nginx_error(404))
        world.sites.append(SiteInfo(SITE_ID, SCHOOL, [PORTAL], [HOST], kind="本科"))
        self.items()
        self.notices()
        self.report()
        self.misc()
        self.home()

    def items(self) -> None:
        b = self.b
        for it in ITEMS:
            n = it.number
            if n == 6:
                continue
            chan = f"qd/xm{n:02d}"
            path = f"/xxgk/{chan}/index.html"
            if n == ERROR_ITEM:
                b.error(path, nginx_error(503, state="server_error"))
                continue
            if n == SOFT404_ITEM:
                b.put(path, soft_404("trs"))
                continue
            if n == REDIRECT_HOME_ITEM:
                b.redirect(path, PORTAL, status=302, state="soft_404")
                continue
            if n == NOTFOUND_ITEM:
                b.error(path, nginx_error(404))
                continue
            entries = []
            for k in range(2):
                d = b.date_between(date(2020, 9, 1), date(2022, 9, 30), (n, k))
                title = f"{SCHOOL}{it.label}" if k == 0 else f"{it.label}公示（{d.year}）"
                body = self.paras(filler(it.label, b.rng((n, k)), 3))
                if n == 19 and k == 0:
                    att = f"P0{d.year}{d.month:02d}{d.day:02d}512345678901.pdf"
                    folder = f"{d.year}{d.month:02d}"
                    b.file(
                        f"/xxgk/{chan}/{folder}/{att}",
                        simple_pdf("部门预算", ("收支预算总表",)),
                        "application/pdf",
                        modified=d,
                    )
                    body += f'<p>附件：<a href="./{att}">{SCHOOL}部门预算.pdf</a></p>'
                rel = self.article(chan, title, d, body, seq=5300 + n * 10 + k)
                entries.append((title, rel, d))
            entries.sort(key=lambda e: e[2], reverse=True)
            self.channel(chan, it.label, entries)

    def notices(self) -> None:
        b = self.b
        entries = []
        for n in range(25):
            d = date(2022, 10, 18) - timedelta(days=n * 13)
            title = f"关于{d.year}年{d.month}月有关事项的通知"
            seq = 5101 if n == 2 else 5200 + n
            body = self.paras(filler("通知", b.rng(("tzgg", n)), 2))
            modified = None
            if seq == 5101:
                title = "关于做好2022年信息公开年度报告编制工作的通知"
                d = date(2022, 9, 15)
                if self.day == 1:
                    body += f'<p>详见<a href="{H.MOE_NOTICE_2022}">教育部办公厅通知</a>。</p>'
                else:
                    body += "<p>详见教育部办公厅有关通知。</p>"
                    modified = SIM_TODAY[2]
            if n == 5:  # attachment whose bytes are a GIF although the link says .pdf
                folder = f"{d.year}{d.month:02d}"
                att = f"P0{d.year}{d.month:02d}{d.day:02d}398765432101.pdf"
                b.file(
                    f"/xxgk/tzgg/{folder}/{att}",
                    GIF_BYTES,
                    "application/pdf",
                    modified=d,
                    state="type_mismatch",
                )
                body += f'<p>附件：<a href="./{att}">报名表.pdf</a></p>'
            rel = self.article("tzgg", title, d, body, modified=modified, seq=seq)
            entries.append((title, rel, d))
        self.channel("tzgg", "通知公告", entries)

    def report(self) -> None:
        b = self.b
        items = report_items()
        spec = ReportSpec(
            site_id=SITE_ID,
            school=SCHOOL,
            year_form="2021-2022学年",
            academic_year="2021-2022",
            fmt="html",
            url=REPORT_PAGE,
            page_url=REPORT_PAGE,
            portal=PORTAL,
            items=items,
            applications=2,
            applications_text="本学年共收到依申请公开申请2件，均在规定时限内予以答复，其中同意公开1件，"
            "不属于本校公开职责范围1件。",
            signed=date(2022, 10, 20),
            variant_titles=True,
        )
        d = date(2022, 10, 20)
        self.article("ndbg", spec.title, d, html_fragment(report_blocks(spec)), seq=6001)
        b.world.reports.append(truth_record(spec))
        b.world.report_items[SITE_ID] = items
        rel = "./202210/t20221020_6001.html"
        self.channel("ndbg", "信息公开年度报告", [(spec.title, rel, d)])

    def misc(self) -> None:
        b = self.b
        rows = []
        last = 0
        for it in ITEMS:
            if it.category != last:
                rows.append(f"<dt>{it.category_heading}</dt>")
                last = it.category
            url = item_url(it.number)
            rel = "." + url[len(BASE + "/xxgk/qd") :] if "/xxgk/qd/" in url else url
            rows.append(f'<dd><a href="{rel}">（{it.number}）{escape(it.title)}</a></dd>')
        content = '<div class="lmname">信息公开目录</div><dl>' + "".join(rows) + "</dl>"
        b.page("/xxgk/qd/index.html", self.layout("信息公开目录", content), modified=date(2021, 5, 1))
        d = date(2021, 5, 1)
        rel = self.article(
            "gkzn",
            f"{SCHOOL}信息公开指南",
            d,
            self.paras(filler("信息公开指南", b.rng("guide"), 2))
            + f'<p><a href="{H.MOE_QINGDAN}">高等学校信息公开事项清单</a></p>',
            seq=5001,
            # served through a dynamic front end that stamps its render time under the
            # footer: new bytes every day, same text (cosmetic-only)
            tail=f'<div align="center" style="color:#999">页面生成时间 {("0.0123", "0.0087")[self.day > 1]} 秒</div>',
        )
        b.world.mark_cosmetic(f"{BASE}/xxgk/gkzn/{rel[2:]}")
        self.channel("gkzn", "信息公开指南", [(f"{SCHOOL}信息公开指南", rel, d)])
        b.put("/xxgk/ysqgk/index.html", captcha_page())
        b.page(
            "/xxgk/internal/index.html",
            self.layout("内部通知", "<p>仅限校内访问</p>"),
            modified=date(2021, 1, 1),
        )
        b.redirect("/", PORTAL, status=302)

    def home(self) -> None:
        links = (
            '<a href="./qd/index.html">信息公开目录</a> '
            '<a href="./internal/index.html">内部通知</a> '
            f'<a href="{H.MOE_HOME}">教育部</a> '
            f'<a href="{H.MOE_XXGK}">教育部政府信息公开</a> '
            f'<a href="{H.REFUSED}">数字校园</a> '
            f'<a href="{H.TLS_BAD}">统一身份认证</a>'
        )
        content = f'<div class="lmname">欢迎访问</div><p>{links}</p>'
        self.b.page("/xxgk/index.html", self.layout("首页", content), modified=date(2022, 10, 20))


def build(world: World) -> None:
    """Add the TRS site to ``world``."""
    _Site(world).build()
