"""overdue, step family (环节超期): a workflow step past its item's ``step_days``, counted
on the case clock's terms (working days after the previous step, suspensions not counted),
even while the case as a whole is within its limit; a pending step is overdue as of now."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from datetime import time as dtime
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import delete, select

from conftest import CATALOG, event, ingest_rows, rule_file
from monitor.alerts import render
from monitor.engine import evaluate
from monitor.models import Alert, AlertChange, AlertNotice, Event, RuleState

# D04-XK-009: promised 10 / legal 20; survey 3, review 5, approve 2 working days.
STEPPED = """  - code: D04-XK-009
    name: 烟花爆竹经营（批发）许可
    department: D04
    category: license
    promised_days: 10
    legal_days: 20
    step_days: {survey: 3, review: 5, approve: 2}
"""
ITEM = "D04-XK-009"
LATER = datetime(2026, 1, 31, tzinfo=timezone.utc)
TZ = ZoneInfo("Asia/Shanghai")


@pytest.fixture
def catalog_file(tmp_path):
    path = tmp_path / "catalog.yaml"
    path.write_text(CATALOG + STEPPED, encoding="utf-8")
    return path


def rules(tmp_path):
    return rule_file(tmp_path, "- {id: overdue, kind: overdue}\n")


def found(store, config, tmp_path, as_of=LATER) -> dict:
    """subject → finding of a dry full run (the case's own subject, or CASE|step)."""
    [outcome] = evaluate(store, config, as_of, rules=rules(tmp_path), dry_run=True, full=True)
    assert outcome.error is None
    return {f.subject: f for f in outcome.findings}


def at(day: str, hour: int = 10) -> str:
    return f"2025-{day} {hour:02d}:00"


def steps(cid: str, *pairs, item=ITEM) -> list[dict]:
    """One case: (step, when) pairs in order, as events of ``item``."""
    return [event(f"{cid}-{k}", cid, step, when, item_code=item, **extra)
            for k, (step, when, *rest) in enumerate(pairs) for extra in [rest[0] if rest else {}]]


def test_a_step_over_its_limit_while_the_case_is_within_its_own(store, config, write_events,
                                                                 tmp_path):
    # Accepted Mon 3 Nov; survey Wed 5 (2 working days of 3); review from Nov 5: Nov 12 is
    # its 5th working day, Nov 13 the 6th; decided Fri 14 Nov, the case's 9th of 10.
    ingest_rows(store, config, write_events, [
        *steps("late", ("accept", at("11-03")), ("survey", at("11-05")),
               ("review", at("11-13")), ("approve", at("11-14", 9)), ("decide", at("11-14"))),
        *steps("in-time", ("accept", at("11-03")), ("survey", at("11-05")),
               ("review", at("11-12", 23)), ("approve", at("11-14", 9)),
               ("decide", at("11-14"))),
    ])
    got = found(store, config, tmp_path)
    assert set(got) == {"late|review"}      # neither case is overdue as a whole
    f = got["late|review"]
    assert f.level == "yellow" and f.case_id == "late" and f.item_code == ITEM
    assert (f.fields["used_days"], f.fields["over_days"]) == (6, 1)
    assert f.fields["promised_deadline"] == "2025-11-12"
    assert f.evidence["start_step"] == "survey" and f.evidence["start_event_id"] == "late-1"
    assert f.evidence["end_event_id"] == "late-2" and f.evidence["pending"] is False
    assert set(f.event_ids) == {"late-1", "late-2"}
    level, message = render(rules(tmp_path)[0], f)
    assert message == ("案件 late：审查（review）环节自现场踏勘（2025-11-05）后第 6 个工作日才完成，"
                       "超过环节时限 1 个工作日（2025-11-12 届满）；环节时限 5 个工作日")


def test_a_step_over_its_limit_in_a_case_over_its_own_gives_both(store, config,
                                                                 write_events, tmp_path):
    ingest_rows(store, config, write_events, steps(
        "both", ("accept", at("11-03")), ("survey", at("11-05")), ("review", at("11-07")),
        ("approve", at("11-12")), ("decide", at("11-18"))))
    got = found(store, config, tmp_path)
    # approve: Nov 10, 11, 12 → 3 of 2; the case: decided on its 11th working day of 10
    assert {s: f.level for s, f in got.items()} == {"both": "yellow", "both|approve": "yellow"}


def test_holidays_in_the_span_do_not_count(store, config, write_events, tmp_path):
    # From Tue 30 Sep: Oct 1–8 are holidays, Oct 9, 10 and Sat 11 (make-up day) are the
    # survey's three working days; Mon 13 Oct is the fourth.
    ingest_rows(store, config, write_events, [
        *steps("holiday", ("accept", at("09-30")), ("survey", at("10-11", 17))),
        *steps("day-after", ("accept", at("09-30")), ("survey", at("10-13", 9))),
    ])
    got = found(store, config, tmp_path, datetime(2025, 10, 13, 12, tzinfo=timezone.utc))
    assert set(got) == {"day-after|survey"}
    assert got["day-after|survey"].fields["promised_deadline"] == "2025-10-11"


def test_a_suspension_inside_the_span_is_not_counted(store, config, write_events, tmp_path):
    # review from survey (Wed 5 Nov) to Mon 17 Nov: 8 working days gross; suspended from
    # Nov 6 to Nov 12 (Nov 7, 10, 11, 12: 4 days) → 4 used of 5. The twin, not suspended, is late.
    expert = (("suspend", at("11-06"), {"note": "专家评审"}), ("resume", at("11-12", 9)))
    ingest_rows(store, config, write_events, [
        *steps("suspended", ("accept", at("11-03")), ("survey", at("11-05")), *expert,
               ("review", at("11-17")), ("approve", at("11-18", 9)), ("decide", at("11-18"))),
        *steps("twin", ("accept", at("11-03")), ("survey", at("11-05")),
               ("review", at("11-17")), ("approve", at("11-18", 9)), ("decide", at("11-18"))),
    ])
    got = found(store, config, tmp_path)
    assert "suspended|review" not in got and "suspended" not in got
    assert got["twin|review"].fields["used_days"] == 8
    assert set(got) == {"twin|review", "twin"}  # the twin is past its 10 days too (11)


def test_a_pending_step_is_overdue_as_of_now(store, config, write_events, tmp_path):
    # Surveyed Tue 4 Nov, no review yet: its 5 working days end Tue 11 Nov.
    ingest_rows(store, config, write_events, steps(
        "open", ("accept", at("11-03")), ("survey", at("11-04"))))
    assert found(store, config, tmp_path, datetime.fromisoformat("2025-11-11T23:00+08:00")) == {}
    got = found(store, config, tmp_path, datetime.fromisoformat("2025-11-12T09:00+08:00"))
    assert set(got) == {"open|review"}       # the case has 3 working days left: no warning
    f = got["open|review"]
    assert f.evidence["pending"] is True and f.evidence["end_event_id"] is None
    assert f.fields["state"] == ("审查（review）环节自现场踏勘（2025-11-04）起尚未完成，"
                                 "已超过环节时限（2025-11-11 届满）")
    # accepted only: the survey (3 days) is the pending one, not the review
    ingest_rows(store, config, write_events, steps("fresh", ("accept", at("11-06"))), "b.csv")
    got = found(store, config, tmp_path, datetime.fromisoformat("2025-11-12T09:00+08:00"))
    assert set(got) == {"open|review", "fresh|survey"}


def test_items_without_step_days_and_steps_without_a_limit(store, config, write_events,
                                                           tmp_path):
    ingest_rows(store, config, write_events, [
        # D04-XK-001 has no step_days: a slow review is the case clock's business only
        *steps("plain", ("accept", at("11-03")), ("survey", at("11-04")),
               ("review", at("11-13")), ("decide", at("11-14")), item="D04-XK-001"),
        # decide has no limit on D04-XK-009
        *steps("slow-decide", ("accept", at("11-03")), ("survey", at("11-04")),
               ("review", at("11-05")), ("approve", at("11-06")), ("decide", at("11-14"))),
    ])
    assert found(store, config, tmp_path) == {}


def test_a_raised_step_alert_keeps_its_level_when_a_late_entry_shows_it_in_time(
        store, config, write_events, tmp_path):
    ingest_rows(store, config, write_events, steps(
        "x", ("accept", at("11-03")), ("survey", at("11-04"))))
    rule = rules(tmp_path)
    moment = datetime.fromisoformat("2025-11-12T09:00+08:00")
    [first] = evaluate(store, config, moment, rules=rule)
    assert [f.subject for f in first.findings] == ["x|review"]
    # the review happened on Nov 10 (in time) and is keyed in now
    ingest_rows(store, config, write_events,
                [event("x-r", "x", "review", at("11-10"), item_code=ITEM)], "late.csv")
    [again] = evaluate(store, config, moment, rules=rule)
    assert again.incremental
    [f] = again.findings
    assert f.level == "yellow" and f.fields["over_days"] == 0
    assert f.fields["state"].endswith("未超过环节时限（2025-11-11 届满）；此前已判定为黄牌，级别保留待处置")
    [full] = evaluate(store, config, moment, rules=rule, full=True, dry_run=True)
    assert [render(rule[0], g) for g in full.findings] == [render(rule[0], f)]


STEPS = ["accept"] * 3 + ["survey", "review", "review", "approve", "suspend", "resume",
                          "decide", "return"]
EVENTS = st.tuples(st.integers(0, 3), st.sampled_from(STEPS), st.integers(0, 60 * 24 * 30),
                   st.sampled_from([ITEM, "D04-XK-001"]))


@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(history=st.lists(EVENTS, min_size=3, max_size=25), cuts=st.lists(st.integers(0, 25)),
       days=st.lists(st.integers(1, 6), min_size=2, max_size=2), hour=st.integers(0, 23))
def test_runs_on_successive_days_leave_what_a_full_run_finds(store, config, write_events,
                                                             tmp_path, history, cuts, days,
                                                             hour):
    """Batches arriving between runs on successive dates (events stored before they occur,
    back-dated entries): the alerts, step ones included, equal a full evaluation's findings."""
    with store.begin() as conn:
        for model in (AlertNotice, AlertChange, Alert, RuleState, Event):
            conn.execute(delete(model))
    start = datetime(2025, 10, 27, 1, 0, tzinfo=timezone.utc)
    rows = []
    for i, (c, step, minutes, item) in enumerate(history):
        item = next(it for cc, _, _, it in history if cc == c)
        rows.append(event(f"e{i}", f"c{c}", step, (start + timedelta(minutes=minutes)).isoformat(),
                          item_code=item))
    bounds = sorted({0, len(rows), *(x for x in cuts if x < len(rows))})
    rule = rules(tmp_path)
    moment = start
    for n, (lo, hi) in enumerate(zip(bounds, bounds[1:])):
        ingest_rows(store, config, write_events, rows[lo:hi], name=f"b{n}.csv")
        for d in days:
            moment = datetime.combine((moment.astimezone(TZ) + timedelta(days=d)).date(),
                                      dtime(hour), TZ)
            [o] = evaluate(store, config, moment, rules=rule)
            assert o.error is None
    with store.connect() as conn:
        stored = {a.subject: (a.level, a.message) for a in conn.execute(select(Alert))
                  if a.status != "cleared"}  # within every limit again (复查销号)
    [full] = evaluate(store, config, moment, rules=rule, full=True, dry_run=True)
    assert stored == {f.subject: render(rule[0], f) for f in full.findings}


def test_explain_shows_each_step_against_its_limit(store, config, write_events, tmp_path):
    from monitor.ruletools.explain import explain

    ingest_rows(store, config, write_events, steps(
        "late", ("accept", at("11-03")), ("survey", at("11-05")), ("review", at("11-13")),
        ("approve", at("11-14", 9)), ("decide", at("11-14"))))
    rule = rules(tmp_path)
    evaluate(store, config, LATER, rules=rule)
    out = explain(store, config, rule, "overdue", "late", LATER)
    steps_checked = [c for c in out.checks if c.startswith("step ")]
    assert steps_checked == [
        "step survey (limit 3 working days, step_days): from accept 2025-11-03 to 2025-11-05;"
        " used 2, suspended 0 not counted; deadline 2025-11-06 → ok",
        "step review (limit 5 working days, step_days): from survey 2025-11-05 to 2025-11-13;"
        " used 6, suspended 0 not counted; deadline 2025-11-12 → OVER",
        "step approve (limit 2 working days, step_days): from review 2025-11-13 to 2025-11-14;"
        " used 1, suspended 0 not counted; deadline 2025-11-17 → ok"]
    assert out.verdict.startswith("FINDING [yellow] 案件 late：审查（review）环节")
    assert out.alert.startswith("alert ") and out.alert.endswith(" · late|review")


def test_a_step_alert_does_not_make_the_case_late_in_the_report(store, config, write_events,
                                                                tmp_path):
    from monitor.report.figures import Scope, completions
    from monitor.report.period import parse_period

    ingest_rows(store, config, write_events, [
        *steps("step-late", ("accept", at("11-03")), ("survey", at("11-05")),
               ("review", at("11-13")), ("approve", at("11-14", 9)), ("decide", at("11-14")),
               ("complete", at("11-14", 16))),
        *steps("case-late", ("accept", at("11-03")), ("survey", at("11-04")),
               ("review", at("11-05")), ("approve", at("11-06")), ("decide", at("11-18")),
               ("complete", at("11-18", 16)))])
    [o] = evaluate(store, config, LATER, rules=rules(tmp_path))
    assert {f.subject for f in o.findings} == {"step-late|review", "case-late"}
    with store.connect() as conn:
        got = completions(conn, Scope(parse_period("2025-11"), TZ), config.calendar())
    assert (got["D04"].completed, got["D04"].on_time) == (2, 1)
