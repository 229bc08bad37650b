"""Properties that hold for any input: nothing is lost, nothing is counted twice."""

from __future__ import annotations

import csv
import io

from hypothesis import HealthCheck, given, settings, strategies as st
from sqlalchemy import delete, func, select

from conftest import EVENT_COLUMNS, NOW
from monitor.ingest import ingest_events
from monitor.models import Event, IngestRun, Quarantine

GOOD = st.fixed_dictionaries({
    "event_id": st.sampled_from([f"e{i}" for i in range(12)]),
    "case_id": st.sampled_from(["c1", "c2", "c3"]),
    "item_code": st.just("D04-XK-001"),
    "step": st.sampled_from(["accept", "survey", "review", "fee_paid", "自定义步骤"]),
    "actor": st.sampled_from(["u1", "u2", ""]),
    "occurred_at": st.sampled_from(["2025-09-30 10:00", "2025-09-30T10:00:58+08:00",
                                    "2025-10-09T01:00:00Z"]),
    "amount": st.sampled_from(["", "0", "200", "199.99"]),
})
BAD = GOOD.flatmap(lambda row: st.sampled_from([
    {**row, "occurred_at": "not a time"},
    {**row, "item_code": "NOPE"},
    {**row, "step": ""},
    {**row, "amount": "-1"},
    {**row, "event_id": ""},
]))


def to_csv(rows: list[dict]) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=EVENT_COLUMNS)
    writer.writeheader()
    writer.writerows(rows)
    return buf.getvalue()


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(first=st.lists(st.one_of(GOOD, BAD), max_size=40),
       second=st.lists(st.one_of(GOOD, BAD), max_size=40))
def test_read_equals_inserted_plus_duplicates_plus_quarantined(store, config, tmp_path,
                                                               first, second):
    with store.begin() as conn:
        for model in (Event, Quarantine, IngestRun):
            conn.execute(delete(model))
    a, b = tmp_path / "a.csv", tmp_path / "b.csv"
    a.write_text(to_csv(first), encoding="utf-8")
    b.write_text(to_csv(second), encoding="utf-8")
    ids_in_store: set[str] = set()
    for path, rows in ((a, first), (b, second)):
        [result] = ingest_events(store, config, [str(path)], NOW)
        t = result.tally
        assert t.read == len(rows)
        assert t.read == t.inserted + t.duplicates + t.quarantined
        assert sum(t.by_reason.values()) == t.quarantined
        with store.connect() as conn:
            stored = set(conn.scalars(select(Event.event_id)))
            quarantined = conn.scalar(select(func.count()).select_from(Quarantine)
                                      .where(Quarantine.source == str(path)))
        assert len(stored - ids_in_store) == t.inserted
        assert quarantined == t.quarantined
        ids_in_store = stored
    # Re-ingesting both files changes nothing.
    for path in (a, b):
        [again] = ingest_events(store, config, [str(path)], NOW)
        assert again.tally.inserted == 0
    with store.connect() as conn:
        assert set(conn.scalars(select(Event.event_id))) == ids_in_store
