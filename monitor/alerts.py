"""Storing findings as alerts, idempotently: one alert per (rule, subject).

A re-run that finds the same thing changes nothing. A finding that grew (another
too-fast step in the same case) updates its alert's message and evidence; a change of
level (warning → yellow → red) is also recorded in ``alert_changes``.

A new alert is assigned to its department's tier-1 monitors with a handling deadline
(monitor/supervision.py); raising it and every change of its level are appended to the
trail (monitor/trail.py) in the same transaction, as are the holds (中止流程) a new
alert of an ``action: halt`` rule places on its cases (monitor/holds.py).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import Connection, Engine, insert, select, update

from . import trail
from .holds import place
from .models import Alert, AlertChange
from .rules.finding import Finding
from .rules.model import Rule
from .supervision import ACTIVE, Policy, assign, raised_entries
from .trail import Entry

IN_CHUNK = 500


@dataclass
class Stored:
    new: int = 0
    changed: int = 0
    unchanged: int = 0


def dedupe_key(rule: Rule, finding: Finding) -> str:
    return f"{rule.id}|{finding.subject}"


def render(rule: Rule, finding: Finding) -> tuple[str, str]:
    """(level, message) of a finding under its rule."""
    level = finding.level or rule.level
    fields: dict[str, Any] = {"case_id": finding.case_id, "actor": finding.actor,
                              "department": finding.department, "item_code": finding.item_code,
                              "period": finding.period, "level": level, "rule_id": rule.id,
                              "title": rule.title}
    fields.update(finding.fields)
    return level, rule.message.format(**{k: "" if v is None else v for k, v in fields.items()})


def _default_policy() -> Policy:
    from zoneinfo import ZoneInfo

    from .calendar import WorkCalendar

    return Policy(WorkCalendar(), ZoneInfo("Asia/Shanghai"))


def store_findings(conn: Connection, rule: Rule, findings: list[Finding], at: datetime,
                   policy: Policy | None = None) -> Stored:
    keys = [dedupe_key(rule, f) for f in findings]
    existing: dict[str, tuple[int, str, str]] = {}
    for start in range(0, len(keys), IN_CHUNK):
        existing.update((k, (i, lvl, msg)) for k, i, lvl, msg in conn.execute(
            select(Alert.dedupe_key, Alert.id, Alert.level, Alert.message)
            .where(Alert.dedupe_key.in_(keys[start:start + IN_CHUNK]))))
    result, new_rows, entries = Stored(), [], []
    version = rule.version
    for key, finding in zip(keys, findings):
        level, message = render(rule, finding)
        values = {"level": level, "message": message, "evidence": dict(finding.evidence),
                  "event_ids": list(finding.event_ids), "rule_version": version,
                  "updated_at": at}
        if key not in existing:
            existing[key] = (0, level, message)  # a subject found twice in one run counts once
            new_rows.append({
                **values, "dedupe_key": key, "rule_id": rule.id, "kind": rule.kind,
                "subject": finding.subject, "status": "open", "tier": 1, "action": rule.action,
                "case_id": finding.case_id,
                "case_ids": list(finding.case_ids or ([finding.case_id] if finding.case_id else [])),
                "actor": finding.actor, "department": finding.department,
                "item_code": finding.item_code, "period": finding.period, "raised_at": at})
            continue
        alert_id, old_level, old_message = existing[key]
        if alert_id == 0 or (old_level, old_message) == (level, message):
            result.unchanged += 1
            continue
        conn.execute(update(Alert).where(Alert.id == alert_id).values(**values))
        if old_level != level:
            conn.execute(insert(AlertChange).values(alert_id=alert_id, at=at, old_level=old_level,
                                                    new_level=level, rule_version=version))
            entries.append(Entry("level_changed", alert_id, detail={
                "from": old_level, "to": level, "rule_version": version}))
        result.changed += 1
    if new_rows:
        policy = policy or _default_policy()
        assign(new_rows, conn, policy, at)
        conn.execute(insert(Alert), new_rows)
        ids = _ids(conn, [r["dedupe_key"] for r in new_rows])
        entries[:0] = raised_entries(new_rows, ids) + place(conn, policy, new_rows, ids, at)
    trail.append(conn, at, entries)
    result.new = len(new_rows)
    return result


def _ids(conn: Connection, keys: list[str]) -> dict[str, int]:
    out: dict[str, int] = {}
    for start in range(0, len(keys), IN_CHUNK):
        out.update(conn.execute(select(Alert.dedupe_key, Alert.id)
                                .where(Alert.dedupe_key.in_(keys[start:start + IN_CHUNK]))).all())
    return out


ALERT_FIELDS = ("id", "rule_id", "kind", "level", "status", "tier", "action", "case_id",
                "case_ids", "actor", "department", "item_code", "period", "raised_at",
                "updated_at", "message", "evidence", "rule_version", "assigned_to", "due_on",
                "disposition", "resolved_at")


def list_alerts(engine: Engine, *, kind: str | None = None, level: str | None = None,
                department: str | None = None, status: str | None = None,
                rule_id: str | None = None, alert_id: int | None = None,
                tier: int | None = None, overdue_on: date | None = None) -> Iterator[Any]:
    """Alerts matching every filter given; ``overdue_on``: still to be acted on and due
    before that (local) date."""
    query = select(*(getattr(Alert, f) for f in ALERT_FIELDS)).order_by(Alert.id)
    for column, value in ((Alert.kind, kind), (Alert.level, level),
                          (Alert.department, department), (Alert.status, status),
                          (Alert.rule_id, rule_id), (Alert.id, alert_id), (Alert.tier, tier)):
        if value is not None:
            query = query.where(column == value)
    if overdue_on is not None:
        query = query.where(Alert.status.in_(ACTIVE), Alert.due_on < overdue_on)
    with engine.connect() as conn:
        yield from conn.execute(query)
