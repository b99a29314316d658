"""Deterministic document generators: PDF (reportlab), DOCX, RTF-as-DOC, XLS, ZIP.

Documents are described by *blocks* (hashable tuples) so results can be cached:

* ``("title", text)``, ``("h", text)``, ``("p", text)``, ``("sign", text)`` (right aligned)
* ``("table", header, rows)`` with ``header`` a tuple of str and ``rows`` a tuple of tuples

Every generator returns identical bytes for identical input, across processes.
"""

from __future__ import annotations

import datetime as _dt
import io
import zipfile
from functools import cache

Block = tuple

_FIXED_ZIP_TIME = (2021, 1, 1, 0, 0, 0)


# -- PDF -------------------------------------------------------------------------

_FONT = "STSong-Light"
_font_ready = False


def _ensure_font() -> None:
    global _font_ready
    if not _font_ready:
        from reportlab.pdfbase import pdfmetrics
        from reportlab.pdfbase.cidfonts import UnicodeCIDFont

        pdfmetrics.registerFont(UnicodeCIDFont(_FONT))
        _font_ready = True


@cache
def pdf_bytes(title: str, blocks: tuple[Block, ...]) -> bytes:
    """A text-based PDF with Chinese text (CID font STSong-Light, no font files).

    Tables are printed one row per line (``序号  事项  网址``) so text extraction keeps
    each item number next to its URL.
    """
    _ensure_font()
    from reportlab.lib.enums import TA_CENTER, TA_RIGHT
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.styles import ParagraphStyle
    from reportlab.pdfbase.pdfmetrics import stringWidth
    from reportlab.platypus import Paragraph, SimpleDocTemplate, Spacer

    body = ParagraphStyle(
        "body", fontName=_FONT, fontSize=10.5, leading=17, wordWrap="CJK", firstLineIndent=21
    )
    head = ParagraphStyle("head", parent=body, fontSize=12, leading=20, firstLineIndent=0, spaceBefore=6)
    ttl = ParagraphStyle("ttl", parent=body, fontSize=15, leading=24, alignment=TA_CENTER, firstLineIndent=0)
    sign = ParagraphStyle("sign", parent=body, alignment=TA_RIGHT, firstLineIndent=0)
    row = ParagraphStyle("row", fontName=_FONT, fontSize=8.5, leading=13)
    width = A4[0] - 2 * 50

    def esc(s: str) -> str:
        return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")

    story: list = []
    for block in blocks:
        kind = block[0]
        if kind == "title":
            story += [Paragraph(esc(block[1]), ttl), Spacer(1, 8)]
        elif kind == "h":
            story.append(Paragraph(esc(block[1]), head))
        elif kind == "p":
            story.append(Paragraph(esc(block[1]), body))
        elif kind == "sign":
            story.append(Paragraph(esc(block[1]), sign))
        elif kind == "table":
            header, rows = block[1], block[2]
            story.append(Paragraph(esc("　".join(header)), row))
            for r in rows:
                line = "　".join(c for c in r if c)
                if stringWidth(line, _FONT, 8.5) > width:
                    # keep the URL whole on its own line
                    story.append(Paragraph(esc("　".join(c for c in r[:-1] if c)), row))
                    story.append(Paragraph(esc(r[-1]), row))
                else:
                    story.append(Paragraph(esc(line), row))
        else:
            raise ValueError(kind)
    buf = io.BytesIO()
    doc = SimpleDocTemplate(
        buf,
        pagesize=A4,
        leftMargin=50,
        rightMargin=50,
        topMargin=50,
        bottomMargin=50,
        invariant=1,
        title=title,
        author="simweb",
        creator="simweb",
    )
    doc.build(story)
    return buf.getvalue()


def simple_pdf(title: str, paragraphs: tuple[str, ...]) -> bytes:
    """A short one-page PDF notice."""
    return pdf_bytes(title, (("title", title),) + tuple(("p", p) for p in paragraphs))


# -- DOCX ------------------------------------------------------------------------


def _normalise_zip(data: bytes) -> bytes:
    """Rewrite a zip with fixed timestamps and order so bytes are reproducible."""
    src = zipfile.ZipFile(io.BytesIO(data))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            zi = zipfile.ZipInfo(info.filename, date_time=_FIXED_ZIP_TIME)
            zi.compress_type = zipfile.ZIP_DEFLATED
            zi.external_attr = 0o644 << 16
            dst.writestr(zi, src.read(info.filename))
    return out.getvalue()


@cache
def docx_bytes(title: str, blocks: tuple[Block, ...]) -> bytes:
    """A DOCX document (python-docx) with headings, paragraphs and real tables."""
    from docx import Document
    from docx.enum.text import WD_ALIGN_PARAGRAPH

    doc = Document()
    props = doc.core_properties
    fixed = _dt.datetime(2021, 1, 1, 0, 0, 0)
    props.created = fixed
    props.modified = fixed
    props.last_printed = fixed
    props.author = "simweb"
    props.last_modified_by = "simweb"
    props.title = title
    props.revision = 1
    for block in blocks:
        kind = block[0]
        if kind == "title":
            p = doc.add_paragraph(block[1], style="Title")
            p.alignment = WD_ALIGN_PARAGRAPH.CENTER
        elif kind == "h":
            doc.add_heading(block[1], level=1)
        elif kind == "p":
            doc.add_paragraph(block[1])
        elif kind == "sign":
            p = doc.add_paragraph(block[1])
            p.alignment = WD_ALIGN_PARAGRAPH.RIGHT
        elif kind == "table":
            header, rows = block[1], block[2]
            table = doc.add_table(rows=1, cols=len(header))
            table.style = "Table Grid"
            for cell, text in zip(table.rows[0].cells, header, strict=True):
                cell.text = text
            for r in rows:
                cells = table.add_row().cells
                for cell, text in zip(cells, r, strict=True):
                    cell.text = text
        else:
            raise ValueError(kind)
    buf = io.BytesIO()
    doc.save(buf)
    return _normalise_zip(buf.getvalue())


# -- RTF (served as .doc) ----------------------------------------------------------


def _rtf_escape(text: str) -> str:
    out = []
    for ch in text:
        code = ord(ch)
        if ch in "\\{}":
            out.append("\\" + ch)
        elif ch == "\t":
            out.append("\\tab ")
        elif code < 128:
            out.append(ch)
        else:
            out.append(f"\\u{code}?")
    return "".join(out)


@cache
def rtf_bytes(title: str, blocks: tuple[Block, ...]) -> bytes:
    """An RTF document (``{\\rtf1 ...}``, non-ASCII as ``\\uNNNN?``), as saved by old CMSs as .doc.

    Table rows are written as tab-separated paragraphs.
    """
    parts = [
        "{\\rtf1\\ansi\\ansicpg936\\deff0\\uc1",
        "{\\fonttbl{\\f0\\fnil\\fcharset134 \\'cb\\'ce\\'cc\\'e5;}}",
        "{\\info{\\title " + _rtf_escape(title) + "}{\\author simweb}}",
        "\\paperw11906\\paperh16838\\margl1800\\margr1800\\f0\\fs24",
    ]
    for block in blocks:
        kind = block[0]
        if kind == "title":
            parts.append("\\pard\\qc\\b\\fs32 " + _rtf_escape(block[1]) + "\\b0\\fs24\\par")
        elif kind == "h":
            parts.append("\\pard\\b " + _rtf_escape(block[1]) + "\\b0\\par")
        elif kind == "p":
            parts.append("\\pard\\fi480 " + _rtf_escape(block[1]) + "\\par")
        elif kind == "sign":
            parts.append("\\pard\\qr " + _rtf_escape(block[1]) + "\\par")
        elif kind == "table":
            header, rows = block[1], block[2]
            parts.append("\\pard " + _rtf_escape("\t".join(header)) + "\\par")
            for r in rows:
                parts.append("\\pard " + _rtf_escape("\t".join(r)) + "\\par")
        else:
            raise ValueError(kind)
    parts.append("}")
    return "\r\n".join(parts).encode("ascii")


# -- other attachments -------------------------------------------------------------


def fake_xls(label: str) -> bytes:
    """Bytes with the OLE2 compound-file magic (what a legacy .xls starts with)."""
    header = bytes.fromhex("D0CF11E0A1B11AE1") + b"\x00" * 16 + b"\x3e\x00\x03\x00\xfe\xff\x09\x00"
    payload = label.encode("utf-16-le")
    blob = header + b"\x00" * (512 - len(header)) + payload
    return blob + b"\x00" * (1024 - len(blob) % 1024)


def zip_bytes(files: tuple[tuple[str, bytes], ...]) -> bytes:
    """A zip archive with fixed timestamps."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in files:
            zi = zipfile.ZipInfo(name, date_time=_FIXED_ZIP_TIME)
            zi.compress_type = zipfile.ZIP_DEFLATED
            z.writestr(zi, data)
    return out.getvalue()


GIF_BYTES = (
    b"GIF89a\x01\x00\x01\x00\x80\x00\x00\xff\xff\xff\x00\x00\x00!\xf9\x04\x01\x00\x00\x00\x00"
    b",\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;"
)
