"""Audit reports (通报): the alert store turned into the monthly document offices circulate.

``build_report`` gathers the figures (:mod:`.figures`) into tables (:mod:`.model`);
``render`` writes them as text, HTML (self-contained, inline CSS and SVG), XLSX, CSV or
JSON (:mod:`.render`, :mod:`.html`, :mod:`.xlsx`).
"""

from .build import build_report
from .model import Report, Table
from .period import Period, PeriodError, parse_period

__all__ = ["Period", "PeriodError", "Report", "Table", "build_report", "parse_period"]
