"""The working-day clock of the ``overdue`` rule, shared by its two families of findings.

A clock runs from an acceptance (for a step: the step's predecessor) to an end (the
decision, the completion, or ``ctx.as_of`` while open), on local dates in the configured
timezone, with the working-day calendar; counting starts the day after. Suspensions stop
it (the working days from a ``suspend`` to the next ``resume`` are not counted; one not
resumed stops it where it began); an ``extend`` grants its ``days`` (the rule's
``default_extension_days`` if empty) if it came while the case was within its legal
limit. A limit of N working days runs out at the end of ``add_workdays(start, N +
suspended)``. The legal grounds and the levels are in :mod:`.overdue`.

Used by the case rule (:mod:`.overdue`), the step limits (:mod:`._step_limits`, which
feeds it a span and no extensions) and ``rules explain``, which shows the same counting.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Protocol

from sqlalchemy import Connection, select

from ...calendar import WorkCalendar
from ...models import Event
from ..finding import Context
from ._common import aware, by_case, local

CLOCK_STEPS = ("suspend", "resume", "extend")
IN_CHUNK = 500  # case ids per IN (...) list


class ClockParams(Protocol):
    """What the clock reads of a rule's parameters."""

    @property
    def default_extension_days(self) -> int: ...


@dataclass
class Clock:
    """One case's clock, worked out from its acceptance, end and clock events."""

    accepted: date
    end_date: date               # the clock's last date: decision, as_of, or a running stop
    used: int
    suspended: int
    extension: int
    promised: int
    legal: int
    promised_deadline: date
    legal_deadline: date
    running_stop: datetime | None
    suspensions: list[dict]
    extensions: list[dict]


def clock_events(conn: Connection, case_ids: Sequence[str], ctx: Context) -> dict[str, list]:
    """The suspend/resume/extend events of the few cases that have any, in order."""
    e = Event.__table__
    out: dict[str, list] = {}
    for start in range(0, len(case_ids), IN_CHUNK):
        query = (select(e.c.case_id, e.c.event_id, e.c.step, e.c.occurred_at, e.c.days)
                 .where(e.c.case_id.in_(case_ids[start:start + IN_CHUNK]),
                        e.c.step.in_(CLOCK_STEPS), e.c.occurred_at <= ctx.as_of)
                 .order_by(e.c.case_id, e.c.occurred_at, e.c.id))
        out.update(by_case(conn.execute(query)))
    return out


def day(value, ctx: Context) -> date:
    """A stored timestamp's local date."""
    return aware(value).astimezone(ctx.tz).date()


def clock(row, events: Sequence, params: ClockParams, ctx: Context) -> Clock:
    """The clock of ``row`` (accepted, decided, completed, promised_days, legal_days) over
    its clock ``events`` (:func:`clock_events`), as of ``ctx.as_of``."""
    cal: WorkCalendar = ctx.calendar
    accepted_at = aware(row.accepted)
    ended = row.decided if row.decided is not None else row.completed
    end_at = max(accepted_at, aware(ended) if ended is not None else ctx.as_of)
    a = day(accepted_at, ctx)
    suspended, spans, grants, stop = 0, [], [], None
    for ev in events:
        at = aware(ev.occurred_at)
        if at > end_at:
            break
        if ev.step == "suspend" and stop is None:
            stop = ev
        elif ev.step == "resume" and stop is not None:
            days = max(0, cal.workdays_between(max(a, day(stop.occurred_at, ctx)),
                                               day(at, ctx)))
            suspended += days
            spans.append({"suspend_event_id": stop.event_id,
                          "suspended_at": local(stop.occurred_at, ctx),
                          "resume_event_id": ev.event_id, "resumed_at": local(at, ctx),
                          "working_days": days})
            stop = None
        elif ev.step == "extend":
            grants.append((ev, suspended, stop))
    end = day(stop.occurred_at, ctx) if stop is not None else day(end_at, ctx)
    if stop is not None:
        spans.append({"suspend_event_id": stop.event_id,
                      "suspended_at": local(stop.occurred_at, ctx), "resume_event_id": None,
                      "resumed_at": None, "working_days": None})
    extension, extensions = 0, []
    for ev, suspended_then, stop_then in grants:
        days = ev.days if ev.days is not None else params.default_extension_days
        then = day(stop_then.occurred_at if stop_then is not None else ev.occurred_at, ctx)
        deadline = cal.add_workdays(a, row.legal_days + extension + suspended_then)
        counted = then <= deadline
        extension += days if counted else 0
        extensions.append({"event_id": ev.event_id, "at": local(ev.occurred_at, ctx),
                           "days": days, "counted": counted,
                           **({} if counted else {"legal_deadline_then": deadline.isoformat()})})
    promised, legal = row.promised_days + extension, row.legal_days + extension
    return Clock(a, end, max(0, cal.workdays_between(a, end) - suspended), suspended,
                 extension, promised, legal, cal.add_workdays(a, promised + suspended),
                 cal.add_workdays(a, legal + suspended),
                 aware(stop.occurred_at) if stop is not None else None, spans, extensions)
