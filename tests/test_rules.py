"""Rule files and the detectors: validation, boundaries, idempotent alerts."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import pytest
from click.testing import CliRunner
from sqlalchemy import func, select

from cli import cli
from conftest import FIXTURES, NOW, event
from monitor.engine import evaluate
from monitor.errors import MonitorError
from monitor.ingest import ingest_events
from monitor.models import Alert, AlertChange
from monitor.rules.kinds import KINDS
from monitor.rules.loader import load_rules

ROOT = FIXTURES.parent.parent
AS_OF = datetime(2025, 11, 1, tzinfo=timezone.utc)


def invalid_rule_files():
    return sorted(p.name for p in (FIXTURES / "rules_invalid").glob("*.yaml"))


@pytest.mark.parametrize("name", invalid_rule_files())
def test_invalid_rule_file(name, monkeypatch):
    monkeypatch.chdir(FIXTURES / "rules_invalid")
    first = (FIXTURES / "rules_invalid" / name).read_text(encoding="utf-8").splitlines()[0]
    with pytest.raises(MonitorError) as err:
        load_rules([name])
    expected = first.removeprefix("# expect: ").replace("{kinds}", ", ".join(KINDS))
    assert str(err.value) == expected


def test_shipped_rules_validate_one_file_per_kind():
    rules = load_rules([ROOT / "rules"])
    assert {r.kind for r in rules} == {p.stem for p in (ROOT / "rules").glob("*.yaml")}
    assert all(r.title and r.message and r.references for r in rules)


def rules_for(tmp_path, text: str):
    path = tmp_path / "rules.yaml"
    path.write_text(text, encoding="utf-8")
    return load_rules([path])


def load(store, config, write_events, rows):
    list(ingest_events(store, config, [str(write_events(rows))], NOW))


def alerts(store):
    with store.connect() as conn:
        return {a.rule_id + "|" + a.subject: a for a in conn.execute(select(Alert))}


def test_step_too_fast_boundary_and_item_thresholds(store, config, write_events, tmp_path):
    # D04-XK-001's catalog min_minutes: survey 30 → 29:59 fires, 30:00 does not.
    load(store, config, write_events, [
        event("a1", "fast", "accept", "2025-09-30 10:00:00"),
        event("a2", "fast", "survey", "2025-09-30 10:29:59"),
        event("b1", "ok", "accept", "2025-09-30T02:00:00Z"),
        event("b2", "ok", "survey", "2025-09-30 10:30:00"),  # +08:00 naive: exactly 30 min
        event("c1", "seed", "accept", "2025-09-30 10:00:00"),
        event("c2", "seed", "survey", "2025-09-30 10:00:58", actor="u2"),
    ])
    rules = rules_for(tmp_path, "rules:\n  - {id: fast, kind: step_too_fast}\n")
    [outcome] = evaluate(store, config, AS_OF, rules=rules)
    assert sorted(f.case_id for f in outcome.findings) == ["fast", "seed"]
    seed = next(f for f in outcome.findings if f.case_id == "seed")
    assert seed.fields["fastest_seconds"] == 58
    assert seed.evidence["gaps"][0]["limit_minutes"] == 30
    assert set(seed.event_ids) == {"c1", "c2"}


def test_rule_defaults_apply_when_the_item_has_none(store, config, write_events, tmp_path):
    load(store, config, write_events, [
        event("p1", "pen", "accept", "2025-09-30 10:00:00", item_code="D07-CF-001"),
        event("p2", "pen", "review", "2025-09-30 10:04:00", item_code="D07-CF-001"),
    ])
    rules = rules_for(tmp_path, "rules:\n  - {id: fast, kind: step_too_fast}\n"
                                "  - {id: lax, kind: step_too_fast, params: {min_minutes: {review: 3}}}\n")
    fast, lax = evaluate(store, config, AS_OF, rules=rules)
    assert [f.case_id for f in fast.findings] == ["pen"] and lax.findings == []


def test_scope_include_and_exclude(store, config, write_events, tmp_path):
    load(store, config, write_events, [
        event("a1", "c1", "accept", "2025-09-30 10:00:00", recorded_at="2025-10-09 10:00:00"),
        event("p1", "c2", "accept", "2025-09-30 10:00:00", item_code="D07-CF-001",
              recorded_at="2025-10-09 10:00:00"),
    ])
    rules = rules_for(tmp_path, """rules:
  - {id: all, kind: late_entry}
  - {id: d07, kind: late_entry, scope: {include: {departments: [D07]}}}
  - {id: nopenalty, kind: late_entry, scope: {exclude: {categories: [penalty]}}}
""")
    got = {o.rule.id: sorted(f.case_id for f in o.findings)
           for o in evaluate(store, config, AS_OF, rules=rules)}
    assert got == {"all": ["c1", "c2"], "d07": ["c2"], "nopenalty": ["c1"]}


def test_late_entry_boundary(store, config, write_events, tmp_path):
    load(store, config, write_events, [
        event("a1", "late", "accept", "2025-09-30 10:00:00", recorded_at="2025-10-02 10:00:01"),
        event("b1", "ontime", "accept", "2025-09-30 10:00:00", recorded_at="2025-10-02 10:00:00"),
    ])
    [o] = evaluate(store, config, AS_OF, rules=rules_for(tmp_path, "- {id: l, kind: late_entry}\n"))
    assert [f.case_id for f in o.findings] == ["late"]


def test_same_actor_roles_and_case_too_fast(store, config, write_events, tmp_path):
    steps = ["accept", "review", "approve", "decide"]
    rows = [event(f"s{i}", "solo", s, f"2025-09-30 10:0{i}:{i * 10:02d}")
            for i, s in enumerate(steps)]
    rows += [event(f"t{i}", "team", s, f"2025-10-0{i + 1} 10:00:00", actor=a)
             for i, (s, a) in enumerate(zip(steps, ["u1", "u2", "u3", "u4"]))]
    rows += [event("o1", "spot", "accept", "2025-09-30 10:00", item_code="D07-CF-001"),
             event("o2", "spot", "complete", "2025-09-30 10:05", item_code="D07-CF-001")]
    load(store, config, write_events, rows)
    roles, fast = evaluate(store, config, AS_OF, rules=rules_for(
        tmp_path, "- {id: roles, kind: same_actor_roles}\n- {id: fast, kind: case_too_fast}\n"))
    assert [f.case_id for f in roles.findings] == ["solo"]
    assert roles.findings[0].fields["count"] == 4
    # solo: 3 min 30 s < 60; spot: 5 min but D07-CF-001 has legal_days 5 and no min → 60 applies
    assert sorted(f.case_id for f in fast.findings) == ["solo", "spot"]
    solo = next(f for f in fast.findings if f.case_id == "solo")
    assert solo.fields["duration"] == "3 分 30 秒"


def test_alerts_are_stored_once_and_dry_run_writes_nothing(store, config, write_events, tmp_path):
    load(store, config, write_events, [
        event("a1", "c1", "accept", "2025-09-30 10:00:00"),
        event("a2", "c1", "survey", "2025-09-30 10:00:58")])
    rules = rules_for(tmp_path, "- {id: fast, kind: step_too_fast, level: red, action: halt}\n")
    [dry] = evaluate(store, config, AS_OF, rules=rules, dry_run=True)
    assert len(dry.findings) == 1 and dry.stored is None and alerts(store) == {}
    [first] = evaluate(store, config, AS_OF, rules=rules)
    [again] = evaluate(store, config, AS_OF, rules=rules)  # incremental: nothing new to see
    [full] = evaluate(store, config, AS_OF, rules=rules, full=True)
    assert (first.incremental, again.incremental, full.incremental) == (False, True, False)
    assert (first.stored.new, again.stored.new, len(again.findings)) == (1, 0, 0)
    assert (full.stored.new, full.stored.unchanged) == (0, 1)
    [alert] = alerts(store).values()
    assert (alert.level, alert.action, alert.case_id, alert.case_ids) == ("red", "halt", "c1", ["c1"])
    assert "58 秒" in alert.message and alert.rule_version == rules[0].version
    with store.connect() as conn:
        assert conn.scalar(select(func.count()).select_from(AlertChange)) == 0


def test_one_failing_rule_does_not_stop_the_others(store, config, write_events, tmp_path,
                                                   monkeypatch):
    from monitor.rules import kinds

    def broken(conn, rule, ctx):
        raise RuntimeError("detector bug")
        yield  # pragma: no cover

    monkeypatch.setattr(kinds.KINDS["late_entry"], "detect", broken)
    load(store, config, write_events, [event("a1"), event("a2", step="survey",
                                                           occurred_at="2025-09-30 10:00:30")])
    broken_o, ok = evaluate(store, config, AS_OF, rules=rules_for(
        tmp_path, "- {id: late, kind: late_entry}\n- {id: fast, kind: step_too_fast}\n"))
    assert broken_o.error == "RuntimeError: detector bug" and len(ok.findings) == 1


def test_run_and_alerts_cli(db_url, store, config, write_events, tmp_path, monkeypatch):
    load(store, config, write_events, [
        event("a1", "c1", "accept", "2025-09-30 10:00:00"),
        event("a2", "c1", "survey", "2025-09-30 10:00:58")])
    (tmp_path / "rules").mkdir()
    (tmp_path / "rules" / "r.yaml").write_text("- {id: fast, kind: step_too_fast}\n")
    (tmp_path / "config.yaml").write_text("rules_dir: rules\n")
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()
    result = runner.invoke(cli, ["--db", db_url, "run", "--as-of", "2025-11-01"])
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[0] == "as of 2025-11-01T00:00:00+08:00"
    assert "fast" in result.stdout and "1 findings · new 1 · updated 0" in result.stdout
    listed = json.loads(runner.invoke(cli, ["--db", db_url, "alerts", "list", "--format",
                                            "json"]).stdout)
    assert len(listed) == 1
    keys = {"id", "rule_id", "kind", "level", "status", "tier", "case_id", "case_ids", "actor",
            "department", "item_code", "period", "raised_at", "message", "evidence"}
    assert keys <= set(listed[0])
    shown = runner.invoke(cli, ["--db", db_url, "alerts", "show", str(listed[0]["id"])])
    assert json.loads(shown.stdout)["evidence"]["gaps"][0]["gap_seconds"] == 58.0
    missing = runner.invoke(cli, ["--db", db_url, "alerts", "show", "999"])
    assert (missing.exit_code, missing.stderr.strip()) == (1, "Error: no alert with id 999")
    bad = runner.invoke(cli, ["--db", db_url, "run", "--as-of", "soon"])
    assert bad.exit_code == 2


def test_a_grown_finding_updates_its_alert(store, config, write_events, tmp_path):
    rules = rules_for(tmp_path, "- {id: fast, kind: step_too_fast}\n")
    load(store, config, write_events, [event("a1", "c1", "accept", "2025-09-30 10:00:00"),
                                       event("a2", "c1", "survey", "2025-09-30 10:00:58")])
    evaluate(store, config, AS_OF, rules=rules)
    path = write_events([event("a3", "c1", "review", "2025-09-30 10:01:30", actor="u2")], "b.csv")
    list(ingest_events(store, config, [str(path)], NOW))
    [o] = evaluate(store, config, AS_OF, rules=rules)
    assert o.incremental and (o.stored.new, o.stored.changed) == (0, 1)
    [alert] = alerts(store).values()
    assert "survey" in alert.message and "review" in alert.message
    assert len(alert.evidence["gaps"]) == 2
