"""Canned queries: the questions users bookmark. Each name is part of a stable URL
(``/xxgk/<name>?param=...``, also ``.json``, ``.csv`` and, for the ``feed_*`` queries,
``.atom``): never rename one or drop a parameter, add new ones instead.

Every parameter is optional: a blank value means "no filter" (Datasette passes ``''`` for
a parameter missing from the URL). ``:since`` is read as a point in time (:func:`instant_sql`):
``2026-11-01``, ``2026-11-01T08:00:00Z``, ``2026-11-01 16:00+08:00``... all work; the server
answers 400 to a value it cannot read (``archive.serve``).

Every query is run by ``tests/test_queries.py`` against a crawled archive. The per-university
pages (``archive/datasette_plugins/university.py``) run the same SQL with ``site`` set.
"""

from __future__ import annotations

import re

from archive.states import BROKEN_STATES, GOOD_STATES, INCONCLUSIVE_STATES


def _in(states) -> str:
    return "(" + ", ".join(f"'{s}'" for s in sorted(states)) + ")"


BROKEN = _in(BROKEN_STATES)
GOOD = _in(GOOD_STATES)
INCONCLUSIVE = _in(INCONCLUSIVE_STATES)


def before_check(alias: str) -> str:
    """SQL condition: check ``p`` of the URL comes before check ``alias`` (in (checked_at, id)
    order, in any crawl), read backwards from idx_link_checks_url (url, checked_at)."""
    return (f"p.url = {alias}.url and p.checked_at <= {alias}.checked_at"
            f" and (p.checked_at < {alias}.checked_at or p.id < {alias}.id)")


def previous_state(alias: str) -> str:
    """SQL: the state of the URL's check just before check ``alias`` (NULL: its first check)."""
    return (f"(select p.state from link_checks p where {before_check(alias)}"
            f" order by p.checked_at desc, p.id desc limit 1)")


def previous_evidence(alias: str) -> str:
    """SQL: the state of the URL's last check before check ``alias`` that was not inconclusive
    (blocked, rate limited, excluded are never evidence either way); NULL: none."""
    return (f"(select p.state from link_checks p where {before_check(alias)} and p.state not in {INCONCLUSIVE}"
            f" order by p.checked_at desc, p.id desc limit 1)")


def became_broken(alias: str, previous: str) -> str:
    """SQL condition on broken check ``alias`` whose previous check's state is ``previous``:
    it starts a run of failures, i.e. the URL's last check before it that was not inconclusive
    is good or absent (only that lookup made, when ``previous`` is inconclusive). The same rule
    for ``newly_broken``, ``feed_broken`` and ``crawls.new_broken`` (archive.store)."""
    return (f"({previous} is null or {previous} in {GOOD} or ({previous} in {INCONCLUSIVE}"
            f" and coalesce({previous_evidence(alias)}, '') not in {BROKEN}))")


#: ``search``: up to this many trigram-index hits are grouped per URL; beyond, pages are read
#: newest first until enough match (a common term fills the page quickly).
SEARCH_FEW_HITS = 5000
# The ``feed_*`` queries' entry links start with ``:_base_url``, a Datasette magic parameter
# (``archive.serve``): the server's root URL (request host and ``base_url`` setting, no
# trailing slash), so feed readers get absolute links.
#: Prefix of the Atom entry ids (RFC 4151 tag URIs): stable, so feed readers never repeat one.
TAG = "tag:xxgk-archive,2026:"
#: Whether a crawl of site ``s`` ended having reached a page: until then, an item nobody
#: cites is not known to be missing (the portal was never looked at).
SITE_REACHED = GOOD.join(["""exists (select 1 from crawls c where c.site_id = s.id and c.status <> 'running'
    and exists (select 1 from link_checks lc where lc.crawl_id = c.id and lc.state in """, "))"])


def url_param(expr: str) -> str:
    """SQL percent-encoding of ``expr`` good enough for a query-string value (archived URLs
    are already percent-encoded; only the characters that would cut the value are escaped)."""
    for char, code in (("%", "%25"), ("&", "%26"), ("#", "%23"), ("+", "%2B"), (" ", "%20")):
        expr = f"replace({expr}, '{char}', '{code}')"
    return expr


#: Characters XML 1.0 cannot carry: C0 controls but tab, newline and carriage return,
#: U+FFFE and U+FFFF. A crawled anchor text or report title may hold them, and one would
#: make an Atom feed fail to render (lxml refuses to serialize it) for every subscriber.
_XML_ILLEGAL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def xml_text(value: object) -> object:
    """SQL function ``xml_text(x)``: text without the characters XML cannot carry.

    Registered on Datasette's connections by :mod:`archive.serve` (the feeds and ``search``
    use it)."""
    return _XML_ILLEGAL.sub("", value) if isinstance(value, str) else value


#: The forms of a ``:since`` value :func:`instant_sql` reads (query descriptions, errors).
INSTANT_FORMS = ("a date such as 2026-12-08, 20261208 or 2026/12/08, or a time such as "
                 "2026-12-08T02:34:00Z or 2026-12-08 10:34+08:00 (UTC when no offset is given)")


def instant_sql(param: str) -> str:
    """SQL for the text parameter ``param`` (``:since``) as a stored time, ``YYYY-MM-DDTHH:MM:SSZ``
    in UTC, so that a stored column compares to it as text (and its index serves).

    Reads :data:`INSTANT_FORMS`: ISO 8601 with ``T`` or a space, with or without seconds
    (fractions dropped), ``Z`` or a ``±HH:MM`` offset (converted to UTC), or a date alone
    (midnight UTC) as ``YYYY-MM-DD``, ``YYYYMMDD`` or ``YYYY/MM/DD``. Blank stays ``''`` (no
    filter); anything else is NULL, which matches nothing (the server answers 400 first).
    Plain SQL (SQLite's own date parser), not a registered function: the queries also run on
    connections Datasette did not prepare (tests, benchmarks)."""
    text = f"trim({param})"
    date = (f"(case when {text} glob '{'[0-9]' * 8}' then substr({text}, 1, 4) || '-' || substr({text}, 5, 2)"
            f" || '-' || substr({text}, 7, 2) else replace({text}, '/', '-') end)")
    # a leading date, or SQLite would also take 'now', a Julian day number or a bare time
    return (f"(case when {text} = '' then '' when {date} glob '[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]*'"
            f" then strftime('%Y-%m-%dT%H:%M:%SZ', {date}) end)")


#: ``:since`` as a stored time, for the queries to compare their stored column with.
SINCE = instant_sql(":since")


def atom_feed(sql: str, columns: list[str]) -> str:
    """A feed query whose texts (``atom_id``, ``atom_title``, ``atom_content``, ``atom_link``) are
    XML-safe: a parameter such as ``:site`` reaches them as typed (``columns``: the rest)."""
    return (f"select xml_text(atom_id) as atom_id, xml_text(atom_title) as atom_title, atom_updated,\n"
            f"  xml_text(atom_content) as atom_content, xml_text(atom_link) as atom_link,"
            f" {', '.join(columns)}\nfrom ({sql.strip()})\norder by atom_updated desc, atom_id desc\n")


def like_pattern(expr: str) -> str:
    """``'%' || expr || '%'`` with LIKE wildcards in ``expr`` escaped (use ``escape '\\'``)."""
    escaped = f"replace(replace(replace({expr}, '\\', '\\\\'), '%', '\\%'), '_', '\\_')"
    return f"('%' || {escaped} || '%')"


def search_sql(few_hits: int = SEARCH_FEW_HITS) -> str:
    """The ``search`` query; ``few_hits`` is :data:`SEARCH_FEW_HITS` (tests lower it to
    exercise the read-newest-first branch on a small archive)."""
    # the term without control characters (xml_text) everywhere it is read: a NUL cut the
    # FTS5 query string short ("unterminated string"), and no archived text holds one. Plain
    # SQL cannot remove a NUL (replace() takes char(0) for an empty pattern).
    q = "trim(xml_text(:q))"
    # pages are read newest first for 1-2 character terms or when the index finds many
    scan = f"(length({q}) between 1 and 2 or (select count(*) from fts_hits) > {few_hits})"
    return f"""
with term as (select {q} as q),
report_hits as (
  select rowid as id from reports_fts
  where length((select q from term)) >= 3
    and reports_fts match '"' || replace((select q from term), '"', '""') || '"'
  union
  select r.id from reports r, term
  where length(term.q) between 1 and 2
    and (r.text like {like_pattern('term.q')} escape '\\' or r.title like {like_pattern('term.q')} escape '\\')
),
report_rows as (
  select 'report' as kind, r.site_id, r.academic_year, r.title, r.source_url as url,
    r.first_seen as seen_at,
    replace(substr(coalesce(r.text, r.title), max(1, instr(coalesce(r.text, r.title), term.q) - 40),
                   80 + length(term.q)), term.q, '【' || term.q || '】') as snippet,
    r.id as report_id, r.snapshot_id
  from reports r join report_hits h on h.id = r.id, term
  where (:site = '' or r.site_id = :site)
),
-- Pages: the newest matching capture of each URL (max id). Reports sort first, so at most
-- 500 - (reports found) pages are shown: never group every capture of a common term.
-- 3+ characters: the trigram index (snapshots_fts) finds candidates, LIKE confirms them.
-- If it finds few, they are grouped; if many (or the term is 1-2 characters, below the
-- trigram index), the newest snapshots are read in display order until enough match.
fts_hits as (
  select rowid as id from snapshots_fts
  where length({q}) >= 3
    and snapshots_fts match '"' || replace({q}, '"', '""') || '"'
  limit {few_hits + 1}
),
few_hits as (
  select id from snapshots where id in (
    select max(s.id) from fts_hits h join snapshots s on s.id = h.id
    where (select count(*) from fts_hits) <= {few_hits}
      and s.main_text like {like_pattern(q)} escape '\\'
      and (:site = '' or s.site_id = :site)
    group by s.url)
),
many_hits as (
  -- no site: newest snapshots in display order; LIMIT 0 (nothing read) unless needed
  select s.id from snapshots s
  where :site = '' and s.main_text like {like_pattern(q)} escape '\\'
    and not exists (select 1 from snapshots n where n.url = s.url and n.id > s.id
                    and n.main_text like {like_pattern(q)} escape '\\')
  order by s.site_id, s.fetched_at desc
  limit case when {scan} then max(0, 500 - (select count(*) from report_rows)) else 0 end
),
many_site_hits as (
  -- one site: each of its URLs, newest capture first, until one matches
  select id from (
    select (select n.id from snapshots n where n.site_id = :site and n.url = u.url
              and n.main_text like {like_pattern(q)} escape '\\'
            order by n.id desc limit 1) as id
    from (select distinct url from snapshots where site_id = :site) u
    where :site != '' and {scan})
  where id is not null
)
select * from report_rows
union all
select 'page', s.site_id, null, s.title, s.url, s.fetched_at,
  replace(substr(s.main_text, max(1, instr(s.main_text, term.q) - 40), 80 + length(term.q)),
          term.q, '【' || term.q || '】'),
  null, s.id
from snapshots s, term
where s.id in (select id from few_hits union all select id from many_hits
               union all select id from many_site_hits)
order by kind desc, site_id, seen_at desc
limit 500
"""


CANNED_QUERIES: dict[str, dict] = {
    # -- link health ----------------------------------------------------------------------
    "broken_now": {
        "title": "Broken links now, by site and state / 当前失效链接",
        "description": "Which disclosure links are broken right now? Every URL whose latest check "
                       "is a broken state, how sure we are (health: suspect = not yet confirmed, "
                       "dead = confirmed), since when, and the pages that link to it with their "
                       "anchor text. Filter with :site and :state (blank = all).",
        "params": ["site", "state"],
        "sql": """
-- one row per site that checks the link (site_links): a link two universities cite is
-- broken for both. The broken links (a few percent of all, a partial index) are put in
-- order first, keys only; the outer loop reads them in that order (cross join keeps it
-- outside), so linked_from is worked out only for the rows Datasette returns
with broken as materialized (
  select sl.site_id, l.url
  from links l indexed by idx_links_broken
  join site_links sl on sl.url = l.url
  where l.health in ('suspect', 'dead')
    and (:site = '' or sl.site_id = :site)
    and (:state = '' or l.state = :state)
  -- the limit keeps the sort: SQLite drops the ORDER BY of a subquery without one
  order by sl.site_id, l.health, l.state, l.url limit -1
)
select b.site_id, l.state, l.health, l.url, l.status_code, l.broken_since, l.last_checked,
  l.consecutive_failures,
  -- link_referrers holds each (to_url, from_url, anchor_text) of link_sources once, in
  -- this order: no distinct, no sort
  (select group_concat(ls.from_url || ' [' || coalesce(ls.anchor_text, '') || ']', char(10))
     from (select from_url, anchor_text from link_referrers
           where to_url = l.url order by from_url, anchor_text limit 20) ls) as linked_from
from broken b cross join links l on l.url = b.url
""",
    },
    "newly_broken": {
        "title": "Newly broken since the previous crawl / 新增失效",
        "description": "What broke since the last crawl? URLs whose check in the site's latest crawl "
                       "is broken while the URL's last check before it that was not inconclusive "
                       "was good or there was none (in any crawl: another university's crawl may "
                       "have checked a shared link in between). Blocked, rate limited or excluded "
                       "checks neither end nor start a run of failures: 404, 403, 429, 404 broke "
                       "once. previous_state is the check just before. Filter with :site.",
        "params": ["site"],
        "sql": f"""
with latest as (
  -- the site filter here too: one site's latest crawls, not every site's then filtered
  select site_id, max(id) as crawl_id from crawls
  where status in ('finished', 'incomplete') and (:site = '' or site_id = :site) group by site_id
)
select site_id, url, state, status_code, checked_at, previous_state from (
  -- the latest crawls' few broken checks come straight from idx_link_checks_crawl, and each
  -- one's previous check from idx_link_checks_url (materialized: looked up once per check)
  select now_.id, now_.site_id, now_.url, now_.state, now_.status_code, now_.checked_at,
    {previous_state('now_')} as previous_state
  from latest
  join link_checks now_ on now_.crawl_id = latest.crawl_id
  where now_.state in {BROKEN}
    and (:site = '' or now_.site_id = :site)
  -- the limit keeps the subquery from being flattened into the outer where
  limit -1) now_
where {became_broken('now_', 'now_.previous_state')}
order by site_id, url
""",
    },
    "fixed_since": {
        "title": "Fixed since the previous crawl / 已修复",
        "description": "What was repaired since the last crawl? URLs good in the latest crawl whose "
                       "last check before that was not inconclusive was broken, among the URLs "
                       "broken, blocked, rate limited or excluded in the previous crawl (404, 403, "
                       "200 is a fix; was is the broken state). Filter with :site.",
        "params": ["site"],
        "sql": f"""
with latest as (
  -- the site filter here too: one site's latest crawls, not every site's then filtered
  select site_id, max(id) as crawl_id from crawls
  where status in ('finished', 'incomplete') and (:site = '' or site_id = :site) group by site_id
), previous as (
  select c.site_id, max(c.id) as crawl_id from crawls c join latest on latest.site_id = c.site_id
  where c.id < latest.crawl_id and c.status in ('finished', 'incomplete') group by c.site_id
), candidates as materialized (
  -- the previous crawls' few broken or inconclusive checks (idx_link_checks_crawl), one per URL
  select distinct previous.site_id, latest.crawl_id, before_.url
  from previous
  cross join latest on latest.site_id = previous.site_id
  cross join link_checks before_ on before_.crawl_id = previous.crawl_id
  where before_.state in {_in(BROKEN_STATES | INCONCLUSIVE_STATES)}
)
select site_id, url, was, now_state, checked_at from (
  -- ... to the same URL in the latest crawl (a check belongs to its crawl's site), good, and
  -- the URL's last check before it that was not inconclusive (idx_link_checks_url)
  select now_.site_id, now_.url, {previous_evidence('now_')} as was, now_.state as now_state,
    now_.checked_at
  from candidates k
  cross join link_checks now_ on now_.crawl_id = k.crawl_id and now_.url = k.url
  where +now_.state in {GOOD}  -- "+": look the URL up (crawl_id, url), not every good check
    and now_.site_id = k.site_id
    and (:site = '' or now_.site_id = :site)
  limit -1)
where was in {BROKEN}
order by site_id, url
""",
    },
    "broken_over_time": {
        "title": "Broken links per crawl / 失效链接趋势",
        "description": "Is a portal getting better or worse? For each crawl: URLs checked, broken "
                       "(evidence the content is gone), inconclusive (blocked, rate limited, "
                       "excluded) and good. Filter with :site. The university page draws this.",
        "params": ["site"],
        "sql": f"""
-- counted as checks are written (crawl_link_counts / crawl_state_counts, kept by triggers):
-- distinct URLs per crawl, without reading every check of every crawl
select c.site_id, c.id as crawl_id, c.started_at, c.status,
  coalesce(k.checked, 0) as checked, coalesce(k.broken, 0) as broken,
  coalesce(k.inconclusive, 0) as inconclusive, coalesce(k.good, 0) as good,
  -- "+state": one range of the crawl's few states, not a lookup per broken state
  (select group_concat(state || ':' || n, ' ') from (
     select state, urls as n from crawl_state_counts
     where crawl_id = c.id and +state in {BROKEN} and urls > 0 order by n desc, state)) as broken_by_state
from crawls c left join crawl_link_counts k on k.crawl_id = c.id
where (:site = '' or c.site_id = :site)
order by c.site_id, c.id
""",
    },
    "url_history": {
        "title": "A URL's full history / 链接历史",
        "description": "What happened to this URL, and do we hold a copy? Every check and every "
                       "snapshot of one URL (:url), newest first; snapshot_id links to the "
                       "archived copy (/-/snapshot/<id>).",
        "params": ["url"],
        "sql": """
select 'check' as kind, c.checked_at as at, c.crawl_id, c.state, c.status_code, c.final_url,
  c.rule, c.error, null as sha256, c.snapshot_id
from link_checks c where c.url = :url
union all
select 'snapshot', s.fetched_at, s.crawl_id, case when s.not_modified then 'unchanged' else 'stored' end,
  s.status_code, s.final_url, null, null, s.sha256, s.id
from snapshots s where s.url = :url
order by at desc, kind
""",
    },
    "referrers": {
        "title": "Pages that link to a URL / 链接来源",
        "description": "Who cites this URL? The pages that link to :url, with which anchor text, "
                       "in which crawls.",
        "params": ["url"],
        "sql": """
select ls.from_url, ls.anchor_text, min(ls.seen_at) as first_seen, max(ls.seen_at) as last_seen,
  count(distinct ls.crawl_id) as crawls, l.state as from_state
from link_sources ls left join links l on l.url = ls.from_url
where ls.to_url = :url
group by ls.from_url, ls.anchor_text
order by last_seen desc
""",
    },
    "crawl_overview": {
        "title": "Crawls / 抓取记录",
        "description": "When was each portal crawled, and how did it go? Every crawl with its "
                       "counters, newest first.",
        "sql": """
select c.id, c.site_id, s.name, c.status, c.started_at, c.finished_at, c.pages, c.links_checked,
  c.bytes_received, c.new_broken, c.errors, c.finish_reason
from crawls c left join sites s on s.id = c.site_id
order by c.id desc
""",
    },
    # -- annual reports and the checklist -------------------------------------------------
    "dead_report_links": {
        "title": "Dead links cited in annual reports / 年度报告中的失效链接",
        "description": "Which URLs printed in a university's own annual report "
                       "(清单事项公开情况表) no longer work? Report → checklist item → URL → "
                       "state, health and since when. Filter with :site and :since (broken "
                       f"since then). :since takes {INSTANT_FORMS}.",
        "params": ["site", "since"],
        "sql": f"""
select r.site_id, r.academic_year, r.id as report_id, ri.item_number, ri.title as item_title,
  ri.url, l.state, l.health, l.status_code, l.broken_since, l.last_ok, l.last_checked,
  r.source_url as report_url
-- reports first, in site order (idx_reports_site_year): rows come out site by site, so the
-- first page of results does not wait for every dead URL of every report to be sorted
from reports r
cross join report_items ri on ri.report_id = r.id
cross join links l on l.url = ri.url
where l.health in ('suspect', 'dead')
  and (:site = '' or r.site_id = :site)
  and (:since = '' or l.broken_since >= {SINCE})
order by r.site_id, r.academic_year desc, ri.item_number, ri.url
""",
    },
    "missing_items": {
        "title": "Checklist items not published / 未公开的清单事项",
        "description": "Which of the 50 items of 高等学校信息公开事项清单 (教办函〔2014〕23号) does a "
                       "university fail to publish? status: missing = neither in a report's "
                       "清单 table nor linked from the portal; dead = its URLs are broken: one "
                       "answers not found (404, a soft 404...) or a failure that may pass (5xx, "
                       "timeout) was confirmed; suspect = such a failure, not yet confirmed; "
                       "empty = the list page has no entries; inconclusive/unchecked = we could "
                       "not tell; unverified = no crawl of the portal has reached a page yet. "
                       "Items the registry says do not apply to the site are left out. "
                       "Filter with :site and :status.",
        "params": ["site", "status"],
        "sql": f"""
with crawled as (
  select s.id as site_id, {SITE_REACHED} as crawled from sites s where (:site = '' or s.id = :site)
), judged as (
  select s.id as site_id, s.name, ci.number as item_number, ci.category, ci.title,
    coalesce(i.status, case when cr.crawled then 'missing' else 'unverified' end) as status,
    i.urls, i.sources, s.applicable_items
  from sites s join crawled cr on cr.site_id = s.id cross join checklist_items ci
  -- the site filter inside too: SQLite pushes it into the view (one site's items, not all)
  left join (select * from item_status where (:site = '' or site_id = :site)) i
    on i.site_id = s.id and i.item_number = ci.number
)
select site_id, name, item_number, category, title, status, urls, sources
from judged
where status != 'present'
  and (coalesce(applicable_items, '') = ''
       or item_number in (select value from json_each(applicable_items)))
  and (:status = '' or status = :status)
order by site_id, item_number
""",
    },
    "scorecard": {
        "title": "Compliance scorecard / 信息公开评分表",
        "description": "How does each university do, per academic year? Checklist items present, "
                       "missing, dead, empty or unknown (of 50; judged on today's link states, "
                       "so the same on every year's row), whether the annual report was on time "
                       "(signed date against the 31 October deadline; without one, the "
                       "evaluation's verdict from the publishing page's date), applications received, "
                       "broken links now, and the latest automated evaluation's scores (0–100, "
                       "blank until `xxgk evaluate` has run; its evidence: evaluation_evidence). "
                       "Filter with :site and :year (e.g. 2021-2022).",
        "params": ["site", "year"],
        "sql": """
with comp as materialized (
  -- the compliance view once (it judges every checklist item), not once per use
  select * from compliance where (:site = '' or site_id = :site)
), latest_eval as (
  -- each (site, year)'s latest evaluation, looked up in its index (not every evaluation numbered)
  select e.* from (select distinct site_id, academic_year from evaluations) k
  join evaluations e on e.id = (
    select n.id from evaluations n where n.site_id = k.site_id and n.academic_year is k.academic_year
    order by n.as_of desc, n.evaluated_at desc, n.id desc limit 1)
), site_counts as (
  select site_id, max(name) as name, max(items_present) as items_present,
    max(items_missing) as items_missing, max(items_dead) as items_dead,
    max(items_empty) as items_empty, max(items_unknown) as items_unknown
  from comp group by site_id
), broken as materialized (
  -- from the broken links (a few percent of all) to the sites that check them (site_links)
  select sl.site_id, sum(l.health = 'dead') as dead, sum(l.health = 'suspect') as suspect
  from links l indexed by idx_links_broken join site_links sl on sl.url = l.url
  where l.health in ('suspect', 'dead') and (:site = '' or sl.site_id = :site) group by sl.site_id
), keys as (
  select c.site_id, c.academic_year from comp c
  where c.academic_year is not null
     or not exists (select 1 from latest_eval le where le.site_id = c.site_id)
  union
  select site_id, academic_year from latest_eval
)
select k.site_id, sc.name, k.academic_year,
  -- the report's own date line decides; when it cannot ('unknown'), the evaluation's verdict
  -- (which also reads the date of the page that published the report)
  case when c.timeliness = 'unknown' and le.timeliness is not null then le.timeliness
       else coalesce(c.timeliness, le.timeliness, 'no report') end as timeliness, c.signed_date,
  coalesce(c.deadline, substr(k.academic_year, 6, 4) || '-10-31') as deadline,
  sc.items_present, sc.items_missing, sc.items_dead, sc.items_empty, sc.items_unknown,
  c.applications_received,
  coalesce(b.dead, 0) as links_dead_now, coalesce(b.suspect, 0) as links_suspect_now,
  le.score_overall, le.score_checklist, le.score_report, le.score_publication,
  le.findings as evaluation_findings, le.method_version, c.report_id, le.id as evaluation_id
from keys k
join site_counts sc on sc.site_id = k.site_id
left join comp c on c.site_id = k.site_id and c.academic_year is k.academic_year
left join latest_eval le on le.site_id = k.site_id and le.academic_year is k.academic_year
left join broken b on b.site_id = k.site_id
where (:site = '' or k.site_id = :site)
  and (:year = '' or k.academic_year = :year)
order by k.site_id, k.academic_year desc
""",
    },
    "evaluation_evidence": {
        "title": "Evaluation: every point lost, with evidence / 评估扣分依据",
        "description": "Why did a university lose points in the automated evaluation? Each finding "
                       "of the latest evaluation per site and academic year: dimension "
                       "(checklist, report, publication), item, what was expected and found, "
                       "points lost, and the URL, snapshot and link check that prove it. Empty "
                       "until `xxgk evaluate` has run. Filter with :site and :year.",
        "params": ["site", "year"],
        "sql": """
select e.site_id, e.academic_year, f.dimension, f.item, f.kind, f.title, f.expected, f.found,
  f.points_lost, f.url, f.snapshot_id, f.sha256, f.link_check_id, e.score_overall,
  e.method_version, e.as_of, e.id as evaluation_id
from evaluation_findings f join evaluations e on e.id = f.evaluation_id
where e.id in (select r.evaluation_id from evaluation_ranking r
               where (:site = '' or r.site_id = :site) and (:year = '' or r.academic_year = :year))
order by e.site_id, e.academic_year desc, f.points_lost desc, f.dimension, f.item, f.id
""",
    },
    "report_timeline": {
        "title": "Annual reports: signed date and deadline / 年度报告发布时间",
        "description": "Did the annual report come out on time? Every 信息公开工作年度报告 found, "
                       "with its academic year, signed date, the 31 October deadline, days late "
                       "(negative = early), when we first saw it and where. Reports we could not "
                       "read are listed with their error; pages that turned out not to be reports "
                       "are left out. Filter with :site.",
        "params": ["site"],
        "sql": """
select r.site_id, s.name, r.academic_year, r.signed_date, r.deadline, r.timeliness,
  case when r.signed_date is not null and r.deadline is not null
       then cast(julianday(r.signed_date) - julianday(r.deadline) as integer) end as days_late,
  r.first_seen, r.format, r.title, r.source_url, r.id as report_id, r.snapshot_id,
  r.timeliness_evidence, r.error
from reports r left join sites s on s.id = r.site_id
where (r.error is null or r.error not like 'not an annual report%')
  and (:site = '' or r.site_id = :site)
order by r.site_id, r.academic_year desc, r.id desc
""",
    },
    # -- changes and search ---------------------------------------------------------------
    "recent_changes": {
        "title": "Recent changes / 最近变化",
        "description": "What changed on the portals? Pages changed (with a diff of the main text), "
                       "removed, reappeared, and links removed from pages, newest first. "
                       "prev_snapshot_id/new_snapshot_id open the archived copies. :kind = new, "
                       "changed, removed, reappeared or link_removed_from_source (blank = all "
                       "but new); filter with :site and :since (detected since "
                       f"then). :since takes {INSTANT_FORMS}.",
        "params": ["site", "kind", "since"],
        "sql": f"""
select c.detected_at, c.site_id, c.kind, c.url, c.size_of_change, c.diff, c.detail,
  c.prev_snapshot_id, c.new_snapshot_id, c.crawl_id, c.id as change_id
from changes c
where (:site = '' or c.site_id = :site)
  and (case when :kind = '' then c.kind != 'new' else c.kind = :kind end)
  and (:since = '' or c.detected_at >= {SINCE})
order by c.detected_at desc, c.id desc
limit 1000
""",
    },
    "search": {
        "title": "Search reports and pages / 全文搜索",
        "description": "Where is this said? Searches annual report titles and text (full-text "
                       "index for terms of 3+ characters, a scan for 1–2 characters such as "
                       "复议) and the main text of archived pages (the newest matching capture "
                       "of each URL). Chinese works without spaces. :q = the term; filter with "
                       ":site. The match is shown in 【】.",
        "params": ["q", "site"],
        "sql": search_sql(),
    },
    "site_overview": {
        "title": "Universities at a glance / 高校概览",
        "description": "One row per university: last crawl, broken links now, dead links printed in "
                       "its reports, checklist items missing, and its latest annual report. "
                       "The page /-/universities shows the same.",
        "sql": f"""
-- item_status (every checklist item of every site judged) and the dead URLs printed in
-- reports: each counted once for all sites, not once or twice per site
with items as materialized (
  -- items counted among those that apply to the site (registry applicable_items; all 50 if unset)
  select i.site_id, sum(coalesce(s.applicable_items, '') = ''
                        or i.item_number in (select value from json_each(s.applicable_items))) as items,
    sum(i.status = 'dead') as dead
  from item_status i join sites s on s.id = i.site_id group by i.site_id
), broken as materialized (
  -- from the broken links (a few percent of all) to the sites that check them (site_links)
  select sl.site_id, sum(l.health = 'dead') as dead, sum(l.health = 'suspect') as suspect
  from links l indexed by idx_links_broken join site_links sl on sl.url = l.url
  where l.health in ('suspect', 'dead') group by sl.site_id
), report_dead as materialized (
  select r.site_id, count(distinct ri.url) as urls
  from links l join report_items ri on ri.url = l.url join reports r on r.id = ri.report_id
  where l.health in ('suspect', 'dead') group by r.site_id
)
select s.id as site_id, s.name, s.kind,
  (select max(c.started_at) from crawls c where c.site_id = s.id) as last_crawl,
  (select c.status from crawls c where c.site_id = s.id order by c.id desc limit 1) as last_crawl_status,
  coalesce(b.dead, 0) as links_dead, coalesce(b.suspect, 0) as links_suspect,
  coalesce(d.urls, 0) as dead_report_links,
  -- blank until a crawl of the site has reached a page (nothing to say missing yet)
  case when {SITE_REACHED}
    then (case when coalesce(s.applicable_items, '') = '' then 50 else json_array_length(s.applicable_items) end)
         - coalesce(i.items, 0) end as items_missing, coalesce(i.dead, 0) as items_dead,
  (select r.academic_year from reports r where r.site_id = s.id and r.error is null
   order by r.academic_year desc, r.id desc limit 1) as latest_report_year,
  (select r.timeliness from reports r where r.site_id = s.id and r.error is null
   order by r.academic_year desc, r.id desc limit 1) as latest_report_timeliness,
  (select e.score_overall from evaluations e where e.site_id = s.id
   order by e.academic_year desc, e.as_of desc, e.evaluated_at desc, e.id desc limit 1) as latest_score
from sites s
left join items i on i.site_id = s.id
left join broken b on b.site_id = s.id
left join report_dead d on d.site_id = s.id
order by s.id
""",
    },
    # -- Atom feeds (datasette-atom: /xxgk/feed_broken.atom?site=...) ---------------------
    "feed_broken": {
        "title": "xxgk-archive: newly broken links / 新增失效链接",
        "description": "Atom feed (add .atom to the URL) of links that broke: each check that found "
                       "a URL broken when its last check before that was not inconclusive was "
                       "good or there was none (blocked, rate limited or excluded checks neither "
                       "end nor start a run of failures), newest first (200 entries). "
                       f"Filter with :site and :since (checked since then). :since takes {INSTANT_FORMS}.",
        "params": ["site", "since"],
        "sql": atom_feed(f"""
with events as (
  -- newest broken checks first (partial index idx_link_checks_broken_time), keeping those that
  -- start a run of failures (the URL's last check before that was not inconclusive was good or
  -- absent), until 200: never every broken check ever made.
  -- "c.checked_at >= since" also holds for a blank :since (every ISO time sorts after '').
  select * from (
    select c.id, c.site_id, c.url, c.checked_at, c.state, c.status_code, c.crawl_id,
      {previous_state('c')} as previous_state
    from link_checks c indexed by idx_link_checks_broken_time
    where c.state in {BROKEN}
      and (:site = '' or c.site_id = :site)
      and c.checked_at >= {SINCE}) c
  where {became_broken('c', 'c.previous_state')}
  order by checked_at desc, site_id || '/' || id desc
  limit 200
)
select '{TAG}broken/' || e.site_id || '/' || e.id as atom_id,
  '[' || coalesce(s.name, e.site_id) || '] ' || e.state || ': ' || e.url as atom_title,
  e.checked_at as atom_updated,
  'URL: ' || e.url || char(10) || 'State: ' || e.state
    || coalesce(' (HTTP ' || e.status_code || ')', '') || char(10)
    || 'Previous check: ' || coalesce(e.previous_state, 'none (first check)') || char(10)
    || 'Checked at: ' || e.checked_at || ' (crawl ' || e.crawl_id || ')' || char(10)
    || 'Linked from:' || char(10) || coalesce((select group_concat(from_url || ' [' || coalesce(anchor_text, '') || ']', char(10))
        from (select distinct from_url, anchor_text from link_referrers where to_url = e.url
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
order by atom_updated desc, atom_id desc
limit 200
""", ["site_id", "url", "state", "previous_state"]),
    },
    "feed_reports": {
        "title": "xxgk-archive: new annual reports / 新发布的年度报告",
        "description": "Atom feed (add .atom to the URL) of annual reports as they are found, with "
                       "their year, signed date, deadline and timeliness. Filter with :site and "
                       f":since (found since then). :since takes {INSTANT_FORMS}.",
        "params": ["site", "since"],
        "sql": atom_feed(f"""
with entries as (
  select r.*, s.name from reports r left join sites s on s.id = r.site_id
  where (r.error is null or r.error not like 'not an annual report%')
    and (:site = '' or r.site_id = :site)
    and (:since = '' or r.first_seen >= {SINCE})
)
select '{TAG}report/' || e.site_id || '/' || coalesce(e.sha256, e.id) as atom_id,
  '[' || coalesce(e.name, e.site_id) || '] ' || coalesce(e.academic_year || '学年', '')
    || '信息公开工作年度报告' || ' — ' || coalesce(e.timeliness, 'unknown') as atom_title,
  e.first_seen as atom_updated,
  'Title: ' || coalesce(e.title, '?') || char(10)
    || 'Academic year: ' || coalesce(e.academic_year, '?') || char(10)
    || 'Signed: ' || coalesce(e.signed_date, '?') || char(10)
    || 'Deadline: ' || coalesce(e.deadline, '?') || char(10)
    || 'Timeliness: ' || coalesce(e.timeliness, 'unknown') || char(10)
    || 'Applications received: ' || coalesce((select f.value from report_facts f
         where f.report_id = e.id and f.fact = 'applications_received' limit 1), '?') || char(10)
    || 'Source: ' || coalesce(e.source_url, '?')
    || coalesce(char(10) || 'Extraction error: ' || e.error, '') as atom_content,
  :_base_url || coalesce('/-/snapshot/' || e.snapshot_id, '/xxgk/reports/' || e.id) as atom_link,
  e.site_id, e.academic_year, e.id as report_id
from entries e
union all
select '{TAG}report/none/' || :site, 'No annual reports found yet',
  coalesce((select max(started_at) from crawls), '2026-01-01T00:00:00Z'),
  'xxgk-archive has not found an annual report' || case when :site != '' then ' for ' || :site else '' end,
  :_base_url || '/xxgk/report_timeline', :site, null, null
where not exists (select 1 from entries)
order by atom_updated desc, atom_id desc
limit 200
""", ["site_id", "academic_year", "report_id"]),
    },
}
