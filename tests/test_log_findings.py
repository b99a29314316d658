"""A crawl's log keeps ERROR for the crawler's own faults: links that fail after their
retries and hosts whose robots.txt cannot be downloaded are findings (recorded as link
states), logged at INFO without tracebacks."""

from __future__ import annotations

import logging
import sqlite3
from pathlib import Path

import pytest


def test_simulated_web_crawl_logs_no_errors_for_its_findings(simweb_archive):
    """The simulated web has unreachable, refused, bad-TLS and slow hosts and failing
    pages: all recorded as states, none an ERROR line or a traceback in the crawl log."""
    with sqlite3.connect(simweb_archive) as conn:
        logs = {row[0] for row in conn.execute("SELECT log_path FROM crawls WHERE log_path IS NOT NULL")}
        failures = conn.execute(
            "SELECT COUNT(*) FROM links WHERE state IN ('dns_error', 'connection_error', 'tls_error',"
            " 'timeout', 'server_error')").fetchone()[0]
    logs = [Path(path) for path in logs if Path(path).exists()]
    if not logs:
        pytest.skip("archive copied from XXGK_TEST_ARCHIVE: no crawl logs")
    assert failures >= 4, "the comparison needs hosts and pages that fail"
    for log in logs:
        text = log.read_text("utf-8", errors="replace")
        assert "Gave up retrying" in text or "robots.txt" in text, f"{log}: findings not logged at all"
        errors = [line for line in text.splitlines() if "] ERROR:" in line]
        assert not errors, f"{log}: {errors[:5]}"
        assert "Traceback" not in text, log


def test_robots_failure_filter_lives_as_long_as_the_crawl(caplog):
    from scrapy import signals
    from scrapy.utils.test import get_crawler

    from crawler.extensions import FindingsNotErrors

    robots = logging.getLogger("scrapy.downloadermiddlewares.robotstxt")
    crawler = get_crawler()
    extension = FindingsNotErrors.from_crawler(crawler)
    caplog.set_level(logging.INFO)
    try:
        raise ConnectionRefusedError("refused")
    except ConnectionRefusedError as exc:
        robots.error("Error downloading %(request)s: %(f_exception)s",
                     {"request": "<GET http://x.edu.cn/>", "f_exception": exc}, exc_info=True)
        robots.error("cannot parse robots.txt")  # another message: a real error, kept
    first, other = caplog.records[-2:]
    assert (first.levelname, first.exc_info) == ("INFO", None)
    assert "refused" in first.getMessage()
    assert other.levelname == "ERROR"

    crawler.signals.send_catch_log(signals.engine_stopped)
    assert extension._filter not in robots.filters
    robots.error("Error downloading %(request)s: %(f_exception)s", {"request": "r", "f_exception": "e"})
    assert caplog.records[-1].levelname == "ERROR"
