"""The report as an XLSX workbook (openpyxl): a cover sheet, then one sheet per table,
header row frozen, numbers as numbers (percentages as % formats), dates as dates; every
value through :func:`~monitor.report.cells.safe_row` (no formula from input data); the
HTML's charts as native Excel charts (monitor/report/xlsx_charts.py)."""

from __future__ import annotations

from pathlib import Path

from .cells import safe_row
from .labels import labeler
from .model import Report, trail_line
from .xlsx_charts import add_charts

NUMBER_FORMATS = {"int": "#,##0", "pct": "0.0%", "change": "+0.0%;-0.0%;0.0%", "num": "0.0",
                  "date": "yyyy-mm-dd", "text": "@", "label": "@"}


def write_xlsx(report: Report, path: Path) -> None:
    from openpyxl import Workbook
    from openpyxl.styles import Font, PatternFill
    from openpyxl.utils import get_column_letter
    from openpyxl.worksheet.worksheet import Worksheet

    label = labeler(report.language)
    wb = Workbook()
    cover = wb.active
    assert isinstance(cover, Worksheet)  # a new workbook's one sheet
    cover.title = label("summary")[:31]
    cover.append(safe_row([label("report")]))
    cover["A1"].font = Font(bold=True, size=14)
    cover.append(safe_row([label("period"), report.period.label, report.period.start,
                           report.period.last]))
    cover.append(safe_row([label("department_filter"),
                           report.department or label("all_departments")]))
    if report.region_label:
        cover.append(safe_row([label("region_filter"), report.region_label]))
    cover.append(safe_row([label("generated"), report.generated_at.replace(tzinfo=None)]))
    for k, v in report.summary.items():
        cover.append(safe_row([label(k), v]))
        if v is not None and k.endswith("rate"):
            cover.cell(cover.max_row, 2).number_format = NUMBER_FORMATS["pct"]
    if (line := trail_line(report, label)) is not None:
        cover.append([line])
    for row in cover.iter_rows(min_row=2, max_row=4):
        for c in row[2:] + row[1:2]:
            if hasattr(c.value, "year"):
                c.number_format = "yyyy-mm-dd hh:mm" if hasattr(c.value, "hour") else "yyyy-mm-dd"
    cover.column_dimensions["A"].width = 22
    cover.column_dimensions["B"].width = 20
    bold, fill = Font(bold=True), PatternFill("solid", fgColor="F3E9E9")
    sheets = {}
    for key, table in report.tables.items():
        ws = sheets[key] = wb.create_sheet(label(key)[:31])
        ws.append(safe_row([label(c.key) for c in table.columns]))
        for c in ws[1]:
            c.font, c.fill = bold, fill
        for r in table.rows + ([table.total] if table.total else []):
            ws.append(safe_row([table.shown(c, r.get(c.key)) for c in table.columns]))
        if table.total:
            for c in ws[ws.max_row]:
                c.font = bold
        for j, col in enumerate(table.columns, start=1):
            letter = get_column_letter(j)
            for (cell,) in ws.iter_rows(min_row=2, min_col=j, max_col=j):
                cell.number_format = NUMBER_FORMATS[col.fmt]
            wide = col.fmt in ("text", "label") and col.key in ("message", "evidence",
                                                                "item_name", "rule_id", "kind")
            ws.column_dimensions[letter].width = 60 if wide else max(
                10, min(30, 2 * len(label(col.key)) + 2))
        ws.freeze_panes = "A2"
        ws.auto_filter.ref = ws.dimensions
    add_charts(wb, sheets, report, label)
    wb.save(path)
