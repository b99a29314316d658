"""Change detection: what changed on a site between one crawl and the crawls before it.

:func:`detect_changes` runs after a crawl and appends rows to ``changes``:

``new``
    the URL's first good snapshot ever;
``changed``
    the page's main text differs from the URL's previous good snapshot *after normalisation*
    (whitespace collapsed, visit counters, "今天是…星期日" widgets and page-generation times
    removed), so markup, whitespace and counter churn are not changes. For attachments and
    reports (no main text) new bytes at the same URL are a change ("file replaced");
``removed``
    the URL had a good snapshot before and this crawl found it gone (:data:`REMOVAL_STATES`:
    ``not_found``, ``soft_404``, ``empty``, ``type_mismatch``, ``redirect_loop``), or it was
    linked before and a *finished* crawl neither linked to it nor checked it any more although
    it did check a page that used to link to it (a page the crawl never reached is no evidence).
    Transient or infrastructure failures (``server_error``, ``timeout``, connection, DNS and
    TLS errors) and inconclusive states (``blocked`` …) are link health, not removal;
``reappeared``
    good again after it was removed;
``link_removed_from_source``
    a page fetched in both the previous and this crawl no longer links to a target it linked
    to before, and no page of this crawl links to it any more (``url`` = the page, ``detail`` =
    JSON ``{"to_url", "anchor_text"}``). A link that only moved — to page 2 of a list when a
    new item was added, off a home page's "latest" box — did not disappear.

Only a check's own capture counts: the rendered evidence capture taken beside a check (the
screenshot of a ``soft_404`` page, say) carries that check's state and is never compared. A
redirecting URL whose target is captured in the same crawl reports nothing itself: the change
is reported once, under the target. Members of a URL family the crawler's trap guard sampled
(``calendar.jsp?year=…&month=…`` beyond its budget) are never ``new`` after the first crawl,
nor ``removed`` for want of a link: which members a budget reaches says nothing about the site
(a member answering 404 is still ``removed``).

Rows of one crawl are keyed on (url, kind, detail): running it again for the same crawl adds
nothing. The history of each URL (was it removed?) is read back from ``changes`` itself, so
crawls should be processed in order, as ``after_crawl`` does.
"""

from __future__ import annotations

import difflib
import json
import re
from dataclasses import dataclass

from sqlite_utils import Database

from archive.blobs import BlobError, load_blob
from archive.db import utcnow
from archive.states import (
    EMPTY,
    GOOD_STATES,
    NOT_FOUND,
    REDIRECT_LOOP,
    SOFT_404,
    TYPE_MISMATCH,
)
from crawler.maintext import VOLATILE_PATTERNS as VOLATILE_PATTERNS  # re-exported: the rules live there
from crawler.maintext import strip_volatile

MAX_DIFF_LINES = 60
MAX_DIFF_BYTES = 4096
#: Above this many characters a changed block is counted, not character-diffed.
CHAR_DIFF_LIMIT = 20_000
LIFECYCLE_KINDS = ("new", "changed", "removed", "reappeared")
#: Check states that say the content is gone (not merely unreachable right now).
REMOVAL_STATES = frozenset({NOT_FOUND, SOFT_404, EMPTY, TYPE_MISMATCH, REDIRECT_LOOP})
#: A page checked in one of these states was really read (or is really gone) in this crawl.
CONCLUSIVE_STATES = GOOD_STATES | REMOVAL_STATES

_SPACE = re.compile(r"\s+")


def normalize_text(text: str | None) -> list[str]:
    """Main text as comparable lines: volatile bits removed, whitespace collapsed, blanks dropped."""
    if not text:
        return []
    # again on the whole text (main_text already did it line by line): a label and its number
    # in separate table cells, or rows stored by an older main_text, span lines
    text = strip_volatile(text)
    lines = (" ".join(line.split()) for line in text.splitlines())
    return [line for line in lines if line]


def _comparison_key(lines: list[str]) -> str:
    """Whitespace-free text: markup that only re-splits or re-spaces text compares equal."""
    return _SPACE.sub("", "".join(lines))


def size_of_change(old: list[str], new: list[str]) -> int:
    """Characters added plus characters removed between two normalised texts."""
    total = 0
    matcher = difflib.SequenceMatcher(None, old, new, autojunk=False)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            continue
        removed, added = "\n".join(old[i1:i2]), "\n".join(new[j1:j2])
        if tag == "replace" and len(removed) + len(added) <= CHAR_DIFF_LIMIT:
            chars = difflib.SequenceMatcher(None, removed, added, autojunk=False)
            total += sum((b2 - b1) + (a2 - a1) for op, b1, b2, a1, a2 in chars.get_opcodes()
                         if op != "equal")
        else:
            total += len(removed) + len(added)
    return total


def short_diff(old: list[str], new: list[str], *, from_label: str = "before",
               to_label: str = "after") -> str:
    """A unified diff of two normalised texts, cut to 60 lines and 4 KB."""
    lines = list(difflib.unified_diff(old, new, fromfile=from_label, tofile=to_label,
                                      lineterm="", n=1))
    out: list[str] = []
    size = 0
    marker = "… (diff truncated)"
    for index, line in enumerate(lines):
        line_size = len(line.encode("utf-8")) + 1
        if (index >= MAX_DIFF_LINES - 1 and index < len(lines) - 1) or \
                size + line_size > MAX_DIFF_BYTES - len(marker.encode("utf-8")) - 1:
            out.append(marker)
            break
        out.append(line)
        size += line_size
    return "\n".join(out)


@dataclass
class Snap:
    """One snapshot row, with the state of the check that produced it."""

    id: int
    url: str
    final_url: str | None
    crawl_id: int | None
    fetched_at: str
    status_code: int | None
    content_type: str | None
    sha256: str | None
    size: int | None
    encoding: str | None
    main_text: str | None
    not_modified: bool
    check_state: str | None
    primary: bool = True

    @property
    def good(self) -> bool:
        if self.check_state is not None:
            return self.check_state in GOOD_STATES
        return self.status_code is None or self.status_code < 400

    @property
    def is_html(self) -> bool:
        ctype = (self.content_type or "").lower()
        return self.main_text is not None or "html" in ctype


# check_state: the state of the check that produced the snapshot, else (a capture no check
# points to, e.g. the rendered evidence screenshot of a soft_404 page) of the same crawl's
# check of the URL. primary: the check's own capture, or no check points to any capture.
_SNAP_SQL = (
    "SELECT s.id, s.url, s.final_url, s.crawl_id, s.fetched_at, s.status_code, s.content_type,"
    " s.sha256, s.size, s.encoding, s.main_text, s.not_modified,"
    " COALESCE((SELECT lc.state FROM link_checks lc WHERE lc.url = s.url AND lc.snapshot_id = s.id"
    "  ORDER BY lc.id DESC LIMIT 1),"
    "  (SELECT lc.state FROM link_checks lc WHERE lc.crawl_id = s.crawl_id AND lc.url = s.url"
    "  ORDER BY lc.id DESC LIMIT 1)) AS check_state,"
    " (EXISTS (SELECT 1 FROM link_checks lc WHERE lc.url = s.url AND lc.snapshot_id = s.id)"
    "  OR NOT EXISTS (SELECT 1 FROM link_checks lc WHERE lc.crawl_id = s.crawl_id AND lc.url = s.url"
    "  AND lc.snapshot_id IS NOT NULL)) AS is_primary"
    " FROM snapshots s"
)


def _snaps(db: Database, where: str, params: list) -> list[Snap]:
    rows = db.execute(f"{_SNAP_SQL} WHERE {where}", params).fetchall()
    return [Snap(*row[:11], bool(row[11]), row[12], bool(row[13])) for row in rows]


class _Detector:
    """Change detection for one crawl."""

    def __init__(self, db: Database, crawl_id: int) -> None:
        self.db = db
        self.crawl_id = crawl_id
        row = db.execute("SELECT site_id, status FROM crawls WHERE id = ?", [crawl_id]).fetchone()
        if row is None:
            raise ValueError(f"no crawl with id {crawl_id}")
        self.site_id, self.status = row
        self.now = utcnow()
        self.existing = {
            (url, kind, detail or "")
            for url, kind, detail in db.execute(
                "SELECT url, kind, detail FROM changes WHERE crawl_id = ?", [crawl_id])
        }
        self._text_cache: dict[str, list[str] | None] = {}
        self.added = 0

    # -- history ------------------------------------------------------------------------
    def previous_good(self, url: str) -> Snap | None:
        earlier = _snaps(self.db, "s.url = ? AND s.site_id IS ? AND s.crawl_id < ?"
                         " ORDER BY s.fetched_at DESC, s.id DESC",
                         [url, self.site_id, self.crawl_id])
        return next((snap for snap in earlier if snap.good and snap.sha256 and snap.primary), None)

    def has_earlier_crawl(self) -> bool:
        return self.db.execute("SELECT 1 FROM crawls WHERE site_id IS ? AND id < ? LIMIT 1",
                               [self.site_id, self.crawl_id]).fetchone() is not None

    def last_lifecycle_kind(self, url: str) -> str | None:
        marks = ",".join("?" * len(LIFECYCLE_KINDS))
        row = self.db.execute(
            f"SELECT kind FROM changes WHERE url = ? AND site_id IS ? AND crawl_id < ?"
            f" AND kind IN ({marks}) ORDER BY crawl_id DESC, id DESC LIMIT 1",
            [url, self.site_id, self.crawl_id, *LIFECYCLE_KINDS],
        ).fetchone()
        return row[0] if row else None

    # -- content ------------------------------------------------------------------------
    def text_lines(self, snap: Snap) -> list[str] | None:
        """Normalised main text; computed from the blob when the row has none (old rows, 304s)."""
        if snap.main_text is not None:
            return normalize_text(snap.main_text)
        if not snap.sha256:
            return None
        if snap.sha256 not in self._text_cache:
            self._text_cache[snap.sha256] = self._text_from_blob(snap)
        return self._text_cache[snap.sha256]

    def _text_from_blob(self, snap: Snap) -> list[str] | None:
        from crawler.maintext import main_text

        assert snap.sha256
        stored = self.db.execute(
            "SELECT main_text FROM snapshots WHERE sha256 = ? AND main_text IS NOT NULL LIMIT 1",
            [snap.sha256]).fetchone()
        if stored:
            return normalize_text(stored[0])
        try:
            data = load_blob(self.db, snap.sha256)
        except BlobError:
            return None
        return normalize_text(main_text(decode_html(data, snap.encoding, snap.content_type)))

    # -- writing ------------------------------------------------------------------------
    def add(self, url: str, kind: str, *, prev: Snap | None = None, new: Snap | None = None,
            diff: str | None = None, size: int | None = None, detail: str | None = None) -> None:
        key = (url, kind, detail or "")
        if key in self.existing:
            return
        self.existing.add(key)
        self.db.execute(
            "INSERT INTO changes (site_id, url, crawl_id, detected_at, kind, prev_snapshot_id,"
            " new_snapshot_id, diff, size_of_change, detail) VALUES (?,?,?,?,?,?,?,?,?,?)",
            [self.site_id, url, self.crawl_id, self.now, kind, prev.id if prev else None,
             new.id if new else None, diff, size, detail],
        )
        self.added += 1

    def compare(self, prev: Snap, new: Snap) -> tuple[str | None, int | None, str | None] | None:
        """(diff, size_of_change, detail) if ``new`` differs from ``prev``, else None."""
        if new.not_modified or prev.sha256 == new.sha256:
            return None
        if prev.is_html and new.is_html:
            old_lines, new_lines = self.text_lines(prev), self.text_lines(new)
            if old_lines is not None and new_lines is not None:
                if _comparison_key(old_lines) == _comparison_key(new_lines):
                    return None
                diff = short_diff(old_lines, new_lines,
                                  from_label=f"snapshot {prev.id} {prev.fetched_at}",
                                  to_label=f"snapshot {new.id} {new.fetched_at}")
                return diff, size_of_change(old_lines, new_lines), None
        return None, None, (f"file replaced: {prev.sha256} → {new.sha256}, "
                            f"{_size(prev.size)} → {_size(new.size)} bytes")

    # -- the crawl ----------------------------------------------------------------------
    def run(self) -> int:
        checks: dict[str, tuple[str, int | None, int | None]] = {}
        for url, state, snapshot_id, status in self.db.execute(
                "SELECT url, state, snapshot_id, status_code FROM link_checks WHERE crawl_id = ?"
                " ORDER BY id", [self.crawl_id]):
            checks[url] = (state, snapshot_id, status)
        self.checks = checks
        snaps_now: dict[str, Snap] = {}
        by_id: dict[int, Snap] = {}
        for snap in _snaps(self.db, "s.crawl_id = ? ORDER BY s.id", [self.crawl_id]):
            by_id[snap.id] = snap
            if snap.primary:
                snaps_now[snap.url] = snap
        self.snaps_now = snaps_now
        self.sampled = self._sampled_patterns()
        for url in sorted(set(checks) | set(snaps_now)):
            state, snapshot_id, status = checks.get(url, (None, None, None))
            snap = by_id.get(snapshot_id) if snapshot_id else None
            snap = snap or snaps_now.get(url)
            self.one_url(url, state, snap, status)
        self.absent_urls(set(checks) | set(snaps_now))
        self.removed_links(snaps_now)
        return self.added

    def _sampled_patterns(self) -> set[str]:
        """Trap patterns of URL families the trap guard cut short in this or an earlier crawl."""
        from crawler.urls import TrapGuard

        rows = self.db.execute(
            "SELECT DISTINCT lc.url FROM link_checks lc JOIN crawls c ON c.id = lc.crawl_id"
            " WHERE c.site_id IS ? AND lc.crawl_id <= ? AND lc.state = 'excluded'"
            " AND lc.rule = 'trap-guard'", [self.site_id, self.crawl_id])
        return {pattern for (url,) in rows if (pattern := TrapGuard.pattern(url))}

    def is_sampled(self, url: str) -> bool:
        """True for a member of a URL family the trap guard sampled (see the module doc)."""
        if not self.sampled:
            return False
        from crawler.urls import TrapGuard

        return TrapGuard.pattern(url) in self.sampled

    def reported_under_target(self, snap: Snap, prev: Snap | None) -> bool:
        """A redirect whose target has its own capture in this crawl, redirecting where it did
        before: its change is the target's, reported there once."""
        target = snap.final_url
        return bool(target and target != snap.url and target in self.snaps_now
                    and prev is not None and (prev.final_url or prev.url) == target)

    def one_url(self, url: str, state: str | None, snap: Snap | None, status: int | None) -> None:
        if state is None:
            state = "ok" if snap is not None and snap.good else None
        if state is None:
            return
        good = state in GOOD_STATES
        broken = state in REMOVAL_STATES
        if not good and not broken:
            return  # blocked, excluded, a 500 or a timeout: no evidence the content is gone
        prev = self.previous_good(url)
        last_kind = self.last_lifecycle_kind(url) if prev is not None or good else None
        removed_before = last_kind == "removed"
        if good:
            if snap is None or not snap.sha256:
                if removed_before:
                    self.add(url, "reappeared", prev=prev, detail=f"state: {state}")
                return
            if removed_before:
                result = self.compare(prev, snap) if prev else None
                diff, size, detail = result or (None, None, None)
                self.add(url, "reappeared", prev=prev, new=snap, diff=diff, size=size, detail=detail)
            elif prev is None:
                if self.is_sampled(url) and self.has_earlier_crawl():
                    return  # the trap guard reached another sample of the family: not news
                if snap.is_html:
                    lines = self.text_lines(snap) or []
                    self.add(url, "new", new=snap, size=sum(len(line) for line in lines))
                else:
                    self.add(url, "new", new=snap, detail=f"file: {snap.sha256}, {_size(snap.size)} bytes")
            elif not self.reported_under_target(snap, prev):
                result = self.compare(prev, snap)
                if result is not None:
                    diff, size, detail = result
                    self.add(url, "changed", prev=prev, new=snap, diff=diff, size=size, detail=detail)
        elif prev is not None and not removed_before:
            status = status or (snap.status_code if snap is not None else None)
            detail = f"state: {state}" + (f" (HTTP {status})" if status else "")
            self.add(url, "removed", prev=prev, new=snap, detail=detail)

    def absent_urls(self, seen: set[str]) -> None:
        """URLs linked before that a finished crawl neither linked to nor checked."""
        if self.status != "finished":
            return  # an interrupted crawl's silence is no evidence
        good_checks = self.db.execute(
            f"SELECT COUNT(*) FROM link_checks WHERE crawl_id = ? AND state IN "
            f"({','.join('?' * len(GOOD_STATES))})", [self.crawl_id, *sorted(GOOD_STATES)],
        ).fetchone()[0]
        if not good_checks:
            return  # the site was unreachable: that is link health, not removal
        linked_now = {row[0] for row in self.db.execute(
            "SELECT DISTINCT to_url FROM link_sources WHERE crawl_id = ?", [self.crawl_id])}
        candidates = [row[0] for row in self.db.execute(
            "SELECT DISTINCT url FROM snapshots WHERE site_id IS ? AND crawl_id < ?",
            [self.site_id, self.crawl_id])]
        pages_read = {url for url, (state, _, _) in self.checks.items() if state in CONCLUSIVE_STATES}
        pages_read |= {snap.final_url for snap in self.snaps_now.values() if snap.final_url and snap.good}
        for url in sorted(candidates):
            if url in seen or url in linked_now or self.is_sampled(url):
                continue
            last_linked = self.db.execute(
                "SELECT MAX(crawl_id) FROM link_sources WHERE to_url = ? AND site_id IS ? AND crawl_id < ?",
                [url, self.site_id, self.crawl_id]).fetchone()[0]
            if last_linked is None:
                continue
            sources = {row[0] for row in self.db.execute(
                "SELECT DISTINCT from_url FROM link_sources WHERE to_url = ? AND crawl_id = ?",
                [url, last_linked])}
            if not sources & pages_read:
                continue  # no page that linked to it was re-read: the crawl never got there
            prev = self.previous_good(url)
            if prev is None or self.last_lifecycle_kind(url) == "removed":
                continue
            self.add(url, "removed", prev=prev, detail="no longer linked or checked")

    def removed_links(self, snaps_now: dict[str, Snap]) -> None:
        """Targets a page linked to in its previous good capture and no longer links to."""
        linked_now: set[str] | None = None
        for url, snap in sorted(snaps_now.items()):
            if not (snap.good and snap.is_html and snap.sha256) or snap.not_modified:
                continue
            prev = self.previous_good(url)
            if prev is None or prev.sha256 == snap.sha256 or prev.crawl_id is None:
                continue
            if self.reported_under_target(snap, prev):
                continue
            pages_now = sorted({snap.url, snap.final_url or snap.url})
            pages_before = sorted({prev.url, prev.final_url or prev.url})
            now_targets = {row[0] for row in self.db.execute(
                f"SELECT to_url FROM link_sources WHERE crawl_id = ? AND from_url IN"
                f" ({','.join('?' * len(pages_now))})", [self.crawl_id, *pages_now])}
            if not now_targets:
                continue  # links not extracted this time (e.g. a failed render): no evidence
            before: dict[str, str] = {}
            for to_url, anchor in self.db.execute(
                    f"SELECT to_url, anchor_text FROM link_sources WHERE crawl_id = ? AND from_url IN"
                    f" ({','.join('?' * len(pages_before))}) ORDER BY id",
                    [prev.crawl_id, *pages_before]):
                if to_url not in before or (not before[to_url] and anchor):
                    before[to_url] = anchor or ""
            if linked_now is None:
                linked_now = {row[0] for row in self.db.execute(
                    "SELECT DISTINCT to_url FROM link_sources WHERE crawl_id = ?", [self.crawl_id])}
            for to_url, anchor in before.items():
                if to_url in now_targets or to_url in linked_now:
                    continue  # still there, or moved to another page of the site
                detail = json.dumps({"to_url": to_url, "anchor_text": anchor}, ensure_ascii=False,
                                    sort_keys=True)
                self.add(url, "link_removed_from_source", prev=prev, new=snap, detail=detail)


def _size(size: int | None) -> str:
    return "?" if size is None else f"{size:,}"


def decode_html(data: bytes, encoding: str | None, content_type: str | None = None) -> str:
    """Decode an archived HTML body: the recorded encoding, the header charset, else UTF-8."""
    candidates = [encoding]
    match = re.search(r"charset=[\"']?([\w.:-]+)", content_type or "", re.I)
    if match:
        candidates.append(match.group(1))
    for name in candidates + ["utf-8"]:
        if not name:
            continue
        name = name.lower()
        if name in ("gb2312", "gbk", "x-gbk", "gb_2312-80"):
            name = "gb18030"  # pages labelled GB2312 routinely use GBK characters
        try:
            return data.decode(name)
        except (LookupError, UnicodeDecodeError):
            continue
    return data.decode("utf-8", "replace")


def detect_changes(db: Database, crawl_ids: list[int]) -> int:
    """Record the changes each crawl in ``crawl_ids`` found; return the number of rows added."""
    added = 0
    with db.atomic():
        for crawl_id in sorted(crawl_ids):
            added += _Detector(db, crawl_id).run()
    return added
