"""Writing a report: text for the terminal, JSON and CSV for other tools; HTML and XLSX
live in their own modules. ``render(report, fmt, out)`` is the one entry point."""

from __future__ import annotations

import csv
import io
import json
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from ..errors import MonitorError, usage
from ..files import make_dir, write_atomic
from .cells import safe_row
from .labels import labeler
from .model import Report, Table, fmt_value, summary_fmt, trail_line

FORMATS = ("text", "html", "xlsx", "csv", "json")
TEXT_TABLES = ("t_regions", "t_cases", "t_findings", "t_supervision", "t_items", "t_actors",
               "t_online", "t_spot", "t_ratings", "t_complaints")  # the last two where data was loaded


def _width(text: str) -> int:
    """Columns a string takes on a terminal: CJK characters take two."""
    return sum(2 if ord(c) > 0x2E7F else 1 for c in text)


def _pad(text: str, width: int, right: bool) -> str:
    gap = " " * max(0, width - _width(text))
    return gap + text if right else text + gap


def text_table(table: Table, label, limit: int | None = None) -> list[str]:
    header = [label(c.key) for c in table.columns]
    rows = table.rows[:limit] if limit else table.rows
    body = [[fmt_value(table.shown(c, r.get(c.key)), c.fmt) for c in table.columns]
            for r in rows]
    if table.total:
        body.append([fmt_value(table.total.get(c.key), c.fmt) if table.total.get(c.key) != ""
                     else "" for c in table.columns])
    widths = [max(_width(x) for x in col) for col in zip(header, *body)]
    right = [c.fmt not in ("text", "label") for c in table.columns]
    lines = ["  ".join(_pad(h, w, r) for h, w, r in zip(header, widths, right))]
    lines += ["  ".join(_pad(x, w, r) for x, w, r in zip(row, widths, right)) for row in body]
    return lines


def to_text(report: Report, tables: tuple[str, ...] = TEXT_TABLES) -> str:
    label = labeler(report.language)
    if report.kind != "report":
        tables = tuple(k for k in report.tables if k != "t_deductions")
    out = [f"{report.title} · {label('period')} {report.period.label} "
           f"({report.period.start} … {report.period.last})"
           + (f" · {label('department_filter')} {report.department}" if report.department
              else "")
           + (f" · {label('region_filter')} {report.region_label}" if report.region_label
              else "")]
    s = report.summary
    out.append("  ".join(f"{label(k)} {fmt_value(s[k], summary_fmt(k, s[k]))}" for k in s))
    for key in (k for k in tables if k in report.tables):
        table = report.tables[key]
        out += ["", f"{label(key)}"]
        if table.note:
            out.append(f"  ({table.note})")
        out += ["  " + line for line in text_table(table, label)]
    red = report.tables.get("t_red")
    if red is not None:
        out += ["", f"{label('t_red')}: {len(red.rows):,}"]
        out += [f"  #{r['alert_id']} {r['department']} {r['case_id']} {r['message']}"
                for r in red.rows[:10]]
        if len(red.rows) > 10:
            out.append("  " + label("more_rows").format(n=len(red.rows) - 10))
    if (line := trail_line(report, label)) is not None:
        out += ["", line]
    return "\n".join(out) + "\n"


def _plain(value: Any) -> Any:
    if isinstance(value, (date, datetime)):
        return value.isoformat()
    if isinstance(value, Decimal):  # yuan: a JSON number (exact to the fen below 10^13)
        return float(value)
    return value


def to_json(report: Report) -> str:
    doc = {"title": report.title, "language": report.language,
           "period": {"label": report.period.label, "from": report.period.start.isoformat(),
                      "to": report.period.last.isoformat()},
           "previous": {"from": report.previous.start.isoformat(),
                        "to": report.previous.last.isoformat()},
           "year_before": {"from": report.year_before.start.isoformat(),
                           "to": report.year_before.last.isoformat()},
           "department": report.department, "region": report.region, "generated_at": report.generated_at.isoformat(),
           "summary": report.summary,
           "trail": report.trail and dict(zip(("entries", "head", "algorithm"), report.trail)),
           "tables": {key: {"columns": [c.key for c in t.columns],
                            "rows": [{k: _plain(v) for k, v in r.items()} for r in t.rows],
                            "total": t.total and {k: _plain(v) for k, v in t.total.items()}}
                      for key, t in report.tables.items()},
           "trend": [{"date": d.isoformat(), "completed": c, "findings": f}
                     for d, c, f in report.charts["trend"]]}
    return json.dumps(doc, ensure_ascii=False, indent=1) + "\n"


def csv_text(table: Table) -> str:
    """One table as CSV: column keys as header (stable for tools), raw values, made
    spreadsheet-safe (:func:`~monitor.report.cells.safe_cell`)."""
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow([c.key for c in table.columns])
    for r in table.rows + ([table.total] if table.total else []):
        writer.writerow(safe_row(["" if r.get(c.key) is None else _plain(r.get(c.key))
                                  for c in table.columns]))
    return buf.getvalue()


def render(report: Report, fmt: str, out: str | Path | None, table: str | None = None
           ) -> tuple[str | None, list[Path]]:
    """(text for stdout or None, files written)."""
    if fmt == "text":
        return _emit(to_text(report), out)
    if fmt == "json":
        return _emit(to_json(report), out)
    if fmt == "csv":
        if out is None:
            key = table or "t_findings"
            if key not in report.tables:
                raise MonitorError(f"no table '{key}'; tables: {', '.join(report.tables)}")
            return csv_text(report.tables[key]), []
        folder = make_dir(Path(out))
        written = []
        for key, t in report.tables.items():
            path = folder / f"{key[2:]}.csv"
            write_atomic(path, csv_text(t), encoding="utf-8-sig")
            written.append(path)
        return None, written
    if out is None:
        raise usage(MonitorError(f"--format {fmt} needs --out FILE"))
    if fmt == "html":
        from .html import to_html

        return _emit(to_html(report), out)
    if fmt == "xlsx":
        from .xlsx import write_xlsx

        write_atomic(Path(out), lambda tmp: write_xlsx(report, tmp))
        return None, [Path(out)]
    raise MonitorError(f"unknown format '{fmt}'; one of {', '.join(FORMATS)}")


def _emit(text: str, out) -> tuple[str | None, list[Path]]:
    if out is None:
        return text, []
    write_atomic(Path(out), text)
    return None, [Path(out)]
