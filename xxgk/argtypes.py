"""CLI values checked before use: numbers out of range are usage errors, not tracebacks.

argparse types (:func:`port`, :func:`positive_seconds`, :func:`positive_int`) and the
``-s NAME=VALUE`` crawl settings (:func:`split_setting`), whose common numeric settings are
checked here rather than failing inside the crawl (a timeout of ``abc`` was only explained in
the crawl's log; ``CONCURRENT_REQUESTS_PER_DOMAIN=0`` made a crawl wait for ever).
"""

from __future__ import annotations

import argparse
import math
import re

from schedules.registry import RegistryError

#: -s settings that must be whole numbers of at least 1 / 0, or seconds (finite, >= 0; a
#: timeout of 0 means "no limit" to Scrapy and "the default" to some of ours).
_AT_LEAST_ONE = re.compile(r"^(CONCURRENT_REQUESTS(_PER_DOMAIN)?|CONCURRENT_ITEMS|XXGK_RENDER_HOST_CONCURRENCY)$")
_AT_LEAST_ZERO = re.compile(r"^(RETRY_TIMES|REDIRECT_MAX_TIMES|CONCURRENT_REQUESTS_PER_IP|XXGK_RETRY_AFTER_TIMES)$")
_SECONDS = re.compile(r"^(DOWNLOAD_DELAY|DOWNLOAD_TIMEOUT|XXGK_\w*TIMEOUT|XXGK_RETRY_AFTER_MAX|XXGK_RETRY_AFTER_DEFAULT)$")


def split_setting(text: str) -> tuple[str, str]:
    """``NAME=VALUE`` of ``-s`` as a pair; :class:`RegistryError` (a usage error) when it is
    malformed or a known numeric setting has a value it cannot take."""
    if "=" not in text:
        raise RegistryError(f"setting {text!r} is not NAME=VALUE")
    name, value = (part.strip() for part in text.split("=", 1))
    try:
        if _AT_LEAST_ONE.match(name):
            positive_int(value)
        elif _AT_LEAST_ZERO.match(name) and value != "0":
            positive_int(value)
        elif _SECONDS.match(name) and _number(value, "a number of seconds") != 0:
            positive_seconds(value)
    except (argparse.ArgumentTypeError, ValueError) as exc:
        raise RegistryError(f"setting {name}: {exc}") from None
    return name, value


def port(text: str) -> int:
    """A TCP port, 1..65535."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number") from None
    if not 1 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"{value} is not a port (1..65535)")
    return value


def base_url(text: str) -> str:
    """A URL path to serve under (Datasette's ``base_url``): starts and ends with ``/``."""
    path = text.strip()
    if not path.startswith("/") or any(c in path for c in "?#\"\'<> ") or "//" in path:
        raise argparse.ArgumentTypeError(f"{text!r} is not a path such as /archive/")
    return path if path.endswith("/") else path + "/"


def _number(text: str, what: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not {what}") from None


def positive_seconds(text: str) -> float:
    """A finite number of seconds above 0."""
    value = _number(text, "a number of seconds")
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"{text} is not a finite number of seconds above 0")
    return value


def positive_int(text: str) -> int:
    """An integer of at least 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} is below 1")
    return value
