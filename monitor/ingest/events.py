"""The event contract: one source row → one validated event, or a reason to quarantine it.

Columns (``*`` required): event_id*, case_id*, item_code*, department, step*, actor,
occurred_at*, recorded_at, amount, channel, attachments, days, note, precision, system.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import tzinfo
from typing import Any

from sqlalchemy import Connection, select

from ..models import Department, Item
from ..timeutil import ValueProblem, parse_amount, parse_timestamp

REQUIRED = ("event_id", "case_id", "item_code", "step", "occurred_at")
COLUMNS = ("event_id", "case_id", "item_code", "department", "step", "actor", "occurred_at",
           "recorded_at", "amount", "channel", "attachments", "days", "note")
CHANNELS = ("online", "offline", "unknown")
# precision of occurred_at: the finest unit it was written in (second: the default)
PRECISIONS = ("second", "minute", "hour", "day")
TRUE = ("true", "1", "yes", "y", "是")


class Rejected(Exception):
    """The row breaks the contract: ``reason`` is a short code, ``detail`` a sentence."""

    def __init__(self, reason: str, detail: str):
        super().__init__(detail)
        self.reason, self.detail = reason, detail


@dataclass(frozen=True)
class CatalogIndex:
    """What validation needs from the catalog of the run's county (``region``): its items
    → their department, its departments, and, for a code that county's catalog lacks, the
    other county whose catalog has it — read once per run, so validating a row asks the
    database nothing. Each county has its own catalog under the same codes (migration
    0029): a row is judged by its run's county's catalog only."""

    item_department: dict[str, str]
    departments: frozenset[str]
    # codes only other counties' catalogs hold → one such county (the lowest code)
    item_region: dict[str, str] = field(default_factory=dict)
    department_region: dict[str, str] = field(default_factory=dict)
    region: str | None = None

    @classmethod
    def load(cls, conn: Connection, region: str) -> "CatalogIndex":
        """``region``'s catalog, and where the codes it lacks are."""
        return cls.of(catalog_rows(conn), region)

    @classmethod
    def of(cls, rows: "CatalogRows", region: str) -> "CatalogIndex":
        """``region``'s catalog out of every county's rows (:func:`catalog_rows`)."""
        item_rows, department_rows = rows
        items: dict[str, str] = {}
        item_region: dict[str, str] = {}
        for code, dept, theirs in item_rows:
            if theirs == region:
                items[code] = dept
            else:
                item_region[code] = theirs
        departments: set[str] = set()
        department_region: dict[str, str] = {}
        for code, theirs in department_rows:
            if theirs == region:
                departments.add(code)
            else:
                department_region[code] = theirs
        return cls(items, frozenset(departments),
                   {c: r for c, r in item_region.items() if c not in items},
                   {c: r for c, r in department_region.items() if c not in departments},
                   region)


CatalogRows = tuple[list[tuple[str, str, str]], list[tuple[str, str]]]


def catalog_rows(conn: Connection) -> CatalogRows:
    """Every county's items (code, department, region) and departments (code, region),
    highest region first (so a code several other counties hold names the lowest)."""
    return (list(conn.execute(select(Item.code, Item.department, Item.region)
                              .order_by(Item.region.desc())).tuples()),
            list(conn.execute(select(Department.code, Department.region)
                              .order_by(Department.region.desc())).tuples()))


def _other_region(catalog: CatalogIndex, what: str, code: str, theirs: str) -> Rejected:
    """A row whose item (or department) only another county's catalog has, naming both."""
    return Rejected("other_region",
                    f"{what} '{code}' 属于地区 {theirs} 的目录，本次导入的地区是 "
                    f"{catalog.region}（是否应以 --region {theirs} 导入？）")


class Codes(frozenset):
    """One county's codes of one catalog table (its departments, or its users' ids), and
    for a code it lacks, another county that has it: what receipts, activity, ratings and
    complaints are checked against. A plain frozenset works too (no other county)."""

    elsewhere: dict[str, str]
    region: str | None

    @classmethod
    def load(cls, conn: Connection, column: Any, region: str) -> "Codes":
        """The codes in ``column`` (``Department.code``, ``User.id``) of ``region``."""
        mine: set[str] = set()
        elsewhere: dict[str, str] = {}
        for code, theirs in conn.execute(select(column, column.class_.region)
                                         .order_by(column.class_.region.desc())):
            if theirs == region:
                mine.add(code)
            else:
                elsewhere[code] = theirs
        codes = cls(mine)
        codes.elsewhere = {c: r for c, r in elsewhere.items() if c not in mine}
        codes.region = region
        return codes


def refuse(codes: frozenset[str], what: str, code: str, reason: str, detail: str) -> Rejected:
    """Why ``code`` is not among ``codes``: another county's (``other_region``), or
    ``reason`` with ``detail``."""
    theirs = getattr(codes, "elsewhere", {}).get(code)
    if theirs is None:
        return Rejected(reason, detail)
    return Rejected("other_region", f"{what} '{code}' 属于地区 {theirs} 的目录，本次导入的地区是 "
                                    f"{getattr(codes, 'region', None)}（是否应以 --region "
                                    f"{theirs} 导入？）")


def content_hash(values: tuple) -> str:
    """Digest of a row's values in column order: an identical row is a duplicate, a changed
    one a conflict. Stored hashes depend on it: never change what it computes."""
    text = "\x1f".join(["" if v is None else str(v) for v in values])
    return hashlib.blake2b(text.encode(), digest_size=16).hexdigest()


# The contract's output, in this order: :func:`event_values` gives the values,
# :func:`normalize_event` the same as a dict of these names
ROW = ("event_id", "case_id", "item_code", "department", "step", "actor", "occurred_at",
       "recorded_at", "amount", "channel", "attachments", "days", "note", "content_hash",
       "time_precision", "is_system")


def normalize_event(fields: dict[str, Any], catalog: CatalogIndex, tz: tzinfo,
                    amount_format: str = "1,234.56") -> dict[str, Any]:
    """Validate one row against its county's catalog; return the column values to store
    (money in fen, times in UTC); ``amount_format``: limits.amount_format. An item or
    department only another county's catalog has is refused as ``other_region``."""
    return dict(zip(ROW, event_values(fields, catalog, tz, amount_format)))


def event_values(fields: dict[str, Any], catalog: CatalogIndex, tz: tzinfo,
                 amount_format: str = "1,234.56") -> tuple:
    """:func:`normalize_event`'s values in :data:`ROW` order, as a tuple: the ingestion
    binds them for the store as they are (:func:`monitor.ingest.store.values_binder`),
    without a dict per row.

    This runs once per ingested row, so each field is read and stripped once (an absent
    or empty optional field is not stripped at all); the checks and their order (which
    decides the reason a bad row gets) are the contract.
    """
    get = fields.get
    event_id = (get("event_id") or "").strip()
    case_id = (get("case_id") or "").strip()
    item_code = (get("item_code") or "").strip()
    step = (get("step") or "").strip()
    occurred_text = (get("occurred_at") or "").strip()
    if not (event_id and case_id and item_code and step and occurred_text):
        given = (event_id, case_id, item_code, step, occurred_text)
        missing = [n for n, v in zip(REQUIRED, given) if not v]
        if missing == ["step"]:
            raise Rejected("empty_step", "step is empty")
        raise Rejected("missing_field", f"missing required field {', '.join(missing)}")
    department = get("department")
    department = department.strip() or None if department else None
    item_department = catalog.item_department.get(item_code)
    if item_department is None:
        if (theirs := catalog.item_region.get(item_code)) is not None:
            raise _other_region(catalog, "事项", item_code, theirs)
        raise Rejected("unknown_item", f"item_code '{item_code}' is not in the catalog")
    if department is None:
        department = item_department
    elif department not in catalog.departments:
        if (theirs := catalog.department_region.get(department)) is not None:
            raise _other_region(catalog, "部门", department, theirs)
        raise Rejected("unknown_department", f"department '{department}' is not in the catalog")
    try:
        occurred = parse_timestamp(occurred_text, tz)
    except ValueProblem as exc:
        raise Rejected("bad_timestamp", f"occurred_at: {exc}") from None
    recorded = get("recorded_at")
    if recorded and (recorded := recorded.strip()):
        try:
            recorded = parse_timestamp(recorded, tz)
        except ValueProblem as exc:
            raise Rejected("bad_timestamp", f"recorded_at: {exc}") from None
    else:
        recorded = None
    amount = get("amount")
    if amount and (amount := amount.strip()):
        try:
            amount = parse_amount(amount, amount_format)
        except ValueProblem as exc:
            raise Rejected("bad_amount", f"amount: {exc}") from None
    else:
        amount = None
    channel = get("channel")
    if channel and (channel := channel.strip()):
        channel = channel.lower()
        if channel not in CHANNELS:
            raise Rejected("bad_channel", f"channel must be online, offline or unknown, got '{channel}'")
    else:
        channel = None
    days = get("days")
    if days and (days := days.strip()):
        if not days.isdigit():
            raise Rejected("bad_days", f"days must be a whole number of working days, got '{days}'")
        days = int(days)
    else:
        days = None
    attachments = get("attachments")
    if attachments and (attachments := attachments.strip()):
        attachments = ";".join(a.strip() for a in attachments.split(";") if a.strip()) or None
    else:
        attachments = None
    actor = get("actor")
    actor = actor.strip() or None if actor else None
    note = get("note")
    note = note.strip() or None if note else None
    if len(event_id) > 128 or len(case_id) > 128:
        raise Rejected("too_long", "event_id and case_id may have at most 128 characters")
    if max(len(step), len(item_code), len(department), len(actor or "")) > 64:
        raise Rejected("too_long", "step, item_code, department and actor may have at most "
                                   "64 characters")
    precision = get("precision")
    precision = (precision.strip().lower() or "second") if precision else "second"
    if precision not in PRECISIONS:
        raise Rejected("bad_precision", f"precision must be one of {', '.join(PRECISIONS)}, "
                                        f"got '{precision}'")
    system = get("system")
    system = system.strip().lower() in TRUE if system else False
    values = (event_id, case_id, item_code, department, step, actor, occurred, recorded,
              amount, channel, attachments, days, note)
    # what the contract had before precision and system hashes as it did (stored hashes)
    if precision != "second" or system:
        return values + (content_hash(values + (precision, system)),
                         None if precision == "second" else precision, system)
    return values + (content_hash(values), None, False)
