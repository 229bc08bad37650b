"""Hostile input, part 7: secrets masked in every form — URL passwords (``user:pass@``
and ``?password=``), and configured secrets as is, base64- or URL-encoded — in errors,
logs, run records, operational alerts, outbox messages and the trail."""

from __future__ import annotations

import base64
import json
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from cli import cli
from monitor.masking import mask, register
from monitor.models import Alert, OutboxMessage, Run, TrailEntry

PASSWORD = "Hunter2-pw-7f3a"


@pytest.mark.parametrize("text", [
    f"postgresql+psycopg://monitor:{PASSWORD}@db.county:5432/pm",
    f"postgresql+psycopg://monitor@db.county/pm?sslmode=require&password={PASSWORD}",
    f"mysql://u@h/db?pwd={PASSWORD}",
    f"https://gw.example/send?token={PASSWORD}&x=1",
])
def test_url_passwords_are_masked(text):
    assert PASSWORD not in mask(text) and "***" in mask(text)


def test_a_registered_secret_is_masked_in_every_encoding():
    secret = "tok/+ 3f9c@never=shown"
    register(secret)
    raw = secret.encode()
    for form in (secret, base64.b64encode(raw).decode(), base64.urlsafe_b64encode(raw).decode(),
                 base64.b64encode(raw).decode().rstrip("="), urllib.parse.quote(secret, safe=""),
                 urllib.parse.quote_plus(secret)):
        assert mask(f"the server said: {form}!") == "the server said: ***!", form


def test_a_source_password_never_reaches_errors_runs_alerts_messages_or_trail(
        tmp_path, db_url, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MONITOR_DATABASE_URL", raising=False)
    monkeypatch.setenv("WF_URL", f"postgresql+psycopg://wf@127.0.0.1:1/wf?password={PASSWORD}")
    from conftest import CATALOG

    (tmp_path / "catalog.yaml").write_text(CATALOG.replace(
        "users:\n", "users:\n  - {id: jw, name: 监察室, department: D04, roles: [monitor_l2], "
                    "phone: '13800000009'}\n"), encoding="utf-8")
    (tmp_path / "config.yaml").write_text(
        "lease_wait_seconds: 0\nsources:\n  wf:\n    url_env: WF_URL\n"
        "    query: SELECT 1 AS seq\n    watermark: seq\n"
        "notify:\n  sinks:\n    sms: {type: file, path: sms.jsonl}\n  channels: {sms: sms}\n",
        encoding="utf-8")

    def run(*args):
        return CliRunner().invoke(cli, ["-v", "--config", str(tmp_path / "config.yaml"),
                                        "--db", db_url, *args])

    assert run("ingest", "catalog", "catalog.yaml").exit_code == 0
    pulled = run("ingest", "pull", "wf")
    assert pulled.exit_code == 1 and "Error: " in pulled.output
    result = run("nightly", "--as-of", "2025-10-02T18:00")
    assert result.exit_code == 1 and "pull wf" in result.output
    outputs = pulled.output + result.output + (tmp_path / "sms.jsonl").read_text()
    assert PASSWORD not in outputs and "***" in outputs
    from monitor.db import open_store

    engine = open_store(db_url)
    with engine.connect() as conn:
        stored = [conn.execute(select(Run.error, Run.counts)).all(),
                  conn.execute(select(Alert.message, Alert.evidence)).all(),
                  conn.execute(select(OutboxMessage.text, OutboxMessage.last_error)).all(),
                  conn.execute(select(TrailEntry.detail)).all()]
    engine.dispose()
    text = json.dumps([[list(map(str, r)) for r in rows] for rows in stored],
                      ensure_ascii=False)
    assert "pull wf" in text and PASSWORD not in text


def test_a_token_echoed_back_base64_encoded_is_masked(engine, tmp_path, monkeypatch):
    from monitor.config import NotifyConfig, SinkSpec
    from monitor.outbox import enqueue, flush

    token = "gw-token-5b1e9d"
    monkeypatch.setenv("PM_TOKEN_B64", token)

    class Echo(BaseHTTPRequestHandler):
        def do_POST(self):
            self.rfile.read(int(self.headers["Content-Length"]))
            said = base64.b64encode(self.headers["Authorization"].split()[1].encode())
            self.send_response(500)
            self.end_headers()
            self.wfile.write(b"bad credentials " + said)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Echo)
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    try:
        notify = NotifyConfig(sinks={"gw": SinkSpec("gw", "webhook", {
            "url": f"http://127.0.0.1:{server.server_port}/x", "token_env": "PM_TOKEN_B64"})},
            channels={"workflow": "gw"})
        from conftest import NOW

        with engine.begin() as conn:
            enqueue(conn, NOW, None, ["u1"], "hold", "中止", channel="workflow", address="c1")
        result = flush(engine, notify, tmp_path, NOW)
    finally:
        server.shutdown()
        server.server_close()
    assert result.retrying == 1
    with engine.connect() as conn:
        [error] = conn.scalars(select(OutboxMessage.last_error)).all()
    assert "bad credentials ***" in error
    assert base64.b64encode(token.encode()).decode() not in error
