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
    try:
        return value.astimezone(timezone.utc)
    except OverflowError:  # 0001-01-01T00:00+08:00 is before the first UTC moment
        raise ValueProblem(f"'{text}' is out of range") from None


# amount format → (thousands separators, decimal mark); the formats are limits.amount_format's
_MARKS = {"1,234.56": (",", "."), "1.234,56": (".", ","), "1 234,56": (" \u00a0\u202f", ","),
          "none": ("", ".")}


def _plain_number(text: str, fmt: str) -> str:
    """``text`` without thousands separators, with a dot for decimals; a separator out of
    place ('1,0,0', '12,34.5') or not allowed by ``fmt`` is refused, never guessed."""
    groups, point = _MARKS[fmt]
    seps = [c for c in ",. \u00a0\u202f" if c in text and c != point]
    if any(c not in groups for c in seps) or len(set(seps)) > 1:
        raise ValueProblem(f"'{text}' does not follow the amount format {fmt!r} "
                           "(limits.amount_format)")
    whole, _, decimals = text.partition(point)
    if seps:
        parts = whole.lstrip("+-").split(seps[0])
        if not (1 <= len(parts[0]) <= 3 and all(len(p) == 3 for p in parts[1:])):
            raise ValueProblem(f"'{text}' has thousands separators out of place "
                               f"(amount format {fmt!r}, limits.amount_format)")
        whole = whole.replace(seps[0], "")
    return f"{whole}.{decimals}" if point in text else whole


def parse_amount(text: str, fmt: str = "1,234.56") -> Decimal:
    """A non-negative yuan amount with at most two decimals, as ``Decimal``; thousands
    separators as ``fmt`` (limits.amount_format) has them."""
    try:
        value = Decimal(_plain_number(text.strip(), fmt))
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
