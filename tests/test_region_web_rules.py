"""The control center by each county's rules (issue 21 item 1, docs/regions.md): two
counties of one store share the department codes D04 and JW; 西湖区 (B) retitles the base
rule ``fast`` and has a rule of its own, ``b-fast``. Through a real uvicorn server: B's
office is offered ``b-fast`` in the alert filter and reads its title on the board, a city
office is offered it beside the base rules, 上城区's (A) office is not; B's office exempts
it from the alert's page as ``exemptions add`` does from the CLI — and A's office cannot
exempt a rule its county does not have, from either."""

from __future__ import annotations

import http.client
import re
from datetime import datetime, timezone
from urllib.parse import urlencode

import pytest
from argon2 import PasswordHasher
from click.testing import CliRunner
from sqlalchemy import select

from cli import cli
from conftest import event
from monitor import accounts
from monitor.db import create_store_engine
from monitor.models import Alert, Exemption, TrailEntry

A, B, CITY = "330102", "330106", "330100"
AS_OF = "2025-10-01T09:00:00+08:00"
AT = datetime(2025, 10, 9, 1, 30, tzinfo=timezone.utc)
PASSWORD = "长城-Great-Wall-7"
BASE = "- {id: fast, kind: step_too_fast, level: red, title: 环节办理过快}\n"
OWN = """\
rules:
  - {id: fast, kind: step_too_fast, level: red, title: 环节办理过快（西湖区）}
  - {id: b-fast, kind: step_too_fast, level: yellow, title: 西湖区自定：受理后即踏勘}
"""
CITY_OFFICE = """\
departments:
  - {code: C00, name: 市监察办}
users:
  - {id: c1, name: 钱市, department: C00, roles: [leader]}
items: []
"""


def _catalog(p: str) -> str:
    return f"""\
departments:
  - {{code: D04, name: 应急管理局}}
  - {{code: JW, name: 纪委监委}}
users:
  - {{id: {p}u, name: 张三, department: D04, roles: [clerk]}}
  - {{id: {p}k, name: 县监察, department: JW, roles: [monitor_l2]}}
items:
  - {{code: D04-XK-001, name: 危险化学品安全生产许可, department: D04, category: license,
     promised_days: 10, legal_days: 20}}
"""


def _fast(p: str, case: str, day: str = "2025-09-30") -> list[dict]:
    return [event(f"{case}a", case, "accept", f"{day} 10:00:00", actor=f"{p}u"),
            event(f"{case}s", case, "survey", f"{day} 10:00:58", actor=f"{p}u")]


@pytest.fixture
def store(db_url, tmp_path, monkeypatch, write_events):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MONITOR_DATABASE_URL", raising=False)
    monkeypatch.setattr(accounts, "HASHER", PasswordHasher(time_cost=1, memory_cost=8192,
                                                           parallelism=1))
    accounts._DUMMY.clear()
    (tmp_path / "rules" / "regions" / B).mkdir(parents=True)
    (tmp_path / "rules" / "fast.yaml").write_text(BASE, encoding="utf-8")
    (tmp_path / "rules" / "regions" / B / "own.yaml").write_text(OWN, encoding="utf-8")
    (tmp_path / "config.yaml").write_text(f"region: {A}\nrules_dir: rules\n", encoding="utf-8")
    runner = CliRunner()

    def run(*args, ok=(0, 3)):
        result = runner.invoke(cli, ["--db", db_url, *map(str, args)])
        assert result.exit_code in ok, result.output
        return result

    for region, p in ((A, "a"), (B, "b")):
        (tmp_path / f"{p}.yaml").write_text(_catalog(p), encoding="utf-8")
        run("ingest", "catalog", "--region", region, f"{p}.yaml")
        run("ingest", "events", "--region", region, write_events(_fast(p, f"{p}1"), f"{p}.csv"))
    # B's tier-2 monitor waits for a tier-2 monitor's approval (A's was the store's first)
    [grant] = re.findall(r"^\s*(\d+)", run("grants", "list").output, re.M)
    run("grants", "approve", grant, "--by", "ak", "--note", "西湖区县监察", ok=(0,))
    (tmp_path / "city.yaml").write_text(CITY_OFFICE, encoding="utf-8")
    run("ingest", "catalog", "--region", CITY, "city.yaml")
    run("run", "--as-of", AS_OF)
    engine = create_store_engine(db_url)
    for user in ("ak", "bk", "c1"):
        accounts.set_password(engine, user, PASSWORD, AT, "admin:test", must_change=False)
    yield run, engine, write_events
    engine.dispose()


@pytest.fixture
def server(store, tmp_path):
    from monitor.config import load_config
    from monitor.web import create_app
    from web_county import Server, clock

    _, engine, _ = store
    config = load_config(tmp_path / "config.yaml")
    running = Server(create_app(engine, config, clock(AT)), lifespan="on").start()
    running.web = config.web
    yield running
    running.stop()


class Person:
    """A signed-in person talking to the server over HTTP (no redirect followed)."""

    def __init__(self, server, engine, user: str):
        session = accounts.login(engine, user, PASSWORD, AT, server.web)
        self.port, self.cookie, self.csrf = server.port, f"pm_session={session.token}", \
            session.csrf

    def call(self, method: str, path: str, form: dict | None = None) -> tuple[int, str, str]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            headers = {"Cookie": self.cookie}
            body = None
            if form is not None:
                body = urlencode({**form, "csrf": self.csrf})
                headers["Content-Type"] = "application/x-www-form-urlencoded"
            conn.request(method, path, body, headers)
            response = conn.getresponse()
            return (response.status, response.getheader("Location") or "",
                    response.read().decode("utf-8"))
        finally:
            conn.close()

    def page(self, path: str) -> str:
        status, _, text = self.call("GET", path)
        assert status == 200, (path, status, text[:300])
        return text


def _offered(page: str) -> dict[str, str]:
    """The alert filter's rules: id → the option's text."""
    select_ = re.search(r'<select name="rule">(.*?)</select>', page, re.S).group(1)
    return {v: t.strip() for v, t in re.findall(r'<option value="([^"]+)"[^>]*>([^<]*)<',
                                                 select_)}


def _alert(engine, region: str, rule_id: str) -> int:
    with engine.connect() as conn:
        return conn.scalar(select(Alert.id).where(Alert.region == region,
                                                  Alert.rule_id == rule_id))


def test_the_filter_and_titles_follow_the_countys_rules(store, server):
    _, engine, _ = store
    b_own = _alert(engine, B, "b-fast")
    assert b_own and _alert(engine, A, "b-fast") is None  # the run judged each by its set
    office_b = Person(server, engine, "bk")
    offered = _offered(office_b.page("/alerts"))
    assert offered == {"fast": "fast · 环节办理过快（西湖区）",
                       "b-fast": "b-fast · 西湖区自定：受理后即踏勘"}
    listed = office_b.page("/alerts?rule=b-fast")
    assert re.findall(r"<tr data-alert=\"(\d+)\"", listed) == [str(b_own)], listed[-3000:]
    # the board's D04 light names both of B's rules by B's titles
    board = office_b.page("/board")
    assert "西湖区自定：受理后即踏勘" in board and "环节办理过快（西湖区）" in board
    # A's office: the base alone; the city office: the base's and B's own id
    assert _offered(Person(server, engine, "ak").page("/alerts")) == {
        "fast": "fast · 环节办理过快"}
    city = Person(server, engine, "c1")
    assert _offered(city.page("/alerts")) == {"fast": "fast · 环节办理过快",
                                              "b-fast": "b-fast · 西湖区自定：受理后即踏勘"}
    assert _offered(city.page(f"/alerts?region={B}"))["fast"] == "fast · 环节办理过快（西湖区）"
    # the rules page lists the county's own rule; the alert page checks the case by it
    assert 'data-rule="b-fast"' in office_b.page("/rules")
    alert_page = office_b.page(f"/alerts/{b_own}")
    assert "西湖区自定：受理后即踏勘" in alert_page and 'data-action="exempt"' in alert_page


def test_a_countys_own_rule_is_exempted_from_the_web_as_from_the_cli(store, server):
    run, engine, write_events = store
    b_own = _alert(engine, B, "b-fast")
    office_b = Person(server, engine, "bk")
    status, where, text = office_b.call("POST", f"/alerts/{b_own}/exempt", {
        "scope": "department", "reason": "踏勘与受理同场办理", "until": "2025-12-31"})
    assert (status, where) == (303, f"/alerts/{b_own}?done=exempt"), text[:500]
    # the CLI takes the same rule for the same office, and refuses it for A's
    ok = run("exemptions", "add", "--rule", "b-fast", "--scope", "case=b9", "--reason", "试点",
             "--by", "bk", "--until", "2099-12-31", ok=(0,))  # the CLI's clock: the wall
    assert ok.output.startswith("exemption ")
    refused = run("exemptions", "add", "--rule", "b-fast", "--scope", "department=D04",
                  "--reason", "试点", "--by", "ak", "--until", "2099-12-31", ok=(2,))
    assert "no rule with id 'b-fast'" in refused.stderr
    with engine.connect() as conn:
        rows = conn.execute(select(Exemption.rule_id, Exemption.scope, Exemption.region,
                                   Exemption.approved_by).order_by(Exemption.id)).all()
        channels = conn.scalars(select(TrailEntry.channel).where(
            TrailEntry.action == "exemption_added").order_by(TrailEntry.at)).all()
    assert [tuple(r) for r in rows] == [("b-fast", {"department": ["D04"]}, B, "bk"),
                                        ("b-fast", {"case": ["b9"]}, B, "bk")]
    assert sorted(channels) == ["cli", "web"]
    # the exemption sets B's next finding of its own rule aside, as a suppressed alert
    run("ingest", "events", "--region", B, write_events(_fast("b", "b2", "2025-10-08"),
                                                        "b2.csv"))
    run("run", "--as-of", "2025-10-09T09:00:00+08:00")
    with engine.connect() as conn:
        found = dict(conn.execute(select(Alert.rule_id, Alert.status).where(
            Alert.region == B, Alert.case_id == "b2")).tuples().all())
    assert found == {"b-fast": "suppressed", "fast": "open"}
