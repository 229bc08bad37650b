"""Escalation and reminders as time passes: tier 1 → tier 2 after the deadline (or at
once for red, if configured), reminders once per working day, never per tick."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime, timezone
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select, update

from monitor import supervision as sv
from monitor.escalation import escalate
from monitor.models import Alert, OutboxMessage, SupervisionOrder
from monitor.trail import history
from monitor.trailcheck import verify
from test_supervision import LATER, alert, raise_one

TZ = ZoneInfo("Asia/Shanghai")


def local(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=TZ).astimezone(timezone.utc)


@pytest.fixture
def raised(engine, config, tmp_path, write_events):
    return raise_one(engine, config, tmp_path, write_events)


@pytest.fixture
def policy(config):
    return sv.Policy(config.calendar(), config.tz, titles={"fast": "环节办理过快（疑似事后补录）"})


def outbox(engine):
    with engine.connect() as conn:
        return [(m.recipient, m.subject, m.text) for m in
                conn.execute(select(OutboxMessage).order_by(OutboxMessage.id))]


def test_not_resolved_by_the_deadline_goes_to_tier_2_with_an_order(engine, raised, policy):
    sv.acknowledge(engine, raised, "m4", local("2025-10-09 09:00"))  # seen is not resolved
    assert escalate(engine, policy, local("2025-10-11 23:59")).escalated == []  # the due day
    result = escalate(engine, policy, local("2025-10-12 00:30"))
    assert (result.escalated, result.messages) == ([raised], 3)
    a = alert(engine, raised)
    # the new deadline: 3 working days after Sunday 12 October
    assert (a.tier, a.status, a.due_on, a.escalated_at) == \
        (2, "open", date(2025, 10, 15), local("2025-10-12 00:30"))
    with engine.connect() as conn:
        order = conn.execute(select(SupervisionOrder)).one()
    assert (order.reason, order.issued_by, order.to_users, order.due_on) == \
        ("escalated", "system", ["m4"], date(2025, 10, 15))
    assert outbox(engine) == [
        ("m4", "raised", "【告警】应急管理局第1号红牌告警（环节办理过快），请于10月11日前处置。"),
        ("k1", "escalated_l2", "【二级监察】应急管理局第1号告警（环节办理过快）一级逾期未处置，已督办，期限10月15日。"),
        ("k2", "escalated_l2", "【二级监察】应急管理局第1号告警（环节办理过快）一级逾期未处置，已督办，期限10月15日。"),
        ("m4", "escalated", "【督办】应急管理局第1号告警（环节办理过快）逾期未处置，已升级县监察办督办，请于10月15日前处置。")]
    assert [e.action for e in history(engine, raised)] == \
        ["raised", "acknowledged", "escalated", "order_issued"]
    # the same moment again, and a later tick before the new deadline: nothing more
    assert escalate(engine, policy, local("2025-10-12 00:30")).escalated == []
    assert escalate(engine, policy, local("2025-10-15 17:00")).messages == 0
    assert len(outbox(engine)) == 4
    verify(engine)


def test_a_resolved_alert_is_not_escalated(engine, raised, policy):
    sv.resolve(engine, raised, "m4", LATER.replace(day=9), "explained", "纸质审核在先")
    assert escalate(engine, policy, local("2025-10-20 09:00")).escalated == []
    assert alert(engine, raised).tier == 1


EVERY_DAY = ("10-15", "10-16", "10-17", "10-18", "10-19", "10-20", "10-21")


@pytest.mark.parametrize("interval, days, reminded_on", [
    (1, EVERY_DAY, ["10-16", "10-17", "10-20", "10-21"]),  # Saturday 18th, Sunday 19th: none
    (2, EVERY_DAY, ["10-17", "10-21"]),
    (1, ("10-16", "10-18", "10-20"), ["10-16", "10-20"]),  # not on a Saturday, even if due
])
def test_reminders_once_per_interval_of_working_days(engine, raised, policy, interval, days,
                                                     reminded_on):
    policy = replace(policy, reminder_days=interval)
    escalate(engine, policy, local("2025-10-12 00:30"))      # order due 15 October
    got = []
    for day in days:
        for hour in ("00:10", "09:00", "17:30"):               # many ticks a day
            if escalate(engine, policy, local(f"2025-{day} {hour}")).reminded:
                got.append(day)
    assert got == reminded_on
    texts = [t for _, subject, t in outbox(engine) if subject == "reminder"]
    assert len(texts) == len(reminded_on)
    assert texts[0] == "【提醒】应急管理局第1号告警（环节办理过快）已超过督办期限10月15日，请尽快处置。"
    verify(engine)


def test_red_goes_to_tier_2_at_once_when_configured(engine, raised, policy):
    assert escalate(engine, policy, local("2025-09-30 16:05")).escalated == []
    result = escalate(engine, replace(policy, red_to_tier2=True), local("2025-09-30 16:05"))
    assert result.escalated == [raised]
    assert alert(engine, raised).due_on == date(2025, 10, 11)   # a fresh 3 working days
    assert outbox(engine)[-1][1:] == ("red", "【督办】应急管理局第1号红牌告警（环节办理过快）已直接转"
                                             "县监察办督办，请于10月11日前处置。")


def test_alerts_from_before_supervision_get_a_deadline(engine, raised, policy):
    with engine.begin() as conn:
        conn.execute(update(Alert).values(due_on=None, assigned_to=[]))
    result = escalate(engine, policy, local("2025-10-01 09:00"))
    assert result.assigned == [raised] and result.escalated == []
    a = alert(engine, raised)
    assert (a.due_on, a.assigned_to) == (date(2025, 10, 11), ["m4"])
    assert history(engine, raised)[-1].action == "assigned"


def test_several_alerts_for_one_person_make_one_digest(engine, config, tmp_path, write_events,
                                                       policy):
    from conftest import event
    from monitor.engine import evaluate
    from monitor.ingest import ingest_events
    from monitor.rules.loader import load_rules
    from test_supervision import NOW, RAISED

    raise_one(engine, config, tmp_path, write_events)
    path = write_events([event("b1", "c2", "accept", "2025-09-30 11:00:00"),
                         event("b2", "c2", "survey", "2025-09-30 11:00:30")], "more.csv")
    list(ingest_events(engine, config, [str(path)], NOW))
    evaluate(engine, config, RAISED, rules=load_rules([tmp_path / "rules.yaml"]))
    result = escalate(engine, policy, local("2025-10-13 09:00"))
    assert (len(result.escalated), result.messages) == (2, 3)
    assert ("m4", "escalated", "【督办】应急管理局2件告警逾期未处置，已升级县监察办督办（第1、2号等），"
                               "请于10月16日前处置。") in outbox(engine)
