"""data_quality (数据质量): what a log says that cannot be true, or cannot be judged —
reported apart from misconduct, and never counted in a department's score.

Per case, as of ``ctx.as_of`` (system events aside):

* ``decision_before_acceptance`` — the first decision (``decide``, or the item's
  ``decision_steps``) is stamped before the acceptance: not a "-1440 分" fast approval,
  a clock or keying fault. ``case_too_fast`` leaves such a case out.
* ``recorded_before_occurred`` — an event keyed in (``recorded_at``) before it happened.
* ``day_precision`` — the item has a minimum in minutes (``min_minutes``,
  ``min_case_minutes``) but the case's stamps are dates only: the too-fast rules cannot
  judge it, and do not.
* ``synthetic_timeline`` — ``synthetic_steps`` or more workflow steps stamped with one
  instant by one account: how some platforms fill in a workflow that never ran.
* ``stale`` — accepted, not decided or ended, and silent for more than the ``stale_days``
  setting's calendar days (config.yaml, default 180; see :mod:`._stale`): the case is
  likely closed in a way the log does not record, so it is a question for the data owner
  rather than red for ever — ``overdue`` leaves it out.

One finding per case, level ``warning``, listing what was found. Not incremental: a case
goes stale by time passing, without a new event.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from sqlalchemy import Connection, case, func, select

from ...models import Event, Item
from ..finding import Context, Finding
from ..sql import in_scope
from . import _stale
from ._common import local

TITLE = "数据质量问题（不计入违规）"
DEFAULT_MESSAGE = "案件 {case_id}：{issues}"
FIELDS = ("issues", "count")
INCREMENTAL = False  # stale cases appear as time passes, with no new event
DATA_QUALITY = True  # reported apart; never a deduction in the scores
ISSUES = {
    "decision_before_acceptance": "决定早于受理",
    "recorded_before_occurred": "录入时间早于办理时间",
    "day_precision": "时间仅精确到日，无法判断办理是否过快",
    "synthetic_timeline": "多个环节由同一账号在同一时刻记录（疑似系统补齐流程）",
    "stale": "已受理未办结且长期无记录",
}


@dataclass(frozen=True)
class Params:
    synthetic_steps: int = 3   # steps with one stamp by one account that make a timeline


def detect(conn: Connection, rule, ctx: Context) -> Iterator[Finding]:
    e = Event.__table__
    policies: dict[str, dict | None] = {
        code: policy for code, policy in conn.execute(select(Item.code, Item.policy))}
    decisions, ends = _stale.steps(policies.values())
    needs_seconds = {code for code, minutes, case_minutes in conn.execute(
        select(Item.code, Item.min_minutes, Item.min_case_minutes))
        if minutes or case_minutes}
    scope = (e.c.occurred_at <= ctx.as_of, e.c.is_system.is_(False),
             in_scope(rule.scope, e.c.department, e.c.item_code))
    rows = conn.execute(
        select(e.c.case_id, func.min(e.c.item_code).label("item_code"),
               func.min(e.c.department).label("department"),
               func.min(case((e.c.step == "accept", e.c.occurred_at))).label("accepted"),
               func.min(case((e.c.step.in_(sorted(decisions)), e.c.occurred_at)))
               .label("decided"),
               *_stale.columns(ends),
               func.sum(case((e.c.recorded_at < e.c.occurred_at, 1), else_=0)).label("early"),
               func.sum(case((e.c.time_precision == "day", 1), else_=0)).label("days"))
        .where(*scope).group_by(e.c.case_id).order_by(e.c.case_id)).all()
    synthetic = _synthetic(conn, scope, rule.params.synthetic_steps, decisions | ends)
    for r in rows:
        found: dict[str, dict] = {}
        if r.accepted is not None and r.decided is not None and r.decided < r.accepted:
            found["decision_before_acceptance"] = {
                "accepted_at": local(r.accepted, ctx), "decided_at": local(r.decided, ctx)}
        if r.early:
            found["recorded_before_occurred"] = {"events": r.early}
        if r.days and r.item_code in needs_seconds:
            found["day_precision"] = {"events": r.days}
        if r.case_id in synthetic:
            found["synthetic_timeline"] = synthetic[r.case_id]
        if r.accepted is not None and _stale.stale(r, ctx):
            found["stale"] = _stale.evidence(r, ctx)
        if found:
            yield Finding(
                subject=r.case_id, case_id=r.case_id, department=r.department,
                item_code=r.item_code, level="warning",
                fields={"issues": "；".join(ISSUES[k] for k in found), "count": len(found)},
                evidence={"data_quality": True, **found})


def _synthetic(conn: Connection, scope: tuple, steps: int, extra: set[str]) -> dict:
    """case → {actor, at, steps} of the instants where one account stamped ``steps`` or
    more workflow steps at once."""
    e = Event.__table__
    distinct = func.count(func.distinct(e.c.step))
    out: dict = {}
    for r in conn.execute(select(e.c.case_id, e.c.actor, e.c.occurred_at, distinct.label("n"))
                          .where(*scope, e.c.actor.is_not(None),
                                 e.c.time_precision.is_(None))
                          .group_by(e.c.case_id, e.c.actor, e.c.occurred_at)
                          .having(distinct >= max(steps, 2))):
        out.setdefault(r.case_id, {"actor": r.actor, "at": str(r.occurred_at), "steps": r.n})
    return out
