"""data_quality evaluated incrementally: a case goes stale because the clock moves, with
no new event, and an incremental pass must find it all the same — as a full one as of the
same moment does — while a replay as of an earlier moment still judges every case."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta, timezone

import pytest

from conftest import NOW, event, stored_alerts
from monitor.engine import evaluate
from monitor.ingest import ingest_events
from monitor.rules.loader import load_rules

UTC = timezone.utc


def local(day: int) -> datetime:
    """09:00 in Asia/Shanghai on 2025-10-``day``."""
    return datetime(2025, 10, day, 1, 0, tzinfo=UTC)


@pytest.fixture
def run(store, config, write_events, tmp_path):
    """run(as_of, rows=(), **options) → {subject: finding} of the dq rule's pass, and
    whether the pass was incremental; ``rows`` are ingested first."""
    path = tmp_path / "rules.yaml"
    path.write_text("- {id: dq, kind: data_quality}\n", encoding="utf-8")
    rules, config = load_rules([path]), replace(config, stale_days=10)
    batches = iter(range(1000))

    def go(as_of: datetime, rows=(), **options):
        if rows:
            name = f"batch{next(batches)}.csv"
            list(ingest_events(store, config, [str(write_events(list(rows), name))], NOW))
        [outcome] = evaluate(store, config, as_of, rules=rules, keep=True, **options)
        assert outcome.error is None, outcome.error
        return {f.subject: f for f in outcome.findings}, outcome.incremental

    return go


# SILENT: accepted 10-10, last recorded 10-12: stale (more than 10 dates silent) from 10-23.
# EARLY: the same, and keyed in before it happened from the start: its finding gains
# "stale" on 10-23. DONE: decided, never stale. The others only give the runs new events.
HISTORY = [event("s1", "SILENT", "accept", "2025-10-10 09:00:00"),
           event("s2", "SILENT", "review", "2025-10-12 10:00:00"),
           event("q1", "EARLY", "accept", "2025-10-10 09:00:00"),
           event("q2", "EARLY", "review", "2025-10-12 10:00:00",
                 recorded_at="2025-10-12 09:00:00"),
           event("d1", "DONE", "accept", "2025-10-01 09:00:00"),
           event("d2", "DONE", "decide", "2025-10-02 09:00:00")]


def test_a_case_going_stale_between_incremental_passes_is_found(run, store):
    found, _ = run(local(20), HISTORY)  # the first pass: full
    assert set(found) == {"EARLY"}
    assert "stale" not in found["EARLY"].evidence
    # 10-22: ten dates of silence, not yet stale; a new event elsewhere (a new date: the
    # open cases are not judged again before the date they go stale, 10-23)
    found, incremental = run(local(22), [event("n1", "NEW1", "accept", "2025-10-22 08:00:00")])
    assert incremental and set(found) == set()
    # 10-23, no new event at all: SILENT went stale because the date moved
    found, incremental = run(local(23))
    assert incremental
    assert set(found) == {"SILENT", "EARLY"}
    assert found["SILENT"].evidence["stale"] == {"last_event_at": "2025-10-12T10:00:00+08:00",
                                                 "stale_days": 10}
    assert set(found["EARLY"].evidence) >= {"stale", "recorded_before_occurred"}
    alerts = stored_alerts(store)
    assert "长期无记录" in alerts["dq|SILENT"][1] and "长期无记录" in alerts["dq|EARLY"][1]
    # the same moment evaluated in full (without writing) finds what the passes stored
    full, incremental = run(local(23), full=True, dry_run=True)
    assert not incremental and set(full) == {"SILENT", "EARLY"}
    # later the same date and the next: stale cases are not judged again (their alerts
    # stand), a new event brings a case back into view
    found, incremental = run(local(24), [event("s3", "SILENT", "review",
                                               "2025-10-24 08:00:00")])
    assert incremental and set(found) == set()  # SILENT spoke again: not stale
    found, _ = run(local(24) + timedelta(days=11))
    assert set(found) == {"SILENT", "NEW1"}  # both silent for more than 10 dates now


def test_a_replay_as_of_an_earlier_moment_judges_every_case_and_the_clock_moves_on(run):
    run(local(20), HISTORY)
    found, _ = run(local(23))
    assert set(found) == {"SILENT", "EARLY"}
    # a dry run as of an earlier moment: full, nothing stale yet, nothing kept
    found, incremental = run(local(21), dry_run=True)
    assert not incremental and set(found) == {"EARLY"}
    # a replay as of that moment, written: full, and the open cases are listed afresh ...
    found, incremental = run(local(21))
    assert not incremental and set(found) == {"EARLY"}
    # ... so that the next pass, incremental, finds again the case going stale
    found, incremental = run(local(23))
    assert incremental and set(found) == {"SILENT", "EARLY"}
