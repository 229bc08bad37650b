"""batch_entry (批量录入): ≥ min_events entries by one actor within window_minutes of
recorded_at → one alert per burst, naming the actor and listing the cases."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import HealthCheck, example, given, settings, strategies as st
from sqlalchemy import delete, select

from conftest import NOW, event
from monitor.alerts import render
from monitor.engine import evaluate
from monitor.ingest import ingest_events
from monitor.models import Alert, AlertNotice, Event, IngestRun, Quarantine, RuleState
from monitor.rules.kinds import batch_entry
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


def whole_history(caplog) -> list[str]:
    """Messages of incremental runs that could not cut an actor's history short."""
    return [r.getMessage() for r in caplog.records if r.name == KIND_LOGGER]


KIND_LOGGER = "monitor.rules.kinds.batch_entry"
LONG = [30 * i for i in range(68)]  # 0 … 2010 s, every 30 s: dense (10 in 5 min) up to 1740


def test_new_window_chaining_back_into_a_long_burst_extends_it(
        store, config, write_events, tmp_path, caplog):
    """The new entries' dense windows start after 1800 s, within the window of the last entry
    before them but not of any dense start: evaluated from the earliest new entry less the
    window, the long burst would be cut and the new windows reported as a burst of their own
    (another subject). It must be followed back to its start."""
    caplog.set_level(logging.INFO, logger=KIND_LOGGER)
    rule_list = rules(tmp_path)
    first = run(store, config, write_events, tmp_path, entries("a", LONG), rule_list)
    assert [(f.subject, f.fields["count"]) for f in first.findings] == [("u1|a0", 68)]
    more = run(store, config, write_events, tmp_path,
               entries("n", [2100 + 10 * i for i in range(10)]), rule_list, name="more.csv")
    assert more.incremental and [(f.subject, f.fields["count"]) for f in more.findings] == \
        [("u1|a0", 78)]
    assert (more.stored.new, more.stored.changed) == (0, 1)
    [full] = evaluate(store, config, AS_OF, rules=rule_list, full=True, dry_run=True)
    assert more.findings == full.findings
    assert [(a.subject, a.evidence["count"]) for a in stored(store)] == [("u1|a0", 78)]
    assert not whole_history(caplog)


def test_a_burst_ending_more_than_a_window_before_still_chains(
        store, config, write_events, tmp_path, caplog):
    """Old: a burst every 10 s from 0 to 1090 s (dense up to 1000) and three stray entries
    at 1250 … 1270. New: seven entries from 1500 s make 1250 a dense start, 250 s after
    1000: all one burst, keyed on the old seed. The old burst ended 410 s before the first
    new entry — more than a window — so alerts must be looked for up to two windows back."""
    caplog.set_level(logging.INFO, logger=KIND_LOGGER)
    rule_list = rules(tmp_path)
    old = entries("a", [10 * i for i in range(110)]) + entries("s", [1250, 1260, 1270])
    run(store, config, write_events, tmp_path, old, rule_list)
    more = run(store, config, write_events, tmp_path,
               entries("n", [1500 + 5 * i for i in range(7)]), rule_list, name="more.csv")
    [f] = more.findings
    assert (f.subject, f.fields["count"]) == ("u1|a0", 120)
    [full] = evaluate(store, config, AS_OF, rules=rule_list, full=True, dry_run=True)
    assert more.findings == full.findings
    assert [a.subject for a in stored(store)] == ["u1|a0"]
    assert not whole_history(caplog)


def test_new_entries_chaining_forward_into_a_long_burst(store, config, write_events, tmp_path,
                                                        caplog):
    """New entries before a long burst: a burst of their own at 0 … 90 s, and a dense window
    at 750 s that chains into the old burst starting at 1000 s, which runs to 3010 s — far
    past the new entries' windows. The grown burst keeps the old seed."""
    caplog.set_level(logging.INFO, logger=KIND_LOGGER)
    rule_list = rules(tmp_path)
    run(store, config, write_events, tmp_path, entries("a", [1000 + s for s in LONG]),
        rule_list)
    new = entries("p", [10 * i for i in range(10)]) + \
        entries("q", [750 + 10 * i for i in range(10)])
    more = run(store, config, write_events, tmp_path, new, rule_list, name="more.csv")
    assert [(f.subject, f.fields["count"]) for f in more.findings] == \
        [("u1|p0", 10), ("u1|a0", 78)]
    assert more.findings[1].evidence["recorded_to"] == "2025-10-09T18:10:10+08:00"
    [full] = evaluate(store, config, AS_OF, rules=rule_list, full=True, dry_run=True)
    assert more.findings == full.findings
    assert not whole_history(caplog)


def test_a_long_burst_is_followed_out_round_by_round(store, config, write_events, tmp_path,
                                                    caplog, monkeypatch):
    """400 entries every 30 s (3 h 20 min) and one new entry at its end: the range looked at
    first reaches two windows back; the burst found there starts at its edge, so it is looked
    for again over wider ranges until it is found whole. Stored alerts play no part."""
    caplog.set_level(logging.INFO, logger=KIND_LOGGER)
    rule_list = rules(tmp_path)
    run(store, config, write_events, tmp_path, entries("a", [30 * i for i in range(400)]),
        rule_list)
    with store.begin() as conn:
        conn.execute(delete(AlertNotice))
        conn.execute(delete(Alert))
    segmented, ranges = batch_entry._segmented_source, []
    monkeypatch.setattr(batch_entry, "_segmented_source",
                        lambda *a: ranges.append(len(a[-1])) or segmented(*a))
    more = run(store, config, write_events, tmp_path, entries("n", [12000]), rule_list,
               name="more.csv")
    assert [(f.subject, f.fields["count"]) for f in more.findings] == [("u1|a0", 401)]
    assert len(ranges) > 3 and not whole_history(caplog)
    [full] = evaluate(store, config, AS_OF, rules=rule_list, full=True, dry_run=True)
    assert more.findings == full.findings


def test_after_too_many_widenings_the_whole_history_is_read(store, config, write_events,
                                                           tmp_path, caplog, monkeypatch):
    caplog.set_level(logging.INFO, logger=KIND_LOGGER)
    rule_list = rules(tmp_path)
    run(store, config, write_events, tmp_path, entries("a", LONG), rule_list)
    monkeypatch.setattr(batch_entry, "ROUNDS", 1)
    more = run(store, config, write_events, tmp_path,
               entries("n", [2100 + 10 * i for i in range(10)]), rule_list, name="more.csv")
    assert [(f.subject, f.fields["count"]) for f in more.findings] == [("u1|a0", 78)]
    assert whole_history(caplog) == ["batch: 1 actor(s) evaluated over their whole history"]


def test_alerts_with_stale_evidence_do_not_matter(store, config, write_events, tmp_path,
                                                  caplog):
    """With a message that names neither the count nor the start, an alert is not rewritten
    as its burst grows: its evidence still gives the burst's first extent. The burst grows
    at its start (back to −900 s), then new entries chain into its end: found whole."""
    caplog.set_level(logging.INFO, logger=KIND_LOGGER)
    rule_list = rules(tmp_path, scope=", message: '{actor} 批量录入'")
    run(store, config, write_events, tmp_path, entries("a", LONG), rule_list)
    early = run(store, config, write_events, tmp_path, entries("b", range(-900, 0, 30)),
                rule_list, name="early.csv")
    assert [(f.subject, f.fields["count"]) for f in early.findings] == [("u1|a0", 98)]
    assert early.stored.unchanged == 1 and stored(store)[0].evidence["count"] == 68
    more = run(store, config, write_events, tmp_path,
               entries("n", [2100 + 10 * i for i in range(10)]), rule_list, name="more.csv")
    [full] = evaluate(store, config, AS_OF, rules=rule_list, full=True, dry_run=True)
    assert more.findings == full.findings
    assert [(f.subject, f.fields["count"]) for f in more.findings] == [("u1|a0", 108)]
    assert not whole_history(caplog)


def test_only_bursts_with_new_entries_are_reported(store, config, write_events, tmp_path):
    """The burst at 4600 s lies in the range looked at around the new entry at 5020 s but
    holds no new entry: only the one the new entry joins is reported. The entry at 9000 s is
    in no burst. A dry run reports, stores nothing, and the next run sees it as new again."""
    rule_list = rules(tmp_path)
    old = entries("a", range(10)) + entries("c", range(4600, 4610)) + \
        entries("b", range(5000, 5010))
    run(store, config, write_events, tmp_path, old, rule_list)
    more = run(store, config, write_events, tmp_path, entries("n", [5020, 9000]), rule_list,
               name="more.csv")
    assert [(f.subject, f.fields["count"]) for f in more.findings] == [("u1|b0", 11)]
    dry = run(store, config, write_events, tmp_path, entries("m", [20]), rule_list,
              name="dry.csv", dry_run=True)
    assert [(f.subject, f.fields["count"]) for f in dry.findings] == [("u1|a0", 11)]
    assert dry.stored is None and [a.evidence["count"] for a in stored(store)] == [10, 10, 11]
    again = run(store, config, write_events, tmp_path, [], rule_list)  # m20 is still new
    assert [(f.subject, f.fields["count"]) for f in again.findings] == [("u1|a0", 11)]


ACTOR = st.sampled_from(["u1", "u1", "u1", "u2"])


@st.composite
def runs(draw):
    """Runs of entries, each tight (up to 8 s apart: a burst, often longer than the ranges
    first looked at) or loose (5 to 30 s apart: now and then dense), one after another, so
    bursts start, chain and stop anywhere near the edges of those ranges; then shuffled, so
    a batch holds entries before, inside and after the old bursts."""
    clock, times = 0.0, []
    for actor, tight, count in draw(st.lists(st.tuples(ACTOR, st.booleans(),
                                                       st.integers(1, 12)),
                                             min_size=1, max_size=6)):
        gaps = st.integers(0, 16) if tight else st.integers(10, 60)  # half-seconds
        for _ in range(count):
            clock += draw(gaps) / 2
            times.append((actor, clock))
    return draw(st.permutations(times))


# entries (actor, second) in the order they are ingested: crowded (one long burst, many
# ties) or in runs
HISTORY = st.one_of(
    st.lists(st.tuples(ACTOR, st.integers(0, 160).map(lambda h: h / 2)),
             min_size=20, max_size=50),
    runs())


# entries in the batch; seconds after T0 the run is as of (None: AS_OF); a dry run first
BATCH = st.tuples(st.sampled_from([1, 1, 2, 3, 5, 8, 13]),
                  st.sampled_from([None, None, 60, 120, 240, 480]), st.booleans())


def seed_of(subject: str) -> int:
    return int(subject.split("|e")[1])  # e<i>: ingested in order, so i orders events.id


@pytest.mark.slow  # 40 random histories, each evaluated batch by batch
@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(history=HISTORY, batches=st.lists(BATCH, min_size=1, max_size=5),
       old_first=st.booleans())
# two bursts 16 s apart holding new entries, each cut by the range looked at around the other
@example(history=[("u1", 0.0)] * 23 + [("u1", s) for s in (1.5, 16.5, 16.5, 26.5, 26.5,
                                                              42.5, 27, 49, 48)],
         batches=[(3, None, False), (21, None, False)], old_first=False)
# new entry at 100 s, looked at over 68 … 132 s: dense starts 100, 104, 106 there; the one
# at 119 (119, 133, 134) is dense only with entries past 132, and chains to 106: the burst
# found there is cut, though its last dense start is more than a window before 132
@example(history=[("u1", s) for s in (104, 106, 108, 119, 133, 134, 100)],
         batches=[(6, None, False)], old_first=False)
# SQLite rounds spans to the millisecond: 115 … 130.0004 s is dense there, and 115 chains
# to the new entry at 100 s; without a second of slack, a range reaching 30 s past 100
# would leave 130.0004 out and cut the burst at 100, a whole window before its edge
@example(history=[("u1", s) for s in (100, 100, 115, 120, 130.0004, 100)],
         batches=[(5, None, False)], old_first=False)
def test_incremental_matches_full_and_subjects_only_move_to_older_entries(
        store, config, write_events, tmp_path, caplog, history, batches, old_first):
    """Random entries in random batches (the first holding most of them, or not), each
    evaluated as of a random moment (entries keyed in later are not visible yet; an earlier
    moment than the last run's is a replay, run in full), some first in a dry run. Each incremental run reports only bursts a full
    evaluation finds, exactly as it finds them, and afterwards every burst a full evaluation
    finds has its alert as that finding renders, and no actor's whole history is read. A
    burst's subject is kept as it grows; it moves only to an entry stored before its seed
    (another burst, or a stray entry it reached), never to a new one."""
    with store.begin() as conn:
        for model in (AlertNotice, Alert, RuleState, Event, Quarantine, IngestRun):
            conn.execute(delete(model))
    caplog.set_level(logging.INFO, logger=KIND_LOGGER)
    caplog.clear()
    rule_list = rules(tmp_path, ", params: {min_events: 3, window_minutes: 0.25}")
    [rule] = rule_list
    rows = [event(f"e{i}", f"c{i % 7}", "accept", "2025-10-09 09:00:00", actor=actor,
                  recorded_at=(T0 + timedelta(seconds=s)).isoformat(sep=" "))
            for i, (actor, s) in enumerate(history)]
    if old_first:  # most of the history first: few new entries among long, old bursts
        rest = sum(size for size, _, _ in batches[1:])
        batches[0] = (max(len(rows) - rest, 1), *batches[0][1:])
    batches = batches + [(len(rows), None, False)]
    lo, before, last_as_of = 0, {}, None
    for n, (size, seconds, dry) in enumerate(batches):
        if lo >= len(rows):
            break
        batch, lo = rows[lo:lo + size], lo + size
        list(ingest_events(store, config, [str(write_events(batch, f"b{n}.csv"))], NOW))
        as_of = AS_OF if seconds is None else \
            (T0 + timedelta(seconds=seconds)).replace(tzinfo=config.tz).astimezone(timezone.utc)
        [full] = evaluate(store, config, as_of, rules=rule_list, full=True, dry_run=True)
        now = {f.subject: f for f in full.findings}
        alerts = {a.subject: a.message for a in stored(store)}
        if dry:
            [trial] = evaluate(store, config, as_of, rules=rule_list, dry_run=True)
            assert trial.error is None and trial.stored is None
            assert all(f == now[f.subject] for f in trial.findings)
            reported = {f.subject for f in trial.findings}
            assert all(alerts.get(s) == render(rule, f)[1] for s, f in now.items()
                       if s not in reported)
        [inc] = evaluate(store, config, as_of, rules=rule_list)
        assert inc.error is None
        assert all(f == now[f.subject] for f in inc.findings)
        assert len({f.subject for f in inc.findings}) == len(inc.findings)
        alerts = {a.subject: a.message for a in stored(store)}
        assert {s: alerts.get(s) for s in now} == {s: render(rule, f)[1] for s, f in now.items()}
        assert not whole_history(caplog)
        if last_as_of is None or as_of >= last_as_of:  # no replay: bursts only grow
            for subject, old in before.items():
                if subject not in now:
                    [grown] = [f for f in now.values()
                               if set(old.event_ids) <= set(f.event_ids)]
                    assert seed_of(grown.subject) < seed_of(subject)
                else:
                    assert set(old.event_ids) <= set(now[subject].event_ids)
        before, last_as_of = now, as_of


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


@settings(max_examples=30, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(history=HISTORY, min_events=st.sampled_from([2, 3, 4, 5, 7]),
       window=st.sampled_from([0.1, 0.25, 0.5]))
# a burst of 4 (min_events 4) split 2 + 2 by a slot edge (slots of 16 s, from the epoch)
@example(history=[("u1", s) for s in (-3, -1, 10, 12)], min_events=4, window=0.25)
def test_full_run_over_crowded_slots_matches_the_plain_pass(
        store, config, write_events, tmp_path, monkeypatch, history, min_events, window):
    """A full evaluation looks only around crowded slots (see "Full evaluation"); with
    their number capped at -1 it takes the plain pass over every entry. Both find the same
    bursts, exactly."""
    with store.begin() as conn:
        for model in (AlertNotice, Alert, RuleState, Event, Quarantine, IngestRun):
            conn.execute(delete(model))
    rule_list = rules(tmp_path, f", params: {{min_events: {min_events}, "
                                f"window_minutes: {window}}}")
    rows = [event(f"e{i}", f"c{i % 7}", "accept", "2025-10-09 09:00:00", actor=actor,
                  recorded_at=(T0 + timedelta(seconds=s)).isoformat(sep=" "))
            for i, (actor, s) in enumerate(history)]
    list(ingest_events(store, config, [str(write_events(rows, "h.csv"))], NOW))
    [crowded] = evaluate(store, config, AS_OF, rules=rule_list, full=True, dry_run=True)
    with monkeypatch.context() as patch:
        patch.setattr(batch_entry, "CROWDED_AT_MOST", -1)
        [plain] = evaluate(store, config, AS_OF, rules=rule_list, full=True, dry_run=True)
    assert crowded.error is None and plain.error is None
    assert sorted(crowded.findings, key=lambda f: f.subject) == \
        sorted(plain.findings, key=lambda f: f.subject)
