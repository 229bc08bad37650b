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
* Scope: receipts are per department, so only the scope's department lists apply; item and
  category lists are ignored by this kind.
* Not incremental (``INCREMENTAL = False``): receipts change without any new event, and
  department-months are few, so every run compares them all.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone, tzinfo
from decimal import Decimal

from sqlalchemy import Connection, Integer, and_, case, func, literal_column, select, true

from ...models import Event, Receipt
from ..finding import Context, Finding
from ._common import aware
from ._fees import fen, money, yuan

INCREMENTAL = False

TITLE = "收费比对不符（网上收费与财政入库不一致）"
DEFAULT_MESSAGE = ("{department} {period}：网上收费 {online} 元，财政入库 {receipts}，"
                   "相差 {difference} 元（{direction}）")
FIELDS = ("online", "receipts", "difference", "direction", "payments")

DIRECTIONS = {"receipts_exceed_online": "财政入库多于网上收费，疑似网下收费、体外循环",
              "online_exceeds_receipts": "网上收费多于财政入库，疑似未及时足额上缴"}


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


def detect(conn: Connection, rule, ctx: Context) -> Iterator[Finding]:
    e, p = Event.__table__, rule.params
    online = and_(e.c.step == "fee_paid", e.c.channel == "online",
                  _departments(rule.scope, e.c.department))
    receipts = {(r.department, r.period): r.amount for r in conn.execute(
        select(Receipt.department, Receipt.period, Receipt.amount)
        .where(_departments(rule.scope, Receipt.department)))}
    earliest = conn.scalar(select(func.min(e.c.occurred_at))
                           .where(online, e.c.occurred_at <= ctx.as_of))
    firsts = [period for _, period in receipts]
    if earliest is not None:
        firsts.append(aware(earliest).astimezone(ctx.tz).strftime("%Y-%m"))
    months = months_between(min(firsts), ctx) if firsts else []
    if not months:
        return
    inner = (select(e.c.department, month_index(e.c.occurred_at, months).label("month"),
                    fen(e.c.amount).label("amount"))
             .where(online, e.c.occurred_at >= months[0].start,
                    e.c.occurred_at < months[-1].end).subquery())
    totals = {(r.department, months[r.month].period): (yuan(r.total), r.payments)
              for r in conn.execute(
                  select(inner.c.department, inner.c.month,
                         func.coalesce(func.sum(inner.c.amount), 0).label("total"),
                         func.count().label("payments"))
                  .group_by(inner.c.department, inner.c.month))}
    by_period = {m.period: m for m in months}
    keys = set(totals) | {k for k in receipts if k[1] in by_period}
    for department, period in sorted(keys):
        finding = _compare(department, by_period[period], totals.get((department, period)),
                           receipts.get((department, period)), p, ctx)
        if finding is not None:
            yield finding


def _compare(department: str, month: Month, online: tuple[Decimal, int] | None,
             received: Decimal | None, p: Params, ctx: Context) -> Finding | None:
    paid, payments = online or (yuan(0), 0)
    if received is None:
        end = month.end.astimezone(ctx.tz)
        due = datetime(end.year, end.month, end.day, tzinfo=ctx.tz) + timedelta(
            days=p.receipts_due_days)
        if not p.missing_receipts or ctx.as_of < due:
            return None
    against = yuan(0) if received is None else received
    difference = paid - against
    threshold = max(p.min_yuan, p.min_ratio * max(paid, against))
    if abs(difference) <= threshold:
        return None
    direction = "online_exceeds_receipts" if difference > 0 else "receipts_exceed_online"
    text = DIRECTIONS[direction] + ("（该月无财政入库记录）" if received is None else "")
    return Finding(
        subject=f"{department}|{month.period}", department=department, period=month.period,
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
