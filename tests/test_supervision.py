"""Two-tier supervision: assignment and deadlines, who may do what, the state machine,
and the hash-chained trail that records every transition."""

from __future__ import annotations

from datetime import date, datetime, timezone

import pytest
from click.testing import CliRunner
from sqlalchemy import delete, insert, select, text, update

from cli import cli
from conftest import NOW, event
from monitor import supervision as sv
from monitor.alerts import store_findings
from monitor.catalog import ingest_catalog
from monitor.engine import evaluate
from monitor.errors import InvalidTransition, NotAllowed, NotFound
from monitor.ingest import ingest_events
from monitor.models import Alert, Disposition, SupervisionOrder, TrailEntry
from monitor.rules.finding import Finding
from monitor.rules.loader import load_rules
from monitor.trail import GENESIS, TrailBroken, entry_hash, history
from monitor.trailcheck import verify

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
  - code: D04-XK-001
    name: 危险化学品安全生产许可
    department: D04
    category: license
    promised_days: 10
    legal_days: 20
"""
RAISED = datetime(2025, 9, 30, 8, 0, tzinfo=timezone.utc)   # 16:00 local, eve of National Day
LATER = datetime(2025, 10, 20, 2, 0, tzinfo=timezone.utc)
RULES = "- {id: fast, kind: step_too_fast, level: red}\n"


def raise_one(engine, config, tmp_path, write_events, rules: str = RULES,
              catalog: str = CATALOG) -> int:
    """One step-too-fast alert in D04 (red under RULES), raised as of RAISED; its id."""
    (tmp_path / "catalog.yaml").write_text(catalog, encoding="utf-8")
    ingest_catalog(engine, tmp_path / "catalog.yaml")
    path = write_events([event("a1", "c1", "accept", "2025-09-30 10:00:00"),
                         event("a2", "c1", "survey", "2025-09-30 10:00:58")])
    list(ingest_events(engine, config, [str(path)], NOW))
    (tmp_path / "rules.yaml").write_text(rules, encoding="utf-8")
    [outcome] = evaluate(engine, config, RAISED, rules=load_rules([tmp_path / "rules.yaml"]))
    assert outcome.stored.new == 1
    with engine.connect() as conn:
        return conn.scalar(select(Alert.id))


def told(engine, tmp_path):
    """Deliver the tier-1 SMS of a new alert (to the log sink) as the pass that raised it
    would, so that a test's flush sees only the messages that follow."""
    from monitor.config import NotifyConfig
    from monitor.outbox import flush

    assert flush(engine, NotifyConfig(), tmp_path, RAISED).sent >= 1


@pytest.fixture
def raised(engine, config, tmp_path, write_events):
    return raise_one(engine, config, tmp_path, write_events)


def policy(config, **days):
    return sv.Policy(config.calendar(), config.tz, rule_days=days)


def alert(engine, alert_id):
    with engine.connect() as conn:
        return conn.execute(select(Alert).where(Alert.id == alert_id)).one()


def actions(engine, alert_id):
    return [(e.action, e.actor) for e in history(engine, alert_id)]


def test_a_new_alert_is_tier_1_open_assigned_and_due_in_working_days(engine, raised):
    a = alert(engine, raised)
    assert (a.tier, a.status, a.assigned_to) == (1, "open", ["m4"])
    # 3 working days after 2025-09-30: 1-8 October are National Day, Saturday the 11th is a
    # make-up working day (调休), so 9, 10, 11 October
    assert a.due_on == date(2025, 10, 11)
    [entry] = history(engine, raised)
    assert (entry.action, entry.actor, entry.detail["assigned_to"], entry.detail["due_on"]) == \
        ("raised", "system", ["m4"], "2025-10-11")
    assert verify(engine).entries == 4  # catalog load, bootstrap, rules in force, raised


def test_a_rule_may_set_its_own_handling_days(engine, config, tmp_path, write_events):
    (tmp_path / "rules.yaml").write_text(
        "- {id: fast, kind: step_too_fast, handling_days: 1}\n", encoding="utf-8")
    (tmp_path / "catalog.yaml").write_text(CATALOG, encoding="utf-8")
    ingest_catalog(engine, tmp_path / "catalog.yaml")
    path = write_events([event("a1", "c1", "accept", "2025-09-30 10:00:00"),
                         event("a2", "c1", "survey", "2025-09-30 10:00:58")])
    list(ingest_events(engine, config, [str(path)], NOW))
    evaluate(engine, config, RAISED, rules=load_rules([tmp_path / "rules.yaml"]))
    with engine.connect() as conn:
        assert conn.scalar(select(Alert.due_on)) == date(2025, 10, 9)


def test_level_changes_are_traced_and_chain(engine, config, tmp_path):
    [rule] = _rules(tmp_path, "- {id: od, kind: overdue, message: '案件 {case_id}'}\n")
    finding = Finding("c9", {}, {}, level="warning", case_id="c9", department="D07")
    with engine.begin() as conn:
        store_findings(conn, rule, [finding], RAISED)
    with engine.begin() as conn:
        store_findings(conn, rule, [Finding("c9", {}, {}, level="red", case_id="c9",
                                            department="D07")], LATER)
    with engine.connect() as conn:
        alert_id = conn.scalar(select(Alert.id))
    entries = history(engine, alert_id)
    assert [(e.action, e.detail.get("from"), e.detail.get("to")) for e in entries] == \
        [("raised", None, None), ("level_changed", "warning", "red")]
    assert entries[1].prev_hash == entries[0].hash and entries[0].prev_hash == GENESIS
    assert verify(engine).head == entries[1].hash


def _rules(tmp_path, body):
    path = tmp_path / "rules.yaml"
    path.write_text(body, encoding="utf-8")
    return load_rules([path])


def test_tier_1_resolves_tier_2_orders_rejects_and_confirms(engine, config, raised):
    p = policy(config)
    done = sv.acknowledge(engine, raised, "m4", LATER, "在查")
    assert (done.status, alert(engine, raised).acknowledged_at) == ("acknowledged", LATER)
    sv.resolve(engine, raised, "m4", LATER, "rectified", "已责令补录说明")
    assert (alert(engine, raised).status, alert(engine, raised).disposition) == \
        ("resolved", "rectified")
    # tier 2 may order on any alert: it moves to tier 2, reopened, due anew
    ordered = sv.order(engine, p, raised, "k1", LATER, "请说明 58 秒完成踏勘的原因")
    a = alert(engine, raised)
    assert (a.tier, a.status, a.disposition, a.due_on) == (2, "open", None, date(2025, 10, 23))
    assert ordered.order_id and ordered.due_on == date(2025, 10, 23)
    sv.resolve(engine, raised, "m4", LATER, "explained", "纸质材料先行审核，事后录入")
    rejected = sv.reject(engine, p, raised, "k2", LATER, "未附纸质审核记录")
    assert (rejected.status, alert(engine, raised).status) == ("open", "open")
    sv.resolve(engine, raised, "m4", LATER, "rectified", "已补附纸质审核记录")
    with pytest.raises(InvalidTransition):
        sv.acknowledge(engine, raised, "m4", LATER)
    sv.confirm(engine, raised, "k1", LATER)
    assert alert(engine, raised).status == "confirmed"
    assert actions(engine, raised) == [
        ("raised", "system"), ("acknowledged", "m4"), ("resolved", "m4"),
        ("order_issued", "k1"), ("resolved", "m4"), ("rejected", "k2"),
        ("order_issued", "k2"), ("resolved", "m4"), ("confirmed", "k1")]
    with engine.connect() as conn:
        verdicts = conn.execute(select(Disposition.kind, Disposition.verdict)
                                .order_by(Disposition.id)).all()
        orders = conn.execute(select(SupervisionOrder.reason, SupervisionOrder.to_users)
                              .order_by(SupervisionOrder.id)).all()
    assert verdicts == [("rectified", None), ("explained", "rejected"), ("rectified", "confirmed")]
    assert orders == [("manual", ["m4"]), ("rejected", ["m4"])]
    assert verify(engine).entries == 12  # catalog (2), rules in force, nine of the alert


def test_the_monitor_who_resolved_may_not_confirm(engine, config, raised):
    sv.order(engine, policy(config), raised, "k1", LATER)
    sv.resolve(engine, raised, "k1", LATER, "false_positive", "核实为系统时钟错误")
    with pytest.raises(NotAllowed) as err:
        sv.confirm(engine, raised, "k1", LATER)
    assert str(err.value) == ("k1 may not confirm alert 1: k1 recorded its disposition; "
                              "another tier-2 monitor must review it")


@pytest.fixture
def run(db_url, raised, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MONITOR_DATABASE_URL", raising=False)
    monkeypatch.delenv("MONITOR_CONFIG", raising=False)
    runner = CliRunner()
    return lambda *args: runner.invoke(cli, ["--db", db_url, *map(str, args)])


@pytest.mark.parametrize("args, message", [
    (["ack", 1, "--by", "nobody"],
     "unknown user 'nobody': --by takes a user id from the catalog"),
    (["ack", 1, "--by", "u1"],
     "u1 (张三) may not acknowledge alert 1: not a monitor (monitor_l1 or monitor_l2)"),
    (["ack", 1, "--by", "m7"], "m7 (赵监察) may not acknowledge alert 1: it belongs to "
                               "department D04, m7 monitors D07"),
    (["ack", 42, "--by", "m4"], "no alert with id 42"),
    (["confirm", 1, "--by", "k1"], "cannot confirm alert 1: it is not escalated to tier 2; "
                                   "only a resolved tier-2 alert, or a dismissal (false_positive), awaits review"),
    (["confirm", 1, "--by", "m4"],
     "m4 (王监察) may not confirm alert 1: only a tier-2 monitor (monitor_l2) may"),
    (["order", 1, "--by", "m4"],
     "m4 (王监察) may not issue an order on alert 1: only a tier-2 monitor (monitor_l2) may"),
    (["reject", 1, "--by", "k1", "--note", "x"],
     "cannot reject alert 1: it is not escalated to tier 2; "
     "only a resolved tier-2 alert, or a dismissal (false_positive), awaits review"),
])
def test_every_refusal_is_one_line(run, engine, args, message):
    result = run("alerts", *args)
    assert (result.exit_code, result.stderr) == (1, f"Error: {message}\n")
    assert result.stdout == ""
    assert [e.action for e in history(engine, 1)] == ["raised"]  # nothing changed
    assert alert(engine, 1).status == "open"


@pytest.mark.parametrize("args, message", [  # a missing or misspelt option: a usage error
    (["resolve", 1, "--by", "m4", "--disposition", "rectified"],
     "cannot resolve alert 1 without a note (--note): say what was done or why"),
    (["resolve", 1, "--by", "m4", "--disposition", "rectified", "--note", "  "],
     "cannot resolve alert 1 without a note (--note): say what was done or why"),
    (["resolve", 1, "--by", "m4", "--note", "done"],
     "cannot resolve alert 1 without a disposition "
     "(--disposition rectified|explained|false_positive)"),
    (["resolve", 1, "--by", "m4", "--note", "x", "--disposition", "rectifed"],
     "unknown disposition 'rectifed' (did you mean 'rectified'?): "
     "use --disposition rectified|explained|false_positive"),
])
def test_a_missing_note_or_disposition_is_a_usage_error(run, engine, args, message):
    result = run("alerts", *args)
    assert (result.exit_code, result.stderr) == (2, f"Error: {message}\n")
    assert [e.action for e in history(engine, 1)] == ["raised"]  # nothing changed


def test_acknowledging_twice_is_refused(run):
    assert run("alerts", "ack", 1, "--by", "m4").stdout.startswith("alert 1: acknowledged")
    again = run("alerts", "ack", 1, "--by", "m4")
    assert (again.exit_code, again.stderr) == \
        (1, "Error: cannot acknowledge alert 1: it is acknowledged, not open\n")


def test_list_by_tier_and_overdue_and_audit_show(run, engine, config):
    assert run("alerts", "list", "--tier", "2").stderr == "no alerts\n"
    overdue = run("alerts", "list", "--overdue", "--as-of", "2025-10-12")
    assert overdue.stdout.startswith("     1  red     T1 open         D04    2025-10-11 fast")
    assert run("alerts", "list", "--overdue", "--as-of", "2025-10-11").stderr == "no alerts\n"
    assert run("alerts", "order", 1, "--by", "k1", "--note", "请于三日内处理").exit_code == 0
    assert run("alerts", "list", "--tier", "2").stdout.startswith("     1  red     T2 open ")
    shown = run("audit", "show", 1).stdout.splitlines()
    assert [line.split()[3] for line in shown] == ["raised", "order_issued"]
    assert "note=请于三日内处理" in shown[1] and "to=m4" in shown[1]
    assert run("audit", "show", 7).stderr == "Error: no alert with id 7\n"


def _tamper_edit(conn):
    conn.execute(update(TrailEntry).where(TrailEntry.seq == 5)
                 .values(detail={"tier": 1, "note": "改过"}))


def _tamper_delete(conn):
    conn.execute(delete(TrailEntry).where(TrailEntry.seq == 5))


def _tamper_delete_last(conn):
    conn.execute(delete(TrailEntry).where(TrailEntry.seq == 6))


def last_region(conn):
    """The chain the forger writes into: the store's own (one county, one chain)."""
    return conn.scalar(select(TrailEntry.region).limit(1))


def _tamper_insert(conn):
    """A forged entry in the middle: a correct hash over a made-up predecessor."""
    prev = "f" * 64
    at = datetime(2025, 10, 9, tzinfo=timezone.utc)
    conn.execute(update(TrailEntry).where(TrailEntry.seq == 6).values(seq=7))
    conn.execute(insert(TrailEntry).values(
        region=last_region(conn), seq=6, at=at, alert_id=1, action="resolved", actor="m4", detail={}, prev_hash=prev,
        hash=entry_hash(6, at, 1, "resolved", "m4", {}, prev)))


def _tamper_append(conn):
    """A well-formed entry appended after the head, without moving the head."""
    last = conn.execute(select(TrailEntry).order_by(TrailEntry.seq.desc()).limit(1)).one()
    at = datetime(2025, 10, 9, tzinfo=timezone.utc)
    conn.execute(insert(TrailEntry).values(
        region=last.region, seq=7, at=at, alert_id=1, action="confirmed", actor="k1", detail={},
        prev_hash=last.hash, hash=entry_hash(7, at, 1, "confirmed", "k1", {}, last.hash)))


@pytest.mark.parametrize("tamper, message", [
    (_tamper_edit, "trail entry #5 (acknowledged, alert 1) was changed: its content no "
                   "longer matches its hash"),
    (_tamper_delete, "trail entry #5 is missing (the next one is #6): deleted behind the "
                     "program's back"),
    (_tamper_delete_last, "the trail ends at entry #5 but its head records entry #6: the "
                          "newest entries were deleted or added behind the program's back"),
    (_tamper_insert, "trail entry #6 (resolved, alert 1) does not chain to entry #5: "
                     "inserted or rewritten behind the program's back"),
    (_tamper_append, "the trail ends at entry #7 but its head records entry #6: the "
                     "newest entries were deleted or added behind the program's back"),
])
def test_audit_verify_finds_any_change_made_with_plain_sql(run, engine, tamper, message):
    run("alerts", "ack", 1, "--by", "m4", "--note", "在查")
    run("alerts", "resolve", 1, "--by", "m4", "--disposition", "rectified", "--note", "已整改")
    ok = run("audit", "verify")
    assert ok.exit_code == 0 and ok.stdout.startswith("trail intact: 6 entries · head ")
    with engine.begin() as conn:
        tamper(conn)
    broken = run("audit", "verify")
    assert (broken.exit_code, broken.stderr) == (1, f"Error: {message}\n")
    with pytest.raises(TrailBroken):
        verify(engine)


def test_plain_sql_edit_of_the_raw_json_is_caught(run, engine):
    """Even a change the JSON layer would hide (whitespace aside) changes the hash."""
    with engine.begin() as conn:
        conn.execute(text("UPDATE trail SET actor = 'm7' WHERE seq = 1"))
    assert run("audit", "verify").exit_code == 1


def test_unknown_user_and_alert_at_the_function_level(engine, raised):
    with pytest.raises(NotFound):
        sv.acknowledge(engine, raised, "zz", LATER)
    with pytest.raises(NotFound):
        sv.acknowledge(engine, 99, "m4", LATER)
