"""Audit reports (通报): the alert store turned into the monthly document offices circulate.

``build_report`` gathers the figures (:mod:`.figures`) into tables (:mod:`.model`);
``render`` writes them as text, HTML (self-contained, inline CSS and SVG), XLSX, CSV or
JSON (:mod:`.render`, :mod:`.html`, :mod:`.xlsx`).
"""

from pathlib import Path

from .build import build_report
from .model import Report, Table
from .period import Period, PeriodError, parse_period

__all__ = ["Period", "PeriodError", "Report", "Table", "build_report", "parse_period",
           "write_documents"]


def write_documents(report: Report, directory: Path) -> tuple[Path, Path]:
    """Write the report as the two files offices circulate, ``report-PERIOD.html`` and
    ``report-PERIOD.xlsx``, into ``directory`` (created if missing); return their paths."""
    from .html import to_html
    from .xlsx import write_xlsx

    directory.mkdir(parents=True, exist_ok=True)
    html = directory / f"report-{report.period.label}.html"
    xlsx = html.with_suffix(".xlsx")
    html.write_text(to_html(report), encoding="utf-8")
    write_xlsx(report, xlsx)
    return html, xlsx
