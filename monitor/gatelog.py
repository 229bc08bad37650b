"""The gate's log: every answer of the workflow gate, and what a later run makes of a
refusal that was ignored.

:func:`ask` is what the API route and ``permit-monitor gate check`` call: the verdict
(monitor/gate.py) and its row in ``gate_log`` — who asked, through which channel, the
candidate, the decision, the reasons, the versions of the rules consulted, how long it
took. A ``deny`` is also appended to the trail (``gate_denied``) in the same transaction.
A degraded answer (the store could not answer in time) is logged by :func:`log_degraded`.

When an event the gate refused is ingested anyway, the alert it raises says so:
:func:`cite_refusals` adds the refusal (its log id, time, who asked, the reasons) to the
evidence of each finding of a gated rule that cites such an event, and the alert's
message is prefixed with ``alerts.GATE_REFUSED``, and its level is red. An event is the
refused one when its ``event_id`` is the candidate's: the workflow system sends the id it
will record (a candidate without one is answered and logged, but cannot be recognised
later).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import replace
from datetime import datetime
from itertools import islice
from typing import Any

from sqlalchemy import Connection, Engine, insert, select

from . import trail
from .catalogmemo import CatalogMemo
from .config import Config
from .gate import Verdict, judge
from .models import GateLog
from .regionrules import RuleSets
from .rules.finding import Finding
from .rules.model import Rule
from .trail import Entry

log = logging.getLogger(__name__)



# built once, values come with each execution; several rows: one INSERT … VALUES of them
# all (SQLAlchemy's insertmanyvalues), their ids in the rows' order
_LOG = insert(GateLog).returning(GateLog.id, sort_by_parameter_order=True)


def log_row(verdict: Verdict, asked_by: str, channel: str, at: datetime,
            elapsed_ms: int | None = None) -> dict[str, Any]:
    """The verdict's ``gate_log`` row."""
    candidate = verdict.candidate
    return dict(at=at, asked_by=asked_by[:64], channel=channel,
                case_id=candidate.get("case_id"), event_id=candidate.get("event_id"),
                step=candidate.get("step"), candidate=candidate, decision=verdict.decision,
                reasons=list(verdict.reasons), rule_versions=dict(verdict.rule_versions),
                degraded=verdict.degraded, elapsed_ms=elapsed_ms)


def record(conn: Connection, verdict: Verdict, asked_by: str, channel: str, at: datetime,
           elapsed_ms: int | None = None) -> int:
    """The verdict's row in ``gate_log`` (and, for a deny, its trail entry); its id."""
    return record_many(conn, [(verdict, asked_by, channel, at, elapsed_ms)])[0]


Line = tuple[Verdict, str, str, datetime, "int | None"]  # record()'s arguments


def record_many(conn: Connection, lines: list[Line]) -> list[int]:
    """:func:`record` for several verdicts at once (the gate's log writer, a batch of
    requests): their ``gate_log`` rows in one statement, the denies' trail entries in one
    append, each at its own time; the rows' ids, in order."""
    ids = list(conn.execute(_LOG, [log_row(*line) for line in lines]).scalars()) \
        if len(lines) > 1 else [conn.execute(_LOG, log_row(*lines[0])).scalar_one()]
    denied = [_denied(log_id, *line) for log_id, line in zip(ids, lines)
              if line[0].decision == "deny"]
    if denied:  # the log rows hold SQLite's write lock already
        trail.append(conn, denied[0].at or lines[0][3], denied)
    return ids


def _denied(log_id: int, verdict: Verdict, asked_by: str, channel: str, at: datetime,
            elapsed_ms: int | None = None) -> Entry:
    candidate = verdict.candidate
    return Entry("gate_denied", None, asked_by, {
        "gate_log_id": log_id, "case_id": candidate.get("case_id"),
        "event_id": candidate.get("event_id"), "step": candidate.get("step"),
        "degraded": verdict.degraded,
        "reasons": [{k: r.get(k) for k in ("rule_id", "kind", "level", "effect")}
                    for r in verdict.reasons]}, channel, at=at)


def ask(engine: Engine, config: Config, rules: list[Rule] | RuleSets, raw: Any, at: datetime,
        asked_by: str, channel: str, before: Any = None,
        wanted: Callable[[], bool] = lambda: True, memo: CatalogMemo | None = None,
        later: Callable[..., None] | None = None) -> Verdict:
    """The gate's verdict on ``raw``, logged (see :func:`record`) — unless by then it is no
    longer ``wanted`` (the caller got a degraded answer instead: that one is logged).
    ``memo``: the catalog read by earlier decisions (:func:`~monitor.gate.judge`);
    ``later``: takes the verdict's line instead (the web app's guard: its log writer,
    monitor/gatewriter.py, whose commit a deny's answer waits for) — without it the line,
    and a deny's trail entry, are committed here."""
    started = time.monotonic()
    with engine.connect() as conn:  # one connection for the look and its log line
        verdict = judge(conn, config, rules, raw, at, before, memo)
        elapsed = round((time.monotonic() - started) * 1000)
        if not wanted():
            return verdict
        if later is not None:
            later(verdict, asked_by, channel, at, elapsed)
            return verdict
        with conn.begin():
            if before is not None:
                before(conn)
            record(conn, verdict, asked_by, channel, at, elapsed)
    return verdict


def log_degraded(engine: Engine, verdict: Verdict, asked_by: str, channel: str,
                 at: datetime, budget_ms: int) -> None:
    """A degraded answer (already in the log) in ``gate_log`` (and, a deny, on the trail)
    once the store takes writes again; a failure here is logged, not raised."""
    try:
        with engine.begin() as conn:
            record(conn, verdict, asked_by, channel, at, budget_ms)
    except Exception as exc:  # the store is what failed: say so, do not fail again
        log.error("gate: could not log the degraded answer: %s", str(exc).splitlines()[0])


def cite_refusals(conn: Connection, rule: Rule, findings: Iterable[Finding],
                  chunk: int = 1000) -> Iterator[Finding]:
    """``findings`` as they come, each that cites an event the gate refused carrying the
    refusal (see the module's docstring). Only a gated rule's findings are looked at; one
    query per ``chunk`` findings."""
    it = iter(findings)
    if not rule.gate:
        yield from it
        return
    while batch := list(islice(it, chunk)):
        refused = _refused(conn, {i for f in batch for i in f.event_ids})
        for finding in batch:
            hits = [refused[i] for i in finding.event_ids if i in refused]
            yield _cited(finding, hits) if hits else finding


def _refused(conn: Connection, event_ids: set[str]) -> dict[str, dict[str, Any]]:
    """event id → the gate's latest refusal of it, among ``event_ids``."""
    if not event_ids:
        return {}
    g = GateLog.__table__
    rows = conn.execute(
        select(g.c.event_id.label("refused_event"), g.c.id, g.c.at, g.c.asked_by, g.c.reasons)
        .where(g.c.event_id.in_(sorted(event_ids)), g.c.decision == "deny",
               g.c.degraded.is_(False))
        .order_by(g.c.id))
    return {r.refused_event: {"gate_log_id": r.id, "refused_at": r.at.isoformat(),
                              "asked_by": r.asked_by, "event_id": r.refused_event,
                              "reasons": [x.get("message") for x in r.reasons or ()]}
            for r in rows}


def _cited(finding: Finding, refusals: list[dict[str, Any]]) -> Finding:
    """A stronger finding: red, whatever the rule's level, as the step was taken against
    the gate's refusal."""
    return replace(finding, level="red", evidence={**finding.evidence, "gate_refused": refusals})
