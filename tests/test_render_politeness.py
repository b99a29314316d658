"""Chromium's own requests under the crawler's rules: a rendered page's sub-requests keep the
per-host limit and never reach hosts the SSRF guard refuses.

A page on a test host (served by the simulated web's proxy, every answer slowed down so
that requests overlap unless held back) loads eight images from its own host, one from
a cloud metadata address and a script from a loopback server that counts its visitors.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from xxgk.runcrawl import crawl_stats

ROOT = Path(__file__).resolve().parent.parent
HOST = "gallery.example-univ.edu.cn"
PAGE = f"http://{HOST}/index.htm"
INDEX = f"http://{HOST}/xxgk.htm"  # links PAGE as the annual report
IMAGES = [f"http://{HOST}/img/{n}.png" for n in range(8)]
METADATA = "http://169.254.169.254/latest/meta-data/iam.png"
PNG = bytes.fromhex("89504e470d0a1a0a0000000d4948445200000001000000010806000000"
                    "1f15c4890000000d49444154789c6360000002000154a24f5d0000000049454e44ae426082")


#: Paths the loopback server was asked for (reset by each crawl).
VISITS: list[str] = []


@pytest.fixture(scope="module")
def loopback(loopback_server):
    return loopback_server(b"", "application/javascript", VISITS)


def gallery(loopback: str, title: str = "图片新闻") -> dict:
    from simweb.content import html_page
    from simweb.model import Resource

    images = "".join(f'<img src="{u}" width="1" height="1">' for u in [*IMAGES, METADATA])
    body = html_page(title, f"<h1>{title}</h1><p>校园风光。</p>{images}"
                                 f'<script src="{loopback}/track.js"></script>')
    index = html_page("信息公开", f'<p><a href="{PAGE}">2023年信息公开工作年度报告</a></p>')
    pages = {PAGE: Resource(body=body.encode(), validators=False),
             INDEX: Resource(body=index.encode(), validators=False),
             f"http://{HOST}/robots.txt": Resource(body=b"User-agent: *\nDisallow:\n",
                                                   content_type="text/plain", validators=False)}
    pages.update({u: Resource(body=PNG, content_type="image/png", validators=False) for u in IMAGES})
    return pages


def render_crawl(tmp: Path, loopback: str, *settings: str, render: str = "always", title: str = "图片新闻",
                 portal: str = PAGE) -> dict:
    from simweb import SimWeb

    registry = tmp / "sites.toml"
    registry.write_text(f'[[site]]\nid = "gallery"\nname = "图片大学"\nportal = "{portal}"\nrender = "{render}"\n',
                        encoding="utf-8")
    VISITS.clear()
    with SimWeb(port=0, day=1, latency={HOST: 0.2}, extra=gallery(loopback, title)) as web:
        env = {**os.environ, "http_proxy": web.proxy_url, "https_proxy": web.proxy_url, "no_proxy": ""}
        result = subprocess.run(
            [sys.executable, "-m", "xxgk", "crawl", "--registry", str(registry), "--db", str(tmp / "a.db"),
             "-s", "XXGK_DOWNLOAD_TIMEOUT=10", "-s", "DOWNLOAD_DELAY=0", "-s", "AUTOTHROTTLE_ENABLED=False",
             "-s", "CONCURRENT_REQUESTS_PER_DOMAIN=1", "-s", "XXGK_PROBE_SOFT404=0",
             "-s", "XXGK_RENDER_SETTLE_MS=15000", *settings],
            cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
        assert result.returncode == 0, result.stdout + result.stderr
        stats = crawl_stats(re.search(r"log: (\S+)", result.stdout).group(1))
        return {"peak": web.peak_in_flight, "urls": [e.url for e in web.events], "stats": stats,
                "hits": list(VISITS), "db": tmp / "a.db",
                "served": [(e.url, e.body_bytes) for e in web.events]}


@pytest.fixture(scope="module")
def rendered(tmp_path_factory, loopback):
    return render_crawl(tmp_path_factory.mktemp("render"), loopback)


def test_a_rendered_page_keeps_the_per_host_limit(rendered):
    assert rendered["stats"].get("playwright/request_count", 0) >= len(IMAGES)
    assert set(IMAGES) <= set(rendered["urls"])  # the page did load its images...
    assert rendered["peak"][HOST] == 1  # ...one at a time, as CONCURRENT_REQUESTS_PER_DOMAIN=1 says


def test_without_the_gate_chromium_would_go_wide(tmp_path, loopback):
    wide = render_crawl(tmp_path, loopback, "-s", "XXGK_RENDER_HOST_CONCURRENCY=8")
    assert set(IMAGES) <= set(wide["urls"]) and wide["peak"][HOST] > 1


def test_sub_requests_the_ssrf_guard_refuses_are_never_sent(rendered):
    # Neither the loopback script (directly or through the proxy) nor the metadata address
    # was asked for; without the guard both reach the proxy.
    assert rendered["hits"] == []
    assert not [u for u in rendered["urls"] if "://169.254." in u or "://127.0.0.1" in u]
    assert rendered["stats"].get("xxgk/ssrf_blocked_subrequests", 0) >= 2


def test_a_rendered_check_counts_what_chromium_downloaded(rendered):
    """The page's check counts every body byte the browser received for it (the page and
    its eight images), as the server counted them: crawls.bytes_received is what the crawl
    really cost the site."""
    import sqlite3

    with sqlite3.connect(rendered["db"]) as conn:
        (counted,) = conn.execute("SELECT bytes_received FROM link_checks WHERE url = ?", [PAGE]).fetchone()
        (crawl_total,) = conn.execute("SELECT bytes_received FROM crawls").fetchone()
    served = sum(size for url, size in rendered["served"] if url != f"http://{HOST}/robots.txt")
    assert served >= len(PNG) * len(IMAGES) + 100  # the page and its images
    assert counted == served
    assert crawl_total >= counted


def test_a_screenshot_kept_as_evidence_counts_what_chromium_downloaded(tmp_path, loopback):
    """A page that needs no browser to be checked but is screenshotted as evidence (its title
    names an annual report): its check counts the page it downloaded and the images Chromium
    fetched for the screenshot, so crawls.bytes_received is what the crawl cost the site."""
    import sqlite3

    crawl = render_crawl(tmp_path, loopback, render="auto", title="2023年信息公开工作年度报告")
    with sqlite3.connect(crawl["db"]) as conn:
        (reason,) = conn.execute("SELECT render_reason FROM snapshots WHERE url = ? AND rendered = 1",
                                 [PAGE]).fetchone()
        (counted,) = conn.execute("SELECT bytes_received FROM link_checks WHERE url = ?", [PAGE]).fetchone()
        (crawl_total,) = conn.execute("SELECT bytes_received FROM crawls").fetchone()
    served = sum(size for url, size in crawl["served"] if url != f"http://{HOST}/robots.txt")
    assert reason.startswith("evidence")
    assert served >= len(PNG) * len(IMAGES) + 100 and counted == served and crawl_total >= counted


def test_in_always_mode_a_page_known_to_be_evidence_is_rendered_once(tmp_path, loopback):
    """A site rendered in full (render = always): the page linked as the annual report gets
    its screenshot in the rendering that checks it, not in a second rendering for evidence."""
    import sqlite3

    crawl = render_crawl(tmp_path, loopback, portal=INDEX)
    with sqlite3.connect(crawl["db"]) as conn:
        renders = conn.execute("SELECT render_reason, screenshot_sha256 IS NOT NULL FROM snapshots"
                               " WHERE url = ? AND rendered = 1", [PAGE]).fetchall()
    assert renders == [("render=always", 1)]
    assert crawl["urls"].count(IMAGES[0]) == 1  # its images were loaded once
