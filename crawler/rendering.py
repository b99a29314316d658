"""scrapy-playwright with a hard deadline per rendered request, and pages always closed.

scrapy-playwright bounds ``page.goto`` with the navigation timeout, but not what follows:
a page that reloads itself forever (an anti-bot cookie script the browser cannot pass)
makes ``page.content()`` wait indefinitely, and the crawl never ends. This handler wraps
every rendered download in ``asyncio.wait_for`` and closes the page on every path
(success, error, deadline), so the number of open pages stays bounded. Closing itself is
bounded too: Chromium sometimes drops a close (see :func:`_close_quietly`).

Chromium's own requests (the page's scripts, images, frames, XHR) do not pass through
Scrapy's downloader, so neither its per-host slots nor the SSRF guard see them. The route
handler of every rendered page therefore (1) aborts sub-requests that
:class:`crawler.safety.SSRFGuardMiddleware` would refuse, and (2) lets at most
``XXGK_RENDER_HOST_CONCURRENCY`` requests per host be in flight for one page at a time. A
render holds one transfer of its host's downloader slot, so with the default of 1 the
server sees no more requests at once from us than ``CONCURRENT_REQUESTS_PER_DOMAIN``,
rendered pages included. (Requests of a page to *other* hosts are limited per page, not by
those hosts' slots; ``DOWNLOAD_DELAY`` does not space a page's sub-requests.)

Playwright calls the route handler only for a request's first URL: the redirect steps
Chromium then follows by itself are continued without asking it. So every rendered page
also gets a CDP session of its own with ``Fetch`` interception (:class:`_RedirectGuard`),
which Chromium asks before each request is sent (redirect steps, and requests it restarts
after a cross-origin redirect); requests the SSRF guard refuses fail with
``BlockedByClient`` (stats ``xxgk/ssrf_blocked_redirects`` and ``…_subrequests``), and a page
whose own navigation was refused ends in ``IgnoreRequest("ssrf: ...")``, as a Scrapy
redirect would. That session only sees the page's target: :mod:`crawler.browser` turns site
isolation off so that cross-site frames (and their workers) stay in it instead of becoming
out-of-process frames. WebSockets are judged by a WebSocket route, shared workers removed;
without an upstream proxy Chromium connects through :mod:`crawler.socksguard`.

Settings:

``XXGK_RENDER_TIMEOUT``  seconds a rendered request may take in all (default:
                         2 x ``DOWNLOAD_TIMEOUT`` + 10); a request's ``xxgk_render_timeout``
                         meta key may ask for less (challenge retries do)
``XXGK_RENDER_HOST_CONCURRENCY``  requests per host one rendered page may have in flight
                         (default 1)
``XXGK_CHALLENGE_RELOADS``  document loads a challenge retry (``xxgk_challenge`` meta) may
                         make after the first before it counts as a reload loop the browser
                         cannot pass (default 6; real challenges pass in two or three)
``XXGK_BROWSER_CONNECTION_GUARD``  without an upstream proxy, launch Chromium with the SOCKS5
                         proxy of :mod:`crawler.socksguard`, which judges every connection
                         (default ``True``)
``XXGK_BROWSER_WORKERS_BEHIND_PROXY``  let rendered pages start dedicated workers when
                         Chromium connects through an upstream proxy (default ``False``: a
                         worker's WebSocket passes the request-level checks, and the proxy
                         connects wherever it is asked; disclosure pages need no workers)

A page rendered because the crawl's own download of it needs a browser (``auto`` mode, or
a screenshot as evidence) is not downloaded again: the spider keeps that answer in
:data:`DOCUMENTS` and the route handler gives it to Chromium for the page's first
navigation (``route.fulfill``; stat ``xxgk/render_documents_reused``). Sub-resources,
script redirects and reloads go to the server. The rendered check counts the bytes that
download cost (0 after a 304) plus the body bytes Chromium received itself (meta
``xxgk_browser_bytes``, from each request's ``sizes()``), so ``crawls.bytes_received``
includes what the browser downloaded for the crawl's checks.

Challenge retries (see :mod:`crawler.challenges`) also get the status and headers of the
document finally shown (not of the challenge first answered) and the browser's cookies
for the page (``xxgk_browser_cookies`` meta).
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import re
from collections import OrderedDict
from collections.abc import Callable
from typing import Any, NamedTuple
from urllib.parse import urlsplit

from scrapy import Request
from scrapy.exceptions import IgnoreRequest
from scrapy.http import Response
from scrapy_playwright.handler import ScrapyPlaywrightDownloadHandler

logger = logging.getLogger(__name__)

#: Request meta key set when the crawl already downloaded the document to render
#: (kept in :data:`DOCUMENTS`; Chromium gets it instead of downloading it again, once).
DOCUMENT = "xxgk_document"
#: Response meta key set when it was used: the body bytes that document had cost.
DOCUMENT_TRANSFERRED = "xxgk_document_transferred"
#: Response meta key: body bytes Chromium itself received while rendering the request (the
#: page's sub-resources, the targets of its script redirects, the page when not given).
BROWSER_BYTES = "xxgk_browser_bytes"
#: Seconds a rendered page's last requests get to report their sizes before it closes.
ACCOUNTING_WAIT = 1.0


class Document(NamedTuple):
    """An answer Scrapy got, to be served to Chromium for the page's own navigation."""

    status: int
    headers: list[tuple[str, str]]  # body-encoding headers left out: the body is decoded
    body: bytes
    transferred: int  # body bytes it cost (0 when answered 304 or reused)

    def fulfill_headers(self) -> dict[str, str]:
        joined: dict[str, list[str]] = {}
        for name, value in self.headers:
            joined.setdefault(name.lower(), []).append(value)
        # Playwright takes one string per header; Set-Cookie lines are joined by newlines
        return {name: ("\n" if name == "set-cookie" else ", ").join(values) for name, values in joined.items()}


class DocumentStore:
    """Documents waiting for their rendering, by URL, bounded in bytes: evidence renders
    wait at low priority until the end of a crawl, and a crawl must not hold a body for each
    of them. The oldest go first; a document not found is simply downloaded again."""

    def __init__(self, max_bytes: int = 16_000_000) -> None:
        self.max_bytes = max_bytes
        self._documents: OrderedDict[str, Document] = OrderedDict()
        self._bytes = 0

    def put(self, url: str, document: Document) -> bool:
        """Keep ``document`` for ``url``; False when it is too big to keep at all."""
        self.take(url)
        if len(document.body) > self.max_bytes // 4:
            return False
        self._documents[url] = document
        self._bytes += len(document.body)
        while self._bytes > self.max_bytes:
            _url, dropped = self._documents.popitem(last=False)
            self._bytes -= len(dropped.body)
        return True

    def take(self, url: str) -> Document | None:
        document = self._documents.pop(url, None)
        if document is not None:
            self._bytes -= len(document.body)
        return document

    def __len__(self) -> int:
        return len(self._documents)


#: This crawl process's documents waiting to be rendered (one spider per process; in a
#: distributed crawl another worker may render the request: it downloads the page itself).
DOCUMENTS = DocumentStore()


def _document_for(rendering: Request | None, playwright_request: Any) -> Document | None:
    """The :class:`Document` to answer ``playwright_request`` with: the page's own first
    navigation to the very URL the crawl downloaded (taken, so it is used once)."""
    if rendering is None or not rendering.meta.get(DOCUMENT):
        return None
    if (playwright_request.method != "GET" or playwright_request.url.rstrip("/") != rendering.url.rstrip("/")
            or not playwright_request.is_navigation_request()
            or playwright_request.frame.parent_frame is not None):
        return None
    rendering.meta[DOCUMENT] = False
    document = DOCUMENTS.take(rendering.url)
    if document is not None:
        rendering.meta[DOCUMENT_TRANSFERRED] = document.transferred
    return document


#: The Scrapy request being rendered, for the route handler made while rendering it.
_RENDERING: contextvars.ContextVar[Request | None] = contextvars.ContextVar("xxgk_rendering", default=None)


class RenderDeadlineError(TimeoutError):
    """Rendering a page took longer than ``XXGK_RENDER_TIMEOUT``."""


class ChallengeReloadLoopError(RuntimeError):
    """A challenge retry kept reloading its page: the browser cannot pass it."""


class HostGate:
    """At most ``limit`` requests per host in flight for one rendered page."""

    def __init__(self, limit: int, stats: Any = None) -> None:
        self.limit = max(1, limit)
        self.stats = stats
        self._semaphores: dict[str, asyncio.Semaphore] = {}

    def semaphore(self, host: str) -> asyncio.Semaphore:
        return self._semaphores.setdefault(host, asyncio.Semaphore(self.limit))

    async def acquire(self, host: str) -> None:
        semaphore = self.semaphore(host)
        await semaphore.acquire()
        if self.stats is not None:  # the most a page had in flight to one host (for tests)
            in_flight = self.limit - semaphore._value  # noqa: SLF001 - asyncio has no public count
            self.stats.max_value("xxgk/render_host_in_flight_max", in_flight)

    def release(self, host: str) -> None:
        self.semaphore(host).release()


class BoundedPlaywrightDownloadHandler(ScrapyPlaywrightDownloadHandler):
    def __init__(self, crawler: Any) -> None:
        super().__init__(crawler)
        settings = crawler.settings
        default = 2 * settings.getfloat("DOWNLOAD_TIMEOUT", 30) + 10
        self.render_timeout = settings.getfloat("XXGK_RENDER_TIMEOUT", 0) or default
        #: Launching the browser and waiting for a free page may add this much.
        self.setup_allowance = 60.0
        self.host_limit = settings.getint("XXGK_RENDER_HOST_CONCURRENCY", 1)
        self.challenge_reloads = settings.getint("XXGK_CHALLENGE_RELOADS", 6)
        self._crawler = crawler
        self._guard: Any = None
        self._connections: Any = None  # crawler.socksguard.ConnectionGuard, when Chromium uses it
        self._pending: set[asyncio.Future] = set()
        #: Per rendered request (by id): its requests still to report their sizes.
        self._accounting: dict[int, set[asyncio.Future]] = {}

    async def _download_request(self, request: Request, spider: Any = None) -> Response:
        # Safety net around everything, page creation included: whatever hangs (a page slot
        # never freed, a browser call that never answers), the request ends.
        outer = self._deadline(request) + self.setup_allowance
        token = _RENDERING.set(request)  # the route handler made while rendering reads it
        try:
            return await asyncio.wait_for(super()._download_request(request, spider), timeout=outer)
        except TimeoutError as exc:
            self.stats.inc_value("xxgk/render_setup_deadline_exceeded")
            page = request.meta.pop("playwright_page", None)
            if page is not None:
                await self._close_page(page)
            raise RenderDeadlineError(f"rendering {request.url} did not finish in {outer:.0f} s") from exc
        finally:
            _RENDERING.reset(token)

    # -- Chromium's connections ---------------------------------------------------------------
    async def _launch(self) -> None:
        await self._start_connection_guard()
        await super()._launch()

    async def _start_connection_guard(self) -> None:
        """Without an upstream proxy, Chromium connects through :mod:`crawler.socksguard`."""
        options = self.config.launch_options
        guard = self._ssrf_guard()
        if guard is None or options.get("proxy") or not self._crawler.settings.getbool(
                "XXGK_BROWSER_CONNECTION_GUARD", True):
            return
        from crawler.browser import CHROMIUM_OWN_HOSTS
        from crawler.socksguard import ConnectionGuard

        def refused(target: str, reason: str) -> None:
            self.stats.inc_value("xxgk/ssrf_blocked_connections")
            logger.info("ssrf: refused a connection of the browser to %s: %s", target, reason)

        self._connections = ConnectionGuard(guard.allows_connection, on_refused=refused,
                                            connect_timeout=self.render_timeout,
                                            unreachable=frozenset(CHROMIUM_OWN_HOSTS))
        # "<-loopback>": Chromium would otherwise connect to loopback hosts directly
        options["proxy"] = {"server": await self._connections.start(), "bypass": "<-loopback>"}

    async def _close(self) -> None:
        try:
            await super()._close()
        finally:
            if self._connections is not None:
                await self._connections.close()

    # -- Chromium's own requests -------------------------------------------------------------
    def _ssrf_guard(self) -> Any:
        if self._guard is None:
            from crawler.safety import SSRFGuardMiddleware

            engine = getattr(self._crawler, "engine", None)
            manager = getattr(getattr(engine, "downloader", None), "middleware", None)
            found = [m for m in getattr(manager, "middlewares", ()) if isinstance(m, SSRFGuardMiddleware)]
            self._guard = found[0] if found else False
        return self._guard or None

    def _make_request_handler(self, *args: Any, **kwargs: Any) -> Callable:
        inner = super()._make_request_handler(*args, **kwargs)
        rendering = _RENDERING.get()
        gate = HostGate(self.host_limit, self.stats)
        deadline = self._deadline(rendering) if rendering is not None else self.render_timeout

        async def handler(route: Any, playwright_request: Any) -> None:
            url = playwright_request.url
            parts = urlsplit(url)
            if parts.scheme not in ("http", "https"):
                await inner(route, playwright_request)
                return
            guard = self._ssrf_guard()
            reason = await guard.refusal(url, rendering) if guard is not None else None
            if reason:
                self.stats.inc_value("xxgk/ssrf_blocked_subrequests")
                await route.abort("blockedbyclient")
                return
            document = _document_for(rendering, playwright_request)
            if document is not None:
                self.stats.inc_value("xxgk/render_documents_reused")
                await route.fulfill(status=document.status, headers=document.fulfill_headers(), body=document.body)
                return
            host = (parts.hostname or "").lower()
            await gate.acquire(host)
            try:
                await inner(route, playwright_request)
            except BaseException:
                gate.release(host)
                raise
            # Released when the answer has fully arrived (or failed), not when it was sent.
            task = asyncio.ensure_future(_release_when_done(
                gate, host, playwright_request, deadline, rendering.meta if rendering is not None else None))
            self._pending.add(task)
            task.add_done_callback(self._pending.discard)
            if rendering is not None:
                self._accounting.setdefault(id(rendering), set()).add(task)

        return handler

    # -- pop-ups and workers: pages and requests no route handler of ours sees --------------
    async def _create_browser_context(self, name: str, context_kwargs: dict | None, spider: Any = None) -> Any:
        wrapper = await super()._create_browser_context(name, context_options(context_kwargs), spider)
        # A window a page opens (window.open, a target=_blank click) is a page of its own:
        # the opener's route handler and CDP session never see its requests. Chromium's pop-up
        # blocker stops script pop-ups (crawler.browser keeps it on); any other is closed.
        wrapper.context.on("page", self._close_if_popup)
        # Until it closes, a pop-up that got through is guarded at least for its requests'
        # first URLs (our own pages' route handlers take precedence over this one).
        await wrapper.context.route("**", self._guard_other_pages)
        # Neither route handlers nor the CDP session see WebSocket handshakes: guarded here.
        await wrapper.context.route_web_socket(re.compile(".*"), self._guard_web_socket)
        # A shared worker's requests pass every handler of ours (it belongs to no page), and
        # WebRTC sends UDP past every proxy: disclosure pages need neither to show their content.
        await wrapper.context.add_init_script(UNGUARDED_APIS_OFF)
        if (self._connections is None and self._ssrf_guard() is not None
                and not self._crawler.settings.getbool("XXGK_BROWSER_WORKERS_BEHIND_PROXY", False)):
            # No connection guard (an upstream proxy connects instead): a dedicated worker's
            # WebSocket would pass the request-level checks (see crawler.socksguard).
            await wrapper.context.add_init_script(NO_WORKERS)
        return wrapper

    async def _guard_web_socket(self, socket: Any) -> None:
        url = socket.url
        http_url = re.sub(r"^ws(s?):", r"http\1:", url, flags=re.I)
        guard = self._ssrf_guard()
        reason = await _refusal_or_failure(guard, http_url) if guard is not None else None
        if reason:
            self.stats.inc_value("xxgk/ssrf_blocked_subrequests")
            logger.info("ssrf: refused a rendered page's WebSocket to %s: %s", url, reason)
            await socket.close(code=1008, reason="blocked by the crawler")
            return
        socket.connect_to_server()

    async def _guard_other_pages(self, route: Any, playwright_request: Any) -> None:
        url = playwright_request.url
        guard = self._ssrf_guard()
        if guard is not None and urlsplit(url).scheme in ("http", "https") and await guard.refusal(url):
            self.stats.inc_value("xxgk/ssrf_blocked_subrequests")
            await route.abort("blockedbyclient")
            return
        await route.continue_()

    def _close_if_popup(self, page: Any) -> None:
        task = asyncio.ensure_future(self._close_popup(page))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def _close_popup(self, page: Any) -> None:
        try:
            opener = await page.opener()  # ours (context.new_page) have none
        except Exception:  # noqa: BLE001 - closed already, browser gone
            return
        if opener is not None:
            self.stats.inc_value("xxgk/popups_closed")
            await _close_quietly(page, self.stats)

    def _deadline(self, request: Request) -> float:
        return min(self.render_timeout, request.meta.get("xxgk_render_timeout") or self.render_timeout)

    async def _download_request_with_page(self, request: Request, page: Any, spider: Any) -> Response:
        # The deadline starts once the page exists: launching the browser and waiting for a
        # free page slot are bounded elsewhere and must not eat into it.
        request.meta["playwright_include_page"] = True  # we, not scrapy-playwright, close it
        timeout = self._deadline(request)
        # Renders per host: a challenge host must cost one browser pass, not one per URL.
        self.stats.inc_value(f"xxgk/render_count/{urlsplit(request.url).hostname or ''}")
        render = super()._download_request_with_page
        challenge = bool(request.meta.get("xxgk_challenge"))
        documents: list[Any] = []
        looping = asyncio.Event()
        # Every render: a script redirect shows a second document, whose answer is the page's
        # (a challenge page reloading itself shows many: see _rendered_or_looping).
        page.on("response", lambda r: _note_document(page, r, documents, looping, self.challenge_reloads))

        guard = self._ssrf_guard()
        redirects = _RedirectGuard(guard, request, self.stats, self._pending) if guard is not None else None

        async def rendered() -> Response:
            if redirects is not None:  # before the first navigation, or its redirects slip by
                await redirects.attach(page)
            if not challenge:
                return await _final_document(await render(request, page, spider), documents)
            # A challenge the browser cannot pass reloads itself as fast as the server
            # answers, until the deadline: stop at the first sign of a loop instead.
            task = asyncio.ensure_future(render(request, page, spider))
            if not await _rendered_or_looping(task, looping):
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
                self.stats.inc_value("xxgk/challenge_reload_loops")
                raise ChallengeReloadLoopError(
                    f"{request.url} loaded {len(documents)} documents (the challenge reloads itself)")
            return await _challenge_outcome(request, page, task.result(), documents)

        try:
            response = await asyncio.wait_for(rendered(), timeout=timeout)
        except TimeoutError as exc:
            if redirects is not None and redirects.refused_navigation:
                raise redirects.ignore() from exc
            self.stats.inc_value("xxgk/render_deadline_exceeded")
            raise RenderDeadlineError(f"rendering {request.url} took longer than {timeout:.0f} s") from exc
        except Exception as exc:
            # The page's own navigation was refused: goto fails (net::ERR_BLOCKED_BY_CLIENT).
            if redirects is not None and redirects.refused_navigation:
                raise redirects.ignore() from exc
            raise
        finally:
            request.meta.pop("playwright_page", None)
            counting = self._accounting.pop(id(request), set())
            if counting:  # the page's last answers, counted before the page goes
                await asyncio.wait(counting, timeout=ACCOUNTING_WAIT)
            # Left set for a page that would not close, or scrapy-playwright would try again
            # (on errors), with a close that has no timeout.
            # The redirect guard's CDP session, if any, serves the freeze before the close too.
            if await self._close_page(page, redirects.session if redirects is not None else None):
                request.meta.pop("playwright_include_page", None)
        if redirects is not None and redirects.refused_navigation:
            # Rendered, but a later navigation of the page (a script redirect) was refused:
            # it shows Chromium's error page now, not the site's.
            raise redirects.ignore()
        return response

    async def _close_page(self, page: Any, session: Any = None) -> bool:
        """Close ``page`` (bounded) and count it; True if it is closed."""
        if page.is_closed():
            return True
        closed = await _close_quietly(page, self.stats, session)
        if closed:
            self.stats.inc_value("playwright/page_count/closed")
        return closed


async def _rendered_or_looping(rendering: asyncio.Future, looping: asyncio.Event) -> bool:
    """Wait for ``rendering`` or the first sign of a reload loop; True if it finished. When
    the wait itself is cancelled (the render deadline), the rendering is cancelled too: it
    must not go on with a page that is being closed (it would fail later, unobserved)."""
    loop_seen = asyncio.ensure_future(looping.wait())
    try:
        await asyncio.wait({rendering, loop_seen}, return_when=asyncio.FIRST_COMPLETED)
    except BaseException:
        rendering.cancel()
        raise
    finally:
        loop_seen.cancel()
    return rendering.done()


def context_options(context_kwargs: dict | None) -> dict:
    """Options of every browser context: ``context_kwargs`` with service workers blocked (a
    worker's requests pass no page's route handler, so the SSRF guard would not see them)."""
    return {**(context_kwargs or {}), "service_workers": "block"}


async def _refusal_or_failure(guard: Any, url: str, rendering: Request | None = None) -> str | None:
    """The SSRF guard's refusal of ``url``, or why it could not judge it: unjudged is refused
    (fail closed)."""
    try:
        return await guard.refusal(url, rendering)
    except Exception as exc:  # noqa: BLE001 - any failure of the guard
        return f"the guard failed: {exc!r}"


#: Run before any script of every page and frame of a rendering context.
UNGUARDED_APIS_OFF = ("for (const name of ['SharedWorker', 'RTCPeerConnection', 'webkitRTCPeerConnection',"
                     " 'RTCDataChannel']) { try { delete window[name]; } catch (e) {} }")
NO_WORKERS = "try { delete window.Worker; } catch (e) {}"


class _RedirectGuard:
    """The SSRF guard for the requests Chromium makes past Playwright's route handler, for one page.

    Playwright's route handler sees only a request's first URL (Playwright continues the
    redirect steps itself), so a CDP session of our own intercepts the page's requests as
    well, and Chromium pauses each one for it before sending it. Every paused request is
    judged, not only steps marked ``redirectedRequestId``: after a cross-origin redirect
    Chromium restarts a CORS-mode request (fetch, XHR, fonts, a worker's fetch) as a new
    request without that mark, and Playwright, which counts it as a redirect, never shows
    it to the route handler. The guard's verdicts are cached per host, so this is cheap.
    """

    def __init__(self, guard: Any, rendering: Request, stats: Any, pending: set[asyncio.Future]) -> None:
        self.guard = guard
        self.rendering = rendering
        self.stats = stats
        self.pending = pending
        self.session: Any = None
        self.main_frame: str | None = None
        #: (url, reason) of a refused step of the page's own (main frame) navigation.
        self.refused_navigation: tuple[str, str] | None = None

    async def attach(self, page: Any) -> None:
        # No fallback without it: rendering unguarded would reopen the hole (fail closed).
        session = await page.context.new_cdp_session(page)
        tree = await session.send("Page.getFrameTree")
        self.main_frame = tree["frameTree"]["frame"]["id"]  # stable across navigations
        self.session = session
        session.on("Fetch.requestPaused", self._on_paused)
        await session.send("Fetch.enable", {"patterns": [{"urlPattern": "*", "requestStage": "Request"}]})

    def _on_paused(self, event: dict) -> None:
        task = asyncio.ensure_future(self._judge(event))
        self.pending.add(task)
        task.add_done_callback(self.pending.discard)

    async def _judge(self, event: dict) -> None:
        request_id, url = event["requestId"], event["request"]["url"]
        reason = await _refusal_or_failure(self.guard, url, self.rendering)
        try:
            if not reason:
                await self.session.send("Fetch.continueRequest", {"requestId": request_id})
                return
            redirect = bool(event.get("redirectedRequestId"))
            self.stats.inc_value("xxgk/ssrf_blocked_redirects" if redirect else "xxgk/ssrf_blocked_subrequests")
            logger.info("ssrf: refused a %s of a rendered page to %s: %s",
                        "redirect step" if redirect else "request", url, reason)
            if event.get("resourceType") == "Document" and event.get("frameId") == self.main_frame:
                self.refused_navigation = self.refused_navigation or (url, reason)
            await self.session.send("Fetch.failRequest", {"requestId": request_id, "errorReason": "BlockedByClient"})
        except Exception:  # noqa: BLE001 - the page (and the paused request) is already gone
            pass

    def ignore(self) -> IgnoreRequest:
        from crawler.safety import BLOCK_PREFIX

        url, reason = self.refused_navigation or ("", "")
        host = urlsplit(url).hostname or url
        return IgnoreRequest(f"{BLOCK_PREFIX}blocked {host}: {reason} (a redirect in the browser)")


def _note_document(page: Any, response: Any, documents: list[Any], looping: asyncio.Event,
                   limit: int) -> None:
    """Keep the main frame's document answers (a challenge page reloads itself)."""
    try:
        if response.frame == page.main_frame and response.request.is_navigation_request():
            documents.append(response)
    except Exception:  # noqa: BLE001 - a frame already gone: not the main document
        return
    if len(documents) > limit:
        looping.set()


async def _challenge_outcome(request: Request, page: Any, response: Response, documents: list[Any]) -> Response:
    """For a challenge retry: the answer of the document finally shown, and the cookies.

    scrapy-playwright reports the status and headers of the first navigation: for a page
    whose script set a cookie and reloaded, that is the challenge (521, 412), even when the
    reload got the real page. The spider judges the final document's status and headers,
    and carries the browser's cookies for the page's URL (``xxgk_browser_cookies`` meta)
    into Scrapy's cookie jar when the pass got through (:mod:`crawler.challenges`).
    """
    response = await _final_document(response, documents)
    urls = list(dict.fromkeys([request.url, response.url]))
    request.meta["xxgk_browser_cookies"] = await page.context.cookies(urls)
    return response


async def _final_document(response: Response, documents: list[Any]) -> Response:
    """``response`` with the status and headers of the document finally shown.

    scrapy-playwright reports the first navigation's: for a page whose script went on to
    another page (a script redirect, a challenge's reload), the body is the last page's but
    the ETag, Last-Modified and status were the first one's, and were archived so.
    """
    if len(documents) > 1:
        final = documents[-1]
        headers = await final.all_headers()
        response = response.replace(status=final.status, headers=_scrapy_headers(headers))
    return response


def _scrapy_headers(headers: dict[str, str]) -> dict[str, list[str]]:
    # Playwright joins repeated headers (Set-Cookie) with newlines; the body is the page's
    # DOM, no longer encoded (as scrapy-playwright does for the first answer).
    return {name: value.split("\n") for name, value in headers.items() if name != "content-encoding"}


async def _release_when_done(gate: HostGate, host: str, playwright_request: Any, timeout: float,
                             rendering_meta: dict | None = None) -> None:
    """Release ``host`` in ``gate`` once the answer has arrived; add its body bytes to the
    rendered request's :data:`BROWSER_BYTES` (``rendering_meta``)."""
    try:
        response = await asyncio.wait_for(playwright_request.response(), timeout=timeout)
        if response is not None:
            await asyncio.wait_for(response.finished(), timeout=timeout)
            if rendering_meta is not None:
                sizes = await asyncio.wait_for(playwright_request.sizes(), timeout=timeout)
                size = max(0, int(sizes.get("responseBodySize") or 0))
                rendering_meta[BROWSER_BYTES] = rendering_meta.get(BROWSER_BYTES, 0) + size
    except Exception:  # noqa: BLE001 - failed, aborted, page closed: it is over either way
        pass
    finally:
        gate.release(host)


#: Seconds a page gets to close; it takes well under one unless Chromium dropped the close.
CLOSE_WAIT = 2.0
#: Times the close is asked for again after that, and the seconds each one gets.
CLOSE_RETRIES = 3
CLOSE_RETRY_WAIT = 1.0


async def _close_quietly(page: Any, stats: Any = None, session: Any = None) -> bool:
    """Close ``page`` within seconds, whatever it is doing; True once it is closed.

    Chromium acknowledges ``Target.closeTarget`` but drops it when a navigation of the page
    commits at that moment (crbug.com/536385539, microsoft/playwright#42068), and
    ``page.close()`` then waits for ever. A page reloading itself in a loop (an unpassable
    challenge) hits that often. So the page is frozen first (scripts off, loading stopped:
    nothing left to commit), then closed; a close lost all the same is asked for again
    (``xxgk/render_close_escalated``), and at last the page's context is closed if the page
    is its only one. A page still open after all that is ``xxgk/render_close_failed``.
    """
    if page.is_closed():
        return True
    session = await _freeze(page, session)
    try:
        # Route handlers still at work would only fail noisily once the page is gone.
        await asyncio.wait_for(page.unroute_all(behavior="ignoreErrors"), timeout=3)
    except Exception:  # noqa: BLE001 - closing is what matters; try it anyway
        pass
    closing = asyncio.ensure_future(page.close())
    closing.add_done_callback(_ignore_outcome)
    try:
        if await _closes_within(page, closing, CLOSE_WAIT):
            return True
        if stats is not None:
            stats.inc_value("xxgk/render_close_escalated")
        target = await _send(session, "Target.getTargetInfo") if session is not None else None
        target_id = (target or {}).get("targetInfo", {}).get("targetId")
        for _ in range(CLOSE_RETRIES if target_id else 0):
            # Closing a target already closing is a no-op; a dropped close is redone.
            await _send(session, "Target.closeTarget", {"targetId": target_id})
            if await _closes_within(page, closing, CLOSE_RETRY_WAIT):
                return True
        context = page.context
        if context.pages == [page]:  # no other page goes with it (scrapy-playwright makes a new one)
            logger.warning("closing the browser context of a page that would not close: %s", page.url)
            try:
                await asyncio.wait_for(context.close(), timeout=5)
            except Exception:  # noqa: BLE001 - checked below
                pass
            if await _closes_within(page, closing, CLOSE_RETRY_WAIT):
                return True
        if stats is not None:
            stats.inc_value("xxgk/render_close_failed")
        logger.error("a browser page would not close, left open: %s", page.url)
        return False
    finally:
        if not closing.done():
            closing.cancel()


async def _freeze(page: Any, session: Any = None) -> Any:
    """Stop a page's scripts and loading before it is closed; its CDP session, or None.

    Best effort, and Chromium only: without it the page is just closed (and retried). The
    session stays attached until the page is gone: detaching would turn scripts back on.
    ``session``: one the page already has (the redirect guard's), used instead of a new one.
    """
    if session is None:
        try:
            session = await asyncio.wait_for(page.context.new_cdp_session(page), timeout=2)
        except Exception:  # noqa: BLE001 - not Chromium, or the page is already gone
            return None
    for method, params in (("Emulation.setScriptExecutionDisabled", {"value": True}),
                           ("Page.stopLoading", {})):
        for _ in range(3):
            # Fails with "Not attached to an active page" while a new document commits.
            if await _send(session, method, params) is not None or page.is_closed():
                break
            await asyncio.sleep(0.02)
    return session


async def _send(session: Any, method: str, params: dict | None = None) -> dict | None:
    """A CDP command's answer, or None when it failed or took longer than a second."""
    try:
        return await asyncio.wait_for(session.send(method, params), timeout=1)
    except Exception:  # noqa: BLE001 - the caller carries on without it
        return None


async def _closes_within(page: Any, closing: asyncio.Future, seconds: float) -> bool:
    await asyncio.wait({closing}, timeout=seconds)
    return page.is_closed()


def _ignore_outcome(future: asyncio.Future) -> None:
    # A close given up on (cancelled) or failed (browser gone): nothing to report.
    if not future.cancelled():
        future.exception()
