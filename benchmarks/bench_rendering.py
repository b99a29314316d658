"""Rendering cost: pages/s of the same crawl with render = never, auto and always.

    python -m benchmarks.bench_rendering [--sites webplus,vsb]

Crawls the bundled simulated web (no artificial delays) once per mode, side by side, and
prints pages archived, pages rendered, wall time, pages/s and the ratio to ``never``.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MODES = ("never", "auto", "always")
SETTINGS = ["-s", "DOWNLOAD_DELAY=0", "-s", "AUTOTHROTTLE_ENABLED=False",
            "-s", "CONCURRENT_REQUESTS_PER_DOMAIN=8", "-s", "XXGK_DOWNLOAD_TIMEOUT=5"]


def write_registry(path: Path, render: str, sites: list[str]) -> None:
    import simweb

    source = tomllib.loads(Path(simweb.__file__).with_name("demo_sites.toml").read_text("utf-8"))
    lines = []
    for site in source["site"]:
        if site["id"] in sites:
            portal = site["portal"] if isinstance(site["portal"], list) else [site["portal"]]
            lines += ["[[site]]", f'id = "{site["id"]}"', f'name = "{site["name"]}"',
                      "portal = [" + ", ".join(f'"{u}"' for u in portal) + "]",
                      "allowed_domains = [" + ", ".join(f'"{d}"' for d in site["allowed_domains"]) + "]",
                      f'render = "{render}"']
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def run_mode(mode: str, sites: list[str], proxy: str, work: Path) -> dict:
    from archive.db import open_db

    registry, db_path = work / f"{mode}.toml", work / f"{mode}.db"
    write_registry(registry, mode, sites)
    env = {**os.environ, "http_proxy": proxy, "https_proxy": proxy, "no_proxy": ""}
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "xxgk", "crawl", "--registry", str(registry), "--db",
                    str(db_path), *SETTINGS], cwd=ROOT, env=env, check=True, capture_output=True)
    wall = time.perf_counter() - started
    db = open_db(db_path)
    pages, rendered = db.execute("SELECT COUNT(*), SUM(rendered) FROM snapshots").fetchone()
    return {"mode": mode, "pages": pages, "rendered": rendered or 0, "wall": wall, "rate": pages / wall}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sites", default="webplus,vsb")
    args = parser.parse_args(argv)
    from simweb import SimWeb

    sites = args.sites.split(",")
    results = []
    with tempfile.TemporaryDirectory() as tmp, SimWeb(port=0, day=1, delay_scale=0) as web:
        for mode in MODES:
            results.append(run_mode(mode, sites, web.proxy_url, Path(tmp)))
    base = results[0]["rate"]
    print(f"{'render':8} {'pages':>6} {'rendered':>9} {'wall s':>8} {'pages/s':>8} {'vs never':>9}")
    for r in results:
        print(f"{r['mode']:8} {r['pages']:6} {r['rendered']:9} {r['wall']:8.1f} {r['rate']:8.1f}"
              f" {r['rate'] / base:8.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
