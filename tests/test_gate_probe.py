"""The gate's look that writes nothing (monitor/gateprobe.py): on SQLite the web app's gate
shows the detectors the candidate through a TEMP view of the candidate's case, and must
answer exactly as the look that inserts the candidate into ``events`` (``gate check``'s)."""

from __future__ import annotations

import random
import sqlite3
from datetime import date, datetime, timedelta, timezone

import pytest
from sqlalchemy import func, select, text

from conftest import event, ingest_rows, rule_file
from monitor import exemptions, gate, gateprobe
from monitor.models import Event, User

AT = datetime(2025, 9, 30, 3, 0, tzinfo=timezone.utc)  # 11:00 local
RULES = """
- {id: fast, kind: step_too_fast, level: red, gate: deny}
- {id: roles, kind: same_actor_roles, level: red, gate: deny}
- {id: unpaid, kind: unpaid_fee, level: red, gate: deny}
- {id: attach, kind: missing_attachment, level: yellow, gate: warn}
- {id: late, kind: overdue, gate: warn}
- {id: fast7, kind: step_too_fast, gate: deny, scope: {exclude: {departments: [D04]}}}
- {id: trial, kind: same_actor_roles, gate: deny, status: experimental}
"""
STEPS = ["survey", "review", "approve", "decide", "fee_paid", "certificate_printed",
         "complete"]


@pytest.fixture
def sqlite_store(store):
    if store.dialect.name != "sqlite":
        pytest.skip("the shadowed look is SQLite's (PostgreSQL inserts the candidate)")
    return store


def _history(rng: random.Random, n: int) -> list[dict]:
    """Cases of a few steps each: fast and slow gaps, two actors, attachments or not,
    fees paid online or offline, two items of two departments."""
    rows = []
    start = datetime(2025, 8, 1, 9, 0)
    for c in range(n):
        case, item = f"c{c}", rng.choice(["D04-XK-001", "D07-CF-001"])
        at = start + timedelta(days=rng.randint(0, 55), minutes=rng.randint(0, 300))
        steps = ["accept", *rng.sample(STEPS[:4], rng.randint(0, 3))]
        if rng.random() < 0.4:
            steps.append("fee_paid")
        for k, step in enumerate(steps):
            extra = {"actor": rng.choice(["u1", "u2"])}
            if step == "survey" and rng.random() < 0.5:
                extra["attachments"] = "现场踏勘意见书"
            if step == "fee_paid":
                extra.update(amount="200", channel=rng.choice(["online", "offline"]))
            rows.append(event(f"e{c}-{k}", case, step, at.strftime("%Y-%m-%d %H:%M:%S"),
                              item_code=item, **extra))
            at += rng.choice([timedelta(seconds=40), timedelta(minutes=3),
                              timedelta(hours=2), timedelta(days=2)])
    return rows


def test_shadowed_and_stored_looks_agree(sqlite_store, config, write_events, tmp_path):
    """Many generated cases and candidates, exemptions, a rule scoped out of a department
    and an experimental one: the same verdict, reasons and exemptions either way."""
    store, rng = sqlite_store, random.Random(16)
    rules = rule_file(tmp_path, RULES)
    rows = _history(rng, 60)
    ingest_rows(store, config, write_events, rows)
    with store.begin() as conn:  # the approver must be a tier-2 monitor of the catalog
        conn.execute(User.__table__.insert().values(region=config.region, id="k1",
                                                    name="县监察", roles=["monitor_l2"]))
    for rule_id in ("fast", "unpaid", "roles"):
        exemptions.add(store, [r.id for r in rules], rule_id,
                       {"case": [f"c{c}" for c in rng.sample(range(60), 8)]}, "纸质办件补录",
                       "k1", date(2025, 12, 31), AT, config.tz)
    last = {}
    for row in rows:
        last[row["case_id"]] = (row["item_code"], row["occurred_at"])
    shadowed = gateprobe.shadowed(store)
    seen: dict[str, int] = {}
    exempted = 0
    try:
        for case, (item, when) in sorted(last.items()):
            for _ in range(3):
                then = datetime.fromisoformat(when) + rng.choice(
                    [timedelta(seconds=30), timedelta(minutes=10), timedelta(hours=3)])
                body = {"case_id": case, "item_code": item, "step": rng.choice(STEPS),
                        "actor": rng.choice(["u1", "u2", "u3"]),
                        "occurred_at": then.strftime("%Y-%m-%d %H:%M:%S")}
                if rng.random() < 0.5:
                    body["attachments"] = "现场踏勘意见书"
                stored = gate.check(store, config, rules, body, AT)
                looked = gate.check(shadowed, config, rules, body, AT)
                assert (looked.decision, looked.reasons, looked.exempted) == \
                    (stored.decision, stored.reasons, stored.exempted), body
                seen[stored.decision] = seen.get(stored.decision, 0) + 1
                exempted += bool(stored.exempted)
    finally:
        shadowed.dispose()
    # not a vacuous comparison: every decision and some exemptions were among them
    assert set(seen) == {"allow", "warn", "deny"} and exempted, (seen, exempted)
    with store.connect() as conn:
        assert conn.scalar(select(func.count()).select_from(Event)) == len(rows)


def test_a_shadowed_look_writes_nothing_and_takes_no_write_lock(sqlite_store, config,
                                                                write_events):
    store = sqlite_store
    ingest_rows(store, config, write_events, [
        event("a1", "c1", "accept", "2025-09-30 10:00:00"),
        event("a2", "c2", "accept", "2025-09-30 10:00:00")])
    shadowed = gateprobe.shadowed(store)
    try:
        with shadowed.connect() as conn:
            probe = gateprobe.put(conn, {
                "region": config.region, "event_id": "gate:x", "case_id": "c1",
                "item_code": "D04-XK-001", "department": "D04", "step": "survey",
                "occurred_at": AT, "content_hash": "x", "is_system": False})
            with store.connect() as other:
                top = other.scalar(select(func.max(Event.id)))
            assert probe == top + 1  # sorts after every stored event, as an insert would
            # what the detectors see: the candidate's case and the candidate
            assert sorted(conn.scalars(text("SELECT event_id FROM events"))) == ["a1", "gate:x"]
            writer = sqlite3.connect(store.url.database, timeout=0)
            try:  # another connection takes the write lock while the look is open
                writer.execute("BEGIN IMMEDIATE")
                writer.execute("UPDATE events SET note = 'n' WHERE event_id = 'a2'")
                writer.commit()
            finally:
                writer.close()
            conn.rollback()
            assert conn.scalar(text("SELECT count(*) FROM temp.gate_probe")) == 0
    finally:
        shadowed.dispose()
    with store.connect() as conn:
        assert conn.scalar(select(func.count()).select_from(Event)) == 2
