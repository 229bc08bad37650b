"""``rules backtest``: what a rule change would have done to history, before it goes live.

The current rules and a candidate rule directory are both evaluated over the stored
history as of the end of the window, through the engine's dry-run path (nothing is
written: live alerts, watermarks and the trail are untouched). Findings are matched by
rule id and subject — the alerts' own key — and counted per rule and department: those
that would appear, disappear, or change level (alert churn). A finding belongs to the
window when one of its events happened in it; one without events (a department-month of
``fee_reconciliation``) when its month overlaps the window.

Each county is judged by its own rule set and calendar, as in a run (docs/regions.md):
the current set is the base with each county's overrides; the candidate's is its files
with its own ``regions/CODE/`` folders if it has them, else with the current overrides.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import Engine, select

from ..alerts import render
from ..config import Config
from ..errors import MonitorError, usage
from ..models import Event
from ..regionrules import RuleSets
from ..rules.model import Rule
from .flood import after_backtest

IN_CHUNK = 500


@dataclass(frozen=True)
class Found:
    rule_id: str
    subject: str
    department: str
    level: str
    cases: tuple[str, ...] = ()


@dataclass
class Churn:
    current: int = 0
    candidate: int = 0
    appear: list[Found] = field(default_factory=list)
    disappear: list[Found] = field(default_factory=list)
    changed: list[tuple[Found, Found]] = field(default_factory=list)


@dataclass
class Backtest:
    start: datetime
    end: datetime
    by_rule_department: dict[tuple[str, str], Churn]
    floods: list = field(default_factory=list)  # the candidate's rules over flood_percent

    def totals(self) -> dict[str, Churn]:
        out: dict[str, Churn] = defaultdict(Churn)
        for (rule_id, _), c in sorted(self.by_rule_department.items()):
            t = out[rule_id]
            t.current += c.current
            t.candidate += c.candidate
            t.appear += c.appear
            t.disappear += c.disappear
            t.changed += c.changed
        return dict(out)


def findings(engine: Engine, config: Config, rules: list[Rule] | RuleSets, start: datetime,
             end: datetime) -> dict[tuple[str, str], Found]:
    """(rule id, subject) → finding of the enabled ``rules``, dry run as of ``end``,
    kept when it falls in the window."""
    from ..engine import evaluate

    outcomes = evaluate(engine, config, end, rules=rules, dry_run=True, full=True)
    failed = [f"{o.rule.id}: {o.error}" for o in outcomes if o.error]
    if failed:
        raise MonitorError("backtest stopped, a rule failed: " + "; ".join(failed))
    times = _event_times(engine, {i for o in outcomes for f in o.findings for i in f.event_ids})
    out = {}
    for o in outcomes:
        for f in o.findings:
            when = [times[i] for i in f.event_ids if i in times]
            if when:
                inside = any(start <= t <= end for t in when)
            else:
                inside = f.period is None or \
                    start.astimezone(config.tz).strftime("%Y-%m") <= f.period <= \
                    end.astimezone(config.tz).strftime("%Y-%m")
            if inside:
                level, _ = render(o.rule, f)
                out[(o.rule.id, f.subject)] = Found(o.rule.id, f.subject, f.department or "-",
                                                    level, (f.case_id,) if f.case_id else ())
    return out


def _event_times(engine: Engine, ids: set[str]) -> dict[str, datetime]:
    ids_list, out = sorted(ids), dict[str, datetime]()
    with engine.connect() as conn:
        for i in range(0, len(ids_list), IN_CHUNK):
            out.update(conn.execute(select(Event.event_id, Event.occurred_at).where(
                Event.event_id.in_(ids_list[i:i + IN_CHUNK]))).tuples().all())
    return out


def backtest(engine: Engine, config: Config, current: list[Rule] | RuleSets,
             candidate: list[Rule] | RuleSets, start: datetime, end: datetime) -> Backtest:
    if start >= end:
        raise usage(MonitorError("--from must be before --to"))
    before = findings(engine, config, current, start, end)
    after = findings(engine, config, candidate, start, end)
    churn: dict[tuple[str, str], Churn] = defaultdict(Churn)
    for key, f in before.items():
        c = churn[(f.rule_id, f.department)]
        c.current += 1
        other = after.get(key)
        if other is None:
            c.disappear.append(f)
        elif other.level != f.level:
            c.changed.append((f, other))
    for key, f in after.items():
        c = churn[(f.rule_id, f.department)]
        c.candidate += 1
        if key not in before:
            c.appear.append(f)
    base = list(candidate.base) if isinstance(candidate, RuleSets) else candidate
    return Backtest(start, end, dict(churn),
                    after_backtest(engine, config, base, after.values(), end))
