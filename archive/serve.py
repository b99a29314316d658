"""Serve an archive with Datasette, read-only, always under the stable name ``xxgk``."""

from __future__ import annotations

import gc
import sqlite3
import sys
import weakref
from collections.abc import Callable
from contextlib import closing
from pathlib import Path
from typing import Any

from datasette import hookimpl
from datasette.app import Datasette
from datasette.database import Database, Results
from datasette.plugins import pm

from archive.datasette_config import DATABASE_NAME, SETTINGS, metadata
from archive.queries import INSTANT_FORMS, instant_sql, xml_text

PLUGINS_DIR = Path(__file__).with_name("datasette_plugins")
TEMPLATES_DIR = Path(__file__).with_name("templates")
#: Page cache per read connection (KiB): the upper levels of the big indexes stay in memory.
CACHE_KIB = 64 * 1024
#: Longest string or blob (bytes) SQLite may make or read on a served connection: a query such
#: as ``select zeroblob(1000000000)`` fails at once instead of Python encoding a gigabyte as
#: JSON. Above anything the archive legitimately holds: bodies are cut at 64 MiB
#: (``crawler/settings.py`` DOWNLOAD_MAXSIZE) and stored no larger (``archive/blobs.py`` keeps
#: zlib only when it is smaller); main_text reads at most 4 Mi characters of a page; a quarter
#: more for what Chromium writes (rendered pages, full-page screenshots), which that cap does
#: not reach. A stored value above it could not be read at all.
VALUE_LIMIT = 80 * 1024 * 1024
#: Characters of text plus bytes of blobs one query (one cursor) may hand to Python: one value
#: at :data:`VALUE_LIMIT` and the small columns beside it (the snapshot viewer reads a whole
#: body in one row), not thousands of rows of large values (``/xxgk/blobs.json?_size=max``).
ANSWER_BUDGET = VALUE_LIMIT + 1024 * 1024
#: Canned query parameters that are points in time (read by ``archive.queries.instant_sql``).
INSTANT_PARAMS = ("since",)


class TooLarge(sqlite3.OperationalError):
    """A value longer than :data:`VALUE_LIMIT`, or an answer past :data:`ANSWER_BUDGET`. An
    OperationalError, so that Datasette shows its message with a 400 in the query and table
    views alike (it answers 500 to other errors in a table view)."""


class InvalidParameter(sqlite3.OperationalError):
    """A query parameter that cannot be read: a 400 saying so, not a silently empty answer."""


def budgeted_rows(budget: int) -> Callable[[sqlite3.Cursor, tuple], sqlite3.Row]:
    """A row factory making :class:`sqlite3.Row` (as Datasette's) that raises
    :class:`TooLarge` once a cursor's rows hold more than ``budget`` characters and bytes.
    One per connection (a connection serves one thread at a time)."""
    # SQLite makes each value within VALUE_LIMIT; what grows without bound is Python's copy of
    # many rows (and their JSON, several times larger), so stop reading before that
    sizes: weakref.WeakKeyDictionary[sqlite3.Cursor, int] = weakref.WeakKeyDictionary()

    def row(cursor: sqlite3.Cursor, values: tuple) -> sqlite3.Row:
        size = sizes.get(cursor, 0)
        for value in values:
            if isinstance(value, (str, bytes)):
                size += len(value)
        if size > budget:
            raise TooLarge(
                f"answer too large: its rows hold more than {budget // 2**20} MiB of text and binary "
                "values, the limit for one query. Ask for fewer rows (_size=, LIMIT) or fewer "
                "columns; an archived body is viewed on its own at /-/snapshot/<id>/raw")
        sizes[cursor] = size
        return sqlite3.Row(cursor, values)

    return row


def check_instant(name: str, value: object) -> None:
    """Raise :class:`InvalidParameter` when ``value`` is text :func:`archive.queries.instant_sql`
    cannot read as a time (blank is fine: no filter). SQLite itself judges, with the very SQL
    the queries use, so the check and the queries always agree."""
    if not isinstance(value, str) or not value.strip():
        return
    with closing(sqlite3.connect(":memory:")) as conn:
        (instant,) = conn.execute(f"select {instant_sql(':value')}", {"value": value}).fetchone()
    if instant is None:
        raise InvalidParameter(f"{name}: cannot read {value[:40]!r} as a date or time; use {INSTANT_FORMS}")


class ArchiveDatabase(Database):
    """The archive's :class:`Database`: a canned query's time parameters are checked first, and
    a value past :data:`VALUE_LIMIT` is a :class:`TooLarge` with a message saying so."""

    async def execute(self, sql: str, params: Any = None, *args: Any, **kwargs: Any) -> Results:
        if isinstance(params, dict):
            for name in INSTANT_PARAMS:
                if f":{name}" in sql:
                    check_instant(name, params.get(name))
        try:
            return await super().execute(sql, params, *args, **kwargs)
        except sqlite3.DataError as exc:  # SQLITE_TOOBIG, the one error sqlite3 maps to DataError
            raise TooLarge(
                f"{exc}: a value would be longer than {VALUE_LIMIT // 2**20} MiB, the most one value "
                "may hold here (no archived body is longer)") from exc


def root_url(datasette: Datasette, request) -> str:
    """The absolute URL of the Datasette root for ``request``, without a trailing slash:
    the request's scheme and host (``https`` if ``force_https_urls``) plus ``base_url``."""
    return datasette.absolute_url(request, datasette.urls.path("/")).rstrip("/")


# Datasette hooks of ``xxgk serve``: this module registers itself once (make_datasette).
@hookimpl
def register_magic_parameters(datasette):
    def base(key: str, request) -> str:
        if key != "url" or request is None:
            raise KeyError(key)
        return root_url(datasette, request)

    # ``:_base_url`` in the feed queries: Atom readers need absolute entry links
    return [("base", base)]


@hookimpl
def prepare_connection(conn, database, datasette):
    if database == DATABASE_NAME:
        conn.execute(f"PRAGMA cache_size = -{CACHE_KIB}")
        conn.setlimit(sqlite3.SQLITE_LIMIT_LENGTH, VALUE_LIMIT)
        # Datasette has just set sqlite3.Row: the same rows, counted
        conn.row_factory = budgeted_rows(ANSWER_BUDGET)
        conn.create_function("xml_text", 1, xml_text, deterministic=True)


def make_datasette(db_path: str | Path, *, settings: dict | None = None) -> Datasette:
    """A Datasette app for ``db_path`` (tests use it with ``ds.client``); ``settings``
    override :data:`SETTINGS` (e.g. ``base_url`` behind a proxy)."""
    if not pm.is_registered(sys.modules[__name__]):
        pm.register(sys.modules[__name__], name="xxgk-serve")
    ds = Datasette(
        [], metadata=metadata(base_url=(settings or {}).get("base_url") or "/"),
        settings={**SETTINGS, **(settings or {})},
        plugins_dir=str(PLUGINS_DIR) if PLUGINS_DIR.is_dir() else None,
        template_dir=str(TEMPLATES_DIR) if TEMPLATES_DIR.is_dir() else None,
    )
    # Mutable (a crawl may be writing, WAL) but opened mode=ro: nothing can write through it.
    ds.add_database(ArchiveDatabase(ds, path=str(Path(db_path).resolve()), is_mutable=True),
                    name=DATABASE_NAME)
    return ds


def freeze_loaded_objects() -> None:
    """Move everything loaded so far (modules, Datasette, plugins, metadata) out of the
    cyclic garbage collector's reach. A server keeps them for life, and a large answer
    (5,000 rows become tens of thousands of objects) otherwise triggers full collections
    that walk all of them: tens of milliseconds added to that one request."""
    gc.collect()
    gc.freeze()


def serve(db_path: str | Path, *, host: str = "127.0.0.1", port: int = 8001,
          settings: dict | None = None) -> int:
    """Serve ``db_path`` until interrupted; ``settings`` override Datasette's (``base_url``...)."""
    import uvicorn

    ds = make_datasette(db_path, settings=settings)
    freeze_loaded_objects()
    print(f"Datasette serving {db_path} at http://{host}:{port}/{DATABASE_NAME}")
    uvicorn.run(ds.app(), host=host, port=port, log_level="warning")
    return 0
