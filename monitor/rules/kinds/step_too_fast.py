"""step_too_fast (事后补录): a step done implausibly soon after the previous step of its case.

The seed's case: a site survey "done" 58 seconds after acceptance — the work was done on
paper and typed in afterwards. The limit per step is the item's ``min_minutes`` from the
catalog, else this rule's ``min_minutes``.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Mapping

from sqlalchemy import Connection, case, func, literal, null, select

from ...models import Event, Item
from ..finding import Context, Finding
from ..sql import changed_cases, in_scope, json_number, seconds_between
from ._common import by_case, local

TITLE = "环节办理过快（疑似事后补录）"
DEFAULT_MESSAGE = "案件 {case_id}：{steps}（疑似事后补录）"
FIELDS = ("steps", "fastest_seconds", "count")


@dataclass(frozen=True)
class Params:
    min_minutes: Mapping[str, float] = field(default_factory=lambda: MappingProxyType(
        {"survey": 30, "review": 5, "approve": 5, "decide": 5}))


def detect(conn: Connection, rule, ctx: Context) -> Iterator[Finding]:
    e = Event.__table__
    ordered = (e.c.occurred_at, e.c.id)
    steps = select(
        e.c.event_id, e.c.case_id, e.c.item_code, e.c.department, e.c.step, e.c.actor,
        e.c.occurred_at,
        func.lag(e.c.occurred_at).over(partition_by=e.c.case_id, order_by=ordered).label("prev_at"),
        func.lag(e.c.step).over(partition_by=e.c.case_id, order_by=ordered).label("prev_step"),
        func.lag(e.c.event_id).over(partition_by=e.c.case_id, order_by=ordered).label("prev_id"),
    ).where(e.c.occurred_at <= ctx.as_of,
            in_scope(rule.scope, e.c.department, e.c.item_code),
            changed_cases(ctx, e.c.case_id)).subquery()
    defaults = rule.params.min_minutes
    default = case({k: literal(float(v)) for k, v in defaults.items()}, value=steps.c.step,
                   else_=null()) if defaults else null()
    limit = func.coalesce(json_number(Item.min_minutes, steps.c.step), default)
    gap = seconds_between(steps.c.occurred_at, steps.c.prev_at)
    query = (select(steps, gap.label("gap"), limit.label("limit"))
             .join(Item, Item.code == steps.c.item_code)
             .where(steps.c.prev_at.is_not(None), limit.is_not(None), gap < limit * 60)
             .order_by(steps.c.case_id, steps.c.occurred_at))
    for case_id, rows in by_case(conn.execute(query)):
        parts = [f"{r.prev_step}→{r.step} 仅 {round(r.gap)} 秒（下限 {r.limit:g} 分钟）"
                 for r in rows]
        first = rows[0]
        yield Finding(
            subject=case_id, case_id=case_id, actor=first.actor, department=first.department,
            item_code=first.item_code,
            fields={"steps": "；".join(parts), "fastest_seconds": round(min(r.gap for r in rows)),
                    "count": len(rows)},
            evidence={"gaps": [{"step": r.step, "previous_step": r.prev_step,
                                "event_id": r.event_id, "previous_event_id": r.prev_id,
                                "previous_at": local(r.prev_at, ctx), "at": local(r.occurred_at, ctx),
                                "gap_seconds": round(r.gap, 1), "limit_minutes": r.limit,
                                "actor": r.actor} for r in rows]},
            event_ids=tuple(x for r in rows for x in (r.prev_id, r.event_id)))
