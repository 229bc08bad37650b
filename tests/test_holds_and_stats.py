"""Holds placed by action: halt rules and released by a monitor; the supervision figures
per department and period for the report."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, timedelta

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from cli import cli
from monitor import supervision as sv
from monitor.config import NotifyConfig, SinkSpec
from monitor.errors import InvalidTransition, NotAllowed
from monitor.escalation import escalate
from monitor.holds import list_holds, release
from monitor.models import OutboxMessage
from monitor.stats import supervision_counts
from monitor.trail import history
from monitor.trailcheck import verify
from test_escalation import local
from test_supervision import raise_one

HALT = "- {id: fast, kind: step_too_fast, level: red, action: halt}\n"


def workflow_config(config):
    return replace(config, notify=NotifyConfig(
        sinks={"log": SinkSpec("log", "log")}, channels={"sms": "log", "workflow": "log"}))


def test_a_halting_rule_holds_the_case_and_a_monitor_releases_it(engine, config, tmp_path,
                                                                  write_events):
    config = workflow_config(config)
    alert_id = raise_one(engine, config, tmp_path, write_events, rules=HALT)
    [hold] = list_holds(engine)
    assert (hold.case_id, hold.alert_id, hold.status, hold.department) == \
        ("c1", alert_id, "held", "D04")
    policy = sv.policy_for(config)
    with pytest.raises(NotAllowed):
        release(engine, policy, hold.id, "m7", local("2025-10-09 10:00"), "不是本部门")
    with pytest.raises(InvalidTransition, match="without a note"):
        release(engine, policy, hold.id, "m4", local("2025-10-09 10:00"), None)
    done = release(engine, policy, hold.id, "m4", local("2025-10-09 10:00"), "已补正，恢复办理")
    assert (done.status, done.released_by) == ("released", "m4")
    assert list(list_holds(engine)) == []
    with pytest.raises(InvalidTransition, match="it was released by m4"):
        release(engine, policy, hold.id, "k1", local("2025-10-09 11:00"), "再次")
    assert [(e.action, e.actor) for e in history(engine, alert_id)] == \
        [("raised", "system"), ("held", "system"), ("released", "m4")]
    with engine.connect() as conn:
        sent = conn.execute(select(OutboxMessage.channel, OutboxMessage.address,
                                   OutboxMessage.subject).order_by(OutboxMessage.id)).all()
    # the tier-1 monitor is told of the new alert at once, in the same transaction
    assert sent == [("workflow", "c1", "hold"), ("sms", "13800000004", "raised"),
                    ("workflow", "c1", "release")]
    verify(engine)


def test_no_workflow_sink_no_workflow_messages(engine, config, tmp_path, write_events):
    raise_one(engine, config, tmp_path, write_events, rules=HALT)
    assert len(list(list_holds(engine))) == 1
    with engine.connect() as conn:  # only the tier-1 monitor's SMS of the new alert
        assert conn.scalars(select(OutboxMessage.channel)).all() == ["sms"]


def test_holds_cli(db_url, engine, config, tmp_path, write_events, monkeypatch):
    raise_one(engine, config, tmp_path, write_events, rules=HALT)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "rules").mkdir()
    run = lambda *a: CliRunner().invoke(cli, ["--db", db_url, *map(str, a)])  # noqa: E731
    listed = run("holds", "list")
    assert listed.stdout.startswith("     1  held     D04    c1                 alert 1 ")
    assert run("holds", "release", 1, "--by", "m4").stderr == \
        "Error: cannot release hold 1 without a note (--note): say what was done or why\n"
    assert run("holds", "release", 5, "--by", "m4", "--note", "x").stderr == \
        "Error: no hold with id 5\n"
    ok = run("holds", "release", 1, "--by", "m4", "--note", "已补正")
    assert (ok.exit_code, ok.stdout) == (0, "hold 1: released · case c1 · alert 1\n")
    assert run("holds", "list").stderr == "no holds\n"
    assert "released by m4: 已补正" in run("holds", "list", "--all").stdout


def test_supervision_counts_per_department_and_month(engine, config, tmp_path, write_events):
    alert_id = raise_one(engine, config, tmp_path, write_events)      # raised 30 Sep 16:00
    policy = sv.Policy(config.calendar(), config.tz)
    escalate(engine, policy, local("2025-10-12 00:30"))               # order 1, due 15 Oct
    for day in ("10-16", "10-17", "10-20"):
        escalate(engine, policy, local(f"2025-{day} 09:00"))           # 3 reminders
    sv.resolve(engine, alert_id, "m4", local("2025-10-20 16:00"), "explained", "纸质审核在先")
    sv.reject(engine, policy, alert_id, "k1", local("2025-10-21 09:00"), "无纸质记录")  # order 2
    sv.resolve(engine, alert_id, "m4", local("2025-11-03 10:00"), "rectified", "已补录")
    figures = supervision_counts(engine, config.tz, date(2025, 9, 1), date(2025, 12, 1))
    # 一级督办信息: m4 told of the new alert in September; 二级督办信息: the two orders to m4
    assert [(f.department, f.period, f.reminders, f.orders, dict(f.dispositions),
             f.tier1_messages, f.tier2_messages)
            for f in figures] == [("D04", "2025-09", 0, 0, {}, 1, 0),
                                  ("D04", "2025-10", 3, 2, {"explained": 1}, 0, 2),
                                  ("D04", "2025-11", 0, 0, {"rectified": 1}, 0, 0)]
    assert figures[1].median_time_to_resolve == timedelta(days=20)   # 30 Sep 16:00 → 20 Oct
    assert figures[2].median_time_to_resolve is None                # not its first disposition
    assert supervision_counts(engine, config.tz, date(2025, 11, 1), date(2025, 11, 3)) == []
