"""The demo's monitoring log (监察日志), activity.csv: staff logging in and out.

Every handler (clerk, chief, deputy, principal) logs in on about 90 % of working days and
every tier-1 monitor on about 95 % (the county's figures), at 08:xx, handling a few things
and logging out at 17:xx; a monitor never misses two working days running. One monitor is
planted away for the log's last four working days, in a department that has a planted
unpaid-certificate case (so an alert is waiting there): ``inactive_monitor`` must flag them
and nobody else.
"""

from __future__ import annotations

import csv
from datetime import datetime, time, timedelta
from pathlib import Path

from .county import County
from .window import FIRST_DAY, LAST_DAY, TZ, working_days

HANDLERS = ("clerk", "chief", "deputy", "principal")
AWAY_DAYS = 4


def write_activity(path: Path, county: County) -> dict:
    """Write activity.csv; returns the planted absence (user, department, days away)."""
    rng = county.rng
    days = [d for d in working_days() if FIRST_DAY <= d <= LAST_DAY]
    dept = county.planted["unpaid_certificate"][0].item.department
    away = next(u["id"] for u in county.users
                if u["department"] == dept and "monitor_l1" in u["roles"])
    away_from = days[-AWAY_DAYS]
    with open(path, "w", encoding="utf-8", newline="") as out:
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(["user_id", "at", "action"])
        for user in county.users:
            roles = set(user["roles"])
            monitor = "monitor_l1" in roles
            if not (monitor or roles & set(HANDLERS)):
                continue
            missed = False
            for day in days:
                if user["id"] == away and day >= away_from:
                    continue
                absent = rng.random() < (0.05 if monitor else 0.10) and not (monitor and missed)
                missed = absent
                if absent:
                    continue
                start = datetime.combine(day, time(8), TZ) + timedelta(seconds=rng.randint(0, 3500))
                writer.writerow([user["id"], start.isoformat(), "login"])
                writer.writerow([user["id"], (start + timedelta(minutes=rng.randint(5, 200)))
                                 .isoformat(), "handle"])
                end = datetime.combine(day, time(17), TZ) + timedelta(seconds=rng.randint(0, 3500))
                writer.writerow([user["id"], end.isoformat(), "logout"])
    return {"user_id": away, "department": dept, "away_from": away_from.isoformat(),
            "working_days": AWAY_DAYS}
