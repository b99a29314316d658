"""Datasette plugin: a page per university, readable without SQL.

* ``/-/universities`` — every site at a glance (the ``site_overview`` canned query).
* ``/-/university/<site_id>`` — scorecard per academic year, a chart of broken links per
  crawl (inline SVG drawn here: no JavaScript, no CDN), broken links now with the pages
  citing them, dead links printed in the annual reports, missing checklist items, the
  latest annual report with its facts, recent changes with diffs, links to the archived
  snapshots (``/-/snapshot/<id>``), to every canned query filtered on the site, and to its
  two Atom feeds (``/xxgk/feed_broken.atom?site=…``, ``/xxgk/feed_reports.atom?site=…``).
* ``/-/xxgk-static/<file>`` — the stylesheet in ``archive/static/``, added to every page.
* ``render_cell`` links ``site_id`` cells of query results to the university page, adds a
  "history" link to URL cells, and links ``sites.name`` to the page; ``menu_links`` adds
  "Universities" to the navigation menu.

Every number on the page comes from a canned query in ``archive/queries.py`` (run with
``site`` set), so the page and the bookmarkable query URLs always agree.
"""

from __future__ import annotations

import json
import mimetypes
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import markupsafe
from datasette import hookimpl
from datasette.utils.asgi import NotFound, Response

from archive.queries import BROKEN, CANNED_QUERIES
from archive.states import DESCRIPTIONS

DATABASE = "xxgk"
STATIC_DIR = Path(__file__).resolve().parent.parent / "static"
SITE_ID_PATTERN = r"[A-Za-z0-9_-]+"
URL_COLUMNS = frozenset({"url", "from_url", "to_url", "source_url", "report_url"})
CHART_CRAWLS = 60
SHOWN_ROWS = 50

#: Labels for report_facts.fact (English / the report's own words).
FACT_LABELS: dict[str, str] = {
    "applications_received": "Applications received / 收到信息公开申请",
    "applications_answered": "Applications answered / 已答复",
    "agreed": "Disclosed in full / 同意公开",
    "partly_agreed": "Partly disclosed / 部分公开",
    "refused": "Refused / 不予公开",
    "fees_charged": "Fees charged / 收取费用",
    "complaints": "Complaints / 举报",
    "reconsiderations": "Administrative reconsiderations / 行政复议",
    "lawsuits": "Lawsuits / 行政诉讼",
    "items_published": "Items published / 主动公开信息条数",
    "signed_month": "Signed in (YYYYMM; the date line gives no day) / 落款年月",
    "calendar_year": "Calendar year covered (not an academic year) / 自然年度",
}

#: Colours of the chart's stacked bars, one per broken state.
STATE_COLOURS: dict[str, str] = {
    "not_found": "#c0392b", "soft_404": "#e67e22", "server_error": "#8e44ad", "timeout": "#7f8c8d",
    "dns_error": "#2c3e50", "connection_error": "#34495e", "tls_error": "#16a085",
    "redirect_loop": "#d35400", "type_mismatch": "#b7950b", "empty": "#95a5a6",
}

#: Canned queries linked from the page, with the question each answers.
SITE_QUERIES: tuple[tuple[str, str], ...] = (
    ("scorecard", "Compliance per academic year"),
    ("broken_now", "Broken links now, with the pages citing them"),
    ("newly_broken", "Newly broken since the previous crawl"),
    ("fixed_since", "Fixed since the previous crawl"),
    ("dead_report_links", "Dead links printed in its annual reports"),
    ("missing_items", "Checklist items not published"),
    ("report_timeline", "Annual reports: signed date and deadline"),
    ("recent_changes", "Recent changes, with diffs"),
    ("broken_over_time", "Broken links per crawl (the chart's data)"),
    ("evaluation_evidence", "Evaluation: every point lost, with evidence"),
    ("search", "Search its reports and pages"),
)


# -- helpers ---------------------------------------------------------------------------------
async def run_query(datasette, name: str, **params: str) -> list[dict[str, Any]]:
    """Rows of canned query ``name`` (parameters not given are blank: no filter)."""
    query = CANNED_QUERIES[name]
    values = {param: "" for param in query.get("params", [])}
    values.update(params)
    result = await datasette.get_database(DATABASE).execute(query["sql"], values)
    return [dict(row) for row in result.rows]


def query_url(datasette, name: str, fmt: str | None = None, **params: str) -> str:
    path = datasette.urls.database(DATABASE) + "/" + name + (f".{fmt}" if fmt else "")
    params = {key: value for key, value in params.items() if value}
    return path + ("?" + urlencode(params) if params else "")


def history_url(datasette, url: str) -> str:
    return datasette.urls.database(DATABASE) + "/url_history?url=" + quote(url, safe="")


def live_href(url: str | None) -> str | None:
    """``url`` as a link to the live site, only if it is http(s) (never ``javascript:``)."""
    return url if isinstance(url, str) and url.startswith(("http://", "https://")) else None


def snapshot_url(datasette, snapshot_id: int | None) -> str | None:
    return datasette.urls.path(f"/-/snapshot/{snapshot_id}") if snapshot_id else None


def parse_json_list(value: str | None) -> list[str]:
    try:
        parsed = json.loads(value or "[]")
    except ValueError:
        return [value] if value else []
    return [str(v) for v in parsed] if isinstance(parsed, list) else [str(parsed)]


def broken_chart(crawls: list[dict], counts: dict[int, dict[str, int]], link_checks_url: str) -> markupsafe.Markup:
    """Stacked bars (one per crawl, one colour per broken state) as inline SVG."""
    if not crawls:
        return markupsafe.Markup('<p class="xxgk-muted">No crawls yet.</p>')
    states = [s for s in STATE_COLOURS if any(s in counts.get(c["crawl_id"], {}) for c in crawls)]
    totals = [sum(counts.get(c["crawl_id"], {}).values()) for c in crawls]
    top = max(max(totals), 1)
    step = 1 if top <= 5 else 2 if top <= 10 else 5 if top <= 25 else 10 if top <= 50 else 50
    top = ((top + step - 1) // step) * step
    bar, gap, left, plot_h, top_pad, bottom = 26, 10, 40, 160, 10, 48
    width = left + len(crawls) * (bar + gap) + gap
    height = top_pad + plot_h + bottom
    esc = markupsafe.escape
    parts = [f'<svg class="xxgk-chart" xmlns="http://www.w3.org/2000/svg" width="{max(width, 320)}" '
             f'height="{height}" viewBox="0 0 {max(width, 320)} {height}" role="img" '
             f'aria-label="Broken links per crawl">',
             '<title>Broken links per crawl</title>']
    for tick in range(0, top + 1, step):
        y = top_pad + plot_h - tick * plot_h / top
        parts.append(f'<line x1="{left}" x2="{width}" y1="{y:.1f}" y2="{y:.1f}" class="xxgk-grid"/>'
                     f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end" class="xxgk-axis">{tick}</text>')
    for index, crawl in enumerate(crawls):
        x = left + gap + index * (bar + gap)
        y = top_pad + plot_h
        per_state = counts.get(crawl["crawl_id"], {})
        detail = ", ".join(f"{s} {n}" for s, n in sorted(per_state.items(), key=lambda kv: -kv[1])) or "none"
        href = f"{link_checks_url}?crawl_id={crawl['crawl_id']}&state__in={','.join(sorted(per_state)) or 'none'}"
        parts.append(f'<a href="{esc(href)}"><g><title>crawl {crawl["crawl_id"]} '
                     f'({esc(crawl["started_at"] or "")}, {esc(crawl["status"] or "")}): '
                     f'{totals[index]} broken — {esc(detail)}</title>')
        for state in states:
            n = per_state.get(state, 0)
            if not n:
                continue
            h = n * plot_h / top
            y -= h
            parts.append(f'<rect x="{x}" y="{y:.1f}" width="{bar}" height="{h:.1f}" '
                         f'fill="{STATE_COLOURS[state]}"/>')
        parts.append(f'<text x="{x + bar / 2}" y="{top_pad + plot_h - totals[index] * plot_h / top - 3:.1f}" '
                     f'text-anchor="middle" class="xxgk-value">{totals[index]}</text></g></a>')
        label = (crawl["started_at"] or "")[5:10]
        parts.append(f'<text x="{x + bar / 2}" y="{top_pad + plot_h + 14}" text-anchor="middle" '
                     f'class="xxgk-axis">{esc(label)}</text>'
                     f'<text x="{x + bar / 2}" y="{top_pad + plot_h + 27}" text-anchor="middle" '
                     f'class="xxgk-axis">#{crawl["crawl_id"]}</text>')
    parts.append(f'<line x1="{left}" x2="{width}" y1="{top_pad + plot_h}" y2="{top_pad + plot_h}" '
                 'class="xxgk-baseline"/></svg>')
    legend = "".join(
        f'<span class="xxgk-legend-item" title="{esc(DESCRIPTIONS.get(s, s))}">'
        f'<span class="xxgk-swatch" style="background:{STATE_COLOURS[s]}"></span>{esc(s)}</span>'
        for s in states)
    return markupsafe.Markup("".join(parts) + (f'<p class="xxgk-legend">{legend}</p>' if legend else ""))


# -- views -----------------------------------------------------------------------------------
async def universities_page(datasette, request) -> Response:
    rows = await run_query(datasette, "site_overview")
    for row in rows:
        row["page_url"] = datasette.urls.path(f"/-/university/{quote(row['site_id'])}")
    context = {
        "rows": rows,
        "database_url": datasette.urls.database(DATABASE),
        "overview_json": query_url(datasette, "site_overview", "json"),
        "overview_csv": query_url(datasette, "site_overview", "csv"),
        "queries": [(query_url(datasette, name), CANNED_QUERIES[name]["title"])
                    for name in ("scorecard", "broken_now", "dead_report_links", "missing_items",
                                 "report_timeline", "recent_changes", "search")],
        "feed_broken": query_url(datasette, "feed_broken", "atom"),
        "feed_reports": query_url(datasette, "feed_reports", "atom"),
    }
    html = await datasette.render_template("universities.html", context, request=request)
    return Response.html(html)


async def university_page(datasette, request) -> Response:
    site_id = request.url_vars["site_id"]
    db = datasette.get_database(DATABASE)
    site = (await db.execute("select * from sites where id = ?", [site_id])).first()
    if site is None:
        raise NotFound(f"No university with id {site_id!r}: see /-/universities")
    site = dict(site)
    portals = parse_json_list(site.get("portal"))
    last_crawl = (await db.execute(
        "select * from crawls where site_id = ? order by id desc limit 1", [site_id])).first()
    crawl_count = (await db.execute("select count(*) from crawls where site_id = ?", [site_id])).first()[0]

    scorecard = await run_query(datasette, "scorecard", site=site_id)
    broken = await run_query(datasette, "broken_now", site=site_id)
    by_state: dict[str, int] = {}
    for row in broken:
        by_state[row["state"]] = by_state.get(row["state"], 0) + 1
        row["history_url"] = history_url(datasette, row["url"])
        row["href"] = live_href(row["url"])
        row["referrers"] = [line for line in (row["linked_from"] or "").split("\n") if line]
    newly = await run_query(datasette, "newly_broken", site=site_id)
    fixed = await run_query(datasette, "fixed_since", site=site_id)
    dead_in_reports = await run_query(datasette, "dead_report_links", site=site_id)
    for row in dead_in_reports:
        row["history_url"] = history_url(datasette, row["url"])
        row["href"] = live_href(row["url"])
    missing = await run_query(datasette, "missing_items", site=site_id)
    reports = await run_query(datasette, "report_timeline", site=site_id)
    for row in reports:
        row["snapshot_url"] = snapshot_url(datasette, row["snapshot_id"])
        row["row_url"] = datasette.urls.row(DATABASE, "reports", str(row["report_id"]))
        row["source_href"] = live_href(row["source_url"])
    changes = (await run_query(datasette, "recent_changes", site=site_id))[:20]
    for row in changes:
        row["prev_url"] = snapshot_url(datasette, row["prev_snapshot_id"])
        row["new_url"] = snapshot_url(datasette, row["new_snapshot_id"])
        row["history_url"] = history_url(datasette, row["url"])
        row["href"] = live_href(row["url"])
        if row["kind"] == "link_removed_from_source" and row["detail"]:
            try:
                detail = json.loads(row["detail"])
                row["detail"] = f"{detail.get('to_url', '')} [{detail.get('anchor_text') or ''}]"
            except (ValueError, AttributeError):
                pass

    latest = next((r for r in reports if not r["error"]), None)
    facts: list[dict] = []
    if latest:
        facts = [dict(r) for r in (await db.execute(
            "select fact, value, sentence from report_facts where report_id = ? order by id",
            [latest["report_id"]])).rows]
        for fact in facts:
            fact["label"] = FACT_LABELS.get(fact["fact"], fact["fact"])

    crawls = (await run_query(datasette, "broken_over_time", site=site_id))[-CHART_CRAWLS:]
    counts: dict[int, dict[str, int]] = {}
    if crawls:
        ids = [c["crawl_id"] for c in crawls]
        marks = ", ".join("?" for _ in ids)
        for crawl_id, state, n in (await db.execute(
                f"select crawl_id, state, count(distinct url) from link_checks "
                f"where crawl_id in ({marks}) and state in {BROKEN} group by crawl_id, state", ids)).rows:
            counts.setdefault(crawl_id, {})[state] = n

    portal_snapshot = None
    if portals:
        marks = ", ".join("?" for _ in portals)
        portal_snapshot = (await db.execute(
            f"select id, fetched_at from snapshots where url in ({marks}) and sha256 is not null "
            "order by fetched_at desc, id desc limit 1", portals)).first()

    context = {
        "site": site,
        "portals": [(portal, live_href(portal)) for portal in portals],
        "last_crawl": dict(last_crawl) if last_crawl else None,
        "crawl_count": crawl_count,
        "scorecard": scorecard,
        "broken": broken[:SHOWN_ROWS],
        "broken_total": len(broken),
        "broken_dead": sum(1 for r in broken if r["health"] == "dead"),
        "by_state": sorted(by_state.items(), key=lambda kv: (-kv[1], kv[0])),
        "state_descriptions": DESCRIPTIONS,
        "newly_count": len(newly),
        "fixed_count": len(fixed),
        "dead_in_reports": dead_in_reports[:SHOWN_ROWS],
        "dead_in_reports_total": len(dead_in_reports),
        # distinct URLs, as /-/universities counts them (one URL may be printed in two reports)
        "dead_in_reports_urls": len({row["url"] for row in dead_in_reports}),
        "applicable_count": _applicable_count(site.get("applicable_items")),
        "missing": missing,
        "reports": reports,
        "latest": latest,
        "facts": facts,
        "changes": changes,
        "chart": broken_chart(crawls, counts, datasette.urls.table(DATABASE, "link_checks")),
        "portal_snapshot_url": snapshot_url(datasette, portal_snapshot["id"]) if portal_snapshot else None,
        "portal_snapshot_at": portal_snapshot["fetched_at"] if portal_snapshot else None,
        "queries": [(query_url(datasette, name, site=site_id), title,
                     query_url(datasette, name, "json", site=site_id),
                     query_url(datasette, name, "csv", site=site_id)) for name, title in SITE_QUERIES],
        "feed_broken": query_url(datasette, "feed_broken", "atom", site=site_id),
        "feed_reports": query_url(datasette, "feed_reports", "atom", site=site_id),
        "q": lambda name, **kw: query_url(datasette, name, site=site_id, **kw),
        "site_row_url": datasette.urls.row(DATABASE, "sites", site_id),
        "crawls_url": datasette.urls.table(DATABASE, "crawls") + "?site_id=" + quote(site_id),
        "universities_url": datasette.urls.path("/-/universities"),
        "database_url": datasette.urls.database(DATABASE),
    }
    html = await datasette.render_template("university.html", context, request=request)
    return Response.html(html)


async def static_file(datasette, request) -> Response:
    name = request.url_vars["name"]
    path = STATIC_DIR / name
    if not path.is_file() or path.parent != STATIC_DIR:
        raise NotFound(f"No static file {name}")
    content_type = mimetypes.guess_type(name)[0] or "application/octet-stream"
    if content_type.startswith("text/"):
        content_type += "; charset=utf-8"
    return Response(path.read_bytes(), content_type=content_type,
                    headers={"cache-control": "max-age=3600"})


# -- hooks -----------------------------------------------------------------------------------
def _applicable_count(applicable_items: str | None) -> int:
    """How many checklist items apply to the site (the registry's list; all 50 if unset)."""
    try:
        items = json.loads(applicable_items) if applicable_items else None
    except ValueError:
        items = None
    return len(set(items)) if isinstance(items, list) and items else 50


@hookimpl
def register_routes(datasette) -> list[tuple[str, Any]]:
    return [
        (r"^/-/universities$", universities_page),
        (rf"^/-/university/(?P<site_id>{SITE_ID_PATTERN})$", university_page),
        (r"^/-/xxgk-static/(?P<name>[A-Za-z0-9_.-]+)$", static_file),
    ]


@hookimpl
def extra_css_urls(datasette) -> list[str]:
    return [datasette.urls.path("/-/xxgk-static/xxgk.css")]


@hookimpl
def menu_links(datasette, actor, request) -> list[dict[str, str]]:
    return [
        {"href": datasette.urls.path("/-/universities"), "label": "Universities / 高校"},
        {"href": datasette.urls.database(DATABASE) + "/broken_now", "label": "Broken links now"},
        {"href": datasette.urls.database(DATABASE) + "/scorecard", "label": "Scorecard"},
        {"href": datasette.urls.database(DATABASE) + "/search", "label": "Search"},
    ]


@hookimpl
def render_cell(row, value, column, table, database, datasette) -> markupsafe.Markup | None:
    if database != DATABASE or not isinstance(value, str) or not value:
        return None
    if table == "sites" and column == "name":
        try:
            site_id = row["id"]
        except (IndexError, KeyError):
            return None
        return markupsafe.Markup('<a href="{}">{}</a>').format(
            datasette.urls.path(f"/-/university/{quote(str(site_id))}"), value)
    if column == "site_id" and table is None:
        return markupsafe.Markup('<a href="{}">{}</a>').format(
            datasette.urls.path(f"/-/university/{quote(value)}"), value)
    if column in URL_COLUMNS and value.startswith(("http://", "https://")):
        return markupsafe.Markup('<a href="{}">{}</a> <a class="xxgk-history" href="{}">history</a>').format(
            value, value, history_url(datasette, value))
    return None
