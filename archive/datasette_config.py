"""Datasette configuration for the archive: metadata, descriptions, canned queries, settings.

The database is always served under the name ``xxgk`` whatever its file is called, so
URLs such as ``/xxgk/links?state=not_found`` stay the same for every archive.
"""

from __future__ import annotations

from archive.queries import CANNED_QUERIES
from archive.states import DESCRIPTIONS

DATABASE_NAME = "xxgk"

TABLES: dict[str, dict] = {
    "sites": {"description": "The registry's sites (universities) / 高校", "label_column": "name"},
    "crawls": {"description": "One row per crawl run of one site / 抓取记录",
               "sort_desc": "id", "facets": ["site_id", "status"]},
    "links": {"description": "Every URL seen, with its current state and health. health: ok, "
                             "suspect (broken, not yet confirmed), dead (confirmed), inconclusive "
                             "(blocked/rate limited/excluded) / 链接当前状态",
              "facets": ["site_id", "state", "health"], "sort": "url"},
    "link_checks": {"description": "Every check of every URL, kept forever / 链接检查历史",
                    "sort_desc": "id", "facets": ["state", "site_id"]},
    "link_sources": {"description": "Which page links where, per crawl, with anchor text / 链接来源",
                     "sort_desc": "id"},
    "snapshots": {"description": "Every archived fetch: headers, sha256 of the body, main text / 快照",
                  "sort_desc": "id", "facets": ["site_id", "content_type"]},
    "blobs": {"description": "Bodies stored once per sha256, zlib-compressed / 内容寻址存储",
              "hidden": False},
    "checklist_items": {"description": "The 50 items of 高等学校信息公开事项清单 (教办函〔2014〕23号)",
                        "label_column": "title", "sort": "number"},
    "reports": {"description": "信息公开工作年度报告: annual reports with their extracted dates, "
                               "deadline and timeliness", "facets": ["site_id", "academic_year",
                                                                     "timeliness"],
                "sort_desc": "id", "fts_table": "reports_fts", "fts_pk": "id"},
    "report_facts": {"description": "Facts stated in reports, each with its source sentence",
                     "facets": ["fact"]},
    "report_items": {"description": "Rows of each report's 清单事项公开情况表"},
    "site_items": {"description": "Where each site publishes each checklist item, and how we "
                                  "learned it (report, portal, registry)",
                   "facets": ["site_id", "source"]},
    "fixity_checks": {"description": "Results of `xxgk verify` runs", "sort_desc": "id"},
}

COLUMNS: dict[str, dict[str, str]] = {
    "links": {
        "state": "Latest verdict: " + "; ".join(f"{k} = {v}" for k, v in DESCRIPTIONS.items()),
        "broken_since": "First failing check of the current failure run (UTC)",
        "last_ok": "Last good check (UTC)",
        "consecutive_failures": "Failing checks in a row",
        "recovered_at": "First good check after a failure run",
    },
    "link_checks": {"rule": "The classifier rule that decided the state",
                    "redirect_chain": "JSON list of URLs redirected through"},
    "snapshots": {"not_modified": "1 = the server answered 304; content is the previous snapshot's",
                  "sha256": "sha256 of the body; the bytes are in blobs"},
}


def metadata() -> dict:
    """Datasette metadata (0.65 layout)."""
    tables: dict[str, dict] = {}
    for name, config in TABLES.items():
        entry = dict(config)
        if name in COLUMNS:
            entry["columns"] = COLUMNS[name]
        tables[name] = entry
    for hidden in ("reports_fts", "reports_fts_data", "reports_fts_idx", "reports_fts_docsize",
                   "reports_fts_config", "_sqlite_migrations"):
        tables[hidden] = {"hidden": True}
    return {
        "title": "xxgk-archive: 高等学校信息公开网 archive",
        "description": "Dated snapshots, link health and annual reports of Chinese university "
                       "information-disclosure portals.",
        "license": "CC BY 4.0 (archive data); source pages © their universities",
        "license_url": "https://creativecommons.org/licenses/by/4.0/",
        "source": "xxgk-archive crawls",
        "source_url": "https://github.com/xxgk-archive/xxgk-archive",
        "databases": {DATABASE_NAME: {"tables": tables, "queries": CANNED_QUERIES}},
    }


SETTINGS = {
    "sql_time_limit_ms": 3000,
    "default_page_size": 100,
    "max_returned_rows": 5000,
    "allow_download": False,
    "facet_time_limit_ms": 500,
}
