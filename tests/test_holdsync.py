"""Holds the workflow system confirms (monitor/holdsync.py): sent through the configured
channel to a real local HTTP receiver, sent again until acknowledged through the real API
server, pending until then (the CLI), each step on the trail."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from dataclasses import replace
from datetime import timedelta

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from cli import cli
from monitor import accounts
from monitor.config.gate import GateConfig
from monitor.holdsync import resend, state
from monitor.models import Hold
from monitor.outbox import flush
from monitor.trail import history
from monitor.trailcheck import verify
from monitor.web.app import create_app
from test_holds_and_stats import HALT
from test_sinks import SECRET, hook, no_proxy, webhook  # noqa: F401 (fixtures)
from test_supervision import RAISED, raise_one
from web_county import Server

T0 = RAISED


@pytest.fixture
def held(engine, config, tmp_path, write_events, hook, monkeypatch):  # noqa: F811
    """A hold on c1, the workflow channel routed to a real local webhook receiver."""
    monkeypatch.setenv("PM_WEBHOOK_TOKEN", SECRET)
    receiver = hook()
    notify = webhook(receiver.url, channel="workflow")
    config = replace(config, notify=replace(notify, channels={"sms": "log", "workflow": "gw"}),
                     gate=GateConfig(hold_resend_minutes=60))
    alert_id = raise_one(engine, config, tmp_path, write_events, rules=HALT)
    return engine, config, receiver, alert_id


def hold_row(engine):
    with engine.connect() as conn:
        return conn.execute(select(Hold)).one()


def test_a_hold_is_sent_again_until_acknowledged_then_no_more(held, tmp_path):
    engine, config, receiver, alert_id = held
    first = hold_row(engine)
    assert (state(first), first.sends, first.sent_at) == ("pending", 1, T0)
    flush(engine, config.notify, tmp_path, T0)  # (tier 1's SMS goes to the log sink)
    [message] = receiver.delivered
    assert (message["channel"], message["subject"], message["address"], message["alert_id"]) \
        == ("workflow", "hold", "c1", alert_id)
    assert f"中止令 #{first.id}" in message["text"] and f"/api/v1/holds/{first.id}/ack" in \
        message["text"]
    # delivered (2xx) is not acknowledged: still pending, sent again after an hour
    assert resend(engine, T0 + timedelta(minutes=59), 60, True) == 0
    assert resend(engine, T0 + timedelta(minutes=61), 60, True) == 1
    assert resend(engine, T0 + timedelta(minutes=62), 60, True) == 0  # just sent
    flush(engine, config.notify, tmp_path, T0 + timedelta(minutes=61))
    assert [m["subject"] for m in receiver.delivered] == ["hold", "hold"]
    assert hold_row(engine).sends == 2
    assert "hold_resent" in [e.action for e in history(engine, alert_id)]

    _, token = accounts.create_token(engine, T0, "admin:test", service="oa", scope="gate")
    acked_at = T0 + timedelta(hours=2)
    server = Server(create_app(engine, config, lambda: acked_at)).start()
    try:
        status, body = post(server, token, f"/api/v1/holds/{first.id}/ack", {"note": "已中止"})
        assert status == 200 and body["already"] is False
        assert (body["hold_id"], body["case_id"], body["acked_by"]) == (first.id, "c1", "service:oa")
        again = post(server, token, f"/api/v1/holds/{first.id}/ack", {})
        assert again[0] == 200 and again[1]["already"] is True
        assert post(server, token, "/api/v1/holds/999/ack", {})[0] == 404
        _, reader = accounts.create_token(engine, T0, "admin:test", service="bi", scope="read")
        assert post(server, reader, f"/api/v1/holds/{first.id}/ack", {})[0] == 403
    finally:
        server.stop()
    done = hold_row(engine)
    assert (state(done), done.acked_by, done.ack_note) == ("acknowledged", "service:oa", "已中止")
    assert done.acked_at == acked_at
    assert resend(engine, T0 + timedelta(days=1), 60, True) == 0  # acknowledged: not again
    acked = [e for e in history(engine, alert_id) if e.action == "hold_acknowledged"]
    assert [(e.actor, e.channel) for e in acked] == [("service:oa", "api")]
    assert verify(engine).entries > 0  # the chain holds (verify raises where it breaks)


def test_holds_list_shows_pending_until_acknowledged(held, db_url):
    engine, _, _, _ = held
    result = CliRunner().invoke(cli, ["--db", db_url, "holds", "list"])
    assert result.exit_code == 0 and "pending (sent 1×, not acknowledged)" in result.stdout


def test_without_a_workflow_channel_nothing_is_sent(engine, config, tmp_path, write_events):
    raise_one(engine, config, tmp_path, write_events, rules=HALT)
    row = hold_row(engine)
    assert (row.sends, row.sent_at) == (0, None)
    assert resend(engine, T0 + timedelta(days=1), 60, False) == 0


def post(server, token, path, body):
    request = urllib.request.Request(server.url + path, json.dumps(body).encode(), method="POST",
                                     headers={"Authorization": f"Bearer {token}",
                                              "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}")




def test_the_alert_page_shows_the_hold_pending_then_acknowledged(held):
    from fastapi.testclient import TestClient

    from monitor.authz import Actor
    from monitor.holdsync import acknowledge

    engine, config, _, alert_id = held
    accounts.set_password(engine, "m4", "长城-Great-Wall-7", T0, "admin:test", must_change=False)
    session = accounts.login(engine, "m4", "长城-Great-Wall-7", T0, config.web)
    client = TestClient(create_app(engine, config, lambda: T0 + timedelta(minutes=5)))
    client.cookies.set("pm_session", session.token)
    page = client.get(f"/alerts/{alert_id}")
    assert page.status_code == 200 and "待工作流确认（已发送 1 次）" in page.text
    acknowledge(engine, hold_row(engine).id, Actor.of_service("oa", "gate"),
                T0 + timedelta(minutes=3))
    page = client.get(f"/alerts/{alert_id}")
    assert "工作流已确认" in page.text and "待工作流确认" not in page.text
