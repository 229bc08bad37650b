"""The demo county's monitors, simulated: what people do with the alerts they are given.

After each nightly run, every alert someone must act on gets a plan for its current
*stage* — (tier, acting or awaiting review, orders so far, dispositions so far) — drawn
from ``random.Random`` seeded by the seed, the alert and the stage, so a plan does not
depend on the order alerts are looked at. A plan is a few steps on later working days, at
moments within office hours; a stage that changes (an escalation, a rejection) makes the
old plan moot and a new one is drawn.

- Tier 1 (the department's monitor): most acknowledge, then resolve within the deadline
  with a disposition and a note; some let the deadline pass (escalation then moves the
  alert to tier 2 with a supervision order). Resolving releases the alert's holds.
- Under an order, tier 1 mostly resolves by the new deadline; some are late (reminders).
- Tier 2 (the county office) reviews each disposition of an escalated alert within two
  working days: confirms most, rejects some (reopened with a new order), and now and then
  spot-checks a red alert tier 1 closed by issuing an order on it.

Every step goes through the functions the CLI calls (monitor/supervision.py,
monitor/holds.py), with the simulated moment as ``at``.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any

from sqlalchemy import Engine, func, select

from .. import holds, supervision as sv
from ..models import Alert, Disposition, Hold, SupervisionOrder
from .window import AFTERNOON, DAY, MORNING, OPENS

ON_TIME = 0.8          # tier 1 resolves before its deadline
ACKNOWLEDGE = 0.7      # … and acknowledges first
ORDER_ON_TIME = 0.75   # under a supervision order, resolved by the new deadline
REJECT_FIRST = 0.25    # tier 2 rejects a first disposition of an escalated alert
REJECT_AGAIN = 0.1     # … and a later one
SPOT_CHECK = 0.1       # tier 2 orders on a red alert that tier 1 resolved

NOTES = {
    "acknowledged": ("已查看，正在核实", "已电话联系窗口负责人核实", "已调取纸质卷宗核对"),
    "rectified": ("已责令窗口整改，补齐材料并规范录入", "已约谈经办人，相关流程已整改",
                  "已补缴费用并出具财政票据", "已补齐控制节点附件，恢复办理"),
    "explained": ("纸质审批在先，系统事后补录，已说明情况", "系统故障期间线下办理，已补录并附说明",
                  "申请人材料齐全当场办结，符合即办条件"),
    "false_positive": ("核实为系统时钟偏差所致，非违规", "同一批次材料集中录入，经核实无违规"),
    "rejected:rectified": ("整改佐证材料不全，请补充后重新报送", "未见整改到位的证明，请补充"),
    "rejected:explained": ("说明理由不充分，请补充依据", "未附纸质审批记录，请补充后重新说明"),
    "rejected:false_positive": ("认定误报依据不足，请重新核实", "经抽查确有违规，请按整改处置"),
    "confirmed": ("处置得当，予以确认", "材料齐全，同意办结", None),
    "order": ("抽查：请补充整改佐证材料", "抽查：请说明处置依据"),
    "released": ("已核实处置，恢复办理",),
}
WEIGHTS = {"rectified": 5, "explained": 3, "false_positive": 2}


@dataclass(frozen=True)
class Step:
    second: int          # seconds after local midnight
    alert_id: int
    stage: tuple
    verb: str            # acknowledge | resolve | confirm | reject | order
    by: str
    note: str | None = None
    disposition: str | None = None


class Monitors:
    """The county's monitors for one replay: ``plan(day)`` after each run, ``act(day)``
    during the office hours of each working day."""

    def __init__(self, engine: Engine, policy: sv.Policy, seed: int):
        self.engine, self.policy, self.seed = engine, policy, seed
        self.cal = policy.calendar
        self.stages: dict[int, tuple] = {}            # alert id → stage of its current plan
        self.agenda: dict[date, list[Step]] = {}
        with engine.connect() as conn:
            self.tier2 = sv.monitors(conn)[1]

    # ------------------------------------------------------------ planning

    def plan(self, today: date) -> None:
        """Draw a plan for every alert whose stage changed since it was last planned."""
        with self.engine.connect() as conn:
            orders = dict(conn.execute(select(SupervisionOrder.alert_id, func.count())
                                       .group_by(SupervisionOrder.alert_id)).tuples().all())
            dispositions: dict[int, tuple[int, int, Any]] = {}  # alert → (n, rejected, last)
            for d in conn.execute(select(Disposition).order_by(Disposition.id)):
                n, rejected, _ = dispositions.get(d.alert_id, (0, 0, None))
                dispositions[d.alert_id] = (n + 1, rejected + (d.verdict == "rejected"), d)
            alerts = conn.execute(select(Alert).where(Alert.status != "confirmed")
                                  .order_by(Alert.id)).all()
        for alert in alerts:
            n, rejected, last = dispositions.get(alert.id, (0, 0, None))
            waiting = "act" if alert.status in sv.ACTIVE else "review"
            stage = (alert.tier, waiting, orders.get(alert.id, 0), n)
            if self.stages.get(alert.id) == stage:
                continue
            self.stages[alert.id] = stage
            rng = random.Random(f"{self.seed}|{alert.dedupe_key}|{stage}")
            if waiting == "act":
                steps = self._act(rng, alert, stage, today)
            elif alert.tier == 2:
                steps = self._review(rng, alert, stage, today, rejected, last)
            else:
                steps = self._spot_check(rng, alert, stage, today)
            for day, step in steps:
                self.agenda.setdefault(day, []).append(step)

    def _day(self, today: date, offset: int) -> date:
        return self.cal.add_workdays(today, max(offset, 1))

    @staticmethod
    def _moments(rng: random.Random, n: int) -> list[int]:
        """``n`` moments in office hours (08:30–12:00, 14:00–17:30), seconds after midnight."""
        office = sorted(rng.randrange(DAY) for _ in range(n))
        return [OPENS + s if s < MORNING else AFTERNOON + s - MORNING for s in office]

    def _tier1_user(self, rng: random.Random, alert: Any) -> str:
        return rng.choice(sorted(alert.assigned_to or []) or self.tier2)

    def _act(self, rng: random.Random, alert: Any, stage: tuple,
             today: date) -> list[tuple[date, Step]]:
        left = max(self.cal.workdays_between(today, alert.due_on), 1)
        by = self._tier1_user(rng, alert)
        on_time = rng.random() < (ON_TIME if alert.tier == 1 else ORDER_ON_TIME)
        ack = alert.status == "open" and rng.random() < ACKNOWLEDGE
        steps: list[tuple[int, str, str | None, None]] = []  # (day, verb, note, -)
        start = 1
        if ack:
            start = rng.randint(1, min(2, left))
            steps.append((start, "acknowledge", rng.choice(NOTES["acknowledged"]), None))
        if on_time:
            steps.append((rng.randint(start, left), "resolve", None, None))
        elif alert.tier == 2:  # late under the order: reminded until it is done
            steps.append((left + rng.randint(1, 3), "resolve", None, None))
        out = []
        seconds = self._moments(rng, len(steps))
        for (offset, verb, note, _), second in zip(steps, seconds):
            disposition = None
            if verb == "resolve":
                disposition = rng.choices(list(WEIGHTS), list(WEIGHTS.values()))[0]
                note = rng.choice(NOTES[disposition])
            out.append((self._day(today, offset),
                        Step(second, alert.id, stage, verb, by, note, disposition)))
        return out

    def _review(self, rng: random.Random, alert: Any, stage: tuple, today: date,
                rejected: int, last: Any) -> list[tuple[date, Step]]:
        reviewers = [u for u in self.tier2 if u != last.by_user]
        if not reviewers:
            return []
        reject = rng.random() < (REJECT_AGAIN if rejected else REJECT_FIRST)
        verb = "reject" if reject else "confirm"
        step = Step(self._moments(rng, 1)[0], alert.id, stage, verb, rng.choice(reviewers),
                    rng.choice(NOTES[f"rejected:{last.kind}" if reject else "confirmed"]))
        return [(self._day(today, rng.randint(1, 2)), step)]

    def _spot_check(self, rng: random.Random, alert: Any, stage: tuple,
                    today: date) -> list[tuple[date, Step]]:
        if alert.level != "red" or not self.tier2 or rng.random() >= SPOT_CHECK:
            return []
        step = Step(self._moments(rng, 1)[0], alert.id, stage, "order",
                    rng.choice(self.tier2), rng.choice(NOTES["order"]))
        return [(self._day(today, rng.randint(1, 3)), step)]

    # ------------------------------------------------------------ acting

    def act(self, today: date) -> None:
        """Carry out today's steps in time order, each only if its plan is still current."""
        for step in sorted(self.agenda.pop(today, []),
                           key=lambda s: (s.second, s.alert_id, s.verb)):
            if self.stages.get(step.alert_id) != step.stage:
                continue
            at = datetime.combine(today, time(), self.policy.tz) + timedelta(seconds=step.second)
            self._do(step, at)

    def _do(self, step: Step, at: datetime) -> None:
        e, p, a = self.engine, self.policy, step.alert_id
        if step.verb == "acknowledge":
            sv.acknowledge(e, a, step.by, at, step.note)
        elif step.verb == "resolve":
            sv.resolve(e, a, step.by, at, step.disposition, step.note)
            self._release(a, step.by, at + timedelta(minutes=5))
        elif step.verb == "confirm":
            sv.confirm(e, a, step.by, at, step.note)
        elif step.verb == "reject":
            sv.reject(e, p, a, step.by, at, step.note)
        elif step.verb == "order":
            sv.order(e, p, a, step.by, at, step.note)

    def _release(self, alert_id: int, by: str, at: datetime) -> None:
        """The case may go on once its alert is dealt with: release its holds."""
        with self.engine.connect() as conn:
            held = conn.scalars(select(Hold.id).where(Hold.alert_id == alert_id,
                                                      Hold.status == "held")
                                .order_by(Hold.id)).all()
        for hold_id in held:
            holds.release(self.engine, self.policy, hold_id, by, at, NOTES["released"][0])

