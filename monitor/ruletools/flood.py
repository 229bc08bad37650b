"""The flood guard: a rule that flags more than a share of the cases in its scope.

On real logs a rule whose thresholds do not fit the office floods — step-too-fast on
79–93 % of cases — and a tool that floods gets switched off. After ``run`` and ``rules
backtest`` each rule's flagged cases are set against the cases in its scope (as of the
run), and a rule over the ``flood_percent`` setting is named with the way out: ``rules
calibrate`` for its thresholds, or a narrower scope or policy.

The cases in scope are counted once per call, grouped by department and item (one
query), and added up per rule in Python from its scope.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, and_, func, select

from ..models import Alert, Event, Item
from ..rules.kinds import data_quality_kinds
from ..rules.model import Rule, Scope

# fewer flagged cases than this are never a flood, whatever their share
MIN_FLAGGED = 10
# kinds whose thresholds `rules calibrate` proposes
CALIBRATED = ("step_too_fast", "case_too_fast", "late_entry", "batch_entry", "overdue")


@dataclass(frozen=True)
class Flood:
    rule_id: str
    kind: str
    flagged: int
    in_scope: int

    @property
    def share(self) -> float:
        return self.flagged / self.in_scope

    def message(self, limit: float) -> str:
        hint = (f"calibrate it: permit-monitor rules calibrate --kind {self.kind} --rule "
                f"{self.rule_id}" if self.kind in CALIBRATED
                else "review its thresholds and the catalog's policy for it")
        return (f"rule {self.rule_id} flags {self.flagged:,} of {self.in_scope:,} cases in "
                f"scope ({self.share:.1%}, above flood_percent {limit:.0%}): a finding on most "
                f"cases is the office's practice, not misconduct; {hint}; or narrow its "
                "scope (docs/mappings.md, \"Floods\")")


def _covers(scope: Scope, department: str, item: str, category: str | None) -> bool:
    if scope.departments and department not in scope.departments:
        return False
    if scope.items and item not in scope.items:
        return False
    if scope.categories and category not in scope.categories:
        return False
    return not (department in scope.exclude_departments or item in scope.exclude_items
                or category in scope.exclude_categories)


def cases_in_scope(conn: Connection, rules: Iterable[Rule], as_of: datetime) -> dict[str, int]:
    """rule id → cases with an event as of ``as_of`` in the rule's scope."""
    e = Event.__table__
    groups = conn.execute(select(e.c.department, e.c.item_code, Item.category,
                                 func.count(func.distinct(e.c.case_id)))
                          .outerjoin(Item, and_(Item.region == e.c.region,
                                                Item.code == e.c.item_code))
                          .where(e.c.occurred_at <= as_of)
                          .group_by(e.c.department, e.c.item_code, Item.category)).all()
    return {r.id: sum(n for d, i, c, n in groups if _covers(r.scope, d, i, c)) for r in rules}


def floods(conn: Connection, rules: Iterable[Rule], flagged: Mapping[str, int],
           as_of: datetime, share: float, least: int = MIN_FLAGGED) -> list[Flood]:
    """The rules whose flagged cases (``flagged``: rule id → distinct cases) exceed
    ``share`` of the cases in their scope — and number at least ``least`` (a handful of
    findings in a small log is no flood). Data-quality kinds are about the data, not the
    office's practice: never a flood."""
    rules = [r for r in rules if flagged.get(r.id, 0) >= max(least, 1)
             and r.kind not in data_quality_kinds()]
    if not rules:
        return []
    scope = cases_in_scope(conn, rules, as_of)
    return [Flood(r.id, r.kind, flagged[r.id], scope[r.id]) for r in rules
            if scope[r.id] and flagged[r.id] / scope[r.id] > share]


def stored_flags(conn: Connection, rules: Iterable[Rule]) -> dict[str, int]:
    """rule id → distinct cases with an alert of the rule's current version."""
    out = {}
    for r in rules:
        out[r.id] = conn.execute(select(func.count(func.distinct(Alert.case_id)))
                                 .where(Alert.rule_id == r.id, Alert.rule_version == r.version,
                                        Alert.case_id.is_not(None))).scalar_one()
    return out


def after_run(engine, config, outcomes: list, as_of: datetime, dry_run: bool) -> list[Flood]:
    """The floods of a run's rules: a dry run's own findings, else the stored alerts (an
    incremental run's findings cover only the changed cases)."""
    ran = [o for o in outcomes if not o.error]
    with engine.connect() as conn:
        if dry_run:
            flagged = {o.rule.id: len({c for f in o.findings for c in _cases(f)}) for o in ran}
        else:
            flagged = stored_flags(conn, [o.rule for o in ran])
        return floods(conn, [o.rule for o in ran], flagged, as_of, config.flood_percent / 100)


def after_backtest(engine, config, rules: list[Rule], found: Iterable, as_of: datetime
                   ) -> list[Flood]:
    """The floods of the rule set a backtest evaluated (``found``: its findings)."""
    cases: dict[str, set] = {}
    for f in found:
        cases.setdefault(f.rule_id, set()).update(f.cases)
    with engine.connect() as conn:
        return floods(conn, rules, {k: len(v) for k, v in cases.items()}, as_of,
                      config.flood_percent / 100)


def _cases(finding) -> tuple[str, ...]:
    return (finding.case_id,) if finding.case_id else ()
