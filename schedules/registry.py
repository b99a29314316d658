"""The site registry: a TOML file listing the portals to crawl (a public contract).

Format (one ``[[site]]`` table per university)::

    [[site]]
    id = "wust"                                  # stable short id, [a-z0-9_-]+
    name = "武汉科技大学"
    portal = "https://xxgk.wust.edu.cn/main.htm" # a string or a list of start URLs
    allowed_domains = ["xxgk.wust.edu.cn"]       # optional; default: the portal hosts
    schedule = "0 3 * * 1"                       # optional cron expression (5 fields)
    render = "auto"                              # optional: auto | never | always
    max_pages = 20000                            # optional crawl budget, 1..10000000
    kind = "本科"                                # optional: 本科 | 专科
    allow_private = false                        # optional: allow private/loopback origins

Nothing but ``[[site]]`` tables may stand at the top level (a ``[[sites]]`` typo is an
error, not a site that silently vanishes), and a schedule must fire within 5 years
(``0 0 31 2 *`` never does). A malformed registry is rejected as a whole, before any crawl
starts, with a :class:`RegistryError` naming the file, the site and the field.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit

DEFAULT_REGISTRY = Path(__file__).with_name("sites.toml")
SITE_ID_RE = re.compile(r"[a-z0-9_-]+")  # use fullmatch: "$" also matched before a final "\n"
RENDER_MODES = ("auto", "never", "always")
KINDS = ("本科", "专科")
# A bound far above any portal, and far inside SQLite's 64-bit INTEGER (where it is stored).
MAX_PAGES_LIMIT = 10_000_000
KNOWN_FIELDS = {
    "id", "name", "portal", "allowed_domains", "schedule", "render", "max_pages", "kind",
    "allow_private", "applicable_items", "report_column",
}
#: A schedule must fire within this long (``0 0 31 2 *`` never does).
SCHEDULE_HORIZON = timedelta(days=5 * 366)


class RegistryError(ValueError):
    """The registry cannot be used; the message names file, site and field."""


@dataclass(frozen=True)
class Site:
    id: str
    name: str
    portal: tuple[str, ...]
    allowed_domains: tuple[str, ...]
    schedule: str | None = None
    render: str = "auto"
    max_pages: int = 20000
    kind: str | None = None
    allow_private: bool = False
    applicable_items: tuple[int, ...] = field(default=tuple(range(1, 51)))

    def to_row(self) -> dict:
        """The site as a ``sites`` table row."""
        import json

        return {
            "id": self.id, "name": self.name, "portal": json.dumps(list(self.portal)),
            "allowed_domains": json.dumps(list(self.allowed_domains)),
            "schedule": self.schedule, "render": self.render, "max_pages": self.max_pages,
            "kind": self.kind,
            # the checklist items that apply (专科 sites may exclude some): the queries' "missing"
            "applicable_items": json.dumps(sorted(set(self.applicable_items))),
        }


def _check_url(url: object, where: str) -> str:
    if not isinstance(url, str) or not url.strip():
        raise RegistryError(f"{where}: portal must be a non-empty URL string")
    try:  # urlsplit rejects a broken [IPv6] host; .port a port that is not 0..65535
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError as exc:
        raise RegistryError(f"{where}: portal {url!r} is not a valid URL ({exc})") from exc
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise RegistryError(f"{where}: portal {url!r} is not an http(s) URL with a host")
    if port is not None and not 1 <= port <= 65535:
        raise RegistryError(f"{where}: portal {url!r} has port {port}, not 1..65535")
    return url.strip()


def _check_cron(expr: object, where: str) -> str:
    if not isinstance(expr, str):
        raise RegistryError(f"{where}: schedule must be a cron string like '0 3 * * 1'")

    from schedules.scheduler import cron_trigger  # standard cron: 0 and 7 are Sunday

    try:
        trigger = cron_trigger(expr, UTC)
    except ValueError as exc:
        raise RegistryError(f"{where}: schedule {expr!r} is not a valid cron expression: {exc}") from exc
    now = datetime.now(UTC)
    fire = trigger.get_next_fire_time(None, now)
    if fire is None or fire - now > SCHEDULE_HORIZON:
        raise RegistryError(f"{where}: schedule {expr!r} never fires (no date matches it "
                            "within 5 years)")
    return expr


def parse_site(raw: dict, where: str) -> Site:
    """Validate one ``[[site]]`` table; ``where`` prefixes every error message."""
    unknown = set(raw) - KNOWN_FIELDS
    if unknown:
        raise RegistryError(f"{where}: unknown field(s) {', '.join(sorted(unknown))}")
    site_id = raw.get("id")
    if not isinstance(site_id, str) or not SITE_ID_RE.fullmatch(site_id):
        raise RegistryError(f"{where}: field 'id' is missing or not [a-z0-9_-]+ (got {site_id!r})")
    where = f"{where} (id={site_id!r})"
    name = raw.get("name", site_id)
    if not isinstance(name, str) or not name.strip():
        raise RegistryError(f"{where}: field 'name' must be a non-empty string")
    if "portal" not in raw:
        raise RegistryError(f"{where}: field 'portal' is missing")
    portal_raw = raw["portal"]
    portals = [portal_raw] if isinstance(portal_raw, str) else portal_raw
    if not isinstance(portals, list) or not portals:
        raise RegistryError(f"{where}: field 'portal' must be a URL or a non-empty list of URLs")
    portal = tuple(_check_url(u, f"{where}: field 'portal'") for u in portals)
    domains_raw = raw.get("allowed_domains")
    if domains_raw is None:
        domains = tuple(dict.fromkeys(urlsplit(u).hostname or "" for u in portal))
    elif isinstance(domains_raw, list) and all(isinstance(d, str) and d for d in domains_raw):
        domains = tuple(d.lower().strip(".") for d in domains_raw)
    else:
        raise RegistryError(f"{where}: field 'allowed_domains' must be a list of host names")
    schedule = raw.get("schedule")
    if schedule is not None:
        schedule = _check_cron(schedule, f"{where}: field 'schedule'")
    render = raw.get("render", "auto")
    if render not in RENDER_MODES:
        raise RegistryError(f"{where}: field 'render' must be one of {', '.join(RENDER_MODES)} (got {render!r})")
    max_pages = raw.get("max_pages", 20000)
    if not isinstance(max_pages, int) or isinstance(max_pages, bool) or not 1 <= max_pages <= MAX_PAGES_LIMIT:
        raise RegistryError(f"{where}: field 'max_pages' must be an integer 1..{MAX_PAGES_LIMIT} (got {max_pages!r})")
    kind = raw.get("kind")
    if kind is not None and kind not in KINDS:
        raise RegistryError(f"{where}: field 'kind' must be one of {', '.join(KINDS)} (got {kind!r})")
    allow_private = raw.get("allow_private", False)
    if not isinstance(allow_private, bool):
        raise RegistryError(f"{where}: field 'allow_private' must be true or false")
    items = raw.get("applicable_items", list(range(1, 51)))
    if not isinstance(items, list) or not all(
            isinstance(i, int) and not isinstance(i, bool) and 1 <= i <= 50 for i in items):
        raise RegistryError(f"{where}: field 'applicable_items' must be a list of item numbers 1..50")
    return Site(
        id=site_id, name=name.strip(), portal=portal, allowed_domains=domains,
        schedule=schedule, render=render, max_pages=max_pages, kind=kind,
        allow_private=allow_private, applicable_items=tuple(items),
    )


def parse_registry(text: str, source: str = "<registry>") -> list[Site]:
    """Parse registry TOML text; raise :class:`RegistryError` on any problem."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise RegistryError(f"{source}: not valid TOML: {exc}") from exc
    except RecursionError as exc:
        raise RegistryError(f"{source}: not valid TOML: nested too deeply") from exc
    raw_sites = data.get("site")
    unknown = sorted(set(data) - {"site"})
    if not isinstance(raw_sites, list) or not raw_sites:
        extra = f" (unknown top-level key(s) {', '.join(unknown)})" if unknown else ""
        raise RegistryError(f"{source}: no [[site]] tables found{extra}")
    if unknown:  # a [[sites]] typo silently dropped its site
        raise RegistryError(f"{source}: unknown top-level key(s) {', '.join(unknown)}; "
                            "the registry holds only [[site]] tables")
    sites: list[Site] = []
    seen: set[str] = set()
    for index, raw in enumerate(raw_sites, start=1):
        if not isinstance(raw, dict):
            raise RegistryError(f"{source}: site #{index} is not a table")
        site = parse_site(raw, f"{source}: site #{index}")
        if site.id in seen:
            raise RegistryError(f"{source}: site #{index} (id={site.id!r}): field 'id' duplicates an earlier site")
        seen.add(site.id)
        sites.append(site)
    return sites


def read_registry_text(path: Path) -> str:
    """The registry file's text; a :class:`RegistryError` when it is unreadable or not UTF-8."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise RegistryError(f"{path}: cannot read registry: {exc.strerror or exc}") from exc
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise RegistryError(f"{path}: registry is not UTF-8 text ({exc})") from exc
    return text


def load_registry(path: str | Path | None = None) -> list[Site]:
    """Read and validate the registry file (default ``schedules/sites.toml``)."""
    path = Path(path) if path else DEFAULT_REGISTRY
    return parse_registry(read_registry_text(path), str(path))


def select_sites(sites: list[Site], ids: list[str] | None) -> list[Site]:
    """The sites named by ``ids`` (all when empty); unknown ids are an error."""
    if not ids:
        return sites
    by_id = {s.id: s for s in sites}
    missing = [i for i in ids if i not in by_id]
    if missing:
        raise RegistryError(f"unknown site id(s): {', '.join(missing)}; known: {', '.join(by_id)}")
    return [by_id[i] for i in ids]
