"""``xxgk serve`` under requests that used to take it down or answer wrongly: values and answers
too large to encode (one GET could make the server allocate gigabytes), Atom feeds asked for a
site with control characters, ``since`` in the many forms people write a time, a NUL in a
search, and a large archived page rewritten while other requests wait.
"""

from __future__ import annotations

import asyncio
import html
import json
import os
import sqlite3
import threading
import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlencode

import pytest
from datasette.plugins import pm

from archive import serve
from archive.blobs import store_blob
from archive.serve import make_datasette

ATOM = "{http://www.w3.org/2005/Atom}"
MIB = 2**20
FEEDS = ("feed_broken", "feed_reports")
#: The queries filtered by ``:since`` and the output column it is compared with.
SINCE_COLUMNS = {"recent_changes": "detected_at", "dead_report_links": "broken_since",
                 "feed_broken": "atom_updated", "feed_reports": "atom_updated"}
STORED = "%Y-%m-%dT%H:%M:%SZ"


@pytest.fixture(scope="module")
def ds(simweb_archive):
    return make_datasette(simweb_archive)


def get(ds, path: str, **params: str):
    return asyncio.run(ds.client.get(path + ("?" + urlencode(params) if params else "")))


def sql(ds, query: str, fmt: str = ".json"):
    return get(ds, f"/xxgk{fmt}", sql=query)


def copy_archive(source: Path, target: Path) -> Path:
    with sqlite3.connect(source) as src, sqlite3.connect(target) as dst:
        src.backup(dst)
    return target


def add_snapshot(path: Path, body: bytes, content_type: str, suffix: str) -> int:
    """A snapshot of ``body`` (stored as the crawler stores it) in the archive at ``path``."""
    conn = sqlite3.connect(path)
    try:
        crawl_id, site_id, url, fetched_at = conn.execute(
            "select crawl_id, site_id, url, fetched_at from snapshots where sha256 is not null"
            " and content_type like 'text/html%' order by id limit 1").fetchone()
        sha256 = store_blob(conn, body)
        cursor = conn.execute(
            "insert into snapshots (crawl_id, site_id, url, final_url, fetched_at, status_code,"
            " content_type, sha256, size, encoding) values (?, ?, ?, ?, ?, 200, ?, ?, ?, 'utf-8')",
            [crawl_id, site_id, url + suffix, url + suffix, fetched_at, content_type, sha256, len(body)])
        conn.commit()
        return int(cursor.lastrowid)
    finally:
        conn.close()


# -- 1. bounded values and answers ---------------------------------------------------------------
def test_no_value_longer_than_the_archive_can_hold(ds):
    """SQLite used to make a value of any length at once (``select zeroblob(1000000000)``) and
    Python then encoded it as JSON: 24 GB, killed. ``length()`` of a zeroblob allocates nothing,
    so this checks the limit without the old code using that memory."""
    from crawler.settings import DOWNLOAD_MAXSIZE

    for size in (100_000_000, 1_000_000_000):
        response = sql(ds, f"select length(zeroblob({size}))")
        assert response.status_code == 400, response.text
        assert "too big" in response.json()["error"] and "MiB" in response.json()["error"]
    page = sql(ds, "select length(zeroblob(1000000000))", fmt="")
    assert page.status_code == 400 and "too big" in page.text
    # a table view shows it as a 400 too (Datasette answers 500 to a DataError there)
    table = get(ds, "/xxgk/blobs.json", _where="length(zeroblob(1000000000)) > 0")
    assert table.status_code == 400 and "too big" in table.json()["error"]
    # the largest body the crawler keeps is still a value
    largest = sql(ds, f"select length(zeroblob({DOWNLOAD_MAXSIZE}))")
    assert largest.status_code == 200 and largest.json()["rows"] == [[DOWNLOAD_MAXSIZE]]
    assert serve.ANSWER_BUDGET >= serve.VALUE_LIMIT > DOWNLOAD_MAXSIZE


def test_an_answer_past_the_budget_is_a_400_that_says_what_to_do(simweb_archive, monkeypatch):
    """Rows of large values add up (``/xxgk/blobs.json?_size=max``: 3.5 GB): past the budget
    the query stops with a message, in the query and table views, JSON and HTML alike. The
    budget is lowered so that the old code's answers stay small."""
    monkeypatch.setattr(serve, "ANSWER_BUDGET", MIB, raising=False)
    small = make_datasette(simweb_archive)
    five = "select zeroblob(300000) from (values (1), (2), (3), (4), (5))"
    for path, params in (("/xxgk.json", {"sql": five}), ("/xxgk/blobs.json", {"_size": "max"})):
        response = get(small, path, **params)
        assert response.status_code == 400, response.text[:300]
        error = response.json()["error"]
        assert "answer too large" in error and "1 MiB" in error and "/-/snapshot/<id>/raw" in error
    for path, params in (("/xxgk", {"sql": five}), ("/xxgk/blobs", {"_size": "max"})):
        page = get(small, path, **params)
        assert page.status_code == 400 and "answer too large" in page.text
    assert sql(small, "select zeroblob(300000)").status_code == 200  # under the budget
    assert get(small, "/xxgk/sites.json", _size="max").status_code == 200  # an everyday page


def test_the_viewer_still_reads_a_body_as_long_as_the_limit(simweb_archive, tmp_path, monkeypatch):
    """The snapshot viewer reads a whole body in one row through the same connections: the
    budget leaves room for one value at the limit (both lowered here to keep the test small)."""
    monkeypatch.setattr(serve, "VALUE_LIMIT", 2 * MIB, raising=False)
    monkeypatch.setattr(serve, "ANSWER_BUDGET", 2 * MIB + 64 * 1024, raising=False)
    body = os.urandom(2 * MIB - 1024)  # incompressible: stored as is, 1 KiB under the limit
    path = copy_archive(simweb_archive, tmp_path / "archive.db")
    snapshot_id = add_snapshot(path, body, "application/pdf", "?large.pdf")
    small = make_datasette(path)
    raw = get(small, f"/-/snapshot/{snapshot_id}/raw")
    assert raw.status_code == 200 and raw.content == body
    twice = get(small, "/xxgk.json", sql="select content from blobs where size = :n union all "
                                         "select content from blobs where size = :n", n=str(len(body)))
    assert twice.status_code == 400 and "answer too large" in twice.json()["error"]
    assert sql(small, f"select length(zeroblob({2 * MIB + 1}))").status_code == 400


# -- 2. feeds whatever the parameters -----------------------------------------------------------
@pytest.mark.parametrize("character", ["\x00", "\x01", "\x0b", "\x1f", "\ufffe"])
@pytest.mark.parametrize("feed", FEEDS)
def test_a_feed_for_a_site_with_control_characters_is_the_placeholder(ds, feed, character):
    response = get(ds, f"/xxgk/{feed}.atom", site=f"x{character}y")
    assert response.status_code == 200, response.text[:300]
    entries = ET.fromstring(response.content).findall(f"{ATOM}entry")
    assert len(entries) == 1, "no site has that id: only the placeholder entry"
    assert entries[0].findtext(f"{ATOM}id").endswith("/none/xy")
    assert entries[0].find(f"{ATOM}link").get("href").startswith("http")


# -- 4. since, in the forms people write a time --------------------------------------------------
def _floor(moment: datetime, step: timedelta) -> datetime:
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    return moment - (moment - epoch) % step


#: Forms of a time the old text comparison got wrong: (format of the time, its resolution).
#: Offsets are written for China (+08:00) and mean the same instant in UTC.
SINCE_FORMS = {
    "space": (lambda t: t.strftime("%Y-%m-%d %H:%M:%S"), timedelta(seconds=1)),
    "minutes Z": (lambda t: t.strftime("%Y-%m-%dT%H:%MZ"), timedelta(minutes=1)),
    "offset": (lambda t: (t + timedelta(hours=8)).strftime("%Y-%m-%dT%H:%M:%S+08:00"), timedelta(seconds=1)),
    "space minutes offset": (lambda t: (t + timedelta(hours=8)).strftime("%Y-%m-%d %H:%M+08:00"),
                             timedelta(minutes=1)),
    "compact date": (lambda t: t.strftime("%Y%m%d"), timedelta(days=1)),
    "slash date": (lambda t: t.strftime("%Y/%m/%d"), timedelta(days=1)),
}


def _rows(ds, name: str, **params: str) -> list[str]:
    response = get(ds, f"/xxgk/{name}.json", _shape="array", **params)
    assert response.status_code == 200, response.text[:300]
    # a feed with nothing to say answers one placeholder entry
    return sorted(json.dumps(row, sort_keys=True) for row in response.json()
                  if "/none/" not in str(row.get("atom_id", "")))


@pytest.mark.parametrize("form", sorted(SINCE_FORMS))
@pytest.mark.parametrize("name", sorted(SINCE_COLUMNS))
def test_since_is_read_as_a_time(ds, name, form):
    """Each form at the newest time the query lists (rounded down to what the form can say)
    and one step later: the rows at or after that instant, as the stored UTC times say."""
    column = SINCE_COLUMNS[name]
    everything = _rows(ds, name)
    times = [json.loads(row)[column] for row in everything]
    newest = datetime.strptime(max(t for t in times if t), STORED).replace(tzinfo=UTC)
    write, step = SINCE_FORMS[form]
    for instant in (_floor(newest, step), _floor(newest, step) + step):
        expected = [row for row, at in zip(everything, times, strict=True)
                    if at and at >= instant.strftime(STORED)]
        assert _rows(ds, name, since=write(instant)) == expected, (write(instant), len(expected))
    assert _rows(ds, name, since=newest.strftime(STORED)), "the documented form still works"


@pytest.mark.parametrize("name", sorted(SINCE_COLUMNS))
def test_a_since_that_is_not_a_time_is_a_400_saying_so(ds, name):
    for value in ("yesterday", "2026-13-01", "12/08/2026", "1733625600"):
        response = get(ds, f"/xxgk/{name}.json", since=value)
        assert response.status_code == 400, (value, response.text[:300])
        error = response.json()["error"]
        assert error.startswith("since: cannot read") and value in error and "2026-12-08" in error
    page = get(ds, f"/xxgk/{name}", since="yesterday")
    assert page.status_code == 400 and "since: cannot read" in page.text
    if name in FEEDS:
        assert get(ds, f"/xxgk/{name}.atom", since="yesterday").status_code == 400
    # the documented forms and a blank one as before
    for value in ("", "2026-11-01", "2026-11-01T08:00:00Z", "2999-01-01"):
        assert get(ds, f"/xxgk/{name}.json", since=value).status_code == 200, value


# -- 5. search ------------------------------------------------------------------------------------
def test_control_characters_in_a_search_are_left_out(ds):
    found = get(ds, "/xxgk/search.json", q="信息公开", _shape="array").json()
    assert found
    for typed in ("信息\x00公开", "\x01信息公开\x1f", "信\x0b息公开\ufffe"):
        response = get(ds, "/xxgk/search.json", q=typed, _shape="array")
        assert response.status_code == 200, response.text[:300]
        assert response.json() == found
    assert get(ds, "/xxgk/search.json", q="ab\x00cd").status_code == 200


# -- 3. a large page does not hold the server -------------------------------------------------------
def _large_page(links: int, archived: str) -> bytes:
    rows = "".join(f'<p><a href="/page{i}.htm">链接 {i}</a> 一些文字内容 {i}</p>\n' for i in range(links))
    return (f'<html><head><title>large</title></head><body><a href="{html.escape(archived)}">archived</a>\n'
            f"{rows}</body></html>").encode()


def test_a_large_page_is_rewritten_while_other_requests_are_answered(simweb_archive, tmp_path,
                                                                     monkeypatch):
    """Parsing and rewriting a 20,000-link page took the event loop for seconds: nothing else
    was answered meanwhile. Each of the two CPU-bound steps here waits (at most 20 s) until
    another request has been answered while it runs, which only works off the event loop."""
    path = copy_archive(simweb_archive, tmp_path / "archive.db")
    with sqlite3.connect(path) as conn:
        (archived,) = conn.execute("select url from snapshots where sha256 is not null"
                                   " and content_type like 'text/html%' order by id limit 1").fetchone()
    snapshot_id = add_snapshot(path, _large_page(20_000, archived), "text/html; charset=utf-8", "?large")
    large = make_datasette(path)
    viewer = pm.get_plugin("snapshot_view.py")  # the module Datasette loaded from plugins_dir
    waiting, answered = threading.Event(), threading.Event()
    steps: list[tuple[str, bool]] = []

    def meanwhile(step: str) -> None:
        answered.clear()
        waiting.set()
        steps.append((step, answered.wait(20)))
        waiting.clear()

    class Watched(viewer.Rewriter):
        def __init__(self, *args, **kwargs) -> None:
            meanwhile("parse")
            super().__init__(*args, **kwargs)

        def render(self, *args, **kwargs) -> str:
            meanwhile("render")
            return super().render(*args, **kwargs)

    monkeypatch.setattr(viewer, "Rewriter", Watched)

    async def view_while_asking() -> tuple:
        page = asyncio.create_task(large.client.get(f"/-/snapshot/{snapshot_id}/raw"))
        others = []
        while not page.done():
            if waiting.is_set() and not answered.is_set():
                others.append((await large.client.get("/xxgk/sites.json?_shape=array")).status_code)
                answered.set()
            await asyncio.sleep(0.01)
        return await page, others

    page, others = asyncio.run(view_while_asking())
    assert steps == [("parse", True), ("render", True)], "another request waited for the rewrite"
    assert others == [200, 200]
    assert page.status_code == 200
    assert page.text.count("data-archived-href=") == 20_000  # not in the archive
    assert page.text.count('target="_top"') == 1  # the page we hold, linked to its snapshot
