"""Exports and fixity against damaged archives and hostile output paths: clear errors, no tracebacks."""

from __future__ import annotations

import argparse
import json
import os
import zipfile

import pytest
from warcio.archiveiterator import ArchiveIterator

from archive.blobs import BlobError, load_blob
from archive.export_cli import add_export_parser, run_export_command
from archive.fixity import verify_blobs
from archive.store import ArchiveWriter, start_crawl, upsert_sites
from archive.wacz import export_wacz
from archive.warc import OutputPathError, export_warc
from crawler.items import LinkCheck

URL = "http://s.cn/"
BODY = b"<html><body>" + "信息公开".encode() * 200 + b"</body></html>"  # compresses: stored zlib
RAW = bytes(range(256))  # does not compress: stored as-is


@pytest.fixture
def archive(db):
    """One site, two snapshots: a zlib-stored page and an uncompressed binary."""
    upsert_sites(db, [{"id": "s", "name": "S", "portal": f'["{URL}"]'}])
    writer = ArchiveWriter(db)
    crawl = start_crawl(db, "s")
    for url, at, body, ctype in ((URL, "2026-01-01T08:00:00Z", BODY, "text/html"),
                                 (URL + "raw.bin", "2026-01-01T08:00:01Z", RAW, "application/octet-stream")):
        writer.record_check(LinkCheck(site_id="s", crawl_id=crawl, url=url, checked_at=at, state="ok",
                                      rule="test", status_code=200, body=body, content_type=ctype))
    writer.commit()
    return db


def _sha(db, url: str) -> str:
    return db.execute("SELECT sha256 FROM snapshots WHERE url = ?", [url]).fetchone()[0]


def _others(tmp_path) -> list[str]:
    """Files in ``tmp_path`` besides the archive database (and its -wal/-shm)."""
    return sorted(p.name for p in tmp_path.iterdir() if not p.name.startswith("archive.db"))


def _export(db, tmp_path, *argv: str) -> int:
    parser = argparse.ArgumentParser(prog="xxgk")
    add_export_parser(parser.add_subparsers(dest="command"))
    return run_export_command(parser.parse_args(["export", *argv, "--db", str(tmp_path / "archive.db")]))


# -- blobs that are not BLOBs ------------------------------------------------------------------
@pytest.mark.parametrize("value", ["abc", 12, 1.5], ids=["text", "integer", "real"])
@pytest.mark.parametrize("url", [URL, URL + "raw.bin"], ids=["zlib", "none"])
def test_non_blob_content_is_a_blob_error(archive, url, value):
    sha = _sha(archive, url)
    archive.execute("UPDATE blobs SET content = ? WHERE sha256 = ?", [value, sha])
    archive.conn.commit()
    with pytest.raises(BlobError, match="corrupt: content is (TEXT|INTEGER|REAL), not a BLOB"):
        load_blob(archive, sha)


@pytest.mark.parametrize("edit, problem", [
    # one byte changed with SQL: "||" makes TEXT, here not UTF-8 (Python's sqlite3 cannot read it)
    ("substr(content, 1, 10) || X'FF00' || substr(content, 13)", "content is TEXT"),
    # bytes appended after the zlib stream: zlib.decompress ignored them, the hash still matched
    ("CAST(content || X'DEADBEEF' AS BLOB)", "bytes stored"),
    ("CAST(content || X'DEADBEEF' AS BLOB), stored_size = stored_size + 4", "followed by other bytes"),
])
def test_tampered_blobs_are_corrupt_not_crashes(archive, edit, problem):
    sha = _sha(archive, URL)
    archive.execute(f"UPDATE blobs SET content = {edit} WHERE sha256 = ?", [sha])
    archive.conn.commit()
    with pytest.raises(BlobError, match=problem):
        load_blob(archive, sha)
    result = verify_blobs(archive)
    assert (result.checked, result.corrupt) == (2, 1), result.problems


def test_verify_records_text_blob_as_corrupt(archive, tmp_path, capsys):
    from xxgk.cli import main

    sha = _sha(archive, URL)
    archive.execute("UPDATE blobs SET content = 'abc' WHERE sha256 = ?", [sha])
    archive.conn.commit()
    result = verify_blobs(archive)
    assert (result.checked, result.corrupt, result.missing) == (2, 1, 0)
    assert result.problems[0]["sha256"] == sha and "TEXT" in result.problems[0]["problem"]
    assert archive.execute("SELECT corrupt, missing FROM fixity_checks ORDER BY id DESC").fetchone() == (1, 0)

    assert main(["verify", "--db", str(tmp_path / "archive.db")]) == 1
    assert "0 missing, 1 corrupt" in capsys.readouterr().out
    assert archive.execute("SELECT COUNT(*) FROM fixity_checks").fetchone()[0] == 2


@pytest.mark.parametrize("fmt", ["warc", "wacz"])
def test_export_leaves_out_text_blob(archive, tmp_path, capsys, fmt):
    sha = _sha(archive, URL)
    archive.execute("UPDATE blobs SET content = 'abc' WHERE sha256 = ?", [sha])
    archive.conn.commit()
    out = tmp_path / f"out.{fmt}"
    assert _export(archive, tmp_path, fmt, "-o", str(out)) == 1
    captured = capsys.readouterr()
    assert f"wrote {out}" in captured.out
    snapshot_id = archive.execute("SELECT id FROM snapshots WHERE url = ?", [URL]).fetchone()[0]
    assert f"left out snapshot {snapshot_id}: blob {sha} is corrupt: content is TEXT" in captured.err
    assert "Traceback" not in captured.err
    if fmt == "wacz":
        warc = zipfile.ZipFile(out).open("archive/data.warc.gz")
    else:
        warc = open(out, "rb")  # noqa: SIM115 - closed below
    with warc:
        uris = [r.rec_headers.get_header("WARC-Target-URI") for r in ArchiveIterator(warc)
                if r.rec_type == "response"]
    assert uris == [URL + "raw.bin"]  # the readable snapshot is still exported


# -- output paths that must not be replaced ------------------------------------------------------
def _fifo(tmp_path):
    path = tmp_path / "fifo"
    os.mkfifo(path)
    return path


def _link_to_file(tmp_path):
    target = tmp_path / "target.txt"
    target.write_text("keep")
    (tmp_path / "link").symlink_to(target)
    return tmp_path / "link"


def _dangling_link(tmp_path):
    (tmp_path / "dangling").symlink_to(tmp_path / "nowhere")
    return tmp_path / "dangling"


def _directory(tmp_path):
    (tmp_path / "dir").mkdir()
    return tmp_path / "dir"


TARGETS = {"fifo": _fifo, "symlink": _link_to_file, "dangling-symlink": _dangling_link,
           "directory": _directory}


@pytest.mark.parametrize("kind", list(TARGETS))
@pytest.mark.parametrize("fmt", ["warc", "wacz"])
def test_export_refuses_non_regular_output(archive, tmp_path, capsys, fmt, kind):
    out = TARGETS[kind](tmp_path)
    before = os.lstat(out)
    assert _export(archive, tmp_path, fmt, "-o", str(out)) == 1
    captured = capsys.readouterr()
    assert "wrote" not in captured.out and "Traceback" not in captured.err
    assert captured.err.startswith(f"xxgk export: cannot write {out}: it is ")
    after = os.lstat(out)
    assert (after.st_ino, after.st_mode) == (before.st_ino, before.st_mode)  # left as it was
    if kind == "symlink":
        assert (tmp_path / "target.txt").read_text() == "keep"
    assert not list(tmp_path.glob(".*.part"))  # no temporary file left behind


@pytest.mark.parametrize("export", [export_warc, export_wacz], ids=["warc", "wacz"])
def test_export_function_refuses_symlink(archive, tmp_path, export):
    with pytest.raises(OutputPathError, match="symbolic link"):
        export(archive, _link_to_file(tmp_path))


@pytest.mark.parametrize("fmt", ["warc", "wacz"])
def test_export_replaces_regular_file(archive, tmp_path, capsys, fmt):
    out = tmp_path / f"out.{fmt}"
    out.write_bytes(b"old")
    assert _export(archive, tmp_path, fmt, "-o", str(out)) == 0
    assert out.read_bytes() != b"old" and not out.is_symlink()
    assert f"wrote {out}" in capsys.readouterr().out
    assert _others(tmp_path) == [out.name]


@pytest.mark.parametrize("export", [export_warc, export_wacz], ids=["warc", "wacz"])
def test_failed_export_keeps_old_file_and_cleans_up(archive, tmp_path, monkeypatch, export):
    import archive.warc as warc

    out = tmp_path / "out"
    out.write_bytes(b"old")

    def broken(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(warc._Exporter, "snapshot", broken)
    with pytest.raises(OSError, match="No space left"):
        export(archive, out)
    assert out.read_bytes() == b"old"
    assert _others(tmp_path) == ["out"]


# -- sizes that lie ------------------------------------------------------------------------------
@pytest.fixture
def archive_with_304(archive):
    """The archive above and a day-2 capture of the page restored from a 304 (the same blob)."""
    writer = ArchiveWriter(archive)
    writer.record_check(LinkCheck(site_id="s", crawl_id=start_crawl(archive, "s"), url=URL,
                                  checked_at="2026-01-02T08:00:00Z", state="ok", rule="test", status_code=200,
                                  body=BODY, not_modified=True))
    writer.commit()
    assert verify_blobs(archive).ok
    return archive


@pytest.mark.parametrize("url", [URL, URL + "raw.bin"], ids=["zlib", "none"])
def test_blob_size_that_lies_is_corrupt(archive_with_304, url):
    archive = archive_with_304
    sha = _sha(archive, url)
    archive.execute("UPDATE blobs SET size = size + 7 WHERE sha256 = ?", [sha])
    archive.conn.commit()
    with pytest.raises(BlobError, match="corrupt: .* bytes uncompressed, .* recorded"):
        load_blob(archive_with_304, sha)
    result = verify_blobs(archive_with_304)
    # one problem, the blob's: the snapshots' sizes are not compared with a size that lies
    assert (result.checked, result.missing, result.corrupt) == (2, 0, 1), result.problems
    assert result.problems[0]["sha256"] == sha and "recorded" in result.problems[0]["problem"]
    row = archive.execute("SELECT missing, corrupt, details FROM fixity_checks ORDER BY id DESC").fetchone()
    assert row[:2] == (0, 1) and json.loads(row[2]) == result.problems


def test_snapshot_size_that_lies_is_reported(archive_with_304, tmp_path, capsys):
    archive = archive_with_304
    from xxgk.cli import main

    sha = _sha(archive, URL)
    first = archive.execute("SELECT MIN(id) FROM snapshots WHERE url = ?", [URL]).fetchone()[0]
    archive.execute("UPDATE snapshots SET size = size - 1 WHERE id = ?", [first])
    # a 304 row's size is not compared, nor a row whose blob row is gone (that is "missing")
    archive.execute("UPDATE snapshots SET size = 1 WHERE not_modified = 1")
    archive.conn.commit()
    assert load_blob(archive_with_304, sha) == BODY  # the blob itself is sound
    result = verify_blobs(archive_with_304)
    assert (result.checked, result.missing, result.corrupt) == (2, 0, 1), result.problems
    assert result.problems == [{"sha256": sha, "problem": f"snapshot {first} records size {len(BODY) - 1},"
                                                          f" its blob holds {len(BODY)} bytes"}]
    assert archive.execute("SELECT missing, corrupt FROM fixity_checks ORDER BY id DESC").fetchone() == (0, 1)

    assert main(["verify", "--db", str(tmp_path / "archive.db")]) == 1
    out = capsys.readouterr().out
    assert "0 missing, 1 corrupt" in out and f"snapshot {first} records size" in out


def test_snapshot_without_blob_is_missing_not_a_size_problem(archive_with_304):
    archive = archive_with_304
    sha = _sha(archive, URL + "raw.bin")
    archive.execute("DELETE FROM blobs WHERE sha256 = ?", [sha])
    archive.execute("UPDATE snapshots SET size = 1 WHERE sha256 = ?", [sha])
    archive.conn.commit()
    result = verify_blobs(archive_with_304)
    assert (result.checked, result.missing, result.corrupt) == (1, 1, 0), result.problems
