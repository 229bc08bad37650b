"""Alerts that clear (复查销号): an alert whose finding no longer holds when its case is
re-evaluated is closed as ``cleared``, with the evidence of why, on the trail.

Only for the kinds that say so (``CLEARED``, the reason in words, in the kind's module;
see :func:`monitor.rules.kinds.clears`): those whose finding about a case can stop
holding when more of the case's history arrives — a payment recorded online
(``unpaid_fee``), a decision keyed in late and back-dated within the limit, or a
warning heeded (``overdue``), a required attachment supplied by the step recorded again
(``missing_attachment`` with ``cured_by_later``). The others record facts no later event
can undo (a step keyed in 58 seconds after acceptance, one person in several roles, a
burst of entries) and keep their alerts until a person disposes of them.

Which alerts: of the rule just evaluated, ``open`` or ``acknowledged`` (a resolved alert
keeps its disposition; a suppressed one stays set aside), raised and last updated as of
no later than this evaluation (a replay as of an earlier moment clears nothing), whose
case is in the rule's scope and **was re-evaluated in this pass** — every case on a full
evaluation, the cases the new events touch on an incremental one (the same
``changed_cases`` the detectors use) — and whose subject this pass did not find. A case
not re-evaluated is never cleared, so incremental and full evaluation agree.

The evidence: the kind's reason, the rule version, the moment, and the case's events
this pass saw (on an incremental run the new ones — what changed the answer; on a full
one the case's latest). Written in the rule's transaction, with the findings.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, select, true, update

from .models import Alert, Event
from .rules.finding import Context
from .rules.kinds import KINDS, clears
from .rules.model import Rule
from .rules.sql import changed_cases, in_scope, new_events
from .supervised import change
from .supervision import ACTIVE, CLEARED
from .trail import Entry

IN_CHUNK = 500
EVIDENCE_EVENTS = 20  # events of a case named in the evidence, at most


def clear_unfound(conn: Connection, rule: Rule, ctx: Context, found: set[tuple[str, str]],
                  at: datetime) -> tuple[int, list[Entry]]:
    """Clear the alerts of ``rule`` whose case was re-evaluated (``ctx``) and whose
    (region, key) is not in ``found``; (how many, the trail entries to append)."""
    reason = clears(KINDS[rule.kind], rule.params)
    if reason is None:
        return 0, []
    a = Alert.__table__
    query = (select(Alert.id, Alert.region, Alert.dedupe_key, Alert.case_id, Alert.level, Alert.status,
                    Alert.tier, Alert.subject)
             .where(Alert.rule_id == rule.id, Alert.status.in_(ACTIVE),
                    Alert.case_id.is_not(None), Alert.raised_at <= ctx.as_of,
                    Alert.updated_at <= ctx.as_of,
                    in_scope(rule.scope, a.c.department, a.c.item_code),
                    changed_cases(ctx, a.c.case_id),
                    true() if ctx.region is None else a.c.region == ctx.region)
             .order_by(Alert.id))
    gone = [r for r in conn.execute(query) if (r.region, r.dedupe_key) not in found]
    if not gone:
        return 0, []
    seen = _events(conn, ctx, sorted({r.case_id for r in gone}))
    entries = []
    for start in range(0, len(gone), IN_CHUNK):
        chunk = gone[start:start + IN_CHUNK]
        conn.execute(update(Alert).where(Alert.id.in_([r.id for r in chunk]))
                     .values(status=CLEARED, updated_at=at))
    for r in gone:
        entries.append(Entry("cleared", r.id, detail={
            "reason": reason, "from_status": r.status, "level": r.level, "tier": r.tier,
            "subject": r.subject, "rule_version": rule.version,
            "as_of": ctx.as_of.astimezone(ctx.tz).isoformat(),
            "evaluation": "incremental" if ctx.since_event_id is not None else "full",
            "events": seen.get(r.case_id, [])},
            changes=[change("alerts", r.id, {"status": CLEARED})]))
    return len(gone), entries


def _events(conn: Connection, ctx: Context, case_ids: list[str]) -> dict[str, list[dict]]:
    """case → its events this pass saw (new ones on an incremental run), latest first."""
    e = Event.__table__
    out: dict[str, list[dict[str, Any]]] = {}
    for start in range(0, len(case_ids), IN_CHUNK):
        rows: Iterable = conn.execute(
            select(e.c.case_id, e.c.event_id, e.c.step, e.c.actor, e.c.occurred_at,
                   e.c.recorded_at, e.c.channel, e.c.amount, e.c.attachments)
            .where(e.c.case_id.in_(case_ids[start:start + IN_CHUNK]),
                   e.c.occurred_at <= ctx.as_of, new_events(ctx))
            .order_by(e.c.case_id, e.c.occurred_at.desc(), e.c.id.desc()))
        for r in rows:
            events = out.setdefault(r.case_id, [])
            if len(events) < EVIDENCE_EVENTS:
                events.append({
                    "event_id": r.event_id, "step": r.step, "actor": r.actor,
                    "occurred_at": _local(r.occurred_at, ctx),
                    "recorded_at": _local(r.recorded_at, ctx) if r.recorded_at else None,
                    "channel": r.channel, "attachments": r.attachments,
                    "amount": None if r.amount is None else str(r.amount)})
    return out


def _local(value: datetime, ctx: Context) -> str:
    return value.astimezone(ctx.tz).isoformat()
