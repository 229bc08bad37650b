"""rules check and rules test: real files, the real CLI, exact error lines."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from pathlib import Path

from click.testing import CliRunner

from cli import cli
from monitor.config import SHIPPED_RULES
from monitor.ruletools.golden import load_golden
from monitor.rules.loader import load_rules

GOLDEN = Path(__file__).with_name("rules")


def invoke(*args):
    return CliRunner().invoke(cli, list(args))


def test_every_shipped_rule_has_a_golden_test_that_expects_it_to_fire():
    covered: dict[str, int] = {}
    for path in GOLDEN.glob("test_*.yaml"):
        golden = load_golden(path)
        rules = load_rules(list(golden.rule_files))
        kinds = {e.kind for t in golden.tests for m in t.moments for e in m.expected}
        quiet = sum(1 for t in golden.tests for m in t.moments if not m.expected)
        for rule in rules:
            if rule.kind in kinds:
                covered[rule.id] = covered.get(rule.id, 0) + quiet
    shipped = {r.id for r in load_rules([SHIPPED_RULES])}
    assert shipped <= set(covered), f"no golden test fires {sorted(shipped - set(covered))}"


def test_rules_check_ok_and_problems(tmp_path):
    result = invoke("rules", "check", str(SHIPPED_RULES / "overdue.yaml"))
    assert result.exit_code == 0 and result.output == f"OK {SHIPPED_RULES / 'overdue.yaml'}\n"
    bad = tmp_path / "bad.yaml"
    bad.write_text("rules:\n  - id: x\n    kind: step_too_fast\n    params:\n"
                   "      min_minutes: {surveyy: 30}\n  - id: y\n    kind: same_actor_roles\n"
                   "    statuz: test\n  - id: x\n    kind: late_entry\n", encoding="utf-8")
    result = invoke("rules", "check", str(bad))
    assert result.exit_code == 1
    assert result.output.splitlines() == [
        f"{bad}:5: unknown step 'surveyy' (did you mean 'survey'?)",
        f"{bad}:8: unknown key 'statuz' (did you mean 'status'?)",
        f"{bad}:9: duplicate rule id 'x' (first at {bad}:2)"]


def test_rules_check_scope_against_a_catalog(tmp_path):
    f = tmp_path / "r.yaml"
    f.write_text("- id: a\n  kind: overdue\n  scope:\n    include: {departments: [D4]}\n",
                 encoding="utf-8")
    assert invoke("rules", "check", str(f)).exit_code == 0
    result = invoke("rules", "check", str(f), "--catalog", str(GOLDEN / "catalog.yaml"))
    assert result.exit_code == 1
    assert result.output == f"{f}:4: unknown department 'D4' (did you mean 'D04'?)\n"


def test_rules_test_passes_and_a_wrong_expectation_fails_with_a_diff(tmp_path):
    assert invoke("rules", "test", str(GOLDEN / "test_case_too_fast.yaml")).exit_code == 0
    text = (GOLDEN / "test_case_too_fast.yaml").read_text(encoding="utf-8")
    wrong = tmp_path / "test_wrong.yaml"
    wrong.write_text(text.replace("../../rules/", f"{SHIPPED_RULES}/")
                     .replace("catalog: catalog.yaml", f"catalog: {GOLDEN / 'catalog.yaml'}")
                     .replace("expect: []", "expect:\n      - {kind: case_too_fast, "
                                            "subject: SPOT-FAST, level: red}"),
                     encoding="utf-8")
    result = invoke("rules", "test", str(wrong))
    assert result.exit_code == 1
    assert "- case_too_fast SPOT-FAST red" in result.output
    assert "1 passed, 1 failed" in result.output


def test_a_bad_golden_file_is_one_line_per_problem(tmp_path):
    bad = tmp_path / "test_bad.yaml"
    bad.write_text(f"rule_files: [{SHIPPED_RULES / 'overdue.yaml'}]\ncatalog: {{}}\ntests:\n"
                   "  - name: t\n    cases:\n      C1:\n        item: X\n        events:\n"
                   "          - accept: 2025-13-01 10:00\n    at: 2025-10-01\n    expect: []\n",
                   encoding="utf-8")
    result = invoke("rules", "test", str(bad))
    assert result.exit_code == 1
    assert result.output.startswith(f"Error: {bad}:9: '2025-13-01 10:00' is not an ISO 8601")


def test_explain_counts_working_days_across_national_day(engine, config, write_events, db_url):
    from conftest import event, ingest_rows
    from monitor.catalog import ingest_catalog

    ingest_catalog(engine, GOLDEN / "catalog.yaml")
    ingest_rows(engine, config, write_events, [
        event("n1", "ND", "accept", "2025-09-26 16:00:00"),
        event("n2", "ND", "suspend", "2025-10-13 09:00:00"),
        event("n3", "ND", "resume", "2025-10-15 09:00:00"),
        event("n4", "ND", "decide", "2025-10-20 17:00:00"),
        event("n5", "ND", "survey", "2025-10-10 10:00:00")])
    result = invoke("--db", db_url, "rules", "explain", "overdue", "--case", "ND",
                    "--as-of", "2025-10-31")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert "  2025-09-28 日  make-up working day 调休 (National Day) · working day 1" in lines
    assert "  2025-10-03 五  holiday (National Day)" in lines
    assert "  2025-10-14 二  weekday · suspended, not counted" in lines
    assert "  2025-10-20 一  weekday · working day 10  ← promised deadline, clock ends" in lines
    assert lines[-1] == "verdict: no finding: overdue does not flag case ND as of this moment"
    result = invoke("--db", db_url, "rules", "explain", "missing-attachment", "--case", "ND",
                    "--as-of", "2025-10-31")
    assert "verdict: FINDING [yellow] 案件 ND：survey 缺 现场踏勘意见书" in result.output
    assert '"missing_by_step": {"survey": ["现场踏勘意见书"]}' in result.output
    result = invoke("--db", db_url, "rules", "explain", "overdu", "--case", "ND")
    assert result.exit_code == 1 and "did you mean 'overdue'?" in result.output


def test_backtest_reports_churn_and_touches_nothing(engine, config, write_events, db_url,
                                                    tmp_path):
    from sqlalchemy import func, select

    from conftest import event, ingest_rows
    from monitor.catalog import ingest_catalog
    from monitor.models import Alert, RuleState, TrailEntry

    ingest_catalog(engine, GOLDEN / "catalog.yaml")
    rows = []
    for n, hours in enumerate((30, 40, 60)):   # keyed in 30, 40 and 60 hours late
        rows.append(event(f"L{n}", f"C{n}", "accept", "2025-10-13 09:00:00",
                          recorded_at=f"2025-10-{13 + (9 + hours) // 24} "
                                      f"{(9 + hours) % 24:02d}:00:00"))
    rows.append(event("OLD", "C9", "accept", "2025-06-02 09:00:00",
                      recorded_at="2025-06-10 09:00:00"))   # before the window
    ingest_rows(engine, config, write_events, rows)
    candidate = tmp_path / "candidate"
    candidate.mkdir()
    # current 48 h, candidate 36 h, whatever the shipped value is today (a county that
    # changes it must not see this test of backtest's mechanics fail)
    shipped = (SHIPPED_RULES / "late_entry.yaml").read_text(encoding="utf-8")
    text = re.sub(r"max_hours: \d+", "max_hours: 48", shipped, count=1)
    (candidate / "late_entry.yaml").write_text(text.replace("max_hours: 48", "max_hours: 36"),
                                               encoding="utf-8")
    rules_dir = tmp_path / "rules"
    rules_dir.mkdir()
    (rules_dir / "late_entry.yaml").write_text(text, encoding="utf-8")
    (tmp_path / "config.yaml").write_text("rules_dir: rules\n", encoding="utf-8")
    with engine.connect() as conn:  # the catalog load's entries (a diff, the bootstrap)
        loaded = conn.scalar(select(func.count()).select_from(TrailEntry))
    result = invoke("--config", str(tmp_path / "config.yaml"), "--db", db_url, "rules",
                    "backtest", "--from", "2025-10-01", "--to", "2025-11-01",
                    "--candidate", str(candidate))
    assert result.exit_code == 0, result.output
    assert ("  late-entry             D04               1         2      +1         0      0"
            in result.output.splitlines())
    assert "    appear: C1 (yellow)" in result.output
    with engine.connect() as conn:   # nothing written
        assert [conn.scalar(select(func.count()).select_from(t))
                for t in (Alert, RuleState, TrailEntry)] == [0, 0, loaded]


def test_robust_proposal_where_mean_minus_two_sd_fails():
    from monitor.ruletools.calibrate import propose

    gaps = sorted([5.0] * 3 + [600 * 1.1 ** (i % 10) for i in range(40)] + [86400 * 30])
    median, mad, mean_2sd, proposed, _ = propose(gaps, k=3, q=0.01)
    assert mean_2sd < 0                       # one month-long gap ruins mean ± k·std
    assert 5 / 60 < proposed < 10             # median/MAD separates 5 s from 10+ minutes
    assert 600 < median < 1600 and mad > 0


def test_calibrate_writes_a_candidate_that_backtest_reads(engine, config, write_events, db_url,
                                                          tmp_path):
    from conftest import event, ingest_rows
    from monitor.catalog import ingest_catalog
    from monitor.rules.loader import load_rules

    ingest_catalog(engine, GOLDEN / "catalog.yaml")
    rows = []
    for n in range(43):
        gap = 5 if n < 3 else 600 * 1.1 ** (n % 10)
        start = datetime(2025, 10, 13, 9, 0) + timedelta(hours=n)
        rows += [event(f"a{n}", f"K{n}", "accept", f"{start:%Y-%m-%d %H:%M:%S}",
                       item_code="D05-XK-001"),
                 event(f"r{n}", f"K{n}", "review",
                       f"{start + timedelta(seconds=gap):%Y-%m-%d %H:%M:%S}",
                       item_code="D05-XK-001")]
    ingest_rows(engine, config, write_events, rows)
    out = tmp_path / "candidate"
    result = invoke("--db", db_url, "rules", "calibrate", "--kind", "step_too_fast",
                    "--item", "D05-XK-001", "--out", str(out))
    assert result.exit_code == 0, result.output
    line = next(x for x in result.output.splitlines() if "D05-XK-001" in x)
    assert " 5 min→3 " in line and "→3  " in line     # current and proposal: the 5 s ones
    [rule] = [r for r in load_rules([out]) if r.kind == "step_too_fast"]
    assert 0 < rule.params.item_min_minutes["D05-XK-001"]["review"] < 10
    result = invoke("--db", db_url, "rules", "backtest", "--from", "2025-10-01",
                    "--to", "2025-11-01", "--candidate", str(out))
    assert "step-too-fast          current 3 → candidate 3" in result.output
