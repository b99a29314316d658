"""Chromium launch options for scrapy-playwright: Debian's browser, our proxy.

Playwright cannot download its own browsers here, so we launch ``/usr/bin/chromium``
(override with ``XXGK_CHROMIUM``). The browser goes through the same proxy as Scrapy
(``https_proxy``/``http_proxy``, upper or lower case; ``no_proxy`` becomes the bypass list),
except the Google services Chromium calls by itself (``CHROMIUM_OWN_HOSTS``), which go nowhere.

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

#: Google services Chromium calls on its own (sign-in, push messaging, updates, safe
#: browsing), never for a page: resolved to nowhere and kept off the proxy, so a crawl
#: through a user's proxy does not show up there as visits to Google.
CHROMIUM_OWN_HOSTS = ("accounts.google.com", "android.clients.google.com", "clients2.google.com",
                      "update.googleapis.com", "safebrowsing.googleapis.com",
                      "optimizationguide-pa.googleapis.com", "content-autofill.googleapis.com")


def env_proxy(environ: dict[str, str] | None = None) -> dict[str, str] | None:
    """Playwright's ``proxy`` option built from the standard proxy variables, or None."""
    env = os.environ if environ is None else environ

    def get(name: str) -> str:
        return env.get(name) or env.get(name.upper()) or ""

    server = get("https_proxy") or get("http_proxy")
    if not server:
        return None
    bypass = ",".join(filter(None, [get("no_proxy"), *CHROMIUM_OWN_HOSTS]))
    return {"server": server, "bypass": bypass}


def chromium_path() -> str | None:
    configured = os.environ.get("XXGK_CHROMIUM")
    if configured:
        return configured
    return shutil.which("chromium") or shutil.which("chromium-browser")


def launch_options(environ: dict[str, str] | None = None) -> dict:
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
    return options
