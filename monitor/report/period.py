"""Report periods: a month (2026-01), a quarter (2026-Q1) or any range of local dates,
with the period before it (环比) and the same period a year earlier (同比)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone, tzinfo

from ..errors import MonitorError

MONTH = re.compile(r"^(\d{4})-(\d{2})$")
QUARTER = re.compile(r"^(\d{4})-[Qq]([1-4])$")


class PeriodError(MonitorError):
    """A --period, --from or --to that is not a period (a usage error: exit 2)."""

    exit_code = 2


@dataclass(frozen=True)
class Period:
    """Local dates ``start`` ≤ d < ``end``; ``label`` as the user gave it (or the range)."""

    label: str
    start: date
    end: date  # exclusive
    kind: str  # month | quarter | range

    @property
    def last(self) -> date:
        return self.end - timedelta(days=1)

    def bounds(self, tz: tzinfo) -> tuple[datetime, datetime]:
        """The period as UTC instants [lo, hi)."""
        return (datetime.combine(self.start, time(), tz).astimezone(timezone.utc),
                datetime.combine(self.end, time(), tz).astimezone(timezone.utc))

    def days(self) -> list[date]:
        return [self.start + timedelta(days=k) for k in range((self.end - self.start).days)]

    def previous(self) -> Period:
        """The period just before (环比): the previous month or quarter, or as many days."""
        if self.kind == "month":
            return month(_add_months(self.start, -1))
        if self.kind == "quarter":
            return quarter(_add_months(self.start, -3))
        length = self.end - self.start
        return range_of(self.start - length, self.start - timedelta(days=1))

    def year_before(self) -> Period:
        """The same period a year earlier (同比)."""
        if self.kind == "month":
            return month(_add_months(self.start, -12))
        if self.kind == "quarter":
            return quarter(_add_months(self.start, -12))
        return range_of(_add_months(self.start, -12), _add_months(self.last, -12))


def _add_months(day: date, n: int) -> date:
    k = day.year * 12 + day.month - 1 + n
    year, mon = divmod(k, 12)
    last = (date(year + (mon + 1) // 12, (mon + 1) % 12 + 1, 1) - timedelta(days=1)).day
    return date(year, mon + 1, min(day.day, last))


def month(first: date) -> Period:
    first = first.replace(day=1)
    return Period(f"{first:%Y-%m}", first, _add_months(first, 1), "month")


def quarter(first: date) -> Period:
    first = date(first.year, 3 * ((first.month - 1) // 3) + 1, 1)
    return Period(f"{first.year}-Q{(first.month - 1) // 3 + 1}", first, _add_months(first, 3),
                  "quarter")


def range_of(start: date, last: date) -> Period:
    if last < start:
        raise PeriodError(f"--to {last} is before --from {start}")
    return Period(f"{start}…{last}", start, last + timedelta(days=1), "range")


def parse_period(text: str | None, start: str | None = None, end: str | None = None,
                 today: date | None = None) -> Period:
    """``--period 2026-01 | 2026-Q1``, or ``--from/--to`` dates (inclusive); neither: the
    last full month before ``today``."""
    if text and (start or end):
        raise PeriodError("give either --period or --from/--to, not both")
    if text:
        m = MONTH.match(text.strip())
        if m and 1 <= int(m[2]) <= 12:
            return month(date(int(m[1]), int(m[2]), 1))
        q = QUARTER.match(text.strip())
        if q:
            return quarter(date(int(q[1]), 3 * int(q[2]) - 2, 1))
        raise PeriodError(f"period '{text}' is not a month (2026-01) or a quarter (2026-Q1)")
    if start or end:
        if not (start and end):
            raise PeriodError("--from and --to go together")
        return range_of(_date(start, "--from"), _date(end, "--to"))
    if today is None:
        raise PeriodError("no period given")
    return month(_add_months(today.replace(day=1), -1))


def _date(text: str, option: str) -> date:
    try:
        return date.fromisoformat(text.strip())
    except ValueError:
        raise PeriodError(f"{option} '{text}' is not a date like 2026-01-31") from None
