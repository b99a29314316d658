"""Main text of an HTML page: what a reader would quote, without the page furniture.

Navigation, headers, footers, scripts, visit counters and "current date" widgets change on
every load or are the same on every page; dropping them keeps snapshots comparable so that
only real content changes count as changes.
"""

from __future__ import annotations

import re

from lxml import html as lxml_html
from lxml.etree import ParserError

FURNITURE_TAGS = ("script", "style", "noscript", "nav", "header", "footer", "iframe", "form",
                  "select", "button", "template")
FURNITURE_HINT = re.compile(
    r"(^|[\s_-])(nav|menu|footer|foot|header|head|banner|breadcrumb|crumb|sidebar|copyright|"
    r"visit|counter|hits|clock|date-now|today|share|search|login|topbar|links?)([\s_-]|$|\d)",
    re.I,
)
VOLATILE_TEXT = re.compile(
    r"(浏览次数|点击次数|访问量|访问次数|阅读次数|点击数|浏览量|您是第)\s*[:：]?\s*\d+\s*(次|位访问者|人)?"
    r"|今天是\s*\d{4}年\d{1,2}月\d{1,2}日\s*(星期[一二三四五六日天])?"
)
MAX_INPUT = 4 * 1024 * 1024


def main_text(page_html: str) -> str:
    """Visible main text, one block per line, volatile counters removed."""
    if not page_html or not page_html.strip():
        return ""
    try:
        root = lxml_html.fromstring(page_html[:MAX_INPUT])
    except (ParserError, ValueError):
        return ""
    for element in root.iter(*FURNITURE_TAGS):
        element.drop_tree() if element.getparent() is not None else None
    for element in list(root.iter()):
        if not isinstance(element.tag, str) or element.getparent() is None:
            continue
        marker = f"{element.get('class', '')} {element.get('id', '')}"
        if marker.strip() and FURNITURE_HINT.search(marker):
            element.drop_tree()
    lines = []
    for block in root.itertext():
        text = VOLATILE_TEXT.sub("", " ".join(block.split()))
        if text:
            lines.append(text)
    return "\n".join(lines)
