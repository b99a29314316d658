"""Export snapshots as a WACZ 1.1.1 package (a zip that ReplayWeb.page and pywb can open).

Contents::

    archive/data.warc.gz        the WARC written by :mod:`archive.warc` (stored, not deflated,
                                so readers can seek to records)
    indexes/index.cdx           CDXJ: ``<surt> <timestamp> {json}``, sorted
    pages/pages.jsonl           a header line, then one line per captured HTML page
    datapackage.json            every file above with its sha256 and size
    datapackage-digest.json     the sha256 of datapackage.json
"""

from __future__ import annotations

import hashlib
import json
import tempfile
import zipfile
from datetime import UTC, datetime
from pathlib import Path

from sqlite_utils import Database

from archive.warc import SkipCallback, check_output_path, replace_output, software_version, write_warc

WACZ_VERSION = "1.1.1"
WARC_NAME = "data.warc.gz"
PAGES_HEADER = {"format": "json-pages-1.0", "id": "pages", "title": "All Pages"}


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def export_wacz(db: Database, out_path: str | Path, *, site_id: str | None = None,
                since: str | None = None, until: str | None = None,
                on_skip: SkipCallback | None = None) -> int:
    """Write a WACZ of the selected snapshots to ``out_path``; return the number of WARC records.

    The package is written beside ``out_path`` and then replaces it; an ``out_path`` that is a
    symbolic link, device, FIFO or directory raises :class:`archive.warc.OutputPathError`
    instead (checked before any work, and again before the replace).
    """
    out_path = Path(out_path)
    check_output_path(out_path)
    created = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    with tempfile.TemporaryDirectory(prefix="xxgk-wacz-") as tmp:
        tmp_dir = Path(tmp)
        warc_path = tmp_dir / WARC_NAME
        with open(warc_path, "wb") as out:
            result = write_warc(db, out, filename=WARC_NAME, site_id=site_id, since=since, until=until)
        cdx_path = tmp_dir / "index.cdx"
        lines = sorted(entry.cdxj(WARC_NAME) for entry in result.index)
        cdx_path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
        pages_path = tmp_dir / "pages.jsonl"
        with open(pages_path, "w", encoding="utf-8") as fh:
            fh.write(json.dumps(PAGES_HEADER) + "\n")
            for page in result.pages:
                fh.write(json.dumps(page, ensure_ascii=False) + "\n")

        files = [(f"archive/{WARC_NAME}", warc_path, zipfile.ZIP_STORED),
                 ("indexes/index.cdx", cdx_path, zipfile.ZIP_STORED),
                 ("pages/pages.jsonl", pages_path, zipfile.ZIP_DEFLATED)]
        resources = [{"name": Path(name).name, "path": name, "hash": f"sha256:{_sha256_file(path)}",
                      "bytes": path.stat().st_size} for name, path, _ in files]
        title = f"xxgk-archive: {site_id}" if site_id else "xxgk-archive"
        package = {
            "profile": "data-package",
            "wacz_version": WACZ_VERSION,
            "title": title,
            "description": "Snapshots of Chinese university information-disclosure portals "
                           f"({', '.join(filter(None, [site_id or 'all sites', since and f'since {since}', until and f'until {until}']))})",
            "created": created,
            "modified": created,
            "software": software_version(),
            "resources": resources,
        }
        if result.pages:
            package["mainPageURL"] = result.pages[0]["url"]
            package["mainPageDate"] = result.pages[0]["ts"]
        package_bytes = json.dumps(package, ensure_ascii=False, indent=2).encode("utf-8")
        digest = {"path": "datapackage.json",
                  "hash": f"sha256:{hashlib.sha256(package_bytes).hexdigest()}"}

        with replace_output(out_path) as out, zipfile.ZipFile(out, "w", allowZip64=True) as wacz:
            for name, path, compression in files:
                wacz.write(path, name, compress_type=compression)
            wacz.writestr("datapackage.json", package_bytes, compress_type=zipfile.ZIP_DEFLATED)
            wacz.writestr("datapackage-digest.json", json.dumps(digest, indent=2),
                          compress_type=zipfile.ZIP_DEFLATED)
    for snapshot_id, reason in result.skipped:
        if on_skip:
            on_skip(snapshot_id, reason)
    return result.records
