"""batch_entry (批量录入): ≥ min_events entries by one actor within window_minutes of
recorded_at → one alert per burst, naming the actor and listing the cases."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from hypothesis import HealthCheck, given, settings, strategies as st
from sqlalchemy import delete, select

from conftest import NOW, event
from monitor.alerts import render
from monitor.engine import evaluate
from monitor.ingest import ingest_events
from monitor.models import Alert, Event, IngestRun, Quarantine, RuleState
from monitor.rules.loader import load_rules

AS_OF = datetime(2025, 11, 1, tzinfo=timezone.utc)
T0 = datetime(2025, 10, 9, 17, 20)  # local (+08:00), as the files give it


def rules(tmp_path, params: str = "", scope: str = ""):
    path = tmp_path / "rules.yaml"
    path.write_text(f"- {{id: batch, kind: batch_entry{params}{scope}}}\n", encoding="utf-8")
    return load_rules([path])


def entries(prefix: str, seconds: list[float], actor: str = "u1", **extra) -> list[dict]:
    """One accept per entry, each in its own case, keyed in at T0 + seconds."""
    return [event(f"{prefix}{k}", f"{prefix}-case{k}", "accept", "2025-10-09 09:00:00",
                  actor=actor, recorded_at=(T0 + timedelta(seconds=s)).isoformat(sep=" "),
                  **extra) for k, s in enumerate(seconds)]


def run(store, config, write_events, tmp_path, rows, rule_list, name="events.csv", **kw):
    if rows:
        list(ingest_events(store, config, [str(write_events(rows, name))], NOW))
    [outcome] = evaluate(store, config, AS_OF, rules=rule_list, **kw)
    assert outcome.error is None
    return outcome


def stored(store):
    with store.connect() as conn:
        return conn.execute(select(Alert).order_by(Alert.id)).all()


def test_ten_within_five_minutes_fires_at_the_boundary(store, config, write_events, tmp_path):
    exact = [i * 300 / 9 for i in range(10)]                     # 10 entries, 5:00 exactly
    rows = (entries("a", exact) + entries("b", [3600 + s * 301 / 300 for s in exact])  # 5:01
            + entries("c", [7200 + i for i in range(9)]))       # 9 entries in 8 s
    outcome = run(store, config, write_events, tmp_path, rows, rules(tmp_path))
    [f] = outcome.findings
    assert f.subject == "u1|a0" and f.actor == "u1" and f.case_id is None
    assert f.case_ids == tuple(f"a-case{k}" for k in range(10))
    assert (f.fields["count"], f.fields["seconds"], f.fields["duration"]) == (10, 300, "5 分 0 秒")
    assert f.evidence["recorded_from"] == "2025-10-09T17:20:00+08:00"
    assert f.evidence["fastest_window_seconds"] == 300 and f.department == "D04"
    assert f.event_ids == tuple(f"a{k}" for k in range(10))


def test_actors_count_separately_and_parameters_apply(store, config, write_events, tmp_path):
    rows = entries("a", range(0, 45, 5)) + entries("b", [50], actor="u2")  # 9 + 1 in 50 s
    rows += entries("c", range(4000, 4004))                                # 4 in 3 s
    plain, strict = (run(store, config, write_events, tmp_path, rows if i == 0 else [], r)
                     for i, r in enumerate((rules(tmp_path),
                                            rules(tmp_path, ", params: {min_events: 4, "
                                                            "window_minutes: 0.05}"))))
    assert plain.findings == []
    assert [f.subject for f in strict.findings] == ["u1|c0"]  # 3 s ≤ 0.05 min, 9 in 40 s not


def test_one_alert_per_burst_and_steady_work_does_not_chain(store, config, write_events,
                                                            tmp_path):
    burst1 = [i * 24 for i in range(25)]                 # 25 entries in 9:36: one burst
    steady = [700 + 200 * i for i in range(30)]          # one every 3:20, up to 6500
    burst2 = [6700 + i for i in range(10)]               # 10 entries in 9 s
    rows = entries("a", burst1) + entries("s", steady) + entries("z", burst2)
    outcome = run(store, config, write_events, tmp_path, rows, rules(tmp_path))
    first, second = outcome.findings
    assert (first.subject, first.fields["count"], first.fields["case_count"]) == ("u1|a0", 25, 25)
    # 6500 … 6709 holds 11 entries within 5 minutes: the steady entry at 6500 opens burst2
    assert (second.subject, second.fields["count"]) == ("u1|s29", 11)
    assert second.case_ids == ("s-case29", *(f"z-case{k}" for k in range(10)))
    assert second.fields["fastest_seconds"] == 9
    assert len(stored(store)) == 2


def test_ties_and_entries_without_recorded_at_or_actor(store, config, write_events, tmp_path):
    rows = entries("t", [0] * 9) + [event("n1", "n", "accept", actor="u1"),  # no recorded_at
                                    event("n2", "n", "survey", actor="",
                                          recorded_at="2025-10-09 17:20:00")]
    outcome = run(store, config, write_events, tmp_path, rows, rules(tmp_path))
    assert outcome.findings == []
    outcome = run(store, config, write_events, tmp_path, entries("u", [0]), rules(tmp_path),
                  name="more.csv")
    [f] = outcome.findings
    assert f.fields["count"] == 10 and f.fields["seconds"] == 0 and f.subject == "u1|t0"


def test_scope_and_as_of(store, config, write_events, tmp_path):
    rows = (entries("a", range(0, 45, 5)) + entries("p", [46], item_code="D07-CF-001")
            + entries("late", [86400 * 30]))  # recorded after AS_OF
    licence_only = rules(tmp_path, scope=", scope: {exclude: {categories: [penalty]}}")
    assert run(store, config, write_events, tmp_path, rows, licence_only).findings == []
    [f] = run(store, config, write_events, tmp_path, [], rules(tmp_path)).findings
    assert f.fields["count"] == 10 and f.department is None and f.item_code is None
    assert f.evidence["departments"] == ["D04", "D07"]


def test_subject_is_stable_as_a_burst_grows_and_full_rerun_adds_nothing(
        store, config, write_events, tmp_path):
    rule_list = rules(tmp_path)
    middle = entries("m", [100 + 10 * i for i in range(10)])
    first = run(store, config, write_events, tmp_path, middle, rule_list, name="b1.csv")
    assert [f.subject for f in first.findings] == ["u1|m0"] and first.stored.new == 1
    # a later export holds entries of the same burst keyed in before and after it
    more = entries("e", [10, 20, 30]) + entries("l", [200, 210])
    grown = run(store, config, write_events, tmp_path, more, rule_list, name="b2.csv")
    assert grown.incremental and [f.subject for f in grown.findings] == ["u1|m0"]
    assert grown.findings[0].fields["count"] == 15
    assert grown.findings[0].evidence["recorded_from"] == "2025-10-09T17:20:10+08:00"
    assert (grown.stored.new, grown.stored.changed) == (0, 1)
    # another actor's new entries: u1 is not looked at again
    other = run(store, config, write_events, tmp_path, entries("o", [5000], actor="u2"),
                rule_list, name="b3.csv")
    assert other.incremental and other.findings == []
    full = run(store, config, write_events, tmp_path, [], rule_list, full=True)
    assert (full.stored.new, full.stored.changed, full.stored.unchanged) == (0, 0, 1)
    [alert] = stored(store)
    assert (alert.actor, alert.case_id, alert.subject) == ("u1", None, "u1|m0")
    assert len(alert.evidence["entries"]) == 15 and "15 条" in alert.message


def test_merged_bursts_keep_the_older_subject(store, config, write_events, tmp_path):
    rule_list = rules(tmp_path)
    two = entries("x", range(10)) + entries("y", range(1000, 1010))
    assert [f.subject for f in run(store, config, write_events, tmp_path, two,
                                   rule_list).findings] == ["u1|x0", "u1|y0"]
    bridge = entries("b", range(200, 1000, 30))  # dense windows all the way across
    merged = run(store, config, write_events, tmp_path, bridge, rule_list, name="b.csv")
    assert [f.subject for f in merged.findings] == ["u1|x0"]


ENTRY = st.tuples(st.sampled_from(["u1", "u2"]), st.integers(0, 120))  # actor, second


def seed_of(subject: str) -> int:
    return int(subject.split("|e")[1])  # e<i>: ingested in order, so i orders events.id


@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(history=st.lists(ENTRY, min_size=8, max_size=40),
       cuts=st.lists(st.integers(1, 39), min_size=1, max_size=4))
def test_incremental_matches_full_and_subjects_only_move_to_older_entries(
        store, config, write_events, tmp_path, history, cuts):
    """Random entries in random batches. After each batch the incremental run finds exactly
    what a full evaluation finds for the actors it touched, and the other actors' bursts are
    unchanged. A burst's subject is kept as it grows; it moves only to an entry stored
    before its seed (another burst, or a stray entry it reached), never to a new one."""
    with store.begin() as conn:
        for model in (Alert, RuleState, Event, Quarantine, IngestRun):
            conn.execute(delete(model))
    rule_list = rules(tmp_path, ", params: {min_events: 3, window_minutes: 0.25}")
    rows = [event(f"e{i}", f"c{i % 7}", "accept", "2025-10-09 09:00:00", actor=actor,
                  recorded_at=(T0 + timedelta(seconds=s)).isoformat(sep=" "))
            for i, (actor, s) in enumerate(history)]
    bounds = sorted({0, len(rows), *(c for c in cuts if c < len(rows))})
    before: dict[str, object] = {}
    for n, (lo, hi) in enumerate(zip(bounds, bounds[1:])):
        inc = run(store, config, write_events, tmp_path, rows[lo:hi], rule_list,
                  name=f"b{n}.csv")
        [full] = evaluate(store, config, AS_OF, rules=rule_list, full=True, dry_run=True)
        now = {f.subject: f for f in full.findings}
        touched = {r["actor"] for r in rows[lo:hi]}
        message = {s: render(rule_list[0], f)[1] for s, f in now.items()}
        assert {f.subject: render(rule_list[0], f)[1] for f in inc.findings} == \
            {s: m for s, m in message.items() if now[s].actor in touched}
        for subject, old in before.items():
            if old.actor not in touched:
                assert render(rule_list[0], now[subject]) == render(rule_list[0], old)
            elif subject not in now:
                [grown] = [f for f in now.values() if set(old.event_ids) <= set(f.event_ids)]
                assert seed_of(grown.subject) < seed_of(subject)
        before = now
    alerts = {a.subject: a.message for a in stored(store)}
    assert {s: alerts[s] for s in before} == {s: render(rule_list[0], f)[1]
                                              for s, f in before.items()}


def test_a_burst_keyed_in_after_the_last_run_is_found_without_new_events(
        store, config, write_events, tmp_path):
    """Stored before a run whose as-of precedes it, the burst is invisible to that run;
    the next incremental run (no new events at all) must still find it."""
    rule_list = rules(tmp_path)
    rows = entries("a", [i * 10 for i in range(10)])      # keyed in 2025-10-09 17:20 +08:00
    list(ingest_events(store, config, [str(write_events(rows, "events.csv"))], NOW))
    before = datetime(2025, 10, 9, 9, 0, tzinfo=timezone.utc)    # 17:00 +08:00
    [first] = evaluate(store, config, before, rules=rule_list)
    assert first.error is None and not first.findings
    [later] = evaluate(store, config, AS_OF, rules=rule_list)
    assert later.error is None and [f.subject for f in later.findings] == ["u1|a0"]
