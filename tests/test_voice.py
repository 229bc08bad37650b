"""The citizens' voice (issue 20): ratings and complaints in, appeals and stages through
the permission function and onto the trail, a voided 差评 counting nowhere, and the
report's sections. The rule kinds themselves have golden tests (tests/rules/test_voice.yaml,
test_volume_drop.yaml, test_ranking_last.yaml)."""

from __future__ import annotations

import json
import re
import shutil
from datetime import datetime, timezone
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from cli import cli
from monitor import trailcheck
from monitor.catalog import ingest_catalog
from monitor.config import Config
from monitor.engine import evaluate
from monitor.errors import InvalidTransition, NotAllowed
from monitor.models import Alert, Complaint, Quarantine, Rating, TrailEntry
from monitor.report import build_report, parse_period
from monitor.scores import deductions
from monitor.voice import advance, appeal, decide

from conftest import CATALOG

ROOT = Path(__file__).resolve().parent.parent
AS_OF = datetime(2025, 10, 17, 1, 0, tzinfo=timezone.utc)  # Fri 09:00 in Beijing
MONITORS = """\
  - {id: m4, name: 孙监, department: D04, roles: [monitor_l1]}
  - {id: m7, name: 周监, department: D07, roles: [monitor_l1]}
  - {id: jw1, name: 县纪委一, roles: [monitor_l2]}
  - {id: jw2, name: 县纪委二, roles: [monitor_l2]}
items:
"""
RATINGS = """\
rating_id,case_id,item_code,department,rated_at,channel,score,tags,text
R1,C1,D04-XK-001,D04,2025-10-13 10:00,网上,1,办事指南之外增加新的审批条件;多次跑动,要求补交材料
R2,C2,D04-XK-001,D04,2025-10-13 11:00,窗口,5,,
R3,C3,,D04,2025-10-13 12:00,窗口,7,,
R4,C4,,D99,2025-10-13 12:00,窗口,1,,
,C5,,D04,2025-10-13 12:00,窗口,1,,
R6,C6,,D04,2025-13-13 12:00,窗口,1,,
"""


@pytest.fixture
def county(engine, tmp_path):
    path = tmp_path / "catalog.yaml"
    path.write_text(CATALOG.replace("items:\n", MONITORS, 1), encoding="utf-8")
    ingest_catalog(engine, path)
    rules = tmp_path / "rules"
    rules.mkdir()
    for name in ("bad_rating", "complaint", "rating_contradiction"):
        shutil.copy(ROOT / "rules" / f"{name}.yaml", rules)
    return Config(path=None, base_dir=tmp_path, batch_size=50, rules_dir=rules)


def _ingest(db_url: str, kind: str, path: Path) -> dict:
    result = CliRunner().invoke(cli, ["--db", db_url, "ingest", kind, str(path), "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.output.splitlines()[0])


def test_ratings_are_stored_or_quarantined_with_line_and_reason(county, engine, db_url, tmp_path):
    path = tmp_path / "ratings.csv"
    path.write_text(RATINGS, encoding="utf-8")
    first = _ingest(db_url, "ratings", path)
    assert (first["read"], first["inserted"], first["quarantined"]) == (6, 2, 4)
    with engine.connect() as conn:
        bad = {q.line: q.reason for q in conn.execute(select(Quarantine))}
        r1 = conn.execute(select(Rating).where(Rating.rating_id == "R1")).one()
    assert bad == {4: "bad_score", 5: "unknown_department", 6: "missing_field",
                   7: "bad_timestamp"}
    assert r1.tags == ["办事指南之外增加新的审批条件", "多次跑动"] and r1.score == 1
    again = _ingest(db_url, "ratings", path)  # the same file: nothing new
    assert (again["inserted"], again["duplicates"]) == (0, 2)
    jsonl = tmp_path / "more.jsonl"
    jsonl.write_text(json.dumps({"rating_id": "R9", "department": "D07", "score": 2,
                                 "rated_at": "2025-10-14T09:00:00+08:00",
                                 "tags": ["工作人员服务态度差"]}, ensure_ascii=False) + "\n",
                     encoding="utf-8")
    assert _ingest(db_url, "ratings", jsonl)["inserted"] == 1


def _load(county, engine, db_url, tmp_path) -> None:
    path = tmp_path / "ratings.csv"
    path.write_text(RATINGS, encoding="utf-8")
    _ingest(db_url, "ratings", path)
    complaints = tmp_path / "complaints.csv"
    complaints.write_text("complaint_id,received_at,channel,department,case_id,category,text\n"
                          "T1,2025-10-13 09:00,12345,D04,C1,违规收费,多收费\n", encoding="utf-8")
    _ingest(db_url, "complaints", complaints)


def _alert(engine, kind: str, subject: str):
    with engine.connect() as conn:
        return conn.execute(select(Alert).where(Alert.kind == kind,
                                                Alert.subject == subject)).one()


def test_a_voided_rating_counts_nowhere(county, engine, db_url, tmp_path):
    _load(county, engine, db_url, tmp_path)
    evaluate(engine, county, AS_OF)
    alert = _alert(engine, "bad_rating", "R1")
    assert alert.level == "red"  # not verified in 3 working days
    period = parse_period("2025-10")
    voice = [d for d in deductions(engine, county, period) if d.theme == "voice"]
    assert {d.alert_id for d in voice} >= {alert.id}
    report = build_report(engine, county, period, AS_OF)
    assert report.tables["t_ratings"].total["bad"] == 1

    with pytest.raises(NotAllowed):  # another department's monitor
        appeal(engine, "R1", "m7", "不是我们的", AS_OF)
    with pytest.raises(NotAllowed):  # a clerk
        appeal(engine, "R1", "u1", "不是我们的", AS_OF)
    appeal(engine, "R1", "m4", "申请人材料不全，非窗口原因", AS_OF)
    with pytest.raises(InvalidTransition):
        appeal(engine, "R1", "m4", "again", AS_OF)
    with pytest.raises(NotAllowed):  # tier 1 cannot decide its own appeal
        decide(engine, "R1", "m4", "voided", None, AS_OF)
    closed = decide(engine, "R1", "jw1", "voided", "经回访核实", AS_OF)
    assert closed == [alert.id]

    voided = _alert(engine, "bad_rating", "R1")
    assert (voided.status, voided.disposition) == ("resolved", "voided")
    assert not [d for d in deductions(engine, county, period) if d.alert_id == alert.id]
    assert build_report(engine, county, period, AS_OF).tables["t_ratings"].total["bad"] == 0
    evaluate(engine, county, AS_OF.replace(day=20))  # the rule raises it no more
    assert _alert(engine, "bad_rating", "R1").status == "resolved"
    with engine.connect() as conn:
        actions = [e.action for e in conn.execute(select(TrailEntry).order_by(TrailEntry.seq))]
    assert {"rating_appealed", "rating_voided"} <= set(actions)
    assert trailcheck.verify(engine).entries == len(actions)
    from monitor import supervised

    supervised.check(engine)  # the voided alerts' new state rode on their entries


def test_an_upheld_rating_stands(county, engine, db_url, tmp_path):
    _load(county, engine, db_url, tmp_path)
    evaluate(engine, county, AS_OF)
    appeal(engine, "R1", "m4", "理由", AS_OF)
    assert decide(engine, "R1", "jw2", "upheld", None, AS_OF) == []
    with engine.connect() as conn:
        assert conn.scalar(select(Rating.appeal).where(Rating.rating_id == "R1")) == "upheld"
    assert _alert(engine, "bad_rating", "R1").status == "open"
    with pytest.raises(InvalidTransition):  # decided once
        decide(engine, "R1", "jw1", "voided", None, AS_OF)


def test_complaint_stages_go_in_order_by_the_department(county, engine, db_url, tmp_path):
    _load(county, engine, db_url, tmp_path)
    evaluate(engine, county, AS_OF)
    red = _alert(engine, "complaint", "T1")
    assert red.level == "red" and "已逾期未受理" in red.message
    # a fee complaint on a case with no fee finding: the log contradicts it
    assert _alert(engine, "rating_contradiction", "complaint:T1").level == "yellow"
    with pytest.raises(InvalidTransition, match="in order"):
        advance(engine, "T1", "handled", "m4", AS_OF)
    with pytest.raises(InvalidTransition, match="did you mean"):
        advance(engine, "T1", "acepted", "m4", AS_OF)
    with pytest.raises(NotAllowed):
        advance(engine, "T1", "accepted", "m7", AS_OF)
    assert advance(engine, "T1", "accepted", "m4", AS_OF) == "受理"
    with pytest.raises(InvalidTransition, match="already"):
        advance(engine, "T1", "accepted", "jw1", AS_OF)
    with engine.connect() as conn:
        assert conn.scalar(select(Complaint.accepted_at)) is not None
        assert conn.scalar(select(TrailEntry.action).order_by(TrailEntry.seq.desc())
                           .limit(1)) == "complaint_accepted"


def test_the_cli_speaks_for_ratings_and_complaints(county, engine, db_url, tmp_path):
    _load(county, engine, db_url, tmp_path)
    run = CliRunner().invoke
    listed = run(cli, ["--db", db_url, "ratings", "list", "--bad"])
    assert listed.exit_code == 0 and "R1" in listed.output and "R2" not in listed.output
    usage = run(cli, ["--db", db_url, "ratings", "decide", "R1", "--by", "jw1"])
    assert usage.exit_code == 2 and "--uphold or --void" in usage.output
    refused = run(cli, ["--db", db_url, "ratings", "appeal", "R1", "--by", "u1", "--reason", "x"])
    assert refused.exit_code == 1 and "Error:" in refused.output and "Traceback" not in refused.output
    out = run(cli, ["--db", db_url, "complaints", "list", "--open", "--format", "json"])
    assert [c["complaint_id"] for c in json.loads(out.output)] == ["T1"]


def test_a_volume_drop_rule_with_a_bad_param_names_its_line(tmp_path):
    path = tmp_path / "volume.yaml"
    path.write_text("rules:\n  - id: v\n    kind: volume_drop\n    params:\n"
                    "      measure: casez\n", encoding="utf-8")
    result = CliRunner().invoke(cli, ["rules", "check", str(path)])
    assert result.exit_code == 1
    assert f"{path}:4: params.measure must be one of cases, fees" in result.output


def test_the_control_center_shows_ratings_and_complaints(config, tmp_path):
    from fastapi.testclient import TestClient

    from monitor import accounts
    from monitor.ingest import ingest_voice
    from monitor.web import create_app
    from web_county import AT, HOSTILE, PASSWORD, clock, county_copy

    with county_copy(tmp_path / "county", config) as c:
        ratings = tmp_path / "r.jsonl"
        ratings.write_text(json.dumps({"rating_id": "R1", "case_id": "c1", "department": "D04",
                                       "rated_at": "2025-10-08T10:00:00+08:00", "score": 1,
                                       "tags": ["多次跑动"], "text": HOSTILE},
                                      ensure_ascii=False) + "\n", encoding="utf-8")
        complaints = tmp_path / "c.jsonl"
        complaints.write_text(json.dumps({"complaint_id": "T1", "case_id": "c1",
                                          "department": "D04", "category": "服务态度",
                                          "received_at": "2025-10-08T11:00:00+08:00"},
                                         ensure_ascii=False) + "\n", encoding="utf-8")
        list(ingest_voice("ratings", c.engine, c.config, [str(ratings)], AT))
        list(ingest_voice("complaints", c.engine, c.config, [str(complaints)], AT))
        app = create_app(c.engine, c.config, clock())
        client = TestClient(app, base_url="http://testserver", follow_redirects=False)
        session = accounts.login(c.engine, "m4", PASSWORD, AT, c.config.web)
        client.cookies.set("pm_session", session.token)
        board = client.get("/board").text
        assert re.search(r'data-total="bad_ratings">1<', board)
        assert re.search(r'data-total="open_complaints">1<', board)
        page = client.get("/cases/c1").text
        assert "多次跑动" in page and "服务态度" in page and "未反馈" in page
        assert "<script>alert(1)</script>" not in page and "&lt;script&gt;" in page
