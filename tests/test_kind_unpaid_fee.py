"""unpaid_fee (网下收费): a fee-bearing case certified or completed with no online payment."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest
from sqlalchemy import select

from conftest import CATALOG, event, dry_findings, ingest_rows, rule_file
from monitor.engine import evaluate
from monitor.rules.kinds import _fees
from monitor.models import Alert

AS_OF = datetime(2025, 11, 1, tzinfo=timezone.utc)
FEE_CATALOG = CATALOG.replace(
    "items:\n", "  - {id: boss, name: 王五, department: D04, roles: [deputy, principal]}\n"
                "items:\n") + """\
  - {code: D04-BA-001, name: 应急预案备案, department: D04, category: other,
     promised_days: 3, legal_days: 20}
"""


@pytest.fixture
def catalog_file(tmp_path):
    path = tmp_path / "catalog.yaml"
    path.write_text(FEE_CATALOG, encoding="utf-8")
    return path


def rules(tmp_path, extra: str = ""):
    return rule_file(tmp_path, f"- {{id: unpaid, kind: unpaid_fee{extra}}}\n")


load = ingest_rows


def found(store, config, tmp_path, as_of=AS_OF, extra=""):
    return dry_findings(store, config, rules(tmp_path, extra), as_of)


def pay(eid, case, amount, channel, at="2025-10-10 10:00:00", **kw):
    return event(eid, case, "fee_paid", at, amount=amount, channel=channel, **kw)


def test_certificate_without_online_payment(store, config, write_events, tmp_path):
    load(store, config, write_events, [
        event("n1", "never", "accept", "2025-10-09 09:00:00"),
        event("n2", "never", "certificate_printed", "2025-10-10 11:00:00"),
        event("f1", "offline", "accept", "2025-10-09 09:00:00"),
        pay("f2", "offline", "200.00", "offline"),
        event("f3", "offline", "complete", "2025-10-10 11:00:00"),
        event("o1", "online", "accept", "2025-10-09 09:00:00"),
        pay("o2", "online", "200.00", "online"),
        event("o3", "online", "certificate_printed", "2025-10-10 11:00:00"),
        event("u1", "unknown", "accept", "2025-10-09 09:00:00"),  # channel not recorded
        pay("u2", "unknown", "200.00", ""),
        event("u3", "unknown", "complete", "2025-10-10 11:00:00"),
        event("b1", "nofee", "accept", "2025-10-09 09:00:00", item_code="D04-BA-001"),
        event("b2", "nofee", "complete", "2025-10-10 11:00:00", item_code="D04-BA-001"),
    ])
    got = found(store, config, tmp_path)
    assert sorted(got) == ["never", "offline", "unknown"]
    never, offline = got["never"], got["offline"]
    assert never.fields["reached"] == "制证" and never.fields["payment"] == "无任何缴费记录"
    assert never.fields["due"] == "200.00 元" and never.evidence["standard_from"] == "catalog"
    assert offline.fields["reached"] == "办结"
    assert offline.fields["payment"] == "仅有网下缴费 200.00 元"
    [paid] = offline.evidence["payments_not_online"]
    assert (paid["event_id"], paid["channel"], paid["amount"]) == ("f2", "offline", "200.00")
    assert offline.evidence["reached"]["event_id"] == "f3"
    assert set(offline.event_ids) == {"f2", "f3"}


def test_judged_only_once_the_certificate_is_printed_as_of(store, config, write_events, tmp_path):
    load(store, config, write_events, [
        event("a1", "c1", "accept", "2025-10-09 09:00:00"),
        event("a2", "c1", "fee_assessed", "2025-10-09 10:00:00", amount="200.00"),
        event("a3", "c1", "certificate_printed", "2025-10-31T16:00:00Z"),
    ])
    assert found(store, config, tmp_path, as_of=datetime(2025, 10, 31, 15, 59, 59,
                                                         tzinfo=timezone.utc)) == {}
    assert list(found(store, config, tmp_path, as_of=datetime(2025, 10, 31, 16,
                                                              tzinfo=timezone.utc))) == ["c1"]


def test_penalties_and_what_is_owed(store, config, write_events, tmp_path):
    pen = {"item_code": "D07-CF-001"}
    load(store, config, write_events, [
        # a penalty closed with no fine assessed: its fine is unknown → flagged
        event("p1", "pen-none", "accept", "2025-10-09 09:00:00", **pen),
        event("p2", "pen-none", "complete", "2025-10-10 09:00:00", **pen),
        # assessed 0 (no fine, e.g. a warning): nothing owed
        event("z1", "pen-zero", "fee_assessed", "2025-10-09 09:00:00", amount="0", **pen),
        event("z2", "pen-zero", "complete", "2025-10-10 09:00:00", **pen),
        # fined and paid online
        event("q1", "pen-paid", "fee_assessed", "2025-10-09 09:00:00", amount="500", **pen),
        pay("q2", "pen-paid", "500.00", "online", **pen),
        event("q3", "pen-paid", "complete", "2025-10-10 11:00:00", **pen),
        # fully waived by the principal: nothing owed
        event("w1", "waived", "fee_assessed", "2025-10-09 09:00:00", amount="200"),
        event("w2", "waived", "fee_waived", "2025-10-09 10:00:00", amount="200", actor="boss"),
        event("w3", "waived", "complete", "2025-10-10 11:00:00"),
        # fully "waived" by the clerk: still owed, and the waiver is named
        event("k1", "clerk", "fee_assessed", "2025-10-09 09:00:00", amount="200"),
        event("k2", "clerk", "fee_waived", "2025-10-09 10:00:00", amount="200"),
        event("k3", "clerk", "complete", "2025-10-10 11:00:00"),
    ])
    got = found(store, config, tmp_path)
    assert sorted(got) == ["clerk", "pen-none"]
    assert got["pen-none"].fields["due"] == "未核定金额"
    assert got["pen-none"].evidence["standard"] is None
    clerk = got["clerk"].evidence
    assert (clerk["standard"], clerk["due"], clerk["standard_from"]) == ("200.00", "200.00",
                                                                         "fee_assessed")
    assert [(w["event_id"], w["actor"], w["authorised"]) for w in clerk["waivers"]] == [
        ("k2", "u1", False)]
    # The waiver counts when the clerk's role may grant it.
    both = ", params: {authorising_roles: [clerk, principal]}"
    assert sorted(found(store, config, tmp_path, extra=both)) == ["pen-none"]
    # Scope: penalties excluded.
    assert sorted(found(store, config, tmp_path,
                        extra=", scope: {exclude: {categories: [penalty]}}")) == ["clerk"]


def test_alert_is_stored_once(store, config, write_events, tmp_path):
    load(store, config, write_events, [
        event("n1", "c1", "accept", "2025-10-09 09:00:00"),
        event("n2", "c1", "certificate_printed", "2025-10-10 11:00:00")])
    r = rules(tmp_path)
    [first] = evaluate(store, config, AS_OF, rules=r)
    [again] = evaluate(store, config, AS_OF, rules=r, full=True)
    assert (first.stored.new, again.stored.new, again.stored.unchanged) == (1, 0, 1)
    # A later offline payment is named in the same alert (updated, not duplicated).
    load(store, config, write_events, [pay("n3", "c1", "200.00", "offline")], "more.csv")
    [later] = evaluate(store, config, AS_OF, rules=r)
    assert later.incremental and (later.stored.new, later.stored.changed) == (0, 1)
    with store.connect() as conn:
        [alert] = conn.execute(select(Alert)).all()
    assert alert.subject == "c1" and "网下缴费 200.00 元" in alert.message


def test_a_fine_is_titled_and_worded_as_a_fine(store, config, write_events, tmp_path):
    """A finding on a penalty item takes the kind's ``fine`` variant: its own title (kept
    on the alert, shown in lists, pages, reports and SMS) and message; a fee finding of the
    same rule keeps the rule's. The rule file may word the variant its own way."""
    pen = {"item_code": "D07-CF-001"}
    load(store, config, write_events, [
        event("p1", "pen", "accept", "2025-10-09 09:00:00", **pen),
        event("p2", "pen", "fee_assessed", "2025-10-09 10:00:00", amount="500.00", **pen),
        pay("p3", "pen", "500.00", "offline", **pen),
        event("p4", "pen", "complete", "2025-10-10 11:00:00", **pen),
        event("f1", "fee", "accept", "2025-10-09 09:00:00"),
        event("f2", "fee", "certificate_printed", "2025-10-10 11:00:00")])
    [outcome] = evaluate(store, config, AS_OF, rules=rules(tmp_path))
    assert outcome.stored.new == 2
    with store.connect() as conn:
        alerts = {a.case_id: a for a in conn.execute(select(Alert))}
    fine, fee = alerts["pen"], alerts["fee"]
    assert fine.title == "罚没款未经网上缴纳（罚没事项未经网上缴纳即办结）"
    assert fine.message == "案件 pen：已办结，应缴罚没款 500.00 元，未见网上缴纳（仅有网下缴费 500.00 元）"
    assert fee.title == "网下收费（收费事项未经网上缴费即制证或办结）"
    assert fee.message.startswith("案件 fee：已制证，应缴 200.00 元，未见网上缴费")
    from monitor.alerts import jsonable, list_alerts  # alerts list --format json, alerts show
    assert {r.case_id: jsonable(r)["title"] for r in list_alerts(store)} == {
        "pen": fine.title, "fee": fee.title}
    # the rule file words the variant; the main message stays its own
    worded = rules(tmp_path, ", variants: {fine: {title: 罚款未网上缴纳, message: '罚款 {due}'}}")
    got = dry_findings(store, config, worded, AS_OF)
    from monitor.alerts import render
    assert render(worded[0], got["pen"])[1] == "罚款 500.00 元"
    assert worded[0].variant("fine").title == "罚款未网上缴纳"
    assert render(worded[0], got["fee"])[1].startswith("案件 fee：已制证")
    assert worded[0].version != rules(tmp_path)[0].version  # the wording decides messages


def test_variants_are_checked(tmp_path):
    from monitor.errors import RuleError, SourceErrors

    for extra, wanted in (
            (", variants: {fines: {title: x}}", "unknown key 'fines' (did you mean 'fine'?)"),
            (", variants: {fine: {titel: x}}", "unknown key 'titel' (did you mean 'title'?)"),
            (", variants: {fine: {message: '{dew}'}}", "unknown field 'dew' (did you mean 'due'?)"),
            (", variants: [fine]", "'variants' must be a mapping")):
        with pytest.raises((RuleError, SourceErrors)) as exc:
            rules(tmp_path, extra)
        assert wanted in str(exc.value), str(exc.value)


def test_flagged_cases_read_in_rounds_give_the_same_findings(store, config, write_events,
                                                             tmp_path, monkeypatch):
    """As fee_waiver's: rounds of one flagged case find what one round of all does."""
    ingest_rows(store, config, write_events, [
        *(event(f"{c}{k}", c, step, f"2025-10-09 0{k + 1}:00:00", amount=amount)
          for c in ("x", "y", "z")
          for k, (step, amount) in enumerate([("fee_assessed", "200"), ("complete", None)])),
        pay("y-p", "y", "50.00", "offline")])
    whole = found(store, config, tmp_path)
    monkeypatch.setattr(_fees, "CHUNK", 1)
    assert sorted(whole) == ["x", "y", "z"] and found(store, config, tmp_path) == whole
