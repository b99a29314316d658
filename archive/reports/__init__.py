"""The annual-report engine: 信息公开工作年度报告 text, facts, parts and 清单 tables.

Modules, one job each:

* :mod:`archive.reports.extract`   bytes (PDF, DOCX, RTF, DOC, HTML, TXT) -> text, never raises
* :mod:`archive.reports.text`      text helpers: width folding, Chinese numerals, dates, reflow
* :mod:`archive.reports.checklist` the 50 items of 教办函〔2014〕23号 and the 清单 table parser
* :mod:`archive.reports.facts`     academic year, period, signed date, timeliness, counts
* :mod:`archive.reports.parts`     which of the eight expected parts a report has
* :mod:`archive.reports.ingest`    store a report and everything derived from it in SQLite
"""
