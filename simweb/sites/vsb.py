"""VSB 博达 CMS imitation: ``xxgk.vsb-univ.edu.cn`` (模拟师范大学, 本科).

Layout: home ``/index.htm``; lists ``/xxgk/zsxx.htm`` with reverse-numbered paging
(``/xxgk/zsxx/3.htm`` … ``/xxgk/zsxx/1.htm``: page files count down, 1 = oldest);
checklist item lists ``/xxgk/qd/itemNN.htm``; articles ``/info/1021/1234.htm``
(linked relatively, ``../../info/...``); attachments via
``/system/_content/download.jsp?owner=…&urltype=news.DownloadAttachUrl&wbfileid=…``
named by ``Content-Disposition`` (RFC 5987 ``filename*=``, raw GBK bytes, raw UTF-8 bytes).
The annual report is a DOCX behind download.jsp (day 2 adds a PDF one).

Pathologies: 301→302→200 chain, SSO redirect loop, JS redirect page (``window.location``),
JS-only notice list (``innerHTML``), soft-404 (页面不存在或已被删除), 404 item page,
empty item list, 加速乐-protected finance host (521), robots-excluded ``/system/resource/``.
Cosmetic: the about article's header shows "今天是：<date> 星期X 农历…" (changes daily).
"""

from __future__ import annotations

from datetime import date, timedelta
from html import escape
from urllib.parse import quote

from simweb.checklist import ITEMS
from simweb.content import SIM_TODAY, filler, html_page, nginx_error, soft_404, today_cn
from simweb.docs import docx_bytes, fake_xls, simple_pdf
from simweb.model import SiteInfo, World
from simweb.reports import ReportSpec, render, truth_record
from simweb.sites import helpers as H
from simweb.sites.common import SiteBuilder, implicit

HOST = "xxgk.vsb-univ.edu.cn"
BASE = f"http://{HOST}"
SITE_ID = "vsb"
SCHOOL = "模拟师范大学"
PORTAL = BASE + "/index.htm"

EMPTY_ITEM = 33
SOFT404_ITEM = 30
NOTFOUND_ITEM = 40
JSL_ITEMS = {15: H.CWC + "/info/1011/1001.htm", 16: H.CWC + "/info/1011/1002.htm"}
MISSING_ITEMS = (22, 47, 48)
OWNER = 1256789

REDIRECT_CHAIN = BASE + "/old/xxgk.htm"  # 301 -> /xxgk/xxgk_old.htm 302 -> /index.htm
LOOP_URL = BASE + "/system/login.jsp"  # 302 -> /sso/login.htm?service=... 302 -> back
JS_REDIRECT = BASE + "/xxgk.htm"
NOTICES = BASE + "/xxgk/tzgg.htm"
EXCLUDED = BASE + "/system/resource/search.jsp"


def item_url(n: int) -> str:
    """URL printed for checklist item ``n``."""
    if n in JSL_ITEMS:
        return JSL_ITEMS[n]
    if n == 7:
        return BASE + "/xxgk/zsxx.htm"
    if n == 6:
        return BASE + "/xxgk/ndbg.htm"
    return f"{BASE}/xxgk/qd/item{n:02d}.htm"


def report_items() -> dict[int, str]:
    """Item number -> URL as listed in the reports."""
    return {it.number: item_url(it.number) for it in ITEMS if it.number not in MISSING_ITEMS}


def download_path(fileid: int) -> str:
    """VSB attachment URL path (query already in sorted order)."""
    return f"/system/_content/download.jsp?owner={OWNER}&urltype=news.DownloadAttachUrl&wbfileid={fileid}"


class _Site:
    def __init__(self, world: World) -> None:
        self.b = SiteBuilder(world, HOST, server="VWebServer", seed=202)
        self.day = world.day
        self.next_id = 3000

    def layout(self, title: str, content: str, depth: int, *, top_extra: str = "") -> str:
        up = "../" * depth
        nav = "".join(
            f'<li><a href="{up}{href}">{name}</a></li>'
            for href, name in [
                ("index.htm", "首页"),
                ("xxgk.htm", "信息公开"),
                ("xxgk/xxgkml.htm", "信息公开目录"),
                ("xxgk/zsxx.htm", "招生信息"),
                ("xxgk/tzgg.htm", "通知公告"),
                ("xxgk/ndbg.htm", "年度报告"),
            ]
        )
        body = (
            f'<div class="top"><div class="logo">{SCHOOL}信息公开网</div>{top_extra}<ul class="nav">{nav}</ul></div>'
            f'<div class="mainbox">{content}</div>'
            f'<div class="foot">Copyright © {SCHOOL} 技术支持：博达软件</div>'
        )
        return html_page(f"{title}-{SCHOOL}信息公开网", body)

    def list_block(self, entries: list[tuple[str, str, date]], depth: int) -> str:
        up = "../" * depth
        lis = "".join(
            f'<li><a href="{up}{href.lstrip("/")}" target="_blank" title="{escape(t)}">{escape(t)}</a>'
            f"<span>{d.isoformat()}</span></li>\n"
            for t, href, d in entries
        )
        return f'<div class="list"><ul>\n{lis}</ul></div>'

    def article(
        self,
        title: str,
        d: date,
        paras: list[str],
        *,
        cat: int = 1021,
        attachments: list[tuple[int, str]] = (),  # type: ignore[assignment]
        modified: date | None = None,
        extra: str = "",
        top_extra: str = "",
    ) -> str:
        self.next_id += 1
        aid = self.next_id
        path = f"/info/{cat}/{aid}.htm"
        atts = "".join(
            f'<li>附件【<a href="{escape(download_path(fid))}" target="_blank">{escape(name)}</a>】已下载'
            f'<span id="nattach{fid}"><script language="javascript">getClickTimes({fid},{aid},"wbnewsfile","attach")'
            "</script></span>次</li>"
            for fid, name in attachments
        )
        content = (
            '<form name="_newscontent_fromname"><div class="content-title">'
            f"<h3>{escape(title)}</h3><i>发布时间：{d.isoformat()}&nbsp;&nbsp;点击："
            f'<script>_showDynClicks("wbnews", {OWNER}, {aid})</script></i></div>'
            f'<div class="v_news_content">{"".join(f"<p>{escape(p)}</p>" for p in paras)}{extra}</div>'
            f'<ul style="list-style-type:none;">{atts}</ul></form>'
        )
        self.b.page(path, self.layout(title, content, 2, top_extra=top_extra), modified=modified or d)
        return path

    def attach(self, fid: int, data: bytes, ctype: str, disposition: bytes, modified: date) -> None:
        self.b.file(
            download_path(fid), data, ctype, modified=modified, headers=[("Content-Disposition", disposition)]
        )

    def build(self) -> None:
        b = self.b
        world = b.world
        world.robots[HOST] = ["/system/resource/"]
        world.not_found[HOST] = lambda url: implicit(nginx_error(404))
        world.sites.append(SiteInfo(SITE_ID, SCHOOL, [PORTAL], [HOST], kind="本科"))
        self.items()
        self.zsxx()
        self.notices()
        self.reports()
        self.misc()
        self.home()

    def items(self) -> None:
        b = self.b
        for it in ITEMS:
            n = it.number
            if n in (6, 7) or n in JSL_ITEMS:
                continue
            path = f"/xxgk/qd/item{n:02d}.htm"
            if n == SOFT404_ITEM:
                b.put(path, soft_404("vsb"))
                continue
            if n == NOTFOUND_ITEM:
                b.error(path, nginx_error(404))
                continue
            entries = []
            if n != EMPTY_ITEM:
                for k in range(2):
                    d = b.date_between(date(2020, 9, 1), date(2022, 9, 30), (n, k))
                    title = f"{SCHOOL}{it.label}" if k == 0 else f"{it.label}（{d.year}年更新）"
                    atts = self.item_attachments(n, k, d)
                    art = self._article_at(
                        f"/info/{1030 + it.category}/{3000 + n * 10 + k}.htm",
                        title,
                        d,
                        filler(it.label, b.rng((n, k)), 3),
                        atts,
                    )
                    entries.append((title, art, d))
                entries.sort(key=lambda e: e[2], reverse=True)
            content = f'<div class="lm_title">{escape(it.label)}</div>' + self.list_block(entries, 2)
            if not entries:
                content += '<div class="empty"></div>'
            modified = max((d for _, _, d in entries), default=date(2021, 1, 4))
            b.page(
                path, self.layout(it.label, content, 2), modified=modified, state="ok" if entries else "empty"
            )

    def item_attachments(self, n: int, k: int, d: date) -> list[tuple[int, str]]:
        if k != 0:
            return []
        if n == 21:  # raw GBK bytes in filename="..."
            name = "收费标准.xls"
            disp = b'attachment; filename="' + name.encode("gbk") + b'"'
            self.attach(4562, fake_xls(name), "application/vnd.ms-excel", disp, d)
            return [(4562, name)]
        if n == 36:  # raw UTF-8 bytes in filename="..."
            name = "学生学籍管理办法.docx"
            data = docx_bytes(
                "学生学籍管理办法", (("title", "学生学籍管理办法"), ("p", "第一条 为规范学籍管理……"))
            )
            disp = b'attachment; filename="' + name.encode("utf-8") + b'"'
            self.attach(
                4563, data, "application/vnd.openxmlformats-officedocument.wordprocessingml.document", disp, d
            )
            return [(4563, name)]
        return []

    def zsxx(self) -> None:
        """招生信息 with reverse-numbered paging."""
        b = self.b
        entries = []
        total = 36
        for n in range(total):
            d = date(2022, 10, 20) - timedelta(days=n * 19)
            title = f"{SCHOOL}{d.year}年招生信息公告（{n + 1:02d}）"
            paras = filler("招生", b.rng(("zsxx", n)), 2)
            atts: list[tuple[int, str]] = []
            if n == 35:  # oldest: 招生章程 PDF with RFC 5987 filename*
                name = f"{SCHOOL}本科招生章程.pdf"
                disp = "attachment; filename*=UTF-8''" + quote(name)
                self.attach(
                    4561, simple_pdf(name[:-4], ("第一章 总则",)), "application/pdf", disp.encode(), d
                )
                atts = [(4561, name)]
            if n == 30 and self.day >= 2:
                path = f"/info/1022/{2100 + n}.htm"
                b.error(path, nginx_error(500, state="server_error"))
            else:
                path = self._article_at(f"/info/1022/{2100 + n}.htm", title, d, paras, atts)
            entries.append((title, path, d))
        if self.day >= 2:
            d = SIM_TODAY[2]
            title = f"{SCHOOL}2023年硕士研究生招生考试网上确认公告"
            path = self._article_at(
                "/info/1022/2200.htm", title, d, filler("研究生招生", b.rng("zsxx-new"), 2), []
            )
            entries.insert(0, (title, path, d))
        per = 10
        pages = -(-len(entries) // per)
        for p in range(1, pages + 1):
            chunk = entries[(p - 1) * per : p * per]
            if p == 1:
                path, depth = "/xxgk/zsxx.htm", 1
                here = "zsxx/"
            else:
                path, depth = f"/xxgk/zsxx/{pages - p + 1}.htm", 2
                here = ""

            def href(q: int, here: str = here, depth: int = depth) -> str:
                if q == 1:
                    return "../zsxx.htm" if depth == 2 else "zsxx.htm"
                return f"{here}{pages - q + 1}.htm"

            nav = [f"共{len(entries)}条&nbsp;&nbsp;{p}/{pages}&nbsp;"]
            if p > 1:
                nav.append(
                    f'<a href="{href(1)}" class="Next">首页</a>&nbsp;<a href="{href(p - 1)}" class="Next">上页</a>'
                )
            else:
                nav.append(
                    '<span class="PrevDisabled">首页</span>&nbsp;<span class="PrevDisabled">上页</span>'
                )
            if p < pages:
                nav.append(
                    f'<a href="{href(p + 1)}" class="Next">下页</a>&nbsp;<a href="{href(pages)}" class="Next">尾页</a>'
                )
            content = (
                '<div class="lm_title">招生信息</div>'
                + self.list_block(chunk, depth)
                + f'<table><tr><td id="fanye215842" nowrap align="left">{"&nbsp;".join(nav)}</td></tr></table>'
            )
            b.page(path, self.layout("招生信息", content, depth), modified=max(d for _, _, d in chunk))

    def _article_at(
        self, path: str, title: str, d: date, paras: list[str], atts: list[tuple[int, str]],
        *, top_extra: str = "",
    ) -> str:
        saved = self.next_id
        aid = int(path.rsplit("/", 1)[1].split(".")[0])
        cat = int(path.split("/")[2])
        self.next_id = aid - 1
        out = self.article(title, d, paras, cat=cat, attachments=atts, top_extra=top_extra)
        self.next_id = saved
        return out

    def notices(self) -> None:
        """JS-only list: entries injected with innerHTML from a JS array."""
        b = self.b
        entries = []
        for k in range(5):
            d = date(2022, 9, 26) - timedelta(days=k * 11)
            title = f"关于{d.month}月{d.day}日相关工作安排的通知"
            path = self._article_at(
                f"/info/1025/{2300 + k}.htm", title, d, filler("通知", b.rng(("tzgg", k)), 2), []
            )
            entries.append((title, path, d))
        data = ",".join(
            f'["{escape(t)}","../info/1025/{p.rsplit("/", 1)[1]}","{d.isoformat()}"]' for t, p, d in entries
        )
        content = (
            '<div class="lm_title">通知公告</div><div class="list"><ul id="tzggList"></ul></div>'
            f'<script type="text/javascript">var tzgg=[{data}];var h="";'
            'for(var i=0;i<tzgg.length;i++){h+="<li><a href=\\""+tzgg[i][1]+"\\" target=\\"_blank\\">"'
            '+tzgg[i][0]+"</a><span>"+tzgg[i][2]+"</span></li>";}'
            'document.getElementById("tzggList").innerHTML=h;</script>'
        )
        b.page("/xxgk/tzgg.htm", self.layout("通知公告", content, 1), modified=entries[0][2])
        b.world.js_only[NOTICES] = [BASE + p for _, p, _ in entries]

    def reports(self) -> None:
        b = self.b
        items = report_items()
        specs = [
            ReportSpec(
                site_id=SITE_ID,
                school=SCHOOL,
                year_form="2020—2021学年",
                academic_year="2020-2021",
                fmt="docx",
                url=BASE + download_path(4570),
                page_url="",
                portal=PORTAL,
                items=items,
                applications=3,
                applications_text="2020—2021学年，学校收到信息公开申请3件，均已按规定程序予以答复。",
                signed=date(2021, 11, 15),
                annex_table=True,
            )
        ]
        if self.day >= 2:
            specs.append(
                ReportSpec(
                    site_id=SITE_ID,
                    school=SCHOOL,
                    year_form="2021—2022学年",
                    academic_year="2021-2022",
                    fmt="pdf",
                    url=BASE + download_path(4571),
                    page_url="",
                    portal=PORTAL,
                    items=items,
                    applications=5,
                    applications_text="本学年共收到信息公开申请5件，已全部按期答复，未收取任何费用。",
                    signed=date(2022, 11, 18),
                    annex_table=True,
                    first_day=2,
                )
            )
        entries = []
        for fid, spec in zip((4570, 4571)[: len(specs)], specs, strict=True):
            assert spec.signed is not None
            ext = spec.fmt
            name = f"{spec.title}.{ext}"
            ctype = {
                "pdf": "application/pdf",
                "docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
            }[ext]
            disp = f"attachment; filename*=UTF-8''{quote(name)}".encode()
            self.attach(fid, render(spec), ctype, disp, spec.signed)
            page = self._article_at(
                f"/info/1026/{2400 + fid - 4570}.htm",
                spec.title,
                spec.signed,
                [f"根据教育部有关要求，现将{spec.title}予以公布。"],
                [(fid, name)],
            )
            spec.page_url = BASE + page
            entries.append((spec.title, page, spec.signed))
            b.world.reports.append(truth_record(spec))
        b.world.report_items[SITE_ID] = items
        entries.sort(key=lambda e: e[2], reverse=True)
        content = '<div class="lm_title">信息公开年度报告</div>' + self.list_block(entries, 1)
        b.page("/xxgk/ndbg.htm", self.layout("年度报告", content, 1), modified=entries[0][2])

    def misc(self) -> None:
        b = self.b
        # directory of checklist items
        rows = []
        last = 0
        for it in ITEMS:
            if it.category != last:
                rows.append(f"<h4>{it.category_heading}</h4>")
                last = it.category
            url = item_url(it.number)
            href = url[len(BASE) + len("/xxgk/") :] if url.startswith(BASE + "/xxgk/") else url
            rows.append(f'<p><a href="{href}">{it.number}. {escape(it.title)}</a></p>')
        content = '<div class="lm_title">信息公开目录</div><div class="ml">' + "".join(rows) + "</div>"
        b.page("/xxgk/xxgkml.htm", self.layout("信息公开目录", content, 1), modified=date(2021, 4, 1))
        # JS redirect page
        js = html_page(
            "信息公开", '<script type="text/javascript">window.location.href="xxgk/xxgkml.htm";</script>'
        )
        # A crawler that renders (this site is render = "auto") records the script redirect.
        b.page("/xxgk.htm", js, modified=date(2020, 6, 1), follow_to=BASE + "/xxgk/xxgkml.htm",
               state="redirected")
        b.world.js_redirects[JS_REDIRECT] = BASE + "/xxgk/xxgkml.htm"
        # 301 -> 302 -> 200
        b.redirect("/old/xxgk.htm", BASE + "/xxgk/xxgk_old.htm", status=301)
        b.redirect("/xxgk/xxgk_old.htm", "/index.htm", status=302)
        # SSO redirect loop
        service = quote(LOOP_URL, safe="")
        b.redirect("/system/login.jsp", f"/sso/login.htm?service={service}", state="redirect_loop")
        b.redirect(f"/sso/login.htm?service={service}", LOOP_URL, state="redirect_loop")
        # robots-excluded search page
        b.page(
            "/system/resource/search.jsp",
            self.layout("高级检索", "<form></form>", 2),
            modified=date(2020, 1, 1),
        )

    def home(self) -> None:
        b = self.b
        d = date(2022, 6, 1)
        about = f"{SCHOOL}简介"
        # The about page's header prints today's date (and 农历) server-side: its bytes change
        # every day, its text does not (cosmetic-only).
        widget = f'<div class="date">今天是：<span id="nowDate">{today_cn(self.day, lunar=True)}</span></div>'
        about_path = self._article_at(
            "/info/1020/1001.htm", about, d, filler("学校概况", b.rng("about"), 3), [], top_extra=widget
        )
        b.world.mark_cosmetic(BASE + about_path)
        if self.day >= 2:
            about_note = "<p>（本页于2022年11月21日更新）</p>"
            modified = SIM_TODAY[2]
        else:
            about_note, modified = "", d
        content = (
            f'<div class="intro"><a href="{about_path.lstrip("/")}">{about}</a>{about_note}</div>'
            '<div class="links">'
            '<a href="old/xxgk.htm">旧版信息公开网</a> <a href="system/login.jsp">管理登录</a> '
            '<a href="system/resource/search.jsp">高级检索</a> '
            f'<a href="{H.CWC}/">计划财务处</a> <a href="{H.MOE_GONE}">教育部原信息公开栏目</a> '
            f'<a href="{H.MOE_NOTICE_2022}">年度报告工作通知</a></div>'
        )
        b.page("/index.htm", self.layout("首页", content, 0), modified=modified)


def build(world: World) -> None:
    """Add the VSB site to ``world``."""
    _Site(world).build()
