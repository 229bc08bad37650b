"""Lists of alerts, one page at a time: a person's queue (待办), a filtered list, the API's.

The queue is what the actor has to act on: for a department monitor, their department's
alerts still open or acknowledged; for the county office (and a leader, who reads it),
the tier-2 alerts still open, acknowledged or awaiting review (resolved). Sorted by the
handling deadline, earliest first, with the working days left (negative: overdue).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import Engine, and_, false, func, select, true

from .. import authz
from ..alerts import ALERT_FIELDS
from ..authz import Actor
from ..calendar import WorkCalendar
from ..models import Alert, Department
from ..regionstore import in_region, region_column
from ..supervision import ACTIVE

LEVELS = ("warning", "yellow", "red")
STATUSES = ("open", "acknowledged", "resolved", "confirmed", "suppressed", "cleared")
TIER2_QUEUE = ("open", "acknowledged", "resolved")
MAX_PER_PAGE = 200


@dataclass(frozen=True)
class Filters:
    rule: str | None = None
    level: str | None = None
    status: str | None = None
    department: str | None = None
    kind: str | None = None
    tier: int | None = None
    overdue: bool = False
    queue: bool = False  # only what the actor has to act on


@dataclass
class Page:
    rows: list[dict[str, Any]]
    total: int
    page: int
    per_page: int
    today: date

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.per_page))


def visible(column, actor: Actor):
    """A WHERE clause: the rows ``actor`` may see (monitor/authz.py), by the department
    ``column`` and by the region of its table (a city office: its counties)."""
    seen = authz.visible_departments(actor)
    by_department = true() if seen is None else column.in_(sorted(seen)) if seen else false()
    scope = authz.visible_region(actor)
    if scope is None:
        return by_department
    return and_(by_department, in_region(region_column(column), scope))


def _where(actor: Actor, f: Filters, today: date) -> list:
    where = [visible(Alert.department, actor)]
    for column, value in ((Alert.rule_id, f.rule), (Alert.level, f.level),
                          (Alert.department, f.department), (Alert.kind, f.kind),
                          (Alert.tier, f.tier)):
        if value is not None:
            where.append(column == value)
    if f.queue:
        county = authz.sees_county(actor)
        where.append(Alert.status.in_(TIER2_QUEUE if county else ACTIVE))
        if county:
            where.append(Alert.tier == 2)
    if f.status is not None:
        where.append(Alert.status == f.status)
    elif not f.queue:
        where.append(Alert.status != "suppressed")
    if f.overdue:
        where += [Alert.status.in_(ACTIVE), Alert.due_on < today]
    return where


def days_left(calendar: WorkCalendar, today: date, due: date | None) -> int | None:
    """Working days from ``today`` to the deadline (0: due today; negative: overdue)."""
    return None if due is None else calendar.workdays_between(today, due)


def alerts_page(engine: Engine, actor: Actor, f: Filters, today: date, calendar: WorkCalendar,
                page: int = 1, per_page: int = 50) -> Page:
    """One page of the alerts ``actor`` may see that match ``f``, earliest deadline first
    (a queue) or newest first (a list); each row has ``ALERT_FIELDS``, the department's
    name and ``days_left`` (counted in the calendar of the alert's county)."""
    per_page = max(1, min(per_page, MAX_PER_PAGE))
    page = max(1, page)
    where = _where(actor, f, today)
    order = ((Alert.due_on.is_(None), Alert.due_on, Alert.id) if f.queue
             else (Alert.id.desc(),))
    with engine.connect() as conn:
        total = conn.scalar(select(func.count()).select_from(Alert).where(*where)) or 0
        # the page's ids first, from the covering indexes; then only those rows, which
        # are wide (message, evidence)
        ids = conn.scalars(select(Alert.id).where(*where).order_by(*order).limit(per_page)
                           .offset((page - 1) * per_page)).all()
        found = {r.id: r for r in conn.execute(
            select(*(getattr(Alert, c) for c in ALERT_FIELDS), Department.name.label("dept_name"),
                   Alert.region.label("alert_region"))
            .outerjoin(Department, and_(Department.region == Alert.region,
                                        Department.code == Alert.department))
            .where(Alert.id.in_(ids)))} if ids else {}
    rows = [found[i] for i in ids]
    out = []
    for r in rows:
        d = dict(r._mapping)
        region = d.pop("alert_region")
        d["days_left"] = (days_left(calendar.for_region(region), today, r.due_on)
                          if r.status in ACTIVE or (r.tier == 2 and r.status == "resolved")
                          else None)
        out.append(d)
    return Page(out, total, page, per_page, today)
