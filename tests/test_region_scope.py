"""A person's scope includes a region (issue 21 item 1): a county office sees and acts in
its county, a city office reads its counties and orders (督办) one level down, a province
reads its province. One permission function (monitor/authz.py) and one WHERE clause
(monitor/center/listing.py: visible) decide, for every page, API route and command."""

from __future__ import annotations

from datetime import date, datetime, timezone
from types import SimpleNamespace

import pytest
from sqlalchemy import insert

from monitor import authz, regions
from monitor.authz import Actor
from monitor.calendar import WorkCalendar
from monitor.center.listing import Filters, alerts_page
from monitor.models import Alert

NOW = datetime(2026, 1, 5, 2, 0, tzinfo=timezone.utc)


def office(region: str, *roles: str, department: str | None = None) -> Actor:
    return Actor(f"m{region}", "监察员", frozenset(roles or {authz.TIER2}), department, "web",
                 region=region)


def alert(region: str, department: str = "D04", id: int = 1):
    return SimpleNamespace(id=id, department=department, region=region)


@pytest.mark.parametrize("actor, target, action, allowed", [
    (office("330102"), "330102", "view", True),
    (office("330102"), "330102", "confirm", True),
    (office("330102"), "330106", "view", False),      # a neighbour's county
    (office("330100"), "330102", "view", True),       # the city reads its counties
    (office("330100"), "330102", "order", True),      # … and orders (督办) one level down
    (office("330100"), "330102", "confirm", False),   # … and does nothing else there
    (office("330100"), "330102", "resolve", False),
    (office("330100"), "330203", "view", False),      # another city's county
    (office("330000"), "330102", "view", True),       # the province reads all of it
    (office("330000"), "330102", "order", False),     # two levels down: not the province's
    (office("330000"), "330100", "order", True),      # its city's own alert: one down
    (office("330102", authz.TIER1, department="D04"), "330102", "resolve", True),
    (office("330102", authz.TIER1, department="D04"), "330106", "resolve", False),
    (office("330100", authz.TIER1, department="D04"), "330102", "order", False),
    (office("330100", authz.LEADER), "330102", "view", True),
    (office("330100", authz.LEADER), "330102", "order", False),
])
def test_what_an_office_may_do_depends_on_its_region(actor, target, action, allowed):
    assert authz.allowed(actor, action, alert(target)) is allowed


def test_a_refusal_names_both_regions():
    reason = authz.why_not(office("330100"), "confirm", alert("330102", id=7))
    assert reason == ("m330100 (监察员) may not confirm alert 7: it belongs to region 330102; "
                      "the office of region 330100 reads it and orders (督办) only one level "
                      "down")
    assert authz.why_not(office("330102"), "view", alert("330106", id=8)) == (
        "m330102 (监察员) may not see alert 8: it belongs to region 330106, outside 330102")


def test_an_actor_without_a_region_and_a_service_token_are_not_bound_to_one():
    assert authz.allowed(Actor("u", "u", frozenset({authz.TIER2}), None), "confirm",
                         alert("330106"))
    assert authz.allowed(Actor.of_service("bi", "read"), "view", alert("330106"))


@pytest.mark.parametrize("scope", ["330000", "330100", "330102", "429000", "420000",
                                   "000000"])
def test_the_sql_prefix_agrees_with_covers(scope):
    codes = ["330000", "330100", "330102", "330106", "330203", "320102", "429004", "429000",
             "420100", "000000"]
    prefix = regions.covered_prefix(scope)
    by_sql = [c for c in codes if (c.startswith(prefix) if prefix else c == scope)]
    assert by_sql == [c for c in codes if regions.covers(scope, c)]


def _alert_row(key: str, region: str, department: str) -> dict:
    return {"dedupe_key": key, "rule_id": "overdue", "kind": "overdue", "subject": key,
            "level": "red", "status": "open", "tier": 2, "action": "alert", "case_id": key,
            "case_ids": [key], "department": department, "raised_at": NOW,
            "updated_at": NOW, "message": "超期", "evidence": {}, "event_ids": [],
            "rule_version": "1", "assigned_to": [], "region": region}


def test_lists_show_each_office_its_regions_only(engine):
    with engine.begin() as conn:
        conn.execute(insert(Alert), [_alert_row("a", "330102", "D04"),
                                     _alert_row("b", "330106", "D04"),
                                     _alert_row("c", "330203", "D04"),
                                     _alert_row("d", "330100", "C01")])

    def seen(actor):
        page = alerts_page(engine, actor, Filters(), date(2026, 1, 5), WorkCalendar())
        return sorted(r["case_id"] for r in page.rows)

    assert seen(office("330102")) == ["a"]
    assert seen(office("330100")) == ["a", "b", "d"]
    assert seen(office("330000")) == ["a", "b", "c", "d"]
    assert seen(office("330102", authz.TIER1, department="D04")) == ["a"]
    assert seen(Actor("x", "x", frozenset({authz.TIER2}), None)) == ["a", "b", "c", "d"]


def test_narrowing_reads_one_region_the_office_sees_and_no_other():
    city = office("330100")
    assert authz.visible_region(authz.narrowed(city, "330102")) == "330102"
    with pytest.raises(authz.NotAllowed, match="may not see region 330203: outside 330100"):
        authz.narrowed(city, "330203")
    with pytest.raises(regions.RegionCodeError):
        authz.narrowed(city, "3301")
    token = Actor.of_service("bi", "read")  # not bound to a region: narrowed to any
    assert authz.visible_region(authz.narrowed(token, "330203")) == "330203"


def test_an_alert_goes_to_its_own_county_office_not_to_every_county_s(engine):
    """In a store of several counties, a tier-2 finding and an escalation are assigned to
    the tier-2 monitors of the alert's county only; the city's office reads them (above)
    but is assigned none."""
    from zoneinfo import ZoneInfo

    from sqlalchemy import select

    from monitor.escalation import escalate
    from monitor.models import OutboxMessage, User
    from monitor.supervision import Policy, assign

    with engine.begin() as conn:
        conn.execute(insert(User), [
            {"id": f"t2-{code}", "name": "监察员", "department": None, "roles": [authz.TIER2],
             "region": code} for code in ("330102", "330106", "330100")])
        rows = [{"kind": "ranking_last", "department": "D04", "rule_id": "r",
                 "region": region} for region in ("330102", "330106")]
        policy = Policy(WorkCalendar(), ZoneInfo("Asia/Shanghai"))
        assign(rows, conn, policy, NOW)
        assert [r["assigned_to"] for r in rows] == [["t2-330102"], ["t2-330106"]]
        late = dict(_alert_row("late", "330106", "D04"), tier=1, due_on=date(2026, 1, 1))
        conn.execute(insert(Alert), [late])
    escalate(engine, policy, NOW)
    with engine.connect() as conn:
        assert conn.scalar(select(Alert.tier).where(Alert.case_id == "late")) == 2
        told = set(conn.scalars(select(OutboxMessage.recipient)))
    assert "t2-330106" in told and not {"t2-330102", "t2-330100"} & told
