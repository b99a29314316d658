"""Canned-query latency through Datasette (``archive.serve.make_datasette(path).client``).

Every query of :data:`archive.queries.CANNED_QUERIES` is asked as ``.json`` with typical
parameters (blank filters, one site, a real URL, a short and a long search term), after
one warm-up request each; latency is wall time per request, in process (no HTTP socket).
"""

from __future__ import annotations

import asyncio
import sqlite3
import statistics
import time
from pathlib import Path
from urllib.parse import urlencode


def percentile(values: list[float], p: float) -> float:
    """The ``p``-th percentile (nearest rank) of ``values``."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    rank = max(0, min(len(ordered) - 1, int(round(p / 100 * len(ordered) + 0.5)) - 1))
    return ordered[rank]


def _params_for(name: str, sql_params: set[str], site: str, url: str, year: str) -> list[dict[str, str]]:
    base = {p: "" for p in sql_params}
    variants = [dict(base)]
    if "site" in sql_params:
        variants.append({**base, "site": site})
    if "url" in sql_params:
        variants = [{**base, "url": url}]
    if "q" in sql_params:
        variants = [{**base, "q": "公开"}, {**base, "q": "信息公开", "site": site}]
    if "year" in sql_params:
        variants.append({**base, "site": site, "year": year})
    return variants


def bench_queries(db_path: str | Path, *, samples: int = 40) -> dict[str, dict]:
    """{query name: {"samples": [...ms], "p50", "p95", "errors"}} for every canned query,
    at least ``samples`` requests each, spread over its parameter sets (a p95 of 20 samples
    would be their maximum)."""
    import re

    from archive.queries import CANNED_QUERIES
    from archive.serve import freeze_loaded_objects, make_datasette

    with sqlite3.connect(f"file:{db_path}?mode=ro", uri=True) as conn:
        site = conn.execute("SELECT id FROM sites ORDER BY id LIMIT 1 OFFSET 1").fetchone()[0]
        url = conn.execute("SELECT url FROM links WHERE health = 'dead' AND site_id = ? LIMIT 1",
                           [site]).fetchone()
        url = url[0] if url else conn.execute("SELECT url FROM links LIMIT 1").fetchone()[0]
        year = (conn.execute("SELECT academic_year FROM reports WHERE academic_year IS NOT NULL LIMIT 1")
                .fetchone() or ["2021-2022"])[0]

    async def run() -> dict[str, dict]:
        ds = make_datasette(db_path)
        await ds.invoke_startup()
        freeze_loaded_objects()  # as ``xxgk serve`` does
        results: dict[str, dict] = {}
        for name, query in CANNED_QUERIES.items():
            sql = query["sql"] if isinstance(query, dict) else query
            params = {p for p in re.findall(r"(?<!:):(\w+)", sql) if not p.isdigit() and p not in ("00", "00Z")}
            params &= set(query.get("params", params)) if isinstance(query, dict) and query.get("params") else params
            timings: list[float] = []
            errors: list[str] = []
            variants = _params_for(name, params, site, url, year)
            repeats = -(-samples // len(variants))
            for variant in variants:
                path = f"/xxgk/{name}.json?" + urlencode(variant)
                await ds.client.get(path)  # warm-up
                for _ in range(repeats):
                    started = time.perf_counter()
                    response = await ds.client.get(path)
                    timings.append((time.perf_counter() - started) * 1000)
                    if response.status_code != 200:
                        errors.append(f"{response.status_code} {path}: {response.text[:120]}")
            results[name] = {"samples": timings, "p50": statistics.median(timings),
                             "p95": percentile(timings, 95), "errors": errors}
        return results

    return asyncio.run(run())


if __name__ == "__main__":
    import sys

    for name, r in bench_queries(sys.argv[1], samples=int(sys.argv[2]) if len(sys.argv) > 2 else 40).items():
        print(f"{name:22s} p50 {r['p50']:8.1f} ms  p95 {r['p95']:8.1f} ms  {r['errors'][:1]}")
