"""Change detection between crawls: new, changed, removed, reappeared, links removed."""

from __future__ import annotations

import json

import pytest

from archive.changes import MAX_DIFF_BYTES, MAX_DIFF_LINES, detect_changes, normalize_text, short_diff
from archive.store import ArchiveWriter, finish_crawl, start_crawl, upsert_sites
from crawler.items import LinkCheck, LinkSource
from crawler.maintext import main_text

SITE = "s"
HOME, NEWS, GONE, ORPHAN, REPORT = ("http://s.cn/", "http://s.cn/news.htm", "http://s.cn/gone.htm",
                                    "http://s.cn/orphan.htm", "http://s.cn/report.pdf")


def page(body: str, *, counter: int = 1, today: str = "2021年10月10日 星期日",
         generated: str = "2021-10-10 08:00:00") -> str:
    return (f"<html><head><title>t</title></head><body><div class='content'>{body}"
            f"<p>浏览次数：{counter}</p><p>今天是{today}</p>"
            f"<p>页面生成时间：{generated}</p></div></body></html>")


class Site:
    """Builds crawls of one site through the real archive writer."""

    def __init__(self, db) -> None:
        self.db = db
        upsert_sites(db, [{"id": SITE, "name": "Site", "portal": json.dumps([HOME])}])
        self.writer = ArchiveWriter(db, commit_every=1000)
        self.crawl = 0
        self.day = 0

    def start(self) -> int:
        self.crawl = start_crawl(self.db, SITE)
        self.day += 1
        return self.crawl

    def html(self, url: str, html: str, *, links: dict[str, str] | None = None, state: str = "ok",
             status: int = 200) -> None:
        at = f"2026-01-{self.day:02d}T00:00:00Z"
        self.writer.record_check(LinkCheck(
            site_id=SITE, crawl_id=self.crawl, url=url, checked_at=at, state=state, rule="test",
            status_code=status, content_type="text/html; charset=utf-8", body=html.encode(),
            headers={"content-type": "text/html; charset=utf-8"}, encoding="utf-8", title="t",
            main_text=main_text(html)))
        for to_url, anchor in (links or {}).items():
            self.writer.record_source(LinkSource(site_id=SITE, crawl_id=self.crawl, from_url=url,
                                                 to_url=to_url, anchor_text=anchor, seen_at=at))

    def file(self, url: str, data: bytes) -> None:
        self.writer.record_check(LinkCheck(
            site_id=SITE, crawl_id=self.crawl, url=url, checked_at=f"2026-01-{self.day:02d}T00:00:00Z",
            state="ok", rule="test", status_code=200, content_type="application/pdf", body=data,
            headers={"content-type": "application/pdf"}, filename="report.pdf"))

    def broken(self, url: str, state: str = "not_found", status: int = 404) -> None:
        self.writer.record_check(LinkCheck(
            site_id=SITE, crawl_id=self.crawl, url=url, checked_at=f"2026-01-{self.day:02d}T00:00:00Z",
            state=state, rule="test", status_code=status))

    def finish(self, status: str = "finished") -> int:
        self.writer.commit()
        finish_crawl(self.db, self.crawl, status)
        return self.crawl


def changes(db, crawl_id: int) -> dict[tuple[str, str], dict]:
    cursor = db.execute("SELECT * FROM changes WHERE crawl_id = ? ORDER BY id", [crawl_id])
    columns = [d[0] for d in cursor.description]
    rows = [dict(zip(columns, row, strict=True)) for row in cursor]
    return {(row["url"], row["kind"] if row["kind"] != "link_removed_from_source"
             else "link_removed:" + json.loads(row["detail"])["to_url"]): row for row in rows}


@pytest.fixture
def site(db) -> Site:
    return Site(db)


def first_crawl(site: Site) -> int:
    site.start()
    site.html(HOME, page("<p>学校信息公开</p><p>欢迎访问</p>"),
              links={NEWS: "新闻", GONE: "旧页面", ORPHAN: "孤立页面", REPORT: "年度报告"})
    site.html(NEWS, page("<p>通知一</p><p>通知二</p>"),
              links={"http://s.cn/n1.htm": "通知一", "http://s.cn/n2.htm": "通知二"})
    site.html(GONE, page("<p>将被删除</p>"))
    site.html(ORPHAN, page("<p>不再链接</p>"))
    site.file(REPORT, b"%PDF-1.4 version one")
    return site.finish()


def test_first_crawl_everything_is_new(db, site):
    crawl = first_crawl(site)
    assert detect_changes(db, [crawl]) == 5
    found = changes(db, crawl)
    assert {kind for _, kind in found} == {"new"}
    assert found[(HOME, "new")]["new_snapshot_id"] and found[(HOME, "new")]["prev_snapshot_id"] is None
    assert found[(REPORT, "new")]["detail"].startswith("file: ")


def test_second_crawl_detects_real_changes_only(db, site):
    c1 = first_crawl(site)
    detect_changes(db, [c1])
    site.start()
    # Cosmetic only: extra markup and whitespace, a new counter, a new date widget, a new
    # generation time. Not a change.
    site.html(HOME, page("<p><span>学校</span>信息公开 </p>\n\n<p>  欢迎访问</p>", counter=999,
                         today="2021年10月11日 星期一", generated="2021-10-11 09:30:12"),
              links={NEWS: "新闻", GONE: "旧页面", REPORT: "年度报告"})
    # A real change, and one of its links is gone.
    site.html(NEWS, page("<p>通知一</p><p>通知三（新）</p>"),
              links={"http://s.cn/n1.htm": "通知一", "http://s.cn/n3.htm": "通知三"})
    site.broken(GONE)
    site.file(REPORT, b"%PDF-1.4 version two, longer")
    c2 = site.finish()

    added = detect_changes(db, [c2])
    found = changes(db, c2)
    assert (HOME, "changed") not in found and (HOME, "new") not in found
    news = found[(NEWS, "changed")]
    assert "-通知二" in news["diff"] and "+通知三（新）" in news["diff"]
    assert news["size_of_change"] > 0 and news["prev_snapshot_id"] < news["new_snapshot_id"]

    report = found[(REPORT, "changed")]
    old_sha, new_sha = (row[0] for row in db.execute(
        "SELECT sha256 FROM snapshots WHERE url = ? ORDER BY id", [REPORT]))
    assert report["detail"].startswith("file replaced:")
    assert old_sha in report["detail"] and new_sha in report["detail"]
    assert "20 → 28 bytes" in report["detail"]

    assert found[(GONE, "removed")]["detail"] == "state: not_found (HTTP 404)"
    orphan = found[(ORPHAN, "removed")]
    assert orphan["detail"] == "no longer linked or checked" and orphan["prev_snapshot_id"]

    removed_link = found[(NEWS, "link_removed:http://s.cn/n2.htm")]
    assert json.loads(removed_link["detail"]) == {"to_url": "http://s.cn/n2.htm", "anchor_text": "通知二"}
    # HOME's markup changed, so its links were compared: ORPHAN is no longer linked.
    assert (HOME, "link_removed:" + ORPHAN) in found
    assert len(found) == added == 6

    # Idempotent: running again for the same crawl adds nothing.
    assert detect_changes(db, [c2]) == 0
    assert db.execute("SELECT COUNT(*) FROM changes WHERE crawl_id = ?", [c2]).fetchone()[0] == 6

    # Third crawl: the removed page is back; nothing else changed.
    site.start()
    site.html(HOME, page("<p>学校信息公开</p><p>欢迎访问</p>", counter=5),
              links={NEWS: "新闻", GONE: "旧页面", REPORT: "年度报告"})
    site.html(NEWS, page("<p>通知一</p><p>通知三（新）</p>"),
              links={"http://s.cn/n1.htm": "通知一", "http://s.cn/n3.htm": "通知三"})
    site.html(GONE, page("<p>将被删除</p>"))
    site.file(REPORT, b"%PDF-1.4 version two, longer")
    c3 = site.finish()
    detect_changes(db, [c3])
    found = changes(db, c3)
    assert set(found) == {(GONE, "reappeared")}
    # ...and it is not "removed" again in a later crawl just because it was removed once.
    site.start()
    site.broken(GONE)
    site.html(HOME, page("<p>学校信息公开</p><p>欢迎访问</p>"), links={GONE: "旧页面"})
    c4 = site.finish("incomplete")
    detect_changes(db, [c4])
    found = changes(db, c4)
    assert (GONE, "removed") in found
    # An incomplete crawl's silence is no evidence: NEWS and REPORT were simply not reached.
    assert (NEWS, "removed") not in found and (REPORT, "removed") not in found


def test_transient_failures_are_not_removals_and_no_duplicate_removal(db, site):
    c1 = first_crawl(site)
    detect_changes(db, [c1])
    site.start()
    site.html(HOME, page("<p>学校信息公开</p><p>欢迎访问</p>"),
              links={NEWS: "新闻", GONE: "旧页面", ORPHAN: "孤立页面", REPORT: "年度报告"})
    site.broken(NEWS, state="blocked", status=403)
    site.broken(GONE)
    site.broken(ORPHAN, state="timeout", status=None)
    site.broken(REPORT, state="server_error", status=500)
    c2 = site.finish()
    detect_changes(db, [c2])
    assert set(changes(db, c2)) == {(GONE, "removed")}
    site.start()
    site.html(HOME, page("<p>学校信息公开</p><p>欢迎访问</p>"), links={GONE: "旧页面"})
    site.broken(GONE)
    c3 = site.finish()
    detect_changes(db, [c3])
    assert (GONE, "removed") not in changes(db, c3)


def test_normalisation_drops_volatile_text_but_keeps_content():
    text = ("通知公告\n浏览次数：123\n点击数: 45次\n今天是2021年10月10日 星期日\n"
            "页面生成时间：2021-10-10 12:00:00\n执行时间 0.023 秒\nProcessed in 0.012 second(s), 8 queries\n"
            "您是第 1234 位访问者\n发布时间：2021-10-10\n   多个   空格  ")
    assert normalize_text(text) == ["通知公告", "发布时间：2021-10-10", "多个 空格"]


def _cms_article(day: int) -> str:
    """Fixture HTML in the shapes real CMSs print page furniture: the counter's label and
    number in separate inline nodes, a header date widget with 农历, an online counter and a
    generation time in unlabelled footer cells. Only the furniture depends on ``day``."""
    today = ("2022年11月20日 星期日 农历壬寅年九月廿七", "2022年11月21日 农历九月廿八 周一")[day - 1]
    return (
        "<html><head><title>学校章程</title></head><body>"
        f'<div class="top"><div class="riqi">今天是：<span id="d">{today}</span></div></div>'
        '<div class="article"><h1>学校章程</h1><p class="metas"><span>发布时间：2022-03-01</span>'
        f'<span class="views">浏览次数：<span class="WP_VisitCount">{1287 + day}</span></span>'
        f"<span>阅读 <b>{40 + day}</b> 次</span></p>"
        "<div class='entry'><p>第一条 为规范学校管理，制定本章程。</p>"
        "<p>第二条 学校在线申请服务 24 小时开放，本章程自2022年3月1日起施行。</p></div></div>"
        f"<table><tr><td>您是本站第 <font color=red>{25871 + day * 400}</font> 位访问者</td>"
        f"<td>当前在线：{12 - day}人</td><td>页面执行时间：{day * 7}毫秒</td></tr></table>"
        "</body></html>"
    )


def test_main_text_drops_cms_counters_and_date_widgets_but_keeps_content():
    one, two = main_text(_cms_article(1)), main_text(_cms_article(2))
    assert one == two
    for volatile in ("1288", "浏览次数", "农历", "星期", "周一", "您是", "在线：", "执行时间", "阅读"):
        assert volatile not in one, volatile
    # the article, its date and look-alike content ("在线申请", a number, a date) are kept
    assert "第一条 为规范学校管理，制定本章程。" in one.splitlines()
    assert "第二条 学校在线申请服务 24 小时开放，本章程自2022年3月1日起施行。" in one.splitlines()
    assert "发布时间：2022-03-01" in one
    # inline nodes stay on their block's line; a title and its date do not run together
    assert main_text("<ul><li><a href='/a'>关于放假的通知</a><span>2022-10-29</span></li></ul>") == \
        "关于放假的通知 2022-10-29"
    assert main_text("<p><span>学校</span>信息公开</p><p>欢迎</p>") == "学校信息公开\n欢迎"
    # dates and numbers inside sentences are content, not widgets or counters
    kept = "<p>会议定于2022年11月25日 周五召开</p><p>详情请查看：2022年招生简章</p>"
    assert main_text(kept) == "会议定于2022年11月25日 周五召开\n详情请查看：2022年招生简章"


def test_cosmetic_only_page_changes_are_not_reported(db, site):
    url = "http://s.cn/zhangcheng.htm"
    for day in (1, 2):
        site.start()
        site.html(url, _cms_article(day))
        crawl = site.finish()
        detect_changes(db, [crawl])
    assert changes(db, crawl) == {}
    # an older archive row whose main_text kept the counter and the widget on their own lines
    stale = "今天是：\n2022年11月22日 星期二\n学校章程\n浏览次数：\n1290\n第一条 为规范学校管理，制定本章程。"
    assert normalize_text(stale) == ["学校章程", "第一条 为规范学校管理，制定本章程。"]


def test_short_diff_is_bounded():
    old = [f"第{i}行 原来的内容" for i in range(500)]
    new = [f"第{i}行 修改后的内容，而且更长一些" for i in range(500)]
    diff = short_diff(old, new)
    assert len(diff.splitlines()) <= MAX_DIFF_LINES
    assert len(diff.encode("utf-8")) <= MAX_DIFF_BYTES
    assert diff.endswith("(diff truncated)")


def test_a_link_that_moved_to_another_page_was_not_removed(db, site):
    """A new item pushes the last one of page 1 onto page 2: no link disappeared."""
    a, b, c = "http://s.cn/a.htm", "http://s.cn/b.htm", "http://s.cn/c.htm"
    page2 = "http://s.cn/list2.htm"
    site.start()
    site.html(NEWS, page("<p>A</p><p>B</p>"), links={a: "A", b: "B", page2: "下页"})
    site.html(page2, page("<p>旧</p>"), links={NEWS: "上页"})
    detect_changes(db, [site.finish()])
    site.start()
    site.html(NEWS, page("<p>C</p><p>A</p>"), links={c: "C", a: "A", page2: "下页"})
    site.html(page2, page("<p>B</p><p>旧</p>"), links={b: "B", NEWS: "上页"})
    crawl = site.finish()
    detect_changes(db, [crawl])
    found = changes(db, crawl)
    assert not [key for key in found if key[1].startswith("link_removed")]
    assert {(NEWS, "changed"), (page2, "changed")} <= set(found)


def test_silence_about_a_page_the_crawl_never_reread_is_not_a_removal(db, site):
    """A page linked only from pages this crawl did not reach (a budget, a trap guard) is not
    "no longer linked": only a re-read source page that dropped the link is evidence."""
    deep, deeper = "http://s.cn/deep.htm", "http://s.cn/deeper.htm"
    site.start()
    site.html(HOME, page("<p>首页</p>"), links={deep: "深"})
    site.html(deep, page("<p>深</p>"), links={deeper: "更深"})
    site.html(deeper, page("<p>更深</p>"))
    detect_changes(db, [site.finish()])
    site.start()
    site.html(HOME, page("<p>首页</p>"), links={deep: "深"})
    site.writer.record_check(LinkCheck(  # over the page budget this time: never fetched
        site_id=SITE, crawl_id=site.crawl, url=deep, checked_at="2026-01-02T00:00:00Z",
        state="excluded", rule="budget"))
    crawl = site.finish()
    detect_changes(db, [crawl])
    assert changes(db, crawl) == {}


def test_evidence_capture_of_a_soft_404_is_not_a_good_snapshot(db, site):
    """The rendered screenshot capture kept beside a soft_404 check carries the check's
    state: the page was never good, so a later soft_404 is not a removal."""
    from crawler.items import Evidence

    missing = "http://s.cn/item30.htm"
    for day in (1, 2):
        site.start()
        site.html(HOME, page("<p>首页</p>"), links={missing: "事项30"})
        site.html(missing, page("<p>页面不存在</p>"), state="soft_404")
        if day == 1:
            site.writer.record_evidence(Evidence(
                site_id=SITE, crawl_id=site.crawl, url=missing, final_url=missing,
                fetched_at="2026-01-01T00:00:05Z", status_code=200, content_type="text/html",
                body=page("<p>页面不存在（渲染）</p>").encode(), screenshot=b"\x89PNG", reason="evidence: soft_404"))
        crawl = site.finish()
        detect_changes(db, [crawl])
        assert not [key for key in changes(db, crawl) if key[0] == missing], day


def test_a_redirect_reports_its_change_once_under_the_target(db, site):
    entry, main = "http://s.cn/index.htm", "http://s.cn/main.htm"

    def capture(text: str) -> None:
        at = f"2026-01-{site.day:02d}T00:00:00Z"
        for url in (entry, main):
            site.writer.record_check(LinkCheck(
                site_id=SITE, crawl_id=site.crawl, url=url, checked_at=at,
                state="redirected" if url == entry else "ok", rule="test", status_code=200,
                final_url=main, content_type="text/html; charset=utf-8", body=page(text).encode(),
                headers={"content-type": "text/html; charset=utf-8"}, encoding="utf-8",
                main_text=main_text(page(text))))

    site.start()
    capture("<p>旧的首页</p>")
    detect_changes(db, [site.finish()])
    site.start()
    capture("<p>新的首页</p>")
    crawl = site.finish()
    detect_changes(db, [crawl])
    assert set(changes(db, crawl)) == {(main, "changed")}


def test_members_of_a_trap_sampled_family_are_not_news(db, site):
    """The trap guard lets 50 calendar months through, not always the same 50."""
    def month(m: int) -> str:
        return f"http://s.cn/calendar.jsp?month={m}&year=2021"

    for day, fetched, refused in ((1, (1, 2), 3), (2, (2, 3), 4)):
        site.start()
        site.html(HOME, page("<p>首页</p>"), links={month(fetched[0]): "日历"})
        for m in fetched:
            site.html(month(m), page(f"<p>{m}月</p>"), links={month(m + 1): "下月"})
        site.writer.record_check(LinkCheck(
            site_id=SITE, crawl_id=site.crawl, url=month(refused), checked_at=f"2026-01-0{day}T00:00:00Z",
            state="excluded", rule="trap-guard"))
        crawl = site.finish()
        detect_changes(db, [crawl])
    found = changes(db, crawl)
    assert (month(3), "new") not in found and (month(1), "removed") not in found
    assert found == {}


# -- the simulated web's two days, against its ground truth -------------------------------------
def _day2_rows(path) -> list[dict]:
    import sqlite3

    with sqlite3.connect(path) as conn:
        conn.row_factory = sqlite3.Row
        day2 = [row[0] for row in conn.execute(
            "SELECT c.id FROM crawls c WHERE EXISTS"
            " (SELECT 1 FROM crawls e WHERE e.site_id = c.site_id AND e.id < c.id)")]
        assert day2, "the archive holds no second crawl"
        marks = ",".join("?" * len(day2))
        return [dict(row) for row in conn.execute(
            f"SELECT * FROM changes WHERE crawl_id IN ({marks}) ORDER BY id", day2)]


def test_day2_changes_match_the_simulated_web_truth(simweb_archive):
    """Every change the simulated web makes on day 2 is found with the right kind; nothing
    else is reported. The truth's categories map onto kinds as follows:

    * ``changed`` (ok both days, new bytes) → ``changed``;
    * ``broke`` → ``removed`` when day 2's state says the content is gone (404, soft 404,
      empty…); a 500 or a timeout is link health and reports nothing;
    * ``new``, and ``fixed`` pages that were never good before → ``new`` (their first good
      capture);
    * ``removed_links`` → ``link_removed_from_source`` on the page that dropped the link;
    * ``gone`` (no longer linked) → ``removed``;
    * ``cosmetic`` (counters, date widgets, when the simulated web has them) → no row.
    """
    from archive.changes import REMOVAL_STATES
    from simweb.truth import DAY2_CHANGES, TRAP_PREFIXES, expected_links

    day1, day2 = expected_links(1), expected_links(2)
    expected: set[tuple[str, ...]] = {("changed", url) for url in DAY2_CHANGES["changed"]}
    expected |= {("removed", url) for url in DAY2_CHANGES["broke"] if day2[url] in REMOVAL_STATES}
    expected |= {("new", url) for url in DAY2_CHANGES["new"]}
    for url in DAY2_CHANGES["fixed"]:
        assert day1[url] not in ("ok", "redirected")
        expected.add(("new", url))
    expected |= {("link_removed_from_source", page_url, to_url)
                 for page_url, to_url in DAY2_CHANGES["removed_links"]}
    expected |= {("removed", url) for url in DAY2_CHANGES["gone"]}
    cosmetic = set(DAY2_CHANGES.get("cosmetic", []))

    rows = _day2_rows(simweb_archive)
    found: set[tuple[str, ...]] = set()
    for row in rows:
        if row["kind"] == "link_removed_from_source":
            found.add((row["kind"], row["url"], json.loads(row["detail"])["to_url"]))
        else:
            found.add((row["kind"], row["url"]))
    hits = found & expected
    precision = len(hits) / len(found) if found else 1.0
    recall = len(hits) / len(expected) if expected else 1.0
    print(f"\nday-2 change detection vs simweb truth: {len(found)} reported, {len(expected)} expected,"
          f" precision {precision:.3f}, recall {recall:.3f}")
    for key in sorted(expected - found):
        print("  missed:  ", *key)
    for key in sorted(found - expected):
        print("  spurious:", *key)

    assert not [row for row in rows if row["url"] in cosmetic], "cosmetic-only changes reported"
    import sqlite3

    with sqlite3.connect(simweb_archive) as conn:  # ...although day 2 really re-downloaded them
        for url in cosmetic:
            assert day1[url] == day2[url] == "ok", url
            shas = {sha for (sha,) in conn.execute(
                "SELECT sha256 FROM snapshots WHERE url = ? AND not_modified = 0", [url])}
            assert len(shas) >= 2, url
    assert not [key for key in found if key[1].startswith(tuple(TRAP_PREFIXES))]
    assert expected - found == set(), "missed changes"
    assert found - expected == set(), "spurious changes"
    assert precision == recall == 1.0

    with sqlite3.connect(simweb_archive) as conn:  # day 1: a first crawl, everything is new
        first = {kind for (kind,) in conn.execute(
            "SELECT DISTINCT kind FROM changes WHERE crawl_id IN (SELECT MIN(id) FROM crawls GROUP BY site_id)")}
    assert first == {"new"}

    by_key = {(row["kind"], row["url"]): row for row in rows}
    for kind, url in (key for key in expected if key[0] == "changed"):
        row = by_key[(kind, url)]
        assert row["prev_snapshot_id"] < row["new_snapshot_id"]
        assert (row["diff"] and row["size_of_change"] > 0) or row["detail"].startswith("file replaced")
    for url in DAY2_CHANGES["broke"]:
        if ("removed", url) in by_key:
            assert by_key[("removed", url)]["detail"].startswith(f"state: {day2[url]}")


def test_main_text_of_a_page_nested_deeper_than_libxml2s_default_limit():
    from crawler.maintext import main_text

    body = "<html><body>" + "<div>" * 400 + "<p>学校信息公开年度报告正文</p>" + "</div>" * 400 + "</body></html>"
    assert "学校信息公开年度报告正文" in main_text(body)
