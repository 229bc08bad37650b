"""ranking_last (考评排名末位): a department last — or in the bottom ``bottom`` — of the
scorecard ranking (绩效考评, ``permit-monitor scores``) for ``months`` months running is a
tier-2 finding recommending an interview of its head (约谈), as the seed county did with
the departments that failed to rectify.

* The ranking is the scorecard's own (monitor/scores.py), with the configured weights,
  over the months that are over as of the run: the last ``months`` of them.
* Each county's departments are ranked among their own county (a store holding several
  counties ranks each apart; a city's or province's ranking of counties is a report
  matter, ``report --region``): one scorecard pass for the store, each department's
  region read in one query, the rows re-ranked per region — or, where counties share a
  department code (each its own catalog, migration 0029), one pass per county. Its
  finding names its department's county (``Finding.region``), which its alert takes.
  Two months' deductions come from one dating of the alerts (a month's and the one
  before it).
* Only with at least ``min_departments`` departments ranked in the county (a ranking of
  two says little), and never the first rank (when every department scores the same,
  none is last). Findings of this kind never count in the scores themselves.
* One finding per department and latest month (subject ``DEPT|YYYY-MM``); it goes
  straight to tier 2 (monitor/supervision.py ``TIER2_KINDS``).
* Runs after the other rules (their findings of this run count). Not incremental, but
  an incremental pass skips it while the months judged are the same and the trail has
  not grown since its last pass (``mark``): every change to what the scores read — an
  alert raised, re-levelled, disposed of, escalated or cleared, a spot check, a catalog
  load — is an entry on some chain. An entry of the rule's own (its alerts raised) makes
  the next pass judge again, once.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass

from sqlalchemy import Connection, func, select

from ...config import ScoreWeights
from ...models import Department, TrailHead
from ...report.period import month
from ...report.rollup import department_regions, shared_ranks
from ...scores import deductions_of, ranking
from ..finding import Context, Finding

TITLE = "部门考评连续排名末位（建议约谈）"
DEFAULT_MESSAGE = "{department} 连续 {months} 个月考评排名末位（{ranks}），建议约谈部门负责人"
FIELDS = ("months", "ranks")
INCREMENTAL = False
AFTER_OTHERS = True
KIND = "ranking_last"


@dataclass(frozen=True)
class Params:
    months: int = 2           # months running
    bottom: int = 1           # last place (1), or the bottom N
    min_departments: int = 3  # fewer ranked departments: no finding

    def __post_init__(self) -> None:
        if self.months < 1 or self.bottom < 1:
            raise ValueError("params.months and params.bottom must be at least 1")


def _periods(rule, ctx: Context) -> list:
    """The months judged, oldest first: the last ``months`` that are over."""
    periods = []
    current = month(ctx.as_of.astimezone(ctx.tz).date().replace(day=1))
    for _ in range(rule.params.months):
        current = current.previous()
        periods.append(current)
    periods.reverse()
    return periods


def mark(conn: Connection, rule, ctx: Context) -> str:
    """The last month judged, the trail's length over every chain and the weights."""
    entries = conn.scalar(select(func.coalesce(func.sum(TrailHead.seq), 0)))
    weights = hashlib.sha256(repr(ctx.scores or ScoreWeights()).encode()).hexdigest()[:16]
    return f"{_periods(rule, ctx)[-1].label}|{entries}|{weights}"


def unchanged(conn: Connection, rule, ctx: Context) -> bool:
    """Everything the pass reads is in :func:`mark`."""
    return True


def detect(conn: Connection, rule, ctx: Context) -> Iterator[Finding]:
    p, weights = rule.params, ctx.scores or ScoreWeights()
    periods = _periods(rule, ctx)
    # per region: department → (rank, departments ranked) in each period, oldest first
    bottoms: dict[str, list[dict[str, tuple[int, int]]]] = {}
    found = _deductions(conn, weights, ctx, periods)
    for period in periods:
        counties = _by_county(conn, weights, ctx, period, found[period.label])
        for region in set(bottoms) | set(counties):
            bottoms.setdefault(region, []).append(_bottom(rule, counties.get(region, [])))
    last = set()
    for region, b in bottoms.items():
        if len(b) == len(periods) and all(b):
            last |= {(region, dept, tuple(x[dept] for x in b))
                      for dept in set.intersection(*(set(x) for x in b))}
    for region, dept, at in sorted(last):
        ranks = "，".join(f"{period.label} 第 {rank}/{of} 名"
                         for period, (rank, of) in zip(periods, at))
        yield Finding(subject=f"{dept}|{periods[-1].label}", department=dept,
                      period=periods[-1].label, region=region or None,
                      fields={"months": p.months, "ranks": ranks},
                      evidence={"ranks": {period.label: {"rank": rank, "of": of}
                                          for period, (rank, of) in zip(periods, at)},
                                "bottom": p.bottom})


def _by_county(conn: Connection, weights, ctx: Context, period, found: list
               ) -> dict[str, list[dict]]:
    """Each county's departments ranked, best first: one ranking of the store split by
    the departments' counties; where counties share a department code (migration 0029)
    a code names no one county, and each county is ranked on its own."""
    regions = sorted(conn.scalars(select(Department.region).distinct()))
    if len(regions) > 1 and conn.execute(
            select(Department.code).group_by(Department.code)
            .having(func.count() > 1).limit(1)).first() is not None:
        return {code: ranking(conn, weights, ctx.tz, period, region=code) for code in regions}
    rows = ranking(conn, weights, ctx.tz, period, found=found)
    of_region = department_regions(conn, {r["department"]: "" for r in rows})
    counties: dict[str, list[dict]] = {}
    for r in rows:  # best first: so is each county's share
        counties.setdefault(of_region.get(r["department"], ""), []).append(r)
    return counties


def _deductions(conn: Connection, weights: ScoreWeights, ctx: Context, periods: list
                ) -> dict[str, list]:
    """Each month's scorecard deductions, two months running from one pass over the alerts
    (a month's and the one before it: ``deductions_of``'s ``cur`` and ``prev``)."""
    out = {}
    for i in range(len(periods) - 1, -1, -2):
        pair = deductions_of(conn, weights, ctx.tz, periods[i], ("cur", "prev") if i else ("cur",))
        out[periods[i].label] = pair["cur"]
        if i:
            out[periods[i - 1].label] = pair["prev"]
    return out


def _bottom(rule, rows: list[dict]) -> dict[str, tuple[int, int]]:
    """The departments of one county in its bottom ranks: department → (rank, of)."""
    p = rule.params
    if len(rows) < p.min_departments:
        return {}
    ranks = shared_ranks([r["total"] for r in rows])
    # the bottom ranks, never the top one: when every department scores the same, none
    # of them is last
    worst = sorted(set(ranks) - {1})[-p.bottom:]
    return {r["department"]: (rank, len(rows)) for r, rank in zip(rows, ranks)
            if rank in worst and _in_scope(rule, r["department"])}


def _in_scope(rule, department: str) -> bool:
    s = rule.scope
    return ((not s.departments or department in s.departments)
            and department not in s.exclude_departments)
