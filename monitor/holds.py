"""Holds (中止流程): a rule with ``action: halt`` stops the case in the workflow system.

When such a rule raises a new alert, each of its cases gets a hold, traced as ``held`` in
the same transaction (from monitor/alerts.py). If config.yaml routes the ``workflow``
channel to a sink, a message for the workflow system is queued in the outbox too (the
message's ``address`` is the case id, its ``subject`` ``hold`` or ``release``), and the
hold is pending until the workflow system acknowledges it (monitor/holdsync.py). A monitor
who may act on the alert releases the hold with a note; that is traced as ``released``.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine, select, update

from . import trail
from .errors import InvalidTransition, NotFound
from .models import Hold
from .bulkcopy import insert_many
from .sqllist import one_of
from .holdsync import WORKFLOW, send
from .outbox import enqueue
from .supervised import change, update as traced_update
from .supervision import Policy, begin_action, note_of
from .trail import Entry

def place(conn: Connection, policy: Policy, rows: list[dict[str, Any]],
          ids: Mapping[tuple[str, str], int], at: datetime) -> list[Entry]:
    """Holds for the cases of new alerts of halting rules; their trail entries. Each is
    sent to the workflow system when that channel is routed (monitor/holdsync.py)."""
    holds = []
    for row in rows:
        if row["action"] != "halt":
            continue
        alert_id = ids[row["region"], row["dedupe_key"]]
        for case_id in row["case_ids"]:
            holds.append({"case_id": case_id, "alert_id": alert_id, "rule_id": row["rule_id"],
                          "department": row["department"], "held_at": at, "status": "held",
                          "region": row["region"]})  # the alert's
    if not holds:
        return []
    insert_many(conn, Hold.__table__, holds)
    if policy.workflow:
        placed = conn.execute(select(Hold).where(
            one_of(Hold.alert_id, sorted({h["alert_id"] for h in holds})),
            Hold.held_at == at, Hold.sent_at.is_(None)).order_by(Hold.id))
        send(conn, at, list(placed))
    hold_ids = {(a, c): i for i, a, c in conn.execute(
        select(Hold.id, Hold.alert_id, Hold.case_id).where(
            one_of(Hold.alert_id, sorted({h["alert_id"] for h in holds}))))}
    return [Entry("held", h["alert_id"], trail.SYSTEM, {"case_id": h["case_id"]}, changes=[
        change("holds", hold_ids[h["alert_id"], h["case_id"]], h, new=True)],
        region=h["region"]) for h in holds]


def release(engine: Engine, policy: Policy, hold_id: int, by: str, at: datetime,
            note: str | None, channel: str | None = None) -> Any:
    """Release a hold: whoever may act on its alert, with a note."""
    with engine.begin() as conn:
        trail.lock(conn)
        hold = conn.execute(select(Hold).where(Hold.id == hold_id)).one_or_none()
        if hold is None:
            raise NotFound(f"no hold with id {hold_id}")
        _, alert = begin_action(conn, hold.alert_id, by, "release", channel,
                                verb=f"release hold {hold_id} of")
        if hold.status != "held":
            raise InvalidTransition(f"cannot release hold {hold_id}: it was released by "
                                    f"{hold.released_by}")
        text = note_of(note, f"release hold {hold_id}")
        state = traced_update(conn, "holds", hold_id, status="released", released_at=at,
                              released_by=by, release_note=text)
        if policy.workflow:
            enqueue(conn, at, alert.id, [WORKFLOW], "release",
                    f"恢复流程：案件 {hold.case_id}（告警 {alert.id}）", channel=WORKFLOW,
                    address=hold.case_id)
        trail.append(conn, at, [Entry("released", alert.id, by, {
            "hold_id": hold_id, "case_id": hold.case_id, "note": text}, channel, [state])])
        return conn.execute(select(Hold).where(Hold.id == hold_id)).one()


def list_holds(engine: Engine, *, include_released: bool = False,
               case_id: str | None = None) -> Iterator[Any]:
    query = select(Hold).order_by(Hold.id)
    if not include_released:
        query = query.where(Hold.status == "held")
    if case_id:
        query = query.where(Hold.case_id == case_id)
    with engine.connect() as conn:
        yield from conn.execute(query)
