"""An incremental pass skips the periodic kinds (``volume_drop``, ``ranking_last``) only
while nothing they read has changed: a late event of a month that is over, a month that
ends, or a new entry on the trail makes them judge again — and the alerts are those of
full evaluation (the reference store) at every run."""

from __future__ import annotations

from datetime import datetime, timezone

from conftest import NOW, event, ingest_rows, stored_alerts
from monitor.config import SHIPPED_RULES
from monitor.engine import evaluate
from monitor.ingest import ingest_receipts
from monitor.rules.loader import load_rules

RULES = [r for r in load_rules([SHIPPED_RULES]) if r.kind in ("volume_drop", "ranking_last")]


def _accepts(prefix: str, month: str, n: int) -> list[dict]:
    return [event(f"{prefix}{k}", f"{prefix}{k}", occurred_at=f"{month}-{8 + k % 20:02d} 09:00")
            for k in range(n)]


def _run(store, reference, config, at: datetime) -> dict[str, bool]:
    """Evaluate both stores as of ``at`` (``store`` incrementally, ``reference`` in full);
    rule id → whether the incremental pass skipped it."""
    skipped = {}
    for engine, full in ((store, False), (reference, True)):
        for o in evaluate(engine, config, at, rules=RULES, full=full):
            assert o.error is None, o.error
            if not full:
                skipped[o.rule.id] = o.skipped
    assert stored_alerts(store) == stored_alerts(reference)
    return skipped


def test_a_late_event_of_a_closed_month_is_judged_again(store, reference, config,
                                                         write_events):
    # October: 20 cases a year before, 19 now — down 5 %, not a finding
    rows = _accepts("Y", "2024-10", 20) + _accepts("N", "2025-10", 19)
    for engine in (store, reference):
        ingest_rows(engine, config, write_events, rows)
    assert _run(store, reference, config, datetime(2025, 11, 5, 4, tzinfo=timezone.utc)) == {
        "volume-drop": False, "ranking-last": False}  # the first pass judges in full
    # a day on, nothing new: both skip
    assert _run(store, reference, config, datetime(2025, 11, 6, 4, tzinfo=timezone.utc)) == {
        "volume-drop": True, "ranking-last": True}
    # two cases of October a year before arrive late: 22 → 19 is −13.6 %, a finding; its
    # alert, raised in the same run, is a new trail entry: ranking_last judges again
    for engine in (store, reference):
        ingest_rows(engine, config, write_events, _accepts("L", "2024-10", 2), "late.csv")
    assert _run(store, reference, config, datetime(2025, 11, 7, 4, tzinfo=timezone.utc)) == {
        "volume-drop": False, "ranking-last": False}
    assert any(key.startswith("volume-drop|D04|2025-10") for key in stored_alerts(store))
    # cases of this month (not judged yet) change nothing judged
    for engine in (store, reference):
        ingest_rows(engine, config, write_events, _accepts("M", "2025-11", 3), "now.csv")
    assert _run(store, reference, config, datetime(2025, 11, 8, 4, tzinfo=timezone.utc)) == {
        "volume-drop": True, "ranking-last": True}
    # the treasury's receipts for October, loaded with no event since: the finding's text
    # names them, so volume_drop judges again (its new text is no trail entry: the ranking
    # reads nothing that changed)
    receipts = write_events([], "unused.csv").with_name("receipts.csv")
    receipts.write_text("department,period,amount\nD04,2025-10,1234.50\n", encoding="utf-8")
    for engine in (store, reference):
        list(ingest_receipts(engine, config, [str(receipts)], NOW))
    assert _run(store, reference, config, datetime(2025, 11, 8, 5, tzinfo=timezone.utc)) == {
        "volume-drop": False, "ranking-last": True}
    assert "1234.5" in next(m for (_, m, _) in stored_alerts(store).values() if "同月财政入库" in m)
    # November is over: a new month is judged
    assert _run(store, reference, config, datetime(2025, 12, 2, 4, tzinfo=timezone.utc)) == {
        "volume-drop": False, "ranking-last": False}
