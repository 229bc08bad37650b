"""Rule semantics that hold on real logs: system events, time precision, the step a
minimum runs from, four-eyes pairs and pools, decision and end steps per item."""

from __future__ import annotations

import csv
from datetime import datetime, timezone

import pytest

from conftest import CATALOG, NOW, dry_findings, rule_file
from monitor.ingest import ingest_events

AS_OF = datetime(2025, 12, 1, tzinfo=timezone.utc)
COLUMNS = ["event_id", "case_id", "item_code", "step", "actor", "occurred_at", "precision",
           "system"]
POLICY_CATALOG = CATALOG.replace(
    "    min_minutes: {survey: 30, review: 5, approve: 5, decide: 5}\n",
    "    min_minutes: {survey: {after: accept, minutes: 30}, review: 5, approve: 5, decide: 5}\n"
    "    four_eyes: [[review, approve]]\n"
    "    decision_steps: [decide, refuse]\n", 1)


@pytest.fixture
def catalog_file(tmp_path, request):
    path = tmp_path / "catalog.yaml"
    path.write_text(POLICY_CATALOG if "policy" in request.node.name else CATALOG,
                    encoding="utf-8")
    return path


def load(store, config, tmp_path, rows):
    path = tmp_path / "events.csv"
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(COLUMNS)
        for n, (case, step, at, *rest) in enumerate(rows):
            actor = rest[0] if rest else "u1"
            precision = rest[1] if len(rest) > 1 else ""
            system = rest[2] if len(rest) > 2 else ""
            writer.writerow([f"e{n}", case, "D04-XK-001", step, actor, at, precision, system])
    [result] = ingest_events(store, config, [str(path)], NOW)
    assert result.tally.quarantined == 0


def found(store, config, tmp_path, kind, params=""):
    rules = rule_file(tmp_path, f"- {{id: r, kind: {kind}{params}}}\n")
    return dry_findings(store, config, rules, AS_OF)


def test_day_precision_never_makes_a_too_fast_finding(store, config, tmp_path):
    load(store, config, tmp_path, [
        ("day", "accept", "2025-10-09 00:00:00", "u1", "day"),
        ("day", "review", "2025-10-09 00:00:00", "u2", "day"),
        ("day", "decide", "2025-10-09 00:00:00", "u2", "day"),
        ("sec", "accept", "2025-10-09 09:00:00"),
        ("sec", "review", "2025-10-09 09:00:30", "u2"),
        ("sec", "decide", "2025-10-09 09:01:00", "u2"),
    ])
    assert set(found(store, config, tmp_path, "step_too_fast")) == {"sec"}
    assert set(found(store, config, tmp_path, "case_too_fast")) == {"sec"}


def test_minute_precision_flags_only_what_its_longest_reading_still_is(store, config,
                                                                         tmp_path):
    load(store, config, tmp_path, [
        ("close", "accept", "2025-10-09 09:00:00", "u1", "minute"),
        ("close", "review", "2025-10-09 09:04:00", "u2", "minute"),   # 4–5 min: < 5 min?
        ("fast", "accept", "2025-10-09 09:00:00", "u1", "minute"),
        ("fast", "review", "2025-10-09 09:03:00", "u2", "minute"),    # at most 4 min
    ])
    assert set(found(store, config, tmp_path, "step_too_fast")) == {"fast"}


def test_system_events_are_never_the_previous_step(store, config, tmp_path):
    load(store, config, tmp_path, [
        ("c1", "accept", "2025-10-09 09:00:00"),
        ("c1", "自动校验", "2025-10-09 09:59:40", "system", "", "true"),
        ("c1", "review", "2025-10-09 10:00:00", "u2"),
    ])
    assert found(store, config, tmp_path, "step_too_fast") == {}


def test_policy_min_minutes_run_from_the_named_step(store, config, tmp_path):
    load(store, config, tmp_path, [
        ("late", "accept", "2025-10-09 09:00:00"),
        ("late", "return", "2025-10-09 09:40:00"),
        ("late", "survey", "2025-10-09 09:45:00"),   # 5 min after return, 45 after accept
        ("soon", "accept", "2025-10-09 09:00:00"),
        ("soon", "return", "2025-10-09 09:10:00"),
        ("soon", "survey", "2025-10-09 09:20:00"),   # 20 min after accept: < 30
    ])
    got = found(store, config, tmp_path, "step_too_fast")
    assert set(got) == {"soon"}
    [gap] = got["soon"].evidence["gaps"]
    assert (gap["previous_step"], gap["gap_seconds"]) == ("accept", 1200.0)


def test_policy_four_eyes_pairs_and_pools(store, config, tmp_path):
    load(store, config, tmp_path, [
        ("pair", "review", "2025-10-09 09:00:00", "u2"),
        ("pair", "approve", "2025-10-09 12:00:00", "u2"),
        ("desk", "accept", "2025-10-09 09:00:00", "u2"),   # accept+review: not a pair
        ("desk", "review", "2025-10-09 12:00:00", "u2"),
        ("pool", "review", "2025-10-09 09:00:00", "admin1"),
        ("pool", "approve", "2025-10-09 12:00:00", "admin1"),
    ])
    assert set(found(store, config, tmp_path, "same_actor_roles")) == {"pair", "pool"}
    assert set(found(store, config, tmp_path, "same_actor_roles",
                     ", params: {role_pattern: '^admin'}")) == {"pair"}


def test_rule_pairs_when_the_catalog_names_none(store, config, tmp_path):
    load(store, config, tmp_path, [
        ("a", "accept", "2025-10-09 09:00:00", "u2"),
        ("a", "review", "2025-10-09 12:00:00", "u2"),
        ("b", "review", "2025-10-09 09:00:00", "u2"),
        ("b", "decide", "2025-10-09 12:00:00", "u2"),
    ])
    assert set(found(store, config, tmp_path, "same_actor_roles")) == {"a", "b"}
    assert set(found(store, config, tmp_path, "same_actor_roles",
                     ", params: {pairs: [[review, decide]]}")) == {"b"}


def test_policy_decision_steps_and_a_decision_before_acceptance(store, config, tmp_path):
    load(store, config, tmp_path, [
        ("refused", "accept", "2025-10-09 09:00:00"),
        ("refused", "refuse", "2025-10-09 09:10:00"),
        ("backwards", "accept", "2025-10-10 09:00:00"),
        ("backwards", "decide", "2025-10-09 09:00:00"),
    ])
    assert set(found(store, config, tmp_path, "case_too_fast")) == {"refused"}


@pytest.mark.parametrize("params, message", [
    ("{pairs: [[review]]}", "'pairs' must be pairs of steps like [review, approve]"),
    ("{role_pattern: '(admin'}", "'role_pattern' is not a regular expression"),
])
def test_bad_policy_params_are_one_line(tmp_path, params, message):
    from monitor.errors import SourceErrors

    with pytest.raises(SourceErrors) as raised:
        rule_file(tmp_path, f"- {{id: r, kind: same_actor_roles, params: {params}}}\n")
    assert f"rules.yaml:1: {message}" in str(raised.value)


def test_data_quality_findings_are_their_own_kind(store, config, tmp_path):
    load(store, config, tmp_path, [
        ("backwards", "accept", "2025-10-10 09:00:00"),
        ("backwards", "decide", "2025-10-09 09:00:00"),
        ("dated", "accept", "2025-10-09 00:00:00", "u1", "day"),
        ("dated", "decide", "2025-10-20 00:00:00", "u2", "day"),
        ("filled", "accept", "2025-10-09 09:00:00", "u2"),
        ("filled", "review", "2025-10-09 09:00:00", "u2"),
        ("filled", "approve", "2025-10-09 09:00:00", "u2"),
        ("filled", "decide", "2025-10-09 09:00:00", "u2"),
        ("silent", "accept", "2025-03-01 09:00:00"),
        ("fine", "accept", "2025-10-09 09:00:00"),
        ("fine", "decide", "2025-10-20 09:00:00", "u2"),
    ])
    got = found(store, config, tmp_path, "data_quality")
    assert {c: f.fields["issues"] for c, f in got.items()} == {
        "backwards": "决定早于受理",
        "dated": "时间仅精确到日，无法判断办理是否过快",
        "filled": "多个环节由同一账号在同一时刻记录（疑似系统补齐流程）",
        "silent": "已受理未办结且长期无记录"}
    assert all(f.level == "warning" for f in got.values())
    # the misconduct side leaves the impossible span out
    assert "backwards" not in found(store, config, tmp_path, "case_too_fast")


def test_data_quality_findings_cost_no_points():
    from monitor.rules.kinds import data_quality_kinds
    from monitor.scores import NOT_SCORED

    assert data_quality_kinds() == {"data_quality"} <= set(NOT_SCORED)


def test_sequence_rules_explain_and_bad_params(store, config, tmp_path):
    from monitor.errors import SourceErrors
    from monitor.ruletools.explain import explain

    load(store, config, tmp_path, [
        ("trip", "accept", "2025-10-09 09:00:00"),
        ("trip", "trip_start", "2025-10-09 00:00:00", "u1", "day"),
        ("trip", "approve", "2025-10-09 15:00:00", "u2"),
        ("trip2", "accept", "2025-10-09 09:00:00"),
        ("trip2", "trip_start", "2025-10-08 00:00:00", "u1", "day"),
        ("trip2", "approve", "2025-10-09 15:00:00", "u2"),
    ])
    text = ("- {id: trip, kind: sequence, level: red, "
            "params: {pattern: precedence, first: approve, then: trip_start}}\n")
    # a date-only trip the same day as the approval shows no order; the day before does
    assert set(found(store, config, tmp_path, "sequence",
                     ", params: {pattern: precedence, first: approve, then: trip_start}")) \
        == {"trip2"}
    rules = rule_file(tmp_path, text)
    out = explain(store, config, rules, "trip", "trip2", AS_OF)
    assert "pattern precedence: trip_start never before approve" in out.checks
    assert out.checks[-1].startswith("→ trip_start（2025-10-08") and "早于 approve" in \
        out.checks[-1], out.checks
    assert out.verdict.startswith("FINDING [red]")
    with pytest.raises(SourceErrors, match="pattern response needs days"):
        rule_file(tmp_path, "- {id: r, kind: sequence, params: {pattern: response, "
                            "first: decide, then: fee_paid}}\n")
    with pytest.raises(SourceErrors, match="did you mean 'precedence'"):
        rule_file(tmp_path, "- {id: r, kind: sequence, params: {pattern: precedense, "
                            "first: a, then: b}}\n")


def test_calibrate_case_too_fast_and_its_candidate(store, config, tmp_path):
    from monitor.ruletools.calibrate import calibrate, write_candidate

    rows = []
    for n in range(40):
        rows += [(f"c{n}", "accept", "2025-10-09 09:00:00"),
                 (f"c{n}", "decide", f"2025-10-{10 + n % 10} 09:{n:02d}:00", "u2")]
    load(store, config, tmp_path, rows)
    rules_dir = tmp_path / "rules"
    rules_dir.mkdir()
    (rules_dir / "fast.yaml").write_text("- {id: fast, kind: case_too_fast}\n",
                                         encoding="utf-8")
    [rule] = rule_file(rules_dir, "- {id: fast, kind: case_too_fast}\n")
    [proposal] = calibrate(store, rule, min_n=30)
    assert (proposal.item, proposal.step, proposal.n) == ("D04-XK-001", "case", 40)
    assert proposal.current_min == 60 and proposal.current_findings == 0
    path = write_candidate(rules_dir, rule, [proposal], tmp_path / "candidate", "test")
    [candidate] = rule_file(tmp_path / "candidate", path.read_text(encoding="utf-8"))
    assert candidate.params.item_min_case_minutes == {"D04-XK-001": proposal.proposed_min}
