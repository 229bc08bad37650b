"""Tier 1 is told at once (monitor/tier1.py): a new alert reaches its department's tier-1
monitor through a real local HTTP receiver (the SMS gateway's webhook) and a real local
SMTP server; a re-run queues nothing twice; quiet hours hold a yellow alert but not a
red one; a person may take one daily digest instead; a 临期预警 also goes to the case's
handler; a level that rises on an acknowledged alert reopens it and tells tier 1 again."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime, time, timedelta

from click.testing import CliRunner
from sqlalchemy import select

from cli import cli
from conftest import NOW, event
from monitor import supervision as sv
from monitor.auditpass import audit_pass
from monitor.catalog import ingest_catalog
from monitor.config import NotifyConfig, SinkSpec
from monitor.engine import evaluate
from monitor.ingest import ingest_events
from monitor.models import Alert, AlertNotice, OutboxMessage, TrailEntry, User
from monitor.notices import EMAIL_SUBJECTS
from monitor.outbox import flush
from monitor.rules.loader import load_rules
from monitor.tier1 import send_digests, set_delivery
from monitor.trail import history
from monitor.trailcheck import verify
from test_escalation import local
from test_sinks import MAIL_CATALOG, SECRET, hook, no_proxy, smtpd  # noqa: F401 (fixtures)
from test_supervision import CATALOG

FAST = "- {id: fast, kind: step_too_fast, level: LEVEL}\n"
OVERDUE = "- {id: overdue, kind: overdue}\n"


def setup(engine, config, tmp_path, write_events, rules: str, rows: list[dict],
          catalog: str = CATALOG) -> list:
    (tmp_path / "catalog.yaml").write_text(catalog, encoding="utf-8")
    ingest_catalog(engine, tmp_path / "catalog.yaml")
    list(ingest_events(engine, config, [str(write_events(rows))], NOW))
    (tmp_path / "rules.yaml").write_text(rules, encoding="utf-8")
    return load_rules([tmp_path / "rules.yaml"])


def fast_case(case_id: str = "c1", day: str = "2025-09-30") -> list[dict]:
    return [event(f"{case_id}-a", case_id, "accept", f"{day} 10:00:00"),
            event(f"{case_id}-s", case_id, "survey", f"{day} 10:00:58")]


def outbox(engine) -> list:
    with engine.connect() as conn:
        return conn.execute(select(OutboxMessage).order_by(OutboxMessage.id)).all()


def with_notify(config, notify: NotifyConfig):
    return replace(config, notify=notify)


def test_a_new_alert_reaches_tier_1_by_webhook_and_smtp_once(
        engine, config, tmp_path, write_events, hook, smtpd, monkeypatch):  # noqa: F811
    monkeypatch.setenv("PM_WEBHOOK_TOKEN", SECRET)
    server, (inbox, port) = hook(), smtpd()
    notify = NotifyConfig(sinks={
        "log": SinkSpec("log", "log"),
        "gw": SinkSpec("gw", "webhook", {"url": server.url, "token_env": "PM_WEBHOOK_TOKEN"}),
        "mail": SinkSpec("mail", "smtp", {"host": "127.0.0.1", "port": port,
                                          "security": "none", "from": "jw@county.gov.cn"})},
        channels={"sms": "gw", "email": "mail"})
    config = with_notify(config, notify)
    rules = setup(engine, config, tmp_path, write_events, FAST.replace("LEVEL", "yellow"),
                  fast_case(), catalog=MAIL_CATALOG)
    at = local("2025-09-30 16:00")
    done = audit_pass(engine, config, at, rules=rules, stages=("evaluate", "escalate", "flush"))
    assert (done.evaluation.new_alerts, done.evaluation.messages) == (1, 2)  # SMS + e-mail
    assert (done.delivery.sent, done.delivery.failed) == (2, 0)
    [sms] = server.delivered
    assert (sms["recipient"], sms["channel"], sms["address"], sms["subject"]) == \
        ("m4", "sms", "13800000004", "raised")
    assert sms["text"] == "【告警】应急管理局第1号黄牌告警（环节办理过快），请于10月11日前处置。"
    [(sender, to, mail)] = inbox.messages
    assert to == ["wang.m4@yjj.county.gov.cn"]
    assert mail["Subject"] == EMAIL_SUBJECTS["raised"]
    assert mail.get_content().startswith(sms["text"])
    # the same history again, in full, and a later pass: nothing is queued twice
    again = audit_pass(engine, config, at, rules=rules, stages=("evaluate",), full=True)
    later = audit_pass(engine, config, at + timedelta(hours=1), rules=rules,
                       stages=("evaluate", "escalate", "flush"))
    assert again.evaluation.messages == later.evaluation.messages == 0
    assert len(outbox(engine)) == 2 and len(server.delivered) == 1
    with engine.connect() as conn:
        assert conn.execute(select(AlertNotice.alert_id, AlertNotice.level,
                                   AlertNotice.recipient, AlertNotice.mode)).all() == \
            [(1, "yellow", "m4", "immediate")]
    assert [e.action for e in history(engine, 1)] == ["raised", "notified", "notified"]
    verify(engine)


def test_run_reports_the_messages_queued(db_url, engine, config, tmp_path, write_events,
                                         monkeypatch):
    setup(engine, config, tmp_path, write_events, FAST.replace("LEVEL", "red"), fast_case())
    monkeypatch.chdir(tmp_path)
    (tmp_path / "config.yaml").write_text("rules_dir: rules\n", encoding="utf-8")
    (tmp_path / "rules").mkdir()
    (tmp_path / "rules" / "fast.yaml").write_text(FAST.replace("LEVEL", "red"), "utf-8")
    result = CliRunner().invoke(cli, ["--db", db_url, "run", "--as-of", "2025-09-30T16:00"])
    assert result.exit_code == 0, result.output
    assert "supervision: escalated 0 · reminded 0 · messages queued 1\n" in result.stdout


def quiet(config):
    return with_notify(config, NotifyConfig(quiet_hours=(time(22), time(7))))


def test_quiet_hours_hold_a_yellow_alert_until_morning_but_not_a_red_one(
        engine, config, tmp_path, write_events):
    config = quiet(config)
    rules = setup(engine, config, tmp_path, write_events,
                  FAST.replace("LEVEL", "yellow") + "- {id: fast-red, kind: step_too_fast, "
                  "level: red, scope: {include: {departments: [D04]}}}\n", fast_case())
    night = local("2025-09-30 23:10")
    evaluate(engine, config, night, rules=rules)
    held = {m.subject + ":" + m.text[:12]: m.next_attempt_at for m in outbox(engine)}
    assert sorted(held.values()) == [night, local("2025-10-01 07:00")]
    [red] = [m for m in outbox(engine) if "红牌" in m.text]
    assert red.next_attempt_at == night
    assert flush(engine, config.notify, tmp_path, night).sent == 1          # the red one
    assert flush(engine, config.notify, tmp_path, local("2025-10-01 06:59")).sent == 0
    assert flush(engine, config.notify, tmp_path, local("2025-10-01 07:00")).sent == 1
    with engine.connect() as conn:
        assert sorted(conn.scalars(select(AlertNotice.mode))) == ["held", "immediate"]


def test_a_daily_digest_instead_of_a_message_per_alert(engine, config, tmp_path,
                                                      write_events):
    rules = setup(engine, config, tmp_path, write_events, FAST.replace("LEVEL", "yellow"),
                  fast_case("c1") + fast_case("c2", "2025-10-09"))
    assert set_delivery(engine, "m4", "digest", local("2025-09-30 09:00"), "m4") == "digest"
    policy = sv.policy_for(config, rules)
    evaluate(engine, config, local("2025-09-30 16:00"), rules=rules)   # c1
    assert outbox(engine) == []
    assert send_digests(engine, policy, local("2025-09-30 17:00")) == 0  # tomorrow's digest
    evaluate(engine, config, local("2025-10-10 07:00"), rules=rules)   # c2, before 08:00
    assert send_digests(engine, policy, local("2025-10-10 07:59")) == 0
    assert send_digests(engine, policy, local("2025-10-10 08:05")) == 1
    assert send_digests(engine, policy, local("2025-10-10 09:00")) == 0  # once a day
    [digest] = outbox(engine)
    assert (digest.recipient, digest.subject, digest.alert_id) == ("m4", "daily", None)
    assert digest.text == ("【每日汇总】应急管理局2件告警待处置（第1、2号等，最早10月11日到期），"
                           "请登录系统处置。")
    # a red alert is never kept for the digest
    (tmp_path / "red.yaml").write_text("- {id: red, kind: step_too_fast, level: red}\n", "utf-8")
    evaluate(engine, config, local("2025-10-10 10:00"), rules=load_rules([tmp_path / "red.yaml"]))
    # (two red alerts for m4 in one rule's pass: one SMS for both, as escalation does)
    assert [m.subject for m in outbox(engine)] == ["daily", "told"]
    assert outbox(engine)[-1].text == ("【告警】应急管理局2件告警新发现或升级（第3、4号等，最早10月14日"
                                       "到期），请登录系统处置。")
    with engine.connect() as conn:
        entry = conn.execute(select(TrailEntry).where(TrailEntry.action == "delivery_set")).one()
    assert (entry.actor, entry.detail) == ("m4", {"user": "m4", "delivery": "digest"})


def test_users_set_delivery_cli(db_url, engine, config, tmp_path, write_events):
    setup(engine, config, tmp_path, write_events, FAST.replace("LEVEL", "yellow"), fast_case())
    run = lambda *a: CliRunner().invoke(cli, ["--db", db_url, *a])  # noqa: E731
    ok = run("users", "set-delivery", "m4", "digest")
    assert (ok.exit_code, ok.stdout) == (0, "m4: delivery digest\n")
    bad = run("users", "set-delivery", "m4", "digests")
    assert bad.exit_code == 2 and "'digests' is not one of 'immediate', 'digest'" in bad.stderr
    assert run("users", "set-delivery", "m9", "digest").stderr == "Error: unknown user 'm9'\n"
    with engine.connect() as conn:
        assert conn.scalar(select(User.delivery).where(User.id == "m4")) == "digest"


def test_a_warning_also_goes_to_the_cases_handler(engine, config, tmp_path, write_events):
    rows = [event("w-a", "w1", "accept", "2025-11-03 10:00"),
            event("w-s", "w1", "survey", "2025-11-05 10:00", actor="u1")]
    rules = setup(engine, config, tmp_path, write_events, OVERDUE, rows)
    deadline = config.calendar().add_workdays(date(2025, 11, 3), 10)
    [outcome] = evaluate(engine, config, local(f"{deadline} 09:00"), rules=rules)
    assert [f.level for f in outcome.findings] == ["warning"]
    sent = {(m.recipient, m.subject): m.text for m in outbox(engine)}
    assert set(sent) == {("m4", "raised"), ("u1", "handler")}
    assert sent["u1", "handler"].startswith("【临期预警】应急管理局第1号：案件w1（办件超期）")
    assert f"将于{deadline.month}月{deadline.day}日超过承诺时限" in sent["u1", "handler"]


def test_a_level_that_rises_reopens_an_acknowledged_alert_and_tells_tier_1(
        engine, config, tmp_path, write_events):
    rules = setup(engine, config, tmp_path, write_events, OVERDUE,
                  [event("r-a", "r1", "accept", "2025-11-03 10:00")])
    cal = config.calendar()
    yellow_day = cal.add_workdays(date(2025, 11, 3), 11)
    red_day = cal.add_workdays(date(2025, 11, 3), 21)
    evaluate(engine, config, local(f"{yellow_day} 09:00"), rules=rules)
    with engine.connect() as conn:
        alert_id, level = conn.execute(select(Alert.id, Alert.level)).one()
    assert level == "yellow"
    sv.acknowledge(engine, alert_id, "m4", local(f"{yellow_day} 10:00"), "催办中")
    [outcome] = evaluate(engine, config, local(f"{red_day} 09:00"), rules=rules)
    assert outcome.stored.messages == 1
    with engine.connect() as conn:
        a = conn.execute(select(Alert).where(Alert.id == alert_id)).one()
    policy = sv.policy_for(config, rules)
    assert (a.level, a.status, a.acknowledged_at, a.due_on) == \
        ("red", "open", None, policy.due(local(f"{red_day} 09:00"), "overdue"))
    assert [m.subject for m in outbox(engine)] == ["raised", "reopened"]
    assert "升为红牌，已重新打开" in outbox(engine)[-1].text
    actions = [e.action for e in history(engine, alert_id)]
    assert actions == ["raised", "acknowledged", "level_changed", "reopened"]
    [reopened] = [e for e in history(engine, alert_id) if e.action == "reopened"]
    assert reopened.detail["reason"] == "level_rose" and reopened.detail["from_status"] == \
        "acknowledged"
    verify(engine)


def test_the_monthly_report_counts_messages_as_the_county_did(engine, config, tmp_path,
                                                             write_events):
    """一级督办信息: each tier-1 monitor told of an alert at a level (not per channel, not
    the handler); 二级督办信息: each monitor a supervision order went to."""
    from monitor.escalation import escalate
    from monitor.report import build_report
    from monitor.report.html import to_html
    from monitor.report.period import month

    rules = setup(engine, config, tmp_path, write_events, FAST.replace("LEVEL", "yellow"),
                  fast_case("c1") + fast_case("c2", "2025-10-09"))
    config = with_notify(config, NotifyConfig(channels={"sms": "log", "email": "log"}))
    evaluate(engine, config, local("2025-10-09 16:00"), rules=rules)   # two alerts → m4
    escalate(engine, sv.policy_for(config, rules), local("2025-10-20 09:00"))  # both late
    with engine.connect() as conn:
        assert len(conn.execute(select(OutboxMessage.id)).all()) > 2 * 2  # SMS + e-mail
    report = build_report(engine, config, month(date(2025, 10, 1)), local("2025-11-01 00:00"))
    total = report.tables["t_supervision"].total
    assert (total["tier1_messages"], total["tier2_messages"], total["orders"]) == (2, 2, 2)
    assert (report.summary["tier1_messages"], report.summary["tier2_messages"]) == (2, 2)
    html = to_html(report)
    assert "一级督办信息（条）" in html and "二级督办信息（条）" in html


def test_a_person_chooses_the_daily_digest_on_the_account_page(engine, config, tmp_path,
                                                                write_events):
    """The web account page: the choice is shown, saved with the CSRF token, traced as done
    by the person through the web; a form without the token is refused."""
    import re

    from fastapi.testclient import TestClient

    from monitor import accounts
    from monitor.web.app import create_app

    setup(engine, config, tmp_path, write_events, FAST.replace("LEVEL", "yellow"), fast_case())
    at = local("2025-10-01 08:00")
    accounts.set_password(engine, "m4", "一个足够长的密码123", at, "admin:test", must_change=False)
    app = create_app(engine, config, lambda: at)
    client = TestClient(app, follow_redirects=False)
    session = accounts.login(engine, "m4", "一个足够长的密码123", at, config.web)
    client.cookies.set("pm_session", session.token)
    page = client.get("/password")
    assert page.status_code == 200 and 'value="immediate" checked' in page.text
    csrf = re.search(r'name="csrf" value="([^"]+)"', page.text)[1]
    assert client.post("/delivery", data={"delivery": "digest"}).status_code == 403
    done = client.post("/delivery", data={"csrf": csrf, "delivery": "digest"})
    assert (done.status_code, done.headers["location"]) == (303, "/board?done=delivery_saved")
    assert 'value="digest" checked' in client.get("/password").text
    assert client.post("/delivery", data={"csrf": csrf, "delivery": "sms"}).status_code == 422
    with engine.connect() as conn:
        entry = conn.execute(select(TrailEntry).where(TrailEntry.action == "delivery_set")).one()
    assert (entry.actor, entry.channel, entry.detail["delivery"]) == ("m4", "web", "digest")
