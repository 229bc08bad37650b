"""step_too_fast (事后补录): a step done implausibly soon after the previous step of its case.

The seed's case: a site survey "done" 58 seconds after acceptance — the work was done on
paper and typed in afterwards. The limit per step is this rule's ``item_min_minutes``
for the item and step (per-item thresholds, e.g. proposed by ``rules calibrate``), else the
item's ``min_minutes`` from the catalog, else this rule's ``min_minutes``.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from types import MappingProxyType, SimpleNamespace
from typing import Any, Mapping

from sqlalchemy import Connection, and_, case, func, literal, null, select

from ...models import Event, Item
from ..finding import Context, Finding
from ..sql import changed_cases, in_scope, json_number, one_of, seconds_since, time_point
from ._common import by_case, local

TITLE = "环节办理过快（疑似事后补录）"
DEFAULT_MESSAGE = "案件 {case_id}：{steps}（疑似事后补录）"
FIELDS = ("steps", "fastest_seconds", "count")
BY_CASE = True  # per case, from its events alone (see kinds.Kind)


@dataclass(frozen=True)
class Params:
    min_minutes: Mapping[str, float] = field(default_factory=lambda: MappingProxyType(
        {"survey": 30, "review": 5, "approve": 5, "decide": 5}))
    # item code → {step: minutes}: wins over the catalog's min_minutes for that item and step
    item_min_minutes: Mapping[str, Mapping[str, float]] = field(
        default_factory=lambda: MappingProxyType({}))


def detect(conn: Connection, rule, ctx: Context) -> Iterator[Finding]:
    defaults, per_item = rule.params.min_minutes, rule.params.item_min_minutes
    longest = _longest_limit(conn, defaults, per_item)
    if longest is None:
        return
    e = Event.__table__
    # 1. one narrow pass in (case_id, occurred_at) index order: each event's predecessor
    #    and the gap, kept only when shorter than the longest limit anywhere (few rows);
    #    each timestamp is parsed once
    points = select(e.c.id, e.c.case_id, e.c.occurred_at,
                    time_point(e.c.occurred_at).label("t"),
                    ).where(e.c.occurred_at <= ctx.as_of,
                            changed_cases(ctx, e.c.case_id)).subquery("points")
    ordered: dict[str, Any] = dict(partition_by=points.c.case_id, order_by=(points.c.occurred_at, points.c.id))
    pairs = select(points.c.id, points.c.t,
                   func.lag(points.c.t).over(**ordered).label("prev_t"),
                   func.lag(points.c.id).over(**ordered).label("prev_id"),
                   ).subquery("pairs")
    gap = seconds_since(pairs.c.t, pairs.c.prev_t)
    close = conn.execute(select(pairs.c.id, pairs.c.prev_id, gap.label("gap"))
                         .where(pairs.c.prev_t.is_not(None), gap < longest * 60)).all()
    if not close:
        return
    # 2. the candidates' details and their step's exact limit, looked up by id (a join on
    #    the pairs would leave PostgreSQL guessing their number: it guessed a third of the
    #    table and hashed all of it, twice)
    default = case({k: literal(float(v)) for k, v in defaults.items()}, value=e.c.step,
                   else_=null()) if defaults else null()
    own = case(*[(and_(e.c.item_code == item, e.c.step == step), literal(float(v)))
                 for item, steps in sorted(per_item.items()) for step, v in sorted(steps.items())],
               else_=null()) if any(per_item.values()) else null()
    limit = func.coalesce(own, json_number(Item.min_minutes, e.c.step), default)
    current = {r.id: r for r in conn.execute(
        select(e.c.id, e.c.event_id, e.c.case_id, e.c.item_code, e.c.department, e.c.step,
               e.c.actor, e.c.occurred_at, limit.label("limit"))
        .join(Item, Item.code == e.c.item_code)
        .where(one_of(e.c.id, [c.id for c in close]),
               in_scope(rule.scope, e.c.department, e.c.item_code), limit.is_not(None)))}
    before = {r.id: r for r in conn.execute(
        select(e.c.id, e.c.event_id, e.c.step, e.c.occurred_at)
        .where(one_of(e.c.id, [c.prev_id for c in close if c.id in current])))}
    found = [SimpleNamespace(**current[c.id]._asdict(), gap=c.gap,
                             prev_at=before[c.prev_id].occurred_at,
                             prev_step=before[c.prev_id].step,
                             prev_id=before[c.prev_id].event_id)
             for c in close if c.id in current and c.gap < current[c.id].limit * 60]
    found.sort(key=lambda r: (r.case_id, r.occurred_at, r.id))
    for case_id, rows in by_case(found):
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


def _longest_limit(conn: Connection, defaults: Mapping[str, float],
                   per_item: Mapping[str, Mapping[str, float]]) -> float | None:
    """The longest minimum (minutes) any step of any item has: the catalog's and this
    rule's; ``None`` when no step has one."""
    limits = [float(v) for v in defaults.values()]
    limits += [float(v) for steps in per_item.values() for v in steps.values()]
    for per_step in conn.scalars(select(Item.min_minutes)):
        limits += [float(v) for v in (per_step or {}).values()]
    return max(limits, default=None)
