"""What a crawl cost the site, end to end against the simulated web.

``crawls.bytes_received`` is every body byte the simulated web sent for the crawl: link
checks (redirect hops and retried attempts included, external links checked with GET too),
robots.txt and the not-found probe (``crawls.overhead_bytes``). The site is crawled without
the browser, so every byte is Scrapy's and the server's count is exact."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SETTINGS = ["-s", "XXGK_DOWNLOAD_TIMEOUT=5", "-s", "DOWNLOAD_DELAY=0", "-s", "AUTOTHROTTLE_ENABLED=False",
            "-s", "CONCURRENT_REQUESTS_PER_DOMAIN=8", "-s", "RETRY_TIMES=1", "-s", "XXGK_RETRY_AFTER_TIMES=1",
            "-s", "XXGK_RETRY_AFTER_MAX=2"]


def test_a_crawls_bytes_received_is_every_body_byte_the_site_sent(tmp_path):
    from simweb import SimWeb

    registry = tmp_path / "sites.toml"
    # Two sites: the JSP college (retried errors, external links), the VSB university
    # (redirects), the latter crawled without the browser here.
    registry.write_text('[[site]]\nid = "jsp"\nname = "模拟职业技术学院"\n'
                        'portal = ["http://info.jsp-college.edu.cn/index.jsp"]\n'
                        'allowed_domains = ["info.jsp-college.edu.cn"]\nrender = "never"\nmax_pages = 1500\n'
                        '[[site]]\nid = "vsb"\nname = "模拟师范大学"\nportal = ["http://xxgk.vsb-univ.edu.cn/index.htm"]\n'
                        'allowed_domains = ["xxgk.vsb-univ.edu.cn"]\nrender = "never"\nmax_pages = 2000\n',
                        encoding="utf-8")
    db_path = tmp_path / "archive.db"
    with SimWeb(port=0, day=1, delay_scale=0) as web:
        env = {**os.environ, "http_proxy": web.proxy_url, "https_proxy": web.proxy_url, "no_proxy": ""}
        result = subprocess.run([sys.executable, "-m", "xxgk", "crawl", "--registry", str(registry),
                                 "--db", str(db_path), *SETTINGS], cwd=ROOT, env=env,
                                capture_output=True, text=True, timeout=300)
        assert result.returncode == 0, result.stdout + result.stderr
        events = web.events
    urls = [(e.method, e.url) for e in events]
    assert any(300 <= e.status < 400 and e.body_bytes for e in events)  # redirect hops with bodies
    assert any(urls.count(key) > 1 for key in set(urls))  # retried answers
    served = sum(e.body_bytes for e in events)
    robots = sum(e.body_bytes for e in events if e.url.endswith("/robots.txt"))
    with sqlite3.connect(db_path) as conn:
        total, overhead = conn.execute("SELECT SUM(bytes_received), SUM(overhead_bytes) FROM crawls").fetchone()
        checks = conn.execute("SELECT SUM(bytes_received) FROM link_checks").fetchone()[0]
    assert robots > 0 and overhead > robots  # robots.txt and the not-found probe
    assert total == checks + overhead
    assert total == served, (total, served, checks, overhead, robots)
