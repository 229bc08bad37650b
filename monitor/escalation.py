"""Escalation and reminders: what the passing of time does to alerts, as of a moment.

``escalate(engine, policy, as_of)`` — run by ``permit-monitor escalate`` and at the end
of every ``permit-monitor run`` — does three things in one transaction, each traced:

1. an alert without a deadline (raised before supervision existed) gets one, counted
   from when it was raised (``assigned``);
2. a tier-1 alert still open or acknowledged after its deadline goes to tier 2
   (``escalated``): a supervision order (督办) to the department's tier-1 monitors with a
   new deadline, and an SMS to both tiers; with ``red_to_tier2`` a red alert goes at once;
3. a tier-2 alert past its order's deadline reminds its tier-1 monitors (``reminded``) —
   on working days only, and once every ``reminder_days`` working days, however often
   the scheduler runs.

Only alerts of ``stable`` rules (as the alert's county has the rule; or of rules no longer
loaded) escalate: those of
``test`` and ``experimental`` rules stay with tier 1; suppressed alerts (an exemption,
monitor/exemptions.py) are never assigned, escalated or reminded.

Running it twice as of the same moment changes nothing the second time.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from sqlalchemy import ColumnElement, Connection, Engine, and_, not_, or_, select, true, update

from . import trail
from .models import Alert
from .regionstore import department_names
from .notices import digest
from .supervision import ACTIVE, Policy, Told, issue_order, monitors, tell_many, text_for
from .supervised import update as traced_update
from .trail import SYSTEM, Entry


@dataclass(frozen=True)
class Notice:
    recipient: str
    template: str  # a key of notices.TEMPLATES / notices.DIGESTS
    alert: Any
    due: date


@dataclass
class Escalated:
    assigned: list[int] = field(default_factory=list)
    escalated: list[int] = field(default_factory=list)
    reminded: list[int] = field(default_factory=list)
    messages: int = 0


def _assign_missing(conn: Connection, policy: Policy, out: Escalated) -> list[Entry]:
    tier1, _ = monitors(conn)
    entries = []
    for alert in conn.execute(select(Alert).where(Alert.due_on.is_(None),
                                                  Alert.status != "suppressed").order_by(Alert.id)):
        due = policy.due(alert.raised_at, alert.rule_id, alert.region)
        to = tier1.get((alert.region, alert.department or ""), [])
        state = traced_update(conn, "alerts", alert.id, due_on=due, assigned_to=to)
        entries.append(Entry("assigned", alert.id, SYSTEM, {"assigned_to": to,
                                                            "due_on": due.isoformat()},
                             changes=[state]))
        out.assigned.append(alert.id)
    return entries


def _escalate(conn: Connection, policy: Policy, as_of: datetime, out: Escalated,
              notices: list[Notice]) -> list[Entry]:
    today = policy.local_date(as_of)
    late = Alert.due_on < today
    due_now = or_(late, Alert.level == "red") if policy.red_to_tier2 else late
    offices: dict[str, list[str]] = {}  # region → its tier-2 monitors
    entries = []
    stable = stable_rules(policy)  # only stable rules go to tier 2
    for alert in conn.execute(select(Alert).where(Alert.tier == 1, Alert.status.in_(ACTIVE),
                                                  due_now, stable).order_by(Alert.id)).all():
        if alert.region not in offices:
            offices[alert.region] = monitors(conn, alert.region)[1]
        tier2 = offices[alert.region]
        reason = "escalated" if alert.due_on < today else "red"
        order_id, due, order_entries = issue_order(conn, policy, alert, SYSTEM, as_of, reason,
                                                   None, notify=False)
        notices += [Notice(u, reason, alert, due) for u in order_entries[0].detail["to"]]
        notices += [Notice(u, f"{reason}_l2", alert, due) for u in tier2]
        entries += [Entry("escalated", alert.id, SYSTEM, {
            "from_tier": 1, "to_tier": 2, "reason": reason, "level": alert.level,
            "was_due_on": alert.due_on.isoformat(), "notified": tier2}), *order_entries]
        out.escalated.append(alert.id)
    return entries


def stable_rules(policy: Policy) -> ColumnElement[bool]:
    """The alerts of rules that are stable as the alert's county has them: a county's
    own rule by its own ``status``, else the base rule's (docs/regions.md)."""
    owned: dict[str, list[str]] = {}  # rule id → counties with a rule of their own
    for region, rule_id in policy.county_statuses:
        owned.setdefault(rule_id, []).append(region)
    unstable = [and_(Alert.rule_id == r, Alert.region.not_in(sorted(owned.get(r, ()))))
                if r in owned else Alert.rule_id == r for r in policy.unstable()]
    unstable += [and_(Alert.region == region, Alert.rule_id == r)
                 for (region, r), s in sorted(policy.county_statuses.items()) if s != "stable"]
    return not_(or_(*unstable)) if unstable else true()


def _remind(conn: Connection, policy: Policy, as_of: datetime, out: Escalated,
            notices: list[Notice]) -> list[Entry]:
    today = policy.local_date(as_of)
    if not policy.calendar.is_workday(today) and not policy.calendar.regions:
        return []
    entries = []
    overdue = select(Alert).where(Alert.tier == 2, Alert.status.in_(ACTIVE),
                                  Alert.due_on < today).order_by(Alert.id)
    for alert in conn.execute(overdue).all():
        cal = policy.calendar.for_region(alert.region)  # the county's own working days
        if not cal.is_workday(today):
            continue
        since = policy.local_date(alert.reminded_at) if alert.reminded_at else alert.due_on
        if cal.workdays_between(since, today) < policy.reminder_days:
            continue
        notices += [Notice(u, "reminder", alert, alert.due_on) for u in alert.assigned_to]
        conn.execute(update(Alert).where(Alert.id == alert.id).values(reminded_at=as_of))
        entries.append(Entry("reminded", alert.id, SYSTEM, {
            "to": alert.assigned_to, "due_on": alert.due_on.isoformat(),
            "overdue_days": cal.workdays_between(alert.due_on, today)}))
        out.reminded.append(alert.id)
    return entries


def escalate(engine: Engine, policy: Policy, as_of: datetime) -> Escalated:
    """Escalate and remind as of ``as_of`` (aware); see the module docstring."""
    out, notices = Escalated(), list[Notice]()
    with engine.begin() as conn:
        trail.lock(conn)
        entries = _assign_missing(conn, policy, out)
        entries += _escalate(conn, policy, as_of, out, notices)
        entries += _remind(conn, policy, as_of, out, notices)
        out.messages = _send(conn, policy, as_of, notices)
        trail.append(conn, as_of, entries)
    return out


def _send(conn: Connection, policy: Policy, as_of: datetime, notices: list[Notice]) -> int:
    """Queue the notices: one SMS (and e-mail) per alert, or one digest per recipient and
    kind when a run has several alerts of that kind for the same person."""
    groups: dict[tuple[str, str], list[Notice]] = {}
    for n in notices:
        groups.setdefault((n.recipient, n.template), []).append(n)
    names = department_names(conn)
    out: list[Told] = []
    for (recipient, template), group in sorted(groups.items()):
        first = min(group, key=lambda n: (n.due, n.alert.id))
        if len(group) == 1:
            text = text_for(conn, policy, first.alert, template, first.due)
        else:
            depts = [name for _, name in sorted({
                (n.alert.department or "", names.get((n.alert.region, n.alert.department or ""))
                 or n.alert.department or "") for n in group})]
            text = digest(template, depts=depts,
                          alert_ids=sorted(n.alert.id for n in group), due=first.due)
        out.append((first.alert.id, [recipient], template, text, None))
    return tell_many(conn, policy, as_of, out)
