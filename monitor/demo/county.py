"""The generator's state: one random stream, the working days, the catalog, the cases.

:func:`.scenarios.plan` draws the cases, hands each scenario its share and numbers them.
"""

from __future__ import annotations

import math
import random
from bisect import bisect_right
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from .catalog import Item, catalog_items, draw_staff
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
        self.seed = seed
        self.n = cases
        self.days = working_days()
        self.end = bisect_right(self.days, LAST_DAY) - 1
        self.items = catalog_items()
        self.by_code = {i.code: i for i in self.items}
        self.users, self.staff = draw_staff(self.rng)
        self.cases: list[Case] = []
        # set by .scenarios.plan: scenario → its cases; the day and clerk of the batch entry
        self.planted: dict[str, list[Case]] = {}
        self.batch_day = 0
        self.batch_clerk = ""
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
