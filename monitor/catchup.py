"""Catch-up after downtime: the scheduled moments an evaluating run missed.

A finding can exist only for a while: an open case within a working day of its promised
limit (``warning``, 临期预警) that is decided the next day was a finding at that night's
pass and is none now. Evaluating once, as of the moment the machine is back, would never
raise it. So ``nightly`` (and the daemon's ``evaluate`` and ``nightly`` jobs) first
evaluate as of each **slot** missed since the last successful evaluating run, oldest
first, then as of now — incrementally (monitor/engine.py), each evaluation seeing only
what happened by its moment.

**Since when**: the ``as_of`` of the last run of ``nightly`` or ``evaluate`` recorded
``ok`` (monitor/runs.py), or the rules' own last evaluation (``rule_state``) if a
hand-started ``run`` came later. No successful run yet (a new installation): no
catch-up, the first pass evaluates as of now only.

**Which slots** (:func:`slot_times`): the moments the runs that did not happen were due.
For ``nightly`` started by cron or by hand: the fire times of ``schedule.jobs.nightly``
(default ``0 2 * * *``, which the README's crontab line mirrors), enumerated with
APScheduler's CronTrigger in the configured timezone; with that job ``off``, one slot a
day at the local time of the last successful run. For the daemon's jobs: the fire times
of both its evaluating jobs (``nightly`` and ``evaluate``), since it runs both. A slot
less than ``schedule.misfire_grace_seconds`` before this run's moment is this run's own
(cron starts a few seconds late; the daemon too), not a missed one.

**Bounded**: at most ``catch_up_max_slots`` (31) slots, the most recent; the oldest of
them then also covers the older ones (it looks at everything stored since the last run,
as of its moment), which the summary and the log say.

**Escalation and reminders** are not replayed per slot: they run once, as of now, after
the evaluations. An alert whose handling deadline ran out during the downtime (its
deadline counts from the slot it was raised at) is escalated now, once, with a
supervision order whose deadline counts from now — the department can act on an order
only from the day it exists; and a tier-2 alert reminds once, not once per missed day.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import Engine, func, select

from .config import Config
from .crontab import cron_trigger
from .models import RuleState, Run

EVALUATING = ("nightly", "evaluate")


@dataclass
class Plan:
    """The missed slots to evaluate as of, oldest first (this run's own moment apart)."""

    since: datetime | None = None
    slots: list[datetime] = field(default_factory=list)
    skipped: int = 0  # older missed slots beyond catch_up_max_slots

    def as_dict(self) -> dict:
        return {"since": self.since.isoformat() if self.since else None,
                "slots": [s.isoformat() for s in self.slots], "skipped": self.skipped}


def _aware(value: datetime) -> datetime:
    from .rules.kinds._common import aware

    return aware(value)


def last_evaluated(engine: Engine) -> datetime | None:
    """The moment everything was last evaluated as of: the last successful evaluating run
    (or a later hand-started ``run``, by the rules' watermarks); None if no run succeeded."""
    with engine.connect() as conn:
        run = conn.execute(select(Run.counts, Run.started_at).where(
            Run.job.in_(EVALUATING), Run.status == "ok").order_by(Run.id.desc())
            .limit(1)).one_or_none()
        latest_rule = conn.scalar(select(func.max(RuleState.as_of)))
    if run is None:
        return None
    as_of = (run.counts or {}).get("as_of")
    since = datetime.fromisoformat(as_of) if as_of else _aware(run.started_at)
    return max(since, _aware(latest_rule)) if latest_rule is not None else since


def slot_times(config: Config, trigger: str, since: datetime, until: datetime,
               keep: int) -> tuple[list[datetime], int]:
    """The last ``keep`` slots in (``since``, ``until``], and how many older ones there were."""
    jobs = config.schedule.jobs
    names = EVALUATING if trigger == "serve" else ("nightly",)
    exprs = [jobs[n] for n in names if jobs.get(n, "off") != "off"]
    found: set[datetime] = set()
    if exprs:
        for expr in exprs:
            trig = cron_trigger(expr, config.tz)
            at = trig.get_next_fire_time(None, since + timedelta(microseconds=1))
            while at is not None and at <= until:
                found.add(at)
                at = trig.get_next_fire_time(at, at + timedelta(microseconds=1))
    else:  # no nightly schedule: one slot a day at the last run's local time of day
        local = since.astimezone(config.tz)
        day = 1
        while (at := datetime.combine(local.date() + timedelta(days=day), local.timetz())
               ) <= until:
            found.add(at)
            day += 1
    kept = sorted(found)[-keep:] if keep > 0 else []
    return kept, len(found) - len(kept)


def plan(engine: Engine, config: Config, trigger: str, as_of: datetime) -> Plan:
    """What a run as of ``as_of`` has to catch up on (see the module's docstring)."""
    since = last_evaluated(engine)
    if since is None or since >= as_of:
        return Plan(since)
    until = as_of - timedelta(seconds=config.schedule.misfire_grace_seconds)
    slots, skipped = slot_times(config, trigger, since, until, config.catch_up_max_slots)
    return Plan(since, slots, skipped)
