"""The registry of rule kinds: one module each, chosen by name from this table only.

Every kind module declares ``TITLE``, ``DEFAULT_MESSAGE``, ``FIELDS`` (what a message may
use, besides :data:`COMMON_FIELDS`), a frozen ``Params`` dataclass with typed defaults,
and ``detect(conn, rule, ctx) -> Iterator[Finding]``: set-based SQL over the store.
"""

from __future__ import annotations

from . import case_too_fast, late_entry, same_actor_roles, step_too_fast
from . import fee_reconciliation, fee_waiver, unpaid_fee
from . import batch_entry, missing_attachment
from . import overdue
from . import inactive_monitor

KINDS = {
    "step_too_fast": step_too_fast,
    "late_entry": late_entry,
    "case_too_fast": case_too_fast,
    "same_actor_roles": same_actor_roles,
    "unpaid_fee": unpaid_fee,
    "fee_waiver": fee_waiver,
    "fee_reconciliation": fee_reconciliation,
    "batch_entry": batch_entry,
    "missing_attachment": missing_attachment,
    "overdue": overdue,
    "inactive_monitor": inactive_monitor,
}

COMMON_FIELDS = ("case_id", "actor", "department", "item_code", "period", "level",
                 "rule_id", "title")
