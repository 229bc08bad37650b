"""Migration 0026 (a region on every per-county record) and naming a store once
(monitor/regionstore.py), on SQLite and on $MONITOR_TEST_DATABASE_URL's PostgreSQL."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest
from alembic import command
from sqlalchemy import inspect, select, text

from conftest import PG_URL
from monitor.db import _alembic_config, create_store_engine, open_store, scratch_database
from monitor.models import Alert, Department, Event, Meta
from monitor.regionstore import adopt_region, region_tables, store_region

T0 = datetime(2026, 1, 5, 1, 0, tzinfo=timezone.utc)
DOCUMENTED = {"departments", "users", "items", "ingest_runs", "events", "receipts",
              "quarantine", "alerts", "dispositions", "supervision_orders", "holds",
              "alert_changes", "alert_notices", "exemptions", "activity", "spot_checks",
              "ratings", "complaints"}


def _store_at_0025(url: str) -> None:
    """A store as 0025 left it, with a department and an event (the head's models would
    ask for columns 0025 has not: rows written in SQL)."""
    engine = create_store_engine(url)
    with engine.begin() as conn:
        command.upgrade(_alembic_config(conn), "0025")
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO departments (code, name) VALUES ('D04', '市场监管局')"))
        conn.execute(text(
            "INSERT INTO events (event_id, case_id, item_code, department, step, "
            "occurred_at, content_hash) VALUES ('old-0', 'old', 'D04-XK-001', 'D04', "
            "'accept', :t, 'x')"), {"t": T0})
    engine.dispose()


def test_the_tables_with_a_region_are_the_documented_ones_and_not_the_trail():
    assert set(region_tables()) == DOCUMENTED
    assert not {"trail", "trail_head"} & set(region_tables())


@pytest.mark.parametrize("handed", ["330102", None])
def test_existing_rows_take_the_region_open_store_hands_the_migration(tmp_path, handed):
    with scratch_database(tmp_path, PG_URL) as url:
        _store_at_0025(url)
        engine = open_store(url, region=handed)
        want = handed or "000000"
        with engine.connect() as conn:
            assert conn.scalar(select(Department.region)) == want
            assert conn.scalar(select(Event.region).where(Event.event_id == "old-0")) == want
            assert store_region(conn) == want
            for table in region_tables():
                column = {c["name"]: c for c in inspect(conn).get_columns(table)}["region"]
                assert not column["nullable"], table
            indexes = {i["name"] for i in inspect(conn).get_indexes("alerts")}
        assert {"ix_alerts_region_board", "ix_alerts_region_raised"} <= indexes
        # a row written by hand, without a region, belongs to the store's county
        with engine.begin() as conn:
            conn.execute(text("INSERT INTO departments (code, name) VALUES ('D05', '住建局')"))
            assert conn.scalar(select(Department.region).where(
                Department.code == "D05")) == want
        engine.dispose()


def test_an_unnamed_store_is_named_once_and_other_counties_rows_are_left(tmp_path):
    with scratch_database(tmp_path, PG_URL) as url:
        _store_at_0025(url)
        engine = open_store(url)  # no region handed: 000000
        with engine.begin() as conn:
            conn.execute(text("INSERT INTO departments (code, name, region) "
                              "VALUES ('X01', '邻县局', '330106')"))
        assert adopt_region(engine, "000000") is False
        assert adopt_region(engine, "330102") is True
        with engine.connect() as conn:
            regions = {c: r for c, r in conn.execute(select(Department.code, Department.region))}
            assert regions == {"D04": "330102", "X01": "330106"}
            assert conn.scalar(select(Event.region)) == "330102"
            assert conn.scalar(select(Meta.value).where(Meta.key == "region")) == "330102"
        # named: a second county in config.yaml does not rename it again
        assert adopt_region(engine, "330106") is False
        with engine.connect() as conn:
            assert conn.scalar(select(Event.region)) == "330102"
        if engine.dialect.name == "postgresql":  # the default follows the name
            with engine.begin() as conn:
                conn.execute(text("INSERT INTO departments (code, name) VALUES ('D06', 'x')"))
                assert conn.scalar(select(Department.region).where(
                    Department.code == "D06")) == "330102"
        engine.dispose()


def test_a_new_store_made_with_a_region_stamps_it_by_default(tmp_path):
    with scratch_database(tmp_path, PG_URL) as url:
        engine = open_store(url, region="330102")
        with engine.begin() as conn:
            conn.execute(text(
                "INSERT INTO alerts (dedupe_key, rule_id, kind, subject, level, status, tier, "
                "action, case_ids, raised_at, updated_at, message, evidence, event_ids, "
                "rule_version, assigned_to) VALUES ('r|s', 'r', 'overdue', 's', 'red', "
                "'open', 1, 'alert', '[]', :t, :t, 'm', '{}', '[]', '1', '[]')"), {"t": T0})
            assert conn.scalar(select(Alert.region)) == "330102"
        engine.dispose()


def test_what_hangs_on_an_alert_takes_the_alert_s_region(engine):
    """A hold, a level change, a disposition … is of its alert's county, not of the
    store's default (000000 in the suite's template)."""
    from zoneinfo import ZoneInfo

    from monitor.calendar import WorkCalendar
    from monitor.holds import place
    from monitor.models import AlertChange, Hold
    from monitor.regionstore import region_of_alert
    from monitor.supervision import Policy

    with engine.begin() as conn:
        conn.execute(text(
            "INSERT INTO alerts (dedupe_key, rule_id, kind, subject, level, status, tier, "
            "action, case_ids, raised_at, updated_at, message, evidence, event_ids, "
            "rule_version, assigned_to, region) VALUES ('r|k1', 'r', 'overdue', 'k1', 'red', "
            "'open', 1, 'halt', '[\"k1\"]', :t, :t, 'm', '{}', '[]', '1', '[]', '330106')"),
            {"t": T0})
        alert_id = conn.scalar(select(Alert.id))
        place(conn, Policy(WorkCalendar(), ZoneInfo("Asia/Shanghai")),
              [{"action": "halt", "dedupe_key": "r|k1", "case_ids": ["k1"], "rule_id": "r",
                "department": "N04", "region": "330106"}], {("330106", "r|k1"): alert_id}, T0)
        conn.execute(AlertChange.__table__.insert().values(
            alert_id=alert_id, at=T0, old_level="yellow", new_level="red", rule_version="1",
            region=region_of_alert(alert_id)))
        assert conn.scalar(select(Hold.region)) == "330106"
        assert conn.scalar(select(AlertChange.region)) == "330106"
