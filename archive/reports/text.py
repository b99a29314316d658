"""Text helpers for reports: width folding, Chinese numerals, dates and PDF line reflow.

Report text arrives with PDF artefacts: every visual line is a line (often with blank lines
in between), numbers and dates are broken by spaces ("2020 年 9月 1 日") or line breaks
("2021\\n\\n年 8 月 31日"), punctuation and digits may be full width. These helpers undo
that so the other modules can use simple patterns.
"""

from __future__ import annotations

import re
import unicodedata
from datetime import date
from functools import lru_cache

__all__ = [
    "CN_DATE_RE",
    "DATE_RE",
    "cn_to_int",
    "display_width",
    "fold_width",
    "is_heading_start",
    "parse_date",
    "parse_number",
    "reflow",
    "squeeze_cjk",
]

_CN_DIGIT = {
    "〇": 0, "○": 0, "零": 0, "Ｏ": 0, "O": 0, "o": 0,
    "一": 1, "壹": 1, "二": 2, "贰": 2, "两": 2, "三": 3, "叁": 3, "四": 4, "肆": 4,
    "五": 5, "伍": 5, "六": 6, "陆": 6, "七": 7, "柒": 7, "八": 8, "捌": 8, "九": 9, "玖": 9,
}
_CN_UNIT = {"十": 10, "拾": 10, "百": 100, "佰": 100, "千": 1000, "仟": 1000}
_CN_BIG = {"万": 10_000, "亿": 100_000_000}
CN_NUM_CHARS = "〇○零一二两三四五六七八九十百千万亿壹贰叁肆伍陆柒捌玖拾佰仟"

_FOLD = {0x3000: " ", 0x00A0: " ", 0x2002: " ", 0x2003: " ", 0x2009: " ", 0x200B: ""}
_FOLD.update({cp: chr(cp - 0xFEE0) for cp in range(0xFF10, 0xFF1A)})  # ０-９
_FOLD.update({cp: chr(cp - 0xFEE0) for cp in range(0xFF21, 0xFF3B)})  # Ａ-Ｚ
_FOLD.update({cp: chr(cp - 0xFEE0) for cp in range(0xFF41, 0xFF5B)})  # ａ-ｚ
_FOLD.update({ord("（"): "(", ord("）"): ")", ord("．"): ".", ord("－"): "-", ord("／"): "/",
              ord("［"): "[", ord("］"): "]", ord("＠"): "@", ord("＆"): "&", ord("＝"): "=",
              ord("？"): "?", ord("＃"): "#", ord("％"): "%", ord("＿"): "_", ord("～"): "~",
              ord("﹒"): ".", ord("："): ":"})


def fold_width(text: str) -> str:
    """Full-width digits, Latin letters, parentheses and spaces to their ASCII forms.

    Chinese sentence punctuation (。，、；) is kept; the result has the same number of
    characters as the input except for removed zero-width spaces.
    """
    return text.translate(_FOLD)


def display_width(text: str) -> int:
    """Columns the text takes in a fixed-width rendering (CJK and full width count 2)."""
    return sum(2 if unicodedata.east_asian_width(ch) in "WFA" else 1 for ch in text)


def cn_to_int(text: str) -> int | None:
    """A Chinese numeral ("十二", "一百零五", "两千", "二〇二一") or Arabic digits as int.

    Digit-by-digit forms without units ("二〇二一", "一九") are read positionally, as in
    years. Returns ``None`` when ``text`` is not a number.
    """
    text = fold_width(text.strip())
    if not text:
        return None
    if text.isdigit():
        return int(text)
    if any(ch not in _CN_DIGIT and ch not in _CN_UNIT and ch not in _CN_BIG for ch in text):
        return None
    if not any(ch in _CN_UNIT or ch in _CN_BIG for ch in text):
        value = 0
        for ch in text:
            value = value * 10 + _CN_DIGIT[ch]
        return value
    total, section, digit = 0, 0, None
    for ch in text:
        if ch in _CN_DIGIT:
            digit = _CN_DIGIT[ch]
        elif ch in _CN_UNIT:
            section += (1 if digit is None else digit) * _CN_UNIT[ch]
            digit = None
        else:  # 万 / 亿
            section += digit or 0
            total = (total + section) * _CN_BIG[ch]
            section, digit = 0, None
    return total + section + (digit or 0)


def parse_number(text: str) -> int | None:
    """An integer from Arabic ("1,840", "１２", "2 800") or Chinese numerals, else None."""
    folded = fold_width(text).strip()
    compact = re.sub(r"[\s,，]", "", folded)
    if compact.isdigit():
        return int(compact)
    return cn_to_int(compact)


_SP = r"[ \t\u3000\xa0]*"
#: An Arabic date, tolerant of spaces inside: "2020 年 9月 1 日".
DATE_RE = re.compile(
    rf"(?P<y>(?:19|20)\d{{2}}){_SP}年{_SP}(?P<m>\d{{1,2}}){_SP}月{_SP}(?P<d>\d{{1,2}}){_SP}[日号]"
)
#: A date in Chinese numerals: "二〇二一年十月十日".
CN_DATE_RE = re.compile(
    rf"(?P<y>[〇○零Ｏ一二三四五六七八九]{{4}}){_SP}年{_SP}(?P<m>[一二三四五六七八九十]{{1,3}}){_SP}"
    rf"月{_SP}(?P<d>[一二三四五六七八九十]{{1,4}}){_SP}[日号]"
)
_ISO_DATE_RE = re.compile(r"(?P<y>(?:19|20)\d{2})[-./](?P<m>\d{1,2})[-./](?P<d>\d{1,2})")


def _make_date(y: int | None, m: int | None, d: int | None) -> date | None:
    if y is None or m is None or d is None:
        return None
    try:
        return date(y, m, d)
    except ValueError:
        return None


def parse_date(text: str) -> date | None:
    """The first date in ``text`` in any supported form, or None for impossible dates."""
    folded = fold_width(text)
    candidates: list[tuple[int, date | None]] = []
    for regex in (DATE_RE, CN_DATE_RE, _ISO_DATE_RE):
        m = regex.search(folded)
        if m:
            candidates.append(
                (m.start(), _make_date(cn_to_int(m["y"]), cn_to_int(m["m"]), cn_to_int(m["d"])))
            )
    candidates.sort(key=lambda c: c[0])
    return candidates[0][1] if candidates else None


# A space may stand before the 、 ("一 、概述", "2 、"): PDFs space out characters.
_HEADING_START = re.compile(
    r"^(?:第[一二三四五六七八九十]+部分|[一二三四五六七八九十]{1,3}[ \t]*[、．.]|"
    r"[（(][一二三四五六七八九十\d]{1,3}[)）]|\d{1,2}[ \t]*[、．](?!\d)|\d{1,2}\.(?!\d)|附件|附表)"
)
_SENTENCE_END = "。！？；：!?;:"
_CN_SECTION_START = re.compile(
    r"^(?:第[一二三四五六七八九十]+部分|[一二三四五六七八九十]{1,3}[ \t\u3000]*[、．.]|"
    r"[（(][一二三四五六七八九十]{1,3}[)）])"
)
_PAIRS = (("《", "》"), ("（", "）"), ("“", "”"), ("〈", "〉"))


def is_heading_start(line: str) -> bool:
    """Whether ``line`` begins with a section marker (一、 （一） 1. 第一部分 附件)."""
    return bool(_HEADING_START.match(fold_width(line.lstrip())))


def _joiner(prev: str, nxt: str) -> str:
    last_token = prev.rsplit(None, 1)[-1] if prev.split() else ""
    if "://" in last_token or last_token.startswith("www."):
        return ""
    a, b = prev[-1], nxt[0]
    if a.isascii() and b.isascii() and a.isalpha() and b.isalpha():
        return " "
    return ""


_CJK = "\u4e00-\u9fff\u3000-\u303f\uff01-\uff0f\uff1a-\uff20\u201c\u201d\u2018\u2019"
_CJK_GAP = re.compile(rf"(?<=[{_CJK}])[ \u3000\xa0]+(?=[{_CJK}])")


def squeeze_cjk(text: str) -> str:
    """Drop spaces between two Chinese characters ("信 息 公 开" -> "信息公开")."""
    return _CJK_GAP.sub("", text)


_LETTER_GAP = re.compile(r"(?<=[^\sA-Za-z]) (?=[^\sA-Za-z])")


def _letter_spaced(text: str) -> bool:
    """Whether most Chinese characters are followed by a space (PDF character spacing)."""
    cjk = len(re.findall(r"[\u4e00-\u9fff]", text))
    return cjk >= 20 and len(_CJK_GAP.findall(text)) > 0.4 * cjk


@lru_cache(maxsize=8)
def reflow(text: str) -> str:
    """Undo PDF line wrapping: join visual lines back into paragraphs.

    A line is joined to the next when it does not end a sentence and is about as wide as
    a full line (or long), or leaves a 《 or （ open; never when the next line starts a
    heading, either is a table row (contains a tab) or a date line. A full-width heading
    only takes a short tail. Blank lines are PDF noise in many extractions, so they carry
    no meaning here. Letter-spaced text ("信 息 公 开", from justified PDFs) is closed up.
    The result has one paragraph per line. Linear in the text's length
    (and cached: the report modules all start from the reflowed text).
    """
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\x0c", "\n")
    if _letter_spaced(text):
        text = _LETTER_GAP.sub("", squeeze_cjk(text))
    lines = [ln.strip(" \u3000\xa0\u200b").rstrip() for ln in text.split("\n")]
    lines = [ln for ln in lines if ln.strip()]
    if not lines:
        return ""
    widths = sorted(display_width(ln) for ln in lines if "\t" not in ln)
    full = widths[int(len(widths) * 0.75)] if widths else 0
    out: list[str] = []
    para: _Paragraph | None = None
    prev = ""
    for line in lines:
        if para is not None and _continues(para, len(out), prev, line, full):
            para.add(_joiner(prev, line) + line)
        else:
            if para is not None:
                out.append("".join(para.parts))
            para = _Paragraph(line)
        prev = line
    if para is not None:
        out.append("".join(para.parts))
    return "\n".join(out)


class _Paragraph:
    """A paragraph being built: its parts, bracket balance and heading shape."""

    def __init__(self, first: str) -> None:
        self.parts = [first]
        self.heading = bool(_CN_SECTION_START.match(first))
        self.stopped = any(p in first for p in "。：:")
        self.balance = {a: first.count(a) - first.count(b) for a, b in _PAIRS}

    def add(self, chunk: str) -> None:
        self.parts.append(chunk)
        self.stopped = self.stopped or any(p in chunk for p in "。：:")
        for a, b in _PAIRS:
            self.balance[a] += chunk.count(a) - chunk.count(b)


def _continues(para: _Paragraph, done: int, prev: str, line: str, full: int) -> bool:
    if "\t" in prev or "\t" in line:
        return False
    if prev[-1] in _SENTENCE_END or is_heading_start(line):
        return False
    if any(v > 0 for v in para.balance.values()):
        return True  # an open 《 or （ : the paragraph cannot have ended
    width = display_width(prev)
    if width < 0.8 * full and width < 50:
        return False
    if done < 3 and prev.endswith("报告") and width <= 100:
        return False  # a title line that happens to be as wide as the text
    if para.heading and not para.stopped:
        # a wrapped heading continues with a short tail, not with a full body line
        return display_width(line) < 0.6 * width and "。" not in line
    return not (DATE_RE.fullmatch(fold_width(line)) or DATE_RE.fullmatch(fold_width(prev)))
