"""The tools beside a run judge each county by its own rule set and calendar (issue 21
item 1, docs/regions.md): the workflow gate, ``rules backtest`` and ``rules calibrate``,
and the web queue's working days left — on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import shutil
from datetime import date, datetime, timezone
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from cli import cli
from conftest import event
from monitor import gate, gateprobe
from monitor.authz import Actor
from monitor.center.listing import Filters, alerts_page
from monitor.config import load_config
from monitor.db import create_store_engine
from monitor.errors import ConfigError
from monitor.catalogmemo import CatalogMemo
from monitor.center.act import act
from monitor.models import Alert, OutboxMessage, SupervisionOrder, TrailEntry, User
from monitor.web.site import Rules
from monitor.regionrules import county_policy, load_rule_sets
from monitor.supervision import policy_for
from test_sinks import hook, no_proxy  # noqa: F401  (fixtures: real local HTTP servers)

RULES = Path(__file__).resolve().parent.parent / "rules"
A, B = "330102", "330106"
STRICT = ("rules:\n  - id: step-too-fast\n    kind: step_too_fast\n    level: red\n"
          "    gate: deny\n    params:\n      min_minutes: {survey: 120}\n")


def _catalog(prefix: str) -> str:
    return (f"departments:\n  - {{code: {prefix}1, name: {prefix}1局}}\n"
            f"users:\n  - {{id: {prefix.lower()}1, name: 办事员, department: {prefix}1, "
            'roles: [clerk], phone: "13800000001"}\n'
            f"  - {{id: {prefix.lower()}m, name: 监察员, department: {prefix}1, "
            'roles: [monitor_l1], phone: "13900000001"}\n'
            f"items:\n  - code: {prefix}1-XK-001\n    name: 许可{prefix}\n"
            f"    department: {prefix}1\n    category: license\n"
            "    promised_days: 10\n    legal_days: 20\n    fee: 0\n")


@pytest.fixture
def two(db_url, tmp_path, monkeypatch, write_events):
    """Counties A and B in one store, each a case accepted on Monday 1 September 2025 and
    a second with its site survey 45 minutes after acceptance (the base allows 30, B's
    own step-too-fast 120); ``two(config_tail, overrides)`` writes config.yaml and B's
    override files and gives the CLI."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MONITOR_DATABASE_URL", raising=False)
    (tmp_path / "rules").mkdir()
    for name in ("overdue.yaml", "step_too_fast.yaml"):
        shutil.copy(RULES / name, tmp_path / "rules" / name)
    runner = CliRunner()

    def invoke(*args, code=(0, 3)):
        result = runner.invoke(cli, ["--db", db_url, *map(str, args)])
        assert result.exit_code in code, result.output
        return result

    def make(config_tail: str = "", overrides: dict[str, str] | None = None):
        (tmp_path / "config.yaml").write_text(f"region: {A}\nrules_dir: rules\n{config_tail}",
                                              encoding="utf-8")
        for name, text in (overrides or {}).items():
            folder = tmp_path / "rules" / "regions" / B
            folder.mkdir(parents=True, exist_ok=True)
            (folder / name).write_text(text, encoding="utf-8")
        for region, prefix in ((A, "A"), (B, "B")):
            (tmp_path / f"{prefix}.yaml").write_text(_catalog(prefix), encoding="utf-8")
            invoke("ingest", "catalog", "--region", region, tmp_path / f"{prefix}.yaml")
            common = dict(item_code=f"{prefix}1-XK-001", actor=f"{prefix.lower()}1")
            rows = [event(f"{prefix}a", f"{prefix}-1", occurred_at="2025-09-01 09:00",
                          **common),
                    event(f"{prefix}b", f"{prefix}-2", occurred_at="2025-09-02 09:00",
                          **common),
                    event(f"{prefix}c", f"{prefix}-2", "survey",
                          occurred_at="2025-09-02 09:45", attachments="现场踏勘意见书",
                          **common)]
            invoke("ingest", "events", "--region", region,
                   write_events(rows, f"{prefix}.csv"))
        return invoke

    make.db_url = db_url  # type: ignore[attr-defined]
    make.path = tmp_path  # type: ignore[attr-defined]
    return make


def _survey(prefix: str, case: str, minutes: int) -> dict:
    return {"case_id": case, "item_code": f"{prefix}1-XK-001", "actor": f"{prefix.lower()}1",
            "step": "survey", "occurred_at": f"2025-09-30 10:{minutes:02d}:00",
            "attachments": "现场踏勘意见书"}


def _accepted(two, prefix: str, case: str) -> None:
    """An open case ``case`` of county ``prefix``, accepted at 10:00 on 30 September."""
    two.path.joinpath(f"{case}.csv").write_text(
        "event_id,case_id,item_code,step,actor,occurred_at\n"
        f"{case}-a,{case},{prefix}1-XK-001,accept,{prefix.lower()}1,2025-09-30 10:00:00\n",
        encoding="utf-8")


def test_the_gate_judges_a_candidate_by_its_countys_rules(two):
    """A 45-minute survey: allowed in A (the base's 30 minutes), refused in B (its own
    120) — B's case known by its stored events, or a new case by its item's county."""
    invoke = two(overrides={"fast.yaml": STRICT})
    region = {"A": A, "B": B}
    for prefix in ("A", "B"):
        _accepted(two, prefix, f"{prefix}-9")
        invoke("ingest", "events", "--region", region[prefix], two.path / f"{prefix}-9.csv")
    config = load_config(two.path / "config.yaml")
    sets = load_rule_sets(config)
    engine = create_store_engine(two.db_url)
    at = datetime(2025, 9, 30, 3, 0, tzinfo=timezone.utc)
    try:
        a = gate.check(engine, config, sets, _survey("A", "A-9", 45), at)
        b = gate.check(engine, config, sets, _survey("B", "B-9", 45), at)
        fresh = gate.check(engine, config, sets,  # a case not stored yet: its item's county
                           {**_survey("B", "B-new", 45), "step": "accept"}, at)
        memo = CatalogMemo()  # as the web's guard asks: the catalog's codes read once
        with engine.connect() as conn:
            served = [gate.judge(conn, config, sets, body, at, memo=memo).decision
                      for body in (_survey("A", "A-9", 45), _survey("B", "B-9", 45),
                                   {**_survey("B", "B-new", 45), "step": "survey"})]
    finally:
        engine.dispose()
    assert a.decision == "allow", a.reasons
    assert b.decision == "deny"
    assert [(r["rule_id"], r["level"]) for r in b.reasons] == [("step-too-fast", "red")]
    assert b.rule_versions["step-too-fast"] != a.rule_versions["step-too-fast"]
    assert fresh.decision == "allow" and fresh.rule_versions == b.rule_versions
    assert served == ["allow", "deny", "allow"]  # B-new: no acceptance before its survey
    path = two.path / "b.json"
    path.write_text(json.dumps(_survey("B", "B-9", 45)), encoding="utf-8")
    out = invoke("gate", "check", path, "--as-of", "2025-09-30T11:00:00+08:00")
    assert json.loads(out.output)["decision"] == "deny"


def test_the_web_gates_shadowed_connection_finds_a_stored_cases_county(two):
    """On the web's look that writes nothing (SQLite), ``events`` is a TEMP view of the
    candidate's case; the county of a stored case is still read from the stored table."""
    invoke = two()
    _accepted(two, "B", "B-9")
    invoke("ingest", "events", "--region", B, two.path / "B-9.csv")
    engine = create_store_engine(two.db_url)
    shadow = gateprobe.shadowed(engine)
    try:
        with shadow.connect() as conn:
            assert gate.county_of(conn, {"case_id": "B-9"}, A) == B
            assert gate.county_of(conn, {"case_id": "nowhere"}, A) == A
    finally:
        shadow.dispose()
        engine.dispose()


def test_the_gate_switched_off_in_a_county_does_not_judge_there(two):
    invoke = two(overrides={"off.yaml": "rules:\n  - {id: step-too-fast, enabled: false}\n"})
    for prefix, region in (("A", A), ("B", B)):
        _accepted(two, prefix, f"{prefix}-9")
        invoke("ingest", "events", "--region", region, two.path / f"{prefix}-9.csv")
    config = load_config(two.path / "config.yaml")
    sets = load_rule_sets(config)
    engine = create_store_engine(two.db_url)
    at = datetime(2025, 9, 30, 3, 0, tzinfo=timezone.utc)
    try:
        a = gate.check(engine, config, sets, _survey("A", "A-9", 5), at)
        b = gate.check(engine, config, sets, _survey("B", "B-9", 5), at)
    finally:
        engine.dispose()
    assert a.decision == "deny" and b.decision == "allow"
    assert "step-too-fast" not in b.rule_versions


def test_the_queue_counts_days_left_in_the_alerts_county(two):
    """B takes 17 and 18 September off: on 16 September the working days left to its
    alert's deadline are counted in B's calendar (two fewer than the base would say)."""
    invoke = two(f"regions:\n  {B}:\n    calendar:\n"
                 "      extra_holidays: [2025-09-17, 2025-09-18]\n")
    invoke("run", "--as-of", "2025-09-16T18:00:00+08:00")
    config = load_config(two.path / "config.yaml")
    engine = create_store_engine(two.db_url)
    try:
        page = alerts_page(engine, Actor("service:t", "t", frozenset(), None, "api", "t", "read"),
                           Filters(),
                           date(2025, 9, 16), config.calendar())
        with engine.connect() as conn:
            due = dict(conn.execute(select(Alert.region, Alert.due_on)
                                    .where(Alert.rule_id == "overdue",
                                           Alert.case_id.like("%-1"))).tuples().all())
    finally:
        engine.dispose()
    left = {r["case_id"]: r["days_left"] for r in page.rows
            if r["rule_id"] == "overdue" and r["case_id"].endswith("-1")}
    assert due[A] == date(2025, 9, 19)
    cal = config.calendar()
    assert left == {"A-1": cal.workdays_between(date(2025, 9, 16), due[A]),
                    "B-1": cal.for_region(B).workdays_between(date(2025, 9, 16), due[B])}
    assert left["B-1"] == cal.workdays_between(date(2025, 9, 16), due[B]) - 2


def _backtest(invoke, *extra) -> dict[str, str]:
    out = invoke("rules", "backtest", "--from", "2025-09-01", "--to", "2025-09-30",
                 *extra).output
    return {line.split()[0]: line.strip() for line in out.splitlines()
            if line.startswith("  step-too-fast ") and "→" in line}


def test_backtest_judges_each_county_by_its_own_rules(two):
    """B's own step-too-fast (120 minutes) finds B's 45-minute survey, the base (30) not
    A's; a candidate base of 60 minutes adds A's only (B keeps its own); a candidate
    with its own regions/330106/ folder (40 minutes) drops B's."""
    invoke = two(overrides={"fast.yaml": STRICT})
    same = _backtest(invoke)
    assert "current 1 → candidate 1" in same["step-too-fast"], same
    candidate = two.path / "candidate"
    candidate.mkdir()
    for name in ("overdue.yaml", "step_too_fast.yaml"):
        text = (two.path / "rules" / name).read_text(encoding="utf-8")
        (candidate / name).write_text(text.replace("survey: 30", "survey: 60"),
                                      encoding="utf-8")
    base = _backtest(invoke, "--candidate", candidate)
    assert "current 1 → candidate 2: appear 1 · disappear 0" in base["step-too-fast"], base
    own = candidate / "regions" / B
    own.mkdir(parents=True)
    (own / "fast.yaml").write_text(STRICT.replace("survey: 120", "survey: 40"),
                                   encoding="utf-8")
    both = _backtest(invoke, "--candidate", candidate)
    assert "current 1 → candidate 1: appear 1 · disappear 1" in both["step-too-fast"], both


def test_calibrate_a_county_on_its_own_history_and_rule(two, write_events):
    """--region B: B's cases only, against B's own rule (120 minutes); --out changes B's
    override where it lies. --region A: A's cases against the base rule, written as A's
    own override (the base file left as it was)."""
    invoke = two(overrides={"fast.yaml": STRICT})
    for prefix, region, minutes in (("A", A, (50, 55, 58)), ("B", B, (5, 6, 7))):
        common = dict(item_code=f"{prefix}1-XK-001", actor=f"{prefix.lower()}1")
        rows = []
        for n, gap in enumerate(minutes):
            rows += [event(f"{prefix}x{n}", f"{prefix}-x{n}", occurred_at="2025-09-03 09:00",
                           **common),
                     event(f"{prefix}y{n}", f"{prefix}-x{n}", "survey",
                           occurred_at=f"2025-09-03 09:{gap:02d}", **common)]
        invoke("ingest", "events", "--region", region,
               write_events(rows, f"{prefix}-more.csv"))

    def calibrate(*extra):
        return invoke("rules", "calibrate", "--kind", "step_too_fast", "--step", "survey",
                      "--min-n", "2", *extra).output

    every = calibrate()
    assert "A1-XK-001" in every and "B1-XK-001" in every and "120 min" not in every
    b = calibrate("--region", B, "--out", two.path / "out-b")
    rows = [line.split() for line in b.splitlines() if "-XK-" in line]
    assert [(r[0], r[2]) for r in rows] == [("B1-XK-001", "4")], b  # 45, 5, 6, 7 minutes
    assert "120 min→4" in b
    written = (two.path / "out-b" / "regions" / B / "fast.yaml").read_text(encoding="utf-8")
    assert "item_min_minutes" in written and "B1-XK-001" in written
    assert (two.path / "out-b" / "step_too_fast.yaml").read_text(encoding="utf-8") == \
        (two.path / "rules" / "step_too_fast.yaml").read_text(encoding="utf-8")
    a = calibrate("--region", A, "--out", two.path / "out-a")
    assert [line.split()[0] for line in a.splitlines() if "-XK-" in line] == ["A1-XK-001"]
    assert "30 min→0" in a
    own = two.path / "out-a" / "regions" / A / "calibrated-step-too-fast.yaml"
    assert "A1-XK-001" in own.read_text(encoding="utf-8")
    bad = invoke("rules", "calibrate", "--kind", "step_too_fast", "--region", "3301",
                 code=(2,))
    assert "3301" in bad.output


def _overdue(status: str) -> str:
    return (RULES / "overdue.yaml").read_text(encoding="utf-8").replace(
        "    enabled: true\n", f"    enabled: true\n    status: {status}\n", 1)


def _tiers(db_url) -> dict[tuple[str, str], tuple[int, list]]:
    engine = create_store_engine(db_url)
    with engine.connect() as conn:
        rows = conn.execute(select(Alert.region, Alert.case_id, Alert.tier, Alert.assigned_to)
                            .where(Alert.rule_id == "overdue")).all()
    engine.dispose()
    return {(r.region, r.case_id): (r.tier, list(r.assigned_to or [])) for r in rows}


def test_a_countys_experimental_rule_does_not_escalate_there(two):
    """B's own overdue is experimental: its alerts are assigned to no one and stay at
    tier 1 past their deadline (`permit-monitor escalate`); A's, by the stable base, go
    to tier 2."""
    invoke = two(overrides={"overdue.yaml": _overdue("experimental")})
    invoke("run", "--as-of", "2025-09-16T18:00:00+08:00")
    invoke("escalate", "--as-of", "2025-09-25T18:00:00+08:00")
    tiers = _tiers(two.db_url)
    assert tiers[(A, "A-1")][0] == 2
    assert tiers[(B, "B-1")] == (1, [])


def test_a_countys_stable_rule_escalates_where_the_base_is_on_trial(two):
    """The base overdue is `test` (its alerts stay with tier 1); B's own is stable: B's
    alert goes to tier 2 at the run past its deadline, A's stays."""
    (two.path / "rules" / "overdue.yaml").write_text(_overdue("test"), encoding="utf-8")
    invoke = two(overrides={"overdue.yaml": (RULES / "overdue.yaml").read_text(
        encoding="utf-8")})
    invoke("run", "--as-of", "2025-09-16T18:00:00+08:00")
    invoke("run", "--as-of", "2025-09-25T18:00:00+08:00")
    tiers = _tiers(two.db_url)
    assert tiers[(A, "A-1")] == (1, ["am"])
    assert tiers[(B, "B-1")][0] == 2


def _outbox(db_url) -> list:
    engine = create_store_engine(db_url)
    with engine.connect() as conn:
        rows = conn.execute(select(OutboxMessage).order_by(OutboxMessage.id)).all()
    engine.dispose()
    return rows


def test_a_county_retries_delivery_its_own_way(two, hook):  # noqa: F811
    """The gateway is down: B's messages (max_attempts 1) fail at the first attempt, A's
    are retried after the store's backoff."""
    down = hook(fail_first=100)
    invoke = two("notify:\n  sinks:\n"
                 f"    gw: {{type: webhook, url: '{down.url}'}}\n"
                 "  channels: {sms: gw}\n  backoff_seconds: 60\n"
                 f"regions:\n  {B}:\n    max_attempts: 1\n")
    invoke("run", "--as-of", "2025-09-16T18:00:00+08:00")
    invoke("notify", "flush", code=(0, 1))
    states = {(m.recipient[0], m.status, m.attempts) for m in _outbox(two.db_url)}
    assert states == {("a", "pending", 1), ("b", "failed", 1)}


def test_a_countys_quiet_hours_hold_its_messages_only(two):
    """At 23:00 B's quiet hours (22:00–07:00) hold the notice of its new alerts until
    07:00; A has none: its notice is due at once."""
    invoke = two(f"regions:\n  {B}:\n    quiet_hours: '22:00-07:00'\n")
    invoke("run", "--as-of", "2025-09-16T23:00:00+08:00")
    due = {m.recipient: m.next_attempt_at for m in _outbox(two.db_url)}
    assert due["am"] == datetime(2025, 9, 16, 15, 0, tzinfo=timezone.utc)
    assert due["bm"] == datetime(2025, 9, 16, 23, 0, tzinfo=timezone.utc)  # 07:00 local


def test_a_countys_digest_goes_at_its_own_time(two):
    """Both monitors chose the daily digest; the store's goes at 08:00, B's at 10:00."""
    invoke = two(f"regions:\n  {B}:\n    digest_at: '10:00'\n")
    for user in ("am", "bm"):
        invoke("users", "set-delivery", user, "digest")
    invoke("run", "--as-of", "2025-09-16T18:00:00+08:00")

    def daily():
        return sorted(m.recipient for m in _outbox(two.db_url) if m.subject == "daily")

    invoke("escalate", "--as-of", "2025-09-17T09:00:00+08:00")
    assert daily() == ["am"]
    invoke("escalate", "--as-of", "2025-09-17T10:30:00+08:00")
    assert daily() == ["am", "bm"]
    invoke("escalate", "--as-of", "2025-09-17T11:00:00+08:00")  # once a day each
    assert daily() == ["am", "bm"]


@pytest.mark.parametrize("tail, reason", [
    ("quiet_hours: '7'", "'regions.330106.quiet_hours' must be HH:MM-HH:MM"),
    ("digest_at: '25:99'", "'regions.330106.digest_at' must be a time HH:MM"),
    ("max_attempts: 0", "'regions.330106.max_attempts' must be at least 1"),
])
def test_a_countys_bad_delivery_setting_is_one_line(tmp_path, tail, reason):
    path = tmp_path / "config.yaml"
    path.write_text(f"region: {A}\nregions:\n  {B}:\n    {tail}\n", encoding="utf-8")
    with pytest.raises(ConfigError) as exc:
        load_config(path)
    assert str(exc.value).startswith(f"{path}:4: {reason}"), str(exc.value)


def _chain(db_url, region: str, action: str) -> list[dict]:
    engine = create_store_engine(db_url)
    with engine.connect() as conn:
        found = conn.scalars(select(TrailEntry.detail).where(
            TrailEntry.region == region, TrailEntry.action == action)
            .order_by(TrailEntry.seq)).all()
    engine.dispose()
    return list(found)


def test_each_countys_chain_records_its_rule_set_in_force(two):
    """B's chain records the rules in force in B (its own step-too-fast, the base
    overdue), A's the whole set; a change of B's override is recorded on B's chain, and
    the chains verify."""
    invoke = two(overrides={"fast.yaml": STRICT})
    invoke("run", "--as-of", "2025-09-16T18:00:00+08:00")
    [b] = _chain(two.db_url, B, "rules_in_force")
    assert b["region"] == B
    assert b["rules"]["step-too-fast"]["source"] == f"regions/{B}"
    assert b["rules"]["step-too-fast"]["file"] == "fast.yaml"
    assert b["rules"]["overdue"]["source"] == "base"
    assert b["added"] == ["overdue", "step-too-fast"]
    [a] = _chain(two.db_url, A, "rules_in_force")
    assert B in a["regions"]
    invoke("run", "--as-of", "2025-09-16T18:00:00+08:00")  # the same set: nothing new
    assert len(_chain(two.db_url, B, "rules_in_force")) == 1
    (two.path / "rules" / "regions" / B / "fast.yaml").write_text(
        "rules:\n  - {id: step-too-fast, enabled: false}\n", encoding="utf-8")
    invoke("run", "--as-of", "2025-09-17T18:00:00+08:00")
    later = _chain(two.db_url, B, "rules_in_force")[-1]
    assert later["changed"] == ["step-too-fast"]
    assert later["rules"]["step-too-fast"] == {"file": "fast.yaml", "enabled": False,
                                               "source": f"regions/{B}"}
    assert "trail of region 330106 intact" in invoke("audit", "verify", "--region", B).output


def test_a_countys_catalog_load_and_its_grants_go_on_its_chain(two):
    """`ingest catalog --region B` is on B's chain; a power change of one of B's users,
    held for a tier-2 decision, is decided on B's chain too; every chain and the state
    replay verify."""
    invoke = two()
    catalog_b = two.path / "B.yaml"
    assert _chain(two.db_url, B, "catalog_loaded")  # the fixture's load for B
    assert not [d for d in _chain(two.db_url, A, "catalog_loaded")
                if "b1" in str(d.get("added"))]
    boss = two.path / "A2.yaml"  # a tier-2 office in A: role changes wait for it
    boss.write_text("users:\n  - {id: a-l2, name: 二级监察员, roles: [monitor_l2], "
                    'phone: "13700000001"}\n', encoding="utf-8")
    invoke("ingest", "catalog", "--region", A, boss)
    text = catalog_b.read_text(encoding="utf-8")
    catalog_b.write_text(text.replace("roles: [clerk]", "roles: [clerk, monitor_l2]"),
                         encoding="utf-8")
    invoke("ingest", "catalog", "--region", B, catalog_b)
    [held] = _chain(two.db_url, B, "grant_requested")
    assert held["user_id"] == "b1"
    invoke("grants", "approve", held["grant_id"], "--by", "a-l2", "--note", "同意")
    [done] = _chain(two.db_url, B, "grant_approved")
    assert done["user_id"] == "b1" and not _chain(two.db_url, A, "grant_approved")
    out = invoke("audit", "verify").output
    assert f"trail of region {B} intact" in out and "mismatch" not in out.lower(), out


def test_an_order_on_a_countys_alert_takes_its_own_rules_days(two):
    """B's own overdue gives 7 working days: an order B's office issues on B's alert —
    from the web (the sets the site keeps) or `alerts order` — is due 7 of B's working
    days later, not the base's 3."""
    rule = (RULES / "overdue.yaml").read_text(encoding="utf-8").replace(
        "    enabled: true\n", "    enabled: true\n    handling_days: 7\n", 1)
    invoke = two(overrides={"overdue.yaml": rule})
    office = two.path / "B2.yaml"
    office.write_text("users:\n  - {id: b-l2, name: 二级监察员, roles: [monitor_l2], "
                      'phone: "13700000002"}\n', encoding="utf-8")
    invoke("ingest", "catalog", "--region", B, office)
    invoke("run", "--as-of", "2025-09-16T18:00:00+08:00")
    config = load_config(two.path / "config.yaml")
    engine = create_store_engine(two.db_url)
    try:
        with engine.connect() as conn:
            first, second = conn.scalars(select(Alert.id).where(
                Alert.region == B, Alert.rule_id == "overdue").order_by(Alert.id)).all()
            boss = conn.execute(select(User).where(User.id == "b-l2")).one()
        at = datetime(2025, 9, 17, 2, 0, tzinfo=timezone.utc)  # Wednesday 10:00
        act(engine, config, Rules(two.path / "rules", config).sets(),
            Actor.of_user(boss, "web"), first, "order", at, "请于期限内办结")
        invoke("alerts", "order", second, "--by", "b-l2", "--note", "请于期限内办结")
        with engine.connect() as conn:
            orders = {o.alert_id: o for o in conn.execute(select(SupervisionOrder))}
    finally:
        engine.dispose()
    assert orders[first].due_on == date(2025, 9, 26)  # 17 September + 7 working days
    cli = orders[second]  # issued now (the CLI's clock): 7 of B's working days after it
    assert cli.due_on == county_policy(config).due(cli.issued_at, "overdue", B)
    assert cli.due_on != policy_for(config).due(cli.issued_at, "overdue", B)
