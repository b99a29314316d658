"""The main Datasette pages in real headless Chromium (Playwright) against a real uvicorn
server (``archive.serve.serve`` in a subprocess): no console error, no uncaught JavaScript
error, no failed request; full-page screenshots go to ``tests/artifacts/``.
"""

from __future__ import annotations

import json
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]

pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=f"{CHROMIUM} not installed")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def server(simweb_archive):
    """``archive.serve.serve`` (uvicorn) in a subprocess on a free port; yields its base URL."""
    port = free_port()
    code = "import sys; from archive.serve import serve; serve(sys.argv[1], port=int(sys.argv[2]))"
    process = subprocess.Popen([sys.executable, "-c", code, str(simweb_archive), str(port)], cwd=ROOT,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            with urllib.request.urlopen(base + "/-/versions.json", timeout=2) as response:
                json.load(response)
            break
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                raise RuntimeError("Datasette did not start:\n" + (process.stdout.read() or "")) from None
            time.sleep(0.2)
    yield base
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def visit(browser, server, artifacts):
    """Open a path, fail on console errors, uncaught errors or failed requests, screenshot it."""
    context = browser.new_context(viewport={"width": 1280, "height": 900}, locale="zh-CN")
    problems: list[str] = []

    def open_page(path: str, name: str):
        page = context.new_page()
        page.on("console", lambda msg: problems.append(f"{name}: console {msg.type}: {msg.text}")
                if msg.type == "error" else None)
        page.on("pageerror", lambda exc: problems.append(f"{name}: uncaught {exc}"))
        page.on("requestfailed", lambda req: problems.append(
            f"{name}: request failed {req.url} ({req.failure})"))
        page.on("response", lambda resp: problems.append(f"{name}: HTTP {resp.status} {resp.url}")
                if resp.status >= 400 else None)
        response = page.goto(server + path, wait_until="load", timeout=20_000)
        assert response is not None and response.ok, f"{path}: HTTP {response and response.status}"
        page.wait_for_load_state("networkidle", timeout=10_000)
        page.screenshot(path=str(artifacts / f"{name}.png"), full_page=True)
        assert not problems, "\n".join(problems)
        return page

    yield open_page
    context.close()
    assert not problems, "\n".join(problems)


def portal_snapshot(path) -> int:
    conn = sqlite3.connect(path)
    portals = json.loads(conn.execute("select portal from sites where id = 'webplus'").fetchone()[0])
    row = conn.execute(f"select id from snapshots where url in ({', '.join('?' * len(portals))}) "
                       "and sha256 is not null order by id desc limit 1", portals).fetchone()
    conn.close()
    return row[0]


def test_index_and_database_pages(visit):
    page = visit("/", "index")
    assert "xxgk-archive" in page.title()
    assert page.locator("a[href='/-/universities']").count() >= 1
    page = visit("/xxgk", "database")
    assert page.locator("text=broken_now").count() + page.locator("text=Broken links now").count() >= 1


def test_table_page_with_facets(visit):
    page = visit("/xxgk/links?health=dead", "table-links")
    assert page.locator("table.rows-and-columns tbody tr").count() > 0
    assert page.locator(".facet-info").count() >= 2  # site_id, state, health facets
    # the column menu is Datasette's own JavaScript: it must work
    page.locator("th.col-state .dropdown-menu-icon, th[data-column='state'] svg").first.click()
    page.wait_for_timeout(200)


def test_broken_now_and_url_history(visit, server):
    page = visit("/xxgk/broken_now?site=webplus", "broken-now")
    rows = page.locator("table.rows-and-columns tbody tr")
    assert rows.count() > 0
    assert page.locator("a[href='/-/university/webplus']").count() > 0
    history = page.locator("a.xxgk-history").first.get_attribute("href")
    page = visit(history, "url-history")
    assert page.locator("table.rows-and-columns tbody tr").count() > 0


def test_university_pages(visit):
    page = visit("/-/universities", "universities")
    assert page.locator("a[href='/-/university/webplus']").count() == 1
    page = visit("/-/university/webplus", "university-webplus")
    assert "模拟理工大学" in page.locator("h1").inner_text()
    chart = page.locator("svg.xxgk-chart")
    assert chart.is_visible() and chart.bounding_box()["height"] > 100
    assert page.locator("a[href='/xxgk/feed_broken.atom?site=webplus']").is_visible()
    assert page.locator("#scorecard + .table-wrapper table tbody tr").count() >= 2
    page.locator("a:has-text('archived copy of')").first.click()
    page.wait_for_load_state("load")
    assert "/-/snapshot/" in page.url


def test_snapshot_page(visit, simweb_archive):
    snapshot_id = portal_snapshot(simweb_archive)
    page = visit(f"/-/snapshot/{snapshot_id}", "snapshot")
    assert page.locator("#xxgk-banner").is_visible()
    frame = page.frame_locator("iframe.xxgk-frame")
    assert frame.locator("body").inner_text(timeout=10_000).strip()
