"""rules calibrate for the county-wide thresholds (late_entry max_hours, batch_entry
min_events, overdue warning_days): the proposal, and the findings each threshold would
raise counted as the kind itself counts them."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from click.testing import CliRunner

from cli import cli
from conftest import event, ingest_rows
from monitor.catalog import ingest_catalog
from monitor.engine import evaluate
from monitor.errors import MonitorError
from monitor.ruletools.limits import calibrate_limit
from monitor.rules.loader import load_rules

GOLDEN = Path(__file__).with_name("rules")
AS_OF = datetime(2026, 1, 1, tzinfo=timezone.utc)
ITEM = "D05-XK-001"  # promised 15, legal 20 working days


def rule_of(tmp_path, kind: str, params: str = ""):
    path = tmp_path / "rules" / f"{kind}.yaml"
    path.parent.mkdir(exist_ok=True)
    path.write_text(f"rules:\n  - id: {kind.replace('_', '-')}\n    kind: {kind}\n{params}",
                    encoding="utf-8")
    [rule] = load_rules([path])
    return rule


def stamp(at: datetime) -> str:
    return f"{at:%Y-%m-%d %H:%M:%S}"


def test_late_entry_proposal_and_candidate(engine, config, write_events, db_url, tmp_path):
    ingest_catalog(engine, GOLDEN / "catalog.yaml")
    start, rows = datetime(2025, 10, 13, 9, 0), []
    for n in range(43):
        at = start + timedelta(hours=n)
        delay = timedelta(hours=100 + n) if n < 3 else timedelta(minutes=30 * 1.1 ** (n % 10))
        rows.append(event(f"e{n}", f"K{n}", "accept", stamp(at), item_code=ITEM,
                          recorded_at=stamp(at + delay)))
    ingest_rows(engine, config, write_events, rows)
    rule = rule_of(tmp_path, "late_entry")
    p = calibrate_limit(engine, config, rule, AS_OF)
    assert (p.param, p.unit, p.n, p.current, p.current_findings) == ("max_hours", "h", 43, 48, 3)
    assert 1 < p.proposed < 100 and p.proposed_findings == 3
    # the counts are the kind's own: a dry run with each threshold finds as many cases
    for hours, count in ((p.current, p.current_findings), (p.proposed, p.proposed_findings),
                         (p.quantile, p.quantile_findings), (0.5, None)):
        [out] = evaluate(engine, config, AS_OF, dry_run=True, rules=[
            replace(rule, params=replace(rule.params, max_hours=hours))])
        if count is not None:
            assert len(out.findings) == count
    candidate = tmp_path / "candidate"
    (tmp_path / "config.yaml").write_text(f"rules_dir: {tmp_path / 'rules'}\n", encoding="utf-8")
    result = CliRunner().invoke(cli, ["--config", str(tmp_path / "config.yaml"), "--db", db_url,
                                      "rules", "calibrate", "--kind", "late_entry", "--out",
                                      str(candidate)])
    assert result.exit_code == 0, result.output
    assert "48 h→3" in result.output and f"max_hours {p.proposed:g}" in result.output
    [written] = load_rules([candidate])
    assert written.params.max_hours == p.proposed


def test_batch_entry_counts_bursts_as_the_kind_does(engine, config, write_events, tmp_path):
    ingest_catalog(engine, GOLDEN / "catalog.yaml")
    base, rows = datetime(2025, 10, 13, 9, 0), []
    for n in range(60):  # steady work: one entry every 20 minutes, by three people
        at = base + timedelta(minutes=20 * n)
        rows.append(event(f"s{n}", f"S{n}", "accept", stamp(at), item_code=ITEM,
                          actor=f"u{n % 3}", recorded_at=stamp(at)))
    for burst, (size, gap) in enumerate(((12, 10), (6, 20), (4, 30))):  # entries, seconds apart
        for n in range(size):
            at = base + timedelta(days=1 + burst, seconds=gap * n)
            rows.append(event(f"b{burst}-{n}", f"B{burst}-{n}", "accept", stamp(at),
                              item_code=ITEM, actor="clerk", recorded_at=stamp(at)))
    ingest_rows(engine, config, write_events, rows)
    rule = rule_of(tmp_path, "batch_entry")
    p = calibrate_limit(engine, config, rule, AS_OF)
    assert (p.param, p.n, p.current, p.current_findings) == ("min_events", 82, 10, 1)
    assert p.proposed >= 2
    for n in sorted({2, 4, 5, 7, 12, 13, p.proposed, p.quantile}):
        [out] = evaluate(engine, config, AS_OF, dry_run=True, rules=[
            replace(rule, params=replace(rule.params, min_events=int(n)))])
        assert len(out.findings) == _bursts(p, engine, config, rule, int(n)), n


def _bursts(p, engine, config, rule, n: int) -> int:
    """The calibration's count for threshold ``n`` (a rule whose current value is ``n``)."""
    return calibrate_limit(engine, config, replace(rule, params=replace(
        rule.params, min_events=n)), AS_OF).current_findings


def test_overdue_warning_days_from_the_slack_at_decision(engine, config, write_events,
                                                         tmp_path):
    ingest_catalog(engine, GOLDEN / "catalog.yaml")
    monday, rows = datetime(2025, 11, 3, 9, 0), []
    cal = config.calendar()
    used = [2, 3, 4, 5, 6, 7, 8] * 5 + [14, 15, 16]  # working days to the decision
    for n, days in enumerate(used):
        decided = cal.add_workdays(monday.date(), days)
        rows += [event(f"a{n}", f"C{n}", "accept", stamp(monday), item_code=ITEM),
                 event(f"d{n}", f"C{n}", "decide", f"{decided} 15:00:00", item_code=ITEM)]
    rows.append(event("open", "OPEN", "accept", stamp(monday), item_code=ITEM))  # not decided
    ingest_rows(engine, config, write_events, rows)
    rule = rule_of(tmp_path, "overdue")
    p = calibrate_limit(engine, config, rule, AS_OF)
    slack = sorted(15 - d for d in used)
    assert (p.param, p.unit, p.n, p.median) == ("warning_days", "days", 38, 10)
    assert p.current == 1 and p.current_findings == sum(1 for s in slack if s <= 1) == 3
    assert p.proposed_findings == sum(1 for s in slack if s <= p.proposed)
    assert p.quantile == 0 and p.quantile_findings == 2  # the two decided on or past the day


def test_too_little_history_is_one_clear_line(engine, config, tmp_path):
    with pytest.raises(MonitorError, match=r"only 0 cases with a recorded_at to calibrate "
                                           r"on \(at least 30: --min-n\)"):
        calibrate_limit(engine, config, rule_of(tmp_path, "late_entry"), AS_OF)
