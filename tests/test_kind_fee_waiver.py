"""fee_waiver (擅自减免): paid online less than due, without an authorised waiver."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from conftest import CATALOG, event, dry_findings, ingest_rows, rule_file
from monitor.engine import evaluate
from monitor.rules.kinds import _fees

AS_OF = datetime(2025, 11, 1, tzinfo=timezone.utc)
FEE_CATALOG = CATALOG.replace(
    "items:\n", "  - {id: boss, name: 王五, department: D04, roles: [principal]}\nitems:\n")


@pytest.fixture
def catalog_file(tmp_path):
    path = tmp_path / "catalog.yaml"
    path.write_text(FEE_CATALOG, encoding="utf-8")
    return path


def rules(tmp_path, extra: str = ""):
    return rule_file(tmp_path, f"- {{id: waiver, kind: fee_waiver{extra}}}\n")


load = ingest_rows


def found(store, config, tmp_path, as_of=AS_OF, extra=""):
    return dry_findings(store, config, rules(tmp_path, extra), as_of)


def licence(case: str, *, assessed: str | None = "200.00", paid=("200.00",), waived=(),
            end: str | None = "complete") -> list[dict]:
    """A licence case: fee_assessed, fee_waived (amount, actor)…, online payments…, end."""
    rows = [event(f"{case}-1", case, "accept", "2025-10-09 09:00:00")]
    if assessed is not None:
        rows.append(event(f"{case}-2", case, "fee_assessed", "2025-10-09 10:00:00",
                          amount=assessed))
    for k, (amount, actor) in enumerate(waived):
        rows.append(event(f"{case}-w{k}", case, "fee_waived", "2025-10-09 11:00:00",
                          amount=amount, actor=actor))
    for k, amount in enumerate(paid):
        rows.append(event(f"{case}-p{k}", case, "fee_paid", f"2025-10-09 14:0{k}:00",
                          amount=amount, channel="online"))
    if end:
        rows.append(event(f"{case}-9", case, end, "2025-10-10 10:00:00"))
    return rows


def test_shortfall_boundary(store, config, write_events, tmp_path):
    load(store, config, write_events, [*licence("cent", paid=("199.99",)),
                                       *licence("twocents", paid=("199.98",)),
                                       *licence("full"),
                                       *licence("over", paid=("250.00",))])
    got = found(store, config, tmp_path)
    assert list(got) == ["twocents"]
    f = got["twocents"]
    assert (f.fields["due"], f.fields["paid"], f.fields["shortfall"]) == ("200.00", "199.98",
                                                                          "0.02")
    assert f.evidence["tolerance"] == "0.01"
    assert sorted(found(store, config, tmp_path, extra=", params: {tolerance: 0}")) == [
        "cent", "twocents"]


def test_waivers_count_only_from_authorised_users(store, config, write_events, tmp_path):
    load(store, config, write_events, [
        *licence("principal", paid=("100.00",), waived=[("100.00", "boss")]),
        *licence("clerk", paid=("100.00",), waived=[("100.00", "u1")]),
        *licence("unsigned", paid=("100.00",), waived=[("100.00", "")]),
        *licence("nowaiver", paid=("100.00",)),
    ])
    got = found(store, config, tmp_path)
    assert sorted(got) == ["clerk", "nowaiver", "unsigned"]
    clerk = got["clerk"]
    assert clerk.actor == "u1" and clerk.fields["shortfall"] == "100.00"
    assert clerk.fields["waivers"] == "未经授权减免：u1 减免 100.00 元"
    assert [(w["event_id"], w["authorised"]) for w in clerk.evidence["waivers"]] == [
        ("clerk-w0", False)]
    assert set(clerk.event_ids) == {"clerk-2", "clerk-w0", "clerk-p0", "clerk-9"}
    assert got["unsigned"].fields["waivers"] == "未经授权减免：（未署名） 减免 100.00 元"
    assert got["nowaiver"].fields["waivers"] == "无有权人员的减免批准"
    # u2 holds the deputy role: authorised if the rule says deputies may waive.
    assert sorted(found(store, config, tmp_path, extra=", params: {authorising_roles: [deputy]}")
                  ) == ["clerk", "nowaiver", "principal", "unsigned"]


def test_what_is_due_and_paid(store, config, write_events, tmp_path):
    load(store, config, write_events, [
        *licence("catalog", assessed=None, paid=("150.00",)),        # catalog fee 200 applies
        *licence("instalments", paid=("120.00", "80.00")),           # summed
        *licence("reassessed", assessed="200.00", paid=("150.00",)),
        event("reassessed-3", "reassessed", "fee_assessed", "2025-10-09 12:00:00",
              amount="150.00"),                                      # the latest one counts
        *licence("offline", paid=("100.00",)),
        event("offline-3", "offline", "fee_paid", "2025-10-09 15:00:00", amount="100.00",
              channel="offline"),                                    # does not count as paid
        *licence("nopay", paid=()),                                  # unpaid_fee's, not ours
        event("pen-1", "pen", "fee_assessed", "2025-10-09 10:00:00", amount="500.00",
              item_code="D07-CF-001"),
        event("pen-2", "pen", "fee_paid", "2025-10-09 11:00:00", amount="300.00",
              channel="online", item_code="D07-CF-001"),
        event("pen-3", "pen", "complete", "2025-10-09 12:00:00", item_code="D07-CF-001"),
    ])
    got = found(store, config, tmp_path)
    assert sorted(got) == ["catalog", "offline", "pen"]
    assert got["catalog"].evidence["standard_from"] == "catalog"
    assert got["offline"].fields["paid"] == "100.00"
    assert len(got["offline"].evidence["payments"]) == 2
    assert (got["pen"].fields["standard"], got["pen"].fields["shortfall"]) == ("500.00", "200.00")
    # a fine reduced is worded as one (罚款减免未经批准), a fee reduced keeps the rule's words
    from monitor.alerts import render
    [rule] = rules(tmp_path)
    assert (got["pen"].variant, got["catalog"].variant) == ("fine", None)
    assert rule.variant("fine").title.startswith("罚款减免未经批准")
    assert render(rule, got["pen"])[1] == ("案件 pen：应缴罚没款 500.00 元，网上实缴 300.00 元，"
                                           "少缴 200.00 元（无有权人员的减免批准）")
    assert rule.variant(None).title == rule.title == "擅自减免（实缴低于应缴且无有权减免）"


def test_open_cases_are_judged_when_they_end(store, config, write_events, tmp_path):
    load(store, config, write_events, licence("c1", paid=("100.00",), end=None))
    assert found(store, config, tmp_path) == {}
    r = rules(tmp_path)
    assert evaluate(store, config, AS_OF, rules=r)[0].stored.new == 0
    load(store, config, write_events, [event("c1-9", "c1", "certificate_printed",
                                             "2025-10-10 10:00:00")], "more.csv")
    [later] = evaluate(store, config, AS_OF, rules=r)
    assert later.incremental and later.stored.new == 1
    assert later.findings[0].evidence["reached"]["event_id"] == "c1-9"
    [again] = evaluate(store, config, AS_OF, rules=r, full=True)
    assert (again.stored.new, again.stored.unchanged) == (0, 1)


def test_an_unknown_channel_is_its_own_value(store, config, write_events, tmp_path):
    rows = [event("u-1", "U", "accept", "2025-10-09 09:00:00"),
            event("u-2", "U", "fee_paid", "2025-10-09 14:00:00", amount="200.00",
                  channel="unknown"),
            event("u-9", "U", "complete", "2025-10-10 10:00:00")]
    load(store, config, write_events, rows)
    unpaid = rule_file(tmp_path, "- {id: u, kind: unpaid_fee}\n")
    got = dry_findings(store, config, unpaid, AS_OF)
    assert got["U"].fields["payment"] == "缴费 200.00 元，其中 1 笔缴费渠道不明"
    trusted = rule_file(tmp_path, "- {id: u, kind: unpaid_fee, params: {unknown_channel: online}}\n")
    assert dry_findings(store, config, trusted, AS_OF) == {}


def test_flagged_cases_read_in_rounds_give_the_same_findings(store, config, write_events,
                                                             tmp_path, monkeypatch):
    """The flagged cases are read a round at a time (memory holds one round): rounds of
    one case find what one round of all does, each case with its own events."""
    load(store, config, write_events, [
        *licence("a", paid=("100.00",), waived=[("100.00", "u1")]),
        *licence("b", paid=("150.00",)), *licence("ok"), *licence("c", paid=("1.00",))])
    whole = found(store, config, tmp_path)
    monkeypatch.setattr(_fees, "CHUNK", 1)
    assert sorted(whole) == ["a", "b", "c"] and found(store, config, tmp_path) == whole
