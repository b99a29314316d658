"""Export snapshots as a WARC 1.1 file (gzip per record), for Wayback tools and other archives.

Layout of an export:

* one ``warcinfo`` record describing the export;
* per snapshot, a reconstructed ``request`` record (``GET``, we did not store request headers)
  and a ``response`` record: ``HTTP/1.1`` status line, the archived response headers and the
  exact body bytes from the blob. We store *decoded* bodies, so ``Content-Encoding`` and
  ``Transfer-Encoding`` are dropped and ``Content-Length`` is the body's real length;
* a snapshot whose bytes equal an earlier exported capture of the same URL (same sha256, or a
  ``304 Not Modified``, ``not_modified = 1``) becomes a ``revisit`` record, profile
  identical-payload-digest, pointing at the earlier record. An empty body is never revisited
  (nothing to save, and replay tools resolve revisits by payload digest: an empty one would
  match any empty record of the URL, a 304 among them);
* a "bare" 304 (``status_code = 304``, ``not_modified = 0``: the crawler could not restore the
  content it confirmed) is exported as what the server sent, a ``304`` response without payload;
* when the fetch was redirected (``final_url`` differs from ``url``) the response is filed under
  ``final_url`` and a zero-length ``302`` response for ``url`` points to it. That record is
  reconstructed (the redirect's own status and headers were not archived) and says so in a
  ``WARC-Xxgk-Reconstructed`` header;
* a body shorter than the ``Content-Length`` the server announced (the connection closed early)
  is a ``response`` with ``WARC-Truncated: disconnect``;
* a browser-rendered snapshot (``rendered = 1``) holds Chromium's DOM, not what the server sent,
  so it is a ``conversion`` record (Content-Type of the rendered HTML, no HTTP headers) whose
  ``WARC-Refers-To`` is the record of the same crawl's raw capture of the URL, when exported.
  Conversion records are not in the CDXJ (cdxj-indexer leaves them out too) nor in pages, so
  replay always serves what the server sent;
* a snapshot's full-page screenshot is a ``resource`` record (``image/png``) for
  ``urn:fullPage:<page URL>`` (Browsertrix's convention: it can never shadow the page itself),
  ``WARC-Concurrent-To`` the rendering it was taken with.

``WARC-Date`` is the snapshot's ``fetched_at``; ``WARC-Payload-Digest`` is the sha1/base32
digest warcio computes. The ``WARC-Xxgk-Snapshot-ID`` header names the source row.
"""

from __future__ import annotations

import base64
import contextlib
import errno
import hashlib
import json
import os
import re
import secrets
import stat
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http import HTTPStatus
from io import BytesIO
from pathlib import Path
from typing import BinaryIO
from urllib.parse import quote, unquote, urlsplit

from sqlite_utils import Database
from warcio.statusandheaders import StatusAndHeaders, StatusAndHeadersParser
from warcio.warcwriter import WARCWriter

from archive.blobs import BlobError, load_blob

#: Called with (snapshot id, reason) for a snapshot left out of an export (missing/corrupt blob).
SkipCallback = Callable[[int, str], None]

DROP_HEADERS = frozenset({"content-encoding", "transfer-encoding", "content-length"})
REQUEST_USER_AGENT = "xxgk-archive (reconstructed request)"
WARC_VERSION = "1.1"
#: Target-URI prefix of screenshot records (Browsertrix's ``urn:<kind>:<page url>``).
SCREENSHOT_PREFIX = "urn:fullPage:"


def software_version() -> str:
    """``xxgk-archive X.Y.Z`` for warcinfo and datapackage records."""
    try:
        from importlib.metadata import version

        return f"xxgk-archive {version('xxgk-archive')}"
    except Exception:  # not installed: running from a checkout
        return "xxgk-archive"


# -- filters ---------------------------------------------------------------------------------
def normalize_bound(value: str | None, *, end: bool) -> str | None:
    """A ``--since``/``--until`` value as an archive timestamp; a bare date covers its whole day."""
    if not value:
        return None
    value = value.strip()
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
        return value + ("T23:59:59Z" if end else "T00:00:00Z")
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as exc:
        raise ValueError(f"not a date or ISO-8601 time: {value!r}") from exc
    if parsed.tzinfo is not None:
        parsed = parsed.astimezone(UTC)
    return parsed.strftime("%Y-%m-%dT%H:%M:%SZ")


def snapshot_rows(db: Database, *, site_id: str | None = None, since: str | None = None,
                  until: str | None = None) -> Iterator[dict]:
    """Snapshots with a body, oldest first, within the filters."""
    where, params = ["sha256 IS NOT NULL"], []
    if site_id:
        where.append("site_id = ?")
        params.append(site_id)
    if since:
        where.append("fetched_at >= ?")
        params.append(normalize_bound(since, end=False))
    if until:
        where.append("fetched_at <= ?")
        params.append(normalize_bound(until, end=True))
    cursor = db.execute(
        "SELECT id, site_id, url, final_url, fetched_at, status_code, content_type, headers, sha256,"
        " size, title, not_modified, crawl_id, rendered, render_reason, screenshot_sha256, truncated"
        " FROM snapshots WHERE " + " AND ".join(where)
        + " ORDER BY fetched_at, id", params)
    columns = [d[0] for d in cursor.description]
    for row in cursor:
        yield dict(zip(columns, row, strict=True))


# -- HTTP reconstruction -----------------------------------------------------------------------
def warc_date(fetched_at: str) -> str:
    """The archive's ISO time as a WARC-Date (UTC, ``Z``)."""
    try:
        parsed = datetime.fromisoformat(fetched_at.replace("Z", "+00:00"))
    except ValueError:
        return fetched_at
    if parsed.tzinfo is not None:
        parsed = parsed.astimezone(UTC)
    if parsed.microsecond:
        return parsed.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return parsed.strftime("%Y-%m-%dT%H:%M:%SZ")


def _header_name(name: str) -> str:
    return "-".join(part[:1].upper() + part[1:] for part in name.split("-"))


def _header_value(value: str) -> str:
    """Header values were stored decoded as latin-1: recover UTF-8/GBK text where that is what it was."""
    value = " ".join(str(value).replace("\r", " ").replace("\n", " ").split())
    if value.isascii():
        return value
    try:
        raw = value.encode("latin-1")
    except UnicodeEncodeError:
        return value
    for encoding in ("utf-8", "gb18030"):
        try:
            return raw.decode(encoding)
        except UnicodeDecodeError:
            continue
    return value


def http_response_headers(status: int | None, headers_json: str | None, body_length: int,
                          content_type: str | None = None) -> StatusAndHeaders:
    """Status line and archived headers, fixed for the decoded body we hold."""
    try:
        headers = json.loads(headers_json) if headers_json else {}
    except json.JSONDecodeError:
        headers = {}
    pairs: list[tuple[str, str]] = []
    for name, value in (headers or {}).items():
        if name.lower() in DROP_HEADERS:
            continue
        pairs.append((_header_name(name), _header_value(value)))
    if content_type and not any(name.lower() == "content-type" for name, _ in pairs):
        pairs.append(("Content-Type", content_type))
    pairs.append(("Content-Length", str(body_length)))
    code = status or 200
    try:
        phrase = HTTPStatus(code).phrase
    except ValueError:
        phrase = "Unknown"
    return StatusAndHeaders(f"{code} {phrase}", pairs, protocol="HTTP/1.1")


def announced_length(headers_json: str | None) -> int | None:
    """The ``Content-Length`` a capture's archived headers announce for the body we hold.

    None when absent or not comparable: with a ``Content-Encoding`` it counted encoded bytes.
    """
    try:
        headers = json.loads(headers_json) if headers_json else {}
    except json.JSONDecodeError:
        return None
    if not isinstance(headers, dict):
        return None
    lowered = {str(name).lower(): str(value).strip() for name, value in headers.items()}
    if lowered.get("content-encoding", "identity").lower() not in ("", "identity"):
        return None
    try:
        return int(lowered["content-length"])
    except (KeyError, ValueError):
        return None


def http_request_headers(url: str) -> StatusAndHeaders:
    parts = urlsplit(url)
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return StatusAndHeaders(f"GET {path} HTTP/1.1",
                            [("Host", parts.netloc), ("User-Agent", REQUEST_USER_AGENT),
                             ("Accept", "*/*")],
                            protocol="", is_http_request=True)


def payload_digest(data: bytes) -> str:
    """``sha1:BASE32``, the form warcio writes in WARC-Payload-Digest."""
    return "sha1:" + base64.b32encode(hashlib.sha1(data).digest()).decode("ascii")


# -- URL keys --------------------------------------------------------------------------------
def surt_key(url: str) -> str:
    """SURT sort key (``cn,edu,example)/path?a=1``) as pywb/cdxj-indexer compute it.

    Uses the ``surt`` package when it is installed; otherwise a close equivalent of its
    defaults (lower case, ``www.`` and default ports stripped, query sorted, fragment dropped).
    """
    try:
        import surt  # type: ignore[import-not-found]

        return surt.surt(url)
    except ImportError:
        pass
    except Exception:
        return url
    try:
        parts = urlsplit(url.strip())
    except ValueError:
        return url
    if parts.scheme in ("urn", "dns"):
        # Opaque URIs (screenshots' urn:fullPage:<url>): surt lower-cases the rest as a path.
        path, query = _path_query_key(parts.path, parts.query)
        return f"{parts.scheme.lower()}:{path}{query}"
    if parts.scheme not in ("http", "https"):
        return url
    host = (parts.hostname or "").strip(".").lower()
    host = re.sub(r"^www\d*\.", "", host)
    port = parts.port if parts.port not in (None, 80, 443) else None
    labels = host.split(".")
    key = ",".join(reversed(labels))
    if port:
        key += f":{port}"
    path, query = _path_query_key(parts.path, parts.query)
    return f"{key}){path}{query}"


def _path_query_key(path: str, query: str) -> tuple[str, str]:
    """SURT's path (lower case, escaped, no trailing slash) and sorted query."""
    path = quote(unquote(path), safe="/%;:@&=+$,!~*'()") or "/"
    path = path.lower()
    if len(path) > 1 and path.endswith("/"):
        path = path.rstrip("/") or "/"
    pairs = sorted(tuple(p.split("=", 1)) if "=" in p else (p, "")
                   for p in query.lower().split("&") if p)
    if not pairs:
        return path, ""
    return path, "?" + "&".join(f"{k}={v}" if v or f"{k}=" in query.lower() else k for k, v in pairs)


def cdx_timestamp(date: str) -> str:
    """``20260101000000`` from a WARC-Date."""
    return re.sub(r"\D", "", date)[:14].ljust(14, "0")


# -- writing ---------------------------------------------------------------------------------
@dataclass
class IndexEntry:
    """One CDXJ line's worth of facts about a written record."""

    url: str
    date: str
    mime: str | None
    status: str | None
    digest: str
    offset: int
    length: int

    def cdxj(self, filename: str) -> str:
        fields = {"url": self.url, "mime": self.mime, "status": self.status, "digest": self.digest,
                  "length": str(self.length), "offset": str(self.offset), "filename": filename}
        if self.mime is None:  # as cdxj-indexer does when a response has no Content-Type
            del fields["mime"]
        if self.status is None:  # a resource record has no HTTP status
            del fields["status"]
        return f"{surt_key(self.url)} {cdx_timestamp(self.date)} {json.dumps(fields, ensure_ascii=False)}"


@dataclass
class ExportResult:
    """What :func:`write_warc` wrote."""

    records: int = 0
    snapshots: int = 0
    index: list[IndexEntry] = field(default_factory=list)
    pages: list[dict] = field(default_factory=list)
    skipped: list[tuple[int, str]] = field(default_factory=list)


@dataclass
class _Capture:
    record_id: str
    date: str
    digest: str
    length: int  # of the payload a revisit of this capture stands for


class _Exporter:
    def __init__(self, db: Database, out: BinaryIO, filename: str, *, index: bool = True) -> None:
        self.db = db
        #: Whether to list the replay index and the pages (a WACZ needs them; a WARC does
        #: not, and they held ~0.8 KB a snapshot in memory for the whole export).
        self.index = index
        self.out = out
        self.filename = filename
        self.writer = WARCWriter(out, gzip=True, warc_version=WARC_VERSION)
        self.result = ExportResult()
        self.captures: dict[tuple[str, str], _Capture] = {}
        #: (crawl id, url) -> record id of the newest raw capture, for renderings to refer to
        self.raw_records: dict[tuple[int, str], str] = {}
        self._start = out.tell()

    def _write(self, record, *, index: bool = False, index_mime: str | None = None,
               status: str | None = "-") -> None:
        offset = self.out.tell() - self._start
        self.writer.write_record(record)
        self.result.records += 1
        if not index or not self.index:
            return
        headers = record.rec_headers
        self.result.index.append(IndexEntry(
            url=headers.get_header("WARC-Target-URI"), date=headers.get_header("WARC-Date"),
            mime=index_mime, status=status, digest=headers.get_header("WARC-Payload-Digest") or "-",
            offset=offset, length=self.out.tell() - self._start - offset))

    def warcinfo(self, description: str) -> None:
        info = {
            "software": f"{software_version()} (warcio)",
            "format": "WARC File Format 1.1",
            "conformsTo": "https://iipc.github.io/warc-specifications/specifications/warc-format/warc-1.1/",
            "description": description,
            "isPartOf": "xxgk-archive",
        }
        self._write(self.writer.create_warcinfo_record(self.filename, info))

    def request(self, url: str, date: str, concurrent_to: str) -> None:
        record = self.writer.create_warc_record(
            url, "request", http_headers=http_request_headers(url),
            warc_headers_dict={"WARC-Date": date, "WARC-Concurrent-To": concurrent_to})
        self._write(record)

    def _origin_status(self, row: dict) -> int:
        """HTTP status of the capture whose bytes a ``304`` confirmed (200 when not archived)."""
        origin = self.db.execute(
            "SELECT status_code FROM snapshots WHERE sha256 = ? AND url = ? AND not_modified = 0"
            " AND rendered = 0 AND fetched_at <= ? ORDER BY fetched_at DESC, id DESC LIMIT 1",
            [row["sha256"], row["url"], row["fetched_at"]]).fetchone()
        if origin and origin[0] not in (None, 304):
            return int(origin[0])
        return 200

    def _status(self, row: dict) -> int | None:
        """The status line a capture replays with: a 304 restored from the capture it confirmed
        (``not_modified``) stands for that content (pywb serves a revisit's own status line with
        the original's payload). The crawler already records 200 for such rows; older rows may
        say 304. A bare 304 (not restored: no content) keeps the status the server sent."""
        status = row["status_code"]
        if row["not_modified"] and status in (None, 304):
            return self._origin_status(row)
        return status

    @staticmethod
    def _bare_304(row: dict) -> bool:
        """A 304 the crawler could not restore (the confirmed capture's blob was unreadable)."""
        return row["status_code"] == 304 and not row["not_modified"]

    def snapshot(self, row: dict) -> None:
        target = row["final_url"] or row["url"]
        date = warc_date(row["fetched_at"])
        if row["rendered"]:
            record_id = self.rendering(row, target, date)
            if row["screenshot_sha256"]:
                self.screenshot(row, target, date, record_id)
            # Not a page for replay (its record is a conversion), and no reconstructed
            # redirect: a rendering's final_url may come from a script, not an HTTP redirect.
            self.result.snapshots += 1
            return
        snapshot_header = {"WARC-Xxgk-Snapshot-ID": str(row["id"])}
        if row["not_modified"]:
            snapshot_header["WARC-Xxgk-Not-Modified"] = (
                "the server answered 304 Not Modified; the status line is that of the content it confirmed")
        ctype = (row["content_type"] or "").split(";")[0].strip().lower() or None
        bare_304 = self._bare_304(row)
        # a bare 304 is a response of its own: it holds no copy of an earlier capture
        earlier = None if bare_304 else self.captures.get((target, row["sha256"]))
        record_id = StatusAndHeadersParser.make_warc_id()
        if earlier is not None:
            # This capture's own headers (its Date, ETag...), as WARC 1.1 6.7 asks of a revisit;
            # the payload and so its length are the earlier record's.
            http_headers = http_response_headers(self._status(row), row["headers"],
                                                 earlier.length, row["content_type"])
            self.request(target, date, record_id)
            record = self.writer.create_revisit_record(
                target, earlier.digest, target, earlier.date, http_headers=http_headers,
                warc_headers_dict={"WARC-Record-ID": record_id, "WARC-Date": date,
                                   "WARC-Refers-To": earlier.record_id, **snapshot_header})
            status = http_headers.get_statuscode()
            self._write(record, index=True, index_mime="warc/revisit", status=status)
        else:
            try:
                body = load_blob(self.db, row["sha256"])
            except BlobError as exc:
                self.result.skipped.append((row["id"], str(exc)))
                return
            http_headers = http_response_headers(self._status(row), row["headers"], len(body),
                                                 row["content_type"])
            warc_headers = {"WARC-Record-ID": record_id, "WARC-Date": date, **snapshot_header}
            announced = announced_length(row["headers"])
            # (a 304's Content-Length, if any, is that of the content it did not send)
            cut_short = (not row["not_modified"] and not bare_304 and announced is not None
                         and announced > len(body))
            if cut_short or row["truncated"]:
                # The connection ended before the answer did (the crawler keeps such a body as
                # evidence; without a Content-Length, the crawl marked it truncated): WARC 1.1
                # 5.13 "disconnect". The HTTP Content-Length above is the length we hold, so
                # readers do not run past the record.
                warc_headers["WARC-Truncated"] = "disconnect"
            if cut_short:
                warc_headers["WARC-Xxgk-Announced-Length"] = str(announced)
            self.request(target, date, record_id)
            record = self.writer.create_warc_record(
                target, "response", payload=BytesIO(body), length=len(body),
                http_headers=http_headers, warc_headers_dict=warc_headers)
            digest = record.rec_headers.get_header("WARC-Payload-Digest")
            self._write(record, index=True, index_mime=ctype, status=http_headers.get_statuscode())
            if body and not bare_304:
                self.captures[(target, row["sha256"])] = _Capture(record_id, date, digest, len(body))
            status = http_headers.get_statuscode()
        if row["crawl_id"] is not None:
            self.raw_records[(row["crawl_id"], row["url"])] = record_id
        if row["screenshot_sha256"]:
            self.screenshot(row, target, date, record_id)
        if row["final_url"] and row["final_url"] != row["url"]:
            self.redirect(row["url"], target, date, row["id"])
        self.result.snapshots += 1
        if self.index and "html" in (ctype or "") and status.startswith(("2", "3")) and status != "304":
            self.result.pages.append({"id": f"snapshot-{row['id']}", "url": target, "ts": date,
                                      "title": row["title"] or target})

    def rendering(self, row: dict, target: str, date: str) -> str | None:
        """A browser rendering as a ``conversion`` of the crawl's raw capture; its record id."""
        try:
            body = load_blob(self.db, row["sha256"])
        except BlobError as exc:
            self.result.skipped.append((row["id"], str(exc)))
            return None
        record_id = StatusAndHeadersParser.make_warc_id()
        headers = {"WARC-Record-ID": record_id, "WARC-Date": date,
                   "WARC-Xxgk-Snapshot-ID": str(row["id"]),
                   "WARC-Xxgk-Rendered": "DOM serialized by Chromium after rendering"
                                         + (f" ({row['render_reason']})" if row["render_reason"] else "")}
        # Only the same crawl's raw capture is what was rendered (an earlier one may differ).
        raw = self.raw_records.get((row["crawl_id"], row["url"])) if row["crawl_id"] is not None else None
        if raw:
            headers["WARC-Refers-To"] = raw
        record = self.writer.create_warc_record(
            target, "conversion", payload=BytesIO(body), length=len(body),
            warc_content_type=row["content_type"] or "application/octet-stream",
            warc_headers_dict=headers)
        self._write(record)  # not indexed: replay must serve what the server sent
        return record_id

    def screenshot(self, row: dict, target: str, date: str, concurrent_to: str | None) -> None:
        """A snapshot's full-page PNG as a ``resource`` record for ``urn:fullPage:<url>``."""
        try:
            png = load_blob(self.db, row["screenshot_sha256"])
        except BlobError as exc:
            self.result.skipped.append((row["id"], f"screenshot: {exc}"))
            return
        headers = {"WARC-Date": date, "WARC-Xxgk-Snapshot-ID": str(row["id"])}
        if concurrent_to:
            headers["WARC-Concurrent-To"] = concurrent_to
        record = self.writer.create_warc_record(
            f"{SCREENSHOT_PREFIX}{target}", "resource", payload=BytesIO(png), length=len(png),
            warc_content_type="image/png", warc_headers_dict=headers)
        self._write(record, index=True, index_mime="image/png", status=None)

    def redirect(self, url: str, location: str, date: str, snapshot_id: int) -> None:
        headers = StatusAndHeaders("302 Found", [("Location", location), ("Content-Type", "text/html"),
                                                 ("Content-Length", "0")], protocol="HTTP/1.1")
        record = self.writer.create_warc_record(
            url, "response", payload=BytesIO(b""), length=0, http_headers=headers,
            warc_headers_dict={"WARC-Date": date, "WARC-Xxgk-Snapshot-ID": str(snapshot_id),
                               "WARC-Xxgk-Reconstructed": "redirect to the snapshot's final_url;"
                                                          " original status and headers not archived"})
        self._write(record, index=True, index_mime="text/html", status="302")


def write_warc(db: Database, out: BinaryIO, *, filename: str = "data.warc.gz",
               site_id: str | None = None, since: str | None = None,
               until: str | None = None, index: bool = True) -> ExportResult:
    """Write the selected snapshots as WARC records to the binary stream ``out``.

    A snapshot whose blob is missing or corrupt is left out and listed in ``skipped``.
    With ``index``, the result lists the replay index entries and the pages (for a WACZ).
    """
    exporter = _Exporter(db, out, filename, index=index)
    scope = ", ".join(filter(None, [f"site {site_id}" if site_id else "all sites",
                                    f"since {since}" if since else None,
                                    f"until {until}" if until else None]))
    exporter.warcinfo(f"xxgk-archive snapshots ({scope})")
    for row in snapshot_rows(db, site_id=site_id, since=since, until=until):
        exporter.snapshot(row)
    return exporter.result


# -- output files ----------------------------------------------------------------------------
class OutputPathError(OSError):
    """The output path exists and is not a regular file, so an export will not replace it."""


def check_output_path(out_path: Path) -> None:
    """Raise :class:`OutputPathError` unless ``out_path`` is absent or a regular file.

    Symbolic links are refused too, even to a regular file: replacing the link would silently
    turn it into a file, writing through it could reach anything (``/proc/self/fd/1``).
    """
    try:
        mode = os.lstat(out_path).st_mode
    except FileNotFoundError:
        return
    if stat.S_ISLNK(mode):
        raise OutputPathError(errno.EEXIST, "it is a symbolic link; give the file it points to",
                              str(out_path))
    if not stat.S_ISREG(mode):
        kind = "a directory" if stat.S_ISDIR(mode) else "not a regular file"
        raise OutputPathError(errno.EEXIST, f"it is {kind}; not replacing it", str(out_path))


@contextlib.contextmanager
def replace_output(out_path: Path) -> Iterator[BinaryIO]:
    """A new file next to ``out_path`` that replaces it when the block succeeds.

    Readers never see a half-written export, a failed export leaves the old file alone, and
    only an absent path or a regular file is ever replaced (see :func:`check_output_path`).
    """
    check_output_path(out_path)
    while True:
        partial = out_path.with_name(f".{out_path.name}.{secrets.token_hex(4)}.part")
        try:
            # O_EXCL: never open something already there (a planted symlink, a FIFO);
            # mode 0666 so the umask gives the export the permissions open() would.
            fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
            break
        except FileExistsError:
            continue
    try:
        with os.fdopen(fd, "wb") as out:
            yield out
        check_output_path(out_path)  # again: the path may have changed while we wrote
        os.replace(partial, out_path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(partial)
        raise


def export_warc(db: Database, out_path: str | Path, *, site_id: str | None = None,
                since: str | None = None, until: str | None = None,
                on_skip: SkipCallback | None = None) -> int:
    """Write a WARC 1.1 file of the selected snapshots; return the number of records.

    ``since``/``until`` are dates (``YYYY-MM-DD``, whole days) or ISO-8601 times, inclusive.
    The file is written beside ``out_path`` and then replaces it; an ``out_path`` that is a
    symbolic link, device, FIFO or directory raises :class:`OutputPathError` instead.
    """
    out_path = Path(out_path)
    with replace_output(out_path) as out:
        result = write_warc(db, out, filename=out_path.name, site_id=site_id, since=since, until=until,
                            index=False)
    for snapshot_id, reason in result.skipped:
        if on_skip:
            on_skip(snapshot_id, reason)
    return result.records
