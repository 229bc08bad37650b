"""fee_reconciliation (收费比对): online payments per department and local month against
the treasury's receipts, both directions, one alert per department-month."""

from __future__ import annotations

import csv
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, example, given, settings, strategies as st
from sqlalchemy import delete

from conftest import NOW, event, stored_alerts
from monitor.engine import evaluate
from monitor.models import (Alert, AlertChange, AlertNotice, Event, IngestRun, Quarantine,
                            Receipt, RuleState)
from monitor.ingest import ingest_events, ingest_receipts
from monitor.rules.kinds import fee_reconciliation
from monitor.rules.loader import load_rules

AS_OF = datetime(2025, 12, 1, tzinfo=timezone.utc)  # 08:00 in Shanghai: November is over


def rules(tmp_path, extra: str = ""):
    path = tmp_path / "rules.yaml"
    path.write_text(f"- {{id: recon, kind: fee_reconciliation{extra}}}\n", encoding="utf-8")
    return load_rules([path])


def paid(eid: str, at: str, amount: str, channel: str = "online", item="D04-XK-001") -> dict:
    return event(eid, f"case-{eid}", "fee_paid", at, amount=amount, channel=channel,
                 item_code=item)


def load(store, config, write_events, tmp_path, payments, receipts, name="a"):
    list(ingest_events(store, config, [str(write_events(payments, f"{name}.csv"))], NOW))
    path = tmp_path / f"receipts-{name}.csv"
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["department", "period", "amount"])
        writer.writerows(receipts)
    list(ingest_receipts(store, config, [str(path)], NOW))


def found(store, config, tmp_path, as_of=AS_OF, extra=""):
    [outcome] = evaluate(store, config, as_of, rules=rules(tmp_path, extra), dry_run=True)
    assert outcome.error is None and not outcome.incremental
    return {f.subject: f for f in outcome.findings}


def test_local_months_and_both_directions(store, config, write_events, tmp_path):
    load(store, config, write_events, tmp_path, [
        paid("a", "2025-10-31T15:59:59Z", "200.00"),   # 23:59:59 in Shanghai: October
        paid("b", "2025-10-31T16:00:00Z", "300.00"),   # 00:00 on 1 November
        paid("c", "2025-11-03 10:00:00", "0.10"),
        paid("d", "2025-11-03 11:00:00", "0.20"),
        paid("x", "2025-11-04 10:00:00", "999.00", channel="offline"),   # not online
        paid("p", "2025-10-15 10:00:00", "500.00", item="D07-CF-001"),
    ], [("D04", "2025-10", "200.00"), ("D04", "2025-11", "300.30"),
        ("D07", "2025-10", "300.00"),             # 200 yuan less than paid online
        ("D07", "2025-11", "1300500.00")])        # nothing online at all
    got = found(store, config, tmp_path)
    assert sorted(got) == ["D07|2025-10", "D07|2025-11"]
    short, offline = got["D07|2025-10"], got["D07|2025-11"]
    assert (short.department, short.period, short.case_id) == ("D07", "2025-10", None)
    # D07 (城管) charges only penalties: its figures are fines, and its findings say so
    assert short.variant == offline.variant == "fine"
    assert short.fields["direction"].startswith("网上缴纳罚没款多于财政入库")
    assert short.evidence["direction"] == "online_exceeds_receipts"
    assert (short.evidence["online_total"], short.evidence["receipts"],
            short.evidence["online_minus_receipts"]) == ("500.00", "300.00", "200.00")
    assert offline.evidence["direction"] == "receipts_exceed_online"
    assert (offline.fields["online"], offline.fields["difference"], offline.fields["payments"]
            ) == ("0.00", "1300500.00", 0)
    assert offline.evidence["from"] == "2025-11-01T00:00:00+08:00"
    assert offline.evidence["until"] == "2025-12-01T00:00:00+08:00"


def test_threshold_is_the_larger_of_yuan_and_ratio(store, config, write_events, tmp_path):
    load(store, config, write_events, tmp_path, [
        paid("a", "2025-10-10 10:00:00", "100.00"),
        paid("b", "2025-11-10 10:00:00", "100.00"),
        paid("c", "2025-10-10 10:00:00", "2000.00", item="D07-CF-001"),
        paid("d", "2025-11-10 10:00:00", "2000.00", item="D07-CF-001"),
    ], [("D04", "2025-10", "101.00"),     # 1 yuan: not above min_yuan
        ("D04", "2025-11", "101.01"),     # 1.01 yuan: a finding
        ("D07", "2025-10", "2002.00"),    # 2 yuan ≤ 0.1 % of 2002 = 2.002
        ("D07", "2025-11", "2003.00")])   # 3 yuan > 2.003
    got = found(store, config, tmp_path)
    assert sorted(got) == ["D04|2025-11", "D07|2025-11"]
    assert got["D04|2025-11"].evidence["threshold"] == "1"
    assert got["D07|2025-11"].evidence["threshold"] == "2.003"
    assert sorted(found(store, config, tmp_path, extra=", params: {min_yuan: 5}")) == []


def test_months_without_receipts_and_unfinished_months(store, config, write_events, tmp_path):
    load(store, config, write_events, tmp_path, [
        paid("a", "2025-10-10 10:00:00", "100.00"),
        paid("b", "2025-11-29 10:00:00", "100.00"),
    ], [("D04", "2025-11", "100.00"), ("D07", "2025-12", "500.00")])  # December is not over
    mid_november = datetime(2025, 11, 15, tzinfo=timezone.utc)
    assert sorted(found(store, config, tmp_path, as_of=mid_november)) == ["D04|2025-10"]
    got = found(store, config, tmp_path)
    assert sorted(got) == ["D04|2025-10"]
    assert got["D04|2025-10"].evidence["receipts_recorded"] is False
    assert got["D04|2025-10"].fields["receipts"] == "无记录"
    assert "该月无财政入库记录" in got["D04|2025-10"].fields["direction"]
    assert found(store, config, tmp_path, extra=", params: {missing_receipts: false}") == {}
    # The treasury's figures are due 10 days after the month: not before 11 November, local.
    due = ", params: {receipts_due_days: 10}"
    before = datetime(2025, 11, 10, 15, 59, 59, tzinfo=timezone.utc)
    assert found(store, config, tmp_path, as_of=before, extra=due) == {}
    at = datetime(2025, 11, 10, 16, tzinfo=timezone.utc)
    assert list(found(store, config, tmp_path, as_of=at, extra=due)) == ["D04|2025-10"]


def test_months_follow_daylight_saving_in_the_configured_zone(store, config, write_events,
                                                               tmp_path):
    berlin = replace(config, timezone="Europe/Berlin")
    load(store, berlin, write_events, tmp_path, [
        paid("a", "2025-09-30T21:59:59Z", "5.00"),    # 23:59:59 CEST: September
        paid("b", "2025-09-30T22:00:00Z", "10.00"),   # 00:00 CEST: October
        paid("c", "2025-10-31T22:59:59Z", "100.00"),  # 23:59:59 CET: still October
        paid("d", "2025-10-31T23:00:00Z", "1000.00"),  # 00:00 CET: November
    ], [("D04", "2025-09", "5.00"), ("D04", "2025-10", "110.00"), ("D04", "2025-11", "1000.00")])
    assert found(store, berlin, tmp_path) == {}
    shanghai = found(store, config, tmp_path)  # the same payments, months in +08:00
    assert sorted(shanghai) == ["D04|2025-09", "D04|2025-10", "D04|2025-11"]


def test_every_month_boundary_of_a_long_range(store, config, write_events, tmp_path):
    # A payment at the first instant of each local month (Shanghai) and one a second before:
    # 14 months through the binary-search CASE, each amount in its own month only.
    ctx = type("Ctx", (), {"tz": config.tz, "as_of": AS_OF})
    months = fee_reconciliation.months_between("2024-10", ctx)
    assert [m.period for m in (months[0], months[-1])] == ["2024-10", "2025-11"]
    assert all(a.end == b.start for a, b in zip(months, months[1:]))
    payments, receipts = [], []
    for k, m in enumerate(months):
        payments.append(paid(f"s{k}", m.start.isoformat(), f"{k + 1}00.00"))
        payments.append(paid(f"e{k}", (m.end - timedelta(seconds=1)).isoformat(), f"{k + 1}.00"))
        receipts.append(("D04", m.period, f"{(k + 1) * 101}.00"))
    load(store, config, write_events, tmp_path, payments, receipts)
    assert found(store, config, tmp_path) == {}


def test_scope_receipts_changes_and_idempotency(store, config, write_events, tmp_path):
    load(store, config, write_events, tmp_path, [
        paid("a", "2025-10-10 10:00:00", "100.00"),
        paid("p", "2025-10-10 10:00:00", "100.00", item="D07-CF-001"),
    ], [("D04", "2025-10", "150.00"), ("D07", "2025-10", "100.00")])
    assert sorted(found(store, config, tmp_path,
                        extra=", scope: {exclude: {departments: [D04]}}")) == []
    r = rules(tmp_path)
    [first] = evaluate(store, config, AS_OF, rules=r)
    [again] = evaluate(store, config, AS_OF, rules=r, full=True)
    assert (first.stored.new, again.stored.new, again.stored.unchanged) == (1, 0, 1)
    # New receipts and no new event: the next incremental run compares that month again.
    # Receipts written since the last event are all compared again (their mark cannot
    # tell whether a run saw them) until a run's watermark has passed them.
    load(store, config, write_events, tmp_path, [], [("D07", "2025-10", "90.00")], name="b")
    [later] = evaluate(store, config, AS_OF, rules=r)
    assert later.incremental
    assert sorted(f.subject for f in later.findings) == ["D04|2025-10", "D07|2025-10"]
    assert (later.stored.new, later.stored.unchanged) == (1, 1)
    load(store, config, write_events, tmp_path, [paid("x", "2025-09-01 10:00:00", "1.00",
                                                      channel="offline")], [], name="c")
    [again] = evaluate(store, config, AS_OF, rules=r)
    assert (again.stored.new, again.stored.changed, again.stored.unchanged) == (0, 0, 2)
    [quiet] = evaluate(store, config, AS_OF, rules=r)
    assert quiet.incremental and quiet.findings == []


# one batch: payments (item, local day from 1 Sep, amount, online), receipts rows
# (department, month, amount), and how far the moment the run is as of moves on along
# AS_OFS (-1: back, a replay)
PAYMENT = st.tuples(st.sampled_from(["D04-XK-001", "D07-CF-001"]), st.integers(0, 110),
                    st.sampled_from(["100.00", "250.00"]), st.booleans())
RECEIPT = st.tuples(st.sampled_from(["D04", "D07"]),
                    st.sampled_from(["2025-09", "2025-10", "2025-11"]),
                    st.sampled_from(["0.00", "100.00", "250.00", "350.00"]))
BATCH = st.tuples(st.lists(PAYMENT, max_size=4), st.lists(RECEIPT, max_size=2),
                  st.sampled_from([0, 0, 1, 1, 2, -1]))
# around month ends (Shanghai midnight is 16:00 UTC) and a receipts_due_days of 3
AS_OFS = [datetime(2025, 9, 30, 15, 59, tzinfo=timezone.utc),
          datetime(2025, 10, 2, tzinfo=timezone.utc), datetime(2025, 10, 4, tzinfo=timezone.utc),
          datetime(2025, 11, 1, tzinfo=timezone.utc), datetime(2025, 11, 3, 16, tzinfo=timezone.utc),
          datetime(2025, 12, 20, tzinfo=timezone.utc)]


@pytest.mark.slow  # 25 random histories, each evaluated batch by batch
@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(batches=st.lists(BATCH, min_size=2, max_size=6),
       params=st.sampled_from(["", ", params: {receipts_due_days: 3}",
                               ", params: {missing_receipts: false}"]))
# online in September, no receipts; due three days after the month: not yet on 2 October,
# due on the 4th with no new event or receipt
@example(batches=[([("D04-XK-001", 9, "100.00", True)], [], 1), ([], [], 1)],
         params=", params: {receipts_due_days: 3}")
def test_incremental_equals_full(store, reference, config, write_events, tmp_path,
                                 batches, params):
    """Payments and receipts (new, and rewritten) arrive in batches, each evaluated as of a
    moment that mostly moves on across month ends and due days (and now and then back: a
    replay). The alerts of incremental runs are those of full runs over the same
    history, run for run."""
    for engine in (store, reference):
        with engine.begin() as conn:
            for model in (AlertNotice, AlertChange, Alert, RuleState, Event, Receipt, Quarantine,
                          IngestRun):
                conn.execute(delete(model))
    r = rules(tmp_path, params)
    start = datetime(2025, 9, 1, 10)
    n, moment = 0, 0
    for k, (payments, receipts, step) in enumerate(batches):
        moment = min(max(moment + step, 0), len(AS_OFS) - 1)
        rows = []
        for item, day, amount, online in payments:
            n += 1
            rows.append(paid(f"p{n}", (start + timedelta(days=day)).isoformat(sep=" "),
                             amount, "online" if online else "offline", item))
        for engine in (store, reference):
            load(engine, config, write_events, tmp_path, rows, receipts, name=f"b{k}")
        [inc] = evaluate(store, config, AS_OFS[moment], rules=r)
        [full] = evaluate(reference, config, AS_OFS[moment], rules=r, full=True)
        assert inc.error is None and full.error is None
        assert stored_alerts(store) == stored_alerts(reference)


def test_a_department_with_no_receipts_loaded_is_skipped_and_said_once(
        store, config, write_events, tmp_path, caplog):
    load(store, config, write_events, tmp_path, [
        paid("a", "2025-09-10 10:00:00", "100.00"),
        paid("b", "2025-10-10 10:00:00", "100.00"),
        paid("c", "2025-10-12 10:00:00", "80.00", item="D07-CF-001"),
    ], [("D07", "2025-10", "50.00")])
    with caplog.at_level("WARNING", logger="monitor.rules.kinds.fee_reconciliation"):
        got = found(store, config, tmp_path)
    assert sorted(got) == ["D07|2025-10"]   # D04's two months: no receipts ever loaded
    said = [r.getMessage() for r in caplog.records if "no treasury receipts" in r.getMessage()]
    assert said == ["fee reconciliation: no treasury receipts loaded for department D04: "
                    "their months are not compared (permit-monitor ingest receipts)"]


def test_a_department_of_fees_and_fines_is_worded_for_both(store, config, write_events,
                                                           tmp_path):
    """D04 charges licence fees; once the catalog gives it a penalty too (as the demo's
    城管 has both), its reconciliation findings name fees and fines (variant ``mixed``)."""
    from sqlalchemy import insert

    from monitor.alerts import render
    from monitor.models import Item

    load(store, config, write_events, tmp_path, [paid("a", "2025-10-10 10:00:00", "100.00")],
         [("D04", "2025-10", "300.00")])
    [before] = found(store, config, tmp_path).values()
    assert before.variant is None and before.fields["direction"].startswith("财政入库多于网上收费")
    with store.begin() as conn:
        conn.execute(insert(Item).values(region=config.region, code="D04-CF-009", name="罚款", department="D04",
                                         category="penalty", promised_days=30, legal_days=90,
                                         fee=Decimal("0"), min_minutes={},
                                         required_attachments={}))
    [after] = found(store, config, tmp_path).values()
    [rule] = rules(tmp_path)
    assert after.variant == "mixed"
    assert rule.variant("mixed").title == "收费及罚没款入库比对不符（网上收缴与财政入库不一致）"
    assert render(rule, after)[1] == ("D04 2025-10：网上收费及罚没款 100.00 元，财政入库 300.00 元，"
                                      "相差 200.00 元（财政入库多于网上收缴，疑似网下收费或收缴罚没款、"
                                      "体外循环）")
