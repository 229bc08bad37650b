"""The board (总览): every department the actor may see as a light, from its alerts still
to be acted on by level and age.

- red: an open red alert, or any alert past its handling deadline;
- yellow: other open alerts (yellow cards and warnings);
- green: nothing to act on.

With each department: open alerts per level, overdue, awaiting tier-2 review, open alerts
per rule, and the alerts raised on each of the last 30 days (local dates); the county's
totals the same way. Three grouped queries over covering indexes (migration 0011), whatever the
size of the store.

A light is a county's department, ``(region, code)``: counties share department codes
(each its own catalog, migration 0029), so a city's or province's board shows each
county's D04 apart, each with its own county's alerts, ratings and complaints.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, tzinfo

from sqlalchemy import Engine, case, func, or_, select

from ..authz import Actor
from ..models import Alert, Complaint, Department, Item, Rating
from ..supervision import ACTIVE
from .listing import LEVELS, visible

TREND_DAYS = 30


@dataclass
class Light:
    code: str
    name: str
    region: str = ""  # the county of the department ("" for the county's totals)
    active: Counter = field(default_factory=Counter)   # level → open alerts
    overdue: int = 0
    review: int = 0                                     # tier-2, resolved, awaiting review
    by_rule: Counter = field(default_factory=Counter)   # rule id → open alerts
    trend: list[int] = field(default_factory=lambda: [0] * TREND_DAYS)
    bad_ratings: int = 0      # 差评 (score ≤ 2, not voided) given in the last 30 days
    open_complaints: int = 0  # complaints not yet answered (反馈)

    @property
    def light(self) -> str:
        if self.active["red"] or self.overdue:
            return "red"
        return "yellow" if sum(self.active.values()) else "green"

    @property
    def open(self) -> int:
        return sum(self.active.values())

    def add(self, other: "Light") -> None:
        self.active.update(other.active)
        self.by_rule.update(other.by_rule)
        self.overdue += other.overdue
        self.review += other.review
        self.bad_ratings += other.bad_ratings
        self.open_complaints += other.open_complaints
        self.trend = [a + b for a, b in zip(self.trend, other.trend)]


@dataclass
class Board:
    today: date
    days: list[date]
    departments: list[Light]
    county: Light

    @property
    def counties(self) -> int:
        """How many counties' departments the board shows (several: a city's office)."""
        return len({x.region for x in self.departments})


def board(engine: Engine, actor: Actor, now: datetime, tz: tzinfo) -> Board:
    today = now.astimezone(tz).date()
    days = [today - timedelta(days=TREND_DAYS - 1 - i) for i in range(TREND_DAYS)]
    seen = visible(Alert.department, actor)
    lights: dict[tuple[str, str], Light] = {}
    with engine.connect() as conn:
        names = {(r, c): n for r, c, n in conn.execute(
            select(Department.region, Department.code, Department.name)
            .where(visible(Department.code, actor)))}
        handling = set(conn.execute(select(Item.region, Item.department).distinct())
                       .tuples().all())
        for (region, code), name in sorted(names.items()):
            if (region, code) in handling:
                lights[region, code] = Light(code, name, region)

        def light(region: str, code: str | None) -> Light:
            code = code or "-"
            return lights.setdefault((region, code), Light(
                code, names.get((region, code), code), region))

        for region, dept, level, rule, n, late in conn.execute(  # one pass over an index
                select(Alert.region, Alert.department, Alert.level, Alert.rule_id, func.count(),
                       func.sum(case((Alert.due_on < today, 1), else_=0)))
                .where(seen, Alert.status.in_(ACTIVE))
                .group_by(Alert.region, Alert.department, Alert.level, Alert.rule_id)):
            x = light(region, dept)
            x.active[level] += n
            x.overdue += int(late or 0)
            x.by_rule[rule] += n
        for region, dept, n in conn.execute(
                select(Alert.region, Alert.department, func.count())
                .where(seen, Alert.tier == 2, Alert.status == "resolved")
                .group_by(Alert.region, Alert.department)):
            light(region, dept).review += n
        lo = datetime.combine(days[0], time(), tz)
        hi = datetime.combine(today + timedelta(days=1), time(), tz)
        first = days[0].toordinal()
        # alerts are raised by runs, so a month holds few distinct moments: group by the
        # moment (a covering index), then by local date here, exact in any time zone
        for region, dept, raised, n in conn.execute(
                select(Alert.region, Alert.department, Alert.raised_at, func.count())
                .where(seen, Alert.raised_at >= lo, Alert.raised_at < hi,
                       Alert.status != "suppressed")
                .group_by(Alert.region, Alert.department, Alert.raised_at)):
            i = raised.astimezone(tz).date().toordinal() - first
            if 0 <= i < TREND_DAYS:
                light(region, dept).trend[i] += n
        for region, dept, n in conn.execute(
                select(Rating.region, Rating.department, func.count())
                .where(visible(Rating.department, actor), Rating.score <= 2,
                       Rating.rated_at >= lo, Rating.rated_at < hi,
                       or_(Rating.appeal.is_(None), Rating.appeal != "voided"))
                .group_by(Rating.region, Rating.department)):
            light(region, dept).bad_ratings += n
        for region, dept, n in conn.execute(
                select(Complaint.region, Complaint.department, func.count())
                .where(visible(Complaint.department, actor), Complaint.answered_at.is_(None))
                .group_by(Complaint.region, Complaint.department)):
            light(region, dept).open_complaints += n
    county = Light("county", "")
    ordered = sorted(lights.values(), key=lambda x: (
        {"red": 0, "yellow": 1, "green": 2}[x.light], -x.active["red"], -x.open, x.code,
        x.region))
    for x in ordered:
        county.add(x)
    return Board(today, days, ordered, county)


__all__ = ["Board", "LEVELS", "Light", "board"]
