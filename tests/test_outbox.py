"""The outbox: notifications queued with the state change, delivered through real sinks,
retried with backoff when a sink fails, never lost; SMS texts fit one segment."""

from __future__ import annotations

import json
from datetime import date, timedelta

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from cli import cli
from monitor import supervision as sv
from monitor.config import NotifyConfig, SinkSpec, load_config
from monitor.escalation import escalate
from monitor.models import OutboxMessage
from monitor.notices import DIGESTS, SMS_LIMIT, TEMPLATES, digest, sms
from monitor.outbox import flush
from monitor.trail import history
from monitor.trailcheck import verify
from test_escalation import local
from test_supervision import CATALOG, raise_one, told

LONG_DEPT = "某某自治县住房和城乡建设与综合行政执法管理局"
LONG_TITLE = "收费比对不符（网上收费与财政入库不一致）" * 2


@pytest.mark.parametrize("template", sorted(TEMPLATES))
def test_every_sms_fits_one_segment(template):
    text = sms(template, dept=LONG_DEPT, alert_id=9_999_999, title=LONG_TITLE,
               due=date(2026, 12, 31))
    assert len(text) <= SMS_LIMIT and "9999999" in text and "12月31日" in text
    short = sms(template, dept="民政局", alert_id=7, title="办件超期（超过承诺或法定办理期限）",
                due=date(2026, 1, 5))
    assert "民政局第7号" in short and "1月5日" in short
    assert "（办件超期）" in short or template == "rejected"


@pytest.mark.parametrize("template", sorted(DIGESTS))
def test_every_digest_fits_one_segment(template):
    text = digest(template, depts=[LONG_DEPT] * 12, alert_ids=list(range(1_000_000, 1_000_400)),
                  due=date(2026, 12, 31))
    assert len(text) <= SMS_LIMIT and "400件" in text


def file_notify(path: str, **kw) -> NotifyConfig:
    return NotifyConfig(sinks={"log": SinkSpec("log", "log"),
                               "gw": SinkSpec("gw", "file", {"path": path})},
                        channels={"sms": "gw"}, **kw)


@pytest.fixture
def queued(engine, config, tmp_path, write_events):
    """An alert escalated as of 12 October 2025: three SMS queued (m4, k1, k2)."""
    alert_id = raise_one(engine, config, tmp_path, write_events)
    told(engine, tmp_path)
    escalate(engine, sv.Policy(config.calendar(), config.tz), local("2025-10-12 00:30"))
    return alert_id


def rows(engine):
    """The escalation's messages (the new alert's, delivered already, left out)."""
    with engine.connect() as conn:
        return conn.execute(select(OutboxMessage).where(OutboxMessage.subject != "raised")
                            .order_by(OutboxMessage.id)).all()


def test_flush_delivers_to_a_json_lines_file_once(engine, tmp_path, queued):
    now = local("2025-10-12 08:00")
    result = flush(engine, file_notify("sms.jsonl"), tmp_path, now)
    assert (result.sent, result.retrying, result.failed) == (3, 0, 0)
    lines = [json.loads(line) for line in (tmp_path / "sms.jsonl").read_text().splitlines()]
    assert [(m["recipient"], m["address"]) for m in lines] == \
        [("k1", "13900000001"), ("k2", "13900000002"), ("m4", "13800000004")]
    assert lines[0]["alert_id"] == queued and lines[0]["id"] == rows(engine)[0].id
    assert all(r.status == "sent" and r.sent_at == now and r.sink == "gw" for r in rows(engine))
    assert flush(engine, file_notify("sms.jsonl"), tmp_path, now).sent == 0  # nothing twice
    assert len((tmp_path / "sms.jsonl").read_text().splitlines()) == 3
    assert [e.action for e in history(engine, queued)][-3:] == ["notified"] * 3
    verify(engine)


def test_a_failing_sink_is_retried_with_backoff_and_loses_nothing(engine, tmp_path, queued):
    notify = file_notify("down/sms.jsonl")          # the folder does not exist yet
    t0 = local("2025-10-12 08:00")
    first = flush(engine, notify, tmp_path, t0)
    assert (first.sent, first.retrying) == (0, 3)
    assert "No such file or directory" in first.errors[0]
    assert {(r.status, r.attempts, r.next_attempt_at - t0) for r in rows(engine)} == \
        {("pending", 1, timedelta(seconds=60))}
    assert flush(engine, notify, tmp_path, t0 + timedelta(seconds=59)).retrying == 0  # not due
    flush(engine, notify, tmp_path, t0 + timedelta(seconds=60))
    assert {(r.attempts, r.next_attempt_at - t0) for r in rows(engine)} == \
        {(2, timedelta(seconds=180))}               # 60 s, then 120 s more
    (tmp_path / "down").mkdir()                     # the sink recovers
    later = flush(engine, notify, tmp_path, t0 + timedelta(seconds=180))
    assert (later.sent, later.retrying) == (3, 0)
    assert {(r.status, r.attempts, r.last_error) for r in rows(engine)} == {("sent", 3, None)}
    assert len((tmp_path / "down" / "sms.jsonl").read_text().splitlines()) == 3


def test_after_max_attempts_a_message_is_failed_and_kept(engine, tmp_path, queued, db_url,
                                                          monkeypatch):
    notify = file_notify("down/sms.jsonl", max_attempts=2, backoff_seconds=1)
    t0 = local("2025-10-12 08:00")
    flush(engine, notify, tmp_path, t0)
    result = flush(engine, notify, tmp_path, t0 + timedelta(seconds=5))
    assert result.failed == 3
    assert {(r.status, r.attempts) for r in rows(engine)} == {("failed", 2)}
    assert flush(engine, notify, tmp_path, t0 + timedelta(days=1)).failed == 0  # given up
    monkeypatch.chdir(tmp_path)
    listed = CliRunner().invoke(cli, ["--db", db_url, "notify", "list", "--failed"])
    assert listed.exit_code == 0
    assert listed.stdout.splitlines()[1].startswith("        attempts 2 · last error: cannot write ")


def test_a_user_without_a_phone_number_fails_at_once(engine, config, tmp_path, write_events):
    catalog = CATALOG.replace(', phone: "13800000004"', "")
    raise_one(engine, config, tmp_path, write_events, catalog=catalog)
    escalate(engine, sv.Policy(config.calendar(), config.tz), local("2025-10-12 00:30"))
    result = flush(engine, file_notify("sms.jsonl"), tmp_path, local("2025-10-12 08:00"))
    assert (result.sent, result.failed) == (2, 2)   # m4's SMS of the new alert failed too
    [failed] = [r for r in rows(engine) if r.status == "failed"]
    assert (failed.recipient, failed.attempts, failed.last_error) == \
        ("m4", 1, "no phone number for user 'm4' in the catalog")


def test_cli_flush_uses_the_sinks_in_config_yaml(db_url, tmp_path, monkeypatch, queued):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "config.yaml").write_text(
        "notify:\n  sinks:\n    gw: {type: file, path: out/sms.jsonl}\n  channels: {sms: gw}\n",
        encoding="utf-8")
    run = lambda *a: CliRunner().invoke(cli, ["--db", db_url, *a])  # noqa: E731
    pending = run("notify", "list")
    assert len(pending.stdout.splitlines()) == 3 and " pending " in pending.stdout
    down = run("notify", "flush")
    assert (down.exit_code, down.stdout) == (1, "sent 0 · retrying later 3 · failed 0\n")
    (tmp_path / "out").mkdir()
    with_backoff = run("notify", "flush")        # not due yet: backoff
    assert with_backoff.stdout == "sent 0 · retrying later 0 · failed 0\n"
    assert len(run("notify", "list").stdout.splitlines()) == 6  # 3 messages, 3 error lines
    assert "no network sink" in down.stderr  # a file is nobody's phone


def test_cli_flush_says_where_messages_went(db_url, tmp_path, monkeypatch, queued):
    """`sent 3` alone hid that the only sink was the log (shown with -v only): the flush
    names each sink with where it wrote, and warns when none reaches a person."""
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(cli, ["--db", db_url, "notify", "flush"])
    assert result.exit_code == 0
    assert result.stdout == ("sent 3 · retrying later 0 · failed 0\n"
                             "  3 via log → the log only (logger monitor.notify, shown with -v)\n")
    assert result.stderr.startswith("Warning: no network sink (webhook, smtp) is configured")


@pytest.mark.parametrize("body, message", [
    ("notify:\n  sinks:\n    gw: {type: fil}\n",
     "config.yaml:3: sink 'gw': unknown type 'fil' (did you mean 'file'?); "
     "types: log, file, webhook, smtp"),
    ("notify:\n  sinks:\n    gw: {type: file}\n",
     "config.yaml:3: sink 'gw': missing required option 'path'"),
    ("notify:\n  sinks:\n    gw: {type: file, path: x, pth: y}\n",
     "config.yaml:3: sink 'gw': unknown option 'pth' (did you mean 'path'?); type file takes path"),
    ("notify:\n  channels: {sms: gw}\n",
     "config.yaml:2: channel 'sms': no sink named 'gw'; define it under notify.sinks"),
    ("notify:\n  channels: {fax: log}\n",
     "config.yaml:2: unknown channel 'fax'; channels: sms, email, workflow"),
    ("notify:\n  max_attemps: 3\n",
     "config.yaml:2: unknown key 'max_attemps' (did you mean 'max_attempts'?)"),
    ("reminder_days: 0\n", "config.yaml:1: 'reminder_days' must be at least 1"),
    ("red_to_tier2: yes please\n",
     "config.yaml:1: 'red_to_tier2' must be bool, got str 'yes please'"),
])
def test_notify_settings_are_checked(tmp_path, monkeypatch, body, message):
    from monitor.errors import ConfigError

    monkeypatch.chdir(tmp_path)
    (tmp_path / "config.yaml").write_text(body, encoding="utf-8")
    with pytest.raises(ConfigError) as err:
        load_config("config.yaml")
    assert str(err.value) == message
