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

One finding per case, level ``warning``, listing what was found.

**Incremental**: what a case's finding says depends on its own events and, for
``stale``, on the local date of the as-of alone; a case goes stale by time passing,
without a new event. So an incremental run looks at the cases with new events and, on
the first run of a new local date, at the cases it saw open and not yet stale as of its
previous run whose date to go stale has come — the list the rule keeps from run to run,
each case with that date, as ``overdue`` keeps its own (``open_cases``, the bookkeeping
of :mod:`._overdue_open`). A stale case stays stale, its
finding unchanged, until a new event makes it a changed case: it leaves the list, which
holds the cases still in progress rather than every stale case of the history. An
earlier as-of (a replay) is a full run (monitor/engine.py), which lists them afresh.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import ColumnElement, Connection, and_, case, func, or_, select

from ...models import Event, Item
from ..finding import Context, Finding
from ..sql import in_scope, one_of
from . import _overdue_open, _stale
from ._common import local

WORKING_DAYS = True  # counts in ctx.calendar: a county's own calendar judges it apart
TITLE = "数据质量问题（不计入违规）"
DEFAULT_MESSAGE = "案件 {case_id}：{issues}"
FIELDS = ("issues", "count")
CASES_PER_QUERY = 1_000  # cases per query: listed cases are looked up in the case index
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
    policies: dict[tuple[str, str], dict | None] = {
        (region, code): policy
        for region, code, policy in conn.execute(select(Item.region, Item.code, Item.policy))}
    decisions, ends = _stale.steps(policies.values())
    needs_seconds = {(region, code) for region, code, minutes, case_minutes in conn.execute(
        select(Item.region, Item.code, Item.min_minutes, Item.min_case_minutes))
        if minutes or case_minutes}
    scope = (e.c.occurred_at <= ctx.as_of, e.c.is_system.is_(False),
             in_scope(rule.scope, e.c.department, e.c.item_code))
    # open cases go stale as the date moves: kept for the next run unless nothing can be
    track = ctx.stale_days is not None and not ctx.probe
    last_day = _overdue_open.last_run_day(conn, rule, ctx) if track else None
    basis = _overdue_open.basis(conn, rule, ctx) if track else None
    exempting = track and _overdue_open.exempting(conn, rule, ctx)
    looked_at, listed, due = _overdue_open.incremental(conn, rule, ctx, last_day, basis)
    accepted = func.min(case((e.c.step == "accept", e.c.occurred_at)))
    decided = func.min(case((e.c.step.in_(sorted(decisions)), e.c.occurred_at)))
    early = func.sum(case((e.c.recorded_at < e.c.occurred_at, 1), else_=0))
    days = func.sum(case((e.c.time_precision == "day", 1), else_=0))
    last, ended = _stale.columns(ends)
    # stamped instants (one account, to the second) the case has more events at than one
    stamp = case((and_(e.c.actor.is_not(None), e.c.time_precision.is_(None)), e.c.occurred_at))
    ties = func.count(stamp) - func.count(func.distinct(stamp))
    query = (select(e.c.case_id, func.min(e.c.region).label("region"),
                    func.min(e.c.item_code).label("item_code"),
                    func.min(e.c.department).label("department"), accepted.label("accepted"),
                    decided.label("decided"), last, ended, early.label("early"),
                    days.label("days"), ties.label("ties"))
             .where(*scope).group_by(e.c.case_id)
             .having(_candidate(ctx, accepted, decided, early, days, last, ended, ties,
                                track))
             .order_by(e.c.case_id))
    if listed is None:
        rows = conn.execute(query.where(looked_at)).all()
    else:  # in rounds: a short list is looked up in the case index whatever the planner
        rows = [r for chunk in _overdue_open.chunks(listed, CASES_PER_QUERY)
                for r in conn.execute(query.where(one_of(e.c.case_id, chunk)))]
    if track:
        _overdue_open.remember_open(conn, rule, ctx, last_day, {
            r.case_id: _due(r, ctx, exempting) for r in rows
            if r.accepted is not None and not r.ended and not _stale.stale(r, ctx)}, due, basis)
    synthetic = _synthetic(conn, scope, rule.params.synthetic_steps,
                           [r.case_id for r in rows if r.ties])
    for r in rows:
        found: dict[str, dict] = {}
        if r.accepted is not None and r.decided is not None and r.decided < r.accepted:
            found["decision_before_acceptance"] = {
                "accepted_at": local(r.accepted, ctx), "decided_at": local(r.decided, ctx)}
        if r.early:
            found["recorded_before_occurred"] = {"events": r.early}
        if r.days and (r.region, r.item_code) in needs_seconds:
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


def _due(row, ctx: Context, exempting: bool):
    """When an open case not yet stale must be looked at again (see _overdue_open): the
    date it goes stale, which is all time can change; every date (None) if it already has
    an issue while the rule has an exemption in force (its finding's alert may be stored
    suppressed, and the exemption end)."""
    if exempting and (row.early or row.days or row.ties or (
            row.decided is not None and row.decided < row.accepted)):
        return None
    return _stale.stale_on(row, ctx)


def _candidate(ctx: Context, accepted, decided, early, days, last, ended,
               ties, track: bool) -> ColumnElement:
    """HAVING clause: the cases that may have an issue — a superset of those the checks in
    :func:`detect` find, so that only they leave the database (most cases have none; judging
    every case in Python was most of this rule's time, and its memory grew with the store).
    Stale is judged on local dates there; here an instant bound that no stale case can
    miss: a date more than ``stale_days`` before the as-of's ends more than
    ``stale_days`` − 1 days before it (a day of slack for any offset change between). A
    synthetic timeline needs two events of the case stamped at one instant (``ties``).
    ``track``: every open case too (accepted, not ended), the list kept for the next run."""
    conditions = [decided < accepted, early > 0, days > 0, ties > 0]
    if track:
        conditions.append(and_(accepted.is_not(None), ended == 0))
    elif ctx.stale_days is not None:
        cutoff = ctx.as_of - timedelta(days=ctx.stale_days - 1)
        conditions.append(and_(accepted.is_not(None), ended == 0, last < cutoff))
    return or_(*conditions)


def _synthetic(conn: Connection, scope: tuple, steps: int, cases: list[str]) -> dict:
    """case → {actor, at, steps} of the first instant (by actor, then time) where one
    account stamped ``steps`` or more workflow steps at once, among ``cases`` (those with
    ties: few; grouping every event of the store by case, actor and instant was a sort of
    the whole table)."""
    e = Event.__table__
    distinct = func.count(func.distinct(e.c.step))
    out: dict = {}
    for start in range(0, len(cases), CASES_PER_QUERY):
        for r in conn.execute(
                select(e.c.case_id, e.c.actor, e.c.occurred_at, distinct.label("n"))
                .where(*scope, e.c.actor.is_not(None), e.c.time_precision.is_(None),
                       one_of(e.c.case_id, cases[start:start + CASES_PER_QUERY]))
                .group_by(e.c.case_id, e.c.actor, e.c.occurred_at)
                .having(distinct >= max(steps, 2))
                .order_by(e.c.case_id, e.c.actor, e.c.occurred_at)):
            out.setdefault(r.case_id, {"actor": r.actor, "at": str(r.occurred_at),
                                       "steps": r.n})
    return out
