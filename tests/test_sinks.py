"""The webhook and smtp sinks, delivering to real servers on 127.0.0.1 (no mocks): a
webhook that fails then recovers loses nothing and delivers each message exactly once;
e-mail arrives in Chinese at the catalog's address; a secret never leaks."""

from __future__ import annotations

import email
import email.policy
import json
import logging
import socket
import threading
import time
from dataclasses import replace
from datetime import timedelta
from email.header import decode_header, make_header
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from aiosmtpd.controller import Controller
from click.testing import CliRunner
from sqlalchemy import select

from cli import cli
from monitor import supervision as sv
from monitor.config import NotifyConfig, SinkSpec
from monitor.errors import SinkError
from monitor.escalation import escalate
from monitor.models import OutboxMessage
from monitor.notices import EMAIL_SUBJECTS
from monitor.outbox import flush
from monitor.trail import history
from monitor.trailcheck import verify
from test_escalation import local
from test_holds_and_stats import HALT
from test_supervision import CATALOG, raise_one, told

SECRET = "tok-3f9c2a7e-never-shown"
T0 = local("2025-10-12 08:00")


@pytest.fixture(autouse=True)
def no_proxy(monkeypatch):
    for name in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy",
                 "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)


class Hook:
    """A real HTTP server in a thread: records every request; answers ``fail_first``
    requests with 503 (or ``status``), then 200."""

    def __init__(self, fail_first: int = 0, status: int = 503, delay: float = 0):
        self.fail_first, self.status, self.delay = fail_first, status, delay
        self.requests: list[dict] = []
        self.delivered: list[dict] = []
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                hook.requests.append({"path": self.path, "headers": dict(self.headers),
                                      "body": body})
                time.sleep(hook.delay)
                if len(hook.requests) <= hook.fail_first:
                    # a careless gateway that echoes the credentials back in its error page
                    said = f"网关维护中 (you sent {self.headers.get('Authorization')})"
                    self.send_response(hook.status)
                    if 300 <= hook.status < 400:
                        self.send_header("Location", "http://127.0.0.1:1/elsewhere")
                    self.end_headers()
                    self.wfile.write(said.encode())
                    return
                hook.delivered.append(body)
                self.send_response(200)
                self.end_headers()
                self.wfile.write(b'{"ok": true}')

            def log_message(self, *args):
                pass

        self.server = _Server(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hook?sig=q"
        # a short poll: shutdown() waits for the loop to notice (0.5 s by default)
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.02,),
                                       daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()  # after the answers still being written (a slow one)


class _Server(ThreadingHTTPServer):
    daemon_threads = False  # so server_close() joins them: none outlives its test


@pytest.fixture
def hook():
    servers = []

    def start(**kw):
        servers.append(Hook(**kw))
        return servers[-1]
    yield start
    for server in servers:
        server.close()


def webhook(url, channel="sms", **options) -> NotifyConfig:
    return NotifyConfig(
        sinks={"log": SinkSpec("log", "log"), "gw": SinkSpec("gw", "webhook", {
            "url": url, "token_env": "PM_WEBHOOK_TOKEN", "headers": {"X-Source": "county"},
            **options})},
        channels={channel: "gw"}, backoff_seconds=60)


@pytest.fixture
def queued(engine, config, tmp_path, write_events, monkeypatch):
    """An alert escalated as of 12 October 2025: three SMS queued (k1, k2, m4)."""
    monkeypatch.setenv("PM_WEBHOOK_TOKEN", SECRET)
    alert_id = raise_one(engine, config, tmp_path, write_events)
    told(engine, tmp_path)
    escalate(engine, sv.Policy(config.calendar(), config.tz), local("2025-10-12 00:30"))
    return alert_id



def rows(engine):
    """The messages a test flushes (the new alert's, delivered already, left out)."""
    with engine.connect() as conn:
        return conn.execute(select(OutboxMessage).where(OutboxMessage.subject != "raised")
                            .order_by(OutboxMessage.id)).all()


def test_webhook_posts_each_message_as_json_with_headers_and_token(engine, tmp_path, hook,
                                                                   queued):
    server = hook()
    result = flush(engine, webhook(server.url), tmp_path, T0)
    assert (result.sent, result.retrying, result.failed) == (3, 0, 0)
    [first, *_] = server.requests
    assert first["path"] == "/hook?sig=q"
    assert first["headers"]["Authorization"] == f"Bearer {SECRET}"
    assert first["headers"]["Content-Type"] == "application/json; charset=utf-8"
    assert first["headers"]["X-Source"] == "county"
    stored = rows(engine)
    assert first["headers"]["Idempotency-Key"] == f"permit-monitor-{stored[0].id}"
    assert [r["body"] for r in server.requests] == [{
        "id": r.id, "created_at": r.created_at.isoformat(), "alert_id": queued,
        "recipient": r.recipient, "channel": "sms", "address": r.address,
        "subject": "escalated" if r.recipient == "m4" else "escalated_l2", "text": r.text}
        for r in stored]
    assert [r["body"]["address"] for r in server.requests] == \
        ["13900000001", "13900000002", "13800000004"]
    assert {(r.status, r.sink, r.attempts) for r in stored} == {("sent", "gw", 1)}


def test_a_webhook_down_for_a_while_loses_nothing_and_sends_each_once(engine, tmp_path, hook,
                                                                     queued):
    server = hook(fail_first=4)  # 503 for the first four requests, then it recovers
    notify = webhook(server.url)
    first = flush(engine, notify, tmp_path, T0)
    assert (first.sent, first.retrying, first.failed) == (0, 3, 0)
    port = server.server.server_port
    assert {(r.status, r.attempts, r.next_attempt_at - T0, r.last_error) for r in rows(engine)} \
        == {("pending", 1, timedelta(seconds=60), f"POST http://127.0.0.1:{port}/hook: HTTP 503 "
                                                  "Service Unavailable: 网关维护中 (you sent "
                                                  "Bearer ***)")}
    assert flush(engine, notify, tmp_path, T0 + timedelta(seconds=59)).retrying == 0
    assert len(server.requests) == 3                     # nothing sent before it is due
    second = flush(engine, notify, tmp_path, T0 + timedelta(seconds=60))
    assert (second.sent, second.retrying) == (2, 1)      # the 4th request failed, then up
    [late] = [r for r in rows(engine) if r.status == "pending"]
    a, b, c = (r.id for r in rows(engine))
    assert (late.id, late.attempts, late.next_attempt_at - T0) == (a, 2, timedelta(seconds=180))
    third = flush(engine, notify, tmp_path, T0 + timedelta(seconds=180))
    assert (third.sent, third.retrying, third.failed) == (1, 0, 0)
    assert flush(engine, notify, tmp_path, T0 + timedelta(days=1)).sent == 0
    assert len(server.requests) == 7
    assert sorted(x["id"] for x in server.delivered) == [a, b, c]   # each exactly once
    assert [(r.id, r.status, r.attempts, r.last_error) for r in rows(engine)] == \
        [(a, "sent", 3, None), (b, "sent", 2, None), (c, "sent", 2, None)]
    assert [e.action for e in history(engine, queued)].count("notified") == 1 + 3  # + raised
    verify(engine)


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("make, error", [
    (lambda hook: f"http://127.0.0.1:{_closed_port()}/hook", "Connection refused"),
    (lambda hook: hook(fail_first=9, status=302).url,
     "HTTP 302 Found (redirects are not followed)"),
    (lambda hook: hook(fail_first=9, status=401).url, "HTTP 401 Unauthorized"),
    (lambda hook: hook(delay=1.5).url, "timed out"),
])
def test_webhook_failures_are_retried_with_their_error(engine, tmp_path, hook, queued, make,
                                                       error):
    result = flush(engine, webhook(make(hook), timeout=1), tmp_path, T0)
    assert (result.sent, result.retrying) == (0, 3)
    assert all(r.status == "pending" and error in r.last_error for r in rows(engine))


def test_holds_go_to_the_workflow_system_through_the_webhook(engine, config, tmp_path, hook,
                                                            write_events, monkeypatch):
    monkeypatch.setenv("PM_WEBHOOK_TOKEN", SECRET)
    server = hook()
    notify = webhook(server.url, channel="workflow")
    config = replace(config, notify=replace(notify, channels={"sms": "log", "workflow": "gw"}))
    alert_id = raise_one(engine, config, tmp_path, write_events, rules=HALT)
    from monitor.holds import list_holds, release
    [held] = list_holds(engine)
    release(engine, sv.policy_for(config), held.id, "m4", T0, "已补正，恢复办理")
    assert flush(engine, config.notify, tmp_path, T0).sent == 3  # + m4's SMS, to the log
    assert [(b["channel"], b["subject"], b["address"], b["alert_id"]) for b in server.delivered] \
        == [("workflow", "hold", "c1", alert_id), ("workflow", "release", "c1", alert_id)]
    assert server.delivered[0]["text"].startswith("中止流程：案件 c1")


def cli_config(tmp_path, url):
    (tmp_path / "config.yaml").write_text(
        "notify:\n  sinks:\n    gw:\n      type: webhook\n"
        f"      url: {url}\n      token_env: PM_WEBHOOK_TOKEN\n      timeout: 2\n"
        "  channels: {sms: gw}\n", encoding="utf-8")


def test_a_missing_token_variable_is_one_error_naming_it(db_url, engine, tmp_path, hook, queued,
                                                         monkeypatch):
    server = hook()
    cli_config(tmp_path, server.url)
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("PM_WEBHOOK_TOKEN")
    result = CliRunner().invoke(cli, ["--db", db_url, "notify", "flush"])
    assert (result.exit_code, result.stderr) == \
        (1, "Error: sink 'gw': environment variable PM_WEBHOOK_TOKEN is not set "
            "(named by token_env in config.yaml)\n")
    assert server.requests == []
    assert {(r.status, r.attempts) for r in rows(engine)} == {("pending", 0)}  # nothing claimed


def test_the_secret_never_appears_in_logs_rows_or_errors(db_url, engine, tmp_path, hook, queued,
                                                         monkeypatch, caplog):
    server = hook(fail_first=3, status=401)  # and its error page echoes the token back
    cli_config(tmp_path, server.url)
    monkeypatch.chdir(tmp_path)
    run = lambda *a: CliRunner().invoke(cli, ["--db", db_url, "-vv", *a])  # noqa: E731
    with caplog.at_level(logging.DEBUG):
        down = run("notify", "flush")
        listed = run("notify", "list")
    assert down.exit_code == 1 and "HTTP 401 Unauthorized" in down.stderr
    assert "Bearer ***" in listed.stdout
    assert server.requests[0]["headers"]["Authorization"] == f"Bearer {SECRET}"  # it was sent
    seen = [down.stdout, down.stderr, listed.stdout, listed.stderr, caplog.text,
            *(str(tuple(r)) for r in rows(engine))]
    seen += [str(tuple(e)) for e in history(engine, queued)]
    assert not [text for text in seen if SECRET in text]


# --- smtp -----------------------------------------------------------------------------

class Inbox:
    """aiosmtpd's handler: keeps every accepted message; refuses recipients in ``refuse``."""

    def __init__(self, refuse=()):
        self.messages: list[tuple[str, list[str], email.message.EmailMessage]] = []
        self.refuse = set(refuse)

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address in self.refuse:
            return "550 5.1.1 mailbox unavailable"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        parsed = email.message_from_bytes(envelope.content, policy=email.policy.default)
        self.messages.append((envelope.mail_from, list(envelope.rcpt_tos), parsed))
        return "250 Message accepted for delivery"


@pytest.fixture
def smtpd():
    controllers = []

    def start(port=None, **kw):
        inbox = Inbox(**kw)
        controller = Controller(inbox, hostname="127.0.0.1", port=port or _closed_port())
        controller.start()
        controllers.append(controller)
        return inbox, controller.port
    yield start
    for controller in controllers:
        controller.stop()


MAIL_CATALOG = CATALOG.replace('phone: "13900000001"',
                               'phone: "13900000001", email: k1@jw.county.gov.cn') \
                      .replace('phone: "13800000004"',
                               'phone: "13800000004", email: wang.m4@yjj.county.gov.cn')


def smtp_notify(port, **options) -> NotifyConfig:
    return NotifyConfig(sinks={"log": SinkSpec("log", "log"), "mail": SinkSpec("mail", "smtp", {
        "host": "127.0.0.1", "port": port, "security": "none",
        "from": "县纪委监委 <jw@county.gov.cn>", **options})},
        channels={"sms": "log", "email": "mail"})


@pytest.fixture
def mailed(engine, config, tmp_path, write_events):
    """Escalated with the email channel on: an SMS and an e-mail each for m4, k1, k2."""
    alert_id = raise_one(engine, config, tmp_path, write_events, catalog=MAIL_CATALOG)
    told(engine, tmp_path)
    escalate(engine, sv.Policy(config.calendar(), config.tz, email=True),
             local("2025-10-12 00:30"))
    return alert_id


def test_smtp_sends_chinese_mail_to_the_catalog_address(engine, tmp_path, smtpd, mailed):
    inbox, port = smtpd()
    result = flush(engine, smtp_notify(port), tmp_path, T0)
    assert (result.sent, result.failed) == (5, 1)   # 3 SMS to the log, 2 e-mails; k2 has none
    [k2] = [r for r in rows(engine) if r.recipient == "k2" and r.channel == "email"]
    assert result.errors == [f"message {k2.id} to k2: no e-mail address for user 'k2' in the "
                             "catalog"]
    assert (k2.status, k2.attempts) == ("failed", 1)
    by_to = {to[0]: (sender, mail) for sender, to, mail in inbox.messages}
    assert sorted(by_to) == ["k1@jw.county.gov.cn", "wang.m4@yjj.county.gov.cn"]
    sender, mail = by_to["wang.m4@yjj.county.gov.cn"]
    assert sender == "jw@county.gov.cn"
    assert str(make_header(decode_header(mail["From"]))) == "县纪委监委 <jw@county.gov.cn>"
    assert mail["To"] == "wang.m4@yjj.county.gov.cn"
    assert mail["Subject"] == EMAIL_SUBJECTS["escalated"] == "【督办】告警逾期未处置，已升级县监察办督办"
    [sms_row] = [r for r in rows(engine) if r.channel == "sms" and r.recipient == "m4"]
    [mail_row] = [r for r in rows(engine) if r.channel == "email" and r.recipient == "m4"]
    body = mail.get_content()
    assert body.startswith(sms_row.text + "\n\n")
    assert "【督办】应急管理局第1号告警" in body and f"消息编号：{mail_row.id}" in body
    assert mail["Message-ID"] == f"<permit-monitor.{mail_row.id}@county.gov.cn>"
    assert by_to["k1@jw.county.gov.cn"][1]["Subject"] == EMAIL_SUBJECTS["escalated_l2"]
    assert (mail_row.status, mail_row.address, mail_row.sink) == \
        ("sent", "wang.m4@yjj.county.gov.cn", "mail")


def test_smtp_server_down_is_retried_then_delivered_once(engine, tmp_path, smtpd, mailed):
    port = _closed_port()
    notify = smtp_notify(port)
    down = flush(engine, notify, tmp_path, T0)
    assert (down.sent, down.retrying) == (3, 2)     # the SMS went; the e-mails wait
    waiting = [r for r in rows(engine) if r.status == "pending"]
    assert all(f"SMTP 127.0.0.1:{port}:" in r.last_error and "refused" in r.last_error
               for r in waiting)
    inbox, _ = smtpd(port)                          # the server comes up
    up = flush(engine, notify, tmp_path, T0 + timedelta(seconds=60))
    assert (up.sent, up.retrying) == (2, 0)
    assert sorted(to[0] for _, to, _ in inbox.messages) == \
        ["k1@jw.county.gov.cn", "wang.m4@yjj.county.gov.cn"]


def test_a_refused_mailbox_fails_at_once(engine, tmp_path, smtpd, mailed):
    inbox, port = smtpd(refuse={"k1@jw.county.gov.cn"})
    result = flush(engine, smtp_notify(port), tmp_path, T0)
    [refused] = [r for r in rows(engine) if r.recipient == "k1" and r.channel == "email"]
    assert (refused.status, refused.attempts, refused.last_error) == \
        ("failed", 1, f"SMTP 127.0.0.1:{port} refused k1@jw.county.gov.cn: 550 5.1.1 mailbox "
                      "unavailable")
    assert result.sent == 4 and [to for _, to, _ in inbox.messages] == \
        [["wang.m4@yjj.county.gov.cn"]]


def test_a_missing_smtp_password_variable_is_named(engine, tmp_path, mailed, monkeypatch):
    monkeypatch.delenv("PM_SMTP_PASSWORD", raising=False)
    notify = smtp_notify(25, security="starttls", user="jw", password_env="PM_SMTP_PASSWORD")
    with pytest.raises(SinkError) as err:
        flush(engine, notify, tmp_path, T0)
    assert str(err.value) == ("sink 'mail': environment variable PM_SMTP_PASSWORD is not set "
                              "(named by password_env in config.yaml)")
    assert {r.attempts for r in rows(engine)} == {0}


def test_the_readme_sink_example_is_a_valid_config(tmp_path):
    from pathlib import Path

    from monitor.config import load_config

    readme = (Path(__file__).parent.parent / "README.md").read_text(encoding="utf-8")
    [block] = [b for b in readme.split("```yaml\n")[1:] if "type: smtp" in b]
    (tmp_path / "config.yaml").write_text(block.split("```")[0], encoding="utf-8")
    notify = load_config(tmp_path / "config.yaml").notify
    assert {n: s.type for n, s in notify.sinks.items()} == {
        "log": "log", "sms-gateway": "webhook", "workflow-system": "webhook", "mail": "smtp"}
    assert dict(notify.channels) == {"sms": "sms-gateway", "email": "mail",
                                     "workflow": "workflow-system"}
