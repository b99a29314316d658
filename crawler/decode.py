"""Bytes to text for Chinese portals: HTML bodies, Content-Disposition file names, magic bytes.

:func:`decode_body` — the order of evidence
    1. a byte-order mark (UTF-8, UTF-16/32, GB18030) decides;
    2. a body that is *strictly valid UTF-8* and not pure ASCII is UTF-8, whatever was
       declared: GBK text is almost never valid UTF-8 by accident, while UTF-8 pages that
       still declare ``gb2312`` after a CMS migration are common. So is a body that is
       *nearly* valid UTF-8 (at most one bad sequence per 10 good characters: a body cut
       inside a character, one stray byte), decoded with replacement characters;
    3. a declared charset (``Content-Type`` header, then ``<meta charset>`` /
       ``http-equiv``) is used when the body decodes strictly with it. GB2312 and GBK are
       read as GB18030 (a superset). A header of ISO-8859-1/Windows-1252/ASCII is *weak*:
       Tomcat sends it by default for JSPs that never set an encoding, so it only wins after
       GB18030 detection failed;
    4. detection when the declaration fails or is missing: strict GB18030, accepted when
       the Chinese characters it yields are mostly in GB2312 (UTF-8 bytes read as GBK give
       rare characters — a clean tell); then charset-normalizer on the first 64 KiB;
    5. last resort: the candidate (declared, UTF-8, GB18030) with the fewest U+FFFD
       replacement characters, decoded with ``errors="replace"``. Text always comes back.

    The returned encoding is a Python codec name (``utf-8``, ``gb18030``, ``big5``,
    ``cp1252``...).

:func:`filename_from_content_disposition`
    ``filename*=`` (RFC 5987/6266, also RFC 2231 continuations) is preferred; then
    ``filename=`` whose raw bytes may be UTF-8 or GBK, may be percent-encoded UTF-8/GBK
    (Java's ``URLEncoder`` also turns spaces into ``+``), or may be MIME encoded-words
    (``=?UTF-8?B?...?=``). Directory parts are dropped. Bytes valid both as UTF-8 and as
    GB18030 (GBK 通知 is ``CD A8 D6 AA``, UTF-8 for two Hebrew/combining marks), unlabelled
    or labelled UTF-8, are read as GB18030 when the UTF-8 reading is implausible for a
    file name and the GB18030 one is Chinese (:func:`_utf8_or_gb18030`).

:func:`sniff_kind`
    Magic bytes: ``pdf`` (``%PDF-`` within the first KiB), ``docx``/``xlsx``/``pptx``/
    ``ofd``/``odt``.../``zip``, ``ole`` (doc/xls/ppt/wps/et), ``rtf``, ``rar``, ``7z``,
    ``gzip``, ``png``, ``jpeg``, ``gif``, ``bmp``, ``webp``, ``tiff``, ``mht``, ``html``,
    ``xml``; None when unknown.
"""

from __future__ import annotations

import codecs
import re
from collections.abc import Callable
from email.header import decode_header
from urllib.parse import unquote_to_bytes

from w3lib.encoding import html_body_declared_encoding, http_content_type_encoding, resolve_encoding

_BOMS: tuple[tuple[bytes, str], ...] = (
    (b"\xef\xbb\xbf", "utf-8"),
    (b"\xff\xfe\x00\x00", "utf-32-le"),
    (b"\x00\x00\xfe\xff", "utf-32-be"),
    (b"\xff\xfe", "utf-16-le"),
    (b"\xfe\xff", "utf-16-be"),
    (b"\x84\x31\x95\x33", "gb18030"),
)
#: Declared charsets that servers send by default rather than by knowledge.
WEAK_ENCODINGS = frozenset({"cp1252", "latin-1", "iso8859-1", "ascii"})
_GB_FAMILY = frozenset({"gb18030", "gbk", "gb2312"})


def _codec_name(label: str | None) -> str | None:
    """A charset label as a Python codec name; GB2312 and GBK labels read as GB18030.

    As browsers do (WHATWG Encoding): GBK cannot decode GB18030-only characters, rare
    ones in people's names included. Done here rather than left to w3lib, whose
    ``resolve_encoding`` maps these labels to ``gb18030`` up to 2.5 and to ``gbk`` from 2.6.
    """
    if not label:
        return None
    resolved = resolve_encoding(label) or label
    try:
        name = codecs.lookup(resolved).name
    except LookupError:
        return None
    return "gb18030" if name in _GB_FAMILY else name


def _strict(body: bytes, encoding: str) -> str | None:
    try:
        return body.decode(encoding)
    except (UnicodeDecodeError, LookupError):
        return None


def _gb2312_ratio(text: str, sample: int = 3000) -> float:
    """Share of CJK ideographs in ``text`` that GB2312 can encode (1.0 when there are none)."""
    total = hits = 0
    for ch in text:
        if "\u4e00" <= ch <= "\u9fff":
            total += 1
            try:
                ch.encode("gb2312")
                hits += 1
            except UnicodeEncodeError:
                pass
            if total >= sample:
                break
    return hits / total if total else 1.0


def header_value(headers: dict[str, bytes] | None, name: str) -> str:
    """A header from a lower-case-keyed dict of raw values, decoded as latin-1."""
    if not headers:
        return ""
    value = headers.get(name.lower())
    if value is None:
        for key, val in headers.items():
            if key.lower() == name.lower():
                value = val
                break
    if value is None:
        return ""
    if isinstance(value, (list, tuple)):
        value = value[0] if value else b""
    return value.decode("latin-1") if isinstance(value, bytes) else str(value)


def declared_encodings(body: bytes, headers: dict[str, bytes] | None) -> tuple[str | None, str | None]:
    """(header charset, meta charset) as codec names, None where absent or unknown."""
    header = _codec_name(http_content_type_encoding(header_value(headers, "content-type")))
    meta = _codec_name(html_body_declared_encoding(body[:4096]))
    return header, meta


def decode_body(body: bytes, headers: dict[str, bytes] | None = None, url: str = "") -> tuple[str, str]:
    """Decode an HTML body to (text, encoding); see the module docstring for the order."""
    header_enc, meta_enc = declared_encodings(body, headers) if body else (None, None)
    if not body:
        return "", header_enc or meta_enc or "utf-8"
    for bom, encoding in _BOMS:
        if body.startswith(bom):
            return body[len(bom):].decode(encoding, errors="replace"), encoding
    declared = [e for e in (header_enc, meta_enc) if e]
    if body.isascii():
        name = next((e for e in declared if _strict(b"a", e) == "a"), "utf-8")
        return body.decode("ascii"), name
    text = _strict(body, "utf-8")
    if text is not None:
        return text, "utf-8"
    text = body.decode("utf-8", errors="replace")
    for cut in (1, 2, 3):  # a body cut inside its last character
        if len(body) > cut and _strict(body[:-cut], "utf-8") is not None and not body[:-cut].isascii():
            return text, "utf-8"
    errors = text.count("\ufffd")
    valid = sum(1 for ch in text if ord(ch) > 127) - errors
    if valid >= 10 * errors:  # UTF-8 with a stray byte (GBK is never this close)
        return text, "utf-8"
    weak = [e for e in declared if e in WEAK_ENCODINGS]
    strong = [e for e in declared if e not in WEAK_ENCODINGS and e != "utf-8"]
    if header_enc in WEAK_ENCODINGS and meta_enc and meta_enc not in WEAK_ENCODINGS:
        weak = []  # Tomcat's default header, contradicted by the page's own declaration
    for encoding in strong:
        text = _strict(body, "gb18030" if encoding in _GB_FAMILY else encoding)
        if text is not None:
            return text, "gb18030" if encoding in _GB_FAMILY else encoding
    text = _strict(body, "gb18030")
    if text is not None and _gb2312_ratio(text) >= 0.8:
        return text, "gb18030"
    for encoding in weak:
        text = _strict(body, encoding)
        if text is not None:
            return text, encoding
    detected = _detect(body)
    if detected is not None:
        text = _strict(body, detected)
        if text is not None:
            return text, detected
    return _least_damaged(body, [*strong, "utf-8", "gb18030", *weak])


def _detect(body: bytes) -> str | None:
    try:
        from charset_normalizer import from_bytes
    except ImportError:  # pragma: no cover
        return None
    best = from_bytes(body[:65536]).best()
    if best is None:
        return None
    return _codec_name(best.encoding)


def _least_damaged(body: bytes, candidates: list[str]) -> tuple[str, str]:
    best: tuple[int, int, str, str] | None = None
    for order, encoding in enumerate(dict.fromkeys(candidates)):
        try:
            text = body.decode(encoding, errors="replace")
        except LookupError:
            continue
        score = (text.count("\ufffd"), order, text, encoding)
        if best is None or score[:2] < best[:2]:
            best = score
    assert best is not None
    return best[2], best[3]


# --------------------------------------------------------------------------- file names

_PARAM_RE = re.compile(rb"""(?ix) (?:^|;) \s* ([a-z0-9_\-*!#$&+.^`|~]+) \s* = \s*""")
_ENCODED_WORD_RE = re.compile(r"=\?[^?\s]+\?[bBqQ]\?[^?\s]*\?=")
_PCT_RE = re.compile(r"%[0-9A-Fa-f]{2}")


def _split_params(raw: bytes) -> list[tuple[str, bytes]]:
    """(lower-case name, raw value) pairs of a header's parameters; quotes removed."""
    params: list[tuple[str, bytes]] = []
    pos = 0
    while True:
        match = _PARAM_RE.search(raw, pos)
        if not match:
            return params
        name = match.group(1).decode("ascii").lower()
        start = match.end()
        if raw[start:start + 1] == b'"':
            # The closing quote is the one followed by ';' or the end: a GBK trail byte
            # may be 0x5C ('\'), so backslash escapes cannot be trusted.
            end_match = re.compile(rb'"\s*(?:;|$)').search(raw, start + 1)
            end = end_match.start() if end_match else len(raw)
            value = raw[start + 1:end].replace(b'\\"', b'"')
            pos = end_match.end() - 1 if end_match else len(raw)
            if end_match and raw[pos:pos + 1] != b";":
                pos += 1
        else:
            end = raw.find(b";", start)
            end = len(raw) if end < 0 else end
            value = raw[start:end].strip()
            pos = end
        params.append((name, value))
        if pos >= len(raw):
            return params


def _is_latin_letter(ch: str) -> bool:
    return ch.isalpha() and ("\u00c0" <= ch <= "\u024f" or "\u1e00" <= ch <= "\u1eff")


def _script_run(text: str, index: int, low: str, high: str) -> int:
    """Length of the run of letters in [low, high] around ``text[index]``."""
    start = end = index
    while start > 0 and low <= text[start - 1] <= high and text[start - 1].isalpha():
        start -= 1
    while end + 1 < len(text) and low <= text[end + 1] <= high and text[end + 1].isalpha():
        end += 1
    return end - start + 1


def _utf8_char_plausible(text: str, index: int, latin_words: bool, words: bool) -> bool:
    """Whether a non-ASCII character of a UTF-8 reading is one a real file name carries.

    GBK bytes read as UTF-8 give characters from U+0080 to U+07FF picked at random:
    Hebrew points, combining marks, Armenian, Greek and Cyrillic letters alone or mixed,
    IPA, vulgar fractions (通知 reads ``֪ͨ``, 目录 ``Ŀ¼``, 学院 ``ѧԺ``).
    """
    ch = text[index]
    if "\u4e00" <= ch <= "\u9fff":
        return _gb2312_ratio(ch) == 1.0  # rare ideographs come from 3-byte sequences
    if ch in "\u00a0\u00a7\u00a9\u00ab\u00ae\u00b0\u00b1\u00b7\u00bb\u00d7\u00f7":
        return words  # "© 2021 Report", "列夫·托尔斯泰"; alone, 路 reads "·"
    if "\u2000" <= ch <= "\u2bff" or "\u3000" <= ch <= "\u303f" or "\u3200" <= ch <= "\u33ff" \
            or "\ufe30" <= ch <= "\ufe4f" or "\uff00" <= ch <= "\uffef":
        return True  # punctuation, numbers in circles, full-width forms
    if _is_latin_letter(ch):  # résumé, Łódź, Zhāng: accented letters come with plain ones
        return latin_words
    if "\u0300" <= ch <= "\u036f":  # a decomposed accent (macOS names), after its letter
        prev = text[index - 1] if index else ""
        return prev.isascii() and prev.isalpha() or _is_latin_letter(prev)
    # a Greek or Russian word, not a stray letter or two (小 reads "С", 写 "д")
    if "\u0391" <= ch <= "\u03c9":
        return _script_run(text, index, "\u0391", "\u03c9") >= 3
    if "\u0401" <= ch <= "\u0451":
        return _script_run(text, index, "\u0401", "\u0451") >= 3
    return False


def _implausible_share(text: str, plausible: Callable[[str, int], bool]) -> float:
    """Share of the non-ASCII characters of ``text`` that ``plausible(text, i)`` rejects."""
    total = bad = 0
    for index, ch in enumerate(text):
        if not ch.isascii():
            total += 1
            bad += not plausible(text, index)
    return bad / total if total else 0.0


def _gb2312_char(text: str, index: int) -> bool:
    try:
        text[index].encode("gb2312")
    except UnicodeEncodeError:
        return False
    return True


def _utf8_or_gb18030(data: bytes) -> str | None:
    """``data`` as UTF-8 or as GB18030, whichever reads as a file name; None when neither decodes.

    UTF-8 wins unless GBK bytes happen to be valid UTF-8 too (通知 is ``CD A8 D6 AA``):
    then the GB18030 reading wins when it has Chinese characters and a smaller share of
    characters outside GB2312 than the UTF-8 reading has of implausible ones (see
    :func:`_utf8_char_plausible`). Genuine UTF-8 Chinese, accented Latin and ASCII names
    have no implausible ones, so they stay UTF-8.
    """
    utf8 = _strict(data, "utf-8")
    gb = _strict(data, "gb18030")
    if utf8 is None or gb is None or data.isascii():
        return utf8 if utf8 is not None else gb
    if not any("\u4e00" <= ch <= "\u9fff" for ch in gb):
        return utf8
    stem = utf8.rsplit(".", 1)[0]
    latin_words = any(ch.isascii() and ch.isalpha() for ch in stem)
    words = latin_words or any("\u4e00" <= ch <= "\u9fff" for ch in utf8)
    utf8_bad = _implausible_share(utf8, lambda text, i: _utf8_char_plausible(text, i, latin_words, words))
    return gb if _implausible_share(gb, _gb2312_char) < utf8_bad else utf8


def _decode_bytes(data: bytes, charset: str | None = None) -> str:
    """File-name bytes as text: ``charset`` when it decodes them (a UTF-8 label is checked
    like no label, servers send GBK bytes under it), else UTF-8 or GB18030, else latin-1."""
    try:
        label = codecs.lookup(charset).name if charset else None
    except LookupError:
        label = None
    if label and label != "utf-8":
        try:
            return data.decode(label)
        except UnicodeDecodeError:
            pass
    text = _utf8_or_gb18030(data)
    return text if text is not None else data.decode("latin-1")


def _decode_ext_value(value: bytes) -> str | None:
    text = value.strip().strip(b'"').decode("latin-1")
    if "'" in text:
        charset, _, rest = text.partition("'")
        _, _, encoded = rest.partition("'")
    else:  # filename*=UTF-8%E6... (no language part)
        match = re.match(r"([A-Za-z0-9_\-]+)(%.*)$", text)
        charset, encoded = (match.group(1), match.group(2)) if match else ("utf-8", text)
    data = unquote_to_bytes(encoded)
    name = _decode_bytes(data, charset.strip().lower() or None)
    return name or None


def _decode_plain(value: bytes) -> str:
    text = _decode_bytes(value)
    if _ENCODED_WORD_RE.search(text):
        pieces = []
        for chunk, charset in decode_header(text):
            if isinstance(chunk, bytes):
                pieces.append(_decode_bytes(chunk, charset))
            else:
                pieces.append(chunk)
        text = "".join(pieces)
    if _PCT_RE.search(text):
        plus_is_space = "+" in text and " " not in text
        data = unquote_to_bytes(text.replace("+", " ") if plus_is_space else text)
        decoded = _utf8_or_gb18030(data)
        if decoded is not None:
            text = decoded
    return text


def _clean_filename(name: str) -> str | None:
    name = re.sub(r"[\x00-\x1f\x7f]", "", name)
    name = re.split(r"[/\\]", name)[-1]
    name = name.strip().strip('"').strip("'").strip()
    return name or None


def filename_from_content_disposition(raw: bytes | str | None) -> str | None:
    """The file name a Content-Disposition header carries, decoded; None when absent."""
    if not raw:
        return None
    if isinstance(raw, str):
        try:
            raw = raw.encode("latin-1")
        except UnicodeEncodeError:  # already real text
            raw = raw.encode("utf-8")
    params = _split_params(raw)
    continuation: dict[int, tuple[bool, bytes]] = {}
    for name, value in params:
        if name == "filename*":
            decoded = _decode_ext_value(value)
            if decoded and (clean := _clean_filename(decoded)):
                return clean
        match = re.match(r"filename\*(\d+)(\*?)$", name)
        if match:
            continuation[int(match.group(1))] = (bool(match.group(2)), value)
    if continuation:
        joined = b""
        charset = "utf-8"
        for index in sorted(continuation):
            encoded, value = continuation[index]
            if encoded:
                if index == 0 and value.count(b"'") >= 2:
                    cs, _, rest = value.partition(b"'")
                    _, _, value = rest.partition(b"'")
                    charset = cs.decode("latin-1").lower() or charset
                joined += unquote_to_bytes(value)
            else:
                joined += value
        if clean := _clean_filename(_decode_bytes(joined, charset)):
            return clean
    for wanted in ("filename", "name"):
        for name, value in params:
            if name == wanted and value:
                if clean := _clean_filename(_decode_plain(value)):
                    return clean
    return None


# --------------------------------------------------------------------------- magic bytes

_HTML_START_RE = re.compile(
    rb"^\s*(?:<!--.*?-->\s*)*<(?:!doctype\s+html|html|head|body|script|meta|title|link|style|"
    rb"div|table|p\b|br|center|h[1-6]|iframe|form|frameset|span|a\s|font|ul|img)",
    re.I | re.S,
)


def looks_like_html(body: bytes) -> bool:
    """True when the start of ``body`` is HTML markup (BOMs and leading space ignored)."""
    head = body[:1024]
    for bom, _ in _BOMS[:1]:
        if head.startswith(bom):
            head = head[len(bom):]
    if _HTML_START_RE.match(head):
        return True
    lower = head.lower()
    return b"<html" in lower or b"<body" in lower or b"<head>" in lower


def sniff_kind(body: bytes) -> str | None:
    """The file kind the magic bytes of ``body`` show, or None when unknown."""
    if not body:
        return None
    head = body[:16]
    if head.startswith(b"%PDF-") or b"%PDF-" in body[:1024]:
        return "pdf"
    if head[:4] in (b"PK\x03\x04", b"PK\x05\x06", b"PK\x07\x08"):
        if b"word/" in body:
            return "docx"
        if b"xl/" in body:
            return "xlsx"
        if b"ppt/" in body:
            return "pptx"
        if b"OFD.xml" in body[:65536] or b"Doc_0/" in body:
            return "ofd"
        if b"mimetypeapplication/vnd.oasis.opendocument." in body[:200]:
            return "odf"
        return "zip"
    if head.startswith(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"):
        return "ole"
    if head.startswith(b"{\\rtf"):
        return "rtf"
    if head.startswith(b"Rar!\x1a\x07"):
        return "rar"
    if head.startswith(b"7z\xbc\xaf\x27\x1c"):
        return "7z"
    if head.startswith(b"\x1f\x8b"):
        return "gzip"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if head.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if head.startswith((b"GIF87a", b"GIF89a")):
        return "gif"
    if head.startswith(b"BM") and len(body) > 26:
        return "bmp"
    if head.startswith(b"RIFF") and head[8:12] == b"WEBP":
        return "webp"
    if head.startswith((b"II*\x00", b"MM\x00*")):
        return "tiff"
    if head.lower().startswith(b"mime-version:"):
        return "mht"
    if looks_like_html(body):
        return "html"
    if body.lstrip()[:5].lower() == b"<?xml":
        return "xml"
    return None
