"""Alerts that clear and reopen (monitor/clearing.py, monitor/alerts.py): a finding that no
longer holds when its case is re-evaluated is closed as ``cleared`` with its evidence on
the trail; a resolved alert keeps its disposition; a case not re-evaluated (a replay as
of an earlier moment) is never cleared; a cleared alert found again is reopened and told
to tier 1; incremental and full evaluation clear the same alerts."""

from __future__ import annotations

from datetime import date, datetime, timezone

from sqlalchemy import select

from conftest import CATALOG, event, ingest_rows, rule_file, stored_alerts
from monitor import supervision as sv
from monitor.catalog import ingest_catalog
from monitor.engine import evaluate
from monitor.models import Alert, OutboxMessage
from monitor.trail import history
from monitor.trailcheck import verify
from test_escalation import local

MONITORS = CATALOG.replace("items:\n", "  - {id: m4, name: 王监察, department: D04, "
                                       "roles: [monitor_l1], phone: '13800000004'}\nitems:\n")
AS_OF = datetime(2025, 11, 1, tzinfo=timezone.utc)


def unpaid(store, config, write_events, tmp_path):
    """A certificate printed with only an offline payment: one unpaid_fee alert."""
    ingest_catalog(store, _catalog(tmp_path))
    ingest_rows(store, config, write_events, [
        event("a", "c1", "accept", "2025-10-09 09:00:00"),
        event("p", "c1", "fee_paid", "2025-10-10 10:00:00", amount="200.00", channel="offline"),
        event("z", "c1", "certificate_printed", "2025-10-10 11:00:00")])
    rules = rule_file(tmp_path, "- {id: unpaid, kind: unpaid_fee}\n")
    [first] = evaluate(store, config, AS_OF, rules=rules)
    assert first.stored.new == 1
    return rules


def _catalog(tmp_path):
    path = tmp_path / "catalog-monitors.yaml"
    path.write_text(MONITORS, encoding="utf-8")
    return path


def paid_online_late(store, config, write_events):
    """The online payment, made before the certificate, keyed in after the alert."""
    ingest_rows(store, config, write_events, [event(
        "q", "c1", "fee_paid", "2025-10-10 10:30:00", amount="200.00", channel="online",
        recorded_at="2025-10-31 09:00:00")], name="late.csv")


def costs(engine, config, alert_id):
    from monitor.report.period import month
    from monitor.scores import deductions

    return [x for x in deductions(engine, config, month(date(2025, 10, 1)))
            if x.alert_id == alert_id]


def alert(engine):
    with engine.connect() as conn:
        return conn.execute(select(Alert)).one()


def test_a_payment_recorded_online_clears_the_alert_with_its_evidence(
        store, reference, config, write_events, tmp_path):
    rules = unpaid(store, config, write_events, tmp_path)
    unpaid(reference, config, write_events, tmp_path)
    sv.acknowledge(store, alert(store).id, "m4", AS_OF, "核实中")
    sv.acknowledge(reference, alert(reference).id, "m4", AS_OF, "核实中")
    assert costs(reference, config, alert(reference).id) != []
    paid_online_late(store, config, write_events)
    paid_online_late(reference, config, write_events)
    [inc] = evaluate(store, config, AS_OF, rules=rules)
    [full] = evaluate(reference, config, AS_OF, rules=rules, full=True)
    assert inc.incremental and not full.incremental
    assert (inc.found, inc.stored.cleared) == (full.found, full.stored.cleared) == (0, 1)
    assert stored_alerts(store) == stored_alerts(reference)
    a = alert(store)
    assert (a.status, a.level, a.disposition) == ("cleared", "yellow", None)
    [entry] = [e for e in history(store, a.id) if e.action == "cleared"]
    assert entry.detail["reason"] == "复查：已有网上缴费记录，网下收费情形不再成立，复查销号"
    assert (entry.detail["from_status"], entry.detail["evaluation"]) == \
        ("acknowledged", "incremental")
    [paid] = entry.detail["events"]   # what changed the answer: the new event alone
    assert (paid["event_id"], paid["step"], paid["channel"], paid["amount"]) == \
        ("q", "fee_paid", "online", "200.00")
    assert [e.action for e in history(store, a.id)] == ["raised", "acknowledged", "cleared"]
    # a cleared finding costs the department nothing in the scores (绩效考评); before
    # the clearing (the reference store's twin, as of its raise) it cost points
    assert costs(store, config, a.id) == []
    # cleared once: the next runs, incremental and full, change nothing
    [again] = evaluate(store, config, AS_OF, rules=rules)
    [again_full] = evaluate(store, config, AS_OF, rules=rules, full=True)
    assert again.stored.cleared == again_full.stored.cleared == 0
    verify(store)
    verify(reference)


def test_a_resolved_alert_keeps_its_disposition(store, config, write_events, tmp_path):
    rules = unpaid(store, config, write_events, tmp_path)
    sv.resolve(store, alert(store).id, "m4", AS_OF, "rectified", "已责令补缴")
    paid_online_late(store, config, write_events)
    [outcome] = evaluate(store, config, AS_OF, rules=rules)
    assert outcome.stored.cleared == 0
    a = alert(store)
    assert (a.status, a.disposition) == ("resolved", "rectified")


def test_a_replay_as_of_an_earlier_moment_clears_nothing(store, config, write_events,
                                                         tmp_path):
    rules = unpaid(store, config, write_events, tmp_path)
    # as of the day before the certificate the case owes nothing yet: a full evaluation
    # (an earlier as-of) that does not find it — but the alert was raised later
    [replay] = evaluate(store, config, datetime(2025, 10, 9, 12, tzinfo=timezone.utc),
                        rules=rules)
    assert (replay.incremental, replay.found, replay.stored.cleared) == (False, 0, 0)
    assert alert(store).status == "open"


def test_a_kind_that_records_a_fact_never_clears(store, config, write_events, tmp_path):
    ingest_catalog(store, _catalog(tmp_path))
    ingest_rows(store, config, write_events, [
        event("a", "c1", "accept", "2025-10-09 09:00:00"),
        event("s", "c1", "survey", "2025-10-09 09:00:58")])
    rules = rule_file(tmp_path, "- {id: fast, kind: step_too_fast}\n")
    evaluate(store, config, AS_OF, rules=rules)
    # a scope that no longer covers the case: a full evaluation finds nothing, and clears
    # nothing (the 58-second survey happened; a person disposes of it)
    narrowed = rule_file(tmp_path, "- {id: fast, kind: step_too_fast, "
                                   "scope: {include: {departments: [D07]}}}\n")
    [outcome] = evaluate(store, config, AS_OF, rules=narrowed)
    assert (outcome.found, outcome.stored.cleared) == (0, 0)
    assert alert(store).status == "open"


def test_a_cleared_warning_found_again_is_reopened_and_told(store, config, write_events,
                                                            tmp_path):
    """A warning cleared by a suspension (the clock stopped in time); the case resumes and
    runs past its promised limit: the alert is found again, reopened, due anew, told."""
    ingest_catalog(store, _catalog(tmp_path))
    cal = config.calendar()
    deadline = cal.add_workdays(date(2025, 11, 3), 10)
    ingest_rows(store, config, write_events, [event("a", "w1", "accept", "2025-11-03 10:00")])
    rules = rule_file(tmp_path, "- {id: overdue, kind: overdue}\n")
    [warned] = evaluate(store, config, local(f"{deadline} 09:00"), rules=rules)
    assert [f.level for f in warned.findings] == ["warning"]
    ingest_rows(store, config, write_events,
                [event("s", "w1", "suspend", f"{deadline} 08:00")], name="suspend.csv")
    [stopped] = evaluate(store, config, local(f"{deadline} 10:00"), rules=rules)
    assert stopped.stored.cleared == 1 and alert(store).status == "cleared"
    resumed = cal.add_workdays(deadline, 1)
    ingest_rows(store, config, write_events,
                [event("r", "w1", "resume", f"{resumed} 09:00")], name="resume.csv")
    later = cal.add_workdays(deadline, 4)
    [again] = evaluate(store, config, local(f"{later} 09:00"), rules=rules)
    a = alert(store)
    assert (a.status, a.level) == ("open", "yellow")
    assert a.due_on == sv.policy_for(config, rules).due(local(f"{later} 09:00"), "overdue")
    actions = [e.action for e in history(store, a.id)]
    assert actions == ["raised", "cleared", "level_changed", "reopened"]
    [reopened] = [e for e in history(store, a.id) if e.action == "reopened"]
    assert (reopened.detail["reason"], reopened.detail["from_status"]) == \
        ("found_again", "cleared")
    with store.connect() as conn:
        told = conn.execute(select(OutboxMessage.recipient, OutboxMessage.subject)
                            .order_by(OutboxMessage.id)).all()
    assert told == [("m4", "raised"), ("u1", "handler"), ("m4", "raised")]
    verify(store)
