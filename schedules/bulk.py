"""Bulk registry tools: import institutions from CSV, check that every portal answers.

``xxgk registry import FILE.csv [--registry FILE] [--skip-bad] [--dry-run]``
    Columns (header row, any order, case-insensitive): ``id``, ``name``, ``portal``, and
    optionally ``allowed_domains``, ``schedule``, ``render``, ``kind``, ``max_pages``. Several
    portal URLs or domains go in one cell separated by spaces or semicolons (``;`` or
    ``；``). Empty cells leave the field out (or, for a site already in the registry, as it
    was). Unknown columns are reported and ignored.

    Every row is validated as the registry validates a ``[[site]]`` table, plus: URLs must be
    http(s) with a plausible host name; ids may not repeat; one portal URL may not belong to
    two ids (in the file or in the registry). Problems are reported by row number (the header
    is row 1). Any problem rejects the whole import unless ``--skip-bad``, which imports the
    good rows only.

    Merging: new ids are appended; known ids are updated in place (fields the CSV gives
    replace the registry's, others stay). The registry file keeps its comments and layout
    except in the tables it rewrites, is checked by re-parsing before it replaces the old
    file (atomically), and the old file is kept as ``FILE.bak``.

``xxgk registry check [--registry FILE] [--db PATH]``
    Requests every portal URL concurrently (HEAD, then GET when HEAD does not answer 2xx/3xx)
    through the configured proxy (``http_proxy``/``https_proxy``/``no_proxy``) with a short
    timeout, classifies the answer with the crawler's own rules (so a portal answering 200
    "页面不存在" is a ``soft_404``, a proxy's DNS error a ``dns_error``), and appends the
    results to the archive's ``registry_checks`` table. The crawler's SSRF guard applies
    (:mod:`crawler.safety`): a portal or redirect target on a loopback, private,
    link-local or metadata address is not requested, unless the site has ``allow_private``;
    it is recorded ``excluded`` (rule ``ssrf``).
"""

from __future__ import annotations

import contextlib
import csv
import http.client
import io
import os
import re
import socket
import ssl
import time
import tomllib
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from schedules.registry import (
    RegistryError,
    Site,
    load_registry,
    parse_registry,
    parse_site,
    read_registry_text,
)

COLUMNS = ("id", "name", "portal", "allowed_domains", "schedule", "render", "kind", "max_pages")
REQUIRED_COLUMNS = ("id", "name", "portal")
KEY_ORDER = ("id", "name", "portal", "allowed_domains", "schedule", "render", "max_pages", "kind")
_SPLIT_RE = re.compile(r"[\s;；]+")
_HOST_LABEL_RE = re.compile(r"(?!-)[a-z0-9-]{1,63}(?<!-)")  # fullmatch ("$" allows a final "\n")
_SITE_HEADER_RE = re.compile(r"^\s*\[\[\s*site\s*\]\]\s*(#.*)?$")
_IPV4_RE = re.compile(r"\d{1,3}(\.\d{1,3}){3}")  # fullmatch


# -- import ------------------------------------------------------------------------------------
class CSVRowError(RegistryError):
    """The CSV file cannot be read past row ``row``: the whole file is rejected."""

    def __init__(self, path: Path, row: int, reason: str) -> None:
        super().__init__(f"{path}: row {row}: {reason}")
        self.row, self.reason = row, reason


@dataclass
class ImportReport:
    source: str
    registry: str
    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    errors: list[tuple[int, str]] = field(default_factory=list)  # (row, message)
    warnings: list[str] = field(default_factory=list)
    fatal: bool = False
    whole_file: bool = False  # the file itself is unusable: --skip-bad cannot help
    written: bool = False
    skipped_rows: list[int] = field(default_factory=list)

    def lines(self) -> list[str]:
        out = [f"warning: {w}" for w in self.warnings]
        out += [f"{self.source}: row {row}: {message}" for row, message in self.errors]
        if self.fatal:
            out.append(f"import rejected: {len(self.errors)} problem(s); {self.registry} unchanged"
                       + ("" if not self.errors or self.whole_file
                          else " (use --skip-bad to import the good rows)"))
            return out
        if self.skipped_rows:
            out.append(f"skipped {len(self.skipped_rows)} bad row(s): "
                       + ", ".join(map(str, self.skipped_rows)))
        verb = "merged into" if self.written else "would merge into"
        out.append(f"{len(self.added)} added, {len(self.updated)} updated, {len(self.unchanged)} unchanged: "
                   f"{verb} {self.registry}")
        return out


def url_problem(url: str) -> str | None:
    """Why ``url`` is not a usable portal URL (None when it is)."""
    text = url.strip()
    if not text:
        return "empty URL"
    if not re.match(r"^[A-Za-z][A-Za-z0-9+.-]*://", text):
        return f"{text!r} has no scheme; did you mean 'http://{text}'?"
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError as exc:
        return f"{text!r} is not a valid URL ({exc})"
    if parts.scheme.lower() not in ("http", "https"):
        return f"{text!r} is not an http(s) URL"
    host = (parts.hostname or "").rstrip(".")
    if not host:
        return f"{text!r} has no host"
    if port is not None and not 0 < port < 65536:
        return f"{text!r} has a bad port"
    if any(ch.isspace() for ch in text):
        return f"{text!r} contains spaces"
    if _IPV4_RE.fullmatch(host) or host == "localhost" or ":" in host:
        return None
    try:
        ascii_host = host.encode("idna").decode("ascii")
    except UnicodeError:
        return f"{text!r}: host {host!r} is not a valid domain name"
    labels = ascii_host.split(".")
    if len(labels) < 2 or not all(_HOST_LABEL_RE.fullmatch(label) for label in labels):
        return f"{text!r}: host {host!r} is not a valid domain name"
    if labels[-1].isdigit():
        return f"{text!r}: host {host!r} is not a valid domain name"
    return None


def _portal_key(url: str) -> str:
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:  # url_problem reports the URL; its row still needs a key for duplicates
        return url.strip().lower()
    path = parts.path.rstrip("/") or ""
    return f"{(parts.hostname or '').lower()}{':' + str(port) if port else ''}{path}?{parts.query}"


def _split(value: str) -> list[str]:
    return [v for v in _SPLIT_RE.split(value.strip()) if v]


def read_csv(path: Path) -> tuple[list[str], list[tuple[int, dict[str, str]]]]:
    """Header (normalized) and (row number, cells) for every non-empty row."""
    data = path.read_bytes()
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            text = data.decode(encoding)
            break
        except UnicodeDecodeError:
            continue
    else:  # pragma: no cover - gb18030 decodes any byte string
        raise RegistryError(f"{path}: not UTF-8 or GB18030 text")
    sample = text[:4096]
    try:
        dialect: Any = csv.Sniffer().sniff(sample, delimiters=",\t")
    except csv.Error:
        dialect = csv.excel
    reader = csv.reader(io.StringIO(text), dialect)
    rows: list[list[str]] = []
    try:
        rows.extend(reader)
    except csv.Error as exc:  # a cell over the size limit: usually an unclosed quote ate the file
        raise CSVRowError(path, len(rows) + 1, f"not readable as CSV: {exc}") from exc
    if not rows:
        raise RegistryError(f"{path}: empty file")
    header = [h.strip().lower().replace(" ", "_") for h in rows[0]]
    out = []
    for number, cells in enumerate(rows[1:], start=2):
        if not any(c.strip() for c in cells):
            continue
        out.append((number, {h: (cells[i].strip() if i < len(cells) else "") for i, h in enumerate(header) if h}))
    return header, out


def _row_to_raw(cells: dict[str, str]) -> tuple[dict[str, Any], list[str]]:
    """The registry fields a row gives (empty cells left out), and its problems."""
    raw: dict[str, Any] = {}
    problems: list[str] = []
    for name in ("id", "name", "schedule", "render", "kind"):
        if cells.get(name):
            raw[name] = cells[name]
    if cells.get("portal"):
        urls = _split(cells["portal"])
        for url in urls:
            problem = url_problem(url)
            if problem:
                problems.append(f"bad URL: {problem}")
        raw["portal"] = urls[0] if len(urls) == 1 else urls
    if cells.get("allowed_domains"):
        domains = [d.lower().strip(".") for d in _split(cells["allowed_domains"])]
        for domain in domains:
            if url_problem(f"http://{domain}/") or "/" in domain:
                problems.append(f"bad domain {domain!r} in allowed_domains")
        raw["allowed_domains"] = domains
    if cells.get("max_pages"):
        try:
            raw["max_pages"] = int(cells["max_pages"])
        except ValueError:
            problems.append(f"max_pages {cells['max_pages']!r} is not a whole number")
    return raw, problems


def import_csv(csv_path: str | Path, registry_path: str | Path, *, skip_bad: bool = False,
               dry_run: bool = False) -> ImportReport:
    """Validate ``csv_path`` and merge it into the registry at ``registry_path``."""
    csv_path, registry_path = Path(csv_path), Path(registry_path)
    report = ImportReport(str(csv_path), str(registry_path))
    try:
        header, rows = read_csv(csv_path)
    except OSError as exc:
        report.errors.append((0, f"cannot read: {exc.strerror or exc}"))
        report.fatal = report.whole_file = True
        return report
    except CSVRowError as exc:
        report.errors.append((exc.row, exc.reason))
        report.fatal = report.whole_file = True
        return report
    missing = [c for c in REQUIRED_COLUMNS if c not in header]
    if missing:
        report.errors.append((1, f"missing column(s) {', '.join(missing)} (header: {', '.join(header)})"))
        report.fatal = report.whole_file = True
        return report
    unknown = [h for h in header if h and h not in COLUMNS]
    if unknown:
        report.warnings.append(f"{csv_path}: ignoring column(s) {', '.join(unknown)}")

    # A directory, an unreadable or a non-UTF-8 registry is a RegistryError, not a traceback.
    existing_text = read_registry_text(registry_path) if registry_path.exists() else ""
    existing_raw: dict[str, dict[str, Any]] = {}
    if existing_text.strip():
        load_registry(registry_path)  # a broken registry is not merged into
        for raw in tomllib.loads(existing_text).get("site", []):
            existing_raw[raw["id"]] = raw
    portal_owner: dict[str, str] = {}
    for site_id, raw in existing_raw.items():
        portals = [raw["portal"]] if isinstance(raw["portal"], str) else raw["portal"]
        for url in portals:
            portal_owner[_portal_key(url)] = site_id

    seen_ids: dict[str, int] = {}
    seen_portals: dict[str, tuple[int, str]] = {}
    merged: dict[str, dict[str, Any]] = {}
    for number, cells in rows:
        raw, problems = _row_to_raw(cells)
        site_id = raw.get("id", "")
        if site_id in seen_ids:
            problems.append(f"duplicate id {site_id!r} (first on row {seen_ids[site_id]})")
        portals = raw.get("portal", [])
        for url in [portals] if isinstance(portals, str) else portals:
            key = _portal_key(url)
            if key in seen_portals and seen_portals[key][1] != site_id:
                row, other = seen_portals[key]
                problems.append(f"duplicate portal {url} (row {row} gives it to {other!r})")
            elif key in portal_owner and portal_owner[key] != site_id:
                problems.append(f"duplicate portal {url}: the registry has it as {portal_owner[key]!r}")
        candidate = {**existing_raw.get(site_id, {}), **raw}
        if not problems:
            try:
                parse_site(candidate, f"site {site_id or '?'}")
            except RegistryError as exc:
                problems.append(str(exc).replace(f"site {site_id or '?'}: ", "", 1)
                                .replace(f"site {site_id or '?'} (id={site_id!r}): ", "", 1))
        if problems:
            report.errors.extend((number, p) for p in problems)
            report.skipped_rows.append(number)
            continue
        seen_ids[site_id] = number
        for url in [portals] if isinstance(portals, str) else portals:
            seen_portals.setdefault(_portal_key(url), (number, site_id))
        merged[site_id] = candidate
    if report.errors and not skip_bad:
        report.fatal = True
        report.skipped_rows = []
        return report
    for site_id, raw in merged.items():
        old = existing_raw.get(site_id)
        if old is None:
            report.added.append(site_id)
        elif old == raw:
            report.unchanged.append(site_id)
        else:
            report.updated.append(site_id)
    if not (report.added or report.updated):
        return report
    text = merge_registry_text(existing_text, {i: merged[i] for i in report.added + report.updated})
    sites = parse_registry(text, str(registry_path))  # never write what would not load
    expected = set(existing_raw) | set(merged)
    if {s.id for s in sites} != expected:  # pragma: no cover - a bug in merging
        raise RegistryError(f"{registry_path}: merged registry lost sites; nothing written")
    if dry_run:
        return report
    write_registry(registry_path, text)
    report.written = True
    return report


def write_registry(path: Path, text: str) -> None:
    """Replace ``path`` with ``text`` atomically, keeping the old file as ``FILE.bak``.

    When any step fails (a read-only directory, a full disk) the registry is left as it was
    and a :class:`RegistryError` says why.
    """
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        if path.exists():
            path.with_name(path.name + ".bak").write_bytes(path.read_bytes())
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    except OSError as exc:
        with contextlib.suppress(OSError):  # no temporary file, or none we may remove
            tmp.unlink()
        raise RegistryError(f"{path}: cannot write registry: {exc.strerror or exc}; "
                            "registry unchanged") from exc


# -- TOML writing -------------------------------------------------------------------------------
def _toml_string(text: str) -> str:
    out = []
    for ch in text:
        code = ord(ch)
        if ch == "\\":
            out.append("\\\\")
        elif ch == '"':
            out.append('\\"')
        elif ch in "\b\t\n\f\r":
            out.append({"\b": "\\b", "\t": "\\t", "\n": "\\n", "\f": "\\f", "\r": "\\r"}[ch])
        elif code < 0x20 or code == 0x7F:
            out.append(f"\\u{code:04X}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def _toml_key(key: str) -> str:
    return key if re.fullmatch(r"[A-Za-z0-9_-]+", key) else _toml_string(key)


def toml_value(value: Any) -> str:
    """One TOML value (strings, integers, floats, booleans, lists, inline tables)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, str):
        return _toml_string(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{_toml_key(k)} = {toml_value(v)}" for k, v in value.items()) + "}"
    raise TypeError(f"cannot write {type(value).__name__} as TOML")


def site_table(raw: dict[str, Any]) -> str:
    """A ``[[site]]`` table, fields in the registry's usual order."""
    keys = [k for k in KEY_ORDER if k in raw] + sorted(k for k in raw if k not in KEY_ORDER)
    return "[[site]]\n" + "".join(f"{_toml_key(k)} = {toml_value(raw[k])}\n" for k in keys)


def _blocks(lines: list[str]) -> tuple[list[str], list[list[str]]] | None:
    """Split a registry into its preamble and one block per ``[[site]]`` (with the comments
    just above it); None when the file has any other table (then it is rewritten whole)."""
    headers = [i for i, line in enumerate(lines) if _SITE_HEADER_RE.match(line)]
    if any(line.lstrip().startswith("[") and i not in headers for i, line in enumerate(lines)
           if not line.lstrip().startswith("#") and "=" not in line.split("#")[0]):
        return None
    if not headers:
        return lines, []
    starts = []
    previous = -1
    for h in headers:
        start = h
        while start - 1 > previous and (not lines[start - 1].strip() or lines[start - 1].lstrip().startswith("#")):
            start -= 1
        # blank lines stay with the block above; comments move down with their table
        while start < h and not lines[start].strip():
            start += 1
        starts.append(start)
        previous = h
    blocks = [lines[s:e] for s, e in zip(starts, starts[1:] + [len(lines)], strict=True)]
    return lines[:starts[0]], blocks


def merge_registry_text(text: str, sites: dict[str, dict[str, Any]]) -> str:
    """``text`` with the tables of ``sites`` replaced (known ids) or appended (new ids).

    The file's comments and layout are kept outside the replaced tables when its line-by-line
    split into tables is sound (checked: the result must parse to what the file parses to, with
    ``sites`` merged); otherwise, e.g. a multi-line string holding ``#`` or ``[[site]]`` lines,
    the registry is rewritten whole from its parsed contents.
    """
    header = "# Site registry (see schedules/registry.py for the format).\n\n"
    if not text.strip():
        return header + "\n".join(site_table(raw) for raw in sites.values())
    data = tomllib.loads(text)
    pending = dict(sites)
    raws = [pending.pop(raw["id"], raw) for raw in data.get("site", [])] + list(pending.values())
    merged = _merge_blocks(text, sites)
    if merged is not None:
        try:
            if tomllib.loads(merged) == {**data, "site": raws}:
                return merged
        except tomllib.TOMLDecodeError:
            pass
    return header + "\n".join(site_table(raw) for raw in raws)


def _merge_blocks(text: str, sites: dict[str, dict[str, Any]]) -> str | None:
    """:func:`merge_registry_text` table by table, keeping the rest of ``text`` as it is; None
    when the file does not split into tables line by line (the caller then checks the result)."""
    lines = text.splitlines(keepends=True)
    if lines and not lines[-1].endswith("\n"):
        lines[-1] += "\n"
    split = _blocks(lines)
    pending = dict(sites)
    if split is None:
        return None
    preamble, blocks = split
    out = list(preamble)
    for block in blocks:
        block_text = "".join(block)
        try:  # a block cut out of a multi-line string does not parse, or not as one table
            tables = tomllib.loads(block_text).get("site")
            site_id = tables[0].get("id") if isinstance(tables, list) and len(tables) == 1 else None
        except (tomllib.TOMLDecodeError, AttributeError):
            return None
        if not isinstance(site_id, str):
            return None
        if site_id in pending:
            comments = []
            for line in block:
                if _SITE_HEADER_RE.match(line):
                    break
                comments.append(line)
            trailing = "\n" if block_text.endswith("\n\n") else ""
            out.append("".join(comments) + site_table(pending.pop(site_id)) + trailing)
        else:
            out.append(block_text)
    result = "".join(out)
    for raw in pending.values():
        if not result.endswith("\n\n"):
            result += "\n"
        result += site_table(raw)
    return result


# -- check -------------------------------------------------------------------------------------
@dataclass
class PortalCheck:
    site_id: str
    url: str
    checked_at: str
    method: str
    state: str
    rule: str
    status_code: int | None = None
    final_url: str | None = None
    elapsed_ms: int | None = None
    error: str | None = None
    via_proxy: bool = False

    @property
    def ok(self) -> bool:
        from archive.states import GOOD_STATES

        return self.state in GOOD_STATES


class SSRFRefused(urllib.error.URLError):
    """The SSRF guard refused a URL (the first one or a redirect target) before it was requested."""


def ssrf_refusal(site: Site, url: str) -> str | None:
    """The crawler's SSRF verdict for ``url`` on behalf of ``site``: ``"ssrf: blocked ..."`` or None."""
    from crawler.safety import BLOCK_PREFIX, site_covers, url_block_reason

    host = (urlsplit(url).hostname or "").rstrip(".").lower()
    if site.allow_private and site_covers(site, host):
        return None
    reason = url_block_reason(url)
    return f"{BLOCK_PREFIX}blocked {host}: {reason}" if reason else None


def _connect_judged(site: Site | None, address: tuple[str, int], timeout: Any = socket._GLOBAL_DEFAULT_TIMEOUT,
                    source_address: Any = None) -> socket.socket:
    """``socket.create_connection`` that judges the addresses it connects to: the name is
    resolved once, here, and every address is judged before one is connected to (urllib
    would resolve it again after :func:`ssrf_refusal`'s check, and a DNS answer that turned
    internal meanwhile, DNS rebinding, would be reached)."""
    from crawler.safety import BLOCK_PREFIX, addresses_of, host_block_reason, site_covers

    host, port = address
    name = host.strip("[]").rstrip(".").lower()
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    if not (site is not None and site.allow_private and site_covers(site, name)):
        reason = host_block_reason(name, port, addresses=addresses_of(infos))
        if reason:
            raise SSRFRefused(f"{BLOCK_PREFIX}blocked {name}: {reason}, when connecting")
    failure: OSError | None = None
    for family, kind, proto, _canonical, sockaddr in infos:
        sock = socket.socket(family, kind, proto)
        try:
            if timeout is not socket._GLOBAL_DEFAULT_TIMEOUT:
                sock.settimeout(timeout)
            if source_address:
                sock.bind(source_address)
            sock.connect(sockaddr)
            return sock
        except OSError as exc:
            failure = exc
            sock.close()
    raise failure or OSError(f"no address for {host}")


def _judged_connections(base: type, request: Any, site: Site | None) -> Any:
    """``base`` (an ``http.client`` connection class) connecting through :func:`_connect_judged`,
    unless the request goes through a proxy (the proxy connects; its own address is not judged)."""
    if request.has_proxy() or getattr(request, "_tunnel_host", None):
        return base

    def connection(host: str, **kwargs: Any) -> Any:
        conn = base(host, **kwargs)
        conn._create_connection = lambda address, *args: _connect_judged(site, address, *args)
        return conn

    return connection


class _JudgedHTTPHandler(urllib.request.HTTPHandler):
    def __init__(self, site: Site | None) -> None:
        super().__init__()
        self.site = site

    def http_open(self, req: Any) -> Any:
        return self.do_open(_judged_connections(http.client.HTTPConnection, req, self.site), req)


class _JudgedHTTPSHandler(urllib.request.HTTPSHandler):
    def __init__(self, site: Site | None) -> None:
        super().__init__()
        self.site = site

    def https_open(self, req: Any) -> Any:
        return self.do_open(_judged_connections(http.client.HTTPSConnection, req, self.site), req,
                            context=self._context)


class _Redirects(urllib.request.HTTPRedirectHandler):
    def __init__(self, site: Site | None = None) -> None:
        self.chain: list[str] = []
        self.site = site

    def redirect_request(self, req: Any, fp: Any, code: int, msg: str, headers: Any, newurl: str) -> Any:
        self.chain.append(req.full_url)
        if newurl in self.chain:
            raise urllib.error.HTTPError(newurl, code, f"redirect loop via {newurl}", headers, fp)
        refusal = ssrf_refusal(self.site, newurl) if self.site is not None else None
        if refusal:
            raise SSRFRefused(f"{refusal} (a redirect from {req.full_url})")
        return super().redirect_request(req, fp, code, msg, headers, newurl)


#: http.client's words for a refused CONNECT: "Tunnel connection failed: 407 Proxy Authentication Required".
_TUNNEL_FAILED_RE = re.compile(r"Tunnel connection failed: (\d{3}) ?(.*)", re.S)


def _tunnel_error(text: str) -> str:
    """A proxy's refusal of the CONNECT tunnel in Scrapy's ``TunnelError`` words, whose status
    the crawler's ``net-proxy-tunnel`` rule reads (407 -> blocked, 504 -> timeout): a check
    judges a refused tunnel as a crawl does. The proxy is named by host and port only, never
    with its credentials. (urllib tunnels https only, through the ``https`` proxy.)"""
    proxy = urllib.request.getproxies().get("https", "")
    parts = urlsplit(proxy if "://" in proxy else f"http://{proxy}")
    try:
        port = parts.port or http.client.HTTPS_PORT  # what urllib connects to when none is given
    except ValueError:
        port = http.client.HTTPS_PORT
    match = _TUNNEL_FAILED_RE.search(text)
    extra: Any = text  # Scrapy gives the proxy's raw answer when it is not a status line
    if match:
        extra = {"status": int(match.group(1)), "reason": match.group(2).strip().encode("latin-1", "replace")}
    return f"Could not open CONNECT tunnel with proxy {parts.hostname or '(unknown)'}:{port} [{extra!r}]"


def _error_type(exc: BaseException) -> tuple[str, str]:
    reason: Any = exc.reason if isinstance(exc, urllib.error.URLError) and not isinstance(
        exc, urllib.error.HTTPError) else exc
    if isinstance(exc, SSRFRefused):
        return "IgnoreRequest", str(exc.reason)
    if isinstance(reason, SSRFRefused):  # refused when connecting: urllib wraps it
        return "IgnoreRequest", str(reason.reason)
    if isinstance(reason, socket.gaierror):
        return "DNSLookupError", str(reason)
    if isinstance(reason, (TimeoutError, socket.timeout)):
        return "TimeoutError", str(reason) or "timed out"
    if isinstance(reason, ssl.SSLError):
        return "SSLError", str(reason)
    if isinstance(reason, OSError) and "Tunnel connection failed" in str(reason):
        return "TunnelError", _tunnel_error(str(reason))
    if isinstance(reason, BaseException):
        return type(reason).__name__, str(reason)
    return type(exc).__name__, str(reason)


def _fetch(url: str, method: str, timeout: float, user_agent: str, site: Site | None = None) -> Any:
    from crawler.fetch import Fetch

    redirects = _Redirects(site)
    opener = urllib.request.build_opener(urllib.request.ProxyHandler(), redirects, _JudgedHTTPHandler(site),
                                         _JudgedHTTPSHandler(site))
    request = urllib.request.Request(url, method=method, headers={"User-Agent": user_agent,
                                                                  "Accept": "text/html,*/*;q=0.8"})
    host = urlsplit(url).hostname or ""
    scheme = urlsplit(url).scheme
    via_proxy = scheme in urllib.request.getproxies() and not urllib.request.proxy_bypass(host)
    started = time.monotonic()
    status, headers, body, final_url, error_type, error = None, {}, b"", None, None, None
    try:
        with opener.open(request, timeout=timeout) as response:
            status = response.status
            headers = {k.lower(): v.encode("latin-1", "replace") for k, v in response.headers.items()}
            body = response.read(512 * 1024) if method == "GET" else b""
            final_url = response.geturl()
    except urllib.error.HTTPError as exc:
        status = exc.code
        headers = {k.lower(): v.encode("latin-1", "replace") for k, v in (exc.headers or {}).items()}
        try:
            body = exc.read(512 * 1024) if method == "GET" else b""
        except Exception:  # the error page itself may be cut short
            body = b""
        final_url = exc.filename or url
        if "redirect loop" in str(exc.msg):
            error_type, error, status = "RedirectLoop", str(exc.msg), None
    except (urllib.error.URLError, OSError, ValueError) as exc:
        error_type, error = _error_type(exc)
    elapsed = int((time.monotonic() - started) * 1000)
    return Fetch(url=url, status=status, headers=headers, body=body, final_url=final_url,
                 redirect_chain=list(redirects.chain), error_type=error_type, error=error,
                 expect="page", is_home_page=True, home_urls=(url,), method=method,
                 elapsed_ms=elapsed, via_proxy=via_proxy)


def check_portal(site: Site, url: str, *, timeout: float = 10.0,
                 user_agent: str = "xxgk-archive/0.1 (registry check)") -> PortalCheck:
    """HEAD ``url`` (then GET unless HEAD answered 2xx/3xx or timed out) and classify it.

    Redirects are followed (up to urllib's limit of 10, loops detected).
    """
    from crawler.classify import classify
    from crawler.fetch import Fetch

    checked_at = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    refusal = ssrf_refusal(site, url)
    if refusal:
        verdict = classify(Fetch(url=url, error_type="IgnoreRequest", error=refusal, expect="page",
                                 is_home_page=True, home_urls=(url,), method="HEAD"))
        return PortalCheck(site_id=site.id, url=url, checked_at=checked_at, method="HEAD",
                           state=verdict.state, rule=verdict.rule, error=verdict.detail or refusal)
    fetch = _fetch(url, "HEAD", timeout, user_agent, site)
    timed_out = fetch.error_type == "TimeoutError"
    refused = fetch.error_type == "IgnoreRequest"
    if not (timed_out or refused) and not (fetch.status is not None and 200 <= fetch.status < 400):
        # Many servers answer HEAD wrongly (405, 403, resets): only a GET is evidence.
        fetch = _fetch(url, "GET", timeout, user_agent, site)
    verdict = classify(fetch)
    return PortalCheck(site_id=site.id, url=url, checked_at=checked_at, method=fetch.method,
                       state=verdict.state, rule=verdict.rule, status_code=fetch.status,
                       final_url=fetch.final_url, elapsed_ms=fetch.elapsed_ms,
                       error=(fetch.error or verdict.detail or None) if verdict.state not in ("ok", "redirected")
                       else None, via_proxy=fetch.via_proxy)


def check_portals(sites: list[Site], *, timeout: float = 10.0, concurrency: int = 32) -> list[PortalCheck]:
    """Check every portal URL of ``sites`` concurrently; results in registry order."""
    jobs = [(site, url) for site in sites for url in site.portal]
    with ThreadPoolExecutor(max_workers=max(1, min(concurrency, len(jobs) or 1))) as pool:
        return list(pool.map(lambda job: check_portal(job[0], job[1], timeout=timeout), jobs))


def record_checks(db: Any, sites: list[Site], results: list[PortalCheck]) -> None:
    """Append the results to ``registry_checks`` (and mirror the sites into ``sites``)."""
    from archive.store import upsert_sites

    upsert_sites(db, [s.to_row() for s in sites])
    with db.atomic():
        for r in results:
            db.execute(
                "INSERT INTO registry_checks (site_id, url, checked_at, method, status_code, final_url,"
                " elapsed_ms, state, ok, rule, error, via_proxy) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
                [r.site_id, r.url, r.checked_at, r.method, r.status_code, r.final_url, r.elapsed_ms,
                 r.state, int(r.ok), r.rule, r.error, int(r.via_proxy)],
            )
