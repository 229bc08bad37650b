"""inactive_monitor (监察员不在岗): a department's tier-1 monitor who has not logged in for
``days`` working days while the department has alerts waiting — tier 2 must know, since
nobody is chasing them ("the oriole waits behind": tier 2 watches tier 1).

* Reads the monitoring log (``ingest activity``): the last ``login`` of each user with the
  ``monitor_l1`` role at or before ``as_of``. Working days are counted from the day after
  that login to the day before ``as_of``'s local date (a day is judged once it is over),
  with the working-day calendar. A monitor never seen logging in counts from the day
  before the log's first entry; with no log at all the kind finds nothing (it cannot tell
  absence from a missing file).
* Only while the department has alerts still to be acted on (open or acknowledged, of
  other kinds), raised by ``as_of``.
* One alert per monitor and absence (subject ``USER|last login date``): a later login
  ends the absence, and another one is a new alert. Such alerts go straight to tier 2
  (monitor/supervision.py ``TIER2_KINDS``), not to the monitor who is absent.
* Scope: department lists only. Not incremental: time passing, not new events, decides.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import Connection, func, select

from ...models import Activity, Alert, User
from ...supervision import ACTIVE, TIER1
from ..finding import Context, Finding
from ._common import aware

WORKING_DAYS = True  # counts in ctx.calendar: a county's own calendar judges it apart
TITLE = "一级监察员长期未登录（部门有待处置告警）"
DEFAULT_MESSAGE = ("{department} 一级监察员 {name}（{actor}）已 {days} 个工作日未登录"
                   "（最后登录 {last_login}），本部门 {open_alerts} 条告警待处置")
FIELDS = ("name", "days", "last_login", "open_alerts")
INCREMENTAL = False
AFTER_OTHERS = True  # the engine runs it after the other rules: their new alerts count
KIND = "inactive_monitor"


@dataclass(frozen=True)
class Params:
    days: int = 2  # working days without a login


def detect(conn: Connection, rule, ctx: Context) -> Iterator[Finding]:
    started = conn.scalar(select(func.min(Activity.at)).where(Activity.at <= ctx.as_of))
    if started is None:
        return
    scope = rule.scope
    monitors = [(uid, name, (region, dept)) for uid, name, region, dept, roles in conn.execute(
        select(User.id, User.name, User.region, User.department, User.roles).order_by(User.id))
        if TIER1 in (roles or ()) and dept
        and (not scope.departments or dept in scope.departments)
        and dept not in scope.exclude_departments]
    if not monitors:
        return
    last = dict(conn.execute(select(Activity.user_id, func.max(Activity.at))
                             .where(Activity.action == "login", Activity.at <= ctx.as_of)
                             .group_by(Activity.user_id)).tuples().all())
    # per county and department: each county's D04 is its own (migration 0029)
    waiting = {(region, dept): n for region, dept, n in conn.execute(
        select(Alert.region, Alert.department, func.count())
        .where(Alert.status.in_(ACTIVE), Alert.kind != KIND, Alert.raised_at <= ctx.as_of)
        .group_by(Alert.region, Alert.department))}
    yesterday = aware(ctx.as_of).astimezone(ctx.tz).date() - timedelta(days=1)
    first_day = aware(started).astimezone(ctx.tz).date()
    for uid, name, (region, dept) in monitors:
        seen = last.get(uid)
        since = aware(seen).astimezone(ctx.tz).date() if seen else first_day - timedelta(days=1)
        days = max(0, ctx.calendar.workdays_between(since, yesterday))
        if days < rule.params.days or not waiting.get((region, dept)):
            continue
        last_login = seen and aware(seen).astimezone(ctx.tz).isoformat()
        yield Finding(
            subject=f"{uid}|{since.isoformat() if seen else 'never'}", actor=uid,
            department=dept, region=region,  # the monitor's county, whose D04 it watches
            fields={"name": name, "days": days, "last_login": last_login or "无记录",
                    "open_alerts": waiting[(region, dept)]},
            evidence={"user_id": uid, "last_login": last_login, "log_starts": str(first_day),
                      "counted_from": str(since), "counted_to": str(yesterday),
                      "working_days_without_login": days, "days_allowed": rule.params.days,
                      "open_alerts": waiting[(region, dept)]})
