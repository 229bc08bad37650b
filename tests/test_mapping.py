"""Declarative mappings: another system's export (CSV, JSON Lines, XES) read through one
mapping into the event contract, with system events, time precision and value transforms."""

from __future__ import annotations

import gzip
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from cli import cli
from monitor.models import Event

ROOT = Path(__file__).resolve().parents[1]
EXPORT = ROOT / "docs" / "examples" / "export"
COUNTY_CATALOG = ROOT / "docs" / "examples" / "county" / "catalog.yaml"


def run(tmp_path: Path, *args: str, config: str = "timezone: Asia/Shanghai\n"):
    (tmp_path / "config.yaml").write_text(config, encoding="utf-8")
    return CliRunner().invoke(cli, ["--config", str(tmp_path / "config.yaml"),
                                    "--db", f"sqlite:///{tmp_path / 'm.db'}", *args])


def events(tmp_path: Path) -> dict:
    from monitor.db import open_store

    engine = open_store(f"sqlite:///{tmp_path / 'm.db'}")
    try:
        with engine.connect() as conn:
            return {(e.case_id, e.source_line): e for e in conn.execute(select(Event))}
    finally:
        engine.dispose()


def test_chinese_gbk_export_through_the_docs_mapping(tmp_path):
    assert run(tmp_path, "ingest", "catalog", str(COUNTY_CATALOG)).exit_code == 0
    result = run(tmp_path, "ingest", "events", "--mapping", str(EXPORT / "mapping.yaml"),
                 str(EXPORT / "办件导出.csv"))
    assert result.exit_code == 0, result.output
    assert "inserted 10" in result.output and "quarantined 0" in result.output
    got = events(tmp_path)
    accept = got[("XK2026-0001", 2)]
    assert (accept.step, accept.actor, accept.note, accept.is_system, accept.time_precision) \
        == ("accept", "D04-001", "收件受理", False, "minute")
    assert accept.occurred_at.isoformat() == "2026-03-02T01:12:00+00:00"
    check = got[("XK2026-0001", 3)]
    assert (check.step, check.is_system) == ("系统自动校验", True)
    paid = got[("XK2026-0001", 7)]
    assert (paid.step, str(paid.amount), paid.channel) == ("fee_paid", "200.00", "online")
    dated = got[("XK2026-0002", 9)]
    assert (dated.step, dated.time_precision) == ("accept", "day")
    assert dated.occurred_at.isoformat() == "2026-03-02T16:00:00+00:00"
    again = run(tmp_path, "ingest", "events", "--mapping", str(EXPORT / "mapping.yaml"),
                str(EXPORT / "办件导出.csv"))
    assert "inserted 0" in again.output and "duplicates 10" in again.output


MAPPINGS = """timezone: Asia/Shanghai
mappings:
  feed:
    fields: {case_id: 案卷, item_code: 事项, step: 动作, occurred_at: 时间, amount: 金额}
    steps: {受理: accept, 审批: approve}
    timestamp: {formats: [excel]}
    amount_unit: fen
"""


def test_jsonl_with_excel_serials_through_a_config_mapping(tmp_path):
    assert run(tmp_path, "ingest", "catalog", str(COUNTY_CATALOG)).exit_code == 0
    feed = tmp_path / "feed.jsonl"
    feed.write_text('{"案卷": "J1", "事项": "D04-XK-001", "动作": "受理", "时间": 46083}\n'
                    '{"案卷": "J1", "事项": "D04-XK-001", "动作": "审批", "时间": 46083.5,'
                    ' "金额": 1250}\n'
                    '{"案卷": "J1", "事项": "D04-XK-001", "动作": "审批", "时间": "soon"}\n',
                    encoding="utf-8")
    result = run(tmp_path, "ingest", "events", "--mapping", "feed", str(feed), config=MAPPINGS)
    assert result.exit_code == 0, result.output
    assert "inserted 2" in result.output and "quarantined 1" in result.output
    got = events(tmp_path)
    assert got[("J1", 1)].time_precision == "day"
    assert got[("J1", 2)].time_precision is None  # to the second
    assert got[("J1", 2)].occurred_at.isoformat() == "2026-03-02T04:00:00+00:00"
    assert str(got[("J1", 2)].amount) == "12.50"
    listing = run(tmp_path, "quarantine", "list", config=MAPPINGS)
    assert "bad_timestamp" in listing.output and "fits none of the timestamp formats" \
        in listing.output


@pytest.mark.parametrize("text, line, message", [
    ("  feed:\n    fields: {case_id: a, item_code: b, step: c, ocurred_at: d}\n", 4,
     "'fields': unknown contract field 'ocurred_at' (did you mean 'occurred_at'?)"),
    ("  feed:\n    feilds: {case_id: a}\n", 4, "unknown key 'feilds' (did you mean 'fields'?)"),
    ("  feed:\n    fields: {case_id: a, item_code: b, step: c, occurred_at: d}\n"
     "    steps:\n      受理: acept\n", 6,
     "'steps': '受理' → unknown step 'acept' (did you mean 'accept'?)"),
    ("  feed:\n    fields: {case_id: a, item_code: b, step: c, occurred_at: d}\n"
     "    timestamp: {formats: [exel]}\n", 5,
     "timestamp format 'exel' has no % directive (did you mean 'excel'?)"),
    ("  feed:\n    fields: {case_id: a, item_code: b, step: c}\n", 3,
     "mapping 'feed': no source for the required field 'occurred_at'"),
])
def test_a_bad_mapping_is_one_line_with_file_line_and_did_you_mean(tmp_path, text, line,
                                                                    message):
    result = run(tmp_path, "ingest", "events", "--mapping", "feed", "x.csv",
                 config="timezone: Asia/Shanghai\nmappings:\n" + text)
    assert result.exit_code == 1
    assert result.stderr.startswith(f"Error: {tmp_path / 'config.yaml'}:{line}: {message}")
    assert result.stderr.count("\n") == 1


def test_a_header_without_a_mapped_column_stops_the_file(tmp_path):
    assert run(tmp_path, "ingest", "catalog", str(COUNTY_CATALOG)).exit_code == 0
    export = tmp_path / "e.csv"
    export.write_text("办件编号,事项编码,环节,办理人,办理日期\nA,D04-XK-001,受理,x,2026-01-05\n",
                      encoding="gbk")
    result = run(tmp_path, "ingest", "events", "--mapping", str(EXPORT / "mapping.yaml"),
                 str(export))
    assert result.exit_code == 1
    assert result.stderr.startswith(
        f"Error: {export}:1: mapping 'mapping' reads occurred_at from column '办理时间', "
        "which the header lacks (it has: 办件编号, 事项编码, 环节, 办理人, 办理日期); "
        "nothing was read")


def test_unknown_mapping_name_says_which_exist(tmp_path):
    result = run(tmp_path, "ingest", "events", "--mapping", "fed", "x.csv", config=MAPPINGS)
    assert result.exit_code == 1
    assert "no mapping 'fed' under 'mappings:' (did you mean 'feed'?)" in result.stderr


XES = """<?xml version="1.0" encoding="UTF-8"?>
<log xes.version="1.0">
  <trace>
    <string key="concept:name" value="T-1"/>
    <string key="item" value="D04-XK-001"/>
    <event>
      <string key="concept:name" value="Registreren"/>
      <date key="time:timestamp" value="2025-09-30T10:00:00.000+08:00"/>
    </event>
    <event>
      <string key="concept:name" value="Automatische controle"/>
      <date key="time:timestamp" value="2025-09-30T10:00:01.000+08:00"/>
    </event>
    <event>
      <string key="concept:name" value="{long}"/>
      <date key="time:timestamp" value="2025-09-30"/>
      <string key="lifecycle:transition" value="complete"/>
    </event>
  </trace>
</log>
"""


def test_xes_through_a_mapping_item_from_a_trace_attribute(tmp_path):
    assert run(tmp_path, "ingest", "catalog", str(COUNTY_CATALOG)).exit_code == 0
    long = "Beoordelen van de aanvraag " * 4
    log = tmp_path / "log.xes.gz"
    with gzip.open(log, "wt", encoding="utf-8") as f:
        f.write(XES.replace("{long}", long))
    config = """timezone: Europe/Amsterdam
mappings:
  log:
    format: xes
    fields: {case_id: "case:concept:name", item_code: "case:item", step: concept:name,
             occurred_at: "time:timestamp"}
    steps: {Registreren: accept}
    system_events: [Automatische controle]
    lifecycle: [complete]
"""
    result = run(tmp_path, "ingest", "events", "--mapping", "log", str(log), config=config)
    assert result.exit_code == 0, result.output
    assert "inserted 3" in result.output
    got = sorted(events(tmp_path).values(), key=lambda e: e.source_line)
    assert [(e.step, e.is_system, e.time_precision) for e in got[:2]] == [
        ("accept", False, None), ("Automatische controle", True, None)]
    assert len(got[2].step) <= 64 and "~" in got[2].step and got[2].note == long.strip()
    assert got[2].time_precision == "day"


def test_run_warns_of_a_rule_that_floods_and_the_export_shows_precision(tmp_path):
    assert run(tmp_path, "ingest", "catalog", str(COUNTY_CATALOG)).exit_code == 0
    assert run(tmp_path, "ingest", "events", "--mapping", str(EXPORT / "mapping.yaml"),
               str(EXPORT / "办件导出.csv")).exit_code == 0
    result = run(tmp_path, "run", "--as-of", "2026-03-31T00:00:00+08:00", "--dry-run",
                 "--rule", "step-too-fast")
    assert result.exit_code == 0, result.output
    # 09:12 → 09:13 to the minute: at most 2 minutes, under the 30-minute survey minimum;
    # case XK2026-0002's date-only stamps show nothing
    assert "案件 XK2026-0001：accept→survey 仅 60 秒" in result.stdout
    assert "XK2026-0002" not in result.stdout
    assert "warning" not in result.stderr  # 1 of 2 cases: a small log floods nothing
    # twelve more cases, eleven surveyed within minutes of acceptance: a flood
    more = tmp_path / "more.csv"
    rows = ["办件编号,事项编码,环节,办理人,办理时间,收费金额,缴费方式"]
    for n in range(12):
        rows += [f"M{n},D04-XK-001,收件受理,D04-001,2026/03/02 09:00,,",
                 f"M{n},D04-XK-001,现场勘查,D04-001,2026/03/02 {9 if n else 11}:05,,"]
    more.write_text("\n".join(rows) + "\n", encoding="gbk")
    assert run(tmp_path, "ingest", "events", "--mapping", str(EXPORT / "mapping.yaml"),
               str(more)).exit_code == 0
    result = run(tmp_path, "run", "--as-of", "2026-03-31T00:00:00+08:00", "--dry-run",
                 "--rule", "step-too-fast")
    assert result.stderr.splitlines()[-1] == (
        "warning: rule step-too-fast flags 12 of 14 cases in scope (85.7%, above "
        "flood_percent 20%): a finding on most cases is the office's practice, not "
        "misconduct; calibrate it: permit-monitor rules calibrate --kind step_too_fast "
        "--rule step-too-fast; or narrow its scope (docs/mappings.md, \"Floods\")")
    quiet = run(tmp_path, "run", "--as-of", "2026-03-31T00:00:00+08:00", "--dry-run",
                "--rule", "step-too-fast", config="timezone: Asia/Shanghai\nflood_percent: 90\n")
    assert "warning" not in quiet.stderr


def test_an_excel_export_through_a_mapping(tmp_path):
    from datetime import datetime as dt

    from openpyxl import Workbook

    assert run(tmp_path, "ingest", "catalog", str(COUNTY_CATALOG)).exit_code == 0
    book = Workbook()
    sheet = book.active
    sheet.append(["办件编号", "事项编码", "环节", "办理人", "办理时间"])
    sheet.append(["X1", "D04-XK-001", "收件受理", "D04-001", dt(2026, 3, 2, 9, 12, 5)])
    sheet.append(["X1", "D04-XK-001", "科室审核", "D04-002", dt(2026, 3, 4, 10, 30)])
    path = tmp_path / "导出.xlsx"
    book.save(path)
    mapping = tmp_path / "x.yaml"
    mapping.write_text("fields: {case_id: 办件编号, item_code: 事项编码, step: 环节, "
                       "actor: 办理人, occurred_at: 办理时间}\n"
                       "steps: {收件受理: accept, 科室审核: review}\n", encoding="utf-8")
    result = run(tmp_path, "ingest", "events", "--mapping", str(mapping), str(path))
    assert result.exit_code == 0, result.output
    assert "inserted 2" in result.output
    got = events(tmp_path)
    assert got[("X1", 2)].step == "accept"
    assert got[("X1", 2)].occurred_at.isoformat() == "2026-03-02T01:12:05+00:00"
