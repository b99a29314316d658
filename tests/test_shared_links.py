"""A link two sites of one ``xxgk crawl`` run both cite is checked by each site's crawl, once.

Scrapy's dupefilter is shared by every site of the process: site b's request for a URL site a
had checked already was dropped, so ``site_links`` had only (a, URL), and site b's reports
(``broken_now?site=b``, its overview counts, ``feed_broken?site=b``) never showed the dead link,
although a crawl of site b alone (``--site b``) did (found by a review of link health).
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from collections import Counter
from pathlib import Path

from simweb import SimWeb
from simweb.content import html_page
from simweb.model import Resource

ROOT = Path(__file__).resolve().parent.parent
A, B = "http://xxgk.a-univ.edu.cn", "http://xxgk.b-univ.edu.cn"
#: A dead government page both universities cite (outside both portals).
EXTERNAL = "http://www.moe-sim.gov.cn/dead.htm"
#: A dead page of a host in both sites' allowed_domains (a shared office's site).
SHARED = "http://www.office-sim.edu.cn/gone.htm"


def _page(title: str, links: list[str]) -> Resource:
    items = "".join(f'<li><a href="{u}">链接{i}</a></li>' for i, u in enumerate(links))
    return Resource(body=html_page(title, f"<h1>{title}</h1><p>{'信息公开内容说明。' * 30}</p><ul>{items}</ul>").encode(),
                    validators=False)


def _gone() -> Resource:
    return Resource(status=404, state="not_found", body=b"<h1>404 Not Found</h1>", validators=False)


def test_a_link_two_sites_cite_is_checked_by_each_site_once(tmp_path):
    registry = tmp_path / "sites.toml"
    registry.write_text("".join(
        f'[[site]]\nid = "{sid}"\nname = "大学{sid}"\nportal = "{host}/main.htm"\nrender = "never"\n'
        f'allowed_domains = ["{host.split("//")[1]}", "www.office-sim.edu.cn"]\n\n'
        for sid, host in (("a", A), ("b", B))), encoding="utf-8")
    # Each site cites both URLs from two pages: a site asks for each once all the same.
    pages = {f"{host}/main.htm": _page("首页", [f"{host}/p.htm", EXTERNAL, SHARED]) for host in (A, B)}
    pages |= {f"{host}/p.htm": _page("公开", [EXTERNAL, SHARED]) for host in (A, B)}
    pages |= {EXTERNAL: _gone(), SHARED: _gone()}
    with SimWeb(port=0, day=1, extra=pages) as web:
        env = {**os.environ, "http_proxy": web.proxy_url, "https_proxy": web.proxy_url, "no_proxy": ""}
        result = subprocess.run(
            [sys.executable, "-m", "xxgk", "crawl", "--registry", str(registry), "--db", str(tmp_path / "a.db"),
             "-s", "XXGK_PROBE_SOFT404=0", "-s", "DOWNLOAD_DELAY=0", "-s", "XXGK_DOWNLOAD_TIMEOUT=10"],
            cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
        assert result.returncode == 0, result.stdout + result.stderr
        log = web.request_log
    conn = sqlite3.connect(tmp_path / "a.db")
    crawls = dict(conn.execute("SELECT site_id, id FROM crawls"))
    assert set(crawls) == {"a", "b"}
    checks = conn.execute("SELECT crawl_id, site_id, url, state FROM link_checks WHERE url IN (?, ?)",
                          [EXTERNAL, SHARED]).fetchall()
    for url in (EXTERNAL, SHARED):
        for site, crawl_id in crawls.items():
            # Each site's crawl checks (and records, with its own crawl) every URL its pages cite.
            assert (crawl_id, site, url, "not_found") in checks, (url, site, checks)
        assert {site for (site,) in conn.execute("SELECT site_id FROM site_links WHERE url = ?", [url])} == {"a", "b"}
    # Never twice in one crawl: one check per crawl, one request per site (and method).
    assert not conn.execute("SELECT crawl_id, url FROM link_checks GROUP BY crawl_id, url HAVING count(*) > 1").fetchall()
    asked = Counter((method, url) for method, url, _status in log if url in (EXTERNAL, SHARED))
    assert asked and all(n <= 2 for n in asked.values()), asked
    pages_asked = Counter(url for method, url, _status in log if method == "GET" and url.endswith("/p.htm"))
    assert pages_asked == {f"{A}/p.htm": 1, f"{B}/p.htm": 1}, pages_asked
