"""Department scorecards (绩效考评): each department starts from 100 and loses points.

Each theme (regular handling, timeliness, fees, supervision response) starts with its
points from ``config.yaml`` (``scores.themes``, 40/30/20/10 by default) and loses:

- per finding of the period, by level (``scores.warning | yellow | red``), in the theme of
  its rule kind (``scores.kind_themes``; kinds not listed: regular handling) — except a
  finding dismissed as a false positive *and confirmed by tier 2*, and one suppressed
  under an exemption. A department cannot clear itself: its own ``false_positive`` costs
  the points until a tier-2 monitor confirms it (``alerts confirm``; tier 2 reviews a
  dismissal at tier 1 too), and the report shows pending and confirmed dismissals apart.
  Why confirmation and not a review window with a sample: a sample would let most
  self-dismissals through unseen, and tier 2 already reviews every escalated
  disposition the same way;
- per finding still to be acted on (``scores.unresolved``) and per finding escalated to
  tier 2 (``scores.escalated``), in supervision response;
- per failed spot check (抽检) of a case completed in the period
  (``scores.failed_spot_check``), in regular handling.

A theme never goes below 0; the total is the sum of the themes. Departments are ranked by
total (equal totals share a rank). Every deduction names the alert or spot check behind it
(``scores --explain D``). Findings are dated as in the report (monitor/report/figures.py).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, tzinfo
from typing import Any

from sqlalchemy import Connection, Engine, or_, select

from .config import THEMES, Config, ScoreWeights
from .models import Alert, Item, SpotCheck
from .report import figures as fg
from .report import rollup
from .report.labels import labeler
from .report.model import Column, Report, Table
from .report.period import Period
from .supervision import ACTIVE, DISMISSALS
from .vocabulary import value_names


@dataclass(frozen=True)
class Deduction:
    department: str
    theme: str
    points: float
    reason: str       # finding:<level> | unresolved | escalated | failed_spot_check
    alert_id: int | None
    kind: str | None
    case_id: str | None
    message: str


def deductions(engine: Engine, config: Config, period: Period,
               department: str | None = None, region: str | None = None,
               by_region: bool = False) -> list[Deduction]:
    """``by_region``: each department as ``REGION:CODE`` (monitor/report/figures.py)."""
    with engine.connect() as conn:
        return deductions_of(conn, config.scores, config.tz, period, ("cur",), department,
                             region, by_region)["cur"]


# findings that are about the scores themselves, not about how a department worked
# ranking_last follows from the scores; data-quality findings are about the data, reported
# apart, never a deduction
# (the rule kinds sit above this module: ranking_last reads the scores; a test keeps the
# list equal to the kinds that declare DATA_QUALITY)
NOT_SCORED = ("ranking_last", "data_quality")


def deductions_in(conn: Connection, w: ScoreWeights, tz: tzinfo, period: Period,
                  department: str | None = None, region: str | None = None
                  ) -> list[Deduction]:
    return deductions_of(conn, w, tz, period, ("cur",), department, region)["cur"]


def deductions_of(conn: Connection, w: ScoreWeights, tz: tzinfo, period: Period,
                  buckets: tuple[str, ...], department: str | None = None,
                  region: str | None = None, by_region: bool = False
                  ) -> dict[str, list[Deduction]]:
    """The deductions of ``period`` (bucket ``cur``) and of its previous one (``prev``:
    for a month, the month before) as each bucket asks, from one pass over the alerts —
    the scores of two months running cost one dating of every alert, not two."""
    scope = fg.Scope(period, tz, department, region, by_region)
    d = fg.dated_alerts(scope)
    out: dict[str, list[Deduction]] = {b: [] for b in buckets}
    for a in conn.execute(
            select(Alert.id, d.c.department, Alert.kind, Alert.level, Alert.status,
                   Alert.escalated_at, Alert.case_id, Alert.message, d.c.bucket)
            .join(d, d.c.id == Alert.id)
            # a finding cleared (复查销号) does not count against a department: it turned out
            # not to hold; a dismissal (false_positive) only once tier 2 confirmed it
            .where(d.c.bucket.in_(buckets), or_(Alert.disposition.is_(None),
                                                Alert.disposition.not_in(DISMISSALS),
                                                Alert.status != "confirmed"),
                   Alert.disposition.is_distinct_from("voided"), Alert.kind.not_in(NOT_SCORED),
                   Alert.status != "cleared")
            .order_by(d.c.department, Alert.id)):
        dept, found = a.department or "-", out[a.bucket]
        theme = w.kind_themes.get(a.kind, "regular")
        found.append(Deduction(dept, theme, getattr(w, a.level), f"finding:{a.level}", a.id,
                               a.kind, a.case_id, a.message))
        if a.status in ACTIVE:
            found.append(Deduction(dept, "supervision", w.unresolved, "unresolved", a.id,
                                   a.kind, a.case_id, a.message))
        if a.escalated_at is not None:
            found.append(Deduction(dept, "supervision", w.escalated, "escalated", a.id,
                                   a.kind, a.case_id, a.message))
    for bucket in buckets:
        lo, hi = scope.bounds[bucket]
        for s in conn.execute(select(SpotCheck).where(
                SpotCheck.result == "fail", SpotCheck.completed_at >= lo,
                SpotCheck.completed_at < hi, scope.dept(SpotCheck.department))
                .order_by(SpotCheck.id)):
            out[bucket].append(Deduction(scope.of(s.region, s.department or "-"), "regular",
                                         w.failed_spot_check,
                                         "failed_spot_check", None, None, s.case_id,
                                         f"抽检不合格：{s.note or ''}（{s.by_user}）"))
    return {b: [x for x in found if x.points] for b, found in out.items()}


def ranking(conn: Connection, w: ScoreWeights, tz: tzinfo, period: Period,
            department: str | None = None, found: list[Deduction] | None = None,
            region: str | None = None, by_region: bool = False) -> list[dict[str, Any]]:
    """Each department handling cases with its points per theme, total and rank (equal
    totals share a rank), best first; ``region``: those of a county, or of the counties
    of a city or province; ``by_region``: departments as ``REGION:CODE``."""
    scope = fg.Scope(period, tz, department, region, by_region)
    depts = fg.departments(conn, scope)
    handling = set(conn.scalars(select(scope.key(Item.department)).distinct()))
    # a department without power items (the county office itself) handles no cases
    depts = {code: name for code, name in depts.items() if code in handling}
    if found is None:
        found = deductions_of(conn, w, tz, period, ("cur",), department, region,
                              by_region)["cur"]
    rows = []
    for code, name in depts.items():
        row: dict[str, Any] = {"department": code, "name": name}
        for t in THEMES:
            lost = sum(x.points for x in found if x.department == code and x.theme == t)
            row[t] = round(max(0.0, w.themes[t] - lost), 2)
        row["deductions"] = round(sum(x.points for x in found if x.department == code), 2)
        row["total"] = round(sum(row[t] for t in THEMES), 2)
        rows.append(row)
    rows.sort(key=lambda r: (-r["total"], r["department"]))
    for r, rank in zip(rows, rollup.shared_ranks([r["total"] for r in rows])):
        r["rank"] = rank
    return rows


def scorecard(engine: Engine, config: Config, period: Period, now: datetime,
              department: str | None = None,
              titles: Mapping[str, str] | None = None, region: str | None = None) -> Report:
    """Scores and ranking as a report (tables ``t_scores`` and ``t_deductions``), so it
    has every format the report has; ``titles`` as for the report's build_report;
    ``region``: a county's, or a city's or province's, which adds the ranking of its
    counties (``t_region_scores``, monitor/report/rollup.py)."""
    label = labeler(config.language)
    with engine.connect() as conn:
        by_region = fg.keyed_by_region(conn, department, region)
    found = deductions(engine, config, period, department, region, by_region)
    with engine.connect() as conn:
        rows = ranking(conn, config.scores, config.tz, period, department, found, region,
                       by_region)
        of_region = (rollup.department_regions(conn, {r["department"]: "" for r in rows})
                     if rollup.rolls_up(region) else None)
        # counties sharing department codes (migration 0029) are ranked each on its own
        by_county = ({code: ranking(conn, config.scores, config.tz, period, department,
                                    None, code) for code in rollup.counties(conn, region)}
                     if region and of_region is not None and rollup.shared_codes(conn, region)
                     else None)
    scores = Table("t_scores", [Column("rank"), Column("department", "text"),
                                Column("name", "text"), *(Column(t, "num") for t in THEMES),
                                Column("deductions", "num"), Column("total", "num")], rows)
    detail = Table("t_deductions", [Column("department", "text"), Column("theme", "text"),
                                    Column("reason", "label"), Column("points", "num"),
                                    Column("alert_id"), Column("kind", "label"),
                                    Column("case_id", "text"), Column("message", "text")],
                   [{"department": x.department, "theme": label(x.theme), "reason": x.reason,
                     "points": x.points, "alert_id": x.alert_id, "kind": x.kind or "",
                     "case_id": x.case_id or "", "message": x.message} for x in found],
                   names=value_names(config.language, titles))
    rep = Report(label("scores"), period, period.previous(), period.year_before(), department,
                 now.astimezone(config.tz), config.language, kind="scores", region=region)
    rep.tables = {"t_scores": scores, "t_deductions": detail}
    known = rollup.region_names(engine, config, region, of_region, by_county or ())
    rep.region_label = rollup.region_label(config, region, known)
    if of_region is not None:
        rep.tables = {"t_region_scores": rollup.region_scores_table(
            rollup.rank_regions(rows, of_region, known, by_county)), **rep.tables}
    rep.summary = {"departments": len(rows), "deductions": round(sum(x.points for x in found), 2)}
    rep.charts = {"trend": []}
    return rep
