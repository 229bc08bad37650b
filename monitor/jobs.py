"""Jobs that run unattended — by cron (``nightly``), by the ``serve`` daemon, or by hand —
each under the database lease (monitor/lease.py) and each with a run record
(monitor/runs.py).

A job is a sequence of steps: ``inbox`` (ingest the drop directory), ``pull`` (the source
databases), ``evaluate`` (the rules), ``escalate``, ``report`` (the day's report,
see :func:`build_report`) and ``flush`` (deliver notifications). ``nightly`` is all of
them in that order. A step that fails with a :class:`MonitorError` is recorded and the
next steps still run (a source database that is down must not stop the audit); the run
is then ``failed`` and raises an operational alert.

Catch-up (monitor/catchup.py): after downtime the ``evaluate`` step evaluates as of each
scheduled slot missed since the last successful run, then as of the run's own moment,
each incrementally from the rules' watermarks (monitor/engine.py), so a finding that
existed only at a missed slot is raised too; alerts are keyed by rule and subject, so
nothing is raised twice. Escalation runs once, as of the run's moment.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine, func, select, update

from . import lease, runs
from .config import Config
from .errors import MonitorError
from .models import Alert, AlertChange, OutboxMessage, Run
from .supervision import policy_for

log = logging.getLogger(__name__)
Clock = Callable[[], datetime]
STEPS = ("inbox", "pull", "evaluate", "escalate", "report", "flush")
JOB_STEPS = {"nightly": STEPS, **{s: (s,) for s in STEPS if s != "report"}}


class RuleCache:
    """The rules, re-read at every run; an edit that made them invalid is reported and the
    last good version keeps running (in a long-lived process such as ``serve``)."""

    def __init__(self) -> None:
        self.good: list | None = None

    def load(self, config: Config) -> tuple[list, str | None]:
        from .rules.loader import load_rules

        try:
            self.good = load_rules([config.rules_dir])
            return self.good, None
        except MonitorError as exc:
            if self.good is None:
                raise
            log.error("rule files invalid; the last good version keeps running: %s", exc)
            return self.good, f"rule files invalid, last good version used: {exc}"


@dataclass
class Runner:
    """What a job needs: the store, the settings, the clocks and who it is."""

    engine: Engine
    config: Config
    clock: Clock                      # now, aware; what runs are stamped with
    wall: Callable[[], float] = time.time  # for the inbox's settle check (file mtimes)
    trigger: str = "manual"
    rules: RuleCache = field(default_factory=RuleCache)

    @property
    def ttl(self) -> timedelta:
        return timedelta(seconds=self.config.lease_seconds)


@dataclass
class JobResult:
    job: str
    run_id: int
    as_of: datetime
    status: str
    counts: dict[str, Any]
    errors: list[str]
    new_red: int
    seconds: float


# ---------------------------------------------------------------- steps


def _step_inbox(r: Runner, as_of: datetime, counts: dict) -> list[str]:
    from .inbox import process_inbox, waiting_files

    if r.config.inbox is None:
        return []
    settled_before = r.wall() - r.config.inbox.settle_seconds
    files = process_inbox(r.engine, r.config, as_of, settled_before)
    counts["inbox_waiting"] = len(waiting_files(r.config.inbox, settled_before))
    counts["inbox_files"] = len(files)
    counts["inbox_failed"] = sum(f.status == "failed" for f in files)
    counts["inbox"] = [{"file": f.name, "kind": f.kind, "status": f.status,
                        "detail": f.detail.splitlines()[0]} for f in files]
    return []


def _step_pull(r: Runner, as_of: datetime, counts: dict) -> list[str]:
    from .pull import pull

    errors = []
    for name in r.config.sources:
        try:
            tally = pull(r.engine, r.config, name, as_of)
            counts.setdefault("pulled", {})[name] = tally.as_dict()
        except MonitorError as exc:
            errors.append(f"pull {name}: {exc}")
    return errors


def _step_evaluate(r: Runner, as_of: datetime, counts: dict) -> list[str]:
    """The rules as of each scheduled slot missed since the last successful run (see
    monitor/catchup.py), oldest first, then as of ``as_of``."""
    from .catchup import plan
    from .engine import evaluate

    rules = _rules(r, as_of, counts)
    todo = plan(r.engine, r.config, r.trigger, as_of)
    if todo.skipped:
        log.warning("catch-up: %d missed slot(s) since %s; catch_up_max_slots %d: the %d "
                    "older one(s) are covered by the evaluation as of %s",
                    todo.skipped + len(todo.slots), todo.since.isoformat(),
                    r.config.catch_up_max_slots, todo.skipped,
                    todo.slots[0].isoformat() if todo.slots else as_of.isoformat())
    if todo.slots or todo.skipped:
        counts["catch_up"] = todo.as_dict()
    new = changed = 0
    errors: dict[str, str] = {}
    for moment in [*todo.slots, as_of]:
        if moment is not as_of:
            log.info("catch-up: evaluating as of missed slot %s", moment.isoformat())
        outcomes = evaluate(r.engine, r.config, moment, rules=rules, keep=False)
        new += sum(o.stored.new for o in outcomes if o.stored)
        changed += sum(o.stored.changed for o in outcomes if o.stored)
        for o in outcomes:
            if o.error:
                errors.setdefault(o.rule.id, f"rule {o.rule.id} failed as of "
                                             f"{moment.isoformat()}: {o.error}")
    counts["rules"] = len(outcomes)
    counts["findings"] = sum(o.found for o in outcomes)
    counts["new_alerts"], counts["updated_alerts"] = new, changed
    counts["failed_rules"] = len(errors)
    return list(errors.values())


def _step_escalate(r: Runner, as_of: datetime, counts: dict) -> list[str]:
    from .escalation import escalate

    out = escalate(r.engine, policy_for(r.config, _rules(r, as_of, counts)), as_of)
    counts.update(escalated=len(out.escalated), reminded=len(out.reminded),
                  queued=out.messages)
    return []


def _rules(r: Runner, as_of: datetime, counts: dict) -> list:
    """The rules as they are on disk now; if an edit broke them, the last good version,
    and the problem is recorded with the run and raised once as an operational alert."""
    rules, problem = r.rules.load(r.config)
    if problem:
        counts["rules_problem"] = problem
        runs.rules_alert(r.engine, policy_for(r.config, rules), as_of, problem)
    return rules


def build_report(engine: Engine, config: Config, as_of: datetime) -> str | None:
    """The day's report: the month to date of the day before ``as_of`` (local), so the
    02:00 pass on the 1st still closes the month just ended. Written as
    ``reports/report-YYYY-MM.html`` and ``.xlsx`` beside config.yaml, rewritten each night."""
    from .report import build_report as build, write_documents
    from .report.period import month

    day = (as_of.astimezone(config.tz) - timedelta(days=1)).date()
    report = build(engine, config, month(day), as_of)
    html, xlsx = write_documents(report, config.base_dir / "reports")
    return f"{html} (+ {xlsx.name})"


def _step_report(r: Runner, as_of: datetime, counts: dict) -> list[str]:
    made = build_report(r.engine, r.config, as_of)
    if made:
        counts["report"] = made
    return []


def release_orphans(engine: Engine, now: datetime) -> int:
    """Messages left ``sending`` by a flusher that died: every flusher runs under the lease,
    so while this runner holds it no other is sending; they are due again now (delivery is
    at least once: a message the dead flusher had handed to its sink goes again)."""
    with engine.begin() as conn:
        return conn.execute(update(OutboxMessage).where(OutboxMessage.status == "sending")
                            .values(status="pending", next_attempt_at=now)).rowcount


def _step_flush(r: Runner, as_of: datetime, counts: dict) -> list[str]:
    from .outbox import flush

    counts["redelivered"] = release_orphans(r.engine, as_of)
    out = flush(r.engine, r.config.notify, r.config.base_dir, as_of)
    counts.update(sent=out.sent, retrying=out.retrying, undeliverable=out.failed)
    for error in out.errors[:5]:
        log.warning("delivery: %s", error)
    return []


STEP_FUNCTIONS = {"inbox": _step_inbox, "pull": _step_pull, "evaluate": _step_evaluate,
                  "escalate": _step_escalate, "report": _step_report, "flush": _step_flush}


# ---------------------------------------------------------------- running a job


def _marks(engine: Engine) -> tuple[int, int]:
    with engine.connect() as conn:
        return (conn.scalar(select(func.coalesce(func.max(Alert.id), 0))),
                conn.scalar(select(func.coalesce(func.max(AlertChange.id), 0))))


def new_red(engine: Engine, marks: tuple[int, int]) -> int:
    """Red alerts raised, or turned red, since ``marks`` (operational alerts aside)."""
    with engine.connect() as conn:
        raised = conn.scalar(select(func.count()).select_from(Alert).where(
            Alert.id > marks[0], Alert.level == "red", Alert.kind != runs.OPERATIONAL))
        turned = conn.scalar(select(func.count(func.distinct(AlertChange.alert_id))).where(
            AlertChange.id > marks[1], AlertChange.new_level == "red",
            AlertChange.alert_id <= marks[0]))
    return raised + turned


def interrupted_runs(r: Runner, holder: str, now: datetime) -> list[int]:
    """Runs still ``running`` under another holder: with the lease in hand, their process
    is gone (every recorded run holds the lease)."""
    with r.engine.connect() as conn:
        holders = conn.scalars(select(Run.holder).where(
            Run.status == "running", Run.holder != holder).distinct()).all()
    policy = policy_for(r.config)
    return [i for h in holders for i in runs.mark_interrupted(r.engine, policy, h, now)]


def run_job(r: Runner, job: str, as_of: datetime | None = None, *,
            wait_seconds: float | None = None, scheduled_for: datetime | None = None,
            phase: Callable[[str], None] | None = None) -> JobResult:
    """Run ``job`` (a key of :data:`JOB_STEPS`) as of ``as_of`` (default: the clock) under
    the lease; raises :class:`~monitor.lease.LeaseBusy` if another run keeps it."""
    wait = r.config.lease_wait_seconds if wait_seconds is None else wait_seconds
    started = time.monotonic()
    holder = lease.new_holder()  # one per run: two jobs of one daemon exclude each other too
    with lease.hold(r.engine, lease.MAIN, holder, r.clock, r.ttl, wait):
        as_of = as_of or r.clock()
        interrupted_runs(r, holder, r.clock())
        marks = _marks(r.engine)
        run_id = runs.start(r.engine, job, r.trigger, r.clock(), holder, scheduled_for)
        log.info("%s: run %s as of %s", job, run_id, as_of.isoformat())
        counts: dict[str, Any] = {"_steps": JOB_STEPS[job]}
        errors: list[str] = []
        try:
            for step in JOB_STEPS[job]:
                if phase:
                    phase(step)
                log.info("%s: %s", job, step)
                try:
                    errors += STEP_FUNCTIONS[step](r, as_of, counts)
                except MonitorError as exc:
                    errors.append(f"{step}: {exc}")
        except BaseException as exc:  # a bug or a signal: record it, then let it go on
            try:
                runs.finish(r.engine, policy_for(r.config), run_id, r.clock(), _plain(counts),
                            f"{type(exc).__name__}: {exc}".splitlines()[0])
            except Exception:  # the database itself is gone: the next runner will see it
                log.exception("could not record the failure of run %s", run_id)
            raise
        counts = _plain(counts)
        red = new_red(r.engine, marks)
        counts["new_red"] = red
        counts["as_of"] = as_of.isoformat()
        runs.finish(r.engine, policy_for(r.config), run_id, r.clock(), counts,
                    "; ".join(errors)[:4000] if errors else None)
    return JobResult(job, run_id, as_of, "failed" if errors else "ok", counts, errors, red,
                     time.monotonic() - started)


@contextmanager
def exclusive(engine: Engine, config: Config, clock: Clock) -> Iterator[lease.Held]:
    """Hold the lease around a hand-started command (``run``, ``escalate``, ``notify
    flush``), so it never runs at the same time as ``nightly`` or the daemon's jobs."""
    with lease.hold(engine, lease.MAIN, lease.new_holder(), clock,
                    timedelta(seconds=config.lease_seconds), config.lease_wait_seconds) as held:
        yield held


def _plain(counts: dict) -> dict:
    return {k: v for k, v in counts.items() if not k.startswith("_")}


def summary(result: JobResult, config: Config) -> str:
    """One paragraph for people (and cron's mail): what the pass did."""
    c = result.counts
    at = result.as_of.astimezone(config.tz)
    parts = [f"{result.job} as of {at:%Y-%m-%d %H:%M} ({config.timezone}):"]
    if "inbox_files" in c:
        waiting = c.get("inbox_waiting")
        parts.append(f"inbox {c['inbox_files']} file(s), {c['inbox_failed']} rejected"
                     + (f", {waiting} left for the next pass (still being written);"
                        if waiting else ";"))
    if c.get("pulled"):
        rows = sum(t["inserted"] for t in c["pulled"].values())
        parts.append(f"pulled {rows} new event(s) from {len(c['pulled'])} source(s);")
    if c.get("catch_up"):
        cu = c["catch_up"]
        if cu["slots"]:
            first, last = (datetime.fromisoformat(cu["slots"][i]).astimezone(config.tz)
                           for i in (0, -1))
            text = (f"caught up {len(cu['slots'])} missed slot(s) "
                    f"({first:%Y-%m-%d %H:%M} … {last:%Y-%m-%d %H:%M})")
            if cu["skipped"]:
                text += (f", {cu['skipped']} older one(s) beyond catch_up_max_slots covered "
                         "by the first")
        else:
            text = (f"{cu['skipped']} missed slot(s) not caught up one by one "
                    "(catch_up_max_slots 0)")
        parts.append(text + ";")
    if "rules" in c:
        parts.append(f"{c['rules']} rule(s) evaluated, {c['failed_rules']} failed: "
                     f"{c['new_alerts']} new alert(s), {c['updated_alerts']} updated, "
                     f"{result.new_red} new red;")
    if "escalated" in c:
        parts.append(f"escalated {c['escalated']}, reminded {c['reminded']};")
    if c.get("report"):
        parts.append(f"report: {c['report']};")
    if "sent" in c:
        parts.append(f"notifications sent {c['sent']}, retrying {c['retrying']}, "
                     f"undeliverable {c['undeliverable']}.")
    status = "ok" if result.status == "ok" else f"FAILED ({'; '.join(result.errors)})"
    parts.append(f"Run {result.run_id} {status} in {result.seconds:.1f} s.")
    return " ".join(parts)
