"""Politeness that holds per origin host: a downloader whose per-host limits really limit,
and ``Retry-After`` honoured for 429 and 503.

Why a downloader of our own
    Scrapy 2.19 limits each host through a downloader *slot* (``CONCURRENT_REQUESTS_PER_DOMAIN``
    transfers at once, ``DOWNLOAD_DELAY`` between them). Under the asyncio reactor the slot's
    queue loop (``Downloader._process_queue``) starts each download as an asyncio *task*;
    the task marks the request as transferring only when it first runs, on a later turn of
    the event loop. Until then the loop sees the slot as free and hands it the next request,
    and the next: with no download delay the whole queue of a host went out at once (the
    simulated web saw 15 requests in flight to a host with a limit of 1, bounded only by
    ``CONCURRENT_REQUESTS``). :class:`PoliteDownloader` reserves the transfer before it
    schedules the task. (The proxy plays no part: slot keys are the origin host of the
    request URL, not the proxy's.)

    While a host is paused its queued requests would still count against
    ``CONCURRENT_REQUESTS`` and stall every other host of the crawl; they do not (up to
    that many), and the scheduler hands out requests of the least busy hosts first
    (``SCHEDULER_PRIORITY_QUEUE`` is Scrapy's ``DownloaderAwarePriorityQueue``).

    It also fixes two smaller leaks: a redirected request keeps the ``download_slot`` the
    downloader gave the original, so a redirect to another host counted against the first
    host and not its own (slots the downloader assigned itself are recomputed for every
    request); and it can *pause* a host and keep a *floor* under a host's delay, which
    AutoThrottle may otherwise lower again. Set with ``DOWNLOADER =
    "crawler.politeness.PoliteDownloader"``.

Crawl-delay
    A host's robots.txt ``Crawl-delay`` (for our User-Agent, read when Scrapy's robots.txt
    middleware sends ``robots_parsed``) is a floor under that host's delay for the rest of
    the crawl: its requests start at least that many seconds apart, whatever AutoThrottle or
    ``RANDOMIZE_DOWNLOAD_DELAY`` (which may halve a delay) make of it. It is capped per host
    at ``XXGK_MAX_CRAWL_DELAY``: a robots.txt asking for an hour between requests must not
    hold a crawl for days (a host of 100 links at 30 s takes 50 minutes; other hosts go on
    meanwhile). Browser renderings take their host slot in crawler.rendering, not here.

Retry-After
    :class:`RetryAfterMiddleware` (a downloader middleware, before Scrapy's
    ``RetryMiddleware`` in the response chain) takes 429 answers, and 503 answers that
    carry ``Retry-After``: the header (seconds or an HTTP date, read against the
    response's own ``Date`` so clock skew does not matter) says how long the *host* should
    be left alone. Within ``XXGK_RETRY_AFTER_MAX`` the host's slot is paused that long and
    the request is retried (at most ``XXGK_RETRY_AFTER_TIMES`` times); the server sees the
    retry no sooner than it asked. Beyond the cap, or when retries are used up, the answer
    goes to the spider and is recorded ``rate_limited`` (``crawler.classify``). Without a
    usable header the wait is ``XXGK_RETRY_AFTER_DEFAULT`` doubled per attempt. Every such
    answer also doubles the host's download delay for the rest of the crawl (never beyond
    what the server asked; a crawl run with ``DOWNLOAD_DELAY = 0`` keeps no delay, the
    pauses still apply).

Settings:

``XXGK_RETRY_AFTER_MAX``      longest ``Retry-After`` (seconds) we wait for (default 60);
                              a longer one is recorded ``rate_limited`` without a retry
``XXGK_RETRY_AFTER_TIMES``    retries of one request after 429/503 (default 2)
``XXGK_RETRY_AFTER_DEFAULT``  seconds to wait when the header is missing or unreadable
                              (default 10; doubled per attempt, capped by the maximum)
``XXGK_MAX_CRAWL_DELAY``      longest robots.txt ``Crawl-delay`` honoured, seconds (default 30);
                              a longer one is honoured as this many seconds
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from time import monotonic
from typing import Any

from scrapy import Request, signals
from scrapy.core.downloader import Downloader, Slot
from scrapy.http import Response
from scrapy.resolver import dnscache
from scrapy.utils.asyncio import call_later
from scrapy.utils.defer import _schedule_coro
from scrapy.utils.httpobj import urlparse_cached

__all__ = [
    "DEFAULT_MAX_CRAWL_DELAY",
    "PoliteDownloader",
    "RetryAfterMiddleware",
    "is_rate_limit_answer",
    "retry_after_seconds",
]

logger = logging.getLogger(__name__)

#: Meta key: the request's ``download_slot`` was assigned by the downloader (not asked for).
AUTO_SLOT = "xxgk_auto_slot"
#: Meta key: how many times this request was retried after a Retry-After answer.
ATTEMPTS = "xxgk_retry_after"
#: The shortest wait before a retry, whatever the header says ("Retry-After: 0" answered
#: again and again would otherwise be a tight loop).
MIN_WAIT = 1.0
#: Longest robots.txt Crawl-delay honoured unless ``XXGK_MAX_CRAWL_DELAY`` says otherwise.
DEFAULT_MAX_CRAWL_DELAY = 30.0


# --------------------------------------------------------------------------- the downloader

class PoliteDownloader(Downloader):
    """Scrapy's downloader with per-host limits that hold, host pauses and delay floors."""

    def __init__(self, crawler: Any) -> None:
        super().__init__(crawler)
        self._floors: dict[str, float] = {}
        self._paused_until: dict[str, float] = {}
        self._keys: dict[int, str] = {}  # id(slot) -> key: a Slot does not know its own key
        #: Host -> robots.txt Crawl-delay (capped): the least gap between request starts.
        self._crawl_delays: dict[str, float] = {}
        self._last_start: dict[str, float] = {}  # host -> monotonic start of its last request
        settings = crawler.settings
        self.max_crawl_delay = max(0.0, settings.getfloat("XXGK_MAX_CRAWL_DELAY", DEFAULT_MAX_CRAWL_DELAY))
        self._robots_agent = settings.get("ROBOTSTXT_USER_AGENT") or settings.get("USER_AGENT") or "*"
        crawler.signals.connect(self._robots_parsed, signal=signals.robots_parsed)

    def get_slot_key(self, request: Request) -> str:
        if request.meta.get(AUTO_SLOT):
            # Assigned by us to an earlier form of this request (before a redirect): the
            # origin may have changed, so judge the URL afresh (as Scrapy does without one).
            key = urlparse_cached(request).hostname or ""
            return dnscache.get(key, key) if self.ip_concurrency else key
        return super().get_slot_key(request)

    def _get_slot(self, request: Request, spider: Any = None) -> tuple[str, Slot]:
        asked = request.meta.get(self.DOWNLOAD_SLOT) is not None and not request.meta.get(AUTO_SLOT)
        key, slot = super()._get_slot(request)
        if not asked:
            request.meta[AUTO_SLOT] = True
        self._keys[id(slot)] = key
        floor = self._floors.get(key, 0.0)
        if slot.delay < floor:  # AutoThrottle may have lowered it since
            slot.delay = floor
        return key, slot

    # -- politeness requests from middlewares ---------------------------------------------
    def pause(self, key: str, seconds: float) -> None:
        """Send nothing to ``key`` for ``seconds`` (queued requests wait)."""
        until = monotonic() + max(0.0, seconds)
        if until > self._paused_until.get(key, 0.0):
            self._paused_until[key] = until

    def slow_down(self, key: str, delay: float) -> None:
        """Keep at least ``delay`` seconds between requests to ``key`` for the rest of the crawl."""
        if delay <= self._floors.get(key, 0.0):
            return
        self._floors[key] = delay
        slot = self.slots.get(key)
        if slot is not None and slot.delay < delay:
            slot.delay = delay

    def obey_crawl_delay(self, key: str, seconds: float) -> float:
        """Start ``key``'s requests at least ``seconds`` apart (capped at ``XXGK_MAX_CRAWL_DELAY``);
        returns the delay applied."""
        delay = min(max(0.0, seconds), self.max_crawl_delay)
        if delay > self._crawl_delays.get(key, 0.0):
            self._crawl_delays[key] = delay
            self.slow_down(key, delay)
        return self._crawl_delays.get(key, 0.0)

    def _robots_parsed(self, robotparser: Any, request: Request, **_: Any) -> None:
        try:
            asked = robotparser.crawl_delay(self._robots_agent)
        except Exception:  # a parser without Crawl-delay support: nothing asked
            logger.debug("no Crawl-delay from %r", robotparser, exc_info=True)
            return
        if not asked or asked <= 0:
            return
        key = self.get_slot_key(request)
        applied = self.obey_crawl_delay(key, float(asked))
        logger.info("robots.txt of %s asks Crawl-delay %g s: requests to it %g s apart%s", key, asked,
                    applied, "" if applied >= asked else " (XXGK_MAX_CRAWL_DELAY)")

    def delay_of(self, key: str) -> float:
        """The current delay of ``key``'s slot (the floor, or the default for a new slot)."""
        slot = self.slots.get(key)
        return max(slot.delay if slot is not None else self._delay, self._floors.get(key, 0.0))

    # -- the queue -------------------------------------------------------------------------
    def needs_backout(self) -> bool:
        """Scrapy's test, but requests queued for a paused host (Retry-After) hold no
        connection: meanwhile up to ``CONCURRENT_REQUESTS`` more may come in for other hosts
        (never more, so a long pause cannot pull the whole scheduler into memory)."""
        waiting = self._waiting_on_pauses()
        return 0 < self.total_concurrency <= len(self.active) - min(waiting, self.total_concurrency)

    def _waiting_on_pauses(self) -> int:
        if not self._paused_until:
            return 0
        now = monotonic()
        for key in [k for k, until in self._paused_until.items() if until <= now]:
            del self._paused_until[key]
        return sum(len(slot.queue) for key in self._paused_until if (slot := self.slots.get(key)) is not None)

    def _process_queue(self, slot: Slot) -> None:
        if slot.latercall:
            return
        now = monotonic()
        key = self._keys.get(id(slot))
        wait = self._paused_until.get(key, 0.0) - now if key is not None else 0.0
        # Crawl-delay is a minimum: download_delay() may randomise the slot's delay below it.
        crawl_delay = self._crawl_delays.get(key, 0.0) if key is not None else 0.0
        delay = max(slot.download_delay(), crawl_delay)
        if delay:
            wait = max(wait, delay - now + slot.lastseen)
        if crawl_delay:  # kept by host too: the slot may be collected (and forgotten) between requests
            wait = max(wait, crawl_delay - now + self._last_start.get(key, float("-inf")))
        if wait > 0:
            slot.latercall = call_later(wait, self._latercall, slot)
            return
        while slot.queue and slot.free_transfer_slots() > 0:
            slot.lastseen = now
            if crawl_delay:
                self._last_start[key] = now  # type: ignore[index]
            request, queue_dfd = slot.queue.popleft()
            # Reserve the transfer now: the task that would mark it runs only on a later
            # turn of the event loop, and until then the slot would look free (see above).
            slot.transferring.add(request)
            _schedule_coro(self._wait_for_download(slot, request, queue_dfd))
            if delay:  # one request per delay: no burst
                self._process_queue(slot)
                break

    def _slot_gc(self, age: float = 60) -> None:
        super()._slot_gc(age)
        live = {id(slot) for slot in self.slots.values()}
        for slot_id in [i for i in self._keys if i not in live]:
            del self._keys[slot_id]


# --------------------------------------------------------------------------- Retry-After

def _header(response: Response, name: bytes) -> str:
    value = response.headers.get(name)
    return value.decode("latin-1").strip() if value else ""


def retry_after_seconds(value: str | bytes | None, *, date: str | bytes | None = None,
                        now: datetime | None = None) -> float | None:
    """Seconds a ``Retry-After`` value asks for, or None when missing or unreadable.

    ``value`` is delta-seconds (``"120"``) or an HTTP date; a date is read against
    ``date`` (the response's ``Date`` header, the server's own clock) when given, else
    against ``now`` (default: the current UTC time). A date in the past means 0.
    """
    if isinstance(value, bytes):
        value = value.decode("latin-1")
    if isinstance(date, bytes):
        date = date.decode("latin-1")
    value = (value or "").strip()
    if not value:
        return None
    if value.isdigit():
        return float(value)
    try:
        seconds = float(value)  # not RFC 9110, but sent: "1.5"
    except ValueError:
        seconds = None
    if seconds is not None:
        return seconds if seconds >= 0 else None
    when = _http_date(value)
    if when is None:
        return None
    base = _http_date(date) if date else None
    if base is None:
        base = now or datetime.now(UTC)
    return max(0.0, (when - base).total_seconds())


def _http_date(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        parsed = parsedate_to_datetime(value.strip())
    except (TypeError, ValueError, IndexError):
        return None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def is_rate_limit_answer(status: int | None, retry_after: str | bytes | None) -> bool:
    """429, or 503 with a ``Retry-After`` header: the server asks us to come back later."""
    return status == 429 or (status == 503 and bool((retry_after or "").strip()))


class RetryAfterMiddleware:
    """Downloader middleware: wait as long as 429/503 ``Retry-After`` asks, then retry (bounded)."""

    def __init__(self, crawler: Any = None, *, max_wait: float = 60.0, times: int = 2,
                 default_wait: float = 10.0) -> None:
        self.crawler = crawler
        self.max_wait = max_wait
        self.times = times
        self.default_wait = default_wait

    @classmethod
    def from_crawler(cls, crawler: Any) -> RetryAfterMiddleware:
        settings = crawler.settings
        return cls(crawler, max_wait=settings.getfloat("XXGK_RETRY_AFTER_MAX", 60.0),
                   times=settings.getint("XXGK_RETRY_AFTER_TIMES", 2),
                   default_wait=settings.getfloat("XXGK_RETRY_AFTER_DEFAULT", 10.0))

    def _downloader(self) -> Any:
        engine = getattr(self.crawler, "engine", None)
        return getattr(engine, "downloader", None)

    def _stat(self, name: str) -> None:
        stats = getattr(self.crawler, "stats", None)
        if stats is not None:
            stats.inc_value(f"xxgk/retry_after/{name}")

    def _slot_key(self, request: Request, downloader: Any) -> str:
        if downloader is not None:
            return downloader.get_slot_key(request)
        return urlparse_cached(request).hostname or ""

    def wait_for(self, response: Response, attempts: int) -> tuple[float, bool]:
        """(seconds to wait, whether the server said so) for the ``attempts``-th retry."""
        asked = retry_after_seconds(_header(response, b"Retry-After"), date=_header(response, b"Date"))
        if asked is not None:
            return max(asked, MIN_WAIT), True
        return min(self.default_wait * (2 ** attempts), self.max_wait), False

    def process_response(self, request: Request, response: Response, spider: Any = None) -> Request | Response:
        if not is_rate_limit_answer(response.status, _header(response, b"Retry-After")):
            return response
        attempts = int(request.meta.get(ATTEMPTS, 0))
        wait, asked = self.wait_for(response, attempts)
        downloader = self._downloader()
        key = self._slot_key(request, downloader)
        self._slow_down(downloader, key, wait)
        if wait > self.max_wait or attempts >= self.times:
            # Give up: the spider records rate_limited. Scrapy's RetryMiddleware must not
            # retry this 503 at once (that is the tight loop Retry-After is there to stop).
            request.meta["dont_retry"] = True
            self._stat("over_max" if wait > self.max_wait else "gave_up")
            logger.info("rate limited: %s (HTTP %s, Retry-After %s s%s) after %d retries", request.url,
                        response.status, f"{wait:g}", "" if asked else " assumed", attempts)
            return response
        if downloader is not None and hasattr(downloader, "pause"):
            downloader.pause(key, wait)
        self._stat("retried")
        logger.info("HTTP %s for %s: retrying in %g s (attempt %d of %d)", response.status, request.url,
                    wait, attempts + 1, self.times)
        retry = request.copy()
        retry.meta[ATTEMPTS] = attempts + 1
        retry.dont_filter = True
        return retry

    def _slow_down(self, downloader: Any, key: str, wait: float) -> None:
        """Double the host's delay for the rest of the crawl, never beyond what it asked for."""
        if downloader is None or not hasattr(downloader, "slow_down"):
            return
        current = downloader.delay_of(key)
        target = min(current * 2, wait, self.max_wait)
        if target > current:
            downloader.slow_down(key, target)
