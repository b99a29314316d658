"""Canned queries: the questions users bookmark. Each name is part of a stable URL
(``/xxgk/<name>?param=...``): never rename one, add new ones instead.

Every query is run by ``tests/test_queries.py`` against a crawled archive.
"""

from __future__ import annotations

CANNED_QUERIES: dict[str, dict[str, str]] = {
    "broken_now": {
        "title": "Broken links now, by site and state / 当前失效链接",
        "description": "Every URL whose latest check is a broken state, how sure we are "
                       "(health: suspect = not yet confirmed, dead = confirmed), since when, and "
                       "the pages that link to it with their anchor text. Filter with :site "
                       "(blank = all sites).",
        "sql": """
select l.site_id, l.state, l.health, l.url, l.status_code, l.broken_since, l.last_checked,
  l.consecutive_failures,
  (select group_concat(ls.from_url || ' [' || coalesce(ls.anchor_text, '') || ']', char(10))
     from (select distinct from_url, anchor_text from link_sources
           where to_url = l.url order by from_url limit 20) ls) as linked_from
from links l
where l.health in ('suspect', 'dead')
  and (:site = '' or l.site_id = :site)
order by l.site_id, l.health = 'dead' desc, l.state, l.url
""",
    },
    "newly_broken": {
        "title": "Newly broken since the previous crawl / 新增失效",
        "description": "URLs whose check in the site's latest crawl is broken while their check "
                       "in the crawl before was good (or absent). Filter with :site.",
        "sql": """
with latest as (
  select site_id, max(id) as crawl_id from crawls
  where status in ('finished', 'incomplete') group by site_id
), previous as (
  select c.site_id, max(c.id) as crawl_id from crawls c join latest on latest.site_id = c.site_id
  where c.id < latest.crawl_id and c.status in ('finished', 'incomplete') group by c.site_id
)
select now_.site_id, now_.url, now_.state, now_.status_code, now_.checked_at,
  before_.state as previous_state
from link_checks now_
join latest on latest.crawl_id = now_.crawl_id
left join previous on previous.site_id = now_.site_id
left join link_checks before_ on before_.crawl_id = previous.crawl_id and before_.url = now_.url
where now_.state not in ('ok', 'redirected', 'blocked', 'rate_limited', 'excluded')
  and (before_.state is null or before_.state in ('ok', 'redirected'))
  and (:site = '' or now_.site_id = :site)
order by now_.site_id, now_.url
""",
    },
    "fixed_since": {
        "title": "Fixed since the previous crawl / 已修复",
        "description": "URLs broken in the previous crawl and good in the latest one.",
        "sql": """
with latest as (
  select site_id, max(id) as crawl_id from crawls
  where status in ('finished', 'incomplete') group by site_id
), previous as (
  select c.site_id, max(c.id) as crawl_id from crawls c join latest on latest.site_id = c.site_id
  where c.id < latest.crawl_id and c.status in ('finished', 'incomplete') group by c.site_id
)
select now_.site_id, now_.url, before_.state as was, now_.state as now_state, now_.checked_at
from link_checks now_
join latest on latest.crawl_id = now_.crawl_id
join previous on previous.site_id = now_.site_id
join link_checks before_ on before_.crawl_id = previous.crawl_id and before_.url = now_.url
where now_.state in ('ok', 'redirected')
  and before_.state not in ('ok', 'redirected', 'blocked', 'rate_limited', 'excluded')
  and (:site = '' or now_.site_id = :site)
order by now_.site_id, now_.url
""",
    },
    "url_history": {
        "title": "A URL's full history / 链接历史",
        "description": "Every check and every snapshot of one URL (:url), newest first.",
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
        "description": "Which pages link to :url, with which anchor text, in which crawls.",
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
        "description": "Every crawl with its counters, newest first.",
        "sql": """
select c.id, c.site_id, s.name, c.status, c.started_at, c.finished_at, c.pages, c.links_checked,
  c.bytes_received, c.new_broken, c.errors, c.finish_reason
from crawls c left join sites s on s.id = c.site_id
order by c.id desc
""",
    },
}
