"""Rows as JSON-ready records, for the ``--format json|csv`` of every list command.

A row is a SQLAlchemy row or a dataclass; its fields keep their names, datetimes and dates
become ISO 8601 (datetimes in UTC, as stored), money stays exact as text. Secrets never
leave: a field named in :data:`NEVER` (a token's hash, a password hash) is dropped.
"""

from __future__ import annotations

import dataclasses
from datetime import date, datetime
from decimal import Decimal
from typing import Any

NEVER = frozenset({"token_hash", "password_hash", "secret"})


def _value(value: Any) -> Any:
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    return value


def record(row: Any) -> dict[str, Any]:
    """``row``'s fields, JSON-ready, secrets left out."""
    if dataclasses.is_dataclass(row) and not isinstance(row, type):
        fields = {f.name: getattr(row, f.name) for f in dataclasses.fields(row)}
    elif hasattr(row, "_mapping"):  # a Core row (select(Model) on a connection: its columns)
        fields = dict(row._mapping)
    else:
        fields = dict(row)
    return {k: _value(v) for k, v in fields.items() if k not in NEVER}
