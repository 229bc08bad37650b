"""Hostile input, part 2: no value reaches SQL or a JSON path unbound.

Codes, step names, actors, case ids, attachments and amounts carrying quotes,
backslashes, ``$``, ``.``, ``[`` (and NUL, which ingestion quarantines) go through every
rule kind, the shipped rules and a scope naming them, on SQLite and (with
MONITOR_TEST_DATABASE_URL) PostgreSQL: no rule fails, and the rules still find what
they should — before, a double quote in a step broke step_too_fast's JSON path on
SQLite, and the rule failed on every run."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import yaml
from sqlalchemy import select

from conftest import NOW
from monitor.catalog import ingest_catalog
from monitor.engine import evaluate
from monitor.ingest import ingest_events
from monitor.models import Event, Quarantine
from monitor.rules.kinds import KINDS
from monitor.rules.loader import load_rules

SHIPPED = Path(__file__).resolve().parent.parent / "rules"
NASTY = ["q'uote", 'd"quote', "back\\slash", "dol$lar", "do.t", "br[ack]et", "$.x", "a'; DROP"]
STEP = 'su[$.r]"vey\\'        # a step with its own minimum in the catalog
DEPT = "D'0\"4"
ITEM = 'X$.[\'"\\-1'


def _catalog(tmp_path: Path) -> Path:
    users = [{"id": f"u{i}{n}", "name": f"用户{i}", "department": DEPT,
              "roles": ["clerk", "chief", "deputy", "principal"]} for i, n in enumerate(NASTY)]
    users.append({"id": "m'1", "name": "监察员", "department": DEPT, "roles": ["monitor_l1"],
                  "phone": "13800000001"})
    catalog = {"departments": [{"code": DEPT, "name": "应急'管理\"局"}], "users": users,
               "items": [{"code": ITEM, "name": "许可$.[", "department": DEPT,
                          "category": "license", "promised_days": 1, "legal_days": 2,
                          "fee": 200, "min_minutes": {STEP: 30, "survey": 30},
                          "min_case_minutes": 60,
                          "required_attachments": {STEP: ["意见'书\"$.["]}}]}
    path = tmp_path / "catalog.yaml"
    path.write_text(yaml.safe_dump(catalog, allow_unicode=True), encoding="utf-8")
    return path


def _events(tmp_path: Path) -> Path:
    import csv

    path = tmp_path / "events.csv"
    cols = ["event_id", "case_id", "item_code", "step", "actor", "occurred_at", "amount",
            "attachments", "note", "channel"]
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(cols)
        for i, n in enumerate(NASTY):
            case, actor = f"c{n}", f"u{i}{n}"
            w.writerow([f"e{n}1", case, ITEM, "accept", actor, "2025-09-01 09:00", "", "", n, ""])
            w.writerow([f"e{n}2", case, ITEM, STEP, actor, "2025-09-01 09:01", "", n, n, ""])
            w.writerow([f"e{n}3", case, ITEM, "fee_assessed", actor, "2025-09-01 09:02",
                        "200", "", "", ""])
            w.writerow([f"e{n}4", case, ITEM, "approve", actor, "2025-09-01 09:03", "", "",
                        "", ""])
            w.writerow([f"e{n}5", case, ITEM, "decide", actor, "2025-09-01 09:04", "", "",
                        "", ""])
        w.writerow(["e-nul", "c-nul", ITEM, "acc\x00ept", "u0", "2025-09-01 09:00", "", "",
                    "", ""])
    return path


def test_hostile_values_go_through_every_rule_kind_bound(engine, config, tmp_path):
    ingest_catalog(engine, _catalog(tmp_path))
    [result] = ingest_events(engine, config, [str(_events(tmp_path))], NOW)
    assert result.tally.inserted == 5 * len(NASTY)
    with engine.connect() as conn:
        assert conn.scalar(select(Quarantine.reason)) == "control_character"
        assert STEP in set(conn.scalars(select(Event.step)))
    rules_dir = tmp_path / "rules"
    shutil.copytree(SHIPPED, rules_dir)
    scoped = (rules_dir / "step_too_fast.yaml").read_text(encoding="utf-8").replace(
        "id: step-too-fast", "id: step-too-fast-scoped").replace(
        "    # scope:", "    scope: {include: {departments: [" + json.dumps(DEPT)
        + "], items: [" + json.dumps(ITEM) + "]}}\n    # scope:")
    (rules_dir / "scoped.yaml").write_text(scoped, encoding="utf-8")
    rules = load_rules([rules_dir])
    # every kind with a shipped rule is exercised ('sequence', new in main, ships none:
    # it needs a sequence declared for the county's own steps)
    assert set(KINDS) - {"sequence"} <= {r.kind for r in rules}
    outcomes = evaluate(engine, config, NOW, rules=rules, dry_run=True)
    failed = {o.rule.id: o.error for o in outcomes if o.error}
    assert failed == {}
    found = {o.rule.id: {f.case_id for f in o.findings} for o in outcomes}
    cases = {f"c{n}" for n in NASTY}
    for rule_id in ("step-too-fast", "step-too-fast-scoped"):
        [outcome] = [o for o in outcomes if o.rule.id == rule_id]
        # STEP 1 minute after acceptance; its limit (30) is read from the catalog's JSON
        fast = {f.case_id for f in outcome.findings
                if any(g["step"] == STEP and g["limit_minutes"] == 30
                       for g in f.evidence["gaps"])}
        assert fast == cases, rule_id
    assert cases <= found["missing-attachment"]
