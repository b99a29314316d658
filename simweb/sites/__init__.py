"""Site builders, one module per CMS family, and :func:`build_world`."""

from __future__ import annotations

import threading
from functools import lru_cache

from simweb.content import SIM_TODAY, dt
from simweb.model import World
from simweb.sites import helpers, jspcollege, trs, vsb, webplus

_lock = threading.Lock()


@lru_cache(maxsize=4)
def _build(day: int) -> World:
    world = World(day=day)
    helpers.build(world)
    webplus.build(world)
    vsb.build(world)
    jspcollege.build(world)
    trs.build(world)
    if day >= 2:
        # Anything whose bytes differ from the previous day gets a new Last-Modified.
        prev = _build(day - 1)
        stamp = dt(SIM_TODAY.get(day, SIM_TODAY[2]))
        for url, res in world.resources.items():
            old = prev.resources.get(url)
            if old is not None and res.status == 200 and old.body != res.body and res.modified is not None:
                if old.modified is None or res.modified <= old.modified:
                    res.modified = stamp
    return world


def build_world(day: int) -> World:
    """The (cached, shared, read-only) world of ``day`` (1 or 2; later days = day 2)."""
    day = 1 if day <= 1 else 2
    with _lock:
        return _build(day)
