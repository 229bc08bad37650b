"""The control center through Starlette's test client: every route × every role with exact
status codes, CSRF, field errors, internal errors with an id, cookies and headers, the API,
and the monitoring log and trail the web writes."""

from __future__ import annotations

import logging
import re

import pytest
from argon2 import PasswordHasher
from fastapi.testclient import TestClient
from sqlalchemy import select

from monitor import accounts
from monitor.models import Activity, Alert, TrailEntry
from monitor.supervision import possible_actions
from monitor.web import create_app
from web_county import AT, PASSWORD, clock, county_copy

ROLES = ("anonymous", "own", "other", "tier2", "leader", "service")
USER_OF = {"own": "m4", "other": "m7", "tier2": "k1", "leader": "boss"}


@pytest.fixture(autouse=True)
def cheap_hashes(monkeypatch):
    monkeypatch.setattr(accounts, "HASHER", PasswordHasher(time_cost=1, memory_cost=8192,
                                                           parallelism=1))
    accounts._DUMMY.clear()


@pytest.fixture
def county(config, tmp_path):
    with county_copy(tmp_path / "county", config) as county:
        yield county


@pytest.fixture
def app(county):
    return create_app(county.engine, county.config, clock())


def client_as(app, county, role: str) -> tuple[TestClient, str]:
    """A client signed in as ``role`` (a browser session; the service uses a token);
    (client, the CSRF token of its forms)."""
    client = TestClient(app, base_url="http://testserver", follow_redirects=False)
    if role == "service":
        _, token = accounts.create_token(county.engine, AT, "admin:test", service="oa",
                                         scope="read")
        client.headers["Authorization"] = f"Bearer {token}"
        return client, ""
    if role == "anonymous":
        return client, ""
    session = accounts.login(county.engine, USER_OF[role], PASSWORD, AT, county.config.web)
    client.cookies.set("pm_session", session.token)
    return client, session.csrf


def api_as(app, county, role: str) -> TestClient:
    """A client with a bearer token: a personal token for people, the service's for it."""
    client = TestClient(app, follow_redirects=False)
    if role == "anonymous":
        return client
    kwargs = ({"service": "oa", "scope": "read"} if role == "service"
              else {"user_id": USER_OF[role]})
    _, token = accounts.create_token(county.engine, AT, "admin:test", **kwargs)
    client.headers["Authorization"] = f"Bearer {token}"
    return client


LOGIN = "/login"
PAGES = {  # route → expected (status, Location prefix) per role
    "GET /board": ["303 /login", "200", "200", "200", "200", "303 /login"],
    "GET /queue": ["303 /login", "200", "200", "200", "200", "303 /login"],
    "GET /alerts": ["303 /login", "200", "200", "200", "200", "303 /login"],
    "GET /alerts/{id}": ["303 /login", "200", "403", "200", "200", "303 /login"],
    "GET /cases/c1": ["303 /login", "200", "403", "200", "200", "303 /login"],
    "GET /cases/nope": ["303 /login", "404", "404", "404", "404", "303 /login"],
    "GET /reports": ["303 /login", "200", "200", "200", "200", "303 /login"],
    "GET /rules": ["303 /login", "200", "200", "200", "200", "303 /login"],
    "GET /password": ["303 /login", "200", "200", "200", "200", "303 /login"],
    "POST /alerts/{id}/ack": ["303 /login", "303 /alerts/", "403", "303 /alerts/", "403",
                              "303 /login"],
    "POST /alerts/{id}/resolve": ["303 /login", "303 /alerts/", "403", "303 /alerts/", "403",
                                  "303 /login"],
    "POST /alerts/{id}/order": ["303 /login", "403", "403", "303 /alerts/", "403",
                                "303 /login"],
    "POST /alerts/{id}/escalate": ["303 /login", "403", "403", "303 /alerts/", "403",
                                   "303 /login"],
    "POST /alerts/{id}/confirm": ["303 /login", "403", "403", "409", "403", "303 /login"],
    "POST /alerts/{id}/reject": ["303 /login", "403", "403", "409", "403", "303 /login"],
    "POST /alerts/{id}/exempt": ["303 /login", "403", "403", "303 /alerts/", "403",
                                 "303 /login"],
    "POST /alerts/999/ack": ["303 /login", "404", "404", "404", "404", "303 /login"],
    # one's own delivery (a message per alert or a daily digest): any signed-in person
    "POST /delivery": ["303 /login", "303 /board", "303 /board", "303 /board", "303 /board",
                       "303 /login"],
}
API = {
    "GET /api/v1/alerts": ["401", "200", "200", "200", "200", "200"],
    "GET /api/v1/alerts/{id}": ["401", "200", "403", "200", "200", "200"],
    "GET /api/v1/alerts/999": ["401", "404", "404", "404", "404", "404"],
    "POST /api/v1/alerts/{id}/ack": ["401", "200", "403", "200", "403", "403"],
    "POST /api/v1/alerts/{id}/resolve": ["401", "200", "403", "200", "403", "403"],
    "POST /api/v1/alerts/{id}/order": ["401", "403", "403", "200", "403", "403"],
    "POST /api/v1/alerts/{id}/escalate": ["401", "403", "403", "200", "403", "403"],
    "POST /api/v1/alerts/{id}/confirm": ["401", "403", "403", "409", "403", "403"],
    "POST /api/v1/alerts/{id}/reject": ["401", "403", "403", "409", "403", "403"],
    "POST /api/v1/alerts/{id}/fly": ["401", "404", "404", "404", "404", "404"],
    "GET /api/v1/openapi.json": ["200"] * 6,
}
FORM = {"note": "已电话核实", "disposition": "rectified", "scope": "case",
        "reason": "试点窗口", "until": "2025-12-31", "delivery": "digest"}
BODY = {"note": "已电话核实", "disposition": "rectified"}


def _cases(table):
    return [(route, role, want) for route, wants in table.items()
            for role, want in zip(ROLES, wants)]


@pytest.mark.parametrize("route, role, want", _cases(PAGES) + _cases(API))
def test_authorization_matrix(app, county, route, role, want):
    """Every route × every role, with the exact status (and where a redirect goes)."""
    method, path = route.split(" ")
    path = path.replace("{id}", str(county.alert))
    if path.startswith("/api/"):
        client = api_as(app, county, role)
        response = client.request(method, path, json=BODY if method == "POST" else None)
    else:
        client, csrf = client_as(app, county, role)
        response = (client.post(path, data={**FORM, "csrf": csrf}) if method == "POST"
                    else client.get(path))
    status, _, location = want.partition(" ")
    assert response.status_code == int(status), (route, role, response.text[:500])
    if location:
        assert response.headers["location"].startswith(location)


def test_the_api_lists_only_what_the_caller_may_see(app, county):
    assert api_as(app, county, "own").get("/api/v1/alerts").json()["total"] == 1
    assert api_as(app, county, "other").get("/api/v1/alerts").json() == {
        "items": [], "page": 1, "per_page": 50, "total": 0}
    item = api_as(app, county, "service").get("/api/v1/alerts?level=red").json()["items"][0]
    assert (item["id"], item["department"], item["rule_id"], item["status"]) == (
        county.alert, "D04", "fast", "open")
    assert api_as(app, county, "tier2").get("/api/v1/alerts?level=purple").status_code == 422


def test_api_actions_are_traced_with_the_user_and_channel_api(app, county):
    client = api_as(app, county, "own")
    done = client.post(f"/api/v1/alerts/{county.alert}/ack", json={"note": "在查"})
    assert done.json() == {"alert_id": county.alert, "action": "acknowledged",
                           "status": "acknowledged", "tier": 1, "due_on": "2025-10-11",
                           "order_id": None}
    again = client.post(f"/api/v1/alerts/{county.alert}/ack", json={})
    assert (again.status_code, again.json()["detail"]) == (
        409, f"cannot acknowledge alert {county.alert}: it is acknowledged, not open")
    with county.engine.connect() as conn:
        last = conn.execute(select(TrailEntry).order_by(TrailEntry.seq.desc())).first()
    assert (last.action, last.actor, last.channel) == ("acknowledged", "m4", "api")


def test_api_field_errors_are_422_with_the_field(app, county):
    client = api_as(app, county, "own")
    url = f"/api/v1/alerts/{county.alert}/resolve"
    missing = client.post(url, json={"disposition": "rectified"})
    assert missing.status_code == 422
    assert missing.json()["detail"] == [{"loc": ["body", "note"], "msg": "required",
                                         "type": "value_error"}]
    wrong = client.post(url, json={"note": "x", "disposition": "done"})
    assert wrong.status_code == 422
    assert wrong.json()["detail"][0]["loc"] == ["body", "disposition"]
    assert client.post("/api/v1/alerts/abc/ack", json={}).status_code == 422


def test_openapi_describes_the_api_only(app, county):
    spec = TestClient(app).get("/api/v1/openapi.json").json()
    assert set(spec["paths"]) == {"/api/v1/alerts", "/api/v1/alerts/{alert_id}",
                                  "/api/v1/alerts/{alert_id}/{action}", "/api/v1/gate",
                                  "/api/v1/holds/{hold_id}/ack",
                                  "/api/v1/holds/{hold_id}/release"}
    assert "AlertOut" in spec["components"]["schemas"]


def test_a_session_cookie_needs_the_csrf_header_to_change_anything(app, county):
    client, csrf = client_as(app, county, "own")
    url = f"/api/v1/alerts/{county.alert}/ack"
    assert client.get("/api/v1/alerts").status_code == 200
    assert client.post(url, json={}).status_code == 403
    assert client.post(url, json={}, headers={"X-CSRF-Token": csrf}).status_code == 200


@pytest.mark.parametrize("csrf", [None, "", "forged"])
def test_forms_without_the_csrf_token_are_refused(app, county, csrf):
    client, _ = client_as(app, county, "own")
    data = {"note": "x"} | ({} if csrf is None else {"csrf": csrf})
    response = client.post(f"/alerts/{county.alert}/ack", data=data)
    assert response.status_code == 403
    assert "表单已失效，请刷新页面后重试。" in response.text
    with county.engine.connect() as conn:
        assert conn.scalar(select(Alert.status)) == "open"


def login(client: TestClient, user: str, password: str, token: str | None = None):
    page = client.get("/login")
    token = re.search(r'name="csrf" value="([^"]+)"', page.text)[1] if token is None else token
    return client.post("/login", data={"csrf": token, "user_id": user, "password": password,
                                       "next": "/queue"})


def test_login_logout_and_the_monitoring_log(app, county):
    client = TestClient(app, follow_redirects=False)
    response = login(client, "m4", PASSWORD)
    assert (response.status_code, response.headers["location"]) == (303, "/queue")
    cookie = response.headers["set-cookie"]
    assert "pm_session=" in cookie and "HttpOnly" in cookie and "SameSite=strict" in cookie
    assert "Secure" not in cookie  # plain HTTP here; over HTTPS it is set (next test)
    assert client.get("/queue").status_code == 200
    csrf = re.search(r'name="csrf" value="([^"]+)"', client.get("/board").text)[1]
    assert client.post("/logout", data={"csrf": csrf}).headers["location"] == "/login"
    assert client.get("/board").status_code == 303
    with county.engine.connect() as conn:
        actions = conn.scalars(select(Activity.action).where(Activity.user_id == "m4")
                               .order_by(Activity.at)).all()
    assert actions == ["login", "view", "view", "logout"]


def test_the_cookie_is_secure_over_https_and_pages_carry_security_headers(app, county):
    client = TestClient(app, base_url="https://testserver", follow_redirects=False)
    response = login(client, "m4", PASSWORD)
    assert "Secure" in response.headers["set-cookie"]
    page = client.get("/board")
    assert "default-src 'none'" in page.headers["content-security-policy"]
    assert page.headers["x-frame-options"] == "DENY"


def test_login_without_its_csrf_token_is_refused(app, county):
    client = TestClient(app, follow_redirects=False)
    assert login(client, "m4", PASSWORD, token="forged").status_code == 403


@pytest.mark.parametrize("user, password", [("m4", "wrong-password"), ("ghost", PASSWORD)])
def test_failed_logins_say_the_same_and_lock_after_five(app, county, user, password):
    client = TestClient(app, follow_redirects=False)
    for _ in range(5):
        response = login(client, user, password)
        assert response.status_code == 401
        assert "用户名或密码错误，或账户已被暂时锁定。" in response.text
    assert login(client, user, PASSWORD).status_code == (401 if user == "m4" else 401)


def test_first_login_must_change_the_password(app, county):
    accounts.set_password(county.engine, "m7", PASSWORD, AT, "admin:test")  # must change
    client = TestClient(app, follow_redirects=False)
    assert login(client, "m7", PASSWORD).headers["location"] == "/password"
    assert client.get("/board").headers["location"] == "/password"
    assert client.get("/api/v1/alerts").status_code == 403
    csrf = re.search(r'name="csrf" value="([^"]+)"', client.get("/password").text)[1]
    short = client.post("/password", data={"csrf": csrf, "old": PASSWORD, "new": "short",
                                           "repeat": "short"})
    assert short.status_code == 422 and "at least 10 characters" in short.text
    done = client.post("/password", data={"csrf": csrf, "old": PASSWORD,
                                          "new": "新口令-Changed-99", "repeat": "新口令-Changed-99"})
    assert done.headers["location"] == "/board?done=password_changed"
    assert client.get("/board").status_code == 200


def test_a_form_with_a_missing_field_says_which(app, county):
    client, csrf = client_as(app, county, "own")
    response = client.post(f"/alerts/{county.alert}/resolve", data={"csrf": csrf, "note": "x"})
    assert response.status_code == 422
    assert 'data-field="disposition"' in response.text and "Traceback" not in response.text
    tier2, csrf2 = client_as(app, county, "tier2")
    for field, data, label in (("reason", {"scope": "case", "until": "2026-12-31"}, "理由"),
                               ("until", {"scope": "case", "reason": "x"}, "有效期至")):
        response = tier2.post(f"/alerts/{county.alert}/exempt", data={"csrf": csrf2, **data})
        assert response.status_code == 422
        assert f'data-field="{field}">{label}: 必填' in response.text  # named as the form does
    bad = client.get("/queue?level=purple")
    assert bad.status_code == 422 and "level: one of warning, yellow, red" in bad.text


def test_hostile_text_is_escaped_everywhere(app, county):
    client, _ = client_as(app, county, "tier2")
    for path in ("/board", f"/alerts/{county.alert}", "/cases/c1", "/queue"):
        html = client.get(path).text
        assert "<script>alert(1)</script>" not in html and "<img src=x" not in html
    page = client.get("/cases/c1").text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;&#34;&gt;&lt;img src=x onerror=alert(2)&gt;" \
        in page
    own, _ = client_as(app, county, "own")
    assert "王监察&lt;script&gt;" in own.get("/board").text


def test_an_internal_error_shows_an_id_that_is_logged(app, county, monkeypatch, caplog):
    import monitor.web.pages as pages

    def broken(*args, **kwargs):
        raise RuntimeError("a bug")

    monkeypatch.setattr(pages, "board", broken)
    client, _ = client_as(app, county, "own")
    client = TestClient(app, raise_server_exceptions=False, cookies=client.cookies)
    with caplog.at_level(logging.ERROR, logger="monitor.web.app"):
        response = client.get("/board")
    assert response.status_code == 500
    error_id = re.search(r'data-error-id="([0-9a-f]{10})"', response.text)[1]
    assert "Traceback" not in response.text and "a bug" not in response.text
    assert any(error_id in r.getMessage() for r in caplog.records)


def test_the_actions_offered_are_those_the_state_allows(app, county):
    """A page offers exactly what the supervision functions then accept."""
    client, _ = client_as(app, county, "tier2")
    html = client.get(f"/alerts/{county.alert}").text
    offered = re.search(r'data-actions="([^"]*)"', html)[1].split()
    with county.engine.connect() as conn:
        alert = conn.execute(select(Alert)).one()
    assert offered == [a for a in ("ack", "resolve", "order", "escalate", "confirm", "reject")
                       if a in possible_actions(alert)]
    assert offered == ["ack", "resolve", "order", "escalate"]
    leader, _ = client_as(app, county, "leader")
    assert 'data-actions=""' in leader.get(f"/alerts/{county.alert}").text
    assert "<form method=\"post\" action=\"/alerts/" not in leader.get(
        f"/alerts/{county.alert}").text


# ---------------------------------------------------------------- the state an alert is in

STATES = {  # state → the actions (user, action, note, disposition) that lead there
    "open, tier 1": [],
    "acknowledged, tier 1": [("m4", "ack")],
    "resolved, tier 1": [("m4", "resolve")],
    "open, tier 2": [("k1", "order")],
    "resolved, tier 2": [("k1", "order"), ("m4", "resolve")],
    "confirmed": [("k1", "order"), ("m4", "resolve"), ("k1", "confirm")],
}
EVERY = ("ack", "resolve", "order", "escalate", "confirm", "reject")


def _do(county, user, action):
    from monitor.authz import Actor
    from monitor.center.act import act
    from monitor.models import User
    from monitor.rules.loader import load_rules

    with county.engine.connect() as conn:
        actor = Actor.of_user(conn.execute(select(User).where(User.id == user)).one(), "web")
    act(county.engine, county.config, load_rules([county.config.rules_dir]), actor,
        county.alert, action, AT, note="说明", disposition="explained")


@pytest.mark.parametrize("state", STATES)
def test_possible_actions_are_what_the_supervision_functions_accept(state, config, tmp_path):
    """What a page offers for an alert's state is exactly what the supervision functions
    then accept: every other action is refused as not allowed in that state (409), each
    offered one succeeds (on its own copy of the county)."""
    from contextlib import ExitStack

    from monitor.errors import InvalidTransition

    def county_in_state(folder):
        c = stack.enter_context(county_copy(folder, config))
        for user, action in STATES[state]:
            _do(c, user, action)
        return c

    with ExitStack() as stack:
        county = county_in_state(tmp_path / "base")
        with county.engine.connect() as conn:
            possible = possible_actions(conn.execute(select(Alert)).one())
        for action in EVERY:
            if action in possible:
                _do(county_in_state(tmp_path / action), "k2" if action == "confirm" else "k1",
                    action)
            else:
                with pytest.raises(InvalidTransition):
                    _do(county, "k2" if action == "confirm" else "k1", action)


def test_only_the_web_package_imports_the_web_framework():
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent / "monitor"
    pattern = re.compile(r"^\s*(from|import)\s+(fastapi|starlette|uvicorn|jinja2|click)\b", re.M)
    offenders = [str(p.relative_to(root)) for p in root.rglob("*.py")
                 if "web" not in p.relative_to(root).parts[:1] and pattern.search(p.read_text())]
    assert offenders == []


def test_web_logins_keep_a_monitor_from_being_inactive(county):
    """The monitoring log the web writes is what inactive_monitor reads: a department
    monitor who never logged in is found away; one web login the day before, not."""
    from datetime import datetime, timezone

    from monitor.engine import evaluate
    from monitor.rules.loader import load_rules

    (county.config.rules_dir / "away.yaml").write_text(
        "- {id: away, kind: inactive_monitor, level: yellow, params: {days: 2}}\n",
        encoding="utf-8")
    rules = [r for r in load_rules([county.config.rules_dir]) if r.id == "away"]
    as_of = datetime(2025, 10, 14, 10, 0, tzinfo=timezone.utc)

    def away() -> list[str]:
        [outcome] = evaluate(county.engine, county.config, as_of, rules=rules, dry_run=True)
        return [f.subject.split("|")[0] for f in outcome.findings]

    def web_login(user: str, day: datetime) -> None:
        app = create_app(county.engine, county.config, clock(day))
        assert login(TestClient(app, follow_redirects=False), user, PASSWORD).status_code == 303

    assert away() == []  # no monitoring log at all: nothing is found
    web_login("m7", datetime(2025, 9, 29, 1, 0, tzinfo=timezone.utc))  # the log begins
    assert away() == ["m4"]  # D04 has an open alert and its monitor never logged in
    web_login("m4", datetime(2025, 10, 13, 1, 0, tzinfo=timezone.utc))
    assert away() == []


def test_a_user_who_is_no_monitor_sees_nothing(app, county):
    """A clerk given a password by mistake: no department's alerts, reports or cases."""
    accounts.set_password(county.engine, "u1", PASSWORD, AT, "admin:test", must_change=False)
    client = TestClient(app, follow_redirects=False)
    client.cookies.set("pm_session", accounts.login(county.engine, "u1", PASSWORD, AT,
                                                    county.config.web).token)
    assert client.get("/reports").status_code == 403
    assert client.get("/cases/c1").status_code == 403
    assert client.get(f"/alerts/{county.alert}").status_code == 403
    assert 'data-department=' not in client.get("/board").text
    assert 'data-alert=' not in client.get("/queue").text
    _, token = accounts.create_token(county.engine, AT, "admin:test", user_id="u1")
    api = TestClient(app, headers={"Authorization": f"Bearer {token}"})
    assert api.get("/api/v1/alerts").status_code == 403


def test_the_reports_page_shows_words_not_ids(app, county):
    """The red list of the reports page names the rule by its title and the status as a
    word (the report's and the pages' one vocabulary), never `fast` or `open`."""
    client, _ = client_as(app, county, "tier2")
    page = client.get("/reports?period=2025-09")
    assert page.status_code == 200
    red = page.text.split('id="t_red"', 1)[1].split("</table>", 1)[0]
    assert "<td class=\"\">环节办理过快</td>" in red and "<td class=\"\">待处置</td>" in red
    assert ">fast<" not in red and ">open<" not in red


def test_the_finding_s_own_title_is_shown(app, county):
    """An alert shows the title it was raised with (a fee finding on a fine: 罚没款…), on
    its page and, short, in the list; an alert from before titles were kept (NULL) shows
    its rule's title."""
    from sqlalchemy import update

    from monitor.models import Alert

    client, _ = client_as(app, county, "own")
    page = client.get(f"/alerts/{county.alert}").text
    assert '<p class="title" data-title>环节办理过快</p>' in page  # the rule's, as raised
    with county.engine.begin() as conn:
        conn.execute(update(Alert).where(Alert.id == county.alert)
                     .values(title="罚没款未经网上缴纳（罚没事项未经网上缴纳即办结）"))
    page = client.get(f"/alerts/{county.alert}").text
    assert "<p class=\"title\" data-title>罚没款未经网上缴纳（罚没事项未经网上缴纳即办结）</p>" in page
    listing = client.get("/alerts").text
    assert '<td title="fast">罚没款未经网上缴纳</td>' in listing
    with county.engine.begin() as conn:
        conn.execute(update(Alert).where(Alert.id == county.alert).values(title=None))
    assert '<p class="title" data-title>环节办理过快</p>' in client.get(
        f"/alerts/{county.alert}").text


# ---------------------------------------------------------------- holds (中止流程)

def _hold(county) -> int:
    """A hold on the county's alert, as a halting rule would have placed it."""
    from sqlalchemy import insert

    from monitor.models import Hold

    with county.engine.begin() as conn:
        alert = conn.execute(select(Alert).where(Alert.id == county.alert)).one()
        return conn.execute(insert(Hold).values(
            case_id=alert.case_id, alert_id=alert.id, rule_id=alert.rule_id,
            department=alert.department, held_at=AT, status="held").returning(Hold.id)).scalar()


@pytest.mark.parametrize("role, want", list(zip(ROLES, [
    "303 /login", "303 /alerts/", "403", "303 /alerts/", "403", "303 /login"])))
def test_a_hold_is_released_from_the_alert_page_by_whom_the_cli_allows(app, county, role,
                                                                         want):
    """The same rule as ``holds release``: tier 1 of the alert's department or tier 2, with
    a note, through monitor.holds, on the trail with channel web."""
    from monitor.models import Hold

    hold_id = _hold(county)
    client, csrf = client_as(app, county, role)
    offered = client.get(f"/alerts/{county.alert}").text
    response = client.post(f"/holds/{hold_id}/release", data={"note": "已核实，可继续",
                                                              "csrf": csrf})
    status, _, location = want.partition(" ")
    assert response.status_code == int(status), response.text[:300]
    with county.engine.connect() as conn:
        hold = conn.execute(select(Hold).where(Hold.id == hold_id)).one()
        entries = conn.execute(select(TrailEntry).where(TrailEntry.action == "released")).all()
    if location == "/alerts/":
        assert response.headers["location"] == f"/alerts/{county.alert}?done=release"
        assert f'action="/holds/{hold_id}/release"' in offered
        assert (hold.status, hold.released_by, hold.release_note) == (
            "released", USER_OF[role], "已核实，可继续")
        [entry] = entries
        assert (entry.actor, entry.channel, entry.alert_id) == (USER_OF[role], "web",
                                                                county.alert)
        page = client.get(f"/alerts/{county.alert}?done=release").text
        assert "已恢复流程。" in page and 'action="/holds/' not in page  # nothing left to release
        again = client.post(f"/holds/{hold_id}/release", data={"note": "再次", "csrf": csrf})
        assert again.status_code == 409 and f"cannot release hold {hold_id}" in again.text
    else:
        assert hold.status == "held" and entries == []
        assert 'action="/holds/' not in offered


def test_releasing_a_hold_needs_the_csrf_token_and_a_note(app, county):
    from monitor.models import Hold

    hold_id = _hold(county)
    client, csrf = client_as(app, county, "own")
    assert client.post(f"/holds/{hold_id}/release", data={"note": "x"}).status_code == 403
    assert client.post(f"/holds/{hold_id}/release", data={"note": "x", "csrf": "forged"}
                       ).status_code == 403
    response = client.post(f"/holds/{hold_id}/release", data={"note": " ", "csrf": csrf})
    assert response.status_code == 422 and 'data-field="note"' in response.text
    assert client.post("/holds/999/release", data={"note": "x", "csrf": csrf}
                       ).status_code == 404
    with county.engine.connect() as conn:
        assert conn.scalar(select(Hold.status).where(Hold.id == hold_id)) == "held"


@pytest.mark.parametrize("role, want", list(zip(ROLES, ["401", "200", "403", "200", "403",
                                                        "403"])))
def test_the_api_releases_a_hold_as_the_cli_does(app, county, role, want):
    from monitor.models import Hold

    hold_id = _hold(county)
    client = api_as(app, county, role)
    if role == "own":
        assert client.post("/api/v1/holds/999/release", json={"note": "x"}).status_code == 404
        assert client.post(f"/api/v1/holds/{hold_id}/release", json={}).status_code == 422
    response = client.post(f"/api/v1/holds/{hold_id}/release", json={"note": "已核实"})
    assert response.status_code == int(want), response.text
    with county.engine.connect() as conn:
        status = conn.scalar(select(Hold.status).where(Hold.id == hold_id))
        channels = conn.scalars(select(TrailEntry.channel).where(
            TrailEntry.action == "released")).all()
    if want == "200":
        assert response.json() == {"hold_id": hold_id, "case_id": "c1",
                                   "alert_id": county.alert, "status": "released"}
        assert status == "released" and channels == ["api"]
        assert client.post(f"/api/v1/holds/{hold_id}/release", json={"note": "x"}
                           ).status_code == 409
    else:
        assert status == "held" and channels == []


def test_a_city_office_sees_its_counties_rolled_up_and_no_other_city(app, county):
    """Issue 21: the board and the reports page of a city office (a tier-2 user whose
    region is a city's code) cover its counties, with the counties ranked; a county
    office of another county is refused the city's report and sees none of its alerts."""
    from sqlalchemy import update

    from monitor.models import User
    from monitor.regionstore import adopt_region

    assert adopt_region(county.engine, "330102")
    with county.engine.begin() as conn:
        conn.execute(update(User).where(User.id == USER_OF["tier2"]).values(region="330100"))
    client, _ = client_as(app, county, "tier2")
    page = client.get("/reports?period=2025-09")
    assert page.status_code == 200
    assert 'id="t_regions"' in page.text and 'id="t_region_scores"' in page.text
    assert ">330102<" in page.text.split('id="t_regions"', 1)[1].split("</table>", 1)[0]
    assert client.get("/reports?period=2025-09&region=330102").status_code == 200
    assert client.get("/reports?period=2025-09&region=330203").status_code == 403
    assert client.get("/reports?period=2025-09&region=3302").status_code == 400
    assert f'href="/alerts/{county.alert}"' in client.get("/alerts").text
    # one county under the city, on the board and the lists as on the reports page
    assert f'href="/alerts/{county.alert}"' in client.get("/alerts?region=330102").text
    assert f'href="/alerts/{county.alert}"' not in client.get("/alerts?region=330106").text
    # the filter form keeps the county chosen (a city office filtering within it)
    assert '<input type="hidden" name="region" value="330102">' in \
        client.get("/alerts?department=D04&region=330102").text
    assert 'name="region"' not in client.get("/alerts?department=D04").text
    assert client.get("/board?region=330102").status_code == 200
    assert client.get("/queue?region=330203").status_code == 403
    assert client.get("/board?region=33").status_code == 400
    with county.engine.begin() as conn:
        conn.execute(update(User).where(User.id == USER_OF["tier2"]).values(region="330203"))
    client, _ = client_as(app, county, "tier2")
    assert client.get("/reports?period=2025-09&region=330100").status_code == 403
    listed = client.get("/alerts")
    assert listed.status_code == 200 and f'href="/alerts/{county.alert}"' not in listed.text
    assert client.get(f"/alerts/{county.alert}").status_code == 403
