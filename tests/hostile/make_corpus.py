"""The hostile-input corpus: bad HTML, encodings, URLs, file names, report files, registries.

Every case is generated here, deterministically (fixed seeds, no clock), at test time, so
the repository holds a generator of a few hundred inputs rather than megabytes of them.
``tests/test_hostile.py`` runs each case through the parsers it targets.

    python tests/hostile/make_corpus.py OUTDIR    # write every case to disk, to look at them

A :class:`Case` has a ``kind`` (``html``, ``url``, ``disposition``, ``report``,
``registry``), a unique ``name``, the ``data`` and ``meta`` (headers, URL, file name...).
"""

from __future__ import annotations

import bz2
import gzip
import io
import json
import random
import sys
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

BASE = "http://xxgk.example-univ.edu.cn/xxgk/list.htm"


@dataclass(frozen=True)
class Case:
    kind: str
    name: str
    data: bytes | str
    meta: dict = field(default_factory=dict, hash=False, compare=False)


def _html(body: str, head: str = "", charset: str | None = "utf-8") -> str:
    meta = f'<meta charset="{charset}">' if charset else ""
    return f"<!DOCTYPE html><html><head>{meta}<title>信息公开</title>{head}</head><body>{body}</body></html>"


ARTICLE = "学校坚持以公开为常态、不公开为例外，依法依规做好信息公开工作。" * 8
LIST = "".join(f'<li><a href="/info/1021/{1000 + i}.htm">关于公布第{i}批信息的通知</a><span>2022-0{i % 9 + 1}-01</span></li>'
               for i in range(20))


# ------------------------------------------------------------------------------ HTML
def html_cases() -> list[Case]:
    rng = random.Random(20261123)
    utf8 = _html(f"<ul class='list'>{LIST}</ul><p>{ARTICLE}</p>")
    gbk_page = _html(f"<ul>{LIST}</ul><p>{ARTICLE}</p>", charset="gb2312")
    cases: list[tuple[str, bytes, dict]] = []

    def add(name: str, body: bytes | str, **meta: object) -> None:
        cases.append((name, body.encode("utf-8") if isinstance(body, str) else body, meta))

    # Malformed and truncated markup
    for cut in (1, 7, 50, 200, 500, len(utf8.encode()) // 2, len(utf8.encode()) - 3):
        add(f"truncated-at-{cut}", utf8.encode()[:cut])
    for i, piece in enumerate([
        "<", "<<<<<<<<", "<html", "<!--", "<!-- never closed " + ARTICLE, "<![CDATA[" + ARTICLE,
        "<script>" + ARTICLE, "<style>" + ARTICLE, "<title>" + ARTICLE, "<textarea>" + LIST,
        "</div></div></div></body></html>", "<a href='x", '<a href="', "<a href=javascript:alert(1)>x</a>",
        "<table><tr><td>" * 500, "<div>" * 20000 + ARTICLE, "<b><i>" * 3000 + ARTICLE + "</b>" * 10,
        "<ul>" + "<li><a href='/a'>" * 5000, "<?xml version='1.0' encoding='gbk'?><html>" + ARTICLE,
        "<?php echo 1; ?>" + ARTICLE, "<%@ page contentType=\"text/html;charset=GBK\"%>" + ARTICLE,
        "<frameset><frame src='/left.htm'><frame src='/main.htm'></frameset>",
        "<html><head></head></html>", "<body></body>", "\x00\x00\x00<html>\x00", "\x00" * 4096,
        "<svg><script>alert(1)</script></svg>" + ARTICLE, "<math><mi>" * 1000,
        "<meta http-equiv='refresh' content='0;url=javascript:alert(1)'>",
        "<meta http-equiv='refresh' content='0; url=" + "a" * 10000 + "'>",
        "<base href='javascript:alert(1)//'><a href='x'>x</a>", "<base href='http://[::1'>" + LIST,
        "<a href='" + "%" * 3000 + "'>百分号</a>", "<a href='http://" + "a" * 300 + ".com/'>长主机</a>",
        "<a href='http://例子.测试/路径?q=中文'>国际化</a>", "<a href='\\\\server\\share\\file.doc'>UNC</a>",
        "<a href='data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg=='>data</a>",
        "<a href='file:///etc/passwd'>文件</a><a href='mailto:a@b.cn'>邮件</a><a href='tel:123'>电话</a>",
        "<a href='//'>空主机</a><a href='http://'>无主机</a><a href='http://:80/'>端口</a><a href='http://a:99999/'>x</a>",
        "<iframe src='javascript:alert(1)'></iframe><iframe srcdoc='<script>alert(1)</script>'></iframe>",
        "<script>window.location.href='/next.htm';</script>", "<script>document.write('" + LIST + "')</script>",
        "<body onload=\"location.replace('/x')\"></body>", "<div id='app'></div><script src='/app.js'></script>" * 3,
        "<noscript>" + LIST + "</noscript>", "<template>" + LIST + "</template>",
        "&" * 5000 + "&#x" + "f" * 100 + ";&#99999999999;&#0;&#xD800;", "&nbsp;" * 50000,
        "<p title='" + "'" * 2000 + "'>引号</p>", "<p " + "a=1 " * 20000 + ">属性</p>",
        "\u202e\u2066" + ARTICLE + "\ufeff\u200b", "<p>" + "\U0001F600" * 3000 + "</p>",
        "页面不存在" * 3, "<title>404</title>" + ARTICLE, "<title>" + "验证码" * 1000 + "</title>",
    ]):
        add(f"markup-{i:02d}", _html(piece, charset=None))
    # Sizes: huge pages, a huge line, many links, deep nesting
    add("huge-page-6mb", _html("<p>" + ARTICLE * 4000 + "</p>"))
    add("huge-single-line-4mb", _html("x" * 4_000_000, charset=None))
    add("many-links-30k", _html("<ul>" + "".join(f"<li><a href='/info/{i}.htm'>条目{i}</a></li>"
                                                 for i in range(30000)) + "</ul>"))
    add("deep-nesting-100k", "<div>" * 100_000 + ARTICLE)
    add("wide-table", _html("<table>" + "<tr>" + "<td>格</td>" * 5000 + "</tr>" * 40 + "</table>"))
    add("empty", b"")
    add("whitespace", b" \r\n\t" * 1000)
    add("one-byte", b"<")
    for i in range(8):
        add(f"random-bytes-{i}", rng.randbytes(rng.choice([16, 700, 5000, 70000])))
    add("pdf-as-html", b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj<<>>endobj\n" + rng.randbytes(3000))
    add("gzip-as-html", gzip.compress(utf8.encode() * 100, mtime=0))
    add("zip-as-html", _zip({"word/document.xml": b"<w:document/>"}))
    # Encodings
    add("gbk-declared-utf8", gbk_page.replace("gb2312", "utf-8").encode("gbk"),
        headers={"content-type": b"text/html; charset=utf-8"})
    add("utf8-declared-gbk", gbk_page.encode("utf-8"), headers={"content-type": b"text/html; charset=gbk"})
    add("gb18030-4byte", _html("𠀀𪚥〇㐀" * 200 + ARTICLE, charset="gb18030").encode("gb18030"))
    add("gb18030-declared-gb2312", _html("€" + "𠀀" * 50 + ARTICLE, charset="gb2312").encode("gb18030"))
    add("big5", _html("學校資訊公開" * 100, charset="big5").encode("big5", "xmlcharrefreplace"))
    add("utf8-bom-meta-gbk", b"\xef\xbb\xbf" + gbk_page.encode("utf-8"))
    add("utf16le-bom", b"\xff\xfe" + utf8.encode("utf-16-le"))
    add("utf16be-bom", b"\xfe\xff" + utf8.encode("utf-16-be"))
    add("utf16-no-bom", utf8.encode("utf-16-le"))
    add("utf32-bom", utf8.encode("utf-32"))
    add("gb18030-bom", b"\x84\x31\x95\x33" + gbk_page.encode("gb18030"))
    add("bom-only", b"\xef\xbb\xbf")
    add("double-bom", b"\xef\xbb\xbf\xef\xbb\xbf" + utf8.encode())
    add("utf8-invalid-bytes", utf8.encode().replace("公".encode(), b"\xff\xfe\x80"))
    add("utf8-cut-in-char", utf8.encode()[:-2] + "公".encode()[:2])
    add("mixed-utf8-gbk", utf8.encode()[:400] + gbk_page.encode("gbk")[400:])
    add("overlong-utf8", b"<html><body>\xc0\xaf\xe0\x80\xaf\xf8\x88\x80\x80\x80" * 100 + b"</body></html>")
    add("surrogates-utf8", b"<html><body>\xed\xa0\x80\xed\xbf\xbf" * 200 + b"</body></html>")
    add("utf7-declared", _html("+ADw-script+AD4-alert(1)+ADw-/script+AD4-", charset="utf-7").encode(),
        headers={"content-type": b"text/html; charset=utf-7"})
    add("unknown-charset", _html(ARTICLE, charset="x-no-such-charset").encode(),
        headers={"content-type": b"text/html; charset=\"x-\x00evil\""})
    add("replacement-charset", _html(ARTICLE, charset="replacement").encode())
    add("ebcdic-declared", _html(ARTICLE, charset="cp037").encode("utf-8"),
        headers={"content-type": b"text/html; charset=cp037"})
    add("huge-charset-label", _html(ARTICLE, charset="u" * 5000).encode())
    add("latin1-header-gbk-body", gbk_page.encode("gbk"), headers={"content-type": b"text/html; charset=ISO-8859-1"})
    add("header-nonascii-bytes", utf8.encode(), headers={"content-type": b"text/html; charset=\xe4\xb8\xad\xff"})
    add("shift-jis", _html("日本語のページです" * 100, charset="shift_jis").encode("shift_jis", "xmlcharrefreplace"))
    add("gbk-random-tail", gbk_page.encode("gbk") + rng.randbytes(2000))
    return [Case("html", name, body, {"url": BASE, **meta}) for name, body, meta in cases]


def _zip(members: dict[str, bytes], compression: int = zipfile.ZIP_DEFLATED) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression) as zf:
        for name, data in members.items():
            zf.writestr(zipfile.ZipInfo(name, date_time=(2022, 10, 31, 0, 0, 0)), data, compression)
    return buffer.getvalue()


# ------------------------------------------------------------------------------ URLs
def url_cases() -> list[Case]:
    urls = [
        "javascript:alert(1)", " JaVaScRiPt:alert(1)", "java\tscript:alert(1)", "javascript&#58;alert(1)",
        "data:text/html,<script>alert(1)</script>", "data:,", "file:///etc/passwd", "file://server/share",
        "mailto:xxgk@example.edu.cn", "tel:+86-10-12345678", "ftp://ftp.example.edu.cn/pub/",
        "vbscript:msgbox", "about:blank", "chrome://settings", "view-source:http://a.cn/", "blob:http://a.cn/x",
        "http://例子.测试/", "http://xn--fsqu00a.xn--0zwm56d/", "http://ÉXAMPLE.com/", "http://xn--/",
        "http://xn--a.com/", "http://a..b.cn/", "http://.cn/", "http://-a-.cn/", "http://a_b.cn/",
        "http://" + "a" * 64 + ".cn/", "http://" + ("a" * 60 + ".") * 5 + "cn/", "http://a.cn/" + "x" * 5000,
        "http://a.cn/?" + "q=1&" * 2000, "http://a.cn/%", "http://a.cn/%%%", "http://a.cn/%zz%1",
        "http://a.cn/%E4%B8", "http://a.cn/?q=%D6%D0%CE%C4", "http://a.cn/%00/%0d%0a", "http://a.cn/\x00/",
        "http://a.cn/\r\nSet-Cookie: x=1", "http://a.cn/ 空 格/", "http://a.cn/中文/路径.htm?名=值#锚",
        "http://[::1]/", "http://[::1", "http://[fe80::1%25eth0]/", "http://[zz::1]/", "http://1.2.3.4.5/",
        "http://2130706433/", "http://0x7f.1/", "http://a.cn:0/", "http://a.cn:65536/", "http://a.cn:-1/",
        "http://a.cn:80:80/", "http://user:pass@a.cn/", "http://@a.cn/", "http://a.cn@b.cn/", "http:a.cn",
        "http:/a.cn", "http:///a.cn", "//a.cn/x", "///x", "\\\\a.cn\\x", "..\\..\\info\\1.htm",
        "../../../../../../etc/passwd", "./././a", "?", "#", "#top", "", " ", "\u3000", "\ufeff/x",
        "http://a.cn/a/../../../../b", "http://a.cn/;jsessionid=ABC?x=1", "HTTP://A.CN:80/X",
        "https://a.cn:443/", "http://a.cn/?utm_source=x&spm=1&a=1", "http://a.cn/" + "%41" * 3000,
        "http://a.cn/\u202eexe.pdf", "http://a.cn/\ud800", "http://a.cn/?x=\udfff",
        "http://" + "中" * 100 + ".cn/", "http://a.cn/" + "../" * 2000, "http://a.cn/" + "a/" * 3000,
    ]
    return [Case("url", f"url-{i:03d}", url, {"base": BASE}) for i, url in enumerate(urls)]


# ------------------------------------------------------------------------------ file names
def disposition_cases() -> list[Case]:
    values: list[bytes] = [
        b"attachment; filename=../../etc/passwd", b'attachment; filename="..\\..\\boot.ini"',
        b"attachment; filename=\"a\x00b.pdf\"", b"attachment; filename*=UTF-8''%E4%B8%AD%E6%96%87.pdf",
        b"attachment; filename*=UTF-8''%E4%B8", b"attachment; filename*=GBK''%D6%D0%CE%C4.doc",
        b"attachment; filename*=x-unknown''abc.pdf", b"attachment; filename*=''", b"attachment; filename*=",
        b"attachment; filename=", b"attachment; filename", b"attachment;;;;", b";", b"=", b'"', b"'''",
        "attachment; filename=中文.pdf".encode("gbk"), "attachment; filename=中文.pdf".encode(),
        b"attachment; filename=%D6%D0%CE%C4.pdf", b"attachment; filename=%E4%B8%AD+%E6%96%87.pdf",
        b"attachment; filename==?UTF-8?B?5Lit5paH?=.pdf", b"attachment; filename==?GBK?Q?=D6=D0?=",
        b"attachment; filename==?x?B?@@@?=", b'attachment; filename="' + b"a" * 100_000 + b'.pdf"',
        b"attachment; " + b"filename*0=a; " * 2000, b"attachment; filename*0*=UTF-8''%E4; filename*2=x",
        b"attachment; filename*99999999999999999999=a", b'attachment; filename="unterminated.pdf',
        b"attachment; filename=\"\\\"quoted\\\".pdf\"", b"attachment; filename=a.pdf; filename*=UTF-8''b.pdf",
        b"\xff\xfe\x00a\x00t", b"inline; name=\"\xd6\xd0.doc\"", b"attachment; filename=\r\nX-Evil: 1",
    ]
    return [Case("disposition", f"cd-{i:02d}", value) for i, value in enumerate(values)]


# ------------------------------------------------------------------------------ report files
REPORT_TEXT = ("XX大学2021-2022学年信息公开工作年度报告\n一、概述\n" + ARTICLE +
               "\n二、主动公开情况\n本学年主动公开信息1234条。\n三、依申请公开情况\n收到申请12件。\n"
               "四、对信息公开的评议情况\n五、因信息公开工作受到举报的情况\n六、信息公开工作存在的主要问题及改进情况\n"
               "七、其他需要报告的事项\nXX大学\n2022年10月31日\n")


def _pdf_bytes(text: str = "Annual report 2021-2022 information disclosure") -> bytes:
    from reportlab.pdfgen import canvas

    buffer = io.BytesIO()
    pdf = canvas.Canvas(buffer, invariant=1)
    for line_no, line in enumerate(text.splitlines()[:40]):
        pdf.drawString(72, 760 - 14 * line_no, line)
    pdf.save()
    return buffer.getvalue()


def _encrypted_pdf(user_password: str) -> bytes:
    from pypdf import PdfReader, PdfWriter

    writer = PdfWriter()
    for page in PdfReader(io.BytesIO(_pdf_bytes())).pages:
        writer.add_page(page)
    writer.encrypt(user_password=user_password, owner_password="owner-secret", algorithm="AES-128")
    buffer = io.BytesIO()
    writer.write(buffer)
    return buffer.getvalue()


def report_cases() -> list[Case]:
    rng = random.Random(7)
    pdf = _pdf_bytes()
    docx_xml = ('<?xml version="1.0"?><w:document xmlns:w="http://schemas.openxmlformats.org/'
                'wordprocessingml/2006/main"><w:body>{}</w:body></w:document>')
    para = "<w:p><w:r><w:t>{}</w:t></w:r></w:p>"
    good_docx_xml = docx_xml.format("".join(para.format(line) for line in REPORT_TEXT.splitlines()))
    laughs = ('<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
              + "".join(f'<!ENTITY lol{i} "{("&lol" + (str(i - 1) if i > 1 else "") + ";") * 10}">' for i in range(1, 10))
              + ']><w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main">'
              '<w:body><w:p><w:r><w:t>&lol9;</w:t></w:r></w:p></w:body></w:document>')
    xxe = ('<?xml version="1.0"?><!DOCTYPE d [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>'
           '<w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main">'
           '<w:body><w:p><w:r><w:t>&xxe;</w:t></w:r></w:p></w:body></w:document>')
    ole = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
    cases: list[tuple[str, bytes, str | None]] = [
        ("empty.pdf", b"", "empty.pdf"), ("one-byte.pdf", b"%", "x.pdf"), ("header-only.pdf", b"%PDF-1.4\n", "x.pdf"),
        ("truncated-half.pdf", pdf[: len(pdf) // 2], "x.pdf"), ("truncated-tail.pdf", pdf[:-30], "x.pdf"),
        ("no-eof.pdf", pdf.replace(b"%%EOF", b""), "x.pdf"), ("bad-xref.pdf", pdf.replace(b"xref", b"xxxx"), "x.pdf"),
        ("random-after-header.pdf", b"%PDF-1.7\n" + rng.randbytes(20000), "x.pdf"),
        ("encrypted-user-password.pdf", _encrypted_pdf("secret"), "x.pdf"),
        ("encrypted-owner-only.pdf", _encrypted_pdf(""), "x.pdf"),
        ("self-referencing.pdf", b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 1 0 R/Kids[1 0 R]>>endobj\n"
                                 b"trailer<</Root 1 0 R>>\n%%EOF", "x.pdf"),
        ("deep-arrays.pdf", b"%PDF-1.4\n1 0 obj" + b"[" * 100000 + b"\n%%EOF", "x.pdf"),
        ("huge-length-stream.pdf", b"%PDF-1.4\n1 0 obj<</Length 999999999999>>stream\nabc\nendstream endobj\n"
                                   b"trailer<</Root 1 0 R>>\n%%EOF", "x.pdf"),
        ("flate-bomb.pdf", b"%PDF-1.4\n1 0 obj<</Filter/FlateDecode/Length 0>>stream\n"
                           + __import__("zlib").compress(b"\x00" * 50_000_000, 9) + b"\nendstream endobj\n%%EOF", "x.pdf"),
        ("html-error-page.pdf", b"<html><head><title>404 Not Found</title></head><body>nginx</body></html>", "x.pdf"),
        ("docx-not-zip.docx", b"PK\x03\x04" + rng.randbytes(3000), "x.docx"),
        ("docx-empty-zip.docx", _zip({}), "x.docx"),
        ("docx-no-document.docx", _zip({"[Content_Types].xml": b"<Types/>", "word/styles.xml": b"<x/>"}), "x.docx"),
        ("docx-bad-xml.docx", _zip({"word/document.xml": b"<w:document><w:body><w:p>unclosed"}), "x.docx"),
        ("docx-binary-xml.docx", _zip({"word/document.xml": rng.randbytes(5000)}), "x.docx"),
        ("docx-billion-laughs.docx", _zip({"word/document.xml": laughs.encode()}), "x.docx"),
        ("docx-xxe.docx", _zip({"word/document.xml": xxe.encode()}), "x.docx"),
        ("docx-zip-bomb.docx", _zip({"word/document.xml": docx_xml.format(" " * 60_000_000).encode()}), "x.docx"),
        ("docx-deep-nesting.docx", _zip({"word/document.xml": docx_xml.format("<w:tbl>" * 50000).encode()}), "x.docx"),
        ("docx-path-traversal.docx", _zip({"../../evil.txt": b"x", "word/document.xml": good_docx_xml.encode()}), "x.docx"),
        ("docx-truncated.docx", _zip({"word/document.xml": good_docx_xml.encode()})[:-40], "x.docx"),
        ("docx-stored-gbk.docx", _zip({"word/document.xml": good_docx_xml.encode("gbk", "replace")},
                                      zipfile.ZIP_STORED), "x.docx"),
        ("doc-ole-header-only.doc", ole, "x.doc"), ("doc-ole-garbage.doc", ole + rng.randbytes(40000), "x.doc"),
        ("doc-ole-utf16-text.doc", ole + b"\x00" * 504 + REPORT_TEXT.encode("utf-16-le") * 3, "x.doc"),
        ("doc-is-pdf.doc", pdf, "x.doc"), ("doc-is-html.doc", f"<html><body>{REPORT_TEXT}</body></html>".encode(), "x.doc"),
        ("rtf-unbalanced.doc", b"{\\rtf1\\ansi{{{{" + REPORT_TEXT.encode("gbk") + b"}", "x.doc"),
        ("rtf-deep.rtf", b"{\\rtf1" + b"{" * 200_000 + b"}" * 10, "x.rtf"),
        ("rtf-bad-controls.rtf", b"{\\rtf1\\ansicpg99999\\u-99999?\\'zz\\bin999999999 x\\uc-5\\u65536 }", "x.rtf"),
        ("rtf-huge-hex.rtf", b"{\\rtf1\\ansicpg936 " + b"\\'d6\\'d0" * 300_000 + b"}", "x.rtf"),
        ("txt-gbk.txt", REPORT_TEXT.encode("gbk"), "x.txt"), ("txt-utf16.txt", REPORT_TEXT.encode("utf-16"), "x.txt"),
        ("txt-binary.txt", rng.randbytes(30000), "x.txt"), ("txt-nul.txt", b"\x00" * 30000, "x.txt"),
        ("txt-mixed.txt", REPORT_TEXT.encode()[:500] + REPORT_TEXT.encode("gbk")[500:], "x.txt"),
        ("txt-too-large.txt", b"a" * (51 * 1024 * 1024), "x.txt"),
        ("txt-long-line.txt", ("年度报告" * 1_000_000).encode(), "x.txt"),
        ("txt-many-numbers.txt", ("收到申请" + "9" * 5000 + "件。") .encode() * 50, "x.txt"),
        ("txt-dates-everywhere.txt", ("2022年13月45日 0000年00月00日 9999年1月1日 " * 2000).encode(), "x.txt"),
        ("txt-checklist-urls.txt", ("清单事项公开情况表\n" + "".join(
            f"{i} 学校基本情况 http://a.cn/{'x' * 3000}\n" for i in range(1, 60))).encode(), "x.txt"),
        ("html-report-scripts.html", _html("<script>alert(1)</script>" + REPORT_TEXT.replace("\n", "<br>")).encode(), "x.html"),
        ("html-truncated.html", _html(REPORT_TEXT).encode()[:300], "x.html"),
        ("unknown-bz2.bin", bz2.compress(REPORT_TEXT.encode()), "x.bin"),
        ("no-filename", REPORT_TEXT.encode(), None), ("weird-filename", REPORT_TEXT.encode(), "../../../etc/passwd"),
        ("name-without-ext", pdf, "report"), ("json.txt", json.dumps({"a": [1] * 1000}).encode(), "x.txt"),
    ]
    return [Case("report", name, data, {"filename": filename}) for name, data, filename in cases]


# ------------------------------------------------------------------------------ registries
def registry_cases() -> list[Case]:
    site = '[[site]]\nid = "wust"\nname = "武汉科技大学"\nportal = "https://xxgk.wust.edu.cn/main.htm"\n'
    texts: list[tuple[str, bytes]] = [
        ("empty", b""), ("not-toml", b"this is [not toml"), ("binary", bytes(range(256)) * 10),
        ("utf16", site.encode("utf-16")), ("gbk", site.encode("gbk")), ("no-sites", b"title = 'x'\n"),
        ("site-is-string", b'site = "wust"\n'), ("site-is-table", b'[site]\nid = "x"\nportal = "http://a.cn/"\n'),
        ("site-list-of-ints", b"site = [1, 2]\n"), ("missing-id", b'[[site]]\nportal = "http://a.cn/"\n'),
        ("bad-id", site.replace('"wust"', '"WUST 大学"', 1).encode()), ("id-int", site.replace('"wust"', "7", 1).encode()),
        ("missing-portal", b'[[site]]\nid = "a"\n'), ("portal-js", site.replace("https://xxgk.wust.edu.cn/main.htm", "javascript:alert(1)").encode()),
        ("portal-file", site.replace("https://xxgk.wust.edu.cn/main.htm", "file:///etc/passwd").encode()),
        ("portal-empty-list", b'[[site]]\nid = "a"\nportal = []\n'), ("portal-int", b'[[site]]\nid = "a"\nportal = 5\n'),
        ("portal-no-host", b'[[site]]\nid = "a"\nportal = "http:///x"\n'),
        ("portal-huge", ('[[site]]\nid = "a"\nportal = "http://a.cn/' + "x" * 100_000 + '"\n').encode()),
        ("unknown-field", (site + 'colour = "red"\n').encode()), ("bad-render", (site + 'render = "sometimes"\n').encode()),
        ("bad-schedule", (site + 'schedule = "every day"\n').encode()), ("schedule-61", (site + 'schedule = "61 * * * *"\n').encode()),
        ("max-pages-negative", (site + "max_pages = -5\n").encode()), ("max-pages-bool", (site + "max_pages = true\n").encode()),
        ("max-pages-float", (site + "max_pages = 1e9\n").encode()), ("bad-kind", (site + 'kind = "研究生"\n').encode()),
        ("allow-private-string", (site + 'allow_private = "yes"\n').encode()),
        ("domains-not-list", (site + 'allowed_domains = "a.cn"\n').encode()),
        ("domains-empty-string", (site + 'allowed_domains = [""]\n').encode()),
        ("items-out-of-range", (site + "applicable_items = [0, 51]\n").encode()),
        ("duplicate-ids", (site + site).encode()), ("duplicate-key", (site + 'id = "again"\n').encode()),
        ("deep-inline-tables", ("x = " + "{a = " * 500 + "1" + "}" * 500 + "\n" + site).encode()),
        ("nul-bytes", site.encode().replace(b"wust", b"wu\x00st", 1)),
        ("portal-bad-ipv6", site.replace("https://xxgk.wust.edu.cn/main.htm", "http://[::1/x").encode()),
        ("portal-port-99999", site.replace("https://xxgk.wust.edu.cn/main.htm", "http://a.cn:99999/").encode()),
        ("max-pages-huge", (site + "max_pages = 100000000000000000000\n").encode()),
        ("items-bool", (site + "applicable_items = [true]\n").encode()),
    ]
    valid = {"portal-huge"}  # a 100 kB portal URL is odd but well-formed: accepted
    return [Case("registry", f"registry-{name}", text, {"valid": name in valid}) for name, text in texts]


def corpus() -> list[Case]:
    """Every case, in a fixed order."""
    return [*html_cases(), *url_cases(), *disposition_cases(), *report_cases(), *registry_cases()]


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: make_corpus.py OUTDIR", file=sys.stderr)
        return 2
    out = Path(argv[0])
    for case in corpus():
        folder = out / case.kind
        folder.mkdir(parents=True, exist_ok=True)
        data = case.data.encode("utf-8", "surrogatepass") if isinstance(case.data, str) else case.data
        (folder / case.name.replace("/", "_")).write_bytes(data)
    print(f"{len(corpus())} cases written to {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
