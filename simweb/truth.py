"""Ground truth of the simulated web, for tests and benchmarks.

* ``SITES`` – the universities of ``demo_sites.toml`` (list of dicts; ``portal`` always a list).
* ``expected_links(day)`` – every URL linked from a page a perfect crawler reaches
  (internal and external, canonical form, see :func:`canonical_url`) -> link state.
  URLs under ``TRAP_PREFIXES`` (the infinite calendar) are left out.
* ``expected_reports(day)`` / ``expected_report_items(site_id)`` – the annual reports.
* ``JS_ONLY_PAGES`` – list pages whose raw HTML list is empty; rendering reveals these links.
* ``JS_REDIRECTS`` – 200 pages that only redirect with ``window.location`` (state ``redirected``:
  the site is ``render = "auto"``, so a rendering crawler sees the redirect).
* ``MISLABELED_CHARSET`` – pages whose ``<meta>`` charset lies (URL -> real encoding).
* ``DAY2_CHANGES`` – what ``set_day(2)`` changes (computed from the two worlds):
  ``changed`` (ok both days, new bytes, new article text), ``cosmetic`` (ok both days,
  new bytes – so a new ETag – but only a visit counter, a "今天是…" date widget or a page
  generation time differs: not a content change), ``broke``, ``fixed``, ``new``,
  ``removed_links`` (page, target), ``gone`` (no longer linked).
* ``STATES`` – the link-state vocabulary.
* ``THROTTLED`` – URL -> ``(status, retry_after, times)``: the first ``times`` requests
  (per server and day) answer ``status`` (429/503) with ``Retry-After``, later ones the
  page (truth state ``ok``: a crawler that waits as asked gets it).
* ``RATE_LIMITED`` – URLs that always answer 429 (``Retry-After: 2``).
* ``PROBE_ONLY_SOFT404`` – soft-404 URLs whose answer is the site's normal (empty) page
  frame: nothing in it says "not found"; only comparing with the site's answer to a random
  URL (the probe) tells. The JSP site answers every unknown URL that way.

Links carrying ``?utm_source=``, ``;jsessionid=`` or ``&sid=`` appear in truth without
them (e.g. ``/2580/list.htm?utm_source=home`` on the WebPlus home page,
``BigClass.jsp;jsessionid=ABC123?id=71`` and ``ShowArticle.jsp?id=201&sid=…`` on the JSP site).
"""

from __future__ import annotations

import tomllib
from functools import lru_cache
from importlib import resources
from typing import Any

from simweb.model import STATES, World
from simweb.sites import build_world, jspcollege
from simweb.urls import canonical_url

# DAY2_CHANGES, JS_ONLY_PAGES, JS_REDIRECTS, THROTTLED and RATE_LIMITED are computed
# lazily (module __getattr__)
# but import normally: ``from simweb.truth import DAY2_CHANGES``.
__all__ = [
    "MISLABELED_CHARSET",
    "PROBE_ONLY_SOFT404",
    "SITES",
    "STATES",
    "TRAP_PREFIXES",
    "canonical_url",
    "expected_item_states",
    "expected_links",
    "expected_report_items",
    "expected_reports",
    "load_sites",
]

TRAP_PREFIXES: list[str] = [jspcollege.CALENDAR_PREFIX]
"""URL prefixes of crawler traps; a crawl must end having fetched finitely many of them."""

MISLABELED_CHARSET: dict[str, str] = {jspcollege.MISLABELED_ARTICLE: "gbk"}

PROBE_ONLY_SOFT404: list[str] = [canonical_url(u) for u in jspcollege.DEAD_LINKS]


def load_sites() -> list[dict[str, Any]]:
    """Parse the bundled ``demo_sites.toml`` (``portal`` normalised to a list)."""
    text = resources.files("simweb").joinpath("demo_sites.toml").read_text(encoding="utf-8")
    sites = tomllib.loads(text)["site"]
    for site in sites:
        if isinstance(site["portal"], str):
            site["portal"] = [site["portal"]]
    return sites


SITES: list[dict[str, Any]] = load_sites()


@lru_cache(maxsize=4)
def _crawl(day: int) -> tuple[dict[str, str], tuple[str, ...]]:
    links, undeclared = build_world(day).crawl()
    return links, tuple(undeclared)


def _day(day: int) -> int:
    return 1 if day <= 1 else 2


def expected_links(day: int = 1) -> dict[str, str]:
    """Canonical URL -> expected link state on ``day``."""
    return dict(_crawl(_day(day))[0])


def expected_reports(day: int = 1) -> list[dict[str, Any]]:
    """Annual reports published on ``day`` (see :func:`simweb.reports.truth_record`)."""
    return [dict(r) for r in build_world(_day(day)).reports]


def expected_report_items(site_id: str) -> dict[int, str]:
    """Item number -> URL as printed in the site's 清单事项公开情况表 (missing items absent)."""
    return dict(build_world(1).report_items[site_id])


def expected_item_states(site_id: str, day: int = 1) -> dict[int, str]:
    """Item number -> link state of the URL printed for it."""
    world = build_world(_day(day))
    return {n: world.state_of(u) for n, u in world.report_items[site_id].items()}


def _world(day: int) -> World:
    return build_world(_day(day))


def _throttled() -> dict[str, tuple[int, str, int]]:
    return {url: (res.throttle_status, res.throttle_retry_after, res.throttle_first)
            for url, res in _world(1).resources.items() if res.throttle_first}


def _rate_limited() -> list[str]:
    return sorted(url for url, state in expected_links(1).items() if state == "rate_limited")


@lru_cache(maxsize=1)
def _day2_changes() -> dict[str, Any]:
    w1, w2 = _world(1), _world(2)
    l1, l2 = expected_links(1), expected_links(2)
    good = {"ok", "redirected", "empty"}
    changed, broke, fixed, cosmetic = [], [], [], []
    for url in sorted(set(l1) & set(l2)):
        s1, s2 = l1[url], l2[url]
        if s1 in good and s2 not in good:
            broke.append(url)
        elif s1 not in good and s2 in good:
            fixed.append(url)
        elif s1 == s2 == "ok":
            r1, r2 = w1.resources.get(url), w2.resources.get(url)
            if r1 is not None and r2 is not None and r1.body != r2.body:
                # new bytes, same article text: a crawler re-downloads it (new ETag) but an
                # archive must not call it a change
                (cosmetic if url in w2.cosmetic else changed).append(url)
    new = sorted(set(l2) - set(l1))
    from simweb.sites import trs

    removed = [(trs.REMOVED_LINK_FROM, trs.REMOVED_LINK_TO)]
    return {
        "changed": changed,
        "cosmetic": cosmetic,
        "broke": broke,
        "fixed": fixed,
        "new": new,
        "removed_links": removed,
        "gone": sorted(set(l1) - set(l2)),
    }


def __getattr__(name: str) -> Any:
    if name == "DAY2_CHANGES":
        return _day2_changes()
    if name == "JS_ONLY_PAGES":
        return dict(_world(1).js_only)
    if name == "JS_REDIRECTS":
        return dict(_world(1).js_redirects)
    if name == "THROTTLED":
        return _throttled()
    if name == "RATE_LIMITED":
        return _rate_limited()
    raise AttributeError(name)
