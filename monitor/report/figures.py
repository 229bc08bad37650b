"""The figures of a report, straight from the store, per department.

Set-based: one scan of the acceptance and completion events buckets them into the period,
the period before (环比) and the same period a year earlier (同比) with CASE expressions
over UTC bounds (the same SQL on SQLite and PostgreSQL); alerts are grouped the same way.
Only the cases completed in the period reach Python, as (department, acceptance date,
completion date) counts, so working days are worked out once per distinct pair.

A finding counts in the period of what it is about, not of the audit run that raised it
(a nightly run, or a demo audited once at the end): a case's finding in the period its
case began (its first event), a department-month's (fee reconciliation) in that month,
anything else when it was raised. Open and escalated are the period's findings that are
still to be acted on now, and those that went to tier 2.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, tzinfo

from sqlalchemy import Connection, and_, case, func, literal, literal_column, select

from ..calendar import WorkCalendar
from ..models import Activity, Alert, Department, Event, Item, SpotCheck, User
from ..regionstore import in_region, region_column
from ..supervision import ACTIVE, DISMISSALS
from ..timeutil import aware
from .period import Period

BUCKETS = ("cur", "prev", "yoy")
LEVELS = ("warning", "yellow", "red")
HANDLER_ROLES = ("clerk", "chief", "deputy", "principal")
MONITOR_ROLE = "monitor_l1"


@dataclass
class Scope:
    """What a report covers: the periods as UTC bounds, an optional department and an
    optional region (a county, or a city or province with the counties it covers)."""

    period: Period
    tz: tzinfo
    department: str | None = None
    region: str | None = None
    # departments keyed REGION:CODE, not by code (a report of a store whose counties
    # share codes, no region asked: :func:`keyed_by_region`)
    by_region: bool = False
    bounds: dict[str, tuple[datetime, datetime]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.bounds = {"cur": self.period.bounds(self.tz),
                       "prev": self.period.previous().bounds(self.tz),
                       "yoy": self.period.year_before().bounds(self.tz)}

    def bucket(self, column):
        """CASE column → 'cur' | 'prev' | 'yoy' | NULL."""
        return case(*((and_(column >= lo, column < hi), literal(name))
                      for name, (lo, hi) in self.bounds.items()), else_=None)

    def anywhere(self, column):
        return case(*((and_(column >= lo, column < hi), 1)
                      for lo, hi in self.bounds.values()), else_=0) == 1

    def month_bucket(self, column):
        """CASE over a 'YYYY-MM' text column: the bucket whose months include it."""
        whens = []
        for name, key in (("cur", self.period), ("prev", self.period.previous()),
                          ("yoy", self.period.year_before())):
            # the months whose first day lies in [start, end)
            lo = key.start if key.start.day == 1 else _next_month(key.start)
            hi = key.end if key.end.day == 1 else _next_month(key.end)
            whens.append((and_(column >= f"{lo:%Y-%m}", column < f"{hi:%Y-%m}"), literal(name)))
        return case(*whens, else_=None)

    def key(self, column):
        """A department ``column`` as the report keys departments: its code, or
        ``REGION:CODE`` (``by_region``) by the region of its table."""
        # the colon inline, not a bound parameter: PostgreSQL groups by the same text
        return region_column(column).concat(literal_column("':'")).concat(column) \
            if self.by_region else column

    def of(self, region: str, code: str) -> str:
        """A department as :meth:`key` keys it, from a row's region and code."""
        return f"{region}:{code}" if self.by_region else code

    def dept(self, column):
        """The scope's department and region, as a WHERE clause on a department
        ``column`` (and the region of its table)."""
        where = column == self.department if self.department else literal(True)
        if self.region is None:
            return where
        return and_(where, in_region(region_column(column), self.region))


def _next_month(day: date) -> date:
    return date(day.year + day.month // 12, day.month % 12 + 1, 1)


def keyed_by_region(conn: Connection, department: str | None, region: str | None) -> bool:
    """Whether a report keys departments ``REGION:CODE``: no department nor region asked,
    and two counties of the store share a department code (each has its own D04)."""
    if department is not None or region is not None:
        return False
    return conn.execute(select(Department.code).group_by(Department.code).having(
        func.count(func.distinct(Department.region)) > 1).limit(1)).first() is not None


def departments(conn: Connection, scope: Scope) -> dict[str, str]:
    """department (its code, or REGION:CODE: :attr:`Scope.by_region`) → its name."""
    key = scope.key(Department.code)
    query = (select(key, Department.name).where(scope.dept(Department.code)).order_by(key))
    return dict(conn.execute(query).tuples().all())


def case_counts(conn: Connection, scope: Scope) -> dict[tuple[str, str, str], int]:
    """(department, step, bucket) → cases accepted / completed (first such event)."""
    e = Event.__table__
    firsts = (select(e.c.case_id, e.c.step,
                     func.min(scope.key(e.c.department)).label("department"),
                     func.min(e.c.occurred_at).label("at"))
              .where(e.c.step.in_(("accept", "complete")), scope.anywhere(e.c.occurred_at),
                     scope.dept(e.c.department))
              .group_by(e.c.case_id, e.c.step).subquery())
    bucket = scope.bucket(firsts.c.at).label("bucket")
    rows = conn.execute(select(firsts.c.department, firsts.c.step, bucket, func.count())
                        .group_by(firsts.c.department, firsts.c.step, bucket))
    return {(d, s, b): n for d, s, b, n in rows if b}


@dataclass
class Completion:
    completed: int = 0
    on_time: int = 0
    days_total: int = 0
    days_cases: int = 0
    per_day: Counter = field(default_factory=Counter)  # local date → completed


def completions(conn: Connection, scope: Scope, calendar: WorkCalendar) -> dict[str, Completion]:
    """Per department: cases completed in the period, on time (no yellow or red ``overdue``
    alert on the case itself: a step past its ``step_days``, subject ``CASE|step``, does not
    make the case late), and working days from acceptance to completion."""
    e = Event.__table__
    lo, hi = scope.bounds["cur"]
    done = (select(e.c.case_id, func.min(scope.key(e.c.department)).label("department"),
                   func.min(e.c.occurred_at).label("completed"))
            .where(e.c.step == "complete", scope.dept(e.c.department))
            .group_by(e.c.case_id)
            .having(and_(func.min(e.c.occurred_at) >= lo, func.min(e.c.occurred_at) < hi))
            .subquery())
    a = e.alias("a")
    accepted = (select(func.min(a.c.occurred_at)).where(a.c.case_id == done.c.case_id,
                                                        a.c.step == "accept")
                .scalar_subquery())
    late = (select(func.count()).where(Alert.case_id == done.c.case_id, Alert.kind == "overdue",
                                       Alert.subject == done.c.case_id,
                                       Alert.level.in_(("yellow", "red")))
            .scalar_subquery())
    pairs: Counter = Counter()
    out: dict[str, Completion] = defaultdict(Completion)
    tz = scope.tz
    for dept, completed, acc, n_late in conn.execute(
            select(done.c.department, done.c.completed, accepted, late)):
        c = out[dept]
        c.completed += 1
        c.on_time += 0 if n_late else 1
        end = _aware(completed).astimezone(tz).date()
        c.per_day[end] += 1
        if acc is not None:
            pairs[(dept, _aware(acc).astimezone(tz).date(), end)] += 1
    for (dept, start, end), n in pairs.items():
        out[dept].days_total += max(0, calendar.workdays_between(start, end)) * n
        out[dept].days_cases += n
    return dict(out)


def _aware(value):
    return aware(value)


def dated_alerts(scope: Scope, suppressed: bool = False):
    """Findings with the moment they are about (``at``) and its bucket. Operational alerts
    (a run failed or was missed) are about the tool, not a department: never counted.
    Findings kept as suppressed under an exemption are counted apart (``suppressed=True``)."""
    e = Event.__table__
    began = (select(func.min(e.c.occurred_at)).where(e.c.case_id == Alert.case_id)
             .scalar_subquery())
    # each finding dated once, materialised: the buckets compare the date six times, and
    # a database that inlines the subquery (SQLite) looked the case's first event up
    # again for each comparison in each clause naming the bucket — 18 lookups a finding
    dated = (select(Alert.id, scope.key(Alert.department).label("department"), Alert.kind,
                    Alert.level, Alert.status,
                    Alert.escalated_at, Alert.item_code, Alert.actor, Alert.period,
                    Alert.disposition, Alert.case_id,
                    func.coalesce(began, Alert.raised_at).label("at"))
             .where(scope.dept(Alert.department), Alert.kind != "operational",
                    # a 差评 voided on appeal (monitor/voice.py) counts nowhere
                    Alert.disposition.is_distinct_from("voided"),
                    (Alert.status == "suppressed") if suppressed
                    else (Alert.status != "suppressed"))
             .cte().prefix_with("MATERIALIZED"))
    a = dated.c
    bucket = case((and_(a.case_id.is_(None), a.period.is_not(None)),
                   scope.month_bucket(a.period)), else_=scope.bucket(a.at))
    inner = select(a.id, a.department, a.kind, a.level, a.status, a.escalated_at,
                   a.item_code, a.actor, a.period, a.disposition, a.at,
                   bucket.label("bucket")).subquery()
    return select(inner).where(inner.c.bucket.is_not(None)).subquery()


def current(scope: Scope):
    d = dated_alerts(scope)
    return d, d.c.bucket == "cur"


def alert_counts(conn: Connection, scope: Scope) -> dict[tuple[str, str, str, str], int]:
    """(department, kind, level, bucket) → findings."""
    d = dated_alerts(scope)
    rows = conn.execute(select(d.c.department, d.c.kind, d.c.level, d.c.bucket, func.count())
                        .group_by(d.c.department, d.c.kind, d.c.level, d.c.bucket))
    return {(dd or "-", k, lvl, b): n for dd, k, lvl, b, n in rows}


def open_escalated(conn: Connection, scope: Scope) -> dict[str, tuple[int, int]]:
    """department → (alerts raised in the period still to be acted on, escalated to tier 2)."""
    d, cur = current(scope)
    rows = conn.execute(
        select(d.c.department,
               func.sum(case((d.c.status.in_(ACTIVE), 1), else_=0)),
               func.sum(case((d.c.escalated_at.is_not(None), 1), else_=0)))
        .where(cur).group_by(d.c.department))
    return {dd or "-": (int(o or 0), int(x or 0)) for dd, o, x in rows}


def dismissals(conn: Connection, scope: Scope) -> dict[str, tuple[int, int]]:
    """department → (findings of the period dismissed by tier 1 and awaiting tier 2's
    confirmation, dismissals tier 2 confirmed): only a confirmed one leaves the scores
    (monitor/scores.py)."""
    d, cur = current(scope)
    dismissed = d.c.disposition.in_(DISMISSALS)
    rows = conn.execute(
        select(d.c.department,
               func.sum(case((and_(dismissed, d.c.status == "resolved"), 1), else_=0)),
               func.sum(case((and_(dismissed, d.c.status == "confirmed"), 1), else_=0)))
        .where(cur).group_by(d.c.department))
    return {dd or "-": (int(p or 0), int(c or 0)) for dd, p, c in rows}


def suppressed_counts(conn: Connection, scope: Scope) -> dict[str, int]:
    """department → findings of the period kept as suppressed under an exemption."""
    d = dated_alerts(scope, suppressed=True)
    rows = conn.execute(select(d.c.department, func.count()).where(d.c.bucket == "cur")
                        .group_by(d.c.department))
    return {dd or "-": n for dd, n in rows}


def findings_per_day(conn: Connection, scope: Scope) -> Counter:
    d, cur = current(scope)
    out: Counter = Counter()
    for at, period in conn.execute(select(d.c.at, d.c.period).where(cur)):
        day = _aware(at).astimezone(scope.tz).date()
        out[max(day, scope.period.start) if period else day] += 1
    return out


def top(conn: Connection, scope: Scope, name: str, limit: int = 10) -> list[tuple]:
    """(value, department, findings, red) for the values of column ``name`` (item_code,
    actor) with most findings."""
    d, cur = current(scope)
    column = d.c[name]
    reds = func.sum(case((d.c.level == "red", 1), else_=0))
    return list(conn.execute(
        select(column, func.min(d.c.department), func.count(), reds)
        .where(cur, column.is_not(None))
        .group_by(column).order_by(func.count().desc(), reds.desc(), column).limit(limit)).tuples())


def names(conn: Connection, model, key, codes) -> dict[str, str]:
    codes = sorted({c for c in codes if c})
    if not codes:
        return {}
    return dict(conn.execute(select(key, model.name).where(key.in_(codes))).tuples().all())


def item_names(conn, codes):
    return names(conn, Item, Item.code, codes)


def user_names(conn, ids):
    return names(conn, User, User.id, ids)


def red_alerts(conn: Connection, scope: Scope):
    d, cur = current(scope)
    return conn.execute(
        select(Alert.id, scope.key(Alert.department).label("department"), Alert.rule_id,
               Alert.title, Alert.kind,
               Alert.case_id, Alert.actor, Alert.raised_at, Alert.status, Alert.message, Alert.evidence)
        .join(d, d.c.id == Alert.id)
        .where(cur, Alert.level == "red")
        .order_by(scope.key(Alert.department), Alert.id))


def online_rates(conn: Connection, scope: Scope, calendar: WorkCalendar
                 ) -> dict[tuple[str, str], dict[date, float]]:
    """(department, 'handlers' | 'monitors') → {working day: share of those users who
    logged in that day}; only departments and days with any activity logged."""
    lo, hi = scope.bounds["cur"]
    staff: dict[tuple[str, str], set[str]] = defaultdict(set)
    role_of: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for uid, dept, roles in conn.execute(select(User.id, scope.key(User.department),
                                                User.roles)
                                         .where(scope.dept(User.department))):
        for group, wanted in (("handlers", HANDLER_ROLES), ("monitors", (MONITOR_ROLE,))):
            if dept and set(roles or ()) & set(wanted):
                staff[(dept, group)].add(uid)
                role_of[uid].append((dept, group))
    seen: dict[tuple[str, str], dict[date, set[str]]] = defaultdict(lambda: defaultdict(set))
    any_day: set[date] = set()
    for uid, at in conn.execute(select(Activity.user_id, Activity.at).where(
            Activity.at >= lo, Activity.at < hi, Activity.action == "login")):
        day = at.astimezone(scope.tz).date()
        any_day.add(day)
        for key in role_of.get(uid, ()):
            seen[key][day].add(uid)
    if not any_day:
        return {}
    days = [d for d in scope.period.days() if calendar.is_workday(d)
            and min(any_day) <= d <= max(any_day)]
    return {key: {d: len(seen[key][d]) / len(users) for d in days}
            for key, users in staff.items() if users}


def spot_checks(conn: Connection, scope: Scope) -> dict[str, tuple[int, int, int]]:
    """department → (drawn, passed, failed) for cases completed in the period."""
    lo, hi = scope.bounds["cur"]
    rows = conn.execute(
        select(scope.key(SpotCheck.department), func.count(),
               func.sum(case((SpotCheck.result == "pass", 1), else_=0)),
               func.sum(case((SpotCheck.result == "fail", 1), else_=0)))
        .where(SpotCheck.completed_at >= lo, SpotCheck.completed_at < hi,
               scope.dept(SpotCheck.department))
        .group_by(scope.key(SpotCheck.department)))
    return {d or "-": (n, int(p or 0), int(f or 0)) for d, n, p, f in rows}
