"""Spot checks (抽检): a reproducible random sample of completed cases for manual review,
and the reviewers' results, which the report turns into pass rates.

The sample is drawn from the cases completed in the period (one department or all),
sorted by case id, with ``random.Random(seed)``: the same period, department, size and
seed always draw the same cases, whatever the database's row order. Drawn cases are
stored (once each); ``record`` gives one a result.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, Row, and_, func, insert, select, update

from .errors import MonitorError, NotAllowed, NotFound, usage
from .models import Event, SpotCheck, User
from .report.period import Period
from .rules.kinds._common import aware


@dataclass(frozen=True)
class Drawn:
    case_id: str
    department: str | None
    item_code: str | None
    completed_at: datetime
    new: bool


def draw(engine: Engine, period: Period, tz, n: int, seed: str, now: datetime,
         department: str | None = None) -> list[Drawn]:
    """Draw ``n`` completed cases of ``period`` (all of them if fewer) and store them."""
    lo, hi = period.bounds(tz)
    e = Event.__table__
    first = func.min(e.c.occurred_at)
    query = (select(e.c.case_id, func.min(e.c.department), func.min(e.c.item_code), first)
             .where(e.c.step == "complete",
                    e.c.department == department if department else and_(True))
             .group_by(e.c.case_id).having(and_(first >= lo, first < hi))
             .order_by(e.c.case_id))
    with engine.begin() as conn:
        cases = conn.execute(query).all()
        picked = random.Random(f"{period.label}|{department or ''}|{seed}").sample(
            cases, min(n, len(cases)))
        picked.sort(key=lambda r: r[0])
        known = set(conn.scalars(select(SpotCheck.case_id).where(
            SpotCheck.case_id.in_([r[0] for r in picked])))) if picked else set()
        out = []
        for case_id, dept, item, at in picked:
            if case_id not in known:
                conn.execute(insert(SpotCheck).values(
                    case_id=case_id, department=dept, item_code=item, completed_at=aware(at),
                    period=period.label, seed=str(seed), drawn_at=now))
            out.append(Drawn(case_id, dept, item, aware(at), case_id not in known))
    return out


def record(engine: Engine, case_id: str, by: str, passed: bool, note: str | None,
           now: datetime) -> Row[Any]:
    """Record the result of a drawn case's review (a second record replaces the first)."""
    if not note:
        raise usage(MonitorError("--note is required: what was checked, and what was wrong "
                                 "if failed"))
    with engine.begin() as conn:
        if conn.scalar(select(User.id).where(User.id == by)) is None:
            raise NotAllowed(f"no user '{by}' in the catalog")
        row = conn.execute(select(SpotCheck).where(SpotCheck.case_id == case_id)).first()
        if row is None:
            raise NotFound(f"case {case_id} was not drawn for a spot check "
                           "(draw with: permit-monitor sample --period …)")
        conn.execute(update(SpotCheck).where(SpotCheck.case_id == case_id).values(
            result="pass" if passed else "fail", by_user=by, note=note, recorded_at=now))
        return conn.execute(select(SpotCheck).where(SpotCheck.case_id == case_id)).one()
