"""Politeness on fixture requests and responses: the downloader's per-host slots, Retry-After.

The end-to-end proofs (what the simulated web's server saw) are in tests/test_e2e_crawl.py;
robots.txt's Crawl-delay and unreadable robots.txt files are crawled here, against extra pages.
"""

from __future__ import annotations

import statistics
from datetime import UTC, datetime
from typing import Any

import pytest
from scrapy import Request
from scrapy.http import HtmlResponse, Response, TextResponse

from archive import states as S
from crawler.classify import classify
from crawler.fetch import Fetch
from crawler.politeness import (
    ATTEMPTS,
    AUTO_SLOT,
    PoliteDownloader,
    RetryAfterMiddleware,
    is_rate_limit_answer,
    retry_after_seconds,
)

URL = "http://busy.example-univ.edu.cn/page.htm"
HOST = "busy.example-univ.edu.cn"


# -- Retry-After values ------------------------------------------------------------------------
@pytest.mark.parametrize(("value", "expected"), [
    ("120", 120.0), (b"7", 7.0), (" 3 ", 3.0), ("0", 0.0), ("1.5", 1.5),
    ("", None), (None, None), ("-5", None), ("soon", None), ("Fri, 99 Foo 2026", None),
])
def test_retry_after_delta_seconds(value, expected):
    assert retry_after_seconds(value) == expected


def test_retry_after_http_date_is_read_against_the_servers_date():
    # The server's clock is what counts: its Date header, not ours (which may be off by hours).
    assert retry_after_seconds("Wed, 21 Oct 2015 07:28:30 GMT", date="Wed, 21 Oct 2015 07:28:00 GMT") == 30.0
    assert retry_after_seconds(b"Wed, 21 Oct 2015 07:28:30 GMT", date=b"Wed, 21 Oct 2015 07:29:00 GMT") == 0.0
    now = datetime(2015, 10, 21, 7, 27, 30, tzinfo=UTC)
    assert retry_after_seconds("Wed, 21 Oct 2015 07:28:30 GMT", now=now) == 60.0
    # an unreadable Date header falls back to our clock
    assert retry_after_seconds("Wed, 21 Oct 2015 07:28:30 GMT", date="garbage", now=now) == 60.0


def test_which_answers_ask_us_to_come_back():
    assert is_rate_limit_answer(429, None) and is_rate_limit_answer(429, "5")
    assert is_rate_limit_answer(503, "5") and is_rate_limit_answer(503, b"5")
    assert not is_rate_limit_answer(503, None) and not is_rate_limit_answer(503, "  ")
    assert not is_rate_limit_answer(500, "5") and not is_rate_limit_answer(200, "5")


# -- the middleware ----------------------------------------------------------------------------
class FakeDownloader:
    """What RetryAfterMiddleware asks of crawler.engine.downloader (a PoliteDownloader)."""

    def __init__(self, delay: float = 0.0) -> None:
        self.delay = delay
        self.pauses: list[tuple[str, float]] = []
        self.floors: list[tuple[str, float]] = []

    def get_slot_key(self, request: Request) -> str:
        return HOST

    def pause(self, key: str, seconds: float) -> None:
        self.pauses.append((key, seconds))

    def slow_down(self, key: str, delay: float) -> None:
        self.floors.append((key, delay))
        self.delay = delay

    def delay_of(self, key: str) -> float:
        return self.delay


class FakeCrawler:
    def __init__(self, downloader: FakeDownloader) -> None:
        self.engine = type("Engine", (), {"downloader": downloader})()
        self.stats = None


def middleware(delay: float = 0.0, **kw: Any) -> tuple[RetryAfterMiddleware, FakeDownloader]:
    downloader = FakeDownloader(delay)
    settings = {"max_wait": 10.0, "times": 2, "default_wait": 3.0, **kw}
    return RetryAfterMiddleware(FakeCrawler(downloader), **settings), downloader


def answer(status: int, request: Request, **headers: str) -> Response:
    return HtmlResponse(URL, status=status, headers=headers, body=b"<p>busy</p>", request=request)


def test_429_pauses_the_host_and_retries_after_the_wait():
    mw, downloader = middleware()
    request = Request(URL, meta={"xxgk": {"site": "s"}})
    retry = mw.process_response(request, answer(429, request, **{"Retry-After": "4"}))
    assert isinstance(retry, Request) and retry is not request
    assert retry.url == URL and retry.dont_filter and retry.meta[ATTEMPTS] == 1
    assert retry.meta["xxgk"] == {"site": "s"}
    assert downloader.pauses == [(HOST, 4.0)]  # the host, not just this URL, waits
    assert "dont_retry" not in request.meta


def test_retries_are_bounded_then_the_answer_reaches_the_spider():
    mw, downloader = middleware(times=2)
    request = Request(URL)
    for attempt in (1, 2):
        request = mw.process_response(request, answer(429, request, **{"Retry-After": "1"}))
        assert isinstance(request, Request) and request.meta[ATTEMPTS] == attempt
    response = answer(429, request, **{"Retry-After": "1"})
    assert mw.process_response(request, response) is response
    assert len(downloader.pauses) == 2
    verdict = classify(Fetch(url=URL, status=429, headers={"retry-after": b"1"}))
    assert verdict.state == S.RATE_LIMITED


def test_retry_after_zero_is_not_a_tight_loop():
    mw, downloader = middleware()
    request = Request(URL)
    assert isinstance(mw.process_response(request, answer(429, request, **{"Retry-After": "0"})), Request)
    assert downloader.pauses == [(HOST, 1.0)]


def test_a_wait_beyond_the_cap_is_not_waited_for():
    mw, downloader = middleware(max_wait=10.0)
    request = Request(URL)
    response = answer(429, request, **{"Retry-After": "3600"})
    assert mw.process_response(request, response) is response
    assert downloader.pauses == [] and request.meta["dont_retry"] is True


def test_503_with_retry_after_waits_instead_of_retrying_at_once():
    mw, downloader = middleware()
    request = Request(URL)
    response = answer(503, request, **{"Retry-After": "Wed, 21 Oct 2015 07:28:02 GMT",
                                       "Date": "Wed, 21 Oct 2015 07:28:00 GMT"})
    retry = mw.process_response(request, response)
    assert isinstance(retry, Request) and downloader.pauses == [(HOST, 2.0)]
    # Given up, it is rate_limited (not server_error), and Scrapy's RetryMiddleware, which
    # would retry a 503 at once, is told not to.
    request = Request(URL, meta={ATTEMPTS: 2})
    response = answer(503, request, **{"Retry-After": "2"})
    assert mw.process_response(request, response) is response and request.meta["dont_retry"]
    fetch = Fetch(url=URL, status=503, headers={"retry-after": b"2"})
    assert classify(fetch).state == S.RATE_LIMITED and classify(fetch).rule == "http-503-retry-after"


def test_a_plain_503_or_a_200_is_left_alone():
    mw, downloader = middleware()
    for status in (503, 500, 200, 404):
        request = Request(URL)
        response = answer(status, request)
        assert mw.process_response(request, response) is response
        assert "dont_retry" not in request.meta
    assert downloader.pauses == [] and downloader.floors == []
    assert classify(Fetch(url=URL, status=503)).state == S.SERVER_ERROR


def test_without_a_usable_header_the_default_wait_doubles():
    mw, downloader = middleware(default_wait=3.0, max_wait=10.0, times=5)
    request = Request(URL)
    waits = []
    for _ in range(3):
        result = mw.process_response(request, answer(429, request, **{"Retry-After": "later"}))
        if not isinstance(result, Request):
            break
        waits.append(downloader.pauses[-1][1])
        request = result
    assert waits == [3.0, 6.0, 10.0]  # doubled, capped


def test_each_answer_doubles_the_hosts_delay_up_to_what_it_asked():
    mw, downloader = middleware(delay=0.25)
    request = Request(URL)
    request = mw.process_response(request, answer(429, request, **{"Retry-After": "5"}))
    request = mw.process_response(request, answer(429, request, **{"Retry-After": "5"}))
    assert downloader.floors == [(HOST, 0.5), (HOST, 1.0)]
    mw, downloader = middleware(delay=2.0)
    request = Request(URL)
    mw.process_response(request, answer(429, request, **{"Retry-After": "1"}))
    assert downloader.floors == []  # never slower than the server asked (1 s; keep 2 s)
    mw, downloader = middleware(delay=0.0)
    mw.process_response(request, answer(429, request, **{"Retry-After": "5"}))
    assert downloader.floors == []  # a crawl without delay keeps none (the pause still holds)


# -- the downloader ----------------------------------------------------------------------------
@pytest.fixture
def downloader(monkeypatch):
    """A PoliteDownloader whose scheduled downloads never start (as under asyncio, where the
    task that marks a request as transferring runs only on a later loop turn)."""
    from scrapy.utils.test import get_crawler

    import crawler.politeness as politeness

    scheduled: list[Any] = []
    later: list[tuple[float, Any]] = []

    def schedule(coro: Any) -> None:
        scheduled.append(coro)
        coro.close()

    def call_later(delay: float, func: Any, *args: Any) -> Any:
        later.append((delay, func))
        return type("Later", (), {"cancel": lambda self: None})()

    monkeypatch.setattr(politeness, "_schedule_coro", schedule)
    monkeypatch.setattr(politeness, "call_later", call_later)
    crawler = get_crawler(settings_dict={"CONCURRENT_REQUESTS_PER_DOMAIN": 1, "DOWNLOAD_DELAY": 0,
                                         "DOWNLOAD_DELAY_JITTER": 0})
    instance = PoliteDownloader(crawler)
    monkeypatch.setattr(instance, "_start_slot_gc", lambda: None)
    instance.scheduled, instance.later = scheduled, later  # type: ignore[attr-defined]
    return instance


def enqueue(downloader: PoliteDownloader, urls: list[str]) -> Any:
    from twisted.internet.defer import Deferred

    slot = None
    for url in urls:
        request = Request(url)
        key, slot = downloader._get_slot(request)
        request.meta[downloader.DOWNLOAD_SLOT] = key
        slot.active.add(request)
        slot.queue.append((request, Deferred()))
    return slot


def test_the_slot_lets_one_request_through_at_a_time(downloader):
    slot = enqueue(downloader, [f"http://{HOST}/{i}.htm" for i in range(5)])
    downloader._process_queue(slot)
    assert len(downloader.scheduled) == 1 and len(slot.transferring) == 1 and len(slot.queue) == 4
    downloader._process_queue(slot)  # e.g. another request joined the queue
    assert len(downloader.scheduled) == 1
    slot.transferring.clear()  # the first download ended
    downloader._process_queue(slot)
    assert len(downloader.scheduled) == 2 and len(slot.queue) == 3


def test_scrapy_219_alone_lets_the_whole_queue_through(monkeypatch):
    """Why PoliteDownloader exists: if this fails, Scrapy fixed its slot loop and the
    override of ``_process_queue`` may go."""
    import scrapy.core.downloader as core
    from scrapy.utils.test import get_crawler

    monkeypatch.setattr(core, "_schedule_coro", lambda coro: coro.close())
    plain = core.Downloader(get_crawler(settings_dict={"CONCURRENT_REQUESTS_PER_DOMAIN": 1,
                                                       "DOWNLOAD_DELAY": 0}))
    monkeypatch.setattr(plain, "_start_slot_gc", lambda: None)
    slot = enqueue(plain, [f"http://{HOST}/{i}.htm" for i in range(5)])  # type: ignore[arg-type]
    plain._process_queue(slot)
    assert len(slot.queue) == 0  # all five went out to a host with a limit of one


def test_a_paused_host_sends_nothing_until_the_pause_ends(downloader):
    slot = enqueue(downloader, [f"http://{HOST}/a.htm"])
    downloader.pause(HOST, 5.0)
    downloader._process_queue(slot)
    assert downloader.scheduled == [] and len(slot.queue) == 1
    delay, _func = downloader.later[-1]
    assert 4.5 < delay <= 5.0
    other = enqueue(downloader, ["http://other.example-univ.edu.cn/a.htm"])
    downloader._process_queue(other)
    assert len(downloader.scheduled) == 1  # other hosts are not paused


def test_requests_waiting_on_a_paused_host_do_not_hold_the_crawl(downloader):
    downloader.total_concurrency = 4
    paused = enqueue(downloader, [f"http://{HOST}/{i}.htm" for i in range(4)])
    downloader.active.update(paused.active)
    assert downloader.needs_backout()  # four in the downloader: full
    downloader.pause(HOST, 30.0)
    assert not downloader.needs_backout()  # ...but they wait out a Retry-After: others may come in
    other = enqueue(downloader, [f"http://other.example-univ.edu.cn/{i}.htm" for i in range(3)])
    downloader.active.update(other.active)
    assert not downloader.needs_backout()
    more = enqueue(downloader, [f"http://third.example-univ.edu.cn/{i}.htm" for i in range(4)])
    downloader.active.update(more.active)
    assert downloader.needs_backout()  # at most CONCURRENT_REQUESTS more, however many wait
    downloader._paused_until[HOST] = 0.0  # the pause ended
    assert downloader.needs_backout() and HOST not in downloader._paused_until


def test_a_delay_floor_survives_autothrottle(downloader):
    slot = enqueue(downloader, [f"http://{HOST}/a.htm"])
    downloader.slow_down(HOST, 2.0)
    assert slot.delay == 2.0 and downloader.delay_of(HOST) == 2.0
    slot.delay = 0.1  # AutoThrottle lowers it after fast answers
    _key, again = downloader._get_slot(Request(f"http://{HOST}/b.htm"))
    assert again is slot and slot.delay == 2.0
    downloader.slow_down(HOST, 1.0)  # a floor only rises
    assert downloader.delay_of(HOST) == 2.0


def test_a_redirect_to_another_host_counts_against_that_host(downloader):
    first = Request(f"http://{HOST}/old.htm")
    key, _ = downloader._get_slot(first)
    first.meta[downloader.DOWNLOAD_SLOT] = key
    assert key == HOST and first.meta[AUTO_SLOT]
    # RedirectMiddleware copies the meta, download_slot included
    moved = first.replace(url="http://new.example-univ.edu.cn/page.htm")
    assert downloader.get_slot_key(moved) == "new.example-univ.edu.cn"
    # a slot asked for explicitly is kept
    asked = Request("http://new.example-univ.edu.cn/x.htm", meta={"download_slot": "shared"})
    key, _ = downloader._get_slot(asked)
    assert key == "shared" and not asked.meta.get(AUTO_SLOT)


# -- robots.txt: Crawl-delay, and a robots.txt that cannot be read (a real crawl) ---------------
SPACED = "slow-please.example-univ.edu.cn"  # Crawl-delay: 0.6
GREEDY = "hour-please.example-univ.edu.cn"  # Crawl-delay: 3600, capped by XXGK_MAX_CRAWL_DELAY=1
BROKEN = "robots-500.example-univ.edu.cn"  # robots.txt answers 500 (after retries)
STUCK = "robots-timeout.example-univ.edu.cn"  # robots.txt never answers in time
MISSING = "robots-404.example-univ.edu.cn"  # no robots.txt: everything allowed
GONE = "nxdomain-robots.example-univ.edu.cn"  # unknown to the proxy: ERR_DNS_FAIL
PAGES = ("/a.htm", "/private/b.htm", "/c.htm", "/d.htm")


@pytest.fixture(scope="module")
def robots_crawl(tmp_path_factory) -> dict[str, Any]:
    """One crawl of a portal on SPACED linking four pages on each test host."""
    import os
    import re
    import sqlite3
    import subprocess
    import sys
    from pathlib import Path

    from simweb import SimWeb
    from simweb.content import html_page
    from simweb.model import Resource

    def page(title: str) -> Resource:
        return Resource(body=html_page(title, f"<h1>{title}</h1><p>{'信息公开正文。' * 30}</p>").encode(),
                        validators=False)

    def robots(text: bytes, **kw: Any) -> Resource:
        return Resource(body=text, content_type="text/plain", validators=False, **kw)

    hosts = (SPACED, GREEDY, BROKEN, STUCK, MISSING, GONE)
    links = "".join(f'<a href="http://{h}{p}">{h}{p}</a> ' for h in hosts for p in PAGES)
    portal = html_page("信息公开", f"<h1>信息公开</h1><p>{'说明。' * 40}</p>{links}")
    extra = {f"http://{SPACED}/index.htm": Resource(body=portal.encode(), validators=False),
        f"http://{SPACED}/robots.txt": robots(b"User-agent: *\nCrawl-delay: 0.6\nDisallow: /private/\n"),
        f"http://{GREEDY}/robots.txt": robots(b"User-agent: *\nCrawl-delay: 3600\n"),
        f"http://{BROKEN}/robots.txt": Resource(status=500, body=b"<h1>500 Internal Server Error</h1>",
                                                state="server_error", validators=False),
        f"http://{STUCK}/robots.txt": robots(b"User-agent: *\nDisallow:\n", delay=30.0),
        f"http://{MISSING}/robots.txt": Resource(status=404, body=b"<h1>404 Not Found</h1>",
                                                 state="not_found", validators=False)}
    for host in hosts[:-1]:
        extra.update({f"http://{host}{p}": page(p) for p in PAGES})
    tmp = tmp_path_factory.mktemp("robots")
    root = Path(__file__).resolve().parent.parent
    registry = tmp / "sites.toml"
    registry.write_text(f'[[site]]\nid = "polite"\nname = "礼貌大学"\nportal = "http://{SPACED}/index.htm"\n'
                        f'allowed_domains = ["example-univ.edu.cn"]\nrender = "never"\n', encoding="utf-8")
    with SimWeb(port=0, day=1, extra=extra) as web:
        env = {**os.environ, "http_proxy": web.proxy_url, "https_proxy": web.proxy_url, "no_proxy": ""}
        result = subprocess.run(
            [sys.executable, "-m", "xxgk", "crawl", "--registry", str(registry), "--db", str(tmp / "a.db"),
             "-s", "XXGK_PROBE_SOFT404=0", "-s", "DOWNLOAD_DELAY=0", "-s", "XXGK_DOWNLOAD_TIMEOUT=2",
             "-s", "RETRY_TIMES=1", "-s", "XXGK_MAX_CRAWL_DELAY=1"],
            cwd=root, env=env, capture_output=True, text=True, timeout=300)
        assert result.returncode == 0, result.stdout + result.stderr
        log = Path(re.search(r"log: (\S+)", result.stdout).group(1)).read_text(encoding="utf-8")
        events = list(web.events)
        asked = [url for _method, url, _status in web.request_log]
    with sqlite3.connect(tmp / "a.db") as conn:
        rows = {url: (state, rule, error or "") for url, state, rule, error in
                conn.execute("SELECT url, state, rule, error FROM link_checks")}
    return {"events": events, "asked": asked, "rows": rows, "log": log}


def starts(crawl: dict[str, Any], host: str) -> list[float]:
    return sorted(e.started for e in crawl["events"] if f"//{host}/" in e.url)


def spacing_problems(stamps: list[float], delay: float) -> list[str]:
    """Why the requests at ``stamps`` (seen by the server) are not ``delay`` apart; [] if
    they are. The server sees each request after a travel time that varies on a loaded
    machine (one late, the next on time: gaps of 0.49 s and 0.85 s for 0.6 s seen), so a
    single gap gets a margin; the span and the typical gap must still show the delay. A
    crawl ignoring the delay sends them ~0 s apart and fails all three."""
    gaps = [b - a for a, b in zip(stamps, stamps[1:], strict=False)]
    problems = []
    if stamps[-1] - stamps[0] < delay * len(gaps) * 0.95:
        problems.append(f"span {stamps[-1] - stamps[0]:.3f} s < {delay * len(gaps) * 0.95:.3f} s")
    if statistics.median(gaps) < 0.95 * delay:
        problems.append(f"median gap {statistics.median(gaps):.3f} s < {0.95 * delay:.3f} s")
    if min(gaps) < delay - 0.2:
        problems.append(f"a gap of {min(gaps):.3f} s < {delay - 0.2:.3f} s")
    return problems


def test_spacing_problems_catch_an_ignored_delay():
    assert spacing_problems([0.0, 0.6, 1.2, 1.8, 2.4], 0.6) == []
    assert spacing_problems([0.0, 0.49, 1.16, 2.01, 2.66], 0.6) == []  # seen under load
    assert spacing_problems([0.0, 1.346, 2.234, 3.236, 4.24], 1.0) == []  # seen under load
    assert len(spacing_problems([0.0, 0.01, 0.02, 0.03, 0.04], 0.6)) == 3  # no delay at all
    assert spacing_problems([0.0, 0.6, 1.2, 1.25, 1.85], 0.6)  # one request let through early
    assert spacing_problems([0.0, 0.3, 0.6, 0.9, 1.2], 0.6)  # half the delay
    assert spacing_problems([0.0, 0.6, 1.2, 1.8, 2.4], 1.0)  # Crawl-delay 0.6 where 1 was due


def test_crawl_delay_spaces_the_hosts_requests(robots_crawl):
    spaced = starts(robots_crawl, SPACED)
    assert len(spaced) == 5  # robots.txt, the portal, three pages (b.htm is disallowed)
    gaps = [b - a for a, b in zip(spaced, spaced[1:], strict=False)]
    assert not spacing_problems(spaced, 0.6), gaps  # Crawl-delay 0.6 (DOWNLOAD_DELAY is 0)
    rows = robots_crawl["rows"]
    assert rows[f"http://{SPACED}/private/b.htm"][:2] == ("excluded", "net-robots")


def test_a_crawl_delay_beyond_the_cap_is_honoured_as_the_cap(robots_crawl):
    greedy = starts(robots_crawl, GREEDY)
    assert len(greedy) == 5  # robots.txt and the four pages
    gaps = [b - a for a, b in zip(greedy, greedy[1:], strict=False)]
    assert not spacing_problems(greedy, 1.0) and max(gaps) < 3, gaps  # XXGK_MAX_CRAWL_DELAY=1, not an hour
    assert all(robots_crawl["rows"][f"http://{GREEDY}{p}"][0] == "ok" for p in PAGES)


def test_a_robots_txt_answering_5xx_disallows_the_whole_host(robots_crawl):
    # RFC 9309 §2.3.1.4: assume complete disallow. Only robots.txt was asked (with its retry),
    # though the links arrived together, while robots.txt was still being fetched.
    assert {u for u in robots_crawl["asked"] if BROKEN in u} == {f"http://{BROKEN}/robots.txt"}
    for path in PAGES:
        assert robots_crawl["rows"][f"http://{BROKEN}{path}"][:2] == ("excluded", "net-robots")
        assert "answered HTTP 500" in robots_crawl["rows"][f"http://{BROKEN}{path}"][2]  # why, kept
    assert f"robots.txt of {BROKEN} undefined (robots.txt answered HTTP 500" in robots_crawl["log"]


def test_a_robots_txt_that_times_out_disallows_the_host_without_waiting_per_link(robots_crawl):
    assert not [u for u in robots_crawl["asked"] if STUCK in u and not u.endswith("/robots.txt")]
    for path in PAGES:
        assert robots_crawl["rows"][f"http://{STUCK}{path}"][:2] == ("excluded", "net-robots")
    assert f"robots.txt of {STUCK} undefined (robots.txt unreachable (timeout" in robots_crawl["log"]


def test_a_missing_robots_txt_allows_everything(robots_crawl):
    assert all(robots_crawl["rows"][f"http://{MISSING}{p}"][0] == "ok" for p in PAGES)


def test_a_host_that_is_not_there_is_checked_as_before(robots_crawl):
    # The proxy's ERR_DNS_FAIL for robots.txt is its verdict on the host, not the origin's 503:
    # nobody is there to be polite to; each link records what its own attempt found.
    for path in PAGES:
        assert robots_crawl["rows"][f"http://{GONE}{path}"][0] == "dns_error"


def test_robots_unreadable_verdicts():
    from scrapy.exceptions import IgnoreRequest
    from twisted.internet.error import ConnectionLost, ConnectionRefusedError, DNSLookupError, TimeoutError

    from crawler.robots import judge_answer, judge_failure

    robots = "http://h.example-univ.edu.cn/robots.txt"
    assert judge_answer(TextResponse(robots, status=404, body=b"")) is None  # 4xx: allow all
    assert judge_answer(TextResponse(robots, status=200, body=b"Disallow: /")) is None
    undefined = judge_answer(TextResponse(robots, status=503, body=b"busy"))
    refusal = undefined.refusal()
    assert "HTTP 503" in str(refusal)
    verdict = classify(Fetch(url=URL, error_type=type(refusal).__name__, error=str(refusal)))
    assert (verdict.state, verdict.rule) == (S.EXCLUDED, "net-robots")
    assert judge_failure(DNSLookupError("no results for robots.txt host"), robots) is None
    assert judge_failure(ConnectionRefusedError("Connection was refused by other side"), robots) is None
    lost = judge_failure(ConnectionLost("Connection to the other side was lost"), robots)
    assert "robots.txt unreachable (connection_error" in str(lost.refusal())  # a server in trouble
    squid = TextResponse(robots, status=503, body=b"<h1>ERROR</h1>",
                         headers={"X-Squid-Error": "ERR_DNS_FAIL 0"}, request=Request(robots, meta={"proxy": "p"}))
    assert judge_answer(squid) is None  # the proxy's verdict: no such host
    assert "timeout" in str(judge_failure(TimeoutError("took too long"), robots).refusal())
    assert judge_failure(IgnoreRequest("ssrf: blocked"), robots) is None  # our own refusals: Scrapy's way


def test_a_distributed_jobs_shared_robots_txt_is_judged_like_a_fetched_one():
    """Distributed workers obey the job's one copy of a host's robots.txt: a 5xx copy and a
    cached fetch failure disallow the host as in a single-process crawl (workers used to
    crawl a host whose robots.txt answered 500; a cached failure allowed everything)."""
    from crawler.distributed import SharedRobotsTxtMiddleware
    from crawler.robots import PoliteRobotsTxtMiddleware, Undefined, judge_answer, judge_failure

    assert issubclass(SharedRobotsTxtMiddleware, PoliteRobotsTxtMiddleware)
    copy = SharedRobotsTxtMiddleware._from_cache("http://h.edu.cn/robots.txt", b"500\n<h1>500 Internal Server Error</h1>")
    assert isinstance(judge_answer(copy), Undefined)
    with pytest.raises(Exception) as failure:
        SharedRobotsTxtMiddleware._from_cache(
            "http://h.edu.cn/robots.txt", b"error\nTimeoutError\nGetting http://h.edu.cn/robots.txt took longer than 10 s")
    judged = judge_failure(failure.value, "//h.edu.cn/robots.txt")
    assert isinstance(judged, Undefined) and "timeout" in judged.reason.lower()


def test_a_shared_copy_of_a_proxys_no_such_host_page_still_says_no_such_host():
    """The proxy's "no such host" answer to robots.txt (Squid's 503 with X-Squid-Error) lets
    the host's links be checked (dns_error). The job's shared copy kept only status and body,
    so a worker that met the host later (a retried request taken by another worker) read it
    as the origin's 503 and excluded the host (CI: nxdomain 'excluded' instead of 'dns_error')."""
    from crawler.distributed import SharedRobotsTxtMiddleware
    from crawler.robots import Undefined, judge_answer

    robots = "http://nxdomain.example-univ.edu.cn/robots.txt"
    squid = TextResponse(robots, status=503, body=b"<h1>ERROR</h1>",
                         headers={"X-Squid-Error": "ERR_DNS_FAIL 0", "Server": "squid/4.13"},
                         request=Request(robots, meta={"proxy": "http://127.0.0.1:3128"}))
    assert judge_answer(squid) is None
    copy = SharedRobotsTxtMiddleware._from_cache(robots, SharedRobotsTxtMiddleware._to_cache(squid))
    assert judge_answer(copy) is None
    assert copy.status == 503 and copy.body == squid.body
    # The origin's own 503 (no proxy in between) still disallows the host from the copy.
    origin = TextResponse(robots, status=503, body=b"busy", request=Request(robots))
    copy = SharedRobotsTxtMiddleware._from_cache(robots, SharedRobotsTxtMiddleware._to_cache(origin))
    assert isinstance(judge_answer(copy), Undefined)
    # A multi-line robots.txt comes back whole.
    rules = TextResponse(robots.replace("nxdomain", "h"), status=200, body=b"User-agent: *\nDisallow: /admin/\n")
    copy = SharedRobotsTxtMiddleware._from_cache(rules.url, SharedRobotsTxtMiddleware._to_cache(rules))
    assert (copy.status, copy.body) == (200, rules.body)
