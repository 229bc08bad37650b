"""overdue (超期): a case past its time limit, counted in working days (工作日).

**The clock** (行政许可法 Art. 42, 45, 82):

- Counting starts the day **after** acceptance (the first ``accept``), on local dates in
  the configured timezone, with the working-day calendar (official holidays and 调休
  make-up days, plus ``config.yaml`` overrides).
- The clock runs until the **decision** (the first ``decide``): Art. 42's limit is a limit
  for deciding (the certificate has its own 10 days, Art. 44). A log without a ``decide``
  step ends the clock at the first ``complete``. An open case (neither yet, as of
  ``ctx.as_of``) is measured to ``as_of``.
- Suspensions stop the clock (Art. 45: hearings, expert review, testing, 补正): the
  working days from a ``suspend`` to the next ``resume`` are not counted. A suspension not
  resumed by the end stops the clock where it began.
- An ``extend`` adds its ``days`` (``default_extension_days`` if empty, Art. 42's ten) to
  both limits — if it came before the decision and while the case was still within its
  legal limit: an extension granted after the limit had run out cannot save the case
  (it is listed in the evidence, marked not counted).
- Working days used = working days in (acceptance, end] minus the suspended ones. A limit
  of N working days runs out at the end of its last day, ``add_workdays(accepted, N +
  suspended)``; the case is past it when it ends (or, open, when ``as_of`` falls) on a
  later date — so a decision keyed in on the Saturday after a Friday deadline is late,
  and so is a case still open that Saturday.

The clock itself is :mod:`._clock`, which the step limits and ``rules explain`` share.

**Levels**: past ``promised_days`` (+ extensions) → yellow; past ``legal_days`` (+
extensions) → red; an open case, clock running, with ``warning_days`` or fewer working
days left after today before its promised deadline → ``warning`` (临期预警): with the
default 1, on the last working day before the deadline and on the deadline day itself.
The demo's ground truth counts the same way (decision day, working days after
acceptance, net of suspensions, limits plus extensions).

**On-the-spot items** (``legal_days`` 0, 当场办理): the limit is the day of acceptance
itself — a case not decided on the calendar day it was accepted is red. Items to be done
the same day (``promised_days`` 0) get no advance warning: they have no day to spare.

**Alerts never step down on their own**: an alert already raised for a case under this
rule version keeps its level while the case is still past some limit (the message says
how the case stands now), for instance a red case whose decision, keyed in later and
back-dated, makes it only yellow. **A case within every limit again clears its alert**
(复查销号, monitor/clearing.py): a decision keyed in late and back-dated within the
promised limit, a warning heeded (the case decided, or its clock stopped, in time). The
finding no longer holds, so the rule does not give it; the alert is closed as ``cleared``
with the case's new events as evidence (a resolved alert keeps its disposition).

**Stale cases** (长期无记录, :mod:`._stale`): an open case with no event (system events
aside) for more than the ``stale_days`` setting's calendar days (config.yaml, default 180)
is not a finding of this rule: it was most likely closed in a way the log does not record,
and the data-quality rule reports it instead — without this, an unmapped exit keeps a case
red for ever. Its pending step (step limits, below) likewise; steps it did late stay.
**An alert already raised and still pending** (open, acknowledged) stays, the case still
found, its message saying since when the case is silent: silence is no evidence that the
case was handled in time, and a red card must not vanish because an office stopped
recording — clearing needs new data (复查销号), or a person's disposition. A case that
gets a new event is no longer stale, and the clock judges it again.

**Incremental**: the cases with new events; and, on the first run of a new local date,
the cases still open as of the previous run whose finding that date may change — the
rule keeps them (``open_cases``; the bookkeeping is :mod:`._overdue_open`) as it keeps
its watermark, each with the first date on which time alone may change its finding
(:func:`_due`: the advance warning, the day after either deadline, the day it goes
stale), so that a new date looks up those cases in the case index, not every open case
and not a scan of the history. A decision stored ahead of a replayed ``as_of`` is a new
event when it comes into view. Within a date an open case's level and message cannot
change (they depend on dates only, and so does whether it is stale), so later runs that
day look at new events alone. A rule whose messages name ``used_days`` or ``over_days``
(words that change daily), or a catalog with step limits, looks at every open case on
each new date, as before.

**Step limits** (环节时限, catalog ``step_days``): a second family of findings from the
same rule, subject ``CASE|step``, level ``yellow`` — a step past its own limit even while
the case is within its limit, on this clock's terms (see :mod:`._step_limits`). Part of
this kind, not a kind of its own, because the limits live in the catalog: an admin sets
``step_days`` on an item and the one ``overdue`` rule (its scope, action, message,
version) covers both; there is no second rule file to keep in step, and items without
``step_days`` cost no query at all.

The SQL aggregates one row per case (acceptance, decision, completion, how many clock
events); only cases that could be late — open, or ended more than ``promised_days - 1``
days after acceptance in plain seconds, or already alerted — reach Python, where the
calendar maths is a few bisects each. The suspend/resume/extend rows of those cases, and
the event ids of the findings, are fetched afterwards.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import date, timedelta
from types import SimpleNamespace

from sqlalchemy import Connection, and_, case, func, literal, or_, select
from sqlalchemy.sql.elements import ColumnElement

from ...alerts import dedupe_key
from ...calendar import CALENDAR_DAYS
from ...models import Alert, Event, Item
from ...supervision import ACTIVE
from ..finding import Context, Finding
from ..sql import in_scope, one_of, seconds_between
from . import _clock, _overdue_open, _stale, _step_limits
from ._clock import CLOCK_STEPS, IN_CHUNK, Clock, day
from ._common import local

WORKING_DAYS = True  # counts in ctx.calendar: a county's own calendar judges it apart
TITLE = "办件超期（超过承诺或法定办理期限）"
DEFAULT_MESSAGE = "案件 {case_id}：{state}；{limits}"
FIELDS = ("state", "limits", "end_step", "used_days", "suspended_days", "extension_days",
          "promised_days", "legal_days", "promised_deadline", "legal_deadline", "over_days")

RANK = {None: 0, "warning": 1, "yellow": 2, "red": 3}
LEVEL_CN = {"warning": "临期预警", "yellow": "黄牌", "red": "红牌"}
END_CN = {"decide": "作出决定", "complete": "办结"}
# a case within every limit again: its alert is cleared (monitor/clearing.py)
CLEARED = "复查：补录数据后重新计算，案件已在办理期限内，超期情形不再成立，复查销号"
GATE = ("warn",)  # a case past its limit cannot be stopped from ending
CASES_PER_QUERY = 1000  # cases looked at per candidates query on an incremental run


@dataclass(frozen=True)
class Params:
    warning_days: int = 1            # open cases this many working days from the promised deadline
    default_extension_days: int = 10  # an extend event without days (Art. 42)


ROWS_PER_ROUND = 5000  # candidate cases judged at a time: memory does not grow with cases
# message fields that change every day for an open case: a rule whose messages name one
# re-judges its open cases on every new date (its alerts' words change daily)
DAILY_FIELDS = frozenset({"used_days", "over_days"})


def detect(conn: Connection, rule, ctx: Context) -> Iterator[Finding]:
    last_day = _overdue_open.last_run_day(conn, rule, ctx)
    # open cases are dated (the next date their finding may change: see _overdue_open)
    # unless step limits (a pending step's span grows daily) or the messages' words do
    dating = not (_step_limits.item_limits(conn)
                  or _overdue_open.message_fields(rule) & DAILY_FIELDS)
    basis = _overdue_open.basis(conn, rule, ctx) if dating else None
    exempting = dating and _overdue_open.exempting(conn, rule, ctx)
    looked_at, listed, due = _overdue_open.incremental(conn, rule, ctx, last_day, basis)
    # items whose limits changed over time: their cases are judged whatever the item's
    # current limit says (a handful of items)
    policies = [p for _, p in conn.execute(select(Item.code, Item.policy)) if p]
    dated = sorted(code for code, policy in conn.execute(select(Item.code, Item.policy))
                   if policy and policy.get("limits"))
    # the ways a case is decided or ends that any item's catalog names (refuse, withdraw,
    # transfer …) stop its clock too; without such items: decide and complete
    ends = (tuple(sorted({"decide"} | {s for p in policies for s in p.get("decision_steps", ())})),
            tuple(sorted({"complete"} | {s for p in policies for s in p.get("end_steps", ())})),
            _stale.steps(policies)[1])  # and every end the data-quality rule knows of
    if listed is None:
        queries = [_candidates(rule, ctx, looked_at, dated, ends)]
    else:  # in rounds: a short list is looked up in the case index whatever the planner
        e = Event.__table__  # makes of a long one (PostgreSQL scanned for 2,600 old cases)
        queries = [_candidates(rule, ctx, one_of(e.c.case_id, chunk), dated, ends)
                   for chunk in _overdue_open.chunks(listed, CASES_PER_QUERY)]
    now_open: dict[str, date | None] = {}  # open case → its due date (None: every date)
    stale: set[str] = set()  # open cases left to data quality (their pending steps too)
    for query in queries:  # streamed (a server-side cursor on PostgreSQL), judged in rounds
        result = conn.execute(query, execution_options={"stream_results": True,
                                                        "yield_per": ROWS_PER_ROUND})
        for rows in result.partitions():
            now_open.update((r.case_id, None) for r in rows
                            if r.decided is None and r.completed is None)
            stale.update(r.case_id for r in rows if _overdue_open.silent(r, ctx))
            yield from _judged(conn, rule, ctx, rows, now_open if dating else None, exempting)
    if not ctx.probe:
        _overdue_open.remember_open(conn, rule, ctx, last_day, now_open, due, basis)
    yield from _step_findings(conn, rule, ctx, looked_at, stale)


def _judged(conn: Connection, rule, ctx: Context, rows: Sequence,
            dues: dict[str, date | None] | None = None, exempting: bool = False
            ) -> Iterator[Finding]:
    """The findings among some candidate cases: each case's clock and level; ``dues``:
    each open case's due date goes there (:func:`_due`)."""
    stops = _clock.clock_events(conn, [r.case_id for r in rows if r.stops], ctx)
    found = []
    for row in rows:
        r, own = _under_policy(row, ctx)
        if r is None:  # the item has no time limit
            if dues is not None and row.case_id in dues:
                dues[row.case_id] = _stale.stale_on(row, ctx)
            continue
        clock = _clock.clock(r, stops.get(r.case_id, ()), rule.params, own)
        level = _level(r, clock, rule.params, own)
        if dues is not None and r.case_id in dues:
            dues[r.case_id] = _due(r, clock, level, rule.params, own, exempting)
        if level is None:  # within every limit: the alert, if any, is cleared
            continue
        if _overdue_open.silent(r, ctx) and r.previous_status not in ACTIVE:
            continue  # a data-quality finding, not misconduct (an alert pending stays)
        if RANK.get(r.previous_level, 0) > RANK[level]:
            kept = r.previous_level
        else:
            kept = None
        found.append((r, clock, level, kept, own))
    ids = _event_ids(conn, [r.case_id for r, *_ in found], ctx)
    for r, clock, level, kept, own in found:
        finding = _finding(r, clock, level, kept, ids.get(r.case_id, {}), rule.params, own)
        yield _in_calendar_days(finding) if own.calendar is CALENDAR_DAYS else finding


def _due(row, clock: Clock, level: str | None, params: Params, ctx: Context,
         exempting: bool = False) -> date | None:
    """The first local date after the as-of's on which an open case's finding may differ
    from this one by time alone (``_overdue_open.NEVER``: only a new event can change
    it; None: every date). With its clock running its deadlines are fixed, so its level
    moves only at the advance warning, the day after the promised deadline and the day
    after the legal one, and the words stay while the level does (:func:`_state`); a
    stopped clock does not move; a case goes stale on a date, and a stale one is found
    no more unless its alert is pending (then its level still moves). A suppressed alert
    is looked at every date (its exemption may end), and so is a finding this run raises
    or reopens while the rule has an exemption in force (``exempting``: it may be stored
    suppressed)."""
    today = day(ctx.as_of, ctx)
    if row.previous_status == "suppressed" or (
            exempting and level is not None and row.previous_status in (None, "cleared")):
        return None
    if _overdue_open.silent(row, ctx) and row.previous_status not in ACTIVE:
        return _overdue_open.NEVER
    dates = [_stale.stale_on(row, ctx)]
    if clock.running_stop is None:  # else the clock stopped where the suspension began
        if clock.end_date != today:  # not a clock running to the as-of: no date to give
            return None
        one = timedelta(days=1)
        dates += [clock.promised_deadline + one, clock.legal_deadline + one]
        if level is None and clock.promised != 0:  # the first date of the advance warning
            dates.append(_warning_from(clock.promised_deadline, params.warning_days, today,
                                       ctx))
    return min((d for d in dates if d > today), default=_overdue_open.NEVER)


def _warning_from(deadline: date, warning_days: int, today: date, ctx: Context) -> date:
    """The first date after ``today`` with ``warning_days`` or fewer working days left
    after it up to ``deadline`` (:func:`_level`): the (``warning_days`` + 1)-th working
    day counting back from the deadline (itself included)."""
    one, left, d = timedelta(days=1), warning_days + 1, deadline
    while d > today:
        if ctx.calendar.is_workday(d):
            left -= 1
            if not left:
                return d
        d -= one
    return today + one


def _under_policy(row, ctx: Context):
    """``row`` with the limits in force when the case was accepted (catalog ``limits``
    with ``from`` dates) and the context whose calendar counts them (``limit_unit:
    calendar_days``: every day); ``(None, ctx)`` for an item with no limit."""
    policy = row.policy or {}
    own_calendar = ctx.calendar.for_department(row.department)
    if own_calendar is not ctx.calendar:  # the department counts in its own calendar
        ctx = replace(ctx, calendar=own_calendar)
    if not policy:
        return row, ctx
    if policy.get("no_limit"):
        return None, ctx
    values = row._asdict()
    accepted = day(row.accepted, ctx).isoformat()
    for limit in sorted(policy.get("limits", ()), key=lambda x: x["from"]):
        if limit["from"] <= accepted:
            values.update(promised_days=limit["promised_days"], legal_days=limit["legal_days"])
    own = replace(ctx, calendar=CALENDAR_DAYS) \
        if policy.get("limit_unit") == "calendar_days" else ctx
    return SimpleNamespace(**values), own


def _in_calendar_days(finding: Finding) -> Finding:
    """A finding on a calendar-day clock says so (自然日, not 工作日)."""
    def say(v):
        return v.replace("工作日", "自然日") if isinstance(v, str) else v

    return replace(finding, fields={k: say(v) for k, v in finding.fields.items()},
                   evidence={**finding.evidence, "counting": "calendar days in (acceptance "
                             "date, end date], local dates"})


def _step_findings(conn: Connection, rule, ctx: Context, looked_at,
                   stale: set[str]) -> list[Finding]:
    """Steps past the catalog's ``step_days`` (see :mod:`._step_limits`); ``stale``: the
    cases whose pending step is left to data quality, as the case is."""
    limits = _step_limits.item_limits(conn)
    if not limits:
        return []
    alerts = _step_limits.alerted(conn, rule, ctx, limits, looked_at)
    rows = _step_limits.candidates(conn, rule, ctx, limits, looked_at)
    spans = _step_limits.spans(rows, limits, ctx)
    stops = _clock.clock_events(conn, sorted({s.case_id for s in spans}), ctx)
    return _step_limits.findings(spans, stops, alerts, rule.params, ctx, stale)


def _candidates(rule, ctx: Context, looked_at: ColumnElement, dated: Sequence[str],
                ends: tuple):
    """One row per case that could be late: SQL aggregates, joins the item and the alert.
    ``ends``: the steps that decide a case, those that end it otherwise, and every step
    that ends one for :mod:`._stale`."""
    e = Event.__table__

    def first(*steps: str):
        return func.min(case((e.c.step.in_(steps) if len(steps) > 1 else e.c.step == steps[0],
                              e.c.occurred_at)))

    seen = and_(e.c.occurred_at <= ctx.as_of, in_scope(rule.scope, e.c.department, e.c.item_code))
    per_case = (select(e.c.case_id, func.min(e.c.region).label("region"),
                       func.min(e.c.item_code).label("item_code"),
                       func.min(e.c.department).label("department"),
                       first("accept").label("accepted"), first(*ends[0]).label("decided"),
                       first(*ends[1]).label("completed"),
                       func.count(case((e.c.step.in_(CLOCK_STEPS), 1))).label("stops"),
                       *_stale.columns(ends[2]))
                .where(seen, looked_at).group_by(e.c.case_id)
                .subquery())
    end = func.coalesce(per_case.c.decided, per_case.c.completed)
    # the alert already raised for the case under this rule version, found by its unique key
    alert = and_(Alert.dedupe_key == literal(dedupe_key(rule, _subject(""))) + per_case.c.case_id,
                 Alert.rule_version == rule.version)
    could_be_late = or_(end.is_(None), Alert.level.is_not(None),
                        seconds_between(end, per_case.c.accepted)
                        > (Item.promised_days - 1) * literal(86400.0),
                        *([Item.code.in_(dated)] if dated else []))
    return (select(per_case, Item.promised_days, Item.legal_days, Item.policy,
                   Alert.level.label("previous_level"), Alert.status.label("previous_status"))
            .join(Item, and_(Item.region == per_case.c.region,
                             Item.code == per_case.c.item_code))
            .outerjoin(Alert, alert)
            .where(per_case.c.accepted.is_not(None), could_be_late)
            .order_by(per_case.c.case_id))


def _subject(case_id: str) -> Finding:
    return Finding(subject=case_id, fields={}, evidence={})


def _event_ids(conn: Connection, case_ids: Sequence[str], ctx: Context) -> dict[str, dict]:
    """{case: {step: event_id}}: the first accept, decide and complete of each finding."""
    e = Event.__table__
    out: dict[str, dict] = {}
    for start in range(0, len(case_ids), IN_CHUNK):
        query = (select(e.c.case_id, e.c.event_id, e.c.step)
                 .where(e.c.case_id.in_(case_ids[start:start + IN_CHUNK]),
                        e.c.step.in_(("accept", "decide", "complete")),
                        e.c.occurred_at <= ctx.as_of)
                 .order_by(e.c.case_id, e.c.occurred_at, e.c.id))
        for r in conn.execute(query):
            out.setdefault(r.case_id, {}).setdefault(r.step, r.event_id)
    return out


def _ended(row) -> bool:
    return row.decided is not None or row.completed is not None


def _level(row, clock: Clock, params: Params, ctx: Context) -> str | None:
    if clock.end_date > clock.legal_deadline:
        return "red"
    if clock.end_date > clock.promised_deadline:
        return "yellow"
    if _ended(row) or clock.running_stop is not None or clock.promised == 0:
        return None
    remaining = ctx.calendar.workdays_between(clock.end_date, clock.promised_deadline)
    return "warning" if remaining <= params.warning_days else None


def _state(row, clock: Clock, level: str | None, ctx: Context) -> str:
    """How the case stands, in words that stay the same while its level does."""
    end_step = "decide" if row.decided is not None else "complete"
    if row.legal_days == 0:  # on the spot
        if not _ended(row):
            text = f"当场办理事项，受理当日（{clock.accepted}）未办结"
        elif level == "red":
            text = (f"当场办理事项，受理后 {(clock.end_date - clock.accepted).days} 日"
                    f"才{END_CN[end_step]}（应于受理当日 {clock.accepted} 办结）")
        else:
            text = f"当场办理事项，受理当日{END_CN[end_step]}"
    elif _ended(row):
        text = f"受理后第 {clock.used} 个工作日{END_CN[end_step]}"
        if level == "red":
            text += (f"，超过法定期限 {_over(clock, clock.legal)} 个工作日"
                     f"（{clock.legal_deadline} 届满）")
        elif level == "yellow":
            text += (f"，超过承诺期限 {_over(clock, clock.promised)} 个工作日"
                     f"（{clock.promised_deadline} 届满）")
        else:
            text += "，未超期"
    elif level == "red":
        text = f"超过法定期限（{clock.legal_deadline} 届满），尚未作出决定"
    elif level == "yellow":
        text = f"超过承诺期限（{clock.promised_deadline} 届满），尚未作出决定"
    elif level == "warning":
        text = f"临近承诺期限（{clock.promised_deadline} 届满），尚未作出决定"
    else:
        text = f"尚未作出决定，未超期（承诺期限 {clock.promised_deadline} 届满）"
    if clock.running_stop is not None:
        text += f"；自 {day(clock.running_stop, ctx)} 起暂停计时" + (
            "，未见恢复计时" if _ended(row) else "")
    return text


def _over(clock: Clock, limit: int) -> int:
    """Working days past a limit; at least 1 (a Saturday after a Friday deadline is late)."""
    return max(1, clock.used - limit)


def _finding(row, clock: Clock, level: str | None, kept: str | None, ids: dict,
             params: Params, ctx: Context) -> Finding:
    end_step = ("decide" if row.decided is not None else
                "complete" if row.completed is not None else None)
    state = _state(row, clock, level, ctx)
    if kept:
        state += f"；此前已判定为{LEVEL_CN[kept]}，级别保留待处置"
    stale = _overdue_open.silent(row, ctx)
    if stale:  # only an alert already pending is still found (see the docstring)
        state += (f"；{day(row.last, ctx)} 以来逾 {ctx.stale_days} 日无记录（数据质量问题），"
                  "已发出的告警保留待处置")
    limits = f"承诺 {clock.promised}、法定 {clock.legal} 个工作日"
    if clock.extension:
        limits += f"，含延期 {clock.extension} 个工作日"
    if clock.suspended:
        limits += f"，暂停计时 {clock.suspended} 个工作日不计"
    over = (_over(clock, clock.legal) if level == "red" else
            _over(clock, clock.promised) if level == "yellow" else 0)
    ended_at = row.decided if row.decided is not None else row.completed
    evidence = {
        "level": level, "kept_level": kept,
        "accepted_at": local(row.accepted, ctx), "accept_event_id": ids.get("accept"),
        "end_step": end_step, "ended_at": local(ended_at, ctx) if ended_at else None,
        "end_event_id": ids.get(end_step) if end_step else None,
        "as_of": ctx.as_of.astimezone(ctx.tz).isoformat(), "clock_end_date": str(clock.end_date),
        "counting": "working days in (acceptance date, end date], local dates",
        "used_days": clock.used, "suspended_days": clock.suspended,
        "item_promised_days": row.promised_days, "item_legal_days": row.legal_days,
        "extension_days": clock.extension, "promised_days": clock.promised,
        "legal_days": clock.legal, "promised_deadline": str(clock.promised_deadline),
        "legal_deadline": str(clock.legal_deadline), "over_days": over,
        "suspensions": clock.suspensions, "extensions": clock.extensions,
        "warning_days": params.warning_days,
    }
    if stale:
        evidence["stale"] = _stale.evidence(row, ctx)
    if level == "warning":
        evidence["remaining_days"] = ctx.calendar.workdays_between(
            clock.end_date, clock.promised_deadline)
    event_ids = [ids.get("accept"), ids.get(end_step) if end_step else None]
    event_ids += [s[k] for s in clock.suspensions for k in ("suspend_event_id", "resume_event_id")]
    event_ids += [x["event_id"] for x in clock.extensions]
    return Finding(
        subject=row.case_id, case_id=row.case_id, department=row.department,
        item_code=row.item_code, level=kept or level,
        fields={"state": state, "limits": limits,
                "end_step": END_CN.get(end_step or "", "尚未作出决定"),
                "used_days": clock.used, "suspended_days": clock.suspended,
                "extension_days": clock.extension, "promised_days": clock.promised,
                "legal_days": clock.legal, "promised_deadline": str(clock.promised_deadline),
                "legal_deadline": str(clock.legal_deadline), "over_days": over},
        evidence=evidence, event_ids=tuple(i for i in event_ids if i))

