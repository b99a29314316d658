"""CLI values out of range are usage errors (exit 2, one line), before anything starts."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from schedules.registry import RegistryError
from xxgk.argtypes import split_setting

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("text, message", [
    ("CONCURRENT_REQUESTS_PER_DOMAIN=0", "below 1"),        # a crawl that waited for ever
    ("XXGK_DOWNLOAD_TIMEOUT=abc", "not a number of seconds"),  # explained only in the crawl's log
    ("DOWNLOAD_DELAY=nan", "finite"), ("DOWNLOAD_DELAY=-1", "finite"), ("XXGK_SSRF_DNS_TIMEOUT=inf", "finite"),
    ("RETRY_TIMES=2.5", "whole number"), ("NO_EQUALS_SIGN", "NAME=VALUE"),
])
def test_bad_settings_are_usage_errors(text, message):
    with pytest.raises(RegistryError, match=message):
        split_setting(text)


@pytest.mark.parametrize("text", ["CONCURRENT_REQUESTS_PER_DOMAIN=2", "XXGK_DOWNLOAD_TIMEOUT=0.5",
                                  "XXGK_RENDER_TIMEOUT=0", "DOWNLOAD_DELAY=0", "RETRY_TIMES=0",
                                  "DOWNLOADER_MIDDLEWARES={\"a.B\": 5}", "LOG_LEVEL=DEBUG"])
def test_good_settings_pass_unchanged(text):
    name, value = split_setting(text)
    assert f"{name}={value}" == text


@pytest.mark.parametrize("args, message", [
    (["crawl", "-s", "CONCURRENT_REQUESTS_PER_DOMAIN=0"], "setting CONCURRENT_REQUESTS_PER_DOMAIN: 0 is below 1"),
    (["schedule", "run-once", "--site", "x", "-s", "XXGK_DOWNLOAD_TIMEOUT=abc"], "setting XXGK_DOWNLOAD_TIMEOUT"),
    (["serve", "--port", "99999"], "99999 is not a port"),
    (["registry", "check", "--timeout", "inf"], "inf is not a finite number of seconds"),
    (["archive-writer", "--redis", "redis://127.0.0.1:9/0", "--batch", "0"], "0 is below 1"),
])
def test_the_cli_refuses_them_before_starting(tmp_path, args, message):
    db = tmp_path / "archive.db"
    extra = [] if args[0] in ("registry", "archive-writer") or "--db" in args else ["--db", str(db)]
    result = subprocess.run([sys.executable, "-m", "xxgk", *args, *extra], cwd=ROOT, capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 2, (result.returncode, result.stderr)
    assert message in result.stderr and "Traceback" not in result.stderr
    assert not db.exists()  # nothing was started


@pytest.mark.parametrize("db, message", [("", "the archive path is empty"), (".", "is a directory")])
def test_an_archive_path_that_cannot_be_a_file(db, message):
    result = subprocess.run([sys.executable, "-m", "xxgk", "verify", "--db", db], cwd=ROOT,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 3 and message in result.stderr and "Traceback" not in result.stderr


def test_an_io_error_on_a_full_disk_says_the_disk_is_full(tmp_path, monkeypatch):
    """SQLite reports a disk that fills while it writes its journal as "disk I/O error"."""
    import shutil
    import sqlite3
    from collections import namedtuple

    from archive import db

    error = sqlite3.OperationalError("disk I/O error")
    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil, "disk_usage", lambda _path: usage(10**9, 10**9 - 4096, 4096))
    assert "is full" in str(db.explain(error, tmp_path / "a.db"))
    monkeypatch.setattr(shutil, "disk_usage", lambda _path: usage(10**9, 0, 10**9))
    assert "a disk or file system error" in str(db.explain(error, tmp_path / "a.db"))
