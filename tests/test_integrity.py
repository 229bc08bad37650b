"""The adversarial suite (issue 17): supervised records changed with plain SQL — per table
an update, a delete, an insert, a reorder (two rows swapped) and a truncation — are each
found by ``audit verify`` with the table, the id and what the trail says; the program's own
paths all pass; a store from before the state trail gets one baseline."""

from __future__ import annotations

from datetime import date, datetime, timezone

import pytest
import sqlalchemy as sa
from click.testing import CliRunner
from sqlalchemy import delete, insert, select, update

from cli import cli
from conftest import NOW, event
from monitor import exemptions, grants, spotcheck, supervised
from monitor import supervision as sv
from monitor.catalog import ingest_catalog
from monitor.engine import evaluate
from monitor.errors import InvalidTransition, NotAllowed
from monitor.ingest import ingest_events
from monitor.models import (Alert, Disposition, Exemption, Grant, Hold, SpotCheck,
                            SupervisionOrder, TrailHead, User)
from monitor.report.period import parse_period
from monitor.rules.loader import load_rules
from monitor.supervised import StateMismatch

CATALOG = """\
departments:
  - {code: D04, name: 应急管理局}
  - {code: D07, name: 城市管理局}
  - {code: JW, name: 县纪委监委}
users:
  - {id: u1, name: 张三, department: D04, roles: [clerk], phone: "13800000001"}
  - {id: m4, name: 王监察, department: D04, roles: [monitor_l1], phone: "13800000004"}
  - {id: m7, name: 赵监察, department: D07, roles: [monitor_l1], phone: "13800000007"}
  - {id: k1, name: 县监察一, department: JW, roles: [monitor_l2], phone: "13900000001"}
  - {id: k2, name: 县监察二, department: JW, roles: [monitor_l2], phone: "13900000002"}
items:
  - {code: D04-XK-001, name: 危险化学品安全生产许可, department: D04, category: license,
     promised_days: 10, legal_days: 20}
"""
RULES = "- {id: fast, kind: step_too_fast, level: red, action: halt}\n"
RAISED = datetime(2025, 9, 30, 8, 0, tzinfo=timezone.utc)
LATER = datetime(2025, 10, 20, 2, 0, tzinfo=timezone.utc)


@pytest.fixture
def county(engine, config, tmp_path, write_events):
    """Every supervised table with at least two rows, made by the program's own paths."""
    (tmp_path / "catalog.yaml").write_text(CATALOG, encoding="utf-8")
    ingest_catalog(engine, tmp_path / "catalog.yaml")
    rows = []
    for n in (1, 2, 3):
        rows += [event(f"a{n}", f"c{n}", "accept", "2025-09-30 10:00:00"),
                 event(f"s{n}", f"c{n}", "survey", "2025-09-30 10:00:58"),
                 event(f"d{n}", f"c{n}", "complete", "2025-09-30 11:00:00")]
    list(ingest_events(engine, config, [str(write_events(rows))], NOW))
    (tmp_path / "rules.yaml").write_text(RULES, encoding="utf-8")
    evaluate(engine, config, RAISED, rules=load_rules([tmp_path / "rules.yaml"]))
    p = sv.Policy(config.calendar(), config.tz)
    sv.acknowledge(engine, 1, "m4", LATER, "在查")
    sv.resolve(engine, 1, "m4", LATER, "rectified", "已整改")
    sv.order(engine, p, 1, "k1", LATER, "请说明")
    sv.resolve(engine, 1, "m4", LATER, "explained", "已说明")
    sv.reject(engine, p, 1, "k2", LATER, "依据不足")
    sv.resolve(engine, 1, "m4", LATER, "rectified", "已补正")
    sv.confirm(engine, 1, "k1", LATER)
    sv.escalate(engine, p, 2, "k1", LATER, "提级")
    from monitor.holds import release

    release(engine, p, 1, "m4", LATER, "已核实")
    for rule_scope in ({"case_id": "c9"}, {"case_id": "c8"}):
        ex = exemptions.add(engine, ["fast"], "fast", rule_scope, "试点", "k1", date(2025, 12, 31),
                            LATER, config.tz)
    exemptions.revoke(engine, ex, "k2", "试点结束", LATER)
    spotcheck.draw(engine, parse_period("2025-09"), config.tz, 3, "1", LATER)
    spotcheck.record(engine, "c1", "m4", True, "材料齐全", LATER)
    promoted = CATALOG.replace("roles: [monitor_l1], phone: \"13800000004\"",
                               "roles: [monitor_l2], phone: \"13800000004\"")
    moved = promoted.replace("{id: m7, name: 赵监察, department: D07",
                             "{id: m7, name: 赵监察, department: D04")
    (tmp_path / "catalog.yaml").write_text(moved, encoding="utf-8")
    loaded = ingest_catalog(engine, tmp_path / "catalog.yaml", LATER, "m4")
    assert len(loaded.pending) == 2
    grants.approve(engine, loaded.pending[0], "k1", LATER)   # m4 becomes tier 2
    grants.reject(engine, loaded.pending[1], "k2", LATER, "未经批准")  # m7 stays in D07
    supervised.check(engine)  # the program's own paths: everything accounted for
    return engine


def mismatch(engine) -> list[str]:
    with pytest.raises(StateMismatch) as err:
        supervised.check(engine)
    return str(err.value).splitlines()


TABLES = {  # table → (model, a supervised column and a value the program never wrote there)
    "alerts": (Alert, "status", "confirmed"),
    "holds": (Hold, "status", "released"),
    "supervision_orders": (SupervisionOrder, "issued_by", "m7"),
    "dispositions": (Disposition, "kind", "false_positive"),
    "exemptions": (Exemption, "revoked_by", "m7"),
    "spot_checks": (SpotCheck, "result", "fail"),
    "users": (User, "roles", ["monitor_l1", "monitor_l2"]),
    "grants": (Grant, "status", "pending"),
}


def _second(engine, model):
    with engine.connect() as conn:
        ids = conn.scalars(select(model.id).order_by(model.id)).all()
    if model is User:
        return "m4"
    assert len(ids) >= 2, model
    return ids[1]


@pytest.mark.parametrize("table", TABLES)
def test_an_updated_row_is_named_with_what_the_trail_says(county, table):
    model, column, forged = TABLES[table]
    row_id = _second(county, model)
    with county.connect() as conn:
        was = supervised.plain(conn.scalar(select(getattr(model, column))
                                           .where(model.id == row_id)))
    assert was != forged
    with county.begin() as conn:
        conn.execute(update(model).where(model.id == row_id).values({column: forged}))
    [line] = mismatch(county)
    assert line.startswith(f"{table} #{row_id}: {column} is {forged!r} but the trail (entry #")
    assert line.endswith(f") says {was!r}: changed behind the program's back")


@pytest.mark.parametrize("table", TABLES)
def test_a_deleted_row_is_named(county, table):
    model = TABLES[table][0]
    row_id = _second(county, model)
    with county.begin() as conn:
        if table == "alerts":  # what hangs off it goes first (every foreign key to it)
            from monitor.models import Base

            for child in Base.metadata.sorted_tables:
                if any(fk.column.table.name == "alerts" for fk in child.foreign_keys):
                    conn.execute(delete(child).where(child.c.alert_id == row_id))
        conn.execute(delete(model).where(model.id == row_id))
    lines = mismatch(county)
    mine = [x for x in lines if x.startswith(f"{table} #{row_id} ")]
    assert len(mine) == 1 and " is missing; the trail (entry #" in mine[0]
    assert mine[0].endswith(": deleted behind the program's back")


@pytest.mark.parametrize("table", TABLES)
def test_an_inserted_row_is_named(county, table):
    model = TABLES[table][0]
    with county.begin() as conn:
        row = conn.execute(select(model).where(model.id == _second(county, model))).one()
        values = {k: v for k, v in row._mapping.items() if k != "id"}
        if table == "alerts":
            values["dedupe_key"] += "|forged"
        if table == "holds":
            values["case_id"] = "c-forged"
        if table == "spot_checks":
            values["case_id"] = "c-forged"
        if table == "users":  # a key of its own: the user id
            values["id"] = new_id = "forged"
            conn.execute(insert(model).values(**values))
        else:
            new_id = conn.execute(insert(model).values(**values).returning(model.id)).scalar_one()
    assert mismatch(county) == [f"{table} #{new_id} is not on the trail: inserted behind "
                                "the program's back"]


@pytest.mark.parametrize("table", TABLES)
def test_two_rows_swapped_are_both_named(county, table):
    model, column, _ = TABLES[table]
    with county.connect() as conn:
        rows = conn.execute(select(model.id, getattr(model, column)).order_by(model.id)).all()
    pair = next(((a, b) for a in rows for b in rows if a.id < b.id and a[1] != b[1]), None)
    if pair is None:
        pytest.skip(f"no two {table} rows differ in {column} here")
    (a, va), (b, vb) = pair
    with county.begin() as conn:
        conn.execute(update(model).where(model.id == a).values({column: vb}))
        conn.execute(update(model).where(model.id == b).values({column: va}))
    lines = mismatch(county)
    assert [x.split(":")[0] for x in lines] == [f"{table} #{a}", f"{table} #{b}"]


@pytest.mark.parametrize("table", [t for t in TABLES if t != "alerts"])
def test_a_truncated_table_names_every_row(county, table):
    model = TABLES[table][0]
    with county.connect() as conn:
        ids = conn.scalars(select(model.id).order_by(model.id)).all()
    with county.begin() as conn:
        conn.execute(delete(model))
    lines = mismatch(county)
    assert [x.split(" ")[1] for x in lines] == [f"#{i}" for i in sorted(ids)]
    assert all(x.startswith(f"{table} #") and x.endswith("deleted behind the program's back")
               for x in lines)


def test_a_downgraded_and_reassigned_alert_is_reported_column_by_column(county):
    with county.begin() as conn:
        conn.execute(update(Alert).where(Alert.id == 3).values(
            level="yellow", assigned_to=["m7"], department="D07"))
    lines = mismatch(county)
    assert [x.split(" but ")[0] for x in lines] == [
        "alerts #3: level is 'yellow'", "alerts #3: department is 'D07'",
        "alerts #3: assigned_to is ['m7']"]


def test_audit_verify_cli_prints_the_check_and_exits_1_on_a_mismatch(county, db_url,
                                                                      monkeypatch):
    monkeypatch.delenv("MONITOR_DATABASE_URL", raising=False)
    monkeypatch.delenv("MONITOR_CONFIG", raising=False)
    runner = CliRunner()
    ok = runner.invoke(cli, ["--db", db_url, "audit", "verify"])
    assert ok.exit_code == 0, ok.output
    with county.connect() as conn:
        rows = sum(conn.scalar(select(supervised.func.count()).select_from(s.model))
                   for s in supervised.SUPERVISED.values())
    assert ok.stdout.splitlines()[1] == f"records match the trail: {rows} rows in " \
                                        f"{len(supervised.SUPERVISED)} supervised tables"
    with county.begin() as conn:
        conn.execute(update(Alert).where(Alert.id == 1).values(status="open"))
    bad = runner.invoke(cli, ["--db", db_url, "audit", "verify"])
    assert bad.exit_code == 1
    assert bad.stderr.startswith("Error: alerts #1: status is 'open' but the trail (entry #")
    assert bad.stderr.endswith(") says 'confirmed': changed behind the program's back\n")


def test_an_old_store_gets_one_baseline_and_is_checked_from_there(county):
    with county.begin() as conn:
        conn.execute(update(TrailHead).values(state_since=None))
    rows = supervised.ensure_baseline(county, LATER)
    assert rows > 0 and supervised.ensure_baseline(county, LATER) == 0
    supervised.check(county)
    with county.begin() as conn:  # reset the mark to re-baseline a tampered state
        conn.execute(update(Alert).where(Alert.id == 1).values(status="open"))
        conn.execute(update(TrailHead).values(state_since=None))
    supervised.ensure_baseline(county, NOW)
    lines = mismatch(county)
    assert lines == ["the trail has more than one baseline: the state was re-recorded after "
                     "the first (trail_head.state_since was reset)"]


def test_spot_checks_are_guarded_and_a_second_record_is_an_amendment(county):
    with pytest.raises(NotAllowed, match="m7 \\(赵监察\\) may not record the spot check of "
                                         "case c2: it belongs to department D04"):
        spotcheck.record(county, "c2", "m7", False, "不合格", LATER)
    with pytest.raises(NotAllowed, match="u1 \\(张三\\) may not record the spot check of "
                                         "case c2: not a monitor"):
        spotcheck.record(county, "c2", "u1", True, "合格", LATER)
    with pytest.raises(InvalidTransition, match="case c1 was already recorded \\(pass by m4\\)"
                                                ": a second record is an amendment"):
        spotcheck.record(county, "c1", "k1", False, "缺材料", LATER)
    row = spotcheck.record(county, "c1", "k1", False, "缺材料", LATER, reason="复核发现缺件")
    assert (row.result, row.by_user) == ("fail", "k1")
    from monitor.trail import history  # noqa: F401  (entries of no alert: read the table)
    from monitor.models import TrailEntry

    with county.connect() as conn:
        amended = conn.execute(select(TrailEntry).where(
            TrailEntry.action == "spot_check_amended")).one()
    assert amended.detail["was"] == {"result": "pass", "by": "m4", "note": "材料齐全"}
    assert amended.detail["reason"] == "复核发现缺件"
    supervised.check(county)


def test_a_monitor_cannot_make_himself_tier_2_by_reloading_the_catalog(county, tmp_path,
                                                                         db_url, monkeypatch):
    """The insider of the issue: m7 (D07) edits the catalog to make himself tier 2 and
    loads it. He gets a pending grant, not the power; he cannot approve it himself, and an
    exemption he then tries is refused."""
    monkeypatch.delenv("MONITOR_DATABASE_URL", raising=False)
    monkeypatch.delenv("MONITOR_CONFIG", raising=False)
    text = CATALOG.replace("{id: m7, name: 赵监察, department: D07, roles: [monitor_l1]",
                           "{id: m7, name: 赵监察, department: D07, roles: [monitor_l2]")
    (tmp_path / "mine.yaml").write_text(text, encoding="utf-8")
    runner = CliRunner()
    loaded = runner.invoke(cli, ["--db", db_url, "ingest", "catalog", str(tmp_path / "mine.yaml")])
    assert loaded.exit_code == 0, loaded.output
    assert "1 grant(s) wait for a tier-2 monitor's approval" in loaded.stderr
    with county.connect() as conn:
        assert conn.scalar(select(User.roles).where(User.id == "m7")) == ["monitor_l1"]
        grant = conn.execute(select(Grant).where(Grant.user_id == "m7",
                                                 Grant.status == "pending")).one()
    own = runner.invoke(cli, ["--db", db_url, "grants", "approve", str(grant.id), "--by", "m7"])
    assert (own.exit_code, own.stderr) == (1, f"Error: m7 may not decide grant {grant.id}: "
                                              "only a tier-2 monitor (monitor_l2) grants powers\n")
    listed = runner.invoke(cli, ["--db", db_url, "grants", "list"])
    assert f"m7" in listed.stdout and "tier2" in listed.stdout
    with pytest.raises(NotAllowed, match="only a tier-2 monitor"):
        exemptions.add(county, ["fast"], "fast", {"department": "D07"}, "自我豁免", "m7",
                       date(2025, 12, 31), LATER, timezone.utc)
    supervised.check(county)


def test_a_store_without_tier_2_bootstraps_its_first_on_the_trail(engine, tmp_path):
    from monitor.models import TrailEntry

    (tmp_path / "catalog.yaml").write_text(CATALOG, encoding="utf-8")
    result = ingest_catalog(engine, tmp_path / "catalog.yaml", LATER, "os:root")
    assert (result.bootstrapped, result.pending) == (["k1", "k2"], [])
    with engine.connect() as conn:
        entries = conn.execute(select(TrailEntry.action, TrailEntry.actor, TrailEntry.detail)
                               .order_by(TrailEntry.seq)).all()
    assert [(a, b) for a, b, _ in entries] == [("catalog_loaded", "os:root"),
                                               ("grants_bootstrapped", "os:root")]
    assert entries[1].detail == {"source": str(tmp_path / "catalog.yaml"), "tier2": ["k1", "k2"]}
    changed = CATALOG.replace("legal_days: 20}", "legal_days: 30}").replace(
        '"13800000007"', '"13800000099"')
    (tmp_path / "catalog.yaml").write_text(changed, encoding="utf-8")
    ingest_catalog(engine, tmp_path / "catalog.yaml", LATER, "os:root")
    with engine.connect() as conn:
        last = conn.execute(select(TrailEntry.detail).order_by(TrailEntry.seq.desc())
                            .limit(1)).scalar_one()
    assert last["changed"] == [{"users": "m7", "fields": {"phone": ["13800000007",
                                                                     "13800000099"]}},
                               {"items": "D04-XK-001", "fields": {"legal_days": [20, 30]}}]
    supervised.check(engine)


def test_the_rule_set_in_force_is_on_the_trail_when_it_changes(engine, config, tmp_path,
                                                              write_events):
    from monitor.models import TrailEntry

    (tmp_path / "catalog.yaml").write_text(CATALOG, encoding="utf-8")
    ingest_catalog(engine, tmp_path / "catalog.yaml", LATER)
    path = tmp_path / "rules.yaml"
    path.write_text(RULES, encoding="utf-8")
    for _ in range(2):  # the same set twice: recorded once
        evaluate(engine, config, RAISED, rules=load_rules([path]))
    path.write_text(RULES.replace("level: red", "level: yellow"), encoding="utf-8")
    evaluate(engine, config, LATER, rules=load_rules([path]))
    evaluate(engine, config, LATER, rules=load_rules([path]), dry_run=True)
    with engine.connect() as conn:
        sets = conn.scalars(select(TrailEntry.detail).where(
            TrailEntry.action == "rules_in_force").order_by(TrailEntry.seq)).all()
    assert len(sets) == 2
    assert (sets[0]["added"], sets[1]["added"], sets[1]["changed"]) == (["fast"], [], ["fast"])
    assert sets[0]["rules"]["fast"]["file"] == "rules.yaml"  # by name: the same wherever run
    assert sets[0]["rules"]["fast"]["version"] != sets[1]["rules"]["fast"]["version"]


def test_migration_0015_on_a_store_with_data_takes_a_baseline(empty_db_url, tmp_path):
    """A store from before the state trail: its rows are taken as they are, once, on the
    trail (baseline), and checked from there; a fresh store needs none."""
    from alembic import command

    from monitor.catalog import load_catalog
    from monitor.db import _alembic_config, create_store_engine, open_store
    from monitor.models import Department, Item

    (tmp_path / "catalog.yaml").write_text(CATALOG, encoding="utf-8")
    data = load_catalog(tmp_path / "catalog.yaml")
    old = create_store_engine(empty_db_url)
    with old.begin() as conn:
        command.upgrade(_alembic_config(conn), "0014")  # the revision before 0015
        for model, rows in ((Department, data.departments), (User, data.users),
                            (Item, data.items)):
            # the table as it was at that revision: later migrations add columns
            then = sa.Table(model.__tablename__, sa.MetaData(), autoload_with=conn).c
            table = sa.Table(model.__tablename__, sa.MetaData(),
                             *(c._copy() for c in model.__table__.c if c.name in then))
            conn.execute(insert(table), [{k: v for k, v in r.items() if k in then}
                                         for r in rows])
    old.dispose()
    engine = open_store(empty_db_url)
    try:
        with engine.connect() as conn:
            assert conn.scalar(select(TrailHead.state_since)) is None
        with pytest.raises(StateMismatch, match="users #k1 is not on the trail"):
            supervised.check(engine)
        assert supervised.ensure_baseline(engine, LATER) == len(data.users)
        supervised.check(engine)
        with engine.connect() as conn:
            assert conn.scalar(select(TrailHead.state_since)) == 0
    finally:
        engine.dispose()
