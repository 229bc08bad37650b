"""Cron expressions as config.yaml writes them, turned into APScheduler triggers.

One function, :func:`cron_trigger`, shared by the three places that read a ``schedule``
expression: config validation (a bad expression is an error at load time), catch-up after
downtime (the slots a missed run was due at) and the ``serve`` daemon (when each job
fires). It depends on APScheduler's trigger alone, so the low layers use it without
importing the daemon; APScheduler itself is imported on the first call (importing it
costs a tenth of a second, and monitor.config is imported by every command, ``--help``
too).
"""

from __future__ import annotations

from datetime import tzinfo
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from apscheduler.triggers.cron import CronTrigger


def cron_trigger(expr: str, tz: str | tzinfo) -> CronTrigger:
    """A CronTrigger from ``minute hour day month weekday`` (or ``second`` + those five)."""
    from apscheduler.triggers.cron import CronTrigger

    fields = expr.split()
    if len(fields) not in (5, 6):
        raise ValueError("expected 5 fields (minute hour day month weekday), or 6 with "
                         "seconds first")
    if len(fields) == 5:
        fields.insert(0, "0")
    second, minute, hour, day, month, weekday = fields
    if any(ch.isdigit() for ch in weekday):
        raise ValueError("write weekdays as names (mon-fri, sat,sun): numbers are ambiguous "
                         "(cron counts from Sunday, APScheduler from Monday)")
    return CronTrigger(second=second, minute=minute, hour=hour, day=day, month=month,
                       day_of_week=weekday, timezone=tz)
