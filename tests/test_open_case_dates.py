"""Open cases dated (``open_cases.due_on``, monitor/rules/kinds/_overdue_open.py): on a new
date ``overdue`` and ``data_quality`` look at the listed open cases whose date has come —
a warning reached, a deadline crossed, a case gone stale — not at every open case; and
the alerts stay what a full evaluation stores, night after night, across deadlines,
suspensions, extensions, stale cases, a catalog change and an exemption that ends."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime, timedelta, timezone

from sqlalchemy import select

from conftest import CATALOG, NOW, event, rule_file, stored_alerts
from monitor.catalog import ingest_catalog
from monitor.engine import context, evaluate
from monitor.exemptions import add as add_exemption
from monitor.ingest import ingest_events
from monitor.models import OpenCase, RuleState
from monitor.rules.kinds import _overdue_open

RULES = "- {id: overdue, kind: overdue}\n- {id: dq, kind: data_quality}\n"
OFFICE = "  - {id: m2, name: 王五, department: D04, roles: [monitor_l2], phone: \"13800000009\"}\n"


def night(day: date) -> datetime:
    """01:00 local (Asia/Shanghai) on ``day``: when the nightly job runs."""
    return datetime(day.year, day.month, day.day, 17, 0, tzinfo=timezone.utc) - timedelta(days=1)


def ev(event_id: str, case_id: str, step: str, at: str, item="D04-XK-001", **extra) -> dict:
    return event(event_id, case_id, step, at, item_code=item, **extra)


# D04-XK-001: promised 10 / legal 20 working days; D07-CF-001: 5 / 5
HISTORY = [
    ev("w1", "W", "accept", "2025-11-03 10:00:00"),                     # runs into red
    ev("f1", "F", "accept", "2025-11-10 10:00:00", item="D07-CF-001"),  # decided on day 15
    ev("s1", "S", "accept", "2025-11-03 10:00:00"),                     # suspended, open stop
    ev("s2", "S", "suspend", "2025-11-05 10:00:00"),
    ev("e1", "E", "accept", "2025-11-04 10:00:00"),                     # extended 5 days
    ev("e2", "E", "extend", "2025-11-06 10:00:00", days="5"),
    ev("r1", "R", "accept", "2025-11-05 10:00:00"),                     # suspended and resumed
    ev("r2", "R", "suspend", "2025-11-06 10:00:00"),
    ev("r3", "R", "resume", "2025-11-12 10:00:00"),
    ev("q1", "Q", "accept", "2025-10-20 10:00:00"),                     # goes stale
    ev("q2", "Q", "review", "2025-10-22 10:00:00"),
    ev("g1", "G", "accept", "2025-11-11 10:00:00"),                     # exempt, then not
    ev("d1", "D", "accept", "2025-11-03 10:00:00"),                     # closed, late
    ev("d2", "D", "decide", "2025-11-25 10:00:00"),
]
LATER = {15: [ev("f2", "F", "decide", "2025-11-19 09:00:00", item="D07-CF-001")],
         30: [ev("n1", "N", "accept", "2025-12-03 10:00:00")]}


def ingest(engine, config, write_events, rows, name) -> None:
    list(ingest_events(engine, config, [str(write_events(rows, name))], NOW))


def test_incremental_nights_store_what_full_evaluation_stores(
        store, reference, config, write_events, tmp_path, catalog_file):
    config = replace(config, stale_days=20)
    rules = rule_file(tmp_path, RULES)
    catalog_file.write_text(CATALOG.replace("users:\n", "users:\n" + OFFICE), encoding="utf-8")
    for engine in (store, reference):
        ingest_catalog(engine, catalog_file)
        ingest(engine, config, write_events, HISTORY, "history.csv")
    start = date(2025, 11, 5)
    looked_at = []
    for n in range(45):
        today = start + timedelta(days=n)
        for engine in (store, reference):
            if n in LATER:
                ingest(engine, config, write_events, LATER[n], f"later{n}.csv")
            if n == 6:  # G's warning (24 Nov) is raised while it is exempt
                add_exemption(engine, ["overdue", "dq"], "overdue", {"case": ["G"]},
                              "系统故障期间", "m2", date(2025, 11, 24), night(today), config.tz)
            if n == 20:  # the catalog changes: D04-XK-001's promised limit shortens
                catalog_file.write_text(catalog_file.read_text(encoding="utf-8").replace(
                    "promised_days: 10", "promised_days: 8"), encoding="utf-8")
                ingest_catalog(engine, catalog_file)
        if n:  # what the night will look at among the open cases it lists
            with store.connect() as conn:
                basis = _overdue_open.basis(conn, rules[0], context(config, night(today)))
                looked_at.append(_overdue_open.due_cases(conn, rules[0], today, basis))
        incremental = evaluate(store, config, night(today), rules=rules)
        full = evaluate(reference, config, night(today), rules=rules, full=True)
        assert all(o.error is None for o in incremental + full)
        assert n == 0 or all(o.incremental for o in incremental)
        assert stored_alerts(store) == stored_alerts(reference), today
        if today == date(2025, 11, 24):  # G's warning, raised while exempt: suppressed
            assert stored_alerts(store)["overdue|G"][2] == "suppressed"
            assert _dates(store)["G"] is None  # looked at every night (the exemption ends)
    levels = {k: v[0] for k, v in stored_alerts(store).items()}
    assert levels["overdue|W"] == "red" and levels["dq|Q"] == "warning"
    assert stored_alerts(store)["overdue|G"][2] == "open"  # the exemption ended: reopened
    # most nights look at no listed case, or a few: not every open case
    assert sum(1 for cases in looked_at if not cases) > len(looked_at) // 2
    # red, or stale with nothing pending: only a new event can change them
    assert _dates(store)["W"] == _dates(store)["Q"] == date.max


def _dates(store) -> dict:
    with store.connect() as conn:
        return dict(conn.execute(select(OpenCase.case_id, OpenCase.due_on)
                                 .where(OpenCase.rule_id == "overdue")).all())


def test_a_case_listed_before_dates_existed_is_looked_at_and_dated(
        store, config, write_events, tmp_path):
    rules = rule_file(tmp_path, "- {id: overdue, kind: overdue}\n")
    ingest(store, config, write_events, HISTORY[:1], "w.csv")
    evaluate(store, config, night(date(2025, 11, 5)), rules=rules)
    with store.begin() as conn:  # as a store upgraded from before migration 0032 holds it
        conn.execute(OpenCase.__table__.update().values(due_on=None, basis=None))
        assert conn.scalar(select(RuleState.last_event_id)) is not None
    [outcome] = evaluate(store, config, night(date(2025, 11, 6)), rules=rules)
    assert outcome.incremental and outcome.findings == []  # looked at: within its limits
    with store.connect() as conn:  # and dated: the advance warning, on the last working
        # day before its promised deadline (17 Nov)
        assert conn.execute(select(OpenCase.due_on, OpenCase.basis.is_not(None))).all() == [
            (date(2025, 11, 14), True)]
