"""case_too_fast (超快审批): acceptance → decision (or completion if no decision) faster
than plausible for the item; on-the-spot items (legal_days 0) are exempt.

An item's catalog entry may name its decision steps (``decision_steps: [decide,
refuse]``) and end steps (``end_steps: [complete, withdraw, transfer]``); by default
``decide`` and ``complete``. System events never count. A span is flagged only when its
longest reading under the stamps' precision is short; a decision recorded before the
acceptance is a data-quality finding (``data_quality``), never a fast case."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from sqlalchemy import Connection, and_, case, func, literal, null, select, tuple_

from ...models import Event, Item
from ..finding import Context, Finding
from ..sql import changed_cases, in_scope, seconds_between
from ._common import local
from .step_too_fast import PRECISION_SECONDS

TITLE = "审批过快（受理至决定用时过短）"
REGIONAL = True  # one county at a time: its events alone (run --jobs)
DEFAULT_MESSAGE = "案件 {case_id}：受理至{end_step}仅用 {duration}（下限 {limit_minutes} 分钟）"
FIELDS = ("end_step", "duration", "seconds", "limit_minutes")
BY_CASE = True  # per case, from its events alone (see kinds.Kind)


@dataclass(frozen=True)
class Params:
    min_case_minutes: float = 60
    # item code → minutes: wins over the catalog's min_case_minutes (rules calibrate)
    item_min_case_minutes: Mapping[str, float] = field(
        default_factory=lambda: MappingProxyType({}))


def detect(conn: Connection, rule, ctx: Context) -> Iterator[Finding]:
    policies = _policies(conn)
    special = sorted(item for items in policies.values() for item in items)
    of_item = tuple_(Event.region, Event.item_code)
    groups = [(DEFAULT_STEPS, ~of_item.in_(special) if special else None)]
    groups += [(steps, of_item.in_(items)) for steps, items in sorted(policies.items())]
    found = [r for steps, where in groups for r in _spans(conn, rule, ctx, steps, where)]
    for r in sorted(found, key=lambda r: r.case_id):
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


# (decision steps, end steps) of an item whose catalog entry names none
DEFAULT_STEPS = (("decide",), ("complete",))


def _policies(conn: Connection) -> dict[tuple, list[tuple[str, str]]]:
    """(decision steps, end steps) → the items (region, code) whose catalog policy names
    them: each county's catalog its own (migration 0029)."""
    out: dict[tuple, list[tuple[str, str]]] = {}
    for region, code, policy in conn.execute(select(Item.region, Item.code, Item.policy)
                                             .where(Item.policy.is_not(None))):
        if policy and ("decision_steps" in policy or "end_steps" in policy):
            key = (tuple(policy.get("decision_steps", DEFAULT_STEPS[0])),
                   tuple(policy.get("end_steps", DEFAULT_STEPS[1])))
            out.setdefault(key, []).append((region, code))
    return out


def _spans(conn: Connection, rule, ctx: Context, steps: tuple, items) -> list:
    """Cases of the items ``items`` selects that ended too fast, given their decision and
    end steps. System events never count; a span is too short only when its longest
    reading (plus the coarsest stamp's uncertainty in the case) is; a decision before the
    acceptance is a data-quality finding, not a fast one."""
    e = Event.__table__
    decision, ends = steps

    def first(names):
        return func.min(case((e.c.step.in_(names), e.c.occurred_at)))

    uncertainty = func.max(case({p: s for p, s in PRECISION_SECONDS.items() if s},
                                value=e.c.time_precision, else_=0))
    spans = (select(e.c.case_id, func.min(e.c.region).label("region"),
                    func.min(e.c.item_code).label("item_code"),
                    func.min(e.c.department).label("department"),
                    first(("accept",)).label("accepted"), first(decision).label("decided"),
                    first(ends).label("completed"), uncertainty.label("slack"))
             .where(e.c.occurred_at <= ctx.as_of, e.c.is_system.is_(False),
                    in_scope(rule.scope, e.c.department, e.c.item_code),
                    changed_cases(ctx, e.c.case_id), *([items] if items is not None else []))
             .group_by(e.c.case_id).subquery())
    end = func.coalesce(spans.c.decided, spans.c.completed)
    seconds = seconds_between(end, spans.c.accepted)
    own = rule.params.item_min_case_minutes
    limit = func.coalesce(
        case({k: literal(float(v)) for k, v in own.items()}, value=Item.code, else_=null())
        if own else null(), Item.min_case_minutes, rule.params.min_case_minutes)
    query = (select(spans, seconds.label("seconds"), limit.label("limit"))
             .join(Item, and_(Item.region == spans.c.region, Item.code == spans.c.item_code))
             .where(Item.legal_days > 0, spans.c.accepted.is_not(None), end.is_not(None),
                    seconds >= 0, seconds + spans.c.slack < limit * 60)
             .order_by(spans.c.case_id))
    return list(conn.execute(query))
