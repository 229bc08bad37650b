"""overdue (超期): working days from acceptance to decision (or as_of), net of suspensions,
against the promised and legal limits plus extensions; warnings for open cases."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime, timedelta, timezone
from datetime import time as dtime
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import delete, select

from conftest import CATALOG, event, dry_findings, ingest_rows, rule_file
from monitor.alerts import render
from monitor.engine import evaluate
from monitor.models import Alert, AlertChange, AlertNotice, Event, OpenCase, RuleState
from monitor.trail import history
from monitor.trailcheck import verify

# D04-XK-001: promised 10 / legal 20; D07-CF-001: 5 / 5; D07-DC-001: on the spot (0 / 0).
SPOT = """  - code: D07-DC-001
    name: 当场处罚（简易程序）
    department: D07
    category: penalty
    promised_days: 0
    legal_days: 0
"""
LATER = datetime(2026, 1, 31, tzinfo=timezone.utc)
TZ = ZoneInfo("Asia/Shanghai")


@pytest.fixture
def catalog_file(tmp_path):
    path = tmp_path / "catalog.yaml"
    path.write_text(CATALOG + SPOT, encoding="utf-8")
    return path


def rules(tmp_path, params: str = ""):
    return rule_file(tmp_path, f"- {{id: overdue, kind: overdue{params}}}\n")


load = ingest_rows


def found(store, config, tmp_path, as_of=LATER, params=""):
    return dry_findings(store, config, rules(tmp_path, params), as_of)


def levels(findings) -> dict[str, str]:
    return {c: f.level for c, f in findings.items()}


def case(cid: str, accepted: str, decided: str | None, item="D04-XK-001", end="decide",
         between=()) -> list[dict]:
    """accept … (between: (step, at, extra)…) … decide."""
    rows = [event(f"{cid}-a", cid, "accept", accepted, item_code=item)]
    rows += [event(f"{cid}-{k}", cid, step, at, item_code=item, **extra)
             for k, (step, at, extra) in enumerate(between)]
    if decided:
        rows.append(event(f"{cid}-d", cid, end, decided, item_code=item))
    return rows


def test_boundaries_of_the_promised_and_legal_limits(store, config, write_events, tmp_path):
    # Accepted Mon 2025-11-03: the 10th working day is Nov 17, the 20th Dec 1.
    load(store, config, write_events, [
        *case("on-promised", "2025-11-03 10:00", "2025-11-17 23:59:59"),
        *case("past-promised", "2025-11-03 10:00", "2025-11-18 00:00:00"),
        *case("on-legal", "2025-11-03 10:00", "2025-12-01 17:00"),
        *case("past-legal", "2025-11-03 10:00", "2025-12-02 09:00"),
        *case("completed-late", "2025-11-03 10:00", "2025-11-18 09:00", end="complete"),
    ])
    got = found(store, config, tmp_path)
    assert levels(got) == {"past-promised": "yellow", "on-legal": "yellow", "past-legal": "red",
                           "completed-late": "yellow"}
    red = got["past-legal"]
    assert red.fields["used_days"] == 21 and red.fields["over_days"] == 1
    assert red.fields["legal_deadline"] == "2025-12-01"
    assert red.evidence["accepted_at"] == "2025-11-03T10:00:00+08:00"
    assert red.evidence["end_step"] == "decide"
    assert red.evidence["promised_deadline"] == "2025-11-17"
    assert set(red.event_ids) == {"past-legal-a", "past-legal-d"}
    assert got["completed-late"].evidence["end_step"] == "complete"


def test_the_clock_ends_at_the_decision_not_at_completion(store, config, write_events,
                                                          tmp_path):
    rows = case("c1", "2025-11-03 10:00", "2025-11-17 16:00")
    rows.append(event("c1-c", "c1", "complete", "2025-11-20 10:00"))  # certificate: Art. 44
    load(store, config, write_events, rows)
    assert found(store, config, tmp_path) == {}


def test_a_case_straddling_national_day_is_not_overdue(store, config, write_events, tmp_path):
    # 2025-09-30 + 10 working days = Oct 21 (Oct 1–8 off, Sat Oct 11 worked): 15 weekdays.
    load(store, config, write_events, [
        *case("holiday", "2025-09-30 10:00", "2025-10-21 16:00"),
        *case("day-after", "2025-09-30 10:00", "2025-10-22 09:00"),
    ])
    got = found(store, config, tmp_path)
    assert levels(got) == {"day-after": "yellow"}
    assert got["day-after"].fields["promised_deadline"] == "2025-10-21"


def test_the_make_up_saturday_counts(store, config, write_events, tmp_path):
    # D07-CF-001 (5 / 5) accepted Fri Oct 10: Sat Oct 11 is day 1, Thu Oct 16 day 5.
    rows = case("sat", "2025-10-10 15:00", "2025-10-17 10:00", item="D07-CF-001")
    load(store, config, write_events, rows)
    got = found(store, config, tmp_path)
    assert levels(got) == {"sat": "red"}  # promised = legal: past both at once
    assert got["sat"].fields["legal_deadline"] == "2025-10-16"
    assert got["sat"].fields["used_days"] == 6
    local = replace(config, extra_holidays=frozenset({date(2025, 10, 11)}))
    assert found(store, local, tmp_path) == {}  # were the Saturday a day off: day 5, in time


def test_a_suspended_case_is_not_overdue(store, config, write_events, tmp_path):
    expert = (("suspend", "2025-11-05 11:00", {"note": "专家评审"}),
              ("resume", "2025-12-15 09:00", {}))
    load(store, config, write_events, [
        # 32 working days gross, 28 of them suspended (Nov 6 … Dec 15): 4 used.
        *case("suspended", "2025-11-03 10:00", "2025-12-17 10:00", between=expert),
        # the same without the resume: the clock stopped on Nov 5 and never restarted
        *case("still-suspended", "2025-11-03 10:00", None, between=expert[:1]),
        # suspended only after the legal limit had run out: the stop does not save it
        *case("too-late", "2025-11-03 10:00", None,
              between=(("suspend", "2025-12-05 10:00", {}),)),
    ])
    got = found(store, config, tmp_path)
    assert levels(got) == {"too-late": "red"}
    assert "2025-12-05 起暂停计时" in got["too-late"].fields["state"]
    [stop] = got["too-late"].evidence["suspensions"]
    assert stop["resume_event_id"] is None and stop["suspend_event_id"] == "too-late-0"
    # as of the decision day: net 4 working days, though 32 have passed
    suspended = found(store, config, tmp_path, as_of=datetime(2025, 12, 18, tzinfo=timezone.utc),
                      params=", params: {warning_days: 0}")
    assert "suspended" not in suspended and "still-suspended" not in suspended


def test_suspension_figures_in_the_evidence(store, config, write_events, tmp_path):
    stops = (("suspend", "2025-11-05 11:00", {}), ("resume", "2025-11-12 09:00", {}),
             ("suspend", "2025-11-13 09:00", {}), ("resume", "2025-11-14 09:00", {}))
    # Nov 3 → Dec 2: 21 working days gross, 5 + 1 suspended: 15 used → yellow, not red.
    load(store, config, write_events, [*case("twice", "2025-11-03 10:00", "2025-12-02 10:00",
                                             between=stops)])
    f = found(store, config, tmp_path)["twice"]
    assert f.level == "yellow"
    assert (f.fields["used_days"], f.fields["suspended_days"]) == (15, 6)
    assert [s["working_days"] for s in f.evidence["suspensions"]] == [5, 1]
    assert f.fields["promised_deadline"] == "2025-11-25"  # Nov 17 pushed out by 6
    assert {"twice-0", "twice-1", "twice-2", "twice-3"} <= set(f.event_ids)


def test_an_extension_adds_to_both_limits(store, config, write_events, tmp_path):
    extend = (("extend", "2025-11-28 10:00", {"days": "10", "actor": "u2"}),)  # day 19
    load(store, config, write_events, [
        # decided on working day 25: past 20 but within 20 + 10; past promised 10 + 10
        *case("extended", "2025-11-03 10:00", "2025-12-08 10:00", between=extend),
        *case("no-days", "2025-11-03 10:00", "2025-12-08 10:00",
              between=(("extend", "2025-11-28 10:00", {}),)),
        # extended after the legal limit had run out (Dec 1): not counted
        *case("late-extension", "2025-11-03 10:00", "2025-12-08 10:00",
              between=(("extend", "2025-12-03 10:00", {"days": "10"}),)),
        # extended after the decision: not counted either
        *case("after-decision", "2025-11-03 10:00", "2025-12-08 10:00",
              between=(("extend", "2025-12-09 10:00", {"days": "10"}),)),
        # decided on day 20: within the extended promised limit (10 + 10)
        *case("within", "2025-11-03 10:00", "2025-12-01 10:00", between=extend),
    ])
    got = found(store, config, tmp_path)
    assert levels(got) == {"extended": "yellow", "no-days": "yellow", "late-extension": "red",
                           "after-decision": "red"}
    ext = got["extended"]
    assert (ext.fields["promised_days"], ext.fields["legal_days"]) == (20, 30)
    assert ext.fields["legal_deadline"] == "2025-12-15" and ext.fields["used_days"] == 25
    assert ext.evidence["extensions"] == [
        {"event_id": "extended-0", "at": "2025-11-28T10:00:00+08:00", "days": 10, "counted": True}]
    assert got["no-days"].fields["extension_days"] == 10
    assert got["late-extension"].evidence["extensions"][0]["counted"] is False
    assert got["late-extension"].evidence["extensions"][0]["legal_deadline_then"] == "2025-12-01"
    assert "含延期 10 个工作日" in ext.fields["limits"]
    shorter = found(store, config, tmp_path, params=", params: {default_extension_days: 5}")
    assert shorter["no-days"].level == "yellow" and shorter["no-days"].fields["legal_days"] == 25


def test_timezone_mixed_input_near_midnight_beijing(store, config, write_events, tmp_path):
    # 2025-11-02T16:30Z is Mon Nov 3 00:30 in Beijing: day 1 is Nov 4, day 10 Nov 17.
    load(store, config, write_events, [
        *case("utc-accept", "2025-11-02T16:30:00Z", "2025-11-17T23:59:00+08:00"),
        # 2025-11-17T16:00Z is Nov 18 00:00 in Beijing: the day after the promised limit
        *case("utc-decide", "2025-11-03T09:00:00+08:00", "2025-11-17T16:00:00Z"),
        # 15:59:59Z is still Nov 17 in Beijing
        *case("utc-in-time", "2025-11-03T01:00:00Z", "2025-11-17T15:59:59Z"),
    ])
    got = found(store, config, tmp_path)
    assert levels(got) == {"utc-decide": "yellow"}
    assert got["utc-decide"].evidence["ended_at"] == "2025-11-18T00:00:00+08:00"


def test_open_cases_warning_then_past_the_limit(store, config, write_events, tmp_path):
    # D07-CF-001 accepted Fri Oct 31: the 5th working day is Fri Nov 7.
    load(store, config, write_events, [*case("open", "2025-10-31 10:00", None,
                                             item="D07-CF-001")])

    def at(day: str, params: str = ""):
        moment = datetime.fromisoformat(day + "T09:00:00+08:00")
        return levels(found(store, config, tmp_path, as_of=moment, params=params))

    assert at("2025-11-05") == {}                      # 2 working days left
    assert at("2025-11-06") == {"open": "warning"}     # 1 left
    assert at("2025-11-07") == {"open": "warning"}     # the deadline day
    assert at("2025-11-06", ", params: {warning_days: 0}") == {}
    assert at("2025-11-08") == {"open": "red"}         # Saturday: Friday's limit is over
    state = found(store, config, tmp_path)["open"].fields["state"]
    assert state == "超过法定期限（2025-11-07 届满），尚未作出决定"


def test_a_decision_keyed_on_the_saturday_after_the_deadline_is_late(store, config,
                                                                     write_events, tmp_path):
    load(store, config, write_events, [
        *case("sat", "2025-10-31 10:00", "2025-11-08 10:00", item="D07-CF-001"),
        *case("fri", "2025-10-31 10:00", "2025-11-07 17:00", item="D07-CF-001")])
    got = found(store, config, tmp_path)
    assert levels(got) == {"sat": "red"} and got["sat"].fields["over_days"] == 1


def test_on_the_spot_items_must_be_decided_the_same_day(store, config, write_events, tmp_path):
    spot = "D07-DC-001"
    load(store, config, write_events, [
        *case("same-day", "2025-11-03 23:00", "2025-11-03 23:50", item=spot),
        *case("next-day", "2025-11-03 23:30", "2025-11-04 00:10", item=spot),
        *case("open", "2025-11-03 10:00", None, item=spot),
    ])
    evening = datetime.fromisoformat("2025-11-03T23:59:00+08:00")
    assert found(store, config, tmp_path, as_of=evening) == {}  # no warning on the day
    got = found(store, config, tmp_path)
    assert levels(got) == {"next-day": "red", "open": "red"}
    assert got["next-day"].fields["state"] == \
        "当场办理事项，受理后 1 日才作出决定（应于受理当日 2025-11-03 办结）"
    assert got["open"].fields["state"] == "当场办理事项，受理当日（2025-11-03）未办结"


def test_levels_rise_as_time_passes_and_changes_are_recorded(store, config, write_events,
                                                             tmp_path):
    load(store, config, write_events, [*case("open", "2025-11-03 10:00", None),
                                       *case("done", "2025-11-03 10:00", "2025-11-20 10:00")])
    rule = rules(tmp_path)
    moments = ["2025-11-14T09:00:00+08:00", "2025-11-18T09:00:00+08:00",
               "2025-12-02T09:00:00+08:00"]
    runs = [evaluate(store, config, datetime.fromisoformat(m), rules=rule)[0] for m in moments]
    assert [o.incremental for o in runs] == [False, True, True]
    # "done" is decided on Nov 20: open as of the first two moments, late at the third
    assert [levels({f.case_id: f for f in o.findings}) for o in runs] == [
        {"done": "warning", "open": "warning"}, {"done": "yellow", "open": "yellow"},
        {"done": "yellow", "open": "red"}]
    with store.connect() as conn:
        alerts = {a.case_id: a for a in conn.execute(select(Alert))}
        changes = conn.execute(select(AlertChange.alert_id, AlertChange.old_level,
                                      AlertChange.new_level, AlertChange.at)
                               .order_by(AlertChange.id)).all()
    assert alerts["open"].level == "red"
    assert "超过法定期限（2025-12-01 届满），尚未作出决定" in alerts["open"].message
    assert "受理后第 13 个工作日作出决定，超过承诺期限 3 个工作日" in alerts["done"].message
    at = [datetime.fromisoformat(m) for m in moments]
    assert sorted((c.alert_id, c.old_level, c.new_level, c.at) for c in changes) == sorted([
        (alerts["open"].id, "warning", "yellow", at[1]),
        (alerts["open"].id, "yellow", "red", at[2]),
        (alerts["done"].id, "warning", "yellow", at[1])])
    [full] = evaluate(store, config, at[2], rules=rule, full=True)
    assert (full.stored.new, full.stored.changed) == (0, 0)  # the runs left what a full run finds


def test_incremental_rechecks_open_cases_on_a_new_day_and_changed_cases(store, config,
                                                                        write_events, tmp_path):
    load(store, config, write_events, [*case("open", "2025-11-03 10:00", None),
                                       *case("late", "2025-11-03 10:00", "2025-11-20 10:00")])
    rule = rules(tmp_path)
    first = evaluate(store, config, datetime.fromisoformat("2025-11-21T09:00:00+08:00"),
                     rules=rule)[0]
    assert {f.case_id for f in first.findings} == {"open", "late"}
    same_day = evaluate(store, config, datetime.fromisoformat("2025-11-21T15:00:00+08:00"),
                        rules=rule)[0]
    assert same_day.incremental and same_day.findings == []  # nothing new, same date
    load(store, config, write_events, [event("late-x", "late", "complete", "2025-11-21 16:00")],
         name="more.csv")
    next_day = evaluate(store, config, datetime.fromisoformat("2025-11-24T09:00:00+08:00"),
                        rules=rule)[0]
    # "late" has a new event; "open" (yellow since 18 Nov) is not looked at again before
    # the day after its legal deadline (1 Dec), the first date its finding can change
    assert next_day.incremental and {f.case_id for f in next_day.findings} == {"late"}
    with store.connect() as conn:
        assert conn.execute(select(OpenCase.case_id, OpenCase.due_on)
                            .where(OpenCase.rule_id == "overdue")).all() == [
            ("open", date(2025, 12, 2))]
    before = evaluate(store, config, datetime.fromisoformat("2025-12-01T09:00:00+08:00"),
                      rules=rule)[0]
    assert before.incremental and before.findings == []
    due = evaluate(store, config, datetime.fromisoformat("2025-12-02T09:00:00+08:00"),
                   rules=rule)[0]
    assert due.incremental and levels({f.case_id: f for f in due.findings}) == {"open": "red"}
    [full] = evaluate(store, config, datetime.fromisoformat("2025-12-02T09:00:00+08:00"),
                      rules=rule, full=True)
    assert (full.stored.new, full.stored.changed) == (0, 0)


def test_an_alert_is_cleared_when_a_late_entry_brings_the_case_within_limits(
        store, config, write_events, tmp_path):
    load(store, config, write_events, [*case("c1", "2025-11-03 10:00", None)])
    rule = rules(tmp_path)
    [first] = evaluate(store, config, LATER, rules=rule)
    assert first.findings[0].level == "red"
    # the decision, back-dated to day 5, keyed in afterwards: the case was never overdue
    load(store, config, write_events, [event("c1-d", "c1", "decide", "2025-11-10 10:00")],
         name="late.csv")
    [again] = evaluate(store, config, LATER, rules=rule)
    [full] = evaluate(store, config, LATER, rules=rule, full=True, dry_run=True)
    assert again.incremental
    assert again.findings == full.findings == []
    assert (again.stored.cleared, again.stored.changed) == (1, 0)
    with store.connect() as conn:
        alert_id, status, level = conn.execute(select(Alert.id, Alert.status, Alert.level)).one()
    assert (status, level) == ("cleared", "red")
    [entry] = [e for e in history(store, alert_id) if e.action == "cleared"]
    assert entry.detail["reason"].startswith("复查：补录数据后重新计算")
    assert entry.detail["evaluation"] == "incremental"
    assert [e["event_id"] for e in entry.detail["events"]] == ["c1-d"]  # what changed it
    verify(store)


def test_a_red_alert_keeps_its_level_when_a_late_entry_makes_it_only_yellow(
        store, config, write_events, tmp_path):
    load(store, config, write_events, [*case("c1", "2025-11-03 10:00", None)])
    rule = rules(tmp_path)
    evaluate(store, config, LATER, rules=rule)
    # decided on working day 12: past the promised 10, within the legal 20
    decided = config.calendar().add_workdays(date(2025, 11, 3), 12)
    load(store, config, write_events, [event("c1-d", "c1", "decide", f"{decided} 10:00")],
         name="late.csv")
    [again] = evaluate(store, config, LATER, rules=rule)
    [f] = again.findings
    assert f.level == "red" and f.evidence["level"] == "yellow"
    assert "此前已判定为红牌，级别保留待处置" in f.fields["state"]
    assert (again.stored.cleared, again.stored.changed) == (0, 1)


def test_scope_and_idempotency(store, config, write_events, tmp_path):
    load(store, config, write_events, [
        *case("licence", "2025-11-03 10:00", "2025-12-02 10:00"),
        *case("penalty", "2025-11-03 10:00", None, item="D07-CF-001"),
    ])
    rule = rules(tmp_path)
    [first] = evaluate(store, config, LATER, rules=rule)
    [again] = evaluate(store, config, LATER, rules=rule, full=True)
    assert (first.stored.new, again.stored.new, again.stored.changed) == (2, 0, 0)
    assert again.stored.unchanged == 2
    scoped = found(store, config, tmp_path, params=", scope: {exclude: {categories: [penalty]}}")
    assert set(scoped) == {"licence"}
    with store.connect() as conn:
        assert {a.level for a in conn.execute(select(Alert))} == {"red"}


def test_cases_without_acceptance_or_decided_before_it(store, config, write_events, tmp_path):
    load(store, config, write_events, [
        event("x-d", "no-accept", "decide", "2025-11-20 10:00"),
        event("y-d", "backwards", "decide", "2025-11-01 10:00"),
        event("y-a", "backwards", "accept", "2025-11-03 10:00"),
    ])
    assert found(store, config, tmp_path) == {}


STEPS = ["accept"] * 4 + ["suspend", "resume", "extend", "review", "decide", "complete"]
EVENTS = st.tuples(st.integers(0, 3), st.sampled_from(STEPS), st.integers(0, 60 * 24 * 40),
                   st.sampled_from(["D04-XK-001", "D07-CF-001", "D07-DC-001"]))


@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(history=st.lists(EVENTS, min_size=3, max_size=25), cuts=st.lists(st.integers(0, 25)),
       days=st.lists(st.integers(1, 9), min_size=3, max_size=3),
       hour=st.integers(0, 23), stale=st.sampled_from([180, 15]))
def test_runs_on_successive_days_leave_what_a_full_run_finds(store, config, write_events,
                                                             tmp_path, history, cuts, days,
                                                             hour, stale):
    """A log replayed day by day (events stored before they occur, as_of moving on) and
    batches arriving in between: the alerts equal a full evaluation's findings — also
    when open cases go stale (a short ``stale_days``) with or without an alert raised."""
    config = replace(config, stale_days=stale)
    with store.begin() as conn:
        for model in (AlertNotice, AlertChange, Alert, RuleState, Event):
            conn.execute(delete(model))
    start = datetime(2025, 9, 26, 1, 0, tzinfo=timezone.utc)
    rows = []
    for i, (c, step, minutes, item) in enumerate(history):
        at = start + timedelta(minutes=minutes)
        # one item per case (the first drawn), as in a real log
        item = next(it for cc, _, _, it in history if cc == c)
        rows.append(event(f"e{i}", f"c{c}", step, at.isoformat(), item_code=item,
                          days=str(minutes % 12) if step == "extend" and minutes % 3 else ""))
    bounds = sorted({0, len(rows), *(x for x in cuts if x < len(rows))})
    rule = rules(tmp_path)
    moment = start
    for n, (lo, hi) in enumerate(zip(bounds, bounds[1:])):
        load(store, config, write_events, rows[lo:hi], name=f"b{n}.csv")
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


@pytest.mark.parametrize("deferred_max", [10_000, 0])
def test_a_decision_stored_ahead_of_a_run_is_seen_later_the_same_day(
        store, config, write_events, tmp_path, monkeypatch, deferred_max):
    """A decision stored before the morning run but dated after it is not visible then;
    the afternoon run of the same date, with no new events, must re-check that case —
    whether the engine lists such events once (deferred_ids) or each query finds them."""
    monkeypatch.setattr("monitor.engine.DEFERRED_MAX", deferred_max)
    load(store, config, write_events, case("x", "2025-11-03 10:00", "2025-11-21 12:00"))
    rule = rules(tmp_path)
    morning = evaluate(store, config, datetime.fromisoformat("2025-11-21T09:00:00+08:00"),
                       rules=rule)[0]
    assert [f.evidence["ended_at"] for f in morning.findings] == [None]
    afternoon = evaluate(store, config, datetime.fromisoformat("2025-11-21T15:00:00+08:00"),
                         rules=rule)[0]
    assert afternoon.incremental and [f.case_id for f in afternoon.findings] == ["x"]


def test_a_stale_case_is_left_to_data_quality_but_a_pending_alert_stays(
        store, config, write_events, tmp_path):
    """An open case silent for more than ``stale_days`` (180) is no overdue finding — unless
    an alert was raised on it before it went silent: that one stays, saying so, in the
    incremental run of a new date as in a full one."""
    silent = [event("s-a", "silent", "accept", "2025-03-03 09:00"),
              event("s-r", "silent", "review", "2025-03-05 09:00")]
    load(store, config, write_events, silent)
    rule = rules(tmp_path)
    [april] = evaluate(store, config, datetime.fromisoformat("2025-04-15T18:00:00+08:00"),
                       rules=rule)
    assert levels({f.case_id: f for f in april.findings}) == {"silent": "red"}
    # a second case, accepted with the first but stored only now: never alerted
    load(store, config, write_events, [event("q-a", "quiet", "accept", "2025-03-03 09:00")],
         name="quiet.csv")
    october = datetime.fromisoformat("2025-10-01T18:00:00+08:00")
    [later] = evaluate(store, config, october, rules=rule)
    [full] = evaluate(store, config, october, rules=rule, full=True, dry_run=True)
    assert later.incremental
    assert [f.case_id for f in later.findings] == [f.case_id for f in full.findings] == ["silent"]
    [f] = later.findings
    assert f.level == "red" and f.evidence["stale"]["stale_days"] == 180
    assert "2025-03-05 以来逾 180 日无记录（数据质量问题），已发出的告警保留待处置" \
        in f.fields["state"]
    assert (later.stored.new, later.stored.cleared) == (0, 0)
    # rules explain says why the quiet case is not found
    from monitor.ruletools.explain import explain

    out = explain(store, config, rule, "overdue", "quiet", october)
    assert "stale: no event since 2025-03-03, more than stale_days 180 calendar days: left " \
        "to the data-quality rule (an overdue alert raised before the silence and not " \
        "disposed of stays)" in out.checks
    assert out.verdict.startswith("no finding")
    # the setting decides: under a longer one neither case is stale, both are red
    [longer] = evaluate(store, replace(config, stale_days=300), october, rules=rule,
                        full=True, dry_run=True)
    assert levels({f.case_id: f for f in longer.findings}) == {"silent": "red", "quiet": "red"}


def test_a_resolved_alert_is_not_found_again_once_the_case_is_stale(
        store, config, write_events, tmp_path):
    """A person disposed of the red card; the case then went silent: nothing to find
    (the data-quality rule reports the case), and the disposition is left as it was."""
    from sqlalchemy import update

    load(store, config, write_events, [*case("c1", "2025-03-03 09:00", None)])
    rule = rules(tmp_path)
    evaluate(store, config, datetime.fromisoformat("2025-04-15T18:00:00+08:00"), rules=rule)
    with store.begin() as conn:
        conn.execute(update(Alert).values(status="resolved"))
    [later] = evaluate(store, config, datetime.fromisoformat("2025-10-01T18:00:00+08:00"),
                       rules=rule)
    assert later.findings == []
    with store.connect() as conn:
        assert conn.execute(select(Alert.status, Alert.message)).one().status == "resolved"
