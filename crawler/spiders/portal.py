"""The portal spider: walk each registered disclosure portal and check every link on it.

Run through ``xxgk crawl`` (which creates the ``crawls`` rows and passes their ids), or
directly::

    scrapy crawl portal -a registry=schedules/sites.toml -a sites=wust -s XXGK_DB=xxgk.db

Spider arguments: ``registry`` (TOML path), ``sites`` (comma-separated ids, default all),
``crawls`` (``site:crawl_id,...``). With the ``XXGK_REDIS_URL`` setting the spider is one
worker of a distributed crawl (:mod:`crawler.distributed`): sites and crawl ids come from
the job in Redis, and the per-site budget, trap guard and probe are shared by all workers.

What it does, per site: probe a random non-existent URL once (to learn the site's
"not found" answer), then crawl from the portal URLs within ``allowed_domains``; every
linked URL gets exactly one verdict per crawl (a :class:`~crawler.items.LinkCheck`),
every link a :class:`~crawler.items.LinkSource`. In-scope pages are parsed for links;
attachments are fetched and archived but not parsed; external links are checked with
HEAD (falling back to GET) and never followed. Storage is the pipeline's job.
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

import scrapy
from scrapy.http import Response, TextResponse
from scrapy_playwright.page import PageMethod
from twisted.python.failure import Failure

from archive.states import BLOCKED, EMPTY, EXCLUDED, GOOD_STATES, SOFT_404
from archive.store import cited_urls, evidence_urls, trap_budget_refusals
from crawler.challenges import BROWSER, COOKIES, WAIT, ChallengeHosts
from crawler.classify import SiteProbe, classify, probe_url
from crawler.decode import decode_body, filename_from_content_disposition
from crawler.fetch import Fetch, Verdict, went_through_proxy
from crawler.htmlparse import needs_render, page_links
from crawler.items import Evidence, LinkCheck, LinkSource, LinkSources, OverheadBytes
from crawler.maintext import main_text
from crawler.middlewares import CONTENT_ENCODING, STREAM_CUT, WIRE_BYTES
from crawler.rendering import BROWSER_BYTES, DOCUMENT, DOCUMENT_TRANSFERRED, DOCUMENTS, Document
from crawler.urls import TrapGuard, canonicalize, in_scope, is_list_page, looks_like_attachment
from schedules.registry import Site, load_registry, select_sites


def title_bytes(head: bytes) -> bytes | None:
    """The raw text of the first ``<title>`` of ``head``, or None. Found with ``find``: a
    ``<title[^>]*>(.*?)</title>`` search re-scans to the end from every ``<title`` when none
    is closed (28,000 unclosed titles in 200 KB: 24 s)."""
    lower = head.lower()
    start = lower.find(b"<title")
    if start < 0:
        return None
    opened = lower.find(b">", start)
    end = lower.find(b"</title>", opened) if opened >= 0 else -1
    return head[opened + 1:end] if end >= 0 else None


HTML_TYPES = ("text/html", "application/xhtml")
#: The detail of a trap-guard exclusion: the guard's reason first, so a later crawl can
#: find the calendar families whose budget ran out (see :func:`_known_traps`).
TRAP_REFUSALS = {
    "depth": "depth: more path segments than the trap guard allows",
    "repeated-segments": "repeated-segments: a run of path segments repeats",
    "calendar-range": "calendar-range: a calendar year out of range",
    "query-variants": "query-variants: too many sets of query keys on one path",
    "pattern-budget": "pattern-budget: the URL pattern's budget for this crawl is spent",
    "malformed": "malformed: the URL cannot be parsed",
}
#: Scheduler priorities: pages 0 (attachments -1); a page re-requested for Chromium because
#: scripts build it goes first; screenshots kept as evidence go with the pages, so the browser
#: works alongside the plain crawl instead of after it.
RENDER_PRIORITY = 1
EVIDENCE_PRIORITY = 0
#: Statuses for which a HEAD answer is not trusted and the link is re-checked with GET.
#: Not 429: the server asked us to slow down, and RetryAfterMiddleware already waited and
#: retried; a GET on top would be the tight loop politeness forbids.
HEAD_RETRY_STATUSES = frozenset({400, 403, 404, 405, 406, 409, 412, 500, 501, 502, 503, 521})
#: Verdicts a watchdog may cite as a failure of the page itself: keep a screenshot.
EVIDENCE_STATES = frozenset({SOFT_404, EMPTY})
#: Challenge rules a real browser may pass (cookie-setting scripts), retried once in Chromium.
BROWSER_PASSABLE_RULES = ("challenge-jsl", "challenge-ruishu", "challenge-cookie-script",
                          "challenge-cloudflare")


def now_iso() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def is_report_text(text: str) -> bool:
    """Does an anchor text or title name an annual report?"""
    # Asked of every new link's anchor; navigation anchors repeat. Long texts are not kept.
    return _is_report_text_cached(text) if len(text) <= 500 else _is_report_text(text)


def _is_report_text(text: str) -> bool:
    from archive.reports.facts import is_annual_report_title

    return bool(text) and is_annual_report_title(text)


_is_report_text_cached = lru_cache(maxsize=4096)(_is_report_text)


@dataclass
class SiteRun:
    """Per-site crawl state: budget, trap guard, the not-found probe, URLs already judged."""

    site: Site
    crawl_id: int | None
    guard: TrapGuard = field(default_factory=TrapGuard)
    probe: SiteProbe | None = None
    scheduled: int = 0
    judged: set[str] = field(default_factory=set)
    #: URLs requested (admitted or counted): a second link to one is neither counted against
    #: the budget nor refused by it (its answer is on its way and must not be thrown away).
    admitted: set[str] = field(default_factory=set)
    #: Report wording of a link to a URL already requested without it (its answer gets it).
    report_hints: dict[str, str] = field(default_factory=dict)
    #: Why the trap guard refused the last URL :meth:`admit` refused (None: the page budget).
    refusal: str | None = None
    #: Request fingerprints of the URLs this site's crawl asked for: the site's own dupefilter
    #: (Scrapy's is shared by every site of the process, and would drop a URL that another
    #: site checked already, leaving this site's crawl without its check).
    requested: set[bytes] = field(default_factory=set)

    # Budget, trap guard and probe go through these methods so that a distributed crawl
    # (crawler.distributed.DistributedSiteRun) can keep them in Redis for all workers.
    def admit(self, url: str) -> bool:
        """Budget and trap guard for an in-scope URL; counts it when admitted (once: a URL
        already requested is admitted again without counting, and the copy is dropped)."""
        self.refusal = None
        if url in self.admitted:
            return True
        if self.scheduled >= self.site.max_pages:
            return False
        self.refusal = self.guard.refuse(url)
        if self.refusal is not None:
            return False
        self.scheduled += 1
        self.admitted.add(url)
        return True

    def count(self, url: str | None = None) -> None:
        """Count a request that bypasses the budget (start URLs, re-renders)."""
        if url is not None:
            if url in self.admitted:
                return
            self.admitted.add(url)
        self.scheduled += 1

    def over_budget(self) -> bool:
        return self.scheduled >= self.site.max_pages

    def current_probe(self) -> SiteProbe | None:
        return self.probe

    def set_probe(self, probe: SiteProbe | None) -> None:
        self.probe = probe


class PortalSpider(scrapy.Spider):
    name = "portal"

    def __init__(self, registry: str | None = None, sites: str | None = None,
                 crawls: str | None = None, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.registry_path = registry
        self.site_ids = [s for s in (sites or "").split(",") if s]
        self.crawl_ids: dict[str, int] | None = None
        if crawls:
            self.crawl_ids = {k: int(v) for k, v in (pair.split(":", 1) for pair in crawls.split(","))}
        self.sites: list[Site] = []
        self.runs: dict[str, SiteRun] = {}
        self.distributed: Any = None
        #: Per-host challenge state: one browser pass per host, then its cookies.
        self.challenges = ChallengeHosts()
        self.db_path: str | None = None
        #: URLs revisited per calendar family cut short in the previous crawl (see TrapGuard).
        self.trap_revisit_budget = 10
        #: Per site, the URLs its annual reports cite (checked by every crawl).
        self.cited_urls: dict[str, list[str]] = {}

    @classmethod
    def update_settings(cls, settings: Any) -> None:
        super().update_settings(settings)
        if settings.get("XXGK_REDIS_URL"):
            from crawler.distributed import configure_settings

            configure_settings(settings)

    @classmethod
    def from_crawler(cls, crawler: Any, *args: Any, **kwargs: Any) -> PortalSpider:
        spider = super().from_crawler(crawler, *args, **kwargs)
        if crawler.settings.get("XXGK_REDIS_URL"):
            from crawler.distributed import attach

            spider.distributed = attach(crawler, spider)
        else:
            registry = spider.registry_path or crawler.settings.get("XXGK_REGISTRY") or None
            spider.sites = select_sites(load_registry(registry), spider.site_ids)
        spider.probe_enabled = crawler.settings.getbool("XXGK_PROBE_SOFT404", True)
        spider.render_settle_ms = crawler.settings.getint("XXGK_RENDER_SETTLE_MS", 5000)
        spider.challenge_timeout = crawler.settings.getfloat("DOWNLOAD_TIMEOUT", 30) + 5
        spider.challenges.configure(crawler, distributed=spider.distributed is not None)
        spider.db_path = crawler.settings.get("XXGK_DB")
        # A worker takes what the archive writer knew when the job started (it may have no
        # archive of its own, and the archive grows while the job runs).
        spider.evidence_urls = (spider.distributed.evidence_urls if spider.distributed is not None
                                else _evidence_urls(spider.db_path))
        spider.cited_urls = (spider.distributed.cited_urls if spider.distributed is not None
                             else _read_archive(spider.db_path, cited_urls) or {})
        spider.trap_revisit_budget = crawler.settings.getint("XXGK_TRAP_REVISIT_BUDGET", 10)
        return spider

    # -- start ---------------------------------------------------------------------------
    async def start(self) -> AsyncIterator[Any]:
        if self.distributed is not None:  # runs exist already; one worker queues the seeds
            for request in self.distributed.seed_requests(self):
                yield request
            return
        for site in self.sites:
            crawl_id = (self.crawl_ids or {}).get(site.id)
            guard = revisiting_guard(site.id, _known_traps(self.db_path, site.id, crawl_id),
                                     self.trap_revisit_budget, self.logger)
            run = SiteRun(site, crawl_id, guard=guard)
            self.runs[site.id] = run
            for request in self._seeds(run):
                yield request

    def _seeds(self, run: SiteRun) -> Iterator[scrapy.Request]:
        """The not-found probe (whose callback queues the start URLs), or the start URLs."""
        site = run.site
        if self.probe_enabled:
            seed = hashlib.sha256(f"{site.id}{now_iso()}".encode()).hexdigest()[:12]
            yield scrapy.Request(
                probe_url(site.portal[0], seed), callback=self.on_probe,
                errback=self.on_probe_failure, dont_filter=True, priority=100,
                meta={"xxgk": {"site": site.id, "probe": True}, "dont_retry": True},
            )
        else:
            yield from self._start_requests(run)

    def _start_requests(self, run: SiteRun) -> Iterator[Any]:
        for url in run.site.portal:
            canonical = canonicalize(url) or url
            request = self._request_for(run, canonical, expect="page", home=True)
            if request is not None and self._first_ask(run, request):
                yield request
        # The URLs the site's annual reports cite are checked whether the portal links them
        # or not (as links of the site's own pages would be: within the budget and scope).
        for url in self.cited_urls.get(run.site.id, ()):
            canonical = canonicalize(url)
            if canonical is not None:
                yield from self._schedule(run, canonical, "", report_context=False)

    def on_probe(self, response: Response) -> Iterator[Any]:
        run = self.runs[response.meta["xxgk"]["site"]]
        run.set_probe(SiteProbe.from_fetch(self._fetch_from_response(response, "page")))
        # No link's check, but what it cost the site counts in the crawl's bytes_received.
        yield OverheadBytes(site_id=run.site.id, crawl_id=run.crawl_id, url=response.url,
                            bytes_received=response.meta.get(WIRE_BYTES, len(response.body)))
        yield from self._start_requests(run)

    def on_probe_failure(self, failure: Failure) -> Iterator[scrapy.Request]:
        run = self.runs[failure.request.meta["xxgk"]["site"]]
        run.set_probe(None)
        yield from self._start_requests(run)

    # -- requests ------------------------------------------------------------------------
    def _request_for(self, run: SiteRun, url: str, *, expect: str, home: bool = False,
                     report_hint: str | None = None, render: str | None = None,
                     bypass_budget: bool = False) -> scrapy.Request | None:
        site = run.site
        meta: dict[str, Any] = {"xxgk": {"site": site.id, "expect": expect, "home": home,
                                         "report_hint": report_hint}}
        if expect == "external":
            return scrapy.Request(url, method="HEAD", callback=self.parse_external,
                                  errback=self.on_failure, meta=meta)
        if home or bypass_budget:
            run.count(url)
        elif not run.admit(url):
            return None
        if render or (site.render == "always" and expect != "attachment"):
            # Pages rendered because auto mode needed it are few: keep their screenshot. In
            # always mode, so does a page already known to be worth one (a report link, a
            # checklist item page): one rendering instead of a second one for evidence.
            evidence = bool(report_hint) or url in self.evidence_urls
            self._render(meta, render or "render=always", screenshot=bool(render) or evidence)
        return scrapy.Request(url, callback=self.parse, errback=self.on_failure, meta=meta,
                              priority=-1 if expect == "attachment" else 0)

    def _render(self, meta: dict, reason: str, *, screenshot: bool, settle: bool = True) -> dict:
        """Mark a request for Chromium; wait for script redirects and late lists to settle
        (unless ``settle`` is false: the page's raw HTML was already judged complete)."""
        methods = []
        if settle:
            methods.append(PageMethod("wait_for_load_state", "networkidle", timeout=self.render_settle_ms))
        if screenshot:
            methods.append(PageMethod("screenshot", full_page=True, type="png"))
        # The raw fetch was already retried; a page that will not render is not transient.
        meta.update(playwright=True, playwright_page_methods=methods, dont_retry=True,
                    playwright_page_goto_kwargs={"wait_until": "load"})
        meta["xxgk"]["render_reason"] = reason
        return meta

    def _exclusion(self, run: SiteRun, url: str, expect: str, rule: str, detail: str) -> LinkCheck:
        return LinkCheck(site_id=run.site.id, crawl_id=run.crawl_id, url=url, checked_at=now_iso(),
                         state=EXCLUDED, rule=rule, detail=detail, method="-",
                         is_external=expect == "external", expect=expect)

    # -- responses -----------------------------------------------------------------------
    def _fetch_from_response(self, response: Response, expect: str) -> Fetch:
        meta = response.meta
        site = self.runs[meta["xxgk"]["site"]].site
        chain = [u for u in meta.get("redirect_urls", [])]
        if meta.get("playwright") and response.request is not None:
            # A script redirect (window.location) shows as the page ending elsewhere.
            asked = chain[0] if chain else response.request.url
            if canonicalize(response.url) != canonicalize(asked) and asked not in chain:
                chain = [asked, *chain]
        original = chain[0] if chain else response.url
        latency = meta.get("download_latency")
        headers = {k.decode("latin-1").lower(): b", ".join(v) for k, v in response.headers.items()}
        if meta.get(CONTENT_ENCODING) and "content-encoding" not in headers:
            # as it came: its Content-Length counts encoded bytes (the body is decoded)
            headers["content-encoding"] = meta[CONTENT_ENCODING]
        return Fetch(
            url=original, status=response.status, headers=headers,
            body=response.body, final_url=response.url, redirect_chain=chain,
            expect=expect, is_home_page=bool(meta["xxgk"].get("home")),
            home_urls=tuple(site.portal), method=response.request.method if response.request else "GET",
            elapsed_ms=int(latency * 1000) if latency is not None else None,
            via_proxy=went_through_proxy(meta),
            dataloss="dataloss" in response.flags, stream_cut=STREAM_CUT in response.flags,
        )

    def _check_item(self, run: SiteRun, fetch: Fetch, verdict: Verdict, *, archive_body: bool,
                    text: str | None = None, encoding: str | None = None,
                    meta: dict | None = None) -> LinkCheck:
        meta = meta or {}
        headers = {k: v.decode("latin-1") for k, v in fetch.headers.items()}
        length = fetch.header("content-length")
        title = None
        if text is not None:
            # 200 000 characters encode to at least 200 000 bytes: the same prefix, cheaper
            raw = title_bytes(text[:200_000].encode("utf-8", "replace")[:200_000])
            if raw is not None:
                title = " ".join(raw.decode("utf-8", "replace").split())[:500] or None
        xxgk = meta.get("xxgk", {})
        # What the check cost the site: every answer of the request's chain (redirect hops,
        # retried attempts, a challenged answer a retry replaced), archived or not, and a
        # rendering's count.
        rendered, wire = _render_cost(meta), meta.get(WIRE_BYTES)
        transferred = None if rendered is None and wire is None else (rendered or 0) + (wire or 0)
        return LinkCheck(
            site_id=run.site.id, crawl_id=run.crawl_id, url=fetch.url, checked_at=now_iso(),
            state=verdict.state, rule=verdict.rule, detail=verdict.detail,
            status_code=fetch.status, final_url=fetch.final_url, redirect_chain=fetch.redirect_chain,
            method=fetch.method, content_type=fetch.header("content-type") or None,
            content_length=int(length) if length.isdigit() else None,
            elapsed_ms=fetch.elapsed_ms, is_external=fetch.expect == "external", expect=fetch.expect,
            body=fetch.body if archive_body else None, headers=headers, title=title,
            encoding=encoding,
            filename=filename_from_content_disposition(fetch.headers.get("content-disposition", b"")),
            main_text=main_text(text) if text is not None else None,
            not_modified=bool(meta.get("xxgk_not_modified")), reused=bool(meta.get("xxgk_reused")),
            truncated=archive_body and fetch.incomplete() is not None,
            transferred=transferred,
            previous_sha256=meta.get("xxgk_previous_sha256"),
            rendered=bool(meta.get("playwright")), render_reason=xxgk.get("render_reason"),
            report_hint=xxgk.get("report_hint") or (title if title and is_report_text(title) else None),
        )

    def parse(self, response: Response) -> Iterator[Any]:
        xxgk = response.meta["xxgk"]
        run = self.runs[xxgk["site"]]
        if not xxgk.get("report_hint"):  # a later link to this URL said it is a report
            asked = _asked_url(response)
            xxgk["report_hint"] = run.report_hints.pop(asked, None)
        expect = xxgk.get("expect", "page")
        fetch = self._fetch_from_response(response, expect)
        is_html = _is_html(response)
        text, encoding = (decode_body(response.body, fetch.headers, response.url) if is_html
                          else (None, None))
        # The classifier would decode the same body with the same arguments again.
        fetch.text = text
        if (is_html and text is not None and run.site.render == "auto" and expect != "attachment"
                and not response.meta.get("playwright")):
            reason = needs_render(text, response.url)
            raw = classify(fetch, probe=run.current_probe()) if reason else None
            # A challenge page (its script sets a cookie and reloads) goes to the challenge
            # retry below, once per host, not to a render of its own for every URL.
            if raw is not None and not _browser_passable(raw):
                request = self._request_for(run, fetch.url, expect=expect, render=f"auto: {reason}",
                                            home=bool(xxgk.get("home")), bypass_budget=True,
                                            report_hint=xxgk.get("report_hint"))
                if request is not None:
                    # If the browser fails, the raw answer still stands (the server did answer).
                    request.meta["xxgk"]["raw_verdict"] = (raw.state, raw.rule, raw.detail)
                    # Ahead of plain pages: the links behind the script are on the crawl's
                    # critical path, and Chromium renders on a core of its own meanwhile
                    # (Scrapy's queue is last-in first-out: at equal priority it would wait
                    # for every page queued after it).
                    request.priority = RENDER_PRIORITY
                    _give_document(request, response, fetch)
                    request.dont_filter = True
                    yield request
                    return
        rendered = bool(response.meta.get("playwright"))
        verdict = classify(fetch, probe=run.current_probe(), rendered=rendered)
        yield from self._pass_ended(response.meta, response.request.url, verdict)
        if fetch.url in run.judged:
            return
        retry = self._challenge_retry(run, response, verdict)
        if retry is not None:
            yield from retry
            return
        if xxgk.get("challenge_retry"):
            verdict = _annotate_retry(verdict, xxgk["challenge_retry"])
        run.judged.add(fetch.url)
        check = self._check_item(run, fetch, verdict, archive_body=True, text=text,
                                 encoding=encoding, meta=response.meta)
        check.screenshot = _screenshot(response)
        yield check
        if check.screenshot is None and self._wants_evidence(run, fetch.url, verdict, check):
            yield _give_document(self._evidence_request(run, fetch.url, verdict), response, fetch)
        # Links are followed on the site's own pages only: a link's redirect may end on another
        # site, whose links are not ours to check (nor recorded as this site's). A start URL
        # is followed wherever it went (a portal that moved: the registry is out of date).
        if (is_html and text is not None and verdict.state in GOOD_STATES and expect != "attachment"
                and (in_scope(response.url, run.site.allowed_domains) or xxgk.get("home"))):
            yield from self._follow(run, response, text, report_context=bool(xxgk.get("report_hint")),
                                    encoding=encoding)

    # -- browser: challenges and evidence --------------------------------------------------
    def _challenge_retry(self, run: SiteRun, response: Response, verdict: Verdict) -> list[Any] | None:
        """What to do with a challenged answer (see :mod:`crawler.challenges`): None to record
        it as it is, else what to yield instead: the host's browser pass, a re-fetch with the
        cookies of that pass, nothing (the URL waits for the host's pass), or the check of a
        host whose browser pass already failed. Each URL is retried at most once: no loops."""
        meta = response.meta
        if (meta.get("playwright") or run.site.render == "never" or meta["xxgk"].get("challenge_retry")
                or not _browser_passable(verdict)):
            return None
        url = _asked_url(response)
        sent = response.request.headers.get(b"Cookie", b"").decode("latin-1")
        action = self.challenges.on_challenge(url, sent)
        if action in (BROWSER, COOKIES):
            return [self._retry_request(response, url, verdict, action)]
        host = self.challenges.host(url)
        if action == WAIT:  # released by _pass_ended
            host.waiting.append((run, response, verdict))
            return []
        if host.failure is not None:
            detail = f"browser retry already failed on this host in this crawl ({host.failure})"
        else:
            detail = f"browser passes for this host used up ({host.passes} in this crawl)"
        self.crawler.stats.inc_value("xxgk/challenge_not_retried")
        return list(self._record_challenged(run, response, _prefixed(verdict, detail)))

    def _retry_request(self, response: Response, url: str, verdict: Verdict, how: str) -> scrapy.Request:
        """The URL again: in Chromium (the host's browser pass) or plainly, with its cookies."""
        xxgk = {k: v for k, v in response.meta["xxgk"].items() if k != "render_reason"}
        new_meta: dict[str, Any] = {"xxgk": {**xxgk, "challenge_retry": how}}
        if response.meta.get(WIRE_BYTES):  # the challenged answer counts on the retry's check
            new_meta[WIRE_BYTES] = response.meta[WIRE_BYTES]
        if how == BROWSER:
            new_meta["xxgk"]["challenge_verdict"] = (verdict.state, verdict.rule, verdict.detail)
            self._render(new_meta, f"challenge: {verdict.rule}", screenshot=False)
            # A browser passes a cookie challenge in a second or two, or never (it reloads forever).
            new_meta["xxgk_render_timeout"] = self.challenge_timeout
            # crawler.rendering reports the document finally shown, and the browser's cookies.
            new_meta["xxgk_challenge"] = True
        self.crawler.stats.inc_value(f"xxgk/challenge_retries/{how}")
        callback = self.parse if xxgk.get("expect") != "external" else self.parse_external
        return scrapy.Request(url, callback=callback, errback=self.on_failure, meta=new_meta,
                              dont_filter=True)

    def _pass_ended(self, meta: dict, url: str, verdict: Verdict | None, error: str = "") -> Iterator[Any]:
        """A host's browser pass ended: carry its cookies over (it got through) and release
        the URLs that waited for it: re-fetched with the cookies, or recorded blocked."""
        if meta["xxgk"].get("challenge_retry") != BROWSER:
            return
        if verdict is not None and verdict.state != BLOCKED:
            for _run, response, challenged in self.challenges.passed(url, meta.get("xxgk_browser_cookies")):
                original = _asked_url(response)
                yield self._retry_request(response, original, challenged, COOKIES)
            return
        failure = f"browser: {error}" if verdict is None else "still blocked in the browser"
        detail = f"browser retry already failed on this host in this crawl ({failure})"
        for run, response, challenged in self.challenges.failed(url, failure):
            self.crawler.stats.inc_value("xxgk/challenge_not_retried")
            yield from self._record_challenged(run, response, _prefixed(challenged, detail))

    def _record_challenged(self, run: SiteRun, response: Response, verdict: Verdict) -> Iterator[LinkCheck]:
        """The check of a challenged answer recorded without a retry."""
        expect = response.meta["xxgk"].get("expect", "page")
        fetch = self._fetch_from_response(response, expect)
        if fetch.url in run.judged:
            return
        run.judged.add(fetch.url)
        if expect == "external":
            yield self._check_item(run, fetch, verdict, archive_body=False, meta=response.meta)
            return
        text, encoding = (decode_body(response.body, fetch.headers, response.url) if _is_html(response)
                          else (None, None))
        yield self._check_item(run, fetch, verdict, archive_body=True, text=text, encoding=encoding,
                               meta=response.meta)

    def _wants_evidence(self, run: SiteRun, url: str, verdict: Verdict, check: LinkCheck) -> bool:
        if run.site.render == "never" or check.expect in ("attachment", "external"):
            return False
        if check.not_modified:
            return False  # same bytes as the previous capture, whose evidence still stands
        return (verdict.state in EVIDENCE_STATES or bool(check.report_hint)
                or url in self.evidence_urls)

    def _evidence_request(self, run: SiteRun, url: str, verdict: Verdict) -> scrapy.Request:
        # In auto mode the page's raw HTML was judged complete (no script builds it), so the
        # screenshot is taken at the load event (images and styles in), not after network
        # idle, which costs at least 500 ms per page and formed the tail of every crawl.
        meta = self._render({"xxgk": {"site": run.site.id, "evidence": verdict.state}},
                            f"evidence: {verdict.state}", screenshot=True, settle=run.site.render != "auto")
        return scrapy.Request(url, callback=self.on_evidence, errback=self.on_evidence_failure,
                              meta=meta, dont_filter=True, priority=EVIDENCE_PRIORITY)

    def on_evidence(self, response: Response) -> Iterator[Evidence]:
        run = self.runs[response.meta["xxgk"]["site"]]
        screenshot = _screenshot(response)
        if screenshot is None:
            return
        url = _asked_url(response)
        yield Evidence(site_id=run.site.id, crawl_id=run.crawl_id, url=url, final_url=response.url,
                       fetched_at=now_iso(), status_code=response.status,
                       content_type=response.headers.get(b"Content-Type", b"").decode("latin-1") or None,
                       body=response.body, screenshot=screenshot,
                       reason=response.meta["xxgk"]["render_reason"],
                       transferred=response.meta.get(BROWSER_BYTES) or 0)

    def on_evidence_failure(self, failure: Failure) -> None:
        self.logger.warning("no screenshot for %s: %s", failure.request.url, failure.value)

    def parse_external(self, response: Response) -> Iterator[Any]:
        xxgk = response.meta["xxgk"]
        run = self.runs[xxgk["site"]]
        if response.request.method == "HEAD" and (response.status in HEAD_RETRY_STATUSES
                                                  or _page_for_a_file(response)):
            # Many Chinese servers answer HEAD wrongly: only a GET is evidence. So is it for
            # a file link answering a page or a part: its body says whether the file is there.
            # From the link's own URL (a GET follows any redirects afresh) with a fresh meta:
            # the HEAD's carries the downloader's own keys (proxy, latency, slot).
            url = _asked_url(response)
            yield scrapy.Request(url, callback=self.parse_external, errback=self.on_failure,
                                 meta={"xxgk": xxgk}, dont_filter=True)
            return
        fetch = self._fetch_from_response(response, "external")
        # A file elsewhere (an attachment on the university's main site) is judged as a file
        # once its body is here: an HTML page, a part or a cut-short download is not the file.
        judged = (replace(fetch, expect="attachment") if fetch.method == "GET" and looks_like_attachment(fetch.url)
                  else fetch)
        verdict = classify(judged, probe=None, rendered=bool(response.meta.get("playwright")))
        yield from self._pass_ended(response.meta, response.request.url, verdict)
        if fetch.url in run.judged:
            return
        retry = self._challenge_retry(run, response, verdict)
        if retry is not None:
            yield from retry
            return
        if xxgk.get("challenge_retry"):
            verdict = _annotate_retry(verdict, xxgk["challenge_retry"])
        run.judged.add(fetch.url)
        yield self._check_item(run, fetch, verdict, archive_body=False, meta=response.meta)

    def on_failure(self, failure: Failure) -> Iterator[Any]:
        request = failure.request
        xxgk = request.meta["xxgk"]
        run = self.runs[xxgk["site"]]
        chain = list(request.meta.get("redirect_urls", []))
        url = chain[0] if chain else request.url
        yield from self._pass_ended(request.meta, request.url, None, failure.type.__name__)
        if url in run.judged:
            return
        run.judged.add(url)
        fetch = Fetch(url=url, final_url=request.url if chain else None, redirect_chain=chain,
                      error_type=failure.type.__name__, error=str(failure.value)[:1000],
                      expect=xxgk.get("expect", "page"), method=request.method,
                      home_urls=tuple(run.site.portal),
                      via_proxy=went_through_proxy(request.meta))
        verdict = classify(fetch, probe=run.current_probe())
        if xxgk.get("raw_verdict") and verdict.rule != "ssrf":
            # The browser failed: the raw answer stands. Not when it refused the page's own
            # navigation (a script redirect to a forbidden origin): that is where the page
            # leads, recorded as an HTTP redirect there would be.
            state, rule, detail = xxgk["raw_verdict"]
            verdict = Verdict(state, rule, f"rendering failed ({fetch.error_type}); {detail}")
        elif xxgk.get("challenge_verdict"):
            # The browser could not get past the challenge (it reloads forever, times out):
            # the page is still behind a challenge, not gone.
            state, rule, detail = xxgk["challenge_verdict"]
            verdict = Verdict(state, rule, f"browser retry failed ({fetch.error_type}); {detail}")
        yield self._check_item(run, fetch, verdict, archive_body=False, meta=request.meta)

    # -- links ---------------------------------------------------------------------------
    def _follow(self, run: SiteRun, response: Response, text: str, *, report_context: bool,
                encoding: str | None = None) -> Iterator[Any]:
        """Record and schedule the page's links. ``encoding`` is the page's: a browser sends
        raw non-ASCII in a link's query in it (a GBK JSP reads ?lm=信息公开 as GBK bytes)."""
        base = response.url
        # The tree the classifier already parsed (htmlparse's cache), not a second parse.
        base_href, links = page_links(text)
        if base_href:
            base = canonicalize(base_href, base) or base
        seen_here: set[tuple[str, str]] = set()
        # One LinkSources item per page (the same rows as one LinkSource each, far cheaper
        # through Scrapy); a distributed crawl's item queue takes single items.
        batch: list[LinkSource] | None = [] if self.distributed is None else None
        seen_at = now_iso()  # the page's links were all seen when it was read
        for href, anchor in links:
            url = canonicalize(href.strip(), base, encoding=encoding)
            if url is None:
                continue
            if (url, anchor) in seen_here:
                continue
            seen_here.add((url, anchor))
            source = LinkSource(site_id=run.site.id, crawl_id=run.crawl_id, from_url=response.url,
                                to_url=url, anchor_text=anchor, seen_at=seen_at)
            if batch is None:
                yield source
            else:
                batch.append(source)
            yield from self._schedule(run, url, anchor, report_context)
        if batch:
            yield LinkSources(batch)

    def _schedule(self, run: SiteRun, url: str, anchor: str, report_context: bool) -> Iterator[Any]:
        if url in run.judged:
            return
        if not in_scope(url, run.site.allowed_domains):
            request = self._request_for(run, url, expect="external")
            if request is not None and self._first_ask(run, request):
                yield request
            return
        attachment = looks_like_attachment(url)
        expect = "attachment" if attachment else ("list" if is_list_page(url) else "page")
        hint = anchor if is_report_text(anchor) else None
        if hint is None and report_context and attachment:
            hint = anchor or url
        if hint and url in run.admitted:  # requested already, without it: its answer gets it
            run.report_hints.setdefault(url, hint)
        request = self._request_for(run, url, expect=expect, report_hint=hint)
        if request is None:
            run.judged.add(url)
            if run.refusal is None:
                yield self._exclusion(run, url, expect, "budget", f"max_pages={run.site.max_pages} reached")
            else:
                yield self._exclusion(run, url, expect, "trap-guard", TRAP_REFUSALS.get(run.refusal, run.refusal))
            return
        if self._first_ask(run, request):
            yield request

    def _first_ask(self, run: SiteRun, request: scrapy.Request) -> bool:
        """Whether this site's crawl asks for ``request``'s URL for the first time; if so,
        the request bypasses Scrapy's dupefilter, which all sites of the process share: a
        link two sites cite is checked (and recorded) by each, once per site."""
        if self.distributed is not None:
            # Workers of a distributed job share the site's dupefilter in Redis: it is what
            # keeps two workers from checking one URL twice.
            return True
        fingerprint = self.crawler.request_fingerprinter.fingerprint(request)
        if fingerprint in run.requested:
            return False  # asked already: its answer is on its way (or in)
        run.requested.add(fingerprint)
        request.dont_filter = True
        return True


def _asked_url(response: Response) -> str:
    """The URL the spider asked for: the first of a redirect chain."""
    return (response.meta.get("redirect_urls") or [response.request.url])[0]


def _page_for_a_file(response: Response) -> bool:
    """A HEAD answer of a file link (``.pdf``, ``.doc``...) that says it is an HTML page, or
    a part of the file (206, to a request for no range)."""
    url = _asked_url(response)
    content_type = response.headers.get(b"Content-Type", b"").decode("latin-1").lower()
    return looks_like_attachment(url) and (
        response.status == 206 or content_type.startswith(("text/html", "application/xhtml")))


#: Response headers Chromium must not be given with a body that Scrapy already decoded.
_NOT_FOR_BROWSER = frozenset({b"content-encoding", b"content-length", b"transfer-encoding", b"connection"})


def _give_document(request: scrapy.Request, response: Response, fetch: Fetch) -> scrapy.Request:
    """Let Chromium render ``request`` from the answer the crawl just got (``response``)
    instead of downloading the page again (see :mod:`crawler.rendering`): half the requests
    and bytes for every page rendered, none at all for a page answered 304. Not after
    redirects (the browser must see them, and resolve links against the right URL)."""
    if fetch.redirect_chain or response.url != request.url or fetch.method != "GET":
        return request
    meta = response.meta
    headers = [(name.decode("latin-1"), value.decode("latin-1"))
               for name, values in response.headers.items() if name.lower() not in _NOT_FOR_BROWSER
               for value in values]
    transferred = meta.get(WIRE_BYTES)
    if transferred is None:  # not downloaded by Scrapy's own downloader (nothing it counted)
        transferred = 0 if meta.get("xxgk_not_modified") or meta.get("xxgk_reused") else len(response.body)
    request.meta[DOCUMENT] = DOCUMENTS.put(request.url, Document(response.status, headers, response.body, transferred))
    return request


def _render_cost(meta: dict) -> int | None:
    """Body bytes a rendered check cost: the crawl's own download of the page when Chromium
    was given it, plus what Chromium received itself; None when neither is known (the
    archive then counts the body's length)."""
    given, fetched = meta.get(DOCUMENT_TRANSFERRED), meta.get(BROWSER_BYTES)
    if given is None and fetched is None:
        return None
    return (given or 0) + (fetched or 0)


def _screenshot(response: Response) -> bytes | None:
    for method in response.meta.get("playwright_page_methods") or []:
        if getattr(method, "method", None) == "screenshot" and isinstance(method.result, bytes):
            return method.result
    return None


def _annotate_retry(verdict: Verdict, how: str = BROWSER) -> Verdict:
    blocked = verdict.state == BLOCKED
    if how == COOKIES:  # re-fetched plainly with the cookies of the host's browser pass
        outcome = ("challenged again despite the browser's cookies" if blocked
                   else "passed with the browser's cookies")
    else:
        outcome = "browser retry " + ("still blocked" if blocked else "passed")
    return Verdict(verdict.state, verdict.rule, f"{outcome}; {verdict.detail}".strip("; "))


def _prefixed(verdict: Verdict, detail: str) -> Verdict:
    return Verdict(verdict.state, verdict.rule, f"{detail}; {verdict.detail}".strip("; "))


def _browser_passable(verdict: Verdict) -> bool:
    return verdict.state == BLOCKED and verdict.rule.startswith(BROWSER_PASSABLE_RULES)


def _read_archive(db_path: str | None, query: Callable[[Any], Any]) -> Any:
    """``query`` on a read-only connection to the archive; nothing when there is no archive
    yet (a first crawl) or it cannot be read (the crawl goes on without what it would tell)."""
    if not db_path:
        return []
    import sqlite3

    try:
        with contextlib.closing(sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, timeout=30)) as conn:
            return query(conn)
    except sqlite3.Error:
        return []


def _evidence_urls(db_path: str | None) -> frozenset[str]:
    """Checklist item URLs already known (from reports, portals): worth a screenshot."""
    return frozenset(u for u in _read_archive(db_path, evidence_urls) if u)


def revisiting_guard(site_id: str, known_traps: frozenset[str], revisit_budget: int, log: Any) -> TrapGuard:
    """A site's trap guard for this crawl; logs the calendar families it only revisits."""
    if known_traps:
        log.info("%s: %d calendar pattern(s) cut short last crawl, revisiting %d URLs of each: %s",
                 site_id, len(known_traps), revisit_budget, ", ".join(sorted(known_traps)[:5]))
    return TrapGuard(known_traps=known_traps, revisit_budget=revisit_budget)


def _known_traps(db_path: str | None, site_id: str, crawl_id: int | None) -> frozenset[str]:
    """Calendar patterns whose budget ran out in the site's last finished crawl before
    ``crawl_id``: the trap guard revisits only a few of their URLs (``TrapGuard.known_traps``)."""
    return TrapGuard.calendar_patterns(
        _read_archive(db_path, lambda conn: trap_budget_refusals(conn, site_id, crawl_id)))


def _is_html(response: Response) -> bool:
    ctype = response.headers.get(b"Content-Type", b"").decode("latin-1").lower()
    if any(t in ctype for t in HTML_TYPES):
        return True
    if isinstance(response, TextResponse) and not ctype:
        return True
    head = response.body[:512].lstrip().lower()
    return head.startswith((b"<!doctype html", b"<html")) and not looks_like_attachment(response.url)
