"""Exemptions and rule status: suppressed findings are kept, visible and traced; expired
exemptions stop applying; only stable rules escalate, experimental ones notify no one."""

from __future__ import annotations

from datetime import date, datetime, timezone
from pathlib import Path

import pytest
from click.testing import CliRunner

from cli import cli
from conftest import event, ingest_rows, rule_file
from monitor import exemptions as ex
from monitor.alerts import list_alerts
from monitor.catalog import ingest_catalog
from monitor.engine import evaluate
from monitor.errors import MonitorError, NotAllowed
from monitor.escalation import escalate
from monitor.supervision import policy_for
from monitor.trail import history
from monitor.trailcheck import verify

CATALOG = Path(__file__).with_name("rules") / "catalog.yaml"
T0 = datetime(2025, 9, 1, 1, 0, tzinfo=timezone.utc)


def at(day: str) -> datetime:
    return datetime.fromisoformat(f"{day}T10:00:00+00:00")


def one_person(case_id: str, item: str, actor: str) -> list[dict]:
    return [event(f"{case_id}-{i}", case_id, step, f"2025-09-03 10:0{i}:00", item_code=item,
                  actor=actor) for i, step in enumerate(("accept", "review", "decide"))]


@pytest.fixture
def county(engine, config, write_events):
    ingest_catalog(engine, CATALOG)
    ingest_rows(engine, config, write_events, one_person("TS-1", "D05-XK-001", "e1")
                + one_person("D4-1", "D04-XK-001", "u1"))
    return engine


RULE = "- id: sod\n  kind: same_actor_roles\n  level: red\n  status: {status}\n"


def test_an_exempted_finding_is_kept_as_suppressed_and_traced(county, config, tmp_path):
    rules = rule_file(tmp_path, RULE.format(status="stable"))
    scope = ex.parse_scope(["department=D05"], config.tz)
    ex_id = ex.add(county, ["sod"], "sod", scope, "乡镇仅一名工作人员", "jw", date(2025, 12, 31),
                   T0, config.tz)
    evaluate(county, config, at("2025-09-10"), rules=rules)
    assert [a.case_id for a in list_alerts(county)] == ["D4-1"]
    [hidden] = list_alerts(county, suppressed=True)
    assert (hidden.case_id, hidden.status, hidden.exemption_id) == ("TS-1", "suppressed", ex_id)
    assert [e.action for e in history(county, hidden.id)] == ["suppressed"]
    escalate(county, policy_for(config, rules), at("2025-10-10"))
    assert next(list_alerts(county, suppressed=True)).tier == 1   # never escalated
    # after its last day the exemption no longer applies: found again, the alert opens
    evaluate(county, config, at("2026-01-05"), rules=rules, full=True)
    reopened = next(list_alerts(county, alert_id=hidden.id))
    assert (reopened.status, reopened.exemption_id) == ("open", None)
    assert [e.action for e in history(county, hidden.id)] == ["suppressed", "unsuppressed"]
    assert verify(county).entries >= 4


def test_only_a_tier2_monitor_approves_and_revoking_needs_a_reason(county, config):
    scope = ex.parse_scope(["actor=e1", "window=2025-09-03T09:00/2025-09-03T11:00"], config.tz)
    with pytest.raises(NotAllowed):
        ex.add(county, ["sod"], "sod", scope, "r", "u1", date(2025, 12, 31), T0, config.tz)
    with pytest.raises(MonitorError, match="did you mean 'sod'"):
        ex.add(county, ["sod"], "sdo", scope, "r", "jw", date(2025, 12, 31), T0, config.tz)
    ex_id = ex.add(county, ["sod"], "sod", scope, "停机", "jw", date(2025, 12, 31), T0, config.tz)
    with pytest.raises(MonitorError, match="without a reason"):
        ex.revoke(county, ex_id, "jw", " ", at("2025-09-02"))
    ex.revoke(county, ex_id, "jw", "恢复", at("2025-09-02"))
    assert ex.list_exemptions(county, at("2025-09-05"), config.tz) == []
    assert len(ex.list_exemptions(county, at("2025-09-05"), config.tz, include_all=True)) == 1
    with pytest.raises(MonitorError, match=r"'departmnt=D1' \(did you mean 'department'\?\)"):
        ex.parse_scope(["departmnt=D1"], config.tz)


def test_a_window_scope_covers_findings_whose_events_all_fall_in_it(county, config, tmp_path):
    rules = rule_file(tmp_path, RULE.format(status="stable"))
    scope = ex.parse_scope(["window=2025-09-03T09:00/2025-09-03T11:00"], config.tz)
    ex.add(county, ["sod"], "sod", scope, "停机", "jw", date(2025, 12, 31), T0, config.tz)
    evaluate(county, config, at("2025-09-10"), rules=rules)
    assert sorted(a.case_id for a in list_alerts(county, suppressed=True)) == ["D4-1", "TS-1"]


@pytest.mark.parametrize("status,assigned,escalates", [("stable", True, True),
                                                        ("test", True, False),
                                                        ("experimental", False, False)])
def test_rule_status(county, config, tmp_path, status, assigned, escalates):
    rules = rule_file(tmp_path, RULE.format(status=status))
    evaluate(county, config, at("2025-09-10"), rules=rules)
    alert = next(a for a in list_alerts(county) if a.case_id == "D4-1")
    assert bool(alert.assigned_to) is assigned
    escalate(county, policy_for(config, rules), at("2025-10-10"))
    assert next(list_alerts(county, alert_id=alert.id)).tier == (2 if escalates else 1)


def test_cli_add_list_revoke_and_alerts_list_suppressed(county, db_url, tmp_path):
    runner = CliRunner()
    base = ["--db", db_url]
    result = runner.invoke(cli, [*base, "exemptions", "add", "--rule", "same-actor-roles",
                                 "--scope", "department=D05", "--reason", "乡镇仅一名工作人员",
                                 "--approved-by", "jw", "--until", "2099-12-31"])
    assert result.exit_code == 0, result.output
    assert result.output == "exemption 1: same-actor-roles department=D05 until 2099-12-31\n"
    assert "approved by jw: 乡镇仅一名工作人员" in runner.invoke(cli, [*base, "exemptions",
                                                                 "list"]).output
    result = runner.invoke(cli, [*base, "exemptions", "add", "--rule", "same-actor-roles",
                                 "--scope", "department=D05", "--reason", "x",
                                 "--approved-by", "u1", "--until", "2099-12-31"])
    assert result.exit_code == 1
    assert "may not approve an exemption: only a tier-2 monitor" in result.output
    runner.invoke(cli, [*base, "run", "--as-of", "2025-09-10"])
    listed = runner.invoke(cli, [*base, "alerts", "list", "--suppressed"]).output
    assert "suppressed" in listed and "D05" in listed and "D04" not in listed
    assert runner.invoke(cli, [*base, "exemptions", "revoke", "1", "--by", "jw",
                               "--reason", "已增配人员"]).exit_code == 0
    assert "exemption_revoked" in {e.action for e in _trail(county)}


def _trail(engine):
    from sqlalchemy import select

    from monitor.models import TrailEntry

    with engine.connect() as conn:
        return list(conn.execute(select(TrailEntry)))
