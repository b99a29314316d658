"""WebPlus/Sudy CMS imitation: ``xxgk.webplus-univ.edu.cn`` (模拟理工大学, 本科).

Layout: home ``/main.htm``; columns ``/NNNN/list.htm`` (paging ``list2.htm`` …);
articles ``/YYYY/MMDD/cNNNNaNNNNNN/page.htm``; attachments
``/_upload/article/files/xx/yy/<hex>.<ext>``.  Annual reports are PDFs in column 2603.

Pathologies: 404 article, 410 attachment, soft-404 column (您访问的页面不存在),
near-miss article about "404 错误页面的优化" (ok), empty column, JS-only column
(``document.write``), meta-refresh ``/index.htm``, 429 search URL (always), two pages
that answer 429 / 503 with ``Retry-After: 1`` once and then 200 (ok), robots-excluded
``/_private/``, a .pdf answering an HTML error page, a truncated .pdf, a PDF served as
``application/octet-stream`` (ok), a ``?utm_source=`` variant of a link (truth key
drops it), a Ruishu-protected admissions host for checklist item 7.
Cosmetic: the guide article's 浏览次数 counter grows every day (article text unchanged).
"""

from __future__ import annotations

from datetime import date, timedelta
from html import escape

from simweb.checklist import ITEMS
from simweb.content import SIM_TODAY, filler, html_page, nginx_error, rate_limited, soft_404, visits
from simweb.docs import docx_bytes, fake_xls, simple_pdf, zip_bytes
from simweb.model import SiteInfo, World
from simweb.reports import ReportSpec, render, truth_record
from simweb.sites import helpers as H
from simweb.sites.common import SiteBuilder, implicit

HOST = "xxgk.webplus-univ.edu.cn"
BASE = f"http://{HOST}"
SITE_ID = "webplus"
SCHOOL = "模拟理工大学"
PORTAL = BASE + "/main.htm"

ITEM_COLUMNS = [
    2598,
    2599,
    2600,
    2601,
    2602,
    2603,
    2639,
    2640,
    2641,
    2642,
    2644,
    2645,
    2646,
    2647,
    2671,
    2672,
    2673,
    2674,
    2675,
    2676,
    2677,
    2695,
    2696,
    2697,
    2698,
    2699,
    2707,
    2708,
    2709,
    2710,
    2711,
    2712,
    2713,
    2714,
    2715,
    2593,
    2732,
    2733,
    2734,
    2594,
    2745,
    2746,
    2595,
    2751,
    2752,
    2753,
    2762,
    2763,
    2766,
    2768,
]
NOTICES, GUIDE, DIRECTORY, APPLY, SPECIAL = 2580, 2581, 2582, 2583, 2585
REPORTS = 2603
REPORTS_ITEM = 6

EMPTY_ITEM = 23  # column with an empty list
SOFT404_ITEM = 26
NOTFOUND_ITEM = 46  # 404 on day 1, fixed on day 2
RUISHU_ITEM = 7
MISSING_ITEMS = (45, 49)

ZSB_ITEM_URL = H.ZSB + "/zsxx/zszc.htm"
SEARCH_URL = BASE + "/_web/search/doSearch.do?locale=zh_CN&request_locale=zh_CN"
#: Pages that answer 429 (resp. 503) with ``Retry-After: 1`` the first time, then 200.
THROTTLED_429 = BASE + "/_web/stat/visit.htm"
THROTTLED_503 = BASE + "/_web/calendar/term.htm"
PRIVATE_URL = BASE + "/_private/staff.htm"
OLD_HOME = BASE + "/index.htm"


def item_url(n: int) -> str:
    """URL printed for checklist item ``n`` (site directory page and reports)."""
    if n == RUISHU_ITEM:
        return ZSB_ITEM_URL
    return f"{BASE}/{ITEM_COLUMNS[n - 1]}/list.htm"


def report_items() -> dict[int, str]:
    """Item number -> URL as listed in the reports' 清单事项公开情况表."""
    return {it.number: item_url(it.number) for it in ITEMS if it.number not in MISSING_ITEMS}


class _Site:
    def __init__(self, world: World) -> None:
        self.b = SiteBuilder(world, HOST, server="nginx", seed=101)
        self.day = world.day
        self.aid = 245000

    # -- templates -------------------------------------------------------------
    def layout(self, title: str, content: str) -> str:
        nav = "".join(
            f'<li><a href="{href}">{name}</a></li>'
            for href, name in [
                ("/main.htm", "首页"),
                (f"/{GUIDE}/list.htm", "信息公开指南"),
                (f"/{DIRECTORY}/list.htm", "信息公开目录"),
                (f"/{APPLY}/list.htm", "依申请公开"),
                (f"/{REPORTS}/list.htm", "年度报告"),
                (f"/{NOTICES}/list.htm", "通知公告"),
            ]
        )
        body = (
            f'<div class="header"><div class="logo">{SCHOOL}信息公开网</div>'
            f'<ul class="wp_nav">{nav}</ul></div>\n<div class="main">{content}</div>\n'
            f'<div class="footer">版权所有 © {SCHOOL} <a href="/index.htm">旧版首页</a></div>'
        )
        return html_page(f"{title}-{SCHOOL}信息公开网", body)

    def list_html(self, entries: list[tuple[str, str, date]]) -> str:
        lis = "".join(
            f"<li class=\"news n{i} clearfix\"><span class=\"news_title\"><a href='{href}' target='_blank' "
            f"title='{escape(t)}'>{escape(t)}</a></span><span class=\"news_meta\">{d.isoformat()}</span></li>\n"
            for i, (t, href, d) in enumerate(entries, start=1)
        )
        return f'<div id="wp_news_w6"><ul class="news_list list2">\n{lis}</ul></div>'

    def paging(self, col: int, page: int, pages: int, total: int, per: int) -> str:
        def href(p: int) -> str:
            return f"/{col}/list.htm" if p == 1 else f"/{col}/list{p}.htm"

        nav = []
        if page > 1:
            nav.append(f'<a class="first" href="{href(1)}" target="_self"><span>第一页</span></a>')
            nav.append(f'<a class="prev" href="{href(page - 1)}" target="_self"><span>上一页</span></a>')
        else:
            nav.append('<a class="first" href="javascript:void(0);" target="_self"><span>第一页</span></a>')
        if page < pages:
            nav.append(f'<a class="next" href="{href(page + 1)}" target="_self"><span>下一页</span></a>')
            nav.append(f'<a class="last" href="{href(pages)}" target="_self"><span>尾页</span></a>')
        return (
            '<div id="wp_paging_w6"><ul class="wp_paging clearfix"><li class="pages_count">'
            f'<span class="per_page">每页&nbsp;<em class="per_count">{per}</em>&nbsp;记录&nbsp;</span>'
            f'<span class="all_count">总共&nbsp;<em class="all_count">{total}</em>&nbsp;记录&nbsp;</span></li>'
            f'<li class="page_nav">{"".join(nav)}</li><li class="page_jump"><span class="pages">页码&nbsp;'
            f'<em class="curr_page">{page}</em>/<em class="all_pages">{pages}</em></span></li></ul></div>'
        )

    def column(self, col: int, name: str, entries: list[tuple[str, str, date]], per: int = 12) -> None:
        pages = max(1, -(-len(entries) // per))
        for p in range(1, pages + 1):
            chunk = entries[(p - 1) * per : p * per]
            content = (
                f'<div class="col_title"><h2>{escape(name)}</h2></div>'
                + self.list_html(chunk)
                + self.paging(col, p, pages, len(entries), per)
            )
            modified = max((d for _, _, d in chunk), default=date(2020, 9, 1))
            path = f"/{col}/list.htm" if p == 1 else f"/{col}/list{p}.htm"
            self.b.page(
                path, self.layout(name, content), modified=modified, state="ok" if entries else "empty"
            )

    def article(
        self,
        col: int,
        title: str,
        d: date,
        paras: list[str],
        attachments: list[tuple[str, str]] = (),  # type: ignore[assignment]
        *,
        extra_html: str = "",
        modified: date | None = None,
        aid: int | None = None,
        metas_extra: str = "",
    ) -> str:
        if aid is None:
            self.aid += 1
            aid = self.aid
        path = f"/{d.year}/{d.month:02d}{d.day:02d}/c{col}a{aid}/page.htm"
        body = "".join(f"<p>{escape(p)}</p>" for p in paras) + extra_html
        if attachments:
            body += "<p>附件：</p>" + "".join(
                f"<p><a href=\"{href}\" sudyfile-attr=\"{{'title':'{escape(text)}'}}\">{escape(text)}</a></p>"
                for href, text in attachments
            )
        content = (
            f'<div class="article"><h1 class="arti_title">{escape(title)}</h1>'
            f'<p class="arti_metas"><span class="arti_update">发布时间：{d.isoformat()}</span>{metas_extra}</p>'
            f'<div class="entry"><div class="read"><div class="wp_articlecontent">{body}</div></div></div></div>'
        )
        self.b.page(path, self.layout(title, content), modified=modified or d)
        return path

    def upload(self, key: str, ext: str) -> str:
        h = self.b.hexname(key)
        return f"/_upload/article/files/{h[:2]}/{h[2:4]}/{h[4:]}.{ext}"

    # -- content ---------------------------------------------------------------
    def build(self) -> None:
        b = self.b
        world = b.world
        world.robots[HOST] = ["/_private/"]
        world.not_found[HOST] = lambda url: implicit(nginx_error(404))
        world.sites.append(
            SiteInfo(SITE_ID, SCHOOL, [PORTAL], [HOST], kind="本科", render="auto", max_pages=2000)
        )

        # checklist item columns
        for it in ITEMS:
            col = ITEM_COLUMNS[it.number - 1]
            if it.number == REPORTS_ITEM:
                continue
            if it.number == EMPTY_ITEM:
                self.column(col, it.label, [])
                continue
            if it.number == SOFT404_ITEM:
                b.put(f"/{col}/list.htm", soft_404("webplus"))
                continue
            if it.number == NOTFOUND_ITEM and self.day == 1:
                b.error(f"/{col}/list.htm", nginx_error(404))
                continue
            entries = []
            count = 1 if it.number == NOTFOUND_ITEM else 2
            for k in range(count):
                d = b.date_between(date(2020, 9, 1), date(2022, 9, 30), (it.number, k))
                title = f"{SCHOOL}{it.label}（{d.year}年）" if k == 0 else f"关于公布{it.label}相关信息的通知"
                atts = self.attachments_for(it.number, k, d)
                paras = filler(it.label, b.rng((it.number, k)), 3)
                modified = None
                if it.number == 31 and k == 0 and self.day >= 2:
                    paras = paras + ["（2022年11月21日更新：补充了2023届毕业生就业指导服务安排。）"]
                    modified = SIM_TODAY[2]
                path = self.article(
                    col, title, d, paras, atts, modified=modified, aid=245000 + it.number * 10 + k
                )
                entries.append((title, path, d))
            entries.sort(key=lambda e: e[2], reverse=True)
            self.column(col, it.label, entries)

        self.reports_column()
        self.notices()
        self.special_pages()
        self.home()

    def attachments_for(self, item: int, k: int, d: date) -> list[tuple[str, str]]:
        b = self.b
        if k != 0:
            return []
        if item == 19:  # ok PDF
            path = self.upload("budget", "pdf")
            data = simple_pdf(f"{SCHOOL}{d.year}年部门预算", ("收支预算总表、收入预算表、支出预算表。",))
            b.file(path, data, "application/pdf", modified=d)
            return [(path, f"{SCHOOL}{d.year}年部门预算.pdf")]
        if item == 20:  # real PDF with a wrong content type: still ok
            path = self.upload("final-accounts", "pdf")
            data = simple_pdf(f"{SCHOOL}{d.year}年部门决算", ("收支决算总表、收入决算表、支出决算表。",))
            b.file(path, data, "application/octet-stream", modified=d)
            return [(path, f"{SCHOOL}{d.year}年部门决算.pdf")]
        if item == 21:
            path = self.upload("fees", "xls")
            b.file(path, fake_xls("收费标准"), "application/vnd.ms-excel", modified=d)
            return [(path, "学生收费项目及标准一览表.xls")]
        if item == 2:
            path = self.upload("charter", "docx")
            data = docx_bytes("模拟理工大学章程", (("title", "模拟理工大学章程"), ("p", "第一章 总则")))
            b.file(
                path,
                data,
                "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
                modified=d,
            )
            return [(path, "模拟理工大学章程.docx")]
        if item == 18:
            path = self.upload("bidding", "zip")
            data = zip_bytes((("招标公告.txt", "仪器设备采购招标公告".encode()),))
            b.file(path, data, "application/zip", modified=d)
            return [(path, "招标文件.zip")]
        if item == 33:  # .pdf link answering an HTML error page
            path = self.upload("employment-report", "pdf")
            html = html_page("文件不存在", "<h2>文件不存在或已被删除</h2>")
            b.page(path, html, modified=d, state="type_mismatch")
            return [(path, f"{SCHOOL}{d.year}届毕业生就业质量年度报告.pdf")]
        if item == 35:  # truncated PDF (Content-Length larger than what is sent)
            path = self.upload("teaching-quality", "pdf")
            data = simple_pdf(f"{SCHOOL}本科教学质量报告", tuple(filler("本科教学质量", b.rng("tq"), 6)))
            b.file(
                path, data, "application/pdf", modified=d, state="type_mismatch", send_bytes=len(data) // 3
            )
            return [(path, f"{SCHOOL}本科教学质量报告.pdf")]
        if item == 5:  # attachment removed: 410 Gone
            path = self.upload("plan-2020", "pdf")
            b.error(path, nginx_error(410))
            return [(path, "学校“十四五”发展规划（征求意见稿）.pdf")]
        return []

    def report_specs(self) -> list[ReportSpec]:
        items = report_items()
        r1 = ReportSpec(
            site_id=SITE_ID,
            school=SCHOOL,
            year_form="2020-2021学年",
            academic_year="2020-2021",
            fmt="pdf",
            url=BASE + self.upload("report-2021", "pdf"),
            page_url="",
            portal=PORTAL,
            items=items,
            applications=12,
            applications_text="本年度共收到信息公开申请12件，已全部按期答复，其中同意公开8件，部分公开2件，"
            "不予公开2件。未收取任何费用。未收到举报、复议、诉讼。",
            signed=date(2021, 10, 10),
        )
        r2 = ReportSpec(
            site_id=SITE_ID,
            school=SCHOOL,
            year_form="2021～2022学年",
            academic_year="2021-2022",
            fmt="pdf",
            url=BASE + self.upload("report-2022", "pdf"),
            page_url="",
            portal=PORTAL,
            items=items,
            applications=7,
            applications_text="2021～2022学年，学校共受理信息公开申请7件，均已在规定期限内答复，其中同意公开5件，"
            "部分公开1件，因申请内容不明确告知申请人补正1件。",
            signed=date(2022, 10, 28),
            variant_titles=True,
        )
        return [r1, r2]

    def reports_column(self) -> None:
        b = self.b
        entries = []
        for spec in self.report_specs():
            assert spec.signed is not None
            d = spec.signed
            pdf = render(spec)
            path = spec.url[len(BASE) :]
            b.file(path, pdf, "application/pdf", modified=d)
            player = (
                f'<div class="wp_pdf_player" pdfsrc="{path}" sudy-wp-context="" '
                f'sudy-wp-src="{escape(spec.title)}.pdf" style="width:100%;height:800px;"></div>'
            )
            page = self.article(
                REPORTS,
                spec.title,
                d,
                [f"现将《{spec.title}》予以公布。"],
                [(path, f"{spec.title}.pdf")],
                extra_html=player,
            )
            spec.page_url = BASE + page
            entries.append((spec.title, page, d))
            b.world.reports.append(truth_record(spec))
        entries.sort(key=lambda e: e[2], reverse=True)
        self.column(REPORTS, "信息公开年度报告", entries)
        b.world.report_items[SITE_ID] = report_items()

    def notices(self) -> None:
        b = self.b
        entries = []
        titles = [
            "关于开展2022年度信息公开工作自查的通知",
            "关于学校网站404错误页面优化工作的说明",
            "关于做好2022年寒假期间校园安全工作的通知",
            "学校召开信息公开工作推进会",
            "关于公布2022年第二批校级教学改革项目的通知",
        ]
        for n in range(30):
            d = date(2022, 10, 31) - timedelta(days=n * 23 + b.rng(("notice", n)).randrange(10))
            title = (
                titles[n] if n < len(titles) else f"关于{d.year}年{d.month}月份有关工作安排的通知（第{n}号）"
            )
            if n == 1:
                paras = [
                    "近期学校对信息公开网进行了改版，为改善访问体验，对404错误页面进行了优化：当用户访问的页面"
                    "不存在时，系统将给出明确提示并引导返回首页。",
                    "本次优化后，旧栏目地址将自动跳转到新栏目，欢迎师生提出意见建议。",
                ]
            else:
                paras = filler("信息公开", b.rng(("notice", n)), 2)
            aid = 100001 + n
            path = f"/{d.year}/{d.month:02d}{d.day:02d}/c{NOTICES}a{aid}/page.htm"
            if n == 7:  # deleted article: 404
                b.error(path, nginx_error(404))
            elif n == 4 and self.day >= 2:  # breaks on day 2
                b.error(path, nginx_error(404))
            else:
                self.article(NOTICES, title, d, paras, aid=aid)
            entries.append((title, path, d))
        if self.day >= 2:
            d = SIM_TODAY[2]
            title = "关于公布2021～2022学年信息公开工作年度报告的通知"
            path = self.article(
                NOTICES, title, d, ["学校2021～2022学年信息公开工作年度报告已在信息公开网公布。"], aid=100100
            )
            entries.insert(0, (title, path, d))
        self.notice_entries = entries
        self.column(NOTICES, "通知公告", entries)

    def special_pages(self) -> None:
        b = self.b
        # guide
        d = date(2021, 3, 15)
        guide = self.article(
            GUIDE,
            f"{SCHOOL}信息公开指南",
            d,
            filler("信息公开指南", b.rng("guide"), 2),
            aid=245900,
            # WebPlus prints the visit counter in the article metas (label and number in
            # separate nodes); it grows every day: a cosmetic-only change.
            metas_extra=(
                '<span class="arti_views">浏览次数：<span class="WP_VisitCount" '
                f'url="/_visitcountdisplay?siteId=64&amp;type=3&amp;articleId=245900">'
                f"{visits(1287, self.day)}</span></span>"
            ),
            extra_html=(
                f'<p>依据：<a href="{H.MOE_BANFA}">《高等学校信息公开办法》</a>、'
                f'<a href="{H.MOE_QINGDAN}">《高等学校信息公开事项清单》</a></p>'
            ),
        )
        b.world.mark_cosmetic(BASE + guide)
        self.column(GUIDE, "信息公开指南", [(f"{SCHOOL}信息公开指南", guide, d)])
        # apply
        d = date(2021, 3, 16)
        apply_page = self.article(
            APPLY, "依申请公开办理流程", d, filler("依申请公开", b.rng("apply"), 2), aid=245901
        )
        self.column(APPLY, "依申请公开", [("依申请公开办理流程", apply_page, d)])
        # directory of the 50 items (links exactly as in the reports, including missing ones)
        rows = []
        last = 0
        for it in ITEMS:
            if it.category != last:
                rows.append(f"<h3>{it.category_heading}</h3>")
                last = it.category
            rows.append(
                f'<li><a href="{item_url(it.number)}" title="{escape(it.title)}">({it.number}) {escape(it.title)}</a></li>'
            )
        content = (
            '<div class="col_title"><h2>信息公开目录</h2></div><div class="xxgk_ml"><ul>'
            + "".join(rows)
            + "</ul></div>"
        )
        b.page(f"/{DIRECTORY}/list.htm", self.layout("信息公开目录", content), modified=date(2021, 3, 1))
        # JS-only column: entries written by document.write from a JS array
        js_entries = []
        for k, label in enumerate(["党务公开", "校务公开", "财务公开", "招生公开"]):
            d2 = date(2022, 3, 1 + k)
            path = self.article(SPECIAL, f"{label}专题", d2, filler(label, b.rng(label), 2), aid=300001 + k)
            js_entries.append((f"{label}专题", path, d2))
        data = ",".join(f'{{"t":"{t}","u":"{u}","d":"{d2.isoformat()}"}}' for t, u, d2 in js_entries)
        script = (
            f'<script type="text/javascript">var ztgkData=[{data}];'
            "for(var i=0;i<ztgkData.length;i++){var e=ztgkData[i];"
            'document.write(\'<li class="news"><span class="news_title"><a href="\'+e.u+\'" target="_blank" '
            "title=\"'+e.t+'\">'+e.t+'</a></span><span class=\"news_meta\">'+e.d+'</span></li>');}</script>"
        )
        content = (
            '<div class="col_title"><h2>专题公开</h2></div>'
            f'<div id="wp_news_w6"><ul class="news_list list2">{script}</ul></div>'
        )
        b.page(f"/{SPECIAL}/list.htm", self.layout("专题公开", content), modified=date(2022, 3, 4))
        b.world.js_only[BASE + f"/{SPECIAL}/list.htm"] = [BASE + u for _, u, _ in js_entries]
        # meta refresh old home, 429 search, robots-excluded private page
        refresh = html_page(
            SCHOOL,
            "<p>页面跳转中……</p>",
            head_extra='<meta http-equiv="refresh" content="0;url=/main.htm">\n',
        )
        b.page("/index.htm", refresh, modified=date(2019, 9, 1), state="redirected", follow_to=PORTAL)
        b.put(SEARCH_URL, rate_limited())
        # pages behind a load-shedding front end: "come back in 1 s" once, then served
        for url, title, status in ((THROTTLED_429, "访问统计", 429), (THROTTLED_503, "校历", 503)):
            res = b.page(url, self.layout(title, f"<h2>{title}</h2><p>{title}（2022-2023学年）。</p>"),
                         modified=date(2022, 9, 1))
            res.throttle_first, res.throttle_status = 1, status
        b.page(
            "/_private/staff.htm",
            self.layout("内部资料", "<p>教职工内部资料，仅限校内访问。</p>"),
            modified=date(2021, 1, 1),
        )

    def home(self) -> None:
        b = self.b
        latest = "".join(
            f'<li><a href="{href}" title="{escape(t)}">{escape(t)}</a><span>{d.isoformat()}</span></li>'
            for t, href, d in self.notice_entries[:8]
        )
        links = [
            (H.MOE_HOME, "中华人民共和国教育部"),
            (H.ZSB + "/", "本科招生网"),
            (H.SLOW, "校友网"),
        ]
        friend = "".join(f'<li><a href="{u}" target="_blank">{t}</a></li>' for u, t in links)
        columns = "".join(
            f'<li><a href="/{c}/list.htm">{n}</a></li>'
            for c, n in [(SPECIAL, "专题公开"), (REPORTS, "信息公开年度报告"), (DIRECTORY, "信息公开目录")]
        )
        content = (
            f'<div class="search"><a href="{SEARCH_URL[len(BASE) :]}">站内搜索</a></div>'
            f'<div class="post"><h3>通知公告</h3><ul>{latest}</ul>'
            # tracking-parameter variant: truth key is /2580/list.htm (utm_source dropped)
            f'<a class="more" href="/{NOTICES}/list.htm?utm_source=home">更多&gt;&gt;</a></div>'
            f'<div class="cols"><ul>{columns}</ul></div>'
            f'<div class="private"><a href="/_private/staff.htm">教职工内部资料</a></div>'
            f'<div class="tools"><a href="{THROTTLED_429[len(BASE) :]}">访问统计</a> '
            f'<a href="{THROTTLED_503[len(BASE) :]}">校历</a></div>'
            f'<div class="links"><h3>友情链接</h3><ul>{friend}</ul></div>'
        )
        modified = max(d for _, _, d in self.notice_entries[:8])
        b.page("/main.htm", self.layout("首页", content), modified=modified)


def build(world: World) -> None:
    """Add the WebPlus site to ``world``."""
    _Site(world).build()
