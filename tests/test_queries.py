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
        else:  # the report's date line cannot tell: the evaluation's verdict, if there is one
            verdicts = asyncio.run(ds.get_database("xxgk").execute(
                "select timeliness from evaluations where site_id = ? and academic_year = ?"
                " order by as_of desc, evaluated_at desc, id desc limit 1", list(key))).rows
            assert card[key]["timeliness"] == (verdicts[0][0] if verdicts and verdicts[0][0] else "unknown")
            assert timeline[key]["timeliness"] == "unknown"
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


# -- the fast queries answer as their plain definitions do ----------------------------------------
#: The straightforward SQL each rewritten query must agree with (what they answered before
#: migration m009 made them fast: each reads every check, snapshot or citation). A page's
#: referrers are listed by from_url, then anchor text (before: by from_url, ties in any order).
_LATEST = """with latest as (
  select site_id, max(id) as crawl_id from crawls
  where status in ('finished', 'incomplete') group by site_id
), previous as (
  select c.site_id, max(c.id) as crawl_id from crawls c join latest on latest.site_id = c.site_id
  where c.id < latest.crawl_id and c.status in ('finished', 'incomplete') group by c.site_id
)"""


#: The state of the URL's check just before check ``now_`` in (checked_at, id) order, in any
#: crawl; ``extra`` narrows which checks count (``{extra}`` is filled with str.format).
_BEFORE = """(select p.state from link_checks p where p.url = now_.url
     and (p.checked_at < now_.checked_at or (p.checked_at = now_.checked_at and p.id < now_.id)) {extra}
     order by p.checked_at desc, p.id desc limit 1)"""


def _reference() -> dict[str, str]:
    from archive.queries import BROKEN, GOOD, INCONCLUSIVE, TAG, like_pattern, url_param

    like = like_pattern("term.q")
    return {
        "broken_now": """
select sl.site_id, l.state, l.health, l.url, l.status_code, l.broken_since, l.last_checked,
  l.consecutive_failures,
  (select group_concat(ls.from_url || ' [' || coalesce(ls.anchor_text, '') || ']', char(10))
     from (select distinct from_url, anchor_text from link_sources
           where to_url = l.url order by from_url, anchor_text limit 20) ls) as linked_from
from links l join (select distinct site_id, url from link_checks where site_id is not null) sl on sl.url = l.url
where l.health in ('suspect', 'dead') and (:site = '' or sl.site_id = :site) and (:state = '' or l.state = :state)
order by sl.site_id, l.health = 'dead' desc, l.state, l.url""",
        "broken_over_time": f"""
select c.site_id, c.id as crawl_id, c.started_at, c.status, count(distinct lc.url) as checked,
  count(distinct case when lc.state in {BROKEN} then lc.url end) as broken,
  count(distinct case when lc.state in {INCONCLUSIVE} then lc.url end) as inconclusive,
  count(distinct case when lc.state in {GOOD} then lc.url end) as good,
  (select group_concat(state || ':' || n, ' ') from (
     select state, count(distinct url) as n from link_checks
     where crawl_id = c.id and state in {BROKEN} group by state order by n desc, state)) as broken_by_state
from crawls c left join link_checks lc on lc.crawl_id = c.id
where (:site = '' or c.site_id = :site) group by c.id order by c.site_id, c.id""",
        "newly_broken": _LATEST + f""", checks as (
  select now_.*, {_BEFORE.format(extra="")} as previous_state,
    {_BEFORE.format(extra=f"and p.state not in {INCONCLUSIVE}")} as previous_evidence
  from link_checks now_ join latest on latest.crawl_id = now_.crawl_id
)
select site_id, url, state, status_code, checked_at, previous_state from checks
where state in {BROKEN}
  -- a run of failures starts: the last check before that was not inconclusive was good, or none
  and (previous_evidence is null or previous_evidence in {GOOD})
  and (:site = '' or site_id = :site)
order by site_id, url""",
        "fixed_since": _LATEST + f""", good_now as (
  select now_.*, {_BEFORE.format(extra=f"and p.state not in {INCONCLUSIVE}")} as was
  from link_checks now_ join latest on latest.crawl_id = now_.crawl_id
  where now_.state in {GOOD}
)
select g.site_id, g.url, g.was, g.state as now_state, g.checked_at
from good_now g join previous on previous.site_id = g.site_id
where g.was in {BROKEN}
  and exists (select 1 from link_checks b where b.crawl_id = previous.crawl_id and b.url = g.url
              and (b.state in {BROKEN} or b.state in {INCONCLUSIVE}))
  and (:site = '' or g.site_id = :site)
order by g.site_id, g.url""",
        "feed_broken": f"""
with broken_checks as (
  select c.id, c.site_id, c.url, c.checked_at, c.state, c.status_code, c.crawl_id,
    {_BEFORE.format(extra="").replace("now_.", "c.")} as previous_state,
    {_BEFORE.format(extra=f"and p.state not in {INCONCLUSIVE}").replace("now_.", "c.")} as previous_evidence
  from link_checks c
  where c.state in {BROKEN} and (:site = '' or c.site_id = :site) and (:since = '' or c.checked_at >= :since)
), events as (
  select * from broken_checks where previous_evidence is null or previous_evidence in {GOOD}
)
select '{TAG}broken/' || e.site_id || '/' || e.id as atom_id,
  '[' || coalesce(s.name, e.site_id) || '] ' || e.state || ': ' || e.url as atom_title,
  e.checked_at as atom_updated,
  'URL: ' || e.url || char(10) || 'State: ' || e.state
    || coalesce(' (HTTP ' || e.status_code || ')', '') || char(10)
    || 'Previous check: ' || coalesce(e.previous_state, 'none (first check)') || char(10)
    || 'Checked at: ' || e.checked_at || ' (crawl ' || e.crawl_id || ')' || char(10)
    || 'Linked from:' || char(10) || coalesce((select group_concat(from_url || ' [' || coalesce(anchor_text, '') || ']', char(10))
        from (select distinct from_url, anchor_text from link_sources where to_url = e.url
              order by from_url, anchor_text limit 5)), '(no referrer recorded)') as atom_content,
  :_base_url || '/xxgk/url_history?url=' || {url_param('e.url')} as atom_link,
  e.site_id, e.url, e.state, e.previous_state
from events e left join sites s on s.id = e.site_id
union all
select '{TAG}broken/none/' || :site, 'No newly broken links recorded yet',
  coalesce((select max(started_at) from crawls), '2026-01-01T00:00:00Z'),
  'xxgk-archive has not found a newly broken link' || case when :site != '' then ' for ' || :site else '' end,
  :_base_url || '/xxgk/broken_now', :site, null, null, null
where not exists (select 1 from events)
order by atom_updated desc, atom_id desc limit 200""",
        "search": f"""
with term as (select trim(:q) as q),
report_hits as (
  select rowid as id from reports_fts
  where length((select q from term)) >= 3
    and reports_fts match '"' || replace((select q from term), '"', '""') || '"'
  union
  select r.id from reports r, term
  where length(term.q) between 1 and 2
    and (r.text like {like} escape '\\' or r.title like {like} escape '\\')
),
page_hits as (
  select max(s.id) as id from snapshots s, term
  where length(term.q) >= 1 and s.main_text like {like} escape '\\' and (:site = '' or s.site_id = :site)
  group by s.url
)
select 'report' as kind, r.site_id, r.academic_year, r.title, r.source_url as url, r.first_seen as seen_at,
  replace(substr(coalesce(r.text, r.title), max(1, instr(coalesce(r.text, r.title), term.q) - 40),
                 80 + length(term.q)), term.q, '【' || term.q || '】') as snippet,
  r.id as report_id, r.snapshot_id
from reports r join report_hits h on h.id = r.id, term
where (:site = '' or r.site_id = :site)
union all
select 'page', s.site_id, null, s.title, s.url, s.fetched_at,
  replace(substr(s.main_text, max(1, instr(s.main_text, term.q) - 40), 80 + length(term.q)),
          term.q, '【' || term.q || '】'),
  null, s.id
from snapshots s join page_hits h on h.id = s.id, term
order by kind desc, site_id, seen_at desc limit 500""",
    }


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory):
    """A small synthetic archive (benchmarks/make_synthetic.py) plus what it lacks: URLs
    checked twice in a crawl, inconclusive and other broken states, a running crawl, pages
    with their own text, written through the triggers as a crawl would."""
    import random
    import sqlite3

    from archive.states import STATES
    from benchmarks.make_synthetic import make_synthetic

    path = tmp_path_factory.mktemp("synthetic") / "archive.db"
    make_synthetic(path, checks=20_000, snapshots=2_000, sites=5, links_per_site=200, echo=False)
    rng = random.Random(11)
    conn = sqlite3.connect(path)
    crawl = conn.execute("SELECT max(id) FROM crawls").fetchone()[0]
    conn.execute("INSERT INTO crawls (id, site_id, started_at, status) VALUES (?, 's001', "
                 "'2026-06-01T00:00:00Z', 'running')", [crawl + 1])
    for n in range(1500):
        check_crawl = rng.choice([rng.randint(crawl - 20, crawl), crawl + 1])
        site = conn.execute("SELECT site_id FROM crawls WHERE id = ?", [check_crawl]).fetchone()[0]
        conn.execute(
            "INSERT INTO link_checks (crawl_id, site_id, url, checked_at, state) VALUES (?, ?, ?, ?, ?)",
            [check_crawl, site, f"http://xxgk.{site}.edu.cn/info/{rng.randrange(200)}.htm",
             f"2025-11-{1 + n % 28:02d}T{n % 24:02d}:{n % 60:02d}:{n % 59:02d}Z", rng.choice(STATES)])
    for _ in range(600):  # citations with other anchors, none, or empty ones
        site = rng.randrange(5)
        conn.execute(
            "INSERT OR IGNORE INTO link_sources (crawl_id, site_id, from_url, to_url, anchor_text, seen_at)"
            " VALUES (?, ?, ?, ?, ?, '2025-12-01T00:00:00Z')",
            [rng.randint(1, crawl), f"s{site:03d}", f"http://xxgk.s{site:03d}.edu.cn/list/{rng.randrange(3)}.htm",
             f"http://xxgk.s{site:03d}.edu.cn/info/{rng.randrange(20) * 50 + 7}.htm",
             rng.choice([None, "", "通知", "公告"])])
    words = ["招生章程", "复议申请", "信息公开", "年度报告", "通知公告", "50%", "a_b"]
    for n in range(300):
        site = rng.randrange(5)
        conn.execute(
            "INSERT INTO snapshots (site_id, url, fetched_at, status_code, main_text) VALUES (?, ?, ?, 200, ?)",
            [f"s{site:03d}", f"http://xxgk.s{site:03d}.edu.cn/page/{rng.randrange(40)}.htm",
             f"2026-02-{1 + n % 28:02d}T00:{n // 60:02d}:{n % 60:02d}Z",
             "关于" + "、".join(rng.sample(words, 2)) + f"的说明第{n}号"])
    conn.commit()
    conn.close()
    return path


def _answer(path, sql: str, params: dict[str, str]) -> list[tuple]:
    import re
    import sqlite3

    wanted = set(re.findall(r"(?<!:):(\w+)", sql)) - {"00", "00Z"}
    from archive.queries import xml_text

    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    conn.create_function("xml_text", 1, xml_text)  # as archive.serve registers it
    try:
        return conn.execute(sql, {**{p: "" for p in wanted}, **params}).fetchall()
    finally:
        conn.close()


@pytest.mark.parametrize("name, params", [
    ("broken_now", {}), ("broken_now", {"site": "s002", "state": "not_found"}),
    ("broken_over_time", {}), ("broken_over_time", {"site": "s001"}),
    ("newly_broken", {}), ("newly_broken", {"site": "s002"}),
    ("fixed_since", {}), ("fixed_since", {"site": "s003"}),
    ("feed_broken", {}), ("feed_broken", {"site": "s004"}), ("feed_broken", {"since": "2025-11-10"}),
    ("feed_broken", {"site": "nowhere"}),
])
def test_fast_queries_answer_as_their_definitions(synthetic, name, params):
    expected = _answer(synthetic, _reference()[name], params)
    assert expected, "the comparison needs rows"
    got = _answer(synthetic, CANNED_QUERIES[name]["sql"], params)
    if name == "broken_now":
        assert any("\n" in (row[-1] or "") for row in expected), "the comparison needs many referrers"
    assert sorted(map(repr, got)) == sorted(map(repr, expected))
    if name in ("newly_broken", "fixed_since"):  # "order by site_id, url": ties in any order
        assert got == sorted(got, key=lambda row: (row[0], row[1]))
    else:
        assert got == expected


def test_broken_now_streams_from_the_broken_links_index(synthetic):
    """broken_now sorts the keys of the broken links only (from their partial index), and
    reads them in that order in the outer loop: the referrers are worked out for the rows
    Datasette returns, not for every broken link before a sort."""
    import sqlite3

    conn = sqlite3.connect(f"file:{synthetic}?mode=ro", uri=True)
    try:
        plan = [(row[0], row[1], row[-1]) for row in conn.execute(
            "EXPLAIN QUERY PLAN " + CANNED_QUERIES["broken_now"]["sql"], {"site": "", "state": ""})]
    finally:
        conn.close()
    materialized = next(node for node, _parent, step in plan if step == "MATERIALIZE broken")
    inside = [step for _node, parent, step in plan if parent == materialized]
    outside = [step for _node, parent, step in plan if parent == 0]
    assert any("idx_links_broken" in step for step in inside), plan
    assert "USE TEMP B-TREE FOR ORDER BY" in inside, plan  # the keys are sorted ...
    assert outside[1:3] == ["SCAN b", "SEARCH l USING INDEX sqlite_autoindex_links_1 (url=?)"], plan
    assert not any("TEMP B-TREE" in step for step in outside), plan  # ... and nothing else


@pytest.mark.parametrize("few_hits", [5000, 3])  # 3: read pages newest first instead
@pytest.mark.parametrize("params", [
    {"q": "招生章程"}, {"q": "招生章程", "site": "s002"}, {"q": "信息公开"}, {"q": "信息公开", "site": "s001"},
    {"q": "复议"}, {"q": "号", "site": "s003"}, {"q": "第1号"}, {"q": "50%"}, {"q": "a_b"}, {"q": "%"},
    {"q": " 年度报告 "}, {"q": ""}, {"q": "不存在的词语"},
])
def test_search_answers_as_its_definition(synthetic, few_hits, params):
    from archive.queries import search_sql

    expected = _answer(synthetic, _reference()["search"], params)
    assert _answer(synthetic, search_sql(few_hits), params) == expected


def test_search_finds_new_pages_through_the_full_text_index(simweb_archive, tmp_path):
    """Pages written after the migration are searchable at once (triggers keep snapshots_fts
    in step): 3+ characters through the trigram index, 1-2 characters by reading pages; a
    page's newer capture replaces the older one in the results."""
    import sqlite3

    path = tmp_path / "archive.db"
    with sqlite3.connect(simweb_archive) as src, sqlite3.connect(path) as dst:
        src.backup(dst)
    conn = sqlite3.connect(path)
    url = "http://xxgk.webplus-univ.edu.cn/info/zsjz.htm"

    def capture(text: str) -> int:
        cursor = conn.execute(
            "INSERT INTO snapshots (crawl_id, site_id, url, fetched_at, status_code, main_text)"
            " VALUES (NULL, 'webplus', ?, strftime('%Y-%m-%dT%H:%M:%fZ', 'now'), 200, ?)", [url, text])
        conn.commit()
        return int(cursor.lastrowid)

    first = capture("我校二〇二六年本科招生章程已经学校招生委员会审议通过，现予公布。")
    ds = make_datasette(path)
    pages = [r for r in rows(ds, "search", q="本科招生章程") if r["kind"] == "page"]
    assert [(r["url"], r["snapshot_id"]) for r in pages] == [(url, first)]
    assert "【本科招生章程】" in pages[0]["snippet"]
    assert [r["snapshot_id"] for r in rows(ds, "search", q="章程", site="webplus") if r["url"] == url] == [first]
    second = capture("我校二〇二六年本科招生章程（修订稿）现予公布。")
    assert [r["snapshot_id"] for r in rows(ds, "search", q="本科招生章程") if r["kind"] == "page"] == [second]
    conn.execute("UPDATE snapshots SET main_text = '本页内容已撤下' WHERE id = ?", [second])
    conn.commit()
    assert [r["snapshot_id"] for r in rows(ds, "search", q="本科招生章程") if r["kind"] == "page"] == [first]
    conn.close()


# -- semantics found wrong by a watchdog's review (small archives of their own) --------------------
U1, U2, MOE = "http://x.edu.cn/u1", "http://x.edu.cn/u2", "http://www.moe.gov.cn/s.html"

def _archive(tmp_path, steps, *, applicable=None):
    """An archive of ``steps``: one crawl per (site, {url: state}, time), finished in order.
    Site "a" cites every URL from its home page; its 清单 items 1 and 2 point at u1 and u2."""
    import json

    from archive.db import open_db
    from archive.reports.ingest import ensure_checklist
    from archive.store import ArchiveWriter, finish_crawl, start_crawl, upsert_sites
    from crawler.items import LinkCheck, LinkSource

    db = open_db(tmp_path / "a.db")
    ensure_checklist(db)
    upsert_sites(db, [{"id": site, "name": site.upper(), "portal": json.dumps([f"http://{site}.edu.cn/"]),
                       "applicable_items": json.dumps(applicable) if applicable and site == "a" else None}
                      for site in ("a", "b")])
    writer = ArchiveWriter(db, confirm_checks=2, confirm_hours=0)
    for site, states, at in steps:
        crawl = start_crawl(db, site)
        for url, state in states.items():
            writer.record_source(LinkSource(site_id=site, crawl_id=crawl, from_url=f"http://{site}.edu.cn/",
                                            to_url=url, anchor_text="链接", seen_at=at))
            writer.record_check(LinkCheck(site_id=site, crawl_id=crawl, url=url, checked_at=at, state=state,
                                          rule="t", status_code=200 if state == "ok" else 404))
        writer.commit()
        finish_crawl(db, crawl, "finished")
    with db.conn:
        db.execute("INSERT INTO site_items (site_id, item_number, url, source, first_seen, last_seen) VALUES "
                   "('a', 1, ?, 'portal', '2026', '2026'), ('a', 2, ?, 'portal', '2026', '2026')", [U1, U2])
    db.conn.close()
    return make_datasette(tmp_path / "a.db")



def test_items_of_a_site_no_crawl_has_reached_are_unverified_not_missing(tmp_path):
    """Only an annual report ingested, the portal never crawled (or every crawl failed): its
    items are unknown, not 50 items "not published" (a review found missing_items, compliance
    and site_overview saying so while the evaluation said unverified)."""
    ds = _archive(tmp_path, [("a", {U1: "not_found", U2: "timeout"}, "2026-01-01T00:00:00Z")])
    for site, expected in (("a", {1: "dead", 2: "suspect"}), ("b", {})):
        status = {r["item_number"]: r["status"] for r in rows(ds, "missing_items", site=site)}
        assert len(status) == 50 and {status[n] for n in status if n not in expected} == {"unverified"}, status
        assert {n: status[n] for n in expected} == expected
        assert rows(ds, "missing_items", site=site, status="missing") == []
    overview = {r["site_id"]: r["items_missing"] for r in rows(ds, "site_overview")}
    assert overview == {"a": None, "b": None}
    compliance = {r["site_id"]: (r["items_missing"], r["items_unknown"])
                  for r in rows(ds, "scorecard")}
    assert compliance == {"a": (0, 49), "b": (0, 50)}  # a's item 1 is dead (a 404)
    # Once a crawl of the site has reached a page, an item nobody cites is missing.
    (tmp_path / "crawled").mkdir()
    ds = _archive(tmp_path / "crawled", [("a", {U1: "ok", U2: "timeout"}, "2026-01-01T00:00:00Z")])
    status = {r["item_number"]: r["status"] for r in rows(ds, "missing_items", site="a")}
    assert len(status) == 49 and status[2] == "suspect" and status[3] == "missing"
    assert {r["site_id"]: r["items_missing"] for r in rows(ds, "site_overview")} == {"a": 48, "b": None}
    assert {r["site_id"]: r["items_missing"] for r in rows(ds, "scorecard")} == {"a": 48, "b": 0}


def test_one_failure_that_may_pass_makes_an_item_suspect_not_dead(tmp_path):
    ds = _archive(tmp_path, [("a", {U1: "ok", U2: "ok"}, "2026-01-01T00:00:00Z"),
                             ("a", {U1: "server_error", U2: "timeout"}, "2026-01-02T00:00:00Z")])
    status = {r["item_number"]: r["status"] for r in rows(ds, "missing_items", site="a")}
    assert status[1] == status[2] == "suspect"
    (tmp_path / "later").mkdir()
    ds = _archive(tmp_path / "later", [("a", {U1: "ok", U2: "ok"}, "2026-01-01T00:00:00Z"),
                                       ("a", {U1: "server_error", U2: "timeout"}, "2026-01-02T00:00:00Z"),
                                       ("a", {U1: "ok", U2: "timeout"}, "2026-01-03T00:00:00Z")])
    status = {r["item_number"]: r["status"] for r in rows(ds, "missing_items", site="a")}
    assert 1 not in status and status[2] == "dead"  # recovered; confirmed by a second failure
    overview = {r["site_id"]: r for r in rows(ds, "site_overview")}["a"]
    assert (overview["items_dead"], overview["items_missing"]) == (1, 48)
    # a 404 is evidence at once: no confirmation needed
    (tmp_path / "gone").mkdir()
    ds = _archive(tmp_path / "gone", [("a", {U1: "not_found", U2: "ok"}, "2026-01-01T00:00:00Z")])
    assert {r["item_number"]: r["status"] for r in rows(ds, "missing_items", site="a")}[1] == "dead"


def test_items_that_do_not_apply_are_not_missing(tmp_path):
    applicable = [n for n in range(1, 51) if n not in (11, 12, 13, 14, 45, 46)]
    ds = _archive(tmp_path, [("a", {U1: "ok", U2: "ok"}, "2026-01-01T00:00:00Z")], applicable=applicable)
    missing = {r["item_number"] for r in rows(ds, "missing_items", site="a", status="missing")}
    assert missing == set(applicable) - {1, 2}
    assert {r["site_id"]: r["items_missing"] for r in rows(ds, "site_overview")}["a"] == 42
    assert {r["items_missing"] for r in rows(ds, "scorecard", site="a")} == {42}


def test_newly_broken_compares_with_the_urls_previous_check_in_any_crawl(tmp_path):
    ds = _archive(tmp_path, [("a", {U1: "ok", MOE: "ok"}, "2026-01-01T00:00:00Z"),
                             ("a", {U1: "rate_limited", MOE: "ok"}, "2026-01-02T00:00:00Z"),
                             ("b", {MOE: "not_found"}, "2026-01-02T12:00:00Z"),
                             ("a", {U1: "not_found", MOE: "not_found"}, "2026-01-03T00:00:00Z")])
    new = {r["url"]: r["previous_state"] for r in rows(ds, "newly_broken", site="a")}
    # u1: inconclusive before, broken now: new. The shared MOE page broke in b's crawl first.
    assert new == {U1: "rate_limited"}
    assert {r["url"] for r in rows(ds, "newly_broken", site="b")} == {MOE}


def _crawl_pages(db, site: str, at: str, pages: dict[str, tuple[str, list[str]]], writer) -> int:
    """One finished crawl: each page {url: (state, [links])}; every link is checked too."""
    from archive.store import finish_crawl, start_crawl
    from crawler.items import LinkCheck, LinkSource

    crawl = start_crawl(db, site)
    checked = set()
    for url, (state, links) in pages.items():
        for link in links:
            writer.record_source(LinkSource(site_id=site, crawl_id=crawl, from_url=url, to_url=link,
                                            anchor_text="链接", seen_at=at))
        for target, target_state in [(url, state)] + [(link, "not_found") for link in links]:
            if target not in checked:
                checked.add(target)
                writer.record_check(LinkCheck(site_id=site, crawl_id=crawl, url=target, checked_at=at,
                                              state=target_state, rule="t"))
    writer.commit()
    db.execute("UPDATE crawls SET started_at = ? WHERE id = ?", [at, crawl])
    finish_crawl(db, crawl, "finished")
    return crawl


@pytest.mark.parametrize("home_state, still_broken", [("ok", False), ("timeout", True)])
def test_a_broken_link_the_university_removed_is_no_longer_broken_now(tmp_path, home_state, still_broken):
    """Day 1 the home page links to a dead page; day 2 the home page is fetched again without
    that link: it is 'unlinked', not broken now. If day 2 could not fetch the home page, that
    proves nothing: the link stays broken."""
    import json

    from archive.db import open_db
    from archive.postcrawl import retire_unlinked
    from archive.store import ArchiveWriter, upsert_sites

    home, gone, kept = "http://a.edu.cn/", "http://a.edu.cn/old.htm", "http://a.edu.cn/bad.htm"
    db = open_db(tmp_path / "a.db")
    upsert_sites(db, [{"id": "a", "name": "A", "portal": json.dumps([home])}])
    writer = ArchiveWriter(db, confirm_checks=1, confirm_hours=0)
    first = _crawl_pages(db, "a", "2026-01-01T00:00:00Z", {home: ("ok", [gone, kept])}, writer)
    assert retire_unlinked(db, [first]) == 0
    second = _crawl_pages(db, "a", "2026-01-02T00:00:00Z", {home: (home_state, [kept] if home_state == "ok" else [])},
                          writer)
    retire_unlinked(db, [second])
    health = dict(db.execute("SELECT url, health FROM links"))
    db.conn.close()
    assert health[gone] == ("dead" if still_broken else "unlinked")
    ds = make_datasette(tmp_path / "a.db")
    broken = {r["url"] for r in rows(ds, "broken_now", site="a")}
    assert (gone in broken) == still_broken
    if home_state == "ok":
        assert kept in broken  # still linked, still dead


def test_a_dead_url_the_annual_report_cites_is_not_retired_when_the_portal_drops_it(tmp_path):
    """The portal stopped linking a dead item page its annual report still prints: the link
    stays dead (and in dead_report_links), not 'unlinked' (a review found it retired)."""
    import json

    from archive.db import open_db
    from archive.postcrawl import retire_unlinked
    from archive.store import ArchiveWriter, upsert_sites

    home, cited, plain = "http://a.edu.cn/", "http://a.edu.cn/2699/list.htm", "http://a.edu.cn/old.htm"
    db = open_db(tmp_path / "a.db")
    upsert_sites(db, [{"id": "a", "name": "A", "portal": json.dumps([home])}])
    writer = ArchiveWriter(db, confirm_checks=1, confirm_hours=0)
    _crawl_pages(db, "a", "2026-01-01T00:00:00Z", {home: ("ok", [cited, plain])}, writer)
    db.execute("INSERT INTO site_items (site_id, item_number, url, source, first_seen, last_seen)"
               " VALUES ('a', 26, ?, 'report', '2026-01-01', '2026-01-01')", [cited])
    second = _crawl_pages(db, "a", "2026-01-02T00:00:00Z", {home: ("ok", [])}, writer)
    assert retire_unlinked(db, [second]) == 1
    health = dict(db.execute("SELECT url, health FROM links"))
    db.conn.close()
    assert (health[cited], health[plain]) == ("dead", "unlinked")


def test_a_link_two_universities_cite_is_broken_for_both(tmp_path):
    """links holds one row per URL (its site_id: the first site that checked it); a dead
    page both universities link to is broken now for each, and counted for each."""
    ds = _archive(tmp_path, [("a", {U1: "ok", MOE: "not_found"}, "2026-01-01T00:00:00Z"),
                             ("b", {MOE: "not_found"}, "2026-01-02T00:00:00Z")])
    for site in ("a", "b"):
        broken = rows(ds, "broken_now", site=site)
        assert [(r["site_id"], r["url"], r["health"]) for r in broken] == [(site, MOE, "dead")]
    assert [(r["site_id"], r["url"]) for r in rows(ds, "broken_now")] == [("a", MOE), ("b", MOE)]
    overview = {r["site_id"]: (r["links_dead"], r["links_suspect"]) for r in rows(ds, "site_overview")}
    assert overview == {"a": (1, 0), "b": (1, 0)}
    assert {(r["site_id"], r["links_dead_now"]) for r in rows(ds, "scorecard")} == {("a", 1), ("b", 1)}
    assert {(r["site_id"], r["links_dead_now"]) for r in rows(ds, "scorecard", site="b")} == {("b", 1)}
    # the university page shows it too
    page = get(ds, "/-/university/b")
    assert page.status_code == 200 and MOE in page.text
