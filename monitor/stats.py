"""Supervision figures per department and period, for the report (绩效考评).

:func:`supervision_counts` gives, for each department and local month (or day, or
year) in ``[start, end)``: reminders sent to tier 1, supervision orders (督办) issued,
the supervision messages as the county counted them — 一级督办信息, each tier-1 monitor
told of a new, risen or reopened alert (monitor/tier1.py; one per alert, level and
person, however many channels carried it), and 二级督办信息, each tier-1 monitor a
supervision order went to — dispositions recorded by kind, and the median time from raising an alert to its first
disposition. Each figure is counted in the period its event happened in (the order
issued, the reminder sent, the disposition recorded). Volumes are small (hundreds a
month for a county), so grouping by local period happens here, the same on every backend.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone, tzinfo
from statistics import median

from sqlalchemy import Engine, func, literal_column, select

from .models import Alert, AlertNotice, Disposition, SupervisionOrder, TrailEntry

PERIODS = {"day": "%Y-%m-%d", "month": "%Y-%m", "year": "%Y"}


@dataclass
class DeptPeriod:
    department: str
    period: str
    reminders: int = 0
    orders: int = 0
    tier1_messages: int = 0  # 一级督办信息: tier-1 monitors told of an alert at a level
    tier2_messages: int = 0  # 二级督办信息: supervision orders, one per monitor ordered
    dispositions: Counter = field(default_factory=Counter)  # rectified / explained / …
    resolve_times: list[timedelta] = field(default_factory=list, repr=False)

    @property
    def median_time_to_resolve(self) -> timedelta | None:
        # median() sorts and averages two middle values, which timedeltas support;
        # typeshed declares it for numbers only
        return median(self.resolve_times) if self.resolve_times else None  # type: ignore[type-var]


def _bounds(start: date, end: date, tz: tzinfo) -> tuple[datetime, datetime]:
    return (datetime.combine(start, time(), tz).astimezone(timezone.utc),
            datetime.combine(end, time(), tz).astimezone(timezone.utc))


def supervision_counts(engine: Engine, tz: tzinfo, start: date, end: date,
                       period: str = "month", by_region: bool = False) -> list[DeptPeriod]:
    """Figures per (department, period) for local dates ``start`` ≤ d < ``end``
    (``by_region``: each department as ``REGION:CODE``, where counties share codes)."""
    dept_of = (Alert.region.concat(literal_column("':'")).concat(Alert.department)
               if by_region else Alert.department)
    fmt = PERIODS[period]
    lo, hi = _bounds(start, end, tz)
    out: dict[tuple[str, str], DeptPeriod] = {}

    def cell(dept: str | None, at: datetime) -> DeptPeriod:
        key = (dept or "-", at.astimezone(tz).strftime(fmt))
        if key not in out:
            out[key] = DeptPeriod(*key)
        return out[key]

    with engine.connect() as conn:
        for dept, at in conn.execute(
                select(dept_of, TrailEntry.at).join(Alert, Alert.id == TrailEntry.alert_id)
                .where(TrailEntry.action == "reminded", TrailEntry.at >= lo, TrailEntry.at < hi)):
            cell(dept, at).reminders += 1
        for dept, at, to in conn.execute(
                select(dept_of, SupervisionOrder.issued_at, SupervisionOrder.to_users)
                .join(Alert, Alert.id == SupervisionOrder.alert_id)
                .where(SupervisionOrder.issued_at >= lo, SupervisionOrder.issued_at < hi)):
            cell(dept, at).orders += 1
            cell(dept, at).tier2_messages += len(to or [])
        for dept, at in conn.execute(
                select(dept_of, AlertNotice.at)
                .join(Alert, Alert.id == AlertNotice.alert_id)
                .where(AlertNotice.reason != "handler", AlertNotice.at >= lo,
                       AlertNotice.at < hi)):
            cell(dept, at).tier1_messages += 1
        first = select(Disposition.alert_id, func.min(Disposition.id).label("id")) \
            .group_by(Disposition.alert_id).subquery()
        firsts = set(conn.scalars(select(first.c.id)))
        for d_id, alert_id, dept, kind, at, raised in conn.execute(
                select(Disposition.id, Disposition.alert_id, dept_of, Disposition.kind,
                       Disposition.at, Alert.raised_at)
                .join(Alert, Alert.id == Disposition.alert_id)
                .where(Disposition.at >= lo, Disposition.at < hi)):
            c = cell(dept, at)
            c.dispositions[kind] += 1
            if d_id in firsts:
                c.resolve_times.append(at - raised)
    return [out[k] for k in sorted(out)]
