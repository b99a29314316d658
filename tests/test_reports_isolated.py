"""Report extraction in a child process: same text, a deadline, a memory cap, and a crawl
pipeline that keeps going while a report is read."""

from __future__ import annotations

import asyncio
import inspect
import subprocess
from types import SimpleNamespace

import pytest
from test_reports_extract import make_docx, make_pdf, seed

from archive.reports import isolated
from archive.reports.extract import extract_text
from archive.reports.isolated import extract_isolated, needs_isolation
from crawler.items import LinkCheck


@pytest.fixture
def children(monkeypatch):
    """Every child process extract_isolated starts."""
    started: list[list[str]] = []
    real_run = subprocess.run

    def run(command, *args, **kwargs):
        started.append(command)
        return real_run(command, *args, **kwargs)

    monkeypatch.setattr(isolated.subprocess, "run", run)
    return started


def test_a_pdf_is_read_in_a_child_process_with_the_same_result(children):
    pdf = make_pdf(seed("hrbeu_2020-2021").split("\n"))
    assert needs_isolation(pdf, "report.pdf")
    result = extract_isolated(pdf, "report.pdf", "application/pdf")
    assert len(children) == 1 and "archive.reports.isolated" in children[0][-1]
    assert result == extract_text(pdf, "report.pdf", "application/pdf")
    assert result.error is None and "本年度学校未收到信息公开申请" in "".join(result.text.split())


def test_docx_goes_to_a_child_and_html_stays_in_process(children):
    docx = make_docx(["哈尔滨工程大学2020-2021学年信息公开工作年度报告", "一、概述"])
    assert "信息公开工作年度报告" in extract_isolated(docx, "a.docx").text and len(children) == 1
    html = "<html><head><title>年度报告</title></head><body><p>一、概述</p></body></html>".encode()
    assert not needs_isolation(html, "a.htm")
    assert extract_isolated(html, "a.htm").title == "年度报告" and len(children) == 1


def test_past_the_deadline_the_child_is_killed_and_the_error_recorded():
    result = extract_isolated(make_pdf(["一、概述"] * 200), "slow.pdf", timeout=0.01)
    assert (result.format, result.text) == ("pdf", "")
    assert result.error == "pdf extraction timed out after 0.01 s"


def test_a_child_out_of_memory_is_a_recorded_error_not_a_crash():
    result = extract_isolated(make_pdf(["一、概述"]), "big.pdf", memory_mb=1)
    assert result.format == "pdf" and result.text == ""
    assert result.error.startswith("pdf extraction ")


@pytest.mark.parametrize(("script", "error"), [
    ("kill -SEGV $$", "pdf extraction crashed (killed by signal 11)"),
    ("exit 3", "pdf extraction crashed (exit status 3)"),
    ("echo not-json", "pdf extraction returned garbage: "),
])
def test_a_child_that_dies_is_a_recorded_error(tmp_path, monkeypatch, script, error):
    interpreter = tmp_path / "python"
    interpreter.write_text(f"#!/bin/sh\ncat > /dev/null\n{script}\n")
    interpreter.chmod(0o755)
    monkeypatch.setattr(isolated.sys, "executable", str(interpreter))
    result = extract_isolated(make_pdf(["一、概述"]), "a.pdf")
    assert (result.format, result.text) == ("pdf", "") and result.error.startswith(error)


def test_the_crawl_pipeline_reads_a_pdf_report_without_holding_the_reactor(tmp_path):
    """In a crawl, ``process_item`` hands back a coroutine for a new PDF report (Scrapy awaits
    it while other items and downloads go on); the report is in the archive once it is done.
    A report already archived with the same bytes is refreshed at once, no child process."""
    from archive.db import open_db
    from crawler.pipelines import ArchivePipeline
    from schedules.registry import Site

    pdf = make_pdf(seed("hrbeu_2020-2021").split("\n"))
    site = Site(id="hrbeu", name="哈尔滨工程大学", portal=("http://xxgk.hrbeu.edu.cn/",),
                allowed_domains=("hrbeu.edu.cn",))
    pipeline = ArchivePipeline(str(tmp_path / "a.db"), 2, 20.0, 200)
    pipeline.crawler = SimpleNamespace(stats=None, engine=None)
    spider = SimpleNamespace(sites=[site], crawl_ids=None)
    pipeline.open_spider(spider)

    def report(url: str) -> LinkCheck:
        return LinkCheck(site_id="hrbeu", crawl_id=spider.crawl_ids["hrbeu"], url=url,
                         checked_at="2021-10-20T00:00:00Z", state="ok", rule="ok", status_code=200,
                         body=pdf, filename="2021.pdf", content_type="application/pdf",
                         report_hint="2020-2021学年信息公开工作年度报告", expect="attachment")

    pending = pipeline.process_item(report("http://xxgk.hrbeu.edu.cn/2021.pdf"))
    assert inspect.iscoroutine(pending)
    db = open_db(tmp_path / "a.db")
    assert db.execute("SELECT COUNT(*) FROM reports").fetchone()[0] == 0
    item = asyncio.run(pending)
    assert item.url.endswith("2021.pdf")
    pipeline.writer.commit()
    rows = db.execute("SELECT academic_year, format, error FROM reports").fetchall()
    assert rows == [("2020-2021", "pdf", None)]
    again = pipeline.process_item(report("http://xxgk.hrbeu.edu.cn/mirror/2021.pdf"))
    assert isinstance(again, LinkCheck)  # same bytes: already read, nothing to wait for
    pipeline.writer.commit()
    assert db.execute("SELECT COUNT(*) FROM reports").fetchone()[0] == 1


def test_a_child_ends_itself_at_its_deadline_when_nobody_kills_it():
    """A crawl killed while its child reads a file leaves no parser running past the deadline."""
    import json
    import signal
    import sys
    import time

    slow = make_pdf([f"第{n}行：学校坚持以公开为常态、不公开为例外。" for n in range(20_000)])
    header = json.dumps({"filename": "slow.pdf", "content_type": None, "timeout": 0.2, "memory_mb": 0}).encode()
    started = time.monotonic()
    child = subprocess.run([sys.executable, "-m", "archive.reports.isolated"], capture_output=True, timeout=60,
                           input=isolated._HEADER.pack(len(header)) + header + slow)
    assert child.returncode == -signal.SIGALRM and time.monotonic() - started < 30


def test_a_crawl_records_a_report_too_slow_to_read_and_checks_everything_else(tmp_path):
    """End to end: a portal links its annual report, a PDF that takes pdfminer longer than
    the deadline, and a list of articles. The crawl finishes, every page is checked, the
    PDF's link is ok and its report row says why it has no text."""
    import os
    import sqlite3
    import sys

    from simweb import SimWeb
    from simweb.content import html_page
    from simweb.model import Resource

    host = "xxgk.slowpdf-univ.edu.cn"
    home, report = f"http://{host}/index.htm", f"http://{host}/2023ndbg.pdf"
    articles = [f"http://{host}/info/{n}.htm" for n in range(20)]
    links = "".join(f'<li><a href="{u}">通知{n}</a></li>' for n, u in enumerate(articles))
    slow = make_pdf([f"第{n}行：学校坚持以公开为常态、不公开为例外。" for n in range(20_000)])
    pages = {home: Resource(body=html_page("信息公开网", f'<p><a href="{report}">2022-2023学年信息公开工作年度报告'
                                                       f'</a></p><ul>{links}</ul>').encode()),
             report: Resource(body=slow, content_type="application/pdf"),
             f"http://{host}/robots.txt": Resource(body=b"User-agent: *\nDisallow:\n", content_type="text/plain")}
    pages.update({u: Resource(body=html_page(f"通知{n}", f"<p>通知正文{n}。</p>").encode())
                  for n, u in enumerate(articles)})
    registry = tmp_path / "sites.toml"
    registry.write_text(f'[[site]]\nid = "slowpdf"\nname = "慢文件大学"\nportal = "{home}"\nrender = "never"\n',
                        encoding="utf-8")
    with SimWeb(port=0, day=1, extra=pages) as web:
        env = {**os.environ, "http_proxy": web.proxy_url, "https_proxy": web.proxy_url, "no_proxy": ""}
        result = subprocess.run(
            [sys.executable, "-m", "xxgk", "crawl", "--registry", str(registry), "--db", str(tmp_path / "a.db"),
             "-s", "XXGK_DOWNLOAD_TIMEOUT=10", "-s", "DOWNLOAD_DELAY=0", "-s", "AUTOTHROTTLE_ENABLED=False",
             "-s", "XXGK_PROBE_SOFT404=0", "-s", "XXGK_EXTRACT_TIMEOUT=1"],
            env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    with sqlite3.connect(tmp_path / "a.db") as conn:
        states = dict(conn.execute("SELECT url, state FROM link_checks"))
        reports = conn.execute("SELECT source_url, format, error FROM reports").fetchall()
        status = conn.execute("SELECT status FROM crawls").fetchone()[0]
    assert status == "finished"
    assert {u: states.get(u) for u in [home, report, *articles]} == dict.fromkeys([home, report, *articles], "ok")
    assert reports == [(report, "pdf", "pdf extraction timed out after 1 s")]
