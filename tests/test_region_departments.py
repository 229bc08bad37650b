"""Findings about a department per county (issue 21 item 1, migration 0033): two counties
of one store share the department codes D04 and D07, each with its own catalog, events
and treasury receipts. ``volume_drop``, ``fee_reconciliation`` and ``ranking_last`` judge
each county's department on that county's figures, and each finding's alert is its
county's — although rule and subject (``D04|2025-09``) are the same in both."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from cli import cli
from conftest import event
from alembic import command
from sqlalchemy import inspect, text

from monitor.db import _alembic_config, create_store_engine
from monitor.models import Alert, AlertChange, Receipt

A, B = "330102", "330106"
AS_OF = "2025-10-05T09:00:00+08:00"  # September is over: the month judged

RULES = """\
rules:
  - id: volume-drop
    kind: volume_drop
    level: red
    params: {baseline: trailing, trailing_months: 1, lookback_months: 1, min_baseline: 1}
  - id: fee-reconciliation
    kind: fee_reconciliation
    level: warning
  - id: ranking-last
    kind: ranking_last
    level: yellow
    params: {months: 1, min_departments: 2}
"""


def _catalog(prefix: str) -> str:
    return f"""\
departments:
  - {{code: D04, name: 应急管理局}}
  - {{code: D07, name: 城市管理局}}
users:
  - {{id: {prefix}1, name: 张三, department: D04, roles: [clerk], phone: "13800000001"}}
  - {{id: {prefix}2, name: 李四, department: D07, roles: [clerk], phone: "13800000002"}}
  - {{id: {prefix}3, name: 王五, department: D04, roles: [monitor_l1], phone: "13800000003"}}
items:
  - {{code: D04-XK-001, name: 危险化学品安全生产许可, department: D04, category: license,
     promised_days: 10, legal_days: 20, fee: 200}}
  - {{code: D07-CF-001, name: 违反城市市容管理规定的处罚, department: D07, category: penalty,
     promised_days: 5, legal_days: 5}}
"""


# acceptances in August and September per county and department: A's D04 falls 3 → 1,
# B's D04 4 → 1, B's D07 3 → 1, A's D07 rises 2 → 3 — summed over both counties, as a
# store keyed by code alone counted them, D04 falls 7 → 2 and D07 5 → 4
ACCEPTED = {(A, "D04"): (3, 1), (B, "D04"): (4, 1), (A, "D07"): (2, 3), (B, "D07"): (3, 1)}
# September's online payments and the treasury's receipts: A's D04 and B's D07 agree, A's
# D07 remitted 10 of 50, B's D04 received 300 against 100 online
PAID = {(A, "D04"): "100.00", (B, "D04"): "100.00", (A, "D07"): "50.00", (B, "D07"): "40.00"}
RECEIVED = {(A, "D04"): "100.00", (B, "D04"): "300.00", (A, "D07"): "10.00", (B, "D07"): "40.00"}


def _events(region: str, prefix: str) -> list[dict]:
    rows = []
    for dept, item in (("D04", "D04-XK-001"), ("D07", "D07-CF-001")):
        actor = f"{prefix}1" if dept == "D04" else f"{prefix}2"
        common = dict(item_code=item, department=dept, actor=actor)
        for month, n in zip(("2025-08", "2025-09"), ACCEPTED[region, dept]):
            rows += [event(f"{prefix}{dept}{month}a{k}", f"{prefix}{dept}{month}c{k}",
                           occurred_at=f"{month}-1{k} 09:00", **common) for k in range(n)]
        case = f"{prefix}{dept}-pay"
        rows.append(event(f"{case}p", case, "fee_paid", "2025-09-20 10:00",
                          amount=PAID[region, dept], channel="online", **common))
    return rows


@pytest.fixture
def store(db_url, tmp_path, monkeypatch, write_events):
    return _store(db_url, tmp_path, monkeypatch, write_events, (A, B))


def _store(db_url, tmp_path, monkeypatch, write_events, regions):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MONITOR_DATABASE_URL", raising=False)
    (tmp_path / "rules").mkdir()
    (tmp_path / "rules" / "departments.yaml").write_text(RULES, encoding="utf-8")
    (tmp_path / "config.yaml").write_text(f"region: {A}\nrules_dir: rules\n", encoding="utf-8")
    runner = CliRunner()

    def run(*args, url=db_url, ok=(0, 3)):
        result = runner.invoke(cli, ["--db", url, *map(str, args)])
        assert result.exit_code in ok, result.output
        return result

    for region, prefix in ((A, "a"), (B, "b")):
        if region not in regions:
            continue
        (tmp_path / f"{prefix}.yaml").write_text(_catalog(prefix), encoding="utf-8")
        run("ingest", "catalog", "--region", region, f"{prefix}.yaml")
        run("ingest", "events", "--region", region,
            write_events(_events(region, prefix), f"{prefix}.csv"))
        receipts = tmp_path / f"receipts-{prefix}.csv"
        receipts.write_text("department,period,amount\n" + "".join(
            f"{dept},2025-09,{RECEIVED[region, dept]}\n" for dept in ("D04", "D07")),
            encoding="utf-8")
        run("ingest", "receipts", "--region", region, receipts)
    return run


def _alerts(url: str) -> dict[tuple[str, str, str], dict]:
    engine = create_store_engine(url)
    with engine.connect() as conn:
        rows = conn.execute(select(Alert.region, Alert.rule_id, Alert.subject,
                                   Alert.evidence, Alert.assigned_to)).all()
    engine.dispose()
    return {(r.region, r.rule_id, r.subject): dict(r.evidence, assigned_to=r.assigned_to)
            for r in rows}


def test_receipts_are_each_countys_own_under_the_same_codes(store, db_url):
    engine = create_store_engine(db_url)
    with engine.connect() as conn:
        rows = sorted(conn.execute(select(Receipt.region, Receipt.department,
                                          Receipt.amount)).tuples().all())
    engine.dispose()
    assert [(r, d, str(a)) for r, d, a in rows] == [
        (A, "D04", "100.00"), (A, "D07", "10.00"), (B, "D04", "300.00"), (B, "D07", "40.00")]
    # a reload of B's figures replaces B's row, not A's
    store("ingest", "receipts", "--region", B, _one("D04", "250.00"))
    engine = create_store_engine(db_url)
    with engine.connect() as conn:
        got = dict(((r, d), str(a)) for r, d, a in conn.execute(
            select(Receipt.region, Receipt.department, Receipt.amount)))
    engine.dispose()
    assert (got[A, "D04"], got[B, "D04"]) == ("100.00", "250.00")


def _one(dept: str, amount: str) -> Path:
    path = Path("receipts-one.csv")  # in the test's folder (the fixture's chdir)
    path.write_text(f"department,period,amount\n{dept},2025-09,{amount}\n", encoding="utf-8")
    return path


def _judged_per_county(found: dict) -> None:
    """What the three kinds must find in the two counties (module's figures)."""
    drops = {(r, s): (e["baseline"], e["current"])
             for (r, rule, s), e in found.items() if rule == "volume-drop"}
    assert drops == {(A, "D04|2025-09"): ("3", "1"), (B, "D04|2025-09"): ("4", "1"),
                     (B, "D07|2025-09"): ("3", "1")}
    fees = {(r, s): (e["online_total"], e["receipts"])
            for (r, rule, s), e in found.items() if rule == "fee-reconciliation"}
    assert fees == {(A, "D07|2025-09"): ("50.00", "10.00"),
                    (B, "D04|2025-09"): ("100.00", "300.00")}
    # A: D04 lost a red card, D07 a warning; B: D04 a red card and a warning, D07 a red
    # card — each county's last is its own D04
    last = {(r, s): e["ranks"]["2025-09"]
            for (r, rule, s), e in found.items() if rule == "ranking-last"}
    assert last == {(A, "D04|2025-09"): {"rank": 2, "of": 2},
                    (B, "D04|2025-09"): {"rank": 2, "of": 2}}
    # each county's D04 finding went to that county's D04 monitor only
    assert {r: e["assigned_to"] for (r, rule, s), e in found.items()
            if rule == "volume-drop" and s.startswith("D04")} == {A: ["a3"], B: ["b3"]}


def test_each_county_gets_its_own_department_findings(store, db_url):
    """Before the alerts' key had a region, the counties' figures were summed by code
    (one D04 finding, 7 → 2), B's receipts replaced A's, and a second county's
    department-month finding could not be stored beside the first's."""
    store("run", "--as-of", AS_OF)
    found = _alerts(db_url)
    _judged_per_county(found)
    # an incremental pass the next day, and a full one, find the same and add nothing
    store("run", "--as-of", "2025-10-06T09:00:00+08:00")
    assert _alerts(db_url).keys() == found.keys()
    store("run", "--full", "--as-of", "2025-10-06T09:00:00+08:00")
    assert _alerts(db_url).keys() == found.keys()


@pytest.mark.slow  # worker processes
def test_jobs_find_the_same_per_county(store, db_url):
    """``run --jobs``: volume_drop (regional) one county per process, the other two in
    the parent — the same findings as the serial run."""
    store("run", "--jobs", "2", "--as-of", AS_OF)
    _judged_per_county(_alerts(db_url))


def test_the_reports_name_each_countys_findings(store, db_url):
    store("run", "--as-of", AS_OF)
    for code, expected in ((A, {"D04", "D07"}), (B, {"D04", "D07"})):
        out = json.loads(store("alerts", "list", "--region", code, "--format", "json").stdout)
        assert {a["department"] for a in out} == expected


def _rows(url: str) -> tuple:
    engine = create_store_engine(url)
    with engine.connect() as conn:
        out = tuple(sorted(tuple(map(str, r)) for r in conn.execute(text(f"SELECT * FROM {t}")))
                    for t in ("alerts", "receipts", "alert_changes"))
    engine.dispose()
    return out


def test_a_single_countys_store_upgrades_without_change_of_meaning(
        db_url, tmp_path, monkeypatch, write_events):
    """Down before 0033 and up again with alerts that other rows point at: every alert,
    receipts row and level change as it was, under the same ids; the trail verifies."""
    run = _store(db_url, tmp_path, monkeypatch, write_events, (A,))
    run("run", "--as-of", AS_OF)
    engine = create_store_engine(db_url)
    with engine.begin() as conn:  # a row pointing at an alert (foreign key)
        first = conn.scalar(select(Alert.id).order_by(Alert.id))
        conn.execute(AlertChange.__table__.insert().values(
            alert_id=first, at=conn.scalar(select(Alert.raised_at).where(Alert.id == first)),
            old_level="yellow", new_level="red", rule_version="1", region=A))
    before = _rows(db_url)
    assert before[0] and before[1] and before[2]
    with engine.begin() as conn:  # down and up in one transaction, as an upgrade runs
        command.downgrade(_alembic_config(conn, A), "-1")
        assert inspect(conn).get_pk_constraint("receipts")["constrained_columns"] == [
            "department", "period"]
        command.upgrade(_alembic_config(conn, A), "head")
    with engine.connect() as conn:
        assert [u["column_names"] for u in inspect(conn).get_unique_constraints("alerts")] \
            == [["dedupe_key", "region"]]
        assert inspect(conn).get_pk_constraint("receipts")["constrained_columns"] == [
            "region", "department", "period"]
    engine.dispose()
    assert _rows(db_url) == before
    run("audit", "verify", ok=(0,))


def test_a_downgrade_is_refused_once_two_counties_share_a_key(store, db_url):
    store("run", "--as-of", AS_OF)
    engine = create_store_engine(db_url)
    with pytest.raises(RuntimeError, match="two regions share a key"):
        with engine.begin() as conn:
            command.downgrade(_alembic_config(conn, A), "-1")
    engine.dispose()


CITY_OFFICE = """\
departments:
  - {code: C00, name: 市监察办}
users:
  - {id: c1, name: 钱市, department: C00, roles: [leader], phone: "13800000021"}
items: []
"""


def test_a_citys_board_lights_each_countys_department_apart(store, db_url, tmp_path,
                                                           monkeypatch):
    """A city office's board: A's D04 and B's D04 are two lights, each with its own
    county's alerts and a link to them; B's D07 is red (its volume fell), A's is not."""
    import re
    from datetime import datetime, timezone

    from argon2 import PasswordHasher
    from fastapi.testclient import TestClient

    from monitor import accounts
    from monitor.config import load_config
    from monitor.web import create_app
    from web_county import clock

    monkeypatch.setattr(accounts, "HASHER", PasswordHasher(time_cost=1, memory_cost=8192,
                                                           parallelism=1))
    accounts._DUMMY.clear()
    store("run", "--as-of", AS_OF)
    (tmp_path / "city.yaml").write_text(CITY_OFFICE, encoding="utf-8")
    store("ingest", "catalog", "--region", "330100", "city.yaml")
    at = datetime(2025, 10, 9, 1, 30, tzinfo=timezone.utc)
    engine = create_store_engine(db_url)
    try:
        accounts.set_password(engine, "c1", "Hangzhou-2025-city", at, "admin:test",
                              must_change=False)
        config = load_config(tmp_path / "config.yaml")
        client = TestClient(create_app(engine, config, clock(at)),
                            base_url="http://testserver", follow_redirects=False)
        client.cookies.set("pm_session", accounts.login(
            engine, "c1", "Hangzhou-2025-city", at, config.web).token)
        page = client.get("/board").text
        lights = {(r, d): (light, href) for href, d, r, light in re.findall(
            r'<a class="light \w+" href="([^"]+)" data-department="(\w+)" '
            r'data-region="(\d+)" data-light="(\w+)"', page)}
        assert {k: v[0] for k, v in lights.items()} == {
            (A, "D04"): "red", (B, "D04"): "red", (A, "D07"): "yellow", (B, "D07"): "red"}
        assert lights[B, "D04"][1] == f"/alerts?department=D04&amp;region={B}"
        # the link lists B's D04 alerts alone: volume drop, fee reconciliation, last place
        ids = {int(i) for i in re.findall(r'<tr data-alert="(\d+)"',
                                           client.get(f"/alerts?department=D04&region={B}").text)}
        with engine.connect() as conn:
            assert ids == set(conn.scalars(select(Alert.id).where(
                Alert.region == B, Alert.department == "D04"))) and len(ids) == 3
    finally:
        engine.dispose()
