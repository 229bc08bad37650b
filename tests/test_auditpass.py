"""The audit pass (monitor/auditpass.py) that run, escalate, notify flush, nightly, the
daemon's jobs and the demo replay share: its stages, its rules, its failures, and the
record form of a run's counts."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest
from sqlalchemy import func, select

from conftest import NOW, event
from monitor.auditpass import STAGES, Evaluation, PassSummary, audit_pass
from monitor.catalog import ingest_catalog
from monitor.catchup import Plan
from monitor.errors import RuleError
from monitor.escalation import Escalated
from monitor.inbox import InboxFile
from monitor.ingest import Tally, ingest_events
from monitor.jobs import RunCounts
from monitor.models import Alert
from monitor.outbox import Flushed
from monitor.rules.loader import load_rules
from test_supervision import CATALOG, RAISED, RULES


@pytest.fixture
def county(engine, config, tmp_path, write_events):
    """One case surveyed 58 s after acceptance, and a rule that finds it."""
    (tmp_path / "catalog.yaml").write_text(CATALOG, encoding="utf-8")
    ingest_catalog(engine, tmp_path / "catalog.yaml")
    path = write_events([event("a1", "c1", "accept", "2025-09-30 10:00:00"),
                         event("a2", "c1", "survey", "2025-09-30 10:00:58")])
    list(ingest_events(engine, config, [str(path)], NOW))
    (tmp_path / "rules.yaml").write_text(RULES, encoding="utf-8")
    return tmp_path / "rules.yaml"


def alerts(engine) -> int:
    with engine.connect() as conn:
        return conn.scalar(select(func.count()).select_from(Alert))


def test_stages_run_in_their_order_and_the_rules_load_once(engine, config, county):
    loads, started = [], []

    def rules():
        loads.append(1)
        return load_rules([county])

    done = audit_pass(engine, config, RAISED, rules=rules, stages=("flush", "evaluate",
                                                                   "escalate"),
                      on_stage=lambda stage, so_far: started.append((stage, so_far.ok)))
    assert started == [("evaluate", True), ("escalate", True), ("flush", True)]
    assert len(loads) == 1  # evaluate and escalate share one loading
    assert done.ok and done.errors == []
    assert (done.evaluation.new_alerts, done.evaluation.findings) == (1, 1)
    assert done.escalation is not None and done.delivery is not None
    assert done.redelivered == 0 and done.report is None and done.catch_up is None
    again = audit_pass(engine, config, RAISED, rules=load_rules([county]),
                       stages=("evaluate",))
    assert again.evaluation.new_alerts == 0 and alerts(engine) == 1


def test_a_failed_stage_is_raised_or_with_keep_going_recorded_and_the_next_run(
        engine, config, county):
    def broken():
        raise RuleError(str(county), 3, "unknown key 'kindd' (did you mean 'kind'?)")

    with pytest.raises(RuleError):
        audit_pass(engine, config, RAISED, rules=broken, stages=STAGES[:2])
    done = audit_pass(engine, config, RAISED, rules=broken, keep_going=True,
                      stages=("evaluate", "escalate", "flush"))
    problem = f"{county}:3: unknown key 'kindd' (did you mean 'kind'?)"
    assert done.errors == [f"evaluate: {problem}", f"escalate: {problem}"]
    assert done.evaluation is None and done.escalation is None
    assert done.delivery is not None  # a broken rule file does not stop delivery
    assert alerts(engine) == 0


def test_a_dry_run_only_evaluates_and_writes_nothing(engine, config, county):
    with pytest.raises(ValueError, match="a dry run only evaluates"):
        audit_pass(engine, config, RAISED, rules=load_rules([county]), dry_run=True,
                   stages=("evaluate", "escalate"))
    done = audit_pass(engine, config, RAISED, rules=load_rules([county]), dry_run=True,
                      stages=("evaluate",))
    assert done.evaluation.findings == 1 and alerts(engine) == 0


def test_a_runs_counts_keep_their_record_form(tmp_path):
    """runs.counts and `nightly --json` print this form: keys, order and values."""
    at = datetime(2025, 11, 20, 18, tzinfo=timezone.utc)
    slot = datetime(2025, 11, 19, 18, tzinfo=timezone.utc)
    summary = PassSummary(
        at, catch_up=Plan(slot, [slot], 0),
        evaluation=Evaluation([], new_alerts=2, updated_alerts=1, messages=5, cleared=1,
                              failures={"x": "x failed"}),
        escalation=Escalated(escalated=[1], reminded=[2, 3], messages=4),
        report="reports/report-2025-11.html (+ report-2025-11.xlsx)", redelivered=0,
        delivery=Flushed(sent=4))
    counts = RunCounts(
        inbox=[InboxFile("e.csv", "events", "done", "read 1 · inserted 1\nmore", tmp_path)],
        inbox_waiting=1, pulled={"wf": Tally(read=3, inserted=2, duplicates=1)},
        rules_problem="rule files invalid", audit=summary, new_red=1, as_of=at)
    assert counts.as_dict() == {
        "inbox_waiting": 1, "inbox_files": 1, "inbox_failed": 0,
        "inbox": [{"file": "e.csv", "kind": "events", "status": "done",
                   "detail": "read 1 · inserted 1"}],
        "pulled": {"wf": {"read": 3, "inserted": 2, "duplicates": 1, "quarantined": 0,
                          "by_reason": {}}},
        "rules_problem": "rule files invalid",
        "catch_up": {"since": slot.isoformat(), "slots": [slot.isoformat()], "skipped": 0},
        "rules": 0, "findings": 0, "new_alerts": 2, "updated_alerts": 1, "failed_rules": 1,
        "told": 5, "cleared": 1, "escalated": 1, "reminded": 2, "queued": 4,
        "report": "reports/report-2025-11.html (+ report-2025-11.xlsx)",
        "redelivered": 0, "sent": 4, "retrying": 0, "undeliverable": 0,
        "new_red": 1, "as_of": at.isoformat()}
    assert list(counts.as_dict()) == [
        "inbox_waiting", "inbox_files", "inbox_failed", "inbox", "pulled", "rules_problem",
        "catch_up", "rules", "findings", "new_alerts", "updated_alerts", "failed_rules",
        "told", "cleared", "escalated", "reminded", "queued", "report", "redelivered", "sent", "retrying",
        "undeliverable", "new_red", "as_of"]
    assert RunCounts().as_dict() == {}  # a step that did not run leaves no key
