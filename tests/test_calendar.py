"""The working-day calendar: official holidays, make-up days (调休), overrides, limits."""

import logging
from datetime import date, timedelta

import chinese_calendar
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import monitor.calendar as calendar_module
from monitor.calendar import WorkCalendar
from monitor.errors import CalendarError

CAL = WorkCalendar()

# The years chinese-calendar knows; property tests stay well inside them.
KNOWN = st.dates(min_value=date(2004, 1, 1), max_value=date(2024, 12, 31))


def naive_add(start: date, n: int) -> date:
    """Reference implementation: walk day by day with the package itself."""
    day = start
    while n:
        day += timedelta(days=1)
        n -= chinese_calendar.is_workday(day)
    return day


def test_national_day_2025_holidays_and_make_up_days():
    assert [CAL.is_workday(date(2025, 10, d)) for d in range(1, 9)] == [False] * 8
    assert CAL.is_workday(date(2025, 9, 28))       # Sunday, make-up working day
    assert CAL.is_workday(date(2025, 10, 11))      # Saturday, make-up working day
    assert not CAL.is_workday(date(2025, 10, 12))  # an ordinary Sunday
    assert CAL.is_workday(date(2025, 10, 9))


def test_every_known_year_is_the_package_asked_day_by_day():
    """The year's days off and make-up days read from the package's tables are what
    is_workday says of each day of every year it covers."""
    years = {d.year for d in chinese_calendar.holidays}
    for year in range(min(years), max(years) + 1):
        day, off, on = date(year, 1, 1), set(), set()
        while day.year == year:
            working = chinese_calendar.is_workday(day)
            if day.weekday() < 5 and not working:
                off.add(day.toordinal())
            elif day.weekday() >= 5 and working:
                on.add(day.toordinal())
            day += timedelta(days=1)
        assert calendar_module._official_holidays_and_workdays(year) == (
            frozenset(off), frozenset(on)), year


def test_case_accepted_before_national_day_has_its_deadline_pushed_out():
    # Working days after 2025-09-30: Oct 9, 10, 11 (Sat), 13–17, 20–24, 27–31, Nov 3, 4.
    assert CAL.add_workdays(date(2025, 9, 30), 20) == date(2025, 11, 4)
    # Monday to Friday would have said Oct 28; ignoring the Saturday make-up day, Nov 5.
    assert CAL.workdays_between(date(2025, 9, 30), date(2025, 10, 28)) == 15
    assert CAL.workdays_between(date(2025, 9, 30), date(2025, 11, 4)) == 20


def test_saturday_make_up_day_counts():
    assert CAL.add_workdays(date(2025, 10, 10), 1) == date(2025, 10, 11)
    assert CAL.workdays_between(date(2025, 10, 10), date(2025, 10, 12)) == 1
    assert CAL.add_workdays(date(2025, 9, 26), 1) == date(2025, 9, 28)  # Fri → Sun


def test_counting_starts_the_day_after_start():
    assert CAL.add_workdays(date(2025, 9, 30), 0) == date(2025, 9, 30)
    assert CAL.add_workdays(date(2025, 9, 29), 1) == date(2025, 9, 30)
    assert CAL.workdays_between(date(2025, 9, 29), date(2025, 9, 29)) == 0
    # A start on a holiday: the first working day after it is day 1.
    assert CAL.add_workdays(date(2025, 10, 3), 1) == date(2025, 10, 9)


def test_between_is_antisymmetric_and_spans_years():
    assert CAL.workdays_between(date(2025, 11, 4), date(2025, 9, 30)) == -20
    assert CAL.workdays_between(date(2023, 12, 31), date(2025, 12, 31)) == \
        sum(chinese_calendar.is_workday(date(2024, 1, 1) + timedelta(days=i)) for i in range(731))


def test_negative_n_is_a_bug():
    with pytest.raises(ValueError):
        CAL.add_workdays(date(2025, 1, 1), -1)


@settings(max_examples=300, deadline=None)
@given(start=KNOWN, n=st.integers(min_value=0, max_value=400))
def test_add_then_between_is_the_identity(start, n):
    end = CAL.add_workdays(start, n)
    assert CAL.workdays_between(start, end) == n
    assert end == naive_add(start, n)
    if n:
        assert CAL.is_workday(end)
        assert CAL.workdays_between(start, end - timedelta(days=1)) == n - 1


@settings(max_examples=300, deadline=None)
@given(start=KNOWN, span=st.integers(min_value=0, max_value=700))
def test_between_then_add_lands_on_the_last_working_day(start, span):
    end = start + timedelta(days=span)
    n = CAL.workdays_between(start, end)
    back = CAL.add_workdays(start, n)
    assert start <= back <= end
    assert CAL.workdays_between(back, end) == 0


def test_extra_holiday_and_extra_workday_override_the_official_calendar():
    local = WorkCalendar(extra_holidays={date(2025, 11, 3)}, extra_workdays=[date(2025, 11, 8)])
    assert not local.is_workday(date(2025, 11, 3))   # a Monday made a local holiday
    assert local.is_workday(date(2025, 11, 8))       # a Saturday made a working day
    assert local.add_workdays(date(2025, 10, 31), 1) == date(2025, 11, 4)
    assert local.workdays_between(date(2025, 11, 2), date(2025, 11, 9)) == 5
    assert CAL.is_workday(date(2025, 11, 3))         # the default calendar is unchanged
    assert local.extra_holidays == frozenset({date(2025, 11, 3)})


def test_overrides_supply_a_year_the_package_does_not_know():
    future = WorkCalendar(extra_holidays={date(2027, 1, 1)}, extra_workdays={date(2027, 1, 9)})
    assert not future.is_workday(date(2027, 1, 1))   # Friday, holiday
    assert future.is_workday(date(2027, 1, 9))       # Saturday, make-up day
    assert future.is_workday(date(2027, 3, 1))       # ordinary Monday
    assert not future.is_workday(date(2027, 3, 6))   # ordinary Saturday
    assert future.add_workdays(date(2026, 12, 31), 1) == date(2027, 1, 4)


def test_a_date_both_holiday_and_workday_is_an_error():
    with pytest.raises(CalendarError, match="2025-11-03 is listed both"):
        WorkCalendar(extra_holidays={date(2025, 11, 3)}, extra_workdays={date(2025, 11, 3)})


@pytest.fixture
def fresh_warnings(monkeypatch, caplog):
    """A process that has not warned about any year yet; the records it logs."""
    monkeypatch.setattr(calendar_module, "_warned_years", set())
    caplog.set_level(logging.WARNING, logger="monitor.calendar")
    return caplog


def uncovered(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "monitor.calendar"]


def test_a_year_nobody_covers_falls_back_to_monday_to_friday(fresh_warnings):
    cal = WorkCalendar()
    assert cal.is_workday(date(2027, 3, 1))             # Monday
    assert not cal.is_workday(date(2027, 3, 6))         # Saturday
    assert cal.is_workday(date(2027, 10, 1))            # National Day: unknown, a Friday
    assert not cal.is_workday(date(2003, 6, 7))         # before the package's first year
    # 2026-12-18 (Fri) + 20: Dec 21–25, 28–31 from the package, then Jan 1 2027 (Fri) …
    assert cal.add_workdays(date(2026, 12, 18), 20) == date(2027, 1, 15)
    assert cal.workdays_between(date(2026, 12, 31), date(2027, 1, 15)) == 11
    messages = uncovered(fresh_warnings)
    assert len(messages) == 2 and all("\n" not in m for m in messages)
    assert messages[0].startswith("no official holiday calendar for 2027: counting Monday to "
                                  "Friday as working days")
    assert "upgrade chinese-calendar" in messages[0] and "config.yaml (calendar:)" in messages[0]
    assert messages[1].startswith("no official holiday calendar for 2003:")


def test_the_warning_is_logged_once_per_year_per_process(fresh_warnings):
    for _ in range(3):  # each run of the engine builds a new calendar
        cal = WorkCalendar()
        cal.workdays_between(date(2026, 12, 1), date(2029, 1, 15))
        cal.is_workday(date(2027, 5, 5))
    assert sorted(uncovered(fresh_warnings)) == [
        f"no official holiday calendar for {y}: counting Monday to Friday as working days; "
        "upgrade chinese-calendar or add the year's holidays and make-up days to config.yaml "
        "(calendar:)" for y in (2027, 2028, 2029)]


def test_a_year_covered_by_overrides_or_the_package_warns_nothing(fresh_warnings):
    WorkCalendar(extra_workdays={date(2027, 2, 20)}).is_workday(date(2027, 3, 1))
    CAL.add_workdays(date(2025, 1, 1), 300)
    assert uncovered(fresh_warnings) == []


def test_the_fallback_keeps_the_speed(fresh_warnings):
    import time

    cal = WorkCalendar()
    starts = [date(2027, 1, 1) + timedelta(days=i % 730) for i in range(100_000)]
    t = time.perf_counter()
    for i, d in enumerate(starts):
        cal.workdays_between(d, cal.add_workdays(d, i % 40))
    per_call = (time.perf_counter() - t) / (2 * len(starts))
    assert per_call < 10e-6, f"{per_call * 1e6:.1f} µs per call"
    assert len(uncovered(fresh_warnings)) == 3  # 2027, 2028, 2029


def test_a_million_questions_are_fast():
    import time

    cal = WorkCalendar()
    starts = [date(2025, 1, 1) + timedelta(days=i % 365) for i in range(200_000)]
    t = time.perf_counter()
    for i, d in enumerate(starts):
        cal.workdays_between(d, cal.add_workdays(d, i % 40))
    per_call = (time.perf_counter() - t) / (2 * len(starts))
    assert per_call < 10e-6, f"{per_call * 1e6:.1f} µs per call"
