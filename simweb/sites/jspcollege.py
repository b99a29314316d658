"""Old GBK JSP CMS imitation: ``info.jsp-college.edu.cn`` (模拟职业技术学院, 专科).

Pages are GBK with ``Content-Type: text/html`` (no charset) and ``<meta charset=gbk>``;
one article's meta wrongly says utf-8 (bytes are still GBK).  Links carry session ids
(``;jsessionid=ABC123`` and ``&sid=...``) that canonicalisation removes.

Layout: ``/index.jsp``, category/item lists ``/BigClass.jsp?id=NN``, articles
``/ShowArticle.jsp?id=NNN``, files ``/UploadFiles/...``.  The annual report is a .doc
that is really RTF.  Pathologies: infinite calendar ``/calendar.jsp?month=M&year=Y``
(trap), soft-404 (抱歉，找不到该页面), Tomcat 500, 404, empty list, zero-byte .docx,
robots-excluded ``/admin/``, a near-miss "找不到工作？" article (ok), NXDOMAIN link.

Unknown URLs (any path, any ``id``) answer **200 with the site's own article frame, empty**
(the CMS's front controller renders its template whatever the record): nothing in it
says "not found", so only the crawler's probe of a random URL can tell. Links to removed
articles and a removed column (:data:`DEAD_LINKS`) answer that frame: ``soft_404``. One
withdrawn record (:data:`WITHDRAWN_ARTICLE`) answers the frame with "对不起，该信息已下架！".

Cosmetic: article 142's 点击数 and its footer's "您是本站第 N 位访问者　当前在线：N人" change
every day (article text unchanged).
"""

from __future__ import annotations

from datetime import date
from html import escape

from simweb.checklist import ITEMS
from simweb.content import SIM_TODAY, dt, filler, html_page, soft_404, tomcat_500, visits
from simweb.docs import fake_xls
from simweb.model import Resource, SiteInfo, World
from simweb.reports import ReportSpec, render, truth_record
from simweb.sites import helpers as H
from simweb.sites.common import SiteBuilder, implicit

HOST = "info.jsp-college.edu.cn"
BASE = f"http://{HOST}"
SITE_ID = "jsp"
SCHOOL = "模拟职业技术学院"
PORTAL = BASE + "/index.jsp"
CALENDAR_PREFIX = BASE + "/calendar.jsp"
CALENDAR_START = BASE + "/calendar.jsp?month=10&year=2021"
SESSION = "ABC123"

SOFT404_ITEM = 5
ERROR_ITEM = 20
EMPTY_ITEM = 38
NOTFOUND_ITEM = 29
MISSING_ITEMS = (11, 12, 13, 14, 45, 46)
MISLABELED_ARTICLE = BASE + "/ShowArticle.jsp?id=201"  # meta says utf-8, bytes are GBK
FIXED_ARTICLE = BASE + "/ShowArticle.jsp?id=150"  # 404 on day 1, ok on day 2
REPORT_DOC = BASE + "/UploadFiles/2021/20211126093512.doc"
ZERO_DOCX = BASE + "/UploadFiles/2022/20220310101010.docx"
#: Linked URLs of removed records: the CMS answers them with its empty frame (soft_404).
DEAD_LINKS = (
    BASE + "/ShowArticle.jsp?id=91",
    BASE + "/ShowArticle.jsp?id=93",
    BASE + "/BigClass.jsp?id=88",
)
#: A withdrawn record the CMS answers with its own wording ("对不起，该信息已下架！"), not the
#: empty frame: the page's message says it is gone, whatever the site probe learnt.
WITHDRAWN_ARTICLE = BASE + "/ShowArticle.jsp?id=96"


def item_url(n: int) -> str:
    """URL printed for checklist item ``n``."""
    return f"{BASE}/BigClass.jsp?id={100 + n}"


def report_items() -> dict[int, str]:
    """Item number -> URL as listed in the report."""
    return {it.number: item_url(it.number) for it in ITEMS if it.number not in MISSING_ITEMS}


def _tomcat_404() -> Resource:
    body = html_page(
        "HTTP Status 404 – Not Found",
        "<h1>HTTP Status 404 – Not Found</h1><hr><p><b>Type</b> Status Report</p>"
        "<p><b>Description</b> The origin server did not find a current representation for the target resource.</p>"
        "<hr><h3>Apache Tomcat/7.0.76</h3>",
    )
    return Resource(
        status=404,
        body=body.encode(),
        state="not_found",
        validators=False,
        headers=[("Server", "Apache-Coyote/1.1")],
    )


class _Site:
    def __init__(self, world: World) -> None:
        self.b = SiteBuilder(
            world, HOST, server="Apache-Coyote/1.1", seed=303, charset="gbk", content_type="text/html"
        )
        self.day = world.day
        self.sid = 0

    def href(self, target: str, style: int = 0) -> str:
        """Links as the CMS writes them: with ;jsessionid or &sid= (style 1/2)."""
        if style == 1:
            path, _, query = target.partition("?")
            return f"{path};jsessionid={SESSION}" + (f"?{query}" if query else "")
        if style == 2:
            self.sid += 1
            sep = "&" if "?" in target else "?"
            return f"{target}{sep}sid=8f3a{self.sid:04x}"
        return target

    def layout(self, title: str, content: str, meta_charset: str = "gbk", *, footer_extra: str = "") -> str:
        nav = "".join(
            f'<td><a href="{self.href(h, 1)}">{n}</a></td>'
            for h, n in [
                ("/index.jsp", "首页"),
                ("/BigClass.jsp?id=71", "信息公开目录"),
                ("/BigClass.jsp?id=72", "就业信息"),
                ("/BigClass.jsp?id=106", "年度报告"),
            ]
        )
        if meta_charset == "gbk":
            head = f'<meta charset="{meta_charset}">'
        else:
            head = f'<meta http-equiv="Content-Type" content="text/html; charset={meta_charset}">'
        return (
            f"<html>\n<head>\n{head}\n<title>{escape(title)}--{SCHOOL}</title>\n</head>\n<body>\n"
            f'<table width="960" align="center"><tr><td class="logo">{SCHOOL}信息公开</td></tr></table>\n'
            f'<table width="960" align="center" class="nav"><tr>{nav}</tr></table>\n'
            f'<table width="960" align="center"><tr><td>{content}</td></tr></table>\n'
            f'<table width="960" align="center"><tr><td>Copyright 2008-2022 {SCHOOL} 版权所有{footer_extra}</td></tr></table>\n'
            "</body>\n</html>\n"
        )

    def missing_record(self) -> Resource:
        """The article frame with no record in it: what any unknown URL answers (status 200)."""
        return self._record_frame('<div class="arttitle"></div><div class="artinfo">发布日期：　点击数：0</div>'
                                  '<div class="artcontent"></div>')

    def withdrawn_record(self) -> Resource:
        """The article frame carrying the CMS's "withdrawn" notice (status 200, soft_404)."""
        return self._record_frame('<div class="arttitle"></div><div class="artcontent">'
                                  '<p align="center">对不起，该信息已下架！</p></div>')

    def _record_frame(self, content: str) -> Resource:
        """The CMS's article frame around ``content``, answered 200 for a record it lacks."""
        return Resource(
            body=self.layout("", content).encode("gbk"),
            content_type="text/html",
            encoding="gbk",
            state="soft_404",
            validators=False,
            headers=[("Server", "Apache-Coyote/1.1")],
        )

    def list_page(
        self, cid: int, name: str, entries: list[tuple[str, str, date]], *, state: str = "ok"
    ) -> None:
        rows = "".join(
            f'<tr><td class="listtitle">·<a href="{self.href(u, 2)}" target="_blank">{escape(t)}</a></td>'
            f'<td class="listdate">[{d.isoformat()}]</td></tr>\n'
            for t, u, d in entries
        )
        content = (
            f'<div class="classtitle">{escape(name)}</div><table class="list" width="100%">\n{rows}</table>'
        )
        modified = max((d for _, _, d in entries), default=date(2020, 9, 1))
        self.b.page(f"/BigClass.jsp?id={cid}", self.layout(name, content), modified=modified, state=state)

    def article(
        self,
        aid: int,
        title: str,
        d: date,
        paras: list[str],
        *,
        extra: str = "",
        meta_charset: str = "gbk",
        modified: date | None = None,
        clicks: int | None = None,
        footer_extra: str = "",
    ) -> str:
        path = f"/ShowArticle.jsp?id={aid}"
        body = "".join(f"<p>　　{escape(p)}</p>" for p in paras) + extra
        content = (
            f'<div class="arttitle">{escape(title)}</div><div class="artinfo">发布日期：{d.isoformat()}　'
            f'点击数：{clicks if clicks is not None else (aid * 37) % 900 + 100}</div>'
            f'<div class="artcontent">{body}</div>'
        )
        self.b.page(path, self.layout(title, content, meta_charset, footer_extra=footer_extra),
                    modified=modified or d)
        return path

    def build(self) -> None:
        b = self.b
        world = b.world
        world.robots[HOST] = ["/admin/"]
        world.not_found[HOST] = lambda url: implicit(self.missing_record())
        world.host_handlers[HOST] = self.calendar
        world.trap_prefixes.append(CALENDAR_PREFIX)
        world.sites.append(
            SiteInfo(SITE_ID, SCHOOL, [PORTAL], [HOST], kind="专科", render="never", max_pages=1500)
        )
        self.items()
        self.jobs()
        self.report()
        self.directory()
        self.home()

    def items(self) -> None:
        b = self.b
        aid = 200
        for it in ITEMS:
            n = it.number
            cid = 100 + n
            if n == 6:
                continue  # report list, see report()
            if n == SOFT404_ITEM:
                b.put(f"/BigClass.jsp?id={cid}", soft_404("jsp", charset="gbk", content_type="text/html"))
                continue
            if n == ERROR_ITEM:
                b.put(f"/BigClass.jsp?id={cid}", tomcat_500("gbk"))
                continue
            if n == NOTFOUND_ITEM:
                b.put(f"/BigClass.jsp?id={cid}", _tomcat_404())
                continue
            if n == EMPTY_ITEM:
                self.list_page(cid, it.label, [], state="empty")
                continue
            entries = []
            for k in range(2 if n % 3 else 1):
                aid += 1
                d = b.date_between(date(2020, 9, 1), date(2022, 9, 30), aid)
                title = f"{SCHOOL}{it.label}" if k == 0 else f"关于{it.label}的补充说明"
                url = BASE + f"/ShowArticle.jsp?id={aid}"
                extra = ""
                if n == 10 and k == 0:  # a zero-byte .docx attachment
                    extra = f'<p>附件：<a href="{ZERO_DOCX[len(BASE) :]}">招生咨询及申诉办法.docx</a></p>'
                    b.file(
                        ZERO_DOCX,
                        b"",
                        "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
                        modified=d,
                        state="type_mismatch",
                    )
                if n == 21 and k == 0:
                    path = "/UploadFiles/2021/20210905153010.xls"
                    b.file(path, fake_xls("收费标准"), "application/vnd.ms-excel", modified=d)
                    extra = f'<p>附件：<a href="{path}">2021年收费标准.xls</a></p>'
                modified = None
                paras = filler(it.label, b.rng(aid), 2)
                if n == 2 and k == 0 and self.day >= 2:
                    paras.append("（2022年11月21日修订）")
                    modified = SIM_TODAY[2]
                meta = "utf-8" if url == MISLABELED_ARTICLE else "gbk"
                self.article(aid, title, d, paras, extra=extra, meta_charset=meta, modified=modified)
                entries.append((title, f"/ShowArticle.jsp?id={aid}", d))
            entries.sort(key=lambda e: e[2], reverse=True)
            self.list_page(cid, it.label, entries)

    def jobs(self) -> None:
        """就业信息 list, with the near-miss 找不到工作 article and the day-2 fixed article."""
        b = self.b
        entries = []
        specs = [
            (
                140,
                "找不到工作？就业指导中心帮你忙",
                date(2022, 4, 12),
                [
                    "临近毕业还找不到工作？学院就业指导中心提供一对一就业指导、简历修改和模拟面试服务。",
                    "欢迎同学们到就业指导中心咨询。",
                ],
            ),
            (141, "2022届毕业生双选会通知", date(2022, 3, 20), filler("就业", b.rng(141), 2)),
            (142, "毕业生就业手续办理指南", date(2021, 12, 1), filler("就业手续", b.rng(142), 2)),
        ]
        # Removed records still linked from "相关阅读" lines and the directory (soft_404).
        for url in DEAD_LINKS:
            b.put(url, self.missing_record())
        b.put(WITHDRAWN_ARTICLE, self.withdrawn_record())
        related = {
            141: f'<p>相关阅读：<a href="{DEAD_LINKS[0][len(BASE) :]}">2021届毕业生双选会通知</a></p>'
                 f'<p>相关阅读：<a href="{WITHDRAWN_ARTICLE[len(BASE) :]}">2021年就业推荐表领取说明</a></p>',
            142: f'<p>相关阅读：<a href="{self.href(DEAD_LINKS[1][len(BASE) :], 2)}">就业协议书填写说明</a></p>',
        }
        for aid, title, d, paras in specs:
            if aid == 142:
                # live click counter and a visitor/online counter in the footer: the page's
                # bytes change every day, its text does not (cosmetic-only)
                footer = (f"　您是本站第 {visits(25871, self.day, 412)} 位访问者"
                          f"　当前在线：{(12, 9)[self.day > 1]}人")
                self.article(aid, title, d, paras, extra=related[aid], clicks=visits(356, self.day, 5),
                             footer_extra=footer)
                b.world.mark_cosmetic(BASE + f"/ShowArticle.jsp?id={aid}")
            else:
                self.article(aid, title, d, paras, extra=related.get(aid, ""))
            entries.append((title, f"/ShowArticle.jsp?id={aid}", d))
        title = "2022届毕业生就业质量年度报告"
        if self.day >= 2:
            self.article(150, title, date(2022, 10, 25), filler("就业质量", b.rng(150), 2))
        else:
            b.put(FIXED_ARTICLE, _tomcat_404())
        entries.insert(0, (title, "/ShowArticle.jsp?id=150", date(2022, 10, 25)))
        self.list_page(72, "就业信息", entries)

    def report(self) -> None:
        b = self.b
        items = report_items()
        spec = ReportSpec(
            site_id=SITE_ID,
            school=SCHOOL,
            year_form="二〇二一年度",
            academic_year="2020-2021",
            fmt="doc",
            url=REPORT_DOC,
            page_url=BASE + "/ShowArticle.jsp?id=180",
            portal=PORTAL,
            items=items,
            applications=0,
            applications_text="本年度学院未收到信息公开申请。",
            signed=None,
            parts=[1, 2, 3, 5, 6, 8],
        )
        b.file(REPORT_DOC, render(spec), "application/msword", modified=date(2021, 11, 26))
        self.article(
            180,
            spec.title,
            date(2021, 11, 26),
            ["现将我院信息公开工作年度报告予以公布。"],
            extra=f'<p>附件：<a href="{REPORT_DOC[len(BASE) :]}">{escape(spec.title)}.doc</a></p>',
        )
        b.world.reports.append(truth_record(spec))
        b.world.report_items[SITE_ID] = items
        self.list_page(106, "信息公开年度报告", [(spec.title, "/ShowArticle.jsp?id=180", date(2021, 11, 26))])

    def directory(self) -> None:
        rows = []
        last = 0
        for it in ITEMS:
            if it.category != last:
                rows.append(f'<tr><td class="cat">{it.category_heading}</td></tr>')
                last = it.category
            if it.number in MISSING_ITEMS:
                continue  # not applicable to a 专科 college: not listed
            rows.append(
                f'<tr><td><a href="{self.href(item_url(it.number)[len(BASE) :], 1)}">'
                f"{it.number}．{escape(it.label)}</a></td></tr>"
            )
        rows.append(f'<tr><td class="cat"><a href="{DEAD_LINKS[2][len(BASE) :]}">其他（旧栏目）</a></td></tr>')
        content = '<div class="classtitle">信息公开目录</div><table>' + "".join(rows) + "</table>"
        self.b.page("/BigClass.jsp?id=71", self.layout("信息公开目录", content), modified=date(2021, 3, 1))

    def home(self) -> None:
        links = (
            f'<a href="{self.href("/BigClass.jsp?id=71", 1)}">信息公开目录</a>　'
            f'<a href="{self.href("/BigClass.jsp?id=72", 2)}">就业信息</a>　'
            f'<a href="{self.href(CALENDAR_START[len(BASE) :])}">校历</a>　'
            '<a href="/admin/Login.jsp">后台管理</a>　'
            f'<a href="{H.NXDOMAIN}">旧版网站</a>　'
            f'<a href="{H.MOE_BANFA}">高等学校信息公开办法</a>'
        )
        content = f'<div class="classtitle">欢迎访问{SCHOOL}信息公开网</div><p>{links}</p>'
        self.b.page("/index.jsp", self.layout("首页", content), modified=date(2022, 4, 12))
        self.b.page("/admin/Login.jsp", self.layout("后台登录", "<form></form>"), modified=date(2019, 1, 1))

    def calendar(self, url: str) -> Resource | None:
        """Dynamic month pages linking to the previous and next month, forever."""
        if not url.startswith(CALENDAR_PREFIX):
            return None
        params = dict(p.split("=", 1) for p in url.partition("?")[2].split("&") if "=" in p)
        try:
            year, month = int(params.get("year", "2021")), int(params.get("month", "10"))
        except ValueError:
            year, month = 2021, 10
        month = min(max(month, 1), 12)
        prev_y, prev_m = (year - 1, 12) if month == 1 else (year, month - 1)
        next_y, next_m = (year + 1, 1) if month == 12 else (year, month + 1)
        content = (
            f'<div class="classtitle">校历 {year}年{month}月</div>'
            f'<p><a href="calendar.jsp?month={prev_m}&amp;year={prev_y}">上一月</a>　'
            f'<a href="calendar.jsp?month={next_m}&amp;year={next_y}">下一月</a></p>'
            '<table class="cal"><tr><td>一</td><td>二</td><td>三</td><td>四</td><td>五</td><td>六</td><td>日</td></tr></table>'
        )
        body = self.layout(f"校历{year}年{month}月", content).encode("gbk")
        return Resource(
            body=body,
            content_type="text/html",
            encoding="gbk",
            validators=False,
            modified=dt(date(2021, 9, 1)),
            headers=[("Server", "Apache-Coyote/1.1")],
        )


def build(world: World) -> None:
    """Add the JSP college to ``world``."""
    _Site(world).build()
