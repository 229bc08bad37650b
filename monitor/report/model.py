"""A report as plain data: tables of rows, each column with a format; every renderer
(text, HTML, XLSX, CSV, JSON) works from this and nothing else."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from .period import Period

# formats: int, pct (a fraction 0…1), change (a fraction, signed), num (one decimal), text,
# date, label (a stored id shown as its word: Table.names; CSV and JSON keep the id)


@dataclass(frozen=True)
class Column:
    key: str
    fmt: str = "int"


@dataclass
class Table:
    key: str          # also the label key of its title and the name of its sheet / CSV file
    columns: list[Column]
    rows: list[dict[str, Any]]
    total: dict[str, Any] | None = None  # the county row, shown last
    note: str | None = None
    # the words shown for the stored ids of its "label" columns (monitor/vocabulary.py)
    names: dict[str, str] = field(default_factory=dict)

    def shown(self, column: Column, value: Any) -> Any:
        """``value`` as a person reads it: a stored id of a ``label`` column as its word
        (a rule id as its title, ``open`` as 待处置); anything else as it is."""
        if column.fmt == "label" and isinstance(value, str):
            return self.names.get(value, value)
        return value


@dataclass
class Report:
    title: str
    period: Period
    previous: Period
    year_before: Period
    department: str | None
    generated_at: datetime
    language: str
    tables: dict[str, Table] = field(default_factory=dict)
    summary: dict[str, Any] = field(default_factory=dict)
    charts: dict[str, Any] = field(default_factory=dict)
    kind: str = "report"  # or "scores": a scorecard, rendered table by table
    # the trail when the report was made: (entries, head hash, hash function), printed so
    # that a copy kept outside the database remembers it (docs/security.md)
    trail: tuple[int, str, str] | None = None
    region: str | None = None  # the county, city or province reported on; None: the store
    # how the header names it: "330106 西湖区" (the store's own when ``region`` is None);
    # None when there is nothing to say (no region asked for, the store's own not named)
    region_label: str | None = None

    def table(self, key: str) -> Table:
        return self.tables[key]


def trail_line(report: Report, label) -> str | None:
    """The trail's head as one line, e.g. ``监察留痕 第 1,822 条 · 头哈希 4c38… (sha256)``."""
    if report.trail is None:
        return None
    entries, head, algorithm = report.trail
    return label("trail_line").format(n=f"{entries:,}", head=head, algorithm=algorithm)


def change(now: int, before: int | None) -> float | None:
    """Relative change (环比/同比), or None where the earlier period has no data."""
    if not before:
        return None
    return round((now - before) / before, 4)


def rate(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def fmt_value(value: Any, fmt: str) -> str:
    """A cell as text, the same in every renderer that shows text."""
    if value is None:
        return "—"
    if fmt == "pct":
        return f"{value * 100:.1f}%"
    if fmt == "change":
        return f"{value * 100:+.1f}%"
    if fmt == "num":
        return f"{value:.1f}"
    if fmt == "int":
        return f"{value:,}"
    return str(value)


def summary_fmt(key: str, value: Any) -> str:
    """The format of a summary figure: rates as percentages, other floats with one decimal."""
    return "pct" if key.endswith("rate") else "num" if isinstance(value, float) else "int"
