"""The report as one self-contained HTML file: inline CSS, inline SVG charts, no script,
nothing fetched; readable on screen, printable on A4 (print CSS), Chinese text in the
system's CJK fonts. Every figure cell carries ``data-table``, ``data-row`` and
``data-col`` so a test (or a person's tool) can find it."""

from __future__ import annotations

from html import escape

from .build import RED_LIST_HTML
from .labels import labeler
from .model import Report, Table, fmt_value, summary_fmt, trail_line

CSS = """
@page { size: A4; margin: 14mm 12mm; }
* { box-sizing: border-box; }
body { font-family: "Noto Sans CJK SC", "Source Han Sans SC", "Microsoft YaHei", "PingFang SC",
       "WenQuanYi Micro Hei", "SimSun", sans-serif; color: #222; margin: 0 auto; max-width: 190mm;
       padding: 8mm 4mm; font-size: 10.5pt; line-height: 1.45; }
h1 { font-size: 18pt; text-align: center; color: #a40000; margin: 0 0 2mm; letter-spacing: 2px; }
.meta { text-align: center; color: #555; font-size: 9.5pt; margin-bottom: 4mm; }
h2 { font-size: 12.5pt; border-left: 4px solid #a40000; padding-left: 6px; margin: 6mm 0 2mm; }
table { border-collapse: collapse; width: 100%; font-size: 9pt; page-break-inside: auto; }
thead { display: table-header-group; }
tr { page-break-inside: avoid; }
th, td { border: 1px solid #bbb; padding: 2px 4px; }
th { background: #f3e9e9; font-weight: 600; }
td.n { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
tr.total td { font-weight: 700; background: #fafafa; }
.summary { display: flex; flex-wrap: wrap; gap: 3mm; margin: 2mm 0 4mm; }
.summary div { border: 1px solid #ddd; border-radius: 3px; padding: 2mm 3mm; min-width: 28mm; }
.summary b { display: block; font-size: 13pt; color: #a40000; }
.note { color: #666; font-size: 9pt; }
svg { display: block; margin: 2mm auto; max-width: 100%; height: auto; }
svg text { font-family: inherit; font-size: 10px; fill: #333; }
.small td { font-size: 8pt; }
.small th { white-space: nowrap; font-size: 8.5pt; }
@media print { body { padding: 0; max-width: none; } h2 { page-break-after: avoid; }
               .chart { page-break-inside: avoid; } }
"""
COLORS = {"warning": "#f0b400", "yellow": "#e07b00", "red": "#c00000", "line": "#1f5fa8",
          "bar": "#9db7d9"}


def _cell(table: Table, row_key: object, col, value) -> str:
    cls = "" if col.fmt in ("text", "label") else ' class="n"'
    return (f'<td{cls} data-table="{table.key}" data-row="{escape(str(row_key))}" '
            f'data-col="{col.key}">{escape(fmt_value(table.shown(col, value), col.fmt))}</td>')


def _table(table: Table, label, limit: int | None = None, small: bool = False) -> str:
    head = "".join(f"<th>{escape(label(c.key))}</th>" for c in table.columns)
    key_col = table.columns[0].key
    rows = table.rows[:limit] if limit else table.rows
    body = []
    for i, r in enumerate(rows):
        rk = r.get(key_col) if table.key not in ("t_by_kind", "t_online_daily") else i
        body.append("<tr>" + "".join(_cell(table, rk, c, r.get(c.key))
                                     for c in table.columns) + "</tr>")
    if table.total:
        cells = []
        for c in table.columns:
            v = table.total.get(c.key)
            cells.append(_cell(table, "total", c, v) if v not in ("",) else "<td></td>")
        body.append('<tr class="total">' + "".join(cells) + "</tr>")
    cls = ' class="small"' if small else ""
    return f"<table{cls}><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _bars_by_department(report: Report, label) -> str:
    rows = report.tables["t_findings"].rows
    if not rows:
        return ""
    w, h, left, bottom = 680, 220, 40, 40
    top_n = max([r["findings"] for r in rows] + [1])
    step = (w - left - 10) / len(rows)
    parts = [f'<svg class="chart" viewBox="0 0 {w} {h}" width="{w}" height="{h}" '
             f'role="img" aria-label="{escape(label("c_findings_by_dept"))}">']
    for k in range(5):
        y = h - bottom - (h - bottom - 20) * k / 4
        parts.append(f'<line x1="{left}" x2="{w - 10}" y1="{y:.1f}" y2="{y:.1f}" '
                     f'stroke="#e5e5e5"/><text x="{left - 4}" y="{y + 3:.1f}" '
                     f'text-anchor="end">{round(top_n * k / 4)}</text>')
    for i, r in enumerate(rows):
        x, base = left + i * step + step * 0.15, h - bottom
        for lvl in ("warning", "yellow", "red"):
            bh = (h - bottom - 20) * r[lvl] / top_n
            if bh > 0:
                parts.append(f'<rect x="{x:.1f}" y="{base - bh:.1f}" width="{step * 0.7:.1f}" '
                             f'height="{bh:.1f}" fill="{COLORS[lvl]}"><title>'
                             f'{escape(r["name"])} {escape(label(lvl))} {r[lvl]}</title></rect>')
                base -= bh
        parts.append(f'<text x="{x + step * 0.35:.1f}" y="{h - bottom + 14}" '
                     f'text-anchor="middle">{escape(r["department"])}</text>')
    for j, lvl in enumerate(("warning", "yellow", "red")):
        parts.append(f'<rect x="{left + j * 90}" y="{h - 14}" width="10" height="10" '
                     f'fill="{COLORS[lvl]}"/><text x="{left + j * 90 + 14}" y="{h - 5}">'
                     f'{escape(label(lvl))}</text>')
    parts.append("</svg>")
    return "".join(parts)


def _trend(report: Report, label) -> str:
    trend = report.charts["trend"]
    if not trend:
        return ""
    w, h, left, bottom = 680, 200, 40, 30
    top_n = max([max(c, f) for _, c, f in trend] + [1])
    step = (w - left - 10) / len(trend)
    ys = h - bottom - 15

    def y(v):
        return h - bottom - ys * v / top_n

    parts = [f'<svg class="chart" viewBox="0 0 {w} {h}" width="{w}" height="{h}" role="img" '
             f'aria-label="{escape(label("c_trend"))}">',
             f'<text x="{left - 4}" y="{y(top_n) + 3:.1f}" text-anchor="end">{top_n}</text>',
             f'<text x="{left - 4}" y="{y(0) + 3:.1f}" text-anchor="end">0</text>']
    for i, (d, c, _) in enumerate(trend):
        x = left + i * step
        if c:
            parts.append(f'<rect x="{x + step * 0.1:.1f}" y="{y(c):.1f}" width="{step * 0.8:.1f}" '
                         f'height="{h - bottom - y(c):.1f}" fill="{COLORS["bar"]}"><title>{d} '
                         f'{escape(label("completed"))} {c}</title></rect>')
        if len(trend) <= 31 or i % max(1, len(trend) // 15) == 0:
            parts.append(f'<text x="{x + step / 2:.1f}" y="{h - bottom + 12}" '
                         f'text-anchor="middle">{d.day}</text>')
    points = " ".join(f"{left + i * step + step / 2:.1f},{y(f):.1f}"
                      for i, (_, _, f) in enumerate(trend))
    parts.append(f'<polyline points="{points}" fill="none" stroke="{COLORS["line"]}" '
                 f'stroke-width="1.5"/>')
    parts.append(f'<rect x="{left}" y="{h - 12}" width="10" height="10" fill="{COLORS["bar"]}"/>'
                 f'<text x="{left + 14}" y="{h - 3}">{escape(label("completed"))}</text>'
                 f'<line x1="{left + 110}" x2="{left + 124}" y1="{h - 7}" y2="{h - 7}" '
                 f'stroke="{COLORS["line"]}" stroke-width="2"/><text x="{left + 128}" '
                 f'y="{h - 3}">{escape(label("findings"))}</text></svg>')
    return "".join(parts)


def _on_time(report: Report, label) -> str:
    rows = [r for r in report.tables["t_cases"].rows if r["on_time_rate"] is not None]
    if not rows:
        return ""
    w, bar_h, left = 680, 16, 150
    h = len(rows) * (bar_h + 4) + 10
    parts = [f'<svg class="chart" viewBox="0 0 {w} {h}" width="{w}" height="{h}" role="img" '
             f'aria-label="{escape(label("c_on_time"))}">']
    for i, r in enumerate(rows):
        yy = 5 + i * (bar_h + 4)
        bw = (w - left - 60) * r["on_time_rate"]
        parts.append(f'<text x="{left - 6}" y="{yy + 12}" text-anchor="end">'
                     f'{escape(r["name"])}</text><rect x="{left}" y="{yy}" width="{bw:.1f}" '
                     f'height="{bar_h}" fill="{COLORS["line"]}"/><text x="{left + bw + 4:.1f}" '
                     f'y="{yy + 12}">{fmt_value(r["on_time_rate"], "pct")}</text>')
    parts.append("</svg>")
    return "".join(parts)


def to_html(report: Report) -> str:
    label = labeler(report.language)
    s = report.summary
    summary = "".join(
        f'<div>{escape(label(k))}<b data-summary="{k}">'
        f'{escape(fmt_value(v, summary_fmt(k, v)))}</b></div>'
        for k, v in s.items())
    if report.kind != "report":
        sections = [(k, _table(t, label, small=k == "t_deductions"))
                    for k, t in report.tables.items()]
    else:
        sections = _report_sections(report, label)
    body = "".join(f'<section id="{k}"><h2>{escape(label(k))}</h2>{html}</section>'
                   for k, html in sections)
    return _page(report, label, summary, body)


def _report_sections(report: Report, label) -> list[tuple[str, str]]:
    sections = [
        ("t_cases", _table(report.tables["t_cases"], label) + _on_time(report, label)),
        ("t_findings", _table(report.tables["t_findings"], label)
         + _bars_by_department(report, label)),
        ("t_trend", _trend(report, label)),
        ("t_supervision", _table(report.tables["t_supervision"], label)),
        ("t_by_kind", _table(report.tables["t_by_kind"], label, small=True)),
        ("t_items", _table(report.tables["t_items"], label)),
        ("t_actors", _table(report.tables["t_actors"], label)),
        ("t_online", _note(report.tables["t_online"]) + _table(report.tables["t_online"], label)),
        ("t_spot", _table(report.tables["t_spot"], label)),
        *((key, _table(report.tables[key], label)) for key in ("t_ratings", "t_complaints",
                                                              "t_volume")
          if key in report.tables),
    ]
    red = report.tables["t_red"]
    more = len(red.rows) - RED_LIST_HTML
    sections.append(("t_red", f'<p class="note" data-red-count="{len(red.rows)}">'
                              f'{escape(label("red"))}: {len(red.rows):,}</p>'
                     + _table(red, label, RED_LIST_HTML, small=True)
                     + (f'<p class="note">{escape(label("more_rows").format(n=more))}</p>'
                        if more > 0 else "")))
    return sections


def _page(report: Report, label, summary: str, body: str) -> str:
    p = report.period
    dept = report.department or label("all_departments")
    lang = "zh-CN" if report.language == "zh" else "en"
    return (f'<!DOCTYPE html><html lang="{lang}"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>{escape(report.title)} {escape(p.label)}</title><style>{CSS}</style></head>"
            f"<body><h1>{escape(report.title)}</h1>"
            f'<div class="meta">{escape(label("period"))}: <span data-period="{p.label}">'
            f"{p.start} — {p.last}</span> · {escape(label('department_filter'))}: {escape(dept)}"
            + (f" · {escape(label('region_filter'))}: {escape(report.region_label)}"
               if report.region_label else "") +
            f" · {escape(label('previous'))}: {report.previous.start} — {report.previous.last}"
            f" · {escape(label('year_before'))}: {report.year_before.start} — "
            f"{report.year_before.last} · {escape(label('generated'))}: "
            f"{report.generated_at:%Y-%m-%d %H:%M} ({report.generated_at.tzinfo})</div>"
            f'<div class="summary">{summary}</div>{body}{_trail(report, label)}</body></html>\n')


def _trail(report: Report, label) -> str:
    line = trail_line(report, label)
    return f'<p class="meta trail">{escape(line)}</p>' if line else ""


def _note(table: Table) -> str:
    return f'<p class="note">{escape(table.note)}</p>' if table.note else ""
