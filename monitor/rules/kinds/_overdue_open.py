"""The open-case bookkeeping of :mod:`.overdue`: which cases an incremental run looks
at, the list of cases still open that the rule carries from run to run (``open_cases``,
kept as its watermark is), and which open cases are stale — left to the data-quality
rule (:mod:`._stale`). The reasons are in :mod:`.overdue`'s docstring (**Stale cases**,
**Incremental**); here is how. :mod:`.data_quality` keeps its own list the same way (the
cases that may go stale as the date moves), under its own rule id.

**Due dates**: each listed case carries the first local date on which its finding may
differ from the one its last judgment gave by time alone (``due_on``: a deadline crossed,
the advance warning reached, the case gone stale; the kind computes it, :data:`NEVER`
when only a new event can change it, None when it cannot tell), and a digest of what
that date was computed under (``basis``, :func:`basis`: the catalog's limits and
policies, the calendars, ``stale_days``, the rule's version). A run on a new date looks
at the listed cases whose date has come (or whose basis is not the run's), not at every
open case: between its due dates an open case's finding — level, words, stale or not —
is what it was, and so is what a full run would store for it. A case with a new event
is looked at whatever its date.
"""

from __future__ import annotations

import hashlib
import json
import string
from collections.abc import Iterable, Iterator
from datetime import date

from sqlalchemy import Connection, delete, insert, or_, select, true
from sqlalchemy.sql.elements import ColumnElement

from ...calendar import WorkCalendar
from ...models import Event, Exemption, Item, OpenCase, RuleState
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


def incremental(conn: Connection, rule, ctx: Context, last_day: date | None,
                basis_now: str | None = None
                ) -> tuple[ColumnElement, list[str] | None, set[str]]:
    """WHERE clause (over ``events``) of the cases to look at, the same cases as a sorted
    list when they can be listed (None: every case on a full run), and the listed open
    cases among them that are due. Else the cases with new events; and on a new date also
    every case listed as still open as of the last run whose due date has come (see the
    module), so that each is looked up in the case index."""
    e = Event.__table__
    if ctx.since_event_id is None:
        return true(), None, set()
    changed = changed_cases(ctx, e.c.case_id)
    still_open = due_cases(conn, rule, day(ctx.as_of, ctx), basis_now) \
        if last_day is not None else set()
    if ctx.changed_case_ids is not None:
        listed = sorted(still_open | set(ctx.changed_case_ids))
        return one_of(e.c.case_id, listed), listed, still_open
    if not still_open:
        return changed, None, still_open
    return or_(one_of(e.c.case_id, sorted(still_open)), changed), None, still_open


def open_cases(conn: Connection, rule) -> dict[str, tuple[date | None, str | None]]:
    """case → (due date, basis) of every case the rule lists."""
    t = OpenCase.__table__
    return {c: (d, b) for c, d, b in conn.execute(
        select(t.c.case_id, t.c.due_on, t.c.basis).where(t.c.rule_id == rule.id,
                                                           _counties(rule)))}


def due_cases(conn: Connection, rule, today: date, basis_now: str | None) -> set[str]:
    """The listed cases to look at again on ``today``: due by then, dated under another
    basis, or not dated."""
    t = OpenCase.__table__
    return set(conn.scalars(select(t.c.case_id).where(
        t.c.rule_id == rule.id, _counties(rule),
        or_(t.c.due_on.is_(None), t.c.due_on <= today, t.c.basis.is_(None),
            t.c.basis != (basis_now or "")))))


def exempting(conn: Connection, rule, ctx: Context) -> bool:
    """Whether the rule has an exemption in force (monitor/exemptions.py): a finding it
    raises may then be stored suppressed, and looked at every date until it is not."""
    return conn.scalar(select(Exemption.id).where(
        Exemption.rule_id == rule.id, Exemption.until >= day(ctx.as_of, ctx),
        or_(Exemption.revoked_at.is_(None), Exemption.revoked_at > ctx.as_of)).limit(1)) \
        is not None


NEVER = date.max  # due_on of a case whose finding only a new event can change


def basis(conn: Connection, rule, ctx: Context) -> str:
    """A digest of what a due date is computed under: the rule's version, ``stale_days``,
    every item's limits and policy, and the calendars (the store's, its departments' and
    counties'). Any change to one looks at every listed case again."""
    items = [(r, c, p, lg, json.dumps(pol, sort_keys=True, default=str))
             for r, c, p, lg, pol in conn.execute(
                 select(Item.region, Item.code, Item.promised_days, Item.legal_days,
                        Item.policy).order_by(Item.region, Item.code))]
    text = repr((rule.version, ctx.stale_days, items, _calendar(ctx.calendar)))
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def _calendar(cal: WorkCalendar) -> tuple:
    return (type(cal).__name__, cal.country, sorted(cal.extra_holidays),
            sorted(cal.extra_workdays),
            sorted((k, _calendar(v)) for k, v in cal.departments.items()),
            sorted((k, _calendar(v)) for k, v in cal.regions.items()))


def message_fields(rule) -> set[str]:
    """The fields the rule's messages (its own and its variants') name."""
    return {name for text in [rule.message, *(v.message for _, v in rule.variants)]
            for _, name, _, _ in string.Formatter().parse(text or "") if name}


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
                  now_open: dict[str, date | None], due: Iterable[str] = (),
                  basis_now: str | None = None) -> None:
    """Keep ``open_cases`` the cases accepted and neither decided nor completed as of this
    run, each with its due date (``now_open``: case → date, see the module) and
    ``basis_now``, for the next run on a later date: of the cases looked at (every one on
    a full run; the changed ones, and on a new date the ``due`` ones, on an incremental
    run) the open ones replace those listed before. Rolled back with the run (a dry run,
    a failure), as its watermark.

    Enough for the next date: a case open at the start of this run's date but decided by
    this run was looked at, with its decision, by the run that first saw that decision
    (the decision was new then), and an ended case's finding depends on dates only; a
    listed case not looked at was not due, so its finding and its date stand."""
    before = open_cases(conn, rule)
    if ctx.since_event_id is None:
        looked = set(before)
    else:
        if ctx.changed_case_ids is not None:
            looked = set(ctx.changed_case_ids) & before.keys()
        else:
            looked = set(conn.scalars(select(OpenCase.case_id).where(
                OpenCase.rule_id == rule.id, _counties(rule),
                changed_cases(ctx, OpenCase.__table__.c.case_id))))
        if last_day is not None:
            looked |= set(due)
    gone = (looked & before.keys()) - now_open.keys()
    moved = {c for c, d in now_open.items() if c in before and before[c] != (d, basis_now)}
    table = OpenCase.__table__
    for chunk in chunks(sorted(gone | moved)):
        conn.execute(delete(table).where(table.c.rule_id == rule.id, table.c.case_id.in_(chunk)))
    fresh = [{"rule_id": rule.id, "case_id": c, "due_on": d, "basis": basis_now}
             for c, d in sorted(now_open.items()) if c not in before or c in moved]
    if fresh:
        conn.execute(insert(table), fresh)


def chunks(values: list, size: int = IN_CHUNK) -> Iterator[list]:
    for start in range(0, len(values), size):
        yield values[start:start + size]
