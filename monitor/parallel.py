"""Evaluating a store of several counties one county per process (``run --jobs N``,
config ``evaluate_jobs`` for the scheduled passes).

The rules run in the order of a serial run (monitor/engine.py :func:`prepare`). Each
stretch of consecutive rules whose kind is ``REGIONAL`` (it reads only events and the
catalog, and finds a county's findings from that county's events alone) goes to a pool
of N worker processes, one task per county: the worker's connections see that county's
events only — a temporary view named ``events``, ``… WHERE region = 'CODE'``, which both
databases look up before the table itself (SQLite's ``temp`` schema, PostgreSQL's
``pg_temp``) — so every detector statement is filtered by region without a change to any
detector, and clearing (monitor/clearing.py) closes only that county's alerts. Alerts,
holds, tier-1 messages and trail entries are written as in a serial run; each county's
entries go on its own chain, whose appends do not wait on each other's (monitor/trail.py).

Counties with rules or calendars of their own (monitor/regionrules.py): a worker for
county X runs, of each rule id's groups, the one whose counties include X — X's effective
rule in X's calendar (a rule switched off in X runs nothing there) — while the
watermark's version and a periodic kind's mark cover every group, as in a serial run.

Watermarks: workers do not move them. The parent reads the largest event id before the
stretch and, once every county of a rule is done without error, moves the rule's
watermark there (a periodic kind notes its mark too). A county that failed leaves the
rule where it was: the next run evaluates it again, and alerts are stored idempotently.
The other rules (state of their own, or tables beside the events: overdue, data_quality,
fee_reconciliation, ratings, complaints, monitors, the ranking) run in the parent, in
their place in the order, as a serial run runs them.

One lease for the run: the parent's, renewed by it; every worker's audit commit checks
its token (monitor/lease.py :func:`~monitor.lease.adopted`).

SQLite has one writer: each worker's rule takes the write lock when its transaction
begins (``BEGIN IMMEDIATE``; a read snapshot upgraded to a write after another county's
commit would fail at once), so the counties' rules follow one another and only what runs
outside a transaction overlaps (bench/README.md has the figures).
"""

from __future__ import annotations

import copyreg
import multiprocessing
import multiprocessing.util
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, replace
from datetime import datetime
from types import MappingProxyType
from typing import Any

from sqlalchemy import Engine, event, func, select

from . import lease
from .alerts import Stored
from .config import Config
from .db import create_store_engine
from .engine import RuleOutcome, advance, context, evaluate, evaluate_rule, prepare, watermark
from .models import Event
from .regionrules import Group, RuleSets
from .rules.kinds import KINDS, regional
from .rules.model import Rule
from .supervision import Policy


def _proxy(mapping: dict) -> MappingProxyType:
    return MappingProxyType(mapping)


# the configuration's read-only mappings go to the workers as the mappings they wrap
copyreg.pickle(MappingProxyType, lambda m: (_proxy, (dict(m),)))


def counties(engine: Engine) -> list[str]:
    """The regions the store's events belong to: one index lookup per region (the
    ``(region, department)`` index), not a pass over the events."""
    out: list[str] = []
    with engine.connect() as conn:
        code = conn.scalar(select(func.min(Event.region)))
        while code is not None:
            out.append(code)
            code = conn.scalar(select(func.min(Event.region)).where(Event.region > code))
    return out


def evaluate_regions(engine: Engine, config: Config, as_of: datetime, *, jobs: int,
                     rule_ids: tuple[str, ...] = (), full: bool = False,
                     rules: list[Rule] | RuleSets | None = None, keep: bool = False,
                     dry_run: bool = False) -> list[RuleOutcome]:
    """:func:`monitor.engine.evaluate`, the regional rules one county per process in
    ``jobs`` processes; a store of one county, ``jobs`` below 2 or a dry run is evaluated
    serially.
    The outcome of a rule run in the workers adds up the counties' (no findings kept)."""
    regions = counties(engine) if jobs > 1 and not dry_run else []
    if len(regions) < 2:
        return evaluate(engine, config, as_of, rule_ids=rule_ids, full=full, rules=rules,
                        keep=keep, dry_run=dry_run)
    plan = prepare(engine, config, as_of, rule_ids=rule_ids, rules=rules)
    ordered, policy, ctx, cache = plan.rules, plan.policy, plan.ctx, dict[Any, Any]()
    run = _Run(engine.url.render_as_string(hide_password=False), config, policy, ordered,
               plan.groups, as_of, full, lease.handed())
    outcomes: list[RuleOutcome] = []
    pool: ProcessPoolExecutor | None = None
    try:
        for stretch, in_workers in _stretches(ordered):
            if not in_workers:
                outcomes += [evaluate_rule(engine, ordered[k], ctx, full=full, cache=cache,
                                           policy=policy, keep=keep,
                                           groups=plan.groups[ordered[k].id])
                             for k in stretch]
                continue
            if pool is None:  # the run goes to each worker once, with its rules
                pool = ProcessPoolExecutor(min(jobs, len(regions)),
                                           mp_context=multiprocessing.get_context("spawn"),
                                           initializer=_begin, initargs=(run,))
            last = watermark(engine)
            done = list(pool.map(_county, [(region, stretch) for region in regions]))
            for n, k in enumerate(stretch):
                outcome = _merged(ordered[k], [county[n] for county in done])
                if outcome.error is None:
                    advance(engine, ordered[k], plan.groups[ordered[k].id], last, ctx)
                outcomes.append(outcome)
    finally:
        if pool is not None:
            pool.shutdown()
    return outcomes


def _stretches(rules: list[Rule]) -> Iterator[tuple[list[int], bool]]:
    """The rules' places in order, cut where they change between regional and not."""
    stretch: list[int] = []
    for k, rule in enumerate(rules):
        if stretch and regional(KINDS[rule.kind]) != regional(KINDS[rules[stretch[0]].kind]):
            yield stretch, regional(KINDS[rules[stretch[0]].kind])
            stretch = []
        stretch.append(k)
    if stretch:
        yield stretch, regional(KINDS[rules[stretch[0]].kind])


@dataclass(frozen=True)
class _Run:
    """What every worker of a run is given once (the rules in order, its lease)."""

    url: str
    config: Config
    policy: Policy
    rules: list[Rule]
    groups: dict[str, list[Group]]  # each rule id's counties (monitor/regionrules.py)
    as_of: datetime
    full: bool
    lease: tuple[str, str, int] | None


_WORKER: dict[str, Any] = {}  # a worker's run, and an engine per county it has evaluated


def _begin(run: _Run) -> None:
    _WORKER.update(run=run, engines={}, cache={})
    # a pool's worker ends through multiprocessing's exit, which runs its finalizers only
    multiprocessing.util.Finalize(None, _end, exitpriority=10)


def _end() -> None:
    for engine in _WORKER.get("engines", {}).values():
        engine.dispose()


@dataclass(frozen=True)
class _Done:
    """What a county's run of one rule did (its findings stay in the store)."""

    found: int
    stored: Stored | None
    error: str | None
    incremental: bool
    skipped: bool


def _county(task: tuple[str, list[int]]) -> list[_Done]:
    """A worker: some of the run's rules (their places) over one county's events,
    watermarks left alone. Its engine for the county (and the statements it compiled)
    lasts for the run."""
    region, places = task
    run: _Run = _WORKER["run"]
    engine = _WORKER["engines"].get(region)
    if engine is None:
        engine = _WORKER["engines"][region] = regional_engine(run.url, region)
    ctx = replace(context(run.config, run.as_of), region=region)  # its county's group only
    cache = _WORKER["cache"].setdefault(region, {})
    out = []
    with lease.adopted(run.lease):
        for k in places:
            o = evaluate_rule(engine, run.rules[k], ctx, full=run.full, cache=cache,
                              policy=run.policy, keep=False, advance=False,
                              groups=run.groups[run.rules[k].id])
            if o.stored is not None:
                o.stored.keys = set()  # the parent needs the counts only
            out.append(_Done(o.found, o.stored, o.error, o.incremental, o.skipped))
    return out


def _merged(rule: Rule, counties_done: list[_Done]) -> RuleOutcome:
    """One rule's outcome over every county: counts added up, the first error kept."""
    out = RuleOutcome(rule, found=sum(d.found for d in counties_done),
                      incremental=all(d.incremental for d in counties_done),
                      skipped=all(d.skipped for d in counties_done))
    errors = [d.error for d in counties_done if d.error]
    out.error = errors[0] if errors else None
    stored = [d.stored for d in counties_done if d.stored is not None]
    if stored:
        out.stored = Stored(*(sum(getattr(s, name) for s in stored) for name in
                              ("new", "changed", "unchanged", "messages", "cleared")))
    return out


def regional_engine(url: str, region: str) -> Engine:
    """An engine on the store whose connections see the events of ``region`` only (a
    temporary view named ``events``); on SQLite each transaction takes the write lock as
    it begins (see the module)."""
    if not (len(region) == 6 and region.isdigit()):  # spliced into the view's SQL
        raise ValueError(f"not a region code: {region!r}")
    engine = create_store_engine(url, create=False)
    sqlite = engine.dialect.name == "sqlite"

    @event.listens_for(engine, "connect")
    def _view(dbapi_conn, _record) -> None:
        cur = dbapi_conn.cursor()
        if sqlite:
            cur.execute("CREATE TEMP VIEW events AS SELECT * FROM main.events "
                        f"WHERE region = '{region}'")
            dbapi_conn.isolation_level = None  # transactions begun by _begin below
        else:
            cur.execute("SELECT current_schema()")
            schema = cur.fetchone()[0]
            cur.execute(f'CREATE TEMP VIEW events AS SELECT * FROM "{schema}".events '
                        f"WHERE region = '{region}'")
            dbapi_conn.commit()
        cur.close()

    if sqlite:
        @event.listens_for(engine, "begin")
        def _begin(conn) -> None:
            conn.exec_driver_sql("BEGIN IMMEDIATE")

    return engine
