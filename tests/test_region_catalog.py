"""A catalog per county (issue 21 item 1, migration 0029): two counties of one store share
the province's item codes and their department codes, each with its own limits, and each
county's cases are judged by its own catalog."""

from __future__ import annotations

import json
from datetime import datetime, timezone
import shutil
from pathlib import Path

import pytest
from alembic import command
from click.testing import CliRunner
from sqlalchemy import inspect, select, text

from cli import cli
from conftest import PG_URL, event
from monitor.db import _alembic_config, create_store_engine, open_store, scratch_database
from monitor.models import Alert, Department, Item, Meta, Quarantine, User

RULES = Path(__file__).resolve().parent.parent / "rules"
A, B = "330102", "330106"


def _catalog(survey_minutes: int, promised_days: int, prefix: str) -> str:
    """The province's item and department codes; the county's own limits and staff."""
    return f"""\
departments:
  - {{code: D04, name: 应急管理局}}
users:
  - {{id: {prefix}1, name: 张三, department: D04, roles: [clerk], phone: "13800000001"}}
items:
  - code: D04-XK-001
    name: 危险化学品安全生产许可
    department: D04
    category: license
    promised_days: {promised_days}
    legal_days: 20
    fee: 0
    min_minutes: {{survey: {survey_minutes}}}
"""


@pytest.fixture
def store(db_url, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MONITOR_DATABASE_URL", raising=False)
    (tmp_path / "rules").mkdir()
    for name in ("step_too_fast.yaml", "overdue.yaml"):
        shutil.copy(RULES / name, tmp_path / "rules" / name)
    (tmp_path / "config.yaml").write_text(f"region: {A}\nrules_dir: rules\n", encoding="utf-8")
    runner = CliRunner()

    def run(*args, ok=(0, 3)):
        result = runner.invoke(cli, ["--db", db_url, *map(str, args)])
        assert result.exit_code in ok, result.output
        return result

    # county A: a survey may follow acceptance after 30 minutes, a case takes 5 days;
    # county B: 120 minutes, 20 days — under the same codes
    (tmp_path / "a.yaml").write_text(_catalog(30, 5, "a"), encoding="utf-8")
    (tmp_path / "b.yaml").write_text(_catalog(120, 20, "b"), encoding="utf-8")
    run("ingest", "catalog", "--region", A, "a.yaml")
    run("ingest", "catalog", "--region", B, "b.yaml")
    return run


def _rows(db_url, *columns, where=()):
    engine = create_store_engine(db_url)
    with engine.connect() as conn:
        rows = sorted(tuple(r) for r in conn.execute(select(*columns).where(*where)))
    engine.dispose()
    return rows


def test_each_county_keeps_its_own_catalog_under_the_same_codes(store, db_url, tmp_path):
    assert _rows(db_url, Item.region, Item.code, Item.promised_days) == [
        (A, "D04-XK-001", 5), (B, "D04-XK-001", 20)]
    assert _rows(db_url, Department.region, Department.code) == [(A, "D04"), (B, "D04")]
    # a reload of B's catalog with a new limit leaves A's as it was
    (tmp_path / "b.yaml").write_text(_catalog(120, 15, "b"), encoding="utf-8")
    result = store("ingest", "catalog", "--region", B, "b.yaml")
    assert "updated" in result.output or result.exit_code == 0
    assert _rows(db_url, Item.region, Item.promised_days) == [(A, 5), (B, 15)]


def test_a_user_id_stays_with_the_county_that_holds_it(store, db_url, tmp_path):
    """A login id names one person in the store: B's catalog may not take A's a1."""
    (tmp_path / "b2.yaml").write_text(_catalog(120, 20, "a"), encoding="utf-8")
    result = store("ingest", "catalog", "--region", B, "b2.yaml", ok=(1,))
    assert "b2.yaml:4: user 'a1' belongs to region 330102" in result.output
    assert _rows(db_url, User.region, User.id) == [(A, "a1"), (B, "b1")]


def test_each_countys_cases_are_judged_by_its_own_limits(store, db_url, write_events):
    """The same case in both counties: a survey 60 minutes after acceptance is too fast
    only under B's 120 minutes; undecided 10 days on, it is overdue only under A's 5 days.
    Before the catalog had a region in its key, B's load replaced A's item, and both
    counties were judged by B's limits."""
    for region, prefix in ((A, "a"), (B, "b")):
        rows = [event(f"{prefix}e1", f"{prefix}c1", occurred_at="2025-09-01 09:00",
                      actor=f"{prefix}1"),
                event(f"{prefix}e2", f"{prefix}c1", "survey", occurred_at="2025-09-01 10:00",
                      actor=f"{prefix}1")]
        store("ingest", "events", "--region", region, write_events(rows, f"{prefix}.csv"))
    store("run", "--as-of", "2025-09-12T09:00:00+08:00")
    found = _rows(db_url, Alert.region, Alert.rule_id, Alert.case_id)
    assert (B, "step-too-fast", "bc1") in found
    assert (A, "step-too-fast", "ac1") not in found
    overdue = {(r, c) for r, rule, c in found if rule.startswith("overdue")}
    assert overdue == {(A, "ac1")}


def test_other_countys_codes_are_set_aside_in_every_ingest(store, db_url, tmp_path):
    """A department or user only county B's catalog has is ``other_region`` in A's
    receipts, activity and ratings."""
    (tmp_path / "b_only.yaml").write_text(
        "departments:\n  - {code: D09, name: 市场监管局}\nusers:\n"
        "  - {id: b9, name: 王五, department: D09, roles: [monitor_l1], phone: \"13800000009\"}\n",
        encoding="utf-8")
    store("ingest", "catalog", "--region", B, "b_only.yaml")
    (tmp_path / "receipts.csv").write_text("department,period,amount\nD09,2025-09,100\n"
                                           "D04,2025-09,100\n", encoding="utf-8")
    (tmp_path / "activity.csv").write_text("user_id,at,action\nb9,2025-09-01 09:00,login\n",
                                           encoding="utf-8")
    store("ingest", "receipts", "receipts.csv")
    store("ingest", "activity", "activity.csv")
    reasons = _rows(db_url, Quarantine.kind, Quarantine.reason, Quarantine.detail)
    assert [(k, r) for k, r, _ in reasons] == [("activity", "other_region"),
                                               ("receipts", "other_region")]
    assert all(f"--region {B}" in d for _, _, d in reasons)


def _store_at_0028(url: str) -> None:
    """A single county's store as 0028 left it: its catalog keyed by code alone."""
    engine = create_store_engine(url)
    with engine.begin() as conn:
        command.upgrade(_alembic_config(conn, A), "0028")
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO departments (code, name) VALUES ('D04', '应急管理局')"))
        conn.execute(text("INSERT INTO users (id, name, department, roles) "
                          "VALUES ('a1', '张三', 'D04', '[\"clerk\"]')"))
        conn.execute(text(
            "INSERT INTO items (code, name, department, category, promised_days, legal_days, "
            "fee, min_minutes, required_attachments) VALUES ('D04-XK-001', '许可', 'D04', "
            "'license', 5, 20, 0, '{}', '{}')"))
    engine.dispose()


def _version(conn) -> str:
    return conn.scalar(select(Meta.value).where(Meta.key == "catalog_version"))


def test_a_single_countys_store_upgrades_without_change_of_meaning(tmp_path):
    with scratch_database(tmp_path, PG_URL) as url:
        _store_at_0028(url)
        engine = open_store(url, region=A)
        with engine.connect() as conn:
            for table, key in (("departments", "code"), ("items", "code"), ("users", "id")):
                pk = inspect(conn).get_pk_constraint(table)
                assert pk["constrained_columns"] == ["region", key], table
            assert _rows(url, Item.region, Item.code, Item.promised_days) == [
                (A, "D04-XK-001", 5)]
            assert _rows(url, User.region, User.id) == [(A, "a1")]
            before = _version(conn)
        # the catalog-version triggers (0025) survived the new keys, on both databases
        for statement in ("UPDATE items SET promised_days = 6",
                          "UPDATE departments SET name = '应急局'",
                          "UPDATE users SET roles = '[\"chief\"]'"):
            with engine.begin() as conn:
                conn.execute(text(statement))
                assert _version(conn) != before, statement
                before = _version(conn)
        # and back: possible while no two regions share a code
        with engine.begin() as conn:
            command.downgrade(_alembic_config(conn, A), "0028")
            assert inspect(conn).get_pk_constraint("items")["constrained_columns"] == ["code"]
            command.upgrade(_alembic_config(conn, A), "head")
        with engine.begin() as conn:
            conn.execute(text("INSERT INTO items (region, code, name, department, category, "
                              "promised_days, legal_days, fee, min_minutes, "
                              "required_attachments) SELECT :b, code, name, department, "
                              "category, 20, legal_days, fee, min_minutes, "
                              "required_attachments FROM items"), {"b": B})
        with pytest.raises(RuntimeError, match="two regions share a code"):
            with engine.begin() as conn:
                command.downgrade(_alembic_config(conn, A), "0028")
        engine.dispose()


def _report(store, *args):
    return json.loads(store(*args, "--period", "2025-09", "--format", "json").stdout)


def test_reports_and_scores_per_county_under_the_same_codes(store, write_events):
    """A's D04 takes two cases, B's D04 one: each county's report counts its own, and a
    city's table of counties (330100 covers both) adds each county's own report, although
    both counties' departments are D04."""
    for region, prefix, cases in ((A, "a", 2), (B, "b", 1)):
        rows = [event(f"{prefix}e{k}", f"{prefix}c{k}", occurred_at="2025-09-01 09:00",
                      actor=f"{prefix}1") for k in range(cases)]
        store("ingest", "events", "--region", region, write_events(rows, f"{prefix}.csv"))
    store("run", "--as-of", "2025-10-09T09:00:00+08:00")
    own = {code: _report(store, "report", "--region", code)["summary"] for code in (A, B)}
    assert (own[A]["accepted"], own[B]["accepted"]) == (2, 1)
    city = _report(store, "report", "--region", "330100")
    counties = {r["region"]: r for r in city["tables"]["t_regions"]["rows"]}
    assert sorted(counties) == [A, B]
    for code in (A, B):
        assert (counties[code]["accepted"], counties[code]["findings"],
                counties[code]["departments"]) == (own[code]["accepted"],
                                                   own[code]["findings"], 1)
    scores = _report(store, "scores", "--region", "330100")
    ranked = {r["region"]: r for r in scores["tables"]["t_region_scores"]["rows"]}
    assert sorted(ranked) == [A, B]
    for code in (A, B):
        alone = _report(store, "scores", "--region", code)["tables"]["t_scores"]["rows"]
        assert [r["department"] for r in alone] == ["D04"]
        assert ranked[code]["score"] == alone[0]["total"]
        assert ranked[code]["departments"] == 1


@pytest.mark.parametrize("memo", [False, True])
def test_the_gate_judges_by_the_deployments_own_catalog(tmp_path, engine, write_events, memo):
    """The same candidate (a survey 60 minutes after acceptance) is refused by county B's
    gate (120 minutes) and allowed by A's (30 minutes), with or without the gate's memo
    of the catalog."""
    from dataclasses import replace

    from conftest import ingest_rows, rule_file
    from monitor import gate
    from monitor.catalog import ingest_catalog
    from monitor.catalogmemo import CatalogMemo
    from monitor.config import Config

    rules = rule_file(tmp_path, "- {id: fast, kind: step_too_fast, level: red, gate: deny}\n")
    base = Config(path=None, base_dir=tmp_path, batch_size=50)
    for region, prefix, minutes in ((A, "a", 30), (B, "b", 120)):
        (tmp_path / f"{prefix}.yaml").write_text(_catalog(minutes, 5, prefix), encoding="utf-8")
        ingest_catalog(engine, tmp_path / f"{prefix}.yaml", region=region)
        ingest_rows(engine, replace(base, region=region), write_events, [
            event(f"{prefix}e1", f"{prefix}c1", occurred_at="2025-09-30 09:00",
                  actor=f"{prefix}1")], f"{prefix}.csv")
    at = datetime(2025, 9, 30, 3, 0, tzinfo=timezone.utc)
    decided = {}
    for region, prefix in ((A, "a"), (B, "b")):
        body = {"case_id": f"{prefix}c1", "item_code": "D04-XK-001", "actor": f"{prefix}1",
                "step": "survey", "occurred_at": "2025-09-30 10:00:00"}
        with engine.connect() as conn:
            verdict = gate.judge(conn, replace(base, region=region), rules, body, at,
                                 memo=CatalogMemo() if memo else None)
        decided[region] = verdict.decision
    assert decided == {A: "allow", B: "deny"}
