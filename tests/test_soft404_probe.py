"""The probe comparison on the simulated JSP site, whose unknown URLs answer 200 with its own
(empty) article frame: only comparing with the site's answer to a random URL catches them.

Fixture responses come from the simulated web's model (no server, no crawl); the crawl
through the proxy is in tests/test_e2e_crawl.py.
"""

from __future__ import annotations

import pytest

from archive import states as S
from crawler.classify import SiteProbe, classify, probe_url
from crawler.fetch import Fetch
from simweb.sites import build_world, jspcollege
from simweb.truth import PROBE_ONLY_SOFT404, expected_links

JSP = "http://info.jsp-college.edu.cn"


def fetch(url: str, *, expect: str = "page") -> Fetch:
    res = build_world(1).lookup(url)
    assert res is not None, url
    headers = {"content-type": (res.content_type or "").encode()}
    return Fetch(url=url, status=res.status, headers=headers, body=res.body, final_url=url,
                 expect=expect, home_urls=(jspcollege.PORTAL,))


@pytest.fixture(scope="module")
def probe() -> SiteProbe:
    url = probe_url(jspcollege.PORTAL, "test-seed")
    assert url.startswith(JSP + "/") and url.endswith(".jsp") and url != jspcollege.PORTAL
    return SiteProbe.from_fetch(fetch(url))


def test_the_probe_learns_a_200_answer(probe):
    assert probe.answers_200 and not probe.redirected


@pytest.mark.parametrize("url", PROBE_ONLY_SOFT404)
def test_dead_links_are_soft_404_only_by_the_probe(url, probe):
    expect = "list" if "BigClass" in url else "page"
    without = classify(fetch(url, expect=expect))
    assert without.state != S.SOFT_404  # nothing in the page says so: text rules stay silent
    with_probe = classify(fetch(url, expect=expect), probe=probe)
    assert (with_probe.state, with_probe.rule) == (S.SOFT_404, "soft404-probe")
    assert "same as the site's answer to" in with_probe.detail


def test_the_sites_real_pages_stay_ok_with_the_probe(probe):
    """No false broken claims: every page of the site keeps its true state under the probe."""
    truth = expected_links(1)
    checked = 0
    for url, state in truth.items():
        if not url.startswith(JSP + "/") or state not in ("ok", "empty"):
            continue
        res = build_world(1).lookup(url)
        if res is None or not res.is_html or res.status != 200:
            continue
        expect = "list" if "BigClass" in url else "page"
        verdict = classify(fetch(url, expect=expect), probe=probe)
        assert verdict.state != S.SOFT_404, (url, verdict)
        checked += 1
    assert checked > 100


def test_an_unrelated_probe_does_not_match(probe):
    """A probe learnt on another site's 404 page (not 200) never calls a page soft 404."""
    other = SiteProbe.from_fetch(Fetch(url=JSP + "/x.jsp", status=404, body=b"<title>404</title>"))
    verdict = classify(fetch(PROBE_ONLY_SOFT404[0]), probe=other)
    assert verdict.state != S.SOFT_404
