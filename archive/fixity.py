"""Fixity: re-hash every blob and record the result in ``fixity_checks``.

A blob is corrupt when its bytes no longer hash to its name or do not match its recorded
sizes; a snapshot whose recorded ``size`` is not its (sound) blob's is reported as corrupt too.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from sqlite_utils import Database

from archive.blobs import BlobError, load_blob
from archive.db import utcnow

REFERENCES = (
    "SELECT sha256 FROM snapshots WHERE sha256 IS NOT NULL",
    "SELECT screenshot_sha256 FROM snapshots WHERE screenshot_sha256 IS NOT NULL",
    "SELECT sha256 FROM reports WHERE sha256 IS NOT NULL",
)


@dataclass
class FixityResult:
    checked: int = 0
    bytes_checked: int = 0
    problems: list[dict] = field(default_factory=list)

    @property
    def missing(self) -> int:
        return sum(1 for p in self.problems if p["problem"] == "missing")

    @property
    def corrupt(self) -> int:
        return sum(1 for p in self.problems if p["problem"] != "missing")

    @property
    def ok(self) -> bool:
        return not self.problems

    def summary(self) -> str:
        lines = [f"{self.checked} blobs re-hashed ({self.bytes_checked:,} bytes): "
                 f"{self.missing} missing, {self.corrupt} corrupt"]
        lines += [f"  {p['sha256']}: {p['problem']}" for p in self.problems[:50]]
        return "\n".join(lines)


def size_mismatches(db: Database, unsound: set[str]) -> list[dict]:
    """Snapshots whose recorded ``size`` is not the size of their blob.

    A 304 (``not_modified``) row stands for its original's body, a row without a blob row
    is reported as missing, and a blob in ``unsound`` (missing or corrupt, already reported)
    has no size to trust; none of them is compared. A sound blob's ``size`` was checked
    against its bytes by :func:`load_blob`.
    """
    problems = []
    for snapshot_id, sha256, size, blob_size in db.execute(
            "SELECT s.id, s.sha256, s.size, b.size FROM snapshots s JOIN blobs b ON b.sha256 = s.sha256"
            " WHERE s.not_modified = 0 AND s.size IS NOT b.size ORDER BY s.id").fetchall():
        if sha256 in unsound:
            continue
        problems.append({"sha256": sha256, "problem": f"snapshot {snapshot_id} records size {size}, "
                                                      f"its blob holds {blob_size} bytes"})
    return problems


def verify_blobs(db: Database) -> FixityResult:
    """Re-hash every stored blob and look for referenced blobs that are gone."""
    result = FixityResult()
    # References first: a crawl writing meanwhile stores a blob before the row naming it,
    # so every reference read here has its blob by the time the blobs are listed.
    referenced: set[str] = set()
    for query in REFERENCES:
        referenced.update(row[0] for row in db.execute(query).fetchall())
    stored: set[str] = set()
    for (sha256,) in db.execute("SELECT sha256 FROM blobs").fetchall():
        stored.add(sha256)
        result.checked += 1
        try:
            result.bytes_checked += len(load_blob(db, sha256))
        except BlobError as exc:
            result.problems.append({"sha256": sha256, "problem": str(exc)})
    for sha256 in sorted(referenced - stored):
        result.problems.append({"sha256": sha256, "problem": "missing"})
    result.problems += size_mismatches(db, {p["sha256"] for p in result.problems})
    db["fixity_checks"].insert({
        "checked_at": utcnow(), "blobs_checked": result.checked,
        "bytes_checked": result.bytes_checked, "missing": result.missing,
        "corrupt": result.corrupt, "details": json.dumps(result.problems),
    })
    return result
