"""Spot checks (抽检): a reproducible random sample of completed cases for manual review,
and the reviewers' results, which the report turns into pass rates.

The sample is drawn from the cases completed in the period (one department or all),
sorted by case id, with ``random.Random(seed)``: the same period, department, size and
seed always draw the same cases, whatever the database's row order. Drawn cases are
stored (once each) and the draw is on the trail; ``record`` gives one a result.

Only a monitor of the case's department (``monitor_l1``) or a tier-2 monitor may record a
result (monitor/authz.py, action ``spot_check``). A case already recorded takes a second
record only as an **amendment** with its reason; the first result stays on the trail
(``spot_check_recorded``, then ``spot_check_amended`` saying what it was), never silently
overwritten. Drawing and recording are supervised state (monitor/supervised.py).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime
from types import SimpleNamespace
from typing import Any

from sqlalchemy import Engine, Row, and_, func, insert, select

from . import authz, trail
from .authz import Actor
from .errors import InvalidTransition, MonitorError, NotAllowed, NotFound, usage
from .models import Event, SpotCheck, User
from .report.period import Period
from .rules.kinds._common import aware
from .supervised import change, update as traced_update
from .trail import SYSTEM, Entry


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
    query = (select(e.c.case_id, func.min(e.c.department), func.min(e.c.item_code), first,
                    func.min(e.c.region))
             .where(e.c.step == "complete",
                    e.c.department == department if department else and_(True))
             .group_by(e.c.case_id).having(and_(first >= lo, first < hi))
             .order_by(e.c.case_id))
    with engine.begin() as conn:
        trail.lock(conn)
        cases = conn.execute(query).all()
        picked = random.Random(f"{period.label}|{department or ''}|{seed}").sample(
            cases, min(n, len(cases)))
        picked.sort(key=lambda r: r[0])
        known = set(conn.scalars(select(SpotCheck.case_id).where(
            SpotCheck.case_id.in_([r[0] for r in picked])))) if picked else set()
        out, changes = [], []
        for case_id, dept, item, at, region in picked:
            if case_id not in known:
                row = {"case_id": case_id, "department": dept, "item_code": item,
                       "completed_at": aware(at), "period": period.label, "seed": str(seed),
                       "drawn_at": now}
                row_id = conn.execute(insert(SpotCheck).values(**row, region=region)
                                      .returning(SpotCheck.id)).scalar_one()
                changes.append(change("spot_checks", row_id, row, new=True))
            out.append(Drawn(case_id, dept, item, aware(at), case_id not in known))
        if changes:
            trail.append(conn, now, [Entry("spot_check_drawn", None, SYSTEM, {
                "period": period.label, "department": department, "seed": str(seed),
                "cases": [c["set"]["case_id"] for c in changes]}, changes=changes)])
    return out


def record(engine: Engine, case_id: str, by: str, passed: bool, note: str | None,
           now: datetime, reason: str | None = None, channel: str = "cli") -> Row[Any]:
    """Record the result of a drawn case's review; a case already recorded needs
    ``reason`` (an amendment). Who may: see the module docstring."""
    if not note:
        raise usage(MonitorError("--note is required: what was checked, and what was wrong "
                                 "if failed"))
    with engine.begin() as conn:
        trail.lock(conn)
        user = conn.execute(select(User).where(User.id == by)).one_or_none()
        if user is None:
            raise NotAllowed(f"no user '{by}' in the catalog")
        row = conn.execute(select(SpotCheck).where(SpotCheck.case_id == case_id)).first()
        if row is None:
            raise NotFound(f"case {case_id} was not drawn for a spot check "
                           "(draw with: permit-monitor sample --period …)")
        what = SimpleNamespace(department=row.department,
                               what=f"the spot check of case {case_id}")
        authz.check(Actor.of_user(user, channel), "spot_check", what)
        result = "pass" if passed else "fail"
        detail: dict[str, Any] = {"case_id": case_id, "result": result, "note": note}
        action = "spot_check_recorded"
        if row.result is not None:
            if not reason or not reason.strip():
                raise InvalidTransition(
                    f"case {case_id} was already recorded ({row.result} by {row.by_user}): a "
                    "second record is an amendment and needs its reason (--reason)")
            action = "spot_check_amended"
            detail.update(reason=reason.strip(), was={"result": row.result, "by": row.by_user,
                                                      "note": row.note})
        state = traced_update(conn, "spot_checks", row.id, result=result, by_user=by,
                              note=note, recorded_at=now)
        trail.append(conn, now, [Entry(action, None, by, detail, channel, [state])])
        return conn.execute(select(SpotCheck).where(SpotCheck.case_id == case_id)).one()
