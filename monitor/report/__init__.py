"""Audit reports (通报): the alert store turned into the monthly document offices circulate.

``build_report`` gathers the figures (:mod:`.figures`) into tables (:mod:`.model`);
``render`` writes them as text, HTML (self-contained, inline CSS and SVG), XLSX, CSV or
JSON (:mod:`.render`, :mod:`.html`, :mod:`.xlsx`).
"""

from pathlib import Path

from ..files import OWNER_ONLY_DIR, OWNER_ONLY_FILE, make_dir, write_atomic
from .build import build_report
from .model import Report, Table
from .period import Period, PeriodError, parse_period

__all__ = ["Period", "PeriodError", "Report", "Table", "build_report", "parse_period",
           "write_documents"]


def write_documents(report: Report, directory: Path, file_mode: int = OWNER_ONLY_FILE,
                    dir_mode: int = OWNER_ONLY_DIR) -> tuple[Path, Path]:
    """Write the report as the two files offices circulate, ``report-PERIOD.html`` and
    ``report-PERIOD.xlsx``, into ``directory`` (created if missing), each whole or not at
    all (:func:`monitor.files.write_atomic`); return their paths."""
    from .html import to_html
    from .xlsx import write_xlsx

    make_dir(directory, dir_mode)
    html = directory / f"report-{report.period.label}.html"
    xlsx = html.with_suffix(".xlsx")
    write_atomic(html, to_html(report), file_mode)
    write_atomic(xlsx, lambda tmp: write_xlsx(report, tmp), file_mode)
    return html, xlsx
