"""Tier 1 is told at once (一级督办信息): a new alert, a level risen, an alert reopened.

Raising an alert, raising its level and reopening it (monitor/alerts.py) tell the people
it is assigned to — its department's tier-1 monitors (``monitor_l1``; tier 2 for the
findings about tier 1 itself) — in the same transaction, through the outbox
(monitor/outbox.py): an SMS each, and an e-mail each when the ``email`` channel is
configured (``notify.channels`` maps each channel to a sink: log, file, webhook, smtp).
A 临期预警 (level ``warning``) also goes to the case's handler (经办人): the actor of the
case's **latest** event as of the moment, the person who holds the case now (acceptance
clerks hand a case on; the current step's actor is the one who can still act in time),
when that actor is a catalog user.

Each (alert, level, recipient) is told once (``alert_notices``): a re-run, a catch-up
slot or the same level reached again never queues the same message twice.

How a person is told (``users.delivery``, ``permit-monitor users set-delivery``):

* ``immediate`` (the default): a message per alert and level — or, when one rule's pass
  has several for the same person, one message for them all (as escalation does: a
  first audit over a backlog must not send dozens of SMS). During the quiet hours
  (``notify.quiet_hours``, local) it is queued due at their end — the outbox does not
  deliver it before — unless the alert is red: a red alert is never held.
* ``digest``: the notice waits, and the first audit pass from ``notify.digest_at`` each
  local day queues one message listing every alert waiting (:func:`send_digests`, the
  ``escalate`` stage). Red alerts are not held for the digest either, nor is a
  handler's 临期预警 (a warning is worth something only before the limit).

Time is an argument; nothing here reads the clock.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Engine, func, select, update

from . import trail
from .bulkcopy import insert_many
from .errors import InvalidTransition, NotFound, did_you_mean
from .regionstore import alert_regions, department_names
from .models import Alert, AlertNotice, Event, User
from .notices import digest, sms
from .sqllist import one_of
from .supervision import Policy, tell, tell_many
from .timeutil import aware
from .trail import Entry

RANK = {"warning": 1, "yellow": 2, "red": 3}
MODES = ("immediate", "digest")
IN_CHUNK = 500


def rose(old: str | None, new: str) -> bool:
    """Whether ``new`` is a higher level than ``old``."""
    return RANK.get(new, 0) > RANK.get(old or "", 0)


@dataclass(frozen=True)
class Tell:
    """One alert at one level to tell its people about, and why (raised | rose | reopened)."""

    alert_id: int
    level: str
    reason: str
    recipients: tuple[str, ...]
    rule_id: str
    department: str | None
    case_id: str | None
    due: Any  # the alert's deadline (a date)
    promised: str | None = None  # a warning's promised deadline (YYYY-MM-DD)
    title: str | None = None  # the finding's own title (alerts.title); None: the rule's
    region: str | None = None  # the alert's, when the caller has it (else looked up)
    fresh: bool = False  # an alert this transaction inserted: no notice of it exists yet


def of_row(row: dict[str, Any], alert_id: int, reason: str, fresh: bool = False) -> Tell:
    """What to tell about an alert row as alerts.py builds it (assigned, due, region);
    ``fresh``: a row inserted in this transaction."""
    evidence = row.get("evidence") or {}
    return Tell(alert_id, row["level"], reason, tuple(row.get("assigned_to") or ()),
                row["rule_id"], row.get("department"), row.get("case_id"), row["due_on"],
                evidence.get("promised_deadline"), row.get("title"), row.get("region"), fresh)


def quiet_until(policy: Policy, at: datetime, region: str | None = None) -> datetime | None:
    """The end of the quiet hours ``at`` falls in (aware) — ``region``'s own, else the
    store's — or None when it is not in them."""
    hours = policy.quiet_hours_of(region)
    if hours is None:
        return None
    start, end = hours
    local = at.astimezone(policy.tz)
    now = local.time()
    inside = start <= now < end if start < end else (now >= start or now < end)
    if not inside:
        return None
    until = datetime.combine(local.date(), end, tzinfo=policy.tz)
    if until <= local:
        until += timedelta(days=1)
    return until


def handlers(conn: Connection, case_ids: Iterable[str], at: datetime) -> dict[str, str]:
    """case → the actor of its latest event by ``at``, when that actor is a catalog user."""
    case_ids = sorted(set(case_ids))
    e = Event.__table__
    out: dict[str, str] = {}
    for start in range(0, len(case_ids), IN_CHUNK):
        chunk = case_ids[start:start + IN_CHUNK]
        latest = (select(e.c.case_id, func.max(e.c.occurred_at).label("at"))
                  .where(one_of(e.c.case_id, chunk), e.c.occurred_at <= at)
                  .group_by(e.c.case_id).subquery())
        for case_id, actor in conn.execute(
                select(e.c.case_id, e.c.actor)
                .join(latest, (latest.c.case_id == e.c.case_id) & (latest.c.at == e.c.occurred_at))
                .join(User, User.id == e.c.actor).order_by(e.c.case_id, e.c.id)):
            out[case_id] = actor  # the last of several at the same moment
    return out


def notify(conn: Connection, policy: Policy, at: datetime, items: list[Tell]) -> int:
    """Tell each item's people (and a warning's handler) in the caller's transaction, once
    per (alert, level, recipient); the number of messages queued."""
    items = [t for t in items if t.recipients or (t.level == "warning" and t.case_id)]
    if not items:
        return 0
    handler = handlers(conn, [t.case_id for t in items if t.level == "warning" and t.case_id],
                       at)
    wanted = {(t.alert_id, t.level, r): (t, r in t.recipients) for t in items
              for r in (*t.recipients, *([handler[t.case_id]] if t.case_id in handler
                                         and t.level == "warning" else []))}
    done = _told(conn, {t.alert_id for t in items if not t.fresh})
    todo = {k: v for k, v in wanted.items() if k not in done}
    if not todo:
        return 0
    users = sorted({k[2] for k in todo})
    delivery: dict[str, str | None] = {
        uid: mode for uid, mode in conn.execute(select(User.id, User.delivery)
                                                .where(one_of(User.id, users)))}
    of_alert = {t.alert_id: t.region for t in items if t.region is not None}
    of_alert.update(alert_regions(conn, {k[0] for k in todo} - set(of_alert)))
    known = department_names(conn)

    def names(t: Tell) -> str:
        return known.get((of_alert[t.alert_id], t.department or "")) or t.department or ""

    quiet = {region: quiet_until(policy, at, region) for region in set(of_alert.values())}
    rows: list[dict[str, Any]] = []
    # (person, a monitor?, mode, held until): the quiet hours are the alert's county's
    groups: dict[tuple[str, bool, str, datetime | None], list[Tell]] = {}
    for (alert_id, level, user), (item, monitor) in sorted(todo.items()):
        red = level == "red"
        held = quiet[of_alert[alert_id]]
        if monitor and delivery.get(user) == "digest" and not red:
            mode = "digest"
        else:
            mode = "held" if held and not red else "immediate"
            groups.setdefault((user, monitor, mode, held if mode == "held" else None),
                              []).append(item)
        rows.append({"alert_id": alert_id, "level": level, "recipient": user, "at": at,
                     "reason": item.reason if monitor else "handler", "mode": mode})
    insert_many(conn, AlertNotice.__table__,
                [{**r, "region": of_alert[r["alert_id"]]} for r in rows])
    return tell_many(conn, policy, at, [
        (group[0].alert_id, [user], *_text(policy, group, monitor, names), until)
        for (user, monitor, mode, until), group in groups.items()])


def _told(conn: Connection, alert_ids: set[int]) -> set[tuple[int, str, str]]:
    ids, out = sorted(alert_ids), set[tuple[int, str, str]]()
    for start in range(0, len(ids), IN_CHUNK):
        out.update(tuple(r) for r in conn.execute(
            select(AlertNotice.alert_id, AlertNotice.level, AlertNotice.recipient)
            .where(one_of(AlertNotice.alert_id, ids[start:start + IN_CHUNK]))))
    return out


def _text(policy: Policy, group: list[Tell], monitor: bool,
          names: Callable[[Tell], str]) -> tuple[str, str]:
    """(subject, SMS text) of the notice of ``group`` to one person — a monitor, or a
    case's handler: one alert's own text, or one text for several (one SMS per person
    and rule per pass, as escalation does, not dozens)."""
    first = group[0]
    template = first.reason if monitor else "handler"
    due = first.due
    if not monitor and first.promised:
        due = datetime.strptime(first.promised, "%Y-%m-%d").date()
    if len(group) == 1:
        return template, sms(template, dept=names(first), alert_id=first.alert_id,
                             title=first.title or policy.titles.get(first.rule_id,
                                                                    first.rule_id), due=due,
                             level=first.level, case=first.case_id or "")
    depts = [name for _, name in sorted({(t.department or "", names(t)) for t in group})]
    dues = [t.due for t in group if t.due] if monitor else [
        datetime.strptime(t.promised, "%Y-%m-%d").date() for t in group if t.promised]
    many = "told" if monitor else "handler"
    return many, digest(many, depts=depts,
                        alert_ids=sorted(t.alert_id for t in group),
                        due=min(dues) if dues else due)


def send_digests(engine: Engine, policy: Policy, as_of: datetime) -> int:
    """Queue the daily digest of every person who chose one: once per local day, at the
    first pass from the digest time of the person's county on (``policy.digest_at_of``),
    listing the notices that came before that moment (later ones wait for the next
    day's); the number of messages queued."""
    local = as_of.astimezone(policy.tz)

    def moment_of(region: str | None) -> datetime:
        return datetime.combine(local.date(), policy.digest_at_of(region), tzinfo=policy.tz)

    moments = sorted(m for m in map(moment_of, [None, *policy.county_digest]) if m <= local)
    if not moments:
        return 0
    n = AlertNotice
    queued = 0
    with engine.begin() as conn:
        sent = {who: aware(last) for who, last in conn.execute(
            select(n.recipient, func.max(n.digested_at)).where(
                n.mode == "digest", n.digested_at >= moments[0]).group_by(n.recipient))}
        waiting: dict[str, list[Any]] = {}
        due_at: dict[str, datetime] = {}  # person → the moment of their county's digest
        for row in conn.execute(
                select(n.recipient, n.alert_id, n.level, n.at, Alert.department,
                       Alert.region.label("alert_region"), Alert.due_on, User.region)
                .join(Alert, Alert.id == n.alert_id)
                .outerjoin(User, User.id == n.recipient)
                .where(n.mode == "digest", n.digested_at.is_(None), n.at <= moments[-1])
                .order_by(n.recipient, n.alert_id)):
            moment = due_at.setdefault(row.recipient, moment_of(row.region))
            if moment <= local and aware(row.at) <= moment and not (
                    row.recipient in sent and sent[row.recipient] >= moment):
                waiting.setdefault(row.recipient, []).append(row)
        known = department_names(conn)
        for user, rows in waiting.items():
            moment = due_at[user]
            depts = [name for _, name in sorted({
                (r.department or "", known.get((r.alert_region, r.department or ""))
                 or r.department or "") for r in rows})]
            text = digest("daily", depts=depts,
                          alert_ids=sorted({r.alert_id for r in rows}),
                          due=min(r.due_on for r in rows if r.due_on) if any(
                              r.due_on for r in rows) else local.date())
            queued += tell(conn, policy, as_of, None, [user], "daily", text)
            conn.execute(update(n).where(n.recipient == user, n.mode == "digest",
                                         n.digested_at.is_(None), n.at <= moment)
                         .values(digested_at=as_of))
    return queued


def delivery_of(engine: Engine, user_id: str) -> str:
    """How ``user_id`` is told of new alerts (one of :data:`MODES`)."""
    with engine.connect() as conn:
        return conn.scalar(select(User.delivery).where(User.id == user_id)) or "immediate"


def set_delivery(engine: Engine, user_id: str, mode: str, at: datetime, by: str,
                 channel: str | None = None) -> str:
    """Record how ``user_id`` is told of new alerts (:data:`MODES`), on the trail as done
    by ``by``; the mode set."""
    if mode not in MODES:
        raise InvalidTransition(f"unknown delivery '{mode}'{did_you_mean(mode, MODES)}: "
                                f"use {' or '.join(MODES)}")
    with engine.begin() as conn:
        trail.lock(conn)
        if conn.execute(update(User).where(User.id == user_id)
                        .values(delivery=mode)).rowcount != 1:
            known = conn.scalars(select(User.id)).all()
            raise NotFound(f"unknown user '{user_id}'{did_you_mean(user_id, known)}")
        trail.append(conn, at, [Entry("delivery_set", None, by,
                                      {"user": user_id, "delivery": mode}, channel)])
    return mode
