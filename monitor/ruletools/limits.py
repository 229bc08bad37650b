"""``rules calibrate`` for the kinds with one county-wide threshold: ``late_entry``
(``max_hours``), ``batch_entry`` (``min_events`` in the rule's ``window_minutes``) and
``overdue`` (``warning_days``). The per-item minimums (``step_too_fast``,
``case_too_fast``) are :mod:`.calibrate`'s.

The same method and report: a distribution from history, a robust proposal (median and
MAD, scaled by 1.4826), a quantile for comparison, and the findings the current
threshold and each proposal would raise over the same history; ``--out`` writes a
candidate rule directory for ``rules backtest``. These kinds flag the *high* tail (a long
delay, a dense window) — or, for warnings, cases ending close to their deadline:

* ``late_entry``: per case, the longest delay ``recorded_at − occurred_at`` of its events,
  in hours (a case is one finding). Skewed like the step gaps, so on logarithms (floored at
  one minute): ``exp(median + k·MAD)``; the quantile is ``1 − q``.
* ``batch_entry``: for each entry, how many of its actor's entries were recorded in the
  window that starts at it (both ends included: the kind's dense window). Proposal
  ``ceil(exp(median + k·MAD))`` of those counts' logarithms, at least 2; the quantile ``1 −
  q``, plus one (only windows denser than that are bursts). Findings are bursts, counted
  as the kind counts them: dense starts chained while each is within a window of the
  previous one.
* ``overdue`` warnings: per decided case of an item with a promised limit, the working
  days its deadline still had when the case was decided (its clock: suspensions and
  extensions counted; negative: decided late). A case is warned once it is open with
  ``warning_days`` or fewer left, so it was warned when its slack at the decision is at
  most that. Proposal ``floor(median − k·MAD)`` of the slacks, at least 0; the quantile
  ``q``. Items whose limits the catalog gives in calendar days or with validity dates are
  counted on the catalog's working-day limits here. Open cases are not measured, so
  neither are stale ones (:mod:`..rules.kinds._stale`: open by definition — a case with a
  non-system ``decide`` or ``complete`` is never stale), which ``overdue`` leaves to
  ``data_quality``: nothing here depends on ``stale_days``.

Memory: one number per case (or per entry of one actor at a time), not the events.
"""

from __future__ import annotations

import math
import statistics
from bisect import bisect_left, bisect_right
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from itertools import groupby
from typing import Any

from sqlalchemy import Engine, and_, case, func, select

from ..config import Config
from ..errors import MonitorError
from ..models import Event, Item
from ..rules.finding import Context
from ..rules.kinds._clock import clock, clock_events
from ..rules.model import Rule
from ..rules.sql import seconds_between
from .calibrate import MAD_SCALE, _quantile, only

PARAMS = {"late_entry": ("max_hours", "h"), "batch_entry": ("min_events", "entries"),
          "overdue": ("warning_days", "days")}
CHUNK = 500
MEASURES = {"late_entry": "per case, its longest delay from occurred_at to recorded_at",
            "batch_entry": "per entry, its actor's entries in the window from it",
            "overdue": "per decided case, working days left to its promised deadline"}


@dataclass(frozen=True)
class Limit:
    """One proposal for a county-wide threshold (``param`` in ``unit``)."""

    kind: str
    param: str
    unit: str
    n: int                 # cases (late_entry, overdue) or entries (batch_entry) measured
    median: float          # of the measure, in ``unit`` (batch_entry: entries per window)
    mad: float             # MAD (scaled) of the logarithms, or of the days for overdue
    current: float
    current_findings: int
    proposed: float
    proposed_findings: int
    quantile: float
    quantile_findings: int


def calibrate_limit(engine: Engine, config: Config, rule: Rule, as_of: datetime, *,
                    items: tuple[str, ...] = (), k: float = 3.0, q: float = 0.01,
                    min_n: int = 30, region: str | None = None) -> Limit:
    """The proposal for ``rule``'s threshold from its history up to ``as_of`` (the
    configured timezone and calendar count the overdue days). ``region``: that county's
    history only, its days counted in its own calendar (docs/regions.md)."""
    if rule.kind not in PARAMS:
        raise MonitorError(f"rule {rule.id} is {rule.kind}: no county-wide threshold")
    ctx = Context(as_of=as_of, tz=config.tz, calendar=config.calendar().for_region(region))
    measure = {"late_entry": _late, "batch_entry": _batch, "overdue": _warning}[rule.kind]
    return measure(engine, rule, ctx, only(items, region), k, q, min_n)



def _robust_log(values: list[float]) -> tuple[float, float]:
    logs = [math.log(v) for v in values]
    med = statistics.median(logs)
    return med, MAD_SCALE * statistics.median(abs(x - med) for x in logs)


def _too_few(n: int, min_n: int, what: str) -> None:
    if n < min_n:
        raise MonitorError(f"only {n} {what} to calibrate on (at least {min_n}: --min-n)")


def _late(engine: Engine, rule: Rule, ctx: Context, where, k: float, q: float,
          min_n: int) -> Limit:
    e = Event.__table__
    delay = seconds_between(e.c.recorded_at, e.c.occurred_at)
    worst = (select(func.max(delay).label("delay"))
             .where(e.c.recorded_at.is_not(None), e.c.recorded_at <= ctx.as_of,
                    *where)
             .group_by(e.c.case_id).subquery())
    with engine.connect() as conn:
        hours = sorted(max(float(d), 0.0) / 3600 for d in conn.scalars(select(worst.c.delay)))
    _too_few(len(hours), min_n, "cases with a recorded_at")
    med, mad = _robust_log([max(h, 1 / 60) for h in hours])

    def over(limit: float) -> int:
        return len(hours) - bisect_right(hours, limit)

    current = float(rule.params.max_hours)
    proposed = _two_figures(math.exp(med + k * mad))
    quantile = _two_figures(_quantile(hours, 1 - q))
    return Limit(rule.kind, "max_hours", "h", len(hours), math.exp(med), mad, current,
                 over(current), proposed, over(proposed), quantile, over(quantile))


def _batch(engine: Engine, rule: Rule, ctx: Context, where, k: float, q: float,
           min_n: int) -> Limit:
    e = Event.__table__
    window = float(rule.params.window_minutes) * 60
    query = (select(e.c.actor, e.c.recorded_at)
             .where(e.c.actor.is_not(None), e.c.recorded_at.is_not(None),
                    e.c.recorded_at <= ctx.as_of,
                    *where)
             .order_by(e.c.actor, e.c.recorded_at))
    counts: list[int] = []
    per_actor: list[tuple[list[float], list[int]]] = []  # (times, counts) of busy actors
    with engine.connect() as conn:
        for _, rows in groupby(conn.execute(query), key=lambda r: r[0]):
            times = [r.recorded_at.timestamp() for r in rows]
            dense = [bisect_right(times, t + window) - bisect_left(times, t) for t in times]
            counts.extend(dense)
            if max(dense) >= 2:
                per_actor.append((times, dense))
    _too_few(len(counts), min_n, "entries with an actor and a recorded_at")
    med, mad = _robust_log([float(c) for c in counts])

    def bursts(n: int) -> int:
        found = 0
        for times, dense in per_actor:
            last: float | None = None
            for t, c in zip(times, dense):
                if c >= n:
                    found += last is None or t - last > window
                    last = t
        return found

    current = int(rule.params.min_events)
    proposed = max(2, math.ceil(math.exp(med + k * mad)))
    quantile = max(2, math.floor(_quantile(sorted(counts), 1 - q)) + 1)
    return Limit(rule.kind, "min_events", "entries", len(counts), math.exp(med), mad,
                 current, bursts(current), proposed, bursts(proposed), quantile,
                 bursts(quantile))


def _warning(engine: Engine, rule: Rule, ctx: Context, where, k: float, q: float,
             min_n: int) -> Limit:
    e = Event.__table__

    def first(step: str):
        return func.min(case((e.c.step == step, e.c.occurred_at)))

    spans = (select(e.c.case_id, func.min(e.c.region).label("region"),
                    func.min(e.c.item_code).label("item_code"),
                    first("accept").label("accepted"), first("decide").label("decided"),
                    first("complete").label("completed"))
             .where(e.c.is_system.is_(False), e.c.occurred_at <= ctx.as_of,
                    *where)
             .group_by(e.c.case_id).subquery())
    query = (select(spans, Item.promised_days, Item.legal_days)
             .join(Item, and_(Item.region == spans.c.region, Item.code == spans.c.item_code))
             .where(spans.c.accepted.is_not(None), Item.promised_days > 0,
                    (spans.c.decided.is_not(None)) | (spans.c.completed.is_not(None)))
             .order_by(spans.c.case_id))
    slacks: list[float] = []
    with engine.connect() as conn:
        rows = conn.execute(query)
        while chunk := rows.fetchmany(CHUNK):
            events = clock_events(conn, [r.case_id for r in chunk], ctx)
            slacks.extend(_slack(r, events.get(r.case_id, []), rule, ctx) for r in chunk)
    _too_few(len(slacks), min_n, "decided cases of items with a promised limit")
    slacks.sort()
    med = statistics.median(slacks)
    mad = MAD_SCALE * statistics.median(abs(x - med) for x in slacks)

    def warned(days: float) -> int:
        return bisect_right(slacks, days)

    current = float(rule.params.warning_days)
    proposed = float(max(0, math.floor(med - k * mad)))
    quantile = float(max(0, math.floor(_quantile(slacks, q))))
    return Limit(rule.kind, "warning_days", "days", len(slacks), med, mad, current,
                 warned(current), proposed, warned(proposed), quantile, warned(quantile))


def _slack(row: Any, events: Iterable, rule: Rule, ctx: Context) -> float:
    """Working days the case's promised deadline still had on the day it was decided."""
    c = clock(row, list(events), rule.params, ctx)
    return float(ctx.calendar.workdays_between(c.end_date, c.promised_deadline))


def _two_figures(value: float) -> float:
    return float(f"{max(value, 0.01):.2g}")
