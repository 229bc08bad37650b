"""The open-case bookkeeping of :mod:`.overdue`: which cases an incremental run looks
at, the list of cases still open that the rule carries from run to run (``open_cases``,
kept as its watermark is), and which open cases are stale — left to the data-quality
rule (:mod:`._stale`). The reasons are in :mod:`.overdue`'s docstring (**Stale cases**,
**Incremental**); here is how. :mod:`.data_quality` keeps its own list the same way (the
cases that may go stale as the date moves), under its own rule id.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date

from sqlalchemy import Connection, delete, insert, or_, select, true
from sqlalchemy.sql.elements import ColumnElement

from ...models import Event, OpenCase, RuleState
from ..finding import Context
from ..sql import changed_cases, in_regions, one_of
from . import _stale
from ._clock import IN_CHUNK, day


def silent(row, ctx: Context) -> bool:
    """An open case gone stale (a case this clock sees decided, even by a system event, is
    judged as decided)."""
    return row.decided is None and row.completed is None and _stale.stale(row, ctx)


def last_run_day(conn: Connection, rule, ctx: Context) -> date | None:
    """The local date of this rule's last run, on an incremental run on a later date: open
    cases' clocks move by whole dates, so on the same date only new events change anything.
    ``None``: a full run, or the same date again."""
    if ctx.since_event_id is None or ctx.probe:
        return None
    last = conn.scalar(select(RuleState.as_of).where(RuleState.rule_id == rule.id))
    return None if last is None or day(last, ctx) == day(ctx.as_of, ctx) else day(last, ctx)


def incremental(conn: Connection, rule, ctx: Context, last_day: date | None
                ) -> tuple[ColumnElement, list[str] | None]:
    """WHERE clause (over ``events``) of the cases to look at, and the same cases as a
    sorted list when they can be listed: every case on a full run. Else the cases with new
    events; and on a new date also every case still open as of the last run (time passes
    for them; see :func:`remember_open`), so that each is looked up in the case index."""
    e = Event.__table__
    if ctx.since_event_id is None:
        return true(), None
    changed = changed_cases(ctx, e.c.case_id)
    still_open = open_cases(conn, rule) if last_day is not None else set()
    if ctx.changed_case_ids is not None:
        listed = sorted(still_open | set(ctx.changed_case_ids))
        return one_of(e.c.case_id, listed), listed
    if not still_open:
        return changed, None
    return or_(one_of(e.c.case_id, sorted(still_open)), changed), None


def open_cases(conn: Connection, rule) -> set[str]:
    return set(conn.scalars(select(OpenCase.case_id).where(OpenCase.rule_id == rule.id,
                                                           _counties(rule))))


def _counties(rule) -> ColumnElement:
    """WHERE clause over ``open_cases``: the cases of the counties the rule's scope names
    (a run judging counties apart, monitor/regionrules.py, keeps one list per rule id:
    each group reads and replaces its own counties' part of it); true when it names none."""
    if not rule.scope.regions and not rule.scope.exclude_regions:
        return true()
    e = Event.__table__
    return OpenCase.__table__.c.case_id.in_(
        select(e.c.case_id).where(in_regions(rule.scope, e.c.department)))


def remember_open(conn: Connection, rule, ctx: Context, last_day: date | None,
                   now_open: set[str]) -> None:
    """Keep ``open_cases`` the cases accepted and neither decided nor completed as of this
    run, for the next run on a later date: of the cases looked at (every open one, on a
    full run or a new date; the changed ones, on the same date) the open ones replace
    those listed before. Rolled back with the run (a dry run, a failure), as its watermark.

    Enough for the next date: a case open at the start of this run's date but decided by
    this run was looked at, with its decision, by the run that first saw that decision
    (the decision was new then), and an ended case's finding depends on dates only."""
    before = open_cases(conn, rule)
    if ctx.since_event_id is None or last_day is not None:
        gone = before - now_open
    elif ctx.changed_case_ids is not None:
        gone = (before & set(ctx.changed_case_ids)) - now_open
    else:
        gone = set(conn.scalars(select(OpenCase.case_id).where(
            OpenCase.rule_id == rule.id, _counties(rule),
            changed_cases(ctx, OpenCase.__table__.c.case_id)))) - now_open
    table = OpenCase.__table__
    for chunk in chunks(sorted(gone)):
        conn.execute(delete(table).where(table.c.rule_id == rule.id, table.c.case_id.in_(chunk)))
    fresh = [{"rule_id": rule.id, "case_id": c} for c in sorted(now_open - before)]
    if fresh:
        conn.execute(insert(table), fresh)


def chunks(values: list, size: int = IN_CHUNK) -> Iterator[list]:
    for start in range(0, len(values), size):
        yield values[start:start + size]
