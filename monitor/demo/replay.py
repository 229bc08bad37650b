"""The demo's half-year replayed day by day (``permit-monitor demo --replay``).

Each working day of the window, at :data:`RUN_AT` local time (a nightly run after office
hours), an audit pass (monitor/auditpass.py) evaluates the shipped rules incrementally as
of that moment — events dated later are not yet visible — and escalates as of the same
moment, exactly as ``permit-monitor run --as-of`` does. During office hours of the
following days the county's monitors act on what they were given, simulated from the seed
(monitor/demo/monitors.py) through the same functions the CLI calls — acknowledge,
resolve, confirm, reject, order, release a hold — with the simulated moment as ``at``.

Nothing reads the clock: the same seed and size give the same trail, to the hash.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from pathlib import Path

from sqlalchemy import Engine, func, select

from ..auditpass import audit_pass
from ..config import Config
from ..db import open_store
from ..models import Alert, OutboxMessage, TrailEntry
from ..rules.loader import load_rules
from ..supervision import ACTIVE, policy_for
from ..trailcheck import Verified, verify
from . import Loaded, load_demo, planted_counts
from .monitors import Monitors
from .window import FIRST_DAY, LAST_DAY

RUN_AT = time(18, 0)  # the nightly run: office hours are 08:30–17:30
COUNTED = ("raised", "acknowledged", "resolved", "escalated", "order_issued", "reminded",
           "confirmed", "rejected", "held", "released")


@dataclass
class Month:
    """What happened in one local month, from the trail."""

    month: str
    actions: Counter = field(default_factory=Counter)       # trail action → entries
    dispositions: Counter = field(default_factory=Counter)  # rectified / explained / …
    still_open: int = 0     # raised this month, still to be acted on at the end
    awaiting_review: int = 0  # raised this month, resolved at tier 2, not yet reviewed
    messages: int = 0       # notifications queued this month


@dataclass(frozen=True)
class Replay:
    days: int               # working days replayed
    first: datetime         # the first and last run
    last: datetime
    months: list[Month]
    messages: int           # notifications queued in all
    verified: Verified      # ``audit verify`` of the trail at the end
    example: int | None     # an alert that went through both tiers (rejected, then more)


@dataclass(frozen=True)
class ReplayResult:
    loaded: Loaded
    planted: dict[str, int]
    controls: dict[str, int]
    replay: Replay


def replay_demo(directory: str | Path, *, seed: int, cases: int, now: datetime,
                database_url: str | None = None,
                progress: Callable[[int], Callable[[date], None]] | None = None
                ) -> ReplayResult:
    """Generate and load the county (:func:`load_demo`), then :func:`replay` it;
    ``progress(days)`` returns the function to call after each day."""
    loaded = load_demo(directory, seed=seed, cases=cases, now=now, database_url=database_url)
    engine = open_store(loaded.database_url)
    try:
        tick = progress(len(replay_days(loaded.config))) if progress else None
        result = replay(engine, loaded.config, seed=seed, progress=tick)
    finally:
        engine.dispose()
    return ReplayResult(loaded, *planted_counts(loaded), result)


def replay_days(config: Config, first: date = FIRST_DAY, last: date = LAST_DAY) -> list[date]:
    """The working days from ``first`` to ``last``, both included."""
    cal, days, day = config.calendar(), [], first
    while day <= last:
        if cal.is_workday(day):
            days.append(day)
        day += timedelta(days=1)
    return days


def replay(engine: Engine, config: Config, *, seed: int,
           progress: Callable[[date], None] | None = None) -> Replay:
    """Replay the window day by day on a loaded county with no alerts yet (see the module
    docstring); ``progress`` is called after each day."""
    rules = load_rules([config.rules_dir], config.limits)
    policy = policy_for(config, rules)
    people = Monitors(engine, policy, seed)
    days = replay_days(config)
    moments = [datetime.combine(d, RUN_AT, config.tz) for d in days]
    for day, moment in zip(days, moments):
        people.act(day)
        done = audit_pass(engine, config, moment, rules=rules, stages=("evaluate", "escalate"))
        if done.errors:
            raise RuntimeError(f"{day}: {done.errors[0]}")
        people.plan(day)
        if progress:
            progress(day)
    months = summarise(engine, config)
    return Replay(len(days), moments[0], moments[-1], months,
                  sum(m.messages for m in months), verify(engine), _example(engine))


def _example(engine: Engine) -> int | None:
    """The first alert rejected by tier 2 and then confirmed (else the first rejected)."""
    with engine.connect() as conn:
        rejected = select(TrailEntry.alert_id).where(TrailEntry.action == "rejected")
        return conn.scalar(select(func.min(Alert.id)).where(Alert.id.in_(rejected),
                                                            Alert.status == "confirmed")) \
            or conn.scalar(select(func.min(TrailEntry.alert_id))
                           .where(TrailEntry.action == "rejected"))


def summarise(engine: Engine, config: Config) -> list[Month]:
    """Per local month: trail entries by action, dispositions by kind, alerts raised that
    month still open (or awaiting tier 2's review) now, and notifications queued."""
    out: dict[str, Month] = {}

    def month(at: datetime) -> Month:
        key = at.astimezone(config.tz).strftime("%Y-%m")
        return out.setdefault(key, Month(key))

    with engine.connect() as conn:
        for action, at, detail in conn.execute(
                select(TrailEntry.action, TrailEntry.at, TrailEntry.detail)
                .where(TrailEntry.action.in_(COUNTED))):
            m = month(at)
            m.actions[action] += 1
            if action == "resolved":
                m.dispositions[detail["disposition"]] += 1
        for raised_at, status, tier in conn.execute(
                select(Alert.raised_at, Alert.status, Alert.tier)
                .where(Alert.status.in_((*ACTIVE, "resolved")))):
            if status in ACTIVE:
                month(raised_at).still_open += 1
            elif tier == 2:
                month(raised_at).awaiting_review += 1
        for at, n in conn.execute(select(OutboxMessage.created_at, func.count())
                                  .group_by(OutboxMessage.created_at)):
            month(at).messages += n
    return [out[k] for k in sorted(out)]
