"""Datasette configuration for the archive: metadata, descriptions, canned queries, settings.

The database is always served under the name ``xxgk`` whatever its file is called, so
URLs such as ``/xxgk/links?state=not_found`` stay the same for every archive.

Every table, view and column of the schema is described here (Chinese where the source
material is Chinese); ``tests/test_datasette.py`` fails when a new one is not.
"""

from __future__ import annotations

import html

from archive.queries import CANNED_QUERIES
from archive.states import DESCRIPTIONS

DATABASE_NAME = "xxgk"

#: Tables and views a user browses; internal ones are in :data:`HIDDEN_TABLES`.
TABLES: dict[str, dict] = {
    "sites": {"description": "The registry's sites (universities) / 高校. Each has a page at "
                             "/-/university/<id>.",
              "label_column": "name", "sort": "id", "facets": ["kind"]},
    "crawls": {"description": "One row per crawl run of one site / 抓取记录",
               "label_column": "started_at", "sort_desc": "id", "facets": ["site_id", "status"]},
    "links": {"description": "Every URL seen, with its current state and health. health: ok, "
                             "suspect (broken, not yet confirmed), dead (confirmed), inconclusive "
                             "(blocked/rate limited/excluded) / 链接当前状态",
              "facets": ["site_id", "state", "health"], "sort": "url"},
    "crawl_link_counts": {"description": "Per crawl: distinct URLs checked, broken, inconclusive and good, "
                                         "counted as checks are written (the data of broken_over_time) "
                                         "/ 每次抓取的链接统计",
                          "sort_desc": "crawl_id"},
    "crawl_state_counts": {"description": "Per crawl and link state: distinct URLs checked in that state "
                                          "/ 每次抓取各状态链接数",
                           "sort_desc": "crawl_id", "facets": ["state"]},
    "site_links": {"description": "Every site that checks a link (a link two universities cite is theirs "
                                  "both; links.site_id names the first) / 各高校的链接",
                   "sort": "url", "facets": ["site_id"]},
    "link_referrers": {"description": "Each distinct (link target, citing page, anchor text) of link_sources "
                                      "once, whatever the crawl / 链接来源（去重）",
                       "sort": "to_url"},
    "link_checks": {"description": "Every check of every URL, kept forever / 链接检查历史",
                    "sort_desc": "id", "facets": ["site_id", "state"]},
    "link_sources": {"description": "Which page links where, per crawl, with anchor text / 链接来源",
                     "sort_desc": "id", "facets": ["site_id"]},
    "snapshots": {"description": "Every archived fetch: headers, sha256 of the body, main text / 快照. "
                                 "View one at /-/snapshot/<id>.",
                  "sort_desc": "id", "facets": ["site_id", "content_type"]},
    "blobs": {"description": "Bodies stored once per sha256, zlib-compressed / 内容寻址存储 "
                             "(hidden from the table list; rows are linked from snapshots)",
              "hidden": True},
    "checklist_items": {"description": "The 50 items of 高等学校信息公开事项清单 (教办函〔2014〕23号) / "
                                       "信息公开事项清单",
                        "label_column": "title", "sort": "number", "facets": ["category"]},
    "reports": {"description": "信息公开工作年度报告: annual reports with their extracted dates, "
                               "deadline and timeliness. Rows with an error are pages we could not "
                               "read or that turned out not to be reports.",
                "label_column": "academic_year",
                "facets": ["site_id", "academic_year", "timeliness"],
                "sort_desc": "id", "fts_table": "reports_fts", "fts_pk": "id"},
    "report_facts": {"description": "Facts stated in reports, each with its source sentence / 报告数据",
                     "facets": ["fact"], "sort": "report_id"},
    "report_items": {"description": "Rows of each report's 清单事项公开情况表: where the university "
                                    "says it publishes each checklist item",
                     "facets": ["category"], "sort": "id"},
    "site_items": {"description": "Where each site publishes each checklist item, and how we "
                                  "learned it (report, portal, registry)",
                   "facets": ["site_id", "source"], "sort": "id"},
    "changes": {"description": "What changed between crawls: new, changed (with a diff), removed, "
                               "reappeared pages and links removed from pages / 页面变化",
                "facets": ["site_id", "kind"], "sort_desc": "id"},
    "fixity_checks": {"description": "Results of `xxgk verify` runs: every blob re-hashed / 固定性检查",
                      "sort_desc": "id"},
    "registry_checks": {"description": "`xxgk registry check`: whether each registry portal answered, "
                                       "and how / 门户可达性检查",
                        "sort_desc": "id", "facets": ["state", "ok"]},
    "evaluations": {"description": "Automated evaluations (`xxgk evaluate`): per site, academic year "
                                   "and run, a 0–100 score per dimension and overall under a "
                                   "versioned method / 自动评估",
                    "facets": ["site_id", "academic_year", "method_version"], "sort_desc": "id",
                    "label_column": "academic_year"},
    "evaluation_findings": {"description": "Every point an evaluation took off, with the URL, snapshot "
                                           "and link check that prove it / 扣分依据",
                            "facets": ["dimension", "kind"], "sort": "id"},
    "evaluation_ranking": {"description": "View: the latest evaluation per site, academic year and "
                                          "method, ranked within the year / 评估排名",
                           "facets": ["academic_year", "method_version"]},
    "evaluation_changes": {"description": "View: score changes since each site's previous evaluation "
                                          "of the same year and method / 评估变化",
                           "facets": ["academic_year", "site_id"]},
    "item_status": {"description": "View: each site's checklist items judged on their current link "
                                   "state (present, empty, dead, suspect, inconclusive, unchecked)",
                    "facets": ["site_id", "status"]},
    "compliance": {"description": "View: one row per site and academic year: checklist items "
                                  "present/missing/dead, report timeliness, applications received "
                                  "/ 合规情况",
                   "facets": ["site_id", "academic_year", "timeliness"]},
}

HIDDEN_TABLES = ("reports_fts", "reports_fts_data", "reports_fts_idx", "reports_fts_docsize",
                 "reports_fts_config", "snapshots_fts", "snapshots_fts_data", "snapshots_fts_idx",
                 "snapshots_fts_docsize", "snapshots_fts_config", "_sqlite_migrations")

_SITE = "The site (university) id from the registry; see /-/university/<id>"
_CRAWL = "The crawl (crawls.id)"
_UTC = " (ISO-8601 UTC)"
_STATE = "Link state: " + "; ".join(f"{k} = {v}" for k, v in DESCRIPTIONS.items())

COLUMNS: dict[str, dict[str, str]] = {
    "sites": {
        "id": "Stable short id, used in every URL (?site=…) / 站点标识",
        "name": "University name / 学校名称",
        "portal": "JSON list of the portal's start URLs / 信息公开网入口",
        "allowed_domains": "JSON list of host names crawled as part of the portal",
        "schedule": "Cron expression of the crawl schedule",
        "render": "Render pages with Chromium: auto | never | always",
        "max_pages": "Crawl budget (pages per crawl)",
        "kind": "本科 (undergraduate) or 专科 (vocational college)",
        "updated_at": "When the registry entry was last loaded" + _UTC,
        "applicable_items": "JSON list of the checklist items that apply to this site (blank = all 50), "
                            "from the registry",
        "report_column": "JSON list of the portal's annual-report column URLs (年度报告栏目), from the registry",
    },
    "crawls": {
        "id": "Crawl number",
        "site_id": _SITE,
        "scheduled_at": "When the scheduler planned the crawl" + _UTC,
        "started_at": "Start" + _UTC,
        "finished_at": "End" + _UTC,
        "status": "running | finished | failed | killed | incomplete (stopped early, or pages or items it could"
                  " not process: see finish_reason)",
        "pages": "Pages archived",
        "links_checked": "URLs checked",
        "bytes_received": "Body bytes downloaded from the site: every check, plus overhead_bytes",
        "overhead_bytes": "Of which robots.txt and the not-found probe (no link's check)",
        "postcrawl_at": "When the work after the crawl (changes, evaluation) ran for it" + _UTC,
        "new_broken": "URLs broken in this crawl whose last check before that was not inconclusive "
                      "was good or absent (as the newly_broken query)",
        "errors": "Errors logged",
        "exit_code": "Exit code of the crawl process",
        "pid": "Process id of the crawl",
        "log_path": "The crawl's log file",
        "finish_reason": "Why the crawl ended (Scrapy's finish reason; 'processing_errors: ...' when pages or"
                         " items could not be processed: how many, the first error)",
    },
    "links": {
        "url": "The URL (canonical form) / 链接",
        "site_id": "The first site that checked it (every site citing it: site_links). " + _SITE,
        "state": "Latest verdict. " + _STATE,
        "status_code": "HTTP status of the latest check",
        "content_type": "Content-Type of the latest answer",
        "final_url": "Where redirects ended",
        "title": "Page title / 标题",
        "is_external": "1 = outside the portal's domains (checked, never crawled)",
        "health": "How sure we are: ok, suspect (broken, not yet confirmed), dead (confirmed by "
                  "repeated checks), inconclusive (blocked, rate limited, excluded), unlinked "
                  "(was broken; the pages that linked to it no longer do)",
        "first_seen": "First time the URL was linked" + _UTC,
        "last_checked": "Latest check" + _UTC,
        "last_ok": "Last good check" + _UTC,
        "broken_since": "First failing check of the current failure run" + _UTC,
        "consecutive_failures": "Failing checks in a row",
        "recovered_at": "First good check after a failure run" + _UTC,
        "last_check_id": "The latest link_checks row",
    },
    "crawl_link_counts": {
        "crawl_id": _CRAWL,
        "checked": "Distinct URLs checked in the crawl",
        "broken": "Distinct URLs with a broken check (evidence the content is gone)",
        "inconclusive": "Distinct URLs blocked, rate limited or excluded",
        "good": "Distinct URLs ok or redirected",
    },
    "crawl_state_counts": {
        "crawl_id": _CRAWL,
        "state": _STATE,
        "urls": "Distinct URLs with a check in this state in the crawl",
    },
    "site_links": {
        "site_id": _SITE,
        "url": "A URL the site's crawls check / 链接",
        "first_checked": "The site's first check of it" + _UTC,
        "last_checked": "The site's latest check of it" + _UTC,
    },
    "link_referrers": {
        "to_url": "The link target",
        "from_url": "A page that links to it (in some crawl) / 来源页面",
        "anchor_text": "The link's text / 链接文字",
    },
    "link_checks": {
        "id": "Check number",
        "crawl_id": _CRAWL,
        "site_id": _SITE,
        "url": "The URL checked",
        "checked_at": "When" + _UTC,
        "state": _STATE,
        "status_code": "HTTP status",
        "elapsed_ms": "Response time (ms)",
        "final_url": "Where redirects ended",
        "redirect_chain": "JSON list of URLs redirected through",
        "method": "HTTP method (GET, or HEAD for external links)",
        "content_type": "Content-Type answered",
        "content_length": "Content-Length announced",
        "bytes_received": "Body bytes this check took from the server (redirect hops and retries included)",
        "error": "The network or classifier error, if any",
        "rule": "The classifier rule that decided the state",
        "snapshot_id": "The snapshot taken by this check (view it at /-/snapshot/<id>)",
    },
    "link_sources": {
        "id": "Row number",
        "crawl_id": _CRAWL,
        "site_id": _SITE,
        "from_url": "The page containing the link / 来源页面",
        "to_url": "The link target",
        "anchor_text": "The link's text / 链接文字",
        "seen_at": "When" + _UTC,
    },
    "snapshots": {
        "id": "Snapshot number: /-/snapshot/<id> shows the archived copy",
        "crawl_id": _CRAWL,
        "site_id": _SITE,
        "url": "The URL fetched",
        "final_url": "Where redirects ended",
        "fetched_at": "Capture time" + _UTC,
        "status_code": "HTTP status",
        "content_type": "Content-Type",
        "headers": "JSON object of the response headers",
        "sha256": "sha256 of the body; the bytes are in blobs",
        "size": "Body size in bytes",
        "encoding": "Character encoding used to decode the page (e.g. gb18030)",
        "title": "Page title / 标题",
        "filename": "Attachment name from Content-Disposition, decoded",
        "etag": "ETag header (for conditional recrawls)",
        "last_modified": "Last-Modified header",
        "not_modified": "1 = the server answered 304; content is the previous snapshot's",
        "truncated": "1 = the body is not the whole answer: the connection closed before its end, "
                     "its gzip/deflate/br stream stops short, or a 206 sent part of it "
                     "(exported with WARC-Truncated)",
        "rendered": "1 = rendered in Chromium (JavaScript-only page)",
        "render_reason": "Why the page was rendered",
        "screenshot_sha256": "sha256 of a screenshot of the rendered page (in blobs)",
        "main_text": "The page's main text, navigation removed / 正文",
    },
    "blobs": {
        "sha256": "sha256 of the uncompressed body",
        "size": "Uncompressed size in bytes",
        "stored_size": "Size as stored",
        "compression": "zlib | none",
        "content": "The (compressed) bytes",
        "created_at": "When first stored" + _UTC,
    },
    "checklist_items": {
        "number": "Item number, 1–50 / 事项序号",
        "category_number": "Category number, 1–10",
        "category": "Category / 类别",
        "title": "What must be published / 公开事项",
        "yearly": "1 = must be refreshed every year",
    },
    "reports": {
        "id": "Report number",
        "site_id": _SITE,
        "academic_year": "学年 covered, e.g. 2021-2022",
        "period_start": "Start of the statistics period (YYYY-MM-DD)",
        "period_end": "End of the statistics period (YYYY-MM-DD)",
        "title": "Title / 标题",
        "source_url": "Where we found it",
        "format": "pdf | doc | docx | rtf | html | txt",
        "sha256": "sha256 of the file (in blobs)",
        "signed_date": "The date line at the end of the report / 落款日期",
        "deadline": "31 October after the academic year (《高等学校信息公开办法》第二十九条)",
        "timeliness": "on_time | late | unknown",
        "timeliness_evidence": "How timeliness was decided",
        "first_seen": "When we first found the report" + _UTC,
        "crawl_id": _CRAWL,
        "snapshot_id": "The archived file (view it at /-/snapshot/<id>)",
        "error": "Why extraction failed or why this is not a report",
        "text": "Extracted text / 报告全文",
    },
    "report_facts": {
        "id": "Row number",
        "report_id": "The report",
        "fact": "applications_received (收到申请数), applications_answered, agreed, partly_agreed, "
                "refused, fees_charged, complaints (举报), reconsiderations (复议), lawsuits (诉讼), "
                "items_published; signed_month (a date line without a day) and calendar_year (a "
                "report on a calendar year, which has no academic year and no deadline)",
        "value": "The number stated (0 for a statement of absence such as 未收到; signed_month "
                 "as YYYYMM, e.g. 202110)",
        "sentence": "The sentence the fact comes from / 原文",
    },
    "report_items": {
        "id": "Row number",
        "report_id": "The report",
        "item_number": "Checklist item (1–50)",
        "category": "Category as printed / 类别",
        "title": "Item as printed / 事项",
        "url": "URL printed for the item / 公开网址",
        "note": "Remarks as printed / 备注",
    },
    "site_items": {
        "id": "Row number",
        "site_id": _SITE,
        "item_number": "Checklist item (1–50)",
        "url": "Where the item is published",
        "source": "How we learned it: report (its 清单 table), portal (a link on the portal), "
                  "registry",
        "report_id": "The report, when source = report",
        "first_seen": "First seen" + _UTC,
        "last_seen": "Last seen" + _UTC,
    },
    "changes": {
        "id": "Row number",
        "site_id": _SITE,
        "url": "The page (for link_removed_from_source: the page that dropped the link)",
        "crawl_id": "The crawl that detected it",
        "detected_at": "When" + _UTC,
        "kind": "new | changed | removed | reappeared | link_removed_from_source",
        "prev_snapshot_id": "The capture before (view it at /-/snapshot/<id>)",
        "new_snapshot_id": "The capture after",
        "diff": "Short unified diff of the main text",
        "size_of_change": "Characters added + removed in the main text",
        "detail": "E.g. the removed link's target and anchor text (JSON), or the failing state",
    },
    "registry_checks": {
        "id": "Check number",
        "site_id": "The site (university) id from the registry",
        "url": "The portal URL checked",
        "checked_at": "When" + _UTC,
        "method": "The request that decided: HEAD, or GET when HEAD was refused",
        "status_code": "HTTP status of the final answer",
        "final_url": "Where redirects ended",
        "elapsed_ms": "Time to the answer, in milliseconds",
        "state": "Link state (same vocabulary as links.state)",
        "ok": "1 when the portal answered (ok or redirected)",
        "rule": "The classifier rule that decided the state",
        "error": "Error text when the portal did not answer",
        "via_proxy": "1 when the check went through an HTTP proxy",
    },
    "fixity_checks": {
        "id": "Run number",
        "checked_at": "When" + _UTC,
        "blobs_checked": "Blobs re-hashed",
        "bytes_checked": "Bytes re-hashed",
        "missing": "Blobs referenced by snapshots/reports but absent",
        "corrupt": "Blobs whose bytes no longer hash to their sha256",
        "details": "JSON list of {sha256, problem}",
    },
    "evaluations": {
        "id": "Evaluation number",
        "site_id": _SITE,
        "academic_year": "学年 evaluated, e.g. 2021-2022",
        "method_version": "Version of the method (archive/evaluation_method.toml)",
        "method_sha256": "sha256 of the method file used",
        "evaluated_at": "When the evaluation ran" + _UTC,
        "as_of": "The date judged at (YYYY-MM-DD)",
        "crawl_id": "The crawl whose evidence was used",
        "report_id": "The year's annual report, if found",
        "timeliness": "on_time | late | unknown | no report",
        "parts_found": "Parts of the report found (of 8)",
        "items_applicable": "Checklist items that apply to the site",
        "items_published": "Applicable items published (a live page)",
        "items_empty": "Items whose list page is empty",
        "items_dead": "Items whose every URL is broken",
        "items_missing": "Items neither linked from the portal nor given in a report",
        "items_stale": "Yearly items whose newest date is too old",
        "items_unverified": "Items we could not judge (blocked, excluded, unchecked)",
        "score_checklist": "Checklist score, 0–100 (blank: nothing could be judged)",
        "score_report": "Report completeness score, 0–100",
        "score_publication": "Publication score (on time, where, reachable), 0–100",
        "score_overall": "Weighted mean of the dimension scores, 0–100 / 总分",
        "findings": "Number of findings (evaluation_findings rows)",
    },
    "evaluation_findings": {
        "id": "Row number",
        "evaluation_id": "The evaluation",
        "dimension": "checklist | report | publication",
        "item": "Checklist item 1–50, report part 1–8, or report, on_time, column, home, no_js",
        "kind": "missing | dead | empty | stale | undated | late | unknown | too_deep | js_only | "
                "unverified | …",
        "title": "What was judged / 事项",
        "expected": "What the method expects",
        "found": "What we found",
        "points_lost": "Points taken off the dimension's 100",
        "url": "The URL that shows it",
        "snapshot_id": "The archived copy that shows it (view it at /-/snapshot/<id>)",
        "sha256": "sha256 of that copy's body",
        "link_check_id": "The link check that shows it",
    },
    "evaluation_ranking": {
        "academic_year": "学年",
        "method_version": "Version of the method",
        "rank": "Rank within the year and method (1 = best)",
        "site_id": _SITE,
        "name": "University name / 学校名称",
        "score_overall": "Overall score, 0–100",
        "score_checklist": "Checklist score, 0–100",
        "score_report": "Report completeness score, 0–100",
        "score_publication": "Publication score, 0–100",
        "timeliness": "on_time | late | unknown | no report",
        "parts_found": "Report parts found (of 8)",
        "items_published": "Applicable checklist items published",
        "items_applicable": "Checklist items that apply",
        "findings": "Number of findings",
        "as_of": "The date judged at",
        "evaluated_at": "When the evaluation ran" + _UTC,
        "evaluation_id": "The evaluation",
    },
    "evaluation_changes": {
        "site_id": _SITE,
        "name": "University name / 学校名称",
        "academic_year": "学年",
        "method_version": "Version of the method",
        "evaluation_id": "The latest evaluation",
        "evaluated_at": "When it ran" + _UTC,
        "as_of": "The date it judged at",
        "previous_evaluation_id": "The evaluation before it (same site, year and method)",
        "previous_evaluated_at": "When that ran" + _UTC,
        "score_overall": "Overall score now",
        "previous_score_overall": "Overall score before",
        "delta_overall": "Change of the overall score",
        "delta_checklist": "Change of the checklist score",
        "delta_report": "Change of the report score",
        "delta_publication": "Change of the publication score",
        "delta_findings": "Change in the number of findings",
    },
    "item_status": {
        "site_id": _SITE,
        "item_number": "Checklist item (1–50)",
        "status": "present (a live URL), empty (its list has no entries), dead (only broken URLs, "
                  "one confirmed dead), suspect (only broken URLs, none confirmed yet), "
                  "inconclusive (blocked/excluded), unchecked",
        "urls": "The item's URLs",
        "sources": "report, portal, registry",
    },
    "compliance": {
        "site_id": _SITE,
        "name": "University name / 学校名称",
        "academic_year": "学年 of the report (blank: no report found)",
        "report_id": "The latest readable report for that year",
        "signed_date": "The report's date line / 落款日期",
        "deadline": "31 October after the academic year",
        "timeliness": "on_time | late | unknown | no report",
        "applications_received": "Information-disclosure applications received (as reported) / 收到申请数",
        "items_present": "Checklist items with a live URL (of 50), judged today",
        "items_empty": "Checklist items whose list page is empty",
        "items_dead": "Checklist items with only broken URLs",
        "items_unknown": "Checklist items we could not judge (blocked, unchecked; all those without a "
                         "URL while no crawl of the portal has reached a page)",
        "items_missing": "Checklist items neither in a report's 清单 table nor linked from the portal "
                         "(counted once a crawl of the portal has reached a page)",
    },
}

#: Pages linked from the index page: (path under the Datasette root, label).
_INDEX_LINKS = (
    ("/xxgk/broken_now", "Broken links now"), ("/xxgk/scorecard", "Scorecard"),
    ("/xxgk/missing_items", "Missing checklist items"),
    ("/xxgk/dead_report_links", "Dead links in annual reports"),
    ("/xxgk/report_timeline", "Report timeline"), ("/xxgk/evaluation_ranking", "Evaluation ranking"),
    ("/xxgk/recent_changes", "Recent changes"), ("/xxgk/search", "Search"),
)


def _index_html(base_url: str = "/") -> str:
    """The index page's text and links, under ``base_url`` (Datasette's setting: an archive
    served behind a proxy under a path links to its own pages, not the proxy's root)."""
    root = base_url.rstrip("/")
    links = " · ".join(f'<a href="{html.escape(root + path)}">{label}</a>' for path, label in _INDEX_LINKS)
    return ("<p>Dated snapshots, link health and annual reports of Chinese university "
            "information-disclosure portals (高等学校信息公开网).</p>"
            f'<p><strong><a href="{html.escape(root)}/-/universities">Universities / 高校</a></strong> · '
            f"{links}</p>")


def metadata(base_url: str = "/") -> dict:
    """Datasette metadata (0.65 layout); links under ``base_url``."""
    tables: dict[str, dict] = {}
    for name, config in TABLES.items():
        entry = dict(config)
        if name in COLUMNS:
            entry["columns"] = COLUMNS[name]
        tables[name] = entry
    for hidden in HIDDEN_TABLES:
        tables[hidden] = {"hidden": True}
    return {
        "title": "xxgk-archive: 高等学校信息公开网 archive",
        "description": "Dated snapshots, link health and annual reports of Chinese university "
                       "information-disclosure portals (高等学校信息公开网).",
        "description_html": _index_html(base_url),
        "license": "CC BY 4.0 (archive data); source pages © their universities",
        "license_url": "https://creativecommons.org/licenses/by/4.0/",
        "source": "xxgk-archive crawls",
        "source_url": "https://github.com/xxgk-archive/xxgk-archive",
        "about": "xxgk-archive",
        "about_url": "https://github.com/xxgk-archive/xxgk-archive",
        "databases": {DATABASE_NAME: {
            "description_html": _index_html(base_url),
            "tables": tables,
            # results first for readers who do not write SQL; "show" reveals the SQL
            "queries": {name: {**query, "hide_sql": True} for name, query in CANNED_QUERIES.items()},
        }},
    }


SETTINGS = {
    "sql_time_limit_ms": 3000,
    "default_page_size": 100,
    "max_returned_rows": 5000,
    "allow_download": False,
    "facet_time_limit_ms": 500,
    # Suggesting facets runs a query per column: slow on link_checks with millions of rows.
    "suggest_facets": False,
    "num_sql_threads": 3,
}
