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
    """What validation needs from the catalog: item → department, the known departments,
    and the county (region) each item and department belongs to — read once per run, so
    validating a row asks the database nothing."""

    item_department: dict[str, str]
    departments: frozenset[str]
    item_region: dict[str, str] = field(default_factory=dict)
    department_region: dict[str, str] = field(default_factory=dict)
    # every region the catalog holds: a run of the only one checks nothing further
    regions: frozenset[str] = frozenset()

    @classmethod
    def load(cls, conn: Connection) -> "CatalogIndex":
        items = conn.execute(select(Item.code, Item.department, Item.region)).all()
        departments = dict(conn.execute(select(Department.code, Department.region))
                           .tuples().all())
        item_region = {code: region for code, _, region in items}
        return cls({code: dept for code, dept, _ in items}, frozenset(departments),
                   item_region, departments,
                   frozenset(item_region.values()) | frozenset(departments.values()))

    def mixes(self, region: str | None) -> bool:
        """Whether a run of ``region`` must check each row's county: the catalog holds
        another county's items or departments."""
        return region is not None and bool(self.regions - {region})


def _other_region(catalog: CatalogIndex, item_code: str, department: str, region: str) -> None:
    """Refuse a row whose item (or else department) belongs to another county than the
    run's, naming both."""
    for what, code, theirs in (("事项", item_code, catalog.item_region.get(item_code)),
                               ("部门", department, catalog.department_region.get(department))):
        if theirs is not None and theirs != region:
            raise Rejected("other_region",
                           f"{what} '{code}' 属于地区 {theirs} 的目录，本次导入的地区是 "
                           f"{region}（是否应以 --region {theirs} 导入？）")


def content_hash(values: tuple) -> str:
    """Digest of a row's values in column order: an identical row is a duplicate, a changed
    one a conflict. Stored hashes depend on it: never change what it computes."""
    text = "\x1f".join(["" if v is None else str(v) for v in values])
    return hashlib.blake2b(text.encode(), digest_size=16).hexdigest()


def normalize_event(fields: dict[str, Any], catalog: CatalogIndex, tz: tzinfo,
                    amount_format: str = "1,234.56", region: str | None = None
                    ) -> dict[str, Any]:
    """Validate one row; return the column values to store (money in fen, times in UTC);
    ``amount_format``: limits.amount_format. ``region``: the run's county, given only where
    the catalog holds other counties too (:meth:`CatalogIndex.mixes`): an item or
    department of another county is refused.

    This runs once per ingested row, so each field is read and stripped once; the checks
    and their order (which decides the reason a bad row gets) are the contract.
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
    department = (get("department") or "").strip() or None
    item_department = catalog.item_department.get(item_code)
    if item_department is None:
        raise Rejected("unknown_item", f"item_code '{item_code}' is not in the catalog")
    if department is None:
        department = item_department
    elif department not in catalog.departments:
        raise Rejected("unknown_department", f"department '{department}' is not in the catalog")
    if region is not None and (catalog.item_region.get(item_code, region) != region
                               or catalog.department_region.get(department, region) != region):
        _other_region(catalog, item_code, department, region)
    try:
        occurred = parse_timestamp(occurred_text, tz)
    except ValueProblem as exc:
        raise Rejected("bad_timestamp", f"occurred_at: {exc}") from None
    recorded = (get("recorded_at") or "").strip() or None
    if recorded is not None:
        try:
            recorded = parse_timestamp(recorded, tz)
        except ValueProblem as exc:
            raise Rejected("bad_timestamp", f"recorded_at: {exc}") from None
    amount = (get("amount") or "").strip() or None
    if amount is not None:
        try:
            amount = parse_amount(amount, amount_format)
        except ValueProblem as exc:
            raise Rejected("bad_amount", f"amount: {exc}") from None
    channel = (get("channel") or "").strip() or None
    if channel is not None:
        channel = channel.lower()
        if channel not in CHANNELS:
            raise Rejected("bad_channel", f"channel must be online, offline or unknown, got '{channel}'")
    days = (get("days") or "").strip() or None
    if days is not None:
        if not days.isdigit():
            raise Rejected("bad_days", f"days must be a whole number of working days, got '{days}'")
        days = int(days)
    attachments = (get("attachments") or "").strip() or None
    if attachments is not None:
        attachments = ";".join(a.strip() for a in attachments.split(";") if a.strip()) or None
    actor = (get("actor") or "").strip() or None
    note = (get("note") or "").strip() or None
    if len(event_id) > 128 or len(case_id) > 128:
        raise Rejected("too_long", "event_id and case_id may have at most 128 characters")
    if max(len(step), len(item_code), len(department), len(actor or "")) > 64:
        raise Rejected("too_long", "step, item_code, department and actor may have at most "
                                   "64 characters")
    precision = (get("precision") or "").strip().lower() or "second"
    if precision not in PRECISIONS:
        raise Rejected("bad_precision", f"precision must be one of {', '.join(PRECISIONS)}, "
                                        f"got '{precision}'")
    system = (get("system") or "").strip().lower() in TRUE
    row = {
        "event_id": event_id, "case_id": case_id, "item_code": item_code,
        "department": department, "step": step, "actor": actor,
        "occurred_at": occurred, "recorded_at": recorded,
        "amount": amount,
        "channel": channel, "attachments": attachments, "days": days, "note": note,
    }
    values = tuple(row.values())
    # what the contract had before precision and system hashes as it did (stored hashes)
    if precision != "second" or system:
        values += (precision, system)
    row["content_hash"] = content_hash(values)
    row["time_precision"] = None if precision == "second" else precision
    row["is_system"] = system
    return row
