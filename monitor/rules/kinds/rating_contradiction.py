"""rating_contradiction (评议与监察不符): what citizens say contradicts what the log says,
and either the catalog's limits or the log are wrong — an auditor must look.

* A 差评 (score ≤ ``max_score``, not voided) tagged as overdue (a tag containing one of
  ``overdue_tags``, e.g. 无理由超过法定办理时间) on a case that ended (``decide`` or
  ``complete``) with no ``overdue`` finding: the case looks on time in the log.
* A complaint whose category contains one of ``fee_categories`` on a case with no fee
  finding (``unpaid_fee``, ``fee_waiver``).
* Runs after the other rules (it reads the findings of this run too). One finding per
  rating or complaint (subject ``rating:ID`` / ``complaint:ID``).
* Scope: department lists. Not incremental.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from sqlalchemy import Connection, or_, select

from ...models import Alert, Complaint, Event, Rating
from ..finding import Context, Finding
from ._voice import IN_CHUNK, in_scope, local_day

WORKING_DAYS = True  # its helper module (_voice) counts working days: judged apart
TITLE = "群众评议与监察记录不符（需核查）"
DEFAULT_MESSAGE = "{department} 办件 {case_id}：{what}，但{contradiction}，请核查事项时限或办件记录"
FIELDS = ("what", "contradiction", "source_id")
INCREMENTAL = False
AFTER_OTHERS = True
KIND = "rating_contradiction"
FEE_KINDS = ("unpaid_fee", "fee_waiver")


@dataclass(frozen=True)
class Params:
    max_score: int = 2
    overdue_tags: tuple[str, ...] = ("超过法定办理时间", "超时", "超期")
    fee_categories: tuple[str, ...] = ("收费",)


def _kinds_by_case(conn: Connection, case_ids: list[str]) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for i in range(0, len(case_ids), IN_CHUNK):
        for case_id, kind in conn.execute(
                select(Alert.case_id, Alert.kind).where(Alert.case_id.in_(case_ids[i:i + IN_CHUNK]),
                                                        Alert.status != "suppressed")):
            out.setdefault(case_id, set()).add(kind)
    return out


def _ended(conn: Connection, case_ids: list[str], ctx: Context) -> set[str]:
    out: set[str] = set()
    for i in range(0, len(case_ids), IN_CHUNK):
        out.update(conn.scalars(select(Event.case_id).distinct().where(
            Event.case_id.in_(case_ids[i:i + IN_CHUNK]), Event.step.in_(("decide", "complete")),
            Event.occurred_at <= ctx.as_of)))
    return out


def detect(conn: Connection, rule, ctx: Context) -> Iterator[Finding]:
    p = rule.params
    ratings = [r for r in conn.execute(
        select(Rating).where(Rating.score <= p.max_score, Rating.rated_at <= ctx.as_of,
                             Rating.case_id.is_not(None),
                             or_(Rating.appeal.is_(None), Rating.appeal != "voided"))
        .order_by(Rating.rating_id))
        if in_scope(rule, r.department, r.item_code)
        and any(t in tag for tag in (r.tags or []) for t in p.overdue_tags)]
    complaints = [c for c in conn.execute(
        select(Complaint).where(Complaint.received_at <= ctx.as_of,
                                Complaint.case_id.is_not(None))
        .order_by(Complaint.complaint_id))
        if in_scope(rule, c.department, None)
        and any(t in (c.category or "") for t in p.fee_categories)]
    cases = sorted({r.case_id for r in ratings} | {c.case_id for c in complaints})
    kinds = _kinds_by_case(conn, cases)
    ended = _ended(conn, [r.case_id for r in ratings], ctx)
    for r in ratings:
        if r.case_id in ended and "overdue" not in kinds.get(r.case_id, ()):
            tags = [t for t in r.tags or [] if any(x in t for x in p.overdue_tags)]
            yield Finding(
                subject=f"rating:{r.rating_id}", case_id=r.case_id, department=r.department,
                item_code=r.item_code,
                fields={"what": f"差评称“{'；'.join(tags)}”",
                        "contradiction": "超期规则未发现该办件超期（已办结）",
                        "source_id": r.rating_id},
                evidence={"rating_id": r.rating_id, "tags": list(r.tags or []),
                          "rated_on": local_day(r.rated_at, ctx).isoformat(),
                          "case_findings": sorted(kinds.get(r.case_id, ())),
                          "case_ended": True})
    for c in complaints:
        found = kinds.get(c.case_id, set())
        if not found & set(FEE_KINDS):
            yield Finding(
                subject=f"complaint:{c.complaint_id}", case_id=c.case_id,
                department=c.department,
                fields={"what": f"投诉反映收费问题（{c.category}）",
                        "contradiction": "收费规则未发现该办件收费异常",
                        "source_id": c.complaint_id},
                evidence={"complaint_id": c.complaint_id, "category": c.category,
                          "received_on": local_day(c.received_at, ctx).isoformat(),
                          "case_findings": sorted(found), "text": c.text})
