"""The citizens' voice in the monthly 通报: 好差评 (rated cases, 差评率, 差评 verified and
rectified on time, the top 差评 tags), complaints (received, answered, on time) and the
online volume against the year before with the treasury's receipts beside it — the
offline-operation signal the seed county read off its penalty figures.

Ratings and complaints count in the period they were given or received; a rating voided
on appeal counts nowhere. "On time" is what the ``bad_rating`` and ``complaint`` rules
found at their last run (their alerts' evidence: a lapse of 核实, 整改 or 反馈)."""

from __future__ import annotations

from collections import Counter, defaultdict
from decimal import Decimal

from sqlalchemy import Connection, or_, select

from ..models import Alert, Complaint, Rating, Receipt
from .figures import Scope
from .model import Column, Table, change, rate

BAD = 2  # a score at or below this is a 差评 (the bad_rating rule's default)
TOP_TAGS = 3


def _lapses(conn: Connection, kind: str, subjects: list[str]) -> dict[str, tuple]:
    """subject → (lapsed stages, status, disposition) of the kind's alerts on them."""
    out: dict[str, tuple] = {}
    for i in range(0, len(subjects), 500):
        for a in conn.execute(select(Alert.subject, Alert.evidence, Alert.status,
                                     Alert.disposition)
                              .where(Alert.kind == kind,
                                     Alert.subject.in_(subjects[i:i + 500]))):
            out[a.subject] = (tuple((a.evidence or {}).get("lapsed") or ()), a.status,
                              a.disposition)
    return out


def ratings_table(conn: Connection, scope: Scope, rows: list[dict]) -> Table:
    lo, hi = scope.bounds["cur"]
    ratings = list(conn.execute(select(Rating).where(
        Rating.rated_at >= lo, Rating.rated_at < hi, scope.dept(Rating.department),
        or_(Rating.appeal.is_(None), Rating.appeal != "voided"))))
    bad = [r for r in ratings if r.score <= BAD]
    state = _lapses(conn, "bad_rating", [r.rating_id for r in bad])
    per: dict[str, Counter] = defaultdict(Counter)
    tags: dict[str, Counter] = defaultdict(Counter)
    for r in ratings:
        per[scope.of(r.region, r.department)]["rated"] += 1
    for r in bad:
        c = per[scope.of(r.region, r.department)]
        c["bad"] += 1
        lapsed, status, _ = state.get(r.rating_id, ((), "open", None))
        c["verified_on_time"] += "核实" not in lapsed and status != "open"
        c["rectified_on_time"] += "整改" not in lapsed and status in ("resolved", "confirmed")
        c["appealed"] += r.appeal is not None
        tags[scope.of(r.region, r.department)].update(r.tags or [])

    def fill(d: str) -> dict:
        c = per.get(d, Counter())
        return {"rated": c["rated"], "bad": c["bad"], "bad_rate": rate(c["bad"], c["rated"]),
                "verified_on_time": c["verified_on_time"],
                "rectified_on_time": c["rectified_on_time"], "appealed": c["appealed"],
                "top_tags": "；".join(f"{t}（{n}）" for t, n in tags[d].most_common(TOP_TAGS))}

    t = Table("t_ratings", [Column("department", "text"), Column("name", "text"),
                            Column("rated"), Column("bad"), Column("bad_rate", "pct"),
                            Column("verified_on_time"), Column("rectified_on_time"),
                            Column("appealed"), Column("top_tags", "text")],
              [dict(r, **fill(r["department"])) for r in rows])
    total = sum((per[d] for d in per), Counter())
    every_tag = sum(tags.values(), Counter())
    t.total = {"department": "", "name": "合计", "rated": total["rated"], "bad": total["bad"],
               "bad_rate": rate(total["bad"], total["rated"]),
               "verified_on_time": total["verified_on_time"],
               "rectified_on_time": total["rectified_on_time"], "appealed": total["appealed"],
               "top_tags": "；".join(f"{t}（{n}）" for t, n in every_tag.most_common(TOP_TAGS))}
    return t


def complaints_table(conn: Connection, scope: Scope, rows: list[dict]) -> Table:
    lo, hi = scope.bounds["cur"]
    complaints = list(conn.execute(select(Complaint).where(
        Complaint.received_at >= lo, Complaint.received_at < hi,
        scope.dept(Complaint.department))))
    state = _lapses(conn, "complaint", [c.complaint_id for c in complaints])
    per: dict[str, Counter] = defaultdict(Counter)
    for c in complaints:
        n = per[scope.of(c.region, c.department)]
        n["received"] += 1
        n["answered"] += c.answered_at is not None
        lapsed = state.get(c.complaint_id, ((),))[0]
        n["answered_on_time"] += c.answered_at is not None and "反馈" not in lapsed
        n["linked"] += c.case_id is not None

    def fill(d: str) -> dict:
        n = per.get(d, Counter())
        return {"received": n["received"], "answered": n["answered"],
                "answered_on_time": n["answered_on_time"],
                "answer_rate": rate(n["answered_on_time"], n["received"]),
                "linked": n["linked"]}

    t = Table("t_complaints", [Column("department", "text"), Column("name", "text"),
                               Column("received"), Column("answered"),
                               Column("answered_on_time"), Column("answer_rate", "pct"),
                               Column("linked")],
              [dict(r, **fill(r["department"])) for r in rows])
    total = sum(per.values(), Counter())
    t.total = {"department": "", "name": "合计", "received": total["received"],
               "answered": total["answered"], "answered_on_time": total["answered_on_time"],
               "answer_rate": rate(total["answered_on_time"], total["received"]),
               "linked": total["linked"]}
    return t


def volume_table(conn: Connection, scope: Scope, cases: dict, rows: list[dict]) -> Table:
    """Cases accepted online against the same period a year before, with the treasury's
    receipts for the period's months (where loaded)."""
    months = {name: (f"{p.start:%Y-%m}", f"{p.end:%Y-%m}") for name, p in
              (("cur", scope.period), ("yoy", scope.period.year_before()))}
    receipts: dict[tuple[str, str], Decimal] = defaultdict(Decimal)
    loaded: set[tuple[str, str]] = set()
    for r in conn.execute(select(Receipt.region, Receipt.department, Receipt.period,
                                 Receipt.amount).where(scope.dept(Receipt.department))):
        dept = scope.of(r.region, r.department)
        for name, (first, end) in months.items():
            if first <= r.period < end:
                receipts[(dept, name)] += r.amount
                loaded.add((dept, name))

    def fill(d: str) -> dict:
        now, before = cases.get((d, "accept", "cur"), 0), cases.get((d, "accept", "yoy"), 0)
        return {"accepted": now, "accepted_yoy_n": before, "accepted_yoy": change(now, before),
                "receipts": receipts[(d, "cur")] if (d, "cur") in loaded else None,
                "receipts_yoy_n": receipts[(d, "yoy")] if (d, "yoy") in loaded else None}

    return Table("t_volume", [Column("department", "text"), Column("name", "text"),
                              Column("accepted"), Column("accepted_yoy_n"),
                              Column("accepted_yoy", "change"), Column("receipts", "num"),
                              Column("receipts_yoy_n", "num")],
                 [dict(r, **fill(r["department"])) for r in rows])
