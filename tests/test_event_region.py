"""The event contract's optional ``region`` field (issue 21 item 1, docs/scale.md): one
province-wide file lands each event in its own county; a code that is no known county,
and an event of a case another county holds, are set aside with their line."""

from __future__ import annotations

import gzip
import json

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from cli import cli
from conftest import CATALOG
from monitor.db import create_store_engine
from monitor.models import Event, Quarantine

NEIGHBOUR = """\
departments:
  - {code: N04, name: 邻县应急管理局}
users:
  - {id: n1, name: 王五, department: N04, roles: [clerk], phone: "13800000011"}
items:
  - code: N04-XK-001
    name: 危险化学品安全生产许可
    department: N04
    category: license
    promised_days: 10
    legal_days: 20
    fee: 0
"""
HOME, AWAY = "330102", "330106"


@pytest.fixture
def run(db_url, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MONITOR_DATABASE_URL", raising=False)
    (tmp_path / "config.yaml").write_text(f"region: {HOME}\ntimezone: Asia/Shanghai\n",
                                          encoding="utf-8")
    (tmp_path / "catalog.yaml").write_text(CATALOG, encoding="utf-8")
    (tmp_path / "neighbour.yaml").write_text(NEIGHBOUR, encoding="utf-8")
    runner = CliRunner()

    def invoke(*args):
        return runner.invoke(cli, ["--db", db_url, *map(str, args)])

    assert invoke("ingest", "catalog", "catalog.yaml").exit_code == 0
    assert invoke("ingest", "catalog", "--region", AWAY, "neighbour.yaml").exit_code == 0
    return invoke


def _stored(db_url):
    engine = create_store_engine(db_url)
    with engine.connect() as conn:
        events = {e: r for e, r in conn.execute(select(Event.event_id, Event.region))}
        set_aside = {(q.line, q.reason): q.detail for q in conn.execute(
            select(Quarantine.line, Quarantine.reason, Quarantine.detail))}
    engine.dispose()
    return events, set_aside


def _row(event_id, case_id, item="D04-XK-001", step="accept", **extra):
    return {"event_id": event_id, "case_id": case_id, "item_code": item, "step": step,
            "actor": "u1" if item.startswith("D04") else "n1",
            "occurred_at": "2025-09-30 10:00:00", **extra}


MIXED = [
    _row("e1", "c1"),                                             # 1: no region: the run's
    _row("e2", "k1", "N04-XK-001", region=AWAY),                  # 2
    _row("e3", "k1", "N04-XK-001", "decide", region=AWAY),        # 3
    _row("e4", "c1", "D04-XK-001", "decide", region=HOME),        # 4: given, the run's own
    _row("e5", "k2", "N04-XK-001", region="330199"),              # 5: no such county here
    _row("e6", "k3", "N04-XK-001", region="33010X"),              # 6: not a code
    _row("e7", "k1", "D04-XK-001", "review"),                     # 7: k1 is 330106's
    _row("e8", "c1", "N04-XK-001", "review", region=AWAY),        # 8: c1 is 330102's
    _row("e9", "k4", "D04-XK-001", region=AWAY),                  # 9: D04's item is 330102's
]


def _check_mixed(events, set_aside):
    assert events == {"e1": HOME, "e2": AWAY, "e3": AWAY, "e4": HOME}
    assert sorted(set_aside) == [(5, "unknown_region"), (6, "bad_region"),
                                 (7, "case_other_region"), (8, "case_other_region"),
                                 (9, "other_region")]
    assert "330199" in set_aside[5, "unknown_region"]
    assert "did you mean '3301" in set_aside[5, "unknown_region"]
    assert "6 位数字" in set_aside[6, "bad_region"]
    assert f"办件 k1 已属于地区 {AWAY}，本行的地区是 {HOME}" in set_aside[7, "case_other_region"]
    assert f"办件 c1 已属于地区 {HOME}，本行的地区是 {AWAY}" in set_aside[8, "case_other_region"]
    assert f"本次导入的地区是 {AWAY}" in set_aside[9, "other_region"]


def test_a_mixed_two_county_jsonl_lands_each_event_in_its_county(run, db_url, tmp_path):
    path = tmp_path / "province.jsonl"
    rows = [dict(r) for r in MIXED]
    rows[2]["region"] = int(AWAY)  # a JSON number is a code too
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows),
                    encoding="utf-8")
    result = run("ingest", "events", path)
    assert result.exit_code == 0, result.output
    _check_mixed(*_stored(db_url))
    again = run("ingest", "events", path)  # a re-run adds nothing
    assert again.exit_code == 0 and "inserted 0" in again.output, again.output
    _check_mixed(*_stored(db_url))


def test_a_mixed_two_county_csv_lands_each_event_in_its_county(run, db_url, tmp_path):
    path = tmp_path / "province.csv"
    columns = ["event_id", "case_id", "item_code", "step", "actor", "occurred_at", "region"]
    path.write_text("\n".join([",".join(columns)] + [
        ",".join(str(r.get(c, "")) for c in columns) for r in MIXED]) + "\n",
        encoding="utf-8")
    result = run("ingest", "events", path)
    assert result.exit_code == 0, result.output
    events, set_aside = _stored(db_url)
    # a CSV's line 1 is its header: every row one line further on
    _check_mixed(events, {(line - 1, reason): d for (line, reason), d in set_aside.items()})


def test_a_later_file_without_the_field_cannot_move_a_case_to_its_county(run, db_url,
                                                                          tmp_path):
    first = tmp_path / "province.jsonl"
    first.write_text(json.dumps(_row("a1", "k1", "N04-XK-001", region=AWAY)) + "\n")
    assert run("ingest", "events", first).exit_code == 0
    later = tmp_path / "home.csv"
    later.write_text("event_id,case_id,item_code,step,actor,occurred_at\n"
                     "a2,k1,D04-XK-001,review,u1,2025-09-30 11:00:00\n"
                     "a3,c9,D04-XK-001,accept,u1,2025-09-30 11:00:00\n")
    assert run("ingest", "events", later).exit_code == 0
    events, set_aside = _stored(db_url)
    assert events == {"a1": AWAY, "a3": HOME}
    assert list(set_aside) == [(2, "case_other_region")]


def test_without_the_field_every_event_is_the_runs_county_as_before(run, db_url, tmp_path):
    path = tmp_path / "away.csv"
    path.write_text("event_id,case_id,item_code,step,actor,occurred_at\n"
                    "b1,k1,N04-XK-001,accept,n1,2025-09-30 10:00:00\n"
                    "b2,k1,D04-XK-001,accept,u1,2025-09-30 10:00:00\n")
    assert run("ingest", "events", "--region", AWAY, path).exit_code == 0
    events, set_aside = _stored(db_url)
    assert events == {"b1": AWAY}
    assert list(set_aside) == [(3, "other_region")]


def test_a_region_from_a_mapping_column_a_constant_and_an_xes_trace(run, db_url, tmp_path):
    (tmp_path / "config.yaml").write_text(f"""region: {HOME}
timezone: Asia/Shanghai
regions:
  {AWAY}: {{}}
mappings:
  province:
    fields: {{event_id: 编号, case_id: 办件编号, item_code: 事项编码, step: 环节,
             occurred_at: 办理时间, region: 区划代码}}
  away:
    fields: {{event_id: 编号, case_id: 办件编号, item_code: 事项编码, step: 环节,
             occurred_at: 办理时间}}
    constants: {{region: "{AWAY}"}}
  log:
    format: xes
    fields: {{case_id: "case:concept:name", item_code: "case:item", step: concept:name,
             occurred_at: "time:timestamp", region: "case:county"}}
""", encoding="utf-8")
    export = tmp_path / "export.csv"
    export.write_text("编号,办件编号,事项编码,环节,办理时间,区划代码\n"
                      "m1,mc1,D04-XK-001,accept,2025-09-30 10:00:00,\n"
                      "m2,mk1,N04-XK-001,accept,2025-09-30 10:00:00,330106\n"
                      "m3,mk2,N04-XK-001,accept,2025-09-30 10:00:00,330107\n",
                      encoding="utf-8")
    assert run("ingest", "events", "--mapping", "province", export).exit_code == 0
    away = tmp_path / "away.csv"
    away.write_text("编号,办件编号,事项编码,环节,办理时间\n"
                    "m4,mk3,N04-XK-001,accept,2025-09-30 10:00:00\n", encoding="utf-8")
    assert run("ingest", "events", "--mapping", "away", away).exit_code == 0
    log = tmp_path / "log.xes.gz"
    with gzip.open(log, "wt", encoding="utf-8") as f:
        f.write(f"""<?xml version="1.0" encoding="UTF-8"?>
<log xes.version="1.0">
  <trace>
    <string key="concept:name" value="xk1"/>
    <string key="item" value="N04-XK-001"/>
    <string key="county" value="{AWAY}"/>
    <event>
      <string key="concept:name" value="accept"/>
      <date key="time:timestamp" value="2025-09-30T10:00:00.000+08:00"/>
    </event>
  </trace>
</log>
""")
    assert run("ingest", "events", "--mapping", "log", log).exit_code == 0
    events, set_aside = _stored(db_url)
    assert {e: r for e, r in events.items() if not e.startswith("xes-")} == {
        "m1": HOME, "m2": AWAY, "m4": AWAY}
    assert [r for e, r in events.items() if e.startswith("xes-")] == [AWAY]
    assert list(set_aside) == [(4, "unknown_region")]
    assert "did you mean '330106'" in set_aside[4, "unknown_region"]


def test_an_unknown_county_stored_by_retry_once_its_catalog_is_loaded(run, db_url, tmp_path):
    path = tmp_path / "province.xlsx"
    from openpyxl import Workbook

    book = Workbook()
    sheet = book.active
    sheet.append(["event_id", "case_id", "item_code", "step", "actor", "occurred_at",
                  "region"])
    sheet.append(["x1", "q1", "N04-XK-001", "accept", "n1", "2025-09-30 10:00:00", 330107])
    sheet.append(["x2", "q2", "N04-XK-001", "accept", "n1", "2025-09-30 10:00:00", AWAY])
    book.save(path)
    assert run("ingest", "events", path).exit_code == 0
    events, set_aside = _stored(db_url)
    assert events == {"x2": AWAY} and list(set_aside) == [(2, "unknown_region")]
    # a user id stays with one county: the third county's catalog lists none
    third = "".join(line for line in NEIGHBOUR.splitlines(keepends=True)
                    if "n1" not in line).replace("users:\n", "users: []\n")
    (tmp_path / "third.yaml").write_text(third, encoding="utf-8")
    loaded = run("ingest", "catalog", "--region", "330107", "third.yaml")
    assert loaded.exit_code == 0, loaded.output
    result = run("quarantine", "retry")
    assert result.exit_code == 0, result.output
    events, _ = _stored(db_url)
    assert events == {"x1": "330107", "x2": AWAY}


def test_an_xes_log_read_in_parts_keeps_each_events_county(run, db_url, tmp_path,
                                                           monkeypatch):
    from monitor.ingest import parts as parts_module

    used = []
    real = parts_module.in_children
    monkeypatch.setattr(parts_module, "in_children",
                        lambda parts, *rest: used.append(len(parts)) or real(parts, *rest))
    # small batches: parts of batch_size × 1 KiB, so a log of 160 KB is read in parts
    (tmp_path / "config.yaml").write_text(f"""region: {HOME}
timezone: Asia/Shanghai
batch_size: 50
mappings:
  log:
    format: xes
    fields: {{case_id: "case:concept:name", item_code: "case:item", step: concept:name,
             occurred_at: "time:timestamp", region: "case:county"}}
""", encoding="utf-8")
    traces = []
    for n in range(400):
        item, county = (("D04-XK-001", HOME), ("N04-XK-001", AWAY))[n % 2]
        traces.append(f"""  <trace>
    <string key="concept:name" value="t{n}"/>
    <string key="item" value="{item}"/>
    <string key="county" value="{county}"/>
    <event><string key="concept:name" value="accept"/>
      <date key="time:timestamp" value="2025-09-30T10:00:00.000+08:00"/></event>
    <event><string key="concept:name" value="decide"/>
      <date key="time:timestamp" value="2025-09-30T11:00:00.000+08:00"/></event>
  </trace>
""")
    log = tmp_path / "log.xes"
    log.write_text('<?xml version="1.0" encoding="UTF-8"?>\n<log xes.version="1.0">\n'
                   + "".join(traces) + "</log>\n", encoding="utf-8")
    result = run("ingest", "events", "--mapping", "log", "--jobs", "2", log)
    assert result.exit_code == 0, result.output
    assert used and used[0] > 1  # read in parts, by child processes
    engine = create_store_engine(db_url)
    with engine.connect() as conn:
        got = dict(conn.execute(select(Event.case_id, Event.region).distinct()).tuples().all())
    engine.dispose()
    assert got == {f"t{n}": (HOME, AWAY)[n % 2] for n in range(400)}
