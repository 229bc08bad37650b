"""sequence (办理顺序): the compliance patterns of process-mining conformance, counted on
the law's clock — per case, system events aside:

* ``precedence`` — ``then`` never before ``first`` (e.g. the trip never before the permit
  was approved): a finding when the case's first ``then`` comes before its first
  ``first``, or with no ``first`` at all;
* ``response`` — ``then`` within ``days`` after ``first`` (``unit``: ``working`` days of
  the configured calendar, or ``calendar`` days; counted from the day after, local
  dates): a finding when ``then`` came later, or has not come and the deadline has
  passed as of ``as_of`` (a second clock: a 60-day payment term, a notice within 5 days);
* ``absence`` — ``step`` must not occur in a case;
* ``existence`` — ``step`` must occur in every case that has reached ``when`` (default
  ``complete``).

A precedence is judged on the stamps' precision: two date-only stamps of the same day do
not show which came first.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, case, func, select

from ...calendar import CALENDAR_DAYS
from ...errors import did_you_mean
from ...models import Event
from ..finding import Context, Finding
from ..sql import changed_cases, in_scope
from ._clock import day
from ._common import aware, local
from .step_too_fast import slack

WORKING_DAYS = True  # counts in ctx.calendar: a county's own calendar judges it apart
TITLE = "办理顺序不符（先后、时限、应有或禁有环节）"
DEFAULT_MESSAGE = "案件 {case_id}：{detail}"
FIELDS = ("pattern", "detail")
BY_CASE = True  # per case, from its events alone (see kinds.Kind)
PATTERNS = ("precedence", "response", "absence", "existence")
UNITS = ("working", "calendar")


@dataclass(frozen=True)
class Params:
    pattern: str = "precedence"
    first: str = ""      # precedence, response: step A
    then: str = ""       # precedence, response: step B
    step: str = ""       # absence, existence
    days: int = 0        # response: B within this many days after A
    unit: str = "working"
    when: str = "complete"  # existence: judged once the case has this step

    def __post_init__(self) -> None:
        if self.pattern not in PATTERNS:
            raise ValueError(f"'pattern' must be one of {', '.join(PATTERNS)}, got "
                             f"'{self.pattern}'{did_you_mean(self.pattern, PATTERNS)}")
        if self.unit not in UNITS:
            raise ValueError(f"'unit' must be working or calendar, got '{self.unit}'"
                             f"{did_you_mean(self.unit, UNITS)}")
        needs = {"precedence": ("first", "then"), "response": ("first", "then", "days"),
                 "absence": ("step",), "existence": ("step",)}[self.pattern]
        missing = [n for n in needs if not getattr(self, n)]
        if missing:
            raise ValueError(f"pattern {self.pattern} needs {' and '.join(missing)}")

    def steps(self) -> tuple[str, ...]:
        return tuple(s for s in (self.first, self.then, self.step, self.when) if s)


def detect(conn: Connection, rule, ctx: Context) -> Iterator[Finding]:
    e, p = Event.__table__, rule.params
    names = sorted(set(p.steps()))

    def first(step: str, column):
        return func.min(case((e.c.step == step, column)))

    precision = {s: first(s, e.c.time_precision).label(f"p_{k}") for k, s in enumerate(names)}
    query = (select(e.c.case_id, func.min(e.c.item_code).label("item_code"),
                    func.min(e.c.department).label("department"),
                    *[first(s, e.c.occurred_at).label(f"t_{k}") for k, s in enumerate(names)],
                    *precision.values())
             .where(e.c.step.in_(names), e.c.is_system.is_(False),
                    e.c.occurred_at <= ctx.as_of,
                    in_scope(rule.scope, e.c.department, e.c.item_code),
                    changed_cases(ctx, e.c.case_id))
             .group_by(e.c.case_id).order_by(e.c.case_id))
    for r in conn.execute(query):
        at = {s: getattr(r, f"t_{k}") for k, s in enumerate(names)}
        prec = {s: getattr(r, f"p_{k}") for k, s in enumerate(names)}
        detail = judge(p, {s: aware(v) for s, v in at.items() if v is not None}, prec, ctx)
        if detail is not None:
            yield Finding(subject=r.case_id, case_id=r.case_id, department=r.department,
                          item_code=r.item_code, fields={"pattern": p.pattern, "detail": detail},
                          evidence={"pattern": p.pattern, "first_seen": {
                              s: local(v, ctx) for s, v in at.items() if v is not None},
                              "params": {k: getattr(p, k) for k in
                                         ("first", "then", "step", "days", "unit", "when")
                                         if getattr(p, k)}})


def judge(p: Params, at: dict[str, datetime], precision: dict, ctx: Context) -> str | None:
    """The finding's sentence for one case (first time of each step), or None."""
    if p.pattern == "absence":
        return f"出现不应有的环节 {p.step}（{local(at[p.step], ctx)}）" if p.step in at else None
    if p.pattern == "existence":
        if p.when in at and p.step not in at:
            return f"已{p.when}（{local(at[p.when], ctx)}）但缺少应有的环节 {p.step}"
        return None
    a, b = at.get(p.first), at.get(p.then)
    if p.pattern == "precedence":
        if b is None:
            return None
        if a is None:
            return f"{p.then}（{local(b, ctx)}）之前没有 {p.first}"
        gap = (a - b).total_seconds()
        if gap > slack(precision.get(p.first), precision.get(p.then)):
            return f"{p.then}（{local(b, ctx)}）早于 {p.first}（{local(a, ctx)}）"
        return None
    if a is None:  # response: nothing to answer yet
        return None
    cal = ctx.calendar if p.unit == "working" else CALENDAR_DAYS
    deadline = cal.add_workdays(day(a, ctx), p.days)
    unit = "个工作日" if p.unit == "working" else "日"
    if b is not None and b >= a:
        if day(b, ctx) > deadline:
            return (f"{p.first}（{local(a, ctx)}）后 {p.days} {unit}内应有 {p.then}，"
                    f"{deadline} 届满，实际 {local(b, ctx)}")
        return None
    if day(ctx.as_of, ctx) > deadline:
        return (f"{p.first}（{local(a, ctx)}）后 {p.days} {unit}内应有 {p.then}，"
                f"{deadline} 届满，尚无记录")
    return None
