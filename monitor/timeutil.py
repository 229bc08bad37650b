"""Parsing the timestamps and amounts of the input contract."""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta, timezone, tzinfo
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


EXCEL_EPOCH = datetime(1899, 12, 30)  # serial 1.0 is 1900-01-01 (Excel's 1900 date system)
# Serial numbers of 1950-01-01 … 2099-12-31: a bare number outside is not taken for a date.
EXCEL_SERIALS = (18264, 73051)
# How Excel shows dates in a Chinese locale and how it writes them to CSV.
_EXCEL_TEXT = re.compile(
    r"(\d{4})(?:[/-](\d{1,2})[/-](\d{1,2})|年(\d{1,2})月(\d{1,2})日)"
    r"(?:[ T]+(\d{1,2}):(\d{2})(?::(\d{2})(?:\.(\d{1,6}))?)?)?")
_SERIAL = re.compile(r"\d{5}(?:\.\d+)?")


def parse_timestamp(text: str, tz: tzinfo) -> datetime:
    """A moment → aware UTC: ISO 8601 with offset, ``Z`` or naive (= ``tz``), ``T`` or
    space; or as Excel writes it (:func:`excel_datetime`), with a time of day."""
    text = text.strip()
    iso_like = len(text) >= 16 and text[10] in "T t"
    if iso_like:
        try:
            value = datetime.fromisoformat(text)
        except ValueError:
            value = None
        if value is not None:
            if value.tzinfo is None:
                value = value.replace(tzinfo=tz)
            return _utc(value, text)
    try:
        value = excel_datetime(text, tz)
    except ValueProblem:
        if iso_like:
            raise ValueProblem(f"'{text}' is not an ISO 8601 date and time") from None
        raise ValueProblem(f"'{text}' is not a date and time (e.g. "
                           "2025-09-30T10:00:00+08:00 or 2025/9/30 10:00)") from None
    if _is_date_only(text):
        raise ValueProblem(f"'{text}' is a date without a time of day (e.g. 2025/9/30 10:00)")
    return value


def _is_date_only(text: str) -> bool:
    match = _EXCEL_TEXT.fullmatch(text)
    return match[6] is None if match else "." not in text


def excel_datetime(value: object, tz: tzinfo) -> datetime:
    """A date or moment as Excel gives it → aware UTC, read in ``tz`` (Excel has no zones).

    Accepts the text styles of a Chinese Excel (``2025/10/9 9:30``, ``2025/10/09``,
    ``2025-10-9 9:30:00``, ``2025年10月9日 9:30``; a date alone is its midnight), serial
    numbers (45939.395833, as text or a number; 1950–2099) and the ``datetime``/``date``
    values openpyxl reads from date cells. Rounded to the second (Excel's serials carry
    binary fractions). Anything else is a :class:`ValueProblem`."""
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, date):
        moment = datetime.combine(value, datetime.min.time())
    elif isinstance(value, (int, float, Decimal)) and not isinstance(value, bool):
        moment = _from_serial(Decimal(str(value)), str(value))
    elif isinstance(value, str):
        moment = _from_text(value.strip())
    else:
        raise ValueProblem(f"'{value}' is not a date and time")
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=tz)
    return _utc(whole_second(moment), str(value))


def _utc(moment: datetime, shown: str) -> datetime:
    try:
        return moment.astimezone(timezone.utc)
    except OverflowError:  # 0001-01-01T00:00+08:00 is before the first UTC moment
        raise ValueProblem(f"'{shown}' is out of range") from None


def _from_text(text: str) -> datetime:
    if _SERIAL.fullmatch(text):
        return _from_serial(Decimal(text), text)
    match = _EXCEL_TEXT.fullmatch(text)
    if not match:
        raise ValueProblem(f"'{text}' is not a date and time (e.g. 2025/9/30 10:00)")
    year, month, day, month_zh, day_zh, hour, minute, second, fraction = match.groups()
    try:
        return datetime(int(year), int(month or month_zh), int(day or day_zh),
                        int(hour or 0), int(minute or 0), int(second or 0),
                        int((fraction or "0").ljust(6, "0")))
    except ValueError as exc:
        raise ValueProblem(f"'{text}' is not a valid date and time ({exc})") from None


def _from_serial(serial: Decimal, shown: str) -> datetime:
    if not EXCEL_SERIALS[0] <= serial <= EXCEL_SERIALS[1]:
        raise ValueProblem(f"{shown} is not an Excel date serial of 1950–2099")
    seconds = int((serial * 86400).to_integral_value())
    return EXCEL_EPOCH + timedelta(seconds=seconds)


_EXCEL_MONTH = re.compile(r"(\d{4})[/-](\d{1,2})(?:[/-]0?1(?:[ T]0?0:00(?::00)?)?)?")


def excel_month(text: str) -> str:
    """A month as Excel may leave it → ``YYYY-MM``: ``2025/10``, ``2025-10-01`` and
    ``2025-10-01 00:00:00`` (a cell Excel turned into the month's first day); anything
    else is returned as it is, for the caller to refuse."""
    match = _EXCEL_MONTH.fullmatch(text.strip())
    if not match or not 1 <= int(match[2]) <= 12:
        return text
    return f"{match[1]}-{int(match[2]):02d}"


def whole_second(moment: datetime) -> datetime:
    """``moment`` rounded to the nearest second."""
    rounded = moment.replace(microsecond=0)
    return rounded + timedelta(seconds=1) if moment.microsecond >= 500_000 else rounded


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
