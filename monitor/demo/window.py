"""The demo's window in time: its dates, the log's end and office hours, as office seconds."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

from ..calendar import WorkCalendar

TZ = timezone(timedelta(hours=8))
FIRST_DAY, LAST_DAY = date(2025, 8, 1), date(2026, 1, 31)
AS_OF = datetime(2026, 2, 1, tzinfo=TZ)  # the exported log ends here
DAY = 7 * 3600             # office seconds in a working day: 08:30–12:00 and 14:00–17:30
MORNING = 12600            # office seconds before the lunch break
OPENS, AFTERNOON = 30600, 50400  # 08:30 and 14:00, in seconds after midnight


def working_days() -> list[date]:
    """Working days from the window's first day until the limits of its last cases run out."""
    cal = WorkCalendar()
    day, days = FIRST_DAY, []
    while day <= date(2026, 9, 30):  # limits of the last cases run past the window
        if cal.is_workday(day):
            days.append(day)
        day += timedelta(days=1)
    return days
