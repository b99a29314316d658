"""Attachments whose body is not the whole answer, and what a 304 keeps (found by a review).

Each test serves files of its own through the simulated web's proxy (``SimWeb(extra=)``)
and crawls them with ``xxgk crawl``, twice where a recrawl matters: a download cut short
without a Content-Length (chunked, or compressed) was stored as a complete ``ok`` file and
became the base of the next crawl's conditional request; a complete file sent gzipped was
called truncated (its Content-Length counts gzip bytes); a 206's part passed as the file; a
304 lost the file name its first capture had.
"""

from __future__ import annotations

import json
import random

from simweb.content import html_page
from simweb.model import Resource

HOST = "http://xxgk.files-univ.edu.cn"
ROBOTS = Resource(body=b"User-agent: *\nDisallow:\n", content_type="text/plain", validators=False)
OLE = bytes.fromhex("D0CF11E0A1B11AE1") + bytes(range(256)) * 8  # a .doc/.xls header and 2 KB
RAR = b"Rar!\x1a\x07\x00" + random.Random(3).randbytes(3000)  # incompressible: gzip makes it larger
DOC = "application/msword"
NO_RETRY = ("-s", "RETRY_TIMES=0")


def _home(links: list[str]) -> Resource:
    items = "".join(f'<li><a href="{link}">附件{n}</a></li>' for n, link in enumerate(links))
    return Resource(body=html_page("首页", f"<h1>信息公开</h1><p>{'学校信息公开的正文内容。' * 30}</p><ul>{items}</ul>")
                    .encode(), validators=False)


def test_cut_short_downloads_are_truncated_not_ok_and_never_a_recrawls_base(tmp_path, crawl_pages):
    files = {
        "/files/cut.doc": Resource(body=OLE, content_type=DOC, chunked=True, send_bytes=len(OLE) // 2),
        "/files/gzcut.xls": Resource(body=OLE * 20, content_type="application/vnd.ms-excel", gzip=True,
                                     send_bytes=200),
        "/files/part.doc": Resource(status=206, body=OLE[:100], content_type=DOC, validators=False,
                                    headers=[("Content-Range", f"bytes 0-99/{len(OLE)}")]),
        "/files/whole.rar": Resource(body=RAR, content_type="application/octet-stream", gzip=True),
        "/files/whole.doc": Resource(body=OLE, content_type=DOC, chunked=True),
        "/news/cut.htm": Resource(body=html_page("新闻", "<p>" + "正文内容。" * 400 + "</p>").encode(),
                                  chunked=True, send_bytes=1500),
        # The HTTP body is whole (Content-Length matches), the gzip stream in it is cut.
        "/files/zcut.xls": Resource(body=OLE * 20, content_type="application/vnd.ms-excel", gzip=True,
                                    gzip_cut=200),
        "/news/zcut.htm": Resource(body=html_page("通知", "".join(f"<p>第{i}条通知正文。</p>" for i in range(400))).encode(),
                                   gzip=True, gzip_cut=300),
    }
    pages = {f"{HOST}/robots.txt": ROBOTS, f"{HOST}/main.htm": _home(list(files)),
             **{HOST + path: res for path, res in files.items()}}
    conn, log = crawl_pages(pages, f"{HOST}/main.htm", days=2, settings=NO_RETRY)
    verdicts = {url[len(HOST):]: (state, rule) for url, state, rule in conn.execute(
        "SELECT url, state, rule FROM link_checks WHERE crawl_id = 1")}
    assert verdicts["/files/cut.doc"] == ("type_mismatch", "attach-truncated")
    assert verdicts["/files/gzcut.xls"] == ("type_mismatch", "attach-truncated")
    assert verdicts["/files/part.doc"] == ("type_mismatch", "attach-truncated")
    assert verdicts["/files/whole.rar"][0] == "ok"  # 3 KB gzipped to more than 3 KB: not "of N bytes"
    assert verdicts["/files/whole.doc"][0] == "ok"
    assert verdicts["/news/cut.htm"][0] == "ok"  # the page is there; its capture is incomplete
    assert verdicts["/files/zcut.xls"] == ("type_mismatch", "attach-truncated")
    assert verdicts["/news/zcut.htm"][0] == "ok"
    assert "gzip stream ends early" in conn.execute(
        "SELECT error FROM link_checks WHERE crawl_id = 1 AND url = ?", [HOST + "/files/zcut.xls"]).fetchone()[0]
    truncated = {url[len(HOST):]: (flag, size) for url, flag, size in conn.execute(
        "SELECT url, truncated, size FROM snapshots WHERE crawl_id = 1")}
    for path in ("/files/cut.doc", "/files/gzcut.xls", "/files/part.doc", "/news/cut.htm", "/files/zcut.xls",
                 "/news/zcut.htm"):
        assert truncated[path][0] == 1, path
    assert truncated["/files/whole.rar"] == (0, len(RAR))
    assert truncated["/files/whole.doc"] == (0, len(OLE))
    # Day 2: the complete captures were asked for conditionally (304), the cut ones were not.
    day2 = {url[len(HOST):]: status for method, url, status in log[len(log) // 2:] if method == "GET"}
    statuses = {}
    for method, url, status in log:
        if method == "GET" and url.startswith(HOST):
            statuses.setdefault(url[len(HOST):], []).append(status)
    assert statuses["/files/whole.doc"] == [200, 304] and statuses["/files/whole.rar"] == [200, 304]
    assert statuses["/files/cut.doc"] == [200, 200] and statuses["/news/cut.htm"] == [200, 200], day2
    assert statuses["/files/zcut.xls"] == [200, 200] and statuses["/news/zcut.htm"] == [200, 200], day2
    assert conn.execute("SELECT truncated FROM snapshots WHERE crawl_id = 2 AND url = ?",
                        [HOST + "/files/cut.doc"]).fetchone() == (1,)
    # The WARC export says which records hold part of an answer, and only those.
    from warcio.archiveiterator import ArchiveIterator

    from archive.db import open_db
    from archive.warc import export_warc

    export_warc(open_db(tmp_path / "a.db"), tmp_path / "a.warc.gz")
    cut = {}
    with open(tmp_path / "a.warc.gz", "rb") as stream:
        for record in ArchiveIterator(stream):
            if record.rec_type == "response" and record.rec_headers.get_header("WARC-Target-URI").startswith(HOST):
                path = record.rec_headers.get_header("WARC-Target-URI")[len(HOST):]
                cut.setdefault(path, record.rec_headers.get_header("WARC-Truncated"))
    assert {path for path, flag in cut.items() if flag} == {
        "/files/cut.doc", "/files/gzcut.xls", "/files/part.doc", "/news/cut.htm", "/files/zcut.xls",
        "/news/zcut.htm"}
    assert cut["/files/whole.rar"] is None and cut["/files/whole.doc"] is None


def test_a_304_keeps_the_file_name_of_the_capture_it_confirms(crawl_pages):
    """The server names the file on its 200 (GBK Content-Disposition) and, like many, not on
    its 304: day 2's capture is the same file under the same name (the viewer's download and
    the WARC export name it from the capture's headers)."""
    name = "2021年度报告.pdf".encode("gbk")
    pdf = b"%PDF-1.4\n" + b"0" * 2000 + b"\n%%EOF\n"
    pages = {f"{HOST}/robots.txt": ROBOTS, f"{HOST}/main.htm": _home(["/dl/file.jsp?id=2"]),
             f"{HOST}/dl/file.jsp?id=2": Resource(body=pdf, content_type="application/octet-stream",
                                                  headers=[("Content-Disposition", b'attachment; filename="' + name + b'"')],
                                                  headers_on_304=False)}
    conn, log = crawl_pages(pages, f"{HOST}/main.htm", days=2, settings=NO_RETRY)
    assert [s for m, u, s in log if u.endswith("file.jsp?id=2") and m == "GET"] == [200, 304]
    rows = conn.execute("SELECT crawl_id, not_modified, filename, headers FROM snapshots"
                        " WHERE url LIKE '%file.jsp%' ORDER BY id").fetchall()
    assert [(crawl, nm, filename) for crawl, nm, filename, _ in rows] == [
        (1, 0, "2021年度报告.pdf"), (2, 1, "2021年度报告.pdf")]
    assert "content-disposition" in json.loads(rows[1][3])


def test_files_on_other_sites_are_judged_as_files(crawl_pages):
    """A .pdf on the university's main site (outside the portal's domains) answering its
    "page not found" as a 200 page, and a .doc answering a 206 part, were ok: an external
    link's HEAD said 200 and nothing looked further."""
    other = "http://www.main-univ.edu.cn"
    notice = html_page("页面不存在", "<p>对不起，您访问的页面不存在或已被删除！</p>").encode()
    pages = {f"{HOST}/robots.txt": ROBOTS, f"{other}/robots.txt": ROBOTS,
             f"{HOST}/main.htm": _home([f"{other}/files/gone.pdf", f"{other}/files/part.doc",
                                        f"{other}/files/fine.doc", f"{other}/news/page.htm"]),
             f"{other}/files/gone.pdf": Resource(body=notice, validators=False),
             f"{other}/files/part.doc": Resource(status=206, body=OLE[:100], content_type=DOC, validators=False,
                                                 headers=[("Content-Range", f"bytes 0-99/{len(OLE)}")]),
             f"{other}/files/fine.doc": Resource(body=OLE, content_type=DOC, validators=False),
             f"{other}/news/page.htm": Resource(body=html_page("新闻", "<p>" + "正文。" * 100 + "</p>").encode(),
                                                validators=False)}
    conn, log = crawl_pages(pages, f"{HOST}/main.htm", settings=NO_RETRY)
    verdicts = {url[len(other):]: (state, rule, external) for url, state, rule, external in conn.execute(
        "SELECT lc.url, lc.state, lc.rule, l.is_external FROM link_checks lc JOIN links l ON l.url = lc.url"
        " WHERE lc.url LIKE ?", [other + "%"])}
    assert verdicts["/files/gone.pdf"][:2] == ("type_mismatch", "attach-html")
    assert verdicts["/files/part.doc"][:2] == ("type_mismatch", "attach-truncated")
    assert verdicts["/files/fine.doc"][0] == "ok" and verdicts["/news/page.htm"][0] == "ok"
    assert {external for _state, _rule, external in verdicts.values()} == {1}
    methods = {(m, u[len(other):]) for m, u, _ in log if u.startswith(other) and "robots" not in u}
    assert ("GET", "/files/gone.pdf") in methods  # its HEAD said HTML
    assert ("GET", "/news/page.htm") not in methods and ("GET", "/files/fine.doc") not in methods


def test_a_compressed_stream_that_stops_short_is_told_from_a_whole_one():
    """gzip (one or several members), zlib and raw deflate, brotli: cut streams are found;
    whole, plain, corrupt (reported elsewhere) and over-limit bodies are not called cut."""
    import gzip
    import zlib

    import brotli

    from crawler.middlewares import compressed_stream_cut as cut

    data = ("信息公开目录 " * 5000).encode() + bytes(range(256)) * 40
    whole = gzip.compress(data)
    assert not cut(whole, b"gzip") and not cut(whole, b"x-gzip, ")
    assert cut(whole[:len(whole) // 2], b"gzip") and cut(whole[:-4], b"GZIP")
    assert not cut(whole + gzip.compress(b"second member"), b"gzip")
    assert cut(whole + gzip.compress(b"second member")[:12], b"gzip")
    raw = zlib.compressobj(wbits=-zlib.MAX_WBITS)
    raw_whole = raw.compress(data) + raw.flush()
    for stream in (zlib.compress(data), raw_whole):
        assert not cut(stream, b"deflate") and cut(stream[:len(stream) // 3], b"deflate")
    br = brotli.compress(data)
    assert not cut(br, b"br") and cut(br[:len(br) // 2], b"br")
    assert not cut(b"not gzip at all", b"gzip")  # corrupt: net-bad-encoding's business
    assert not cut(whole[:len(whole) // 2], b"")  # not compressed
    assert not cut(whole[:len(whole) // 2], b"gzip", limit=1000)  # past the limit: not judged
