"""What province scale rests on (issue 21): 64-bit ids, incremental runs that look up the
changed and the open cases instead of scanning the history (the same alerts whichever
way), findings stored in rounds, and migration 0012 on a store that already has data."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import insert, inspect, select, text

from conftest import PG_URL, event, ingest_rows, stored_alerts
from monitor import alerts, engine as engine_module
from monitor.catalog import ingest_catalog, load_catalog
from monitor.db import open_store
from monitor.engine import evaluate
from monitor.models import Department, Event, Item, OpenCase, RuleState, User
from monitor.config import SHIPPED_RULES
from monitor.rules.kinds import overdue
from monitor.rules.loader import load_rules
from monitor.trailcheck import verify

T0 = datetime(2025, 10, 9, 1, 0, tzinfo=timezone.utc)
# case ids a list parameter must carry exactly: quotes, brackets, commas, Chinese
ODD_IDS = ["c'1", 'c"2', "c,3", "{c4}", "案件5", "c\\6"]


def _case(case_id: str, start: datetime, n: int, decided: bool = True) -> list[dict]:
    """A licence case of ``n`` quick steps (too fast, one actor in several roles …)."""
    steps = ["accept", "survey", "review", "approve", "decide"][:n if decided else min(n, 3)]
    return [event(f"{case_id}-{k}", case_id, step, (start + timedelta(minutes=2 * k)).isoformat(),
                  recorded_at=(start + timedelta(hours=60 if k == 1 else 0, minutes=2 * k))
                  .isoformat(), actor="u1", attachments="")
            for k, step in enumerate(steps)]


def _history(days: int) -> list[list[dict]]:
    """Batches of events, one per day: new cases, and steps of cases opened earlier."""
    batches = []
    for day in range(days):
        start = T0 + timedelta(days=day)
        rows = []
        for k, cid in enumerate(ODD_IDS):
            rows += _case(f"{cid}-{day}", start + timedelta(hours=k), 5, decided=k % 3 != 0)
        batches.append(rows)
    return batches


def _run(engine, config, rules, batches, write_events, full: bool) -> list[dict]:
    """Ingest day by day, evaluating at each day's end (the clock moves 24 h); the
    alerts after each run."""
    seen = []
    for day, rows in enumerate(batches):
        ingest_rows(engine, config, write_events, rows, f"day{day}-{full}.csv")
        as_of = T0 + timedelta(days=day, hours=15)
        outcomes = evaluate(engine, config, as_of, rules=rules, full=full)
        assert all(o.error is None for o in outcomes), [o.error for o in outcomes]
        seen.append(stored_alerts(engine))
    return seen


@pytest.mark.parametrize("changed_max", [200_000, 0])
def test_incremental_with_the_clock_moving_equals_full(store, config, write_events, tmp_path,
                                                       catalog_file, monkeypatch, changed_max):
    """Changed cases listed (looked up by the list) or too many to list (a subquery), and
    overdue's open cases carried from run to run: the alerts of full runs, run for run."""
    monkeypatch.setattr(engine_module, "CHANGED_MAX", changed_max)
    # the listed cases in several rounds (the engine's for kinds by case, overdue's own)
    monkeypatch.setattr(engine_module, "CASES_PER_ROUND", 2)
    monkeypatch.setattr(overdue, "CASES_PER_QUERY", 2)
    monkeypatch.setattr(overdue, "ROWS_PER_ROUND", 2)  # and judged a few at a time
    rules = load_rules([SHIPPED_RULES])
    batches = _history(4)
    incremental = _run(store, config, rules, batches, write_events, full=False)
    reference = open_store(f"sqlite:///{tmp_path / 'reference.db'}")
    ingest_catalog(reference, catalog_file)
    full = _run(reference, config, rules, batches, write_events, full=True)
    reference.dispose()
    assert incremental == full
    assert any(len(run) > 10 for run in full)  # the rules did find things


def test_overdue_keeps_the_cases_open_as_of_its_last_run(store, config, write_events):
    rules = [r for r in load_rules([SHIPPED_RULES]) if r.kind == "overdue"]
    ingest_rows(store, config, write_events,
                _case("open", T0, 3, decided=False) + _case("closed", T0, 5))
    as_of = T0 + timedelta(days=1)
    evaluate(store, config, as_of, rules=rules, dry_run=True)
    with store.connect() as conn:  # a dry run writes nothing, its detector's state neither
        assert conn.scalars(select(OpenCase.case_id)).all() == []
    evaluate(store, config, as_of, rules=rules)
    with store.connect() as conn:
        assert conn.scalars(select(OpenCase.case_id)).all() == ["open"]
    decide = event("open-d", "open", "decide", (T0 + timedelta(days=2)).isoformat())
    ingest_rows(store, config, write_events, [decide], "decided.csv")
    [outcome] = evaluate(store, config, T0 + timedelta(days=3), rules=rules)
    assert outcome.incremental
    with store.connect() as conn:
        assert conn.scalars(select(OpenCase.case_id)).all() == []


def test_findings_stored_in_rounds_give_the_same_alerts_and_trail(store, config,
                                                                  write_events, monkeypatch,
                                                                  tmp_path):
    rules = load_rules([SHIPPED_RULES])
    for day, rows in enumerate(_history(2)):
        ingest_rows(store, config, write_events, rows, f"d{day}.csv")
    as_of = T0 + timedelta(days=3)
    whole = evaluate(store, config, as_of, rules=rules, dry_run=True)
    monkeypatch.setattr(alerts, "CHUNK", 2)
    stored = evaluate(store, config, as_of, rules=rules, keep=False)
    assert [o.found for o in stored] == [len(o.findings) for o in whole]
    assert all(o.findings == [] for o in stored)
    assert sum(o.stored.new for o in stored) == sum(o.found for o in stored) > 2
    assert verify(store).entries >= sum(o.found for o in stored)


def test_ids_past_32_bits(store, config, write_events):
    """A province-wide store passes 2**31 events in a few years: ids, the watermark and
    the trail carry on past it."""
    big = 2**33
    with store.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(text(f"SELECT setval(pg_get_serial_sequence('events', 'id'), {big})"))
            conn.execute(text(f"SELECT setval(pg_get_serial_sequence('alerts', 'id'), {big})"))
        else:  # the rowid goes on from the largest id
            conn.execute(Event.__table__.insert().values(
                id=big, event_id="seed", case_id="seed", item_code="D04-XK-001",
                department="D04", step="note", occurred_at=T0, content_hash="0" * 32))
    ingest_rows(store, config, write_events, _case("x", T0, 5))
    rules = load_rules([SHIPPED_RULES])
    outcomes = evaluate(store, config, T0 + timedelta(days=1), rules=rules)
    assert all(o.error is None for o in outcomes) and sum(o.found for o in outcomes) > 0
    with store.connect() as conn:
        assert min(conn.scalars(select(Event.id).where(Event.case_id == "x"))) > big
        assert min(conn.scalars(select(RuleState.last_event_id))) > big
    assert verify(store).entries > 0


def test_migration_0012_on_a_store_with_data(tmp_path, catalog_file, config, write_events):
    from alembic import command

    from monitor.db import _alembic_config, create_store_engine, scratch_database

    with scratch_database(tmp_path, PG_URL) as url:
        engine = create_store_engine(url)
        with engine.begin() as conn:
            command.upgrade(_alembic_config(conn), "0011")
        # rows written as that schema has them (the models are the head's: later
        # migrations add columns the ORM would ask for)
        with engine.begin() as conn:
            conn.execute(text(
                "INSERT INTO events (event_id, case_id, item_code, department, step, "
                "occurred_at, content_hash) VALUES ('old-0', 'old', 'D04-XK-001', 'D04', "
                "'accept', :t, 'x')"), {"t": T0})
            conn.execute(text("INSERT INTO rule_state (rule_id, rule_version, last_event_id, "
                              "as_of, evaluated_at) VALUES ('overdue', '1', 5, :t, :t)"),
                         {"t": T0})
        engine.dispose()
        engine = open_store(url)  # upgrades to the head
        columns = {c["name"]: c for c in inspect(engine).get_columns("events")}
        with engine.connect() as conn:
            indexes = set(conn.scalars(text(
                "SELECT indexname FROM pg_indexes" if conn.dialect.name == "postgresql" else
                "SELECT name FROM sqlite_master WHERE type = 'index'")))
            assert conn.scalar(select(Event.id).where(Event.event_id == "old-0")) is not None
            # every rule's next run is a full one, which fills open_cases
            assert conn.scalar(select(RuleState.rule_id)) is None
        assert "ix_events_dated" in indexes
        if engine.dialect.name == "postgresql":
            assert str(columns["id"]["type"]) == "BIGINT"
        engine.dispose()
