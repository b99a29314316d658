"""信息公开工作年度报告 (annual reports) of the simulated universities.

A :class:`ReportSpec` describes one report; :func:`report_blocks` turns it into
document blocks (see :mod:`simweb.docs`) and :func:`render` into bytes (pdf, docx,
doc = RTF, or an HTML fragment).  The text is modelled on real reports: title,
legal basis, statistics period, the eight parts, application counts, a
清单事项公开情况表 and a signature with date.

Parts are numbered the way the report prints them: when a report leaves a part
out, the following headings are renumbered (e.g. without 四 the 举报/复议/诉讼
part is printed as 四).  ``parts_present`` in the truth uses the canonical part
numbers 1..8 (1 概述, 2 主动公开, 3 依申请公开, 4 评议, 5 举报复议诉讼,
6 经验问题改进, 7 其他事项, 8 清单事项公开情况表), so detect parts by title, not numeral.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from html import escape

from simweb.checklist import ITEMS
from simweb.docs import docx_bytes, pdf_bytes, rtf_bytes

NUMERALS = "一二三四五六七八九十"

PART_TITLES: dict[int, tuple[str, str]] = {
    # canonical number: (usual title, variant title)
    1: ("概述", "概述"),
    2: ("主动公开情况", "主动公开信息情况"),
    3: ("依申请公开和不予公开情况", "依申请公开和不予公开情况"),
    4: ("对信息公开的评议情况", "对学校信息公开工作的评议情况"),
    5: ("因学校信息公开工作受到举报、复议、诉讼的情况", "因信息公开工作受到举报、复议、诉讼的情况"),
    6: ("主要经验、问题和改进措施", "本年度信息公开工作的主要经验、问题和下一步改进措施"),
    7: ("其他需要报告的事项", "其他需要报告的事项"),
    8: ("清单事项公开情况表", "清单事项公开情况表"),
}


@dataclass
class ReportSpec:
    """One annual report as published by one simulated site."""

    site_id: str
    school: str
    year_form: str  # as printed in the title, e.g. "2020-2021学年" or "二〇二一年度"
    academic_year: str  # normalised "2020-2021"
    fmt: str  # pdf | docx | doc | html
    url: str  # the document (or the HTML article page)
    page_url: str  # the article page that links the document
    portal: str
    items: dict[int, str]  # item number -> URL printed in the table
    applications: int
    applications_text: str
    signed: date | None = None
    parts: list[int] = field(default_factory=lambda: list(range(1, 9)))
    variant_titles: bool = False
    annex_table: bool = False  # table after the signature ("附件") instead of inside part 八
    first_day: int = 1

    @property
    def title(self) -> str:
        """Full report title."""
        return f"{self.school}{self.year_form}信息公开工作年度报告"

    @property
    def start_year(self) -> int:
        """First year of the academic year."""
        return int(self.academic_year[:4])

    @property
    def late(self) -> bool | None:
        """Reports are due by 31 October after the academic year; ``None`` if undated."""
        if self.signed is None:
            return None
        return self.signed > date(self.start_year + 1, 10, 31)


def _cn_date(d: date) -> str:
    return f"{d.year}年{d.month}月{d.day}日"


def table_rows(items: dict[int, str]) -> tuple[tuple[str, str, str, str], ...]:
    """Rows (序号, 类别, 公开事项, 网址) for the items that are listed."""
    rows = []
    last_cat = 0
    for it in ITEMS:
        url = items.get(it.number)
        if url is None:
            continue
        cat = it.category_heading if it.category != last_cat else ""
        last_cat = it.category
        rows.append((str(it.number), cat, f"({it.number}) {it.title}", url))
    return tuple(rows)


TABLE_HEADER = ("序号", "类别", "公开事项", "网址")


def _part_body(spec: ReportSpec, part: int) -> list[str]:
    y0, y1 = spec.start_year, spec.start_year + 1
    school = spec.school
    if part == 1:
        return [
            f"{spec.year_form.rstrip('度')}，{school}坚持以公开为常态、不公开为例外，认真贯彻落实《高等学校信息公开办法》"
            "和《高等学校信息公开事项清单》要求，进一步健全信息公开工作机制，完善信息公开平台，"
            "推进信息公开工作规范化、制度化建设。",
            "学校信息公开工作领导小组统筹协调，各职能部门分工负责，形成了主要领导负总责、分管领导具体抓、"
            "各单位协同配合的工作格局。",
        ]
    if part == 2:
        return [
            f"学校通过信息公开网、门户网站、微信公众号、校报等渠道主动公开信息。本年度信息公开网发布信息{120 + y0 % 7 * 11}条，"
            f"门户网站发布通知公告{300 + y1 % 5 * 17}条。",
            "招生考试、财务资产及收费、人事师资、教学质量、学生管理服务等重点领域信息均按要求及时公开。",
        ]
    if part == 3:
        return [spec.applications_text]
    if part == 4:
        return [
            "学校通过教代会、学代会、校长信箱等渠道收集师生员工和社会公众对信息公开工作的意见建议，总体评价良好。"
        ]
    if part == 5:
        return [f"{y0}年9月至{y1}年8月，学校未收到因信息公开工作引起的举报、复议、诉讼。"]
    if part == 6:
        return [
            "主要经验：领导重视、制度健全、平台完善。存在的问题：部分单位信息更新不够及时，公开内容的解读不够充分。",
            "改进措施：一是加强培训，提高信息公开意识；二是完善考核，推动信息及时更新；三是优化平台，提升公开效果。",
        ]
    if part == 7:
        return ["本年度无其他需要报告的事项。"]
    if part == 8:
        return ["学校清单事项公开情况见附表。" if spec.annex_table else "学校清单事项公开情况如下表。"]
    raise ValueError(part)


def report_blocks(spec: ReportSpec) -> tuple[tuple, ...]:
    """Document blocks of the report (title, intro, parts, table, signature)."""
    y0, y1 = spec.start_year, spec.start_year + 1
    blocks: list[tuple] = [("title", spec.title)]
    blocks.append(
        (
            "p",
            "本报告根据《高等学校信息公开办法》（教育部令第29号）和《教育部办公厅关于公布〈高等学校信息公开事项清单〉的通知》"
            f"（教办函〔2014〕23号）要求，结合{spec.school}信息公开工作实际编制。",
        )
    )
    blocks.append(
        (
            "p",
            f"本报告所列数据的统计时间为{y0}年9月1日至{y1}年8月31日。"
            f"本报告电子版可从{spec.school}信息公开网（{spec.portal}）下载。",
        )
    )
    rows = table_rows(spec.items)
    for printed, part in enumerate(spec.parts, start=1):
        title = PART_TITLES[part][1 if spec.variant_titles else 0]
        blocks.append(("h", f"{NUMERALS[printed - 1]}、{title}"))
        blocks.extend(("p", text) for text in _part_body(spec, part))
        if part == 8 and not spec.annex_table:
            blocks.append(("table", TABLE_HEADER, rows))
    blocks.append(("sign", spec.school))
    if spec.signed is not None:
        blocks.append(("sign", _cn_date(spec.signed)))
    if spec.annex_table:
        blocks.append(("h", "附件：学校清单事项公开情况表"))
        blocks.append(("table", TABLE_HEADER, rows))
    return tuple(blocks)


def html_fragment(blocks: tuple[tuple, ...]) -> str:
    """Report blocks as the HTML content of an article page (URLs as links)."""
    out: list[str] = []
    for block in blocks:
        kind = block[0]
        if kind == "title":
            continue
        if kind == "h":
            out.append(f"<p><strong>{escape(block[1])}</strong></p>")
        elif kind == "p":
            out.append(f'<p style="text-indent:2em">{escape(block[1])}</p>')
        elif kind == "sign":
            out.append(f'<p style="text-align:right">{escape(block[1])}</p>')
        elif kind == "table":
            header, rows = block[1], block[2]
            out.append('<table border="1" cellspacing="0" cellpadding="4">')
            out.append("<tr>" + "".join(f"<th>{escape(h)}</th>" for h in header) + "</tr>")
            for r in rows:
                cells = [escape(c) for c in r[:-1]]
                link = f'<a href="{escape(r[-1])}">{escape(r[-1])}</a>'
                out.append("<tr>" + "".join(f"<td>{c}</td>" for c in cells) + f"<td>{link}</td></tr>")
            out.append("</table>")
    return "\n".join(out)


def render(spec: ReportSpec) -> bytes:
    """Document bytes for a pdf/docx/doc report (HTML reports use :func:`html_fragment`)."""
    blocks = report_blocks(spec)
    if spec.fmt == "pdf":
        return pdf_bytes(spec.title, blocks)
    if spec.fmt == "docx":
        return docx_bytes(spec.title, blocks)
    if spec.fmt == "doc":
        return rtf_bytes(spec.title, blocks)
    raise ValueError(spec.fmt)


def truth_record(spec: ReportSpec) -> dict:
    """The ``expected_reports`` entry for ``spec``."""
    return {
        "site_id": spec.site_id,
        "url": spec.url,
        "page_url": spec.page_url,
        "format": spec.fmt,
        "title": spec.title,
        "academic_year": spec.academic_year,
        "signed_date": spec.signed.isoformat() if spec.signed else None,
        "late": spec.late,
        "applications_received": spec.applications,
        "parts_present": list(spec.parts),
        "items_listed": len(spec.items),
    }
