"""Chromium launch options for scrapy-playwright: Debian's browser, our proxy.

Playwright cannot download its own browsers here, so we launch ``/usr/bin/chromium``
(override with ``XXGK_CHROMIUM``). The browser sends each URL the way Scrapy does
(:mod:`crawler.proxy` reads the environment for both): ``http://`` URLs through ``http_proxy``,
``https://`` URLs through ``https_proxy``, direct for a scheme without one or for a host
``no_proxy`` matches, except the Google services Chromium calls by itself
(``CHROMIUM_OWN_HOSTS``), which go nowhere.

Playwright's ``proxy`` option can say none of that: it takes one server for every scheme
and passes its bypass list to Chromium, which reads a bare name as that one host. It still
carries the proxy's user name and password (Chromium takes none from a URL, and Playwright
answers the proxy's 407 with them) and tells :mod:`crawler.rendering` that an upstream proxy
connects. What Chromium actually does is said by ``--proxy-server`` (per scheme) and
``--proxy-bypass-list`` (our ``no_proxy`` rules in Chromium's syntax) appended to the launch
arguments: Playwright puts ours after its own, and Chromium keeps the last of a repeated switch.

Site isolation is off (``--disable-site-isolation-trials``): a cross-site frame would
otherwise be a target of its own, out of reach of the page's CDP session with which
:mod:`crawler.rendering` judges the redirect steps Chromium follows (SSRF guard). The
renderer runs untrusted pages either way (``--no-sandbox``); it only holds public pages and
their cookies, and one process per page instead of one per site is also lighter.

Chromium's pop-up blocker stays on (Playwright turns it off by default): pop-up windows
would be pages outside the opener's route handler and CDP session.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Mapping

from crawler.proxy import SCHEMES, browser_credentials, no_proxy_rules, no_proxy_value, scheme_proxies

#: Google services Chromium calls on its own (sign-in, push messaging, updates, safe
#: browsing), never for a page: resolved to nowhere and kept off the proxy, so a crawl
#: through a user's proxy does not show up there as visits to Google.
CHROMIUM_OWN_HOSTS = ("accounts.google.com", "android.clients.google.com", "clients2.google.com",
                      "update.googleapis.com", "safebrowsing.googleapis.com",
                      "optimizationguide-pa.googleapis.com", "content-autofill.googleapis.com")


def env_proxy(environ: Mapping[str, str] | None = None) -> dict[str, str] | None:
    """Playwright's ``proxy`` option from the standard proxy variables, or None (direct).

    Raises :class:`~crawler.proxy.ProxyConfigError` when the two schemes' proxies carry
    different credentials (Playwright has one pair for every proxy).
    """
    proxies = scheme_proxies(environ)
    no_proxy = no_proxy_value(environ)
    if not proxies or no_proxy_rules(no_proxy).bypass_all:
        return None
    credentials = browser_credentials(proxies)
    proxy = proxies.get("http") or proxies["https"]
    # The bypass list here is Playwright's bookkeeping only: proxy_args() overrides it.
    entries = [entry.strip() for entry in no_proxy.split(",")]
    option = {"server": proxy.server, "bypass": ",".join(filter(None, [*entries, *CHROMIUM_OWN_HOSTS]))}
    if credentials:
        option["username"], option["password"] = credentials
    return option


def proxy_args(environ: Mapping[str, str] | None = None) -> list[str]:
    """Chromium's switches saying which proxy each scheme uses and which hosts go direct.

    Appended after Playwright's own ``--proxy-server``/``--proxy-bypass-list`` (from
    :func:`env_proxy`), which they replace: Chromium keeps the last value of a switch.
    """
    if env_proxy(environ) is None:
        return []
    proxies = scheme_proxies(environ)
    # "http=...;https=...": a scheme without a proxy goes direct, as in Scrapy
    server = ";".join(f"{scheme}={proxies[scheme].server}" for scheme in SCHEMES if scheme in proxies)
    bypass = no_proxy_rules(no_proxy_value(environ)).chromium_bypass_list()
    # "<-loopback>": without it Chromium sends localhost and 127.0.0.0/8 direct by itself,
    # which Scrapy does only when no_proxy says so. First: Chromium's later rules override
    # earlier ones, and this one last would send a no_proxy entry like 127.0.0.0/8 to the proxy.
    return [f"--proxy-server={server}",
            "--proxy-bypass-list=" + ";".join(["<-loopback>", *bypass, *CHROMIUM_OWN_HOSTS])]


def chromium_path() -> str | None:
    configured = os.environ.get("XXGK_CHROMIUM")
    if configured:
        return configured
    return shutil.which("chromium") or shutil.which("chromium-browser")


def launch_options(environ: Mapping[str, str] | None = None) -> dict:
    """Keyword arguments for ``browser_type.launch`` (``PLAYWRIGHT_LAUNCH_OPTIONS``)."""
    options: dict = {
        "headless": True,
        "args": [
            "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            "--disable-dev-shm-usage",
            # keeps cross-site frames in the page's target (see the module docstring)
            "--disable-site-isolation-trials",
            # WebRTC's UDP (STUN/TURN) would go past the proxy and its guard to any address.
            "--force-webrtc-ip-handling-policy=disable_non_proxied_udp",
            "--host-resolver-rules=" + ", ".join(f"MAP {host} ~NOTFOUND" for host in CHROMIUM_OWN_HOSTS),
        ],
    }
    # Playwright turns Chromium's pop-up blocker off; on, a page's scripts cannot open
    # windows (which no route handler or CDP session of crawler.rendering would see).
    options["ignore_default_args"] = ["--disable-popup-blocking"]
    path = chromium_path()
    if path:
        options["executable_path"] = path
    proxy = env_proxy(environ)
    if proxy:
        options["proxy"] = proxy
        options["args"] += proxy_args(environ)
    return options
