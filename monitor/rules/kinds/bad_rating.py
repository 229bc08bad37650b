"""bad_rating (差评): every 差评 of the 好差评 system (score ≤ ``max_score``) is a tier-1
finding that the department must verify (核实: acknowledge the alert) and rectify (整改:
resolve it) within working-day deadlines; a lapse turns it red, and like every alert it
escalates to tier 2 when its handling deadline (the rule's ``handling_days``) passes.

* Ratings come from ``permit-monitor ingest ratings``. A rating counts from ``rated_at``
  (a rating stored later than a run is judged at the next one).
* Deadlines count working days from the day of the rating, with the working-day calendar:
  核实 within ``verify_days``, 整改 within ``rectify_days``. 国办发〔2019〕51号 asks that every
  差评 be verified and rectified in time, with a rectification in principle within 15
  working days — the default; provinces set their own (often 1–3 working days to verify):
  set both to your province's rules.
* A department may appeal (申诉, ``permit-monitor ratings appeal``); tier 2 upholds the
  rating or voids it (``ratings decide``). A voided rating is no finding at all: its alert
  is closed as voided and it counts nowhere (report, scores).
* Scope: department and item lists. Not incremental: time passing decides.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from sqlalchemy import Connection, or_, select

from ...models import Rating
from ..finding import Context, Finding
from ._voice import alert_states, deadline, in_scope, lapsed, local_day

WORKING_DAYS = True  # counts in ctx.calendar: a county's own calendar judges it apart
TITLE = "群众差评待核实整改（好差评）"
DEFAULT_MESSAGE = ("{department} 收到差评（{score_label}{tags_text}），"
                   "应于 {verify_by} 前核实、{rectify_by} 前整改{lapse_text}")
FIELDS = ("rating_id", "score", "score_label", "tags", "tags_text", "channel", "verify_by",
          "rectify_by", "lapse_text")
INCREMENTAL = False
KIND = "bad_rating"
SCORE_LABELS = {1: "非常不满意", 2: "不满意", 3: "基本满意", 4: "满意", 5: "非常满意"}


@dataclass(frozen=True)
class Params:
    max_score: int = 2       # a score at or below this is a 差评 (2: 不满意)
    verify_days: int = 3     # working days to verify (核实) — set your province's figure
    rectify_days: int = 15   # working days to rectify (整改); 国办发〔2019〕51号: 15 in principle


def detect(conn: Connection, rule, ctx: Context) -> Iterator[Finding]:
    p = rule.params
    rows = [r for r in conn.execute(
        select(Rating).where(Rating.score <= p.max_score, Rating.rated_at <= ctx.as_of,
                             or_(Rating.appeal.is_(None), Rating.appeal != "voided"))
        .order_by(Rating.rated_at, Rating.rating_id))
        if in_scope(rule, r.department, r.item_code)]
    states = alert_states(conn, rule.id, [r.rating_id for r in rows])
    for r in rows:
        verify_by = deadline(r.rated_at, p.verify_days, ctx)
        rectify_by = deadline(r.rated_at, p.rectify_days, ctx)
        state = states.get(r.rating_id)
        verified = state and (state.acknowledged_at or state.resolved_at)
        rectified = state and state.resolved_at
        lapses = [what for what, done, by in (("核实", verified, verify_by),
                                              ("整改", rectified, rectify_by))
                  if lapsed(done or None, by, ctx)]
        tags = list(r.tags or [])
        yield Finding(
            subject=r.rating_id, case_id=r.case_id, department=r.department,
            item_code=r.item_code, level="red" if lapses else None,
            fields={"rating_id": r.rating_id, "score": r.score,
                    "score_label": SCORE_LABELS.get(r.score, str(r.score)),
                    "tags": "；".join(tags), "tags_text": f"：{'；'.join(tags)}" if tags else "",
                    "channel": r.channel or "", "verify_by": verify_by.isoformat(),
                    "rectify_by": rectify_by.isoformat(),
                    "lapse_text": f"；已逾期未{'、'.join(lapses)}" if lapses else ""},
            evidence={"rating_id": r.rating_id, "rated_on": local_day(r.rated_at, ctx).isoformat(),
                      "score": r.score, "tags": tags, "channel": r.channel, "text": r.text,
                      "verify_by": verify_by.isoformat(), "rectify_by": rectify_by.isoformat(),
                      "lapsed": lapses, "appeal": r.appeal})
