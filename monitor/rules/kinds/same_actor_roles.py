"""same_actor_roles (一人多岗): one actor performing several approval roles in one case.

The seed's case: an environmental-impact approval completed in 2 min 33 s because the
acceptance clerk held the section chief's, deputy head's and head's rights too.

**Policy (四眼原则).** Without one, any ``min_roles`` of ``steps`` done by one actor in a
case is a finding. ``pairs`` (rule) or an item's ``four_eyes`` (catalog, which wins;
``[]``: the item has no four-eyes rule) name the pairs of steps one person may not both
do, and only those are findings. ``role_pattern`` (a regular expression, matched at the
start of the actor name) names actors that are roles or pools, not people
(``^(admin|pool|系统)``): they are never one person holding several roles. System events
never count.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

from sqlalchemy import Connection, bindparam, func, select

from ...models import Event, Item
from ..finding import Context, Finding, catalog_read
from ..sql import as_of, bound, built, changed_cases, in_scope
from ._common import by_case

TITLE = "一人多岗（同一人办理多个审批环节）"
REGIONAL = True  # one county at a time: its events alone (run --jobs)
DEFAULT_MESSAGE = "案件 {case_id}：{actors} 一人办理 {roles}"
FIELDS = ("actors", "roles", "count")
BY_CASE = True  # per case, from its events alone (see kinds.Kind)
GATE = ("deny", "warn")  # the workflow gate may refuse a step on it (see kinds.Kind)


@dataclass(frozen=True)
class Params:
    steps: tuple[str, ...] = ("accept", "review", "approve", "decide")
    min_roles: int = 2
    # pairs of steps one person may not both do; () = any min_roles of steps
    pairs: tuple[tuple[str, ...], ...] = ()
    role_pattern: str = ""  # actors that are roles or pools, not people ("": none)

    @staticmethod
    def check_pairs(pairs) -> None:
        for pair in pairs:
            if len(pair) != 2:
                raise ValueError(f"'pairs' must be pairs of steps like [review, approve], "
                                 f"got {list(pair)!r}")

    @staticmethod
    def check_role_pattern(pattern: str) -> None:
        try:
            re.compile(pattern)
        except re.error as exc:
            raise ValueError(f"'role_pattern' is not a regular expression ({exc})") from None


def detect(conn: Connection, rule, ctx: Context) -> Iterator[Finding]:
    params = rule.params
    four_eyes = catalog_read(conn, ctx.catalog, "four_eyes", _four_eyes)
    pair_steps = {s for p in params.pairs for s in p} | {
        s for pairs in four_eyes.values() for p in pairs for s in p}
    steps = tuple(sorted(set(params.steps) | pair_steps))
    query = built(rule, "roles", ctx, lambda: _query(rule, ctx, steps), steps)
    pool = re.compile(params.role_pattern) if params.role_pattern else None
    rows = [r for r in conn.execute(query, bound(ctx)) if not (pool and pool.match(r.actor))]
    steps_of = _steps(conn, sorted({r.case_id for r in rows}), steps, ctx)
    shown = {}  # (case, actor) → the steps of theirs the finding is about
    for r in rows:
        item = (r.region, r.item_code)
        pairs = four_eyes.get(item, params.pairs)
        done = {s for s, _ in steps_of.get((r.case_id, r.actor), [])}
        if pairs:
            hit = {s for p in pairs if set(p) <= done for s in p}
        elif item not in four_eyes:
            hit = done & set(params.steps)
            hit = hit if len(hit) >= max(params.min_roles, 2) else set()
        else:
            hit = set()  # the item's catalog says it has no four-eyes rule
        if hit:
            shown[r.case_id, r.actor] = hit
    for case_id, found in by_case([r for r in rows if (r.case_id, r.actor) in shown]):
        held = {r.actor: [(s, i) for s, i in steps_of[case_id, r.actor]
                          if s in shown[case_id, r.actor]] for r in found}
        first = found[0]
        yield Finding(
            subject=case_id, case_id=case_id, actor=first.actor, department=first.department,
            item_code=first.item_code,
            fields={"actors": "、".join(held),
                    "count": max(len({s for s, _ in v}) for v in held.values()),
                    "roles": "；".join(f"{a}: {'/'.join(s for s, _ in v)}" for a, v in held.items())},
            evidence={"actors": {a: [{"step": s, "event_id": i} for s, i in v]
                                 for a, v in held.items()}},
            event_ids=tuple(i for v in held.values() for _, i in v))


def _query(rule, ctx: Context, steps: tuple[str, ...]):
    e = Event.__table__
    roles = func.count(func.distinct(e.c.step))
    return (select(e.c.case_id, e.c.actor, func.min(e.c.region).label("region"),
                   func.min(e.c.department).label("department"),
                   func.min(e.c.item_code).label("item_code"), roles.label("roles"))
            .where(e.c.step.in_(steps), e.c.actor.is_not(None),
                   e.c.is_system.is_(False), e.c.occurred_at <= as_of(),
                   in_scope(rule.scope, e.c.department, e.c.item_code),
                   changed_cases(ctx, e.c.case_id))
            .group_by(e.c.case_id, e.c.actor)
            .having(roles >= 2)
            .order_by(e.c.case_id, e.c.actor))


_POLICIES = select(Item.region, Item.code, Item.policy).where(Item.policy.is_not(None))


def _four_eyes(conn: Connection) -> dict[tuple[str, str], list[tuple[str, ...]]]:
    """(region, item code) → its four-eyes pairs (catalog ``policy.four_eyes``): each
    county's catalog its own (migration 0029)."""
    return {(region, code): [tuple(p) for p in policy["four_eyes"]] for region, code, policy in
            conn.execute(_POLICIES) if policy and "four_eyes" in policy}
_E = Event.__table__
_STEPS = (select(_E.c.case_id, _E.c.actor, _E.c.step, _E.c.event_id)
          .where(_E.c.case_id.in_(bindparam("cases", expanding=True)),
                 _E.c.step.in_(bindparam("steps", expanding=True)),
                 _E.c.is_system.is_(False), _E.c.occurred_at <= as_of())
          .order_by(_E.c.occurred_at, _E.c.id))


def _steps(conn: Connection, cases: list[str], steps, ctx: Context) -> dict:
    """(case, actor) → [(step, event_id)] for the flagged cases only (few)."""
    out: dict = {}
    for start in range(0, len(cases), 500):
        rows = conn.execute(_STEPS, {"cases": cases[start:start + 500], "steps": list(steps),
                                     "as_of": ctx.as_of})
        for r in rows:
            out.setdefault((r.case_id, r.actor), []).append((r.step, r.event_id))
    return out
