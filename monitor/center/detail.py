"""One alert, one case: everything a monitor reads before acting, and what they may do.

The alert page's timeline and working-day strip are ``rules explain``'s own computation
(monitor/ruletools/explain.py, without re-running the detector: the stored alert is the
verdict); its trail is checked entry by entry (monitor/trailcheck.py); the actions offered are
those the alert's state allows (monitor/supervision.py) and the actor may take
(monitor/authz.py) — the same checks that refuse a forged request.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from types import SimpleNamespace
from typing import Any

from sqlalchemy import Engine, select

from .. import authz, trailcheck
from ..authz import Actor
from ..config import Config
from ..errors import MonitorError, NotFound
from ..models import (Alert, Complaint, Department, Disposition, Event, Hold, Rating,
                      SpotCheck, SupervisionOrder, TrailEntry)
from ..regionrules import RuleSets, county_rules
from ..ruletools.explain import Explanation, explain
from ..rules.model import Rule
from ..supervision import possible_actions
from .evidence import sentences
from .labels import labeler
from .listing import days_left


@dataclass
class AlertView:
    alert: Any
    department: str
    evidence: list[str]
    explanation: Explanation | None
    explain_error: str | None
    history: Sequence[Any]
    trail_problem: str | None
    dispositions: Sequence[Any]
    orders: Sequence[Any]
    holds: Sequence[Any]
    actions: list[str]
    days_left: int | None
    may_exempt: bool = False
    title: str = ""  # the finding's title (a fee finding on a fine: 罚没款…), else the rule's
    may_release: bool = False  # the actor may release this alert's holds still held


def step_namer(config: Config):
    """A step code as the page names it (受理 for accept); an unknown step, its code."""
    t = labeler(config.language)
    return lambda step: t(f"s_{step}") if t(f"s_{step}") != f"s_{step}" else step


def _alert(conn, alert_id: int) -> Any:
    row = conn.execute(select(Alert).where(Alert.id == alert_id)).one_or_none()
    if row is None:
        raise NotFound(f"no alert with id {alert_id}")
    return row


def alert_view(engine: Engine, config: Config, rules: list[Rule] | RuleSets, actor: Actor,
               alert_id: int, now: datetime) -> AlertView:
    """The alert page; ``NotFound``, or ``NotAllowed`` outside the actor's view. Its rule
    is the one in force in the alert's county (``rules``: the base and every county's
    overrides): its title, its checks, whether it may be exempted."""
    with engine.connect() as conn:
        alert = _alert(conn, alert_id)
        authz.check(actor, authz.READ, alert)
        dept = conn.scalar(select(Department.name).where(Department.region == alert.region,
                                                         Department.code == alert.department))
        history = conn.execute(select(TrailEntry).where(TrailEntry.alert_id == alert_id)
                               .order_by(TrailEntry.region, TrailEntry.seq)).all()
        dispositions = conn.execute(select(Disposition).where(Disposition.alert_id == alert_id)
                                    .order_by(Disposition.id)).all()
        orders = conn.execute(select(SupervisionOrder).where(
            SupervisionOrder.alert_id == alert_id).order_by(SupervisionOrder.id)).all()
        holds = conn.execute(select(Hold).where(Hold.alert_id == alert_id)
                             .order_by(Hold.id)).all()
    explanation, error = None, None
    if alert.case_id:
        try:
            explanation = explain(engine, config, rules, alert.rule_id, alert.case_id,
                                  max(now, alert.raised_at), verdict=False,
                                  language=config.language, step_name=step_namer(config))
        except MonitorError as exc:  # the rule is no longer loaded, or its events are gone
            error = str(exc)
    possible = possible_actions(alert)
    actions = [a for a in authz.actions_on(actor, alert) if a in possible]
    if dispositions and "confirm" in actions and dispositions[-1].by_user == actor.id:
        actions.remove("confirm")  # another tier-2 monitor reviews one's own disposition
    own = county_rules(rules, alert.region)
    may_exempt = (authz.allowed(actor, "exempt", alert) and alert.status != "suppressed"
                  and any(r.id == alert.rule_id for r in own))
    may_release = (authz.allowed(actor, "release", alert)
                   and any(h.status == "held" for h in holds))
    left = (days_left(config.calendar().for_region(alert.region),  # the county's days
                      now.astimezone(config.tz).date(), alert.due_on)
            if "resolve" in possible or "confirm" in possible else None)
    title = alert.title or next((r.title for r in own if r.id == alert.rule_id),
                                alert.rule_id)
    return AlertView(alert, dept or alert.department or "-",
                     sentences(alert.kind, alert.evidence, config.language, config.tz),
                     explanation, error, history, trailcheck.check_entries(engine, history),
                     dispositions, orders, holds, actions, left, may_exempt, title,
                     may_release)


@dataclass
class CaseView:
    case_id: str
    department: str | None
    department_name: str
    events: Sequence[Any]
    alerts: list[Any] = field(default_factory=list)
    holds: Sequence[Any] = field(default_factory=list)
    spot_checks: Sequence[Any] = field(default_factory=list)
    ratings: Sequence[Any] = field(default_factory=list)      # 好差评 of the case
    complaints: Sequence[Any] = field(default_factory=list)   # 投诉 about the case


def case_view(engine: Engine, actor: Actor, case_id: str) -> CaseView:
    """Every event, alert, hold and spot check of one case the actor may see."""
    case_id = case_id.strip()
    with engine.connect() as conn:
        events = conn.execute(select(Event).where(Event.case_id == case_id)
                              .order_by(Event.occurred_at, Event.id)).all()
        if not events:
            raise NotFound(f"no events of case '{case_id}'")
        dept = events[0].department
        authz.check(actor, authz.READ, SimpleNamespace(id=case_id, department=dept,
                                                       region=events[0].region,
                                                       what=f"case {case_id}"))
        name = conn.scalar(select(Department.name).where(
            Department.region == events[0].region, Department.code == dept))
        alerts = conn.execute(select(Alert).where(Alert.case_id == case_id)
                              .order_by(Alert.id)).all()
        holds = conn.execute(select(Hold).where(Hold.case_id == case_id)
                             .order_by(Hold.id)).all()
        spots = conn.execute(select(SpotCheck).where(SpotCheck.case_id == case_id)).all()
        ratings = conn.execute(select(Rating).where(Rating.case_id == case_id)
                               .order_by(Rating.rated_at)).all()
        complaints = conn.execute(select(Complaint).where(Complaint.case_id == case_id)
                                  .order_by(Complaint.received_at)).all()
    return CaseView(case_id, dept, name or dept or "-", events,
                    [a for a in alerts if authz.allowed(actor, authz.READ, a)], holds, spots,
                    ratings, complaints)


__all__ = ["AlertView", "CaseView", "alert_view", "case_view"]
