"""batch_entry (批量录入): one actor keying many entries at once.

The seed's back-fill: work done on paper, then typed in all together. Entries are events
with an actor and a ``recorded_at``, taken per actor in (recorded_at, id) order.

A *dense window* starts at an entry whose ``window_minutes`` that follow (both ends
included) hold at least ``min_events`` of the actor's entries. A **burst** is the union of
dense windows that overlap or touch — one alert per burst, however long — and its entries
are exactly those that lie inside some dense window. Two dense windows that do not
overlap are two bursts; ordinary steady work between them does not chain them together.

In SQL: an entry starts a dense window when the entry ``min_events − 1`` places later was
recorded within the window (LEAD, one pass in index order); among those dense starts (few),
one opens a new burst when the previous one is more than the window before it (LAG), and a
running SUM of the openings numbers the bursts. The burst's entries are those recorded
between a dense start and its run's last entry (a range join on the (actor, recorded_at)
index): every entry of a dense window lies in such a run. With ties on recorded_at the
first of the tied entries is dense whenever any of them is, so which entries form a burst
depends on the timestamps only, not on how ties are ordered.

Subject (the alert's dedupe key): the actor and the ``event_id`` of the burst's entry that
reached the store first (lowest ``events.id``). Entries only ever arrive with higher ids,
and a burst only grows as entries arrive (windows only gain entries), so the subject is the
same on every re-evaluation and stays put when a burst grows at either end or is filled in
by a late export. It moves only when the burst takes in an entry stored before its seed:
another burst it merges with, or an older stray entry that new entries chain it to; the
old alert then remains as the record of the smaller burst. A key on the burst's first
``recorded_at`` would move whenever an export holding earlier entries of the same burst
arrives after a later one — back-filled entries spread over several exports is the very
case this kind is for.

Incremental: only actors with new entries are looked at, over their whole history (a
burst can chain arbitrarily far, so no bounded time range is provably equivalent).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from itertools import groupby

from sqlalchemy import Connection, Integer, and_, case, cast, func, literal, or_, select, true

from ...models import Event
from ..finding import Context, Finding
from ..sql import in_scope, new_events, seconds_between
from ._common import aware, local

TITLE = "批量录入（同一人短时间内集中录入）"
DEFAULT_MESSAGE = ("{actor} 于 {start} 起 {duration} 内集中录入 {count} 条"
                   "（{case_count} 个案件：{cases}），疑似事后批量补录")
FIELDS = ("start", "end", "duration", "seconds", "count", "case_count", "cases",
          "fastest_seconds")
MESSAGE_CASES = 20  # cases named in the message; all of them are in case_ids and evidence


@dataclass(frozen=True)
class Params:
    min_events: int = 10
    window_minutes: float = 5


def entries(rule, ctx: Context, table=None):
    """WHERE clause of an entry: an event with an actor and a recorded_at (by as_of), in scope."""
    e = table if table is not None else Event.__table__
    return and_(e.c.actor.is_not(None), e.c.recorded_at.is_not(None),
                e.c.recorded_at <= ctx.as_of,
                in_scope(rule.scope, e.c.department, e.c.item_code))


def changed_actors(ctx: Context, actor) -> object:
    """WHERE clause keeping only actors with entries the previous run could not see."""
    if ctx.since_event_id is None:
        return true()
    e = Event.__table__
    return actor.in_(select(e.c.actor).where(new_events(ctx), e.c.actor.is_not(None),
                                             e.c.recorded_at.is_not(None)))


def dense_starts(rule, ctx: Context):
    """Entries that start a dense window, with the run's last entry, its span and the burst
    number (per actor) the start belongs to."""
    e = Event.__table__
    window = rule.params.window_minutes * 60
    offset = max(rule.params.min_events, 1) - 1
    runs = select(
        e.c.id, e.c.actor, e.c.recorded_at,
        func.lead(e.c.recorded_at, cast(literal(offset), Integer)).over(
            partition_by=e.c.actor, order_by=(e.c.recorded_at, e.c.id)).label("run_end"),
    ).where(entries(rule, ctx), changed_actors(ctx, e.c.actor)).subquery("runs")
    span = seconds_between(runs.c.run_end, runs.c.recorded_at)
    order = dict(partition_by=runs.c.actor, order_by=(runs.c.recorded_at, runs.c.id))
    starts = select(
        runs.c.id, runs.c.actor, runs.c.recorded_at, runs.c.run_end, span.label("span"),
        func.lag(runs.c.recorded_at).over(**order).label("previous"),
    ).where(runs.c.run_end.is_not(None), span <= window).subquery("starts")
    opens = case((or_(starts.c.previous.is_(None),
                      seconds_between(starts.c.recorded_at, starts.c.previous) > window), 1),
                 else_=0)
    return select(
        starts.c.id, starts.c.actor, starts.c.recorded_at, starts.c.run_end, starts.c.span,
        func.sum(opens).over(partition_by=starts.c.actor,
                             order_by=(starts.c.recorded_at, starts.c.id),
                             rows=(None, 0)).label("burst"),
    ).subquery("dense")


def detect(conn: Connection, rule, ctx: Context) -> Iterator[Finding]:
    e = Event.__table__
    dense = dense_starts(rule, ctx)
    members = (select(e.c.id, func.min(dense.c.burst).label("burst"),
                      func.min(case((dense.c.id == e.c.id, dense.c.span))).label("span"))
               .join(dense, and_(e.c.actor == dense.c.actor,
                                 e.c.recorded_at >= dense.c.recorded_at,
                                 e.c.recorded_at <= dense.c.run_end))
               .where(entries(rule, ctx))
               .group_by(e.c.id).subquery("members"))
    query = (select(members.c.burst, members.c.span, e.c.id, e.c.event_id, e.c.case_id,
                    e.c.item_code, e.c.department, e.c.step, e.c.actor, e.c.occurred_at,
                    e.c.recorded_at)
             .join(e, e.c.id == members.c.id)
             .order_by(e.c.actor, members.c.burst, e.c.recorded_at, e.c.id))
    for _, burst in groupby(conn.execute(query), key=lambda r: (r.actor, r.burst)):
        yield _finding(list(burst), rule, ctx)


def _finding(rows: list, rule, ctx: Context) -> Finding:
    first, last = rows[0], rows[-1]
    seconds = (aware(last.recorded_at) - aware(first.recorded_at)).total_seconds()
    cases = list(dict.fromkeys(r.case_id for r in rows))
    departments = sorted({r.department for r in rows})
    items = sorted({r.item_code for r in rows})
    fastest = min(r.span for r in rows if r.span is not None)
    minutes, secs = divmod(round(seconds), 60)
    named = "、".join(cases[:MESSAGE_CASES]) + (
        f" 等 {len(cases)} 件" if len(cases) > MESSAGE_CASES else "")
    seed = min(rows, key=lambda r: r.id)
    return Finding(
        subject=f"{first.actor}|{seed.event_id}", actor=first.actor, case_ids=tuple(cases),
        department=departments[0] if len(departments) == 1 else None,
        item_code=items[0] if len(items) == 1 else None,
        fields={"start": local(first.recorded_at, ctx), "end": local(last.recorded_at, ctx),
                "duration": f"{minutes} 分 {secs} 秒", "seconds": round(seconds),
                "count": len(rows), "case_count": len(cases), "cases": named,
                "fastest_seconds": round(fastest)},
        evidence={"actor": first.actor, "recorded_from": local(first.recorded_at, ctx),
                  "recorded_to": local(last.recorded_at, ctx), "seconds": round(seconds, 1),
                  "count": len(rows), "min_events": rule.params.min_events,
                  "window_minutes": rule.params.window_minutes,
                  "fastest_window_seconds": round(fastest, 1),
                  "departments": departments, "case_ids": cases,
                  "entries": [{"event_id": r.event_id, "case_id": r.case_id, "step": r.step,
                               "item_code": r.item_code, "department": r.department,
                               "occurred_at": local(r.occurred_at, ctx),
                               "recorded_at": local(r.recorded_at, ctx)} for r in rows]},
        event_ids=tuple(r.event_id for r in rows))
