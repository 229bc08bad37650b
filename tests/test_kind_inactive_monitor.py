"""The monitoring log (监察日志): ingested through validation and quarantine, online rates
in the report, and inactive_monitor — a tier-1 monitor away while alerts wait → tier 2."""

from __future__ import annotations

import csv
from datetime import datetime, timezone

from sqlalchemy import select

from conftest import NOW, event, ingest_rows, rule_file
from monitor.engine import evaluate
from monitor.ingest import ingest_activity
from monitor.ingest.quarantine import list_quarantine, retry_quarantine
from monitor.models import Alert
from monitor.catalog import ingest_catalog
from monitor.report import build_report, parse_period

MORE_USERS = """\
departments:
  - {code: D04, name: 应急管理局}
  - {code: JW, name: 县纪委监委}
users:
  - {id: m1, name: 王监察, department: D04, roles: [monitor_l1], phone: "13800000009"}
  - {id: m2, name: 赵监察, department: D04, roles: [monitor_l1], phone: "13800000010"}
  - {id: l2, name: 县监察, department: JW, roles: [monitor_l2], phone: "13800000011"}
"""
RULE = "- {id: away, kind: inactive_monitor, level: yellow}\n"


def write_activity(tmp_path, rows, name="activity.csv"):
    path = tmp_path / name
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["user_id", "at", "action"])
        writer.writerows(rows)
    return str(path)


def setup(store, config, write_events, tmp_path, activity):
    extra = tmp_path / "more.yaml"
    extra.write_text(MORE_USERS, encoding="utf-8")
    ingest_catalog(store, extra)
    # an open late-entry finding for D04, raised by the nightly run
    ingest_rows(store, config, write_events, [
        event("e1", "c1", "accept", "2025-12-29 09:00:00", recorded_at="2026-01-04 09:00:00")])
    evaluate(store, config, datetime(2026, 1, 5, 1, tzinfo=timezone.utc),
             rules=rule_file(tmp_path, "- {id: late, kind: late_entry}\n"))
    return list(ingest_activity(store, config, [write_activity(tmp_path, activity)], NOW))


def test_ingest_quarantines_and_deduplicates(store, config, write_events, tmp_path):
    [result] = setup(store, config, write_events, tmp_path, [
        ("m1", "2026-01-05 08:30:00", "login"),
        ("m1", "2026-01-05 08:30:00", "login"),          # duplicate in the file
        ("ghost", "2026-01-05 08:30:00", "login"),       # unknown user
        ("m1", "2026-01-05 09:00:00", "dance"),          # bad action
        ("m2", "yesterday", "login"),                    # bad timestamp
        ("u1", "2026-01-05 08:00:00", "handle")])
    t = result.tally
    assert (t.read, t.inserted, t.duplicates, t.quarantined) == (6, 2, 1, 3)
    assert dict(t.by_reason) == {"unknown_user": 1, "bad_action": 1, "bad_timestamp": 1}
    lines = {(q.line, q.reason) for q in list_quarantine(store)}
    assert lines == {(4, "unknown_user"), (5, "bad_action"), (6, "bad_timestamp")}
    [again] = ingest_activity(store, config, [write_activity(tmp_path, [
        ("m1", "2026-01-05T00:30:00Z", "login")], "again.csv")], NOW)
    assert (again.tally.inserted, again.tally.duplicates) == (0, 1)  # same instant, UTC
    extra = tmp_path / "ghost.yaml"
    extra.write_text("users:\n  - {id: ghost, name: 新人, department: D04, roles: [clerk]}\n",
                     encoding="utf-8")
    ingest_catalog(store, extra)
    retried = retry_quarantine(store, config, NOW)
    assert retried.inserted == 1


def test_inactive_monitor_goes_to_tier_two(store, config, write_events, tmp_path):
    setup(store, config, write_events, tmp_path, [
        ("m1", "2026-01-05 08:30:00", "login"),   # Monday
        ("m2", "2026-01-05 08:31:00", "login"),
        ("m2", "2026-01-07 08:31:00", "login")])  # Wednesday
    rules = rule_file(tmp_path, RULE)
    # Thursday 10:00: m1 missed Tue and Wed (2 working days, both over); m2 missed none
    thursday = datetime(2026, 1, 8, 2, tzinfo=timezone.utc)
    [o] = evaluate(store, config, thursday, rules=rules)
    assert [(f.actor, f.fields["days"]) for f in o.findings] == [("m1", 2)]
    # Wednesday: one day over for m1 only, not enough
    [o] = evaluate(store, config, datetime(2026, 1, 7, 2, tzinfo=timezone.utc), rules=rules,
                   dry_run=True)
    assert o.findings == []
    with store.connect() as conn:
        [alert] = conn.execute(select(Alert).where(Alert.kind == "inactive_monitor")).all()
    assert (alert.tier, alert.assigned_to, alert.subject) == (2, ["l2"], "m1|2026-01-05")
    assert "王监察" in alert.message and "2 个工作日未登录" in alert.message
    # the following Monday (Sat and Sun are not working days): 4 days for m1, 2 for m2
    [o] = evaluate(store, config, datetime(2026, 1, 12, 2, tzinfo=timezone.utc), rules=rules,
                   dry_run=True)
    assert sorted((f.actor, f.fields["days"]) for f in o.findings) == [("m1", 4), ("m2", 2)]


def test_no_open_alerts_no_finding_and_no_log_no_finding(store, config, write_events,
                                                         tmp_path):
    rules = rule_file(tmp_path, RULE)
    later = datetime(2026, 2, 2, 2, tzinfo=timezone.utc)
    extra = tmp_path / "more.yaml"
    extra.write_text(MORE_USERS, encoding="utf-8")
    ingest_catalog(store, extra)
    [o] = evaluate(store, config, later, rules=rules, dry_run=True)
    assert o.findings == []  # no monitoring log at all: absence cannot be told
    list(ingest_activity(store, config, [write_activity(tmp_path, [
        ("m1", "2026-01-05 08:30:00", "login")])], NOW))
    [o] = evaluate(store, config, later, rules=rules, dry_run=True)
    assert o.findings == []  # nothing waiting in D04


def test_online_rates_in_the_report(store, config, write_events, tmp_path):
    setup(store, config, write_events, tmp_path, [
        ("m1", "2026-01-05 08:30:00", "login"), ("m2", "2026-01-05 08:31:00", "login"),
        ("m1", "2026-01-06 08:30:00", "login"), ("u1", "2026-01-06 08:00:00", "login"),
        ("u2", "2026-01-06 08:00:00", "handle")])  # handle is not a login
    rep = build_report(store, config, parse_period("2026-01"), NOW)
    online = {r["department"]: r for r in rep.tables["t_online"].rows}
    # working days 5 and 6 January: monitors 2/2 then 1/2; handlers (u1, u2) 0/2 then 1/2
    assert online["D04"]["monitors_online"] == 0.75
    assert online["D04"]["handlers_online"] == 0.25
    daily = [(r["date"].day, r["monitors_online"]) for r in rep.tables["t_online_daily"].rows
             if r["department"] == "D04"]
    assert daily == [(5, 1.0), (6, 0.5)]
