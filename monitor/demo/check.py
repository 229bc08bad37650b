"""The demo's audit checked against its ground truth (``planted.json``).

Each shipped kind should flag exactly the subjects planted for it — a case id, or a
``department|period`` for the monthly fee reconciliation — and nothing else; the
look-alike controls must never appear. :func:`check` says, per kind, how many were
expected, found, missed and flagged unexpectedly, so the demo can print it and the tests
can hold the rules to it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from ..rules.finding import Finding


@dataclass(frozen=True)
class KindCheck:
    kind: str
    expected: frozenset[str]
    found: frozenset[str]

    @property
    def missed(self) -> frozenset[str]:
        return self.expected - self.found

    @property
    def unexpected(self) -> frozenset[str]:
        return self.found - self.expected


def expected_subjects(truth: Mapping) -> dict[str, set[str]]:
    """What each kind must flag on the demo county, from ``planted.json``."""
    a = truth["anomalies"]
    penalties = truth["details"]["offline_penalties"]
    one_person = set(a["one_person_approval"])
    return {
        # one clerk holding every role also raced through each step and the whole case
        "step_too_fast": set(a["too_fast_step"]) | one_person,
        "case_too_fast": one_person,
        "same_actor_roles": one_person,
        "late_entry": set(a["late_record"]),
        "batch_entry": set(a["batch_entry"]),
        "overdue": set(a["overdue_promised"]) | set(a["overdue_legal"]),
        "missing_attachment": set(a["missing_attachment"]),
        "unpaid_fee": set(a["unpaid_certificate"]) | set(a["offline_fee"]),
        "fee_waiver": set(a["unauthorised_waiver"]),
        "fee_reconciliation": {f"{penalties['department']}|{period}"
                               for period in penalties["gap_by_period"]},
        "inactive_monitor": set(a.get("inactive_monitor", ())),
        "bad_rating": set(a.get("bad_rating", ())),
        "complaint": set(a.get("complaint", ())),
        "rating_contradiction": set(a.get("rating_contradiction", ())),
    }


# kinds whose findings follow from the others' (the scorecard ranking), not from anything
# planted: the check leaves them out, the demo's audit table still shows them
DERIVED = ("ranking_last",)


SUBJECT_KINDS = ("bad_rating", "complaint", "rating_contradiction", "volume_drop")  # named by their subjects (a rating, a complaint …)


def flagged(kind: str, findings: Iterable[Finding]) -> set[str]:
    """The subjects a kind's findings name, in the terms of :func:`expected_subjects`."""
    out: set[str] = set()
    for f in findings:
        if kind == "fee_reconciliation":
            out.add(f"{f.department}|{f.period}")
        elif kind == "inactive_monitor":
            if f.actor is not None:
                out.add(f.actor)
        elif kind in SUBJECT_KINDS:
            out.add(f.subject)
        else:
            out.update(f.case_ids or ((f.case_id,) if f.case_id is not None else ()))
    return out


def check(truth: Mapping, outcomes: Iterable) -> list[KindCheck]:
    """One :class:`KindCheck` per kind the shipped rules evaluated, in kind order."""
    expected = expected_subjects(truth)
    found: dict[str, set[str]] = {}
    for o in outcomes:
        if o.rule.kind not in DERIVED:
            found.setdefault(o.rule.kind, set()).update(flagged(o.rule.kind, o.findings))
    return [KindCheck(kind, frozenset(expected.get(kind, ())), frozenset(found.get(kind, ())))
            for kind in sorted(set(expected) | set(found))]
