"""Step-level overdue (环节超期): the ``overdue`` rule's second family of findings.

An item may give single workflow steps a limit in working days (catalog ``step_days``,
e.g. ``{survey: 3, review: 5}``). A step overruns it even while the whole case is within
its own limit — the finding names the step: subject ``CASE|step``, level ``yellow``.

**The span** of a step event runs from its predecessor — the latest earlier event of the
case (by ``occurred_at``, then storage order) that is not a clock event (``suspend``,
``resume``, ``extend``): a workflow step, a fee step, a ``return``, or the acceptance —
to the step's own event. Every occurrence of a limited step is measured (a step done
again after a ``return`` runs from the return); one finding per case and step, the worst.

**Pending steps**: a case accepted and still open as of ``as_of`` (no ``decide``, no
``complete``; the case clock's open cases)
has one pending step — the first limited step, in the order survey → review → approve →
decide, after the furthest of those (or the acceptance) it has reached. Its span runs from
the case's latest non-clock event to ``as_of``: the step is overdue while pending, as an
open case is. (Should a step without a limit come first, e.g. an unlimited survey before a
limited review, the pending review's span includes the survey's time.) A stale case's
pending step (:mod:`._stale`) is left to data quality with the case, a step alert already
raised on it aside.

**The clock** is the case clock's (:func:`._clock.clock`): local dates, counting starts
the day after the span's start, the working-day calendar, suspended working days inside
the span not counted (a suspension begun before the span counts only from its start);
``extend`` events do not lengthen a step's limit (Art. 42's extension is of the case's).
A limit of N runs out at the end of ``add_workdays(start, N + suspended)``; the step is
late when it ends (or, pending, when ``as_of`` falls) on a later date. ``step_days`` 0:
the step is due the same day as its predecessor.

**Incremental**: the same cases the case clock looks at (cases with new events; on the
first run of a new local date, every case still open when the last run's date began).

SQL: one windowed pass over the events of items that have step limits (none: no query),
keeping each limited step whose plain-seconds span could exceed its limit and each open
case's latest event; the calendar maths runs in Python on those few rows.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from types import SimpleNamespace
from typing import Any

from sqlalchemy import Connection, and_, case, func, literal, or_, select

from ...catalog import LIMITED_STEPS
from ...models import Alert, Event, Item
from ..finding import Context, Finding
from ..sql import in_scope, json_number, seconds_between
from ._clock import CLOCK_STEPS, clock
from ._common import aware, local

ORDER = ("accept", *LIMITED_STEPS)
STEP_CN = {"accept": "受理", "survey": "现场踏勘", "review": "审查", "approve": "审核",
           "decide": "决定", "return": "退回补正"}


def item_limits(conn: Connection) -> dict[tuple[str, str], dict[str, int]]:
    """{(region, item code): {step: working days}} of the items with any step limit (a
    handful): each county's catalog its own (migration 0029)."""
    return {(region, code): dict(limits) for region, code, limits in conn.execute(
        select(Item.region, Item.code, Item.step_days)) if limits}


def alerted(conn: Connection, rule, ctx: Context, limits: dict, looked_at) -> dict:
    """{(case, step): alert} of this rule version's step alerts on the cases looked at
    (``looked_at``: a WHERE clause over ``events``, see ``_overdue_open.incremental``)."""
    e, seen = Event.__table__, _seen(rule, ctx, limits)
    cases = select(e.c.case_id).where(seen, looked_at)
    query = (select(Alert.subject, Alert.case_id, Alert.department, Alert.item_code)
             .where(_step_alerts(rule), Alert.case_id.in_(cases)))
    return {tuple(a.subject.rsplit("|", 1)): a for a in conn.execute(query)}


def _step_alerts(rule):
    """WHERE clause over ``alerts``: this rule version's step alerts (subject CASE|step)."""
    return and_(Alert.rule_id == rule.id, Alert.rule_version == rule.version,
                Alert.subject.like("%|%"))


def _seen(rule, ctx: Context, limits: dict):
    e = Event.__table__
    return and_(e.c.occurred_at <= ctx.as_of, in_scope(rule.scope, e.c.department, e.c.item_code),
                e.c.item_code.in_(sorted({code for _, code in limits})))


def candidates(conn: Connection, rule, ctx: Context, limits: dict, looked_at) -> list:
    """Step events that could be late, each open case's latest event (pending), and every
    step of the cases with a step alert already (so an alert keeps its finding)."""
    e = Event.__table__
    seen = _seen(rule, ctx, limits)
    by_case: dict[str, Any] = dict(partition_by=e.c.case_id)  # window clauses, for over()
    ordered: dict[str, Any] = dict(partition_by=e.c.case_id, order_by=(e.c.occurred_at, e.c.id))
    position = case({s: i for i, s in enumerate(ORDER)}, value=e.c.step, else_=-1)
    flow = (select(e.c.case_id, e.c.region, e.c.item_code, e.c.department, e.c.event_id,
                   e.c.step,
                   e.c.occurred_at,
                   func.lag(e.c.occurred_at).over(**ordered).label("prev_at"),
                   func.lag(e.c.event_id).over(**ordered).label("prev_id"),
                   func.lag(e.c.step).over(**ordered).label("prev_step"),
                   func.row_number().over(partition_by=e.c.case_id,
                                          order_by=(e.c.occurred_at.desc(), e.c.id.desc())
                                          ).label("back"),
                   func.max(position).over(**by_case).label("furthest"),
                   func.max(case((e.c.step.in_(("decide", "complete")), 1), else_=0)
                            ).over(**by_case).label("ended"),
                   func.max(case((e.c.step == "accept", 1), else_=0)
                            ).over(**by_case).label("accepted"))
            .where(seen, e.c.step.not_in(CLOCK_STEPS), looked_at)
            .subquery("flow"))
    limit = json_number(Item.step_days, flow.c.step)
    could_be_late = and_(flow.c.step.in_(LIMITED_STEPS), flow.c.prev_at.is_not(None),
                         limit.is_not(None),
                         seconds_between(flow.c.occurred_at, flow.c.prev_at)
                         > (limit - 1) * literal(86400.0))
    pending = and_(flow.c.back == 1, flow.c.ended == 0, flow.c.accepted == 1)
    kept = flow.c.case_id.in_(select(Alert.case_id).where(_step_alerts(rule)))
    query = (select(flow, limit.label("limit"))
             .join(Item, and_(Item.region == flow.c.region, Item.code == flow.c.item_code))
             .where(or_(could_be_late, pending, kept))
             .order_by(flow.c.case_id, flow.c.occurred_at, flow.c.event_id))
    return list(conn.execute(query))


def pending_step(row, limits: dict[str, int]) -> str | None:
    """The open case's first limited step after the furthest one it has reached."""
    return next((s for s in ORDER[max(row.furthest, 0) + 1:] if s in limits), None)


def spans(rows: Sequence, limits: dict, ctx: Context) -> list[SimpleNamespace]:
    """One span per candidate: a step done (to its event) or pending (to ``as_of``)."""
    out = []
    for r in rows:
        if r.step in LIMITED_STEPS and r.prev_at is not None and r.limit is not None:
            out.append(SimpleNamespace(
                case_id=r.case_id, item_code=r.item_code, department=r.department,
                step=r.step, limit=int(r.limit), start=aware(r.prev_at),
                start_step=r.prev_step, start_id=r.prev_id, end=aware(r.occurred_at),
                end_id=r.event_id))
        if r.back == 1 and r.accepted and not r.ended:
            own = limits[(r.region, r.item_code)]
            step = pending_step(r, own)
            if step is not None:
                out.append(SimpleNamespace(
                    case_id=r.case_id, item_code=r.item_code, department=r.department,
                    step=step, limit=int(own[step]),
                    start=aware(r.occurred_at), start_step=r.step, start_id=r.event_id,
                    end=None, end_id=None))
    return out


def spans_of(events: Sequence, limits: dict[str, int], ctx: Context) -> list[SimpleNamespace]:
    """The same spans for one case's events (ordered by time, then storage), in Python:
    what ``rules explain`` shows. The detector finds them in SQL (:func:`candidates`)."""
    flow = [e for e in events if e.step not in CLOCK_STEPS]
    rows = [SimpleNamespace(
        case_id=e.case_id, region=getattr(e, "region", None), item_code=e.item_code, department=e.department, event_id=e.event_id,
        step=e.step, occurred_at=e.occurred_at, prev_at=p.occurred_at if p else None,
        prev_id=p.event_id if p else None, prev_step=p.step if p else None,
        back=len(flow) - i, limit=limits.get(e.step),
        furthest=max((ORDER.index(x.step) for x in flow if x.step in ORDER), default=-1),
        ended=any(x.step in ("decide", "complete") for x in flow),
        accepted=any(x.step == "accept" for x in flow))
        for i, (p, e) in enumerate(zip([None, *flow], flow))]
    return spans(rows, {(r.region, r.item_code): limits for r in rows}, ctx)


def measure(span, stops: Sequence, params, ctx: Context):
    """The case clock over one span: suspensions inside it not counted, no extensions."""
    row = SimpleNamespace(case_id=span.case_id, accepted=span.start, decided=span.end,
                          completed=None, promised_days=span.limit, legal_days=span.limit)
    return clock(row, [s for s in stops if s.step != "extend"], params, ctx)


def findings(spans_: Sequence, stops: dict, alerts: dict, params,
             ctx: Context, stale: Collection[str] = ()) -> list[Finding]:
    """The late spans as findings, the worst per case and step. A step alert already
    raised keeps its finding (alerts never step down on their own, as for the case clock):
    the message then says how the step stands now. The pending step of a ``stale`` case
    (see :mod:`._stale`) is no finding unless an alert on it was raised before."""
    worst: dict[tuple[str, str], tuple] = {}
    for span in spans_:
        if span.end is None and span.case_id in stale and (span.case_id, span.step) not in alerts:
            continue  # silent for months: a data-quality question, as the case is
        clock = measure(span, stops.get(span.case_id, ()), params, ctx)
        late = clock.end_date > clock.promised_deadline
        key, rank = (span.case_id, span.step), (late, clock.used)
        if key not in worst or rank > worst[key][0]:
            worst[key] = (rank, span, clock)
    out = {}
    for key, ((late, _), span, clock) in worst.items():
        if late or key in alerts:
            out[key] = _finding(span, clock, ctx, kept=not late)
    for key, alert in alerts.items():
        if key not in out:
            out[key] = _unmeasured(key, alert, ctx)
    return [out[k] for k in sorted(out)]


KEPT = "；此前已判定为黄牌，级别保留待处置"


def _name(step: str) -> str:
    return f"{STEP_CN.get(step, step)}（{step}）"


def _finding(span, clock, ctx: Context, kept: bool = False) -> Finding:
    name, since = _name(span.step), STEP_CN.get(span.start_step, span.start_step)
    over = 0 if kept else max(1, clock.used - span.limit)
    if kept:
        state = (f"{name}环节自{since}（{clock.accepted}）后第 {clock.used} 个工作日"
                 + ("完成" if span.end is not None else "，尚未完成")
                 + f"，未超过环节时限（{clock.promised_deadline} 届满）" + KEPT)
    elif span.end is not None:
        state = (f"{name}环节自{since}（{clock.accepted}）后第 {clock.used} 个工作日才完成，"
                 f"超过环节时限 {over} 个工作日（{clock.promised_deadline} 届满）")
    else:
        state = (f"{name}环节自{since}（{clock.accepted}）起尚未完成，已超过环节时限"
                 f"（{clock.promised_deadline} 届满）")
    limits = f"环节时限 {span.limit} 个工作日"
    if clock.suspended:
        limits += f"，暂停计时 {clock.suspended} 个工作日不计"
    deadline = str(clock.promised_deadline)
    evidence = {
        "level": None if kept else "yellow", "kept_level": "yellow" if kept else None,
        "family": "step", "step": span.step, "step_days": span.limit,
        "pending": span.end is None, "start_step": span.start_step,
        "start_event_id": span.start_id, "started_at": local(span.start, ctx),
        "end_event_id": span.end_id, "ended_at": local(span.end, ctx) if span.end else None,
        "as_of": ctx.as_of.astimezone(ctx.tz).isoformat(), "clock_end_date": str(clock.end_date),
        "counting": "working days in (start date, end date], local dates",
        "used_days": clock.used, "suspended_days": clock.suspended, "deadline": deadline,
        "over_days": over, "suspensions": clock.suspensions,
    }
    event_ids = [span.start_id, span.end_id]
    event_ids += [s[k] for s in clock.suspensions for k in ("suspend_event_id", "resume_event_id")]
    return Finding(
        subject=f"{span.case_id}|{span.step}", case_id=span.case_id,
        department=span.department, item_code=span.item_code, level="yellow",
        fields={"state": state, "limits": limits, "end_step": STEP_CN.get(span.step, span.step),
                "used_days": clock.used, "suspended_days": clock.suspended,
                "extension_days": 0, "promised_days": span.limit, "legal_days": span.limit,
                "promised_deadline": deadline, "legal_deadline": deadline, "over_days": over},
        evidence=evidence, event_ids=tuple(i for i in event_ids if i))


def _unmeasured(key: tuple[str, str], alert, ctx: Context) -> Finding:
    """A step alert whose step no longer has a span: not done, and no longer pending."""
    case_id, step = key
    state = f"{_name(step)}环节暂无办理记录，当前不计环节时限" + KEPT
    evidence = {"level": None, "kept_level": "yellow", "family": "step", "step": step,
                "pending": False, "as_of": ctx.as_of.astimezone(ctx.tz).isoformat()}
    return Finding(
        subject=f"{case_id}|{step}", case_id=case_id, department=alert.department,
        item_code=alert.item_code, level="yellow",
        fields={"state": state, "limits": "环节时限见事项目录", "end_step": STEP_CN.get(step, step),
                "used_days": 0, "suspended_days": 0, "extension_days": 0, "promised_days": 0,
                "legal_days": 0, "promised_deadline": "", "legal_deadline": "", "over_days": 0},
        evidence=evidence)
