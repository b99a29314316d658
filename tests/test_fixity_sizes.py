"""Fixity against recorded sizes: ``blobs.size`` (uncompressed) and ``snapshots.size`` must hold."""

from __future__ import annotations

import json

import pytest

from archive.blobs import BlobError, load_blob
from archive.fixity import verify_blobs
from archive.store import ArchiveWriter, start_crawl, upsert_sites
from crawler.items import LinkCheck

URL = "http://s.cn/"
BODY = b"<html><body>" + "信息公开".encode() * 200 + b"</body></html>"  # compresses: stored zlib
RAW = bytes(range(256))  # does not compress: stored as-is


@pytest.fixture
def archive(db):
    upsert_sites(db, [{"id": "s", "name": "S", "portal": f'["{URL}"]'}])
    writer = ArchiveWriter(db)
    crawl = start_crawl(db, "s")
    for url, at, body, kw in ((URL, "2026-01-01T08:00:00Z", BODY, {}),
                              (URL + "raw.bin", "2026-01-01T08:00:01Z", RAW, {}),
                              # a 304 restored from the first capture: same blob
                              (URL, "2026-01-02T08:00:00Z", BODY, {"not_modified": True})):
        writer.record_check(LinkCheck(site_id="s", crawl_id=crawl, url=url, checked_at=at, state="ok",
                                      rule="test", status_code=200, body=body, **kw))
    writer.commit()
    assert verify_blobs(db).ok
    return db


def _sha(db, url: str) -> str:
    return db.execute("SELECT sha256 FROM snapshots WHERE url = ? ORDER BY id LIMIT 1", [url]).fetchone()[0]


@pytest.mark.parametrize("url", [URL, URL + "raw.bin"], ids=["zlib", "none"])
def test_blob_size_that_lies_is_corrupt(archive, url):
    sha = _sha(archive, url)
    archive.execute("UPDATE blobs SET size = size + 7 WHERE sha256 = ?", [sha])
    archive.conn.commit()
    with pytest.raises(BlobError, match="corrupt: .* bytes uncompressed, .* recorded"):
        load_blob(archive, sha)
    result = verify_blobs(archive)
    # one problem, the blob's: the snapshots' sizes are not compared with a size that lies
    assert (result.checked, result.missing, result.corrupt) == (2, 0, 1), result.problems
    assert result.problems[0]["sha256"] == sha and "recorded" in result.problems[0]["problem"]
    row = archive.execute("SELECT missing, corrupt, details FROM fixity_checks ORDER BY id DESC").fetchone()
    assert row[:2] == (0, 1) and json.loads(row[2]) == result.problems


def test_snapshot_size_that_lies_is_reported(archive, tmp_path, capsys):
    from xxgk.cli import main

    sha = _sha(archive, URL)
    first = archive.execute("SELECT MIN(id) FROM snapshots WHERE url = ?", [URL]).fetchone()[0]
    archive.execute("UPDATE snapshots SET size = size - 1 WHERE id = ?", [first])
    # a 304 row's size is not compared, nor a row whose blob row is gone (that is "missing")
    archive.execute("UPDATE snapshots SET size = 1 WHERE not_modified = 1")
    archive.conn.commit()
    assert load_blob(archive, sha) == BODY  # the blob itself is sound
    result = verify_blobs(archive)
    assert (result.checked, result.missing, result.corrupt) == (2, 0, 1), result.problems
    assert result.problems == [{"sha256": sha, "problem": f"snapshot {first} records size {len(BODY) - 1},"
                                                          f" its blob holds {len(BODY)} bytes"}]
    assert archive.execute("SELECT missing, corrupt FROM fixity_checks ORDER BY id DESC").fetchone() == (0, 1)

    assert main(["verify", "--db", str(tmp_path / "archive.db")]) == 1
    out = capsys.readouterr().out
    assert "0 missing, 1 corrupt" in out and f"snapshot {first} records size" in out


def test_snapshot_without_blob_is_missing_not_a_size_problem(archive):
    sha = _sha(archive, URL + "raw.bin")
    archive.execute("DELETE FROM blobs WHERE sha256 = ?", [sha])
    archive.execute("UPDATE snapshots SET size = 1 WHERE sha256 = ?", [sha])
    archive.conn.commit()
    result = verify_blobs(archive)
    assert (result.checked, result.missing, result.corrupt) == (1, 1, 0), result.problems
