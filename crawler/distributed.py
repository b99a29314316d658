"""Distributed crawling: many ``xxgk crawl --workers redis://...`` processes, one crawl.

Imported only when the ``XXGK_REDIS_URL`` setting is given (single-machine crawls never
import redis). :meth:`crawler.spiders.portal.PortalSpider.update_settings` then calls
:func:`configure_settings`, which swaps in:

* a shared request queue and duplicate filter in Redis (scrapy-redis:
  ``SCHEDULER = crawler.distributed.LeasedScheduler``, a ``scrapy_redis.scheduler.Scheduler``;
  ``DUPEFILTER_CLASS = scrapy_redis.dupefilter.RFPDupeFilter``; ``SCHEDULER_PERSIST``);
* leases: a request popped from the queue is moved, in the same Redis script, into the
  worker's in-flight hash; it leaves it only once Scrapy has finished with it (downloaded,
  its callback or errback run, every request it produced pushed to the queue and every item
  to the writer's list). :class:`LeaseTracker` knows when that is through public Scrapy
  APIs only: an outermost spider middleware (:class:`LeaseSpiderMiddleware`) and an errback
  wrapper see every request and item a callback or errback produced, the scheduler sees each
  such request arrive, the ``item_scraped`` / ``item_dropped`` / ``item_error`` signals each
  item leave the pipeline, and the scheduler also sees the request a downloader middleware
  put in its place (redirect, retry). A worker that stops heart-beating (killed, machine
  gone) is reaped by the others: its in-flight requests go back to the queue. Marking a
  request seen and queueing it is one script too, so nothing is ever "seen" but not queued;
* :class:`GlobalPolitenessMiddleware`: per-host concurrency and delay enforced across all
  workers (a Redis lease per request and host, next-start time per host, on Redis' clock);
* :class:`SharedRobotsTxtMiddleware`: each host's robots.txt fetched once per job, the same
  rules for every worker;
* :class:`RedisItemPipeline`: items go to the Redis list drained by ``xxgk archive-writer``
  (:mod:`archive.itemqueue`), never to SQLite;
* :class:`WorkerExtension`: heartbeat, acknowledgements, reaping, and the end of the crawl
  (seeds enqueued, queue empty, nothing in flight anywhere: one worker wins, atomically
  marks the job done and queues the ``finish_crawls`` message behind every item).

Per-site state shared by the workers (:class:`DistributedSiteRun`): the page budget, the
trap guard's counters, and the site's not-found probe. The set of URLs already judged stays
per worker; the single writer keeps one verdict per URL and crawl.

Settings (``-s NAME=VALUE``; ``xxgk crawl --workers`` sets the first three):

``XXGK_REDIS_URL``          ``redis://host:port/db``: distributed mode
``XXGK_JOB``                the job (one distributed crawl of some sites) to work on
``XXGK_REDIS_PREFIX``       key prefix (default ``xxgk``): one prefix per archive
``XXGK_WORKER_TTL``         seconds without heartbeat before a worker is presumed dead (15)
``XXGK_HOST_CONCURRENCY``   requests in flight per host, all workers together
                            (default ``CONCURRENT_REQUESTS_PER_DOMAIN``)
``XXGK_HOST_DELAY``         seconds between request starts per host, all workers together
                            (default ``DOWNLOAD_DELAY``)
``XXGK_HOST_LEASE_TTL``     seconds after which a host slot is freed even if never released
                            (default 2 x ``DOWNLOAD_TIMEOUT`` + 60)
``XXGK_ROBOTS_TIMEOUT``     seconds for a robots.txt fetch (default ``DOWNLOAD_TIMEOUT``, at least 10)
``XXGK_ITEM_BACKLOG``       items waiting for the writer above which workers pause (50000)

Redis must be trusted and private (requests travel pickled, as in scrapy-redis); a
standalone Redis (scripts touch keys they compute), version 5 or later.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import itertools
import json
import logging
import os
import pickle
import random
import secrets
import socket
import threading
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterable, Iterator
from typing import Any
from urllib.parse import urlsplit

from scrapy import Request, signals
from scrapy.exceptions import DontCloseSpider, IgnoreRequest, NotConfigured
from scrapy.http import Response
from scrapy.http.request import NO_CALLBACK
from scrapy.utils.defer import maybe_deferred_to_future
from scrapy.utils.httpobj import urlparse_cached
from scrapy.utils.misc import arg_to_iter
from scrapy_redis.queue import PriorityQueue
from scrapy_redis.scheduler import Scheduler
from twisted.internet.defer import Deferred
from twisted.python.failure import Failure

from archive.itemqueue import DEFAULT_PREFIX, ItemQueue, connect, encode_control, encode_item, job_key
from crawler.fetch import page_error, site_of, went_through_proxy
from crawler.robots import PoliteRobotsTxtMiddleware
from crawler.spiders.portal import SiteRun, revisiting_guard
from crawler.urls import TrapGuard
from schedules.registry import Site

logger = logging.getLogger(__name__)

#: Request meta that belongs to one worker's attempt, not to the request.
_TRANSIENT_META = ("xxgk_lease", "xxgk_lease_host", "xxgk_host_slot")
#: What the proxy middleware sets from a worker's environment: its proxy, and its credentials.
_PROXY_META = ("proxy", "_auth_proxy", "_scheme_proxy")
_PROXY_AUTH = b"Proxy-Authorization"

# -- Redis scripts -----------------------------------------------------------------------------
# Requests are stored as in scrapy-redis' PriorityQueue (a sorted set scored -priority); an
# in-flight entry keeps "score\ndata" so that it can go back exactly as it was.
# Members are "host\0request": the pop takes the first of the ARGV[3] best requests whose
# host is not in ARGV[4:] (hosts this worker already keeps busy up to their limit).
_POP = """
local skip = {}
for i = 4, #ARGV do skip[ARGV[i]] = true end
local r = redis.call('ZRANGE', KEYS[1], 0, tonumber(ARGV[3]) - 1, 'WITHSCORES')
for i = 1, #r, 2 do
  local m = r[i]
  local p = string.find(m, '\\0', 1, true)
  local host = p and string.sub(m, 1, p - 1) or ''
  if not skip[host] then
    redis.call('ZREM', KEYS[1], m)
    redis.call('HSET', KEYS[2], ARGV[1], r[i + 1] .. '\\n' .. m)
    redis.call('SADD', KEYS[3], ARGV[2])
    return m
  end
end
return false
"""
_PUSH_UNIQUE = """
if ARGV[3] ~= '' and redis.call('SADD', KEYS[2], ARGV[3]) == 0 then return 0 end
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1])
return 1
"""
_REQUEUE_ONE = """
local kv = redis.call('HGETALL', KEYS[1])
for i = 2, #kv, 2 do
  local v = kv[i]
  local p = string.find(v, '\\n', 1, true)
  redis.call('ZADD', KEYS[2], tonumber(string.sub(v, 1, p - 1)), string.sub(v, p + 1))
end
redis.call('DEL', KEYS[1])
if #kv > 0 then redis.call('HINCRBY', KEYS[3], 'requeued', #kv / 2) end
return #kv / 2
"""
# One lease back to the queue (its processing failed half-way). KEYS: in-flight, queue, stats.
_NACK = """
local v = redis.call('HGET', KEYS[1], ARGV[1])
if not v then return 0 end
local p = string.find(v, '\\n', 1, true)
redis.call('ZADD', KEYS[2], tonumber(string.sub(v, 1, p - 1)), string.sub(v, p + 1))
redis.call('HDEL', KEYS[1], ARGV[1])
redis.call('HINCRBY', KEYS[3], 'nacked', 1)
return 1
"""
_RELEASE_LOCK = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""
# KEYS: workers, queue, stats, seeded. ARGV: job key prefix, worker heartbeat prefix.
_REAP = """
local n, dead = 0, 0
for _, w in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  if redis.call('EXISTS', ARGV[2] .. w) == 0 then
    local inflight = ARGV[1] .. 'inflight:' .. w
    local kv = redis.call('HGETALL', inflight)
    for i = 2, #kv, 2 do
      local v = kv[i]
      local p = string.find(v, '\\n', 1, true)
      redis.call('ZADD', KEYS[2], tonumber(string.sub(v, 1, p - 1)), string.sub(v, p + 1))
      n = n + 1
    end
    redis.call('DEL', inflight)
    redis.call('SREM', KEYS[1], w)
    dead = dead + 1
  end
end
if n > 0 then redis.call('HINCRBY', KEYS[3], 'requeued', n) end
if dead > 0 then redis.call('HINCRBY', KEYS[3], 'dead_workers', dead) end
local s = redis.call('GET', KEYS[4])
if s and s ~= 'done' and redis.call('EXISTS', ARGV[2] .. s) == 0 then redis.call('DEL', KEYS[4]) end
return {dead, n}
"""
# KEYS: seeded, queue, workers, state, items. ARGV: job key prefix, finish payload.
_DONE = """
if redis.call('GET', KEYS[1]) ~= 'done' then return 0 end
if redis.call('ZCARD', KEYS[2]) > 0 then return 0 end
for _, w in ipairs(redis.call('SMEMBERS', KEYS[3])) do
  if redis.call('HLEN', ARGV[1] .. 'inflight:' .. w) > 0 then return 0 end
end
if redis.call('GET', KEYS[4]) == 'running' then
  redis.call('SET', KEYS[4], 'done')
  redis.call('RPUSH', KEYS[5], ARGV[2])
  return 1
end
return 2
"""
# Budget and the stateful half of the trap guard, for one new URL of one site. Per site, not
# per URL: a set of URL digests, a set of "path digest|query keys" and a hash of variant counts
# per path (one Redis key per path made millions of keys at national scale).
# KEYS: seen, query variants, variant counts, pattern counts, budget.
# ARGV: URL digest, query keys ('' when no query), pattern ('' when none), max query variants,
#       per-pattern budget, max pages, path digest, digest of the URL without its query.
_ADMIT = """
if redis.call('SISMEMBER', KEYS[1], ARGV[1]) == 1 then return 1 end
if tonumber(redis.call('GET', KEYS[5]) or '0') >= tonumber(ARGV[6]) then return -1 end
local variant = nil
local n = tonumber(redis.call('HGET', KEYS[3], ARGV[7]) or '0')
if ARGV[2] == '' then
  if n >= tonumber(ARGV[4]) then return -2 end
else
  variant = ARGV[7] .. '|' .. ARGV[2]
  if redis.call('SISMEMBER', KEYS[2], variant) == 1 then
    variant = nil
  elseif n + redis.call('SISMEMBER', KEYS[1], ARGV[8]) >= tonumber(ARGV[4]) then
    return -2
  end
end
if ARGV[3] ~= '' and tonumber(redis.call('HGET', KEYS[4], ARGV[3]) or '0') >= tonumber(ARGV[5]) then
  return -3
end
if variant then
  redis.call('SADD', KEYS[2], variant)
  redis.call('HINCRBY', KEYS[3], ARGV[7], 1)
end
if ARGV[3] ~= '' then redis.call('HINCRBY', KEYS[4], ARGV[3], 1) end
redis.call('SADD', KEYS[1], ARGV[1])
redis.call('INCR', KEYS[5])
return 1
"""
_ADMIT_REASONS = {-1: "budget", -2: "query-variants", -3: "pattern-budget"}
# Per-host slot. KEYS: slots (zset token -> expiry ms), next start (ms).
# ARGV: token, limit, delay ms, lease ms, worker heartbeat prefix. Returns 0 or ms to wait.
_ACQUIRE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
local limit = tonumber(ARGV[2])
if redis.call('ZCARD', KEYS[1]) >= limit then
  for _, m in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
    local w = string.match(m, '^(.*)|[^|]*$')
    if w and redis.call('EXISTS', ARGV[5] .. w) == 0 then redis.call('ZREM', KEYS[1], m) end
  end
  if redis.call('ZCARD', KEYS[1]) >= limit then return 20 end
end
local nxt = tonumber(redis.call('GET', KEYS[2]) or '0')
if now < nxt then return nxt - now end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[4]), ARGV[1])
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[4]) * 2)
local delay = tonumber(ARGV[3])
if delay > 0 then redis.call('SET', KEYS[2], now + delay, 'PX', delay + 1000) end
return 0
"""
# KEYS: current job, job counter. ARGV: job key prefix ("<prefix>:job:"), mode, starting TTL s.
_OPEN_JOB = """
local cur = redis.call('GET', KEYS[1])
if cur then
  local st = redis.call('GET', ARGV[1] .. cur .. ':state')
  if st == 'starting' or st == 'running' then
    if ARGV[2] == 'create' then return {-1, cur, st} end
    return {0, cur, st}
  end
end
if ARGV[2] == 'join' then return {-2, cur or '', ''} end
local n = redis.call('INCR', KEYS[2])
redis.call('SET', KEYS[1], n)
redis.call('SET', ARGV[1] .. n .. ':state', 'starting', 'EX', tonumber(ARGV[3]))
return {1, tostring(n), 'starting'}
"""


# -- settings ----------------------------------------------------------------------------------
def configure_settings(settings: Any) -> None:
    """Switch a crawl's settings to distributed mode (called before the crawler starts)."""
    url = settings.get("XXGK_REDIS_URL")
    job = settings.get("XXGK_JOB")
    if not url or not job:
        raise NotConfigured("distributed mode needs XXGK_REDIS_URL and XXGK_JOB")
    prefix = settings.get("XXGK_REDIS_PREFIX") or DEFAULT_PREFIX
    priority = "spider"
    settings.set("REDIS_URL", url, priority=priority)
    settings.set("SCHEDULER", "crawler.distributed.LeasedScheduler", priority=priority)
    settings.set("SCHEDULER_QUEUE_CLASS", "crawler.distributed.LeasedPriorityQueue", priority=priority)
    settings.set("DUPEFILTER_CLASS", "scrapy_redis.dupefilter.RFPDupeFilter", priority=priority)
    settings.set("SCHEDULER_PERSIST", True, priority=priority)
    settings.set("SCHEDULER_FLUSH_ON_START", False, priority=priority)
    settings.set("SCHEDULER_IDLE_BEFORE_CLOSE", 0, priority=priority)
    settings.set("SCHEDULER_QUEUE_KEY", job_key(prefix, job, "requests"), priority=priority)
    settings.set("SCHEDULER_DUPEFILTER_KEY", job_key(prefix, job, "dupefilter"), priority=priority)
    middlewares = dict(settings.getdict("DOWNLOADER_MIDDLEWARES"))
    # Last before the download handler: after robots.txt, proxies and conditional requests.
    middlewares["crawler.distributed.GlobalPolitenessMiddleware"] = 950
    middlewares["scrapy.downloadermiddlewares.robotstxt.RobotsTxtMiddleware"] = None
    middlewares["crawler.distributed.SharedRobotsTxtMiddleware"] = 100
    # The components a worker cannot work without are merged into whatever the user set,
    # above the command line's priority (40): a `-s SPIDER_MIDDLEWARES=...` of their own
    # would otherwise replace them when `scrapy crawl` copies its settings onto the crawler
    # after this ran (a worker without its lease middleware never ends its job; one with the
    # archive pipeline would write the archive beside the writer).
    components = 50
    settings.set("DOWNLOADER_MIDDLEWARES", middlewares, priority=components)
    spider_middlewares = dict(settings.getdict("SPIDER_MIDDLEWARES"))
    # Closest to the engine: it sees what the scraper receives, after every other middleware.
    spider_middlewares["crawler.distributed.LeaseSpiderMiddleware"] = -1000
    settings.set("SPIDER_MIDDLEWARES", spider_middlewares, priority=components)
    settings.set("ITEM_PIPELINES", {"crawler.distributed.RedisItemPipeline": 300}, priority=components)
    extensions = dict(settings.getdict("EXTENSIONS"))
    extensions["crawler.distributed.WorkerExtension"] = 100
    settings.set("EXTENSIONS", extensions, priority=components)


def host_limit(settings: Any) -> int:
    """Requests in flight per host, all workers together."""
    return settings.getint("XXGK_HOST_CONCURRENCY", 0) or settings.getint("CONCURRENT_REQUESTS_PER_DOMAIN", 8)


def site_to_json(site: Site) -> dict[str, Any]:
    """A registry site as JSON (workers on other machines need no registry file)."""
    return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(site).items()}


def site_from_json(data: dict[str, Any]) -> Site:
    names = {f.name for f in dataclasses.fields(Site)}
    values = {k: tuple(v) if isinstance(v, list) else v for k, v in data.items() if k in names}
    return Site(**values)


def new_worker_id() -> str:
    host = socket.gethostname().replace("|", "-").replace(":", "-")
    return f"{host}:{os.getpid()}:{secrets.token_hex(3)}"


# -- jobs (used by the CLI and by workers) -----------------------------------------------------
class JobError(RuntimeError):
    """A distributed job cannot be created, joined or used."""


class Jobs:
    """Create, join, inspect and abort distributed crawl jobs under one key prefix."""

    def __init__(self, server: Any, prefix: str = DEFAULT_PREFIX) -> None:
        self.server = server
        self.prefix = prefix
        self._open = server.register_script(_OPEN_JOB)

    def key(self, job: int | str, name: str) -> str:
        return job_key(self.prefix, job, name)

    def open(self, mode: str, *, starting_ttl: int = 600) -> tuple[str, int, str]:
        """``mode``: ``create`` | ``join`` | ``auto``. Returns (role, job, state), where role
        is ``coordinator`` (a new job, state ``starting``) or ``worker``."""
        code, job, state = self._open(keys=[f"{self.prefix}:job:current", f"{self.prefix}:job:seq"],
                                      args=[f"{self.prefix}:job:", mode, starting_ttl])
        code = int(code)
        job_s = job.decode() if isinstance(job, bytes) else str(job)
        state_s = state.decode() if isinstance(state, bytes) else str(state)
        if code == -1:
            raise JobError(f"job {job_s} is {state_s}: wait for it, join it (without --coordinator) "
                           "or abandon it with --abort")
        if code == -2:
            raise JobError("no distributed crawl is running to join")
        return ("coordinator" if code == 1 else "worker"), int(job_s), state_s

    def current(self) -> int | None:
        raw = self.server.get(f"{self.prefix}:job:current")
        return int(raw) if raw else None

    def state(self, job: int) -> str | None:
        raw = self.server.get(self.key(job, "state"))
        return raw.decode() if raw else None

    def publish(self, job: int, sites: list[Site], settings: dict[str, str], coordinator: str,
                scheduled_at: str | None = None) -> None:
        """Record what the job crawls, and ask the archive writer for its ``crawls`` rows."""
        meta = {"sites": json.dumps([site_to_json(s) for s in sites], ensure_ascii=False),
                "settings": json.dumps(settings), "coordinator": coordinator,
                "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
        self.server.hset(self.key(job, "meta"), mapping=meta)
        rows = [s.to_row() for s in sites]
        ItemQueue(self.server, self.prefix).push(
            encode_control("start_crawls", job=job, sites=rows, scheduled_at=scheduled_at))

    def crawl_ids(self, job: int) -> dict[str, int]:
        return {k.decode(): int(v) for k, v in self.server.hgetall(self.key(job, "crawls")).items()}

    def wait_for_crawl_ids(self, job: int, expected: int, timeout: float,
                           progress: Any = None) -> dict[str, int]:
        deadline = time.monotonic() + timeout
        next_note = time.monotonic() + 5
        while True:
            ids = self.crawl_ids(job)
            if len(ids) >= expected:
                return ids
            if time.monotonic() >= deadline:
                raise JobError(f"job {job}: no crawls rows after {timeout:.0f} s: is "
                               f"`xxgk archive-writer --redis ...` running for prefix {self.prefix!r}?")
            if progress and time.monotonic() >= next_note:
                progress(f"job {job}: waiting for the archive writer to create the crawls rows ...")
                next_note = time.monotonic() + 15
            time.sleep(0.1)

    def set_running(self, job: int) -> None:
        self.server.set(self.key(job, "state"), "running")

    def wait_running(self, job: int, timeout: float) -> str:
        deadline = time.monotonic() + timeout
        while True:
            state = self.state(job)
            if state != "starting":
                return state or "gone"
            if time.monotonic() >= deadline:
                raise JobError(f"job {job} is still starting after {timeout:.0f} s")
            time.sleep(0.1)

    def settings(self, job: int) -> dict[str, str]:
        raw = self.server.hget(self.key(job, "meta"), "settings")
        return json.loads(raw) if raw else {}

    def wait_closed(self, job: int, timeout: float | None = None, poll: float = 0.2,
                    progress: Any = None) -> str | None:
        """Wait until the writer closed the job; return its summary (None on timeout)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        next_note = time.monotonic() + 30
        while deadline is None or time.monotonic() < deadline:
            if self.state(job) in ("closed", None):
                summary = self.server.get(self.key(job, "summary"))
                return summary.decode("utf-8") if summary else ""
            if progress and time.monotonic() >= next_note:
                backlog = ItemQueue(self.server, self.prefix).backlog()
                progress(f"job {job}: waiting for the archive writer to close the crawls "
                         f"({backlog} item(s) not yet written)")
                next_note = time.monotonic() + 30
            time.sleep(poll)
        return None

    def give_up(self, job: int) -> None:
        """A job whose setup failed: nobody may join it, the writer creates no crawls for it."""
        self.server.set(self.key(job, "state"), "aborted", ex=3600)

    def abort(self, job: int) -> bool:
        """Stop a job: workers close, the writer closes its crawls as ``incomplete``."""
        state = self.state(job)
        if state not in ("starting", "running", "done"):
            return False
        self.server.set(self.key(job, "state"), "aborted")
        ItemQueue(self.server, self.prefix).push(
            encode_control("finish_crawls", job=job, status="incomplete", reason="aborted"))
        return True

    def stats(self, job: int) -> dict[str, int]:
        return {k.decode(): int(v) for k, v in self.server.hgetall(self.key(job, "stats")).items()}

    def workers(self, job: int) -> dict[str, dict[str, Any]]:
        """Registered workers of a job: id -> {host, pid, alive, in_flight}."""
        info = {k.decode(): json.loads(v) for k, v in self.server.hgetall(self.key(job, "workerinfo")).items()}
        for worker, data in info.items():
            data["alive"] = bool(self.server.exists(f"{self.prefix}:worker:{worker}"))
            data["in_flight"] = int(self.server.hlen(self.key(job, f"inflight:{worker}")))
        return info


# -- the worker's view of the job --------------------------------------------------------------
class DistributedCrawl:
    """One worker process's handle on its job: sites, crawl ids, leases, heartbeat, the end."""

    #: How far down the queue a pop looks for a request of a host that is not busy.
    POP_WINDOW = 256

    def __init__(self, server: Any, *, prefix: str, job: int, worker_id: str | None = None,
                 ttl: float = 15.0, host_limit: int = 4, revisit_budget: int = 10) -> None:
        self.server = server
        self.host_limit = max(1, host_limit)
        #: Requests of each host this worker has popped and not finished.
        self.in_progress: Counter[str] = Counter()
        self.prefix = prefix
        self.job = job
        self.worker_id = worker_id or new_worker_id()
        self.ttl = ttl
        self.jobs = Jobs(server, prefix)
        self.key_prefix = job_key(prefix, job, "")
        self.queue_key = job_key(prefix, job, "requests")
        self.dupefilter_key = job_key(prefix, job, "dupefilter")
        self.workers_key = job_key(prefix, job, "workers")
        self.seeded_key = job_key(prefix, job, "seeded")
        self.state_key = job_key(prefix, job, "state")
        self.stats_key = job_key(prefix, job, "stats")
        self.inflight_key = job_key(prefix, job, f"inflight:{self.worker_id}")
        self.worker_prefix = f"{prefix}:worker:"
        self.heartbeat_key = self.worker_prefix + self.worker_id
        self.items = ItemQueue(server, prefix)
        self._pop = server.register_script(_POP)
        self._push_unique = server.register_script(_PUSH_UNIQUE)
        self._requeue_one = server.register_script(_REQUEUE_ONE)
        self._reap = server.register_script(_REAP)
        self._done = server.register_script(_DONE)
        self._nack = server.register_script(_NACK)
        self._release_lock = server.register_script(_RELEASE_LOCK)
        self.admit_script = server.register_script(_ADMIT)
        self._leases = itertools.count(1)
        self._heartbeat_stop = threading.Event()
        self._heartbeat_thread: threading.Thread | None = None
        meta = server.hgetall(job_key(prefix, job, "meta"))
        if b"sites" not in meta:
            raise JobError(f"job {job} under prefix {prefix!r} does not exist")
        self.sites = [site_from_json(d) for d in json.loads(meta[b"sites"])]
        self.crawl_ids = self.jobs.crawl_ids(job)
        missing = [s.id for s in self.sites if s.id not in self.crawl_ids]
        if missing:
            raise JobError(f"job {job} has no crawl ids for {', '.join(missing)}")
        #: Calendar families each site's previous crawl cut short (published by the writer
        #: with the crawl ids): revisited with ``revisit_budget`` URLs (``TrapGuard``).
        self.known_traps = {site.decode(): TrapGuard.calendar_patterns(json.loads(urls)) for site, urls
                            in server.hgetall(job_key(prefix, job, "trap_refusals")).items()}
        self.revisit_budget = revisit_budget
        #: Checklist item URLs the archive knew when the job started (the spider's evidence_urls).
        self.evidence_urls = frozenset(url.decode() for url in server.smembers(job_key(prefix, job, "evidence_urls")))
        #: Per site, the URLs its annual reports cite (the spider's cited_urls).
        self.cited_urls = {site.decode(): json.loads(urls) for site, urls
                           in server.hgetall(job_key(prefix, job, "cited_urls")).items()}
        self.info = {"host": socket.gethostname(), "pid": os.getpid(), "started": time.time()}
        self.leases = LeaseTracker(self)

    @classmethod
    def from_settings(cls, settings: Any) -> DistributedCrawl:
        server = connect(settings.get("XXGK_REDIS_URL"))
        return cls(server, prefix=settings.get("XXGK_REDIS_PREFIX") or DEFAULT_PREFIX,
                   job=settings.getint("XXGK_JOB"), worker_id=settings.get("XXGK_WORKER_ID") or None,
                   ttl=settings.getfloat("XXGK_WORKER_TTL", 15.0), host_limit=host_limit(settings),
                   revisit_budget=settings.getint("XXGK_TRAP_REVISIT_BUDGET", 10))

    def new_run(self, site: Site) -> DistributedSiteRun:
        guard = revisiting_guard(site.id, self.known_traps.get(site.id, frozenset()), self.revisit_budget, logger)
        return DistributedSiteRun(site, self.crawl_ids.get(site.id), dist=self, guard=guard)

    # -- heartbeat -------------------------------------------------------------------------
    def beat(self) -> None:
        info = json.dumps(self.info)
        pipe = self.server.pipeline()
        pipe.set(self.heartbeat_key, info, px=int(self.ttl * 1000))
        pipe.sadd(self.workers_key, self.worker_id)
        pipe.hset(job_key(self.prefix, self.job, "workerinfo"), self.worker_id, info)
        pipe.execute()

    def start_heartbeat(self) -> None:
        """Beat from a thread: a busy reactor must not make a live worker look dead."""
        self.beat()

        def loop() -> None:
            while not self._heartbeat_stop.wait(self.ttl / 4):
                try:
                    self.beat()
                except Exception as exc:  # Redis away for a moment: try again next beat
                    logger.warning("heartbeat failed: %s", exc)

        self._heartbeat_thread = threading.Thread(target=loop, name="xxgk-heartbeat", daemon=True)
        self._heartbeat_thread.start()

    def stop_heartbeat(self) -> None:
        self._heartbeat_stop.set()
        if self._heartbeat_thread is not None:
            self._heartbeat_thread.join(timeout=5)
        self.server.delete(self.heartbeat_key)

    # -- the queue -------------------------------------------------------------------------
    def pop(self) -> tuple[str, bytes] | None:
        """Lease the best queued request whose host this worker does not keep busy already.

        Without the host check a worker would take a run of one host's requests and hold
        them waiting for that host's politeness slots, while other hosts' requests wait.
        """
        lease = str(next(self._leases))
        busy = [h for h, n in self.in_progress.items() if n >= self.host_limit]
        data = self._pop(keys=[self.queue_key, self.inflight_key, self.workers_key],
                         args=[lease, self.worker_id, self.POP_WINDOW, *busy])
        if data is None:
            return None
        return lease, data

    def started(self, host: str) -> None:
        self.in_progress[host] += 1

    def push(self, data: bytes, score: float, fingerprint: str | None) -> bool:
        return bool(self._push_unique(keys=[self.queue_key, self.dupefilter_key],
                                      args=[data, score, fingerprint or ""]))

    def _finished(self, host: str) -> None:
        self.in_progress[host] -= 1
        if self.in_progress[host] <= 0:
            del self.in_progress[host]

    def ack(self, lease: str, host: str) -> None:
        """The leased request is done: everything it produced is in Redis. Drop the lease."""
        self._finished(host)
        self.server.hdel(self.inflight_key, lease)

    def nack(self, lease: str, host: str) -> None:
        """Something the request produced could not be handed on: queue the request again."""
        self._finished(host)
        self._nack(keys=[self.inflight_key, self.queue_key, self.stats_key], args=[lease])

    def requeue_own(self) -> int:
        """Put this worker's unfinished requests back (it is closing before they finished)."""
        return int(self._requeue_one(keys=[self.inflight_key, self.queue_key, self.stats_key]))

    def reap(self) -> tuple[int, int]:
        """Re-queue the in-flight requests of workers whose heartbeat expired."""
        dead, requeued = self._reap(keys=[self.workers_key, self.queue_key, self.stats_key, self.seeded_key],
                                    args=[self.key_prefix, self.worker_prefix])
        if requeued or dead:
            logger.warning("reaped %d dead worker(s): %d request(s) back in the queue", dead, requeued)
        return int(dead), int(requeued)

    def record_processing_error(self, site_id: str | None, error: str) -> None:
        """Count a page this worker could not process, for its site's crawl (the archive
        writer reads the counts when it closes the job's crawls)."""
        field = site_id or ""
        try:
            pipe = self.server.pipeline()
            pipe.hincrby(job_key(self.prefix, self.job, "processing_errors"), field, 1)
            pipe.hsetnx(job_key(self.prefix, self.job, "processing_errors"), f"{field}:first", error[:500])
            pipe.execute()
        except Exception:  # Redis gone: the error is in this worker's log all the same
            logger.warning("could not record a processing error in Redis", exc_info=True)

    def try_finish(self) -> int:
        """1: this call ended the job (and queued ``finish_crawls``); 2: it had ended; 0: not yet."""
        stats = self.jobs.stats(self.job)
        reason = "finished"
        if stats.get("requeued"):
            reason = (f"finished ({stats['requeued']} request(s) re-queued from "
                      f"{stats.get('dead_workers', 0)} dead worker(s))")
        payload = encode_control("finish_crawls", job=self.job, status="finished", reason=reason)
        return int(self._done(keys=[self.seeded_key, self.queue_key, self.workers_key, self.state_key,
                                    self.items.key], args=[self.key_prefix, payload]))

    def state(self) -> str | None:
        return self.jobs.state(self.job)

    def release_lock(self, key: str, owner: bytes) -> bool:
        """Delete ``key`` if ``owner`` still holds it."""
        return bool(self._release_lock(keys=[key], args=[owner]))

    def queue_length(self) -> int:
        return int(self.server.zcard(self.queue_key))

    # -- seeds -----------------------------------------------------------------------------
    def claim_seeding(self) -> bool:
        return bool(self.server.set(self.seeded_key, self.worker_id, nx=True))

    def seeding_done(self) -> None:
        self.server.set(self.seeded_key, "done")

    def seed_requests(self, spider: Any) -> Iterator[Request]:
        """The seeds of every site, from exactly one worker (whoever claims them first)."""
        if not self.claim_seeding():
            return
        for run in spider.runs.values():
            yield from spider._seeds(run)
        self.seeding_done()


def _digest(text: str) -> bytes:
    """12 bytes standing for a URL or path in Redis sets (URLs themselves cost ~8x more)."""
    return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=12).digest()


class DistributedSiteRun(SiteRun):
    """A site's crawl state whose budget, trap-guard counters and probe live in Redis."""

    #: URLs of the site this worker knows Redis admitted (saves a round trip per repeated link).
    ADMITTED_CACHE = 20_000

    def __init__(self, site: Site, crawl_id: int | None, *, dist: DistributedCrawl,
                 guard: TrapGuard | None = None) -> None:
        super().__init__(site, crawl_id, guard=guard or TrapGuard())
        self.dist = dist
        base = job_key(dist.prefix, dist.job, f"site:{site.id}:")
        self.keys = {name: base + name for name in ("seen", "variants", "variant_counts", "patterns",
                                                    "budget", "probe")}
        self._admitted: set[str] = set()
        self._probe_final = False

    def admit(self, url: str) -> bool:
        self.refusal = None
        if url in self._admitted:
            return True
        guard = self.guard
        reason = _stateless_refusal(guard, url)
        if reason is None:
            parts = urlsplit(url)
            keys = "&".join(sorted({q.partition("=")[0] for q in parts.query.split("&") if q}))
            pattern, budget = guard.budget_of(url)
            plain = parts._replace(query="", fragment="").geturl()
            code = int(self.dist.admit_script(
                keys=[self.keys["seen"], self.keys["variants"], self.keys["variant_counts"],
                      self.keys["patterns"], self.keys["budget"]],
                args=[_digest(url), keys, pattern or "", guard.max_query_variants, budget,
                      self.site.max_pages, _digest(f"{parts.hostname or ''}{parts.path}"), _digest(plain)]))
            if code == 1:
                if len(self._admitted) >= self.ADMITTED_CACHE:
                    self._admitted.clear()  # only a cache of Redis' answer: bound the memory
                self._admitted.add(url)
                return True
            reason = _ADMIT_REASONS.get(code, "refused")
        if reason != "budget":
            guard.denied[reason] += 1
            self.refusal = reason
        return False

    def count(self, url: str | None = None) -> None:
        self.dist.server.incr(self.keys["budget"])

    def over_budget(self) -> bool:
        return int(self.dist.server.get(self.keys["budget"]) or 0) >= self.site.max_pages

    def current_probe(self) -> Any:
        if self.probe is None and not self._probe_final:
            raw = self.dist.server.get(self.keys["probe"])
            if raw == b"none":
                self._probe_final = True
            elif raw:
                self.probe = pickle.loads(raw)
                self._probe_final = True
        return self.probe

    def set_probe(self, probe: Any) -> None:
        self.probe = probe
        self._probe_final = True
        self.dist.server.set(self.keys["probe"], pickle.dumps(probe) if probe is not None else b"none")


def _stateless_refusal(guard: Any, url: str) -> str | None:
    """The trap guard's checks that need no memory: depth, repetition, calendar range."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "malformed"
    segments = [s for s in parts.path.split("/") if s]
    if len(segments) > guard.max_depth:
        return "depth"
    if guard._repeated(segments):
        return "repeated-segments"
    if guard._calendar_out_of_range(segments, parts.query):
        return "calendar-range"
    return None


def attach(crawler: Any, spider: Any) -> DistributedCrawl:
    """Join the spider to its job: sites and crawl ids from Redis, shared per-site state."""
    dist = DistributedCrawl.from_settings(crawler.settings)
    spider.sites = dist.sites
    spider.crawl_ids = dict(dist.crawl_ids)
    # Built now, not in start(): requests of other workers may arrive before start() runs.
    spider.runs = {site.id: dist.new_run(site) for site in dist.sites}
    return dist


def _dist_of(spider: Any) -> DistributedCrawl:
    dist = getattr(spider, "distributed", None)
    if dist is None:
        raise NotConfigured("distributed components need a spider with a DistributedCrawl")
    return dist


# -- leases: when is a popped request done? ---------------------------------------------------
@dataclasses.dataclass(eq=False)
class _Lease:
    lease: str
    host: str
    streams: int = 0  # outputs of its callback/errback being iterated now
    opened: bool = False  # some output was iterated (the request reached its callback/errback)
    ended: bool = False  # its life ended without (more) output: error, no errback, redirect, retry
    pending: int = 0  # requests and items it produced, not yet in Redis
    failed: bool = False  # one of them could not be handed on: queue the request again


class LeaseTracker:
    """Decides when a leased request may leave the worker's in-flight hash, with public APIs.

    A request is done when everything it produced is safely in Redis. Its life ends in one
    of these ways, each observed without touching Scrapy's internals:

    * a response: the callback's output passes :class:`LeaseSpiderMiddleware`, the spider
      middleware closest to the engine, which counts every request and item in it;
    * a failure: the errback runs through :class:`_LeaseErrback`, installed when the request
      is popped (and unwrapped again whenever a request is serialized), which counts its output
      the same way, or ends the lease at once when there is no output;
    * a downloader middleware replaced it (redirect, retry): the replacement, carrying a copy
      of the lease in its meta, reaches :meth:`LeasedScheduler.enqueue_request`;
    * the callback raised: ``process_spider_exception`` and the ``spider_error`` signal.

    A produced request is in Redis once :meth:`LeasedScheduler.enqueue_request` returns (or
    found it a duplicate); an item once ``item_scraped`` / ``item_dropped`` fired (the only
    pipeline pushes it to Redis), or it failed (``item_error``: the lease is *nacked*, the
    request queued again). A worker killed at any point before the lease is dropped leaves it
    in Redis, where the reaper finds it.
    """

    def __init__(self, dist: DistributedCrawl) -> None:
        self.dist = dist
        self.leases: dict[str, _Lease] = {}
        self._children: dict[int, tuple[Any, _Lease]] = {}

    def __len__(self) -> int:
        return len(self.leases)

    def leased(self, request: Request, lease: str, host: str) -> None:
        """A request just popped from the queue (and moved to the in-flight hash)."""
        entry = self.leases[lease] = _Lease(lease, host)
        request.meta["xxgk_lease"] = lease
        request.errback = _LeaseErrback(self, entry, request.errback)

    def get(self, meta: dict[str, Any] | None) -> _Lease | None:
        lease = (meta or {}).get("xxgk_lease")
        return self.leases.get(lease) if lease is not None else None

    # -- output of a callback or errback ---------------------------------------------------
    def track(self, entry: _Lease, output: Iterable[Any]) -> Iterator[Any]:
        entry.streams += 1
        entry.opened = True
        try:
            for obj in output:
                self.child(entry, obj)
                yield obj
        finally:
            entry.streams -= 1
            self._maybe_done(entry)

    async def atrack(self, entry: _Lease, output: AsyncIterator[Any]) -> AsyncIterator[Any]:
        entry.streams += 1
        entry.opened = True
        try:
            async for obj in output:
                self.child(entry, obj)
                yield obj
        finally:
            entry.streams -= 1
            self._maybe_done(entry)

    def child(self, entry: _Lease, obj: Any) -> None:
        if obj is None:
            return
        if isinstance(obj, Request):
            # A copy of the parent (``response.request.replace(...)``) carries its lease:
            # it is a new request, not the parent's replacement.
            for key in _TRANSIENT_META:
                obj.meta.pop(key, None)
        self._children[id(obj)] = (obj, entry)
        entry.pending += 1

    def child_done(self, obj: Any, ok: bool = True) -> bool:
        """A produced request or item reached Redis (or failed to); False if not a child."""
        found = self._children.get(id(obj))
        if found is None or found[0] is not obj:
            return False
        del self._children[id(obj)]
        entry = found[1]
        entry.pending -= 1
        if not ok:
            entry.failed = True
        self._maybe_done(entry)
        return True

    def end(self, entry: _Lease | None) -> None:
        """The request's life ended without (further) output."""
        if entry is not None:
            entry.ended = True
            self._maybe_done(entry)

    def _maybe_done(self, entry: _Lease) -> None:
        if entry.streams or entry.pending or not (entry.ended or entry.opened):
            return
        if self.leases.pop(entry.lease, None) is None:
            return  # already done
        try:
            if entry.failed:
                logger.warning("lease %s: output not handed on; request queued again", entry.lease)
                self.dist.nack(entry.lease, entry.host)
            else:
                self.dist.ack(entry.lease, entry.host)
        except Exception as exc:  # Redis away: the lease stays, and returns to the queue on close
            logger.error("cannot release lease %s: %s", entry.lease, exc)

    # -- signals ---------------------------------------------------------------------------
    def item_scraped(self, item: Any, **_kw: Any) -> None:
        self.child_done(item)

    def item_dropped(self, item: Any, **_kw: Any) -> None:
        self.child_done(item)

    def item_error(self, item: Any, **_kw: Any) -> None:
        self.child_done(item, ok=False)

    def spider_error(self, failure: Failure, response: Any = None, **_kw: Any) -> None:
        meta = getattr(response, "meta", None) if isinstance(response, Response) else None
        if meta is None:
            request = getattr(response, "request", None) or getattr(failure, "request", None)
            meta = getattr(request, "meta", None)
        self.end(self.get(meta))
        # The page went unprocessed (a bug, or input nothing anticipated): its site's crawl
        # must not end "finished" (see crawler.pipelines), whichever worker met it.
        self.dist.record_processing_error(site_of(meta), page_error(getattr(response, "url", ""), failure))


class _LeaseErrback:
    """A leased request's errback: the spider's own (if any), its output tracked."""

    def __init__(self, tracker: LeaseTracker, entry: _Lease, original: Any) -> None:
        self.tracker = tracker
        self.entry = entry
        self.original = original

    def __call__(self, failure: Failure) -> Any:
        if self.original is None:
            self.tracker.end(self.entry)
            return failure  # Scrapy re-raises it and logs the download error, as without us
        try:
            output = self.original(failure)
        except BaseException:
            self.tracker.end(self.entry)
            raise
        if output is None or isinstance(output, Failure):
            self.tracker.end(self.entry)
            return output
        if hasattr(output, "__aiter__"):
            return self.tracker.atrack(self.entry, output)
        return self.tracker.track(self.entry, arg_to_iter(output))


def _unwrapped_errback(request: Request) -> Any:
    errback = request.errback
    while isinstance(errback, _LeaseErrback):
        errback = errback.original
    return errback


class LeaseSpiderMiddleware:
    """Outermost spider middleware: counts what each leased request's callback produced."""

    def __init__(self, tracker: LeaseTracker) -> None:
        self.tracker = tracker

    @classmethod
    def from_crawler(cls, crawler: Any) -> LeaseSpiderMiddleware:
        return cls(_dist_of(crawler.spider).leases)

    def process_spider_output(self, response: Response, result: Iterable[Any]) -> Iterator[Any]:
        entry = self.tracker.get(response.meta)
        yield from (result if entry is None else self.tracker.track(entry, result))

    async def process_spider_output_async(self, response: Response,
                                          result: AsyncIterator[Any]) -> AsyncIterator[Any]:
        entry = self.tracker.get(response.meta)
        source = result if entry is None else self.tracker.atrack(entry, result)
        async for obj in source:
            yield obj

    def process_spider_exception(self, response: Response, exception: BaseException) -> None:
        self.tracker.end(self.tracker.get(response.meta))
        return None


# -- scheduler ---------------------------------------------------------------------------------
class LeasedPriorityQueue(PriorityQueue):
    """scrapy-redis' priority queue, popping into the worker's in-flight hash (a lease)."""

    def __init__(self, server: Any, spider: Any, key: str, serializer: Any = None) -> None:
        super().__init__(server, spider, key, serializer)
        self.dist = _dist_of(spider)

    def _encode_request(self, request: Request) -> bytes:
        meta = request.meta
        drop = list(_TRANSIENT_META)
        auth = None
        if meta.get("_scheme_proxy"):  # the proxy came from this worker's environment
            drop += _PROXY_META
            # A retry or same-scheme redirect keeps the credentials the proxy middleware put
            # in the header: they must not go into Redis, nor to another worker's proxy (the
            # worker that pops the request adds its own, from its environment, as for meta).
            auth = request.headers.pop(_PROXY_AUTH, None)
        saved = {k: meta.pop(k) for k in drop if k in meta}
        errback = request.errback
        request.errback = _unwrapped_errback(request)  # scrapy-redis stores the spider's method
        try:
            data = super()._encode_request(request)
        finally:
            meta.update(saved)
            if auth is not None:
                request.headers[_PROXY_AUTH] = auth
            request.errback = errback
        host = (urlparse_cached(request).hostname or "").lower().encode("ascii", "replace")
        return host + b"\0" + data

    def _decode_request(self, encoded_request: bytes) -> Request:
        host, _, data = encoded_request.partition(b"\0")
        request = super()._decode_request(data)
        request.meta["xxgk_lease_host"] = host.decode("ascii", "replace")
        return request

    def push(self, request: Request) -> None:
        self.push_unique(request, None)

    def push_unique(self, request: Request, fingerprint: str | None) -> bool:
        """Mark seen and queue in one step: a crash never leaves a URL seen but unqueued.

        The score is ``-priority`` plus a random fraction below 0.5: priorities keep their
        order, and within one priority requests come out shuffled. (In member order they
        would come out grouped by host, and every worker would wait on the same host's
        politeness slots while requests for other hosts sit in the queue.)
        """
        score = -request.priority + random.random() * 0.5
        return self.dist.push(self._encode_request(request), score, fingerprint)

    def pop(self, timeout: int = 0) -> Request | None:
        popped = self.dist.pop()
        if popped is None:
            return None
        lease, data = popped
        request = self._decode_request(data)
        host = request.meta["xxgk_lease_host"]
        self.dist.started(host)
        self.dist.leases.leased(request, lease, host)
        return request


class LeasedScheduler(Scheduler):
    """``scrapy_redis.scheduler.Scheduler`` with leases and atomic see-and-queue."""

    def enqueue_request(self, request: Request) -> bool:
        leases = self.queue.dist.leases
        # Children lost their copy of the parent's lease (LeaseTracker.child), so a request
        # still carrying a live lease is a downloader middleware's replacement of the leased
        # request (redirect, retry): the leased request's life ends once this one is queued.
        replaced = leases.get(request.meta)
        fingerprint = None if request.dont_filter else self.df.request_fingerprint(request)
        try:
            queued = self.queue.push_unique(request, fingerprint)
        except Exception as exc:  # Redis away: the parent request is queued again (nack)
            logger.error("cannot queue %s: %s", request, exc)
            leases.child_done(request, ok=False)
            if replaced is not None:
                replaced.failed = True
                leases.end(replaced)
            return False
        leases.child_done(request)  # in Redis now (or known there: a duplicate)
        leases.end(replaced)
        if not queued:
            self.df.log(request, self.spider)
            return False
        if self.stats:
            self.stats.inc_value("scheduler/enqueued/redis")
        return True

    def next_request(self) -> Request | None:
        request = self.queue.pop()
        if request is not None and self.stats:
            self.stats.inc_value("scheduler/dequeued/redis")
        return request


# -- politeness --------------------------------------------------------------------------------
class GlobalPolitenessMiddleware:
    """Per-host concurrency and delay shared by every worker (Redis slots with expiry)."""

    def __init__(self, server: Any, prefix: str, worker_id: str, limit: int, delay: float,
                 lease_ttl: float, stats: Any) -> None:
        self.server = server
        self.prefix = prefix
        self.worker_id = worker_id
        self.limit = max(1, limit)
        self.delay_ms = int(delay * 1000)
        self.lease_ms = int(lease_ttl * 1000)
        self.stats = stats
        self._acquire = server.register_script(_ACQUIRE)
        self._tokens = itertools.count(1)

    @classmethod
    def from_crawler(cls, crawler: Any) -> GlobalPolitenessMiddleware:
        dist = _dist_of(crawler.spider)
        s = crawler.settings
        limit = host_limit(s)
        delay = s.getfloat("XXGK_HOST_DELAY", -1.0)
        if delay < 0:
            delay = s.getfloat("DOWNLOAD_DELAY", 0.0)
        lease_ttl = s.getfloat("XXGK_HOST_LEASE_TTL", 0.0) or 2 * s.getfloat("DOWNLOAD_TIMEOUT", 180) + 60
        return cls(dist.server, dist.prefix, dist.worker_id, limit, delay, lease_ttl, crawler.stats)

    def _keys(self, host: str) -> list[str]:
        return [f"{self.prefix}:host:{host}:slots", f"{self.prefix}:host:{host}:next"]

    async def process_request(self, request: Request, spider: Any = None) -> None:
        if request.meta.get("xxgk_host_slot"):
            return None
        host = (urlparse_cached(request).hostname or "").lower()
        token = f"{self.worker_id}|{next(self._tokens)}"
        keys = self._keys(host)
        waited = False
        while True:
            wait_ms = int(self._acquire(keys=keys, args=[token, self.limit, self.delay_ms, self.lease_ms,
                                                        f"{self.prefix}:worker:"]))
            if wait_ms == 0:
                break
            waited = True
            await asyncio.sleep(min(wait_ms, 200) / 1000 * (0.75 + random.random() / 2))
        if waited and self.stats is not None:
            self.stats.inc_value("xxgk/host_slot_waits")
        request.meta["xxgk_host_slot"] = (host, token)
        return None

    def _release(self, request: Request) -> None:
        slot = request.meta.pop("xxgk_host_slot", None)
        if slot:
            host, token = slot
            self.server.zrem(self._keys(host)[0], token)

    def process_response(self, request: Request, response: Response, spider: Any = None) -> Response:
        self._release(request)
        return response

    def process_exception(self, request: Request, exception: BaseException, spider: Any = None) -> None:
        self._release(request)
        return None


# -- robots.txt --------------------------------------------------------------------------------
class SharedRobotsTxtMiddleware(PoliteRobotsTxtMiddleware):
    """robots.txt fetched once per host for the whole job; every worker obeys the same copy.

    Scrapy's middleware fetches robots.txt in every process: N workers would fetch it N times
    and, should one of those fetches fail (Scrapy then allows everything on that host), obey
    different rules. Here the first worker to need a host's robots.txt fetches it (a Redis
    lock) and stores status and body in the job; the others wait for that copy. The fetch
    gets ``XXGK_ROBOTS_TIMEOUT`` seconds (default: ``DOWNLOAD_TIMEOUT``, at least 10): a slow
    robots.txt is no reason to ignore it.
    """

    def __init__(self, crawler: Any) -> None:
        super().__init__(crawler)
        self.dist = _dist_of(crawler.spider)
        s = crawler.settings
        self.timeout = s.getfloat("XXGK_ROBOTS_TIMEOUT", 0) or max(s.getfloat("DOWNLOAD_TIMEOUT", 180), 10.0)
        self.wait_seconds = self.timeout * (s.getint("RETRY_TIMES", 2) + 1) + 15

    def _key(self, netloc: str) -> str:
        return job_key(self.dist.prefix, self.dist.job, f"robots:{netloc}")

    async def robot_parser(self, request: Request) -> Any:
        url = urlparse_cached(request)
        netloc = url.netloc
        if netloc not in self._parsers:
            self._parsers[netloc] = Deferred()
            try:
                response = await self._shared_robots(f"{url.scheme}://{netloc}/robots.txt", netloc)
                await self._parse_robots(response, netloc, request)
            except Exception as exc:
                if not isinstance(exc, IgnoreRequest):
                    logger.error("Error downloading %s: %s", f"{url.scheme}://{netloc}/robots.txt", exc)
                self._robots_error(exc, netloc)
            self._stats.inc_value("robotstxt/request_count")
        parser = self._parsers[netloc]
        if isinstance(parser, Deferred):
            parser = await maybe_deferred_to_future(parser)
            # Only the first waiter gets the parser from the Deferred (see
            # crawler.robots.PoliteRobotsTxtMiddleware.robot_parser): the settled one is cached.
            settled = self._parsers.get(netloc)
            return parser if settled is None or isinstance(settled, Deferred) else settled
        return parser

    async def _shared_robots(self, robots_url: str, netloc: str) -> Response:
        server = self.dist.server
        key = self._key(netloc)
        deadline = time.monotonic() + self.wait_seconds
        while True:
            cached = server.get(key)
            if cached is not None:
                return self._from_cache(robots_url, cached)
            if server.set(key + ":lock", self.dist.worker_id, nx=True, ex=int(self.wait_seconds)):
                break
            if time.monotonic() >= deadline:  # the fetching worker is stuck: fetch it ourselves
                break
            owner = server.get(key + ":lock")
            if owner and not server.exists(self.dist.worker_prefix + owner.decode()):
                # The fetching worker died (its heartbeat expired): take over now, not after
                # the lock's own expiry, or every request to the host would wait that long.
                self.dist.release_lock(key + ":lock", owner)
                continue
            await asyncio.sleep(0.1)
        robots_request = Request(robots_url, priority=self.DOWNLOAD_PRIORITY, callback=NO_CALLBACK,
                                 meta={"dont_obey_robotstxt": True, "download_timeout": self.timeout})
        try:
            response = await self.crawler.engine.download_async(robots_request)
        except Exception as exc:
            server.set(key, b"error\n" + f"{type(exc).__name__}\n{exc}".encode("utf-8", "replace"))
            raise
        server.set(key, self._to_cache(response))
        return response

    @staticmethod
    def _to_cache(response: Response) -> bytes:
        """The job's copy of a robots.txt answer: what :func:`crawler.robots.judge_answer`
        reads (status, headers, whether a proxy answered) and the body."""
        meta = response.request.meta if getattr(response, "request", None) is not None else {}
        head = {"status": response.status,
                "headers": {k.decode("latin-1"): [v.decode("latin-1") for v in values]
                            for k, values in response.headers.items()},
                "via_proxy": went_through_proxy(meta)}
        return json.dumps(head).encode() + b"\n" + response.body

    @staticmethod
    def _from_cache(robots_url: str, cached: bytes) -> Response:
        head, _, body = cached.partition(b"\n")
        if head == b"error":
            # The fetching worker's failure, as its own type: judged (crawler.robots) as the
            # same failure, so every worker disallows or allows the host alike.
            name, _, message = body.decode("utf-8", "replace").partition("\n")
            raise type(name if name.isidentifier() else "RobotsTxtError", (Exception,), {})(message)
        if head.isdigit():  # a bare status (no headers known)
            return Response(robots_url, status=int(head), body=body)
        # Headers and the proxy flag travel too: without them a proxy's "no such host" page
        # (Squid's X-Squid-Error) read as the origin's 5xx, and a worker that met the host
        # after a retry excluded it while the fetching worker checked it.
        answer = json.loads(head)
        request = Request(robots_url, meta={"proxy": "shared robots.txt copy"} if answer["via_proxy"] else {})
        return Response(robots_url, status=int(answer["status"]), headers=answer["headers"], body=body,
                        request=request)


# -- items -------------------------------------------------------------------------------------
class RedisItemPipeline:
    """Push every item to the archive writer's list; pause while the writer is far behind."""

    def __init__(self, queue: ItemQueue, high_water: int) -> None:
        self.queue = queue
        self.high_water = max(100, high_water)
        self.pushed = 0

    @classmethod
    def from_crawler(cls, crawler: Any) -> RedisItemPipeline:
        dist = _dist_of(crawler.spider)
        return cls(dist.items, crawler.settings.getint("XXGK_ITEM_BACKLOG", 50000))

    async def process_item(self, item: Any, spider: Any = None) -> Any:
        backlog = self.queue.push(encode_item(item))
        self.pushed += 1
        if backlog > self.high_water:
            logger.info("archive writer is %d items behind: pausing", backlog)
            while self.queue.backlog() > self.high_water // 2:
                await asyncio.sleep(0.5)
        return item


# -- the worker's lifecycle --------------------------------------------------------------------
class WorkerExtension:
    """Heartbeat, acknowledgements, reaping dead workers, and ending the job together."""

    POKE_SECONDS = 0.2

    def __init__(self, crawler: Any) -> None:
        self.crawler = crawler
        self.dist = _dist_of(crawler.spider)
        self._loop: Any = None
        self._ticks = 0
        self._reap_every = max(1, int(self.dist.ttl / 2 / self.POKE_SECONDS))
        crawler.signals.connect(self.spider_opened, signal=signals.spider_opened)
        crawler.signals.connect(self.spider_idle, signal=signals.spider_idle)
        crawler.signals.connect(self.spider_closed, signal=signals.spider_closed)
        # Public signals tell the lease tracker when produced items are in Redis.
        leases = self.dist.leases
        crawler.signals.connect(leases.item_scraped, signal=signals.item_scraped)
        crawler.signals.connect(leases.item_dropped, signal=signals.item_dropped)
        crawler.signals.connect(leases.item_error, signal=signals.item_error)
        crawler.signals.connect(leases.spider_error, signal=signals.spider_error)

    @classmethod
    def from_crawler(cls, crawler: Any) -> WorkerExtension:
        return cls(crawler)

    def spider_opened(self, spider: Any) -> None:
        from twisted.internet import task

        dist = self.dist
        dist.start_heartbeat()
        self._loop = task.LoopingCall(self._tick)
        self._loop.start(self.POKE_SECONDS, now=False)
        logger.info("worker %s joined job %s (%d sites)", dist.worker_id, dist.job, len(dist.sites))

    def _tick(self) -> None:
        """Wake the engine (other workers' requests) and notice an aborted job."""
        engine = self.crawler.engine
        # Only a latency optimisation (Scrapy has no public "look at the scheduler again"):
        # without it an idle worker still sees other workers' requests on Scrapy's own 5 s
        # heartbeat. Correctness (leases, recovery) does not depend on it.
        slot = getattr(engine, "_slot", None)
        if slot is not None and getattr(slot, "nextcall", None) is not None:
            slot.nextcall.schedule()
        self._ticks += 1
        if self._ticks % self._reap_every == 0:
            try:
                self.dist.reap()  # busy workers reap too: a dead worker's requests come back soon
            except Exception as exc:
                logger.warning("cannot reap: %s", exc)
        if self._ticks % 5 == 0:
            try:
                state = self.dist.state()
            except Exception as exc:
                logger.warning("cannot read the job state: %s", exc)
                return
            if state in ("aborted", "closed", None) and self.crawler.spider is not None:
                from scrapy.utils.defer import deferred_from_coro

                self._loop.stop()
                deferred_from_coro(engine.close_spider_async(reason=state or "gone"))

    def spider_idle(self, spider: Any) -> None:
        dist = self.dist
        state = dist.state()
        if state != "running":
            return  # done, closed, aborted: let the spider close
        dist.reap()
        if dist.claim_seeding():  # the worker that claimed the seeds died before queueing them
            logger.warning("re-seeding job %s: the seeding worker died", dist.job)
            for run in spider.runs.values():
                for request in spider._seeds(run):
                    self.crawler.engine.crawl(request)
            dist.seeding_done()
            raise DontCloseSpider
        outcome = dist.try_finish()
        if outcome == 1:
            logger.info("job %s: every request is done; the archive writer closes the crawls", dist.job)
            return
        if outcome == 2:
            return
        raise DontCloseSpider

    def spider_closed(self, spider: Any, reason: str) -> None:
        dist = self.dist
        if self._loop is not None and self._loop.running:
            self._loop.stop()
        try:
            returned = dist.requeue_own()
            if returned:
                logger.warning("closing (%s) with %d request(s) unfinished: back in the queue", reason,
                               returned)
            dist.server.srem(dist.workers_key, dist.worker_id)
        finally:
            dist.stop_heartbeat()
