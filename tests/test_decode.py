"""Decoding Chinese portal pages, Content-Disposition file names and magic bytes."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crawler.decode import decode_body, filename_from_content_disposition, sniff_kind

FIXTURES = Path(__file__).parent / "fixtures" / "responses"
TEXT = "学校信息公开年度报告：招生、财务、收费、就业质量等信息均已按清单公开。"


def html(charset_meta: str | None = None, text: str = TEXT) -> str:
    meta = f'<meta http-equiv="Content-Type" content="text/html; charset={charset_meta}">' if charset_meta else ""
    return f"<html><head>{meta}<title>信息公开</title></head><body><p>{text}</p></body></html>"


def ct(value: str) -> dict[str, bytes]:
    return {"content-type": value.encode("latin-1")}


# --------------------------------------------------------------------------- bodies

def test_gbk_with_header():
    text, encoding = decode_body(html("gbk").encode("gbk"), ct("text/html; charset=GBK"))
    assert TEXT in text and encoding == "gb18030"


def test_gbk_without_any_declaration():
    """Old JSP sites: no charset header, no meta."""
    text, encoding = decode_body(html().encode("gbk"), ct("text/html"))
    assert TEXT in text and encoding == "gb18030"


def test_gbk_bytes_declared_utf8():
    text, encoding = decode_body(html("utf-8").encode("gbk"), ct("text/html; charset=utf-8"))
    assert TEXT in text and encoding == "gb18030"


def test_utf8_bytes_declared_gb2312():
    """A CMS migrated to UTF-8 that kept its old meta."""
    text, encoding = decode_body(html("gb2312").encode("utf-8"), {})
    assert TEXT in text and encoding == "utf-8"


def test_tomcat_latin1_header_loses_to_the_meta():
    text, encoding = decode_body(html("gb2312").encode("gbk"), ct("text/html;charset=ISO-8859-1"))
    assert TEXT in text and encoding == "gb18030"


def test_tomcat_latin1_header_and_no_meta():
    text, _ = decode_body(html().encode("gbk"), ct("text/html;charset=ISO-8859-1"))
    assert TEXT in text


def test_real_latin1_page_stays_latin1():
    body = "<html><body><p>Café, naïve — déjà vu.</p></body></html>".encode("cp1252")
    text, encoding = decode_body(body, ct("text/html; charset=iso-8859-1"))
    assert "Café, naïve — déjà vu." in text and encoding == "cp1252"


def test_jsp_fixture_in_gbk():
    text, encoding = decode_body((FIXTURES / "jsp_bigclass_gbk.html").read_bytes(), ct("text/html"))
    assert "信息公开年度报告" in text and encoding == "gb18030"


@pytest.mark.parametrize(
    ("bom", "encoding"),
    [(b"\xef\xbb\xbf", "utf-8"), (b"\xff\xfe", "utf-16-le"), (b"\xfe\xff", "utf-16-be")],
)
def test_bom_wins_over_header(bom, encoding):
    body = bom + html("gbk").encode(encoding)
    text, got = decode_body(body, ct("text/html; charset=gbk"))
    assert TEXT in text and got == encoding
    assert not text.startswith("\ufeff")


def test_gb18030_only_characters():
    """𠀀 (U+20000) and 𡃁 exist in GB18030 but not in GBK: still decoded when declared gb2312."""
    text_in = TEXT + "𠀀𡃁"
    text, encoding = decode_body(html("gb2312", text_in).encode("gb18030"), {})
    assert text_in in text and encoding == "gb18030"


def test_one_corrupt_byte_in_utf8_keeps_utf8():
    body = html("utf-8").encode("utf-8")
    cut = body.index("财务".encode())
    body = body[:cut] + b"\xff" + body[cut:]
    text, encoding = decode_body(body, ct("text/html; charset=utf-8"))
    assert encoding == "utf-8" and "财务" in text and "\ufffd" in text


def test_truncated_utf8_tail():
    body = html("utf-8").encode("utf-8")[:-40]
    body = body[: body.rindex("公".encode()) + 1]  # cut inside a character
    text, encoding = decode_body(body, ct("text/html; charset=utf-8"))
    assert encoding == "utf-8" and text.endswith("学校信息\ufffd")


def test_big5_declared():
    body = ('<html><head><meta charset="big5"><title>學校資訊公開</title></head>'
            "<body><p>學校資訊公開網</p></body></html>").encode("big5")
    text, encoding = decode_body(body, {})
    assert "學校資訊公開" in text and encoding.startswith("big5")


def test_empty_and_ascii():
    assert decode_body(b"", {}) == ("", "utf-8")
    assert decode_body(b"<p>hello</p>", ct("text/html; charset=gbk")) == ("<p>hello</p>", "gb18030")


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=2000), st.sampled_from([None, "utf-8", "gbk", "iso-8859-1", "nonsense-charset"]))
def test_always_returns_text(body, charset):
    headers = ct(f"text/html; charset={charset}") if charset else {}
    text, encoding = decode_body(body, headers)
    assert isinstance(text, str) and isinstance(encoding, str)
    "".encode(encoding)  # a real codec name


# --------------------------------------------------------------------------- file names

@pytest.mark.parametrize(
    ("raw", "name"),
    [
        (b"attachment; filename*=UTF-8''%E6%8A%A5%E5%91%8A.pdf; filename=\"report.pdf\"", "报告.pdf"),
        (b"attachment; filename=\"report.pdf\"; filename*=utf-8''%E6%8A%A5%E5%91%8A.pdf", "报告.pdf"),
        (b"attachment; filename*=GBK''%B1%A8%B8%E6.doc", "报告.doc"),
        ('attachment; filename="2021年度报告.doc"'.encode("gbk"), "2021年度报告.doc"),
        ('attachment; filename="2021年度报告.doc"'.encode(), "2021年度报告.doc"),
        ('attachment;filename=2021年度报告.xls'.encode("gbk"), "2021年度报告.xls"),
        (b"attachment; filename=%E4%BF%A1%E6%81%AF%E5%85%AC%E5%BC%80.pdf", "信息公开.pdf"),
        (b"attachment; filename=\"%D0%C5%CF%A2%B9%AB%BF%AA.pdf\"", "信息公开.pdf"),
        (b"attachment; filename=%E4%BF%A1%E6%81%AF+%E5%85%AC%E5%BC%80.pdf", "信息 公开.pdf"),
        (b"attachment; filename=\"a+b.pdf\"", "a+b.pdf"),
        (b"attachment; filename=\"=?UTF-8?B?5L+h5oGv5YWs5byA5oql5ZGKLnBkZg==?=\"", "信息公开报告.pdf"),
        (b"attachment; filename==?gb2312?B?0MXPormrv6o=?=.doc", "信息公开.doc"),
        (b"attachment; filename=\"=?utf-8?Q?=E6=8A=A5=E5=91=8A.pdf?=\"", "报告.pdf"),
        (b"attachment; filename*0*=UTF-8''%E6%8A%A5; filename*1*=%E5%91%8A.pdf", "报告.pdf"),
        (b"attachment; filename=\"C:\\\\Documents\\\\report.pdf\"", "report.pdf"),
        (b"attachment; filename=\"../../etc/passwd\"", "passwd"),
        (b"inline; filename=notice.pdf", "notice.pdf"),
    ],
)
def test_content_disposition(raw, name):
    assert filename_from_content_disposition(raw) == name


def test_content_disposition_absent_or_nameless():
    assert filename_from_content_disposition(None) is None
    assert filename_from_content_disposition(b"") is None
    assert filename_from_content_disposition(b"attachment") is None
    assert filename_from_content_disposition(b'attachment; filename=""') is None


def test_content_disposition_as_latin1_text():
    """A header already decoded as latin-1 (Scrapy headers, Fetch.header) still works."""
    raw = 'attachment; filename="年度报告.pdf"'.encode("gbk").decode("latin-1")
    assert filename_from_content_disposition(raw) == "年度报告.pdf"


#: Common GBK names whose bytes are also valid UTF-8, with that UTF-8 misreading.
GBK_ALSO_UTF8 = [
    ("通知.doc", "\u0368\u05aa.doc"),  # a combining letter + a Hebrew accent
    ("目录.xls", "\u013f\u00bc.xls"),  # Ŀ¼
    ("学院.pdf", "\u0467\u053a.pdf"),  # ѧԺ
    ("实习通知.doc", "\u02b5\u03f0\u0368\u05aa.doc"),
    ("专业目录.pdf", "\u05e8\u04b5\u013f\u00bc.pdf"),
]


def _pct(data: bytes) -> bytes:
    return b"".join(b"%%%02X" % byte if byte > 127 else bytes([byte]) for byte in data)


@pytest.mark.parametrize(("name", "as_utf8"), GBK_ALSO_UTF8)
def test_gbk_bytes_that_are_valid_utf8(name, as_utf8):
    """Raw GBK in ``filename=``, also passed as latin-1 text: read as GBK, not UTF-8 garbage."""
    gbk = name.encode("gbk")
    assert gbk.decode("utf-8") == as_utf8  # the trap is real
    raw = b'attachment; filename="' + gbk + b'"'
    assert filename_from_content_disposition(raw) == name
    assert filename_from_content_disposition(raw.decode("latin-1")) == name
    assert filename_from_content_disposition(b"attachment; filename=" + gbk) == name


@pytest.mark.parametrize(("name", "as_utf8"), GBK_ALSO_UTF8)
def test_percent_encoded_gbk_that_is_valid_utf8(name, as_utf8):
    pct = _pct(name.encode("gbk"))
    assert filename_from_content_disposition(b"attachment; filename=" + pct) == name
    assert filename_from_content_disposition(b'attachment; filename="' + pct + b'"') == name


@pytest.mark.parametrize(("name", "as_utf8"), GBK_ALSO_UTF8)
def test_rfc5987_gbk_under_a_utf8_or_empty_label(name, as_utf8):
    """``filename*=UTF-8''`` (or no charset) over GBK bytes, as some Java servers send."""
    pct = _pct(name.encode("gbk"))
    assert filename_from_content_disposition(b"attachment; filename*=UTF-8''" + pct) == name
    assert filename_from_content_disposition(b"attachment; filename*=''" + pct) == name
    assert filename_from_content_disposition(b"attachment; filename*0*=utf-8''" + pct) == name


@pytest.mark.parametrize(
    "name",
    [
        "信息公开.pdf", "通知.doc", "学院专业目录.pdf", "王堃简历.pdf", "2021年度报告（终稿）.doc",
        "列夫·托尔斯泰.pdf", "①说明.doc", "résumé.pdf", "re\u0301sume\u0301.pdf", "café.doc",
        "naïve.doc", "Łódź.pdf", "Zhāng San.pdf", "O que é.pdf", "Отчет.pdf", "Ελληνικά.pdf",
        "α粒子.pdf", "report.pdf", "a_b (1).pdf",
    ],
)
def test_genuine_utf8_names_stay_utf8(name):
    """UTF-8 names (Chinese, accented Latin, other scripts, ASCII), raw, percent-encoded and
    RFC 5987, even when their bytes also decode as GB18030 (é is C3 A9, 茅 in GBK)."""
    data = name.encode()
    pct = _pct(data).replace(b" ", b"%20")
    for raw in (b'attachment; filename="' + data + b'"', b"attachment; filename=" + pct,
                b"attachment; filename*=UTF-8''" + pct):
        assert filename_from_content_disposition(raw) == name, raw


def test_declared_gbk_still_wins():
    """An explicit GBK label is trusted, as before."""
    pct = _pct("通知.doc".encode("gbk"))
    assert filename_from_content_disposition(b"attachment; filename*=GBK''" + pct) == "通知.doc"
    assert filename_from_content_disposition(b"attachment; filename*=gb2312''" + pct) == "通知.doc"


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=300))
def test_content_disposition_never_raises(raw):
    name = filename_from_content_disposition(b"attachment; filename=" + raw)
    assert name is None or (isinstance(name, str) and "/" not in name)


# --------------------------------------------------------------------------- magic bytes

def _zip(names: list[str]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        for n in names:
            zf.writestr(n, "x")
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("body", "kind"),
    [
        (b"%PDF-1.7\n...", "pdf"),
        (b"\r\n%PDF-1.4\n", "pdf"),
        (_zip(["[Content_Types].xml", "word/document.xml"]), "docx"),
        (_zip(["[Content_Types].xml", "xl/workbook.xml"]), "xlsx"),
        (_zip(["[Content_Types].xml", "ppt/presentation.xml"]), "pptx"),
        (_zip(["OFD.xml", "Doc_0/Document.xml"]), "ofd"),
        (_zip(["a.txt"]), "zip"),
        (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 8, "ole"),
        (b"{\\rtf1\\ansi\\deff0", "rtf"),
        (b"Rar!\x1a\x07\x01\x00", "rar"),
        (b"7z\xbc\xaf\x27\x1c\x00\x04", "7z"),
        (b"\x1f\x8b\x08\x00", "gzip"),
        (b"\x89PNG\r\n\x1a\n\x00", "png"),
        (b"\xff\xd8\xff\xe0\x00\x10JFIF", "jpeg"),
        (b"GIF89a\x01\x00", "gif"),
        (b"<!DOCTYPE html><html>", "html"),
        (b"\xef\xbb\xbf\r\n  <html><head>", "html"),
        (b"<!-- saved from url=(0014)about:internet -->\n<html>", "html"),
        (b'<?xml version="1.0"?><html xmlns="http://www.w3.org/1999/xhtml">', "html"),
        (b'<?xml version="1.0" encoding="UTF-8"?><rss>', "xml"),
        (b"MIME-Version: 1.0\r\nContent-Type: multipart/related", "mht"),
        (b"plain text", None),
        (b"", None),
    ],
)
def test_sniff_kind(body, kind):
    assert sniff_kind(body) == kind
