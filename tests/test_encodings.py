"""Files as Chinese offices export them: GBK/GB18030 CSV, UTF-8 with a BOM, Excel
workbooks (written here by openpyxl) and Excel's ways of writing dates."""

from __future__ import annotations

import csv
import dataclasses
import io
from datetime import date, datetime, timezone
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from click.testing import CliRunner
from openpyxl import Workbook
from sqlalchemy import func, select

from cli import cli
from conftest import EVENT_COLUMNS, NOW, event
from monitor.config import Config, InboxConfig, load_config
from monitor.errors import ConfigError, IngestError
from monitor.inbox import process_inbox
from monitor.ingest import ingest_activity, ingest_events, ingest_receipts
from monitor.models import Activity, Event, IngestRun, Quarantine, Receipt
from monitor.timeutil import ValueProblem, excel_datetime, parse_timestamp

SHANGHAI = ZoneInfo("Asia/Shanghai")


def csv_bytes(rows: list[dict], encoding: str) -> bytes:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=EVENT_COLUMNS, lineterminator="\r\n")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue().encode(encoding)


def stored(engine) -> dict[str, tuple]:
    with engine.connect() as conn:
        return {r.event_id: (r.case_id, r.note, r.occurred_at)
                for r in conn.execute(select(Event.event_id, Event.case_id, Event.note,
                                             Event.occurred_at))}


def count(engine, model) -> int:
    with engine.connect() as conn:
        return conn.scalar(select(func.count()).select_from(model))


def ingest(engine, config, path, **kw):
    [result] = ingest_events(engine, config, [str(path)], NOW, **kw)
    return result.tally


@pytest.mark.parametrize("encoding", ["gbk", "gb18030", "utf-8", "utf-8-sig"])
def test_each_encoding_offices_use_is_read_without_being_named(store, config, tmp_path,
                                                                encoding):
    note = "现场踏勘㐀" if encoding == "gb18030" else "现场踏勘"  # 㐀: four bytes in GB18030
    path = tmp_path / "events.csv"
    path.write_bytes(csv_bytes([event("e1", case_id="案件-1", note=note)], encoding))
    assert ingest(store, config, path).inserted == 1
    assert stored(store)["e1"][:2] == ("案件-1", note)


def test_a_bad_byte_deep_in_a_file_names_its_line_and_commits_nothing(store, config, tmp_path):
    rows = [event(f"e{i}", case_id=f"c{i}", note="受理") for i in range(12_000)]
    text = csv_bytes(rows[:11_000], "utf-8")
    path = tmp_path / "events.csv"  # UTF-8 Chinese, then one GBK row: line 11,002
    path.write_bytes(text + csv_bytes(rows[11_000:], "gbk").split(b"\r\n", 1)[1])
    with pytest.raises(IngestError) as raised:
        ingest(store, config, path)
    assert str(raised.value).startswith(f"{path}:11002: byte 0xCA is not UTF-8, though the "
                                        "lines before it are UTF-8 text")
    with pytest.raises(IngestError, match=f"{path}:11002: byte 0xCA is not utf-8 text; "
                                          "nothing of the file was read"):
        ingest(store, config, path, encoding="utf-8")
    assert count(store, Event) == 0 and count(store, IngestRun) == 0


def test_a_file_in_neither_encoding_is_refused_whole(store, config, tmp_path):
    path = tmp_path / "events.csv"
    path.write_bytes(csv_bytes([event("e1"), event("e2")], "ascii") + b"e3,c1,\x81\x30\xff\n")
    with pytest.raises(IngestError, match=r"events.csv:4: byte 0x81 is neither UTF-8 nor "
                                          "GB18030 text; nothing of the file was read"):
        ingest(store, config, path)
    assert count(store, Event) == 0


def test_an_ascii_file_with_a_gbk_row_is_gb18030_and_read_whole(store, config, tmp_path):
    path = tmp_path / "events.csv"
    path.write_bytes(csv_bytes([event("e1"), event("e2", note="补正材料")], "gbk"))
    assert ingest(store, config, path).inserted == 2
    assert stored(store)["e2"][1] == "补正材料"


def test_stdin_in_gbk(store, config, monkeypatch):
    data = csv_bytes([event("e1", note="受理")], "gbk")
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(data)))
    [result] = ingest_events(store, config, ["-"], NOW)
    assert result.tally.inserted == 1 and stored(store)["e1"][1] == "受理"


def test_the_configured_encoding_is_used_and_checked(store, tmp_path):
    big5 = tmp_path / "events.csv"
    big5.write_bytes(csv_bytes([event("e1", note="臺灣")], "big5"))
    (tmp_path / "config.yaml").write_text("timezone: Asia/Shanghai\nencoding: big5\n")
    config = load_config(tmp_path / "config.yaml")
    assert config.encoding == "big5"
    assert ingest(store, config, big5).inserted == 1 and stored(store)["e1"][1] == "臺灣"
    (tmp_path / "config.yaml").write_text("timezone: Asia/Shanghai\nencoding: gbkk\n")
    with pytest.raises(ConfigError, match=r"config.yaml:2: unknown encoding 'gbkk' "
                                          r"\(did you mean 'gbk'\?\)"):
        load_config(tmp_path / "config.yaml")


def test_an_unknown_encoding_is_a_usage_error_with_a_suggestion(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(cli, ["--db", f"sqlite:///{tmp_path}/m.db", "ingest",
                                      "events", "--encoding", "big5x", "x.csv"])
    assert result.exit_code == 2
    assert "Invalid value for '--encoding': unknown encoding 'big5x' (did you mean " \
           "'big5'?)" in result.stderr
    assert not (tmp_path / "m.db").exists()


def workbook(path, header, rows) -> None:
    book = Workbook()
    sheet = book.active
    sheet.append(header)
    for row in rows:
        sheet.append(row)
    book.save(path)


def test_xlsx_events_with_every_kind_of_excel_date(store, config, tmp_path):
    path = tmp_path / "办件.xlsx"
    workbook(path, ["Event_ID", "case_id", "item_code", "step", "actor", "occurred_at",
                    "amount", "note"], [
        ["e1", "案件1", "D04-XK-001", "accept", "u1", datetime(2025, 10, 9, 9, 30), None, "受理"],
        [1002, "案件1", "D04-XK-001", "survey", "u1", "2025/10/9 10:05", 200, None],
        [],  # an empty row: skipped, and the lines after keep their Excel row numbers
        ["e3", "案件1", "D04-XK-001", "review", "u1", 45939.4375, 12.5, None],
        ["e4", "案件1", "D04-XK-001", "approve", "u1", "2025-10-9 11:00:00", None, None],
        ["e5", "案件1", "D04-XK-001", "decide", "u1", "2025/10/09", None, None],
    ])
    tally = ingest(store, config, path)
    assert (tally.read, tally.inserted, dict(tally.by_reason)) == (5, 4, {"bad_timestamp": 1})
    utc = {k: v[2].replace(tzinfo=timezone.utc) if v[2].tzinfo is None else v[2]
           for k, v in stored(store).items()}
    assert utc == {"e1": datetime(2025, 10, 9, 1, 30, tzinfo=timezone.utc),
                   "1002": datetime(2025, 10, 9, 2, 5, tzinfo=timezone.utc),
                   "e3": datetime(2025, 10, 9, 2, 30, tzinfo=timezone.utc),
                   "e4": datetime(2025, 10, 9, 3, 0, tzinfo=timezone.utc)}
    with store.connect() as conn:
        amounts = dict(conn.execute(select(Event.event_id, Event.amount)).all())
        [(line, detail)] = conn.execute(select(Quarantine.line, Quarantine.detail)).all()
    assert amounts["1002"] == Decimal("200") and amounts["e3"] == Decimal("12.5")
    assert (line, detail) == (7, "occurred_at: '2025/10/09' is a date without a time of day "
                                 "(e.g. 2025/9/30 10:00)")


def test_xlsx_receipts_and_activity(store, config, tmp_path):
    receipts = tmp_path / "receipts.xlsx"
    workbook(receipts, ["department", "period", "amount"], [
        ["D04", "2025-10", 1234.5],
        ["D04", datetime(2025, 11, 1), 10],  # Excel turned a typed 2025-11 into a date
        ["D07", "2025/12", 20],
        ["D07", "2025-12-15", 30]])
    [r] = ingest_receipts(store, config, [str(receipts)], NOW)
    assert (r.tally.inserted, dict(r.tally.by_reason)) == (3, {"bad_period": 1})
    activity = tmp_path / "activity.xlsx"
    workbook(activity, ["user_id", "at", "action"], [["u1", datetime(2025, 10, 9, 8, 0), "login"]])
    [a] = ingest_activity(store, config, [str(activity)], NOW)
    assert a.tally.inserted == 1
    with store.connect() as conn:
        assert dict(conn.execute(select(Receipt.period, Receipt.amount)).all()) == {
            "2025-10": Decimal("1234.50"), "2025-11": Decimal("10"), "2025-12": Decimal("20")}
        at = conn.scalar(select(Activity.at))
    assert at.replace(tzinfo=None) == datetime(2025, 10, 9, 0, 0)


def test_an_xlsx_header_without_required_columns_and_a_broken_workbook(store, config, tmp_path):
    path = tmp_path / "events.xlsx"
    workbook(path, ["编号", "case_id"], [["e1", "c1"]])
    with pytest.raises(IngestError, match="events.xlsx:1: the header lacks the required "
                                          "columns event_id, item_code, step, occurred_at"):
        ingest(store, config, path)
    broken = tmp_path / "broken.xlsx"
    broken.write_bytes(b"PK\x03\x04 not really a workbook")
    with pytest.raises(IngestError, match="broken.xlsx: not a readable Excel workbook"):
        ingest(store, config, broken)


def test_the_inbox_reads_gbk_and_xlsx_and_gives_no_encoding_hint_for_a_workbook(
        store, tmp_path):
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    (inbox / "events-gbk.csv").write_bytes(csv_bytes([event("e1", note="受理")], "gbk"))
    workbook(inbox / "events-2.xlsx", EVENT_COLUMNS[:7],
             [["e2", "c2", "D04-XK-001", "", "accept", "u1", "2025/10/9 9:30"]])
    (inbox / "events-3.xlsx").write_bytes(b"PK\x03\x04 truncated")
    config = Config(path=None, base_dir=tmp_path, rules_dir=tmp_path,
                    inbox=InboxConfig(dir=inbox, settle_seconds=0))
    done = {f.name: f for f in process_inbox(store, config, NOW, settled_before=2e9)}
    assert {n: f.status for n, f in done.items()} == {
        "events-gbk.csv": "done", "events-2.xlsx": "done", "events-3.xlsx": "failed"}
    reason = done["events-3.xlsx"].detail
    assert "not a readable Excel workbook" in reason and "encoding" not in reason.lower()
    assert stored(store)["e1"][1] == "受理" and "e2" in stored(store)


@pytest.mark.parametrize("value, expected", [
    ("2025/10/9 9:30", datetime(2025, 10, 9, 9, 30)),
    ("2025/10/09", datetime(2025, 10, 9)),
    ("2025-10-9 9:30:00", datetime(2025, 10, 9, 9, 30)),
    ("2025年10月9日 9:30", datetime(2025, 10, 9, 9, 30)),
    ("45939.395833333336", datetime(2025, 10, 9, 9, 30)),
    (45939.395833333336, datetime(2025, 10, 9, 9, 30)),
    (45939, datetime(2025, 10, 9)),
    (datetime(2025, 10, 9, 9, 29, 59, 999_000), datetime(2025, 10, 9, 9, 30)),
    (date(2025, 10, 9), datetime(2025, 10, 9)),
])
def test_excel_dates_are_read_in_the_countys_zone(value, expected):
    assert excel_datetime(value, SHANGHAI) == expected.replace(tzinfo=SHANGHAI)


@pytest.mark.parametrize("value, message", [
    ("2025/13/9 9:30", "is not a valid date and time"),
    ("9/10/2025 9:30", "is not a date and time"),
    (123.5, "is not an Excel date serial of 1950–2099"),
    ("next week", "is not a date and time"),
])
def test_what_is_not_an_excel_date(value, message):
    with pytest.raises(ValueProblem, match=message):
        excel_datetime(value, SHANGHAI)


def test_event_timestamps_need_a_time_of_day_and_keep_iso_messages():
    assert parse_timestamp("2025/10/9 9:30", SHANGHAI) == \
        datetime(2025, 10, 9, 1, 30, tzinfo=timezone.utc)
    for text in ("2025/10/09", "2025-10-09", "45939"):
        with pytest.raises(ValueProblem, match="a date without a time of day"):
            parse_timestamp(text, SHANGHAI)
    with pytest.raises(ValueProblem, match="'2025-13-01 10:00' is not an ISO 8601"):
        parse_timestamp("2025-13-01 10:00", SHANGHAI)


def test_a_big_workbook_is_read_in_the_second_process_like_in_one(store, config, tmp_path,
                                                                   monkeypatch):
    from monitor.ingest import pipeline
    from monitor.ingest.worker import can_fork

    forked: list[str] = []
    real = pipeline.prepared_in_child
    monkeypatch.setattr(pipeline, "prepared_in_child",
                        lambda *a: forked.append(a[-1]) or real(*a))
    path = tmp_path / "events.xlsx"
    rows = [[f"e{i}", f"c{i}", "D04-XK-001", "accept", datetime(2025, 10, 9, 9, i % 60)]
            for i in range(400)]
    rows[300][4] = "2025/10/09"  # Excel row 302
    workbook(path, ["event_id", "case_id", "item_code", "step", "occurred_at"], rows)
    big = dataclasses.replace(config, batch_size=50, parallel_ingest=True)
    tally = ingest(store, big, path)
    assert (tally.inserted, tally.quarantined) == (399, 1)
    assert can_fork() and forked == [str(path)]  # 2 CPUs: CI and this machine have them
    with store.connect() as conn:
        assert conn.scalar(select(Quarantine.line)) == 302
