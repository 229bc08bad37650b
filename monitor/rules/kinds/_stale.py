"""Stale cases (长期无记录): accepted, neither decided nor ended, and silent — no event
other than system events — for more than ``ctx.stale_days`` calendar days (config
``stale_days``), counted between local dates: the case was likely closed in a way the log
does not record. ``data_quality`` reports such a case; ``overdue`` leaves it out (it is a
question for the data owner, not a red card for ever). One definition, here, for both, so
that no case falls between the two rules or is counted by both.

By local dates, not instants: whether a case is stale changes only when the date does,
like the overdue clock, so that a later run on the same date (incremental, looking at new
events only) answers as a full one would.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, timedelta

from sqlalchemy import and_, case, func

from ...models import Event
from ..finding import Context
from ._clock import day
from ._common import local

# every way a case ends, whatever its item's catalog says (and the catalog's own)
END_STEPS = ("decide", "complete", "refuse", "withdraw", "transfer")


def steps(policies: Iterable[dict | None]) -> tuple[set[str], set[str]]:
    """(the steps that decide a case, every step that ends one) under the items'
    ``policies`` (catalog ``decision_steps``, ``end_steps``)."""
    given = [p for p in policies if p]
    decisions = {"decide"} | {s for p in given for s in p.get("decision_steps", ())}
    ends = set(END_STEPS) | decisions | {s for p in given for s in p.get("end_steps", ())}
    return decisions, ends


def columns(ends: set[str]) -> tuple:
    """Per-case aggregates over ``events`` (grouped by case) that :func:`stale` reads:
    ``last`` (the latest non-system event) and ``ended`` (1: a non-system end step)."""
    e = Event.__table__
    flow = e.c.is_system.is_(False)
    return (func.max(case((flow, e.c.occurred_at))).label("last"),
            func.max(case((and_(flow, e.c.step.in_(sorted(ends))), 1), else_=0)).label("ended"))


def stale(row, ctx: Context) -> bool:
    """Whether an accepted case (``row`` with :func:`columns`) is stale as of ``ctx.as_of``."""
    if ctx.stale_days is None or row.last is None or row.ended:
        return False
    return (day(ctx.as_of, ctx) - day(row.last, ctx)).days > ctx.stale_days


def stale_on(row, ctx: Context) -> date:
    """The local date from which an accepted, open case (``row`` as for :func:`stale`) is
    stale if nothing new is recorded; ``date.max``: never by time alone."""
    if ctx.stale_days is None or row.last is None or row.ended:
        return date.max
    return day(row.last, ctx) + timedelta(days=ctx.stale_days + 1)


def evidence(row, ctx: Context) -> dict:
    """What a finding says of a stale case."""
    return {"last_event_at": local(row.last, ctx), "stale_days": ctx.stale_days}
