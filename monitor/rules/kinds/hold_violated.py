"""hold_violated (中止后继续办理): a held case that records a further step.

A rule with ``action: halt`` stops a case (中止流程, monitor/holds.py); the workflow
system is told and acknowledges it (monitor/holdsync.py). A step of that case that
happened while the hold was in force — after the moment it was placed, before it was
released — is the case going on regardless: a red finding, one per case and hold
(subject ``CASE|hold ID``), listing the steps, and saying whether the workflow system
had acknowledged the hold by then. The steps that stop a case themselves
(``suspend``, ``return``) do not count.

Incremental: a step after a hold happened after the run that placed it, so it is a new
event of its case when it is first seen (the kind goes by case).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from sqlalchemy import Connection, or_, select

from ...models import Event, Hold
from ..finding import Context, Finding
from ..sql import changed_cases, in_scope
from ._common import aware, by_case, local

TITLE = "中止后继续办理（违反中止流程）"
DEFAULT_MESSAGE = "案件 {case_id}：中止令 #{hold_id}（{held_at}）后仍办理 {steps}"
FIELDS = ("hold_id", "held_at", "steps", "count", "acknowledged")
BY_CASE = True  # per case, from its events and holds alone (see kinds.Kind)
STOPPING = ("suspend", "return")  # steps that stop a case: complying, not going on


@dataclass(frozen=True)
class Params:
    pass


def detect(conn: Connection, rule, ctx: Context) -> Iterator[Finding]:
    e = Event.__table__
    h = Hold.__table__
    query = (select(e.c.event_id, e.c.case_id, e.c.item_code, e.c.department, e.c.step,
                    e.c.actor, e.c.occurred_at, h.c.id.label("hold_id"), h.c.held_at,
                    h.c.acked_at, h.c.alert_id, h.c.rule_id.label("hold_rule"))
             .join(h, h.c.case_id == e.c.case_id)
             .where(e.c.occurred_at > h.c.held_at, e.c.occurred_at <= ctx.as_of,
                    or_(h.c.released_at.is_(None), e.c.occurred_at < h.c.released_at),
                    e.c.step.not_in(STOPPING),
                    in_scope(rule.scope, e.c.department, e.c.item_code),
                    changed_cases(ctx, e.c.case_id))
             .order_by(e.c.case_id, h.c.id, e.c.occurred_at, e.c.id))
    for case_id, rows in by_case(conn.execute(query)):
        for hold_id in dict.fromkeys(r.hold_id for r in rows):
            yield _finding(case_id, [r for r in rows if r.hold_id == hold_id], ctx)


def _finding(case_id: str, rows: list, ctx: Context) -> Finding:
    first = rows[0]
    acked = first.acked_at is not None and aware(first.acked_at) <= aware(first.occurred_at)
    return Finding(
        subject=f"{case_id}|hold {first.hold_id}", case_id=case_id, actor=first.actor,
        department=first.department, item_code=first.item_code, level="red",
        fields={"hold_id": first.hold_id, "held_at": local(first.held_at, ctx),
                "steps": "、".join(f"{r.step}（{local(r.occurred_at, ctx)}，{r.actor or '-'}）"
                                  for r in rows),
                "count": len(rows), "acknowledged": "已确认" if acked else "未确认"},
        evidence={"hold": {"id": first.hold_id, "alert_id": first.alert_id,
                           "rule_id": first.hold_rule, "held_at": local(first.held_at, ctx),
                           "acknowledged_at": local(first.acked_at, ctx)
                           if first.acked_at is not None else None,
                           "acknowledged_before_first_step": acked},
                  "steps": [{"event_id": r.event_id, "step": r.step, "actor": r.actor,
                             "occurred_at": local(r.occurred_at, ctx)} for r in rows]},
        event_ids=tuple(r.event_id for r in rows))
