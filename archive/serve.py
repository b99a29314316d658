"""Serve an archive with Datasette, read-only, always under the stable name ``xxgk``."""

from __future__ import annotations

from pathlib import Path

from datasette.app import Datasette
from datasette.database import Database

from archive.datasette_config import DATABASE_NAME, SETTINGS, metadata

PLUGINS_DIR = Path(__file__).with_name("datasette_plugins")
TEMPLATES_DIR = Path(__file__).with_name("templates")


def make_datasette(db_path: str | Path) -> Datasette:
    """A Datasette app for ``db_path`` (tests use it with ``ds.client``)."""
    ds = Datasette(
        [], metadata=metadata(), settings=SETTINGS,
        plugins_dir=str(PLUGINS_DIR) if PLUGINS_DIR.is_dir() else None,
        template_dir=str(TEMPLATES_DIR) if TEMPLATES_DIR.is_dir() else None,
    )
    # Mutable (a crawl may be writing, WAL) but opened mode=ro: nothing can write through it.
    ds.add_database(Database(ds, path=str(Path(db_path).resolve()), is_mutable=True),
                    name=DATABASE_NAME)
    return ds


def serve(db_path: str | Path, *, host: str = "127.0.0.1", port: int = 8001) -> int:
    import uvicorn

    ds = make_datasette(db_path)
    print(f"Datasette serving {db_path} at http://{host}:{port}/{DATABASE_NAME}")
    uvicorn.run(ds.app(), host=host, port=port, log_level="warning")
    return 0
