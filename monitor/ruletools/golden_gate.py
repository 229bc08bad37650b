"""Gate expectations in golden rule tests: what the workflow gate answers about a
candidate event, given the test's cases as history.

A test may list, under ``gate:``, candidate events and the decision expected::

    gate:
      - case: HC-1                       # a case of the test: its item, its last event
        event: {survey: +58s, actor: u2} # as a case's event: relative to its last event
        expect: deny                     # allow | warn | deny
        reasons: [step-too-fast]         # optional: the rule ids behind the answer

Each is asked (``monitor.gate.check``, nothing stored) after the test's events are
ingested and before its evaluations, as of the candidate's own time.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from ..errors import RuleError
from ..gate import DECISIONS, GateInputError, check
from ..yamlsrc import LineDict, LineList, check_keys

GATE_KEYS = {"case", "event", "expect", "reasons"}


@dataclass(frozen=True)
class GateExpectation:
    line: int
    candidate: dict[str, Any]  # a contract row
    decision: str
    reasons: tuple[str, ...] | None


def parse(raw: Any, cases: Any, events: list, where: str, line: int, tz: ZoneInfo,
          event_rows) -> tuple[GateExpectation, ...]:
    """The ``gate:`` list of a test; ``event_rows(case_id, spec, where, tz)`` turns a case
    spec into contract rows (golden's own reader, so the syntax is the same)."""
    if raw is None:
        return ()
    if not isinstance(raw, LineList):
        raise RuleError(where, line, "'gate' must be a list of {case, event, expect}")
    out = []
    for item_line, spec in zip(raw.item_lines, raw):
        if not isinstance(spec, LineDict):
            raise RuleError(where, item_line, "each gate check is {case, event, expect}")
        check_keys(spec, GATE_KEYS, where, RuleError, required=("case", "event", "expect"))
        case_id = str(spec["case"])
        if not isinstance(cases, dict) or case_id not in cases:
            raise RuleError(where, spec.line_of("case"), f"gate check names case '{case_id}', "
                            "which is not one of the test's cases")
        if spec["expect"] not in DECISIONS:
            raise RuleError(where, spec.line_of("expect"), f"'expect' must be one of "
                            f"{', '.join(DECISIONS)}, got {spec['expect']!r}")
        history = [r for r, _ in events if r["case_id"] == case_id]
        case = cases[case_id]
        # the candidate read as one more event of its case, after the case's own
        merged = LineDict({k: v for k, v in case.items() if k != "events"}, line=case.line)
        merged["events"] = LineList([_anchor(h) for h in history] + [spec["event"]])
        merged["events"].item_lines = [case.line] * len(history) + [spec.line_of("event")]
        rows = event_rows(case_id, merged, where, tz)
        candidate = rows[-1][0]
        if "event_id" not in (spec["event"] or {}):
            candidate = {**candidate, "event_id": f"{case_id}-gate-{item_line}"}
        reasons = spec.get("reasons")
        out.append(GateExpectation(item_line, candidate, str(spec["expect"]),
                                   None if reasons is None else tuple(map(str, reasons))))
    return tuple(out)


def _anchor(row: dict[str, Any]) -> LineDict:
    """A stored history row as a case event again (its absolute time), so that relative
    times in the candidate count from the case's last event."""
    return LineDict({row["step"]: datetime.fromisoformat(row["occurred_at"])})


def run(engine, config, rules, checks: tuple[GateExpectation, ...], path: str,
        name: str) -> list[str]:
    """The failed expectations, one line each: ``path:line: … expected X, got Y``."""
    failures = []
    for c in checks:
        at = datetime.fromisoformat(c.candidate["occurred_at"])
        try:
            verdict = check(engine, config, rules, c.candidate, at)
        except GateInputError as exc:
            failures.append(f"{path}:{c.line}: test '{name}': gate check: {exc.detail}")
            continue
        got = tuple(r["rule_id"] for r in verdict.reasons)
        if verdict.decision != c.decision or (c.reasons is not None
                                              and sorted(got) != sorted(c.reasons)):
            failures.append(f"{path}:{c.line}: test '{name}': gate expected {c.decision}"
                            f"{'' if c.reasons is None else ' ' + str(list(c.reasons))}, "
                            f"got {verdict.decision} {list(got)}"
                            + "".join(f"\n    {r['rule_id']}: {r['message']}"
                                      for r in verdict.reasons))
    return failures
