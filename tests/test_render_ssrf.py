"""Redirects Chromium follows by itself are judged by the SSRF guard too.

Playwright calls a page's route handler only for the first URL of a request, not for the
redirect steps Chromium then follows, so the route handler's check alone lets a public URL
answering ``302 Location: http://127.0.0.1:.../`` (or the metadata address) through. Here a
rendered page (on a test host served by the simulated web's proxy) loads sub-resources,
frames and a cross-site frame whose URLs redirect to a loopback server standing in for an
internal service (the site does not allow private addresses) or to the metadata address; a
second portal page itself redirects to the loopback server. Playwright sends loopback
requests through the proxy too, so the proxy's log shows what Chromium asked for; the
loopback server counts what reached it directly.
"""

from __future__ import annotations

import os
import re
import sqlite3
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from xxgk.runcrawl import crawl_stats

ROOT = Path(__file__).resolve().parent.parent
HOST = "redirects.example-univ.edu.cn"
OTHER = "http://widgets.example-partner.com.cn"  # another site: its frame may be an OOPIF
PAGE = f"http://{HOST}/index.htm"
MOVED = f"http://{HOST}/moved.htm"  # a portal page that redirects to the loopback server
PUBLIC_TARGET = f"http://{HOST}/img/ok.png"
METADATA = "http://169.254.169.254/latest/meta-data/iam/security-credentials/"
PNG = bytes.fromhex("89504e470d0a1a0a0000000d4948445200000001000000010806000000"
                    "1f15c4890000000d49444154789c6360000002000154a24f5d0000000049454e44ae426082")
#: Loopback paths only a followed redirect can reach.
FORBIDDEN_PATHS = {"/img.png", "/chain.js", "/frame.htm", "/partner.png", "/landing.htm"}
#: Loopback paths the page's scripts reach for: CORS-mode requests that Chromium restarts
#: after a cross-origin redirect (fetch, XHR, a worker's fetch; no redirect step to see),
#: and a WebSocket (no route handler or CDP session sees one).
SCRIPT_PATHS = {"/fetch.txt", "/xhr.txt", "/worker.txt", "/ws"}


#: Paths the loopback server was asked for (reset by each crawl).
VISITS: list[str] = []


@pytest.fixture(scope="module")
def loopback(loopback_server):
    return loopback_server(b"<html><body>internal</body></html>", "text/html", VISITS)


def pages(loopback: str) -> dict:
    from simweb.content import html_page
    from simweb.model import Resource

    def redirect(target: str) -> Resource:
        return Resource(status=302, body=b"", headers=[("Location", target)], state="redirected",
                        validators=False)

    body = html_page("重定向", "<h1>重定向</h1><p>学校信息公开工作的相关说明文字。</p>"
                             f'<img src="http://{HOST}/go/img" width="1" height="1">'
                             f'<img src="http://{HOST}/go/meta" width="1" height="1">'
                             f'<img src="http://{HOST}/go/ok" width="1" height="1">'
                             f'<script src="http://{HOST}/go/chain"></script>'
                             f'<iframe src="http://{HOST}/go/frame"></iframe>'
                             f'<iframe src="{OTHER}/frame.htm"></iframe>'
                             f'<script>fetch("http://{HOST}/go/fetch").catch(function () {{}});'
                             f'var x = new XMLHttpRequest(); x.open("GET", "http://{HOST}/go/xhr"); x.send();'
                             f'new Worker("/worker.js");'
                             f'try {{ new SharedWorker("/shared.js"); }} catch (e) {{}}'
                             f'try {{ new WebSocket("{loopback.replace("http:", "ws:")}/ws"); }} catch (e) {{}}'
                             f'</script>')
    partner = html_page("合作", f'<p>合作单位</p><img src="{OTHER}/go/img" width="1" height="1">')
    robots = Resource(body=b"User-agent: *\nDisallow:\n", content_type="text/plain", validators=False)
    return {
        PAGE: Resource(body=body.encode(), validators=False),
        f"http://{HOST}/robots.txt": robots,
        f"http://{HOST}/go/img": redirect(f"{loopback}/img.png"),
        f"http://{HOST}/go/meta": redirect(METADATA),
        f"http://{HOST}/go/ok": redirect(PUBLIC_TARGET),
        PUBLIC_TARGET: Resource(body=PNG, content_type="image/png", validators=False),
        # two steps: the first one is public, the second one is not
        f"http://{HOST}/go/chain": redirect(f"http://{HOST}/go/chain2"),
        f"http://{HOST}/go/chain2": redirect(f"{loopback}/chain.js"),
        f"http://{HOST}/go/frame": redirect(f"{loopback}/frame.htm"),
        MOVED: redirect(f"{loopback}/landing.htm"),
        f"{OTHER}/robots.txt": robots,
        f"{OTHER}/frame.htm": Resource(body=partner.encode(), validators=False),
        f"{OTHER}/go/img": redirect(f"{loopback}/partner.png"),
        f"http://{HOST}/go/fetch": redirect(f"{loopback}/fetch.txt"),
        f"http://{HOST}/go/xhr": redirect(f"{loopback}/xhr.txt"),
        f"http://{HOST}/go/worker": redirect(f"{loopback}/worker.txt"),
        f"http://{HOST}/worker.js": Resource(body=f'fetch("http://{HOST}/go/worker");'.encode(),
                                             content_type="text/javascript", validators=False),
        f"http://{HOST}/shared.js": Resource(body=f'fetch("{loopback}/shared.txt");'.encode(),
                                             content_type="text/javascript", validators=False),
    }


def render_crawl(tmp: Path, loopback: str, *settings: str, portal: tuple[str, ...] = (PAGE, MOVED),
                 extra: dict | None = None, render: str = "always", workers: bool = True) -> dict:
    from simweb import SimWeb

    registry = tmp / "sites.toml"
    starts = ", ".join(f'"{url}"' for url in portal)
    registry.write_text(f'[[site]]\nid = "redirects"\nname = "重定向大学"\nportal = [{starts}]\n'
                        f'render = "{render}"\n', encoding="utf-8")
    VISITS.clear()
    with SimWeb(port=0, day=1, extra=extra or pages(loopback)) as web:
        env = {**os.environ, "http_proxy": web.proxy_url, "https_proxy": web.proxy_url, "no_proxy": ""}
        result = subprocess.run(
            [sys.executable, "-m", "xxgk", "crawl", "--registry", str(registry), "--db", str(tmp / "a.db"),
             "-s", "XXGK_DOWNLOAD_TIMEOUT=10", "-s", "DOWNLOAD_DELAY=0", "-s", "AUTOTHROTTLE_ENABLED=False",
             "-s", "XXGK_PROBE_SOFT404=0", "-s", "XXGK_SSRF_DNS_TIMEOUT=1",
             # workers behind the simulated web's proxy, so that their requests are judged too
             "-s", f"XXGK_BROWSER_WORKERS_BEHIND_PROXY={int(workers)}", *settings],
            cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
        assert result.returncode == 0, result.stdout + result.stderr
        stats = crawl_stats(re.search(r"log: (\S+)", result.stdout).group(1))
        with sqlite3.connect(tmp / "a.db") as conn:
            checks = {url: (state, rule, error) for url, state, rule, error in conn.execute(
                "SELECT url, state, rule, COALESCE(error, '') FROM link_checks")}
        urls = [e.url for e in web.events]
        reached = {urlsplit(u).path for u in urls if u.startswith(loopback + "/")} | set(VISITS)
        if urlsplit(loopback).netloc in urls:  # a CONNECT through the proxy: only a WebSocket tunnels
            reached.add("/ws")
        return {"urls": urls, "stats": stats, "reached": reached, "checks": checks}


@pytest.fixture(scope="module")
def guarded(tmp_path_factory, loopback):
    return render_crawl(tmp_path_factory.mktemp("guarded"), loopback)


def test_the_redirect_targets_are_reachable_from_the_browser(tmp_path, loopback):
    """The control: with the loopback and metadata addresses allowed, Chromium follows every
    redirect (so the test below would see it if the guard let one through)."""
    allowed = render_crawl(tmp_path, loopback, "-s", "XXGK_SSRF_ALLOW_HOSTS=127.0.0.1/32,169.254.0.0/16")
    assert FORBIDDEN_PATHS | SCRIPT_PATHS <= allowed["reached"], (allowed["reached"], allowed["urls"])
    assert METADATA in allowed["urls"]
    # shared workers are gone from every rendered page, allowed or not
    assert f"http://{HOST}/shared.js" not in allowed["urls"] and "/shared.txt" not in allowed["reached"]


def test_redirect_steps_to_forbidden_origins_are_never_followed(guarded):
    # the first URLs (public) were asked for, and the public redirect was followed
    assert {f"http://{HOST}/go/img", f"http://{HOST}/go/chain2", f"{OTHER}/go/img", PUBLIC_TARGET,
            MOVED} <= set(guarded["urls"]), guarded["urls"]
    # ...but no redirect step reached the loopback server or (through the proxy) the metadata address
    assert not guarded["reached"], guarded["reached"]
    assert not [u for u in guarded["urls"] if "://169.254." in u or "://127.0.0.1" in u], guarded["urls"]
    assert guarded["stats"].get("xxgk/ssrf_blocked_redirects", 0) >= len(FORBIDDEN_PATHS) + 1, guarded["stats"]


def test_requests_of_scripts_and_workers_to_forbidden_origins_are_never_sent(guarded):
    assert {f"http://{HOST}/go/fetch", f"http://{HOST}/go/xhr", f"http://{HOST}/worker.js",
            f"http://{HOST}/go/worker"} <= set(guarded["urls"]), guarded["urls"]
    assert not SCRIPT_PATHS & guarded["reached"], guarded["reached"]
    assert f"http://{HOST}/shared.js" not in guarded["urls"]


def test_behind_a_proxy_rendered_pages_start_no_workers_by_default(tmp_path, loopback):
    """A dedicated worker's WebSocket passes the request-level checks and the proxy connects
    it anywhere (found by a security review): behind a proxy pages get no Worker."""
    default = render_crawl(tmp_path, loopback, portal=(PAGE,), workers=False)
    assert f"http://{HOST}/go/fetch" in default["urls"]  # the page's own scripts ran
    assert f"http://{HOST}/worker.js" not in default["urls"], default["urls"]
    assert not default["reached"], default["reached"]


def test_a_rendered_page_redirecting_to_a_forbidden_origin_is_excluded(guarded):
    state, rule, error = guarded["checks"][MOVED]
    assert (state, rule) == ("excluded", "ssrf") and "127.0.0.1" in error, (state, rule, error)
    assert guarded["checks"][PAGE][0] == "ok"


def test_a_script_redirect_to_a_forbidden_origin_is_excluded_not_the_raw_answer(tmp_path, loopback):
    """``auto`` renders a page whose script redirects (``window.location``) from the crawl's own
    download; when the browser refuses where the script leads (a public URL redirecting to the
    loopback server), the page is recorded as an HTTP redirect there would be, not as the raw
    answer the crawl keeps when a rendering merely fails."""
    from simweb.content import html_page
    from simweb.model import Resource

    scripted = f"http://{HOST}/scripted.htm"
    page = html_page("跳转", f'<p>正在跳转……</p><script>window.location.href = "http://{HOST}/go/landing";</script>')
    extra = {**pages(loopback), scripted: Resource(body=page.encode(), validators=False),
             f"http://{HOST}/go/landing": Resource(status=302, body=b"", state="redirected", validators=False,
                                                   headers=[("Location", f"{loopback}/landing.htm")])}
    crawl = render_crawl(tmp_path, loopback, portal=(scripted,), extra=extra, render="auto")
    state, rule, error = crawl["checks"][scripted]
    assert (state, rule) == ("excluded", "ssrf") and "127.0.0.1" in error, (state, rule, error)
    assert f"http://{HOST}/go/landing" in crawl["urls"] and "/landing.htm" not in crawl["reached"]


def test_launch_options_keep_frames_in_the_page_target_and_playwrights_features():
    """Site isolation off: a cross-site frame (an out-of-process frame otherwise) stays in the
    page's CDP session, which judges redirect steps (without it /partner.png above is reached).
    No ``--disable-features`` of ours: Chromium keeps only the last one, so it would replace
    Playwright's list (and e.g. turn HTTPS upgrades back on: a CONNECT :443 before each page)."""
    from crawler.browser import launch_options

    args = launch_options({})["args"]
    assert "--disable-site-isolation-trials" in args
    assert not [a for a in args if a.startswith(("--disable-features", "--enable-features"))]


# -- pop-up windows --------------------------------------------------------------------------
POPUP_PAGE = f"http://{HOST}/popup.htm"
#: Loopback paths only a pop-up window can reach.
POPUP_PATHS = {"/popup-open.htm", "/popup-click.htm", "/popup-redirected.htm"}


def popup_pages(loopback: str) -> dict:
    """A page whose scripts open windows: straight to the loopback server, by a synthetic
    click on a ``target=_blank`` link, and to a public URL that redirects there. A pop-up is a
    page of its own, which the opener's route handler and CDP session never see."""
    from simweb.content import html_page
    from simweb.model import Resource

    script = (f'window.open("{loopback}/popup-open.htm");'
              'var a = document.createElement("a");'
              f'a.href = "{loopback}/popup-click.htm"; a.target = "_blank";'
              'document.body.appendChild(a); a.click();'
              f'window.open("http://{HOST}/go/popup", "_blank");')
    body = html_page("弹窗", f"<h1>弹窗</h1><p>学校信息公开工作的相关说明文字。</p><script>{script}</script>")
    return {**pages(loopback),
            POPUP_PAGE: Resource(body=body.encode(), validators=False),
            f"http://{HOST}/go/popup": Resource(status=302, body=b"", state="redirected", validators=False,
                                                headers=[("Location", f"{loopback}/popup-redirected.htm")])}


def test_pop_up_windows_never_reach_forbidden_origins(tmp_path, loopback):
    crawl = render_crawl(tmp_path, loopback, portal=(POPUP_PAGE,), extra=popup_pages(loopback))
    assert crawl["checks"][POPUP_PAGE][0] == "ok", crawl["checks"]
    assert not crawl["reached"] & POPUP_PATHS, crawl["reached"]
    assert not [u for u in crawl["urls"] if "://127.0.0.1" in u], crawl["urls"]


def test_browser_contexts_block_service_workers():
    """A service worker's requests pass no page's route handler: contexts refuse workers."""
    from crawler.rendering import context_options

    assert context_options({})["service_workers"] == "block"
    assert context_options({"service_workers": "allow", "locale": "zh-CN"}) == {
        "service_workers": "block", "locale": "zh-CN"}
