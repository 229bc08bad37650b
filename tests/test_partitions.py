"""Events partitioned by county on PostgreSQL (issue 21 items 4 and 5,
``permit-monitor db partition``, monitor/partitions.py): two counties of one store, each
in its own partition, ingest, evaluate (incrementally and in full) and verify as a store
with one table does; a conversion keeps every row and id and can be undone; a county's
partition comes with its first catalog or events; and every statement a county's worker
runs reads that county's partition only. SQLite has no partitions: skipped there."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import event as sa_event, text

from cli import cli
from conftest import PG_URL, database_copy, event, migrated_template
from monitor import partitions
from monitor.db import create_store_engine

pg_only = pytest.mark.skipif(not PG_URL, reason="partitions are PostgreSQL's "
                                "(MONITOR_TEST_DATABASE_URL)")

RULES = Path(__file__).resolve().parent.parent / "rules"
A, B = "330102", "330106"
FIRST, SECOND = "2025-09-08T09:00:00+08:00", "2025-09-20T09:00:00+08:00"

CATALOG = """\
departments:
  - {{code: D04, name: 应急管理局}}
users:
  - {{id: {p}1, name: 张三, department: D04, roles: [clerk], phone: "13800000001"}}
  - {{id: {p}2, name: 李四, department: D04, roles: [chief, deputy], phone: "13800000002"}}
items:
  - code: D04-XK-001
    name: 危险化学品安全生产许可
    department: D04
    category: license
    promised_days: {days}
    legal_days: 20
    fee: 0
    min_minutes: {{survey: {minutes}}}
"""


def _cases(p: str, day: int) -> list[dict]:
    """Cases of a county accepted on September ``day``: one surveyed 60 minutes later, one
    decided by the clerk who accepted it, one left open."""
    at = f"2025-09-{day:02d}"
    return [event(f"{p}{day}e1", f"{p}{day}c1", occurred_at=f"{at} 09:00", actor=f"{p}1"),
            event(f"{p}{day}e2", f"{p}{day}c1", "survey", f"{at} 10:00", actor=f"{p}1"),
            event(f"{p}{day}e3", f"{p}{day}c2", occurred_at=f"{at} 09:30", actor=f"{p}1"),
            event(f"{p}{day}e4", f"{p}{day}c2", "decide", f"{at} 15:00", actor=f"{p}1"),
            event(f"{p}{day}e5", f"{p}{day}c3", occurred_at=f"{at} 11:00", actor=f"{p}2")]


@pytest.fixture
def county_store(tmp_path, monkeypatch, write_events):
    """store(url, partition_at) → run: catalog A, ``db partition`` after it (when
    ``partition_at`` is 'catalog'), catalog B, then two rounds of both counties' events,
    each followed by a run."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MONITOR_DATABASE_URL", raising=False)
    (tmp_path / "config.yaml").write_text(f"region: {A}\nrules_dir: {RULES}\n",
                                          encoding="utf-8")
    (tmp_path / "a.yaml").write_text(CATALOG.format(p="a", days=5, minutes=30), "utf-8")
    (tmp_path / "b.yaml").write_text(CATALOG.format(p="b", days=20, minutes=120), "utf-8")
    runner = CliRunner()

    def build(url: str, partition: bool):
        def run(*args, ok=(0, 3)):
            result = runner.invoke(cli, ["--db", url, *map(str, args)])
            assert result.exit_code in ok, result.output
            return result

        run("ingest", "catalog", "--region", A, "a.yaml")
        if partition:
            run("db", "partition")
        run("ingest", "catalog", "--region", B, "b.yaml")
        for day, as_of in ((1, FIRST), (10, SECOND)):
            for region, p in ((A, "a"), (B, "b")):
                run("ingest", "events", "--region", region,
                    write_events(_cases(p, day), f"{p}{day}.csv"))
            run("run", "--as-of", as_of)
        return run

    return build


@pytest.fixture
def db_url(db_url):
    """The suite's ``db_url``, its events one table (the suite may run on partitioned
    templates: $MONITOR_TEST_PARTITIONED)."""
    _unpartitioned(db_url)
    return db_url


def _unpartitioned(url: str) -> None:
    engine = create_store_engine(url)
    with engine.begin() as conn:
        if partitions.is_partitioned(conn):
            partitions.unpartition_in(conn)
    engine.dispose()


def _all(url: str, query: str) -> list[tuple]:
    engine = create_store_engine(url)
    with engine.connect() as conn:
        rows = sorted(tuple(r) for r in conn.execute(text(query)))
    engine.dispose()
    return rows


def _events(url: str) -> list[tuple]:
    return _all(url, "SELECT id, event_id, region, content_hash, run_id FROM events")


def _alerts(url: str) -> list[tuple]:
    return _all(url, "SELECT region, rule_id, subject, case_id, level, status FROM alerts")


def _where(url: str) -> list[tuple]:
    """(partition, region, rows) of the events."""
    return _all(url, "SELECT tableoid::regclass::text, region, count(*) FROM events "
                     "GROUP BY 1, 2")


@pg_only
def test_a_partitioned_store_works_as_one_table_does(county_store, db_url, tmp_path):
    """Ingest, incremental runs, a full run and ``audit verify`` on a store partitioned
    after its first county's catalog agree, row for row and id for id, with the same
    steps on a store of one table; each county's events are in its own partition."""
    run = county_store(db_url, partition=True)
    assert _where(db_url) == [("events_330102", A, 10), ("events_330106", B, 10)]
    with database_copy(migrated_template(), tmp_path / "plain") as plain:
        _unpartitioned(plain)
        county_store(plain, partition=False)
        assert _events(db_url) == _events(plain)
        alerts = _alerts(db_url)
        assert alerts == _alerts(plain)
    # each county's own limits: 60 minutes is too fast under B's 120 only
    assert {(r, c) for r, rule, _, c, *_ in alerts if rule == "step-too-fast"} == {
        (B, "b1c1"), (B, "b10c1")}
    assert {r for r, rule, *_ in alerts if rule == "same-actor-roles"} == {A, B}
    run("run", "--as-of", SECOND, "--full")
    assert _alerts(db_url) == alerts  # the incremental passes found what a full pass finds
    assert run("audit", "verify").exit_code == 0
    # ingesting the same files again stores nothing new
    before = _events(db_url)
    out = run("ingest", "events", "--region", A, "a10.csv").output
    assert "duplicates 5" in out.replace(",", "") or "5 duplicates" in out, out
    assert _events(db_url) == before


@pg_only
def test_a_store_is_converted_and_back_with_every_row_and_id(county_store, db_url):
    run = county_store(db_url, partition=False)
    rows, alerts = _events(db_url), _alerts(db_url)
    out = run("db", "partition").output
    assert "20 rows in 3 partitions (events_330102, events_330106, events_default)" in out
    assert _events(db_url) == rows
    assert _where(db_url) == [("events_330102", A, 10), ("events_330106", B, 10)]
    assert "partitioned already" in run("db", "partition", ok=(1,)).output
    assert run("audit", "verify").exit_code == 0
    run("run", "--as-of", SECOND, "--full")
    assert _alerts(db_url) == alerts
    # new events take ids after the converted ones: the sequence came along
    engine = create_store_engine(db_url)
    with engine.begin() as conn:
        assert partitions.is_partitioned(conn)
        new = conn.execute(text("INSERT INTO events (event_id, case_id, item_code, "
                                "department, step, occurred_at, content_hash, region) VALUES "
                                "('x', 'xc', 'D04-XK-001', 'D04', 'accept', now(), 'h', :r) "
                                "RETURNING id"), {"r": A}).scalar_one()
        assert new > max(r[0] for r in rows)
        conn.rollback()
    engine.dispose()
    assert "events in one table again: 20 rows" in run("db", "unpartition").output
    assert _events(db_url) == rows
    assert _where(db_url) == [("events", A, 10), ("events", B, 10)]
    assert run("audit", "verify").exit_code == 0


@pg_only
def test_a_county_gets_its_partition_with_its_first_rows(db_url, tmp_path, monkeypatch,
                                                         write_events):
    """Events of a county with no partition yet wait in the DEFAULT partition (nothing is
    refused); its first catalog or events give it its partition and move them there."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "config.yaml").write_text(f"region: {A}\n", encoding="utf-8")
    runner = CliRunner()
    assert runner.invoke(cli, ["--db", db_url, "db", "partition"]).exit_code == 0
    engine = create_store_engine(db_url)
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO events (event_id, case_id, item_code, department, "
                          "step, occurred_at, content_hash, region) VALUES "
                          "('early', 'c0', 'D04-XK-001', 'D04', 'accept', now(), 'h', :r)"),
                     {"r": B})
    assert _where(db_url) == [("events_default", B, 1)]
    with engine.begin() as conn:
        assert partitions.ensure(conn, [B, "bad"])  # a code not of six digits: left alone
    assert _where(db_url) == [("events_330106", B, 1)]
    (tmp_path / "a.yaml").write_text(CATALOG.format(p="a", days=5, minutes=30), "utf-8")
    assert runner.invoke(cli, ["--db", db_url, "ingest", "catalog", "a.yaml"]).exit_code == 0
    assert _partitions(db_url) == ["events_330102", "events_330106", "events_default"]
    with engine.begin() as conn:  # as if A's catalog had come before the partitions
        conn.execute(text("ALTER TABLE events DETACH PARTITION events_330102"))
        conn.execute(text("DROP TABLE events_330102"))
    result = runner.invoke(cli, ["--db", db_url, "ingest", "events", "--region", A,
                                 str(write_events(_cases("a", 1), "a.csv"))])
    assert result.exit_code in (0, 3), result.output
    assert _where(db_url) == [("events_330102", A, 5), ("events_330106", B, 1)]
    engine.dispose()
    assert _partitions(db_url) == ["events_330102", "events_330106", "events_default"]


def _partitions(url: str) -> list[str]:
    return [r[0] for r in _all(url, "SELECT c.relname FROM pg_inherits i JOIN pg_class c "
                                    "ON c.oid = i.inhrelid WHERE i.inhparent = 'events'::regclass")]


@pg_only
def test_an_event_id_is_unique_within_its_county(county_store, db_url, tmp_path,
                                                 write_events):
    """Partitioned, the events are unique by (event_id, region), as a distributed table's
    keys must include the region: two counties' systems may use the same id. One table
    keys the id store-wide, so the way back is refused while two counties share one."""
    run = county_store(db_url, partition=True)
    same = [event("shared-1", "bx1", occurred_at="2025-09-11 09:00", actor="b1")]
    out = run("ingest", "events", "--region", B, write_events(same, "b-shared.csv")).output
    mine = [event("shared-1", "ax1", occurred_at="2025-09-11 09:00", actor="a1")]
    run("ingest", "events", "--region", A, write_events(mine, "a-shared.csv"))
    assert _all(db_url, "SELECT region, case_id FROM events WHERE event_id = 'shared-1'") == [
        (A, "ax1"), (B, "bx1")], out
    result = run("db", "unpartition", ok=(1,))
    assert "'shared-1' is stored for 330102, 330106" in result.output
    assert partitions.TABLE in {r[0].split("_")[0] for r in _where(db_url)}
    assert _where(db_url)[0][0] == "events_330102"  # nothing changed


def test_sqlite_stores_are_refused_plainly(tmp_path):
    url = f"sqlite:///{tmp_path / 's.db'}"
    assert CliRunner().invoke(cli, ["--db", url, "init"]).exit_code == 0
    result = CliRunner().invoke(cli, ["--db", url, "db", "partition"])
    assert result.exit_code == 1
    assert result.output.strip().endswith("only a PostgreSQL store's events are partitioned "
                                          "(this store is sqlite)")


def _plans(url: str, region: str, as_of: str) -> dict[str, list[tuple[str, set[str]]]]:
    """Each rule id → (statement, the events' partitions its plan reads) for every
    statement reading the events that a worker of ``region`` runs (its connections see the
    county through the view monitor/parallel.py makes), each EXPLAINed as it is sent."""
    import yaml

    from monitor.config import load_config
    from monitor.engine import evaluate
    from monitor.parallel import regional_engine
    from datetime import datetime

    engine = regional_engine(url, region)
    found: list[tuple[str, set[str]]] = []

    @sa_event.listens_for(engine, "before_cursor_execute")
    def _explain(conn, cursor, statement, parameters, _context, executemany):
        head = statement.lstrip().upper()
        if executemany or "EVENTS" not in head or not head.startswith(("SELECT", "WITH")):
            return
        with conn.connection.driver_connection.cursor() as cur:
            cur.execute("EXPLAIN (FORMAT JSON) " + statement, parameters)
            plan = cur.fetchone()[0]
        found.append((" ".join(statement.split())[:120], _relations(plan[0]["Plan"])))

    config = load_config("config.yaml")
    out = {}
    for path in sorted(RULES.glob("*.yaml")):
        for rule in yaml.safe_load(path.read_text(encoding="utf-8"))["rules"]:
            found.clear()
            evaluate(engine, config, datetime.fromisoformat(as_of), rule_ids=(rule["id"],), full=True)
            out[rule["id"]] = list(found)
    engine.dispose()
    return out


def _relations(node: dict) -> set[str]:
    names = {node["Relation Name"]} if "Relation Name" in node else set()
    for child in node.get("Plans", ()):
        names |= _relations(child)
    return names


@pg_only
def test_a_countys_statements_read_its_partition_only(county_store, db_url):
    """Every statement a county's worker runs that reads the events is planned over that
    county's partition alone (pruned when planned: the view names the region), for every
    shipped rule — the native analogue of a Citus router query."""
    county_store(db_url, partition=True)
    plans = _plans(db_url, A, SECOND)
    read = [(rule, sql, names) for rule, found in plans.items() for sql, names in found]
    assert len(read) > 20 and {rule for rule, *_ in read} >= {"step-too-fast", "overdue"}
    stray = [(rule, sql, names) for rule, sql, names in read
             if {n for n in names if n.startswith("events")} - {"events_330102"}]
    assert not stray, stray
    if os.environ.get("PM_SHOW_PLANS"):  # docs/scale.md's table
        for rule, found in plans.items():
            parts = sorted({n for _, names in found for n in names if n.startswith("events")})
            print(f"| {rule} | {len(found)} | {', '.join(parts) or '—'} |")
