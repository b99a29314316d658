"""The URLs a university's annual report cites (its 清单 table) are checked by every crawl,
whether its portal links them or not: a dead URL the report prints is what a watchdog asks
about, and a crawl that followed the portal's links alone never checked it (found by a
review on the 武汉科技大学 report: 48 of its 50 item URLs went unchecked, and two dead item
pages dropped from ``dead`` to ``unchecked`` once the report was ingested)."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

from simweb.content import html_page
from simweb.model import Resource

ROOT = Path(__file__).resolve().parent.parent
WUST = Path(__file__).parent / "fixtures" / "reports" / "seeds" / "wust_2020-2021.txt"
HOST = "http://xxgk.wust.edu.cn"


def _page(title: str, links: list[str] = ()) -> Resource:
    body = "".join(f'<li><a href="{u}">链接{i}</a></li>' for i, u in enumerate(links))
    return Resource(body=html_page(title, f"<h1>{title}</h1><p>{'信息公开内容说明。' * 30}</p><ul>{body}</ul>").encode())


def test_every_url_the_annual_report_cites_is_checked_linked_or_not(tmp_path, crawl_pages):
    registry = tmp_path / "sites.toml"
    registry.write_text(f'[[site]]\nid = "t"\nname = "测试大学"\nportal = "{HOST}/main.htm"\nrender = "never"\n',
                        encoding="utf-8")
    ingest = subprocess.run(
        [sys.executable, "-m", "xxgk", "ingest-report", str(WUST), "--site", "t", "--registry", str(registry),
         "--db", str(tmp_path / "a.db")], cwd=ROOT, env=dict(os.environ), capture_output=True, text=True, timeout=120)
    assert ingest.returncode == 0, ingest.stdout + ingest.stderr
    with sqlite3.connect(tmp_path / "a.db") as conn:
        cited = {url for (url,) in conn.execute("SELECT DISTINCT url FROM report_items WHERE url IS NOT NULL")}
    assert len(cited) >= 45 and f"{HOST}/2599/list.htm" in cited
    gone = cited - {f"{HOST}/2598/list.htm", f"{HOST}/2599/list.htm"}
    pages = {f"{HOST}/main.htm": _page("信息公开网", [f"{HOST}/2598/list.htm"]),
             f"{HOST}/2598/list.htm": _page("基本信息"),
             f"{HOST}/2599/list.htm": _page("规章制度"),  # cited, not linked
             **{url: Resource(status=404, state="not_found", body=b"<h1>404 Not Found</h1>") for url in gone}}
    conn, log = crawl_pages(pages, f"{HOST}/main.htm")
    states = dict(conn.execute("SELECT url, state FROM link_checks WHERE crawl_id = 1"))
    assert cited <= set(states), sorted(cited - set(states))[:5]
    assert states[f"{HOST}/2598/list.htm"] == "ok" and states[f"{HOST}/2599/list.htm"] == "ok"
    assert {states[url] for url in gone} == {"not_found"}, {url: states[url] for url in gone}
    # Each was asked for once, not once per citation.
    asked = [url for method, url, _status in log if method in ("GET", "HEAD") and url in cited]
    assert sorted(asked) == sorted(cited)
