"""ranking_last (考评排名末位): a department last — or in the bottom ``bottom`` — of the
scorecard ranking (绩效考评, ``permit-monitor scores``) for ``months`` months running is a
tier-2 finding recommending an interview of its head (约谈), as the seed county did with
the departments that failed to rectify.

* The ranking is the scorecard's own (monitor/scores.py), with the configured weights,
  over the months that are over as of the run: the last ``months`` of them.
* Only with at least ``min_departments`` departments ranked (a ranking of two says
  little), and never the first rank (when every department scores the same, none is last). Findings of this kind never count in the scores themselves.
* One finding per department and latest month (subject ``DEPT|YYYY-MM``); it goes
  straight to tier 2 (monitor/supervision.py ``TIER2_KINDS``).
* Runs after the other rules (their findings of this run count). Not incremental.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from sqlalchemy import Connection

from ...config import ScoreWeights
from ...report.period import month
from ...scores import ranking
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


def detect(conn: Connection, rule, ctx: Context) -> Iterator[Finding]:
    p, weights = rule.params, ctx.scores or ScoreWeights()
    today = ctx.as_of.astimezone(ctx.tz).date().replace(day=1)
    periods = []
    current = month(today)
    for _ in range(p.months):
        current = current.previous()
        periods.append(current)
    periods.reverse()
    bottoms: list[dict[str, tuple[int, int]]] = []
    for period in periods:
        rows = ranking(conn, weights, ctx.tz, period)
        if len(rows) < p.min_departments:
            return
        # the bottom ranks, never the top one: when every department scores the same, none
        # of them is last
        worst = sorted({r["rank"] for r in rows} - {1})[-p.bottom:]
        bottoms.append({r["department"]: (r["rank"], len(rows)) for r in rows
                        if r["rank"] in worst and _in_scope(rule, r["department"])})
    for dept in sorted(set.intersection(*(set(b) for b in bottoms))):
        ranks = "，".join(f"{period.label} 第 {b[dept][0]}/{b[dept][1]} 名"
                         for period, b in zip(periods, bottoms))
        yield Finding(subject=f"{dept}|{periods[-1].label}", department=dept,
                      period=periods[-1].label,
                      fields={"months": p.months, "ranks": ranks},
                      evidence={"ranks": {period.label: {"rank": b[dept][0], "of": b[dept][1]}
                                          for period, b in zip(periods, bottoms)},
                                "bottom": p.bottom})


def _in_scope(rule, department: str) -> bool:
    s = rule.scope
    return ((not s.departments or department in s.departments)
            and department not in s.exclude_departments)
