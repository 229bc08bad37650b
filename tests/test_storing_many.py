"""Storing many findings in one pass (issue 19: a first run's storing): more findings
than one round of ``store_findings`` and than one look-up list, every alert with its own
id, trail entry, hold and notice — the look-ups that tie them together (keys to ids,
cases to regions, alerts to regions, notices already sent) bind their lists as one
parameter (monitor/sqllist.py) on both databases."""

from __future__ import annotations

from datetime import datetime, timezone

from sqlalchemy import func, select

from monitor import supervised, trail, trailcheck
from monitor.alerts import CHUNK, IN_CHUNK, store_findings
from monitor.catalog import ingest_catalog
from monitor.models import Alert, AlertNotice, Hold, OutboxMessage, TrailEntry
from monitor.rules.finding import Finding
from monitor.rules.loader import load_rules

AT = datetime(2025, 9, 30, 2, 0, tzinfo=timezone.utc)  # 10:00 local: no quiet hours
N = max(CHUNK, IN_CHUNK) * 2 + 37
CATALOG = """\
departments:
  - {code: D04, name: 应急管理局}
  - {code: D07, name: 城市管理局}
users:
  - {id: m4, name: 王监察, department: D04, roles: [monitor_l1], phone: "13800000004"}
  - {id: m7, name: 赵监察, department: D07, roles: [monitor_l1], phone: "13800000007"}
items: []
"""


def findings() -> list[Finding]:
    return [Finding(f"c{i}", {"i": i}, {"n": i}, level="red", case_id=f"c{i}",
                    department=("D04", "D07")[i % 2]) for i in range(N)]


def test_a_pass_of_many_findings_stores_each_alert_with_its_own_entry_hold_and_notice(
        engine, tmp_path):
    (tmp_path / "catalog.yaml").write_text(CATALOG, encoding="utf-8")
    ingest_catalog(engine, tmp_path / "catalog.yaml")
    (tmp_path / "rules.yaml").write_text(
        "- {id: fast, kind: step_too_fast, level: red, action: halt,"
        " message: '案件 {case_id}'}\n", encoding="utf-8")
    [rule] = load_rules([tmp_path / "rules.yaml"])
    with engine.begin() as conn:
        stored = store_findings(conn, rule, iter(findings()), AT)
    assert (stored.new, stored.changed, stored.unchanged) == (N, 0, 0)

    with engine.connect() as conn:
        alerts = {a.id: a for a in conn.execute(select(Alert))}
        raised = {e.alert_id: e for e in conn.execute(
            select(TrailEntry).where(TrailEntry.action == "raised"))}
        holds = {(h.alert_id, h.case_id) for h in conn.execute(select(Hold))}
        notices = {(n.alert_id, n.recipient) for n in conn.execute(select(AlertNotice))}
        outbox = conn.scalar(select(func.count()).select_from(OutboxMessage))
    assert len(alerts) == N and set(raised) == set(alerts)
    for alert_id, a in alerts.items():
        i = int(a.case_id[1:])
        assert a.dedupe_key == f"fast|c{i}" and a.message == f"案件 c{i}"
        assert a.assigned_to == [("m4", "m7")[i % 2]]
        assert raised[alert_id].detail["subject"] == f"c{i}"
        assert raised[alert_id].detail["assigned_to"] == a.assigned_to
        assert (alert_id, a.case_id) in holds
        assert (alert_id, a.assigned_to[0]) in notices
    assert len(holds) == N and len(notices) == N
    # one SMS per person for each round of CHUNK findings, not one per alert
    assert outbox == 2 * -(-N // CHUNK)
    assert trailcheck.verify(engine).entries == trail.head_of(engine).seq
    assert supervised.check(engine).rows >= 2 * N  # raises StateMismatch otherwise

    with engine.begin() as conn:  # the same findings again: nothing new, nothing told
        again = store_findings(conn, rule, iter(findings()), AT)
    assert (again.new, again.changed, again.unchanged, again.messages) == (0, 0, N, 0)
