"""An audit pass: the rules evaluated as of a moment and what they find stored as alerts,
then escalation, then the day's report, then delivery of the notifications queued.

A pass runs some of :data:`STAGES`, always in that order:

``evaluate``  the rules as of ``as_of`` (monitor/engine.py), each incrementally from its
              watermark; findings are stored as alerts, once per rule and subject, and
              tier 1 is told of new and risen alerts (monitor/tier1.py). With
              ``catch_up``, first as of each scheduled slot missed since the last
              successful run (monitor/catchup.py), oldest first.
``escalate``  once, as of ``as_of``: overdue tier-1 alerts go to tier 2 with a supervision
              order, due reminders are queued (monitor/escalation.py), and the daily
              digests of people who chose one (monitor/tier1.py).
``report``    the day's report, written beside config.yaml (:func:`day_report`).
``flush``     the outbox delivered through the configured sinks (monitor/outbox.py).

Every entry point that audits goes through :func:`audit_pass`, and says what differs by
its parameters: ``permit-monitor run`` (evaluate and escalate; ``--dry-run`` evaluates
only), ``escalate`` and ``notify flush`` (one stage each), the jobs of ``nightly`` and the
``serve`` daemon (monitor/jobs.py: every stage, or the one a daemon job names, with
catch-up, keeping the last good rules and going on past a failed stage), and the demo's
day-by-day replay (monitor/demo/replay.py: evaluate and escalate each working day, the
simulated monitors acting between passes).

Layering: below the entry points (cli.py, monitor/jobs.py, the demo replay), above the
engine, escalation, the report and the outbox, which it only calls. The caller holds the
database lease (monitor/lease.py) when the pass writes. Nothing here reads the clock.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import partial
from typing import TYPE_CHECKING

from sqlalchemy import Engine, update

from .config import Config
from .errors import MonitorError
from .models import OutboxMessage
from .regionrules import RuleSets, county_policy, load_rule_sets
from .rules.model import Rule

if TYPE_CHECKING:  # the stages import what they run when they run it
    from .catchup import Plan
    from .engine import RuleOutcome
    from .escalation import Escalated
    from .outbox import Flushed

log = logging.getLogger(__name__)
STAGES = ("evaluate", "escalate", "report", "flush")
# the base rules (the counties' overrides read from their folders), or the rule sets whole
Rules = Sequence[Rule] | RuleSets | Callable[[], Sequence[Rule] | RuleSets]


@dataclass
class Evaluation:
    """The ``evaluate`` stage: the outcomes as of the pass's moment, the alerts stored as
    of every moment evaluated (catch-up slots included), and the rules that failed."""

    outcomes: list[RuleOutcome]
    new_alerts: int = 0
    updated_alerts: int = 0
    messages: int = 0  # queued to tier 1 of new, risen and reopened alerts (monitor/tier1.py)
    cleared: int = 0   # alerts whose finding no longer holds (monitor/clearing.py)
    failures: dict[str, str] = field(default_factory=dict)  # rule id → its first failure

    @property
    def findings(self) -> int:
        return sum(o.found for o in self.outcomes)


@dataclass
class PassSummary:
    """What a pass did, stage by stage; None: the stage did not run (or did not finish)."""

    as_of: datetime
    catch_up: Plan | None = None        # slots missed since the last run, when there were
    evaluation: Evaluation | None = None
    escalation: Escalated | None = None
    report: str | None = None           # the day's report written (html, + xlsx)
    redelivered: int | None = None      # messages a dead flusher left half-sent, due again
    delivery: Flushed | None = None
    errors: list[str] = field(default_factory=list)  # rules that failed, stages that failed

    @property
    def ok(self) -> bool:
        return not self.errors


def audit_pass(engine: Engine, config: Config, as_of: datetime, *, rules: Rules,
               stages: Sequence[str], catch_up: str | None = None,
               rule_ids: tuple[str, ...] = (), full: bool = False, dry_run: bool = False,
               keep_going: bool = False, jobs: int | None = None,
               on_stage: Callable[[str, PassSummary], None] | None = None) -> PassSummary:
    """Run ``stages`` (some of :data:`STAGES`, in that order) as of ``as_of``.

    ``rules``: the rule set, or a function that loads it; loaded at most once, by the first
    stage that needs it (evaluate, escalate), and if loading fails each such stage fails.
    ``catch_up``: the trigger (``cli``, ``serve``) whose schedule names the slots to catch
    up on before ``as_of`` (see monitor/catchup.py); None evaluates as of ``as_of`` only.
    ``rule_ids``, ``full``, ``dry_run``: as for :func:`monitor.engine.evaluate` (a dry run
    only evaluates). ``jobs``: processes evaluating a store of several counties, one county
    each (monitor/parallel.py; default config ``evaluate_jobs``; a dry run uses one). A rule that fails is in the summary's ``errors``; the others still
    run. A stage that raises a :class:`MonitorError` raises it, or with ``keep_going`` is
    recorded in ``errors`` as ``stage: message`` and the next stages still run — with
    ``keep_going`` any other exception too (a bug: its traceback goes to the log), so one
    failing stage never keeps the night from escalating and sending.
    ``on_stage(stage, summary so far)`` is called as each stage starts.
    """
    unknown = [s for s in stages if s not in STAGES]
    if unknown or (dry_run and tuple(stages) != ("evaluate",)):
        raise ValueError(f"stages {tuple(stages)}: some of {STAGES}; a dry run only evaluates")
    out = PassSummary(as_of)
    loaded: list[Rule] | RuleSets | None = None

    def rule_set() -> list[Rule] | RuleSets:
        nonlocal loaded
        if loaded is None:
            got = rules() if callable(rules) else rules
            loaded = got if isinstance(got, RuleSets) else list(got)
        return loaded

    for stage in (s for s in STAGES if s in stages):
        if on_stage:
            on_stage(stage, out)
        try:
            if stage == "evaluate":
                # only a dry run keeps its findings (to print them): a stored pass
                # streams them to the store, and its memory does not grow with them
                _evaluate(engine, config, out, rule_set(), catch_up, rule_ids=rule_ids,
                          full=full, dry_run=dry_run, keep=dry_run,
                          jobs=1 if dry_run else jobs or config.evaluate_jobs)
            elif stage == "escalate":
                from .escalation import escalate

                from .tier1 import send_digests

                got = rule_set()  # the base alone: each county's overrides read too
                policy = county_policy(config, got if isinstance(got, RuleSets)
                                       else load_rule_sets(config, list(got)))
                out.escalation = escalate(engine, policy, as_of)
                out.escalation.messages += send_digests(engine, policy, as_of)
            elif stage == "report":
                out.report = day_report(engine, config, as_of)
            else:
                _deliver(engine, config, out)
        except MonitorError as exc:
            if not keep_going:
                raise
            out.errors.append(f"{stage}: {exc}")
        except Exception as exc:  # a bug: with keep_going the stages after still run
            if not keep_going:
                raise
            out.errors.append(internal_error(stage, exc))
    return out


def internal_error(stage: str, exc: Exception) -> str:
    """What a run records of a stage that failed with a bug (not a MonitorError): the
    traceback goes to the log, the line to the run's errors."""
    log.error("%s failed", stage, exc_info=exc)
    first = (str(exc).strip().splitlines() or [""])[0][:300]
    return f"{stage}: internal error {type(exc).__name__}: {first}"


def _evaluate(engine: Engine, config: Config, out: PassSummary, rules: list[Rule] | RuleSets,
              catch_up: str | None, jobs: int = 1, **options) -> None:
    """The rules as of each missed slot (with ``catch_up``), oldest first, then as of the
    pass's moment; ``jobs`` > 1: the counties in parallel (monitor/parallel.py)."""
    from .engine import evaluate
    from .parallel import evaluate_regions

    run = partial(evaluate_regions, jobs=jobs) if jobs > 1 else evaluate

    slots: list[datetime] = []
    if catch_up is not None:
        from .catchup import plan

        todo = plan(engine, config, catch_up, out.as_of)
        if todo.skipped and todo.since:  # skipped slots follow a successful run
            log.warning("catch-up: %d missed slot(s) since %s; catch_up_max_slots %d: the %d "
                        "older one(s) are covered by the evaluation as of %s",
                        todo.skipped + len(todo.slots), todo.since.isoformat(),
                        config.catch_up_max_slots, todo.skipped,
                        todo.slots[0].isoformat() if todo.slots else out.as_of.isoformat())
        if todo.slots or todo.skipped:
            out.catch_up = todo
        slots = todo.slots
    new = changed = messages = cleared = 0
    failures: dict[str, str] = {}
    for moment in [*slots, out.as_of]:
        if moment is not out.as_of:
            log.info("catch-up: evaluating as of missed slot %s", moment.isoformat())
        outcomes = run(engine, config, moment, rules=rules, **options)
        new += sum(o.stored.new for o in outcomes if o.stored)
        changed += sum(o.stored.changed for o in outcomes if o.stored)
        messages += sum(o.stored.messages for o in outcomes if o.stored)
        cleared += sum(o.stored.cleared for o in outcomes if o.stored)
        for o in outcomes:
            if o.error:
                failures.setdefault(o.rule.id, f"rule {o.rule.id} failed as of "
                                               f"{moment.isoformat()}: {o.error}")
    out.evaluation = Evaluation(outcomes, new, changed, messages, cleared, failures)
    out.errors += failures.values()


def day_report(engine: Engine, config: Config, as_of: datetime) -> str:
    """The day's report: the month to date of the day before ``as_of`` (local), so the
    02:00 pass on the 1st still closes the month just ended. Written as
    ``reports/report-YYYY-MM.html`` and ``.xlsx`` beside config.yaml, rewritten each night."""
    from .report import build_report, write_documents
    from .report.period import month
    from .rulenames import titles

    day = (as_of.astimezone(config.tz) - timedelta(days=1)).date()
    report = build_report(engine, config, month(day), as_of, titles=titles(config))
    html, xlsx = write_documents(report, config.base_dir / "reports",
                                 config.limits.file_mode, config.limits.dir_mode)
    return f"{html} (+ {xlsx.name})"


def release_orphans(engine: Engine, now: datetime) -> int:
    """Messages left ``sending`` by a flusher that died: every flusher runs under the lease,
    so while this runner holds it no other is sending; they are due again now (delivery is
    at least once: a message the dead flusher had handed to its sink goes again)."""
    with engine.begin() as conn:
        return conn.execute(update(OutboxMessage).where(OutboxMessage.status == "sending")
                            .values(status="pending", next_attempt_at=now)).rowcount


def _deliver(engine: Engine, config: Config, out: PassSummary) -> None:
    from .outbox import flush

    from .holdsync import resend

    out.redelivered = release_orphans(engine, out.as_of)
    resend(engine, out.as_of, config.gate.hold_resend_minutes,  # holds not acknowledged yet
           "workflow" in config.notify.channels)
    out.delivery = flush(engine, config.notify, config.base_dir, out.as_of, config.regions)
