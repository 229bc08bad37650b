"""data_quality (数据质量): which cases are judged, and what a finding names. The SQL keeps
only the cases that may have an issue (a superset: ties at one instant, a last event old
enough to be stale, …) and Python judges those: these tests pin the edges of that
pre-selection — a stale case one local date either side of ``stale_days``, ties that are
no synthetic timeline, and which instant a case with two synthetic instants reports."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timezone

from conftest import NOW, event
from monitor.engine import evaluate
from monitor.ingest import ingest_events
from monitor.rules.loader import load_rules

AS_OF = datetime(2025, 11, 1, tzinfo=timezone.utc)  # 2025-11-01 08:00 in Asia/Shanghai


def findings(store, config, write_events, tmp_path, rows, **settings) -> dict:
    path = tmp_path / "rules.yaml"
    path.write_text("- {id: dq, kind: data_quality, params: {synthetic_steps: 3}}\n",
                    encoding="utf-8")
    config = replace(config, **settings)
    list(ingest_events(store, config, [str(write_events(rows))], NOW))
    [outcome] = evaluate(store, config, AS_OF, rules=load_rules([path]), keep=True)
    assert outcome.error is None
    return {f.subject: f for f in outcome.findings}


def test_stale_is_judged_on_local_dates_at_either_edge(store, config, write_events, tmp_path):
    """stale_days 10, as of 11-01 local: silent since 10-21 (11 dates) is stale, since
    10-22 00:00 local (10 dates) is not — 16:00 UTC the evening before."""
    rows = [event("e1", "OLD", "accept", "2025-10-21 09:00:00"),
            event("e2", "OLD", "review", "2025-10-21 23:59:00"),
            event("e3", "EDGE", "accept", "2025-10-21 09:00:00"),
            event("e4", "EDGE", "review", "2025-10-22 00:00:00"),
            event("e5", "DONE", "accept", "2025-09-01 09:00:00"),
            event("e6", "DONE", "decide", "2025-09-02 09:00:00")]
    found = findings(store, config, write_events, tmp_path, rows, stale_days=10)
    assert set(found) == {"OLD"}
    assert found["OLD"].evidence["stale"] == {"last_event_at": "2025-10-21T23:59:00+08:00",
                                              "stale_days": 10}


def test_ties_that_are_no_synthetic_timeline(store, config, write_events, tmp_path):
    """Two steps at one instant (fewer than synthetic_steps), or three by three accounts,
    are no finding; three by one account are, and a case with two such instants names the
    first by account, then time."""
    at, later = "2025-10-20 10:00:00", "2025-10-20 11:00:00"
    rows = [event("a1", "TWO", "accept", at), event("a2", "TWO", "review", at),
            event("a3", "TWO", "decide", "2025-10-21 10:00:00"),
            event("b1", "THREE", "accept", at, actor="u1"),
            event("b2", "THREE", "review", at, actor="u2"),
            event("b3", "THREE", "approve", at, actor="u3"),
            event("b4", "THREE", "decide", "2025-10-21 10:00:00"),
            event("c1", "TWICE", "accept", at, actor="u2"),
            event("c2", "TWICE", "review", at, actor="u2"),
            event("c3", "TWICE", "approve", at, actor="u2"),
            event("c4", "TWICE", "decide", later, actor="u1"),
            event("c5", "TWICE", "complete", later, actor="u1"),
            event("c6", "TWICE", "certificate_printed", later, actor="u1")]
    found = findings(store, config, write_events, tmp_path, rows)
    assert set(found) == {"TWICE"}
    assert found["TWICE"].evidence["synthetic_timeline"] == {
        "actor": "u1", "at": "2025-10-20 03:00:00+00:00", "steps": 3}
