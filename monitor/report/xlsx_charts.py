"""The HTML report's charts, as native Excel charts in the workbook (openpyxl), drawn from
the cells of the sheets beside them so that a person who edits a figure sees the chart
follow:

* findings per department, stacked by level (预警, 黄牌, 红牌) — on the findings sheet;
* completed cases (bars) and findings (line) per day — on a trend sheet of its own;
* the on-time rate per department (horizontal bars) — on the cases sheet.

Same series, same colours (monitor/report/html.py ``COLORS``) and titles as the HTML's.
"""

from __future__ import annotations

from typing import Any

from .html import COLORS
from .model import Report, Table

LEVELS = ("warning", "yellow", "red")


def _shown(chart: Any) -> Any:
    """Axes drawn (openpyxl 3.1 marks them deleted unless told) and the chart returned."""
    chart.x_axis.delete = chart.y_axis.delete = False
    return chart


def _column(table: Table, key: str) -> int:
    return 1 + [c.key for c in table.columns].index(key)


def _colour(series, key: str, line: bool = False) -> None:
    colour = COLORS[key].lstrip("#")
    if line:
        series.graphicalProperties.line.solidFill = colour
        series.graphicalProperties.line.width = 19050  # 1.5 pt, as the HTML's polyline
        series.smooth = False
    else:
        series.graphicalProperties.solidFill = colour
        series.graphicalProperties.line.solidFill = colour


def findings_chart(ws: Any, table: Table, label) -> None:
    """Stacked columns of findings by level for each department (not the county row)."""
    from openpyxl.chart import BarChart, Reference

    n = len(table.rows)
    if not n:
        return
    chart = BarChart()
    chart.type, chart.grouping, chart.overlap = "col", "stacked", 100
    chart.title = label("c_findings_by_dept")
    first = _column(table, LEVELS[0])
    chart.add_data(Reference(ws, min_col=first, max_col=first + len(LEVELS) - 1, min_row=1,
                             max_row=n + 1), titles_from_data=True)
    chart.set_categories(Reference(ws, min_col=_column(table, "department"), min_row=2,
                                   max_row=n + 1))
    for series, level in zip(chart.series, LEVELS):
        _colour(series, level)
    chart.height, chart.width = 8, 18
    ws.add_chart(_shown(chart), f"A{ws.max_row + 3}")


def on_time_chart(ws: Any, table: Table, label) -> None:
    """Horizontal bars of each department's on-time rate (as a percentage)."""
    from openpyxl.chart import BarChart, Reference

    n = len(table.rows)
    if not n:
        return
    chart = BarChart()
    chart.type = "bar"
    chart.title = label("c_on_time")
    chart.add_data(Reference(ws, min_col=_column(table, "on_time_rate"), min_row=1,
                             max_row=n + 1), titles_from_data=True)
    chart.set_categories(Reference(ws, min_col=_column(table, "name"), min_row=2,
                                   max_row=n + 1))
    _colour(chart.series[0], "line")
    chart.y_axis.number_format, chart.y_axis.scaling.min, chart.y_axis.scaling.max = \
        "0%", 0, 1
    chart.x_axis.scaling.orientation = "maxMin"  # the first department on top, as in HTML
    chart.legend = None
    chart.height, chart.width = max(6, 0.6 * n), 18
    ws.add_chart(_shown(chart), f"A{ws.max_row + 3}")


def trend_sheet(wb: Any, report: Report, label) -> None:
    """A sheet of completed cases and findings per day, with the combined chart."""
    from openpyxl.chart import BarChart, LineChart, Reference

    trend = report.charts.get("trend") or []
    if not trend:
        return
    ws = wb.create_sheet(label("t_trend")[:31])
    ws.append([label("day"), label("completed"), label("findings")])
    for day, completed, found in trend:
        ws.append([day, completed, found])
    for (cell,) in ws.iter_rows(min_row=2, max_col=1):
        cell.number_format = "yyyy-mm-dd"
    ws.column_dimensions["A"].width = 12
    ws.freeze_panes = "A2"
    n = len(trend)
    bars = BarChart()
    bars.title = label("c_trend")
    bars.add_data(Reference(ws, min_col=2, min_row=1, max_row=n + 1), titles_from_data=True)
    bars.set_categories(Reference(ws, min_col=1, min_row=2, max_row=n + 1))
    _colour(bars.series[0], "bar")
    line = LineChart()
    line.add_data(Reference(ws, min_col=3, min_row=1, max_row=n + 1), titles_from_data=True)
    _colour(line.series[0], "line", line=True)
    bars.x_axis.number_format = "d"
    bars += line
    bars.height, bars.width = 8, 24
    ws.add_chart(_shown(bars), "E2")


def add_charts(wb: Any, sheets: dict[str, Any], report: Report, label) -> None:
    """The charts of a report (not of a scorecard) into ``wb``; ``sheets``: table key →
    its sheet."""
    if report.kind != "report":
        return
    if "t_findings" in sheets:
        findings_chart(sheets["t_findings"], report.tables["t_findings"], label)
    if "t_cases" in sheets:
        on_time_chart(sheets["t_cases"], report.tables["t_cases"], label)
    trend_sheet(wb, report, label)
