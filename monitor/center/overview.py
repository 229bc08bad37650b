"""The rules page: each loaded rule with its status, version hash and last run, the alerts
it raised (among those the actor may see), and the exemptions registry."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, tzinfo
from typing import Any

from sqlalchemy import Engine, case, func, select

from ..authz import Actor
from ..exemptions import list_exemptions
from ..models import Alert, RuleState
from ..rules.model import Rule
from ..supervision import ACTIVE
from .listing import visible


@dataclass(frozen=True)
class RuleRow:
    rule: Rule
    state: Any            # rule_state row: last run as of, evaluated at; None if never run
    alerts: int
    active: int


def rules_overview(engine: Engine, actor: Actor, rules: list[Rule], now: datetime,
                   tz: tzinfo) -> tuple[list[RuleRow], list[Any]]:
    """(one row per loaded rule, the exemptions in force and past)."""
    with engine.connect() as conn:
        states = {s.rule_id: s for s in conn.execute(select(RuleState))}
        counts = {r: (n, int(a or 0)) for r, n, a in conn.execute(
            select(Alert.rule_id, func.count(),
                   func.sum(case((Alert.status.in_(ACTIVE), 1), else_=0)))
            .where(visible(Alert.department, actor)).group_by(Alert.rule_id))}
    rows = [RuleRow(r, states.get(r.id), *counts.get(r.id, (0, 0))) for r in rules]
    return rows, list_exemptions(engine, now, tz, include_all=True)
