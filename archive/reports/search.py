"""Full-text search over reports, for terms of any length.

``reports_fts`` uses SQLite's trigram tokenizer, which indexes every three-character
sequence: a MATCH needs at least three characters. Chinese search terms are often two
characters ("举报", "复议"), so shorter terms fall back to ``LIKE`` over the ``reports``
table (a scan, fine for thousands of reports).
"""

from __future__ import annotations

from sqlite_utils import Database

__all__ = ["search_reports"]


def _like_escape(term: str) -> str:
    return term.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _snippet(text: str | None, term: str, width: int = 30) -> str:
    if not text:
        return ""
    pos = text.lower().find(term.lower())
    if pos < 0:
        return text[: width * 2]
    start = max(0, pos - width)
    end = min(len(text), pos + len(term) + width)
    return ("…" if start else "") + text[start:pos] + "[" + text[pos:pos + len(term)] + "]" \
        + text[pos + len(term):end] + ("…" if end < len(text) else "")


def search_reports(db: Database, term: str, limit: int = 50) -> list[dict]:
    """Reports whose title or text contains ``term``, best match first.

    Each result: id, site_id, academic_year, title, snippet (the match in [brackets]).
    Terms of three or more characters use the FTS index; shorter ones use LIKE.
    """
    term = term.strip()
    if not term:
        return []
    if len(term) >= 3:
        phrase = '"' + term.replace('"', '""') + '"'
        rows = db.execute(
            "SELECT r.id, r.site_id, r.academic_year, r.title, r.text FROM reports_fts"
            " JOIN reports r ON r.id = reports_fts.rowid"
            " WHERE reports_fts MATCH ? ORDER BY rank LIMIT ?",
            [phrase, limit],
        ).fetchall()
    else:
        pattern = f"%{_like_escape(term)}%"
        rows = db.execute(
            "SELECT id, site_id, academic_year, title, text FROM reports"
            " WHERE title LIKE ? ESCAPE '\\' OR text LIKE ? ESCAPE '\\'"
            " ORDER BY id LIMIT ?",
            [pattern, pattern, limit],
        ).fetchall()
    return [
        {"id": r[0], "site_id": r[1], "academic_year": r[2], "title": r[3],
         "snippet": _snippet(r[4] if r[4] and term.lower() in r[4].lower() else r[3], term)}
        for r in rows
    ]
