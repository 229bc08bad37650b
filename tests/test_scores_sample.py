"""Scorecards (绩效考评) traceable to their alerts, and reproducible spot checks (抽检)."""

from __future__ import annotations

import json
from datetime import datetime, timezone

from click.testing import CliRunner
from sqlalchemy import create_engine, text

from cli import cli
from monitor.config import Config, ScoreWeights
from monitor.report import build_report, parse_period
from monitor.scores import deductions, deductions_in, deductions_of, scorecard
from monitor.spotcheck import draw, record
from test_report import NOW, PERIOD, county, county_copy  # noqa: F401  (the shared demo county)

LATER = datetime(2026, 2, 3, 2, 0, tzinfo=timezone.utc)


def test_scores_are_100_minus_traceable_deductions(county):  # noqa: F811
    engine, config = county["engine"], county["config"]
    period = parse_period(PERIOD)
    card = scorecard(engine, config, period, NOW)
    found = deductions(engine, config, period)
    rows = {r["department"]: r for r in card.tables["t_scores"].rows}
    assert "JW" not in rows  # the county office has no power items
    engine2 = create_engine(county["url"])
    with engine2.connect() as conn:
        alerts = {r.id: r for r in conn.execute(text(
            "SELECT id, department, level, status FROM alerts"))}
    engine2.dispose()
    w = config.scores
    for x in found:
        a = alerts[x.alert_id]
        assert a.department == x.department
        if x.reason.startswith("finding:"):
            assert x.points == getattr(w, a.level)
        if x.reason == "unresolved":
            assert a.status in ("open", "acknowledged")
    for code, r in rows.items():
        mine = [x for x in found if x.department == code]
        lost = {t: sum(x.points for x in mine if x.theme == t) for t in w.themes}
        assert r["total"] == round(sum(max(0, w.themes[t] - lost[t]) for t in w.themes), 2)
    # one red finding per red alert of the month, as the report counts them
    rep = build_report(engine, config, period, NOW)
    assert sum(x.reason == "finding:red" for x in found) == rep.summary["red"]
    totals = [r["total"] for r in card.tables["t_scores"].rows]
    assert totals == sorted(totals, reverse=True) and totals[-1] < 100
    assert card.tables["t_scores"].rows[0]["rank"] == 1


def test_weights_come_from_the_config(county, tmp_path):  # noqa: F811
    heavy = Config(path=None, base_dir=tmp_path, scores=ScoreWeights(red=50.0))
    period = parse_period(PERIOD)
    light = {r["department"]: r["total"] for r in
             scorecard(county["engine"], county["config"], period, NOW).tables["t_scores"].rows}
    hard = {r["department"]: r["total"] for r in
            scorecard(county["engine"], heavy, period, NOW).tables["t_scores"].rows}
    assert any(hard[d] < light[d] for d in light)


def test_scores_cli(county):  # noqa: F811
    runner = CliRunner()
    base = ["--db", county["url"], "scores", "--period", PERIOD]
    out = runner.invoke(cli, base)
    assert out.exit_code == 0 and "排名" in out.output
    explained = runner.invoke(cli, base + ["--explain", "ZRJ"])
    assert explained.exit_code == 0 and "alert " in explained.output
    found = deductions(county["engine"], county["config"], parse_period(PERIOD), "ZRJ")
    assert f"ZRJ: {len(found):,} deductions" in explained.output


def test_sample_is_reproducible_and_feeds_the_report(county):  # noqa: F811
    engine, config = county["engine"], county["config"]
    period = parse_period(PERIOD)
    first = draw(engine, period, config.tz, 5, "42", NOW, "ZRJ")
    again = draw(engine, period, config.tz, 5, "42", NOW, "ZRJ")
    assert [d.case_id for d in first] == [d.case_id for d in again]
    assert all(not d.new for d in again) and len(first) == 5
    assert all(d.department == "ZRJ" for d in first)
    other = draw(engine, period, config.tz, 5, "43", NOW, "ZRJ")
    assert [d.case_id for d in other] != [d.case_id for d in first]
    runner = CliRunner()
    ok = runner.invoke(cli, ["--db", county["url"], "sample", "record", first[0].case_id,
                             "--by", "jw-monitor-1", "--pass", "--note", "材料齐全"])
    assert ok.exit_code == 0, ok.output
    record(engine, first[1].case_id, "jw-monitor-1", False, "缺现场踏勘意见书", LATER)
    bad = runner.invoke(cli, ["--db", county["url"], "sample", "record", "NOPE", "--by",
                              "jw-monitor-1", "--fail", "--note", "x"])
    assert bad.exit_code == 1 and "was not drawn" in bad.output
    spot = {r["department"]: r for r in build_report(engine, config, period, NOW)
            .tables["t_spot"].rows}
    assert (spot["ZRJ"]["checked"], spot["ZRJ"]["passed"], spot["ZRJ"]["pass_rate"]) == (
        2, 1, 0.5)
    assert spot["ZRJ"]["drawn"] == len({d.case_id for d in first + other})
    failed = [x for x in deductions(engine, config, period, "ZRJ")
              if x.reason == "failed_spot_check"]
    assert [x.case_id for x in failed] == [first[1].case_id]


def test_exempted_and_confirmed_false_positive_findings_cost_nothing_and_are_shown_apart(
        tmp_path):
    """A suppressed (exempted) finding is not a finding in the report, but is shown in the
    department's 已豁免 column. A finding the department itself dismissed as a false
    positive still costs its points until tier 2 confirms the dismissal (误报待复核, then
    误报已确认): a department cannot clear itself."""
    from monitor.db import open_store
    from monitor.supervision import confirm, resolve

    with county_copy(tmp_path) as (url, config):
        engine = open_store(url)
        try:
            period = parse_period(PERIOD)
            before = build_report(engine, config, period, NOW)
            found = [x for x in deductions(engine, config, period)
                     if x.reason.startswith("finding:")]
            assert len(found) >= 2
            wrong, exempt = found[0], found[-1]
            with engine.begin() as conn:
                to = conn.execute(text("SELECT assigned_to FROM alerts WHERE id = :i"),
                                  {"i": wrong.alert_id}).scalar_one()
                conn.execute(text("UPDATE alerts SET status = 'suppressed' WHERE id = :i"),
                             {"i": exempt.alert_id})
            to = json.loads(to) if isinstance(to, str) else to  # a JSON list of user ids
            resolve(engine, wrong.alert_id, to[0], NOW, "false_positive", "误报：材料已齐全")
            pending = build_report(engine, config, period, NOW)
            still = deductions(engine, config, period)
            confirm(engine, wrong.alert_id, "jw-monitor-1", NOW, "核实为误报")
            after = build_report(engine, config, period, NOW)
            left = deductions(engine, config, period)
        finally:
            engine.dispose()
    assert wrong.alert_id in {x.alert_id for x in still}  # dismissed by itself: still costs
    row = {r["department"]: r for r in pending.tables["t_findings"].rows}[wrong.department]
    assert (row["dismissed_pending"], row["dismissed_confirmed"]) == (1, 0)
    assert {x.alert_id for x in left}.isdisjoint({wrong.alert_id, exempt.alert_id})
    rows = {r["department"]: r for r in after.tables["t_findings"].rows}
    assert (rows[wrong.department]["dismissed_pending"],
            rows[wrong.department]["dismissed_confirmed"]) == (0, 1)
    assert rows[exempt.department]["suppressed"] == 1
    assert after.tables["t_findings"].total["suppressed"] == 1
    assert after.summary["findings"] == before.summary["findings"] - 1


def test_two_months_from_one_pass_are_each_months_own(county):  # noqa: F811
    """ranking_last reads two months running from one dating of the alerts: the month's
    deductions and the previous month's, each exactly what the month alone gives."""
    engine, config = county["engine"], county["config"]
    period = parse_period(PERIOD)
    with engine.connect() as conn:
        both = deductions_of(conn, config.scores, config.tz, period, ("cur", "prev"))
        assert both["cur"] == deductions_in(conn, config.scores, config.tz, period)
        assert both["prev"] == deductions_in(conn, config.scores, config.tz, period.previous())
    assert both["cur"] and both["prev"] and both["cur"] != both["prev"]
