"""Exemptions per county (issue 21 item 1): two counties of one store share department
code D04, so an exemption scoped ``department=D04`` sets aside the findings of its
approving office's region only — its own county's, or a city office's counties' — in a
run and at the workflow gate alike. On SQLite and PostgreSQL."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime, timezone

import pytest
from sqlalchemy import select

from conftest import event, ingest_rows, rule_file
from monitor import exemptions as ex
from monitor import gate
from monitor.catalog import ingest_catalog
from monitor.engine import evaluate
from monitor.models import Alert, User

A, B, CITY = "330102", "330106", "330100"  # two counties of 杭州市, and the city
AT = datetime(2025, 9, 30, 3, 0, tzinfo=timezone.utc)  # 11:00 local
RULES = "- {id: sod, kind: same_actor_roles, level: red, gate: deny}\n"


def _catalog(prefix: str) -> str:
    return f"""\
departments:
  - {{code: D04, name: 应急管理局}}
users:
  - {{id: {prefix}1, name: 张三, department: D04, roles: [clerk]}}
items:
  - {{code: D04-XK-001, name: 危险化学品安全生产许可, department: D04, category: license,
     promised_days: 10, legal_days: 20}}
"""


def _one_person(case_id: str, actor: str) -> list[dict]:
    """Accepted, reviewed and decided by one person: a same_actor_roles finding."""
    return [event(f"{case_id}-{i}", case_id, step, f"2025-09-03 10:0{i}:00", actor=actor)
            for i, step in enumerate(("accept", "review", "decide"))]


@pytest.fixture
def counties(engine, config, tmp_path, write_events):
    """Counties A and B, each with its D04, a one-person case (A-1, B-1) and a case only
    accepted (A-2, B-2); a tier-2 office in each county and one in their city."""
    for region, prefix in ((A, "a"), (B, "b")):
        path = tmp_path / f"{prefix}.yaml"
        path.write_text(_catalog(prefix), encoding="utf-8")
        ingest_catalog(engine, path, region=region)
        ingest_rows(engine, replace(config, region=region), write_events, [
            *_one_person(f"{prefix.upper()}-1", f"{prefix}1"),
            event(f"{prefix}-acc", f"{prefix.upper()}-2", "accept", "2025-09-30 09:00:00",
                  actor=f"{prefix}1")], f"{prefix}.csv")
    _offices(engine, (A, "ajw", "县纪委"), (B, "bjw", "县纪委"), (CITY, "cjw", "市纪委"))
    return engine


def _offices(engine, *offices: tuple[str, str, str]) -> None:
    """Tier-2 monitors, written as granted (a catalog's second county holds a tier-2
    role pending approval: monitor/grants.py)."""
    with engine.begin() as conn:
        for region, user_id, name in offices:
            conn.execute(User.__table__.insert().values(region=region, id=user_id, name=name,
                                                        roles=["monitor_l2"]))


def _exempt(engine, config, approver: str) -> int:
    return ex.add(engine, ["sod"], "sod", ex.parse_scope(["department=D04"], config.tz),
                  "乡镇仅一名工作人员", approver, date(2025, 12, 31), AT, config.tz)


def _statuses(engine) -> dict[str, tuple[str, str, int | None]]:
    with engine.connect() as conn:
        return {r.case_id: (r.region, r.status, r.exemption_id) for r in conn.execute(
            select(Alert.case_id, Alert.region, Alert.status, Alert.exemption_id))}


def _ask(engine, config, rules, case_id: str, actor: str):
    """The gate on a review of ``case_id`` by the actor who accepted it."""
    return gate.check(engine, replace(config, region=A), rules, {
        "case_id": case_id, "item_code": "D04-XK-001", "step": "review", "actor": actor,
        "occurred_at": "2025-09-30 10:40:00"}, AT)


def test_a_county_exemption_sets_aside_its_own_d04_only(counties, config, tmp_path):
    rules = rule_file(tmp_path, RULES)
    ex_id = _exempt(counties, config, "ajw")
    evaluate(counties, replace(config, region=A), AT, rules=rules)
    assert _statuses(counties) == {"A-1": (A, "suppressed", ex_id), "B-1": (B, "open", None)}
    exempted, refused = (_ask(counties, config, rules, c, a) for c, a in (("A-2", "a1"),
                                                                         ("B-2", "b1")))
    assert (exempted.decision, [e["exemption_id"] for e in exempted.exempted]) == ("allow",
                                                                                  [ex_id])
    assert (refused.decision, refused.exempted) == ("deny", ())
    assert [r["rule_id"] for r in refused.reasons] == ["sod"]


def test_b_county_exemption_does_not_reach_a(counties, config, tmp_path):
    rules = rule_file(tmp_path, RULES)
    ex_id = _exempt(counties, config, "bjw")
    evaluate(counties, replace(config, region=A), AT, rules=rules)
    assert _statuses(counties) == {"A-1": (A, "open", None), "B-1": (B, "suppressed", ex_id)}
    assert _ask(counties, config, rules, "A-2", "a1").decision == "deny"
    assert _ask(counties, config, rules, "B-2", "b1").decision == "allow"


def test_a_city_office_exemption_covers_both_its_counties(counties, config, tmp_path):
    rules = rule_file(tmp_path, RULES)
    ex_id = _exempt(counties, config, "cjw")
    evaluate(counties, replace(config, region=A), AT, rules=rules)
    assert _statuses(counties) == {"A-1": (A, "suppressed", ex_id),
                                   "B-1": (B, "suppressed", ex_id)}
    for case_id, actor in (("A-2", "a1"), ("B-2", "b1")):
        verdict = _ask(counties, config, rules, case_id, actor)
        assert (verdict.decision, [e["exemption_id"] for e in verdict.exempted]) == (
            "allow", [ex_id])


def test_a_single_county_store_is_as_before(engine, config, tmp_path, write_events):
    """One county, its office's exemption: its findings set aside, in a run and at the gate."""
    config = replace(config, region=A)
    path = tmp_path / "a.yaml"
    path.write_text(_catalog("a"), encoding="utf-8")
    ingest_catalog(engine, path, region=A)
    ingest_rows(engine, config, write_events, [
        *_one_person("A-1", "a1"),
        event("a-acc", "A-2", "accept", "2025-09-30 09:00:00", actor="a1")])
    _offices(engine, (A, "ajw", "县纪委"))
    rules = rule_file(tmp_path, RULES)
    ex_id = _exempt(engine, config, "ajw")
    evaluate(engine, config, AT, rules=rules)
    assert _statuses(engine) == {"A-1": (A, "suppressed", ex_id)}
    assert _ask(engine, config, rules, "A-2", "a1").decision == "allow"
