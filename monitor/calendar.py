"""Working days (工作日): the unit of every statutory time limit (行政许可法 Art. 82).

China moves working days around its holidays (调休): some Saturdays and Sundays become
working days, so "Monday to Friday" is wrong several times a year. The official
arrangements come from the ``chinese-calendar`` package (2004 to the last year it knows);
``extra_holidays`` and ``extra_workdays`` override it for local arrangements or for a year
the package does not know yet. A year neither covers falls back to Monday to Friday, with
one logged warning per year and process (upgrade the package or add the year to
``config.yaml``): an audit keeps running, and the log says which year is only a guess.

Counting starts the day **after** the start date (the day of acceptance does not count),
so ``add_workdays(accepted_on, 20)`` is the last day of a 20-working-day limit, and
``workdays_between(accepted_on, day)`` is how many working days have elapsed by ``day``.

Each year is turned once into a sorted array of working-day ordinals; every question is
then a binary search, so a million cases cost a million bisects, not a day-by-day walk.
"""

from __future__ import annotations

import logging
from bisect import bisect_left, bisect_right
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from functools import lru_cache

import chinese_calendar

from .errors import CalendarError

log = logging.getLogger(__name__)

_warned_years: set[int] = set()
"""Years already warned about in this process: the warning is logged once per year."""


def _warn_uncovered(year: int) -> None:
    if year in _warned_years:
        return
    _warned_years.add(year)
    log.warning("no official holiday calendar for %d: counting Monday to Friday as working "
                "days; upgrade chinese-calendar or add the year's holidays and make-up days "
                "to config.yaml (calendar:)", year)


CHINA = "cn"


def check_country(country: str) -> str | None:
    """None when ``country`` names a calendar (``cn``, or a country of the ``holidays``
    package, ``NL`` or ``NL-…`` with a subdivision); else the reason it does not."""
    if country == CHINA:
        return None
    import holidays

    code, _, subdiv = country.partition("-")
    supported = holidays.list_supported_countries()
    if code not in supported:
        from .errors import did_you_mean

        return (f"unknown calendar country '{country}'{did_you_mean(code, supported)}; "
                "cn (chinese-calendar, the default) or a country code of the holidays "
                "package, e.g. NL, IT, DE-BY")
    if subdiv and subdiv not in supported[code]:
        return (f"unknown subdivision '{subdiv}' of {code}; one of "
                f"{', '.join(supported[code][:12])}{' …' if len(supported[code]) > 12 else ''}")
    return None


@lru_cache(maxsize=None)
def _country_holidays(year: int, country: str) -> tuple[frozenset[int], frozenset[int]]:
    """A country's public holidays on weekdays (``holidays`` package): no make-up days."""
    import holidays

    code, _, subdiv = country.partition("-")
    days = holidays.country_holidays(code, subdiv=subdiv or None, years=year)
    return frozenset(d.toordinal() for d in days if d.weekday() < 5), frozenset()


@lru_cache(maxsize=None)
def _official_holidays_and_workdays(year: int, country: str = CHINA
                                    ) -> tuple[frozenset[int], frozenset[int]] | None:
    """(days off on a weekday, working weekend days) of ``year`` as ordinals; None if unknown."""
    if country != CHINA:
        return _country_holidays(year, country)
    try:
        chinese_calendar.is_workday(date(year, 1, 1))
    except NotImplementedError:
        return None
    # the package's own tables, read once: is_workday(day) is "listed as a working day,
    # or a weekday not listed as a holiday" — asked day by day it re-checks the year's
    # range over every holiday each time (~70 ms a year, paid by every fresh process)
    workdays = {d for d in chinese_calendar.workdays if d.year == year}
    off = {d.toordinal() for d in chinese_calendar.holidays
           if d.year == year and d.weekday() < 5 and d not in workdays}
    on = {d.toordinal() for d in workdays if d.weekday() >= 5}
    return frozenset(off), frozenset(on)


@dataclass(frozen=True)
class WorkCalendar:
    """Official working days, with optional local overrides (any iterable of dates)."""

    extra_holidays: frozenset[date] = frozenset()
    extra_workdays: frozenset[date] = frozenset()
    country: str = CHINA  # cn: chinese-calendar; else a country of the holidays package
    # department code → its own calendar (config calendar: departments:), else this one
    departments: Mapping[str, "WorkCalendar"] = field(
        default_factory=dict, compare=False, hash=False, repr=False)
    # county code → its own calendar (config regions: CODE: calendar:), else this one
    regions: Mapping[str, "WorkCalendar"] = field(
        default_factory=dict, compare=False, hash=False, repr=False)
    _years: dict[int, list[int]] = field(default_factory=dict, init=False, repr=False,
                                         compare=False, hash=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "extra_holidays", frozenset(self.extra_holidays))
        object.__setattr__(self, "extra_workdays", frozenset(self.extra_workdays))
        both = self.extra_holidays & self.extra_workdays
        if both:
            raise CalendarError(f"{min(both).isoformat()} is listed both as an extra holiday "
                                "and as an extra working day")

    def _workdays(self, year: int) -> list[int]:
        """Sorted ordinals of the working days of ``year`` (built once, then cached)."""
        days = self._years.get(year)
        if days is None:
            days = self._years[year] = self._build_year(year)
        return days

    def _build_year(self, year: int) -> list[int]:
        official = _official_holidays_and_workdays(year, self.country)
        holidays = {d.toordinal() for d in self.extra_holidays if d.year == year}
        workdays = {d.toordinal() for d in self.extra_workdays if d.year == year}
        if official is None:
            if not holidays and not workdays:
                _warn_uncovered(year)
            official = (frozenset(), frozenset())
        off, on = official
        first, last = date(year, 1, 1).toordinal(), date(year, 12, 31).toordinal()
        out = []
        for ordinal in range(first, last + 1):
            weekday = (ordinal + 6) % 7  # date.fromordinal(o).weekday(), without the object
            working = (weekday < 5 and ordinal not in off) or ordinal in on
            if ordinal in holidays:
                working = False
            elif ordinal in workdays:
                working = True
            if working:
                out.append(ordinal)
        return out

    def for_department(self, code: str | None) -> "WorkCalendar":
        """The calendar a department's limits count in: its own override, else this one."""
        return self.departments.get(code, self) if code and self.departments else self

    def for_region(self, code: str | None) -> "WorkCalendar":
        """The calendar a county's limits count in: its own (config ``regions:``, with
        the county's departments' overrides on top of it), else this one."""
        return self.regions.get(code, self) if code and self.regions else self

    def with_local(self, holidays: frozenset[date], workdays: frozenset[date]
                   ) -> "WorkCalendar":
        """This calendar with a county's own holidays and make-up working days on top (a
        county's day wins over the province's: a county's holiday on a provincial
        make-up day is a holiday); its departments' overrides get them too."""
        if not holidays and not workdays:
            return self
        off = (self.extra_holidays - workdays) | holidays
        on = (self.extra_workdays - holidays) | workdays
        own = {code: cal.with_local(holidays, workdays)
               for code, cal in self.departments.items()}
        return type(self)(off, on, self.country, own)

    def is_workday(self, d: date) -> bool:
        days = self._workdays(d.year)
        o = d.toordinal()
        i = bisect_left(days, o)
        return i < len(days) and days[i] == o

    def add_workdays(self, start: date, n: int) -> date:
        """The day on which ``n`` working days have elapsed, counting from the day after ``start``.

        ``n == 0`` is ``start`` itself.
        """
        if n < 0:
            raise ValueError(f"n must be ≥ 0, got {n}")
        if n == 0:
            return start
        year = start.year
        days = self._workdays(year)
        i = bisect_right(days, start.toordinal())
        while i + n > len(days):
            n -= len(days) - i
            year += 1
            days, i = self._workdays(year), 0
        return date.fromordinal(days[i + n - 1])

    def workdays_between(self, start: date, end: date) -> int:
        """Working days in (start, end]; negative when ``end`` is before ``start``."""
        if end < start:
            return -self.workdays_between(end, start)
        s, e = start.toordinal(), end.toordinal()
        first = self._workdays(start.year)
        if start.year == end.year:
            return bisect_right(first, e) - bisect_right(first, s)
        total = len(first) - bisect_right(first, s)
        for year in range(start.year + 1, end.year):
            total += len(self._workdays(year))
        return total + bisect_right(self._workdays(end.year), e)


@dataclass(frozen=True)
class CalendarDays(WorkCalendar):
    """Every day counts: for limits in calendar days (自然日; fines law, a 60-day term)."""

    def _build_year(self, year: int) -> list[int]:
        return list(range(date(year, 1, 1).toordinal(), date(year, 12, 31).toordinal() + 1))


CALENDAR_DAYS = CalendarDays()
