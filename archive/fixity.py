"""Fixity: re-hash every blob and record the result in ``fixity_checks``."""

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
    db["fixity_checks"].insert({
        "checked_at": utcnow(), "blobs_checked": result.checked,
        "bytes_checked": result.bytes_checked, "missing": result.missing,
        "corrupt": result.corrupt, "details": json.dumps(result.problems),
    })
    return result
