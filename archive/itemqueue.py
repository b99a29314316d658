"""The Redis item hand-off of distributed crawls, and the single archive writer that drains it.

In distributed mode (``xxgk crawl --workers redis://...``) crawl workers never open the
SQLite archive. Their item pipeline (:class:`crawler.distributed.RedisItemPipeline`) pushes
every item, serialized by :func:`encode_item`, onto one Redis list; exactly one process,
``xxgk archive-writer --redis URL --db PATH`` (:class:`ArchiveWriterLoop`), pops them and
writes them through :class:`archive.store.ArchiveWriter` (via the crawl pipeline's own
``process_item``, so annual reports are ingested exactly as in single-machine crawls).
SQLite keeps one writer; blobs are content-addressed, so the same body fetched by two
workers is stored once.

Wire format: ``b"XQ1"`` + zlib( 4-byte header length + JSON header + raw byte fields ).
The header names the item type (only :mod:`crawler.items` dataclasses and control
messages are accepted: nothing from Redis is unpickled here) and where each ``bytes``
field lies in the tail. Control messages (``{"t": "control", "op": ...}``) ride the same
list, so they are processed in order with the items around them:

``start_crawls``   the coordinator asks for ``crawls`` rows of a job; the writer creates them
                   and publishes ``site -> crawl id`` in ``<prefix>:job:<n>:crawls`` (and, in
                   the same transaction, ``site -> JSON list`` of the URLs the site's previous
                   crawl refused for a spent pattern budget in ``<prefix>:job:<n>:trap_refusals``,
                   and the checklist item URLs known, kept as evidence, in ``...:evidence_urls``)
``finish_crawls``  the job is over (pushed atomically when the last request finished): close
                   the crawls rows (``incomplete`` with ``processing_errors: ...`` for a crawl
                   with pages a worker could not process, counted by the workers in
                   ``<prefix>:job:<n>:processing_errors``, or items this writer could not
                   store, in ``<prefix>:processing_errors``), run the post-crawl work,
                   publish the summary

Delivery is at least once, writing effectively once:

* the writer moves a batch atomically from ``<prefix>:items`` to ``<prefix>:items:processing``,
  writes it in one transaction, commits, then deletes the processing list; a writer killed
  in between re-applies the processing list when it starts again;
* a re-applied (or re-sent, after a worker died mid-callback) ``LinkCheck`` is skipped when its
  crawl already has a check of that URL (one verdict per URL per crawl, as single-machine
  crawls guarantee); ``LinkSource`` rows are unique in the schema; ``Evidence`` is kept once
  per crawl and URL;
* an item that cannot be decoded or written goes to ``<prefix>:items:dead`` with the error,
  and the writer carries on.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import signal
import struct
import time
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

from archive.store import processing_errors_reason, unstored_item
from crawler.items import Evidence, LinkCheck, LinkSource, OverheadBytes

logger = logging.getLogger(__name__)

MAGIC = b"XQ1"
ITEM_TYPES: dict[str, type] = {"LinkCheck": LinkCheck, "LinkSource": LinkSource, "Evidence": Evidence,
                               "OverheadBytes": OverheadBytes}
DEFAULT_PREFIX = "xxgk"
#: How long finished jobs' bookkeeping (state, summary, crawl ids, stats) stays in Redis.
JOB_RECORD_TTL = 7 * 24 * 3600

# Move up to ARGV[1] items from the head of KEYS[1] to the tail of KEYS[2]; return them.
_TAKE_BATCH = """
local items = redis.call('LRANGE', KEYS[1], 0, tonumber(ARGV[1]) - 1)
if #items == 0 then return items end
redis.call('LTRIM', KEYS[1], #items, -1)
for i = 1, #items, 500 do
  redis.call('RPUSH', KEYS[2], unpack(items, i, math.min(i + 499, #items)))
end
return items
"""


class ItemDecodeError(ValueError):
    """A payload on the item list is not something the writer accepts."""


# -- wire format ----------------------------------------------------------------------------
def _pack(header: dict[str, Any], blobs: list[bytes]) -> bytes:
    head = json.dumps(header, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    return MAGIC + zlib.compress(struct.pack(">I", len(head)) + head + b"".join(blobs), 1)


def encode_item(item: Any) -> bytes:
    """Serialize a :mod:`crawler.items` dataclass for the Redis item list."""
    name = type(item).__name__
    if name not in ITEM_TYPES or not dataclasses.is_dataclass(item):
        raise TypeError(f"cannot queue {type(item)!r}: not a crawler item")
    fields: dict[str, Any] = {}
    spans: dict[str, list[int]] = {}
    blobs: list[bytes] = []
    offset = 0
    for f in dataclasses.fields(item):
        value = getattr(item, f.name)
        if isinstance(value, (bytes, bytearray, memoryview)):
            raw = bytes(value)
            spans[f.name] = [offset, len(raw)]
            blobs.append(raw)
            offset += len(raw)
        else:
            fields[f.name] = value
    return _pack({"t": name, "f": fields, "b": spans}, blobs)


def encode_control(op: str, **fields: Any) -> bytes:
    """Serialize a control message (``start_crawls``, ``finish_crawls``)."""
    return _pack({"t": "control", "op": op, **fields}, [])


def decode(payload: bytes) -> Any:
    """Turn a payload back into an item, or a ``dict`` for a control message."""
    if not payload.startswith(MAGIC):
        raise ItemDecodeError("not an xxgk item payload")
    try:
        raw = zlib.decompress(payload[len(MAGIC):])
        (size,) = struct.unpack(">I", raw[:4])
        header = json.loads(raw[4:4 + size].decode("utf-8"))
    except (zlib.error, struct.error, ValueError) as exc:
        raise ItemDecodeError(f"corrupt payload: {exc}") from exc
    tail = raw[4 + size:]
    kind = header.get("t")
    if kind == "control":
        return header
    cls = ITEM_TYPES.get(kind)
    if cls is None:
        raise ItemDecodeError(f"unknown item type {kind!r}")
    values = dict(header.get("f") or {})
    for name, (start, length) in (header.get("b") or {}).items():
        values[name] = tail[start:start + length]
    known = {f.name for f in dataclasses.fields(cls)}
    try:
        return cls(**{k: v for k, v in values.items() if k in known})
    except TypeError as exc:
        raise ItemDecodeError(f"bad {kind}: {exc}") from exc


# -- the Redis side ----------------------------------------------------------------------------
def connect(url: str) -> Any:
    """A redis-py client for ``url`` (``redis://host:port/db``), checked with PING."""
    import redis

    client = redis.Redis.from_url(url, socket_timeout=30, socket_connect_timeout=10,
                                  health_check_interval=30)
    client.ping()
    return client


def job_key(prefix: str, job: int | str, name: str) -> str:
    """``<prefix>:job:<n>:<name>``: every key of one distributed crawl."""
    return f"{prefix}:job:{job}:{name}"


class ItemQueue:
    """The item list: workers push, the writer takes batches through a processing list."""

    def __init__(self, server: Any, prefix: str = DEFAULT_PREFIX) -> None:
        self.server = server
        self.prefix = prefix
        self.key = f"{prefix}:items"
        self.processing_key = f"{prefix}:items:processing"
        self.dead_key = f"{prefix}:items:dead"
        self._take = server.register_script(_TAKE_BATCH)

    def push(self, payload: bytes) -> int:
        """Append one payload; returns the list's length."""
        return int(self.server.rpush(self.key, payload))

    def backlog(self) -> int:
        return int(self.server.llen(self.key))

    def pending_batch(self) -> list[bytes]:
        """What a previous writer took but never finished (re-applied first)."""
        return list(self.server.lrange(self.processing_key, 0, -1))

    def take(self, size: int) -> list[bytes]:
        """Atomically move up to ``size`` payloads to the processing list and return them."""
        return list(self._take(keys=[self.key, self.processing_key], args=[size]))

    def wait(self, timeout: float) -> bool:
        """Block up to ``timeout`` seconds until the list is non-empty (no item is taken)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.server.llen(self.key):
                return True
            time.sleep(min(0.05, max(0.0, deadline - time.monotonic())))
        return bool(self.server.llen(self.key))

    def done(self) -> None:
        """The batch taken last is committed to the archive."""
        self.server.delete(self.processing_key)

    def dead_letter(self, payload: bytes, error: str) -> None:
        record = json.dumps({"error": error[:2000], "at": time.time()}).encode()
        self.server.rpush(self.dead_key, record + b"\n" + payload)


# -- the writer --------------------------------------------------------------------------------
@dataclasses.dataclass
class WriterStats:
    items: int = 0
    skipped_duplicates: int = 0
    dead: int = 0
    batches: int = 0
    controls: int = 0
    seconds_writing: float = 0.0
    jobs_closed: list[int] = dataclasses.field(default_factory=list)

    def rate(self) -> float:
        return self.items / self.seconds_writing if self.seconds_writing else 0.0


class ArchiveWriterLoop:
    """The single process that owns the SQLite archive in a distributed crawl."""

    def __init__(self, server: Any, db_path: str | Path, *, prefix: str = DEFAULT_PREFIX,
                 batch_size: int = 500, confirm_checks: int = 2, confirm_hours: float = 20.0,
                 post_crawl: bool = True) -> None:
        from archive.db import open_db
        from archive.store import ArchiveWriter
        from crawler.pipelines import ArchivePipeline

        self.server = server
        self.prefix = prefix
        self.queue = ItemQueue(server, prefix)
        self.batch_size = max(1, batch_size)
        self.post_crawl = post_crawl
        self.db_path = str(db_path)
        self.db = open_db(self.db_path)
        # The crawl pipeline does the writing (checks, snapshots, report ingestion); this
        # loop decides the transactions, so the writer never commits on its own.
        self.pipeline = ArchivePipeline(self.db_path, confirm_checks, confirm_hours, 10**9)
        self.pipeline.writer = ArchiveWriter(self.db, confirm_checks=confirm_checks,
                                             confirm_hours=confirm_hours, commit_every=10**9)
        self.stats = WriterStats()
        self._checked: dict[int, set[str]] = {}
        self._evidence: dict[int, set[str]] = {}
        self._stop = False

    # -- lifecycle ---------------------------------------------------------------------
    def stop(self, *_args: Any) -> None:
        """Finish the current batch, then return from :meth:`run` (SIGTERM/SIGINT)."""
        self._stop = True

    def install_signal_handlers(self) -> None:
        signal.signal(signal.SIGTERM, self.stop)
        signal.signal(signal.SIGINT, self.stop)

    def close(self) -> None:
        self.pipeline.writer.commit()
        self.db.conn.close()

    def run(self, *, drain: bool = False, idle_exit: float | None = None,
            until: Callable[[], bool] | None = None, poll: float = 1.0) -> WriterStats:
        """Write items until stopped; ``drain``: until the list is empty; ``idle_exit``:
        after that many seconds without items; ``until``: when it returns True (checked
        between batches)."""
        pending = self.queue.pending_batch()
        if pending:
            logger.info("re-applying %d items of an unfinished batch", len(pending))
            self._apply_batch(pending)
        idle_since = time.monotonic()
        while not self._stop:
            if until is not None and until():
                break
            batch = self.queue.take(self.batch_size)
            if batch:
                self._apply_batch(batch)
                idle_since = time.monotonic()
                continue
            if drain:
                break
            if idle_exit is not None and time.monotonic() - idle_since >= idle_exit:
                break
            self.queue.wait(poll)
        return self.stats

    # -- batches -----------------------------------------------------------------------
    def _apply_batch(self, batch: list[bytes]) -> None:
        started = time.perf_counter()
        writer = self.pipeline.writer
        for payload in batch:
            try:
                obj = decode(payload)
            except ItemDecodeError as exc:
                self._dead(payload, str(exc))
                continue
            if isinstance(obj, dict):
                writer.commit()
                self._control(obj)
                continue
            if self._duplicate(obj):
                self.stats.skipped_duplicates += 1
                continue
            writer._begin()
            try:
                with self.db.atomic():  # a savepoint: a failing item leaves nothing behind
                    self.pipeline.process_item(obj)
            except Exception as exc:  # one bad item must not stop the archive
                logger.exception("could not write %s", type(obj).__name__)
                self._forget(obj)
                self._dead(payload, f"{type(exc).__name__}: {exc}")
                self._count_unstored(obj, exc)
                continue
            self.stats.items += 1
        writer.commit()
        self.queue.done()
        self.stats.batches += 1
        self.stats.seconds_writing += time.perf_counter() - started

    def _dead(self, payload: bytes, error: str) -> None:
        self.stats.dead += 1
        self.queue.dead_letter(payload, error)

    def _count_unstored(self, obj: Any, exc: BaseException) -> None:
        """An item of a crawl that could not be stored: its crawl must not end "finished"."""
        crawl_id = getattr(obj, "crawl_id", None)
        if crawl_id is None:
            return
        key = f"{self.prefix}:processing_errors"
        pipe = self.server.pipeline()
        pipe.hincrby(key, str(crawl_id), 1)
        pipe.hsetnx(key, f"{crawl_id}:first", unstored_item(obj, exc)[:500])
        pipe.execute()

    def _unprocessed(self, job: int | str, crawl_ids: dict[str, int]) -> dict[int, str]:
        """crawl id -> ``finish_reason`` for the job's crawls with pages a worker could not
        process (``crawler.distributed``) or items this writer could not store."""
        counts: dict[int, tuple[int, str]] = {}

        def add(crawl_id: int, count: int, first: str) -> None:
            before = counts.get(crawl_id, (0, first))
            counts[crawl_id] = (before[0] + count, before[1])

        pages = {k.decode(): v.decode("utf-8", "replace")
                 for k, v in self.server.hgetall(job_key(self.prefix, job, "processing_errors")).items()}
        for site, crawl_id in crawl_ids.items():
            for field in (site, ""):  # "": a page whose site was not known
                if pages.get(field, "").isdigit():
                    add(crawl_id, int(pages[field]), pages.get(f"{field}:first", ""))
        stored = self.server.hmget(f"{self.prefix}:processing_errors",
                                   [str(c) for c in crawl_ids.values()] + [f"{c}:first" for c in crawl_ids.values()])
        half = len(crawl_ids)
        for i, crawl_id in enumerate(crawl_ids.values()):
            if stored[i]:
                add(crawl_id, int(stored[i]), (stored[half + i] or b"").decode("utf-8", "replace"))
        return {crawl_id: processing_errors_reason(n, first) for crawl_id, (n, first) in counts.items()}

    def _seen_set(self, cache: dict[int, set[str]], crawl_id: int, sql: str) -> set[str]:
        seen = cache.get(crawl_id)
        if seen is None:
            seen = cache[crawl_id] = {u for (u,) in self.db.execute(sql, [crawl_id])}
        return seen

    def _duplicate(self, item: Any) -> bool:
        """True for a second verdict (or evidence) of one URL in one crawl; records the first."""
        if item.crawl_id is None:
            return False
        if isinstance(item, LinkCheck):
            seen = self._seen_set(self._checked, item.crawl_id,
                                  "SELECT url FROM link_checks WHERE crawl_id = ?")
        elif isinstance(item, Evidence):
            seen = self._seen_set(self._evidence, item.crawl_id,
                                  "SELECT url FROM snapshots WHERE crawl_id = ?"
                                  " AND render_reason LIKE 'evidence:%'")
        else:
            return False
        if item.url in seen:
            return True
        seen.add(item.url)
        return False

    def _forget(self, item: Any) -> None:
        cache = self._checked if isinstance(item, LinkCheck) else self._evidence
        if getattr(item, "crawl_id", None) is not None and item.crawl_id in cache:
            cache[item.crawl_id].discard(item.url)

    # -- control messages --------------------------------------------------------------
    def _control(self, message: dict[str, Any]) -> None:
        self.stats.controls += 1
        op = message.get("op")
        try:
            if op == "start_crawls":
                self._start_crawls(message)
            elif op == "finish_crawls":
                self._finish_crawls(message)
            else:
                logger.warning("unknown control message %r", op)
        except Exception as exc:
            logger.exception("control message %s failed", op)
            self.queue.dead_letter(encode_control("failed", message=message), f"{type(exc).__name__}: {exc}")

    def _start_crawls(self, message: dict[str, Any]) -> None:
        from archive.store import cited_urls, evidence_urls, start_crawl, trap_budget_refusals, upsert_sites

        job = message["job"]
        key = job_key(self.prefix, job, "crawls")
        if self.server.exists(key):  # the coordinator asked twice: the rows exist
            return
        if self.server.get(job_key(self.prefix, job, "state")) not in (b"starting", b"running"):
            logger.warning("job %s was given up before its crawls were created: skipped", job)
            return
        upsert_sites(self.db, message["sites"])
        crawl_ids = {row["id"]: start_crawl(self.db, row["id"], scheduled_at=message.get("scheduled_at"),
                                            log_path=message.get("log_path"))
                     for row in message["sites"]}
        # What the trap guard refused for a used-up pattern budget in each site's previous
        # crawl: the workers revisit those calendar families with a small budget, as a
        # single-machine crawl does (workers may run where the archive is not).
        refusals = {site: json.dumps(urls) for site, crawl_id in crawl_ids.items()
                    if (urls := trap_budget_refusals(self.db, site, crawl_id))}
        logger.info("job %s: crawls %s", job, crawl_ids)
        # The checklist item URLs known now: every worker screenshots the same pages as evidence.
        evidence = evidence_urls(self.db)
        # And the URLs each site's annual reports cite: checked by the job whether linked or not.
        cited = {site: json.dumps(urls) for site, urls in cited_urls(self.db).items() if site in crawl_ids}
        pipe = self.server.pipeline()  # one transaction: workers wait for "crawls", then read the rest
        if refusals:
            pipe.hset(job_key(self.prefix, job, "trap_refusals"), mapping=refusals)
        if cited:
            pipe.hset(job_key(self.prefix, job, "cited_urls"), mapping=cited)
        for i in range(0, len(evidence), 10_000):
            pipe.sadd(job_key(self.prefix, job, "evidence_urls"), *evidence[i:i + 10_000])
        pipe.hset(key, mapping={k: str(v) for k, v in crawl_ids.items()})
        pipe.execute()

    def _finish_crawls(self, message: dict[str, Any]) -> None:
        from archive.summary import crawl_summary

        job = message["job"]
        state_key = job_key(self.prefix, job, "state")
        if self.server.get(state_key) == b"closed":
            return
        raw = self.server.hgetall(job_key(self.prefix, job, "crawls"))
        crawl_ids = sorted(int(v) for v in raw.values())
        status = message.get("status", "finished")
        reason = message.get("reason", status)
        unprocessed = self._unprocessed(job, {k.decode(): int(v) for k, v in raw.items()}) \
            if status == "finished" else {}
        writer = self.pipeline.writer
        for crawl_id in crawl_ids:
            if crawl_id in unprocessed:
                writer.close_crawl(crawl_id, "incomplete", finish_reason=unprocessed[crawl_id])
            else:
                writer.close_crawl(crawl_id, status, finish_reason=reason)
        writer.commit()
        if self.post_crawl and crawl_ids:
            from archive.postcrawl import after_crawl

            try:
                after_crawl(self.db, crawl_ids)
            except Exception:  # the crawl is archived; post-crawl work can be redone
                logger.exception("post-crawl work for job %s failed", job)
        summary = crawl_summary(self.db, crawl_ids)
        for crawl_id in crawl_ids:
            self._checked.pop(crawl_id, None)
            self._evidence.pop(crawl_id, None)
        pipe = self.server.pipeline()
        pipe.set(job_key(self.prefix, job, "summary"), summary.encode("utf-8"))
        pipe.set(state_key, b"closed")
        if crawl_ids:  # the closed crawls' counts of unstored items are spent
            pipe.hdel(f"{self.prefix}:processing_errors", *[f"{c}{end}" for c in crawl_ids for end in ("", ":first")])
        for name in ("state", "summary", "crawls", "meta", "stats"):
            pipe.expire(job_key(self.prefix, job, name), JOB_RECORD_TTL)
        pipe.execute()
        self._drop_job_keys(job)
        self.stats.jobs_closed.append(int(job))
        logger.info("job %s closed (%s): crawls %s", job, status, crawl_ids)

    def _drop_job_keys(self, job: int | str) -> None:
        """Free the queue, duplicate filter and per-site state of a finished job."""
        keep = {job_key(self.prefix, job, n).encode() for n in ("state", "summary", "crawls", "meta", "stats")}
        doomed = [k for k in self.server.scan_iter(match=job_key(self.prefix, job, "*"), count=1000)
                  if k not in keep]
        for i in range(0, len(doomed), 500):
            self.server.unlink(*doomed[i:i + 500])
