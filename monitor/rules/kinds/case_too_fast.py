"""case_too_fast (超快审批): acceptance → decision (or completion if no decision) faster
than plausible for the item; on-the-spot items (legal_days 0) are exempt."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from sqlalchemy import Connection, case, func, select

from ...models import Event, Item
from ..finding import Context, Finding
from ..sql import changed_cases, in_scope, seconds_between
from ._common import local

TITLE = "审批过快（受理至决定用时过短）"
DEFAULT_MESSAGE = "案件 {case_id}：受理至{end_step}仅用 {duration}（下限 {limit_minutes} 分钟）"
FIELDS = ("end_step", "duration", "seconds", "limit_minutes")
BY_CASE = True  # per case, from its events alone (see kinds.Kind)


@dataclass(frozen=True)
class Params:
    min_case_minutes: float = 60


def detect(conn: Connection, rule, ctx: Context) -> Iterator[Finding]:
    e = Event.__table__

    def first(step: str):
        return func.min(case((e.c.step == step, e.c.occurred_at)))

    spans = (select(e.c.case_id, func.min(e.c.item_code).label("item_code"),
                    func.min(e.c.department).label("department"),
                    first("accept").label("accepted"), first("decide").label("decided"),
                    first("complete").label("completed"))
             .where(e.c.occurred_at <= ctx.as_of,
                    in_scope(rule.scope, e.c.department, e.c.item_code),
                    changed_cases(ctx, e.c.case_id))
             .group_by(e.c.case_id).subquery())
    end = func.coalesce(spans.c.decided, spans.c.completed)
    seconds = seconds_between(end, spans.c.accepted)
    limit = func.coalesce(Item.min_case_minutes, rule.params.min_case_minutes)
    query = (select(spans, seconds.label("seconds"), limit.label("limit"))
             .join(Item, Item.code == spans.c.item_code)
             .where(Item.legal_days > 0, spans.c.accepted.is_not(None), end.is_not(None),
                    seconds < limit * 60)
             .order_by(spans.c.case_id))
    for r in conn.execute(query):
        end_step = "决定" if r.decided is not None else "办结"
        minutes, secs = divmod(round(r.seconds), 60)
        yield Finding(
            subject=r.case_id, case_id=r.case_id, department=r.department, item_code=r.item_code,
            fields={"end_step": end_step, "duration": f"{minutes} 分 {secs} 秒",
                    "seconds": round(r.seconds), "limit_minutes": f"{r.limit:g}"},
            evidence={"accepted_at": local(r.accepted, ctx),
                      "ended_at": local(r.decided or r.completed, ctx),
                      "end_step": "decide" if r.decided is not None else "complete",
                      "seconds": round(r.seconds, 1), "limit_minutes": r.limit})
