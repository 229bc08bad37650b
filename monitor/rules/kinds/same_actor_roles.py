"""same_actor_roles (一人多岗): one actor performing several approval roles in one case.

The seed's case: an environmental-impact approval completed in 2 min 33 s because the
acceptance clerk held the section chief's, deputy head's and head's rights too.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from sqlalchemy import Connection, func, select

from ...models import Event
from ..finding import Context, Finding
from ..sql import changed_cases, in_scope
from ._common import by_case

TITLE = "一人多岗（同一人办理多个审批环节）"
DEFAULT_MESSAGE = "案件 {case_id}：{actors} 一人办理 {roles}"
FIELDS = ("actors", "roles", "count")
BY_CASE = True  # per case, from its events alone (see kinds.Kind)
GATE = ("deny", "warn")  # the workflow gate may refuse a step on it (see kinds.Kind)


@dataclass(frozen=True)
class Params:
    steps: tuple[str, ...] = ("accept", "review", "approve", "decide")
    min_roles: int = 2


def detect(conn: Connection, rule, ctx: Context) -> Iterator[Finding]:
    e = Event.__table__
    roles = func.count(func.distinct(e.c.step))
    query = (select(e.c.case_id, e.c.actor, func.min(e.c.department).label("department"),
                    func.min(e.c.item_code).label("item_code"), roles.label("roles"))
             .where(e.c.step.in_(rule.params.steps), e.c.actor.is_not(None),
                    e.c.occurred_at <= ctx.as_of,
                    in_scope(rule.scope, e.c.department, e.c.item_code),
                    changed_cases(ctx, e.c.case_id))
             .group_by(e.c.case_id, e.c.actor)
             .having(roles >= max(rule.params.min_roles, 2))
             .order_by(e.c.case_id, e.c.actor))
    found = list(by_case(conn.execute(query)))
    steps_of = _steps(conn, [c for c, _ in found], rule.params.steps, ctx)
    for case_id, rows in found:
        held = {r.actor: steps_of.get((case_id, r.actor), []) for r in rows}
        first = rows[0]
        yield Finding(
            subject=case_id, case_id=case_id, actor=first.actor, department=first.department,
            item_code=first.item_code,
            fields={"actors": "、".join(held), "count": max(r.roles for r in rows),
                    "roles": "；".join(f"{a}: {'/'.join(s for s, _ in v)}" for a, v in held.items())},
            evidence={"actors": {a: [{"step": s, "event_id": i} for s, i in v]
                                 for a, v in held.items()}},
            event_ids=tuple(i for v in held.values() for _, i in v))


def _steps(conn: Connection, cases: list[str], steps, ctx: Context) -> dict:
    """(case, actor) → [(step, event_id)] for the flagged cases only (few)."""
    e = Event.__table__
    out: dict = {}
    for start in range(0, len(cases), 500):
        rows = conn.execute(select(e.c.case_id, e.c.actor, e.c.step, e.c.event_id)
                            .where(e.c.case_id.in_(cases[start:start + 500]),
                                   e.c.step.in_(steps), e.c.occurred_at <= ctx.as_of)
                            .order_by(e.c.occurred_at, e.c.id))
        for r in rows:
            out.setdefault((r.case_id, r.actor), []).append((r.step, r.event_id))
    return out
