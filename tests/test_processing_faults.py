"""One page or item that cannot be processed (a bug, input nothing anticipated) costs that page
or item, never the crawl's other data, and is never mistaken for a finished crawl (found by a
fault-injection review: a callback exception dropped the page and its children silently, the
crawl said ``finished``, and the post-crawl step then retired a live broken link as
``unlinked``; an exception in the middle of an item committed half of it; one failing
post-crawl step blocked every later crawl's; a failed start left a ``running`` row that made
the scheduler refuse the site).

Faults are injected into real ``xxgk crawl`` children by tests/faultinject.py, through Scrapy
settings, on the URLs containing ``XXGK_TEST_FAULT_URL``.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from simweb import SimWeb
from simweb.content import html_page
from simweb.model import Resource

ROOT = Path(__file__).resolve().parent.parent
HOST = "http://xxgk.fault-univ.edu.cn"
CALLBACK_FAULT = ["-s", "SPIDER_MIDDLEWARES=" + json.dumps(
    {"crawler.overhead.RobotsBytesMiddleware": 950, "tests.faultinject.RaiseInCallback": 960})]
ITEM_FAULT = ["-s", "ITEM_PIPELINES=" + json.dumps(
    {"tests.faultinject.UnknownStateItem": 100, "crawler.pipelines.ArchivePipeline": 300})]


def _page(title: str, links: list[str] = ()) -> Resource:
    body = "".join(f'<li><a href="{u}">{title}的链接{i}</a></li>' for i, u in enumerate(links))
    return Resource(body=html_page(title, f"<h1>{title}</h1><p>{'信息公开内容说明。' * 30}</p><ul>{body}</ul>").encode())


PAGES = {
    f"{HOST}/main.htm": _page("信息公开网", [f"{HOST}/a.htm", f"{HOST}/b.htm", f"{HOST}/gone.htm"]),
    f"{HOST}/a.htm": _page("基本信息"),
    f"{HOST}/b.htm": _page("规章制度", [f"{HOST}/b-child.htm"]),
    f"{HOST}/b-child.htm": _page("学校章程"),
    f"{HOST}/gone.htm": Resource(status=404, state="not_found", body=b"<h1>404 Not Found</h1>"),
}


def _crawl(tmp_path: Path, web: SimWeb, *, fault: list[str] = (), fault_url: str = "") -> subprocess.CompletedProcess:
    registry = tmp_path / "sites.toml"
    registry.write_text(f'[[site]]\nid = "t"\nname = "测试大学"\nportal = "{HOST}/main.htm"\nrender = "never"\n',
                        encoding="utf-8")
    env = {**os.environ, "http_proxy": web.proxy_url, "https_proxy": web.proxy_url, "no_proxy": "",
           "XXGK_TEST_FAULT_URL": fault_url}
    return subprocess.run(
        [sys.executable, "-m", "xxgk", "crawl", "--registry", str(registry), "--db", str(tmp_path / "a.db"),
         "-s", "XXGK_PROBE_SOFT404=0", "-s", "DOWNLOAD_DELAY=0", "-s", "XXGK_DOWNLOAD_TIMEOUT=10",
         "-s", "XXGK_CONFIRM_HOURS=0", *fault],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)


def _checks(conn: sqlite3.Connection, crawl_id: int) -> dict[str, str]:
    return dict(conn.execute("SELECT url, state FROM link_checks WHERE crawl_id = ?", [crawl_id]))


def test_a_page_whose_callback_raises_leaves_the_crawl_incomplete_and_the_rest_archived(tmp_path):
    with SimWeb(port=0, day=1, extra=PAGES) as web:
        result = _crawl(tmp_path, web, fault=CALLBACK_FAULT, fault_url="/b.htm")
    assert result.returncode == 1, result.stdout + result.stderr
    assert "could not be processed" in result.stderr
    conn = sqlite3.connect(tmp_path / "a.db")
    status, reason = conn.execute("SELECT status, finish_reason FROM crawls WHERE id = 1").fetchone()
    assert status == "incomplete"
    assert reason.startswith("processing_errors: 1 page(s)") and "/b.htm" in reason and "RuntimeError" in reason
    # Everything else the crawl fetched is archived.
    checks = _checks(conn, 1)
    assert checks[f"{HOST}/main.htm"] == "ok" and checks[f"{HOST}/a.htm"] == "ok"
    assert checks[f"{HOST}/gone.htm"] == "not_found"
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def test_an_item_failing_half_way_is_rolled_back_whole(tmp_path):
    with SimWeb(port=0, day=1, extra=PAGES) as web:
        result = _crawl(tmp_path, web, fault=ITEM_FAULT, fault_url="/a.htm")
    assert result.returncode == 1, result.stdout + result.stderr
    conn = sqlite3.connect(tmp_path / "a.db")
    # The check's row went in before the links update failed: neither is kept, nor its snapshot.
    assert conn.execute("SELECT COUNT(*) FROM link_checks WHERE url = ?", [f"{HOST}/a.htm"]).fetchone()[0] == 0
    assert conn.execute("SELECT COUNT(*) FROM links WHERE url = ?", [f"{HOST}/a.htm"]).fetchone()[0] == 0
    assert conn.execute("SELECT COUNT(*) FROM snapshots WHERE url = ?", [f"{HOST}/a.htm"]).fetchone()[0] == 0
    checks = _checks(conn, 1)
    assert checks[f"{HOST}/main.htm"] == "ok" and checks[f"{HOST}/b-child.htm"] == "ok"
    # Every other check has its links row and counts: nothing half-written.
    assert conn.execute("SELECT COUNT(*) FROM link_checks c LEFT JOIN links l ON l.url = c.url"
                        " WHERE l.url IS NULL").fetchone()[0] == 0
    status, reason = conn.execute("SELECT status, finish_reason FROM crawls WHERE id = 1").fetchone()
    assert status == "incomplete" and reason.startswith("processing_errors: 1 ") and "a.htm" in reason
    log = Path(conn.execute("SELECT log_path FROM crawls WHERE id = 1").fetchone()[0]).read_text("utf-8")
    assert "could not store LinkCheck" in log and "injected-bogus-state" in log


def test_a_broken_link_whose_check_failed_is_not_retired_as_unlinked(tmp_path):
    with SimWeb(port=0, day=1, extra=PAGES) as web:
        first = _crawl(tmp_path, web)
        assert first.returncode == 0, first.stdout + first.stderr
        # Day 2: the portal still links gone.htm, but its check cannot be stored.
        second = _crawl(tmp_path, web, fault=ITEM_FAULT, fault_url="/gone.htm")
    assert second.returncode == 1, second.stdout + second.stderr
    conn = sqlite3.connect(tmp_path / "a.db")
    assert f"{HOST}/gone.htm" not in _checks(conn, 2)
    assert conn.execute("SELECT status FROM crawls WHERE id = 2").fetchone()[0] == "incomplete"
    health = conn.execute("SELECT health FROM links WHERE url = ?", [f"{HOST}/gone.htm"]).fetchone()[0]
    assert health == "suspect"  # still broken as far as we know, not "the university removed it"


def test_a_failing_post_crawl_step_costs_only_its_own_crawl(tmp_path, monkeypatch, capsys):
    import archive.changes
    from xxgk.cli import main

    real = archive.changes.detect_changes

    def fails_for_crawl_1(db, crawl_ids):
        if 1 in crawl_ids:
            raise ValueError("injected post-crawl fault")
        return real(db, crawl_ids)

    monkeypatch.setattr(archive.changes, "detect_changes", fails_for_crawl_1)
    registry = tmp_path / "sites.toml"
    registry.write_text(f'[[site]]\nid = "t"\nname = "测试大学"\nportal = "{HOST}/main.htm"\nrender = "never"\n',
                        encoding="utf-8")
    args = ["crawl", "--registry", str(registry), "--db", str(tmp_path / "a.db"), "-s", "XXGK_PROBE_SOFT404=0",
            "-s", "DOWNLOAD_DELAY=0", "-s", "XXGK_DOWNLOAD_TIMEOUT=10"]
    with SimWeb(port=0, day=1, extra=PAGES) as web:
        for name in ("http_proxy", "https_proxy"):
            monkeypatch.setenv(name, web.proxy_url)
        monkeypatch.setenv("no_proxy", "")
        first = main(args)
        out = capsys.readouterr()
        second = main(args)
        out2 = capsys.readouterr()
    # Day 1: the summary, then one line naming the failed step; exit 1.
    assert first == 1
    assert "crawl 1 t (测试大学): finished" in out.out
    assert "post-crawl work failed (crawl 1: changes: ValueError: injected post-crawl fault)" in out.err
    # Day 2: its own work is done (the evaluation ran), crawl 1's is tried again and fails
    # again, logged, without failing day 2.
    assert second == 0, out2.out + out2.err
    conn = sqlite3.connect(tmp_path / "a.db")
    done = dict(conn.execute("SELECT id, postcrawl_at IS NOT NULL FROM crawls"))
    assert done == {1: 0, 2: 1}
    assert conn.execute("SELECT COUNT(*) FROM evaluations WHERE site_id = 't'").fetchone()[0] >= 1


def test_a_crawl_that_cannot_start_leaves_no_running_row(tmp_path, monkeypatch):
    import xxgk.runcrawl
    from archive.db import open_db
    from archive.store import running_crawl
    from schedules.registry import load_registry

    registry = tmp_path / "sites.toml"
    registry.write_text(f'[[site]]\nid = "t"\nname = "测试大学"\nportal = "{HOST}/main.htm"\n', encoding="utf-8")

    def busy(*args, **kwargs):
        raise sqlite3.OperationalError("database is locked")

    monkeypatch.setattr(xxgk.runcrawl, "_start_child", busy)
    with pytest.raises(sqlite3.OperationalError):
        xxgk.runcrawl.run_crawl(load_registry(registry), db_path=tmp_path / "a.db", registry_path=registry)
    db = open_db(tmp_path / "a.db")
    # The row carried this (living) process's pid: left running, it refused the site for as
    # long as the process (the scheduler) lived.
    assert running_crawl(db, "t") is None
    status, reason = db.execute("SELECT status, finish_reason FROM crawls WHERE id = 1").fetchone()
    assert status == "failed" and "OperationalError: database is locked" in reason
