"""Stamping regions: every ingest path stamps config.yaml's region, `--region CODE`
replaces it for one run, and an alert takes its case's region (issue 21 item 1)."""

from __future__ import annotations

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from cli import cli
from conftest import CATALOG, event
from monitor.db import create_store_engine
from monitor.models import (Activity, Alert, Department, Event, IngestRun, Item, Quarantine,
                            Receipt, User)

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


@pytest.fixture
def run(db_url, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MONITOR_DATABASE_URL", raising=False)
    (tmp_path / "config.yaml").write_text("region: 330102\n", encoding="utf-8")
    runner = CliRunner()

    def invoke(*args):
        return runner.invoke(cli, ["--db", db_url, *map(str, args)])

    return invoke


def _regions(db_url, column, *where):
    engine = create_store_engine(db_url)
    with engine.connect() as conn:
        found = {r for r in conn.scalars(select(column).where(*where))}
    engine.dispose()
    return found


def test_each_ingest_stamps_the_configured_region_or_the_one_given(run, db_url, tmp_path,
                                                                  write_events):
    (tmp_path / "catalog.yaml").write_text(CATALOG, encoding="utf-8")
    (tmp_path / "neighbour.yaml").write_text(NEIGHBOUR, encoding="utf-8")
    assert run("ingest", "catalog", "catalog.yaml").exit_code == 0
    result = run("ingest", "catalog", "--region", "330106", "neighbour.yaml")
    assert result.exit_code == 0, result.output
    home = write_events([event("e1", "c1", occurred_at="2025-09-01 09:00"),
                         event("e2", "c1", "decide", occurred_at="2025-12-30 09:00")],
                        "home.csv")
    away = write_events([event("n1", "k1", item_code="N04-XK-001", actor="n1",
                               occurred_at="2025-09-01 09:00"),
                         event("n2", "k1", "decide", item_code="N04-XK-001", actor="n1",
                               occurred_at="2025-12-30 09:00"),
                         event("n3", "k2", item_code="NOPE")], "away.csv")
    assert run("ingest", "events", home).exit_code == 0
    assert run("ingest", "events", "--region", "330106", away).exit_code == 0
    (tmp_path / "receipts.csv").write_text("department,period,amount\nN04,2025-09,0\n")
    (tmp_path / "activity.csv").write_text("user_id,at,action\nn1,2025-09-01 08:00,login\n")
    assert run("ingest", "receipts", "--region", "330106", "receipts.csv").exit_code == 0
    assert run("ingest", "activity", "--region", "330106", "activity.csv").exit_code == 0

    assert _regions(db_url, Department.region, Department.code == "D04") == {"330102"}
    assert _regions(db_url, Department.region, Department.code == "N04") == {"330106"}
    assert _regions(db_url, User.region, User.id == "n1") == {"330106"}
    assert _regions(db_url, Item.region, Item.code == "N04-XK-001") == {"330106"}
    assert _regions(db_url, Event.region, Event.case_id == "c1") == {"330102"}
    assert _regions(db_url, Event.region, Event.case_id == "k1") == {"330106"}
    assert _regions(db_url, Quarantine.region) == {"330106"}  # k2's unknown item
    assert _regions(db_url, IngestRun.region, IngestRun.source.like("%away.csv")) == {"330106"}
    assert _regions(db_url, Receipt.region) == {"330106"}
    assert _regions(db_url, Activity.region) == {"330106"}

    result = run("run", "--as-of", "2026-01-05T00:00:00+08:00")
    assert result.exit_code in (0, 3), result.output
    overdue = {a.case_id: a.region for a in _alerts(db_url) if a.kind == "overdue"}
    assert overdue == {"c1": "330102", "k1": "330106"}


def _alerts(db_url):
    engine = create_store_engine(db_url)
    with engine.connect() as conn:
        rows = conn.execute(select(Alert.case_id, Alert.kind, Alert.region)).all()
    engine.dispose()
    return rows


@pytest.mark.parametrize("code, says", [("3301", "6 位数字"), ("990102", "前两位 99")])
def test_a_region_that_is_no_code_is_a_usage_error(run, tmp_path, write_events, code, says):
    result = run("ingest", "events", "--region", code, write_events([event("e1")]))
    assert result.exit_code == 2
    assert "Invalid value for '--region'" in result.stderr and says in result.stderr


def test_a_store_named_after_it_was_made_keeps_no_unnamed_row(run, db_url, tmp_path,
                                                               write_events):
    """The store comes from the suite's template, made with no region (000000, the
    column default SQLite keeps after the renaming); the first command names it 330102,
    and every writer from then on stamps its rows itself: no row is left unnamed."""
    from sqlalchemy import func

    from monitor.models import Base
    from monitor.regionstore import region_tables

    head, items = CATALOG.split("items:\n", 1)
    tier2 = '  - {id: k1, name: 赵六, department: D04, roles: [monitor_l2], phone: "1"}\n'
    (tmp_path / "catalog.yaml").write_text(head + tier2 + "items:\n" + items,
                                           encoding="utf-8")
    assert run("ingest", "catalog", "catalog.yaml").exit_code == 0
    rows = [event("e1", "c1", occurred_at="2025-09-01 09:00"),
            event("e2", "c1", "complete", occurred_at="2025-09-03 09:00"),
            event("e3", "c2", item_code="NOPE")]
    assert run("ingest", "events", write_events(rows)).exit_code == 0
    (tmp_path / "activity.csv").write_text("user_id,at,action\nu1,2025-09-01 08:00,login\n")
    assert run("ingest", "activity", "activity.csv").exit_code == 0
    assert run("run", "--as-of", "2026-01-05T00:00:00+08:00").exit_code in (0, 3)
    assert run("sample", "--period", "2025-09", "--n", "1").exit_code == 0
    alert_id = min(r.id for r in _alert_ids(db_url))
    assert run("alerts", "order", alert_id, "--by", "k1", "--note", "请核实").exit_code == 0
    assert run("alerts", "resolve", alert_id, "--by", "k1", "--disposition", "rectified",
               "--note", "已整改").exit_code == 0
    result = run("exemptions", "add", "--rule", "overdue", "--scope", "department=D04",
                 "--reason", "系统停机", "--by", "k1", "--until", "2099-12-31")
    assert result.exit_code == 0, result.output
    engine = create_store_engine(db_url)
    with engine.connect() as conn:
        unnamed = {t: conn.scalar(select(func.count()).select_from(Base.metadata.tables[t])
                                  .where(Base.metadata.tables[t].c.region == "000000"))
                   for t in region_tables()}
        filled = {t: conn.scalar(select(func.count()).select_from(Base.metadata.tables[t]))
                  for t in ("departments", "users", "events", "quarantine", "alerts",
                            "activity", "spot_checks", "exemptions", "ingest_runs",
                            "dispositions", "supervision_orders")}
    engine.dispose()
    assert all(filled.values()), filled  # the check below is about rows that exist
    assert unnamed == dict.fromkeys(region_tables(), 0)


def _alert_ids(db_url):
    engine = create_store_engine(db_url)
    with engine.connect() as conn:
        rows = conn.execute(select(Alert.id)).all()
    engine.dispose()
    return rows


def test_a_row_of_another_countys_catalog_is_quarantined_naming_both(run, db_url, tmp_path,
                                                                     write_events):
    """Into 330102: a neighbour's item, and a home item under the neighbour's department,
    are quarantined with their line and both regions; an unknown item stays unknown_item.
    The same neighbour row goes in under --region 330106. (On PostgreSQL through COPY.)"""
    (tmp_path / "catalog.yaml").write_text(CATALOG, encoding="utf-8")
    (tmp_path / "neighbour.yaml").write_text(NEIGHBOUR, encoding="utf-8")
    assert run("ingest", "catalog", "catalog.yaml").exit_code == 0
    assert run("ingest", "catalog", "--region", "330106", "neighbour.yaml").exit_code == 0
    away = event("n1", "k1", item_code="N04-XK-001", actor="n1")
    path = write_events([event("e1", "c1"),
                         away,
                         event("e3", "c3", department="N04"),
                         event("e4", "c4", item_code="NOPE")], "mixed.csv")
    result = run("ingest", "events", "--region", "330102", path)
    assert result.exit_code == 0, result.output
    assert "other_region 2" in result.output and "unknown_item 1" in result.output
    engine = create_store_engine(db_url)
    with engine.connect() as conn:
        held = conn.execute(select(Quarantine.line, Quarantine.reason, Quarantine.detail,
                                   Quarantine.region).order_by(Quarantine.line)).all()
        stored = set(conn.scalars(select(Event.event_id)))
    engine.dispose()
    assert stored == {"e1"}
    assert [(q.line, q.reason, q.region) for q in held] == [
        (3, "other_region", "330102"), (4, "other_region", "330102"),
        (5, "unknown_item", "330102")]
    assert held[0].detail == ("事项 'N04-XK-001' 属于地区 330106 的目录，本次导入的地区是 "
                              "330102（是否应以 --region 330106 导入？）")
    assert held[1].detail.startswith("部门 'N04' 属于地区 330106 的目录") and "330102" in held[1].detail

    result = run("ingest", "events", "--region", "330106", write_events([away], "away.csv"))
    assert result.exit_code == 0, result.output
    assert _regions(db_url, Event.region, Event.event_id == "n1") == {"330106"}
