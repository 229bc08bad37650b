"""``rules explain``: the computation behind one rule's verdict on one case, step by step.

What an inspector shows a department head who disputes a finding: the case's timeline,
each gap against its threshold, for ``overdue`` the working days counted one by one
(holidays, 调休 make-up days and suspensions marked, deadlines shown), and the verdict —
which is the engine's own, from the rule's detector run (dry, nothing written) as of the
same moment, so the explanation can never disagree with the alert.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import chinese_calendar
from sqlalchemy import Engine, or_, select

from ..alerts import render
from ..config import Config
from ..errors import MonitorError, RuleError, did_you_mean, usage
from ..models import Alert, Event, Item
from ..regionrules import RuleSets, rule_in
from ..rules.finding import Context
from ..rules.kinds._common import aware
from ..rules.kinds.sequence import judge as sequence_judge
from ..rules.kinds.step_too_fast import slack
from ..rules.model import Rule
from .explain_words import phrase

WEEKDAYS = "一二三四五六日"


@dataclass(frozen=True)
class Day:
    """One calendar day of the working-day strip (``overdue``)."""

    day: date
    kind: str                 # weekday | weekend | holiday | makeup | config_holiday | config_workday
    holiday: str | None       # chinese-calendar's name of the holiday (or of the 调休's holiday)
    counted: int | None       # the working day's number in the count, if counted
    suspended: bool           # a working day not counted: the clock was stopped
    marks: tuple[str, ...]    # promised deadline, legal deadline, clock ends

    def line(self) -> str:
        label = {"config_holiday": "holiday (config.yaml)",
                 "config_workday": "working day (config.yaml)", "weekend": "weekend",
                 "weekday": "weekday", "makeup": f"make-up working day 调休 ({self.holiday})",
                 "holiday": f"holiday ({self.holiday})"}[self.kind]
        if self.suspended:
            label += " · suspended, not counted"
        elif self.counted:
            label += f" · working day {self.counted}"
        return (f"{self.day} {WEEKDAYS[self.day.weekday()]}  {label}"
                + (f"  ← {', '.join(self.marks)}" if self.marks else ""))


@dataclass
class Explanation:
    rule: Rule
    case_id: str
    as_of: datetime
    timeline: list[str] = field(default_factory=list)
    checks: list[str] = field(default_factory=list)
    days: list[str] = field(default_factory=list)
    verdict: str = ""
    evidence: dict[str, Any] | None = None  # the finding's own, for kinds without checks
    alert: str | None = None
    events: list[Any] = field(default_factory=list)  # the case's events, as stored
    strip: list[Day] = field(default_factory=list)   # ``days``, one record per day
    language: str = "en"  # of ``checks``: the CLI's English, or the alert page's ``zh``
    step_name: Callable[[str], str] = str  # a step code as the checks name it
    source: str = "base"  # where the rule in force comes from: base, or regions/CODE
    region: str = ""  # the case's county, whose rule and calendar judged it

    def w(self, key: str, **values: Any) -> str:
        return phrase(self.language, key, **values)

    def say(self, key: str, **values: Any) -> None:
        self.checks.append(self.w(key, **values))

    def human(self, seconds: float) -> str:
        return human(seconds, self.language)


def human(seconds: float, language: str = "en") -> str:
    seconds = round(seconds)
    d, rest = divmod(seconds, 86400)
    h, rest = divmod(rest, 3600)
    m, s = divmod(rest, 60)
    parts = [phrase(language, unit, n=n) if n or (unit == "s" and not seconds) else ""
             for unit, n in (("d", d), ("h", h), ("min", m), ("s", s))]
    return " ".join(p for p in parts if p)


def explain(engine: Engine, config: Config, rules: list[Rule] | RuleSets, rule_id: str, case_id: str,
            as_of: datetime, verdict: bool = True, language: str = "en",
            step_name: Callable[[str], str] = str) -> Explanation:
    """``verdict=False`` skips running the rule's detector (the web's alert page shows the
    stored alert as the verdict): timeline, checks and working days only. ``language`` and
    ``step_name`` word the checks (the alert page's Chinese; the CLI keeps English)."""
    sets = rules if isinstance(rules, RuleSets) else RuleSets(tuple(rules))
    with engine.connect() as conn:
        events = list(conn.execute(select(Event).where(Event.case_id == case_id,
                                                       Event.occurred_at <= as_of)
                                   .order_by(Event.occurred_at, Event.id)))
        region = events[0].region if events else config.region
        found = rule_in(sets, region, rule_id)  # the case's county's rule (docs/regions.md)
        if found is None:
            known = [e.id for e, _ in sets.effective(region)]
            raise usage(RuleError(str(config.rules_dir), None, f"no rule with id '{rule_id}'"
                                  f"{did_you_mean(rule_id, known)}"))
        if found.rule is None:
            raise MonitorError(f"rule '{rule_id}' is switched off in region {region} "
                               f"({found.path}:{found.line})")
        rule = found.rule
        if not events:
            raise MonitorError(f"no events of case '{case_id}' by {as_of.isoformat()}")
        item = conn.execute(select(Item).where(Item.region == events[0].region,
                                               Item.code == events[0].item_code)).one()
        key = f"{rule.id}|{case_id}"  # the case's alert, and its step alerts (overdue)
        stored = conn.execute(select(Alert).where(  # case_id first: an index, not a scan
            Alert.case_id == case_id, Alert.rule_id == rule.id, or_(
                Alert.dedupe_key == key, Alert.dedupe_key.startswith(f"{key}|", autoescape=True)))
            .order_by(Alert.id)).all()
    out = Explanation(rule, case_id, as_of, events=list(events), language=language,
                      step_name=step_name, source=found.source, region=region)
    ctx = Context(as_of=as_of, tz=config.tz, calendar=config.calendar().for_region(region),
                  scores=config.scores, stale_days=config.stale_days)
    tz = config.tz
    for prev, e in zip([None, *events], events):
        gap = f"+{human((e.occurred_at - prev.occurred_at).total_seconds())}" if prev else ""
        late = (f"  keyed in {human((e.recorded_at - e.occurred_at).total_seconds())} later"
                if e.recorded_at and e.recorded_at > e.occurred_at else "")
        out.timeline.append(f"{e.occurred_at.astimezone(tz):%Y-%m-%d %H:%M:%S}  {e.step:<20} "
                            f"{e.actor or '-':<14} {gap:<20}{late}")
    check = CHECKS.get(rule.kind)
    if check:
        check(out, rule, item, events, ctx)
    out.days = [d.line() for d in out.strip]
    findings = _verdict(engine, config, rule, case_id, as_of) if verdict else []
    if not findings:
        out.verdict = f"no finding: {rule.id} does not flag case {case_id} as of this moment"
    else:
        out.verdict = "\n         ".join("FINDING [{}] {}".format(*render(rule, f))
                                         for f in findings)
        if check is None:
            out.evidence = dict(findings[0].evidence)
    if stored:
        out.alert = "\n        ".join(
            f"alert {a.id}: {a.level} · {a.status} · tier {a.tier}"
            f" · raised {a.raised_at.astimezone(tz):%Y-%m-%d %H:%M}"
            + (f" · {a.subject}" if a.subject != case_id else "") for a in stored)
    return out


def _verdict(engine: Engine, config: Config, rule: Rule, case_id: str, as_of: datetime):
    from ..engine import evaluate

    [outcome] = evaluate(engine, config, as_of, rules=[rule], rule_ids=(rule.id,),
                         dry_run=True, full=True)
    if outcome.error:
        raise MonitorError(f"rule {rule.id} failed: {outcome.error}")
    return [f for f in outcome.findings if f.case_id == case_id or case_id in f.case_ids]


def _steps(out: Explanation, rule: Rule, item: Any, events: list, ctx: Context) -> None:
    per_item = rule.params.item_min_minutes.get(item.code, {})
    after = ((item.policy or {}).get("after") or {})
    flow = [e for e in events if not e.is_system]
    if len(flow) < len(events):
        out.say("system_left_out", n=len(events) - len(flow))
    for k, e in enumerate(flow[1:], start=1):
        limit, source = per_item.get(e.step), "src_rule_item"
        if limit is None:
            limit, source = (item.min_minutes or {}).get(e.step), "src_catalog"
        if limit is None:
            limit, source = rule.params.min_minutes.get(e.step), "src_rule"
        if limit is None:
            continue
        prev = flow[k - 1]
        if e.step in after:
            prev = next((p for p in reversed(flow[:k]) if p.step == after[e.step]), None)
            if prev is None:
                out.say("no_earlier", step=out.step_name(e.step),
                        prev=out.step_name(after[e.step]))
                continue
        gap = (e.occurred_at - prev.occurred_at).total_seconds()
        uncertainty = slack(e.time_precision, prev.time_precision)
        verdict = "TOO FAST" if gap + uncertainty < float(limit) * 60 else "ok"
        precision = e.time_precision or prev.time_precision
        reading = out.w("reading", precision=out.w(precision) if precision else "",
                        upto=out.human(gap + uncertainty)) if uncertainty else ""
        out.say("step_gap", prev=out.step_name(prev.step), step=out.step_name(e.step),
                gap=out.human(gap), reading=reading, limit=f"{limit:g}", source=out.w(source),
                verdict=out.w(verdict))


def _case(out: Explanation, rule: Rule, item: Any, events: list, ctx: Context) -> None:
    first: dict[str, Any] = {}
    for e in events:
        if not e.is_system:
            first.setdefault(e.step, e)
    policy = item.policy or {}
    decided = [first[s] for s in policy.get("decision_steps", ("decide",)) if s in first]
    ended = [first[s] for s in policy.get("end_steps", ("complete",)) if s in first]
    end = min(decided or ended, key=lambda e: (e.occurred_at, e.id), default=None)
    limit = item.min_case_minutes if item.min_case_minutes is not None \
        else rule.params.min_case_minutes
    if item.legal_days == 0:
        out.say("on_the_spot")
    elif "accept" in first and end is not None:
        gap = (end.occurred_at - first["accept"].occurred_at).total_seconds()
        uncertainty = max(slack(e.time_precision) for e in events)
        verdict = ("before_accepted" if gap < 0 else
                   "TOO FAST" if gap + uncertainty < float(limit) * 60 else "ok")
        reading = out.w("case_reading", upto=out.human(uncertainty)) if uncertainty else ""
        out.say("case_gap", accept=out.step_name("accept"), end=out.step_name(end.step),
                gap=out.human(gap), reading=reading, limit=f"{limit:g}",
                verdict=out.w(verdict))
    else:
        out.say("nothing_to_measure")


def _late(out: Explanation, rule: Rule, item: Any, events: list, ctx: Context) -> None:
    for e in events:
        if e.recorded_at is None:
            continue
        delay = (e.recorded_at - e.occurred_at).total_seconds()
        out.say("late", step=out.step_name(e.step), delay=out.human(max(delay, 0)),
                hours=f"{rule.params.max_hours:g}",
                verdict=out.w("LATE" if delay > rule.params.max_hours * 3600 else "ok"))


def _roles(out: Explanation, rule: Rule, item: Any, events: list, ctx: Context) -> None:
    by_actor: dict[str, set[str]] = {}
    for e in events:
        if e.step in rule.params.steps and e.actor:
            by_actor.setdefault(e.actor, set()).add(e.step)
    for actor, steps in sorted(by_actor.items()):
        out.say("roles", actor=actor, n=len(steps), min=rule.params.min_roles, steps=", ".join(
            out.step_name(s) for s in rule.params.steps if s in steps))


def _overdue(out: Explanation, rule: Rule, item: Any, events: list, ctx: Context) -> None:
    from ..rules.kinds import _clock

    first: dict[str, Any] = {}
    for e in events:
        first.setdefault(e.step, e.occurred_at)
    if "accept" not in first:
        out.say("no_accept")
        return
    row = SimpleNamespace(case_id=out.case_id, accepted=first["accept"],
                          decided=first.get("decide"), completed=first.get("complete"),
                          promised_days=item.promised_days, legal_days=item.legal_days)
    clock = _clock.clock(row, [e for e in events if e.step in _clock.CLOCK_STEPS],
                         rule.params, ctx)
    out.say("clock", accepted=clock.accepted, end=clock.end_date, why=out.w(
        "why_decision" if row.decided else "why_completion" if row.completed else "why_open"))
    out.say("limits", promised=item.promised_days, ext=clock.extension,
            promised_total=clock.promised, legal=item.legal_days, legal_total=clock.legal,
            suspended=clock.suspended)
    out.say("deadlines", promised=clock.promised_deadline, legal=clock.legal_deadline,
            used=clock.used)
    for x in clock.extensions:
        out.say("extension", id=x["event_id"], at=x["at"], days=x["days"],
                counted=out.w("ext_counted" if x["counted"] else "ext_not_counted"))
    suspended = [(date.fromisoformat(s["suspended_at"][:10]),
                  date.fromisoformat(s["resumed_at"][:10]) if s["resumed_at"] else None)
                 for s in clock.suspensions]
    out.strip = _days(ctx, clock, suspended)
    _stale_check(out, item, events, ctx)
    _step_checks(out, rule, item, events, ctx)


def _stale_check(out: Explanation, item: Any, events: list, ctx: Context) -> None:
    """Whether the open case is stale (config ``stale_days``): left to data quality."""
    from ..rules.kinds import _stale

    flow = [e for e in events if not e.is_system]
    ends = _stale.steps([getattr(item, "policy", None)])[1]
    row = SimpleNamespace(last=max((e.occurred_at for e in flow), default=None),
                          ended=any(e.step in ends for e in flow))
    if _stale.stale(row, ctx):
        out.say("stale", last=_stale.evidence(row, ctx)["last_event_at"][:10],
                days=ctx.stale_days)


def _step_checks(out: Explanation, rule: Rule, item: Any, events: list, ctx: Context) -> None:
    """Each span measured against the item's step_days (the overdue rule's step family)."""
    from ..rules.kinds import _clock, _step_limits

    if not item.step_days:
        return
    stops = [e for e in events if e.step in _clock.CLOCK_STEPS]
    for span in _step_limits.spans_of(events, item.step_days, ctx):
        clock = _step_limits.measure(span, stops, rule.params, ctx)
        end = f"{clock.end_date}" + ("" if span.end is not None else out.w("pending"))
        out.say("step_span", step=out.step_name(span.step), limit=span.limit,
                start=out.step_name(span.start_step), accepted=clock.accepted, end=end,
                used=clock.used, suspended=clock.suspended, deadline=clock.promised_deadline,
                verdict=out.w("OVER" if clock.end_date > clock.promised_deadline else "ok"))


def _days(ctx: Context, clock: Any, suspended: list) -> list[Day]:
    """One record per calendar day from the day after acceptance to the last date that
    matters (the clock's end or the deadline past it), each working day numbered."""
    cal, n, days = ctx.calendar, 0, list[Any]()
    last = (clock.promised_deadline if clock.end_date <= clock.promised_deadline else
            clock.legal_deadline if clock.end_date <= clock.legal_deadline else clock.end_date)
    day = clock.accepted + timedelta(days=1)
    while day <= last and len(days) < 400:
        kind, name = _kind(day, cal)
        stopped = cal.is_workday(day) and any(s < day and (r is None or day <= r)
                                              for s, r in suspended)
        counted = None
        if cal.is_workday(day) and not stopped:
            n += 1
            counted = n
        marks = tuple(m for m, d in (("promised deadline", clock.promised_deadline),
                                     ("legal deadline", clock.legal_deadline),
                                     ("clock ends", clock.end_date)) if d == day)
        days.append(Day(day, kind, name, counted, stopped, marks))
        day += timedelta(days=1)
    return days


def _kind(day: date, cal: Any) -> tuple[str, str | None]:
    name = None
    try:
        name = chinese_calendar.get_holiday_detail(day)[1]
    except NotImplementedError:
        pass
    if day in cal.extra_holidays:
        return "config_holiday", name
    if day in cal.extra_workdays:
        return "config_workday", name
    if day.weekday() >= 5:
        return ("makeup" if cal.is_workday(day) else "weekend"), name
    return ("holiday" if not cal.is_workday(day) else "weekday"), name


def _sequence(out: Explanation, rule: Rule, item: Any, events: list, ctx: Context) -> None:
    p = rule.params
    flow = [e for e in events if not e.is_system]
    first: dict = {}
    for e in flow:
        first.setdefault(e.step, e)
    name = out.step_name
    shown = out.w(p.pattern, then=name(p.then or ""), first=name(p.first or ""), days=p.days,
                  unit=out.w(p.unit) if p.unit else "", step=name(p.step or ""),
                  when=name(p.when or ""))
    out.say("pattern", pattern=p.pattern, shown=shown)
    for step in p.steps():
        e = first.get(step)
        out.say("first_at", step=name(step), at=(
            f"{e.occurred_at.astimezone(ctx.tz):%Y-%m-%d %H:%M:%S}"
            + (out.w("to_the", precision=out.w(e.time_precision)) if e.time_precision else "")
            if e else out.w("none")))
    detail = sequence_judge(p, {s: aware(e.occurred_at) for s, e in first.items()},
                            {s: e.time_precision for s, e in first.items()}, ctx)
    out.checks.append(f"→ {detail}" if detail else f"→ {out.w('ok')}")


CHECKS = {"step_too_fast": _steps, "case_too_fast": _case, "late_entry": _late,
          "same_actor_roles": _roles, "overdue": _overdue, "sequence": _sequence}
