"""The generator's state and plan: one random stream, the working days, the catalog, the cases.

``County.plan`` draws the cases, hands each scenario its share and numbers them.
"""

from __future__ import annotations

import math
import random
from bisect import bisect_right
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from .catalog import Item, catalog_items, draw_staff
from .scenarios import SCENARIOS, Scenario
from .window import AFTERNOON, DAY, LAST_DAY, MORNING, OPENS, TZ, working_days


@dataclass
class Case:
    item: Item
    idx0: int               # acceptance day: index into the working-day list
    sec0: int               # acceptance time: office seconds into that day
    kind: str | None = None  # planted scenario, if any
    opts: dict[str, Any] = field(default_factory=dict)
    case_id: str = ""


class County:
    """The generator: one random stream, the working days, the catalog, the planted cases."""

    def __init__(self, seed: int, cases: int):
        self.rng = random.Random(seed)
        self.n = cases
        self.days = working_days()
        self.end = bisect_right(self.days, LAST_DAY) - 1
        self.items = catalog_items()
        self.by_code = {i.code: i for i in self.items}
        self.users, self.staff = draw_staff(self.rng)
        self.cases: list[Case] = []
        self.planted: dict[str, list[Case]] = {k: [] for k in SCENARIOS}
        self.details: dict[str, Any] = {}

    # ---- positions: office seconds since the first working day of the window
    def when(self, pos: int) -> datetime:
        idx, s = divmod(pos, DAY)
        d = self.days[idx]
        clock = OPENS + s if s < MORNING else AFTERNOON + s - MORNING
        return datetime(d.year, d.month, d.day, tzinfo=TZ) + timedelta(seconds=clock)

    def pick(self, dept: str, role: str, avoid: str | None = None) -> str:
        pool = [u for u in self.staff[dept][role] if u != avoid]
        return self.rng.choice(pool)

    def lognormal(self, median: float, cap: float, sigma: float = 0.9) -> int:
        return int(min(cap, self.rng.lognormvariate(math.log(median), sigma)))

    def span_days(self, promised: int) -> int:
        """How many working days a clean case takes (1 … promised, mostly early)."""
        if promised <= 1:
            return promised
        return 1 + int((promised - 1) * self.rng.betavariate(1.6, 2.4))

    # ---- planning
    def accept_second(self, item: Item) -> int:
        return self.rng.randrange(DAY - 9000 if item.on_spot else DAY)

    def day_index(self, d: date) -> int:
        return self.days.index(d)

    def plan(self) -> None:
        """Draw the cases, give each scenario its share, then number the cases."""
        rng = self.rng
        for _ in range(self.n):
            item = rng.choices(self.items, [i.weight for i in self.items])[0]
            case = Case(item, rng.randint(0, self.end), self.accept_second(item))
            case.opts["days"] = self.span_days(item.promised)
            self.cases.append(case)
        self.batch_day = rng.randint(self.end // 3, 2 * self.end // 3)
        self.batch_clerk = rng.choice(self.staff["SJJ"]["clerk"])
        for kind, sc in SCENARIOS.items():
            for j, case in enumerate(self.choose(sc)):
                self.setup(kind, sc, case, j)
                self.planted[kind].append(case)
        self.cases.sort(key=lambda c: (c.idx0, c.sec0))
        seq: dict[tuple[str, int], int] = defaultdict(int)
        for c in self.cases:
            seq[c.item.department, c.idx0] += 1
            stamp = self.days[c.idx0].strftime("%Y%m%d")
            c.case_id = f"{c.item.department}{stamp}{seq[c.item.department, c.idx0]:03d}"

    def choose(self, sc: Scenario) -> list[Case]:
        """Unplanted cases of eligible items; too few: turn others into eligible items."""
        rng, count = self.rng, sc.count or max(1, round(self.n * sc.rate))
        free = [c for c in self.cases if c.kind is None]
        chosen = [c for c in free if sc.eligible(c.item)]
        rng.shuffle(chosen)
        chosen = chosen[:count]
        if len(chosen) < count:
            others = [c for c in free if not sc.eligible(c.item)]
            pool = [i for i in self.items if sc.eligible(i)]
            for c in rng.sample(others, min(len(others), count - len(chosen))):
                c.item = rng.choices(pool, [i.weight for i in pool])[0]
                chosen.append(c)
        return chosen

    def setup(self, kind: str, sc: Scenario, case: Case, j: int) -> None:
        if j == 0 and sc.example:
            case.item = self.by_code[sc.example]
        case.kind, case.sec0 = kind, self.accept_second(case.item)
        case.opts = {"days": self.span_days(case.item.promised)}
        span = sc.setup(self, case, j)
        if span is not None:  # accept early enough that the whole case is in the log
            case.idx0 = self.rng.randint(0, max(0, self.end - span - 2))
