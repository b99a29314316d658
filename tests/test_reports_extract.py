"""Text extraction from every format, bad files recorded not raised.

Fixtures are generated here: PDFs with reportlab (STSong-Light, a CID font pdfminer can
map back to Unicode), encrypted PDFs with pypdf, DOCX with python-docx, RTF and a
Word-binary-like OLE file by hand.
"""

from __future__ import annotations

import io
import random
from pathlib import Path
from types import SimpleNamespace

import docx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pypdf import PdfReader, PdfWriter
from reportlab.lib import colors
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.cidfonts import UnicodeCIDFont
from reportlab.pdfgen import canvas
from reportlab.platypus import Paragraph, SimpleDocTemplate, Table, TableStyle

from archive.reports import extract
from archive.reports.checklist import CHECKLIST, parse_checklist_table
from archive.reports.extract import detect_format, extract_text, row_order
from archive.reports.ingest import ingest_report

SEEDS = Path(__file__).parent / "fixtures" / "reports" / "seeds"
pdfmetrics.registerFont(UnicodeCIDFont("STSong-Light"))


def seed(name: str) -> str:
    return (SEEDS / f"{name}.txt").read_text(encoding="utf-8")


def make_pdf(lines: list[str], per_page: int = 45) -> bytes:
    buf = io.BytesIO()
    c = canvas.Canvas(buf)
    for start in range(0, max(len(lines), 1), per_page):
        c.setFont("STSong-Light", 11)
        y = 800
        for line in lines[start:start + per_page]:
            c.drawString(40, y, line)
            y -= 17
        c.showPage()
    c.save()
    return buf.getvalue()


def encrypt(pdf: bytes, user: str, algorithm: str = "RC4-128") -> bytes:
    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(pdf)))
    writer.encrypt(user_password=user, owner_password="owner-secret", algorithm=algorithm)
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def make_docx(paragraphs: list[str], table: list[list[str]] | None = None,
              after: list[str] = ()) -> bytes:
    document = docx.Document()
    for p in paragraphs:
        document.add_paragraph(p)
    if table:
        t = document.add_table(rows=len(table), cols=len(table[0]))
        for r, row in enumerate(table):
            for c, value in enumerate(row):
                t.cell(r, c).text = value
    for p in after:
        document.add_paragraph(p)
    out = io.BytesIO()
    document.save(out)
    return out.getvalue()


def rtf_escape(text: str, codepage: str = "gbk", unicode: bool = False) -> bytes:
    out = []
    for ch in text:
        if ch == "\n":
            out.append("\\par\n")
        elif ord(ch) < 128:
            out.append({"\\": "\\\\", "{": "\\{", "}": "\\}"}.get(ch, ch))
        elif unicode:
            code = ord(ch)
            out.append(f"\\u{code if code < 32768 else code - 65536}?")
        else:
            out.append("".join(f"\\'{b:02x}" for b in ch.encode(codepage)))
    return "".join(out).encode("ascii")


def make_rtf(text: str, unicode: bool = False, cpg: int = 936) -> bytes:
    return (b"{\\rtf1\\ansi\\ansicpg" + str(cpg).encode() + b"\\deff0{\\fonttbl{\\f0\\fnil\\fcharset134 "
            + rtf_escape("宋体") + b";}}{\\*\\generator Riched20;}{\\info{\\title x}}\\uc1\\f0 "
            + rtf_escape(text, unicode=unicode) + b"}")


# ------------------------------------------------------------------------------- PDF

def test_pdf_report_ingests_like_its_text(db):
    pdf = make_pdf(seed("hrbeu_2020-2021").split("\n"))
    result = extract_text(pdf, "report.pdf")
    assert result.error is None and result.format == "pdf"
    assert "本年度学校未收到信息公开申请" in "".join(result.text.split())
    rid = ingest_report(db, "hrbeu", pdf, filename="report.pdf", content_type="application/pdf")
    row = db["reports"].get(rid)
    assert (row["format"], row["error"], row["academic_year"]) == ("pdf", None, "2020-2021")
    assert (row["period_start"], row["period_end"]) == ("2020-09-01", "2021-08-31")
    facts = dict(db.execute("SELECT fact, value FROM report_facts WHERE report_id=?", [rid]))
    assert facts["applications_received"] == 0 and facts["lawsuits"] == 0


def test_pdf_with_signature_is_late():
    lines = ["某学院2024年信息公开年度报告", "本年度报告统计数据的时间为2023年9月1日至2024年8月31日。",
             "一、概述", "学校高度重视信息公开工作。", "二、主动公开情况", "学校信息公开网发布信息 88 条。",
             "某学院", "2024 年 11 月 1 日"]
    result = extract_text(make_pdf(lines), "a.pdf")
    from archive.reports.facts import extract_facts
    facts = extract_facts(result.text)
    assert (facts.academic_year, facts.signed_date, facts.timeliness) == \
        ("2023-2024", "2024-11-01", "late")


def test_encrypted_pdf_needing_a_password(db):
    pdf = encrypt(make_pdf(["信息公开年度报告"]), user="secret")
    result = extract_text(pdf, "a.pdf")
    assert result.format == "pdf"
    assert result.error.startswith("encrypted PDF")
    rid = ingest_report(db, "s", pdf, filename="a.pdf")
    row = db["reports"].get(rid)
    assert row["error"].startswith("encrypted PDF")
    assert row["text"] is None and row["timeliness"] == "unknown"
    assert db["blobs"].count == 1  # the bytes are kept for a later retry


@pytest.mark.parametrize("algorithm", ["RC4-128", "AES-128"])
def test_pdf_with_owner_password_only_is_readable(algorithm):
    pdf = encrypt(make_pdf(["哈尔滨工程大学", "2020-2021 年度信息公开工作报告"]), user="",
                  algorithm=algorithm)
    result = extract_text(pdf, "a.pdf")
    assert result.error is None
    assert "信息公开工作报告" in result.text


@pytest.mark.parametrize("data", [
    b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\n%%EOF",
    b"%PDF-1.7\n" + bytes(range(256)) * 8,
    b"%PDF-",
], ids=["no-pages", "binary-junk", "header-only"])
def test_corrupt_pdf(db, data):
    result = extract_text(data, "a.pdf")
    assert result.format == "pdf"
    assert result.error.startswith("corrupt PDF")
    rid = ingest_report(db, "s", data, filename="a.pdf")
    assert db["reports"].get(rid)["error"].startswith("corrupt PDF")


def test_truncated_pdf():
    pdf = make_pdf(["信息公开年度报告"] * 100)
    result = extract_text(pdf[: len(pdf) // 2], "a.pdf")
    assert result.error is not None and "PDF" in result.error


def test_pdf_page_cap(monkeypatch):
    monkeypatch.setattr(extract, "MAX_PDF_PAGES", 2)
    result = extract_text(make_pdf([f"第{n}页 信息公开" for n in range(5)], per_page=1), "a.pdf")
    assert result.truncated
    assert "第1页" in result.text and "第4页" not in result.text


def test_pdf_behind_a_wrong_name_is_still_a_pdf():
    pdf = make_pdf(["信息公开年度报告"])
    assert detect_format(pdf, "download.jsp", "application/octet-stream") == "pdf"
    assert detect_format(b"junk\n" + pdf, None, None) == "pdf"


def make_table_pdf(paragraphs: list[str], rows: list[list[str]], widths: list[float],
                   valign: str = "MIDDLE") -> bytes:
    """A page of paragraphs and a ruled table, as a word processor lays them out."""
    body = ParagraphStyle("body", fontName="STSong-Light", fontSize=12, leading=20, wordWrap="CJK")
    cell = ParagraphStyle("cell", fontName="STSong-Light", fontSize=9, leading=12, wordWrap="CJK")
    table = Table([[Paragraph(c, cell) for c in row] for row in rows], colWidths=widths)
    table.setStyle(TableStyle([("GRID", (0, 0), (-1, -1), 0.5, colors.black),
                               ("VALIGN", (0, 0), (-1, -1), valign)]))
    buf = io.BytesIO()
    SimpleDocTemplate(buf, pagesize=A4).build([Paragraph(p, body) for p in paragraphs] + [table])
    return buf.getvalue()


@pytest.mark.parametrize("valign", ["MIDDLE", "TOP", "BOTTOM"])
def test_pdf_table_is_read_row_by_row(valign):
    """pdfminer makes one box of rows 2..6's titles and one of their URLs (variants/wust.pdf):
    the text must still give each title its URL, and the 清单 its 14 rows."""
    items = CHECKLIST[:14]
    rows = [["序号", "类别", "公开事项", "网址"]]
    for item in items:
        first = item.number == 1 or CHECKLIST[item.number - 2].category_number != item.category_number
        rows.append([str(item.category_number) if first else "", item.category if first else "",
                     f"({item.number}) {item.title}",
                     f"http://xxgk.example.edu.cn/{1000 + item.number}/list.htm"])
    pdf = make_table_pdf(["附件", "学校清单事项公开情况表"], rows, [30, 70, 230, 150], valign)
    text = extract_text(pdf, "a.pdf").text
    compact = "".join(text.split())
    for item in items:  # a title, then its URL, then the next title
        start = compact.index(f"({item.number})")
        end = compact.find(f"({item.number + 1})") if item.number < len(items) else len(compact)
        assert start < compact.index(f"/{1000 + item.number}/", start) < end
    assert {r.item_number: r.url for r in parse_checklist_table(text)} == \
        {i.number: f"http://xxgk.example.edu.cn/{1000 + i.number}/list.htm" for i in items}


def _box(x0: float, y0: float, x1: float, y1: float, name: str) -> SimpleNamespace:
    return SimpleNamespace(x0=x0, y0=y0, x1=x1, y1=y1, name=name)


def test_row_order():
    boxes = [
        _box(40, 700, 550, 760, "paragraph"),
        _box(250, 680, 350, 692, "centred heading"),  # close above the table: its own band
        # row 1: a tall title, a one-line URL centred beside it, a category cell
        _box(100, 620, 330, 660, "title 1"), _box(340, 634, 500, 646, "url 1"),
        _box(40, 634, 90, 646, "category"),
        # rows 2 and 3: one box for both titles, one for both URLs (pdfminer's grouping)
        _box(100, 570, 330, 610, "titles 2-3"), _box(340, 570, 500, 610, "urls 2-3"),
        _box(100, 520, 330, 532, "title 4"), _box(340, 520, 500, 532, "url 4a"),
        _box(340, 506, 500, 518, "url 4b"),  # a second URL in the same cell, below the first
        _box(40, 400, 550, 500, "paragraph after"),
    ]
    assert [b.name for b in row_order(list(reversed(boxes)))] == [
        "paragraph", "centred heading", "category", "title 1", "url 1", "titles 2-3", "urls 2-3",
        "title 4", "url 4a", "url 4b", "paragraph after"]
    assert row_order([]) == []


# ------------------------------------------------------------------------------ DOCX

def test_docx_paragraphs_and_table_in_document_order(db):
    text = seed("wust_2020-2021")
    body, table_text = text.split("序号\t类别\t公开事项\t网 址")
    table = [["序号", "类别", "公开事项", "网 址"]]
    for line in table_text.strip("\n").split("\n"):
        if line.strip():
            cells = [*line.split("\t"), "", "", "", ""][:4]
            table.append(cells)
    data = make_docx([p for p in body.split("\n") if p.strip()], table, after=["（完）"])
    result = extract_text(data, "report.docx")
    assert result.error is None and result.format == "docx"
    assert result.text.index("武汉科技大学 2020-2021") < result.text.index("(36) 学籍管理办法")
    assert result.text.index("(36) 学籍管理办法") < result.text.index("（完）")
    assert "1\t基本信息 (6项)\t(1)办学规模" in result.text
    rows = parse_checklist_table(result.text)
    assert len({r.item_number for r in rows}) == 50
    rid = ingest_report(db, "wust", data, filename="report.docx")
    row = db["reports"].get(rid)
    assert (row["format"], row["signed_date"], row["timeliness"]) == ("docx", "2021-10-10", "on_time")
    assert db.execute("SELECT COUNT(DISTINCT item_number) FROM report_items WHERE report_id=?",
                      [rid]).fetchone() == (50,)


def test_corrupt_docx():
    data = make_docx(["信息公开"])
    result = extract_text(data[:200], "a.docx")
    assert result.format == "docx" and result.error
    result = extract_text(b"PK\x03\x04" + b"\x00" * 100, "a.docx")
    assert result.error


def test_zip_that_is_not_a_document():
    buf = io.BytesIO()
    import zipfile
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("a.txt", "信息公开")
    result = extract_text(buf.getvalue(), "a.zip")
    assert result.format == "zip" and result.error.startswith("unsupported")


# ------------------------------------------------------------------------------- RTF

@pytest.mark.parametrize("unicode", [False, True], ids=["gbk-hex", "unicode-escapes"])
def test_rtf_served_as_doc(db, unicode):
    text = seed("qqhrtc_2021-2022")
    data = make_rtf(text, unicode=unicode)
    assert data.startswith(b"{\\rtf1")
    result = extract_text(data, "报告.doc", "application/msword")
    assert result.format == "rtf" and result.error is None
    assert "".join(result.text.split()) == "".join(text.split())
    assert "宋体" not in result.text and "Riched20" not in result.text  # font table, generator
    rid = ingest_report(db, "qq", data, filename="报告.doc")
    row = db["reports"].get(rid)
    assert (row["format"], row["signed_date"], row["timeliness"]) == ("rtf", "2022-10-25", "on_time")


def test_rtf_details():
    data = (b"{\\rtf1\\ansi\\ansicpg936{\\*\\panose 0}{\\fonttbl{\\f0 x;}}"
            b"\\'d0\\'c5\\'cf\\'a2\\tab a\\{b\\}\\par\\uc0\\u20844\\u24320 "
            b"{\\field{\\*\\fldinst HYPERLINK \"http://x\"}{\\fldrslt link}}\\cell\\row}")
    result = extract_text(data, "a.rtf")
    assert result.text == "信息\ta{b}\n公开link\t\n"  # the space ends the control word


# ------------------------------------------------------------------------------- DOC

def ole(payload: bytes) -> bytes:
    return b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 504 + "Root Entry".encode("utf-16-le") \
        + b"\x00" * 60 + "WordDocument".encode("utf-16-le") + b"\x00" * 1500 + payload \
        + b"\x00" * 512


def test_word_binary_text_is_recovered():
    body = "武汉科技大学2020-2021学年度信息公开工作报告\r一、概述\r学校收到信息公开申请2次。\r" \
           "序号\x07公开事项\x07\x07\r武汉科技大学\r2021年10月10日\r"
    result = extract_text(ole(body.encode("utf-16-le")), "a.doc")
    assert result.format == "doc" and result.error is None
    assert "学校收到信息公开申请2次。" in result.text
    assert "序号\t公开事项" in result.text
    assert "WordDocument" not in result.text and "Root Entry" not in result.text


def test_word_binary_without_text():
    result = extract_text(ole(random.Random(3).randbytes(4096)), "a.doc")
    assert result.format == "doc"
    assert result.error.startswith("no text")


def test_encrypted_office_file():
    data = ole("EncryptedPackage".encode("utf-16-le") + b"\x00" * 64)
    assert extract_text(data, "a.docx").error == "encrypted document"


def test_empty_doc(db):
    result = extract_text(b"", "empty.doc")
    assert (result.format, result.error) == ("doc", "empty document")
    rid = ingest_report(db, "s", b"", filename="empty.doc")
    row = db["reports"].get(rid)
    assert (row["format"], row["error"]) == ("doc", "empty document")


# ------------------------------------------------------------------------------ HTML

def report_html(text: str, charset: str) -> bytes:
    lines = text.split("\n")
    body = []
    rows = []
    for line in lines:
        if "\t" in line:
            rows.append("<tr>" + "".join(f"<td>{c}</td>" for c in line.split("\t")) + "</tr>")
        elif line.strip():
            body.append(f"<p>{line}</p>")
    html = (f"<!DOCTYPE html><html><head><meta http-equiv='Content-Type' "
            f"content='text/html; charset={charset}'><title>信息公开年度报告</title>"
            "<style>p{color:red}</style><script>var s='不予公开 999 件';</script></head>"
            "<body><div class='nav'>首页 &gt; 信息公开</div>" + "".join(body)
            + "<table border=1>" + "".join(rows) + "</table><!-- 注释 --></body></html>")
    return html.encode("gbk" if charset == "gb2312" else charset)


@pytest.mark.parametrize("charset", ["utf-8", "gb2312"])
def test_html_report(db, charset):
    data = report_html(seed("wust_2020-2021"), charset)
    result = extract_text(data, "content.jsp", f"text/html; charset={charset}")
    assert result.format == "html" and result.error is None
    assert result.title == "信息公开年度报告"
    assert "var s" not in result.text and "color:red" not in result.text and "注释" not in result.text
    assert "\t\t(2) 学校章程及制定的各项规章制度\thttp://xxgk.wust.edu.cn/2599/list.htm" in result.text
    rid = ingest_report(db, "wust", data, filename="content.jsp")
    row = db["reports"].get(rid)
    assert (row["format"], row["academic_year"], row["signed_date"]) == \
        ("html", "2020-2021", "2021-10-10")
    facts = dict(db.execute("SELECT fact, value FROM report_facts WHERE report_id=?", [rid]))
    assert "refused" not in facts  # the script's text is not the report's
    assert db.execute("SELECT COUNT(*) FROM site_items WHERE report_id=?", [rid]).fetchone() == (50,)


def test_html_page_title_names_the_report(db):
    nav = "".join(f"<li>栏目{n}</li>" for n in range(60))
    body = seed("hrbeu_2020-2021").split("\n", 4)[4]  # without its own title lines
    data = ("<html><head><title>哈尔滨工程大学2020-2021年度信息公开工作报告-信息公开网</title></head>"
            f"<body><ul>{nav}</ul><div>" + "".join(f"<p>{ln}</p>" for ln in body.split("\n"))
            + "</div></body></html>").encode()
    rid = ingest_report(db, "hrbeu", data, filename="info.jsp")
    row = db["reports"].get(rid)
    assert row["title"] == "哈尔滨工程大学2020-2021年度信息公开工作报告-信息公开网"
    assert (row["academic_year"], row["error"]) == ("2020-2021", None)


def test_file_name_names_the_report(db):
    rid = ingest_report(db, "qq", seed("qqhrtc_2021-2022").encode(),
                        filename="齐齐哈尔高等师范专科学校2021-2022学年信息公开年度报告.txt")
    assert db["reports"].get(rid)["title"] == "齐齐哈尔高等师范专科学校2021-2022学年信息公开年度报告"


def test_html_without_a_report(db):
    data = ("<html><head><title>404</title></head><body><h1>页面不存在</h1>"
            "<p>您访问的页面已删除。</p><a href='/'>返回首页</a></body></html>").encode()
    result = extract_text(data, "report.pdf")  # a PDF link that served an error page
    assert result.format == "html" and result.error is None
    rid = ingest_report(db, "s", data, filename="report.pdf", url="https://a.edu.cn/r.pdf")
    row = db["reports"].get(rid)
    assert row["error"].startswith("not an annual report")
    assert row["academic_year"] is None
    assert db["report_facts"].count == 0 and db["report_items"].count == 0


def test_notice_page_linking_to_the_report_is_not_the_report(db):
    data = ("<html><body><h1>关于公布2020-2021学年信息公开工作年度报告的通知</h1>"
            "<p>现将我校2020-2021学年信息公开工作年度报告予以公布。</p>"
            "<p>附件：2020-2021学年信息公开工作年度报告.pdf</p></body></html>").encode()
    rid = ingest_report(db, "s", data, filename="notice.htm")
    assert db["reports"].get(rid)["error"].startswith("not an annual report")


# ------------------------------------------------------------------------------- TXT

@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "gbk", "gb18030", "utf-16"])
def test_text_encodings(encoding):
    text = seed("zjut_2021-2022") + "𠀀"  # a character only GB18030 (not GBK) can encode
    if encoding == "gbk":
        text = text[:-1]
    result = extract_text(text.encode(encoding), "a.txt")
    assert result.error is None and result.format == "txt"
    assert result.text.lstrip("\ufeff") == text


def test_random_bytes(db):
    data = random.Random(7).randbytes(10_000)
    result = extract_text(data)
    assert result.error and result.text == ""
    rid = ingest_report(db, "s", data)
    assert db["reports"].get(rid)["error"]


def test_too_large(monkeypatch):
    monkeypatch.setattr(extract, "MAX_BYTES", 100)
    result = extract_text(b"%PDF-1.4" + b" " * 200, "a.pdf")
    assert result.error.startswith("file too large")


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.binary(max_size=3000),
       filename=st.sampled_from([None, "a.pdf", "a.doc", "a.docx", "a.htm", "a.txt", "a.rtf"]),
       prefix=st.sampled_from([b"", b"%PDF-1.4\n", b"PK\x03\x04", b"{\\rtf1 ",
                               b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", b"<html><body>", b"\xef\xbb\xbf"]))
def test_extract_never_raises(data, filename, prefix):
    result = extract_text(prefix + data, filename)
    assert isinstance(result.text, str)
    assert result.format in {"pdf", "doc", "docx", "rtf", "html", "txt", "zip", "unknown"}


_PDF = make_pdf(["某大学信息公开年度报告", "一、概述", "二、主动公开情况"])


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(flips=st.lists(st.tuples(st.integers(0, len(_PDF) - 1), st.integers(0, 255)),
                      min_size=1, max_size=20))
def test_damaged_pdf_never_raises(flips):
    data = bytearray(_PDF)
    for pos, value in flips:
        data[pos] = value
    result = extract_text(bytes(data), "a.pdf")
    assert result.format == "pdf"
