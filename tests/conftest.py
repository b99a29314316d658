"""Shared fixtures: temporary archives and the simulated web on a free port."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
ARTIFACTS = ROOT / "tests" / "artifacts"


@pytest.fixture
def db(tmp_path):
    from archive.db import open_db

    database = open_db(tmp_path / "archive.db")
    yield database
    database.conn.close()


@pytest.fixture
def artifacts() -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS


def pytest_configure(config):
    os.environ.setdefault("XXGK_LOG_LEVEL", "INFO")
