"""Jobs that run unattended — by cron (``nightly``), by the ``serve`` daemon, or by hand —
each under the database lease (monitor/lease.py) and each with a run record
(monitor/runs.py).

A job is a sequence of steps: ``inbox`` (ingest the drop directory), ``pull`` (the source
databases), then the stages of an audit pass (monitor/auditpass.py): ``evaluate`` (the
rules), ``escalate``, ``report`` (the day's report) and ``flush`` (deliver notifications).
``nightly`` is all of them in that order; each daemon job but ``nightly`` is one step. A
step that fails with a :class:`MonitorError` is recorded and the next steps still run (a
source database that is down must not stop the audit); the run is then ``failed`` and
raises an operational alert. What a run did is a :class:`RunCounts`, stored with its run
record in the form :meth:`RunCounts.as_dict` gives (``nightly --json`` prints it).

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
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine, func, select

from . import lease, runs
from .auditpass import STAGES, PassSummary, audit_pass, internal_error
from .config import Config
from .errors import MonitorError
from .masking import mask
from .regionrules import RuleSets, load_rule_sets
from .models import Alert, AlertChange, Lease, Run
from .supervision import policy_for

if TYPE_CHECKING:
    from .catchup import Plan
    from .inbox import InboxFile
    from .ingest import Tally

log = logging.getLogger(__name__)
Clock = Callable[[], datetime]
INGEST_STEPS = ("inbox", "pull")
STEPS = (*INGEST_STEPS, *STAGES)
JOB_STEPS = {"nightly": STEPS, **{s: (s,) for s in STEPS if s != "report"}}


class RuleCache:
    """The rules, re-read at every run; an edit that made them invalid is reported and the
    last good version keeps running (in a long-lived process such as ``serve``)."""

    def __init__(self) -> None:
        self.good: RuleSets | None = None

    def load(self, config: Config) -> tuple[RuleSets, str | None]:
        """The base rules and every county's overrides (monitor/regionrules.py)."""
        try:
            self.good = load_rule_sets(config)
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
    # now as POSIX seconds, for the inbox's settle check against file modification times
    # (the real clock even when ``clock`` is a test's or a replay's: files are real)
    wall: Callable[[], float]
    trigger: str = "manual"
    rules: RuleCache = field(default_factory=RuleCache)

    @property
    def ttl(self) -> timedelta:
        return timedelta(seconds=self.config.lease_seconds)


@dataclass
class RunCounts:
    """What a run did, step by step; None: the step did not run (or did not finish)."""

    inbox: list[InboxFile] | None = None    # the files taken from the inbox
    inbox_waiting: int | None = None        # … and those left for the next pass
    pulled: dict[str, Tally] | None = None  # source → its tally (those that answered)
    rules_problem: str | None = None        # rule files invalid, the last good ones used
    audit: PassSummary | None = None        # evaluate, escalate, report, flush
    new_red: int | None = None              # red alerts raised, or turned red, by the run
    as_of: datetime | None = None
    anchor: dict[str, Any] | None = None    # the trail's signed checkpoint (audit.anchor_dir)

    def as_dict(self) -> dict[str, Any]:
        """The record form: what ``runs.counts`` stores and ``nightly --json`` prints."""
        out: dict[str, Any] = {}
        if self.inbox is not None:
            out.update(inbox_waiting=self.inbox_waiting, inbox_files=len(self.inbox),
                       inbox_failed=sum(f.status == "failed" for f in self.inbox),
                       inbox=[{"file": f.name, "kind": f.kind, "status": f.status,
                               "detail": f.detail.splitlines()[0]} for f in self.inbox])
        if self.pulled:
            out["pulled"] = {name: t.as_dict() for name, t in self.pulled.items()}
        if self.rules_problem:
            out["rules_problem"] = self.rules_problem
        if self.audit:
            out.update(_pass_counts(self.audit))
        if self.new_red is not None:
            out["new_red"] = self.new_red
        if self.as_of is not None:
            out["as_of"] = self.as_of.isoformat()
        if self.anchor is not None:
            out["anchor"] = self.anchor
        return out


def _pass_counts(done: PassSummary) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if done.catch_up:
        out["catch_up"] = done.catch_up.as_dict()
    if ev := done.evaluation:
        out.update(rules=len(ev.outcomes), findings=ev.findings, new_alerts=ev.new_alerts,
                   updated_alerts=ev.updated_alerts, failed_rules=len(ev.failures),
                   told=ev.messages, cleared=ev.cleared)
    if esc := done.escalation:
        out.update(escalated=len(esc.escalated), reminded=len(esc.reminded),
                   queued=esc.messages)
    if done.report:
        out["report"] = done.report
    if done.redelivered is not None:
        out["redelivered"] = done.redelivered
    if sent := done.delivery:
        out.update(sent=sent.sent, retrying=sent.retrying, undeliverable=sent.failed)
    return out


@dataclass
class JobResult:
    job: str
    run_id: int
    as_of: datetime
    status: str
    figures: RunCounts
    errors: list[str]
    new_red: int
    seconds: float

    @property
    def counts(self) -> dict[str, Any]:
        """The run's counts in their record form (see :meth:`RunCounts.as_dict`)."""
        return self.figures.as_dict()


# ---------------------------------------------------------------- steps


def _step_inbox(r: Runner, as_of: datetime, counts: RunCounts) -> list[str]:
    from .inbox import process_inbox, waiting_files

    if r.config.inbox is None:
        return []
    settled_before = r.wall() - r.config.inbox.settle_seconds
    files = process_inbox(r.engine, r.config, as_of, settled_before)
    counts.inbox_waiting = len(waiting_files(r.config.inbox, settled_before))
    counts.inbox = files
    return []


def _step_pull(r: Runner, as_of: datetime, counts: RunCounts) -> list[str]:
    from .pull import pull

    errors = []
    for name in r.config.sources:
        try:
            tally = pull(r.engine, r.config, name, as_of)
            if counts.pulled is None:
                counts.pulled = {}
            counts.pulled[name] = tally
        except MonitorError as exc:
            errors.append(f"pull {name}: {exc}")
    return errors


INGEST_FUNCTIONS = {"inbox": _step_inbox, "pull": _step_pull}


def _rules(r: Runner, as_of: datetime, counts: RunCounts) -> RuleSets:
    """The rules as they are on disk now; if an edit broke them, the last good version,
    and the problem is recorded with the run and raised once as an operational alert."""
    rules, problem = r.rules.load(r.config)
    if problem:
        counts.rules_problem = problem
        runs.rules_alert(r.engine, policy_for(r.config, rules.base), as_of, problem)
    return rules


def _anchor(r: Runner, counts: RunCounts) -> list[str]:
    """After a nightly pass, a signed anchor of the trail where ``audit`` says
    (monitor/anchor.py); a failure is the run's error, not a crash."""
    from .anchor import anchor

    settings = r.config.audit
    try:
        done = anchor(r.engine, r.clock(), settings.signature, directory=settings.anchor_dir,
                      webhook=settings.anchor_webhook)
    except MonitorError as exc:
        return [f"anchor: {exc}"]
    counts.anchor = {"entries": done.anchor["entries"], "head": done.anchor["head"],
                     "written": done.written}
    return []


def _run_steps(r: Runner, job: str, as_of: datetime, counts: RunCounts,
               phase: Callable[[str], None] | None, steps: tuple[str, ...]) -> list[str]:
    """The job's steps in order — ingestion here, then one audit pass of the stages it
    has — filling ``counts``; returns what went wrong."""
    def begin(step: str) -> None:
        if phase:
            phase(step)
        log.info("%s: %s", job, step)

    errors: list[str] = []
    for step in (s for s in steps if s in INGEST_STEPS):
        begin(step)
        try:
            errors += INGEST_FUNCTIONS[step](r, as_of, counts)
        except MonitorError as exc:
            errors.append(f"{step}: {exc}")
        except Exception as exc:  # a bug: its traceback to the log, and the pass goes on
            errors.append(internal_error(step, exc))
    stages = [s for s in steps if s in STAGES]
    if stages:
        def stage(step: str, so_far: PassSummary) -> None:
            counts.audit = so_far  # kept if the run is interrupted
            begin(step)

        done = audit_pass(r.engine, r.config, as_of, rules=lambda: _rules(r, as_of, counts),
                          stages=stages, catch_up=r.trigger, keep_going=True, on_stage=stage)
        counts.audit = done
        errors += done.errors
        for error in (done.delivery.errors[:5] if done.delivery else []):
            log.warning("delivery: %s", error)
    if job == "nightly" and r.config.audit.anchors:
        begin("anchor")
        errors += _anchor(r, counts)
    return errors


# ---------------------------------------------------------------- running a job


def _marks(engine: Engine) -> tuple[int, int]:
    with engine.connect() as conn:
        return (conn.scalar(select(func.coalesce(func.max(Alert.id), 0))) or 0,
                conn.scalar(select(func.coalesce(func.max(AlertChange.id), 0))) or 0)


def new_red(engine: Engine, marks: tuple[int, int]) -> int:
    """Red alerts raised, or turned red, since ``marks`` (operational alerts aside)."""
    with engine.connect() as conn:
        raised = conn.scalar(select(func.count()).select_from(Alert).where(
            Alert.id > marks[0], Alert.level == "red", Alert.kind != runs.OPERATIONAL)) or 0
        turned = conn.scalar(select(func.count(func.distinct(AlertChange.alert_id))).where(
            AlertChange.id > marks[1], AlertChange.new_level == "red",
            AlertChange.alert_id <= marks[0])) or 0
    return raised + turned


def interrupted_runs(r: Runner, holder: str, now: datetime) -> list[int]:
    """Runs still ``running`` under another holder: with the lease in hand, their process
    is gone (every recorded run holds the lease)."""
    live = select(Lease.holder).where(Lease.expires_at > now)  # a flusher at work
    with r.engine.connect() as conn:
        holders = conn.scalars(select(Run.holder).where(
            Run.status == "running", Run.holder != holder, Run.holder.not_in(live))
            .distinct()).all()
    policy = policy_for(r.config)
    return [i for h in holders if h is not None
            for i in runs.mark_interrupted(r.engine, policy, h, now)]


def run_job(r: Runner, job: str, as_of: datetime | None = None, *,
            wait_seconds: float | None = None, scheduled_for: datetime | None = None,
            phase: Callable[[str], None] | None = None) -> JobResult:
    """Run ``job`` (a key of :data:`JOB_STEPS`) as of ``as_of`` (default: the clock) under
    the main lease; raises :class:`~monitor.lease.LeaseBusy` if another run keeps it.

    Delivery is never inside the main lease: a job's ``flush`` step runs after the job
    let go of it, under the outbox lease (one flusher at a time), and its outcome is
    added to the run's record (:func:`monitor.runs.amend`); the ``flush`` job takes only
    the outbox lease. A slow sink therefore never keeps ``run`` or ``nightly`` waiting."""
    wait = r.config.lease_wait_seconds if wait_seconds is None else wait_seconds
    started = time.monotonic()
    holder = lease.new_holder()  # one per run: two jobs of one daemon exclude each other too
    steps = JOB_STEPS[job]
    main = tuple(s for s in steps if s != "flush")
    with lease.hold(r.engine, lease.MAIN if main else lease.OUTBOX, holder, r.clock, r.ttl,
                    wait):
        as_of = as_of or r.clock()
        if main:
            interrupted_runs(r, holder, r.clock())
        marks = _marks(r.engine)
        run_id = runs.start(r.engine, job, r.trigger, r.clock(), holder, scheduled_for)
        log.info("%s: run %s as of %s", job, run_id, as_of.isoformat())
        counts = RunCounts()
        try:
            errors = _run_steps(r, job, as_of, counts, phase, main or steps)
        except BaseException as exc:  # a bug or a signal: record it, then let it go on
            try:
                runs.finish(r.engine, policy_for(r.config), run_id, r.clock(), counts.as_dict(),
                            f"{type(exc).__name__}: {exc}".splitlines()[0])
            except Exception:  # the database itself is gone: the next runner will see it
                log.exception("could not record the failure of run %s", run_id)
            raise
        counts.new_red = red = new_red(r.engine, marks)
        counts.as_of = as_of
        runs.finish(r.engine, policy_for(r.config), run_id, r.clock(), counts.as_dict(),
                    "; ".join(errors)[:4000] if errors else None)
    errors = [mask(e) for e in errors]
    if main and "flush" in steps:
        errors += _deliver_after(r, job, run_id, as_of, counts, phase, wait, bool(errors))
    return JobResult(job, run_id, as_of, "failed" if errors else "ok", counts, errors, red,
                     time.monotonic() - started)


def _deliver_after(r: Runner, job: str, run_id: int, as_of: datetime, counts: RunCounts,
                   phase: Callable[[str], None] | None, wait: float, failed: bool
                   ) -> list[str]:
    """A job's flush step, outside the main lease, under the outbox lease: everything due
    by the run's moment, then (for a failed run) its notice at once, not at the next pass
    (which may be the failing one again, tomorrow)."""
    try:
        with lease.hold(r.engine, lease.OUTBOX, lease.new_holder(), r.clock, r.ttl, wait):
            if phase:
                phase("flush")
            log.info("%s: flush", job)
            done = audit_pass(r.engine, r.config, as_of, rules=(), stages=("flush",),
                              keep_going=True)
            if counts.audit is None:
                counts.audit = done
            else:
                counts.audit.redelivered, counts.audit.delivery = done.redelivered, done.delivery
            for error in (done.delivery.errors[:5] if done.delivery else []):
                log.warning("delivery: %s", error)
            runs.amend(r.engine, policy_for(r.config), run_id, r.clock(), counts.as_dict(),
                       "; ".join(done.errors)[:4000] if done.errors else None)
            if failed or done.errors:  # its notice was queued now, after the run's moment
                _flush_now(r)
            return done.errors
    except lease.LeaseBusy:  # another flusher is at work: it delivers these too
        log.info("flush: another flusher holds the outbox; it delivers this run's messages")
        return []


def _flush_now(r: Runner) -> None:
    from .outbox import flush

    try:
        flush(r.engine, r.config.notify, r.config.base_dir, r.clock(), r.config.regions)
    except Exception:
        log.exception("could not deliver the notice of the failed run")


@contextmanager
def exclusive(engine: Engine, config: Config, clock: Clock,
              name: str = lease.MAIN) -> Iterator[lease.Held]:
    """Hold a lease around a hand-started command: the main one (``run``, ``escalate``),
    so it never runs at the same time as ``nightly`` or the daemon's jobs, or the
    outbox's (``notify flush``: one flusher at a time)."""
    with lease.hold(engine, name, lease.new_holder(), clock,
                    timedelta(seconds=config.lease_seconds), config.lease_wait_seconds) as held:
        yield held


def summary(result: JobResult, config: Config) -> str:
    """One paragraph for people (and cron's mail): what the pass did."""
    c, done = result.figures, result.figures.audit
    at = result.as_of.astimezone(config.tz)
    parts = [f"{result.job} as of {at:%Y-%m-%d %H:%M} ({config.timezone}):"]
    if c.inbox is not None:
        failed = sum(f.status == "failed" for f in c.inbox)
        parts.append(f"inbox {len(c.inbox)} file(s), {failed} rejected"
                     + (f", {c.inbox_waiting} left for the next pass (still being written);"
                        if c.inbox_waiting else ";"))
    if c.pulled:
        rows = sum(t.inserted for t in c.pulled.values())
        parts.append(f"pulled {rows} new event(s) from {len(c.pulled)} source(s);")
    if done and done.catch_up:
        parts.append(_caught_up(done.catch_up, config) + ";")
    if done and (ev := done.evaluation):
        parts.append(f"{len(ev.outcomes)} rule(s) evaluated, {len(ev.failures)} failed: "
                     f"{ev.new_alerts} new alert(s), {ev.updated_alerts} updated, "
                     f"{result.new_red} new red;")
    if done and (esc := done.escalation):
        parts.append(f"escalated {len(esc.escalated)}, reminded {len(esc.reminded)};")
    if done and done.report:
        parts.append(f"report: {done.report};")
    if done and (sent := done.delivery):
        parts.append(f"notifications sent {sent.sent}, retrying {sent.retrying}, "
                     f"undeliverable {sent.failed}.")
    if c.anchor:
        parts.append(f"trail anchored at entry #{c.anchor['entries']:,} "
                     f"({c.anchor['head'][:12]}…).")
    status = "ok" if result.status == "ok" else f"FAILED ({'; '.join(result.errors)})"
    parts.append(f"Run {result.run_id} {status} in {result.seconds:.1f} s.")
    return " ".join(parts)


def _caught_up(todo: Plan, config: Config) -> str:
    if not todo.slots:
        return f"{todo.skipped} missed slot(s) not caught up one by one (catch_up_max_slots 0)"
    first, last = (todo.slots[i].astimezone(config.tz) for i in (0, -1))
    text = (f"caught up {len(todo.slots)} missed slot(s) "
            f"({first:%Y-%m-%d %H:%M} … {last:%Y-%m-%d %H:%M})")
    if todo.skipped:
        text += f", {todo.skipped} older one(s) beyond catch_up_max_slots covered by the first"
    return text
