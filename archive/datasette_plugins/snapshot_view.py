"""Datasette plugin: view an archived snapshot safely at ``/-/snapshot/<id>``.

* ``/-/snapshot/<id>`` — a banner (URL, capture time, sha256, status, links to the URL's
  history, the snapshot row, neighbouring captures) above the archived page, shown in an
  ``<iframe sandbox>`` loaded from ``/raw``; for attachments, a download link.
* ``/-/snapshot/<id>/raw`` — HTML decoded with the snapshot's encoding, rewritten to stay
  inside the archive, served as UTF-8 with ``Content-Security-Policy: sandbox …;
  default-src 'none'`` (no scripts, no requests to the live site). Links to pages we hold
  point to their snapshot (newest at or before this capture, else the one from the same
  crawl) and open at the top level; other links, scripts, event handlers, refreshes,
  embeds and ``srcdoc`` documents are made inert (defence in depth: the CSP sandbox
  already forbids scripts; the rewriting keeps them out should it ever be relaxed). Attachments come back byte-identical with their original content
  type and ``Content-Disposition: attachment; filename*=UTF-8''…``; ``?download=1`` does
  the same for an HTML page's original bytes.
* ``/-/snapshot/<id>/screenshot`` — the full-page PNG kept as evidence of a page rendered in
  Chromium (``snapshots.screenshot_sha256``), decompressed and checked, as ``image/png``
  with the same sandboxing headers as ``/raw``; 404 when the capture has none.
* ``render_cell`` adds "view" links to ``snapshots.id``/``sha256`` cells and to
  ``snapshot_id``-like columns anywhere in the ``xxgk`` database, and a "PNG" link to
  ``snapshots.screenshot_sha256`` cells (the blob's own download is zlib bytes).
"""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote, urldefrag, urljoin, urlsplit

import markupsafe
from datasette import hookimpl
from datasette.utils.asgi import NotFound, Response
from lxml import etree
from lxml import html as lxml_html

from archive.blobs import BLOB_READ_COLUMNS, BlobError, blob_bytes

DATABASE = "xxgk"
CSP = ("sandbox allow-top-navigation-by-user-activation; default-src 'none'; "
       "img-src data: 'self'; style-src 'unsafe-inline' 'self'")
IFRAME_SANDBOX = "allow-top-navigation-by-user-activation"
TEMPLATE = Path(__file__).resolve().parent.parent / "templates" / "snapshot_view.html"
SNAPSHOT_ID_COLUMNS = frozenset({"snapshot_id", "prev_snapshot_id", "new_snapshot_id"})
LOOKUP_CHUNK = 400
#: Elements that load or run something and have no safe archived equivalent.
DROP_TAGS = ("script", "object", "embed", "applet", "base", "portal")
#: HTML5 void elements. libxml2's HTML4 parser does not know some of them (embed, source,
#: track, wbr, keygen) and nests the rest of the page inside them; see :func:`_unnest_voids`.
VOID_TAGS = ("area", "base", "br", "col", "embed", "hr", "img", "input", "keygen", "link", "meta",
             "param", "source", "track", "wbr")
#: Attributes that run script or submit somewhere whatever their value. ``srcdoc`` is a whole
#: document: kept, it would run in the viewer's origin if the sandbox were ever relaxed.
DROP_ATTRS = frozenset({"srcdoc", "srcset", "formaction", "ping", "action"})
#: ``href``, ``xlink:href``, ``{namespace}href``: a link target whatever the element.
_HREF_NAME = re.compile(r"(?:^|[:}])href$", re.I)
SNAPSHOT_FIELDS = ("id", "crawl_id", "site_id", "url", "final_url", "fetched_at", "status_code",
                   "content_type", "sha256", "size", "encoding", "title", "filename", "not_modified",
                   "main_text", "rendered", "render_reason", "screenshot_sha256")


# -- helpers ---------------------------------------------------------------------------------
def is_html(content_type: str | None, main_text: str | None = None) -> bool:
    ctype = (content_type or "").lower()
    return "html" in ctype or (not ctype and main_text is not None)


def decode_body(data: bytes, encoding: str | None, content_type: str | None) -> str:
    """The snapshot's encoding, then the header charset, then a ``<meta charset>``, then UTF-8."""
    candidates = [encoding]
    match = re.search(r"charset=[\"']?([\w.:-]+)", content_type or "", re.I)
    if match:
        candidates.append(match.group(1))
    meta = re.search(rb"<meta[^>]+charset=[\"']?([\w.:-]+)", data[:4096], re.I)
    if meta:
        candidates.append(meta.group(1).decode("ascii", "ignore"))
    for name in [*candidates, "utf-8"]:
        if not name:
            continue
        name = name.lower()
        if name in ("gb2312", "gbk", "x-gbk", "gb_2312-80", "cp936"):
            name = "gb18030"  # pages labelled GB2312 routinely use GBK characters
        try:
            return data.decode(name)
        except (LookupError, UnicodeDecodeError):
            continue
    return data.decode("utf-8", "replace")


def content_disposition(filename: str) -> str:
    """``attachment`` with an ASCII fallback name and the real name as RFC 5987 UTF-8."""
    filename = filename.replace("/", "_").replace("\\", "_")
    stem, dot, extension = filename.rpartition(".") if "." in filename else (filename, "", "")
    safe_stem = re.sub(r"[^A-Za-z0-9_-]+", "_", stem).strip("_") or "download"
    safe_extension = re.sub(r"[^A-Za-z0-9]+", "", extension)
    fallback = safe_stem + (f".{safe_extension}" if dot and safe_extension else "")
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(filename, safe='')}"


def attachment_name(snapshot: dict) -> str:
    if snapshot.get("filename"):
        return str(snapshot["filename"])
    path = urlsplit(snapshot.get("final_url") or snapshot["url"]).path
    name = unquote(path.rsplit("/", 1)[-1])
    return name or f"snapshot-{snapshot['id']}"


def _ascii_header(value: str | None, default: str) -> str:
    value = (value or "").strip()
    if not value or not value.isascii() or any(ord(c) < 32 for c in value):
        return default
    return value


def _url_variants(url: str, encoding: str | None = None) -> list[str]:
    """Forms the crawler may have stored ``url`` under: canonical (session ids dropped,
    query filtered, percent-encoded as Scrapy does), as resolved, and percent-encoded."""
    variants: list[str] = []
    try:
        from crawler.urls import canonicalize

        canonical = canonicalize(url, encoding=encoding)
        if canonical:
            variants.append(canonical)
    except ImportError:  # served without the crawler package
        pass
    for variant in (url, quote(url, safe=":/?#[]@!$&'()*+,;=%~")):
        if variant not in variants:
            variants.append(variant)
    return variants


# -- HTML rewriting --------------------------------------------------------------------------
def _unnest_voids(doc: Any) -> None:
    """Move whatever libxml2 nested inside a void element back after it, in document order,
    so that dropping an ``<embed>`` drops the embed, not the rest of the page."""
    for element in list(doc.iter(*VOID_TAGS)):
        parent = element.getparent()
        if parent is None or (not len(element) and not element.text):
            continue
        children, after = list(element), element.tail
        element.tail, element.text = element.text, None
        index = parent.index(element)
        for offset, child in enumerate(children, start=1):
            parent.insert(index + offset, child)  # moves it (with its own tail)
        last = children[-1] if children else element
        last.tail = (last.tail or "") + (after or "") or None


class Rewriter:
    """Parse archived HTML, collect the URLs it refers to, then rewrite them.

    ``links`` maps a resolved absolute URL to the snapshot id to use, filled in by the caller
    between :meth:`urls` and :meth:`render`.
    """

    LINK_ATTRS = (("a", "href"), ("area", "href"))
    RESOURCE_ATTRS = (("img", "src"), ("link", "href"), ("iframe", "src"), ("frame", "src"),
                      ("input", "src"))

    def __init__(self, text: str, base_url: str, encoding: str | None = None) -> None:
        text = re.sub(r"^\s*<\?xml[^>]*\?>", "", text)
        doctype = re.match(r"\s*(?:<!--.*?-->\s*)*(<!DOCTYPE[^>]*>)", text, re.I | re.S)
        self.doctype = doctype.group(1) if doctype else None  # keep the page's rendering mode
        self.base_url = base_url
        self.encoding = encoding
        try:
            self.doc = lxml_html.document_fromstring(text or "<html></html>")
        except (etree.ParserError, ValueError):
            self.doc = lxml_html.document_fromstring("<html><body></body></html>")
        _unnest_voids(self.doc)
        for base in self.doc.iter("base"):
            if base.get("href"):
                self.base_url = urljoin(base_url, base.get("href").strip())
                break
        self._refs: list[tuple[Any, str, str | None]] = []
        for element in self.doc.iter():
            if not isinstance(element.tag, str):
                continue
            tag = element.tag.lower()
            for wanted, attr in (*self.LINK_ATTRS, *self.RESOURCE_ATTRS):
                if tag == wanted and element.get(attr) is not None:
                    self._refs.append((element, attr, self._resolve(element.get(attr))))

    def _resolve(self, value: str) -> str | None:
        value = value.strip()
        if not value or value.startswith("#"):
            return None
        try:
            absolute = urldefrag(urljoin(self.base_url, value))[0]
        except ValueError:
            return None
        return absolute if absolute.startswith(("http://", "https://")) else None

    def urls(self) -> dict[str, list[str]]:
        """Each resolved URL with the stored forms to look it up under, best first."""
        return {url: _url_variants(url, self.encoding) for _, _, url in self._refs if url}

    def render(self, links: dict[str, int], snapshot_path: str) -> str:
        """The rewritten page; ``snapshot_path`` is ``/-/snapshot`` (with any base_url)."""
        for element in list(self.doc.iter(*DROP_TAGS)):
            element.drop_tree()
        for element in self.doc.iter("style"):
            # Style text is written out raw; inside <svg>/<math> a browser parses it as markup
            # (mutation XSS: <math><mglyph><style><img onerror=…>). "\3C " is "<" to CSS.
            if element.text and "<" in element.text:
                element.text = element.text.replace("<", "\\3C ")
        for element in list(self.doc.iter("meta")):
            equiv = (element.get("http-equiv") or "").lower()
            if element.get("charset") is not None or equiv in ("refresh", "content-type",
                                                                "content-security-policy", "set-cookie"):
                element.drop_tree()
        for element, attr, url in self._refs:
            if element.getparent() is None and element is not self.doc:
                continue
            tag = element.tag.lower()
            target = links.get(url) if url else None
            original = element.get(attr)
            if (tag, attr) in self.LINK_ATTRS:
                if original is not None and original.strip().startswith("#"):
                    continue  # in-page anchor
                if target is not None:
                    element.set(attr, f"{snapshot_path}/{target}")
                    element.set("target", "_top")
                else:
                    del element.attrib[attr]
                    element.set("data-archived-href", original or "")
                    element.set("title", "not in the archive: " + (url or original or ""))
            else:
                if tag == "link" and "stylesheet" not in (element.get("rel") or "").lower():
                    element.drop_tree()
                    continue
                if target is not None:
                    element.set(attr, f"{snapshot_path}/{target}/raw")
                elif tag != "img" or not (original or "").strip().lower().startswith("data:"):
                    # data: stays for images only (the CSP allows data: images, nothing else)
                    del element.attrib[attr]
                    element.set(f"data-archived-{attr}", original or "")
        # What survives is an allowlist for links: an href-like attribute (``href``,
        # ``xlink:href`` of SVG links and images) stays only when it points into the archive
        # (set above) or into the page itself. SVG animations that set an href are dropped:
        # they would navigate the whole window to the live site.
        inside = f"{snapshot_path}/"
        for element in list(self.doc.iter("set", "animate", "animatetransform", "animatemotion")):
            if _HREF_NAME.search(element.get("attributename") or "") and element.getparent() is not None:
                element.drop_tree()
        for element in self.doc.iter():
            if not isinstance(element.tag, str):
                continue
            for name in list(element.attrib):
                value = element.attrib[name]
                lowered = name.lower()
                if _HREF_NAME.search(lowered) and not value.strip().startswith(("#", inside)):
                    del element.attrib[name]
                    element.set("data-archived-href", value)
                elif lowered.startswith("on") or lowered in DROP_ATTRS \
                        or value.strip().lower().startswith(("javascript:", "vbscript:")):
                    del element.attrib[name]
        head = self.doc.find("head")
        if head is None:
            head = etree.Element("head")
            self.doc.insert(0, head)
        head.insert(0, etree.Element("meta", charset="utf-8"))
        page = lxml_html.tostring(self.doc, encoding="unicode", method="html")
        return f"{self.doctype}\n{page}" if self.doctype else page


# -- database --------------------------------------------------------------------------------
async def load_snapshot(datasette, snapshot_id: int) -> dict:
    db = datasette.get_database(DATABASE)
    row = (await db.execute(
        f"SELECT {', '.join(SNAPSHOT_FIELDS)} FROM snapshots WHERE id = ?", [snapshot_id])).first()
    if row is None:
        raise NotFound(f"No snapshot {snapshot_id}")
    return dict(zip(SNAPSHOT_FIELDS, row, strict=True))


async def load_body(datasette, sha256: str, what: str = "body") -> bytes:
    """The blob's original bytes, checked against its sha256; ``what`` names it in a 404."""
    db = datasette.get_database(DATABASE)
    row = (await db.execute(f"SELECT {BLOB_READ_COLUMNS} FROM blobs WHERE sha256 = ?", [sha256])).first()
    if row is None:
        raise NotFound(f"The {what} {sha256} is missing from the archive")
    # inflating and hashing up to 64 MiB: in a worker thread, the server keeps answering
    return await asyncio.to_thread(blob_bytes, sha256, *row)


async def resolve_links(datasette, urls: dict[str, list[str]], snapshot: dict) -> dict[str, int]:
    """For each URL we hold: the snapshot newest at or before this capture, else the same crawl's.

    ``urls`` maps a link's resolved URL to the forms it may be stored under, best first.
    """
    db = datasette.get_database(DATABASE)
    wanted: dict[str, list[tuple[str, int]]] = {}
    for url, variants in urls.items():
        for rank, variant in enumerate(variants):
            wanted.setdefault(variant, []).append((url, rank))
    found: dict[str, tuple[int, int]] = {}
    keys = sorted(wanted)
    for column in ("url", "final_url"):
        for start in range(0, len(keys), LOOKUP_CHUNK):
            chunk = keys[start:start + LOOKUP_CHUNK]
            params: dict[str, Any] = {f"u{i}": value for i, value in enumerate(chunk)}
            params.update(t=snapshot["fetched_at"], c=snapshot["crawl_id"])
            marks = ", ".join(f":u{i}" for i in range(len(chunk)))
            sql = f"""
                select key, id from (
                  select {column} as key, id, row_number() over (
                    partition by {column}
                    order by case when fetched_at <= :t then 0 else 1 end,
                      case when fetched_at <= :t then fetched_at end desc, fetched_at, id desc
                  ) as rank
                  from snapshots
                  where sha256 is not null and {column} in ({marks})
                    and (fetched_at <= :t or crawl_id = :c)
                ) where rank = 1"""
            for key, snapshot_id in (await db.execute(sql, params)).rows:
                for original, rank in wanted[key]:
                    rank += 100 if column == "final_url" else 0
                    if original not in found or rank < found[original][0]:
                        found[original] = (rank, snapshot_id)
    return {url: snapshot_id for url, (_, snapshot_id) in found.items()}


async def neighbours(datasette, snapshot: dict) -> tuple[int | None, int | None]:
    """The previous and next capture of the same URL."""
    db = datasette.get_database(DATABASE)
    older = (await db.execute(
        "select id from snapshots where url = :u and (fetched_at < :t or (fetched_at = :t and id < :i))"
        " order by fetched_at desc, id desc limit 1",
        {"u": snapshot["url"], "t": snapshot["fetched_at"], "i": snapshot["id"]})).first()
    newer = (await db.execute(
        "select id from snapshots where url = :u and (fetched_at > :t or (fetched_at = :t and id > :i))"
        " order by fetched_at, id limit 1",
        {"u": snapshot["url"], "t": snapshot["fetched_at"], "i": snapshot["id"]})).first()
    return (older[0] if older else None), (newer[0] if newer else None)


def parse_page(data: bytes, snapshot: dict) -> tuple[Rewriter, dict[str, list[str]]]:
    """The page decoded and parsed, and the URLs it refers to (:meth:`Rewriter.urls`).
    CPU-bound, seconds for a large page: :func:`snapshot_raw` runs it in a worker thread."""
    text = decode_body(data, snapshot["encoding"], snapshot["content_type"])
    rewriter = Rewriter(text, snapshot["final_url"] or snapshot["url"], snapshot["encoding"])
    return rewriter, rewriter.urls()


# -- views -----------------------------------------------------------------------------------
def _security_headers() -> dict[str, str]:
    return {"content-security-policy": CSP, "x-content-type-options": "nosniff",
            "referrer-policy": "no-referrer", "x-frame-options": "SAMEORIGIN"}


async def snapshot_raw(datasette, request) -> Response:
    snapshot = await load_snapshot(datasette, int(request.url_vars["id"]))
    if not snapshot["sha256"]:
        raise NotFound(f"Snapshot {snapshot['id']} has no archived body")
    try:
        data = await load_body(datasette, snapshot["sha256"])
    except BlobError as exc:
        return Response.text(f"{exc}: see `xxgk verify`", status=500)
    headers = _security_headers()
    original_type = _ascii_header(snapshot["content_type"], "application/octet-stream")
    if not is_html(snapshot["content_type"], snapshot["main_text"]) or request.args.get("download"):
        headers["content-disposition"] = content_disposition(attachment_name(snapshot))
        return Response(data, headers=headers, content_type=original_type)
    # Parsing and rewriting take seconds for a large page (60,000 links): in worker threads, or
    # every other request would wait for them. The tree is used by one thread at a time.
    rewriter, urls = await asyncio.to_thread(parse_page, data, snapshot)
    links = await resolve_links(datasette, urls, snapshot)
    page = await asyncio.to_thread(rewriter.render, links, datasette.urls.path("/-/snapshot"))
    return Response(page, headers=headers, content_type="text/html; charset=utf-8")


async def snapshot_screenshot(datasette, request) -> Response:
    """The capture's full-page PNG, as an image (Datasette's blob download is zlib bytes)."""
    snapshot = await load_snapshot(datasette, int(request.url_vars["id"]))
    if not snapshot["screenshot_sha256"]:
        raise NotFound(f"Snapshot {snapshot['id']} has no screenshot")
    try:
        data = await load_body(datasette, snapshot["screenshot_sha256"], "screenshot")
    except BlobError as exc:
        return Response.text(f"{exc}: see `xxgk verify`", status=500)
    # The sandbox CSP and nosniff keep even a blob that is not really a PNG from ever
    # running as a document; inline with a name so "save image" gives a useful file.
    headers = _security_headers()
    headers["content-disposition"] = f'inline; filename="snapshot-{snapshot["id"]}-screenshot.png"'
    return Response(data, headers=headers, content_type="image/png")


async def snapshot_page(datasette, request) -> Response:
    snapshot = await load_snapshot(datasette, int(request.url_vars["id"]))
    older, newer = await neighbours(datasette, snapshot)
    base = datasette.urls.path(f"/-/snapshot/{snapshot['id']}")
    context = {
        "snapshot": snapshot,
        "is_html": is_html(snapshot["content_type"], snapshot["main_text"]),
        "attachment_name": attachment_name(snapshot),
        "raw_url": f"{base}/raw",
        "download_url": f"{base}/raw?download=1",
        "screenshot_url": f"{base}/screenshot" if snapshot["screenshot_sha256"] else None,
        "history_url": datasette.urls.database(DATABASE) + "/url_history?url=" + quote(snapshot["url"], safe=""),
        "row_url": datasette.urls.table(DATABASE, "snapshots") + f"/{snapshot['id']}",
        "blob_url": (datasette.urls.table(DATABASE, "blobs") + f"/{snapshot['sha256']}"
                     if snapshot["sha256"] else None),
        "older_url": datasette.urls.path(f"/-/snapshot/{older}") if older else None,
        "newer_url": datasette.urls.path(f"/-/snapshot/{newer}") if newer else None,
        "iframe_sandbox": IFRAME_SANDBOX,
    }
    template = datasette.jinja_env.from_string(TEMPLATE.read_text(encoding="utf-8"))
    html = await datasette.render_template(template, context, request=request)
    return Response.html(html, headers={"referrer-policy": "no-referrer"})


@hookimpl
def register_routes(datasette) -> list[tuple[str, Any]]:
    return [
        # at most 18 digits: any such id fits SQLite's integer (longer ones are a 404, not a 500)
        (r"^/-/snapshot/(?P<id>\d{1,18})$", snapshot_page),
        (r"^/-/snapshot/(?P<id>\d{1,18})/raw$", snapshot_raw),
        (r"^/-/snapshot/(?P<id>\d{1,18})/screenshot$", snapshot_screenshot),
    ]


@hookimpl
def render_cell(row, value, column, table, database, datasette) -> markupsafe.Markup | None:
    if database != DATABASE:
        return None
    if isinstance(value, dict):  # a foreign key cell: {"value": ..., "label": ...}
        value = value.get("value")
    if value is None or value == "":
        return None
    snapshot_id = None
    if table == "snapshots" and column in ("id", "sha256", "screenshot_sha256"):
        try:
            snapshot_id = row["id"]
        except (IndexError, KeyError):
            return None
    elif column in SNAPSHOT_ID_COLUMNS and isinstance(value, int):
        snapshot_id = value
    if not isinstance(snapshot_id, int):
        return None
    view = datasette.urls.path(f"/-/snapshot/{snapshot_id}")
    if column in ("sha256", "screenshot_sha256"):
        blob = datasette.urls.table(DATABASE, "blobs") + f"/{value}"
        # the blob row's download is the stored (zlib) bytes: the screenshot route gives the PNG
        target, label = (view, "view") if column == "sha256" else (f"{view}/screenshot", "PNG")
        return markupsafe.Markup('<a href="{}" title="{}">{}…</a> <a href="{}">{}</a>').format(
            blob, value, str(value)[:16], target, label)
    row_url = datasette.urls.table(DATABASE, "snapshots") + f"/{snapshot_id}"
    return markupsafe.Markup('<a href="{}">{}</a> <a href="{}">view</a>').format(
        row_url, snapshot_id, view)
