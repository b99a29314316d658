"""End to end: JavaScript-only pages are rendered with Chromium exactly where needed.

The simulated WebPlus and VSB portals each have a list built by script (``JS_ONLY_PAGES``)
and VSB has a ``window.location`` redirect (``JS_REDIRECTS``). In ``auto`` mode every link
behind them is found while only those pages are rendered for content; in ``never`` mode
they are marked ``needs-render``; no browser page is left open.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from xxgk.runcrawl import crawl_stats

ROOT = Path(__file__).resolve().parent.parent
SETTINGS = ["-s", "XXGK_DOWNLOAD_TIMEOUT=2", "-s", "DOWNLOAD_DELAY=0", "-s", "AUTOTHROTTLE_ENABLED=False",
            "-s", "CONCURRENT_REQUESTS_PER_DOMAIN=8"]


def registry_with(tmp_path: Path, render: str, sites: tuple[str, ...] = ("webplus", "vsb")) -> Path:
    import simweb

    source = tomllib.loads(Path(simweb.__file__).with_name("demo_sites.toml").read_text("utf-8"))
    lines = []
    for site in source["site"]:
        if site["id"] not in sites:
            continue
        lines.append("[[site]]")
        for key, value in {**site, "render": render}.items():
            lines.append(f"{key} = {value!r}" if not isinstance(value, list)
                         else f"{key} = [{', '.join(repr(v) for v in value)}]")
    path = tmp_path / f"sites-{render}.toml"
    path.write_text("\n".join(lines).replace("'", '"') + "\n", encoding="utf-8")
    return path


def crawl(registry: Path, db: Path, proxy: str) -> Path:
    env = {**os.environ, "http_proxy": proxy, "https_proxy": proxy, "no_proxy": ""}
    result = subprocess.run([sys.executable, "-m", "xxgk", "crawl", "--registry", str(registry),
                             "--db", str(db), *SETTINGS], cwd=ROOT, env=env, capture_output=True,
                            text=True, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    log = re.search(r"log: (\S+)", result.stdout).group(1)
    return Path(log)



@pytest.fixture(scope="module")
def crawls(tmp_path_factory):
    from archive.db import open_db
    from simweb import SimWeb

    tmp = tmp_path_factory.mktemp("render")
    out = {}
    with SimWeb(port=0, day=1, delay_scale=0.02) as web:
        for mode in ("auto", "never"):
            web.clear_log()
            log = crawl(registry_with(tmp, mode), tmp / f"{mode}.db", web.proxy_url)
            out[mode] = (open_db(tmp / f"{mode}.db"), crawl_stats(log))
            out[f"{mode} events"] = web.events
    return out


def test_auto_finds_every_link_behind_scripts(crawls):
    from simweb.truth import JS_ONLY_PAGES

    db, _ = crawls["auto"]
    for page, revealed in JS_ONLY_PAGES.items():
        linked = {u for (u,) in db.execute("SELECT to_url FROM link_sources WHERE from_url = ?", [page])}
        assert set(revealed) <= linked, page
        checked = {u for (u,) in db.execute(
            f"SELECT url FROM link_checks WHERE url IN ({','.join('?' * len(revealed))}) AND state = 'ok'",
            revealed)}
        assert checked == set(revealed)


def test_auto_renders_only_the_pages_that_need_it(crawls):
    from simweb.truth import JS_ONLY_PAGES, JS_REDIRECTS

    db, stats = crawls["auto"]
    rendered_for_content = {u for (u,) in db.execute(
        "SELECT url FROM snapshots WHERE rendered = 1 AND render_reason LIKE 'auto:%'")}
    assert rendered_for_content == set(JS_ONLY_PAGES) | set(JS_REDIRECTS)
    reasons = dict(db.execute("SELECT url, render_reason FROM snapshots WHERE render_reason LIKE 'auto:%'"))
    assert all(reasons[u] == "auto: scripted-list" for u in JS_ONLY_PAGES)
    # the script redirect is recorded as a redirect, with the chain
    for url, target in JS_REDIRECTS.items():
        state, final_url, chain = db.execute(
            "SELECT state, final_url, redirect_chain FROM link_checks WHERE url = ?", [url]).fetchone()
        assert (state, final_url) == ("redirected", target) and url in chain
        # the archived answer is the target's (its body, and its own validators), not the
        # first page's headers on the target's body
        etag, status = db.execute("SELECT etag, status_code FROM snapshots WHERE url = ? AND rendered = 1",
                                  [url]).fetchone()
        own = db.execute("SELECT etag FROM snapshots WHERE url = ? AND rendered = 0 AND etag IS NOT NULL",
                         [target]).fetchone()
        first = db.execute("SELECT etag FROM snapshots WHERE url = ? AND rendered = 0", [url]).fetchone()
        assert status == 200 and (own is None or etag == own[0]), (url, etag, own)
        assert first is None or first[0] is None or etag != first[0], (url, etag, first)
    pages = db.execute("SELECT COUNT(*) FROM snapshots WHERE rendered = 0").fetchone()[0]
    assert pages > 20 * len(rendered_for_content)  # rendering is the exception


def test_rendered_pages_are_downloaded_once(crawls):
    """Chromium renders a page from the answer the crawl already got instead of asking the
    server again: one GET per rendered URL (script lists, script redirects, evidence), and
    the rendered check counts the bytes that one download cost, plus what Chromium
    downloaded itself (the page a script redirect goes to)."""
    from simweb.truth import JS_ONLY_PAGES, JS_REDIRECTS

    db, stats = crawls["auto"]
    gets: dict[str, list[int]] = {}
    for event in crawls["auto events"]:
        if event.method == "GET":
            gets.setdefault(event.url, []).append(event.body_bytes)
    evidence = {u for (u,) in db.execute(
        "SELECT s.url FROM snapshots s JOIN link_checks c ON c.url = s.url AND c.crawl_id = s.crawl_id"
        " WHERE s.render_reason LIKE 'evidence:%' AND c.redirect_chain IS NULL")}
    rendered = set(JS_ONLY_PAGES) | set(JS_REDIRECTS) | evidence
    assert evidence and len(rendered) > len(JS_ONLY_PAGES) + len(JS_REDIRECTS)
    assert {url: len(gets.get(url, [])) for url in rendered} == dict.fromkeys(rendered, 1)
    assert stats["xxgk/render_documents_reused"] == len(rendered)
    def counted(url: str) -> tuple:
        return db.execute("SELECT bytes_received FROM link_checks WHERE url = ? AND method = 'GET'",
                          [url]).fetchone()

    for url in JS_ONLY_PAGES:  # lists built by inline scripts: nothing more to download
        assert counted(url) == (gets[url][0],), url
    for url, target in JS_REDIRECTS.items():
        assert counted(url) == (gets[url][0] + gets[target][-1],), url


def test_chromium_calls_no_google_service_through_the_proxy(crawls):
    """Left alone, Chromium asks the proxy for accounts.google.com and
    android.clients.google.com by itself: a user's proxy log would show visits to Google."""
    from crawler.browser import CHROMIUM_OWN_HOSTS, launch_options

    _db, stats = crawls["auto"]
    assert stats["playwright/page_count"] > 0  # the browser did run
    asked = {e.url for e in crawls["auto events"]}
    assert not [u for u in asked if "google" in u], sorted(u for u in asked if "google" in u)
    options = launch_options({"http_proxy": "http://proxy.example:3128", "no_proxy": "intranet.example"})
    assert options["proxy"]["bypass"].split(",") == ["intranet.example", *CHROMIUM_OWN_HOSTS]
    assert options["proxy"]["server"] == "http://proxy.example:3128"
    assert "proxy" not in launch_options({})  # no proxy variables: direct, as Scrapy


def test_screenshots_are_kept_as_evidence(crawls):
    from archive.blobs import load_blob

    db, _ = crawls["auto"]
    rows = db.execute("SELECT url, render_reason, screenshot_sha256 FROM snapshots"
                      " WHERE screenshot_sha256 IS NOT NULL").fetchall()
    reasons = {reason for _u, reason, _s in rows}
    assert {"evidence: soft_404", "evidence: empty"} <= reasons
    png = load_blob(db, rows[0][2])
    assert png.startswith(b"\x89PNG\r\n\x1a\n") and len(png) > 1000


def test_never_marks_script_pages_clearly(crawls):
    from simweb.truth import JS_ONLY_PAGES

    db, stats = crawls["never"]
    assert db.execute("SELECT COUNT(*) FROM snapshots WHERE rendered = 1").fetchone()[0] == 0
    assert "playwright/page_count" not in stats  # the browser was never even started
    for page, revealed in JS_ONLY_PAGES.items():
        state, rule = db.execute("SELECT state, rule FROM link_checks WHERE url = ?", [page]).fetchone()
        assert (state, rule) == ("ok", "needs-render")  # not "empty": a false accusation
        linked = {u for (u,) in db.execute("SELECT to_url FROM link_sources WHERE from_url = ?", [page])}
        assert not set(revealed) & linked


def test_no_browser_page_left_open(crawls):
    _db, stats = crawls["auto"]
    opened = stats["playwright/page_count"]
    assert opened > 0
    assert stats.get("playwright/page_count/closed") == opened
    assert stats["playwright/page_count/max_concurrent"] <= 4


def test_a_challenge_host_is_tried_in_the_browser_once(crawls):
    """The never-passable anti-bot hosts (Ruishu 412, 加速乐 521 reloading for ever): one
    browser pass per host, not one per URL; the other URLs of the host are recorded
    blocked, saying the host's browser retry already failed (crawler.challenges)."""
    from simweb.sites.helpers import CWC, ZSB
    from simweb.truth import expected_links

    db, stats = crawls["auto"]
    truth = expected_links(1)
    for origin in (ZSB, CWC):
        host = origin.split("//")[1]
        urls = [u for u in truth if u.startswith(origin + "/")]
        assert len(urls) >= 2 and {truth[u] for u in urls} == {"blocked"}
        assert stats[f"xxgk/render_count/{host}"] == 1, stats
        rows = db.execute(f"SELECT url, state, error FROM link_checks WHERE url IN ({','.join('?' * len(urls))})",
                          urls).fetchall()
        assert sorted(u for u, _s, _e in rows) == sorted(urls) and {s for _u, s, _e in rows} == {"blocked"}
        tried = [e for _u, _s, e in rows if e.startswith(("browser retry still blocked", "browser retry failed"))]
        skipped = [e for _u, _s, e in rows if e.startswith("browser retry already failed on this host")]
        assert len(tried) == 1 and len(skipped) == len(urls) - 1, rows
    _db, never_stats = crawls["never"]
    assert not any(k.startswith("xxgk/render_count/") for k in never_stats)


def test_a_page_stuck_in_a_challenge_reload_loop_closes_at_once():
    """An unpassable 加速乐 challenge reloads itself as fast as the server answers. Chromium
    drops a close that coincides with a navigation commit (crbug.com/536385539), so a plain
    page.close() of such a page often waited for ever, and the page kept reloading until
    the render's outer deadline. The handler's close stops the page first: it closes, and
    the server sees at most a reload or two more."""
    import asyncio

    from playwright.async_api import async_playwright

    from crawler.browser import launch_options
    from crawler.rendering import _close_quietly
    from simweb import SimWeb
    from simweb.sites.helpers import CWC

    async def stuck_page_closes(proxy: str) -> tuple[int, int, bool]:
        async with async_playwright() as playwright:
            browser = await playwright.chromium.launch(**{**launch_options(), "proxy": {"server": proxy}})
            try:
                page = await (await browser.new_context()).new_page()
                await page.route("**", lambda route, _request: route.continue_())
                loads: list[str] = []
                page.on("response", lambda response: loads.append(response.url))
                navigation = asyncio.ensure_future(page.goto(CWC + "/"))
                while len(loads) < 60:  # well inside the loop
                    await asyncio.sleep(0.05)
                navigation.cancel()
                before = len(loads)
                await _close_quietly(page)
                return before, len(loads) - before, page.is_closed()
            finally:
                await browser.close()

    with SimWeb(port=0, day=1, delay_scale=0) as web:
        loads, later, closed = asyncio.run(asyncio.wait_for(stuck_page_closes(web.proxy_url), 60))
    # a dropped close, even when asked again at once, would have let it reload for seconds
    assert loads >= 60 and closed and later <= 5, (loads, later, closed)


# -- the close's escalation, with stand-ins for the browser (Chromium drops a close at random) --
class _FakeSession:
    def __init__(self, page: _FakePage) -> None:
        self.page = page
        self.sent: list[str] = []

    async def send(self, method: str, params: dict | None = None) -> dict:
        self.sent.append(method)
        if method == "Target.getTargetInfo":
            return {"targetInfo": {"targetId": "T1"}}
        if method == "Target.closeTarget" and self.page.reissue_closes:
            self.page.closed.set()
        return {"success": True}


class _FakeContext:
    def __init__(self) -> None:
        self.pages: list[_FakePage] = []
        self.closed = False

    async def new_cdp_session(self, page: _FakePage) -> _FakeSession:
        page.session = _FakeSession(page)
        return page.session

    async def close(self) -> None:
        self.closed = True
        for page in self.pages:
            page.closed.set()


class _FakePage:
    """A page whose close() Chromium drops: it closes only when asked again, or with its context."""

    url = "http://cwc.vsb-univ.edu.cn/"

    def __init__(self, context: _FakeContext, reissue_closes: bool) -> None:
        import asyncio

        self.context = context
        context.pages.append(self)
        self.reissue_closes = reissue_closes
        self.closed = asyncio.Event()
        self.session: _FakeSession | None = None

    def is_closed(self) -> bool:
        return self.closed.is_set()

    async def unroute_all(self, behavior: str | None = None) -> None:
        return None

    async def close(self) -> None:
        await self.closed.wait()


class _Stats(dict):
    def inc_value(self, key: str, count: int = 1) -> None:
        self[key] = self.get(key, 0) + count


@pytest.fixture
def quick_close(monkeypatch):
    import crawler.rendering as rendering

    monkeypatch.setattr(rendering, "CLOSE_WAIT", 0.05)
    monkeypatch.setattr(rendering, "CLOSE_RETRY_WAIT", 0.05)
    return rendering._close_quietly


def test_a_dropped_close_is_asked_for_again(quick_close):
    import asyncio

    async def run() -> tuple[bool, _FakePage, _Stats]:
        context = _FakeContext()
        page, _other = _FakePage(context, reissue_closes=True), _FakePage(context, reissue_closes=True)
        stats = _Stats()
        return await quick_close(page, stats), page, stats

    closed, page, stats = asyncio.run(run())
    assert closed and page.is_closed()
    assert page.session.sent[:2] == ["Emulation.setScriptExecutionDisabled", "Page.stopLoading"]
    assert "Target.closeTarget" in page.session.sent
    assert stats == {"xxgk/render_close_escalated": 1}


def test_a_page_that_will_not_close_takes_its_own_context_along(quick_close):
    import asyncio

    async def run() -> tuple[bool, _FakeContext, _Stats]:
        context = _FakeContext()
        page = _FakePage(context, reissue_closes=False)
        stats = _Stats()
        return await quick_close(page, stats), context, stats

    closed, context, stats = asyncio.run(run())
    assert closed and context.closed
    assert stats == {"xxgk/render_close_escalated": 1}


def test_a_page_that_will_not_close_never_stalls_the_crawl(quick_close):
    """Other renders' pages share its context: it is left open (and counted), not waited for."""
    import asyncio

    async def run() -> tuple[bool, _FakeContext, _Stats, float]:
        context = _FakeContext()
        page, _other = _FakePage(context, reissue_closes=False), _FakePage(context, reissue_closes=False)
        stats = _Stats()
        started = asyncio.get_running_loop().time()
        closed = await asyncio.wait_for(quick_close(page, stats), 10)
        return closed, context, stats, asyncio.get_running_loop().time() - started

    closed, context, stats, took = asyncio.run(run())
    assert not closed and not context.closed and took < 5
    assert stats == {"xxgk/render_close_escalated": 1, "xxgk/render_close_failed": 1}


def test_documents_waiting_for_their_rendering_are_bounded():
    from crawler.rendering import Document, DocumentStore

    store = DocumentStore(max_bytes=1000)

    def doc(size: int) -> Document:
        return Document(200, [("Content-Type", "text/html")], b"x" * size, size)

    assert store.put("http://a/1", doc(200)) and store.put("http://a/2", doc(200))
    assert not store.put("http://a/big", doc(251))  # over a quarter of the budget: not kept
    for n in range(3, 8):
        store.put(f"http://a/{n}", doc(200))
    assert len(store) == 5 and store.take("http://a/1") is None and store.take("http://a/2") is None  # oldest gone
    assert store.take("http://a/7").body == b"x" * 200
    assert store.take("http://a/7") is None  # used once
    store.put("http://a/3", doc(100))  # replaced, not counted twice
    assert store._bytes == 200 * 3 + 100


def test_a_challenge_rendering_does_not_outlive_its_deadline():
    """The render deadline cancels the wait for a challenge's rendering: the rendering is
    cancelled with it, not left running against a page being closed (where it failed later,
    unobserved: "Task exception was never retrieved")."""
    import asyncio

    from crawler.rendering import _rendered_or_looping

    async def scenario() -> tuple[bool, bool, bool]:
        slow = asyncio.ensure_future(asyncio.sleep(30))
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(_rendered_or_looping(slow, asyncio.Event()), timeout=0.05)
        await asyncio.sleep(0)
        quick = asyncio.ensure_future(asyncio.sleep(0, result="page"))
        finished = await _rendered_or_looping(quick, asyncio.Event())
        looping = asyncio.Event()
        looping.set()
        stuck = asyncio.ensure_future(asyncio.sleep(30))
        stopped = not await _rendered_or_looping(stuck, looping)
        stuck.cancel()
        return slow.cancelled(), finished, stopped

    assert asyncio.run(scenario()) == (True, True, True)
