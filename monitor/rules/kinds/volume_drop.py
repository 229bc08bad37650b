"""volume_drop (网上办件量骤降): a department's (or item's) online case count — or online fee
total, for penalties — falls by more than ``min_drop`` against the same month last year or
the mean of the months before: the offline-operation (网下运行) signal. The seed county found
online penalty volumes down 13.6 % on the year (one bureau down 22.5 %) and the treasury's
receipts up: cases handled outside the system.

* ``measure: cases`` counts cases accepted (``accept`` steps) in the local month;
  ``measure: fees`` sums online ``fee_paid`` amounts (yuan).
* ``baseline: last_year`` compares with the same month a year before; ``trailing`` with
  the mean of the ``trailing_months`` months before. A baseline below ``min_baseline`` is
  too small to judge (nothing is said).
* Only months that are over are judged: the last ``lookback_months`` of them.
* ``by: department`` (default) or ``item``. The treasury's receipts for the department-month
  (and the year before) are shown beside it where loaded.
* Per county: figures, names and receipts are each county's own under the department and
  item codes counties share (migrations 0029, 0033); a finding names its county
  (``Finding.region``), which its alert takes.
* Incremental passes skip it while the months judged stay the same and nothing stored
  since the last pass falls in the months compared: no new ``accept`` (or online
  ``fee_paid``) event dated in them — a late one of a month that is over is re-judged —
  and no receipts loaded since (the mark counts the rows and names the latest ingest run
  that wrote one). A catalog change alone
  (names, categories) waits for the next month or ``run --full``, as it does for every
  incremental kind.
* Scope: department, item and category lists. Not incremental: one grouped pass over the
  events of the months compared — on PostgreSQL a range of the ``dated`` index where its
  statistics say those months are a small part of the store; on SQLite, which keeps no
  statistics, a scan of the table: the range fetched each row by an index probe, about
  7 × a scan's cost per row (1.5 s against 0.2 s at 100,000 cases, every one of them in
  the months compared), so the scan is the cheaper plan until the store holds some ten
  years of history.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, and_, func, literal_column, select, true, tuple_

from ...models import Event, Item, Receipt, dated
from ..finding import Context, Finding
from ..sql import new_events
from .fee_reconciliation import Month, events_region, month_index, months_between

TITLE = "网上办件量同比骤降（疑似网下运行）"
DEFAULT_MESSAGE = ("{subject_name} {period} 网上{measure_name} {current}，{baseline_name} {baseline}，"
                   "下降 {drop_pct}%{receipts_text}")
FIELDS = ("subject_name", "measure_name", "current", "baseline", "baseline_name", "drop_pct",
          "receipts_text")
INCREMENTAL = False
KIND = "volume_drop"
REGIONAL = True  # one county at a time: its events alone (run --jobs)
MEASURES = {"cases": "受理件数", "fees": "收费金额（元）"}


@dataclass(frozen=True)
class Params:
    measure: str = "cases"         # cases | fees
    baseline: str = "last_year"    # last_year | trailing
    trailing_months: int = 6
    min_drop: Decimal = Decimal("0.10")  # a fall of more than this share is a finding
    min_baseline: Decimal = Decimal("20")
    lookback_months: int = 3
    by: str = "department"         # department | item

    def __post_init__(self) -> None:
        for name, value, allowed in (("measure", self.measure, tuple(MEASURES)),
                                     ("baseline", self.baseline, ("last_year", "trailing")),
                                     ("by", self.by, ("department", "item"))):
            if value not in allowed:
                raise ValueError(f"params.{name} must be one of {', '.join(allowed)}, "
                                 f"got '{value}'")
        if not (0 < self.min_drop < 1):
            raise ValueError("params.min_drop must be a share between 0 and 1 (0.10 = 10 %)")
        if self.trailing_months < 1 or self.lookback_months < 1:
            raise ValueError("params.trailing_months and params.lookback_months must be at "
                             "least 1")


def _shift(period: str, months: int) -> str:
    year, month = map(int, period.split("-"))
    n = year * 12 + month - 1 + months
    return f"{n // 12:04d}-{n % 12 + 1:02d}"


def _scope(rule, e):
    s, conditions = rule.scope, []
    if s.departments:
        conditions.append(e.c.department.in_(sorted(s.departments)))
    if s.exclude_departments:
        conditions.append(e.c.department.not_in(sorted(s.exclude_departments)))
    if s.items:
        conditions.append(e.c.item_code.in_(sorted(s.items)))
    if s.exclude_items:
        conditions.append(e.c.item_code.not_in(sorted(s.exclude_items)))
    if s.categories or s.exclude_categories:
        items = select(Item.region, Item.code)  # each county's items (migration 0029)
        if s.categories:
            items = items.where(Item.category.in_(sorted(s.categories)))
        if s.exclude_categories:
            items = items.where(Item.category.not_in(sorted(s.exclude_categories)))
        conditions.append(tuple_(e.c.region, e.c.item_code).in_(items))
    return and_(true(), *conditions)


def _window(rule, ctx: Context) -> tuple[list[str], list[Month]]:
    """The months judged as of ``ctx.as_of`` (the last ``lookback_months`` that are over)
    and every month compared (the judged ones and their baselines)."""
    p = rule.params
    this_month = ctx.as_of.astimezone(ctx.tz).strftime("%Y-%m")
    last = months_between(_shift(this_month, -p.lookback_months - 1), ctx)
    judged = [m.period for m in last[-p.lookback_months:]]
    if not judged:
        return [], []
    back = 12 if p.baseline == "last_year" else p.trailing_months
    return judged, months_between(_shift(judged[0], -back), ctx)


def mark(conn: Connection, rule, ctx: Context) -> str:
    """The months a pass judges and the receipts it reads (how many rows, and the latest
    ingest run that wrote one: every load or correction is a new run), see
    monitor/rules/kinds ``Kind``."""
    rows, run = conn.execute(select(func.count(), func.max(Receipt.run_id))).one()
    return f"{','.join(_window(rule, ctx)[0])}|{rows}|{run}"


def unchanged(conn: Connection, rule, ctx: Context) -> bool:
    """No measured event stored since the last pass (``ctx``: incremental) is dated in the
    months compared."""
    months = _window(rule, ctx)[1]
    if not months:
        return True
    e = Event.__table__
    return conn.scalar(select(e.c.id).where(
        new_events(ctx), _measured(rule, e), e.c.occurred_at >= months[0].start,
        e.c.occurred_at < months[-1].end, _scope(rule, e)).limit(1)) is None


def _measured(rule, e):
    """The events the measure counts: acceptances, or online payments."""
    if rule.params.measure == "cases":
        return and_(e.c.step == literal_column("'accept'"))
    return and_(e.c.step == literal_column("'fee_paid'"), e.c.channel == "online")


def _figures(conn: Connection, rule, months: list[Month]
             ) -> dict[tuple[tuple[str, str], str], Decimal]:
    """(region, department or item) and month → the measure: each county's own, under
    the codes counties share (migration 0029)."""
    e, p = Event.__table__, rule.params
    key = e.c.department if p.by == "department" else e.c.item_code
    bucket = month_index(e.c.occurred_at, months).label("m")
    value: Any = (func.count(func.distinct(e.c.case_id)) if p.measure == "cases"
                  else func.sum(e.c.amount))
    step = _measured(rule, e)
    lo, hi = months[0].start, months[-1].end
    months_compared = and_(e.c.occurred_at >= lo, e.c.occurred_at < hi)
    region = events_region(conn)  # a literal for a store of one county
    if conn.dialect.name == "postgresql":
        # dated ≥ occurred_at, so this adds no condition: it offers the planner a range of
        # the dated index, which it takes where the months are a small part of the store
        months_compared = and_(months_compared, dated(e.c.occurred_at, e.c.recorded_at) >= lo)
    rows = conn.execute(
        select(region, key.label("k"), bucket, value.label("v"))
        .where(step, months_compared, _scope(rule, e))
        .group_by(region, key, bucket))
    out: dict[tuple[tuple[str, str], str], Decimal] = defaultdict(Decimal)
    for region, k, m, v in rows:
        out[((region, k), months[int(m)].period)] += Decimal(v or 0)
    return out


def detect(conn: Connection, rule, ctx: Context) -> Iterator[Finding]:
    p = rule.params
    judged, months = _window(rule, ctx)
    if not judged:
        return
    figures = _figures(conn, rule, months)
    keys = sorted({k for k, _ in figures})
    names, depts = _names(conn, p.by, keys)
    receipts = {((r.region, r.department), r.period): r.amount for r in conn.execute(
        select(Receipt.region, Receipt.department, Receipt.period, Receipt.amount))}
    for period in judged:
        for k in keys:
            current = figures.get((k, period), Decimal(0))
            if p.baseline == "last_year":
                baseline = figures.get((k, _shift(period, -12)), Decimal(0))
                baseline_name = "去年同期"
            else:
                prior = [figures.get((k, _shift(period, -i)), Decimal(0))
                         for i in range(1, p.trailing_months + 1)]
                baseline = sum(prior, Decimal(0)) / len(prior)
                baseline_name = f"前 {p.trailing_months} 个月月均"
            if baseline < p.min_baseline or baseline <= 0:
                continue
            drop = (baseline - current) / baseline
            if drop <= p.min_drop:
                continue
            region, code = k
            dept = depts.get(k, code)
            got = receipts.get(((region, dept), period))
            before = receipts.get(((region, dept), _shift(period, -12)))
            receipts_text = ""
            if got is not None:
                receipts_text = f"；同月财政入库 {got} 元" + (
                    f"（去年同期 {before} 元）" if before is not None else "")
            yield Finding(
                subject=f"{code}|{period}", department=dept, period=period, region=region,
                item_code=code if p.by == "item" else None,
                fields={"subject_name": names.get(k, code), "measure_name": MEASURES[p.measure],
                        "current": _num(current), "baseline": _num(baseline),
                        "baseline_name": baseline_name,
                        "drop_pct": f"{(drop * 100).quantize(Decimal('0.1'))}",
                        "receipts_text": receipts_text},
                evidence={"measure": p.measure, "baseline_kind": p.baseline,
                          "current": _num(current), "baseline": _num(baseline),
                          "drop": f"{drop:.4f}", "min_drop": str(p.min_drop),
                          "months": {m: _num(figures.get((k, m), Decimal(0)))
                                     for m in [x.period for x in months]},
                          "receipts": None if got is None else str(got),
                          "receipts_year_before": None if before is None else str(before)})


def _num(value: Decimal) -> str:
    q = value.quantize(Decimal("0.01"))
    return str(q.to_integral_value()) if q == q.to_integral_value() else str(q)


def _names(conn: Connection, by: str, keys: list[tuple[str, str]]) -> tuple[dict, dict]:
    """(region, code) → its name in that county's catalog; for items, also → the item's
    department there."""
    from ...models import Department

    if by == "department":
        return {(r.region, r.code): r.name for r in conn.execute(
            select(Department.region, Department.code, Department.name))}, {}
    rows = conn.execute(select(Item.region, Item.code, Item.name, Item.department)
                        .where(Item.code.in_(sorted({c for _, c in keys})))).all() \
        if keys else []
    return ({(r.region, r.code): r.name for r in rows},
            {(r.region, r.code): r.department for r in rows})
