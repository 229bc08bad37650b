"""late_entry (补录): a step keyed in long after it happened (recorded_at − occurred_at)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from sqlalchemy import Connection, select

from ...models import Event
from ..finding import Context, Finding
from ..sql import changed_cases, in_scope, seconds_between
from ._common import by_case, local

TITLE = "事后补录（录入时间远晚于办理时间）"
REGIONAL = True  # one county at a time: its events alone (run --jobs)
DEFAULT_MESSAGE = "案件 {case_id}：{steps} 补录，最长延迟 {max_hours} 小时"
FIELDS = ("steps", "max_hours", "count")
BY_CASE = True  # per case, from its events alone (see kinds.Kind)


@dataclass(frozen=True)
class Params:
    max_hours: float = 48


def detect(conn: Connection, rule, ctx: Context) -> Iterator[Finding]:
    e = Event.__table__
    delay = seconds_between(e.c.recorded_at, e.c.occurred_at)
    query = (select(e.c.event_id, e.c.case_id, e.c.item_code, e.c.department, e.c.step,
                    e.c.actor, e.c.occurred_at, e.c.recorded_at, delay.label("delay"))
             .where(e.c.recorded_at.is_not(None), e.c.recorded_at <= ctx.as_of,
                    delay > rule.params.max_hours * 3600,
                    in_scope(rule.scope, e.c.department, e.c.item_code),
                    changed_cases(ctx, e.c.case_id))
             .order_by(e.c.case_id, e.c.occurred_at, e.c.id))
    for case_id, rows in by_case(conn.execute(query)):
        first = rows[0]
        hours = max(r.delay for r in rows) / 3600
        yield Finding(
            subject=case_id, case_id=case_id, actor=first.actor, department=first.department,
            item_code=first.item_code,
            fields={"steps": "、".join(r.step for r in rows), "max_hours": round(hours, 1),
                    "count": len(rows)},
            evidence={"entries": [{"event_id": r.event_id, "step": r.step, "actor": r.actor,
                                   "occurred_at": local(r.occurred_at, ctx),
                                   "recorded_at": local(r.recorded_at, ctx),
                                   "delay_hours": round(r.delay / 3600, 2)} for r in rows],
                      "max_hours_allowed": rule.params.max_hours},
            event_ids=tuple(r.event_id for r in rows))
