"""The Datasette experience on a crawled simulated archive: metadata for every table and
column, JSON and CSV of every table, the university pages, the Atom feeds, and read-only
serving that stays responsive while a crawl holds a write transaction (WAL).
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
import sqlite3
import time
import xml.etree.ElementTree as ET
from urllib.parse import quote, urlencode

import pytest

from archive.datasette_config import COLUMNS, HIDDEN_TABLES, SETTINGS, TABLES, metadata
from archive.queries import CANNED_QUERIES
from archive.serve import make_datasette

ATOM = "{http://www.w3.org/2005/Atom}"
SITES = ("webplus", "vsb", "jsp", "trs")


@pytest.fixture(scope="module")
def ds(simweb_archive):
    return make_datasette(simweb_archive)


def get(ds, path: str):
    return asyncio.run(ds.client.get(path))


def schema_objects(path) -> dict[str, list[str]]:
    conn = sqlite3.connect(path)
    objects = {name: [row[1] for row in conn.execute(f"pragma table_info([{name}])")]
               for (name,) in conn.execute("select name from sqlite_master where type in ('table', 'view')")}
    conn.close()
    return objects


# -- metadata ----------------------------------------------------------------------------------
def test_every_table_view_and_column_is_described_or_hidden(simweb_archive):
    meta = metadata()
    assert meta["title"] and meta["description"] and meta["license"] and meta["source"]
    assert meta["license_url"].startswith("https://") and meta["source_url"].startswith("https://")
    tables = meta["databases"]["xxgk"]["tables"]
    for name, columns in schema_objects(simweb_archive).items():
        assert name in tables, f"table {name} is neither described nor hidden in datasette_config.TABLES"
        if name in HIDDEN_TABLES:
            continue
        assert tables[name].get("description"), name
        undescribed = [c for c in columns if not COLUMNS.get(name, {}).get(c)]
        assert not undescribed, f"{name}: describe columns {undescribed} in datasette_config.COLUMNS"
    for name, config in TABLES.items():
        for facet in config.get("facets", []):
            assert facet in COLUMNS[name], (name, facet)
        for key in ("sort", "sort_desc", "label_column"):
            if key in config:
                assert config[key] in COLUMNS[name], (name, key)


def test_settings_and_index(ds):
    assert ds.setting("sql_time_limit_ms") == SETTINGS["sql_time_limit_ms"] <= 5000
    assert ds.setting("allow_download") is False
    index = get(ds, "/")
    assert index.status_code == 200 and "xxgk-archive" in index.text and "/-/universities" in index.text
    assert list(get(ds, "/.json").json()) == ["xxgk"], "only the archive is served (no _memory)"
    database = get(ds, "/xxgk.json").json()
    shown = {t["name"] for t in database["tables"] if not t["hidden"]}
    hidden = {t["name"] for t in database["tables"] if t["hidden"]}
    assert {"links", "link_checks", "reports", "snapshots", "sites", "changes"} <= shown
    assert {"reports_fts", "_sqlite_migrations", "blobs"} <= hidden
    assert {"item_status", "compliance"} <= {v["name"] for v in database["views"]}
    assert set(CANNED_QUERIES) <= {q["name"] for q in database["queries"]}


def test_every_table_as_json_and_csv_with_default_facets(ds, simweb_archive):
    for name in schema_objects(simweb_archive):
        if name in HIDDEN_TABLES:
            continue
        response = get(ds, f"/xxgk/{name}.json?_size=3")
        assert response.status_code == 200, (name, response.text[:300])
        data = response.json()
        for facet in TABLES[name].get("facets", []):
            assert facet in data["facet_results"], (name, facet)
        response = get(ds, f"/xxgk/{name}.csv?_size=3")
        assert response.status_code == 200, name
        assert next(csv.reader(io.StringIO(response.text)))[: len(data["columns"])] == data["columns"]
        assert get(ds, f"/xxgk/{name}").status_code == 200


def test_foreign_keys_show_labels_and_table_filters_work(ds):
    crawls = get(ds, "/xxgk/crawls.json?_labels=on&_shape=array&site_id=webplus").json()
    assert crawls and crawls[0]["site_id"] == {"value": "webplus", "label": "模拟理工大学"}
    soft = get(ds, "/xxgk/links.json?state=soft_404&_shape=array").json()
    assert soft and {row["state"] for row in soft} == {"soft_404"}
    dead = get(ds, "/xxgk/links.json?health=dead&_shape=array").json()
    assert dead and {row["health"] for row in dead} == {"dead"}
    # full-text search on the reports table (trigram: works for Chinese)
    found = get(ds, "/xxgk/reports.json?_search=" + quote("信息公开工作年度报告") + "&_shape=array").json()
    assert {row["site_id"] for row in found} == set(SITES)


# -- read-only, time limits, WAL --------------------------------------------------------------
def test_the_archive_cannot_be_modified_through_datasette(ds, simweb_archive):
    before = sqlite3.connect(simweb_archive).execute("select count(*) from sites").fetchone()[0]
    for sql in ("delete from sites", "update sites set name = 'x'", "insert into sites(id) values ('x')",
                "drop table sites", "attach database '/tmp/x.db' as x"):
        response = get(ds, "/xxgk.json?" + urlencode({"sql": sql}))
        assert response.status_code >= 400, sql
    with pytest.raises(sqlite3.OperationalError, match="readonly"):
        asyncio.run(ds.get_database("xxgk").execute("delete from sites"))
    for path in ("/xxgk/broken_now", "/xxgk/sites", "/xxgk", "/-/university/webplus"):
        response = asyncio.run(ds.client.post(path, data={"sql": "delete from sites"}))
        assert response.status_code == 405, path
    assert not any(q.get("write") for q in CANNED_QUERIES.values())
    assert get(ds, "/xxgk.db").status_code in (403, 404)
    after = sqlite3.connect(simweb_archive).execute("select count(*) from sites").fetchone()[0]
    assert before == after == len(SITES)


def test_slow_sql_is_interrupted(ds):
    endless = "with recursive c(x) as (select 1 union all select x + 1 from c) select count(*) from c"
    start = time.monotonic()
    response = get(ds, "/xxgk.json?" + urlencode({"sql": endless, "_timelimit": "200"}))
    assert response.status_code == 400 and "too long" in response.json()["error"]
    assert time.monotonic() - start < 3


def test_queries_answer_while_a_crawl_holds_a_write_transaction(ds, simweb_archive):
    writer = sqlite3.connect(simweb_archive, isolation_level=None, timeout=1)
    assert writer.execute("pragma journal_mode").fetchone()[0] == "wal"
    writer.execute("begin immediate")
    try:
        writer.execute("insert into sites (id, name, portal) values ('uncommitted', '未提交', '[]')")
        writer.execute("update links set state = 'ok', health = 'ok' where health = 'dead'")
        start = time.monotonic()
        broken = get(ds, "/xxgk/broken_now.json?_shape=array")
        page = get(ds, "/-/university/webplus")
        sites = get(ds, "/xxgk/sites.json?_shape=array")
        # Raised from 5 s, not dropped: three page renders took longer than 5 s on a loaded
        # machine though nothing waited for the lock. A reader that does wait fails anyway:
        # sqlite gives up after its busy timeout (5 s) with "database is locked", a 500 the
        # status checks below catch, since the write transaction is open until they are done.
        # The bound stays for a reader stuck far longer than any render (a hung test instead).
        assert time.monotonic() - start < 30
        assert broken.status_code == page.status_code == sites.status_code == 200
        assert broken.json(), "readers see the last committed state, not the open transaction"
        assert "uncommitted" not in {row["id"] for row in sites.json()}
    finally:
        writer.execute("rollback")
        writer.close()


# -- university pages ----------------------------------------------------------------------------
def test_universities_index_links_every_site(ds):
    response = get(ds, "/-/universities")
    assert response.status_code == 200
    for site in SITES:
        assert f'href="/-/university/{site}"' in response.text
    assert "模拟师范大学" in response.text and "feed_broken.atom" in response.text
    assert 'class="crumbs"' in response.text and "/-/static/app.css" in response.text  # Datasette's base


@pytest.mark.parametrize("site", SITES)
def test_university_page(ds, simweb_archive, site):
    response = get(ds, f"/-/university/{site}")
    assert response.status_code == 200
    html = response.text
    conn = sqlite3.connect(simweb_archive)
    name = conn.execute("select name from sites where id = ?", [site]).fetchone()[0]
    broken = [url for (url,) in conn.execute(
        "select url from links where site_id = ? and health in ('suspect', 'dead') order by url", [site])]
    portals = json.loads(conn.execute("select portal from sites where id = ?", [site]).fetchone()[0])
    portal_snapshot = conn.execute(
        f"select id from snapshots where url in ({', '.join('?' * len(portals))}) and sha256 is not null "
        "order by fetched_at desc, id desc limit 1", portals).fetchone()[0]
    conn.close()
    assert f"<h1>{name}" in html
    assert "<svg" in html and "Broken links per crawl" in html
    assert f"/xxgk/feed_broken.atom?site={site}" in html and f"/xxgk/feed_reports.atom?site={site}" in html
    assert 'type="application/atom+xml"' in html
    for name_ in ("scorecard", "broken_now", "dead_report_links", "missing_items", "report_timeline",
                  "recent_changes", "search"):
        assert f"/xxgk/{name_}?site={site}" in html
    assert f">{len(broken)}</strong>" in html
    for row in get(ds, f"/xxgk/broken_now.json?_shape=array&site={site}").json()[:5]:
        assert row["url"] in html.replace("&amp;", "&")  # the page lists them in the query's order
    assert f"/-/snapshot/{portal_snapshot}" in html, "links to the archived portal page"
    assert "/xxgk/url_history?url=" in html


def test_university_page_shows_the_latest_report_and_its_facts(ds):
    html = get(ds, "/-/university/vsb").text
    assert "2021-2022" in html and "2022-11-18" in html and "late" in html
    assert "Applications received" in html and "/-/snapshot/" in html
    html = get(ds, "/-/university/trs").text
    assert "link_removed_from_source" in html and "moe-sim.gov.cn" in html  # a recent change
    assert get(ds, "/-/university/no-such-site").status_code == 404
    assert get(ds, "/-/xxgk-static/xxgk.css").status_code == 200
    for path in ("/-/xxgk-static/..", "/-/xxgk-static/../queries.py", "/-/xxgk-static/~2E~2E~2Fqueries~2Epy"):
        assert get(ds, path).status_code == 404, path


def test_query_results_link_to_university_pages_and_url_history(ds):
    html = get(ds, "/xxgk/broken_now?site=webplus").text
    assert 'href="/-/university/webplus"' in html
    assert 'class="xxgk-history" href="/xxgk/url_history?url=' in html
    assert 'href="/-/university/vsb"' in get(ds, "/xxgk/sites").text


# -- feeds ---------------------------------------------------------------------------------------
def parse_feed(response) -> list[ET.Element]:
    assert response.status_code == 200, response.text[:500]
    assert "xml" in response.headers["content-type"]
    root = ET.fromstring(response.content)
    assert root.tag == f"{ATOM}feed"
    assert root.find(f"{ATOM}title").text and root.find(f"{ATOM}updated").text
    entries = root.findall(f"{ATOM}entry")
    for entry in entries:
        for child in ("id", "title", "updated"):
            assert entry.find(f"{ATOM}{child}").text, child
    assert len({e.find(f"{ATOM}id").text for e in entries}) == len(entries)
    return entries


def test_feed_of_newly_broken_links(ds):
    from simweb.truth import DAY2_CHANGES

    entries = parse_feed(get(ds, "/xxgk/feed_broken.atom?site=webplus"))
    assert entries and all("[模拟理工大学]" in e.find(f"{ATOM}title").text for e in entries)
    broke = [u for u in DAY2_CHANGES["broke"] if "webplus" in u]
    assert any(u in e.find(f"{ATOM}title").text for e in entries for u in broke)
    link = entries[0].find(f"{ATOM}link").get("href")
    assert link.startswith("http://localhost/xxgk/url_history?url=")  # absolute: feed readers need it
    assert get(ds, link.removeprefix("http://localhost")).status_code == 200
    everyone = parse_feed(get(ds, "/xxgk/feed_broken.atom"))
    assert len(everyone) > len(entries)
    nothing = parse_feed(get(ds, "/xxgk/feed_broken.atom?site=no-such-site"))
    assert len(nothing) == 1 and "No newly broken" in nothing[0].find(f"{ATOM}title").text


def test_feed_of_new_reports(ds):
    entries = parse_feed(get(ds, "/xxgk/feed_reports.atom?site=vsb"))
    titles = [e.find(f"{ATOM}title").text for e in entries]
    assert len(entries) == 2 and all("late" in t for t in titles)
    assert {"2020-2021", "2021-2022"} == {y for t in titles for y in ("2020-2021", "2021-2022") if y in t}
    content = entries[0].find(f"{ATOM}content").text
    assert "Signed: " in content and "Deadline: " in content
    link = entries[0].find(f"{ATOM}link").get("href")
    assert link.startswith("http://localhost/-/snapshot/")
    assert get(ds, link.removeprefix("http://localhost")).status_code == 200
    assert len(parse_feed(get(ds, "/xxgk/feed_reports.atom"))) >= 6


def test_feeds_survive_control_characters_in_crawled_text(tmp_path):
    """A control character in one site's anchor text or report title (XML cannot carry it)
    must not take the feeds down for every subscriber: it is left out of the entry."""
    from archive.db import open_db
    from archive.reports.ingest import ingest_report
    from archive.store import ArchiveWriter, finish_crawl, start_crawl, upsert_sites
    from crawler.htmlparse import page_links
    from crawler.items import LinkCheck, LinkSource

    home, dead = "http://xxgk.a.edu.cn/index.htm", "http://xxgk.a.edu.cn/missing.htm"
    db = open_db(tmp_path / "a.db")
    upsert_sites(db, [{"id": "a", "name": "甲大学", "portal": f'["{home}"]'}])
    writer, crawl = ArchiveWriter(db), start_crawl(db, "a")
    page = '<html><body><a href="/missing.htm">失效&#1;链接\x0b</a></body></html>'
    anchor = page_links(page)[1][0][1]
    assert "\x01" in anchor  # the parser keeps it: the feed must cope
    writer.record_check(LinkCheck(site_id="a", crawl_id=crawl, url=home, checked_at="2026-01-01T08:00:00Z",
                                  state="ok", rule="t", status_code=200, body=page.encode(), content_type="text/html"))
    writer.record_source(LinkSource(site_id="a", crawl_id=crawl, from_url=home, to_url=dead, anchor_text=anchor,
                                    seen_at="2026-01-01T08:00:00Z"))
    writer.record_check(LinkCheck(site_id="a", crawl_id=crawl, url=dead, checked_at="2026-01-01T08:00:01Z",
                                  state="not_found", rule="t", status_code=404))
    writer.commit()
    finish_crawl(db, crawl, "finished")
    body = ("甲大学2021-2022学年信息公开\x01工作年度报告\n一、概述\n二、主动公开情况\n三、依申请公开\n"
            + "内容。" * 300).encode()
    ingest_report(db, "a", body, filename="r.txt", url="http://xxgk.a.edu.cn/r.txt")
    db.conn.close()
    ds = make_datasette(tmp_path / "a.db")
    broken = parse_feed(get(ds, "/xxgk/feed_broken.atom?site=a"))
    assert len(broken) == 1 and "[失效链接]" in broken[0].find(f"{ATOM}content").text
    reports = parse_feed(get(ds, "/xxgk/feed_reports.atom"))
    assert len(reports) == 1 and "信息公开工作年度报告" in reports[0].find(f"{ATOM}content").text
    assert get(ds, "/xxgk/feed_broken.json?site=a").headers["x-content-type-options"] == "nosniff"


def test_feed_links_are_absolute_for_the_host_and_base_url(simweb_archive):
    """Entry links use the request's host and Datasette's base_url (behind a proxy that
    serves the archive under a path), and https when force_https_urls is set. (ds.client
    adds base_url to the paths it is given.)"""
    proxied = make_datasette(simweb_archive, settings={"base_url": "/archive/", "force_https_urls": True})
    host = {"host": "xxgk.example.org"}
    broken = parse_feed(asyncio.run(proxied.client.get("/xxgk/feed_broken.atom?site=jsp", headers=host)))
    links = [e.find(f"{ATOM}link").get("href") for e in broken]
    assert links and all(link.startswith("https://xxgk.example.org/archive/xxgk/url_history?url=")
                         for link in links)
    reports = parse_feed(asyncio.run(proxied.client.get("/xxgk/feed_reports.atom", headers=host)))
    assert all(e.find(f"{ATOM}link").get("href").startswith(
        ("https://xxgk.example.org/archive/-/snapshot/", "https://xxgk.example.org/archive/xxgk/reports/"))
        for e in reports)
    nothing = parse_feed(asyncio.run(proxied.client.get("/xxgk/feed_broken.atom?site=none", headers=host)))
    assert nothing[0].find(f"{ATOM}link").get("href") == "https://xxgk.example.org/archive/xxgk/broken_now"


def test_index_links_stay_under_the_base_url(simweb_archive):
    """Behind a proxy serving the archive under a path, the index's links point under it (a
    review found them at the proxy's root: 404s), on the index and on the database page."""
    import re

    proxied = make_datasette(simweb_archive, settings={"base_url": "/archive/"})
    for path in ("/", "/xxgk"):
        page = asyncio.run(proxied.client.get(path)).text
        links = set(re.findall(r'href="(/[^"]*(?:universities|broken_now|scorecard|search))"', page))
        assert {"/archive/-/universities", "/archive/xxgk/broken_now", "/archive/xxgk/scorecard",
                "/archive/xxgk/search"} <= links, links
        assert not {link for link in links if not link.startswith("/archive/")}, links


def test_serve_takes_the_base_url_from_the_command_line(tmp_path, monkeypatch):
    import uvicorn

    import archive.serve
    from xxgk.cli import main

    served = {}
    monkeypatch.setattr(uvicorn, "run", lambda app, **kwargs: served.update(app=app, **kwargs))
    real = archive.serve.make_datasette

    def capture(db_path, *, settings=None):
        served["datasette"] = real(db_path, settings=settings)
        return served["datasette"]

    monkeypatch.setattr(archive.serve, "make_datasette", capture)
    db = tmp_path / "a.db"
    from archive.db import open_db

    open_db(db).conn.close()
    assert main(["serve", "--db", str(db), "--port", "8123", "--base-url", "/archive"]) == 0
    assert served["port"] == 8123 and served["datasette"].setting("base_url") == "/archive/"
    assert "/archive/-/universities" in served["datasette"].metadata("description_html")
    with pytest.raises(SystemExit) as refused:
        main(["serve", "--db", str(db), "--base-url", "archive"])
    assert refused.value.code == 2


def test_serve_freezes_what_it_loaded_before_serving(tmp_path, monkeypatch):
    """``xxgk serve`` moves Datasette and everything loaded at start out of the cyclic
    collector's reach before the first request (large answers no longer pay for full
    collections walking them)."""
    import gc

    import uvicorn

    from archive import serve as serve_module

    frozen_when_serving = []
    monkeypatch.setattr(uvicorn, "run", lambda app, **kwargs: frozen_when_serving.append(gc.get_freeze_count()))
    gc.unfreeze()
    try:
        assert serve_module.serve(tmp_path / "a.db", port=0) == 0
        assert frozen_when_serving and frozen_when_serving[0] > 10_000
    finally:
        gc.unfreeze()
