"""A department's name is its county's (issue 21 item 1): two counties of one store both
use D04 and D07 but name them differently; a message about B's D04 alert names B's
department, never A's, and ``alerts list --department D04`` does not mix the two counties
unasked (``REGION:CODE`` or ``--region`` picks one)."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import pytest
from sqlalchemy import select

import test_region_departments as base
from monitor.db import create_store_engine
from monitor.models import Alert, OutboxMessage

A, B = base.A, base.B
ORIGINAL = base._catalog
NAMES = {"a": ("上城区应急管理局", "上城区城市管理局"), "b": ("西湖区应急管理局", "西湖区城市管理局")}


def _catalog(prefix: str) -> str:
    d04, d07 = NAMES[prefix]
    return ORIGINAL(prefix).replace("name: 应急管理局", f"name: {d04}").replace(
        "name: 城市管理局", f"name: {d07}")


@pytest.fixture
def store(db_url, tmp_path, monkeypatch, write_events):
    monkeypatch.setattr(base, "_catalog", _catalog)
    return base._store(db_url, tmp_path, monkeypatch, write_events, (A, B))


def _texts(url: str, recipient: str) -> list[str]:
    engine = create_store_engine(url)
    with engine.connect() as conn:
        out = list(conn.scalars(select(OutboxMessage.text).where(
            OutboxMessage.recipient == recipient, OutboxMessage.channel == "sms")))
    engine.dispose()
    return out


def test_a_notice_names_the_department_of_the_alerts_county(store, db_url):
    """B's D04 monitor (b3) is told of B's D04 alerts under B's name for D04; A's (a3)
    under A's — with the code alone, one county's name stood for both."""
    store("run", "--as-of", base.AS_OF)
    b_texts, a_texts = _texts(db_url, "b3"), _texts(db_url, "a3")
    assert b_texts and a_texts
    assert all("西湖区应急管理局" in t and "上城区" not in t for t in b_texts), b_texts
    assert all("上城区应急管理局" in t and "西湖区" not in t for t in a_texts), a_texts


def test_a_daily_digest_names_the_department_of_the_alerts_county(db_url, tmp_path, monkeypatch,
                                                                 write_events):
    """a3 and b3 take a daily digest: each lists its county's alerts under its county's
    names (with the code alone, one county's name stood in both digests)."""
    from monitor.config import load_config
    from monitor.supervision import policy_for
    from monitor.tier1 import send_digests

    # A's D04 also received more than it took online: a warning (digested) in each county
    monkeypatch.setitem(base.RECEIVED, (A, "D04"), "300.00")
    monkeypatch.setattr(base, "_catalog", _catalog)
    store = base._store(db_url, tmp_path, monkeypatch, write_events, (A, B))
    for user in ("a3", "b3"):
        store("users", "set-delivery", user, "digest", ok=(0,))
    store("run", "--as-of", base.AS_OF)
    engine = create_store_engine(db_url)
    try:
        policy = policy_for(load_config("config.yaml"))
        assert send_digests(engine, policy,
                            datetime(2025, 10, 6, 1, 0, tzinfo=timezone.utc)) == 2
    finally:
        engine.dispose()
    for user, own, other in (("a3", "上城区", "西湖区"), ("b3", "西湖区", "上城区")):
        texts = _texts(db_url, user)
        assert any(t.startswith("【每日汇总】") for t in texts), texts
        assert all(own in t and other not in t for t in texts), texts


def test_an_escalation_digest_names_the_department_of_the_alerts_county(
        db_url, tmp_path, monkeypatch, write_events):
    """Past their deadlines, each county's D04 alerts escalate: the one SMS to each
    county's D04 monitor for several alerts names that county's department."""
    monkeypatch.setitem(base.RECEIVED, (A, "D04"), "300.00")
    monkeypatch.setattr(base, "_catalog", _catalog)
    store = base._store(db_url, tmp_path, monkeypatch, write_events, (A, B))
    store("run", "--as-of", base.AS_OF)
    store("escalate", "--as-of", "2025-10-20T09:00:00+08:00", ok=(0,))
    for user, own, other in (("a3", "上城区", "西湖区"), ("b3", "西湖区", "上城区")):
        texts = _texts(db_url, user)
        assert any(t.startswith("【督办】") and "2件" in t for t in texts), texts
        assert all(own in t and other not in t for t in texts), texts


def test_alerts_list_by_department_does_not_mix_counties(store, db_url):
    store("run", "--as-of", base.AS_OF)
    both = store("alerts", "list", "--department", "D04", ok=(2,))
    assert "2 counties" in both.output and f"{A}:D04 上城区应急管理局" in both.output \
        and f"{B}:D04 西湖区应急管理局" in both.output, both.output
    assert len(both.output.strip().splitlines()) == 1
    engine = create_store_engine(db_url)
    with engine.connect() as conn:
        of_b = set(conn.scalars(select(Alert.id).where(Alert.region == B,
                                                        Alert.department == "D04")))
    engine.dispose()
    assert of_b
    for args in (["--department", f"{B}:D04"], ["--department", "D04", "--region", B],
                 ["--department", f"{B}:D04", "--region", "330100"]):
        listed = json.loads(store("alerts", "list", "--format", "json", *args, ok=(0,)).output)
        assert {r["id"] for r in listed} == of_b, args
    wrong = store("alerts", "list", "--department", f"{B}:D04", "--region", A, ok=(2,))
    assert f"region {B} is not under --region {A}" in wrong.output
    bad = store("alerts", "list", "--department", "3301:D04", ok=(2,))
    assert "REGION:CODE" in bad.output
    typo = store("alerts", "list", "--department", f"{B}:D4", ok=(2,))
    assert "D04" in typo.output  # did you mean
