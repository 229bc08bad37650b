"""The alert page's explanation (``rules explain``'s checks) in the officials' language:
for an alert of each shipped kind with checks, on the demo county, the explain section
holds no English word — no ASCII word of three or more letters standing alone (ids and
codes such as ``min_minutes``, ``step-too-fast``, ``CGJ2025…`` are joined to ``_``, ``-``
or digits and do not count; the ``rules explain`` command shown in <small> is a command).
The CLI's English is pinned in tests/test_rule_tools.py."""

from __future__ import annotations

import html
import re
from datetime import datetime, timezone

import pytest
from argon2 import PasswordHasher
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, func, select

from monitor import accounts
from monitor.config import load_config
from monitor.demo import run_demo
from monitor.models import Alert, User
from monitor.ruletools.explain import CHECKS
from monitor.web import create_app
from web_county import clock

AT = datetime(2026, 2, 2, 2, 0, tzinfo=timezone.utc)
SHIPPED = ("step_too_fast", "case_too_fast", "late_entry", "same_actor_roles", "overdue")
WORD = re.compile(r"(?<![\w-])[A-Za-z]{3,}(?![\w-])")


@pytest.fixture(autouse=True)
def cheap_hashes(monkeypatch):
    monkeypatch.setattr(accounts, "HASHER", PasswordHasher(time_cost=1, memory_cost=8192,
                                                           parallelism=1))
    accounts._DUMMY.clear()


def explain_section(page: str) -> tuple[str, list[str]]:
    """(the explain section's text without tags and the command, its checks)."""
    section = re.search(r'<table class="list timeline">.*?</section>', page, re.S)[0]
    checks = [html.unescape(c) for c in re.findall(r"<code>(.*?)</code>", section, re.S)]
    text = re.sub(r"<[^>]+>", " ", re.sub(r"<small>.*?</small>", "", section, flags=re.S))
    return html.unescape(text), checks


def test_the_alert_page_explains_every_shipped_kind_in_chinese(tmp_path):
    demo = run_demo(tmp_path / "demo", seed=2025, cases=600, now=AT)
    engine = create_engine(demo.database_url)
    config = load_config(None)
    assert config.language == "zh" and set(SHIPPED) <= set(CHECKS)
    with engine.connect() as conn:
        tier2 = next(u.id for u in conn.execute(select(User))
                     if "monitor_l2" in (u.roles or ()))
        first = dict(conn.execute(select(Alert.kind, func.min(Alert.id))
                                  .where(Alert.kind.in_(SHIPPED)).group_by(Alert.kind)).all())
    assert sorted(first) == sorted(SHIPPED)  # the demo county has one of each
    accounts.set_password(engine, tier2, "pw-123456789x", AT, "admin:test",
                          must_change=False)
    client = TestClient(create_app(engine, config, clock(AT)), follow_redirects=False)
    client.cookies.set("pm_session", accounts.login(engine, tier2, "pw-123456789x", AT,
                                                    config.web).token)
    for kind, alert_id in first.items():
        response = client.get(f"/alerts/{alert_id}")
        assert response.status_code == 200
        text, checks = explain_section(response.text)
        assert checks, kind
        assert WORD.findall(text) == [], (kind, checks)
    engine.dispose()


def test_the_english_words_are_what_the_check_finds():
    """The check can fail: the CLI's English checks of the same kinds are caught."""
    assert WORD.findall("审批 → 决定: 1 min 52 s vs minimum 5 min (catalog min_minutes) → "
                        "TOO FAST") == ["min", "minimum", "min", "catalog", "TOO", "FAST"]
    assert WORD.findall("step-too-fast CGJ20251204002 min_minutes 受理 2025-11-03 12:00") == []
