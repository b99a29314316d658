"""URL canonicalisation shared by the server (route lookup) and the truth tables.

Canonical form (what truth keys use):

* scheme and host lower-cased, default port dropped, empty path -> ``/``;
* fragment dropped;
* ``;jsessionid=...`` path parameters dropped (case-insensitive);
* query parameters ``sid``, ``jsessionid``, ``utm_*``, ``spm`` dropped; the remaining
  ``key=value`` pairs are sorted (raw, without re-encoding) and joined by ``&``.

All hrefs in the simulated sites are ASCII and already have sorted queries, so
``w3lib.url.canonicalize_url`` gives the same result apart from the dropped
session/tracking parameters.
"""

from __future__ import annotations

import re
from urllib.parse import urljoin, urlsplit, urlunsplit

_SESSION_PARAMS = {"sid", "jsessionid", "spm"}
_JSESSION_RE = re.compile(r";jsessionid=[^/?#;]*", re.IGNORECASE)


def _drop_param(key: str) -> bool:
    k = key.lower()
    return k in _SESSION_PARAMS or k.startswith("utm_")


def canonical_url(url: str) -> str:
    """Return the canonical form of an absolute URL (see module docstring)."""
    parts = urlsplit(url.strip())
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    port = parts.port
    netloc = host
    if port and not ((scheme == "http" and port == 80) or (scheme == "https" and port == 443)):
        netloc = f"{host}:{port}"
    path = _JSESSION_RE.sub("", parts.path) or "/"
    pairs = [p for p in parts.query.split("&") if p]
    pairs = [p for p in pairs if not _drop_param(p.split("=", 1)[0])]
    query = "&".join(sorted(pairs))
    return urlunsplit((scheme, netloc, path, query, ""))


def resolve(base: str, href: str) -> str | None:
    """Resolve ``href`` against ``base``; ``None`` for non-http(s) links."""
    href = href.strip()
    if not href or href.startswith("#"):
        return None
    low = href.lower()
    if low.startswith(("javascript:", "mailto:", "tel:", "data:")):
        return None
    absolute = urljoin(base, href)
    if urlsplit(absolute).scheme not in ("http", "https"):
        return None
    return canonical_url(absolute)


def host_of(url: str) -> str:
    """Lower-cased host name of ``url``."""
    return (urlsplit(url).hostname or "").lower()


def path_of(url: str) -> str:
    """Path plus query of ``url`` (what robots.txt rules match against)."""
    parts = urlsplit(url)
    return (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
