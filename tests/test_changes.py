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


def test_short_diff_is_bounded():
    old = [f"第{i}行 原来的内容" for i in range(500)]
    new = [f"第{i}行 修改后的内容，而且更长一些" for i in range(500)]
    diff = short_diff(old, new)
    assert len(diff.splitlines()) <= MAX_DIFF_LINES
    assert len(diff.encode("utf-8")) <= MAX_DIFF_BYTES
    assert diff.endswith("(diff truncated)")
