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
index, which must be the only condition on recorded_at: given the as-of too, SQLite may
range over all the actor's entries up to it for every dense start): every entry of a dense
window lies in such a run. With ties on recorded_at the first of the tied entries is dense
whenever any of them is, so which entries form a burst depends on the timestamps only, not
on how ties are ordered.

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

Full evaluation: the window functions above run over the few entries near a *crowded
slot* only. Each actor's time is cut into slots a little longer than the window (from the
Unix epoch). A dense window is shorter than a slot, so it lies in one slot or two
neighbours, and one of them holds at least half of ``min_events`` of its entries. One
GROUP BY returns the slots holding that half; a slot is crowded when, with a neighbour
(counted as returned, or else as at most one entry short of that half), it reaches
``min_events``. Every burst then has an entry in a crowded slot, and the bursts holding
one are found as the incremental run below finds those holding a new entry — each
exactly, whole. With ``min_events`` under 3, or more than :data:`CROWDED_AT_MOST`
crowded slots, the plain pass (a window function over every entry) is taken.

Incremental: only a burst holding a *new* entry (one the previous run could not see:
:func:`~monitor.rules.sql.new_events`) can differ from what that run stored. Any other
burst's dense windows hold no new entry, so they were dense then, chain the same way and
hold the same entries: the previous run found it as it is, and its alert stands (a dry run
stores nothing but does not move the watermark either). So only the bursts holding a new
entry are looked for, and reported. A new entry ``y`` is in one only if a dense window
contains it, starting in ``[y − W, y]`` (``W``: the window plus a second, more than
SQLite's rounding of spans to the millisecond). Around each ``y`` the entries of
``[lo, hi] = [y − 2W, y + 2W]`` (overlapping ranges joined) are evaluated on their own. In
such a range, whether an entry starts a dense window is exact up to ``hi − W`` (its window
lies inside; LEAD needs nothing before it). So a burst found there whose first dense start
is at or after ``lo + W`` and whose last is at or before ``hi − 2W`` is exactly a burst of
the whole history, subject included: in the window before its first dense start there is
none (those statuses are exact; one before ``lo`` is more than a window away), so it opens
a burst there too; there is none in the window after its last; and the entries of its
windows are all inside. Ranges are closed — every entry of a timestamp or none — so ties
do not matter. A burst holding a new entry that is not found inside like this is looked
for again over a range reaching past it on the side(s) it may go on by 2, 4, 8, …
windows; after 16 rounds its actor's whole history is evaluated. Nothing rests on the
alerts stored before (an alert is only rewritten when its message changes, so its evidence
may be stale; a replay to an earlier as-of leaves others behind).
"""

from __future__ import annotations

import logging
from bisect import bisect_right
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from itertools import groupby
from typing import Any

from sqlalchemy import (JSON, Connection, Dialect, Integer, String, and_, bindparam, case,
                        cast, column, func, literal, or_, select, true)

from ...models import Event
from ...types import UTCDateTime, bulk_bind_processor
from ..finding import Context, Finding
from ..sql import in_scope, new_events, seconds_between
from ._common import aware, local

TITLE = "批量录入（同一人短时间内集中录入）"
REGIONAL = True  # one county at a time: its events alone (run --jobs)
DEFAULT_MESSAGE = ("{actor} 于 {start} 起 {duration} 内集中录入 {count} 条"
                   "（{case_count} 个案件：{cases}），疑似事后批量补录")
FIELDS = ("start", "end", "duration", "seconds", "count", "case_count", "cases",
          "fastest_seconds")
MESSAGE_CASES = 20  # cases named in the message; all of them are in case_ids and evidence

log = logging.getLogger(__name__)


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


def _source(rule, ctx: Context, actors=None):
    """Entries, optionally only of some actors: (id, actor, recorded_at)."""
    e = Event.__table__
    query = select(e.c.id, e.c.actor, e.c.recorded_at).where(entries(rule, ctx))
    return query if actors is None else query.where(e.c.actor.in_(actors))


def _segment_table(dialect: Dialect, segments: list[tuple[int, str, datetime, datetime]]):
    """Segments ``(part, actor, from, to)`` as a table, sent as one JSON parameter: the
    statement stays the same whatever their number, so it is compiled once (a VALUES list
    of thousands of rows takes SQLAlchemy longer to compile than the database to run).
    SQLite (json_each) compares the stored text of timestamps, PostgreSQL
    (json_to_recordset) timestamps."""
    if dialect.name == "postgresql":
        rows = [{"part": k, "actor": a, "lo": lo.isoformat(), "hi": hi.isoformat()}
                for k, a, lo, hi in segments]
        table = func.json_to_recordset(cast(bindparam("segments", rows, type_=JSON), JSON)) \
            .table_valued(column("part", Integer), column("actor", String),
                          column("lo", UTCDateTime()), column("hi", UTCDateTime()),
                          name="recordset").render_derived(with_types=True)
        # the LIMIT tells the planner how many rows there are, up to 100 (its guess)
        return select(table).limit(len(rows)).subquery("segments")
    # the text SQLite compares (no processor: the value is sent as it is)
    stored = bulk_bind_processor(UTCDateTime(), dialect) or (lambda value: value)
    texts = [[k, a, stored(lo), stored(hi)] for k, a, lo, hi in segments]
    each = func.json_each(bindparam("segments", texts, type_=JSON)).table_valued("value")
    return select(*(func.json_extract(each.c.value, f"$[{i}]").label(name)
                    for i, name in enumerate(("part", "actor", "lo", "hi")))
                  ).subquery("segments")


def _segmented_source(dialect: Dialect, rule, ctx: Context,
                      segments: list[tuple[int, str, datetime, datetime]]):
    """Entries in segments ``(part, actor, from, to)`` (both ends included), with their part:
    one range of the (actor, recorded_at) index per segment. The range is the only
    condition on recorded_at (``to`` is cut at the as-of), or SQLite may pick another;
    PostgreSQL, which cannot tell how many segments there are, is made to take them one by
    one (LATERAL) rather than hash them against every entry."""
    e = Event.__table__
    seg = _segment_table(dialect, [(k, actor, lo, min(hi, ctx.as_of))
                                   for k, actor, lo, hi in segments])
    inside = and_(e.c.actor == seg.c.actor, e.c.recorded_at >= seg.c.lo,
                  e.c.recorded_at <= seg.c.hi,
                  in_scope(rule.scope, e.c.department, e.c.item_code))
    if dialect.name == "postgresql":
        found = select(e.c.id, e.c.actor, e.c.recorded_at).where(inside) \
            .offset(0).lateral("found")  # OFFSET: not to be flattened into a join
        return select(found.c.id, found.c.actor, seg.c.part, found.c.recorded_at) \
            .select_from(seg).join(found, true())
    return select(e.c.id, e.c.actor, seg.c.part, e.c.recorded_at).select_from(seg) \
        .join(e, inside)


def dense_starts(rule, source, parted: bool = False):
    """Entries of ``source`` (per actor, or per actor and ``part``) that start a dense
    window, with the run's last entry, its span and the burst number the start belongs to."""
    window = rule.params.window_minutes * 60
    offset = max(rule.params.min_events, 1) - 1
    src = source.subquery("entries")
    keys = (lambda t: (t.c.actor, t.c.part)) if parted else (lambda t: (t.c.actor,))
    runs = select(
        *src.c,
        func.lead(src.c.recorded_at, cast(literal(offset), Integer)).over(
            partition_by=keys(src), order_by=(src.c.recorded_at, src.c.id)).label("run_end"),
    ).subquery("runs")
    span = seconds_between(runs.c.run_end, runs.c.recorded_at)
    order: dict[str, Any] = dict(partition_by=keys(runs), order_by=(runs.c.recorded_at, runs.c.id))
    starts = select(
        *(c for c in runs.c if c.name != "run_end"), runs.c.run_end, span.label("span"),
        func.lag(runs.c.recorded_at).over(**order).label("previous"),
    ).where(runs.c.run_end.is_not(None), span <= window).subquery("starts")
    opens = case((or_(starts.c.previous.is_(None),
                      seconds_between(starts.c.recorded_at, starts.c.previous) > window), 1),
                 else_=0)
    return select(
        *(c for c in starts.c if c.name != "previous"),
        func.sum(opens).over(partition_by=keys(starts),
                             order_by=(starts.c.recorded_at, starts.c.id),
                             rows=(None, 0)).label("burst"),
    ).subquery("dense")


def bursts(rule, source, parted: bool = False):
    """The entries of every burst in ``source``, in (actor[, part], burst, recorded_at, id)
    order, each with its burst number and, if it starts a dense window, that window's span."""
    e = Event.__table__
    dense = dense_starts(rule, source, parted)
    part = (dense.c.part,) if parted else ()
    # an entry between two entries (dense.recorded_at … run_end) is visible: only the scope
    # is left to check; one row per entry, grouped by its id and the columns that come
    # with it (named: through a region's view of the events, monitor/parallel.py,
    # PostgreSQL no longer knows them to follow from the primary key)
    columns = (e.c.id, e.c.event_id, e.c.case_id, e.c.item_code, e.c.department, e.c.step,
               e.c.actor, e.c.occurred_at, e.c.recorded_at)
    members = (select(*part, func.min(dense.c.burst).label("burst"),
                      func.min(case((dense.c.id == e.c.id, dense.c.span))).label("span"),
                      *columns)
               .join(dense, and_(e.c.actor == dense.c.actor,
                                 e.c.recorded_at >= dense.c.recorded_at,
                                 e.c.recorded_at <= dense.c.run_end))
               .where(in_scope(rule.scope, e.c.department, e.c.item_code))
               .group_by(*part, *columns).subquery("members"))
    m = members.c
    return select(members).order_by(m.actor, *((m.part,) if parted else ()), m.burst,
                                    m.recorded_at, m.id)


def detect(conn: Connection, rule, ctx: Context) -> Iterator[Finding]:
    if ctx.since_event_id is not None:
        yield from _incremental(conn, rule, ctx)
        return
    crowded = _crowded(conn, rule, ctx)
    if crowded is None:
        for _, burst in groupby(conn.execute(bursts(rule, _source(rule, ctx))),
                                key=lambda r: (r.actor, r.burst)):
            yield _finding(list(burst), rule, ctx)
        return
    reach = timedelta(minutes=rule.params.window_minutes) + SLACK
    firsts = {actor: [lo for lo, _ in spans] for actor, spans in crowded.items()}

    def crowded_entry(row) -> bool:
        at, spans = aware(row.recorded_at), crowded.get(row.actor, ())
        k = bisect_right(firsts.get(row.actor, ()), at) - 1  # spans are apart, in order
        return k >= 0 and at <= spans[k][1]

    yield from _around(conn, rule, ctx, {
        actor: [(lo - 2 * reach, hi + 2 * reach) for lo, hi in spans]
        for actor, spans in crowded.items()}, crowded_entry)


SLACK = timedelta(seconds=1)  # more than SQLite's rounding of spans (to the millisecond)
ROUNDS = 16                   # rounds of widening at most, then the whole history
ACTORS_PER_QUERY = 500
CROWDED_AT_MOST = 20_000      # crowded slots beyond which a full run takes the plain pass


def _crowded(conn: Connection, rule, ctx: Context
             ) -> dict[str, list[tuple[datetime, datetime]]] | None:
    """Full evaluation: {actor: [(first, last) recorded_at of a crowded slot]} in order,
    or None when the plain pass is the cheaper (see "Full evaluation").

    Each actor's time is cut into slots of the window plus :data:`SLACK` (counted from
    the Unix epoch). A dense window spans less than a slot, so it lies in one slot or two
    neighbours, which between them hold ``min_events`` of its entries: one of the two
    holds at least half of them. One GROUP BY returns the slots holding that half
    (``need``); a slot is *crowded* when it could hold entries of a dense window: with
    its neighbours, counted as returned or else as at most ``need − 1``, it reaches
    ``min_events``. Every burst has an entry in a crowded slot."""
    least = max(rule.params.min_events, 1)
    need = (least + 1) // 2
    if need < 2:  # every entry would be crowded
        return None
    e = Event.__table__
    size = rule.params.window_minutes * 60 + SLACK.total_seconds()
    if conn.dialect.name == "postgresql":
        slot: Any = func.floor(func.date_part("epoch", e.c.recorded_at) / size)
    else:  # julianday: milliseconds, a float exact to well under a millisecond here
        slot = cast((func.julianday(e.c.recorded_at) - 2440587.5) * 86400.0 / size, Integer)
    query = (select(e.c.actor, slot.label("slot"), func.count().label("n"),
                    func.min(e.c.recorded_at).label("first"),
                    func.max(e.c.recorded_at).label("last"))
             .where(entries(rule, ctx)).group_by(e.c.actor, slot)
             .having(func.count() >= need).order_by(e.c.actor, slot))
    crowded: dict[str, list[tuple[datetime, datetime]]] = {}
    found = 0

    def count(row, other) -> int:  # a neighbour's count: as returned, or at most need − 1
        return other.n if other is not None and other.actor == row.actor \
            and abs(int(other.slot) - int(row.slot)) == 1 else need - 1

    previous = current = None
    for following in _with_end(conn.execute(query)):
        if current is not None and (current.n >= least or current.n + max(
                count(current, previous), count(current, following)) >= least):
            found += 1
            if found > CROWDED_AT_MOST:
                return None
            crowded.setdefault(current.actor, []).append((aware(current.first),
                                                          aware(current.last)))
        previous, current = current, following
    return crowded


def _with_end(rows):
    """``rows``, then one None."""
    yield from rows
    yield None


def _incremental(conn: Connection, rule, ctx: Context) -> Iterator[Finding]:
    """The bursts holding a new entry, from segments of the history (see "Incremental")."""
    e = Event.__table__
    new: list[tuple[str, datetime]] = []
    new_ids: set[int] = set()
    for id_, actor, at in conn.execute(select(e.c.id, e.c.actor, e.c.recorded_at)
                                       .where(entries(rule, ctx), new_events(ctx))):
        new.append((actor, aware(at)))
        new_ids.add(id_)
    reach = timedelta(minutes=rule.params.window_minutes) + SLACK
    pending: dict[str, list[tuple[datetime, datetime]]] = {}
    for actor, at in new:
        pending.setdefault(actor, []).append((at - 2 * reach, at + 2 * reach))
    yield from _around(conn, rule, ctx, pending, lambda row: row.id in new_ids)


def _around(conn: Connection, rule, ctx: Context,
            pending: dict[str, list[tuple[datetime, datetime]]],
            seed: Callable[[Any], bool]) -> Iterator[Finding]:
    """The bursts holding a ``seed`` entry, each once, from the segments ``pending``
    ({actor: [(from, to)]}, every seed entry inside one and at least two windows plus
    :data:`SLACK` from its ends), widened where a burst may go on."""
    reach = timedelta(minutes=rule.params.window_minutes) + SLACK
    reported: set[str] = set()
    for round_ in range(ROUNDS):
        if not pending:
            return
        segments = [(actor, lo, hi) for actor in sorted(pending)
                    for lo, hi in _merged(pending[actor])]
        pending = {}
        query = bursts(rule, _segmented_source(
            conn.dialect, rule, ctx, [(k, *segment) for k, segment in enumerate(segments)]),
            parted=True)
        for (actor, part), rows in groupby(conn.execute(query), key=lambda r: (r.actor, r.part)):
            _, lo, hi = segments[part]
            wider = [lo, hi]
            for _, members in groupby(rows, key=lambda r: r.burst):
                burst = list(members)
                if not any(seed(r) for r in burst):
                    continue
                first = aware(burst[0].recorded_at)
                last = max(aware(r.recorded_at) for r in burst if r.span is not None)
                whole_before = first >= lo + reach   # no dense start chains to it from before
                whole_after = last <= hi - 2 * reach  # none after it
                if whole_before and whole_after:
                    finding = _finding(burst, rule, ctx)
                    if finding.subject not in reported:
                        reported.add(finding.subject)
                        yield finding
                if not whole_before:  # look again, further out where it may go on
                    wider[0] = lo - 2 * reach * 2 ** round_
                if not whole_after:
                    wider[1] = hi + 2 * reach * 2 ** round_
            if wider != [lo, hi]:  # ranges only grow: what was inside stays inside
                pending.setdefault(actor, []).append((wider[0], wider[1]))
    if not pending:
        return
    actors = sorted(pending)
    log.info("%s: %d actor(s) evaluated over their whole history", rule.id, len(actors))
    for start in range(0, len(actors), ACTORS_PER_QUERY):
        query = bursts(rule, _source(rule, ctx, actors[start:start + ACTORS_PER_QUERY]))
        for _, members in groupby(conn.execute(query), key=lambda r: (r.actor, r.burst)):
            burst = list(members)
            if any(seed(r) for r in burst):
                finding = _finding(burst, rule, ctx)
                if finding.subject not in reported:
                    yield finding


def _merged(ranges: list[tuple[datetime, datetime]]) -> list[tuple[datetime, datetime]]:
    """Overlapping ranges joined."""
    out: list[list[datetime]] = []
    for lo, hi in sorted(ranges):
        if out and lo <= out[-1][1]:
            out[-1][1] = max(out[-1][1], hi)
        else:
            out.append([lo, hi])
    return [(lo, hi) for lo, hi in out]


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
