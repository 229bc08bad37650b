"""The workflow gate's decisions (monitor/gate.py), on SQLite and PostgreSQL: the rules'
own detectors over one case's history plus the candidate; the rule key ``gate``."""

from __future__ import annotations

from datetime import date, datetime, timezone

import pytest
from sqlalchemy import func, select

from conftest import event, ingest_rows, rule_file
from monitor import exemptions, gate
from monitor.errors import RuleError, SourceErrors
from monitor.models import Event, User

AT = datetime(2025, 9, 30, 3, 0, tzinfo=timezone.utc)  # 11:00 local
RULES = """
- {id: fast, kind: step_too_fast, level: red, gate: deny}
- {id: roles, kind: same_actor_roles, level: red, gate: deny}
- {id: unpaid, kind: unpaid_fee, level: red, gate: deny}
- {id: attach, kind: missing_attachment, level: yellow, gate: warn}
- {id: late, kind: overdue, gate: warn}
- {id: quiet, kind: step_too_fast}
"""


@pytest.fixture
def rules(tmp_path):
    return rule_file(tmp_path, RULES)


@pytest.fixture
def accepted(store, config, write_events):
    """Case c1 accepted at 10:00 local by u1."""
    ingest_rows(store, config, write_events, [event("a1", "c1", "accept", "2025-09-30 10:00:00")])
    return store


def ask(store, config, rules, **fields):
    body = {"case_id": "c1", "item_code": "D04-XK-001", "actor": "u2", **fields}
    return gate.check(store, config, rules, body, AT)


def test_the_58_second_survey_is_denied_and_nothing_is_stored(accepted, config, rules):
    verdict = ask(accepted, config, rules, step="survey", occurred_at="2025-09-30 10:00:58",
                  attachments=["现场踏勘意见书"], event_id="w-1")
    assert verdict.decision == "deny"
    [reason] = verdict.reasons
    assert (reason["rule_id"], reason["kind"], reason["level"], reason["effect"]) == \
        ("fast", "step_too_fast", "red", "deny")
    assert "58 秒" in reason["message"]
    assert verdict.rule_versions.keys() == {"fast", "roles", "unpaid", "attach", "late"}
    assert verdict.candidate["event_id"] == "w-1"
    with accepted.connect() as conn:
        assert conn.scalar(select(func.count()).select_from(Event)) == 1


def test_a_normal_step_is_allowed(accepted, config, rules):
    verdict = ask(accepted, config, rules, step="survey", occurred_at="2025-09-30 10:45:00",
                  attachments="现场踏勘意见书")
    assert (verdict.decision, verdict.reasons) == ("allow", ())
    assert verdict.answer()["decision"] == "allow"


def test_a_missing_attachment_warns(accepted, config, rules):
    verdict = ask(accepted, config, rules, step="survey", occurred_at="2025-09-30 10:45:00")
    assert verdict.decision == "warn"
    assert [r["rule_id"] for r in verdict.reasons] == ["attach"]


def test_a_certificate_without_online_payment_is_denied(store, config, write_events, rules):
    ingest_rows(store, config, write_events, [
        event("a1", "c1", "accept", "2025-09-20 10:00:00"),
        event("a2", "c1", "decide", "2025-09-25 10:00:00", actor="u2"),
        event("a3", "c1", "fee_paid", "2025-09-26 10:00:00", amount="200", channel="offline")])
    verdict = ask(store, config, rules, step="certificate_printed",
                  occurred_at="2025-09-30 10:00:00")
    assert verdict.decision == "deny"
    assert [r["rule_id"] for r in verdict.reasons] == ["unpaid"]
    ingest_rows(store, config, write_events, [
        event("a4", "c1", "fee_paid", "2025-09-27 10:00:00", amount="200", channel="online")],
        name="paid.csv")
    assert ask(store, config, rules, step="certificate_printed",
               occurred_at="2025-09-30 10:00:00").decision == "allow"


def test_one_person_in_a_second_role_is_denied(accepted, config, rules):
    verdict = ask(accepted, config, rules, step="review", actor="u1",
                  occurred_at="2025-09-30 10:40:00")
    assert verdict.decision == "deny"
    assert [r["rule_id"] for r in verdict.reasons] == ["roles"]


def test_an_old_finding_on_the_case_does_not_refuse_the_next_step(store, config, write_events,
                                                                  rules):
    """The history's own too-fast survey was found by the nightly run; the review an hour
    later has nothing to do with it."""
    ingest_rows(store, config, write_events, [
        event("a1", "c1", "accept", "2025-09-30 09:00:00"),
        event("a2", "c1", "survey", "2025-09-30 09:00:58", attachments="现场踏勘意见书")])
    verdict = ask(store, config, rules, step="review", occurred_at="2025-09-30 10:30:00")
    assert verdict.decision == "allow"


def test_an_overdue_case_only_warns(store, config, write_events, rules):
    ingest_rows(store, config, write_events, [event("a1", "c1", "accept", "2025-08-01 10:00:00")])
    verdict = ask(store, config, rules, step="review", occurred_at="2025-09-30 10:30:00")
    assert verdict.decision == "warn"
    assert [(r["rule_id"], r["effect"]) for r in verdict.reasons] == [("late", "warn")]


def test_an_exemption_turns_deny_into_allow(accepted, config, rules):
    with accepted.begin() as conn:  # the approver must be a tier-2 monitor of the catalog
        conn.execute(User.__table__.insert().values(region=config.region, id="k1", name="县监察",
                                                    roles=["monitor_l2"]))
    exemptions.add(accepted, [r.id for r in rules], "fast", {"case": ["c1"]}, "纸质办件补录",
                   "k1", date(2025, 12, 31), AT, config.tz)
    verdict = ask(accepted, config, rules, step="survey", occurred_at="2025-09-30 10:00:58",
                  attachments="现场踏勘意见书")
    assert verdict.decision == "allow"
    assert [(e["rule_id"], e["exemption_id"]) for e in verdict.exempted] == [("fast", 1)]


def test_scope_and_status_apply_as_in_a_run(accepted, config, tmp_path):
    rules = rule_file(tmp_path, """
- {id: fast, kind: step_too_fast, gate: deny, scope: {exclude: {departments: [D04]}}}
- {id: trial, kind: same_actor_roles, gate: deny, status: experimental}
""")
    verdict = ask(accepted, config, rules, step="review", actor="u1",
                  occurred_at="2025-09-30 10:00:30")
    assert verdict.decision == "warn"
    assert [(r["rule_id"], r["effect"]) for r in verdict.reasons] == [("trial", "warn")]


def test_a_bad_candidate_is_one_clear_error(accepted, config, rules):
    with pytest.raises(gate.GateInputError, match="unknown field 'steps' .*did you mean 'step'"):
        ask(accepted, config, rules, steps="survey", occurred_at="2025-09-30 10:00:58")
    with pytest.raises(gate.GateInputError, match="item_code 'X' is not in the catalog"):
        ask(accepted, config, rules, item_code="X", step="survey",
            occurred_at="2025-09-30 10:00:58")


@pytest.mark.parametrize("text, error", [
    ("- {id: r, kind: overdue, gate: deny}",
     "rules.yaml:1: 'gate: deny' is not allowed: kind 'overdue' may only warn at the gate"),
    ("- {id: r, kind: batch_entry, gate: warn}",
     "rules.yaml:1: 'gate: warn' is not allowed: kind 'batch_entry' is not checked at the gate"),
    ("- {id: r, kind: step_too_fast, gate: deni}",
     "rules.yaml:1: 'gate' must be one of deny, warn, got 'deni' (did you mean 'deny'?)"),
])
def test_the_gate_key_is_validated(tmp_path, text, error):
    with pytest.raises((RuleError, SourceErrors)) as caught:
        rule_file(tmp_path, text)
    assert error in str(caught.value)


def test_gate_is_part_of_the_version_only_when_set(tmp_path):
    [plain] = rule_file(tmp_path, "- {id: r, kind: step_too_fast}")
    [gated] = rule_file(tmp_path, "- {id: r, kind: step_too_fast, gate: deny}")
    assert plain.version != gated.version and plain.gate is None


def test_gate_check_on_the_command_line_gives_the_same_answer(accepted, config, rules,
                                                              tmp_path, db_url):
    import json

    from click.testing import CliRunner

    from cli import cli
    from monitor.models import GateLog

    (tmp_path / "rules").mkdir()
    (tmp_path / "rules" / "gate.yaml").write_text(RULES, encoding="utf-8")
    (tmp_path / "config.yaml").write_text("rules_dir: rules\n", encoding="utf-8")
    body = {"event_id": "w-1", "case_id": "c1", "item_code": "D04-XK-001", "step": "survey",
            "actor": "u2", "occurred_at": "2025-09-30 10:00:58", "attachments": ["现场踏勘意见书"]}
    (tmp_path / "survey.json").write_text(json.dumps(body), encoding="utf-8")
    base = ["--config", str(tmp_path / "config.yaml"), "--db", db_url]
    result = CliRunner().invoke(cli, [*base, "gate", "check", str(tmp_path / "survey.json"),
                                      "--as-of", "2025-09-30T11:00:00"])
    assert result.exit_code == 0, result.output
    answer = json.loads(result.stdout)
    expected = gate.check(accepted, config, rules, body, AT).answer()
    assert answer == expected
    with accepted.connect() as conn:
        row = conn.execute(select(GateLog)).one()
    assert (row.channel, row.decision) == ("cli", "deny") and row.asked_by.startswith("cli:")
    (tmp_path / "bad.json").write_text('{"case_id": "c1",\n "step": }', encoding="utf-8")
    result = CliRunner().invoke(cli, [*base, "gate", "check", str(tmp_path / "bad.json")])
    assert result.exit_code == 1
    assert result.stderr.strip().startswith(f"Error: candidate event: {tmp_path / 'bad.json'}:2: not JSON")


def test_a_golden_gate_expectation_that_does_not_hold_fails_with_its_line(tmp_path):
    from functools import partial

    from conftest import database_copy, migrated_template
    from monitor.ruletools.golden import load_golden, run_test

    (tmp_path / "rules.yaml").write_text("- {id: fast, kind: step_too_fast, gate: deny}\n",
                                         encoding="utf-8")
    (tmp_path / "test.yaml").write_text("""\
rule_files: [rules.yaml]
catalog:
  items: [{code: X, department: D, promised_days: 5, legal_days: 10,
           min_minutes: {survey: 30}}]
tests:
  - name: the survey after 58 seconds
    cases:
      C1: {item: X, events: [{accept: 2025-09-30 10:00}]}
    gate:
      - {case: C1, event: {survey: +58s}, expect: deny, reasons: [fast]}
      - {case: C1, event: {survey: +58s}, expect: allow}
    at: 2025-09-30 18:00
    expect: []
""", encoding="utf-8")
    golden = load_golden(tmp_path / "test.yaml")
    [test] = golden.tests
    result = run_test(golden, test, partial(database_copy, migrated_template()))
    assert not result.ok
    assert result.gate_failures == [
        f"{tmp_path / 'test.yaml'}:11: test 'the survey after 58 seconds': gate expected allow, "
        "got deny ['fast']\n    fast: 案件 C1：accept→survey 仅 58 秒（下限 30 分钟）（疑似事后补录）"]


def test_statements_built_once_per_rule_take_each_decisions_values(store, config, write_events,
                                                                   rules):
    """The gated detectors reuse their statements across decisions (rules.sql.built): the
    case, the moment and the limits of one decision must not leak into the next."""
    ingest_rows(store, config, write_events, [
        event("a1", "c1", "accept", "2025-09-30 10:00:00"),
        event("b1", "c2", "accept", "2025-09-30 09:00:00")])
    fast = ask(store, config, rules, step="survey", occurred_at="2025-09-30 10:00:58",
               attachments="现场踏勘意见书")
    other_case = ask(store, config, rules, case_id="c2", step="survey",
                     occurred_at="2025-09-30 10:00:58", attachments="现场踏勘意见书")
    slow = ask(store, config, rules, step="survey", occurred_at="2025-09-30 10:45:00",
               attachments="现场踏勘意见书")
    again = ask(store, config, rules, step="survey", occurred_at="2025-09-30 10:00:59",
                attachments="现场踏勘意见书")
    assert [v.decision for v in (fast, other_case, slow, again)] == \
        ["deny", "allow", "allow", "deny"]
    assert "59 秒" in again.reasons[0]["message"]


def test_a_revoked_token_is_refused_once_its_recheck_window_is_over(store, config, rules,
                                                                    monkeypatch):
    from monitor import accounts, gateguard

    token_id, token = accounts.create_token(store, AT, "admin:test", service="oa", scope="gate")
    guard = gateguard.Guard(store, config, lambda: rules)
    try:
        body = {"case_id": "c9", "item_code": "D04-XK-001", "step": "accept",
                "occurred_at": "2025-09-30 10:00:00"}
        assert guard.answer(token, body, AT).decision == "allow"
        accounts.revoke_token(store, token_id, AT, "admin:test")
        # within the window the token is not looked up again (documented: ≤ 5 s late)
        assert guard.answer(token, body, AT).decision == "allow"
        monkeypatch.setattr(gateguard, "TOKEN_RECHECK", 0)
        with pytest.raises(gateguard.Unauthenticated):
            guard.answer(token, body, AT)
        assert guard._trusted(token) is None  # and no degraded answer for it either
    finally:
        guard.close()


def test_the_catalog_version_moves_with_items_departments_and_roles_only(store, config):
    """The store's own triggers (migration 0025) raise ``meta.catalog_version``, which the
    gate's memo of the catalog is kept by (monitor/catalogmemo.py)."""
    from sqlalchemy import delete, insert, update

    from monitor.catalogmemo import KEY
    from monitor.models import Department, Item, Meta

    def version(conn):
        return int(conn.scalar(select(Meta.value).where(Meta.key == KEY)))

    with store.begin() as conn:
        first = version(conn)
        conn.execute(update(User).where(User.id == "u1").values(delivery="digest"))
        assert version(conn) == first  # a user's own choice: not the catalog
        conn.execute(update(User).where(User.id == "u1").values(roles=["clerk", "cashier"]))
        assert version(conn) > first
        moves = [insert(Department).values(region=config.region, code="D09", name="新部门"),
                 update(Item).where(Item.code == "D04-XK-001").values(min_minutes={}),
                 delete(Department).where(Department.code == "D09")]
        for statement in moves:
            before = version(conn)
            conn.execute(statement)
            assert version(conn) > before, statement
