"""A bare 304 (``status_code = 304``, ``not_modified = 0``: the crawler could not restore the
content it confirmed) is exported as the 304 the server sent, and nothing is a revisit of it."""

from __future__ import annotations

import hashlib
import io
import json
import subprocess
import zipfile
from pathlib import Path

import pytest
from warcio.archiveiterator import ArchiveIterator

from archive.store import ArchiveWriter, start_crawl, upsert_sites
from archive.wacz import export_wacz
from archive.warc import export_warc, payload_digest
from crawler.items import LinkCheck

PAGE = "http://xxgk.s.edu.cn/a.htm"
HTML = "<html><head><title>公开</title></head><body>信息公开</body></html>".encode()
EMPTY = payload_digest(b"")
EMPTY_SHA = hashlib.sha256(b"").hexdigest()


def _check(crawl: int, at: str, body: bytes, status: int = 200, **kw) -> LinkCheck:
    return LinkCheck(site_id="s", crawl_id=crawl, url=PAGE, checked_at=at, state="ok", rule="test",
                     status_code=status, body=body, content_type="text/html", **kw)


@pytest.fixture
def archive(db):
    """Day 1 the page; day 2 a bare 304 (its blob was lost); days 3 and 4 an empty 200 (same
    sha256 as the 304's empty body); day 5 the page again."""
    upsert_sites(db, [{"id": "s", "name": "S", "portal": json.dumps([PAGE])}])
    writer = ArchiveWriter(db)
    days = [("2026-01-01T08:00:00Z", HTML, 200, {"content-type": "text/html", "etag": '"e1"'}),
            ("2026-01-02T08:00:00Z", b"", 304, {"etag": '"e1"', "content-length": str(len(HTML))}),
            ("2026-01-03T08:00:00Z", b"", 200, {"content-type": "text/html"}),
            ("2026-01-04T08:00:00Z", b"", 200, {"content-type": "text/html"}),
            ("2026-01-05T08:00:00Z", HTML, 200, {"content-type": "text/html"})]
    for at, body, status, headers in days:
        writer.record_check(_check(start_crawl(db, "s"), at, body, status, headers=headers))
    writer.commit()
    assert db.execute("SELECT status_code, not_modified, sha256 FROM snapshots WHERE id = 2").fetchone() == \
        (304, 0, EMPTY_SHA)
    return db


def _records(data: bytes) -> list:
    out = []
    for record in ArchiveIterator(io.BytesIO(data), check_digests="raise"):
        if record.rec_type in ("response", "revisit"):
            out.append((record.rec_type, record.rec_headers, record.http_headers,
                        record.content_stream().read()))
    return out


def test_bare_304_is_a_304_response_without_payload(archive, tmp_path):
    out = tmp_path / "a.warc.gz"
    export_warc(archive, out)
    records = _records(out.read_bytes())
    assert [(kind, http.get_statuscode()) for kind, _, http, _ in records] == [
        ("response", "200"), ("response", "304"), ("response", "200"), ("response", "200"),
        ("revisit", "200")]
    kind, headers, http, payload = records[1]
    assert payload == b"" and http.get_header("Content-Length") == "0"
    assert headers.get_header("WARC-Truncated") is None  # its Content-Length is not a cut-short body's
    assert headers.get_header("WARC-Payload-Digest") == EMPTY
    # nothing refers to the 304, and no revisit stands for an empty payload (replay tools resolve
    # revisits by digest: an empty one would find the 304)
    ids_304 = headers.get_header("WARC-Record-ID")
    revisits = [h for kind, h, _, _ in records if kind == "revisit"]
    assert all(h.get_header("WARC-Refers-To") != ids_304 for h in revisits)
    assert all(h.get_header("WARC-Payload-Digest") != EMPTY for h in revisits)
    assert revisits[0].get_header("WARC-Refers-To") == records[0][1].get_header("WARC-Record-ID")

    # exported on its own, it is still the 304 (there is no capture it stands for)
    lone = tmp_path / "lone.warc.gz"
    export_warc(archive, lone, since="2026-01-02", until="2026-01-02")
    [(kind, _, http, payload)] = _records(lone.read_bytes())
    assert (kind, http.get_statuscode(), payload) == ("response", "304", b"")


def test_wacz_indexes_the_304_and_lists_no_page_for_it(archive, tmp_path):
    out = tmp_path / "a.wacz"
    export_wacz(archive, out)
    wacz = zipfile.ZipFile(out)
    entries = [json.loads(line.split(" ", 2)[2]) for line in wacz.read("indexes/index.cdx").decode().splitlines()]
    assert sorted((e["status"], e["mime"], e["digest"] == EMPTY) for e in entries) == [
        ("200", "text/html", False), ("200", "text/html", True), ("200", "text/html", True),
        ("200", "warc/revisit", False), ("304", "text/html", True)]
    pages = [json.loads(line) for line in wacz.read("pages/pages.jsonl").decode().splitlines()[1:]]
    assert "2026-01-02T08:00:00Z" not in {p["ts"] for p in pages} and len(pages) == 4

    cdxj_indexer = pytest.importorskip("cdxj_indexer")
    warc_path = tmp_path / "data.warc.gz"
    warc_path.write_bytes(wacz.read("archive/data.warc.gz"))
    theirs = io.StringIO()
    cdxj_indexer.CDXJIndexer(output=theirs, inputs=[str(warc_path)]).process_all()

    def facts(lines: list[str]) -> set[tuple]:
        return {(key, ts, f["offset"], f["length"], f.get("digest"), f.get("status"), f.get("mime"))
                for key, ts, f in ((k, t, json.loads(f)) for k, t, f in (line.split(" ", 2) for line in lines))}
    assert facts(theirs.getvalue().splitlines()) == facts(wacz.read("indexes/index.cdx").decode().splitlines())


PYWB_REPLAY = """
import hashlib, json, sys
from pywb.apps.frontendapp import FrontEndApp
from werkzeug.test import Client

config, index, archive_dir, paths = sys.argv[1], sys.argv[2], sys.argv[3], json.loads(sys.argv[4])
app = FrontEndApp(config_file=config, custom_config={"collections": {"xxgk": {
    "index": index, "archive_paths": archive_dir}}})
client = Client(app)
print(json.dumps({path: [client.get(path).status_code, hashlib.sha256(client.get(path).get_data()).hexdigest()]
                  for path in paths}))
"""


def test_pywb_replays_later_empty_captures_as_200(archive, tmp_path):
    python = Path(__file__).resolve().parent.parent / ".venv-pywb" / "bin" / "python"
    if not python.exists():
        pytest.skip("pywb's virtualenv .venv-pywb is missing: run `./run setup`")
    out = tmp_path / "a.wacz"
    export_wacz(archive, out)
    zipfile.ZipFile(out).extractall(tmp_path / "wacz")
    (tmp_path / "config.yaml").write_text("{}\n")
    cases = {f"/xxgk/20260101080000id_/{PAGE}": (200, HTML), f"/xxgk/20260102080000id_/{PAGE}": (304, b""),
             f"/xxgk/20260103080000id_/{PAGE}": (200, b""), f"/xxgk/20260104080000id_/{PAGE}": (200, b""),
             f"/xxgk/20260105080000id_/{PAGE}": (200, HTML)}
    result = subprocess.run(
        [str(python), "-c", PYWB_REPLAY, str(tmp_path / "config.yaml"),
         str(tmp_path / "wacz" / "indexes" / "index.cdx"), str(tmp_path / "wacz" / "archive") + "/",
         json.dumps(list(cases))], capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    replayed = json.loads(result.stdout.strip().splitlines()[-1])
    for path, (status, body) in cases.items():
        assert replayed[path] == [status, hashlib.sha256(body).hexdigest()], path
