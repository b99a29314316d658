"""The benchmark harness still works: ``python -m benchmarks.run --quick`` produces its tables.

Timings are printed by the harness, never asserted here; the full run is ``./run bench``.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_quick_benchmark_prints_every_table(tmp_path):
    results = tmp_path / "RESULTS.md"
    run = subprocess.run([sys.executable, "-m", "benchmarks.run", "--quick", "--results", str(results)],
                         cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    text = results.read_text(encoding="utf-8")
    for heading in ("## Targets", "Links checked per second", "Archive overhead", "Day-2 recrawl",
                    "Canned-query latency", "Peak memory"):
        assert heading in text, heading
    for tool in ("xxgk crawl", "bare Scrapy", "LinkChecker", "wget"):
        assert f"| {tool}" in text, tool
    assert "failed:" not in text and "nproc" in text and "uname -a" in text
    assert text in run.stdout  # the same table on the console


def test_synthetic_archive_has_the_requested_size(tmp_path):
    import sqlite3

    from benchmarks.make_synthetic import make_synthetic

    counts = make_synthetic(tmp_path / "s.db", checks=3000, snapshots=300, sites=3, links_per_site=100, echo=False)
    assert counts["link_checks"] == 3000 and counts["snapshots"] == 300 and counts["sites"] == 3
    with sqlite3.connect(tmp_path / "s.db") as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        # indexes rebuilt after the bulk load
        assert conn.execute("SELECT COUNT(*) FROM sqlite_master WHERE type = 'index' AND name = "
                            "'idx_link_checks_url'").fetchone() == (1,)
        dead = conn.execute("SELECT COUNT(*) FROM links WHERE health = 'dead'").fetchone()[0]
    assert 0 < dead < 300


def test_bigweb_serves_a_consistent_portal():
    import urllib.request

    from benchmarks.bigweb import BigWeb

    with BigWeb(pages=250) as web:
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({"http": web.proxy_url}))
        home = opener.open(web.portal, timeout=10).read().decode()
        assert "/list/0.htm" in home
        listing = opener.open("http://xxgk.big-univ.edu.cn/list/0.htm", timeout=10).read().decode()
        assert listing.count("/info/0/") == 100
        assert opener.open("http://xxgk.big-univ.edu.cn/info/0/0.htm", timeout=10).status == 200
        try:
            opener.open("http://xxgk.big-univ.edu.cn/info/0/100.htm", timeout=10)
            raise AssertionError("an article beyond the list must be a 404")
        except urllib.error.HTTPError as exc:
            assert exc.code == 404
    assert web.pages == 250
