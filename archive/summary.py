"""A short text summary of crawls: what ``xxgk crawl`` and ``xxgk demo`` print."""

from __future__ import annotations

from sqlite_utils import Database


def crawl_summary(db: Database, crawl_ids: list[int]) -> str:
    """Pages, links by state and reports found, for the given crawls."""
    if not crawl_ids:
        return "no crawls"
    marks = ",".join("?" * len(crawl_ids))
    lines = []
    for row in db.execute(
        f"SELECT c.id, c.site_id, s.name, c.status, c.pages, c.links_checked, c.bytes_received,"
        f" c.new_broken FROM crawls c LEFT JOIN sites s ON s.id = c.site_id WHERE c.id IN ({marks})"
        f" ORDER BY c.id", crawl_ids,
    ):
        crawl_id, site_id, name, status, pages, checked, received, new_broken = row
        lines.append(f"crawl {crawl_id} {site_id} ({name}): {status}, {pages} pages archived,"
                     f" {checked} URLs checked, {received or 0:,} bytes, {new_broken} newly broken")
    states = db.execute(
        f"SELECT state, COUNT(*) FROM link_checks WHERE crawl_id IN ({marks})"
        f" GROUP BY state ORDER BY COUNT(*) DESC", crawl_ids,
    ).fetchall()
    lines.append("links by state: " + (", ".join(f"{s} {n}" for s, n in states) or "none"))
    reports = db.execute(
        f"SELECT COUNT(*) FROM reports WHERE crawl_id IN ({marks})", crawl_ids
    ).fetchone()[0]
    lines.append(f"annual reports found: {reports}")
    return "\n".join(lines)
