"""Serve an archive with Datasette, read-only, always under the stable name ``xxgk``."""

from __future__ import annotations

import gc
import sys
from pathlib import Path

from datasette import hookimpl
from datasette.app import Datasette
from datasette.database import Database
from datasette.plugins import pm

from archive.datasette_config import DATABASE_NAME, SETTINGS, metadata
from archive.queries import xml_text

PLUGINS_DIR = Path(__file__).with_name("datasette_plugins")
TEMPLATES_DIR = Path(__file__).with_name("templates")
#: Page cache per read connection (KiB): the upper levels of the big indexes stay in memory.
CACHE_KIB = 64 * 1024


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
        conn.create_function("xml_text", 1, xml_text, deterministic=True)


def make_datasette(db_path: str | Path, *, settings: dict | None = None) -> Datasette:
    """A Datasette app for ``db_path`` (tests use it with ``ds.client``); ``settings``
    override :data:`SETTINGS` (e.g. ``base_url`` behind a proxy)."""
    if not pm.is_registered(sys.modules[__name__]):
        pm.register(sys.modules[__name__], name="xxgk-serve")
    ds = Datasette(
        [], metadata=metadata(), settings={**SETTINGS, **(settings or {})},
        plugins_dir=str(PLUGINS_DIR) if PLUGINS_DIR.is_dir() else None,
        template_dir=str(TEMPLATES_DIR) if TEMPLATES_DIR.is_dir() else None,
    )
    # Mutable (a crawl may be writing, WAL) but opened mode=ro: nothing can write through it.
    ds.add_database(Database(ds, path=str(Path(db_path).resolve()), is_mutable=True),
                    name=DATABASE_NAME)
    return ds


def freeze_loaded_objects() -> None:
    """Move everything loaded so far (modules, Datasette, plugins, metadata) out of the
    cyclic garbage collector's reach. A server keeps them for life, and a large answer
    (5,000 rows become tens of thousands of objects) otherwise triggers full collections
    that walk all of them: tens of milliseconds added to that one request."""
    gc.collect()
    gc.freeze()


def serve(db_path: str | Path, *, host: str = "127.0.0.1", port: int = 8001) -> int:
    import uvicorn

    ds = make_datasette(db_path)
    freeze_loaded_objects()
    print(f"Datasette serving {db_path} at http://{host}:{port}/{DATABASE_NAME}")
    uvicorn.run(ds.app(), host=host, port=port, log_level="warning")
    return 0
