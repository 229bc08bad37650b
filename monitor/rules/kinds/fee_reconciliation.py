"""fee_reconciliation (收费比对): per department and month, the online ``fee_paid`` total
against what the treasury received (``receipts``).

The seed's urban-management bureau paid 1.3 million yuan more fines into the treasury than
it had collected online: penalty cases run entirely offline (网下运行), invisible to every
case-based rule. Both directions are findings: receipts above the online total (money
collected offline) and an online total above receipts (money not remitted, 截留).

* Month: the payment's ``occurred_at`` in the configured timezone (``ctx.tz``). The
  local-month boundaries are computed in Python (zoneinfo, so daylight saving is right in
  any zone) and payments bucketed by a CASE over those instants — the same on SQLite and
  PostgreSQL.
* Only months that are over as of ``ctx.as_of`` are compared: during a month payments are
  still coming in.
* A difference above max(``min_yuan``, ``min_ratio`` × the larger of the two figures) is
  one alert per department-month (subject ``DEPT|YYYY-MM``). A receipts row with no online
  payments at all is compared with 0.
* A month with online payments but no receipts row: the treasury's figures may not have
  arrived. With ``missing_receipts`` (default on) it is compared with 0 once
  ``receipts_due_days`` calendar days have passed after the month's end; off, such months
  are not judged until a receipts row exists.
* A department with no receipts row at all (the treasury's figures were never loaded) is
  not compared: every one of its months would otherwise be a finding. The run says so once
  (a log warning naming the departments), so the gap in the data is visible.
* Per county: a department is its county's (``(region, code)``: counties share codes,
  migration 0029) — online totals, receipts rows (``(region, department, period)``,
  migration 0033) and its charging items are each county's own, and a finding names its
  county (``Finding.region``), which its alert takes.
* Scope: receipts are per department, so only the scope's department lists apply; item and
  category lists are ignored by this kind.
* A department whose every charging item (catalog fee above 0, or a penalty) is a
  penalty pays fines into the treasury: its findings are titled and worded so
  (``VARIANTS``: 罚没款入库比对不符); one with both fees and penalties (the demo's 城管)
  is worded for both (收费及罚没款入库比对不符).
* Incremental: a department-month's figures, and so its finding, change only when an
  online payment in it is stored, its receipts row is written (``receipts.event_mark``
  at or above the previous run's event watermark: that run may not have seen it), the
  month ends, or its receipts fall due — the last two between the previous run's as-of
  and this one's. Only those department-months are compared again; every other one was
  compared by the previous run with the same figures, and its alert (if any) stands.
  Online totals are ranges of the partial index ``ix_events_fee_paid``, which the query
  can use only when ``step = 'fee_paid'`` is a literal in it.
"""

from __future__ import annotations

import logging
from bisect import bisect_right
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone, tzinfo
from decimal import Decimal

from sqlalchemy import (ColumnClause, Connection, Integer, String, and_, case, cast, func,
                        literal, literal_column, select, true)

from ...models import Department, Event, Item, Receipt
from ..finding import Context, Finding
from ..sql import new_events
from ._common import aware
from ._fees import fen, money, yuan

log = logging.getLogger(__name__)

TITLE = "收费比对不符（网上收费与财政入库不一致）"
DEFAULT_MESSAGE = ("{department} {period}：网上收费 {online} 元，财政入库 {receipts}，"
                   "相差 {difference} 元（{direction}）")
FIELDS = ("online", "receipts", "difference", "direction", "payments")
# a department whose every charging item is a penalty collects fines, not fees; one with
# both fee-bearing items and penalties collects both
VARIANTS = {"fine": ("罚没款入库比对不符（网上缴纳罚没款与财政入库不一致）",
                     "{department} {period}：网上缴纳罚没款 {online} 元，财政入库 {receipts}，"
                     "相差 {difference} 元（{direction}）"),
            "mixed": ("收费及罚没款入库比对不符（网上收缴与财政入库不一致）",
                      "{department} {period}：网上收费及罚没款 {online} 元，财政入库 {receipts}，"
                      "相差 {difference} 元（{direction}）")}

DIRECTIONS = {"receipts_exceed_online": "财政入库多于网上收费，疑似网下收费、体外循环",
              "online_exceeds_receipts": "网上收费多于财政入库，疑似未及时足额上缴"}
MIXED_DIRECTIONS = {"receipts_exceed_online": "财政入库多于网上收缴，疑似网下收费或收缴罚没款、体外循环",
                    "online_exceeds_receipts": "网上收缴多于财政入库，疑似未及时足额上缴"}
FINE_DIRECTIONS = {"receipts_exceed_online": "财政入库多于网上缴纳罚没款，疑似网下收缴罚没款、体外循环",
                   "online_exceeds_receipts": "网上缴纳罚没款多于财政入库，疑似未及时足额上缴"}


@dataclass(frozen=True)
class Params:
    min_yuan: Decimal = Decimal("1")          # a difference must exceed this many yuan …
    min_ratio: Decimal = Decimal("0.001")     # … and this share of the larger figure (0.1 %)
    missing_receipts: bool = True             # a month with no receipts row compares with 0 …
    receipts_due_days: int = 0                # … this many days after the month has ended


@dataclass(frozen=True)
class Month:
    period: str
    start: datetime  # first instant of the local month, UTC
    end: datetime    # first instant of the next local month, UTC


def _first_instant(year: int, month: int, tz: tzinfo) -> datetime:
    # fold=0: a local midnight skipped by a DST jump maps to the jump itself, the month's
    # first instant; a repeated one to its first occurrence.
    return datetime(year, month, 1, tzinfo=tz).astimezone(timezone.utc)


def months_between(first: str, ctx: Context) -> list[Month]:
    """The local months from ``first`` (YYYY-MM) up to the last one over as of ``as_of``."""
    year, month = map(int, first.split("-"))
    out: list[Month] = []
    start = _first_instant(year, month, ctx.tz)
    while True:
        nyear, nmonth = (year + 1, 1) if month == 12 else (year, month + 1)
        end = _first_instant(nyear, nmonth, ctx.tz)
        if end > ctx.as_of:
            return out
        out.append(Month(f"{year:04d}-{month:02d}", start, end))
        year, month, start = nyear, nmonth, end


def month_index(column, months: list[Month]):
    """A CASE giving the index into ``months`` of a UTC timestamp inside them: a binary
    search over the boundaries, so each row costs log2(months) comparisons."""
    def node(lo: int, hi: int):
        if hi - lo == 1:
            return literal_column(str(lo), Integer)
        mid = (lo + hi) // 2
        return case((column < months[mid].start, node(lo, mid)), else_=node(mid, hi))
    return node(0, len(months))


def _departments(scope, column):
    conditions = []
    if scope.departments:
        conditions.append(column.in_(sorted(scope.departments)))
    if scope.exclude_departments:
        conditions.append(column.not_in(sorted(scope.exclude_departments)))
    return and_(true(), *conditions)


FEE_PAID: ColumnClause[str] = literal_column("'fee_paid'")  # a literal: the partial index applies


def detect(conn: Connection, rule, ctx: Context) -> Iterator[Finding]:
    e, p = Event.__table__, rule.params
    online = and_(e.c.step == FEE_PAID, e.c.channel == "online",
                  _departments(rule.scope, e.c.department))
    # a department is (region, code) throughout: counties share codes (migration 0029)
    receipts, marks = {}, {}
    for r in conn.execute(select(Receipt.region, Receipt.department, Receipt.period,
                                 Receipt.amount, Receipt.event_mark)
                          .where(_departments(rule.scope, Receipt.department))):
        receipts[((r.region, r.department), r.period)] = r.amount
        marks[((r.region, r.department), r.period)] = r.event_mark
    earliest = _earliest(conn, rule.scope, online, ctx)
    firsts = [period for _, period in receipts]
    if earliest is not None:
        firsts.append(aware(earliest).astimezone(ctx.tz).strftime("%Y-%m"))
    months = months_between(min(firsts), ctx) if firsts else []
    if not months:
        return
    by_period = {m.period: m for m in months}
    if ctx.since_event_id is None:
        totals = _all_totals(conn, online, months)
        keys = set(totals) | {k for k in receipts if k[1] in by_period}
    else:
        keys, totals = _changed(conn, online, months, receipts, marks, p, ctx)
    loaded = {department for department, _ in receipts}
    unloaded = sorted({department for department, _ in keys} - loaded)
    if unloaded:
        log.warning("fee reconciliation: no treasury receipts loaded for department%s %s: "
                    "their months are not compared (permit-monitor ingest receipts)",
                    "s" if len(unloaded) > 1 else "",
                    ", ".join(code if len({u[0] for u, _ in keys}) == 1 else
                              f"{code} (region {region})" for region, code in unloaded))
    kinds = _charging(conn)
    for department, period in sorted(k for k in keys if k[0] in loaded):
        finding = _compare(department, by_period[period], totals.get((department, period)),
                           receipts.get((department, period)), p, ctx, kinds.get(department))
        if finding is not None:
            yield finding


def _charging(conn: Connection) -> dict[tuple[str, str], str]:
    """(region, department) → ``fine`` when every charging item of it (catalog fee above 0, or a
    penalty) is a penalty: what it pays into the treasury are fines (罚没款); ``mixed`` when
    it has both. Its findings are titled and worded so; a department of fees only is not
    listed (the rule's own words)."""
    charging = (fen(Item.fee) > 0) | (Item.category == "penalty")
    out = {}
    for region, department, fines, total in conn.execute(
            select(Item.region, Item.department,
                   func.count(case((Item.category == "penalty", 1))),
                   func.count()).where(charging).group_by(Item.region, Item.department)):
        if fines:
            out[(region, department)] = "fine" if fines == total else "mixed"
    return out


def _earliest(conn: Connection, scope, online, ctx: Context):
    """The first online payment by ``as_of``: per catalog department (events name only
    those), the first entry of its range of ``ix_events_fee_paid`` — not a pass over
    every payment, which the index (department first) could not give in time order."""
    e = Event.__table__
    first = (select(func.min(e.c.occurred_at))
             .where(online, e.c.department == Department.code,
                    e.c.region == Department.region, e.c.occurred_at <= ctx.as_of)
             .correlate(Department).scalar_subquery())
    return conn.scalar(select(func.min(first)).select_from(Department)
                       .where(_departments(scope, Department.code)))


Totals = dict[tuple[tuple[str, str], str], tuple[Decimal, int]]  # ((region, dept), month)


def events_region(conn: Connection):
    """The events' region as a column to group by: the one region, as a literal, when
    the store's events are of one county (two index lookups) — ``ix_events_fee_paid``
    then covers the totals as it did before the region was part of a department's
    key — else the column."""
    e = Event.__table__
    lo, hi = (conn.scalar(select(f(e.c.region))) for f in (func.min, func.max))
    return cast(literal(lo), String).label("region") if lo == hi else e.c.region


def _all_totals(conn: Connection, online, months: list[Month]) -> Totals:
    """Every department-month's online total and payment count, in one pass."""
    e = Event.__table__
    inner = (select(events_region(conn), e.c.department,
                    month_index(e.c.occurred_at, months).label("month"),
                    fen(e.c.amount).label("amount"))
             .where(online, e.c.occurred_at >= months[0].start,
                    e.c.occurred_at < months[-1].end).subquery())
    return {((r.region, r.department), months[r.month].period): (yuan(r.total), r.payments)
            for r in conn.execute(
                select(inner.c.region, inner.c.department, inner.c.month,
                       func.coalesce(func.sum(inner.c.amount), 0).label("total"),
                       func.count().label("payments"))
                .group_by(inner.c.region, inner.c.department, inner.c.month))}


def _changed(conn: Connection, online, months: list[Month], receipts, marks, p: Params,
             ctx: Context) -> tuple[set[tuple[tuple[str, str], str]], Totals]:
    """The department-months whose figures may differ from the previous run's (see the
    module's "Incremental"), and their online totals."""
    e = Event.__table__
    index = {m.period: i for i, m in enumerate(months)}
    starts = [m.start for m in months]
    # month index → (region, department)s to re-check (None: all of them)
    wanted: dict[int, set[tuple[str, str]] | None] = {}
    since = ctx.since_as_of
    assert since is not None  # set with since_event_id, which the caller checked
    for i, month in enumerate(months):
        if month.end > since or (
                p.missing_receipts and since < _due(month, p, ctx) <= ctx.as_of):
            wanted[i] = None
    fresh: dict[tuple[str, str], bool] = {}  # department → are all its receipts rows new?
    for (department, period), mark in marks.items():
        new = mark is None or mark >= ctx.since_event_id
        fresh[department] = fresh.get(department, True) and new
        if period in index and new:
            _want(wanted, index[period], department)
    for department in (d for d, new in fresh.items() if new):
        # its first receipts: its months were skipped as unloaded until now
        for i in range(len(months)):
            _want(wanted, i, department)
    for region, department, at in conn.execute(
            select(e.c.region, e.c.department, e.c.occurred_at)
            .where(online, new_events(ctx), e.c.occurred_at >= months[0].start,
                   e.c.occurred_at < months[-1].end)):
        _want(wanted, bisect_right(starts, aware(at)) - 1, (region, department))
    keys: set[tuple[tuple[str, str], str]] = set()
    totals: Totals = {}
    of_region = events_region(conn)
    for i, departments in sorted(wanted.items()):
        month = months[i]
        query = (select(of_region, e.c.department,
                        func.coalesce(func.sum(fen(e.c.amount)), 0), func.count())
                 .where(online, e.c.occurred_at >= month.start, e.c.occurred_at < month.end)
                 .group_by(of_region, e.c.department))
        if departments is not None:
            # by code, as the index leads; the other counties' rows of a code are dropped
            query = query.where(e.c.department.in_(sorted({d for _, d in departments})))
            keys |= {(d, month.period) for d in departments}
        else:
            keys |= {k for k in receipts if k[1] == month.period}
        for region, department, total, payments in conn.execute(query):
            if departments is not None and (region, department) not in departments:
                continue
            totals[((region, department), month.period)] = (yuan(total), payments)
            keys.add(((region, department), month.period))
    return keys, totals


def _want(wanted: dict, month: int, department: tuple[str, str]) -> None:
    if month in wanted and wanted[month] is None:
        return
    wanted.setdefault(month, set()).add(department)


def _due(month: Month, p: Params, ctx: Context) -> datetime:
    """When a month with payments but no receipts row is compared with 0."""
    end = month.end.astimezone(ctx.tz)
    return datetime(end.year, end.month, end.day, tzinfo=ctx.tz) + timedelta(
        days=p.receipts_due_days)


def _compare(unit: tuple[str, str], month: Month, online: tuple[Decimal, int] | None,
             received: Decimal | None, p: Params, ctx: Context,
             variant: str | None) -> Finding | None:
    paid, payments = online or (yuan(0), 0)
    if received is None and (not p.missing_receipts or ctx.as_of < _due(month, p, ctx)):
        return None
    against = yuan(0) if received is None else received
    difference = paid - against
    threshold = max(p.min_yuan, p.min_ratio * max(paid, against))
    if abs(difference) <= threshold:
        return None
    direction = "online_exceeds_receipts" if difference > 0 else "receipts_exceed_online"
    words = {"fine": FINE_DIRECTIONS, "mixed": MIXED_DIRECTIONS}.get(variant or "", DIRECTIONS)
    text = words[direction] + ("（该月无财政入库记录）" if received is None else "")
    region, department = unit
    return Finding(
        subject=f"{department}|{month.period}", department=department, period=month.period,
        region=region, variant=variant,
        fields={"online": money(paid), "difference": money(abs(difference)),
                "receipts": "无记录" if received is None else f"{money(received)} 元",
                "direction": text, "payments": payments},
        evidence={"period": month.period, "timezone": str(ctx.tz),
                  "from": month.start.astimezone(ctx.tz).isoformat(),
                  "until": month.end.astimezone(ctx.tz).isoformat(),
                  "online_total": money(paid), "online_payments": payments,
                  "receipts": money(received), "receipts_recorded": received is not None,
                  "online_minus_receipts": money(difference), "direction": direction,
                  "threshold": _plain(threshold), "min_yuan": _plain(p.min_yuan),
                  "min_ratio": _plain(p.min_ratio)})


def _plain(value: Decimal) -> str:
    """An exact decimal without trailing zeros or exponent: 2.003, 1, 0.001."""
    return format(value.normalize(), "f")
