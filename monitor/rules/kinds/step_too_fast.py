"""step_too_fast (事后补录): a step done implausibly soon after the previous step of its case.

The seed's case: a site survey "done" 58 seconds after acceptance — the work was done on
paper and typed in afterwards. The limit per step is this rule's ``item_min_minutes``
for the item and step (per-item thresholds, e.g. proposed by ``rules calibrate``), else the
item's ``min_minutes`` from the catalog, else this rule's ``min_minutes``.

**From which step.** By default the gap runs from the previous event of the case. An
item's ``min_minutes`` may name the step instead (``survey: {after: accept, minutes:
30}``): the gap then runs from the latest earlier event of that step, and a case without
one has no finding. System events (``events.is_system``, see docs/mappings.md) are never
the previous step, nor measured.

**Precision.** A stamp written to the minute (or hour, or day) could be off by that much:
a gap is flagged only when even its longest reading, gap plus the coarser stamp's
uncertainty, is under the limit. A date-only log never makes a finding here (its events
are data-quality findings of their own).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from types import MappingProxyType, SimpleNamespace
from typing import Any, Mapping

from sqlalchemy import (BindParameter, Connection, and_, bindparam, case, func, literal, null,
                        select)

from ...models import Event, Item
from ..finding import Context, Finding, catalog_read
from ..sql import (ListParam, as_of, bound, built, changed_cases, in_scope, json_number,
                   member_of, seconds_since, time_point, under_seconds)
from ._common import aware, by_case, local

# what a stamp of each precision could be off by, in seconds (a second-precise one: 0)
PRECISION_SECONDS = {"second": 0, "minute": 60, "hour": 3600, "day": 86400}

TITLE = "环节办理过快（疑似事后补录）"
REGIONAL = True  # one county at a time: its events alone (run --jobs)
DEFAULT_MESSAGE = "案件 {case_id}：{steps}（疑似事后补录）"
FIELDS = ("steps", "fastest_seconds", "count")
BY_CASE = True  # per case, from its events alone (see kinds.Kind)
GATE = ("deny", "warn")  # the workflow gate may refuse a step on it (see kinds.Kind)


@dataclass(frozen=True)
class Params:
    min_minutes: Mapping[str, float] = field(default_factory=lambda: MappingProxyType(
        {"survey": 30, "review": 5, "approve": 5, "decide": 5}))
    # item code → {step: minutes}: wins over the catalog's min_minutes for that item and step
    item_min_minutes: Mapping[str, Mapping[str, float]] = field(
        default_factory=lambda: MappingProxyType({}))


def detect(conn: Connection, rule, ctx: Context) -> Iterator[Finding]:
    longest = _longest_limit(conn, ctx, rule.params.min_minutes, rule.params.item_min_minutes)
    if longest is None:
        return
    close = conn.execute(built(rule, "close", ctx, lambda: _close(ctx)),
                         bound(ctx, longest_seconds=longest * 60)).all()
    if not close:
        return
    current = {r.id: r for r in conn.execute(built(rule, "current", ctx, lambda: _current(rule)),
                                             {"ids": [c.id for c in close]})}
    close = _from_named_steps(conn, list(close), current, ctx)
    before = {r.id: r for r in conn.execute(
        _BEFORE, {"ids": [c.prev_id for c in close if c.id in current]})}
    found = [SimpleNamespace(**current[c.id]._asdict(), gap=c.gap,
                             prev_at=before[c.prev_id].occurred_at,
                             prev_step=before[c.prev_id].step,
                             prev_id=before[c.prev_id].event_id)
             for c in close if c.id in current
             and c.gap + slack(current[c.id].time_precision, before[c.prev_id].time_precision)
             < current[c.id].limit * 60]
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


def _close(ctx: Context):
    """1. One narrow pass in (case_id, occurred_at) index order: each event's predecessor
    and the gap, kept only when shorter than the longest limit anywhere (few rows); each
    timestamp is parsed once, and the exact gap is worked out only for the pairs a cheap
    comparison keeps (0.5 % of the bench store's events; :class:`~..sql.under_seconds`)."""
    e = Event.__table__
    points = select(e.c.id, e.c.case_id, e.c.occurred_at,
                    time_point(e.c.occurred_at).label("t"),
                    ).where(e.c.occurred_at <= as_of(), e.c.is_system.is_(False),
                            changed_cases(ctx, e.c.case_id)).subquery("points")
    ordered: dict[str, Any] = dict(partition_by=points.c.case_id, order_by=(points.c.occurred_at, points.c.id))
    pairs = select(points.c.id, points.c.t,
                   func.lag(points.c.t).over(**ordered).label("prev_t"),
                   func.lag(points.c.id).over(**ordered).label("prev_id"),
                   ).subquery("pairs")
    gap = seconds_since(pairs.c.t, pairs.c.prev_t)
    longest: BindParameter[float] = bindparam("longest_seconds")
    return (select(pairs.c.id, pairs.c.prev_id, gap.label("gap"))
            .where(pairs.c.prev_t.is_not(None),
                   under_seconds(pairs.c.t, pairs.c.prev_t, longest), gap < longest))


def _current(rule):
    """2. The candidates' details and their step's exact limit, looked up by id (a join on
    the pairs would leave PostgreSQL guessing their number: it guessed a third of the
    table and hashed all of it, twice)."""
    e = Event.__table__
    defaults, per_item = rule.params.min_minutes, rule.params.item_min_minutes
    default = case({k: literal(float(v)) for k, v in defaults.items()}, value=e.c.step,
                   else_=null()) if defaults else null()
    own = case(*[(and_(e.c.item_code == item, e.c.step == step), literal(float(v)))
                 for item, steps in sorted(per_item.items()) for step, v in sorted(steps.items())],
               else_=null()) if any(per_item.values()) else null()
    limit = func.coalesce(own, json_number(Item.min_minutes, e.c.step), default)
    return (select(e.c.id, e.c.event_id, e.c.case_id, e.c.item_code, e.c.department, e.c.step,
                   e.c.actor, e.c.occurred_at, e.c.time_precision, limit.label("limit"),
                   Item.policy)
            .join(Item, and_(Item.region == e.c.region, Item.code == e.c.item_code))
            .where(_by_ids(e), in_scope(rule.scope, e.c.department, e.c.item_code),
                   limit.is_not(None)))


def _by_ids(e):
    return member_of(e.c.id, bindparam("ids", type_=ListParam(numbers=True)))


_E = Event.__table__
_BEFORE = select(_E.c.id, _E.c.event_id, _E.c.step, _E.c.occurred_at,
                 _E.c.time_precision).where(_by_ids(_E))
_MIN_MINUTES = select(Item.min_minutes)


def slack(*precisions: str | None) -> int:
    """Seconds a span between stamps of these precisions could be longer than it reads."""
    return max(PRECISION_SECONDS.get(p or "second", 0) for p in precisions)


def _from_named_steps(conn: Connection, close: list, current: dict, ctx: Context) -> list:
    """The candidates whose item names the step their gap runs from (``after``), re-measured
    from the latest earlier event of that step (none: dropped); the others as they are.

    Such a gap is never shorter than the one from the immediate predecessor, so every
    finding is among the candidates already."""
    named = {c.id: (current[c.id].policy or {}).get("after", {}).get(current[c.id].step)
             for c in close if c.id in current}
    if not any(named.values()):
        return close
    e = Event.__table__
    out = []
    for c in close:
        after = named.get(c.id)
        if not after:
            out.append(c)
            continue
        row = current[c.id]
        start = conn.execute(
            select(e.c.id, e.c.occurred_at)
            .where(e.c.case_id == row.case_id, e.c.step == after, e.c.is_system.is_(False),
                   e.c.occurred_at <= row.occurred_at, e.c.id != c.id,
                   e.c.occurred_at <= ctx.as_of)
            .order_by(e.c.occurred_at.desc(), e.c.id.desc()).limit(1)).first()
        if start is not None:
            gap = (aware(row.occurred_at) - aware(start.occurred_at)).total_seconds()
            out.append(SimpleNamespace(id=c.id, prev_id=start.id, gap=gap))
    return out


def _longest_limit(conn: Connection, ctx: Context, defaults: Mapping[str, float],
                   per_item: Mapping[str, Mapping[str, float]]) -> float | None:
    """The longest minimum (minutes) any step of any item has: the catalog's and this
    rule's; ``None`` when no step has one."""
    limits = [float(v) for v in defaults.values()]
    limits += [float(v) for steps in per_item.values() for v in steps.values()]
    limits += catalog_read(conn, ctx.catalog, "min_minutes", _catalog_minutes)
    return max(limits, default=None)


def _catalog_minutes(conn: Connection) -> tuple[float, ...]:
    return tuple(float(v) for per_step in conn.scalars(_MIN_MINUTES)
                 for v in (per_step or {}).values())
