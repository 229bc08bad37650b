"""Holds the workflow system confirms: sent, re-sent until acknowledged, shown pending.

A hold (中止流程, monitor/holds.py) is only as good as the workflow system applying it.
The message for it goes through the outbox on the ``workflow`` channel (config.yaml
routes that channel to a sink, typically a webhook); its text ends with the hold's number
(``中止令 #7``), and the message's ``alert_id`` and ``address`` (the case) name it too.

**Acknowledgement** is explicit: the workflow system calls ``POST
/api/v1/holds/{id}/ack`` with its service token (scope ``gate``) once the case is
actually stopped. A webhook's 2xx only says the message arrived, not that anyone acted
on it, so it does not count. The acknowledgement, who sent it and when are recorded on
the hold and on the trail (``hold_acknowledged``); acknowledging again changes nothing.

**Until then the hold is pending** (``holds list``, the alert's and the case's pages) and
is sent again (:func:`resend`, run before every delivery: ``notify flush``, ``run``'s
flush stage, nightly and the daemon) once ``gate.hold_resend_minutes`` have passed since
it was last sent — each time traced as ``hold_resent``. A released hold is no longer
sent; its release message goes as before.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Engine, select, update

from . import authz, trail
from .authz import Actor
from .errors import NotFound
from .models import Hold
from .outbox import enqueue
from .supervised import update as traced_update
from .trail import Entry

WORKFLOW = "workflow"  # the recipient and channel of messages to the workflow system


def hold_text(hold: Any) -> str:
    return (f"中止流程：案件 {hold.case_id}（告警 {hold.alert_id}，{hold.rule_id}；"
            f"中止令 #{hold.id}，确认请调用 POST /api/v1/holds/{hold.id}/ack）")


def send(conn: Connection, at: datetime, holds: Iterable[Any]) -> int:
    """Queue each hold's message to the workflow system and mark it sent (in the caller's
    transaction)."""
    sent = 0
    for hold in holds:
        enqueue(conn, at, hold.alert_id, [WORKFLOW], "hold", hold_text(hold), channel=WORKFLOW,
                address=hold.case_id)
        conn.execute(update(Hold).where(Hold.id == hold.id).values(
            sent_at=at, sends=Hold.sends + 1))
        sent += 1
    return sent


def pending() -> Any:
    """WHERE clause: holds in force the workflow system has not acknowledged."""
    return (Hold.status == "held") & Hold.acked_at.is_(None)


def resend(engine: Engine, at: datetime, after_minutes: int, enabled: bool) -> int:
    """Send again every pending hold last sent ``after_minutes`` or more before ``at``;
    how many. ``enabled``: whether the workflow channel is routed at all."""
    if not enabled:
        return 0
    due = at - timedelta(minutes=after_minutes)
    with engine.begin() as conn:
        rows = list(conn.execute(select(Hold).where(
            pending(), Hold.sent_at.is_not(None), Hold.sent_at <= due).order_by(Hold.id)))
        if not rows:
            return 0
        trail.lock(conn)
        send(conn, at, rows)
        trail.append(conn, at, [Entry("hold_resent", h.alert_id, trail.SYSTEM, {
            "hold_id": h.id, "case_id": h.case_id, "sends": h.sends + 1,
            "first_held_at": h.held_at.isoformat()}) for h in rows])
    return len(rows)


@dataclass(frozen=True)
class Acked:
    hold_id: int
    case_id: str
    acked_at: datetime
    acked_by: str
    already: bool  # acknowledged before: nothing changed


def acknowledge(engine: Engine, hold_id: int, actor: Actor, at: datetime,
                note: str | None = None) -> Acked:
    """The workflow system confirms it stopped the case of hold ``hold_id``."""
    authz.check(actor, authz.GATE, verb=f"acknowledge hold {hold_id}")
    with engine.begin() as conn:
        trail.lock(conn)
        hold = conn.execute(select(Hold).where(Hold.id == hold_id)).one_or_none()
        if hold is None:
            raise NotFound(f"no hold with id {hold_id}")
        if hold.acked_at is not None:
            return Acked(hold.id, hold.case_id, hold.acked_at, hold.acked_by, True)
        text = (note or "").strip()[:2000] or None
        state = traced_update(conn, "holds", hold_id, acked_at=at, acked_by=actor.id,
                              ack_note=text)
        trail.append(conn, at, [Entry("hold_acknowledged", hold.alert_id, actor.id, {
            "hold_id": hold_id, "case_id": hold.case_id, "note": text,
            "sent": hold.sends, "held_at": hold.held_at.isoformat()}, actor.channel,
            [state])])
    return Acked(hold.id, hold.case_id, at, actor.id, False)


def state(hold: Any) -> str:
    """How a hold stands for people: ``released``, ``acknowledged`` (the workflow system
    stopped the case) or ``pending`` (not confirmed yet)."""
    if hold.status != "held":
        return "released"
    return "acknowledged" if hold.acked_at is not None else "pending"
