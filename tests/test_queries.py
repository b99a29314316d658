"""Every canned query of ``archive/queries.py`` (JSON and CSV) against an archive crawled from
the simulated web (day 1, then day 2), with its answers compared to the simulated web's truth.
"""

from __future__ import annotations

import asyncio
import csv
import functools
import io
from urllib.parse import urlencode

import markupsafe
import pytest

from archive.queries import CANNED_QUERIES
from archive.serve import make_datasette
from archive.states import BROKEN_STATES, GOOD_STATES

SITES = ("webplus", "vsb", "jsp", "trs")
#: Broken states the simulated web produces whatever the machine's speed (not ``timeout``).
DETERMINISTIC_BROKEN = BROKEN_STATES - {"timeout"}
#: Parameters that make a query return something (others are left blank = no filter).
SAMPLE_PARAMS = {
    "url_history": {"url": "http://xxgk.webplus-univ.edu.cn/main.htm"},
    "referrers": {"url": "http://xxgk.webplus-univ.edu.cn/main.htm"},
    "search": {"q": "信息公开"},
}


@pytest.fixture(scope="module")
def ds(simweb_archive):
    return make_datasette(simweb_archive)


def get(ds, path: str):
    return asyncio.run(ds.client.get(path))


def rows(ds, name: str, **params: str) -> list[dict]:
    query = "?" + urlencode({**params, "_shape": "array"})
    response = get(ds, f"/xxgk/{name}.json{query}")
    assert response.status_code == 200, response.text
    return response.json()


def evaluated(ds) -> bool:
    result = asyncio.run(ds.get_database("xxgk").execute("select count(*) from evaluations"))
    return result.first()[0] > 0


@functools.cache
def truth_referrers() -> dict[str, set[str]]:
    """Link target -> the pages of the day-2 simulated web that link to it."""
    from simweb.sites import build_world

    world = build_world(2)
    referrers: dict[str, set[str]] = {}
    for page, res in world.resources.items():
        for target in world.page_links(page, res):
            referrers.setdefault(target, set()).add(page)
    return referrers


@pytest.mark.parametrize("name", sorted(CANNED_QUERIES))
def test_every_canned_query_as_json_and_csv(ds, name):
    query = CANNED_QUERIES[name]
    assert query["title"] and len(query["description"]) > 40, "document the question it answers"
    assert not query.get("write"), "the archive is read-only: no write canned queries"
    params = urlencode(SAMPLE_PARAMS.get(name, {}))
    response = get(ds, f"/xxgk/{name}.json?{params}")
    assert response.status_code == 200, response.text
    data = response.json()
    assert data["ok"] is True
    if name != "evaluation_evidence" or evaluated(ds):
        assert data["rows"], f"{name} returned nothing on a crawled archive"
    response = get(ds, f"/xxgk/{name}.csv?{params}")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain") or "csv" in response.headers["content-type"]
    table = list(csv.reader(io.StringIO(response.text)))
    assert table[0] == data["columns"]
    assert len(table) - 1 == len(data["rows"])
    html = get(ds, f"/xxgk/{name}?{params}")
    assert html.status_code == 200
    assert str(markupsafe.escape(query["title"])) in html.text


def test_broken_now_lists_truth_broken_links_with_their_referrers(ds, simweb_archive):
    """URLs broken on both days in the simulated web (hence confirmed dead) are listed, with a
    page that really links to them."""
    import sqlite3

    from simweb.truth import expected_links

    day1, day2 = expected_links(1), expected_links(2)
    listed = {row["url"]: row for row in rows(ds, "broken_now")}
    conn = sqlite3.connect(simweb_archive)
    known = {url for (url,) in conn.execute("select url from links")}
    conn.close()
    checked = 0
    for url, state in day2.items():
        if state not in DETERMINISTIC_BROKEN or day1.get(url) != state or url not in known:
            continue
        assert url in listed, f"{url} ({state}) missing from broken_now"
        row = listed[url]
        assert row["state"] == state and row["health"] == "dead" and row["broken_since"]
        pages = truth_referrers().get(url, set())
        assert any(page in (row["linked_from"] or "") for page in pages), \
            f"{url}: none of {pages} in linked_from {row['linked_from']!r}"
        checked += 1
    assert checked >= 8
    assert not [r for r in listed.values() if r["state"] not in BROKEN_STATES]


def test_broken_now_filters_on_site_and_state(ds):
    webplus = rows(ds, "broken_now", site="webplus")
    assert webplus and {r["site_id"] for r in webplus} == {"webplus"}
    soft = rows(ds, "broken_now", state="soft_404")
    assert soft and {r["state"] for r in soft} == {"soft_404"}
    assert rows(ds, "broken_now", site="no-such-site") == []


def test_newly_broken_and_fixed_since_follow_day_two(ds, simweb_archive):
    import sqlite3

    from simweb.truth import DAY2_CHANGES

    conn = sqlite3.connect(simweb_archive)

    def states(url):
        return [s for (s,) in conn.execute(
            "select state from link_checks where url = ? order by crawl_id", [url])]

    newly = {r["url"]: r for r in rows(ds, "newly_broken")}
    fixed = {r["url"]: r for r in rows(ds, "fixed_since")}
    seen_broke = seen_fixed = 0
    for url in DAY2_CHANGES["broke"]:
        history = states(url)
        if len(history) == 2 and history[0] in GOOD_STATES and history[1] in BROKEN_STATES:
            assert url in newly and newly[url]["previous_state"] in GOOD_STATES
            seen_broke += 1
    for url in DAY2_CHANGES["fixed"]:
        history = states(url)
        if len(history) == 2 and history[0] in BROKEN_STATES and history[1] in GOOD_STATES:
            assert url in fixed and fixed[url]["now_state"] in GOOD_STATES
            seen_fixed += 1
    conn.close()
    assert seen_broke >= 1 and seen_fixed >= 1
    assert not set(newly) & set(fixed)


def test_dead_report_links_are_urls_printed_in_reports(ds):
    from simweb.truth import expected_item_states, expected_report_items

    found = rows(ds, "dead_report_links")
    assert found
    by_site: dict[str, set[str]] = {}
    for row in found:
        by_site.setdefault(row["site_id"], set()).add(row["url"])
        assert row["health"] in ("suspect", "dead") and row["state"] in BROKEN_STATES
        assert row["report_id"] and row["item_number"]
    matched = 0
    for site in SITES:
        printed = expected_report_items(site)
        day1, day2 = expected_item_states(site, 1), expected_item_states(site, 2)
        for number, url in printed.items():
            if day1[number] in DETERMINISTIC_BROKEN and day2[number] in DETERMINISTIC_BROKEN:
                assert url in by_site.get(site, set()), f"{site} item {number} {url} ({day2[number]})"
                matched += 1
        # nothing the report prints as live is listed
        assert by_site.get(site, set()) <= set(printed.values())
    assert matched >= 4
    assert {r["site_id"] for r in rows(ds, "dead_report_links", site="trs")} == {"trs"}
    assert rows(ds, "dead_report_links", since="2999-01-01") == []


def test_missing_items_are_the_items_a_site_does_not_publish(ds):
    from simweb.truth import expected_report_items

    for site in SITES:
        found = rows(ds, "missing_items", site=site)
        assert all(r["status"] != "present" for r in found)
        missing = {r["item_number"] for r in found if r["status"] == "missing"}
        assert not missing & set(expected_report_items(site)), site
    jsp_missing = {r["item_number"] for r in rows(ds, "missing_items", site="jsp", status="missing")}
    assert jsp_missing, "the vocational college's report leaves items out"
    assert jsp_missing <= set(range(1, 51)) - set(expected_report_items("jsp"))


def test_scorecard_and_report_timeline_match_the_reports(ds):
    from simweb.truth import expected_reports

    card = {(r["site_id"], r["academic_year"]): r for r in rows(ds, "scorecard")}
    timeline = {(r["site_id"], r["academic_year"]): r for r in rows(ds, "report_timeline")}
    for report in expected_reports(2):
        key = (report["site_id"], report["academic_year"])
        assert key in card and key in timeline, key
        assert timeline[key]["signed_date"] == report["signed_date"]
        assert timeline[key]["deadline"] == f"{report['academic_year'][5:]}-10-31"
        if report["late"] is not None:
            expected = "late" if report["late"] else "on_time"
            assert card[key]["timeliness"] == timeline[key]["timeliness"] == expected
            assert (timeline[key]["days_late"] > 0) == report["late"]
        assert card[key]["applications_received"] == report["applications_received"]
        total = sum(card[key][c] for c in ("items_present", "items_missing", "items_dead",
                                           "items_empty", "items_unknown"))
        assert total == 50
    assert {r["academic_year"] for r in rows(ds, "scorecard", year="2020-2021")} == {"2020-2021"}


def test_recent_changes_show_diffs(ds):
    from simweb.truth import DAY2_CHANGES

    changes = rows(ds, "recent_changes")
    assert changes and "new" not in {r["kind"] for r in changes}
    changed = {r["url"]: r for r in changes if r["kind"] == "changed"}
    assert set(DAY2_CHANGES["changed"]) & set(changed)
    for row in changed.values():
        assert row["diff"].startswith("---") and row["new_snapshot_id"] and row["prev_snapshot_id"]
    removed = rows(ds, "recent_changes", kind="link_removed_from_source")
    source, target = DAY2_CHANGES["removed_links"][0]
    assert any(r["url"] == source and target in r["detail"] for r in removed)
    assert {r["kind"] for r in rows(ds, "recent_changes", kind="new")} == {"new"}
    assert rows(ds, "recent_changes", since="2999-01-01") == []
    assert [r["detected_at"] for r in changes] == sorted((r["detected_at"] for r in changes), reverse=True)


def test_search_works_for_chinese_terms_of_any_length(ds):
    long_term = rows(ds, "search", q="信息公开工作年度报告")
    assert {r["kind"] for r in long_term} >= {"report"}
    assert {r["site_id"] for r in long_term if r["kind"] == "report"} == set(SITES)
    two = rows(ds, "search", q="复议")  # 2 characters: below the trigram index, LIKE fallback
    reports = [r for r in two if r["kind"] == "report"]
    assert reports and all("【复议】" in r["snippet"] for r in reports)
    pages = [r for r in rows(ds, "search", q="通知公告") if r["kind"] == "page"]
    assert pages and all(r["snapshot_id"] for r in pages)
    assert len({r["url"] for r in pages}) == len(pages), "one row per URL"
    assert rows(ds, "search", q="复议", site="vsb") and \
        {r["site_id"] for r in rows(ds, "search", q="复议", site="vsb")} == {"vsb"}
    assert rows(ds, "search", q="") == []
    assert rows(ds, "search", q="%") == [], "LIKE wildcards are searched literally"
    assert rows(ds, "search", q='"年度') is not None  # quotes do not break the FTS query


def test_site_overview_has_every_site(ds):
    overview = {r["site_id"]: r for r in rows(ds, "site_overview")}
    assert set(overview) == set(SITES)
    assert overview["vsb"]["latest_report_timeliness"] == "late"
    assert all(r["last_crawl_status"] in ("finished", "incomplete") for r in overview.values())


def test_scorecard_and_evidence_carry_the_evaluation(ds):
    if not evaluated(ds):
        pytest.skip("the archive was not evaluated (see the fixture's warning)")
    card = rows(ds, "scorecard", site="webplus")
    scored = [r for r in card if r["score_overall"] is not None]
    assert scored and all(0 <= r["score_overall"] <= 100 and r["evaluation_id"] for r in scored)
    assert {"2020-2021", "2021-2022"} <= {r["academic_year"] for r in card}
    evidence = rows(ds, "evaluation_evidence", site="jsp")
    assert evidence and {r["site_id"] for r in evidence} == {"jsp"}
    assert all(r["points_lost"] >= 0 and r["dimension"] for r in evidence)
    assert any(r["snapshot_id"] and r["url"] for r in evidence), "findings point at archived evidence"
    lost = {int(r["item"]) for r in evidence if r["dimension"] == "checklist" and r["kind"] == "missing"}
    missing = {r["item_number"] for r in rows(ds, "missing_items", site="jsp", status="missing")}
    assert lost == missing
    year = scored[0]["academic_year"]
    assert {r["academic_year"] for r in rows(ds, "evaluation_evidence", site="webplus", year=year)} <= {year}
