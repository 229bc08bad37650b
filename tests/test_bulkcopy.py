"""monitor.bulkcopy.insert_many stores exactly what ``insert(table)`` stores — on
PostgreSQL through COPY: each column's bind processing, JSON null and SQL NULL, Python
defaults for omitted columns, identity keys in row order."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

from sqlalchemy import delete, insert, select

from monitor.bulkcopy import insert_many
from monitor.models import Alert, TrailEntry

AT = datetime(2025, 9, 30, 2, 0, 0, 123456, tzinfo=timezone.utc)


def alert_rows(tag: str) -> list[dict]:
    rows = []
    for i in range(7):
        rows.append({
            "region": "330102", "dedupe_key": f"{tag}-{i}", "rule_id": "r", "kind": "overdue",
            "subject": f"c{i}", "level": ("red", "yellow")[i % 2], "case_id": None if i == 3
            else f"c{i}", "actor": "张三 \t\\ \"q\"" if i == 1 else None, "department": "D04",
            "item_code": None, "period": None, "raised_at": AT + timedelta(hours=i),
            "updated_at": AT, "message": f"第{i}条\n说明 \\N", "title": "超期",
            "evidence": {"days": i, "why": "a\tb", "none": None}, "event_ids": [f"e{i}"],
            "rule_version": "1", "assigned_to": ["u1"] if i % 2 else [],
            "due_on": date(2025, 10, i + 1) if i != 2 else None, "exemption_id": None})
    return rows


def test_alerts_and_trail_entries_are_stored_as_insert_stores_them(engine):
    with engine.begin() as conn:
        conn.execute(insert(Alert), alert_rows("core"))
        insert_many(conn, Alert.__table__, alert_rows("bulk"))
    columns = [c for c in Alert.__table__.c if c.name not in ("id", "dedupe_key")]
    with engine.connect() as conn:
        core = conn.execute(select(*columns).where(Alert.dedupe_key.like("core-%"))
                            .order_by(Alert.id)).all()
        bulk = conn.execute(select(*columns).where(Alert.dedupe_key.like("bulk-%"))
                            .order_by(Alert.id)).all()
        keys = conn.scalars(select(Alert.dedupe_key).where(Alert.dedupe_key.like("bulk-%"))
                            .order_by(Alert.id)).all()
    assert bulk == core and len(bulk) == 7
    assert keys == [f"bulk-{i}" for i in range(7)]  # identity keys in row order
    assert bulk[0].status == "open" and bulk[0].tier == 1 and bulk[0].case_ids == []

    entries = [{"region": "330102", "seq": i, "at": AT, "alert_id": None if i == 2 else i,
                "action": "raised", "actor": "system", "detail": {"x": [i, None, "中"]}
                if i != 3 else None, "prev_hash": f"{i - 1:064d}", "hash": f"{i:064d}",
                "channel": None} for i in range(1, 5)]
    with engine.begin() as conn:
        conn.execute(insert(TrailEntry), entries)
        got_core = conn.execute(select(TrailEntry).order_by(TrailEntry.seq)).all()
        conn.execute(delete(TrailEntry))
        insert_many(conn, TrailEntry.__table__, entries)
        got_bulk = conn.execute(select(TrailEntry).order_by(TrailEntry.seq)).all()
    assert got_bulk == got_core
