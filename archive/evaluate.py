"""Automated third-party evaluation of a university's information disclosure, with evidence.

Modelled on the published evaluations of 高校信息公开 (21世纪教育研究院's 高等教育信息公开
observation, 中国社会科学院法学研究所's 高等教育透明度指数). Per site and academic year:

checklist
    Each applicable item of the 50 (教办函〔2014〕23号; the registry's ``applicable_items``,
    default all) is *published* (some URL of the item answers ``ok``/``redirected``),
    *empty* (its list answers with no entries), *dead* (every URL is broken), *missing*
    (no ``site_items`` row: neither linked from the portal nor given in a report's 清单
    table) or *unverified* (blocked, excluded or unchecked: evidence of nothing). A
    published yearly item (``checklist_items.yearly``) is *stale* when the newest date on
    its archived pages (``snapshots.main_text``: 2021-10-10, 2021年10月10日) is older than
    ``stale_after_days`` before the evaluation date, *undated* when they show none.
report
    Which of the eight parts the year's report has (:func:`archive.reports.parts.detect_parts`).
publication
    On time: by 31 October after the academic year (``reports.timeliness`` from the date
    line; a report without one is judged by the 发布日期 of the page that links it). Where:
    linked from the portal's annual-report column (a page within two links upstream of the
    report that the registry's ``report_column`` names, the report's own 清单 table gives
    for item 6, or whose URL, title or anchor text says 年度报告); the page linking it within
    ``max_clicks`` of a start URL; reachable from a start URL without JavaScript (through
    pages whose links did not need rendering: ``rendered`` snapshots other than evidence
    screenshots do not count).

Evidence is the newest crawl of the site that reached a page (finished crawls first): each
URL's latest ``link_checks`` row up to that crawl, and that crawl's ``link_sources``. Years
evaluated: those of the site's reports, plus the latest year whose deadline has passed when
the site was crawled (its report is due: no report loses every report and publication
point). Checklist and freshness are judged on the crawl, whatever the year.

All weights live in ``evaluation_method.toml`` (``method_version``); the code only counts.
Every point lost is an ``evaluation_findings`` row (URL, snapshot, sha256, link check);
checks that could not be made are rows with the method's ``unverified`` points (0 by
default). A dimension with nothing verifiable scores NULL and the overall score is the
weighted mean of the others. :func:`evaluate` never raises for missing data: a site with
no usable crawl and no report is skipped.
"""

from __future__ import annotations

import hashlib
import json
import re
import tomllib
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlite_utils import Database

from archive.db import utcnow
from archive.reports.checklist import CHECKLIST, match_item
from archive.reports.facts import deadline_for
from archive.reports.parts import PART_TITLES, detect_parts
from archive.states import GOOD_STATES, INCONCLUSIVE_STATES, TRANSIENT_STATES

__all__ = [
    "DIMENSIONS",
    "METHOD_PATH",
    "Finding",
    "Method",
    "MethodError",
    "due_academic_year",
    "evaluate",
    "evaluation_diff",
    "load_method",
    "newest_date",
    "posted_date",
]

METHOD_PATH = Path(__file__).with_name("evaluation_method.toml")
DIMENSIONS = ("checklist", "report", "publication")
ALL_ITEMS: tuple[int, ...] = tuple(i.number for i in CHECKLIST)
_YEARLY = {i.number for i in CHECKLIST if i.yearly}
_TITLES = {i.number: i.title for i in CHECKLIST}
_YEAR_RE = re.compile(r"^(\d{4})-(\d{4})$")


class MethodError(ValueError):
    """The method file is missing a value or its numbers do not add up."""


@dataclass(frozen=True)
class Method:
    """The scoring method: a version, its file's hash and the numbers of the TOML file."""

    version: str
    sha256: str
    weights: dict[str, float]
    checklist: dict[str, float]
    parts: dict[int, float]
    publication: dict[str, Any]


def _number(table: dict[str, Any], key: str, where: str) -> float:
    value = table.get(key)
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value < 1e9:
        raise MethodError(f"{where}.{key} must be a non-negative number below 1e9 (got {value!r})")
    return float(value)


def load_method(path: str | Path | None = None) -> Method:
    """Read and check the method file (default ``archive/evaluation_method.toml``)."""
    path = Path(path) if path else METHOD_PATH
    try:
        raw = path.read_bytes()
        data = tomllib.loads(raw.decode("utf-8-sig"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise MethodError(f"{path}: cannot read evaluation method: {exc}") from exc
    version = data.get("method_version")
    if not isinstance(version, str) or not version.strip():
        raise MethodError(f"{path}: method_version must be a non-empty string")
    weights_raw = data.get("weights", {})
    weights = {d: _number(weights_raw, d, "weights") for d in DIMENSIONS}
    if sum(weights.values()) <= 0:
        raise MethodError(f"{path}: the dimension weights sum to 0")
    check_raw = data.get("checklist", {})
    checklist = {k: _number(check_raw, k, "checklist") for k in
                 ("missing", "dead", "empty", "stale", "undated", "unverified", "stale_after_days")}
    for key in ("missing", "dead", "empty", "stale", "undated", "unverified"):
        if checklist[key] > 1:
            raise MethodError(f"{path}: checklist.{key} is a fraction of an item's points (0..1)")
    parts_raw = data.get("report", {}).get("parts", {})
    parts = {n: _number(parts_raw, str(n), "report.parts") for n in PART_TITLES}
    if abs(sum(parts.values()) - 100) > 1e-6:
        raise MethodError(f"{path}: report.parts must sum to 100 (got {sum(parts.values())})")
    pub_raw = data.get("publication", {})
    pub: dict[str, Any] = {k: _number(pub_raw, k, "publication") for k in
                           ("on_time", "late_base", "late_per_30_days", "unknown", "column", "home",
                            "max_clicks", "no_js", "unverified")}
    total = pub["on_time"] + pub["column"] + pub["home"] + pub["no_js"]
    if abs(total - 100) > 1e-6:
        raise MethodError(f"{path}: publication on_time + column + home + no_js must be 100 "
                          f"(got {total})")
    keywords = pub_raw.get("column_keywords", ["年度报告"])
    hints = pub_raw.get("column_url_hints", [])
    if not all(isinstance(k, str) and k for k in [*keywords, *hints]):
        raise MethodError(f"{path}: column_keywords and column_url_hints must be lists of strings")
    pub["column_keywords"] = tuple(keywords)
    pub["column_url_hints"] = tuple(h.lower() for h in hints)
    pub["column_max_chars"] = int(_number(pub_raw, "column_max_chars", "publication")
                                  if "column_max_chars" in pub_raw else 12)
    return Method(version=version.strip(), sha256=hashlib.sha256(raw).hexdigest(),
                  weights=weights, checklist=checklist, parts=parts, publication=pub)


@dataclass
class Finding:
    """One point (or several) lost, or one check that could not be made, with its evidence."""

    dimension: str
    item: str
    kind: str
    title: str
    expected: str
    found: str
    points_lost: float = 0.0
    url: str | None = None
    snapshot_id: int | None = None
    sha256: str | None = None
    link_check_id: int | None = None

    def key(self) -> tuple[str, str, str]:
        """``(dimension, item, kind)``: what comparisons between evaluations use."""
        return (self.dimension, self.item, self.kind)


# -- dates -------------------------------------------------------------------------------

_DATE_RE = re.compile(
    r"(?<!\d)((?:19|20)\d{2})\s*(?:[-/.]|年)\s*(\d{1,2})\s*(?:[-/.]|月)\s*(\d{1,2})(?!\d)"
)
_POSTED_RE = re.compile(
    r"(?:发布|发表|公布|更新|上传)?(?:时间|日期)\s*[:：]\s*"
    r"((?:19|20)\d{2})\s*(?:[-/.]|年)\s*(\d{1,2})\s*(?:[-/.]|月)\s*(\d{1,2})(?!\d)"
)


def _make_date(y: str, m: str, d: str) -> date | None:
    try:
        return date(int(y), int(m), int(d))
    except ValueError:
        return None


def newest_date(text: str | None, as_of: date) -> date | None:
    """The newest plausible date written in ``text`` (not after ``as_of``), or None."""
    best: date | None = None
    for m in _DATE_RE.finditer(text or ""):
        found = _make_date(*m.groups())
        if found is None or found.year < 1990 or found > as_of:
            continue
        if best is None or found > best:
            best = found
    return best


def posted_date(text: str | None) -> date | None:
    """The 发布日期/发布时间 of an article page, or None."""
    m = _POSTED_RE.search(text or "")
    return _make_date(*m.groups()) if m else None


def _as_date(value: str | date | datetime | None) -> date:
    if value is None:
        return datetime.fromisoformat(utcnow().replace("Z", "+00:00")).date()
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    return datetime.fromisoformat(value.strip().replace("Z", "+00:00")).date()


def _iso_date(value: str | None) -> date | None:
    if not value:
        return None
    try:
        return date.fromisoformat(value[:10])
    except ValueError:
        return None


def due_academic_year(as_of: date) -> str:
    """The latest academic year whose report was due (31 October) before ``as_of``."""
    end = as_of.year if as_of > date(as_of.year, 10, 31) else as_of.year - 1
    return f"{end - 1}-{end}"


# -- evidence from the archive ------------------------------------------------------------


@dataclass(frozen=True)
class _Check:
    url: str
    state: str | None
    status_code: int | None
    check_id: int | None
    snapshot_id: int | None


@dataclass
class _SiteInfo:
    id: str
    starts: list[str]
    applicable: list[int]
    report_columns: set[str]
    crawl_id: int | None  # newest usable crawl; None = never crawled usefully


@dataclass
class _Graph:
    into: dict[str, set[str]] = field(default_factory=dict)
    out: dict[str, set[str]] = field(default_factory=dict)
    anchors: dict[str, set[str]] = field(default_factory=dict)
    pages: dict[str, tuple[int, str | None, str | None, bool]] = field(default_factory=dict)
    # url -> (snapshot id, sha256, title, links needed JavaScript)


def _chunks(values: Sequence[Any], size: int = 500) -> Iterable[Sequence[Any]]:
    for i in range(0, len(values), size):
        yield values[i:i + size]


def _latest_checks(db: Database, urls: Iterable[str], max_crawl_id: int) -> dict[str, _Check]:
    """Each URL's latest ``link_checks`` row made by a crawl up to ``max_crawl_id``."""
    out: dict[str, _Check] = {}
    wanted = sorted(set(urls))
    for chunk in _chunks(wanted):
        marks = ",".join("?" * len(chunk))
        for check_id, url, state, status, snapshot_id in db.execute(
            f"SELECT id, url, state, status_code, snapshot_id FROM link_checks"
            f" WHERE url IN ({marks}) AND crawl_id <= ? ORDER BY id", [*chunk, max_crawl_id]
        ):
            out[url] = _Check(url, state, status, check_id, snapshot_id)
    return out


def _confirmed_dead(db: Database, url: str) -> bool:
    """Whether the link's failure has been confirmed (``links.health``: dead, not suspect)."""
    row = db.execute("SELECT health FROM links WHERE url = ?", [url]).fetchone()
    return row is not None and row[0] == "dead"


def _snapshots(db: Database, ids: Iterable[int | None]) -> dict[int, tuple[str | None, str | None, str | None]]:
    """snapshot id -> (sha256, content_type, main_text)."""
    out: dict[int, tuple[str | None, str | None, str | None]] = {}
    wanted = sorted({i for i in ids if i is not None})
    for chunk in _chunks(wanted):
        marks = ",".join("?" * len(chunk))
        for sid, sha, ctype, text in db.execute(
            f"SELECT id, sha256, content_type, main_text FROM snapshots WHERE id IN ({marks})", chunk
        ):
            out[sid] = (sha, ctype, text)
    return out


def _usable_crawl(db: Database, site_id: str) -> int | None:
    """The newest crawl of the site that reached a page (finished crawls preferred)."""
    for status_clause in ("c.status = 'finished'", "c.status <> 'running'"):
        row = db.execute(
            f"SELECT c.id FROM crawls c WHERE c.site_id = ? AND {status_clause} AND EXISTS ("
            " SELECT 1 FROM link_checks lc WHERE lc.crawl_id = c.id AND lc.state IN ('ok', 'redirected'))"
            " ORDER BY c.id DESC LIMIT 1", [site_id]
        ).fetchone()
        if row:
            return int(row[0])
    return None


def _json_list(value: str | None) -> list[Any] | None:
    if not value:
        return None
    try:
        parsed = json.loads(value)
    except ValueError:
        return None
    return parsed if isinstance(parsed, list) else None


def _registry_settings(db: Database, registry_path: str | Path) -> dict[str, tuple[list[int], list[str]]]:
    """site id -> (applicable items, report column URLs) from the registry; mirrored into
    ``sites`` so that later evaluations without ``--registry`` use them too."""
    from schedules.registry import load_registry

    sites = load_registry(registry_path)
    raw = tomllib.loads(Path(registry_path).read_bytes().decode("utf-8-sig"))
    columns: dict[str, list[str]] = {}
    for entry in raw.get("site", []):
        value = entry.get("report_column") if isinstance(entry, dict) else None
        urls = [value] if isinstance(value, str) else value if isinstance(value, list) else []
        columns[str(entry.get("id"))] = [u for u in urls if isinstance(u, str) and u]
    out: dict[str, tuple[list[int], list[str]]] = {}
    with db.atomic():
        for site in sites:
            items = sorted(set(site.applicable_items))
            out[site.id] = (items, columns.get(site.id, []))
            db.execute(
                "UPDATE sites SET applicable_items = ?, report_column = ? WHERE id = ?",
                [json.dumps(items), json.dumps(columns.get(site.id, [])) if columns.get(site.id)
                 else None, site.id],
            )
    return out


def _site_info(db: Database, site_id: str, registry: dict[str, tuple[list[int], list[str]]]) -> _SiteInfo:
    row = db.execute(
        "SELECT portal, applicable_items, report_column FROM sites WHERE id = ?", [site_id]
    ).fetchone()
    starts = [u for u in (_json_list(row[0]) if row else None) or [] if isinstance(u, str)]
    applicable = list(ALL_ITEMS)
    columns: list[str] = []
    if row:
        stored = _json_list(row[1])
        if stored is not None:
            applicable = sorted({int(i) for i in stored if isinstance(i, int) and i in ALL_ITEMS})
        columns = [u for u in _json_list(row[2]) or [] if isinstance(u, str)]
    if site_id in registry:
        applicable, columns = registry[site_id]
    return _SiteInfo(site_id, starts, applicable, set(columns), _usable_crawl(db, site_id))


def _needed_js(rendered: int | None, reason: str | None) -> bool:
    """Whether a snapshot's links came out of a browser because the raw HTML lacked them.

    Screenshots taken as evidence (``render_reason`` "evidence: ...") are rendered too, but
    the links were followed from the raw HTML.
    """
    return bool(rendered) and not (reason or "").startswith("evidence")


def _load_graph(db: Database, crawl_id: int) -> _Graph:
    graph = _Graph()
    for src, dst, anchor in db.execute(
        "SELECT from_url, to_url, anchor_text FROM link_sources WHERE crawl_id = ?", [crawl_id]
    ):
        graph.out.setdefault(src, set()).add(dst)
        graph.into.setdefault(dst, set()).add(src)
        if anchor:
            graph.anchors.setdefault(dst, set()).add(anchor)
    # The snapshot each check of the crawl archived is the one its links were read from.
    reused: dict[str, int] = {}
    for url, final, sid, sha, title, rendered, reason, not_modified in db.execute(
        "SELECT lc.url, lc.final_url, s.id, s.sha256, s.title, s.rendered, s.render_reason,"
        " s.not_modified FROM link_checks lc JOIN snapshots s ON s.id = lc.snapshot_id"
        " WHERE lc.crawl_id = ? ORDER BY lc.id", [crawl_id]
    ):
        for key in {url, final or url}:
            graph.pages[key] = (sid, sha, title, _needed_js(rendered, reason))
            if not_modified:
                reused[key] = sid
    # A 304's snapshot repeats earlier content: whether that content needed a browser is
    # recorded on the earlier snapshot that has a body.
    urls = sorted(reused)
    for chunk in _chunks(urls):
        marks = ",".join("?" * len(chunk))
        for url, rendered, reason in db.execute(
            f"SELECT url, rendered, render_reason FROM snapshots WHERE url IN ({marks})"
            " AND not_modified = 0 AND crawl_id <= ? AND (render_reason IS NULL"
            " OR render_reason NOT LIKE 'evidence%') ORDER BY id", [*chunk, crawl_id]
        ):
            sid, sha, title, _ = graph.pages[url]
            graph.pages[url] = (sid, sha, title, _needed_js(rendered, reason))
    return graph


def _distances(starts: Iterable[str], out: dict[str, set[str]],
               expand: Callable[[str], bool] | None = None) -> dict[str, int]:
    """Clicks from the nearest start URL (breadth first); ``expand(url)`` False = a page
    whose links do not count."""
    dist = {s: 0 for s in starts}
    queue = deque(dist)
    while queue:
        url = queue.popleft()
        if expand is not None and not expand(url):
            continue
        for nxt in sorted(out.get(url, ())):
            if nxt not in dist:
                dist[nxt] = dist[url] + 1
                queue.append(nxt)
    return dist


# -- checklist ---------------------------------------------------------------------------


@dataclass
class _ChecklistResult:
    findings: list[Finding]
    counts: dict[str, int]
    verifiable: bool


def _checklist(db: Database, site: _SiteInfo, method: Method, as_of: date) -> _ChecklistResult:
    counts = {k: 0 for k in ("published", "empty", "dead", "missing", "stale", "unverified")}
    applicable = site.applicable
    per_item = 100.0 / len(applicable) if applicable else 0.0
    fractions = method.checklist
    rows = db.execute(
        "SELECT item_number, url, source FROM site_items WHERE site_id = ? AND url IS NOT NULL",
        [site.id],
    ).fetchall()
    by_item: dict[int, list[tuple[str, str]]] = {}
    for number, url, source in rows:
        by_item.setdefault(int(number), []).append((url, source))
    checks = _latest_checks(db, [r[1] for r in rows], site.crawl_id) \
        if site.crawl_id is not None else {}
    findings: list[Finding] = []
    stale_cut = as_of - timedelta(days=int(fractions["stale_after_days"]))
    fresh_candidates: dict[int, list[_Check]] = {}

    def add(n: int, kind: str, expected: str, found: str, check: _Check | None = None,
            url: str | None = None) -> None:
        if kind in counts:
            counts[kind] += 1
        findings.append(Finding(
            "checklist", str(n), kind, _TITLES[n], expected, found,
            round(fractions[kind] * per_item, 4),
            url=check.url if check else url, snapshot_id=check.snapshot_id if check else None,
            link_check_id=check.check_id if check else None))

    for n in applicable:
        urls = sorted(set(by_item.get(n, [])), key=lambda r: (r[1] != "report", r[0]))
        expected = f"item {n} published: a live page linked from the portal or given in the report's 清单 table"
        if site.crawl_id is None:
            add(n, "unverified", expected, "the portal was never crawled successfully",
                url=urls[0][0] if urls else None)
            continue
        if not urls:
            add(n, "missing", expected,
                f"no link to it on the portal (crawl {site.crawl_id}) and no URL for it in a report")
            continue
        states = [(checks.get(u), u, source) for u, source in urls]
        good = [c for c, _, _ in states if c is not None and c.state in GOOD_STATES]
        if good:
            counts["published"] += 1
            if n in _YEARLY:
                fresh_candidates[n] = good
            continue
        described = "; ".join(
            f"{u} ({source}): {c.state if c else 'not checked'}"
            + (f" {c.status_code}" if c and c.status_code else "") for c, u, source in states)
        empty = [c for c, _, _ in states if c is not None and c.state == "empty"]
        unsure = [(c, u) for c, u, _ in states if c is None or c.state in INCONCLUSIVE_STATES]
        if empty:
            add(n, "empty", expected, f"the list has no entries: {described}", empty[0])
        elif unsure:
            c, u = unsure[0]
            add(n, "unverified", expected, f"could not be checked: {described}", c, url=u)
        else:
            broken = [c for c, _, _ in states if c is not None]
            if any(c.state not in TRANSIENT_STATES or _confirmed_dead(db, c.url) for c in broken):
                add(n, "dead", expected, f"every URL is broken: {described}", broken[0])
            else:  # a 5xx or timeout may pass: evidence once confirmed (archive.store's rule)
                add(n, "unverified", expected, f"broken but not yet confirmed dead: {described}", broken[0])

    snaps = _snapshots(db, (c.snapshot_id for cs in fresh_candidates.values() for c in cs))
    for n, good in fresh_candidates.items():
        best: tuple[date, _Check] | None = None
        for check in good:
            snap = snaps.get(check.snapshot_id) if check.snapshot_id is not None else None
            if snap is None or (snap[1] and "html" not in snap[1].lower()):
                continue
            found = newest_date(snap[2], as_of)
            if found and (best is None or found > best[0]):
                best = (found, check)
        expected = (f"yearly item: an entry dated on or after {stale_cut.isoformat()} "
                    f"({int(fractions['stale_after_days'])} days before {as_of.isoformat()})")
        if best is None:
            add(n, "undated", expected, "no date on any archived page of the item", good[0])
        elif best[0] < stale_cut:
            add(n, "stale", expected, f"newest entry dated {best[0].isoformat()}", best[1])
    for finding in findings:  # evidence hashes
        if finding.snapshot_id is not None and finding.sha256 is None:
            finding.sha256 = _snapshot_sha(db, finding.snapshot_id)
    return _ChecklistResult(findings, counts, any(f.kind != "unverified" for f in findings)
                            or counts["published"] > 0)


def _snapshot_sha(db: Database, snapshot_id: int) -> str | None:
    row = db.execute("SELECT sha256 FROM snapshots WHERE id = ?", [snapshot_id]).fetchone()
    return row[0] if row else None


# -- report and publication -------------------------------------------------------------


def _choose_report(db: Database, site_id: str, year: str) -> dict[str, Any] | None:
    """The best report of the year: readable first, then most parts, on time, newest."""
    rows = [dict(r) for r in db.query(
        "SELECT id, source_url, format, sha256, signed_date, deadline, timeliness,"
        " timeliness_evidence, first_seen, snapshot_id, crawl_id, error, text FROM reports"
        " WHERE site_id = ? AND academic_year = ?", [site_id, year])]
    if not rows:
        return None
    rank = {"on_time": 2, "unknown": 1, "late": 0}
    for r in rows:
        r["parts"] = detect_parts(r["text"]) if r["text"] else None
    return max(rows, key=lambda r: (r["text"] is not None, len(r["parts"].present) if r["parts"] else 0,
                                    rank.get(r["timeliness"] or "unknown", 1), r["id"]))


def _report_findings(report: dict[str, Any] | None, method: Method) -> list[Finding]:
    if report is None:
        return []
    evidence = {"url": report["source_url"], "snapshot_id": report["snapshot_id"],
                "sha256": report["sha256"]}
    parts = report["parts"]
    if parts is None:
        return [Finding("report", "report", "unreadable", "信息公开工作年度报告",
                        "the report's text", f"no text could be extracted ({report['error']})",
                        0.0, **evidence)]
    found_list = ", ".join(f"{n} {PART_TITLES[n]}" for n in parts.present) or "none"
    out = []
    for n in parts.missing:
        note = "named in the introduction but never written" if n in parts.mentioned else "no heading for it"
        out.append(Finding("report", str(n), "missing", PART_TITLES[n],
                           f"part {n} {PART_TITLES[n]}", f"{note} (parts found: {found_list})",
                           method.parts[n], **evidence))
    return out


def _is_column(url: str, graph: _Graph, columns: set[str], method: Method) -> bool:
    if url in columns:
        return True
    pub = method.publication
    if any(h in url.lower() for h in pub["column_url_hints"]):
        return True
    texts = set(graph.anchors.get(url, ()))
    page = graph.pages.get(url)
    if page and page[2]:
        texts.add(re.split(r"\s*[-_|–—]\s*", page[2], maxsplit=1)[0])
    for text in texts:
        compact = re.sub(r"\s", "", text)
        if len(compact) > pub["column_max_chars"] or re.search(r"[0-9〇零]", compact):
            continue
        if any(k in compact for k in pub["column_keywords"]) and match_item(compact) in (None, 6):
            return True
    return False


def _publication_findings(db: Database, site: _SiteInfo, report: dict[str, Any], year: str,
                          method: Method, as_of: date) -> tuple[list[Finding], str]:
    """Findings on timeliness and place, and the effective timeliness."""
    pub = method.publication
    findings: list[Finding] = []
    report_evidence = {"url": report["source_url"], "snapshot_id": report["snapshot_id"],
                       "sha256": report["sha256"]}
    graph = _load_graph(db, site.crawl_id) if site.crawl_id is not None else None
    targets: set[str] = set()
    landing: set[str] = set()
    if graph is not None and report["source_url"]:
        targets = {report["source_url"]}
        targets |= {r[0] for r in db.execute(
            "SELECT url FROM link_checks WHERE crawl_id = ? AND final_url = ?",
            [site.crawl_id, report["source_url"]])}
        if report["format"] == "html":
            landing = {t for t in targets if t in graph.into or t in graph.pages}
        else:
            landing = {p for t in targets for p in graph.into.get(t, ())}

    # on time
    deadline = _iso_date(report["deadline"]) or deadline_for(year)
    timeliness = report["timeliness"] or "unknown"
    expected = f"published by {deadline.isoformat()}" if deadline else "published by 31 October"
    title = "按时发布 (by 31 October)"
    if timeliness == "late" and deadline:
        signed = _iso_date(report["signed_date"])
        days = (signed - deadline).days if signed else 1
        findings.append(Finding("publication", "on_time", "late", title, expected,
                                report["timeliness_evidence"] or f"signed {report['signed_date']}",
                                _late_points(days, pub), **report_evidence))
    elif timeliness != "on_time":
        if deadline is not None and as_of <= deadline:
            timeliness = "on_time"  # online before its deadline
        else:
            posted = None
            if graph is not None:
                pages = sorted(landing)
                snaps = _snapshots(db, (graph.pages[p][0] for p in pages if p in graph.pages))
                for p in pages:
                    if p in graph.pages:
                        sid = graph.pages[p][0]
                        when = posted_date(snaps.get(sid, (None, None, None))[2])
                        if when and (posted is None or when < posted[0]):
                            posted = (when, p, sid, graph.pages[p][1])
            if posted and deadline and posted[0] > deadline:
                timeliness = "late"
                findings.append(Finding(
                    "publication", "on_time", "late", title, expected,
                    f"no date line; posted {posted[0].isoformat()} ({(posted[0] - deadline).days} "
                    f"day(s) after the deadline) on {posted[1]}",
                    _late_points((posted[0] - deadline).days, pub),
                    url=posted[1], snapshot_id=posted[2], sha256=posted[3]))
            elif posted:
                timeliness = "on_time"
            else:
                findings.append(Finding(
                    "publication", "on_time", "unknown", title, expected,
                    report["timeliness_evidence"] or "no date line and no posting date",
                    pub["unknown"], **report_evidence))

    # where
    if graph is None:
        for item, label, points in (("column", "年度报告栏目", pub["column"]),
                                    ("home", "首页可达", pub["home"]),
                                    ("no_js", "无需JavaScript", pub["no_js"])):
            findings.append(Finding("publication", item, "unverified", label,
                                    "judged from a crawl of the portal",
                                    "the portal was never crawled successfully",
                                    round(pub["unverified"] * points, 4), **report_evidence))
        return findings, timeliness
    crawl = f"crawl {site.crawl_id}"
    if not landing:
        for item, kind, label, points in (("column", "missing", "年度报告栏目", pub["column"]),
                                          ("home", "unreachable", "首页可达", pub["home"]),
                                          ("no_js", "unreachable", "无需JavaScript", pub["no_js"])):
            findings.append(Finding("publication", item, kind, label,
                                    "the report linked from the portal",
                                    f"no page of {crawl} links to the report", points,
                                    **report_evidence))
        return findings, timeliness
    upstream = set()
    for t in targets:
        for p in graph.into.get(t, ()):
            upstream.add(p)
            upstream |= graph.into.get(p, set())
    report_columns = site.report_columns | {r[0] for r in db.execute(
        "SELECT url FROM site_items WHERE site_id = ? AND item_number = 6 AND source = 'report'"
        " AND url IS NOT NULL", [site.id])}
    columns = sorted(p for p in upstream if _is_column(p, graph, report_columns, method))
    first = sorted(landing)[0]
    page = graph.pages.get(first)
    landing_evidence = {"url": first, "snapshot_id": page[0] if page else None,
                        "sha256": page[1] if page else None}
    if not columns:
        findings.append(Finding(
            "publication", "column", "missing", "年度报告栏目",
            "linked from the portal's 信息公开年度报告 column",
            "linked only from " + ", ".join(sorted(upstream)[:5]), pub["column"], **landing_evidence))
    dist = _distances(site.starts, graph.out)
    depths = sorted((dist[p], p) for p in landing if p in dist)
    max_clicks = int(pub["max_clicks"])
    if not depths:
        findings.append(Finding("publication", "home", "unreachable", "首页可达",
                                f"the page linking the report within {max_clicks} clicks of a start URL",
                                f"not reachable from the start URLs in {crawl}", pub["home"],
                                **landing_evidence))
    elif depths[0][0] > max_clicks:
        depth, p = depths[0]
        page = graph.pages.get(p)
        findings.append(Finding("publication", "home", "too_deep", "首页可达",
                                f"the page linking the report within {max_clicks} clicks of a start URL",
                                f"{depth} clicks from a start URL", pub["home"], url=p,
                                snapshot_id=page[0] if page else None, sha256=page[1] if page else None))
    raw = _distances(site.starts, graph.out,
                     expand=lambda u: not (graph.pages.get(u) or (0, None, None, False))[3])
    if depths and not any(t in raw for t in targets):
        rendered = sorted(p for p in landing if (graph.pages.get(p) or (0, None, None, False))[3])
        findings.append(Finding("publication", "no_js", "js_only", "无需JavaScript",
                                "reachable from a start URL without JavaScript",
                                "only reachable through pages whose links needed rendering"
                                + (f": {', '.join(rendered[:5])}" if rendered else ""),
                                pub["no_js"], **landing_evidence))
    elif not depths:
        findings.append(Finding("publication", "no_js", "unreachable", "无需JavaScript",
                                "reachable from a start URL without JavaScript",
                                f"not reachable from the start URLs in {crawl}", pub["no_js"],
                                **landing_evidence))
    return findings, timeliness


def _late_points(days: int, pub: dict[str, Any]) -> float:
    points = pub["late_base"] + pub["late_per_30_days"] * (max(days, 0) // 30)
    return float(min(points, pub["on_time"]))


# -- putting it together ----------------------------------------------------------------


def _score(findings: list[Finding], dimension: str, judged: bool) -> float | None:
    if not judged:
        return None
    lost = sum(f.points_lost for f in findings if f.dimension == dimension)
    return round(max(0.0, 100.0 - lost), 2)


def _overall(scores: dict[str, float | None], method: Method) -> float | None:
    judged = {d: s for d, s in scores.items() if s is not None and method.weights[d] > 0}
    if not judged:
        return None
    total = sum(method.weights[d] for d in judged)
    return round(sum(method.weights[d] * s for d, s in judged.items()) / total, 2)


def _site_ids(db: Database, site_id: str | None) -> list[str]:
    if site_id is not None:
        return [site_id]
    ids: set[str] = set()
    for sql in ("SELECT id FROM sites", "SELECT DISTINCT site_id FROM reports",
                "SELECT DISTINCT site_id FROM site_items"):
        ids |= {r[0] for r in db.execute(sql) if r[0]}
    return sorted(ids)


def evaluate(db: Database, *, site_id: str | None = None, academic_year: str | None = None,
             registry_path: str | Path | None = None, now: str | date | datetime | None = None,
             method_path: str | Path | None = None) -> list[int]:
    """Evaluate sites (all, or ``site_id``) and return the new ``evaluations`` ids.

    ``academic_year`` ("2021-2022") evaluates that year only (a missing report is then a
    finding); by default each site's report years plus the year due at ``now``. ``now``
    (default: today, UTC) is the date judged at: freshness and whether a report is due.
    ``registry_path`` supplies ``applicable_items`` and ``report_column`` per site (and
    stores them in ``sites`` for later runs); without it the stored values, else all 50.
    ``method_path`` replaces ``archive/evaluation_method.toml``. Raises :class:`MethodError`
    for a broken method file, ``RegistryError`` for a broken registry, ``ValueError`` for a
    malformed ``academic_year``; missing data is never an error.
    """
    from archive.reports.ingest import ensure_checklist

    if academic_year is not None:
        m = _YEAR_RE.match(academic_year)
        if not m or int(m.group(2)) != int(m.group(1)) + 1:
            raise ValueError(f"academic year must look like 2021-2022 (got {academic_year!r})")
    method = load_method(method_path)
    as_of = _as_date(now)
    ensure_checklist(db)
    registry = _registry_settings(db, registry_path) if registry_path else {}
    evaluated_at = utcnow()
    ids: list[int] = []
    for sid in _site_ids(db, site_id):
        ids += _evaluate_site(db, sid, academic_year, registry, method, as_of, evaluated_at)
    return ids


def _evaluate_site(db: Database, site_id: str, academic_year: str | None,
                   registry: dict[str, tuple[list[int], list[str]]], method: Method,
                   as_of: date, evaluated_at: str) -> list[int]:
    site = _site_info(db, site_id, registry)
    crawled = site.crawl_id is not None
    report_years = {r[0] for r in db.execute(
        "SELECT DISTINCT academic_year FROM reports WHERE site_id = ? AND academic_year IS NOT NULL",
        [site_id])}
    if academic_year is not None:
        years = [academic_year]
    else:
        years = sorted(report_years | ({due_academic_year(as_of)} if crawled else set()))
    if not years:
        return []
    checklist = _checklist(db, site, method, as_of)
    ids = []
    for year in years:
        report = _choose_report(db, site_id, year)
        findings = list(checklist.findings)
        deadline = deadline_for(year)
        timeliness = "no report"
        report_judged = publication_judged = True
        if report is None:
            if not crawled:
                kind, found, points = "unverified", "the portal was never crawled successfully", 0.0
                report_judged = publication_judged = False
            elif deadline is not None and as_of <= deadline:
                kind, found, points = "not_due", f"not found; due by {deadline.isoformat()}", 0.0
                report_judged = publication_judged = False
            else:
                kind, points = "missing", 100.0
                found = f"no {year} report found on the portal (crawl {site.crawl_id}) or ingested"
            expected = f"a {year} 信息公开工作年度报告" + (f" by {deadline.isoformat()}" if deadline else "")
            for dim in ("report", "publication"):
                findings.append(Finding(dim, "report", kind, "信息公开工作年度报告", expected, found, points))
        else:
            findings += _report_findings(report, method)
            report_judged = report["parts"] is not None
            pub_findings, timeliness = _publication_findings(db, site, report, year, method, as_of)
            findings += pub_findings
        scores = {
            "checklist": _score(findings, "checklist", checklist.verifiable and bool(site.applicable)),
            "report": _score(findings, "report", report_judged),
            "publication": _score(findings, "publication", publication_judged),
        }
        counts = checklist.counts
        with db.atomic():
            evaluation_id = int(db["evaluations"].insert({
                "site_id": site_id, "academic_year": year, "method_version": method.version,
                "method_sha256": method.sha256, "evaluated_at": evaluated_at,
                "as_of": as_of.isoformat(), "crawl_id": site.crawl_id,
                "report_id": report["id"] if report else None, "timeliness": timeliness,
                "parts_found": len(report["parts"].present) if report and report["parts"] else None,
                "items_applicable": len(site.applicable),
                "items_published": counts["published"], "items_empty": counts["empty"],
                "items_dead": counts["dead"], "items_missing": counts["missing"],
                "items_stale": counts["stale"], "items_unverified": counts["unverified"],
                "score_checklist": scores["checklist"], "score_report": scores["report"],
                "score_publication": scores["publication"],
                "score_overall": _overall(scores, method), "findings": len(findings),
            }).last_pk)
            db["evaluation_findings"].insert_all(
                {"evaluation_id": evaluation_id, "dimension": f.dimension, "item": f.item,
                 "kind": f.kind, "title": f.title, "expected": f.expected, "found": f.found,
                 "points_lost": f.points_lost, "url": f.url, "snapshot_id": f.snapshot_id,
                 "sha256": f.sha256, "link_check_id": f.link_check_id}
                for f in findings
            )
        ids.append(evaluation_id)
    return ids


def evaluation_diff(db: Database, evaluation_id: int) -> dict[str, Any]:
    """What changed since the previous evaluation of the same site, year and method
    (ordered by ``as_of``, ``evaluated_at``, ``id``, as in the ``evaluation_changes`` view).

    Returns ``{"previous_id", "delta_overall", "gained", "resolved"}``: findings (as
    ``(dimension, item, kind)``) new in this evaluation and gone since the previous one.
    """
    row = db.execute(
        "SELECT site_id, academic_year, method_version, as_of, evaluated_at, score_overall"
        " FROM evaluations WHERE id = ?", [evaluation_id]).fetchone()
    if row is None:
        raise KeyError(evaluation_id)
    site_id, year, version, as_of, at, score = row
    prev = db.execute(
        "SELECT id, score_overall FROM evaluations WHERE site_id = ? AND academic_year IS ?"
        " AND method_version = ? AND (as_of, evaluated_at, id) < (?, ?, ?)"
        " ORDER BY as_of DESC, evaluated_at DESC, id DESC LIMIT 1",
        [site_id, year, version, as_of, at, evaluation_id]).fetchone()

    def keys(eid: int) -> set[tuple[str, str, str]]:
        return {tuple(r) for r in db.execute(
            "SELECT dimension, item, kind FROM evaluation_findings WHERE evaluation_id = ?", [eid])}

    now_keys = keys(evaluation_id)
    if prev is None:
        return {"previous_id": None, "delta_overall": None, "gained": sorted(now_keys), "resolved": []}
    before = keys(prev[0])
    delta = round(score - prev[1], 2) if score is not None and prev[1] is not None else None
    return {"previous_id": prev[0], "delta_overall": delta,
            "gained": sorted(now_keys - before), "resolved": sorted(before - now_keys)}
