"""Two-tier supervision (层级监察): who must act on an alert, by when, and what they may do.

A new alert is tier 1, ``open``, assigned to the ``monitor_l1`` users of its department,
due a number of working days after it was raised (setting ``handling_days``, a rule's own
``handling_days`` wins). Tier 1 acknowledges (seen, working on it: not resolving) and
resolves with a disposition — rectified 整改, explained 说明, false_positive 误报 — and a
note. Not resolved in time, an alert is escalated to tier 2 (``monitor_l2``, the county
office; monitor/escalation.py), which issues a supervision order (督办) back to tier 1 with
a new deadline. Tier 2 confirms or rejects tier 1's disposition of an escalated alert (a
rejection reopens it with a new order) and may issue an order on any alert.

States: ``open`` → ``acknowledged`` → ``resolved`` (final at tier 1; at tier 2 it awaits
review) → ``confirmed``. Every transition is appended to the trail (monitor/trail.py) in
the same transaction as the change. Time is an argument (``at``); nothing here reads the
clock. Delivery of the notifications these transitions produce is monitor/outbox.py.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time, tzinfo
from typing import Any

from sqlalchemy import Connection, Engine, insert, select, update

from . import authz, trail
from .authz import TIER1, TIER2, Actor
from .calendar import WorkCalendar
from .errors import InvalidTransition, NotAllowed, NotFound, did_you_mean, usage
from .models import Alert, Department, Disposition, SupervisionOrder, User
from .regionstore import region_of_alert
from .notices import sms
from .outbox import Outgoing, enqueue_many
from .supervised import change, update as traced_update
from .trail import Entry

DISPOSITIONS = {"rectified": "整改", "explained": "说明", "false_positive": "误报"}
# Dispositions that take a finding out of the scores (a department clearing itself): they
# count only once tier 2 confirms them, so tier 2 may review one at tier 1 too.
DISMISSALS = ("false_positive",)
ACTIVE = ("open", "acknowledged")  # someone still has to act
STATES = ("open", "acknowledged", "resolved", "confirmed")
CLEARED = "cleared"  # 复查销号: the finding no longer holds (monitor/clearing.py)
# Findings about tier 1 itself (a monitor not logging in) go straight to tier 2.
TIER2_KINDS = ("inactive_monitor", "ranking_last")


@dataclass(frozen=True)
class Policy:
    """Deadlines and escalation settings, frozen from config.yaml and the rules."""

    calendar: WorkCalendar
    tz: tzinfo
    handling_days: int = 3
    rule_days: Mapping[str, int] = field(default_factory=dict)
    red_to_tier2: bool = False
    reminder_days: int = 1
    titles: Mapping[str, str] = field(default_factory=dict)  # rule id → title, for SMS
    workflow: bool = False  # a sink delivers holds to the workflow system (channel workflow)
    email: bool = False  # people are told by e-mail too (channel email), not only by SMS
    statuses: Mapping[str, str] = field(default_factory=dict)  # rule id → status; else stable
    quiet_hours: tuple[time, time] | None = None  # local; tier-1 messages wait (not red)
    digest_at: time = time(8)  # local time of the daily digest (monitor/tier1.py)
    # (county, rule id) → handling days of a county's own rule (docs/regions.md)
    county_days: Mapping[tuple[str, str], int] = field(default_factory=dict)
    # (county, rule id) → status of a county's own rule (its own, else stable)
    county_statuses: Mapping[tuple[str, str], str] = field(default_factory=dict)
    # county → its own quiet hours (None: none there) / digest time (config regions:)
    county_quiet: Mapping[str, tuple[time, time] | None] = field(default_factory=dict)
    county_digest: Mapping[str, time] = field(default_factory=dict)

    def quiet_hours_of(self, region: str | None) -> tuple[time, time] | None:
        """The quiet hours of ``region``: its own, else the store's."""
        return self.county_quiet[region] if region and region in self.county_quiet \
            else self.quiet_hours

    def digest_at_of(self, region: str | None) -> time:
        """The local time of ``region``'s daily digest: its own, else the store's."""
        return self.county_digest.get(region or "", self.digest_at)

    def status_of(self, rule_id: str, region: str | None = None) -> str:
        """The status of ``rule_id`` as ``region`` has it: its own rule's, else the base's."""
        own = self.county_statuses.get((region, rule_id)) if region else None
        return own if own is not None else self.statuses.get(rule_id, "stable")

    def unstable(self) -> list[str]:
        """Base rules whose alerts never go to tier 2 (status experimental or test)."""
        return sorted(r for r, s in self.statuses.items() if s != "stable")

    def days_for(self, rule_id: str, region: str | None = None) -> int:
        own = self.county_days.get((region, rule_id)) if region and self.county_days else None
        return own if own is not None else self.rule_days.get(rule_id, self.handling_days)

    def local_date(self, at: datetime) -> date:
        return at.astimezone(self.tz).date()

    def due(self, at: datetime, rule_id: str, region: str | None = None) -> date:
        """The last day to act on an alert of ``rule_id`` raised (or ordered) at ``at``,
        counted in the calendar of the alert's county (``region``; docs/regions.md)."""
        return self.calendar.for_region(region).add_workdays(self.local_date(at),
                                                             self.days_for(rule_id, region))


def policy_for(config, rules=()) -> Policy:
    """The policy of a config and its loaded rules (each rule's ``handling_days``)."""
    return Policy(calendar=config.calendar(), tz=config.tz,
                  handling_days=config.handling_days,
                  rule_days={r.id: r.handling_days for r in rules if r.handling_days},
                  red_to_tier2=config.red_to_tier2, reminder_days=config.reminder_days,
                  titles={r.id: r.title for r in rules},
                  workflow="workflow" in config.notify.channels,
                  email="email" in config.notify.channels,
                  statuses={r.id: r.status for r in rules},
                  quiet_hours=config.notify.quiet_hours, digest_at=config.notify.digest_at,
                  county_quiet={code: r.delivery["quiet_hours"]
                                for code, r in config.regions.items()
                                if "quiet_hours" in r.delivery},
                  county_digest={code: r.delivery["digest_at"]
                                 for code, r in config.regions.items()
                                 if "digest_at" in r.delivery})


def monitors(conn: Connection, region: str | None = None
             ) -> tuple[dict[tuple[str, str], list[str]], list[str]]:
    """((region, department) → its tier-1 monitors, tier-2 monitors), user ids sorted:
    a department is its county's (counties share codes, migration 0029). ``region``:
    only the tier-2 monitors of that region, the county office an alert of the county
    goes to (a city's office reads its counties' alerts but is assigned none)."""
    tier1: dict[tuple[str, str], list[str]] = {}
    tier2: list[str] = []
    for uid, dept, roles, own in conn.execute(
            select(User.id, User.department, User.roles, User.region).order_by(User.id)):
        roles = roles or []
        if TIER1 in roles and dept:
            tier1.setdefault((own, dept), []).append(uid)
        if TIER2 in roles and region in (None, own):
            tier2.append(uid)
    return tier1, tier2


# ---------------------------------------------------------------- raising (from alerts.py)


def assign(rows: list[dict[str, Any]], conn: Connection, policy: Policy, at: datetime) -> None:
    """Fill in assignment and deadline of new alert rows (with their region) before they
    are inserted."""
    tier1, _ = monitors(conn)
    tier2 = {region: monitors(conn, region)[1] for region in {r["region"] for r in rows
                                                               if r.get("kind") in TIER2_KINDS}}
    due: dict[tuple[str, str | None], date] = {}  # one deadline per rule and county
    for row in rows:
        if row.get("kind") in TIER2_KINDS:
            row["tier"], row["assigned_to"] = 2, list(tier2[row["region"]])
        else:
            row["assigned_to"] = tier1.get((row["region"], row["department"] or ""), [])
        key = (row["rule_id"], row.get("region"))
        if key not in due:
            due[key] = policy.due(at, *key)
        row["due_on"] = due[key]


def raised_entries(rows: list[dict[str, Any]], ids: Mapping[tuple[str, str], int]
                   ) -> list[Entry]:
    """``ids``: (region, dedupe key) → alert id (unique per region, migration 0033). Each
    entry names its alert's region, the chain it goes on, so the trail need not look the
    new alerts up."""
    return [Entry("raised", ids[r["region"], r["dedupe_key"]], detail={
        "rule_id": r["rule_id"], "subject": r["subject"], "level": r["level"], "tier": r.get("tier", 1),
        "department": r["department"], "assigned_to": r["assigned_to"],
        "due_on": r["due_on"].isoformat(), "rule_version": r["rule_version"]},
        changes=[change("alerts", ids[r["region"], r["dedupe_key"]], r, new=True)],
        region=r["region"]) for r in rows]


# ---------------------------------------------------------------- people acting on alerts


@dataclass(frozen=True)
class Done:
    """What an action did, for the CLI to print."""

    alert_id: int
    action: str
    status: str
    tier: int
    due_on: date | None = None
    order_id: int | None = None


def _user(conn: Connection, user_id: str) -> Any:
    user = conn.execute(select(User).where(User.id == user_id)).one_or_none()
    if user is None:
        known = conn.scalars(select(User.id)).all()
        raise NotFound(f"unknown user '{user_id}'{did_you_mean(user_id, known)}: "
                       "--by takes a user id from the catalog")
    return user


def actor_of(conn: Connection, user_id: str, channel: str | None) -> Actor:
    """The catalog user ``user_id`` as an :class:`~monitor.authz.Actor` (roles as stored
    now, never as a session remembered them)."""
    return Actor.of_user(_user(conn, user_id), channel or "cli")


def _alert(conn: Connection, alert_id: int) -> Any:
    alert = conn.execute(select(Alert).where(Alert.id == alert_id)).one_or_none()
    if alert is None:
        raise NotFound(f"no alert with id {alert_id}")
    return alert


def begin_action(conn: Connection, alert_id: int, by: str, action: str,
                 channel: str | None = None, verb: str | None = None) -> tuple[Any, Any]:
    """Lock the trail, then (user, alert) if ``by`` may do ``action`` (monitor/authz.py)
    on the alert; else refuse."""
    trail.lock_alert(conn, alert_id)  # first: serialises the appenders of its region,
    # and the state read below stays current
    user = _user(conn, by)
    alert = _alert(conn, alert_id)
    authz.check(Actor.of_user(user, channel or "cli"), action, alert, verb)
    return user, alert


def possible_actions(alert: Any) -> tuple[str, ...]:
    """The actions an alert's state allows (who may take them is monitor/authz.py's
    question): the same conditions the action functions below enforce, for a page to
    offer only these (a test holds the two together)."""
    out = []
    if alert.status == "open":
        out.append("ack")
    if alert.status in ACTIVE:
        out.append("resolve")
    if alert.status not in ("confirmed", "suppressed"):
        out.append("order")
    if alert.tier == 1 and alert.status in ACTIVE:
        out.append("escalate")
    if alert.status == "resolved" and (alert.tier == 2 or alert.disposition in DISMISSALS):
        out += ["confirm", "reject"]
    return tuple(out)


def _refuse(alert: Any, verb: str, why: str) -> InvalidTransition:
    return InvalidTransition(f"cannot {verb} alert {alert.id}: it is {why}")


def note_of(note: str | None, what: str) -> str:
    """The stripped note; refused when empty (``what``: e.g. "resolve alert 3")."""
    if not note or not note.strip():
        raise usage(InvalidTransition(f"cannot {what} without a note (--note): "
                                      "say what was done or why"))
    return note.strip()


def _note(note: str | None, alert: Any, verb: str) -> str:
    return note_of(note, f"{verb} alert {alert.id}")


def acknowledge(engine: Engine, alert_id: int, by: str, at: datetime,
                note: str | None = None, channel: str | None = None) -> Done:
    with engine.begin() as conn:
        _, alert = begin_action(conn, alert_id, by, "ack", channel)
        if alert.status != "open":
            raise _refuse(alert, "acknowledge", f"{alert.status}, not open")
        state = traced_update(conn, "alerts", alert.id, status="acknowledged",
                              acknowledged_at=at)
        trail.append(conn, at, [Entry("acknowledged", alert.id, by,
                                      {"tier": alert.tier, "note": note}, channel, [state])])
    return Done(alert.id, "acknowledged", "acknowledged", alert.tier, alert.due_on)


def resolve(engine: Engine, alert_id: int, by: str, at: datetime, disposition: str | None,
            note: str | None, channel: str | None = None) -> Done:
    with engine.begin() as conn:
        _, alert = begin_action(conn, alert_id, by, "resolve", channel)
        if alert.status not in ACTIVE:
            raise _refuse(alert, "resolve", f"already {alert.status}")
        choices = "|".join(DISPOSITIONS)
        if not disposition:
            raise usage(InvalidTransition(f"cannot resolve alert {alert.id} without a "
                                          f"disposition (--disposition {choices})"))
        if disposition not in DISPOSITIONS:
            raise usage(InvalidTransition(f"unknown disposition '{disposition}'"
                                          f"{did_you_mean(disposition, DISPOSITIONS)}: use "
                                          f"--disposition {choices}"))
        text = _note(note, alert, "resolve")
        row = {"alert_id": alert.id, "at": at, "by_user": by, "tier": alert.tier,
               "kind": disposition, "note": text}
        d_id = conn.execute(insert(Disposition).values(**row, region=region_of_alert(alert.id))
                            .returning(Disposition.id)).scalar_one()
        states = [change("dispositions", d_id, row, new=True),
                  traced_update(conn, "alerts", alert.id, status="resolved",
                                disposition=disposition, resolved_at=at)]
        trail.append(conn, at, [Entry("resolved", alert.id, by, {
            "tier": alert.tier, "disposition": disposition, "note": text}, channel, states)])
    return Done(alert.id, "resolved", "resolved", alert.tier, alert.due_on)


def _pending_disposition(conn: Connection, alert: Any, verb: str) -> Any:
    reviewable = alert.tier == 2 or alert.disposition in DISMISSALS
    if not reviewable or alert.status != "resolved":
        state = "not escalated to tier 2" if not reviewable else alert.status
        raise _refuse(alert, verb, f"{state}; only a resolved tier-2 alert, or a dismissal "
                                   "(false_positive), awaits review")
    return conn.execute(select(Disposition).where(Disposition.alert_id == alert.id)
                        .order_by(Disposition.id.desc()).limit(1)).one()


def confirm(engine: Engine, alert_id: int, by: str, at: datetime,
            note: str | None = None, channel: str | None = None) -> Done:
    with engine.begin() as conn:
        _, alert = begin_action(conn, alert_id, by, "confirm", channel)
        d = _pending_disposition(conn, alert, "confirm")
        if d.by_user == by:
            raise NotAllowed(f"{by} may not confirm alert {alert.id}: {by} recorded its "
                             "disposition; another tier-2 monitor must review it")
        states = [traced_update(conn, "dispositions", d.id, verdict="confirmed",
                                reviewed_by=by, reviewed_at=at),
                  traced_update(conn, "alerts", alert.id, status="confirmed")]
        trail.append(conn, at, [Entry("confirmed", alert.id, by, {
            "disposition": d.kind, "disposition_by": d.by_user, "note": note}, channel,
            states)])
    return Done(alert.id, "confirmed", "confirmed", 2)


def text_for(conn: Connection, policy: Policy, alert: Any, template: str, due: date) -> str:
    """The SMS ``template`` (monitor/notices.py) filled in for ``alert``."""
    dept = conn.scalar(select(Department.name).where(
        Department.code == alert.department,
        *([Department.region == alert.region] if hasattr(alert, "region") else []))
        .order_by(Department.region).limit(1))
    return sms(template, dept=dept or alert.department or "", alert_id=alert.id,
               title=getattr(alert, "title", None) or policy.titles.get(alert.rule_id,
                                                                        alert.rule_id), due=due)


def tell(conn: Connection, policy: Policy, at: datetime, alert_id: int | None,
         recipients: list[str], subject: str, text: str, due: datetime | None = None) -> int:
    """Queue a notice for people: an SMS each, and an e-mail each when the ``email``
    channel is configured; the number of messages queued. ``due``: held until then."""
    return tell_many(conn, policy, at, [(alert_id, recipients, subject, text, due)])


Told = tuple[int | None, list[str], str, str, "datetime | None"]  # as tell's arguments


def tell_many(conn: Connection, policy: Policy, at: datetime, notices: list[Told]) -> int:
    """:func:`tell` for each of ``notices`` (alert id, recipients, subject, text, due), in
    this order, with one look-up and one insert for them all."""
    channels = ("sms", "email") if policy.email else ("sms",)
    return enqueue_many(conn, at, [
        Outgoing(alert_id, r, subject, text, channel, due=due)
        for alert_id, recipients, subject, text, due in notices for channel in channels
        for r in sorted(set(recipients))])


ORDER_TEXTS = {"manual": "order", "rejected": "rejected", "escalated": "escalated", "red": "red"}


def issue_order(conn: Connection, policy: Policy, alert: Any, by: str, at: datetime,
                reason: str, note: str | None, notify: bool = True,
                channel: str | None = None) -> tuple[int, date, list[Entry]]:
    """Record a supervision order on ``alert`` (in the caller's transaction): the alert is
    tier 2, open, due anew, and (``notify``) its tier-1 monitors get an SMS in the outbox;
    returns (order id, due date, trail entries to append)."""
    tier1, _ = monitors(conn)
    to = tier1.get((alert.region, alert.department or ""), [])
    due = policy.due(at, alert.rule_id, alert.region)
    row = {"alert_id": alert.id, "issued_at": at, "issued_by": by, "reason": reason,
           "to_users": to, "due_on": due, "note": note}
    order_id = conn.execute(insert(SupervisionOrder).values(**row,
                                                            region=region_of_alert(alert.id))
                            .returning(SupervisionOrder.id)).scalar_one()
    values: dict[str, Any] = {"tier": 2, "status": "open", "due_on": due, "assigned_to": to,
                              "reminded_at": None}
    if alert.status == "resolved":
        values.update(disposition=None, resolved_at=None)
    if alert.tier != 2:
        values["escalated_at"] = at
    states = [change("supervision_orders", order_id, row, new=True),
              traced_update(conn, "alerts", alert.id, **values)]
    if notify:
        tell(conn, policy, at, alert.id, to, f"order:{reason}",
             text_for(conn, policy, alert, ORDER_TEXTS[reason], due))
    entry = Entry("order_issued", alert.id, by, {"order_id": order_id, "reason": reason,
                                                 "to": to, "due_on": due.isoformat(),
                                                 "note": note}, channel, states)
    return order_id, due, [entry]


def reject(engine: Engine, policy: Policy, alert_id: int, by: str, at: datetime,
           note: str | None, channel: str | None = None) -> Done:
    with engine.begin() as conn:
        _, alert = begin_action(conn, alert_id, by, "reject", channel)
        d = _pending_disposition(conn, alert, "reject")
        text = _note(note, alert, "reject")
        state = traced_update(conn, "dispositions", d.id, verdict="rejected", reviewed_by=by,
                              reviewed_at=at)
        order_id, due, entries = issue_order(conn, policy, alert, by, at, "rejected", text,
                                             channel=channel)
        trail.append(conn, at, [Entry("rejected", alert.id, by, {
            "disposition": d.kind, "disposition_by": d.by_user, "note": text}, channel,
            [state]), *entries])
    return Done(alert.id, "rejected", "open", 2, due, order_id)


def order(engine: Engine, policy: Policy, alert_id: int, by: str, at: datetime,
          note: str | None = None, channel: str | None = None) -> Done:
    with engine.begin() as conn:
        _, alert = begin_action(conn, alert_id, by, "order", channel)
        if alert.status in ("confirmed", "suppressed"):
            raise _refuse(alert, "issue an order on", "confirmed (closed)"
                          if alert.status == "confirmed" else "suppressed by an exemption")
        order_id, due, entries = issue_order(conn, policy, alert, by, at, "manual",
                                             note.strip() if note else None, channel=channel)
        trail.append(conn, at, entries)
    return Done(alert.id, "order_issued", "open", 2, due, order_id)


def escalate(engine: Engine, policy: Policy, alert_id: int, by: str, at: datetime,
             note: str | None = None, channel: str | None = None) -> Done:
    """Tier 2 takes a tier-1 alert still to be acted on before its deadline: it goes to
    tier 2 with a supervision order, as ``permit-monitor escalate`` does once it is late."""
    with engine.begin() as conn:
        _, alert = begin_action(conn, alert_id, by, "escalate", channel)
        if alert.tier != 1 or alert.status not in ACTIVE:
            why = "already at tier 2" if alert.tier != 1 else alert.status
            raise _refuse(alert, "escalate", f"{why}; only an open or acknowledged tier-1 "
                                              "alert can be escalated")
        text = note.strip() if note else None
        order_id, due, entries = issue_order(conn, policy, alert, by, at, "escalated", text,
                                             channel=channel)
        trail.append(conn, at, [Entry("escalated", alert.id, by, {
            "from_tier": 1, "to_tier": 2, "reason": "manual", "level": alert.level,
            "was_due_on": alert.due_on.isoformat() if alert.due_on else None, "note": text},
            channel), *entries])
    return Done(alert.id, "escalated", "open", 2, due, order_id)
