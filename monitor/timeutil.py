"""Parsing the timestamps and amounts of the input contract."""

from __future__ import annotations

from datetime import datetime, timezone, tzinfo
from decimal import Decimal, InvalidOperation


MAX_AMOUNT = Decimal(10) ** 15  # yuan; integer fen must fit a 64-bit column


def aware(value) -> datetime:
    """A stored UTC timestamp as an aware datetime: window functions and some drivers give
    it back as naive UTC (text, on SQLite)."""
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)


class ValueProblem(ValueError):
    """A field value that does not fit the contract; the message says why."""


def parse_timestamp(text: str, tz: tzinfo) -> datetime:
    """ISO 8601 with offset, ``Z`` or naive (= ``tz``), ``T`` or space → aware UTC."""
    text = text.strip()
    if len(text) < 16 or text[10] not in "T t":
        raise ValueProblem(f"'{text}' is not a date and time (e.g. 2025-09-30T10:00:00+08:00)")
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise ValueProblem(f"'{text}' is not an ISO 8601 date and time") from None
    if value.tzinfo is None:
        value = value.replace(tzinfo=tz)
    return value.astimezone(timezone.utc)


def parse_amount(text: str) -> Decimal:
    """A non-negative yuan amount with at most two decimals, as ``Decimal``."""
    try:
        value = Decimal(text.strip().replace(",", ""))
    except InvalidOperation:
        raise ValueProblem(f"'{text}' is not a number") from None
    if not value.is_finite():
        raise ValueProblem(f"'{text}' is not a finite amount")
    if value < 0:
        raise ValueProblem(f"{text} is negative")
    if value >= MAX_AMOUNT:
        raise ValueProblem(f"{text} is too large (at most {MAX_AMOUNT - 1} yuan)")
    if value != value.quantize(Decimal("0.01")):
        raise ValueProblem(f"{text} has more than two decimals (fen)")
    return value
