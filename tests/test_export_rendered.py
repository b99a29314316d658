"""WARC/WACZ export of browser renderings, screenshots and truncated bodies."""

from __future__ import annotations

import hashlib
import io
import json
import subprocess
import zipfile
from pathlib import Path

import pytest
from test_export import PYWB_REPLAY, read_records

from archive.store import ArchiveWriter, start_crawl, upsert_sites
from archive.wacz import export_wacz
from archive.warc import SCREENSHOT_PREFIX, export_warc, payload_digest
from crawler.items import Evidence, LinkCheck

PAGE = "http://xxgk.r.edu.cn/qd/item40.htm"
LIST = "http://xxgk.r.edu.cn/tzgg.htm"
ATTACH = "http://xxgk.r.edu.cn/upload/a.pdf"
SMALL = "http://xxgk.r.edu.cn/small.htm"
RAW_404 = b"<html><head><title>404</title></head><body><h1>404 Not Found</h1><hr>VWebServer</body></html>\n"
DOM_404 = b"<html><head><title>404</title></head><body><h1>404 Not Found</h1><hr>VWebServer</body></html>"
LIST_DOM = b"<html><head><title>List</title></head><body><ul><li>item built by script</li></ul></body></html>"
PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 8
PNG2 = b"\x89PNG\r\n\x1a\n" + bytes(range(255, -1, -1)) * 8
PDF_CUT = b"%PDF-1.4\n" + b"x" * 1000
SMALL_HTML = b"<p>hi</p>"


@pytest.fixture
def archive(tmp_path):
    """One crawl: a raw 404 and its evidence rendering (DOM + screenshot), a page rendered
    because its list is built by script (no raw body kept), an attachment cut short, and a
    tiny gzip page whose encoded Content-Length exceeds its decoded size."""
    from archive.db import open_db

    db = open_db(tmp_path / "archive.db")
    upsert_sites(db, [{"id": "r", "name": "R", "portal": json.dumps([LIST])}])
    writer = ArchiveWriter(db)
    crawl = start_crawl(db, "r")
    html = "text/html; charset=utf-8"
    writer.record_check(LinkCheck(
        site_id="r", crawl_id=crawl, url=PAGE, checked_at="2026-12-07T19:25:05Z", state="not_found",
        rule="test", status_code=404, body=RAW_404, content_type=html,
        headers={"content-length": str(len(RAW_404)), "content-type": html, "server": "VWebServer"}))
    writer.record_evidence(Evidence(
        site_id="r", crawl_id=crawl, url=PAGE, final_url=PAGE, fetched_at="2026-12-07T19:25:10Z",
        status_code=404, content_type=html, body=DOM_404, screenshot=PNG, reason="evidence: not_found"))
    writer.record_check(LinkCheck(
        site_id="r", crawl_id=crawl, url=LIST, checked_at="2026-12-07T19:25:07Z", state="ok", rule="ok",
        status_code=200, body=LIST_DOM, content_type=html, rendered=True,
        render_reason="auto: scripted-list", screenshot=PNG2,
        headers={"content-length": "400", "content-type": html, "cache-control": "no-cache"}))
    writer.record_check(LinkCheck(
        site_id="r", crawl_id=crawl, url=ATTACH, checked_at="2026-12-07T19:25:08Z",
        state="type_mismatch", rule="attach-truncated", status_code=200, body=PDF_CUT,
        content_type="application/pdf",
        headers={"content-length": "3165", "content-type": "application/pdf"}))
    writer.record_check(LinkCheck(
        site_id="r", crawl_id=crawl, url=SMALL, checked_at="2026-12-07T19:25:09Z", state="ok",
        rule="ok", status_code=200, body=SMALL_HTML, content_type="text/html",
        headers={"content-length": "29", "content-encoding": "gzip", "content-type": "text/html"}))
    writer.commit()
    yield db
    db.conn.close()


def _by_type(records: list[dict], rec_type: str, uri: str) -> list[dict]:
    return [r for r in records if r["type"] == rec_type and r["uri"] == uri]


def test_rendering_is_a_conversion_of_the_raw_capture(archive, tmp_path):
    out = tmp_path / "r.warc.gz"
    export_warc(archive, out)
    records = read_records(out)  # digests checked
    [raw] = _by_type(records, "response", PAGE)
    assert raw["payload"] == RAW_404 and raw["http"].get_statuscode() == "404"
    [rendered] = _by_type(records, "conversion", PAGE)
    assert rendered["payload"] == DOM_404 and rendered["http"] is None
    assert rendered["date"] == "2026-12-07T19:25:10Z"
    assert rendered["headers"].get_header("Content-Type") == "text/html; charset=utf-8"
    assert rendered["headers"].get_header("WARC-Refers-To") == raw["headers"].get_header("WARC-Record-ID")
    assert "evidence: not_found" in rendered["headers"].get_header("WARC-Xxgk-Rendered")
    # The page rendered by the crawl itself: its raw body was never kept, so nothing to refer to,
    # and no response pretends the server sent the DOM.
    [listed] = _by_type(records, "conversion", LIST)
    assert listed["payload"] == LIST_DOM and listed["headers"].get_header("WARC-Refers-To") is None
    assert not [r for r in records if r["uri"] == LIST and r["type"] in ("response", "request", "revisit")]


def test_screenshots_are_resource_records(archive, tmp_path):
    out = tmp_path / "r.warc.gz"
    export_warc(archive, out)
    records = read_records(out)
    for page, png, date in ((PAGE, PNG, "2026-12-07T19:25:10Z"), (LIST, PNG2, "2026-12-07T19:25:07Z")):
        [shot] = _by_type(records, "resource", SCREENSHOT_PREFIX + page)
        [rendered] = _by_type(records, "conversion", page)
        assert shot["payload"] == png and shot["date"] == date
        assert shot["headers"].get_header("Content-Type") == "image/png"
        assert shot["headers"].get_header("WARC-Payload-Digest") == payload_digest(png)
        assert shot["headers"].get_header("WARC-Concurrent-To") == rendered["headers"].get_header("WARC-Record-ID")


def test_truncated_body_is_marked(archive, tmp_path):
    out = tmp_path / "r.warc.gz"
    export_warc(archive, out)
    records = read_records(out)
    [cut] = _by_type(records, "response", ATTACH)
    assert cut["payload"] == PDF_CUT
    assert cut["headers"].get_header("WARC-Truncated") == "disconnect"
    assert cut["headers"].get_header("WARC-Xxgk-Announced-Length") == "3165"
    assert cut["http"].get_header("Content-Length") == str(len(PDF_CUT))  # what the record holds
    # A gzip Content-Length counts encoded bytes; a complete page says nothing.
    for url in (SMALL, PAGE):
        [whole] = _by_type(records, "response", url)
        assert whole["headers"].get_header("WARC-Truncated") is None


def test_wacz_index_pages_and_replay_serve_what_the_server_sent(archive, tmp_path):
    out = tmp_path / "r.wacz"
    export_wacz(archive, out)
    wacz = zipfile.ZipFile(out)
    lines = wacz.read("indexes/index.cdx").decode("utf-8").splitlines()
    indexed = [(json.loads(line.split(" ", 2)[2])) for line in lines]
    assert {f["url"] for f in indexed if f.get("mime") == "image/png"} == {
        SCREENSHOT_PREFIX + PAGE, SCREENSHOT_PREFIX + LIST}
    assert [f["digest"] for f in indexed if f["url"] == PAGE] == [payload_digest(RAW_404)]
    assert not [f for f in indexed if f["url"] == LIST]
    pages = [json.loads(line) for line in wacz.read("pages/pages.jsonl").decode().splitlines()[1:]]
    # Only raw 2xx/3xx HTML captures are pages: not the 404, not the renderings.
    assert [(p["url"], p["ts"]) for p in pages] == [(SMALL, "2026-12-07T19:25:09Z")]

    cdxj_indexer = pytest.importorskip("cdxj_indexer")
    warc_path = tmp_path / "data.warc.gz"
    warc_path.write_bytes(wacz.read("archive/data.warc.gz"))
    theirs = io.StringIO()
    cdxj_indexer.CDXJIndexer(output=theirs, inputs=[str(warc_path)]).process_all()
    assert sorted(theirs.getvalue().splitlines()) == lines

    python = Path(__file__).resolve().parent.parent / ".venv-pywb" / "bin" / "python"
    if not python.exists():
        pytest.skip("pywb's virtualenv .venv-pywb is missing: run `./run setup`")
    wacz.extractall(tmp_path / "wacz")
    config = tmp_path / "config.yaml"
    config.write_text("{}\n")
    # Asked for at the rendering's time, replay still serves the server's 404 page.
    page, shot = f"/xxgk/20261207192510id_/{PAGE}", f"/xxgk/20261207192510id_/{SCREENSHOT_PREFIX}{PAGE}"
    result = subprocess.run(
        [str(python), "-c", PYWB_REPLAY, str(config),
         str(tmp_path / "wacz" / "indexes" / "index.cdx"), str(tmp_path / "wacz" / "archive") + "/",
         json.dumps([page, shot])],
        capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    replayed = json.loads(result.stdout.strip().splitlines()[-1])
    assert replayed[page] == [404, hashlib.sha256(RAW_404).hexdigest()]
    assert replayed[shot] == [200, hashlib.sha256(PNG).hexdigest()]
