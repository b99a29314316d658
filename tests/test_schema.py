"""The SQLite schema is public API: this test pins it.

If it fails you changed a table users' Datasette URLs depend on. Add a new migration in
``archive/schema.py`` instead of editing one, then regenerate the pin deliberately with
``XXGK_UPDATE_SCHEMA=1 ./run test tests/test_schema.py`` and say why in the commit.
"""

from __future__ import annotations

import os
from pathlib import Path

from archive.db import open_db
from archive.schema import migrations

PIN = Path(__file__).with_name("fixtures") / "schema.sql"


def schema_sql(db) -> str:
    rows = db.execute(
        "SELECT type, name, sql FROM sqlite_master WHERE sql IS NOT NULL"
        " AND name NOT LIKE 'sqlite_%' ORDER BY type, name"
    ).fetchall()
    return "\n".join(f"-- {kind} {name}\n{sql};" for kind, name, sql in rows) + "\n"


def test_schema_matches_pin(tmp_path):
    db = open_db(tmp_path / "a.db")
    current = schema_sql(db)
    if os.environ.get("XXGK_UPDATE_SCHEMA"):
        PIN.write_text(current, encoding="utf-8")
    assert current == PIN.read_text(encoding="utf-8")


def test_migrations_are_idempotent_and_recorded(tmp_path):
    path = tmp_path / "a.db"
    db = open_db(path)
    applied = [m.name for m in migrations.applied(db)]
    assert applied == [m.name for m in migrations._migrations]
    db.conn.close()
    db = open_db(path)  # re-opening applies nothing new and loses nothing
    assert [m.name for m in migrations.applied(db)] == applied
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_contract_columns_exist(tmp_path):
    """The columns other issues and users rely on (issue #3's contract)."""
    db = open_db(tmp_path / "a.db")
    contract = {
        "sites": {"id", "name", "portal"},
        "crawls": {"id", "site_id", "started_at", "finished_at", "status", "pages"},
        "links": {"url", "site_id", "state", "status_code", "content_type", "final_url",
                  "first_seen", "last_checked", "last_ok", "broken_since"},
        "link_checks": {"id", "crawl_id", "url", "checked_at", "state", "status_code",
                        "elapsed_ms", "final_url", "error"},
        "link_sources": {"from_url", "to_url", "anchor_text", "crawl_id"},
        "snapshots": {"id", "url", "crawl_id", "fetched_at", "status_code", "content_type", "sha256"},
        "blobs": {"sha256", "size"},
    }
    for table, columns in contract.items():
        assert columns <= set(db[table].columns_dict), table
