"""End to end: the simulated web on a free port, ``xxgk crawl`` through its proxy as a
subprocess, then the database and Datasette's JSON compared with the simulated web's truth.

Prints precision and recall per state; fails on any false "broken" claim.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from archive.states import BROKEN_STATES, STATES

ROOT = Path(__file__).resolve().parent.parent
DELAY_SCALE = 0.05  # the slow host answers after 1.5 s ...
CRAWL_SETTINGS = ["-s", "XXGK_DOWNLOAD_TIMEOUT=1", "-s", "DOWNLOAD_DELAY=0",  # ... after our 1 s timeout
                  "-s", "AUTOTHROTTLE_ENABLED=False", "-s", "CONCURRENT_REQUESTS_PER_DOMAIN=8",
                  "-s", "RETRY_TIMES=1", "-s", "XXGK_CONFIRM_HOURS=0"]


def demo_registry() -> Path:
    import simweb

    return Path(simweb.__file__).with_name("demo_sites.toml")


def xxgk(*args: str, proxy: str, check: bool = True) -> subprocess.CompletedProcess:
    env = {**os.environ, "http_proxy": proxy, "https_proxy": proxy, "no_proxy": ""}
    result = subprocess.run([sys.executable, "-m", "xxgk", *args], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=600)
    if check and result.returncode != 0:
        raise AssertionError(f"xxgk {' '.join(args)} failed ({result.returncode}):\n"
                             f"{result.stdout}\n{result.stderr}")
    return result


@pytest.fixture(scope="module")
def crawled(tmp_path_factory):
    """Two crawls of the simulated web: day 1, then day 2. Returns (db path, web, crawl ids)."""
    from archive.db import open_db
    from simweb import SimWeb

    db_path = tmp_path_factory.mktemp("e2e") / "archive.db"
    with SimWeb(port=0, day=1, delay_scale=DELAY_SCALE) as web:
        day1 = xxgk("crawl", "--registry", str(demo_registry()), "--db", str(db_path),
                    *CRAWL_SETTINGS, proxy=web.proxy_url)
        day1_log = list(web.request_log)
        web.set_day(2)
        xxgk("crawl", "--registry", str(demo_registry()), "--db", str(db_path), *CRAWL_SETTINGS,
             proxy=web.proxy_url)
    db = open_db(db_path)
    crawls = db.execute("SELECT id, site_id FROM crawls ORDER BY id").fetchall()
    sites = len({site for _, site in crawls})
    day1_ids = [cid for cid, _ in crawls[:sites]]
    day2_ids = [cid for cid, _ in crawls[sites:]]
    return {"db": db, "path": db_path, "day1": day1_ids, "day2": day2_ids,
            "day1_stdout": day1.stdout, "day1_log": day1_log}


def states_of(db, crawl_ids: list[int]) -> dict[str, str]:
    marks = ",".join("?" * len(crawl_ids))
    return dict(db.execute(
        f"SELECT url, state FROM link_checks WHERE crawl_id IN ({marks}) ORDER BY id", crawl_ids
    ).fetchall())


def compare(expected: dict[str, str], found: dict[str, str]) -> tuple[str, list[str], list[str]]:
    """Per-state precision/recall table, false broken claims, and all mismatches."""
    rows = ["state            expected found  precision recall"]
    for state in STATES:
        exp = {u for u, s in expected.items() if s == state}
        got = {u for u, s in found.items() if s == state and u in expected}
        hit = len(exp & got)
        precision = hit / len(got) if got else 1.0
        recall = hit / len(exp) if exp else 1.0
        rows.append(f"{state:16} {len(exp):8} {len(got):5}  {precision:9.2f} {recall:6.2f}")
    false_broken = [f"{u}: expected {expected[u]}, got {s}" for u, s in found.items()
                    if u in expected and s in BROKEN_STATES and expected[u] != s]
    mismatches = [f"{u}: expected {s}, got {found.get(u, 'MISSING')}" for u, s in expected.items()
                  if found.get(u) != s]
    return "\n".join(rows), false_broken, mismatches


@pytest.mark.parametrize("day", [1, 2])
def test_every_url_gets_its_true_state(crawled, day):
    from simweb.truth import expected_links

    expected = expected_links(day)
    found = states_of(crawled["db"], crawled[f"day{day}"])
    table, false_broken, mismatches = compare(expected, found)
    print(f"\nday {day}: {len(expected)} URLs in truth, {len(found)} checked\n{table}")
    if mismatches:
        print("mismatches:\n  " + "\n  ".join(mismatches))
    assert not false_broken, "false broken claims:\n" + "\n".join(false_broken)
    assert not mismatches


def test_crawl_rows_and_summary(crawled):
    db = crawled["db"]
    rows = db.execute("SELECT status, pages, links_checked, exit_code FROM crawls").fetchall()
    assert len(rows) == 8 and all(r[0] == "finished" and r[1] > 0 and r[2] > 0 and r[3] == 0 for r in rows)
    assert "links by state:" in crawled["day1_stdout"] and "not_found" in crawled["day1_stdout"]


def test_robots_disallowed_urls_are_never_requested(crawled):
    from simweb.truth import expected_links

    excluded = [u for u, s in expected_links(1).items() if s == "excluded"]
    requested = {url for _method, url, _status in crawled["day1_log"]}
    assert excluded and not (set(excluded) & requested)


def test_trap_is_bounded(crawled):
    from simweb.truth import TRAP_PREFIXES

    calendar = [url for _m, url, _s in crawled["day1_log"] if url.startswith(tuple(TRAP_PREFIXES))]
    assert 0 < len(calendar) <= 100


def test_day2_recrawl_is_conditional(crawled):
    db = crawled["db"]
    day1 = db.execute(f"SELECT SUM(bytes_received) FROM crawls WHERE id IN ({','.join(map(str, crawled['day1']))})").fetchone()[0]
    day2 = db.execute(f"SELECT SUM(bytes_received) FROM crawls WHERE id IN ({','.join(map(str, crawled['day2']))})").fetchone()[0]
    unchanged = db.execute("SELECT COUNT(*) FROM snapshots WHERE not_modified = 1").fetchone()[0]
    assert unchanged > 100
    assert day2 < day1 * 0.25


def test_history_and_referrers_in_datasette(crawled):
    import asyncio

    from archive.serve import make_datasette

    db = crawled["db"]
    broken = db.execute("SELECT url FROM links WHERE state = 'not_found' ORDER BY url LIMIT 1").fetchone()[0]
    referrer = db.execute("SELECT from_url, anchor_text FROM link_sources WHERE to_url = ? LIMIT 1",
                          [broken]).fetchone()
    ds = make_datasette(crawled["path"])

    async def fetch(path: str, **params) -> dict:
        response = await ds.client.get(path, params=params)
        assert response.status_code == 200, (path, response.text[:500])
        return response.json()

    async def run() -> None:
        rows = (await fetch("/xxgk/links.json", state="not_found", _shape="objects"))["rows"]
        assert broken in {r["url"] for r in rows}
        history = (await fetch("/xxgk/url_history.json", url=broken, _shape="objects"))["rows"]
        assert len([r for r in history if r["kind"] == "check"]) == 2  # day 1 and day 2
        assert all(r["state"] == "not_found" for r in history if r["kind"] == "check")
        refs = (await fetch("/xxgk/referrers.json", url=broken, _shape="objects"))["rows"]
        assert (referrer[0], referrer[1]) in {(r["from_url"], r["anchor_text"]) for r in refs}
        dead = (await fetch("/xxgk/broken_now.json", site="", _shape="objects"))["rows"]
        assert any(r["url"] == broken and r["health"] == "dead" for r in dead)

    asyncio.run(run())


def test_titles_of_gbk_pages_are_decoded(crawled):
    from simweb.truth import MISLABELED_CHARSET

    db = crawled["db"]
    titles = [t for (t,) in db.execute(
        "SELECT title FROM snapshots WHERE url LIKE 'http://info.jsp-college.edu.cn/%' AND title IS NOT NULL")]
    assert titles and all("\ufffd" not in t for t in titles)
    assert any("学院" in t for t in titles)
    for url in MISLABELED_CHARSET:
        (title,) = db.execute("SELECT title FROM snapshots WHERE url = ? LIMIT 1", [url]).fetchone()
        assert title and "\ufffd" not in title and any("\u4e00" <= ch <= "\u9fff" for ch in title)


def test_summary_counts(crawled):
    counts = Counter(state for state in states_of(crawled["db"], crawled["day1"]).values())
    assert counts["ok"] > 300
    assert json.dumps(counts)  # printed for the log
