"""Content-addressed body storage inside the archive database.

Bodies are stored once per sha256 of their *uncompressed* bytes, zlib-compressed, in the
``blobs`` table. Keeping them in SQLite (rather than a directory of files) means a blob and
the snapshot row that points to it commit in one transaction — a killed crawl never leaves a
row without its body — and the archive is one file to copy and verify.
"""

from __future__ import annotations

import hashlib
import sqlite3
import zlib

from sqlite_utils import Database

from archive.db import utcnow

#: Bodies that do not shrink by at least this ratio are stored uncompressed.
MIN_COMPRESSION_GAIN = 0.95


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def store_blob(db: Database | sqlite3.Connection | sqlite3.Cursor, data: bytes) -> str:
    """Store ``data`` (once) and return its sha256. Storing the same bytes again costs a check
    of the stored copy: one that went corrupt is replaced by ``data`` (its ``created_at`` kept),
    so downloading a page again repairs its blob.

    ``db`` is anything with ``execute``: the archive writer passes its own cursor.
    """
    digest = sha256_hex(data)
    row = db.execute(f"SELECT {BLOB_READ_COLUMNS} FROM blobs WHERE sha256 = ?", [digest]).fetchone()
    if row is not None:
        try:
            blob_bytes(digest, *row)
            return digest
        except BlobError:
            pass  # replaced below
    packed = zlib.compress(data, 6)
    if len(packed) < len(data) * MIN_COMPRESSION_GAIN:
        content, compression = packed, "zlib"
    else:
        content, compression = data, "none"
    if row is not None:
        db.execute("UPDATE blobs SET size = ?, stored_size = ?, compression = ?, content = ? WHERE sha256 = ?",
                   [len(data), len(content), compression, content, digest])
        return digest
    db.execute(
        "INSERT OR IGNORE INTO blobs (sha256, size, stored_size, compression, content, created_at)"
        " VALUES (?, ?, ?, ?, ?, ?)",
        [digest, len(data), len(content), compression, content, utcnow()],
    )
    return digest


class BlobError(Exception):
    """A blob is missing, is not stored as bytes, or its bytes no longer hash to its name."""


#: The columns :func:`blob_bytes` takes, read so that no stored value can fail the read itself:
#: an edited row may hold TEXT that is not UTF-8 (``content || X'00'`` is TEXT), which
#: Python's sqlite3 cannot decode; CAST hands over its bytes and ``typeof`` tells what it was.
#: ``size`` is the recorded uncompressed size, checked too (snapshots and exports rely on it).
BLOB_READ_COLUMNS = "compression, typeof(content), CAST(content AS BLOB), stored_size, size"


def load_blob(db: Database, sha256: str) -> bytes:
    """Return the original bytes of a blob, checking they still hash to ``sha256``."""
    row = db.execute(f"SELECT {BLOB_READ_COLUMNS} FROM blobs WHERE sha256 = ?", [sha256]).fetchone()
    if row is None:
        raise BlobError(f"blob {sha256} is missing")
    return blob_bytes(sha256, *row)


def blob_bytes(sha256: str, compression: str | None, kind: str, content: bytes | None,
               stored_size: int | None = None, size: int | None = None) -> bytes:
    """The original bytes of a ``blobs`` row read with :data:`BLOB_READ_COLUMNS`, checked
    against ``sha256``, the stored size and the uncompressed size (:class:`BlobError` otherwise)."""
    if kind != "blob" or content is None:
        # SQLite columns are not typed: a row edited by hand can hold TEXT, a number or NULL
        raise BlobError(f"blob {sha256} is corrupt: content is {kind.upper()}, not a BLOB")
    if stored_size is not None and len(content) != stored_size:
        raise BlobError(f"blob {sha256} is corrupt: {len(content)} bytes stored, {stored_size} recorded")
    try:
        if compression == "zlib":
            inflater = zlib.decompressobj()
            data = inflater.decompress(content)
            if not inflater.eof or inflater.unused_data:  # cut short, or bytes after the stream
                raise BlobError(f"blob {sha256} is corrupt: the zlib stream is cut short or followed "
                                "by other bytes")
        else:
            data = bytes(content)
    except zlib.error as exc:
        raise BlobError(f"blob {sha256} does not decompress: {exc}") from exc
    if sha256_hex(data) != sha256:
        raise BlobError(f"blob {sha256} is corrupt: content hashes to {sha256_hex(data)}")
    if size is not None and len(data) != size:
        raise BlobError(f"blob {sha256} is corrupt: {len(data)} bytes uncompressed, {size} recorded")
    return data
