"""Evaluating rules: each enabled rule's detector over the store, as of a moment.

Incremental by default: each rule remembers (``rule_state``) the last event it has seen,
its version and the moment it was evaluated as of; the next run re-evaluates only what
new events touch (and what time alone can change, for time-based kinds). A changed rule,
an earlier ``as_of`` (a replay) or ``full=True`` evaluates everything. Both give the same
alerts, because alerts are keyed by (rule, subject) and stored idempotently.

An alert of a kind that clears, whose case this run re-evaluated without finding it
again, is closed as ``cleared`` (monitor/clearing.py) in the same transaction.

A periodic kind that is not incremental (``volume_drop``, ``ranking_last``: it judges months
that are over) may say that nothing it reads has changed since its last pass (``mark`` and
``unchanged``, monitor/rules/kinds): the incremental pass then skips it and only moves its
watermark, because a full pass would find exactly what the last one found.

One failing rule is reported and does not stop the others; its watermark does not move,
so the next run retries it. With ``dry_run`` nothing is written.
"""

from __future__ import annotations

import gc
import logging
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine, func, select, update

from . import regionrules, ruleset, trail
from .alerts import Stored, render, store_findings
from .clearing import clear_unfound
from .config import Config
from .gatelog import cite_refusals
from .models import Event, RuleState
from .rules.finding import Context, Finding
from .rules.kinds import KINDS, after_others, by_case, incremental, periodic
from .rules.model import Rule
from .regionrules import Group, RuleSets
from .rules.sql import became_visible, new_events
from .supervision import Policy, policy_for

log = logging.getLogger(__name__)


@dataclass
class RuleOutcome:
    """What one rule's run found (``found``; the findings themselves only if kept: see
    :func:`evaluate_rule`), stored, or failed on."""

    rule: Rule
    findings: list[Finding] = field(default_factory=list)
    stored: Stored | None = None
    error: str | None = None
    incremental: bool = False
    found: int = 0
    skipped: bool = False  # a periodic kind whose inputs had not changed (see the module)


def context(config: Config, as_of: datetime) -> Context:
    return Context(as_of=as_of, tz=config.tz, calendar=config.calendar(),
                   scores=config.scores, stale_days=config.stale_days)


def _state(conn: Connection, rule: Rule, version: str, as_of: datetime) -> Any:
    """This rule's previous run, or None when this one must evaluate in full (none yet, a
    new ``version`` — the rule's, or its county groups' digest, monitor/regionrules.py — or
    an earlier as-of: a replay)."""
    state = conn.execute(select(RuleState).where(RuleState.rule_id == rule.id)).one_or_none()
    if state is None or state.rule_version != version or as_of < state.as_of:
        return None
    return state


DEFERRED_MAX = 10_000  # more deferred events than this: let each query find them itself
CHANGED_MAX = 200_000  # more changed cases than this: let each query find them itself
CASES_PER_ROUND = 1000  # changed cases per detector query (kinds that go BY_CASE)


def _deferred(conn: Connection, since: tuple[int, datetime], as_of: datetime
              ) -> tuple[int, ...] | None:
    """Ids of events stored by the previous run (``since``) but dated after its as-of and
    visible by ``as_of`` (a range of the ``dated`` index)."""
    if since[1] >= as_of:  # as of the same moment again: nothing has come into view
        return ()
    # "+ 0": the id is checked, not used as an index — SQLite would walk the ids up to the
    # watermark (the whole table) rather than the dated range
    ids = conn.scalars(select(Event.id)
                       .where(Event.id + 0 <= since[0], became_visible(since[1], as_of))
                       .limit(DEFERRED_MAX + 1)).all()
    return tuple(ids) if len(ids) <= DEFERRED_MAX else None


def _changed(conn: Connection, ctx: Context) -> tuple[str, ...] | None:
    """The cases the run's new events touch, or None when there are too many to list.
    Told apart here, not by DISTINCT: SQLite would answer that by walking the whole case
    index instead of the range of new ids."""
    cases: dict[str, None] = {}
    for case_id in conn.execute(select(Event.case_id).where(new_events(ctx))).scalars():
        cases[case_id] = None
        if len(cases) > CHANGED_MAX:
            return None
    return tuple(cases)


def incremental_context(conn: Connection, ctx: Context, since: tuple[int, datetime],
                        cache: dict) -> Context:
    """``ctx`` for a run since ``since`` (last event id, as-of): what is new, found once per
    run and shared by every rule with the same watermark (events are never changed, so the
    answer cannot go stale within a run)."""
    key = (since, ctx.as_of)
    if key not in cache:
        run = replace(ctx, since_event_id=since[0], since_as_of=since[1],
                      deferred_ids=_deferred(conn, since, ctx.as_of))
        cache[key] = replace(run, changed_case_ids=_changed(conn, run))
    return cache[key]


def _advance(conn: Connection, rule: Rule, version: str, last_event_id: int,
             as_of: datetime, mark: str | None = None) -> None:
    values = {"rule_version": version, "last_event_id": last_event_id, "as_of": as_of,
              "evaluated_at": as_of, "mark": mark}
    if conn.execute(update(RuleState).where(RuleState.rule_id == rule.id)
                    .values(**values)).rowcount == 0:
        conn.execute(RuleState.__table__.insert().values(rule_id=rule.id, **values))


def _detect(kind, conn: Connection, rule: Rule, ctx: Context) -> Iterator[Finding]:
    """The kind's findings; a kind that goes by case is run over the changed cases in
    rounds of :data:`CASES_PER_ROUND`: PostgreSQL looks a short list up in the case index,
    but for the 10,000 cases of a 1 % increment of a million it chose scans of every
    event (the plan's row estimate grows with the list, the table's cost does not)."""
    ids = ctx.changed_case_ids
    if not by_case(kind) or ids is None or len(ids) <= CASES_PER_ROUND:
        yield from kind.detect(conn, rule, ctx)
        return
    for start in range(0, len(ids), CASES_PER_ROUND):
        yield from kind.detect(conn, rule,
                               replace(ctx, changed_case_ids=ids[start:start + CASES_PER_ROUND]))


_settled = False


def _settle() -> None:
    """Once per process, before its first rule: keep what is alive then — the modules,
    the ORM's mappings, the configuration and rules, ~100,000 objects that live as long
    as the process — out of the cyclic collector's full collections (``gc.freeze``).
    A nightly pass in a fresh process made one such collection over them, ~60 ms of its
    ~600 ms at 100,000 cases (issue 21 item 7); what the rules allocate afterwards is
    collected as before. Once only: a long-running process (``serve``, the web gate)
    freezes what it holds at its first evaluation, and nothing after."""
    global _settled
    if not _settled:
        _settled = True
        gc.freeze()


def evaluate_rule(engine: Engine, rule: Rule, ctx: Context, *, dry_run: bool = False,
                  full: bool = False, cache: dict | None = None,
                  policy: Policy | None = None, keep: bool = True,
                  groups: list[Group] | None = None, advance: bool = True) -> RuleOutcome:
    """One rule in one transaction: detect, store, advance its watermark (unless
    ``advance`` is False: a county's worker, whose caller moves it once every county of
    the run is done, monitor/parallel.py). ``cache`` is shared by the rules of one run
    (see :func:`incremental_context`); ``policy`` gives new alerts their deadline
    (default: 3 working days). Findings go to the store as the detector yields them;
    ``keep`` also keeps them in ``outcome.findings`` (memory grows with them: the
    scheduled passes do not keep them). ``groups``: the counties judged by this rule id's
    variants, each in its calendar (monitor/regionrules.py); None: ``rule`` judges every
    county in ``ctx``'s calendar. With ``ctx.region`` (a county's worker) only the group
    that judges that county runs; the watermark's version and mark still cover them all."""
    _settle()
    outcome = RuleOutcome(rule)
    groups = groups or [Group(rule, ctx.calendar)]
    version = regionrules.version(groups)
    mine = [g for g in groups if ctx.region is None or g.rule.scope.judges(ctx.region)]

    def counted(findings: Iterable[Finding]) -> Iterator[Finding]:
        for finding in findings:
            outcome.found += 1
            if keep:
                outcome.findings.append(finding)
            yield finding

    kinds = [KINDS[g.rule.kind] for g in groups]
    try:
        with engine.connect() as conn:
            last: int = conn.scalar(select(func.coalesce(func.max(Event.id), 0))) or 0
            state = None if full else _state(conn, rule, version, ctx.as_of)
            mark = _mark(conn, groups, ctx)
            cache = {} if cache is None else cache
            if not dry_run and _unchanged(conn, mine, ctx, state, mark, cache):
                outcome.incremental = outcome.skipped = True
                if advance:
                    _advance(conn, rule, version, last, ctx.as_of, mark)
                conn.commit()
                return outcome
            since = (state.last_event_id, state.as_of) \
                if state is not None and all(map(incremental, kinds)) else None
            outcome.incremental = since is not None
            run_ctx = incremental_context(conn, ctx, since, cache) if since else ctx
            runs = [(g.rule, replace(run_ctx, calendar=g.calendar)) for g in mine]
            stored: list[Stored] = []
            for own, own_ctx in runs:
                found = counted(cite_refusals(conn, own, regionrules.judged(
                    conn, own, _detect(KINDS[own.kind], conn, own, own_ctx))))
                if dry_run:  # a detector's own state (overdue's open cases) goes too
                    deque(found, maxlen=0)
                else:
                    stored.append(store_findings(conn, own, found, ctx.as_of, policy))
            if dry_run:
                conn.rollback()
            else:
                outcome.stored = _sum(stored)
                for own, own_ctx in runs:
                    cleared, entries = clear_unfound(conn, own, own_ctx, outcome.stored.keys,
                                                     ctx.as_of)
                    outcome.stored.cleared += cleared
                    trail.append(conn, ctx.as_of, entries)
                if advance:
                    _advance(conn, rule, version, last, ctx.as_of, mark)
                conn.commit()
    except Exception as exc:  # one rule's failure must not stop the others
        log.exception("rule %s failed", rule.id)
        outcome.error = f"{type(exc).__name__}: {exc}"
        outcome.stored = None
    return outcome


def _mark(conn: Connection, groups: list[Group], ctx: Context) -> str | None:
    """What a periodic kind's pass judges (monitor/rules/kinds ``mark``), over every group
    of the rule id; None when some group's kind is not periodic."""
    if not all(periodic(KINDS[g.rule.kind]) for g in groups):
        return None
    return " / ".join(getattr(KINDS[g.rule.kind], "mark")(
        conn, g.rule, replace(ctx, calendar=g.calendar)) for g in groups)


def _unchanged(conn: Connection, groups: list[Group], ctx: Context, state: Any,
               mark: str | None, cache: dict) -> bool:
    """Whether a periodic kind may skip this pass: its previous one judged the same
    (``mark``) and the events and figures stored since cannot change the answer of any
    of ``groups``."""
    if state is None or mark is None or state.mark != mark:
        return False
    run_ctx = incremental_context(conn, ctx, (state.last_event_id, state.as_of), cache)
    return all(getattr(KINDS[g.rule.kind], "unchanged")(
        conn, g.rule, replace(run_ctx, calendar=g.calendar)) for g in groups)


def _sum(parts: list[Stored]) -> Stored:
    """One rule's stores of its groups, added up."""
    if len(parts) == 1:
        return parts[0]
    total = Stored()
    for part in parts:
        total.new += part.new
        total.changed += part.changed
        total.unchanged += part.unchanged
        total.messages += part.messages
        total.keys |= part.keys
    return total


def watermark(engine: Engine) -> int:
    """The largest event id stored: where a run's rules will stand once it is done."""
    with engine.connect() as conn:
        return conn.scalar(select(func.coalesce(func.max(Event.id), 0))) or 0


def advance(engine: Engine, rule: Rule, groups: list[Group], last_event_id: int,
            ctx: Context) -> None:
    """Move ``rule``'s watermark (the version of its ``groups``) to ``last_event_id`` as
    of ``ctx.as_of``, once its run is done everywhere (monitor/parallel.py); a periodic
    kind notes its mark too."""
    with engine.begin() as conn:
        _advance(conn, rule, regionrules.version(groups), last_event_id, ctx.as_of,
                 _mark(conn, groups, ctx))


@dataclass
class Plan:
    """What a run evaluates: its rules in order, each id's county groups, the policy and
    the context."""

    rules: list[Rule]
    groups: dict[str, list[Group]]
    policy: Policy
    ctx: Context


def prepare(engine: Engine, config: Config, as_of: datetime, *, rule_ids: tuple[str, ...] = (),
            dry_run: bool = False, rules: list[Rule] | RuleSets | None = None) -> Plan:
    """The rules a run evaluates, in the order it evaluates them, each county by its own
    rule set and calendar (monitor/regionrules.py); the rule sets in force go on the
    trail (not on a dry run). ``rules``: the base (the counties' overrides are read from
    their folders), or the rule sets whole; default: read from ``rules_dir``."""
    sets = rules if isinstance(rules, RuleSets) else regionrules.load_rule_sets(config, rules)
    base = list(sets.base)
    policy = regionrules.with_counties(policy_for(config, base), sets)
    if not dry_run:  # which files and versions are in force for this run, on the trail
        ruleset.record(engine, sets, as_of)
    ctx = context(config, as_of)
    groups = regionrules.plan(sets, ctx.calendar)
    anchor = {r.id: r for r in base} | {g[0].rule.id: g[0].rule for g in groups.values()
                                        if g[0].rule.id not in {r.id for r in base}}
    if rule_ids:
        unknown = set(rule_ids) - set(anchor)
        if unknown:
            from .errors import RuleError

            raise RuleError(str(config.rules_dir), None,
                            f"no rule with id {', '.join(sorted(unknown))}")
        chosen = [anchor[i] for i in sorted(set(rule_ids), key=list(anchor).index)]
        plans = {i: groups.get(i) or [Group(anchor[i], ctx.calendar)] for i in rule_ids}
    else:
        chosen = [anchor[i] for i in anchor if i in groups]
        plans = groups
    # kinds that look at the other rules' alerts (AFTER_OTHERS) see this run's too
    chosen = sorted(chosen, key=lambda r: after_others(KINDS[r.kind]))
    return Plan(chosen, plans, policy, ctx)


def evaluate(engine: Engine, config: Config, as_of: datetime, *, rule_ids: tuple[str, ...] = (),
             dry_run: bool = False, full: bool = False,
             rules: list[Rule] | RuleSets | None = None, keep: bool = True
             ) -> list[RuleOutcome]:
    """Run the enabled rules (or only ``rule_ids``) as of ``as_of`` (aware datetime), each
    county by its own rule set and calendar (:func:`prepare`). ``keep``: see
    :func:`evaluate_rule`."""
    plan = prepare(engine, config, as_of, rule_ids=rule_ids, dry_run=dry_run, rules=rules)
    cache = dict[Any, Context]()
    return [evaluate_rule(engine, rule, plan.ctx, dry_run=dry_run, full=full, cache=cache,
                          policy=plan.policy, keep=keep, groups=plan.groups[rule.id])
            for rule in plan.rules]


__all__ = ["RuleOutcome", "evaluate", "render"]
