"""Acting on the citizens' voice: a department appeals a 差评 (申诉) and tier 2 decides it
(申诉复核); a department records each stage of a complaint (受理 → 调查 → 处置 → 反馈).

Every act is by a catalog user allowed by the one permission function
(monitor/authz.py: ``appeal`` and ``advance`` for the department's tier-1 monitors and
tier 2, ``decide_appeal`` for tier 2 only) and goes on the trail in the same transaction.
A voided rating closes its findings (``bad_rating``, ``rating_contradiction``) as
``voided``: they count nowhere, and the rule raises them no more.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, select, update

from . import authz, trail
from .errors import InvalidTransition, NotFound, did_you_mean
from .models import Alert, Complaint, Rating
from .rules.kinds.complaint import STAGES
from .supervised import update as traced_update
from .supervision import ACTIVE, actor_of
from .trail import Entry

VERDICTS = {"upheld": "维持差评", "voided": "撤销差评"}


@dataclass(frozen=True)
class Resource:
    """A rating or complaint as the permission function sees it."""

    what: str
    department: str


def _rating(conn, rating_id: str) -> Any:
    row = conn.execute(select(Rating).where(Rating.rating_id == rating_id)).one_or_none()
    if row is None:
        raise NotFound(f"no rating with id '{rating_id}' (permit-monitor ingest ratings)")
    return row


def _alerts_of(conn, kind: str, subject: str) -> list[Any]:
    return list(conn.execute(select(Alert.id, Alert.status).where(Alert.kind == kind,
                                                                 Alert.subject == subject)))


def appeal(engine: Engine, rating_id: str, by: str, reason: str, at: datetime,
           channel: str | None = None) -> str:
    """The department appeals a 差评 (申诉): it awaits tier 2's decision."""
    if not (reason or "").strip():
        raise InvalidTransition("an appeal needs its reason (--reason \"…\")")
    with engine.begin() as conn:
        trail.lock(conn)
        r = _rating(conn, rating_id)
        authz.check(actor_of(conn, by, channel), "appeal",
                    Resource(f"rating {rating_id}", r.department))
        if r.appeal is not None:
            raise InvalidTransition(f"rating {rating_id} was already appealed ({r.appeal})")
        conn.execute(update(Rating).where(Rating.rating_id == rating_id).values(
            appeal="pending", appeal_reason=reason.strip(), appealed_by=by, appealed_at=at))
        alerts = _alerts_of(conn, "bad_rating", rating_id)
        trail.append(conn, at, [Entry("rating_appealed", alerts[0].id if alerts else None, by,
                                      {"rating_id": rating_id, "reason": reason.strip()},
                                      channel)])
    return "pending"


def decide(engine: Engine, rating_id: str, by: str, verdict: str, note: str | None,
           at: datetime, channel: str | None = None) -> list[int]:
    """Tier 2 upholds a 差评 under appeal or voids it; returns the alerts closed as voided."""
    if verdict not in VERDICTS:
        raise InvalidTransition(f"unknown verdict '{verdict}'{did_you_mean(verdict, VERDICTS)}: "
                                f"one of {', '.join(VERDICTS)}")
    with engine.begin() as conn:
        trail.lock(conn)
        r = _rating(conn, rating_id)
        authz.check(actor_of(conn, by, channel), "decide_appeal",
                    Resource(f"rating {rating_id}", r.department))
        if r.appeal != "pending":
            raise InvalidTransition(f"rating {rating_id} has no appeal pending"
                                    + (f" (it was {r.appeal})" if r.appeal else ""))
        if r.appealed_by == by:
            raise InvalidTransition(f"{by} appealed rating {rating_id}; another tier-2 "
                                    "monitor must decide it")
        conn.execute(update(Rating).where(Rating.rating_id == rating_id).values(
            appeal=verdict, decided_by=by, decided_at=at))
        closed: list[int] = []
        states: dict[int, dict[str, Any]] = {}  # the alerts' new state, on their entries
        if verdict == "voided":
            for kind, subject in (("bad_rating", rating_id),
                                  ("rating_contradiction", f"rating:{rating_id}")):
                for a in _alerts_of(conn, kind, subject):
                    if a.status in ACTIVE or a.status in ("resolved", "confirmed", "suppressed"):
                        states[a.id] = traced_update(conn, "alerts", a.id, status="resolved",
                                                     disposition="voided", resolved_at=at,
                                                     updated_at=at)
                        closed.append(a.id)
        alerts = _alerts_of(conn, "bad_rating", rating_id)
        entries = [Entry("rating_" + verdict, alerts[0].id if alerts else None, by,
                         {"rating_id": rating_id, "note": note, "closed": closed}, channel)]
        entries += [Entry("resolved", a, by, {"disposition": "voided",
                                              "note": f"差评 {rating_id} 经申诉复核撤销"}, channel,
                          [states[a]])
                    for a in closed]
        trail.append(conn, at, entries)
    return closed


def advance(engine: Engine, complaint_id: str, stage: str, by: str, at: datetime,
            note: str | None = None, channel: str | None = None) -> str:
    """Record that a complaint reached ``stage`` (accepted | investigated | handled |
    answered) at ``at``; stages are reached in order, each once."""
    if stage not in STAGES:
        raise InvalidTransition(f"unknown stage '{stage}'{did_you_mean(stage, STAGES)}: one "
                                f"of {', '.join(STAGES)} (受理, 调查, 处置, 反馈)")
    with engine.begin() as conn:
        trail.lock(conn)
        c = conn.execute(select(Complaint).where(Complaint.complaint_id == complaint_id)
                         ).one_or_none()
        if c is None:
            raise NotFound(f"no complaint with id '{complaint_id}' "
                           "(permit-monitor ingest complaints)")
        authz.check(actor_of(conn, by, channel), "advance",
                    Resource(f"complaint {complaint_id}", c.department))
        order = list(STAGES)
        column = STAGES[stage][0]
        if getattr(c, column) is not None:
            raise InvalidTransition(f"complaint {complaint_id} already reached {stage} "
                                    f"({STAGES[stage][1]})")
        missing = [s for s in order[:order.index(stage)] if getattr(c, STAGES[s][0]) is None]
        if missing:
            raise InvalidTransition(f"complaint {complaint_id} has not reached "
                                    f"{', '.join(missing)} yet: stages go in order "
                                    "受理 → 调查 → 处置 → 反馈")
        conn.execute(update(Complaint).where(Complaint.complaint_id == complaint_id)
                     .values({column: at}))
        alerts = _alerts_of(conn, "complaint", complaint_id)
        trail.append(conn, at, [Entry("complaint_" + stage, alerts[0].id if alerts else None,
                                      by, {"complaint_id": complaint_id, "note": note},
                                      channel)])
    return STAGES[stage][1]


RATING_FIELDS = ("rating_id", "case_id", "item_code", "department", "rated_at", "channel",
                 "score", "tags", "text", "appeal", "appeal_reason", "appealed_by",
                 "decided_by")
COMPLAINT_FIELDS = ("complaint_id", "received_at", "channel", "department", "case_id",
                    "category", "text", "accepted_at", "investigated_at", "handled_at",
                    "answered_at")


def list_ratings(engine: Engine, *, department: str | None = None,
                 max_score: int | None = None, appeal: str | None = None) -> list[Any]:
    """Ratings, newest first; ``max_score=2`` gives the 差评."""
    q = select(Rating).order_by(Rating.rated_at.desc(), Rating.rating_id)
    if department:
        q = q.where(Rating.department == department)
    if max_score is not None:
        q = q.where(Rating.score <= max_score)
    if appeal:
        q = q.where(Rating.appeal == appeal)
    with engine.connect() as conn:
        return list(conn.execute(q))


def list_complaints(engine: Engine, *, department: str | None = None,
                    open_only: bool = False) -> list[Any]:
    """Complaints, newest first; ``open_only``: not yet answered (反馈)."""
    q = select(Complaint).order_by(Complaint.received_at.desc(), Complaint.complaint_id)
    if department:
        q = q.where(Complaint.department == department)
    if open_only:
        q = q.where(Complaint.answered_at.is_(None))
    with engine.connect() as conn:
        return list(conn.execute(q))


def record(row: Any, fields: tuple[str, ...]) -> dict[str, Any]:
    out = {}
    for f in fields:
        value = getattr(row, f)
        out[f] = value.isoformat() if isinstance(value, datetime) else value
    return out
