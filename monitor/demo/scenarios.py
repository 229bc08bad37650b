"""Planted scenarios: anomalies a rule must find and controls no rule may flag.

Each scenario names the items it may use and a setup function that shapes one chosen case;
:func:`plan` draws a county's cases and hands each scenario its share.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Callable

from .catalog import EIA, HAZCHEM, HOLIDAY_ITEM, MAKEUP_ITEM, P, SOCIETY, SURVEY_REPORT, Item
from .county import Case, County
from .window import DAY, MORNING, TZ


def _not_spot(i: Item) -> bool:
    return not i.on_spot


def _fee(i: Item) -> bool:
    return i.fee > 0


# Each setup shapes one chosen case (j = its rank within the scenario) and returns how many
# working days after acceptance must still fall inside the window, or None if it chose the
# acceptance day itself.
Setup = Callable[[County, Case, int], "int | None"]


def _clean(county: County, case: Case, j: int) -> int:
    return case.opts["days"] + 1


def _too_fast(county: County, case: Case, j: int) -> int:
    mins = case.item.min_minutes
    name = "survey" if j == 0 else county.rng.choice(
        [s for s in ("survey", "review", "approve", "decide") if s in mins])
    case.opts["fast"] = (name, 58 if j == 0 else
                         county.rng.randint(15, min(600, 60 * mins[name]) - 1))
    return case.opts["days"] + 1


def _late(county: County, case: Case, j: int) -> int:
    case.opts["late"] = True
    return case.opts["days"] + 12


def _batch(county: County, case: Case, j: int) -> None:
    """A dozen paper applications of one day, keyed in by one clerk from 17:20."""
    o, d = case.opts, county.days[county.batch_day]
    case.idx0, case.sec0 = county.batch_day, county.rng.randint(1800, DAY - 1800)
    o["clerk"], o["batch"], o["days"] = county.batch_clerk, True, max(2, o["days"])
    o["batch_recorded"] = datetime(d.year, d.month, d.day, 17, 20, tzinfo=TZ) + timedelta(
        seconds=20 * j + county.rng.randint(0, 9))


def _one_person(county: County, case: Case, j: int) -> None:
    rng = county.rng
    case.idx0 = rng.randint(0, county.end - 1)
    case.sec0 = rng.choice((rng.randint(0, MORNING - 1800), rng.randint(MORNING, DAY - 1800)))
    case.opts["offsets"] = ((0, 41, 97, 153) if j == 0 else
                            (0, *sorted(rng.sample(range(20, 400), 3))))


def _overdue(county: County, case: Case, j: int, yellow: bool) -> int | None:
    rng, it, o = county.rng, case.item, case.opts
    if j == (1 if yellow else 0) or rng.random() < 0.3:  # still open at as_of, stuck
        if yellow and it.legal < it.promised + 3:
            case.item = it = county.by_code[MAKEUP_ITEM]
        o["stuck"] = rng.choice(("review", "approve"))
        o["day"] = rng.randint(1, max(1, it.promised))
        lo, hi = ((county.end - it.legal + 1, county.end - it.promised - 2) if yellow
                  else (county.end - it.legal - 20, county.end - it.legal - 2))
        case.idx0 = rng.randint(max(0, lo), hi)
        return None
    o["day"] = (rng.randint(it.promised + 1, it.legal - 1) if yellow
                else it.legal + rng.randint(1, 10))
    return o["day"] + 1


def _yellow(county: County, case: Case, j: int) -> int | None:
    if j == 0:  # overdue only because Saturday 2025-10-11 is a make-up working day
        case.idx0 = county.day_index(date(2025, 9, 30))
        case.opts["day"] = case.item.promised + 1
        return None
    return _overdue(county, case, j, yellow=True)


def _red(county: County, case: Case, j: int) -> int | None:
    return _overdue(county, case, j, yellow=False)


def _unauthorised(county: County, case: Case, j: int) -> int:
    case.opts["factor"] = county.rng.choice(("0.5", "0.6", "0.8"))
    case.opts["clerk_waiver"] = j == 1  # waived, but by the clerk
    return case.opts["days"] + 1


def _holiday(county: County, case: Case, j: int) -> None:
    case.idx0 = county.day_index(date(2025, 9, 30))
    case.opts["days"] = case.item.promised


def _suspended(county: County, case: Case, j: int) -> int:
    o = case.opts  # gross days run past legal (decision included), net stays within promised
    o["suspend_days"] = case.item.legal - o["days"] + county.rng.randint(2, 10)
    return o["days"] + o["suspend_days"] + 1


def _extended(county: County, case: Case, j: int) -> int:
    legal, rng = case.item.legal, county.rng
    case.opts["day"] = legal + rng.randint(1, 9)         # decided after the original limit
    case.opts["extend_day"] = legal - rng.randint(1, 3)  # extended before it ran out
    return case.opts["day"] + 1


@dataclass(frozen=True)
class Scenario:
    anomaly: bool       # True: a rule must find it; False: a control no rule may flag
    rate: float         # share of all cases (at least one); 0 = a fixed count
    eligible: Callable[[Item], bool]
    setup: Setup
    description: str
    count: int = 0
    example: str | None = None  # item code of the first case, the one planted.json describes


SCENARIOS: dict[str, Scenario] = {
    "too_fast_step": Scenario(
        True, 0.01, _not_spot, _too_fast, "a step keyed in sooner after the previous one than "
        "its item's min_minutes (事后补录); the first: a hazardous-chemicals survey 58 s after "
        "acceptance", example=HAZCHEM),
    "late_record": Scenario(
        True, 0.01, _not_spot, _late, "one step recorded more than 48 hours after it happened "
        "(补录)"),
    "batch_entry": Scenario(
        True, 0, lambda i: i.department == "SJJ" and i.promised >= 3, _batch,
        "one clerk keyed a day's 12 acceptances within 5 minutes (批量录入)", count=12),
    "one_person_approval": Scenario(
        True, 0.002, lambda i: i.code == EIA, _one_person, "accept, review, approve and decide "
        "by one clerk holding every role, in minutes (一人多岗, 超快审批); the first took "
        "2 min 33 s"),
    "overdue_promised": Scenario(
        True, 0.015, lambda i: _not_spot(i) and i.legal >= i.promised + 2, _yellow,
        "past promised_days, within legal_days, in working days (黄牌); some still open at "
        "as_of; the first is overdue only because Saturday 2025-10-11 was a working day",
        example=MAKEUP_ITEM),
    "overdue_legal": Scenario(
        True, 0.006, _not_spot, _red, "past legal_days in working days, not extended (红牌); "
        "some still open at as_of"),
    "missing_attachment": Scenario(
        True, 0.005, lambda i: i.survey and i.category != P, _clean,
        f"survey step without its required {SURVEY_REPORT} (控制节点)", example=SOCIETY),
    "unpaid_certificate": Scenario(
        True, 0.005, lambda i: _fee(i) and i.certificate, _clean,
        "certificate printed for a fee item that was never paid (网下收费)"),
    "offline_fee": Scenario(
        True, 0.005, _fee, _clean, "fee_paid offline; the certificate is printed without an "
        "online payment (网下收费)"),
    "unauthorised_waiver": Scenario(
        True, 0.005, _fee, _unauthorised, "paid online below the standard fee without a "
        "principal's fee_waived (擅自减免)"),
    "holiday_not_overdue": Scenario(
        False, 0, lambda i: i.code == HOLIDAY_ITEM, _holiday, "accepted 2025-09-30, finished on "
        "its promised working day across National Day: more weekdays than promised_days, yet "
        "not overdue", count=1, example=HOLIDAY_ITEM),
    "suspended_not_overdue": Scenario(
        False, 0.005, lambda i: _not_spot(i) and i.legal >= 5, _suspended, "suspended (Art. 45):"
        " gross working days exceed legal_days, net of the suspension within promised_days"),
    "extended_not_overdue": Scenario(
        False, 0.003, lambda i: _not_spot(i) and i.legal >= 10 and i.promised == i.legal,
        _extended, "extended by 10 working days (Art. 42) before the limit; decided after the "
        "original limit, within the extended one"),
    "authorised_waiver": Scenario(
        False, 0.003, _fee, _clean, "half the fee waived by the principal's fee_waived, the "
        "rest paid online"),
    "returned_not_overdue": Scenario(
        False, 0.015, _not_spot, _clean, "returned for correction (退回) and reviewed again, "
        "within promised_days"),
}


def plan(county: County) -> None:
    """Draw the cases, give each scenario its share, then number the cases."""
    rng = county.rng
    for _ in range(county.n):
        item = rng.choices(county.items, [i.weight for i in county.items])[0]
        case = Case(item, rng.randint(0, county.end), county.accept_second(item))
        case.opts["days"] = county.span_days(item.promised)
        county.cases.append(case)
    county.batch_day = rng.randint(county.end // 3, 2 * county.end // 3)
    county.batch_clerk = rng.choice(county.staff["SJJ"]["clerk"])
    county.planted = {k: [] for k in SCENARIOS}
    for kind, sc in SCENARIOS.items():
        for j, case in enumerate(_choose(county, sc)):
            _setup(county, kind, sc, case, j)
            county.planted[kind].append(case)
    county.cases.sort(key=lambda c: (c.idx0, c.sec0))
    seq: dict[tuple[str, int], int] = defaultdict(int)
    for c in county.cases:
        seq[c.item.department, c.idx0] += 1
        stamp = county.days[c.idx0].strftime("%Y%m%d")
        c.case_id = f"{c.item.department}{stamp}{seq[c.item.department, c.idx0]:03d}"


def _choose(county: County, sc: Scenario) -> list[Case]:
    """Unplanted cases of eligible items; too few: turn others into eligible items."""
    rng, count = county.rng, sc.count or max(1, round(county.n * sc.rate))
    free = [c for c in county.cases if c.kind is None]
    chosen = [c for c in free if sc.eligible(c.item)]
    rng.shuffle(chosen)
    chosen = chosen[:count]
    if len(chosen) < count:
        others = [c for c in free if not sc.eligible(c.item)]
        pool = [i for i in county.items if sc.eligible(i)]
        for c in rng.sample(others, min(len(others), count - len(chosen))):
            c.item = rng.choices(pool, [i.weight for i in pool])[0]
            chosen.append(c)
    return chosen


def _setup(county: County, kind: str, sc: Scenario, case: Case, j: int) -> None:
    if j == 0 and sc.example:
        case.item = county.by_code[sc.example]
    case.kind, case.sec0 = kind, county.accept_second(case.item)
    case.opts = {"days": county.span_days(case.item.promised)}
    span = sc.setup(county, case, j)
    if span is not None:  # accept early enough that the whole case is in the log
        case.idx0 = county.rng.randint(0, max(0, county.end - span - 2))
