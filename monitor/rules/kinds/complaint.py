"""complaint (效能投诉): each complaint is a finding handled through 受理 → 调查 → 处置 → 反馈
(GB/T 36113-2018's stages), each stage due a number of working days after receipt; a stage
reached late, or not reached when its day is over, turns the finding red. A complaint
about a case shows that case's alerts beside it.

* Complaints come from ``permit-monitor ingest complaints``; the department records each
  stage as it reaches it (``permit-monitor complaints advance ID --stage …``, on the
  trail).
* The defaults (1, 5, 10, 15 working days from receipt) follow common 12345-hotline
  practice (受理 the next working day, 办结 within 15 working days); set your county's.
* Runs after the other rules (it lists the linked case's alerts of this run too).
* Scope: department lists. Not incremental: time passing decides.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass

from sqlalchemy import Connection, select

from ...models import Alert, Complaint
from ..finding import Context, Finding
from ._voice import IN_CHUNK, deadline, in_scope, lapsed, local_day

WORKING_DAYS = True  # counts in ctx.calendar: a county's own calendar judges it apart
TITLE = "效能投诉待办结"
DEFAULT_MESSAGE = ("{department} 收到效能投诉（{channel}，{category}），当前环节：{stage}；"
                   "应于 {answer_by} 前反馈{lapse_text}{case_alerts_text}")
FIELDS = ("complaint_id", "channel", "category", "stage", "answer_by", "lapse_text",
          "case_alerts", "case_alerts_text")
INCREMENTAL = False
AFTER_OTHERS = True
KIND = "complaint"
# stage → (column recording it, Chinese name)
STAGES = {"accepted": ("accepted_at", "受理"), "investigated": ("investigated_at", "调查"),
          "handled": ("handled_at", "处置"), "answered": ("answered_at", "反馈")}


@dataclass(frozen=True)
class Params:
    accept_days: int = 1        # working days after receipt to accept (受理)
    investigate_days: int = 5   # … to finish the investigation (调查)
    handle_days: int = 10       # … to act on it (处置)
    answer_days: int = 15       # … to answer the complainant (反馈)


# what citizens said is not shown beside a complaint: only what the log's own rules found
# (the voice kinds' alerts come and go with this very run, and would make the text unstable)
VOICE_KINDS = ("bad_rating", "complaint", "rating_contradiction", "volume_drop",
               "ranking_last")


def _case_alerts(conn: Connection, case_ids: list[str]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = defaultdict(list)
    for i in range(0, len(case_ids), IN_CHUNK):
        for row in conn.execute(select(Alert.case_id, Alert.id, Alert.kind, Alert.level)
                                .where(Alert.case_id.in_(case_ids[i:i + IN_CHUNK]),
                                       Alert.status != "suppressed",
                                       Alert.kind.not_in(VOICE_KINDS))
                                .order_by(Alert.id)):
            out[row.case_id].append(f"#{row.id} {row.kind}（{row.level}）")
    return out


def detect(conn: Connection, rule, ctx: Context) -> Iterator[Finding]:
    p = rule.params
    days = {"accepted": p.accept_days, "investigated": p.investigate_days,
            "handled": p.handle_days, "answered": p.answer_days}
    rows = [r for r in conn.execute(select(Complaint).where(Complaint.received_at <= ctx.as_of)
                                    .order_by(Complaint.received_at, Complaint.complaint_id))
            if in_scope(rule, r.department, None)]
    linked = _case_alerts(conn, sorted({r.case_id for r in rows if r.case_id}))
    for r in rows:
        due = {s: deadline(r.received_at, days[s], ctx) for s in STAGES}
        done = {s: getattr(r, col) for s, (col, _) in STAGES.items()}
        reached = [s for s in STAGES if done[s] is not None and done[s] <= ctx.as_of]
        stage = STAGES[reached[-1]][1] if reached else "待受理"
        lapses = [STAGES[s][1] for s in STAGES if lapsed(done[s], due[s], ctx)]
        alerts = linked.get(r.case_id or "", [])
        yield Finding(
            subject=r.complaint_id, case_id=r.case_id, department=r.department,
            level="red" if lapses else None,
            fields={"complaint_id": r.complaint_id, "channel": r.channel or "未注明渠道",
                    "category": r.category or "未分类", "stage": stage,
                    "answer_by": due["answered"].isoformat(),
                    "lapse_text": f"；已逾期未{'、'.join(lapses)}" if lapses else "",
                    "case_alerts": "；".join(alerts),
                    "case_alerts_text": (f"；所涉办件 {r.case_id} 另有告警 {'；'.join(alerts)}"
                                         if alerts else "")},
            evidence={"complaint_id": r.complaint_id,
                      "received_on": local_day(r.received_at, ctx).isoformat(),
                      "channel": r.channel, "category": r.category, "text": r.text,
                      "stages": {STAGES[s][1]: {"due": due[s].isoformat(),
                                                "done": done[s] and local_day(done[s], ctx).isoformat()}
                                 for s in STAGES},
                      "lapsed": lapses, "case_alerts": alerts})
