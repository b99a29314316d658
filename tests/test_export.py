"""WARC and WACZ export: valid records, exact bodies, revisits, CDXJ lookups, pywb replay."""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import zipfile
from pathlib import Path

import pytest
from warcio.archiveiterator import ArchiveIterator

from archive.blobs import load_blob
from archive.export_cli import add_export_parser, run_export_command
from archive.store import ArchiveWriter, finish_crawl, start_crawl, upsert_sites
from archive.wacz import export_wacz
from archive.warc import export_warc, payload_digest, surt_key
from crawler.items import LinkCheck

HOME = "http://xxgk.s.edu.cn/"
REPORT = "http://xxgk.s.edu.cn/upload/2021%E5%B9%B4%E5%BA%A6%E6%8A%A5%E5%91%8A.pdf"
MOVED = "http://xxgk.s.edu.cn/old.htm"
MOVED_TO = "https://xxgk.s.edu.cn/new/index.htm"
HOME_HTML = ('<html><head><meta charset="gbk"><title>信息公开网</title></head>'
             '<body><p>学校信息公开</p><a href="/upload/report.pdf">年度报告</a></body></html>').encode("gbk")
PDF = b"%PDF-1.4\n" + bytes(range(256)) * 20 + b"\n%%EOF\n"


def _check(crawl: int, url: str, at: str, body: bytes | None, **kw) -> LinkCheck:
    return LinkCheck(site_id="s", crawl_id=crawl, url=url, checked_at=at, state="ok", rule="test",
                     status_code=kw.pop("status", 200), body=body, **kw)


@pytest.fixture
def archive(tmp_path):
    """Two crawls: a GBK page (gzip on the wire), a PDF, a redirect; then a same-bytes
    capture, a 304 and a changed page."""
    from archive.db import open_db

    db = open_db(tmp_path / "archive.db")
    upsert_sites(db, [{"id": "s", "name": "S", "portal": json.dumps([HOME])},
                      {"id": "other", "name": "O", "portal": '["http://o.cn/"]'}])
    writer = ArchiveWriter(db)
    html_headers = {"content-type": "text/html; charset=gbk", "content-encoding": "gzip",
                    "content-length": "99", "transfer-encoding": "chunked", "server": "nginx",
                    "etag": '"abc"'}
    c1 = start_crawl(db, "s")
    writer.record_check(_check(c1, HOME, "2026-01-01T08:00:00Z", HOME_HTML, headers=html_headers,
                               content_type="text/html; charset=gbk", encoding="gb18030",
                               title="信息公开网"))
    writer.record_check(_check(c1, REPORT, "2026-01-01T08:00:05Z", PDF, content_type="application/pdf",
                               headers={"content-type": "application/pdf",
                                        "content-disposition": 'attachment; filename="年度报告.pdf"'
                                        .encode().decode("latin-1")},
                               filename="年度报告.pdf"))
    writer.record_check(_check(c1, MOVED, "2026-01-01T08:00:09Z", b"<html><body>moved here</body></html>",
                               final_url=MOVED_TO, redirect_chain=[MOVED], content_type="text/html",
                               headers={"content-type": "text/html"}))
    writer.commit()
    finish_crawl(db, c1, "finished")
    c2 = start_crawl(db, "s")
    # same bytes again, a 304 for the report, then the page changes
    writer.record_check(_check(c2, HOME, "2026-01-02T08:00:00Z", HOME_HTML, headers=html_headers,
                               content_type="text/html; charset=gbk", encoding="gb18030",
                               title="信息公开网"))
    sha_pdf = hashlib.sha256(PDF).hexdigest()
    writer.record_check(_check(c2, REPORT, "2026-01-02T08:00:05Z", b"", status=304, not_modified=True,
                               previous_sha256=sha_pdf, content_type="application/pdf",
                               headers={"etag": '"pdf1"', "date": "Fri, 02 Jan 2026 08:00:05 GMT"}))
    writer.record_check(_check(c2, HOME, "2026-01-02T09:00:00Z",
                               HOME_HTML.replace("学校".encode("gbk"), "本校".encode("gbk")),
                               headers=html_headers, content_type="text/html; charset=gbk",
                               encoding="gb18030", title="信息公开网"))
    c3 = start_crawl(db, "other")
    writer.record_check(LinkCheck(site_id="other", crawl_id=c3, url="http://o.cn/", state="ok",
                                  rule="test", checked_at="2026-01-02T10:00:00Z", status_code=200,
                                  body=b"<html>other</html>", content_type="text/html"))
    writer.commit()
    yield db
    db.conn.close()


def read_records(path) -> list[dict]:
    """Every record, read back with warcio, digests checked ('raise' on mismatch)."""
    records = []
    with open(path, "rb") as fh:
        for record in ArchiveIterator(fh, check_digests="raise"):
            records.append({
                "type": record.rec_type, "uri": record.rec_headers.get_header("WARC-Target-URI"),
                "date": record.rec_headers.get_header("WARC-Date"), "headers": record.rec_headers,
                "http": record.http_headers, "payload": record.content_stream().read(),
            })
    return records


def test_warc_records_are_valid_and_bodies_exact(archive, tmp_path):
    out = tmp_path / "s.warc.gz"
    count = export_warc(archive, out, site_id="s")
    records = read_records(out)
    assert count == len(records)
    # warcinfo, then (request, response|revisit) per snapshot, + one reconstructed redirect
    assert [r["type"] for r in records] == [
        "warcinfo", "request", "response", "request", "response", "request", "response", "response",
        "request", "revisit", "request", "revisit", "request", "response"]
    assert records[0]["headers"].protocol == "WARC/1.1"

    home = records[2]
    assert home["uri"] == HOME and home["date"] == "2026-01-01T08:00:00Z"
    assert home["payload"] == HOME_HTML == load_blob(archive, hashlib.sha256(HOME_HTML).hexdigest())
    assert home["http"].get_statuscode() == "200"
    assert home["http"].get_header("Content-Length") == str(len(HOME_HTML))
    assert home["http"].get_header("Content-Encoding") is None
    assert home["http"].get_header("Transfer-Encoding") is None
    assert home["http"].get_header("Server") == "nginx"
    assert home["headers"].get_header("WARC-Payload-Digest") == payload_digest(HOME_HTML)
    request = records[1]
    assert request["headers"].get_header("WARC-Concurrent-To") == home["headers"].get_header("WARC-Record-ID")
    assert request["http"].protocol == "GET" and request["http"].get_header("Host") == "xxgk.s.edu.cn"

    report = records[4]
    assert report["uri"] == REPORT and report["payload"] == PDF
    assert "filename*=UTF-8''" in report["http"].get_header("Content-Disposition")

    moved, redirect = records[6], records[7]
    assert moved["uri"] == MOVED_TO
    assert redirect["uri"] == MOVED and redirect["http"].get_statuscode() == "302"
    assert redirect["http"].get_header("Location") == MOVED_TO
    assert redirect["headers"].get_header("WARC-Xxgk-Reconstructed")

    same, not_modified = records[9], records[11]
    for revisit, original in ((same, home), (not_modified, report)):
        assert revisit["headers"].get_header("WARC-Profile").endswith("/revisit/identical-payload-digest")
        assert revisit["headers"].get_header("WARC-Refers-To-Target-URI") == original["uri"]
        assert revisit["headers"].get_header("WARC-Refers-To-Date") == original["date"]
        assert revisit["headers"].get_header("WARC-Refers-To") == original["headers"].get_header("WARC-Record-ID")
        assert revisit["headers"].get_header("WARC-Payload-Digest") == \
            original["headers"].get_header("WARC-Payload-Digest")
        assert revisit["payload"] == b""
    assert not_modified["http"].get_statuscode() == "200"  # replays as the content it confirmed
    # The 304 capture's own headers (WARC 1.1 6.7), not a copy of the confirmed capture's.
    assert not_modified["http"].get_header("Date") == "Fri, 02 Jan 2026 08:00:05 GMT"
    assert not_modified["http"].get_header("Etag") == '"pdf1"'
    assert not_modified["http"].get_header("Content-Type") == "application/pdf"
    assert not_modified["http"].get_header("Content-Length") == str(len(PDF))
    assert not_modified["headers"].get_header("WARC-Xxgk-Not-Modified")
    assert same["headers"].get_header("WARC-Xxgk-Not-Modified") is None
    assert records[13]["payload"] != HOME_HTML and records[13]["date"] == "2026-01-02T09:00:00Z"


def test_warcio_check_and_filters(archive, tmp_path, capsys):
    from warcio.cli import main as warcio_main

    out = tmp_path / "all.warc.gz"
    export_warc(archive, out)
    with pytest.raises(SystemExit) as exit_info:
        warcio_main(["check", str(out)])
    assert exit_info.value.code == 0
    assert any(r["uri"] == "http://o.cn/" for r in read_records(out))

    day1 = tmp_path / "day1.warc.gz"
    assert export_warc(archive, day1, site_id="s", until="2026-01-01") == 8
    later = tmp_path / "later.warc.gz"
    export_warc(archive, later, site_id="s", since="2026-01-02T08:30:00Z")
    uris = [(r["type"], r["uri"]) for r in read_records(later)]
    assert uris == [("warcinfo", None), ("request", HOME), ("response", HOME)]
    # A 304 exported without the capture it confirms is written as a full response.
    lone = tmp_path / "lone.warc.gz"
    export_warc(archive, lone, site_id="s", since="2026-01-02T08:00:05Z", until="2026-01-02T08:00:05Z")
    records = read_records(lone)
    assert records[2]["type"] == "response" and records[2]["payload"] == PDF
    assert records[2]["http"].get_statuscode() == "200"


def _wacz(archive, tmp_path) -> tuple[zipfile.ZipFile, list[str]]:
    out = tmp_path / "s.wacz"
    export_wacz(archive, out, site_id="s")
    wacz = zipfile.ZipFile(out)
    lines = wacz.read("indexes/index.cdx").decode("utf-8").splitlines()
    return wacz, lines


def test_wacz_layout_and_datapackage(archive, tmp_path):
    wacz, lines = _wacz(archive, tmp_path)
    names = set(wacz.namelist())
    assert names == {"archive/data.warc.gz", "indexes/index.cdx", "pages/pages.jsonl",
                     "datapackage.json", "datapackage-digest.json"}
    assert wacz.getinfo("archive/data.warc.gz").compress_type == zipfile.ZIP_STORED
    package = json.loads(wacz.read("datapackage.json"))
    assert package["profile"] == "data-package" and package["wacz_version"] == "1.1.1"
    assert package["created"] and package["software"].startswith("xxgk-archive")
    for resource in package["resources"]:
        data = wacz.read(resource["path"])
        assert resource["hash"] == "sha256:" + hashlib.sha256(data).hexdigest()
        assert resource["bytes"] == len(data)
    digest = json.loads(wacz.read("datapackage-digest.json"))
    assert digest == {"path": "datapackage.json",
                      "hash": "sha256:" + hashlib.sha256(wacz.read("datapackage.json")).hexdigest()}
    pages = [json.loads(line) for line in wacz.read("pages/pages.jsonl").decode().splitlines()]
    assert pages[0]["format"] == "json-pages-1.0"
    assert {(p["url"], p["ts"]) for p in pages[1:]} == {
        (HOME, "2026-01-01T08:00:00Z"), (MOVED_TO, "2026-01-01T08:00:09Z"),
        (HOME, "2026-01-02T08:00:00Z"), (HOME, "2026-01-02T09:00:00Z")}
    assert pages[1]["title"] == "信息公开网"

    assert lines == sorted(lines)
    key, timestamp, fields = lines[0].split(" ", 2)
    fields = json.loads(fields)
    assert set(fields) == {"url", "mime", "status", "digest", "length", "offset", "filename"}
    assert all(line.split(" ", 1)[0] == surt_key(json.loads(line.split(" ", 2)[2])["url"]) for line in lines)
    assert surt_key(HOME) == "cn,edu,s,xxgk)/"
    assert len(lines) == 7  # 6 snapshots (responses/revisits) + 1 reconstructed redirect


def test_replay_by_cdxj_lookup_is_byte_identical(archive, tmp_path):
    """Look a URL up in the WACZ's CDXJ and read the record at its offset."""
    wacz, lines = _wacz(archive, tmp_path)
    warc = wacz.read("archive/data.warc.gz")
    entries = [(line.split(" ", 2)) for line in lines]
    for url, body in ((HOME, HOME_HTML), (REPORT, PDF)):
        key = surt_key(url)
        key_, timestamp, fields = next(e for e in entries if e[0] == key and json.loads(e[2])["mime"] != "warc/revisit")
        fields = json.loads(fields)
        offset, length = int(fields["offset"]), int(fields["length"])
        record = next(iter(ArchiveIterator(io.BytesIO(warc[offset:offset + length]))))
        assert record.rec_headers.get_header("WARC-Target-URI") == url
        assert timestamp == record.rec_headers.get_header("WARC-Date").replace("-", "").replace(
            ":", "").replace("T", "").rstrip("Z")
        assert record.content_stream().read() == body
        assert fields["digest"] == payload_digest(body)


def test_cdxj_matches_cdxj_indexer(archive, tmp_path):
    cdxj_indexer = pytest.importorskip("cdxj_indexer")
    wacz, lines = _wacz(archive, tmp_path)
    warc_path = tmp_path / "data.warc.gz"
    warc_path.write_bytes(wacz.read("archive/data.warc.gz"))
    out = io.StringIO()
    cdxj_indexer.CDXJIndexer(output=out, inputs=[str(warc_path)]).process_all()
    theirs = {(k, t, f["url"], f["offset"], f["length"], f.get("digest"), f.get("status"),
             f.get("mime"))
              for k, t, f in ((k, t, json.loads(f)) for k, t, f in
                              (line.split(" ", 2) for line in out.getvalue().splitlines()))}
    ours = {(k, t, f["url"], f["offset"], f["length"], f.get("digest"), f.get("status"),
             f.get("mime"))
            for k, t, f in ((k, t, json.loads(f)) for k, t, f in (line.split(" ", 2) for line in lines))}
    assert ours == theirs


PYWB_REPLAY = """
import hashlib, json, sys
from pywb.apps.frontendapp import FrontEndApp  # gevent-patches the process: keep it out of pytest's
from werkzeug.test import Client

config, index, archive_dir, paths = sys.argv[1], sys.argv[2], sys.argv[3], json.loads(sys.argv[4])
app = FrontEndApp(config_file=config, custom_config={"collections": {"xxgk": {
    "index": index, "archive_paths": archive_dir}}})
client = Client(app)
out = {}
for path in paths:
    response = client.get(path)
    out[path] = [response.status_code, hashlib.sha256(response.get_data()).hexdigest()]
print(json.dumps(out))
"""


def test_pywb_replays_captures_byte_identical(archive, tmp_path):
    """Replay the WACZ's WARC and CDXJ with pywb (in a subprocess: pywb monkey-patches with gevent)."""
    import subprocess

    # pywb lives in its own virtualenv (./run setup makes it): its pinned redis client
    # conflicts with scrapy-redis in the project's.
    python = Path(__file__).resolve().parent.parent / ".venv-pywb" / "bin" / "python"
    if not python.exists():
        pytest.skip("pywb's virtualenv .venv-pywb is missing: run `./run setup`")
    wacz, _ = _wacz(archive, tmp_path)
    wacz.extractall(tmp_path / "wacz")
    config = tmp_path / "config.yaml"
    config.write_text("{}\n")
    cases = {f"/xxgk/20260101080000id_/{HOME}": HOME_HTML, f"/xxgk/20260101080005id_/{REPORT}": PDF,
             f"/xxgk/20260102080000id_/{HOME}": HOME_HTML,   # a revisit (same bytes)
             f"/xxgk/20260102080005id_/{REPORT}": PDF}       # a revisit (304)
    redirect = f"/xxgk/20260101080009id_/{MOVED}"
    result = subprocess.run(
        [str(python), "-c", PYWB_REPLAY, str(config),
         str(tmp_path / "wacz" / "indexes" / "index.cdx"), str(tmp_path / "wacz" / "archive") + "/",
         json.dumps([*cases, redirect])],
        capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    replayed = json.loads(result.stdout.strip().splitlines()[-1])
    for path, body in cases.items():
        assert replayed[path] == [200, hashlib.sha256(body).hexdigest()], path
    assert replayed[redirect][0] == 302


def test_export_cli(archive, tmp_path, capsys):
    parser = argparse.ArgumentParser(prog="xxgk")
    add_export_parser(parser.add_subparsers(dest="command"))
    db_path = tmp_path / "archive.db"
    out = tmp_path / "cli.wacz"
    args = parser.parse_args(["export", "wacz", "--site", "s", "--since", "2026-01-01",
                              "-o", str(out), "--db", str(db_path)])
    assert run_export_command(args) == 0
    assert zipfile.is_zipfile(out)
    assert "WARC records" in capsys.readouterr().out
    args = parser.parse_args(["export", "warc", "--site", "s", "--until", "yesterday",
                              "-o", str(tmp_path / "x.warc.gz"), "--db", str(db_path)])
    assert run_export_command(args) == 2
    args = parser.parse_args(["export", "warc", "-o", str(tmp_path / "x.warc.gz"),
                              "--db", str(tmp_path / "missing.db")])
    assert run_export_command(args) == 3


SURT_CASES = {
    "http://www.example.com/": "com,example)/",
    "https://XXGK.s.edu.cn:443/Info/1012/3456.htm?b=2&a=1#frag": "cn,edu,s,xxgk)/info/1012/3456.htm?a=1&b=2",
    "http://xxgk.s.edu.cn:8080/list/": "cn,edu,s,xxgk:8080)/list",
    "http://a.cn/信息 公开.pdf": "cn,a)/%e4%bf%a1%e6%81%af%20%e5%85%ac%e5%bc%80.pdf",
    "http://10.0.0.1/x?e=": "1,0,0,10)/x?e=",
}


def test_surt_fallback_matches_the_surt_package(monkeypatch):
    """Without the ``surt`` package (it comes with pywb/cdxj-indexer) keys are computed the same way."""
    import sys

    monkeypatch.setitem(sys.modules, "surt", None)
    fallback = {url: surt_key(url) for url in SURT_CASES}
    assert fallback == SURT_CASES
    monkeypatch.undo()
    surt = pytest.importorskip("surt")
    assert {url: surt.surt(url) for url in SURT_CASES} == SURT_CASES


def test_a_warc_export_keeps_no_replay_index_in_memory(archive, tmp_path):
    """The replay index and the page list are a WACZ's (~0.8 KB a snapshot held for the
    whole export): a WARC writes the same records without collecting them."""
    import io

    from archive.warc import write_warc

    full = write_warc(archive, io.BytesIO(), site_id="s")
    plain = write_warc(archive, io.BytesIO(), site_id="s", index=False)
    assert full.index and full.pages
    assert (plain.index, plain.pages) == ([], [])
    assert (plain.records, plain.snapshots, plain.skipped) == (full.records, full.snapshots, full.skipped)
