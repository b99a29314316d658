"""Shared fixtures: temporary archives and the simulated web on a free port."""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
ARTIFACTS = ROOT / "tests" / "artifacts"


@pytest.fixture
def db(tmp_path):
    from archive.db import open_db

    database = open_db(tmp_path / "archive.db")
    yield database
    database.conn.close()


@pytest.fixture(scope="session")
def loopback_server() -> Callable[[bytes, str, list[str]], str]:
    """Start HTTP servers on 127.0.0.1 standing in for forbidden origins: ``start(body,
    content_type, hits)`` answers every GET with ``body``, appends each path asked to
    ``hits`` and returns the server's base URL. All are stopped at the end of the session."""
    servers: list[ThreadingHTTPServer] = []

    def start(body: bytes, content_type: str, hits: list[str]) -> str:
        class Visitors(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - stdlib naming
                hits.append(self.path)
                self.send_response(200)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:  # noqa: A002
                pass

        server = ThreadingHTTPServer(("127.0.0.1", 0), Visitors)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}"

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()



@pytest.fixture
def crawl_pages(tmp_path) -> Callable[..., tuple]:
    """``crawl_pages(pages, portal, extra_toml="", *, days=1, settings=())``: ``xxgk crawl`` of a
    one-site registry (``render = "never"``) over the simulated web serving ``pages``
    (``SimWeb(extra=)``), ``days`` times into one archive; (connection to it, the web's
    request log). For tests of page and file variants the bundled sites lack."""
    import sqlite3
    import subprocess

    from simweb import SimWeb

    def crawl(pages: dict, portal: str, extra_toml: str = "", *, days: int = 1,
              settings: tuple[str, ...] = ()) -> tuple[sqlite3.Connection, list]:
        registry = tmp_path / "sites.toml"
        registry.write_text(f'[[site]]\nid = "t"\nname = "测试大学"\nportal = "{portal}"\nrender = "never"\n'
                            f"{extra_toml}", encoding="utf-8")
        with SimWeb(port=0, day=1, extra=pages) as web:
            env = {**os.environ, "http_proxy": web.proxy_url, "https_proxy": web.proxy_url, "no_proxy": ""}
            for _ in range(days):
                result = subprocess.run(
                    [sys.executable, "-m", "xxgk", "crawl", "--registry", str(registry), "--db",
                     str(tmp_path / "a.db"), "-s", "XXGK_PROBE_SOFT404=0", "-s", "DOWNLOAD_DELAY=0",
                     "-s", "XXGK_DOWNLOAD_TIMEOUT=10", *settings],
                    cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
                assert result.returncode == 0, result.stdout + result.stderr
            log = web.request_log
        return sqlite3.connect(tmp_path / "a.db"), log

    return crawl

@pytest.fixture
def artifacts() -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS


@pytest.fixture(scope="session")
def simweb_archive(tmp_path_factory) -> Path:
    """The simulated web crawled on day 1 and day 2 with ``xxgk demo``'s code path (crawls,
    then changes and evaluations), shared by the Datasette tests. ``XXGK_TEST_ARCHIVE=path``
    copies an archive crawled earlier instead (to iterate on pages quickly)."""
    import sqlite3

    from xxgk.demo import crawl_simweb

    path = tmp_path_factory.getbasetemp() / "datasette-simweb" / "archive.db"
    if not path.with_name("crawled").exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        if os.environ.get("XXGK_TEST_ARCHIVE"):
            with sqlite3.connect(os.environ["XXGK_TEST_ARCHIVE"]) as src, sqlite3.connect(path) as dst:
                src.backup(dst)
        else:
            # The slow host answers after 30 s x 0.2 = 6 s, well after the 1 s timeout even on a
            # loaded machine (at 0.05, 1.5 s, the answer beat the timeout under load: 'ok', not 'timeout').
            crawl_simweb(path, days=2, delay_scale=0.2, settings={"XXGK_DOWNLOAD_TIMEOUT": "1"})
        path.with_name("crawled").touch()
    return path


def pytest_configure(config):
    import tempfile

    os.environ.setdefault("XXGK_LOG_LEVEL", "INFO")
    # Every session starts as a fresh machine does, with no Public Suffix List cached by
    # tldextract: a crawl must not go and fetch one (crawler.extensions.OfflinePublicSuffixList).
    if "TLDEXTRACT_CACHE" not in os.environ:
        import atexit
        import shutil

        os.environ["TLDEXTRACT_CACHE"] = cache = tempfile.mkdtemp(prefix="xxgk-tldextract-")
        atexit.register(shutil.rmtree, cache, ignore_errors=True)
