"""Storing findings as alerts, idempotently: one alert per (rule, subject).

A re-run that finds the same thing changes nothing. A finding that grew (another
too-fast step in the same case) updates its alert's message and evidence; a change of
level (warning → yellow → red) is also recorded in ``alert_changes``.

A new alert is assigned to its department's tier-1 monitors with a handling deadline
(monitor/supervision.py); raising it and every change of its level are appended to the
trail (monitor/trail.py) in the same transaction, as are the holds (中止流程) a new
alert of an ``action: halt`` rule places on its cases (monitor/holds.py).

Tier 1 is told in the same transaction (monitor/tier1.py): of every new alert, of every
rise in level, and of every alert reopened. A level that rises on an acknowledged or
resolved alert reopens it (``reopened`` on the trail) with a new deadline: its clock for
escalation starts again. A cleared alert (复查销号, monitor/clearing.py) whose finding
holds again is reopened the same way; a suppressed one whose exemption has ended is
opened (``unsuppressed``).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace
from datetime import date, datetime, tzinfo
from itertools import islice
from typing import Any

from sqlalchemy import Connection, Engine, func, insert, select

from . import tier1, trail
from .bulkcopy import insert_many
from .holds import place
from .models import Alert, AlertChange, Department, Event
from .regionstore import in_region, region_of_alert, store_region
from .rules.finding import Finding
from .rules.model import Rule
from .sqllist import one_of
from .supervised import change, update as traced_update
from .supervision import ACTIVE, Policy, assign, raised_entries
from .trail import Entry
from .exemptions import Matcher

IN_CHUNK = 500
GATE_REFUSED = "【闸口曾拒绝仍录入】"  # an alert raised by an event the workflow gate refused


@dataclass
class Stored:
    new: int = 0
    changed: int = 0
    unchanged: int = 0
    messages: int = 0  # queued to tier 1 (monitor/tier1.py)
    cleared: int = 0   # closed because their finding no longer holds (monitor/clearing.py)
    # (region, dedupe key) of every finding this run
    keys: set[tuple[str, str]] = field(default_factory=set, repr=False, compare=False)


def dedupe_key(rule: Rule, finding: Finding) -> str:
    return f"{rule.id}|{finding.subject}"


def render(rule: Rule, finding: Finding) -> tuple[str, str]:
    """(level, message) of a finding under its rule (its variant's message, if it has one)."""
    level = finding.level or rule.level
    variant = rule.variant(finding.variant)
    fields: dict[str, Any] = {"case_id": finding.case_id, "actor": finding.actor,
                              "department": finding.department, "item_code": finding.item_code,
                              "period": finding.period, "level": level, "rule_id": rule.id,
                              "title": variant.title}
    fields.update(finding.fields)
    message = variant.message.format(**{k: "" if v is None else v for k, v in fields.items()})
    if finding.evidence.get("gate_refused"):  # the workflow gate had refused it (gatelog.py)
        message = GATE_REFUSED + message
    return level, message


def _default_policy() -> Policy:
    from zoneinfo import ZoneInfo

    from .calendar import WorkCalendar

    return Policy(WorkCalendar(), ZoneInfo("Asia/Shanghai"))


CHUNK = 500  # findings stored per round: memory holds one round, not a rule's whole run


def store_findings(conn: Connection, rule: Rule, findings: Iterable[Finding], at: datetime,
                   policy: Policy | None = None) -> Stored:
    """Store a rule's findings as they come (an iterator is consumed in rounds of
    :data:`CHUNK`, so a run's memory does not grow with its findings)."""
    policy = policy or _default_policy()
    exempt = Matcher.load(conn, rule.id, at, policy.tz)
    result = Stored()
    it = iter(findings)
    home = store_region(conn)
    while chunk := list(islice(it, CHUNK)):
        _store_chunk(conn, rule, chunk, at, policy, exempt, result.keys, result, home)
    return result


def regions_of(conn: Connection, subjects: list[tuple[str | None, str | None]],
               home: str) -> list[str]:
    """The region of each (case, department) a finding names: its case's (the region its
    events were ingested as), else its department's — when one county alone has that
    code — else the store's own (``home``). A finding about a department names its
    county itself (:func:`finding_regions`)."""
    cases = {c for c, _ in subjects if c is not None}
    departments = {d for _, d in subjects if d is not None}
    of_case: dict[str, str] = {}
    of_department: dict[str, str] = {}
    if cases:
        for start in range(0, len(cases), IN_CHUNK):
            chunk = sorted(cases)[start:start + IN_CHUNK]
            of_case.update(conn.execute(
                select(Event.case_id, func.min(Event.region))
                .where(one_of(Event.case_id, chunk)).group_by(Event.case_id)).tuples().all())
    if departments:
        of_department.update(conn.execute(
            select(Department.code, func.min(Department.region))
            .where(one_of(Department.code, sorted(departments))).group_by(Department.code)
            .having(func.count() == 1)).tuples().all())
    return [(of_case.get(c) if c is not None else None)
            or (of_department.get(d) if d is not None else None) or home
            for c, d in subjects]


def _named(finding: Finding) -> tuple[str | None, str | None]:
    """The case a finding is about (a burst's first, when it names several) and its
    department, for :func:`regions_of`."""
    return finding.case_id or next(iter(finding.case_ids), None), finding.department


def finding_regions(conn: Connection, findings: list[Finding], home: str) -> list[str]:
    """The region of each finding: its own (a finding about a department), else
    :func:`regions_of` its case and department."""
    unknown = [_named(f) for f in findings if f.region is None]
    found = iter(regions_of(conn, unknown, home) if unknown else ())
    return [f.region if f.region is not None else next(found) for f in findings]


def _regions(conn: Connection, findings: list[Finding], keys: list[str],
             existing: dict[str, dict[str, Any]], home: str) -> list[str]:
    """Each finding's region: its own; else, for a key already raised in one region
    (a case's finding: a case lies in one county), that alert's; else
    :func:`regions_of` its case and department — looked up only for new alerts, as
    before the key had a region."""
    out: list[str | None] = []
    unknown = []
    for i, (key, finding) in enumerate(zip(keys, findings)):
        known = existing.get(key, {})
        if finding.region is not None:
            out.append(finding.region)
        elif len(known) == 1:
            out.append(next(iter(known)))
        else:
            out.append(None)
            unknown.append(i)
    if unknown:
        for i, region in zip(unknown, regions_of(
                conn, [_named(findings[i]) for i in unknown], home)):
            out[i] = region
    return [r or home for r in out]


def _store_chunk(conn: Connection, rule: Rule, findings: list[Finding], at: datetime,
                 policy: Policy, exempt: Matcher, seen: set[tuple[str, str]], result: Stored,
                 home: str) -> None:
    keys = [dedupe_key(rule, f) for f in findings]
    # key → its alerts, one per region (migration 0033: a department-month's key recurs
    # in every county that has the department's code)
    existing: dict[str, dict[str, Any]] = {}
    for start in range(0, len(keys), IN_CHUNK):
        for r in conn.execute(
                select(Alert.dedupe_key, Alert.id, Alert.level, Alert.message, Alert.title,
                       Alert.status,
                       Alert.assigned_to, Alert.due_on, Alert.department, Alert.case_id,
                       Alert.updated_at, Alert.region)
                .where(one_of(Alert.dedupe_key, keys[start:start + IN_CHUNK]))):
            existing.setdefault(r.dedupe_key, {})[r.region] = r
    regions = _regions(conn, findings, keys, existing, home)
    new_rows: list[dict[str, Any]] = []
    reopened, entries = [], []
    told: list[tier1.Tell] = []
    version = rule.version
    for key, finding, region in zip(keys, findings, regions):
        if (region, key) in seen:  # a subject found twice in one run counts once
            result.unchanged += 1
            continue
        seen.add((region, key))
        level, message = render(rule, finding)
        title = rule.variant(finding.variant).title
        values = {"level": level, "message": message, "title": title,
                  "evidence": dict(finding.evidence),
                  "event_ids": list(finding.event_ids), "rule_version": version,
                  "updated_at": at}
        if region not in existing.get(key, ()):
            exemption = exempt.match(finding, region)
            new_rows.append({
                **values, "dedupe_key": key, "rule_id": rule.id, "kind": rule.kind,
                "subject": finding.subject, "status": "suppressed" if exemption else "open",
                "exemption_id": exemption, "tier": 1, "action": rule.action,
                "case_id": finding.case_id,
                "case_ids": list(finding.case_ids or ([finding.case_id] if finding.case_id else [])),
                "actor": finding.actor, "department": finding.department,
                "item_code": finding.item_code, "period": finding.period, "raised_at": at,
                "region": region})
            continue
        old = existing[key][region]
        if old.status == "cleared" and old.updated_at > at:
            result.unchanged += 1  # a replay as of before it was cleared: it stays cleared
            continue
        if (old.status == "suppressed" and exempt.match(finding, region) is None) \
                or old.status == "cleared":
            reopened.append((old, key, finding, values))  # exemption ended, or found again
            continue
        if (old.level, old.message, old.title) == (level, message, title):
            result.unchanged += 1
            continue
        entries += _changed(conn, rule, policy, old, values, at, told)
        result.changed += 1
    if new_rows:
        live = [r for r in new_rows if r["status"] == "open"]
        _assign(live, rule, conn, policy, at)
        for row in new_rows:
            row.setdefault("assigned_to", [])
            row.setdefault("due_on", None)
        insert_many(conn, Alert.__table__, new_rows)
        ids = _ids(conn, [(r["region"], r["dedupe_key"]) for r in new_rows])
        entries[:0] = (raised_entries(live, ids) + _holds(conn, rule, policy, live, ids, at)
                       + suppressed_entries([r for r in new_rows if r["status"] != "open"], ids))
        told[:0] = [tier1.of_row(r, ids[r["region"], r["dedupe_key"]], "raised", fresh=True)
                    for r in live]
    entries += _reopen(conn, rule, policy, reopened, at, told)
    trail.append(conn, at, entries)
    result.messages += tier1.notify(conn, policy, at, told)
    result.new += len(new_rows)
    result.changed += len(reopened)


def _changed(conn: Connection, rule: Rule, policy: Policy, old: Any, values: dict[str, Any],
             at: datetime, told: list) -> list[Entry]:
    """Update an alert whose finding changed. A level that rose is told to tier 1; on an
    acknowledged or resolved alert it reopens the alert, with a new deadline (the clock
    for escalation starts again)."""
    entries = []
    level = values["level"]
    risen = tier1.rose(old.level, level) and old.status in (*ACTIVE, "resolved")
    reopen = risen and old.status != "open"
    if reopen:
        values = {**values, "status": "open", "acknowledged_at": None, "disposition": None,
                  "resolved_at": None, "reminded_at": None,
                  "due_on": policy.due(at, rule.id, old.region)}
    state = traced_update(conn, "alerts", old.id, **values)
    if old.level != level:
        conn.execute(insert(AlertChange).values(alert_id=old.id, at=at, old_level=old.level,
                                                new_level=level, rule_version=rule.version,
                                                region=region_of_alert(old.id)))
        entries.append(Entry("level_changed", old.id, detail={
            "from": old.level, "to": level, "rule_version": rule.version}))
    if reopen:
        entries.append(Entry("reopened", old.id, detail={
            "reason": "level_rose", "from_status": old.status, "from": old.level, "to": level,
            "due_on": values["due_on"].isoformat(), "assigned_to": list(old.assigned_to or [])}))
    if entries:  # the row's new state rides on the last entry about it
        entries[-1] = replace(entries[-1], changes=[state])
    if risen:
        told.append(tier1.Tell(old.id, level, "reopened" if reopen else "rose",
                               tuple(old.assigned_to or ()), rule.id, old.department,
                               old.case_id, values.get("due_on") or old.due_on,
                               values["evidence"].get("promised_deadline"), values["title"],
                               old.region))
    return entries


def _assign(rows: list[dict[str, Any]], rule: Rule, conn: Connection, policy: Policy,
            at: datetime) -> None:
    """Assignment and deadline; an experimental rule's alerts (as the alert's county has
    the rule) are assigned to no one."""
    assign(rows, conn, policy, at)
    for row in rows:
        if policy.status_of(rule.id, row.get("region")) == "experimental":
            row["assigned_to"] = []


def _holds(conn: Connection, rule: Rule, policy: Policy, rows: list[dict[str, Any]],
           ids: dict[tuple[str, str], int], at: datetime) -> list[Entry]:
    """Only a stable rule (as the alert's county has it) halts cases."""
    stable = [r for r in rows if policy.status_of(rule.id, r.get("region")) == "stable"]
    return place(conn, policy, stable, ids, at) if stable else []


def suppressed_entries(rows: list[dict[str, Any]], ids: dict[tuple[str, str], int]
                       ) -> list[Entry]:
    return [Entry("suppressed", ids[r["region"], r["dedupe_key"]], detail={
        "rule_id": r["rule_id"], "subject": r["subject"], "level": r["level"],
        "department": r["department"], "exemption_id": r["exemption_id"],
        "rule_version": r["rule_version"]},
        changes=[change("alerts", ids[r["region"], r["dedupe_key"]], r, new=True)],
        region=r["region"]) for r in rows]


def _reopen(conn: Connection, rule: Rule, policy: Policy, reopened: list, at: datetime,
            told: list) -> list[Entry]:
    """Alerts found again: suppressed ones with no exemption in force any more, and cleared
    ones (复查销号) whose finding holds again — open, assigned, due anew, traced, told."""
    entries = []
    for old, key, finding, values in reopened:
        row = {"rule_id": rule.id, "department": finding.department, "dedupe_key": key,
               "region": old.region,
               "action": rule.action, "level": values["level"], "case_id": finding.case_id,
               "title": values["title"],
               "evidence": values["evidence"], "case_ids": list(finding.case_ids or (
                   [finding.case_id] if finding.case_id else []))}
        _assign([row], rule, conn, policy, at)
        state = traced_update(conn, "alerts", old.id, **values, status="open",
                              exemption_id=None, assigned_to=row["assigned_to"],
                              due_on=row["due_on"], reminded_at=None)
        if old.level != values["level"]:
            conn.execute(insert(AlertChange).values(
                alert_id=old.id, at=at, old_level=old.level, new_level=values["level"],
                rule_version=rule.version, region=region_of_alert(old.id)))
            entries.append(Entry("level_changed", old.id, detail={
                "from": old.level, "to": values["level"], "rule_version": rule.version}))
        if old.status == "cleared":
            entries.append(Entry("reopened", old.id, detail={
                "reason": "found_again", "from_status": "cleared", "from": old.level,
                "to": values["level"], "assigned_to": row["assigned_to"],
                "due_on": row["due_on"].isoformat()}))
        else:
            entries.append(Entry("unsuppressed", old.id, detail={
                "reason": "no exemption in force", "level": values["level"],
                "assigned_to": row["assigned_to"], "due_on": row["due_on"].isoformat()}))
        entries[-1] = replace(entries[-1], changes=[state])  # the row's new state rides here
        entries += _holds(conn, rule, policy, [row], {(old.region, key): old.id}, at)
        told.append(tier1.of_row(row, old.id, "raised"))
    return entries


def _ids(conn: Connection, keys: list[tuple[str, str]]) -> dict[tuple[str, str], int]:
    """(region, dedupe key) → the alert's id."""
    out: dict[tuple[str, str], int] = {}
    wanted = set(keys)
    names = sorted({k for _, k in keys})
    for start in range(0, len(names), IN_CHUNK):
        out.update(((region, key), id_) for key, region, id_ in conn.execute(
            select(Alert.dedupe_key, Alert.region, Alert.id)
            .where(one_of(Alert.dedupe_key, names[start:start + IN_CHUNK])))
            if (region, key) in wanted)
    return out


ALERT_FIELDS = ("id", "rule_id", "kind", "title", "level", "status", "tier", "action",
                "case_id", "case_ids", "actor", "department", "item_code", "period",
                "raised_at", "updated_at", "message", "evidence", "rule_version", "assigned_to", "due_on",
                "disposition", "resolved_at", "exemption_id")


def jsonable(row: Any, tz: tzinfo | None = None) -> dict[str, Any]:
    """An alert row (``ALERT_FIELDS``) as JSON-ready values: dates as ISO 8601, moments in
    ``tz`` (the county's zone, with its offset) when given, else UTC as stored."""
    out = {f: row._mapping[f] if hasattr(row, "_mapping") else row[f] for f in ALERT_FIELDS}
    for key in ("raised_at", "updated_at", "due_on", "resolved_at"):
        value = out.get(key)
        if value is not None:
            if tz is not None and isinstance(value, datetime):
                value = value.astimezone(tz)
            out[key] = value.isoformat()
    return out


def list_alerts(engine: Engine, *, kind: str | None = None, level: str | None = None,
                department: str | None = None, status: str | None = None,
                rule_id: str | None = None, alert_id: int | None = None,
                tier: int | None = None, overdue_on: date | None = None,
                suppressed: bool | None = False, region: str | None = None
                ) -> Iterator[Any]:
    """Alerts matching every filter given; ``overdue_on``: still to be acted on and due
    before that (local) date. ``suppressed``: False (default) leaves out findings set aside
    by an exemption, True gives only those, None both. ``region``: of that region or one
    it covers (a city: its counties)."""
    query = select(*(getattr(Alert, f) for f in ALERT_FIELDS)).order_by(Alert.id)
    for column, value in ((Alert.kind, kind), (Alert.level, level),
                          (Alert.department, department), (Alert.status, status),
                          (Alert.rule_id, rule_id), (Alert.id, alert_id), (Alert.tier, tier)):
        if value is not None:
            query = query.where(column == value)
    if overdue_on is not None:
        query = query.where(Alert.status.in_(ACTIVE), Alert.due_on < overdue_on)
    if region is not None:
        query = query.where(in_region(Alert.region, region))
    if suppressed is not None and alert_id is None and status is None:
        query = query.where((Alert.status == "suppressed") if suppressed
                            else (Alert.status != "suppressed"))
    with engine.connect() as conn:
        yield from conn.execute(query)
