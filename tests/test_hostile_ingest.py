"""Hostile input, part 1: every row stored or quarantined, and the night goes on.

Each case is one the attack session of issue 18 found: a poison row that stopped the pass
(and lost the good rows of its batch), on SQLite and, with MONITOR_TEST_DATABASE_URL, on
PostgreSQL."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
from sqlalchemy import select

from conftest import NOW, event
from monitor.config import Limits
from monitor.ingest import ingest_events
from monitor.models import Event, IngestRun, Quarantine

GOOD = 120  # good rows around each poison one; the batch (50) holds good and bad alike


def _ingest(store, config, path):
    [result] = ingest_events(store, config, [str(path)], NOW)
    return result.tally


def _stored(store):
    with store.connect() as conn:
        events = set(conn.scalars(select(Event.event_id)))
        quarantined = {(q.line, q.reason): q for q in conn.execute(select(Quarantine))}
        runs = conn.execute(select(IngestRun.status)).scalars().all()
    return events, quarantined, runs


POISON = [  # (field, value, reason)
    ("occurred_at", "0001-01-01T00:00:00+08:00", "bad_timestamp"),
    ("occurred_at", "9999-12-31T23:59:59-08:00", "bad_timestamp"),
    ("occurred_at", "1989-12-31 23:00:00", "bad_timestamp"),
    ("note", "before\x00after", "control_character"),
    ("actor", "u1\x01", "control_character"),
    ("case_id", "c\x1b[31m", "control_character"),
    ("note", "x" * 5000, "too_long"),
    ("days", "1" + "0" * 20, "store_error"),  # passes validation; the database refuses it
]


@pytest.mark.parametrize("field, value, reason", POISON,
                         ids=[f"{f}-{r}-{i}" for i, (f, _, r) in enumerate(POISON)])
def test_a_poison_row_is_quarantined_and_every_good_row_is_stored(store, config,
                                                                  write_events, field,
                                                                  value, reason):
    rows = [event(f"g{i}", f"c{i}") for i in range(GOOD)]
    rows.insert(GOOD // 2, event("poison", **{"case_id": "cp", field: value}))
    tally = _ingest(store, config, write_events(rows))
    events, quarantined, runs = _stored(store)
    assert events == {f"g{i}" for i in range(GOOD)}
    poison_line = GOOD // 2 + 2
    assert list(quarantined) == [(poison_line, reason)]
    assert (tally.read, tally.inserted, tally.quarantined) == (GOOD + 1, GOOD, 1)
    assert runs == ["done"]
    q = quarantined[(poison_line, reason)]
    assert "\x00" not in q.raw and "\x00" not in q.detail
    assert len(q.raw) < 2 * config.limits.max_field_chars + 500


def test_the_timestamp_range_is_a_setting(store, config, write_events):
    narrow = replace(config, limits=Limits(earliest_year=2025, latest_year=2025))
    rows = [event("in", occurred_at="2025-09-30 10:00"),
            event("before", occurred_at="2024-12-31 23:59"),
            event("after", occurred_at="2026-01-01 00:00")]
    tally = _ingest(store, narrow, write_events(rows))
    assert (tally.inserted, dict(tally.by_reason)) == (1, {"bad_timestamp": 2})


def test_deep_json_is_quarantined_not_a_crash(store, config, tmp_path):
    path = tmp_path / "events.jsonl"
    with open(path, "w", encoding="utf-8") as f:
        for i in range(GOOD):
            f.write(json.dumps(event(f"g{i}", f"c{i}")) + "\n")
            if i == 10:
                f.write('{"event_id": "deep", "note": ' + "[" * 100_000 + "]" * 100_000 + "}\n")
            if i == 20:
                nested = json.dumps(event("deep2", note=json.loads("[" * 40 + "]" * 40)))
                f.write(nested + "\n")
    tally = _ingest(store, config, path)
    events, quarantined, runs = _stored(store)
    assert len(events) == GOOD and runs == ["done"]
    assert dict(tally.by_reason) == {"too_deep": 2}


def test_bytes_of_another_encoding_mid_file_lose_no_good_row(store, config, write_events):
    """The file's encoding is decided on the whole file when it is opened (main's
    monitor/config/encoding.py): an ASCII file with one GBK row is read as GBK, every row
    stored; where no encoding fits, the file is one clear line and nothing is half-stored
    (tests/test_pipeline.py) — no good row is ever lost to the bad one."""
    path = write_events([event(f"g{i}", f"c{i}") for i in range(GOOD)])
    with open(path, "ab") as f:
        f.write("bad,cb,D04-XK-001,,受理,u1,2025-09-30 10:00,,,,,,\n".encode("gbk"))
    tally = _ingest(store, config, path)
    events, quarantined, runs = _stored(store)
    assert len(events) == GOOD + 1 and runs == ["done"] and tally.inserted == GOOD + 1


def test_a_receipt_the_database_refuses_costs_one_row(store, config, tmp_path):
    from monitor.ingest import ingest_receipts
    from monitor.models import Receipt

    path = tmp_path / "receipts.csv"
    lines = ["department,period,amount", "D04,2025-09,100.00", "D04,2025-10,\x00",
             "D07,2025-10,1300500.00"]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    [result] = ingest_receipts(store, config, [str(path)], NOW)
    with store.connect() as conn:
        stored = conn.execute(select(Receipt.department, Receipt.period)).all()
    assert sorted(stored) == [("D04", "2025-09"), ("D07", "2025-10")]
    assert dict(result.tally.by_reason) == {"control_character": 1}


def test_a_failing_stage_never_keeps_the_night_from_escalating_and_sending(tmp_path, db_url,
                                                                          monkeypatch):
    """The report stage fails with a bug-class error (its folder is a file): evaluation,
    escalation and delivery still run, and the run-failed notice goes out the same night."""
    from click.testing import CliRunner

    from cli import cli
    from conftest import CATALOG

    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MONITOR_DATABASE_URL", raising=False)
    (tmp_path / "catalog.yaml").write_text(
        CATALOG.replace("users:\n", "users:\n  - {id: jw, name: 监察室, department: D04, "
                                     "roles: [monitor_l2], phone: '13800000009'}\n"),
        encoding="utf-8")
    (tmp_path / "config.yaml").write_text(
        "lease_wait_seconds: 0\nnotify:\n  sinks:\n    sms: {type: file, path: sms.jsonl}\n"
        "  channels: {sms: sms}\n", encoding="utf-8")
    (tmp_path / "reports").write_text("a file where the reports folder should be")

    def run(*args):
        return CliRunner().invoke(cli, ["--config", str(tmp_path / "config.yaml"),
                                        "--db", db_url, *args])

    assert run("ingest", "catalog", str(tmp_path / "catalog.yaml")).exit_code == 0
    result = run("nightly", "--as-of", "2025-10-02T18:00")
    assert result.exit_code == 1, result.output
    assert "report: internal error" in result.stdout
    assert "rule(s) evaluated" in result.stdout and "notifications sent" in result.stdout
    sent = [json.loads(line) for line in (tmp_path / "sms.jsonl").read_text().splitlines()]
    assert any(m["text"].startswith("【电子监察·运维】运行失败") for m in sent)
