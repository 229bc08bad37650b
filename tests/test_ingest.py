"""Event ingestion: the contract, idempotency, quarantine and the accounting invariant."""

from __future__ import annotations

import csv
import gzip
import io
import json
from datetime import datetime, timezone
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from conftest import FIXTURES, NOW, event
from monitor.catalog import ingest_catalog
from monitor.errors import IngestError
from monitor.ingest import ingest_events, ingest_receipts
from monitor.ingest.quarantine import list_quarantine, retry_quarantine
from monitor.models import Event, IngestRun, Quarantine, Receipt


def ingest(store, config, *paths, **kw):
    results = list(ingest_events(store, config, [str(p) for p in paths], NOW, **kw))
    return results[0].tally if len(results) == 1 else results


def count(engine, model, *where):
    with engine.connect() as conn:
        return conn.scalar(select(func.count()).select_from(model).where(*where))


def events(engine):
    with engine.connect() as conn:
        return {e.event_id: e for e in conn.execute(select(Event)).all()}


def test_rows_are_stored_in_utc_with_decimal_money(store, config, write_events):
    path = write_events([
        event("e1", occurred_at="2025-09-30 10:00:00", recorded_at="2025-09-30T10:05:00+08:00"),
        event("e2", step="fee_paid", occurred_at="2025-09-30T02:10:00Z", amount="200.50",
              channel="ONLINE"),
        event("e3", step="survey", occurred_at="2025-09-30T10:00:58.250+08:00",
              attachments=" 现场踏勘意见书 ; 照片 ;"),
        event("e4", step="extend", days="10", department="D04", note="专家评审"),
    ])
    tally = ingest(store, config, path)
    assert (tally.read, tally.inserted, tally.duplicates, tally.quarantined) == (4, 4, 0, 0)
    got = events(store)
    utc = timezone.utc
    assert got["e1"].occurred_at == datetime(2025, 9, 30, 2, 0, tzinfo=utc)
    assert got["e1"].recorded_at == datetime(2025, 9, 30, 2, 5, tzinfo=utc)
    assert got["e1"].department == "D04"  # from the item
    assert got["e2"].amount == Decimal("200.50") and isinstance(got["e2"].amount, Decimal)
    assert got["e2"].channel == "online"
    assert got["e3"].occurred_at == datetime(2025, 9, 30, 2, 0, 58, 250000, tzinfo=utc)
    assert got["e3"].attachments == "现场踏勘意见书;照片"
    assert (got["e4"].days, got["e4"].note) == (10, "专家评审")
    assert got["e1"].source_line == 2


def test_reingesting_a_file_adds_nothing(store, config, write_events):
    path = write_events([event(f"e{i}", case_id=f"c{i % 7}") for i in range(120)])
    first = ingest(store, config, path)
    second = ingest(store, config, path)
    assert (first.inserted, first.duplicates) == (120, 0)
    assert (second.inserted, second.duplicates, second.quarantined) == (0, 120, 0)
    assert count(store, Event) == 120


def test_same_id_different_content_keeps_the_first_and_quarantines_the_newcomer(
        store, config, write_events):
    ingest(store, config, write_events([event("e1", actor="u1")], "a.csv"))
    tally = ingest(store, config, write_events([event("e1", actor="u2")], "b.csv"))
    assert (tally.inserted, tally.duplicates, tally.quarantined) == (0, 0, 1)
    assert tally.by_reason == {"conflict": 1}
    assert events(store)["e1"].actor == "u1"
    [q] = list(list_quarantine(store))
    assert (q.reason, q.line) == ("conflict", 2) and q.source.endswith("b.csv")
    assert json.loads(q.raw)["actor"] == "u2"


def test_duplicates_and_conflicts_inside_one_file(store, config, write_events):
    path = write_events([event("e1"), event("e1"), event("e1", actor="u2"), event("e2")])
    tally = ingest(store, config, path)
    assert (tally.read, tally.inserted, tally.duplicates, tally.quarantined) == (4, 2, 1, 1)


def test_every_bad_row_is_quarantined_with_its_reason(store, config):
    """Each row of the fixture states in its note the reason it must produce."""
    path = FIXTURES / "events_bad.csv"
    tally = ingest(store, config, path)
    expected = {}
    with open(path, encoding="utf-8") as f:
        for line, row in enumerate(csv.reader(f), start=1):
            if line > 1 and row[-1] not in ("ok", "note") and len(row) == 13:
                expected[line] = row[-1]
    expected[20] = "malformed_row"  # the short row: its note column is missing
    got = {q.line: q.reason for q in list_quarantine(store)}
    assert got == expected
    assert tally.read == 24
    assert tally.read == tally.inserted + tally.duplicates + tally.quarantined
    assert set(events(store)) == {"ok-1", "ok-2"}
    for q in list_quarantine(store):
        assert q.source == str(path) and q.detail


@pytest.mark.parametrize("name", ["events.jsonl", "events.jsonl.gz", "events.csv.gz"])
def test_jsonl_and_gzip_are_read_transparently(store, config, tmp_path, name):
    rows = [event("e1"), event("e2", step="fee_paid", amount="12.5", channel="online")]
    if ".jsonl" in name:
        text = "\n".join(json.dumps(r, ensure_ascii=False) for r in rows) + "\n"
    else:
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=list(rows[1]))
        writer.writeheader()
        writer.writerows(rows)
        text = buf.getvalue()
    data = text.encode()
    path = tmp_path / name
    path.write_bytes(gzip.compress(data) if name.endswith(".gz") else data)
    tally = ingest(store, config, path)
    assert tally.inserted == 2
    assert events(store)["e2"].amount == Decimal("12.50")


def test_jsonl_numbers_keep_their_exact_text(store, config, tmp_path):
    path = tmp_path / "e.jsonl"
    path.write_text('{"event_id": 7, "case_id": "c1", "item_code": "D04-XK-001", '
                    '"step": "fee_paid", "occurred_at": "2025-09-30 10:00", "amount": 0.1}\n'
                    'not json\n')
    tally = ingest(store, config, path)
    assert (tally.inserted, tally.by_reason) == (1, {"malformed_row": 1})
    assert events(store)["7"].amount == Decimal("0.10")


def test_stdin(store, config, monkeypatch):
    data = "event_id,case_id,item_code,step,occurred_at\ne1,c1,D04-XK-001,accept,2025-09-30 10:00\n"
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(data.encode())))
    [result] = ingest_events(store, config, ["-"], NOW)
    assert result.source == "<stdin>" and result.tally.inserted == 1


def test_unreadable_input_is_one_clear_error(store, config, tmp_path):
    with pytest.raises(IngestError, match="nope.csv: file not found"):
        ingest(store, config, tmp_path / "nope.csv")
    gbk = tmp_path / "gbk.csv"
    gbk.write_bytes("event_id,case_id,item_code,step,occurred_at\ne1,案件,D04-XK-001,受理,"
                    "2025-09-30 10:00\n".encode("gbk"))
    with pytest.raises(IngestError, match=r"gbk.csv:2: byte 0xB0 is not utf-8 text; nothing"):
        ingest(store, config, gbk, encoding="utf-8")
    assert ingest(store, config, gbk).inserted == 1  # auto: not UTF-8, so GB18030


def test_every_run_is_recorded(store, config, write_events):
    path = write_events([event("e1"), event("e2", item_code="nope")])
    ingest(store, config, path)
    with store.connect() as conn:
        run = conn.execute(select(IngestRun)).one()
    assert (run.status, run.read, run.inserted, run.quarantined) == ("done", 2, 1, 1)


def test_quarantine_retry_after_a_catalog_fix(store, config, write_events, tmp_path,
                                              catalog_file):
    path = write_events([event("e1", item_code="D04-XK-002"), event("e2", occurred_at="bad")])
    assert ingest(store, config, path).by_reason == {"unknown_item": 1, "bad_timestamp": 1}
    assert retry_quarantine(store, config, NOW).inserted == 0  # nothing changed yet

    fixed = tmp_path / "catalog2.yaml"
    fixed.write_text(catalog_file.read_text(encoding="utf-8") + """\
  - {code: D04-XK-002, name: 烟花爆竹经营许可, department: D04, category: license,
     promised_days: 5, legal_days: 20, fee: 0}
""", encoding="utf-8")
    ingest_catalog(store, fixed)
    tally = retry_quarantine(store, config, NOW)
    assert (tally.read, tally.inserted, tally.quarantined) == (2, 1, 1)
    assert events(store)["e1"].item_code == "D04-XK-002"
    assert events(store)["e1"].source_line == 2
    assert [q.reason for q in list_quarantine(store)] == ["bad_timestamp"]
    resolved = [q for q in list_quarantine(store, include_resolved=True) if q.resolved_at]
    assert [q.resolution for q in resolved] == ["inserted"]
    # a second retry has nothing left to do, and re-ingesting the file adds nothing
    assert retry_quarantine(store, config, NOW).inserted == 0
    again = ingest(store, config, path)
    assert (again.inserted, again.duplicates, again.quarantined) == (0, 1, 1)
    assert count(store, Quarantine) == 2


def test_catalog_reingest_updates_without_touching_events(store, config, write_events,
                                                          tmp_path, catalog_file):
    ingest(store, config, write_events([event("e1")]))
    changed = tmp_path / "changed.yaml"
    changed.write_text(catalog_file.read_text(encoding="utf-8")
                       .replace("promised_days: 10", "promised_days: 8")
                       .replace("name: 张三", "name: 张三丰"), encoding="utf-8")
    result = ingest_catalog(store, changed)
    assert result.updated == {"departments": 0, "users": 1, "items": 1}
    assert result.unchanged == {"departments": 2, "users": 1, "items": 1}
    assert count(store, Event) == 1


def test_receipts_insert_replace_and_quarantine(store, config, tmp_path):
    first = tmp_path / "r1.csv"
    first.write_text("department,period,amount\nD07,2025-09,1300000.00\nD04,2025-09,400\n"
                     "D04,2025-09,400\nD04,2025-10,5\nD04,2025-10,6\nD99,2025-09,1\n"
                     "D04,2025-13,1\nD04,2025-11,-1\n", encoding="utf-8")
    [r] = ingest_receipts(store, config, [str(first)], NOW)  # a generator unpacks too
    t = r.tally
    assert (t.read, t.inserted, t.duplicates, t.quarantined) == (8, 3, 1, 4)
    assert t.by_reason == {"conflict": 1, "unknown_department": 1, "bad_period": 1,
                           "bad_amount": 1}
    second = tmp_path / "r2.csv"
    second.write_text("department,period,amount\nD07,2025-09,1400000\nD04,2025-09,400\n")
    [r] = ingest_receipts(store, config, [str(second)], NOW)
    assert (r.tally.replaced, r.tally.duplicates) == (1, 1)
    with store.connect() as conn:
        stored = {(d, p): a for d, p, a in conn.execute(
            select(Receipt.department, Receipt.period, Receipt.amount))}
    assert stored == {("D07", "2025-09"): Decimal("1400000.00"),
                      ("D04", "2025-09"): Decimal("400.00"), ("D04", "2025-10"): Decimal("5.00")}


@pytest.mark.parametrize("fields", [
    {"event_id": " e1 ", "case_id": "c1", "item_code": "D04-XK-001", "step": "accept",
     "occurred_at": "2025-09-30T10:00:00.250+08:00"},
    {"event_id": "e2", "case_id": "c1", "item_code": "D04-XK-001", "department": "D04",
     "step": "pay", "actor": " u1 ", "occurred_at": "2025-09-30 10:00", "recorded_at":
     "2025-10-01T09:00:00Z", "amount": "1,234.50", "channel": "Online", "attachments":
     "a; ;b", "days": "3", "note": "n", "precision": "Minute", "system": "yes"},
])
def test_the_contracts_tuple_binds_as_its_dict_does(store, fields):
    """The ingestion binds event_values' tuple by position (values_binder); what reaches
    the driver is what event_binder makes of normalize_event's dict."""
    from monitor.ingest.events import CatalogIndex, event_values, normalize_event
    from monitor.ingest.store import event_binder, values_binder

    catalog = CatalogIndex({"D04-XK-001": "D04"}, frozenset({"D04"}), region="330102")
    row = normalize_event(fields, catalog, timezone.utc)
    row.update(run_id=7, source_line=12, region="330102")
    assert values_binder(store.dialect)(event_values(fields, catalog, timezone.utc), 7, 12,
                                        "330102") == event_binder(store.dialect)(row)
