"""``xxgk demo``: the bundled simulated web, crawled on two days, then served.

The simulated portals live in ``simweb`` and are reached through its local HTTP proxy,
exactly as users reach real portals through theirs. Day 2 changes, breaks and fixes some
pages; the demo compresses the time between the days, so link confirmation uses
``XXGK_CONFIRM_HOURS=0`` and two failing checks make a link ``dead``.
"""

from __future__ import annotations

from pathlib import Path

from archive.db import open_db
from archive.postcrawl import after_crawl
from archive.summary import crawl_summary
from schedules.registry import load_registry
from xxgk.runcrawl import run_crawl

DEMO_SETTINGS = {"XXGK_DOWNLOAD_TIMEOUT": "5", "XXGK_CONFIRM_HOURS": "0", "DOWNLOAD_DELAY": "0",
                 "AUTOTHROTTLE_ENABLED": "False", "CONCURRENT_REQUESTS_PER_DOMAIN": "8",
                 "RETRY_TIMES": "1"}


def crawl_simweb(db_path: str | Path, *, days: int = 2, delay_scale: float = 0.2,
                 settings: dict[str, str] | None = None, echo: bool = False) -> list[int]:
    """Crawl the simulated web on day 1 (and day 2); return the crawl ids."""
    import simweb
    from simweb import SimWeb

    DEMO_REGISTRY = Path(simweb.__file__).with_name("demo_sites.toml")
    sites = load_registry(DEMO_REGISTRY)
    crawl_ids: list[int] = []
    with SimWeb(port=0, day=1, delay_scale=delay_scale) as web:
        env = {"http_proxy": web.proxy_url, "https_proxy": web.proxy_url,
               "HTTP_PROXY": web.proxy_url, "HTTPS_PROXY": web.proxy_url, "no_proxy": "", "NO_PROXY": ""}
        for day in range(1, days + 1):
            web.set_day(day)
            result = run_crawl(sites, db_path=db_path, registry_path=DEMO_REGISTRY,
                               settings={**DEMO_SETTINGS, **(settings or {})}, env=env, echo=echo)
            ids = list(result.crawl_ids.values())
            after_crawl(open_db(db_path), ids)
            crawl_ids += ids
            print(f"--- day {day} (log: {result.log_path})")
            print(crawl_summary(open_db(db_path), ids))
    return crawl_ids


def run_demo(db_path: str | Path, *, serve_after: bool = True, port: int = 8001, days: int = 2) -> int:
    crawl_simweb(db_path, days=days)
    if not serve_after:
        return 0
    from archive.serve import serve

    print(f"Open http://127.0.0.1:{port}/xxgk — e.g. /xxgk/broken_now, /xxgk/links?state=soft_404")
    return serve(db_path, port=port)
