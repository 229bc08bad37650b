"""Rolling a report up from departments to counties (issue 21 item 2).

A report or scorecard for a city or a province (``--region 330100``) covers every county
under it (:func:`monitor.regions.covers`); its tables by department list the
departments of all of them, and :func:`regions_table` adds one row per county, summed
from the same figures, so the county rows add up to the departments' rows exactly.
Rankings of counties are the scorecard's (:func:`rank_regions`): a county's score is the
mean total of its departments that handle cases, so a county is not ranked down for
having more departments.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from typing import Any

from sqlalchemy import Connection, Engine, func, select

from .. import regionnames, regions
from ..models import Department
from ..regionstore import in_region
from .model import Column, Table, rate


def department_regions(conn: Connection, departments: Mapping[str, str]) -> dict[str, str]:
    """department code → its region, for the given departments."""
    codes = sorted(departments)
    if not codes:
        return {}
    return dict(conn.execute(select(Department.code, Department.region)
                             .where(Department.code.in_(codes))).tuples().all())


def shared_codes(conn: Connection, region: str) -> bool:
    """Whether two counties under ``region`` share a department code (each county has its
    own catalog under the same codes, migration 0029): a code then names no one county,
    and a rollup goes county by county (:func:`counties`)."""
    query = (select(Department.code).where(in_region(Department.region, region))
             .group_by(Department.code)
             .having(func.count(func.distinct(Department.region)) > 1).limit(1))
    return conn.execute(query).first() is not None


def counties(conn: Connection, region: str) -> list[str]:
    """The regions under ``region`` that have departments in the catalog, by code."""
    return sorted(conn.scalars(select(Department.region).distinct()
                               .where(in_region(Department.region, region))))


def region_names(engine: Engine, config: Any, region: str | None,
                 of_department: Mapping[str, str] | None,
                 more: Iterable[str] = ()) -> dict[str, str]:
    """code → name for the codes a report prints: the one reported on (the store's own
    when none) and its counties (``more``: those rolled up county by county)."""
    return regionnames.names_of(engine, {region or config.region,
                                         *(of_department or {}).values(), *more})


def region_label(config: Any, region: str | None, known: Mapping[str, str]) -> str | None:
    """The header's region: ``--region``'s code and name, or the store's own name when
    it has one (a single county's report names its county once it is named)."""
    if region:
        return regionnames.label(region, known)
    own = config.region
    return regionnames.label(own, known) if own in known else None


def rolls_up(region: str | None) -> bool:
    """Whether a report of ``region`` has counties to roll up (a city or a province)."""
    return region is not None and regions.level(region) != regions.COUNTY


def regions_table(figures: Any, of_department: Mapping[str, str], label,
                  known: Mapping[str, str] | None = None) -> Table:
    """One row per county: cases accepted and completed, on time, findings and red ones
    in the period, summed over its departments (``figures``: the report's Figures, or
    with ``figures.by_county`` each county's own, where counties share department codes);
    ``known``: code → name (monitor/regionnames.py), empty for a code not named."""
    known = known or {}
    sums: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    by_county = getattr(figures, "by_county", None)
    parts = ([(f, dict.fromkeys(f.depts, code)) for code, f in by_county.items()]
             if by_county else [(figures, of_department)])
    for part, of in parts:
        for dept in part.depts:
            row = sums[of.get(dept, regions.UNNAMED)]
            done = part.done.get(dept)
            row["departments"] += 1
            row["accepted"] += part.cases.get((dept, "accept", "cur"), 0)
            row["completed"] += done.completed if done else 0
            row["on_time"] += done.on_time if done else 0
            row["findings"] += part.findings(dept, "cur")
            row["red"] += part.findings(dept, "cur", "red")
    rows = [{"region": code, "name": known.get(code, ""),
             "level": label(f"level_{regions.level(code)}"),
             "departments": s["departments"], "accepted": s["accepted"],
             "completed": s["completed"], "on_time_rate": rate(s["on_time"], s["completed"]),
             "findings": s["findings"], "red": s["red"]} for code, s in sorted(sums.items())]
    total = {"region": "", "name": "", "level": label("total_row"),
             **{k: sum(r[k] for r in rows) for k in ("departments", "accepted", "completed",
                                                      "findings", "red")},
             "on_time_rate": rate(sum(s["on_time"] for s in sums.values()),
                                  sum(s["completed"] for s in sums.values()))}
    return Table("t_regions", [Column("region", "text"), Column("name", "text"),
                               Column("level", "text"),
                               Column("departments"), Column("accepted"), Column("completed"),
                               Column("on_time_rate", "pct"), Column("findings"),
                               Column("red")], rows, total)


def rank_regions(ranked: list[dict[str, Any]], of_department: Mapping[str, str],
                 known: Mapping[str, str] | None = None,
                 by_county: Mapping[str, list[dict[str, Any]]] | None = None
                 ) -> list[dict[str, Any]]:
    """Counties ranked by the mean total of their departments (``ranked``: the
    scorecard's department rows; ``by_county``: each county's own, where counties share
    department codes), best first; equal scores share a rank; ``known``: code → name, as
    for :func:`regions_table`."""
    known = known or {}
    by_region: dict[str, list[dict[str, Any]]] = defaultdict(list)
    if by_county:
        by_region.update({code: rows for code, rows in by_county.items() if rows})
    else:
        for row in ranked:
            by_region[of_department.get(row["department"], regions.UNNAMED)].append(row)
    rows = [{"region": code, "name": known.get(code, ""), "departments": len(depts),
             "deductions": round(sum(d["deductions"] for d in depts), 2),
             "score": round(sum(d["total"] for d in depts) / len(depts), 2)}
            for code, depts in by_region.items()]
    rows.sort(key=lambda r: (-r["score"], r["region"]))
    for r, rank in zip(rows, shared_ranks([r["score"] for r in rows])):
        r["rank"] = rank
    return rows


def shared_ranks(scores: list[Any]) -> list[int]:
    """The ranks of ``scores`` listed best first: 1, 2, 3 …, equal scores sharing a rank
    (competition ranking: 1, 2, 2, 4)."""
    ranks: list[int] = []
    for i, score in enumerate(scores):
        ranks.append(ranks[-1] if i and scores[i - 1] == score else i + 1)
    return ranks


def region_scores_table(rows: list[dict[str, Any]]) -> Table:
    return Table("t_region_scores", [Column("rank"), Column("region", "text"),
                                     Column("name", "text"),
                                     Column("departments"), Column("deductions", "num"),
                                     Column("score", "num")], rows)
