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

import hashlib
import re
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import scrapy
from scrapy.http import Response, TextResponse
from scrapy_playwright.page import PageMethod
from twisted.python.failure import Failure

from archive.states import BLOCKED, EMPTY, EXCLUDED, GOOD_STATES, SOFT_404
from crawler.classify import SiteProbe, classify, probe_url
from crawler.decode import decode_body, filename_from_content_disposition
from crawler.fetch import Fetch, Verdict
from crawler.htmlparse import needs_render
from crawler.items import Evidence, LinkCheck, LinkSource
from crawler.maintext import main_text
from crawler.urls import TrapGuard, canonicalize, in_scope, is_list_page, looks_like_attachment
from schedules.registry import Site, load_registry, select_sites

TITLE_RE = re.compile(rb"<title[^>]*>(.*?)</title>", re.I | re.S)
LINK_XPATH = "//a[@href] | //area[@href] | //iframe[@src] | //frame[@src]"
HTML_TYPES = ("text/html", "application/xhtml")
#: Statuses for which a HEAD answer is not trusted and the link is re-checked with GET.
HEAD_RETRY_STATUSES = frozenset({400, 403, 404, 405, 406, 409, 412, 429, 500, 501, 502, 503, 521})
#: Verdicts a watchdog may cite as a failure of the page itself: keep a screenshot.
EVIDENCE_STATES = frozenset({SOFT_404, EMPTY})
#: Challenge rules a real browser may pass (cookie-setting scripts), retried once in Chromium.
BROWSER_PASSABLE_RULES = ("challenge-jsl", "challenge-ruishu", "challenge-cookie-script",
                          "challenge-cloudflare")


def now_iso() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def is_report_text(text: str) -> bool:
    from archive.reports.facts import is_annual_report_title

    return bool(text) and is_annual_report_title(text)


@dataclass
class SiteRun:
    """Per-site crawl state: budget, trap guard, the not-found probe, URLs already judged."""

    site: Site
    crawl_id: int | None
    guard: TrapGuard = field(default_factory=TrapGuard)
    probe: SiteProbe | None = None
    scheduled: int = 0
    judged: set[str] = field(default_factory=set)

    # Budget, trap guard and probe go through these methods so that a distributed crawl
    # (crawler.distributed.DistributedSiteRun) can keep them in Redis for all workers.
    def admit(self, url: str) -> bool:
        """Budget and trap guard for a new in-scope URL; counts it when admitted."""
        if self.scheduled >= self.site.max_pages or not self.guard.allow(url):
            return False
        self.scheduled += 1
        return True

    def count(self) -> None:
        """Count a request that bypasses the budget (start URLs, re-renders)."""
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
        spider.evidence_urls = _evidence_urls(crawler.settings.get("XXGK_DB"))
        return spider

    # -- start ---------------------------------------------------------------------------
    async def start(self) -> AsyncIterator[Any]:
        if self.distributed is not None:  # runs exist already; one worker queues the seeds
            for request in self.distributed.seed_requests(self):
                yield request
            return
        for site in self.sites:
            run = SiteRun(site, (self.crawl_ids or {}).get(site.id))
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

    def _start_requests(self, run: SiteRun) -> Iterator[scrapy.Request]:
        for url in run.site.portal:
            canonical = canonicalize(url) or url
            request = self._request_for(run, canonical, expect="page", home=True)
            if request is not None:
                yield request

    def on_probe(self, response: Response) -> Iterator[scrapy.Request]:
        run = self.runs[response.meta["xxgk"]["site"]]
        run.set_probe(SiteProbe.from_fetch(self._fetch_from_response(response, "page")))
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
            run.count()
        elif not run.admit(url):
            return None
        if render or (site.render == "always" and expect != "attachment"):
            # Pages rendered because auto mode needed it are few: keep their screenshot.
            self._render(meta, render or "render=always", screenshot=bool(render))
        return scrapy.Request(url, callback=self.parse, errback=self.on_failure, meta=meta,
                              priority=-1 if expect == "attachment" else 0)

    def _render(self, meta: dict, reason: str, *, screenshot: bool) -> dict:
        """Mark a request for Chromium; wait for script redirects and late lists to settle."""
        methods = [PageMethod("wait_for_load_state", "networkidle", timeout=self.render_settle_ms)]
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
        return Fetch(
            url=original, status=response.status,
            headers={k.decode("latin-1").lower(): b", ".join(v) for k, v in response.headers.items()},
            body=response.body, final_url=response.url, redirect_chain=chain,
            expect=expect, is_home_page=bool(meta["xxgk"].get("home")),
            home_urls=tuple(site.portal), method=response.request.method if response.request else "GET",
            elapsed_ms=int(latency * 1000) if latency is not None else None,
            via_proxy=bool(meta.get("proxy") or meta.get("_auth_proxy")),
        )

    def _check_item(self, run: SiteRun, fetch: Fetch, verdict: Verdict, *, archive_body: bool,
                    text: str | None = None, encoding: str | None = None,
                    meta: dict | None = None) -> LinkCheck:
        meta = meta or {}
        headers = {k: v.decode("latin-1") for k, v in fetch.headers.items()}
        length = fetch.header("content-length")
        title = None
        if text is not None:
            match = TITLE_RE.search(text.encode("utf-8", "replace")[:200_000])
            if match:
                title = " ".join(match.group(1).decode("utf-8", "replace").split())[:500] or None
        xxgk = meta.get("xxgk", {})
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
            not_modified=bool(meta.get("xxgk_not_modified")),
            previous_sha256=meta.get("xxgk_previous_sha256"),
            rendered=bool(meta.get("playwright")), render_reason=xxgk.get("render_reason"),
            report_hint=xxgk.get("report_hint") or (title if title and is_report_text(title) else None),
        )

    def parse(self, response: Response) -> Iterator[Any]:
        xxgk = response.meta["xxgk"]
        run = self.runs[xxgk["site"]]
        expect = xxgk.get("expect", "page")
        fetch = self._fetch_from_response(response, expect)
        is_html = _is_html(response)
        text, encoding = (decode_body(response.body, fetch.headers, response.url) if is_html
                          else (None, None))
        if (is_html and text is not None and run.site.render == "auto" and expect != "attachment"
                and not response.meta.get("playwright")):
            reason = needs_render(text, response.url)
            if reason:
                request = self._request_for(run, fetch.url, expect=expect, render=f"auto: {reason}",
                                            home=bool(xxgk.get("home")), bypass_budget=True,
                                            report_hint=xxgk.get("report_hint"))
                if request is not None:
                    # If the browser fails, the raw answer still stands (the server did answer).
                    raw = classify(fetch, probe=run.current_probe())
                    request.meta["xxgk"]["raw_verdict"] = (raw.state, raw.rule, raw.detail)
                    request.dont_filter = True
                    yield request
                    return
        rendered = bool(response.meta.get("playwright"))
        verdict = classify(fetch, probe=run.current_probe(), rendered=rendered)
        if fetch.url in run.judged:
            return
        retry = self._challenge_retry(run, response, verdict)
        if retry is not None:
            yield retry
            return
        if xxgk.get("challenge_retry"):
            verdict = _annotate_retry(verdict)
        run.judged.add(fetch.url)
        check = self._check_item(run, fetch, verdict, archive_body=True, text=text,
                                 encoding=encoding, meta=response.meta)
        check.screenshot = _screenshot(response)
        yield check
        if check.screenshot is None and self._wants_evidence(run, fetch.url, verdict, check):
            yield self._evidence_request(run, fetch.url, verdict)
        if is_html and text is not None and verdict.state in GOOD_STATES and expect != "attachment":
            yield from self._follow(run, response, text, report_context=bool(xxgk.get("report_hint")))

    # -- browser: challenges and evidence --------------------------------------------------
    def _challenge_retry(self, run: SiteRun, response: Response, verdict: Verdict) -> scrapy.Request | None:
        """Retry a cookie-script challenge once in Chromium (never twice: no loops)."""
        meta = response.meta
        if (verdict.state != BLOCKED or meta.get("playwright") or run.site.render == "never"
                or meta["xxgk"].get("challenge_retry") or not verdict.rule.startswith(BROWSER_PASSABLE_RULES)):
            return None
        new_meta = {"xxgk": {**meta["xxgk"], "challenge_retry": True,
                             "challenge_verdict": (verdict.state, verdict.rule, verdict.detail)}}
        self._render(new_meta, f"challenge: {verdict.rule}", screenshot=False)
        # A browser passes a cookie challenge in a second or two, or never (it reloads forever).
        new_meta["xxgk_render_timeout"] = self.challenge_timeout
        callback = self.parse if meta["xxgk"].get("expect") != "external" else self.parse_external
        url = (meta.get("redirect_urls") or [response.request.url])[0]
        return scrapy.Request(url, callback=callback, errback=self.on_failure, meta=new_meta,
                              dont_filter=True)

    def _wants_evidence(self, run: SiteRun, url: str, verdict: Verdict, check: LinkCheck) -> bool:
        if run.site.render == "never" or check.expect in ("attachment", "external"):
            return False
        if check.not_modified:
            return False  # same bytes as the previous capture, whose evidence still stands
        return (verdict.state in EVIDENCE_STATES or bool(check.report_hint)
                or url in self.evidence_urls)

    def _evidence_request(self, run: SiteRun, url: str, verdict: Verdict) -> scrapy.Request:
        meta = self._render({"xxgk": {"site": run.site.id, "evidence": verdict.state}},
                            f"evidence: {verdict.state}", screenshot=True)
        return scrapy.Request(url, callback=self.on_evidence, errback=self.on_evidence_failure,
                              meta=meta, dont_filter=True, priority=-5)

    def on_evidence(self, response: Response) -> Iterator[Evidence]:
        run = self.runs[response.meta["xxgk"]["site"]]
        screenshot = _screenshot(response)
        if screenshot is None:
            return
        url = (response.meta.get("redirect_urls") or [response.request.url])[0]
        yield Evidence(site_id=run.site.id, crawl_id=run.crawl_id, url=url, final_url=response.url,
                       fetched_at=now_iso(), status_code=response.status,
                       content_type=response.headers.get(b"Content-Type", b"").decode("latin-1") or None,
                       body=response.body, screenshot=screenshot,
                       reason=response.meta["xxgk"]["render_reason"])

    def on_evidence_failure(self, failure: Failure) -> None:
        self.logger.warning("no screenshot for %s: %s", failure.request.url, failure.value)

    def parse_external(self, response: Response) -> Iterator[Any]:
        xxgk = response.meta["xxgk"]
        run = self.runs[xxgk["site"]]
        if response.request.method == "HEAD" and response.status in HEAD_RETRY_STATUSES:
            # Many Chinese servers answer HEAD wrongly: only a GET is evidence.
            yield response.request.replace(method="GET", dont_filter=True)
            return
        fetch = self._fetch_from_response(response, "external")
        if fetch.url in run.judged:
            return
        verdict = classify(fetch, probe=None, rendered=bool(response.meta.get("playwright")))
        retry = self._challenge_retry(run, response, verdict)
        if retry is not None:
            yield retry
            return
        if response.meta["xxgk"].get("challenge_retry"):
            verdict = _annotate_retry(verdict)
        run.judged.add(fetch.url)
        yield self._check_item(run, fetch, verdict, archive_body=False, meta=response.meta)

    def on_failure(self, failure: Failure) -> Iterator[Any]:
        request = failure.request
        xxgk = request.meta["xxgk"]
        run = self.runs[xxgk["site"]]
        chain = list(request.meta.get("redirect_urls", []))
        url = chain[0] if chain else request.url
        if url in run.judged:
            return
        run.judged.add(url)
        fetch = Fetch(url=url, final_url=request.url if chain else None, redirect_chain=chain,
                      error_type=failure.type.__name__, error=str(failure.value)[:1000],
                      expect=xxgk.get("expect", "page"), method=request.method,
                      home_urls=tuple(run.site.portal),
                      via_proxy=bool(request.meta.get("proxy") or request.meta.get("_auth_proxy")))
        verdict = classify(fetch, probe=run.current_probe())
        if xxgk.get("raw_verdict"):
            state, rule, detail = xxgk["raw_verdict"]
            verdict = Verdict(state, rule, f"rendering failed ({fetch.error_type}); {detail}")
        elif xxgk.get("challenge_verdict"):
            # The browser could not get past the challenge (it reloads forever, times out):
            # the page is still behind a challenge, not gone.
            state, rule, detail = xxgk["challenge_verdict"]
            verdict = Verdict(state, rule, f"browser retry failed ({fetch.error_type}); {detail}")
        yield self._check_item(run, fetch, verdict, archive_body=False, meta=request.meta)

    # -- links ---------------------------------------------------------------------------
    def _follow(self, run: SiteRun, response: Response, text: str, *, report_context: bool) -> Iterator[Any]:
        base = response.url
        selector = scrapy.Selector(text=text, type="html")
        base_href = selector.xpath("//base/@href").get()
        if base_href:
            base = canonicalize(base_href, base) or base
        seen_here: set[tuple[str, str]] = set()
        for node in selector.xpath(LINK_XPATH):
            href = node.attrib.get("href") or node.attrib.get("src") or ""
            url = canonicalize(href.strip(), base)
            if url is None:
                continue
            anchor = " ".join(node.xpath("string(.)").get("").split())[:300] or node.attrib.get("title", "")
            if (url, anchor) in seen_here:
                continue
            seen_here.add((url, anchor))
            yield LinkSource(site_id=run.site.id, crawl_id=run.crawl_id, from_url=response.url,
                             to_url=url, anchor_text=anchor, seen_at=now_iso())
            yield from self._schedule(run, url, anchor, report_context)

    def _schedule(self, run: SiteRun, url: str, anchor: str, report_context: bool) -> Iterator[Any]:
        if url in run.judged:
            return
        if not in_scope(url, run.site.allowed_domains):
            request = self._request_for(run, url, expect="external")
            if request is not None:
                yield request
            return
        attachment = looks_like_attachment(url)
        expect = "attachment" if attachment else ("list" if is_list_page(url) else "page")
        hint = anchor if is_report_text(anchor) else None
        if hint is None and report_context and attachment:
            hint = anchor or url
        request = self._request_for(run, url, expect=expect, report_hint=hint)
        if request is None:
            run.judged.add(url)
            over_budget = run.over_budget()
            yield self._exclusion(run, url, expect, "budget" if over_budget else "trap-guard",
                                  f"max_pages={run.site.max_pages} reached" if over_budget
                                  else "URL pattern budget, depth or repetition limit")
            return
        yield request


def _screenshot(response: Response) -> bytes | None:
    for method in response.meta.get("playwright_page_methods") or []:
        if getattr(method, "method", None) == "screenshot" and isinstance(method.result, bytes):
            return method.result
    return None


def _annotate_retry(verdict: Verdict) -> Verdict:
    outcome = "still blocked" if verdict.state == BLOCKED else "passed"
    return Verdict(verdict.state, verdict.rule, f"browser retry {outcome}; {verdict.detail}".strip("; "))


def _evidence_urls(db_path: str | None) -> frozenset[str]:
    """Checklist item URLs already known (from reports, portals): worth a screenshot."""
    if not db_path:
        return frozenset()
    import sqlite3

    try:
        with sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, timeout=30) as conn:
            return frozenset(u for (u,) in conn.execute("SELECT DISTINCT url FROM site_items") if u)
    except sqlite3.Error:
        return frozenset()


def _is_html(response: Response) -> bool:
    ctype = response.headers.get(b"Content-Type", b"").decode("latin-1").lower()
    if any(t in ctype for t in HTML_TYPES):
        return True
    if isinstance(response, TextResponse) and not ctype:
        return True
    head = response.body[:512].lstrip().lower()
    return head.startswith((b"<!doctype html", b"<html")) and not looks_like_attachment(response.url)
