"""Report bytes to text: PDF, DOCX, RTF (often served as .doc), OLE .doc, HTML and TXT.

:func:`extract_text` never raises: a file it cannot read comes back with ``error`` set
("encrypted PDF", "corrupt PDF: …", "empty document", "no text", …) and whatever text
could be recovered. The format is decided by magic bytes first (a ".doc" that is RTF or
HTML, a ".pdf" link that served an HTML error page), then by file name and content type.
A PDF's text boxes are written in reading order, a table's cells row by row
(:func:`row_order`), as a Word table's are.

Hostile input is capped: files over :data:`MAX_BYTES` are refused, PDFs stop after
:data:`MAX_PDF_PAGES` pages or :data:`MAX_SECONDS` seconds (``truncated`` is set), ZIP
members are size-checked before they are read, and output stops at :data:`MAX_CHARS`.
"""

from __future__ import annotations

import io
import logging
import re
import time
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, TypeVar

from charset_normalizer import from_bytes
from lxml import etree
from lxml import html as lxml_html

__all__ = ["MAX_BYTES", "MAX_CHARS", "MAX_PDF_PAGES", "MAX_SECONDS", "Extracted",
           "decode_text", "detect_format", "extract_text", "row_order"]

MAX_BYTES = 50 * 1024 * 1024
MAX_CHARS = 2_000_000
MAX_PDF_PAGES = 300
MAX_SECONDS = 30.0

logging.getLogger("pdfminer").setLevel(logging.ERROR)


@dataclass
class Extracted:
    """Text recovered from a file, its detected format, and an error if reading failed."""

    text: str
    format: str  # pdf | doc | docx | rtf | html | txt | unknown
    error: str | None = None
    truncated: bool = False
    title: str | None = None  # HTML <title>, when there is one


_OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
_BOMS = (b"\xef\xbb\xbf", b"\xff\xfe", b"\xfe\xff")
_HTML_START = re.compile(
    rb"^\s*(?:<!doctype\s+html|<html|<head|<body|<meta|<title|<!--|<div|<p[\s>]|<table|<span"
    rb"|<\?xml[^>]*>\s*(?:<!doctype\s+html|<html))",
    re.IGNORECASE,
)
_EXT_FORMATS = {"pdf": "pdf", "docx": "docx", "doc": "doc", "wps": "doc", "rtf": "rtf",
                "htm": "html", "html": "html", "shtml": "html", "xhtml": "html", "jsp": "html",
                "php": "html", "asp": "html", "aspx": "html", "txt": "txt", "text": "txt"}
_CT_FORMATS = (("pdf", "pdf"), ("wordprocessingml", "docx"), ("msword", "doc"), ("rtf", "rtf"),
               ("html", "html"), ("xhtml", "html"), ("text/plain", "txt"))


def detect_format(data: bytes, filename: str | None = None,
                  content_type: str | None = None) -> str:
    """pdf | docx | doc | rtf | html | txt | zip | unknown, magic bytes first."""
    head = data[:2048]
    body = head
    for bom in _BOMS:
        if body.startswith(bom):
            body = body[len(bom):]
            break
    if b"%PDF-" in data[:1024]:
        return "pdf"
    if data.startswith(b"PK\x03\x04"):
        if b"word/" in data[:65536] or _zip_has(data, "word/document.xml"):
            return "docx"
        return "docx" if _format_from_name(filename, content_type) == "docx" else "zip"
    if data.startswith(_OLE_MAGIC):
        return "doc"
    if body.lstrip().startswith(b"{\\rtf"):
        return "rtf"
    if _HTML_START.match(body) or re.search(rb"<html[\s>]|<body[\s>]", body, re.IGNORECASE):
        return "html"
    if filename:
        ext = filename.rsplit(".", 1)[-1].lower() if "." in filename else ""
        if ext in _EXT_FORMATS:
            fmt = _EXT_FORMATS[ext]
            if fmt in ("doc", "rtf") and _looks_textual(data):
                return "txt"  # a ".doc" that is plain text
            return fmt
    if content_type:
        ct = content_type.lower()
        for key, fmt in _CT_FORMATS:
            if key in ct:
                return fmt
    return "txt" if _looks_textual(data) else "unknown"


def _format_from_name(filename: str | None, content_type: str | None) -> str:
    if filename and "." in filename:
        fmt = _EXT_FORMATS.get(filename.rsplit(".", 1)[-1].lower())
        if fmt:
            return fmt
    for key, fmt in _CT_FORMATS:
        if content_type and key in content_type.lower():
            return fmt
    return "unknown"


def _zip_has(data: bytes, name: str) -> bool:
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            return name in zf.namelist()
    except Exception:
        return False


def _looks_textual(data: bytes) -> bool:
    sample = data[:8192]
    if any(sample.startswith(b) for b in _BOMS):
        return True
    if b"\x00" in sample:
        return False
    controls = sum(1 for b in sample if b < 9 or 13 < b < 32 or b == 127)
    return controls <= len(sample) * 0.01


def extract_text(data: bytes, filename: str | None = None,
                 content_type: str | None = None) -> Extracted:
    """Text of a report file in any supported format; never raises."""
    try:
        if not data or not data.strip():
            return Extracted("", _format_from_name(filename, content_type), "empty document")
        if len(data) > MAX_BYTES:
            return Extracted("", detect_format(data[:65536], filename, content_type),
                             f"file too large ({len(data)} bytes)")
        fmt = detect_format(data, filename, content_type)
        handler = _HANDLERS.get(fmt)
        if handler is None:
            return Extracted("", fmt, "unrecognised format" if fmt == "unknown"
                             else f"unsupported format: {fmt}")
        try:
            result = handler(data, content_type)
        except Exception as exc:  # a parser bug on odd input must not stop a crawl
            return Extracted("", fmt, f"{fmt} extraction failed: {type(exc).__name__}: {exc}"[:300])
        result.format = fmt
        if len(result.text) > MAX_CHARS:
            result.text, result.truncated = result.text[:MAX_CHARS], True
        if result.error is None and not result.text.strip():
            result.error = "no text"
        return result
    except Exception as exc:  # pragma: no cover - belt and braces
        return Extracted("", "unknown", f"extraction failed: {type(exc).__name__}")


# ------------------------------------------------------------------------------ PDF

class _Box(Protocol):
    """What :func:`row_order` needs of a pdfminer layout object: its bounding box."""

    x0: float
    y0: float
    x1: float
    y1: float


_B = TypeVar("_B", bound=_Box)


def row_order(boxes: Sequence[_B]) -> list[_B]:
    """Text boxes of a page in reading order, a table row by row.

    pdfminer's own order (``boxes_flow``) groups neighbouring boxes first, so a table whose
    cells are each a box comes out column by column (five titles, then their five URLs),
    and ordering by position alone (``boxes_flow=None``, by bottom edge) puts a one-line
    cell before the taller cell to its left. Here boxes that share most of their height
    form a band (the cells of one table row; a paragraph is a band of its own), bands go
    top to bottom, and within a band the columns (boxes overlapping horizontally) go left
    to right, each top to bottom.
    """
    bands: list[list[_B]] = []
    top = bottom = 0.0
    for box in sorted(boxes, key=lambda b: (-b.y1, b.x0)):
        height = box.y1 - box.y0
        overlap = min(top, box.y1) - max(bottom, box.y0)
        # more than half of the lower of the two: a cell of the band's row. Less (a
        # merged cell's text astride a row line, a heading close above a paragraph)
        # starts a band of its own.
        if bands and overlap > 0 and overlap > 0.5 * min(height, top - bottom):
            bands[-1].append(box)
            bottom = min(bottom, box.y0)
        else:
            bands.append([box])
            top, bottom = box.y1, box.y0
    ordered: list[_B] = []
    for band in bands:
        columns: list[list[_B]] = []
        right = 0.0
        for box in sorted(band, key=lambda b: b.x0):
            if columns and box.x0 < right:
                columns[-1].append(box)
                right = max(right, box.x1)
            else:
                columns.append([box])
                right = box.x1
        for column in columns:
            ordered.extend(sorted(column, key=lambda b: -b.y1))
    return ordered


def _pdf(data: bytes, content_type: str | None = None) -> Extracted:
    from pdfminer.converter import PDFPageAggregator
    from pdfminer.layout import LAParams, LTContainer, LTText, LTTextBox
    from pdfminer.pdfdocument import PDFDocument, PDFEncryptionError, PDFPasswordIncorrect
    from pdfminer.pdfinterp import PDFPageInterpreter, PDFResourceManager
    from pdfminer.pdfpage import PDFPage
    from pdfminer.pdfparser import PDFParser

    start = time.monotonic()
    try:
        parser = PDFParser(io.BytesIO(data))
        document = PDFDocument(parser, password="")
    except (PDFPasswordIncorrect, PDFEncryptionError) as exc:
        return Extracted("", "pdf", f"encrypted PDF ({type(exc).__name__})")
    except Exception as exc:
        return Extracted("", "pdf", f"corrupt PDF: {type(exc).__name__}: {exc}"[:300])
    out = io.StringIO()

    def render(item: object) -> None:
        # as pdfminer's TextConverter writes a page: a text box's lines, then a blank line
        if isinstance(item, LTContainer):
            for child in item:
                render(child)
        elif isinstance(item, LTText):
            out.write(item.get_text())
        if isinstance(item, LTTextBox):
            out.write("\n")

    class TextAggregator(PDFPageAggregator):
        """The page layout without drawings and images: text is all we read (as
        TextConverter, a hostile page's million paths are not kept)."""

        def paint_path(self, *args: object, **kwargs: object) -> None:
            return None

        def render_image(self, *args: object, **kwargs: object) -> None:
            return None

    manager = PDFResourceManager(caching=True)
    # boxes_flow=None: pdfminer's grouping of boxes is not needed, row_order orders them
    device = TextAggregator(manager, laparams=LAParams(boxes_flow=None))
    interpreter = PDFPageInterpreter(manager, device)
    truncated = False
    error = None
    pages = 0
    try:
        for page in PDFPage.create_pages(document):
            if pages >= MAX_PDF_PAGES or time.monotonic() - start > MAX_SECONDS \
                    or out.tell() > MAX_CHARS * 4:
                truncated = True
                break
            try:
                interpreter.process_page(page)
                layout = list(device.get_result())
                boxes = [item for item in layout if isinstance(item, LTTextBox)]
                for item in row_order(boxes) + [i for i in layout if not isinstance(i, LTTextBox)]:
                    render(item)
                out.write("\n")
            except Exception as exc:  # one broken page: keep the others
                error = f"corrupt PDF page {pages + 1}: {type(exc).__name__}"
            pages += 1
    except (PDFPasswordIncorrect, PDFEncryptionError) as exc:
        return Extracted("", "pdf", f"encrypted PDF ({type(exc).__name__})")
    except Exception as exc:
        error = f"corrupt PDF: {type(exc).__name__}: {exc}"[:300]
    finally:
        device.close()
    text = out.getvalue().replace("\x0c", "\n")
    if pages == 0 and error is None:
        error = "corrupt PDF: no pages"
    elif not text.strip() and error is None:
        error = "no text (scanned or image-only PDF?)"
    return Extracted(text, "pdf", error, truncated)


# ----------------------------------------------------------------------------- DOCX

_W = "{http://schemas.openxmlformats.org/wordprocessingml/2006/main}"


def _docx(data: bytes, content_type: str | None = None) -> Extracted:
    try:
        zf = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile as exc:
        return Extracted("", "docx", f"corrupt DOCX: {exc}")
    with zf:
        try:
            info = zf.getinfo("word/document.xml")
        except KeyError:
            return Extracted("", "docx", "corrupt DOCX: no word/document.xml")
        if info.file_size > MAX_BYTES:
            return Extracted("", "docx", "DOCX too large when uncompressed")
        xml = zf.read(info)
    parser = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=False,
                             recover=True)
    root = etree.fromstring(xml, parser)
    if root is None:
        return Extracted("", "docx", "corrupt DOCX: unreadable document.xml")
    body = root.find(f"{_W}body")
    lines: list[str] = []
    _docx_block(body if body is not None else root, lines)
    return Extracted("\n".join(lines), "docx")


def _docx_block(element: etree._Element, lines: list[str]) -> None:
    for child in element:
        tag = child.tag
        if tag == f"{_W}p":
            lines.append(_docx_paragraph(child))
        elif tag == f"{_W}tbl":
            for row in child.iter(f"{_W}tr"):
                if _ancestor_table(row) is not child:
                    continue  # rows of nested tables are read inside their cell
                cells = []
                for cell in row.findall(f"{_W}tc"):
                    inner: list[str] = []
                    _docx_block(cell, inner)
                    cells.append(" ".join(t.strip() for t in inner if t.strip()))
                lines.append("\t".join(cells))
        elif tag in (f"{_W}sdt", f"{_W}sdtContent", f"{_W}customXml", f"{_W}smartTag"):
            _docx_block(child, lines)


def _ancestor_table(row: etree._Element) -> etree._Element | None:
    parent = row.getparent()
    while parent is not None and parent.tag != f"{_W}tbl":
        parent = parent.getparent()
    return parent


def _docx_paragraph(p: etree._Element) -> str:
    parts: list[str] = []
    for node in p.iter():
        tag = node.tag
        if tag == f"{_W}t" and node.text:
            parts.append(node.text)
        elif tag == f"{_W}tab":
            parts.append("\t")
        elif tag in (f"{_W}br", f"{_W}cr"):
            parts.append("\n")
        elif tag == f"{_W}noBreakHyphen":
            parts.append("-")
    return "".join(parts)


# ------------------------------------------------------------------------------ RTF

_RTF_TOKEN = re.compile(rb"\\([a-zA-Z]+)(-?\d+)? ?|\\'([0-9a-fA-F]{2})|\\(.)|([{}])|([^\\{}]+)",
                        re.DOTALL)
_RTF_SKIP = frozenset({
    "fonttbl", "colortbl", "stylesheet", "info", "pict", "object", "header", "footer",
    "headerl", "headerr", "headerf", "footerl", "footerr", "footerf", "listtable",
    "listoverridetable", "rsidtbl", "generator", "themedata", "colorschememapping",
    "datastore", "latentstyles", "pgdsctbl", "fldinst", "xmlnstbl", "filetbl", "revtbl",
    "bkmkstart", "bkmkend", "shpinst", "shprslt", "nonshppict", "footnote", "annotation",
    "atnid", "atnauthor", "wgrffmtfilter", "mmathPr", "fchars", "lchars", "template",
})
_RTF_CHARS = {"par": "\n", "line": "\n", "sect": "\n", "page": "\n", "tab": "\t",
              "cell": "\t", "nestcell": "\t", "row": "\n", "nestrow": "\n", "emdash": "—",
              "endash": "–", "bullet": "•", "lquote": "‘", "rquote": "’", "ldblquote": "“",
              "rdblquote": "”", "emspace": " ", "enspace": " ", "qmspace": " "}
_CODEPAGES = {936: "gb18030", 950: "big5", 54936: "gb18030", 65001: "utf-8", 1252: "cp1252",
              932: "cp932", 949: "cp949", 10008: "gb2312"}


def _decode_rtf_bytes(raw: bytearray, codepage: str) -> str:
    if codepage == "cp1252" and any(b >= 0x80 for b in raw):
        try:
            return bytes(raw).decode("gb18030")
        except UnicodeDecodeError:
            pass
    return bytes(raw).decode(codepage, errors="replace")


def _rtf(data: bytes, content_type: str | None = None) -> Extracted:
    codepage = "cp1252"
    m = re.search(rb"\\ansicpg(\d+)", data[:4096])
    if m:
        codepage = _CODEPAGES.get(int(m.group(1)), f"cp{int(m.group(1))}")
        try:
            "".encode(codepage)
        except LookupError:
            codepage = "cp1252"
    out: list[str] = []
    pending = bytearray()
    stack: list[tuple[bool, int]] = []
    skip, uc, to_skip = False, 1, 0
    first_in_group = False

    def flush() -> None:
        if pending:
            if not skip:
                out.append(_decode_rtf_bytes(pending, codepage))
            pending.clear()

    for tok in _RTF_TOKEN.finditer(data):
        word, arg, hexbyte, symbol, brace, text = tok.groups()
        if hexbyte is not None:
            if to_skip:
                to_skip -= 1
            else:
                pending.append(int(hexbyte, 16))
            first_in_group = False
            continue
        flush()
        if brace == b"{":
            stack.append((skip, uc))
            first_in_group = True
            continue
        if brace == b"}":
            skip, uc = stack.pop() if stack else (False, 1)
            to_skip = 0
            first_in_group = False
            continue
        if word is not None:
            name = word.decode("ascii")
            if name in _RTF_SKIP or (first_in_group and name in ("fldinst",)):
                skip = True
            elif name == "uc" and arg is not None:
                uc = max(0, int(arg))
            elif name == "u" and arg is not None:
                if not skip:
                    code = int(arg)
                    out.append(chr(code + 65536 if code < 0 else code))
                to_skip = uc
            elif name in _RTF_CHARS and not skip:
                out.append(_RTF_CHARS[name])
            first_in_group = False
            continue
        if symbol is not None:
            if symbol == b"*":
                skip = True
            elif not skip:
                if symbol in (b"\\", b"{", b"}"):
                    out.append(symbol.decode())
                elif symbol == b"~":
                    out.append(" ")
                elif symbol == b"_":
                    out.append("-")
                elif symbol in (b"\n", b"\r"):
                    out.append("\n")
            first_in_group = False
            continue
        if text is not None:
            chunk = text.replace(b"\r", b"").replace(b"\n", b"")
            if to_skip and chunk:
                dropped = min(to_skip, len(chunk))
                chunk = chunk[dropped:]
                to_skip -= dropped
            if chunk and not skip:
                out.append(_decode_rtf_bytes(bytearray(chunk), codepage))
            first_in_group = False
    flush()
    return Extracted("".join(out), "rtf")


# ------------------------------------------------------------------------------ DOC

_UTF16_RUN = re.compile(
    "[\u4e00-\u9fff\u3000-\u303f\uff00-\uffef\u2010-\u206f\u0020-\u007e"
    "\r\n\t\x07\x0b\x0c\x13\x14\x15]{6,}"
)


def _common_cjk(ch: str) -> bool:
    """Whether ``ch`` is a level-1 GB2312 hanzi (the 3755 everyday characters)."""
    try:
        return 0xB0 <= ch.encode("gb2312")[0] <= 0xD7
    except UnicodeEncodeError:
        return False


def _plausible(run: str) -> bool:
    cjk = [ch for ch in run if "\u4e00" <= ch <= "\u9fff"]
    if len(cjk) >= 2:
        return sum(map(_common_cjk, cjk)) >= 0.7 * len(cjk)
    letters = sum(ch.isalpha() for ch in run)
    return len(run) >= 20 and letters >= 0.6 * len(run)


def _clean_word_text(run: str) -> str:
    run = re.sub("\x13[^\x13\x14\x15]*\x14", "", run)   # field instructions
    run = re.sub("\x13[^\x13\x14\x15]*\x15", "", run)
    run = run.replace("\x14", "").replace("\x15", "")
    run = run.replace("\r", "\n").replace("\x0b", "\n").replace("\x0c", "\n")
    return re.sub("\x07+", "\t", run)


def _doc(data: bytes, content_type: str | None = None) -> Extracted:
    if "EncryptedPackage".encode("utf-16-le") in data[:65536 * 4] or \
            "EncryptionInfo".encode("utf-16-le") in data[:65536 * 4]:
        return Extracted("", "doc", "encrypted document")
    runs: list[tuple[int, str]] = []
    for offset in (0, 1):
        chunk = data[offset:]
        chunk = chunk[: len(chunk) - len(chunk) % 2]
        decoded = chunk.decode("utf-16-le", errors="replace")
        for m in _UTF16_RUN.finditer(decoded):
            if _plausible(m.group(0)):
                runs.append((m.start() * 2 + offset, m.group(0)))
    runs.sort()
    text = "\n".join(_clean_word_text(run) for _, run in runs)
    text = "\n".join(line.strip() for line in text.split("\n") if line.strip())
    if not text:
        return Extracted("", "doc", "no text recovered from .doc (unsupported Word binary)")
    return Extracted(text, "doc")


# ----------------------------------------------------------------------------- HTML

_META_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?\s*([A-Za-z0-9_\-]+)""", re.IGNORECASE)
_DROP = frozenset({"script", "style", "noscript", "template", "head", "iframe", "object", "svg",
                   "canvas", "select", "button"})
_BLOCK = frozenset({"p", "div", "br", "li", "ul", "ol", "h1", "h2", "h3", "h4", "h5", "h6",
                    "table", "section", "article", "header", "footer", "nav", "aside",
                    "blockquote", "pre", "dl", "dt", "dd", "form", "hr", "caption", "tbody",
                    "thead", "tfoot", "main", "figure", "figcaption", "address", "center"})
_CHARSET_ALIASES = {"gb2312": "gb18030", "gbk": "gb18030", "x-gbk": "gb18030", "gb_2312-80": "gb18030",
                    "cp936": "gb18030", "utf8": "utf-8", "big5": "big5hkscs"}


def _charset(name: str | None) -> str | None:
    if not name:
        return None
    name = name.strip().strip("\"'").lower()
    name = _CHARSET_ALIASES.get(name, name)
    try:
        "".encode(name)
    except LookupError:
        return None
    return name


def decode_text(data: bytes, declared: str | None = None) -> tuple[str, str]:
    """Bytes to str: BOM, then a declared charset, UTF-8, GB18030, charset-normalizer.

    Returns (text, encoding used). GB2312/GBK declarations are read as GB18030, their
    superset, since Chinese sites often declare gb2312 and serve GBK characters.
    """
    if data.startswith(b"\xef\xbb\xbf"):
        return data[3:].decode("utf-8", errors="replace"), "utf-8-sig"
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return data.decode("utf-16", errors="replace"), "utf-16"
    tried = []
    for enc in (_charset(declared), "utf-8", "gb18030"):
        if enc and enc not in tried:
            tried.append(enc)
            try:
                return data.decode(enc), enc
            except UnicodeDecodeError:
                continue
    best = from_bytes(data[:200_000]).best()
    if best is not None and best.encoding:
        return data.decode(best.encoding, errors="replace"), best.encoding
    return data.decode("utf-8", errors="replace"), "utf-8"


def _html(data: bytes, content_type: str | None = None) -> Extracted:
    declared = None
    m = _META_CHARSET.search(data[:4096])
    if m:
        declared = m.group(1).decode("ascii", errors="ignore")
    elif content_type and "charset=" in content_type.lower():
        declared = content_type.lower().split("charset=", 1)[1].split(";")[0]
    text, _ = decode_text(data, declared)
    text = re.sub(r"^\s*<\?xml[^>]*\?>", "", text)
    try:
        root = lxml_html.document_fromstring(text)
    except (etree.ParserError, ValueError) as exc:
        return Extracted("", "html", f"unreadable HTML: {exc}")
    title_el = root.find(".//title")
    title = " ".join(title_el.text_content().split()) if title_el is not None else None
    parts: list[str] = []
    _html_walk(root, parts)
    lines = [re.sub(r"[ \xa0\u3000]+", " ", ln).strip(" ") for ln in "".join(parts).split("\n")]
    return Extracted("\n".join(ln for ln in lines if ln.strip()), "html", title=title or None)


def _squash(text: str | None) -> str:
    return re.sub(r"[ \t\r\n\f\v]+", " ", text) if text else ""


def _html_cell(cell: etree._Element) -> str:
    parts: list[str] = []
    _html_walk(cell, parts, inline=True)
    return " ".join("".join(parts).split())


def _html_walk(el: etree._Element, parts: list[str], inline: bool = False) -> None:
    if not isinstance(el.tag, str):  # comment or processing instruction
        return
    tag = el.tag.lower()
    if tag in _DROP:
        return
    if tag == "tr" and not inline:
        cells = [_html_cell(c) for c in el if isinstance(c.tag, str) and c.tag.lower() in ("td", "th")]
        parts.append("\n" + "\t".join(cells) + "\n")
        return
    block = tag in _BLOCK and not inline
    if block or tag == "br":
        parts.append(" " if inline else "\n")
    parts.append(_squash(el.text))
    for child in el:
        _html_walk(child, parts, inline)
        parts.append(_squash(child.tail))
    if block:
        parts.append("\n")


# ------------------------------------------------------------------------------ TXT

def _txt(data: bytes, content_type: str | None = None) -> Extracted:
    if not _looks_textual(data):
        return Extracted("", "txt", "unrecognised binary data")
    text, _ = decode_text(data)
    bad = sum(1 for ch in text if ch == "\ufffd" or "\ue000" <= ch <= "\uf8ff")
    if text and bad > 0.05 * len(text):
        return Extracted(text, "txt", "undecodable text")
    return Extracted(text.replace("\r\n", "\n").replace("\r", "\n"), "txt")


_HANDLERS = {"pdf": _pdf, "docx": _docx, "rtf": _rtf, "doc": _doc, "html": _html, "txt": _txt}
