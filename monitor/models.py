"""The store: SQLAlchemy 2.x typed models.

Natural keys make every write idempotent: ``events.event_id`` (from the source system),
``receipts (department, period)``, catalog codes, and quarantine ``(kind, source, line,
raw_hash)``. ``events.id`` grows with ingestion order and is the watermark for
incremental evaluation.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any, ClassVar

from sqlalchemy import (JSON, BigInteger, Boolean, Date, ForeignKey, Index, Integer, String,
                        Table, Text, UniqueConstraint, false, text)
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.sql.functions import FunctionElement

from .types import BigId, Money, UTCDateTime


class Base(DeclarativeBase):
    # Every model here is mapped to one table; SQLAlchemy declares ``__table__`` as the
    # wider FromClause, which has no insert()/delete() for the type checker.
    __table__: ClassVar[Table]


class Department(Base):
    __tablename__ = "departments"
    # the county (GB/T 2260, monitor/regions.py; migration 0026); keyed (region, code) since
    # 0029: each county has its own catalog under the same codes
    region: Mapped[str] = mapped_column(String(6), primary_key=True)
    code: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))


class User(Base):
    __tablename__ = "users"
    # the county (GB/T 2260, monitor/regions.py; migration 0026); keyed (region, id) since
    # 0029, while ``catalog load`` keeps an id to one region: a login id names one person
    region: Mapped[str] = mapped_column(String(6), primary_key=True)
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    department: Mapped[str | None] = mapped_column(String(64))
    roles: Mapped[list[str]] = mapped_column(JSON, default=list)
    phone: Mapped[str | None] = mapped_column(String(32))
    email: Mapped[str | None] = mapped_column(String(200))
    # how the person is told of new alerts: immediate (None too) | digest (migration 0014);
    # deferred: the catalog's upsert never reads or writes it (a reload keeps the choice)
    delivery: Mapped[str | None] = mapped_column(String(16), deferred=True)

    __table_args__ = (Index("ix_users_region", "region", "department"),)


class Item(Base):
    """A power item (权力事项) with its limits, fee and control nodes."""

    __tablename__ = "items"
    # the county (GB/T 2260, monitor/regions.py; migration 0026); keyed (region, code) since
    # 0029: every county uses the province's item codes (事项编码) with its own limits
    region: Mapped[str] = mapped_column(String(6), primary_key=True)
    code: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(300))
    department: Mapped[str] = mapped_column(String(64), index=True)
    category: Mapped[str] = mapped_column(String(16))
    promised_days: Mapped[int] = mapped_column(Integer)
    legal_days: Mapped[int] = mapped_column(Integer)
    fee: Mapped[Decimal] = mapped_column(Money)
    min_minutes: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    min_case_minutes: Mapped[int | None] = mapped_column(Integer)
    required_attachments: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    step_days: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=dict)
    # what the item's rules go by beyond its limits (monitor.catalog: ITEM_POLICY_KEYS)
    policy: Mapped[dict[str, Any] | None] = mapped_column(JSON)


class IngestRun(Base):
    """One ingestion of one source (file, stdin, XES log): what was read and what became of it."""

    __tablename__ = "ingest_runs"
    # the county (GB/T 2260, monitor/regions.py; migration 0026)
    region: Mapped[str] = mapped_column(String(6))
    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    source: Mapped[str] = mapped_column(String(1000))
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    status: Mapped[str] = mapped_column(String(16), default="running")
    read: Mapped[int] = mapped_column(Integer, default=0)
    inserted: Mapped[int] = mapped_column(Integer, default=0)
    replaced: Mapped[int] = mapped_column(Integer, default=0)
    duplicates: Mapped[int] = mapped_column(Integer, default=0)
    quarantined: Mapped[int] = mapped_column(Integer, default=0)


class Event(Base):
    """One workflow step of one case, as the source system logged it."""

    __tablename__ = "events"
    # the county (GB/T 2260, monitor/regions.py; migration 0026)
    region: Mapped[str] = mapped_column(String(6))
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    event_id: Mapped[str] = mapped_column(String(128), unique=True)
    case_id: Mapped[str] = mapped_column(String(128))
    item_code: Mapped[str] = mapped_column(String(64))
    department: Mapped[str] = mapped_column(String(64))
    step: Mapped[str] = mapped_column(String(64))
    actor: Mapped[str | None] = mapped_column(String(64))
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime)
    recorded_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    amount: Mapped[Decimal | None] = mapped_column(Money)
    channel: Mapped[str | None] = mapped_column(String(16))
    attachments: Mapped[str | None] = mapped_column(Text)
    days: Mapped[int | None] = mapped_column(Integer)
    note: Mapped[str | None] = mapped_column(Text)
    content_hash: Mapped[str] = mapped_column(String(32))
    run_id: Mapped[int | None] = mapped_column(ForeignKey("ingest_runs.id"))
    source_line: Mapped[int | None] = mapped_column(Integer)
    # the finest unit occurred_at was written in (minute, hour, day); None: the second
    time_precision: Mapped[str | None] = mapped_column(String(6))
    # an activity a mapping lists as a system event: kept, never a workflow step
    is_system: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())

    __table_args__ = (
        # id last: a case's events in (occurred_at, id) order straight from the index,
        # without a sort or a visit to the table (step_too_fast's pass over every event)
        Index("ix_events_case_time", "case_id", "occurred_at", "id"),
        Index("ix_events_actor_recorded", "actor", "recorded_at"),
        # online totals per department-month (fee_reconciliation): about one row in ten
        Index("ix_events_fee_paid", "department", "occurred_at", "channel", "amount",
              sqlite_where=text("step = 'fee_paid'"),
              postgresql_where=text("step = 'fee_paid'")),
        Index("ix_events_region_department", "region", "department"),
    )


class dated(FunctionElement):
    """``dated(occurred_at, recorded_at)``: the later of an event's two timestamps, from
    when a run as of then can see it. Indexed (``ix_events_dated``, this very expression),
    so the events dated after a moment are a range of that index, not a scan."""

    type = UTCDateTime()
    inherit_cache = True
    name = "dated"


@compiles(dated, "sqlite")
def _dated_sqlite(element, compiler, **kw):
    occurred, recorded = (compiler.process(c, **kw) for c in element.clauses)
    return f"max({occurred}, coalesce({recorded}, {occurred}))"


@compiles(dated, "postgresql")
def _dated_pg(element, compiler, **kw):
    occurred, recorded = (compiler.process(c, **kw) for c in element.clauses)
    return f"GREATEST({occurred}, {recorded})"  # GREATEST skips a NULL


Index("ix_events_dated", dated(Event.__table__.c.occurred_at, Event.__table__.c.recorded_at))


class Receipt(Base):
    """What the treasury received from a department in a month (上缴财政的非税收入)."""

    __tablename__ = "receipts"
    # the county (GB/T 2260, monitor/regions.py; migration 0026); part of the key: two
    # counties' departments may share a code (migration 0033)
    region: Mapped[str] = mapped_column(String(6), primary_key=True)
    department: Mapped[str] = mapped_column(String(64), primary_key=True)
    period: Mapped[str] = mapped_column(String(7), primary_key=True)
    amount: Mapped[Decimal] = mapped_column(Money)
    run_id: Mapped[int | None] = mapped_column(ForeignKey("ingest_runs.id"))
    # the largest events.id when the row was last written: a rule run that stopped at or
    # below it may not have seen this figure (fee_reconciliation re-checks it)
    event_mark: Mapped[int | None] = mapped_column(BigId)


class Quarantine(Base):
    """A row set aside with its source, line and reason; retried after a catalog fix."""

    __tablename__ = "quarantine"
    # the county (GB/T 2260, monitor/regions.py; migration 0026)
    region: Mapped[str] = mapped_column(String(6))
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    source: Mapped[str] = mapped_column(String(1000))
    line: Mapped[int] = mapped_column(Integer)
    raw: Mapped[str] = mapped_column(Text)
    raw_hash: Mapped[str] = mapped_column(String(32))
    reason: Mapped[str] = mapped_column(String(32), index=True)
    detail: Mapped[str] = mapped_column(Text)
    run_id: Mapped[int | None] = mapped_column(ForeignKey("ingest_runs.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    resolution: Mapped[str | None] = mapped_column(String(16))

    __table_args__ = (UniqueConstraint("kind", "source", "line", "raw_hash",
                                       name="uq_quarantine_row"),)


class Alert(Base):
    """A finding of a rule, kept once per (rule, subject): re-running never duplicates."""

    __tablename__ = "alerts"
    # the county (GB/T 2260, monitor/regions.py; migration 0026)
    region: Mapped[str] = mapped_column(String(6))
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    # unique per region (migration 0033): a department-month's finding has the same rule
    # and subject in two counties that share the department's code
    dedupe_key: Mapped[str] = mapped_column(String(300))
    rule_id: Mapped[str] = mapped_column(String(128), index=True)
    kind: Mapped[str] = mapped_column(String(32))
    subject: Mapped[str] = mapped_column(String(200))
    level: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16), default="open")
    tier: Mapped[int] = mapped_column(Integer, default=1)
    action: Mapped[str] = mapped_column(String(16), default="alert")
    case_id: Mapped[str | None] = mapped_column(String(128), index=True)
    case_ids: Mapped[list[str]] = mapped_column(JSON, default=list)
    actor: Mapped[str | None] = mapped_column(String(64))
    department: Mapped[str | None] = mapped_column(String(64), index=True)
    item_code: Mapped[str | None] = mapped_column(String(64))
    period: Mapped[str | None] = mapped_column(String(7))
    raised_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    message: Mapped[str] = mapped_column(Text)
    # the finding's title: the rule's, or the kind's variant for it (a fee finding on a
    # fine: 罚没款…); NULL on alerts raised before migration 0023 until found again
    title: Mapped[str | None] = mapped_column(String(200))
    evidence: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    event_ids: Mapped[list[str]] = mapped_column(JSON, default=list)
    rule_version: Mapped[str] = mapped_column(String(16))
    # two-tier supervision (monitor/supervision.py): who must act, by when, and how it ended
    assigned_to: Mapped[list[str]] = mapped_column(JSON, default=list)
    due_on: Mapped[date | None] = mapped_column(Date)  # local date; overdue the day after
    acknowledged_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    disposition: Mapped[str | None] = mapped_column(String(16))
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    escalated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    reminded_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # set while the alert is suppressed (status "suppressed") by an exemption (monitor/exemptions.py)
    exemption_id: Mapped[int | None] = mapped_column(Integer)

    __table_args__ = (  # covering the web board, queues and trend (migration 0011)
        Index("ix_alerts_status_board", "status", "tier", "department", "level", "rule_id",
              "due_on"),
        Index("ix_alerts_department_board", "department", "status", "tier", "level",
              "rule_id", "due_on"),
        Index("ix_alerts_raised_at", "raised_at", "department", "status"),
        # a city's or province's board and report filter by region first (migration 0026)
        Index("ix_alerts_region_board", "region", "department", "status"),
        Index("ix_alerts_region_raised", "region", "raised_at"),
        # the key first: storing findings looks alerts up by key (migration 0033)
        UniqueConstraint("dedupe_key", "region", name="uq_alerts_dedupe_key_region"),
    )


class Disposition(Base):
    """What a monitor recorded when resolving an alert (整改 / 说明 / 误报), and, for an
    escalated alert, tier 2's verdict on it. A rejected disposition stays; a new one follows."""

    __tablename__ = "dispositions"
    # the alert's region (migration 0026)
    region: Mapped[str] = mapped_column(String(6))
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    alert_id: Mapped[int] = mapped_column(BigId, ForeignKey("alerts.id"), index=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    by_user: Mapped[str] = mapped_column(String(64))
    tier: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(16))
    note: Mapped[str] = mapped_column(Text)
    verdict: Mapped[str | None] = mapped_column(String(16))  # confirmed | rejected
    reviewed_by: Mapped[str | None] = mapped_column(String(64))
    reviewed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class SupervisionOrder(Base):
    """A supervision order (督办) from tier 2 to the department's tier-1 monitors."""

    __tablename__ = "supervision_orders"
    # the alert's region (migration 0026)
    region: Mapped[str] = mapped_column(String(6))
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    alert_id: Mapped[int] = mapped_column(BigId, ForeignKey("alerts.id"), index=True)
    issued_at: Mapped[datetime] = mapped_column(UTCDateTime)
    issued_by: Mapped[str] = mapped_column(String(64))  # a monitor_l2 user, or "system"
    reason: Mapped[str] = mapped_column(String(16))     # escalated | rejected | manual
    to_users: Mapped[list[str]] = mapped_column(JSON, default=list)
    due_on: Mapped[date] = mapped_column(Date)
    note: Mapped[str | None] = mapped_column(Text)


class TrailEntry(Base):
    """The supervision trail (全留痕): append-only, each row carrying the hash of the one
    before it (monitor/trail.py). One chain per region (migration 0027): ``seq`` is
    assigned by the program, 1, 2, 3 … within the region."""

    __tablename__ = "trail"
    __table_args__ = (UniqueConstraint("region", "prev_hash", name="uq_trail_region_prev_hash"),)
    # the chain the entry is on: the region code (GB/T 2260) of the rows it is about
    region: Mapped[str] = mapped_column(String(6), primary_key=True)
    seq: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=False)
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    alert_id: Mapped[int | None] = mapped_column(BigId, index=True)
    action: Mapped[str] = mapped_column(String(32), index=True)  # migration 0015
    actor: Mapped[str] = mapped_column(String(64))
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))
    # how a person acted: web | api | cli (migration 0011); NULL for the program's own
    # entries and for every entry written before, whose hashes do not cover it
    channel: Mapped[str | None] = mapped_column(String(8))


class TrailHead(Base):
    """One row per region: the last entry of that region's chain. Every append locks and
    moves its region's row, so appends to one region are serialised and appends to two
    regions never wait on each other; deleting the newest entries does not go unnoticed."""

    __tablename__ = "trail_head"
    region: Mapped[str] = mapped_column(String(6), primary_key=True)
    seq: Mapped[int] = mapped_column(BigId)
    hash: Mapped[str] = mapped_column(String(64))
    # the chain's hash function: sha256 | sm3 (monitor/chainhash.py; migration 0015)
    algorithm: Mapped[str] = mapped_column(String(8), default="sha256",
                                           server_default="sha256")
    # the entry after which the trail accounts for every supervised row (a store older
    # than migration 0015 gets a baseline there: monitor/supervised.py); NULL: not yet
    state_since: Mapped[int | None] = mapped_column(BigId)
    # what entry 1 of this chain chains to (migration 0027): chainhash.genesis(algorithm,
    # region) for a chain begun per region, the unbound genesis for the store's own chain
    genesis: Mapped[str] = mapped_column(String(64))
    # the store's own chain (the deployment's region): where an entry naming no region goes
    home: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())


class Hold(Base):
    """A case stopped in the workflow (中止流程) by an alert of a ``action: halt`` rule,
    until a monitor releases it."""

    __tablename__ = "holds"
    # the alert's region (migration 0026)
    region: Mapped[str] = mapped_column(String(6))
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    case_id: Mapped[str] = mapped_column(String(128), index=True)
    alert_id: Mapped[int] = mapped_column(BigId, ForeignKey("alerts.id"))
    rule_id: Mapped[str] = mapped_column(String(128))
    department: Mapped[str | None] = mapped_column(String(64))
    held_at: Mapped[datetime] = mapped_column(UTCDateTime)
    status: Mapped[str] = mapped_column(String(16), default="held")  # held | released
    released_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    released_by: Mapped[str | None] = mapped_column(String(64))
    release_note: Mapped[str | None] = mapped_column(Text)
    # the workflow system's confirmation (monitor/holdsync.py): pending until acked
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # last sent to it
    sends: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    acked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    acked_by: Mapped[str | None] = mapped_column(String(64))
    ack_note: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (UniqueConstraint("alert_id", "case_id", name="uq_holds_alert_case"),)


class GateLog(Base):
    """One answer of the workflow gate (monitor/gate.py): who asked about which candidate
    event, the decision, its reasons and the versions of the rules consulted."""

    __tablename__ = "gate_log"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    asked_by: Mapped[str] = mapped_column(String(64))
    channel: Mapped[str] = mapped_column(String(16))  # api | cli
    case_id: Mapped[str | None] = mapped_column(String(128), index=True)
    event_id: Mapped[str | None] = mapped_column(String(128), index=True)
    step: Mapped[str | None] = mapped_column(String(64))
    candidate: Mapped[dict[str, Any]] = mapped_column(JSON)
    decision: Mapped[str] = mapped_column(String(8))  # allow | warn | deny
    reasons: Mapped[list[Any]] = mapped_column(JSON, default=list)
    rule_versions: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    degraded: Mapped[bool] = mapped_column(Boolean, default=False)
    elapsed_ms: Mapped[int | None] = mapped_column(Integer)


class OutboxMessage(Base):
    """A notification written in the same transaction as the state change it reports, then
    delivered by ``notify flush`` (monitor/outbox.py); failures are retried with backoff."""

    __tablename__ = "outbox"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    alert_id: Mapped[int | None] = mapped_column(BigId, index=True)
    recipient: Mapped[str] = mapped_column(String(64))   # catalog user id
    channel: Mapped[str] = mapped_column(String(16))     # sms | email | log …
    address: Mapped[str | None] = mapped_column(String(200))  # phone number, e-mail
    subject: Mapped[str] = mapped_column(String(32))     # raised | escalated | order | reminder …
    text: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), default="pending", index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_error: Mapped[str | None] = mapped_column(Text)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    sink: Mapped[str | None] = mapped_column(String(32))


class AlertNotice(Base):
    """One tier-1 notice: an alert at a level told to one person (monitor/tier1.py); the
    key (alert, level, recipient) makes telling idempotent."""

    __tablename__ = "alert_notices"
    # the alert's region (migration 0026)
    region: Mapped[str] = mapped_column(String(6))
    __table_args__ = (Index("ix_alert_notices_digest", "mode", "digested_at"),)
    alert_id: Mapped[int] = mapped_column(BigId, ForeignKey("alerts.id"), primary_key=True)
    level: Mapped[str] = mapped_column(String(16), primary_key=True)
    recipient: Mapped[str] = mapped_column(String(64), primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    reason: Mapped[str] = mapped_column(String(16))     # raised | rose | reopened
    mode: Mapped[str] = mapped_column(String(16))       # immediate | held | digest
    outbox_id: Mapped[int | None] = mapped_column(BigId)
    digested_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class AlertChange(Base):
    """Every change of an alert's level after it was raised (warning → yellow → red)."""

    __tablename__ = "alert_changes"
    # the alert's region (migration 0026)
    region: Mapped[str] = mapped_column(String(6))
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    alert_id: Mapped[int] = mapped_column(BigId, ForeignKey("alerts.id"), index=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    old_level: Mapped[str] = mapped_column(String(16))
    new_level: Mapped[str] = mapped_column(String(16))
    rule_version: Mapped[str] = mapped_column(String(16))


class RuleState(Base):
    """Where each rule's last successful evaluation stopped: the incremental watermark."""

    __tablename__ = "rule_state"
    rule_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    rule_version: Mapped[str] = mapped_column(String(16))
    last_event_id: Mapped[int] = mapped_column(BigId)
    as_of: Mapped[datetime] = mapped_column(UTCDateTime)
    evaluated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # a periodic kind's note of what it last judged (``mark``, monitor/rules/kinds; 0030)
    mark: Mapped[str | None] = mapped_column(String(200))


class OpenCase(Base):
    """The cases a time-based rule saw open as of its last run — ``overdue``: accepted,
    neither decided nor completed; ``data_quality``: accepted, not ended, not yet stale —
    what it must look at again when the date moves, kept with its watermark so that the
    next run need not scan the history to find them."""

    __tablename__ = "open_cases"
    rule_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    case_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    # the first local date its finding may change by time alone, and a digest of what
    # that was computed under (monitor/rules/kinds/_overdue_open.py; 0032): NULL, every date
    due_on: Mapped[date | None] = mapped_column(Date)
    basis: Mapped[str | None] = mapped_column(String(32))


class Exemption(Base):
    """An approved exemption of some findings of one rule (monitor/exemptions.py): findings
    in its scope are recorded as suppressed alerts until ``until`` (a local date, inclusive)
    or until it is revoked. Never deleted: revoking keeps the row and says who and why."""

    __tablename__ = "exemptions"
    # the county (GB/T 2260, monitor/regions.py; migration 0026)
    region: Mapped[str] = mapped_column(String(6))
    id: Mapped[int] = mapped_column(primary_key=True)
    rule_id: Mapped[str] = mapped_column(String(128), index=True)
    scope: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    reason: Mapped[str] = mapped_column(Text)
    approved_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    until: Mapped[date] = mapped_column(Date)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoked_by: Mapped[str | None] = mapped_column(String(64))
    revoke_reason: Mapped[str | None] = mapped_column(Text)


class Activity(Base):
    """The monitoring log (监察日志): a user's login, logout or handling action."""

    __tablename__ = "activity"
    # the county (GB/T 2260, monitor/regions.py; migration 0026)
    region: Mapped[str] = mapped_column(String(6))
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    user_id: Mapped[str] = mapped_column(String(64))
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    # login | logout | handle | view (a page of the web UI) | login_failed
    action: Mapped[str] = mapped_column(String(16))
    run_id: Mapped[int | None] = mapped_column(ForeignKey("ingest_runs.id"))
    source_line: Mapped[int | None] = mapped_column(Integer)

    __table_args__ = (UniqueConstraint("user_id", "at", "action",
                                       name="uq_activity_user_at_action"),
                      Index("ix_activity_at", "at"))


class SpotCheck(Base):
    """A completed case drawn for manual review (抽检), and its result once recorded."""

    __tablename__ = "spot_checks"
    # the county (GB/T 2260, monitor/regions.py; migration 0026)
    region: Mapped[str] = mapped_column(String(6))
    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[str] = mapped_column(String(128))
    department: Mapped[str | None] = mapped_column(String(64))
    item_code: Mapped[str | None] = mapped_column(String(64))
    completed_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    period: Mapped[str] = mapped_column(String(32))  # the sample's period, as given
    seed: Mapped[str] = mapped_column(String(64))
    drawn_at: Mapped[datetime] = mapped_column(UTCDateTime)
    result: Mapped[str | None] = mapped_column(String(8))  # pass | fail
    by_user: Mapped[str | None] = mapped_column(String(64))
    note: Mapped[str | None] = mapped_column(Text)
    recorded_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    __table_args__ = (UniqueConstraint("case_id", name="uq_spot_checks_case"),)


class Lease(Base):
    """A named lock with an expiry (monitor/lease.py): one runner at a time, on any backend;
    a holder that dies stops renewing it and it expires."""

    __tablename__ = "leases"
    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    holder: Mapped[str] = mapped_column(String(200))  # host:boot:pidns:pid:nonce
    acquired_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # fencing token: raised at each change of hands, checked at every audit commit
    token: Mapped[int] = mapped_column(BigInteger, server_default="0", default=0)


class Run(Base):
    """One run of a job (nightly, evaluate, inbox …), by cron, the daemon or by hand;
    a missed scheduled run is recorded too (status ``missed``)."""

    __tablename__ = "runs"
    id: Mapped[int] = mapped_column(primary_key=True)
    job: Mapped[str] = mapped_column(String(32))
    trigger: Mapped[str] = mapped_column(String(16))  # cron | serve | manual
    scheduled_for: Mapped[datetime | None] = mapped_column(UTCDateTime)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    status: Mapped[str] = mapped_column(String(16), index=True)  # running|ok|failed|missed|interrupted
    counts: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    error: Mapped[str | None] = mapped_column(Text)
    holder: Mapped[str | None] = mapped_column(String(200))


class SourceWatermark(Base):
    """How far ``ingest pull`` has read each source database (the watermark column's last
    value, as text)."""

    __tablename__ = "source_watermarks"
    source: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Account(Base):
    """A catalog user's sign-in: an argon2id password hash and the lockout counter
    (monitor/accounts.py). A user without a row has no password and cannot log in."""

    __tablename__ = "accounts"
    user_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    password_hash: Mapped[str] = mapped_column(Text)
    must_change: Mapped[bool] = mapped_column(Boolean, default=True)
    password_set_at: Mapped[datetime] = mapped_column(UTCDateTime)
    failed_logins: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_login_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class WebSession(Base):
    """A signed-in browser: the cookie holds a random token, the table its SHA-256 (a
    stolen table cannot be replayed), the CSRF token of its forms and when it was last
    used (the idle timeout)."""

    __tablename__ = "web_sessions"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)  # sha256 of the cookie
    user_id: Mapped[str] = mapped_column(String(64), index=True)
    csrf: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class ApiToken(Base):
    """A bearer token for the API, stored as its SHA-256 and shown once: personal (acts
    as ``user_id``) or a machine's (``service`` with a read ``scope``)."""

    __tablename__ = "api_tokens"
    id: Mapped[int] = mapped_column(primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(16))  # the first characters, to recognise it
    user_id: Mapped[str | None] = mapped_column(String(64))
    service: Mapped[str | None] = mapped_column(String(64))
    scope: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class Grant(Base):
    """Powers a catalog load asked for and did not get at once (monitor/grants.py): a user
    made tier 2 (``monitor_l2``) or a monitor moved to another department waits here until
    an existing tier-2 monitor approves or rejects it."""

    __tablename__ = "grants"
    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[str] = mapped_column(String(64), index=True)
    kind: Mapped[str] = mapped_column(String(16))         # tier2 | move | tier2+move
    roles: Mapped[list[str]] = mapped_column(JSON, default=list)   # asked for
    department: Mapped[str | None] = mapped_column(String(64))     # asked for
    was: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # roles, department before
    source: Mapped[str] = mapped_column(String(1000))
    requested_at: Mapped[datetime] = mapped_column(UTCDateTime)
    requested_by: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16), default="pending", index=True)
    decided_by: Mapped[str | None] = mapped_column(String(64))
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    note: Mapped[str | None] = mapped_column(Text)


class Rating(Base):
    """A citizen's rating of a case (好差评, GB/T 39734-2020): 1 非常不满意 … 5 非常满意.

    A department may appeal a 差评 (申诉); tier 2 upholds it or voids it — a voided rating
    counts nowhere (findings, report, scores). See monitor/voice.py.
    """

    __tablename__ = "ratings"
    # the county (GB/T 2260, monitor/regions.py; migration 0026)
    region: Mapped[str] = mapped_column(String(6))
    rating_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    case_id: Mapped[str | None] = mapped_column(String(128), index=True)
    item_code: Mapped[str | None] = mapped_column(String(64))
    department: Mapped[str] = mapped_column(String(64))
    rated_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    channel: Mapped[str | None] = mapped_column(String(32))
    score: Mapped[int] = mapped_column(Integer)
    tags: Mapped[list[str]] = mapped_column(JSON, default=list)
    text: Mapped[str | None] = mapped_column(Text)
    run_id: Mapped[int | None] = mapped_column(ForeignKey("ingest_runs.id"))
    source_line: Mapped[int | None] = mapped_column(Integer)
    # the appeal (申诉复核): pending | upheld (the rating stands) | voided
    appeal: Mapped[str | None] = mapped_column(String(16))
    appeal_reason: Mapped[str | None] = mapped_column(Text)
    appealed_by: Mapped[str | None] = mapped_column(String(64))
    appealed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    decided_by: Mapped[str | None] = mapped_column(String(64))
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    __table_args__ = (Index("ix_ratings_department_rated", "department", "rated_at"),)


class Complaint(Base):
    """An efficiency complaint (效能投诉: 12345, 窗口, 信访 …), handled 受理 → 调查 → 处置 →
    反馈 (GB/T 36113-2018); each stage's time is recorded as it is reached."""

    __tablename__ = "complaints"
    # the county (GB/T 2260, monitor/regions.py; migration 0026)
    region: Mapped[str] = mapped_column(String(6))
    complaint_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    channel: Mapped[str | None] = mapped_column(String(32))
    department: Mapped[str] = mapped_column(String(64))
    case_id: Mapped[str | None] = mapped_column(String(128), index=True)
    category: Mapped[str | None] = mapped_column(String(64))
    text: Mapped[str | None] = mapped_column(Text)
    run_id: Mapped[int | None] = mapped_column(ForeignKey("ingest_runs.id"))
    source_line: Mapped[int | None] = mapped_column(Integer)
    # stages after receipt, as the department records them (permit-monitor complaints advance)
    accepted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    investigated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    handled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    answered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class RegionName(Base):
    """The name of an administrative division code (GB/T 2260): ``330106`` → 西湖区, and
    the code one level up (None for a province). A reference table: ``regions load``
    fills it (monitor/regionnames.py); an unknown code is shown bare."""

    __tablename__ = "regions"
    code: Mapped[str] = mapped_column(String(6), primary_key=True)
    name: Mapped[str] = mapped_column(Text)
    parent: Mapped[str | None] = mapped_column(String(6), nullable=True)


class Meta(Base):
    """Facts about the store itself, key → text (monitor/meta.py): ``audit_as_of``."""

    __tablename__ = "meta"
    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(Text)
