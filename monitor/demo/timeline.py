"""Cases into events: each case's steps, their times in office hours, and the event rows."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from functools import partial
from typing import Any

from .catalog import ALL_IN_ONE, CENT, FINE_WEIGHTS, FINES, P, SURVEY_REPORT, Item
from .county import Case, County
from .window import AS_OF, DAY


@dataclass
class Step:
    name: str
    actor: str | None
    fields: dict[str, Any] = field(default_factory=dict)
    floor: int = 60          # least office seconds after the previous step
    weight: float = 0.0      # share of the free time before the next anchor
    at: int | None = None    # anchored position (office seconds since the first workday)
    extra_days: int = 0      # whole working days added (suspension)
    gap: int = 0             # for steps after the decision: drawn gap


def _step(county: County, item: Item, name: str, actor: str | None, weight: float = 1.0,
          **fields: Any) -> Step:
    files = item.attachments.get(name)
    if files:
        fields.setdefault("attachments", ";".join(files))
    floor = 60 + 72 * item.min_minutes.get(name, 0)  # 1.2 × the minimum, plus a minute
    return Step(name, actor, fields, floor, weight * county.rng.lognormvariate(0, 0.8))


def _main_steps(county: County, case: Case, clerk: str, principal: str) -> list[Step]:
    it, dept, o = case.item, case.item.department, case.opts
    mk = partial(_step, county, it)
    if it.on_spot:
        return [mk("accept", clerk), mk("decide", county.pick(dept, "chief"))]
    chief, surveyor = county.pick(dept, "chief"), county.pick(dept, "clerk", avoid=clerk)
    main = [mk("accept", clerk)] + ([mk("survey", surveyor)] if it.survey else [])
    main.append(mk("review", chief))
    if case.kind == "returned_not_overdue":
        main.append(mk("return", chief, 0.3, note="申请材料不齐全，退回窗口补正"))
        if it.survey:
            main.append(mk("survey", surveyor, 0.6))
        main.append(mk("review", chief, 0.6))
    if "suspend_days" in o:
        why = "举行听证" if it.category == P else "组织专家评审"
        main.append(mk("suspend", chief, 0.1,
                       note=f"{why}，所需时间不计入办理期限（第四十五条）"))
        main.append(mk("resume", chief, 0.1, note=f"{why}结束，恢复计时"))
        main[-1].extra_days = o["suspend_days"]
    if "extend_day" in o:
        main.append(mk("extend", principal, 0.0, days=10,
                       note="情况复杂，经本机关负责人批准延长十个工作日（第四十二条）"))
        main[-1].at = (case.idx0 + o["extend_day"]) * DAY + county.rng.randrange(DAY)
    main += [mk("approve", county.pick(dept, "deputy"), 0.6), mk("decide", principal, 0.5)]
    if case.kind == "missing_attachment":
        for s in main:
            if s.name == "survey":
                s.fields["attachments"] = ";".join(
                    f for f in it.attachments["survey"] if f != SURVEY_REPORT)
    return main


def _post_steps(county: County, case: Case, clerk: str, principal: str) -> list[Step]:
    it, kind, o = case.item, case.kind, case.opts
    scale, cap = (10, 900) if it.on_spot else (1, 3600)

    def mk(name: str, actor: str | None, median: int, **fields: Any) -> Step:
        limit = DAY // 4 if name == "fee_paid" and not it.on_spot else cap
        return Step(name, actor, fields, gap=county.lognormal(median / scale, limit))

    out, amount = [], it.fee
    if it.category == P:  # simple procedure (当场): at most 200 yuan (行政处罚法 Art. 51)
        fines, weights = ((FINES[:3], (1, 2, 2)) if it.on_spot else (FINES, FINE_WEIGHTS))
        amount = Decimal(county.rng.choices(fines, weights)[0])
    if amount:
        out.append(mk("fee_assessed", clerk, 900, amount=amount))
        paid = amount
        if kind == "authorised_waiver":
            paid = (amount / 2).quantize(CENT)
            out.append(mk("fee_waived", principal, 1200, amount=amount - paid,
                          note="经主要负责人批准，小微企业减半收取"))
        elif kind == "unauthorised_waiver":
            paid = (amount * Decimal(o["factor"])).quantize(CENT)
            if o.get("clerk_waiver"):
                out.append(mk("fee_waived", clerk, 600, amount=amount - paid, note="窗口减免"))
        if kind == "offline_fee":
            out.append(mk("fee_paid", clerk, 1800, amount=paid, channel="offline",
                          note="窗口现金收取"))
        elif kind != "unpaid_certificate":
            out.append(mk("fee_paid", None, 3 * 3600, amount=paid, channel="online"))
    if it.certificate:
        out.append(mk("certificate_printed", clerk, 1800))
    out.append(mk("complete", clerk, 300))
    return out


def _anchor(county: County, case: Case, main: list[Step], post: list[Step]) -> None:
    """Pin the decision (or the step a stuck case stops at) to its working day."""
    o, rng = case.opts, county.rng
    if "day" in o:  # overdue, extended or stuck: that step's day is given
        main[-1].at = (case.idx0 + o["day"]) * DAY + rng.randrange(DAY)
        return
    if o.get("batch"):  # keyed in late on the day: the next step comes the day after
        main[1].at = (case.idx0 + 1) * DAY + rng.randrange(DAY // 2)
    p0 = case.idx0 * DAY + case.sec0
    if case.item.on_spot:
        end = p0 + rng.randint(900, 5400)
    else:
        end = (case.idx0 + o["days"] + o.get("suspend_days", 0)) * DAY + rng.randrange(DAY)
    need = sum(s.floor + s.extra_days * DAY for s in main[1:]) + 60
    post_floor, post_gap = sum(s.floor for s in post), sum(s.gap for s in post)
    end = max(end, p0 + need + post_floor)
    room = end - p0 - need - post_floor
    if post_gap > room:
        for s in post:
            s.gap = s.gap * room // post_gap
    main[-1].at = end - sum(s.floor + s.gap for s in post)


def _case_floor(case: Case, main: list[Step]) -> None:
    """Acceptance → decision never faster than the item's min_case_minutes (× 1.2)."""
    if main[-1].name == "decide":
        short = 72 * case.item.min_case_minutes - sum(s.floor for s in main[1:])
        main[-1].floor += max(0, short)


def _timeline(county: County, case: Case) -> tuple[list[Step], list[datetime]]:
    if case.kind == "one_person_approval":
        return _one_person(county, case)
    dept, o = case.item.department, case.opts
    clerk = o.get("clerk") or county.pick(dept, "clerk")
    principal = county.pick(dept, "principal")
    main = _main_steps(county, case, clerk, principal)
    if "stuck" in o:
        main = main[:[s.name for s in main].index(o["stuck"]) + 1]
        post = []
    else:
        _case_floor(case, main)
        post = _post_steps(county, case, clerk, principal)
    _anchor(county, case, main, post)
    steps = main + post
    times = [county.when(p) for p in _place(case.idx0 * DAY + case.sec0, steps)]
    if "fast" in o:  # typed in after the fact: seconds after the previous step
        name, seconds = o["fast"]
        i = [s.name for s in steps].index(name)
        times[i] = times[i - 1] + timedelta(seconds=seconds)
    return steps, times


def _one_person(county: County, case: Case) -> tuple[list[Step], list[datetime]]:
    """Accept, review, approve and decide by one clerk holding every right, in minutes."""
    it, rng = case.item, county.rng
    t0 = county.when(case.idx0 * DAY + case.sec0)
    names = ("accept", "review", "approve", "decide", "certificate_printed", "complete")
    steps = [_step(county, it, n, ALL_IN_ONE) for n in names]
    offsets = list(case.opts["offsets"])
    offsets.append(offsets[-1] + rng.randint(60, 900))
    offsets.append(offsets[-1] + rng.randint(30, 300))
    return steps, [t0 + timedelta(seconds=s) for s in offsets]


def _events(county: County, case: Case) -> list[dict[str, Any]]:
    steps, times = _timeline(county, case)
    rows = []
    for k, (s, t) in enumerate(zip(steps, times), start=1):
        recorded = t + timedelta(seconds=1 + county.lognormal(30, 600, 0.8))
        rows.append({"event_id": f"{case.case_id}-{k:02d}", "case_id": case.case_id,
                     "item_code": case.item.code, "department": case.item.department,
                     "step": s.name, "actor": s.actor, "occurred_at": t,
                     "recorded_at": recorded, **s.fields})
    o = case.opts
    if "batch_recorded" in o:
        rows[0]["recorded_at"] = o["batch_recorded"]
    if o.get("late"):
        late = county.rng.choice([r for r in rows if r["actor"]])
        late["recorded_at"] = late["occurred_at"] + timedelta(
            seconds=county.rng.randint(50 * 3600, 240 * 3600))
    return [r for r in rows if r["occurred_at"] < AS_OF and r["recorded_at"] < AS_OF]


def generate(county: County) -> list[dict[str, Any]]:
    events = [e for case in county.cases for e in _events(county, case)]
    events.sort(key=lambda e: (e["recorded_at"], e["event_id"]))
    return events


def _place(p0: int, steps: list[Step]) -> list[int]:
    """Office-time positions: steps share the free time up to each anchor by weight."""
    pos, i = [p0], 1
    while i < len(steps):
        anchor = next(((k, at) for k in range(i, len(steps))
                       if (at := steps[k].at) is not None), None)
        if anchor is None:
            for s in steps[i:]:
                pos.append(pos[-1] + s.floor + s.gap)
            break
        j, at = anchor
        seg, base = steps[i:j + 1], pos[-1]
        need = sum(s.floor + s.extra_days * DAY for s in seg)
        target = max(at, base + need + 60)
        free, total = target - base - need, sum(s.weight for s in seg) or 1.0
        for s in seg:
            base += s.floor + s.extra_days * DAY + int(free * s.weight / total)
            pos.append(base)
        pos[-1] = target
        i = j + 1
    return pos
