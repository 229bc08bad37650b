"""The supervision trail (全留痕): an append-only log where each entry carries the hash of
the one before it.

An entry's hash is SHA-256 over a canonical JSON serialisation of its fields (keys
sorted, no whitespace, UTF-8, timestamps as ISO 8601 UTC with microseconds) including the
previous entry's hash; the first entry chains to :data:`GENESIS`. ``channel`` (how a
person acted: ``web``, ``api``, ``cli``; migration 0011) is one of those fields only when
it is set: entries written before it existed, and the program's own, have none and hash
exactly as they always did, while setting or clearing it on any entry breaks the chain. ``trail_head`` holds the
newest entry's sequence number and hash: every append locks that row first (so appends
are serialised on every backend) and moves it in the same transaction as the state change
the entry records.

:func:`verify` recomputes the chain: an entry edited, deleted or inserted behind the
program's back (plain SQL) breaks it, and the first broken entry is reported.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import Connection, Engine, insert, select, update

from . import lease
from .masking import mask_value
from .errors import MonitorError
from .models import TrailEntry, TrailHead

GENESIS = hashlib.sha256(b"permit-monitor trail v1").hexdigest()
SYSTEM = "system"  # the actor of entries the program itself makes (raised, escalated …)
HEAD_ID = 1


class TrailBroken(MonitorError):
    """``audit verify`` found an entry that does not follow from the one before it."""


@dataclass(frozen=True)
class Entry:
    """One transition to append: what happened to which alert, who did it, and the facts."""

    action: str
    alert_id: int | None
    actor: str = SYSTEM
    detail: dict[str, Any] = field(default_factory=dict)
    channel: str | None = None  # web | api | cli when a person acted


def _utc(at: datetime) -> str:
    return at.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def canonical(seq: int, at: datetime, alert_id: int | None, action: str, actor: str,
              detail: dict[str, Any], prev_hash: str, channel: str | None = None) -> bytes:
    """The bytes an entry's hash is computed over (``channel`` only when set)."""
    fields = {"seq": seq, "at": _utc(at), "alert_id": alert_id, "action": action,
              "actor": actor, "detail": detail, "prev_hash": prev_hash}
    if channel is not None:
        fields["channel"] = channel
    return json.dumps(fields, sort_keys=True, ensure_ascii=False, separators=(",", ":"),
                      allow_nan=False).encode("utf-8")


def entry_hash(seq: int, at: datetime, alert_id: int | None, action: str, actor: str,
               detail: dict[str, Any], prev_hash: str, channel: str | None = None) -> str:
    return hashlib.sha256(canonical(seq, at, alert_id, action, actor, detail,
                                    prev_hash, channel)).hexdigest()


def lock(conn: Connection) -> tuple[int, str]:
    """Take the trail's write lock (the head row) and return (last seq, last hash).

    Call it first in a transaction that will append: on SQLite the write lock is then taken
    before anything is read, on PostgreSQL concurrent appenders wait here in turn.
    """
    conn.execute(update(TrailHead).where(TrailHead.id == HEAD_ID)
                 .values(seq=TrailHead.seq))
    row = conn.execute(select(TrailHead.seq, TrailHead.hash)
                       .where(TrailHead.id == HEAD_ID)).one_or_none()
    if row is None:
        raise TrailBroken("the trail has no head row: it was deleted behind the program's back")
    return row.seq, row.hash


def append(conn: Connection, at: datetime, entries: list[Entry]) -> list[int]:
    """Append ``entries`` (in order) in the caller's transaction; their sequence numbers."""
    if not entries:
        return []
    lease.fence(conn)  # a runner that lost its lease writes no more entries
    seq, prev = lock(conn)
    rows: list[dict[str, Any]] = []
    entries = [replace(e, detail=mask_value(e.detail)) for e in entries]  # no secret kept
    for e in entries:
        seq += 1
        digest = entry_hash(seq, at, e.alert_id, e.action, e.actor, e.detail, prev, e.channel)
        rows.append({"seq": seq, "at": at, "alert_id": e.alert_id, "action": e.action,
                     "actor": e.actor, "detail": e.detail, "prev_hash": prev, "hash": digest,
                     "channel": e.channel})
        prev = digest
    conn.execute(insert(TrailEntry), rows)
    conn.execute(update(TrailHead).where(TrailHead.id == HEAD_ID).values(seq=seq, hash=prev))
    return [r["seq"] for r in rows]


@dataclass(frozen=True)
class Verified:
    entries: int
    head: str


def _rows(conn: Connection, chunk: int = 5000) -> Iterator[Any]:
    last = -1
    while True:
        batch = conn.execute(select(TrailEntry).where(TrailEntry.seq > last)
                             .order_by(TrailEntry.seq).limit(chunk)).all()
        yield from batch
        if len(batch) < chunk:
            return
        last = batch[-1].seq


def verify(engine: Engine) -> Verified:
    """Recompute the whole chain; :class:`TrailBroken` names the first broken entry."""
    with engine.connect() as conn:
        expected_seq, prev, count = 1, GENESIS, 0
        for row in _rows(conn):
            where = f"trail entry #{row.seq} ({row.action}, alert {row.alert_id})"
            if row.seq < expected_seq:
                raise TrailBroken(f"{where} comes before entry #{expected_seq}: inserted "
                                  "behind the program's back")
            if row.seq != expected_seq:
                raise TrailBroken(f"trail entry #{expected_seq} is missing (the next one is "
                                  f"#{row.seq}): deleted behind the program's back")
            if row.prev_hash != prev:
                raise TrailBroken(f"{where} does not chain to entry #{expected_seq - 1}: "
                                  "inserted or rewritten behind the program's back")
            digest = entry_hash(row.seq, row.at, row.alert_id, row.action, row.actor,
                                row.detail, row.prev_hash, row.channel)
            if digest != row.hash:
                raise TrailBroken(f"{where} was changed: its content no longer matches its hash")
            prev, expected_seq, count = row.hash, expected_seq + 1, count + 1
        head = conn.execute(select(TrailHead.seq, TrailHead.hash)
                            .where(TrailHead.id == HEAD_ID)).one_or_none()
    if head is None:
        raise TrailBroken("the trail has no head row: it was deleted behind the program's back")
    if (head.seq, head.hash) != (count, prev):
        raise TrailBroken(f"the trail ends at entry #{count} but its head records entry "
                          f"#{head.seq}: the newest entries were deleted or added behind "
                          "the program's back")
    return Verified(count, prev)


def check_entries(engine: Engine, entries: Sequence[Any]) -> str | None:
    """Check some entries (one alert's history) without walking the whole chain: each one's
    content must match its hash and its ``prev_hash`` the hash of the entry before it.
    ``None`` when they hold, else the first problem, worded as :func:`verify` words it."""
    if not entries:
        return None
    with engine.connect() as conn:
        before = dict(conn.execute(select(TrailEntry.seq, TrailEntry.hash).where(
            TrailEntry.seq.in_([e.seq - 1 for e in entries if e.seq > 1]))).tuples().all())
    for e in entries:
        where = f"trail entry #{e.seq} ({e.action}, alert {e.alert_id})"
        if entry_hash(e.seq, e.at, e.alert_id, e.action, e.actor, e.detail, e.prev_hash,
                      e.channel) != e.hash:
            return f"{where} was changed: its content no longer matches its hash"
        expected = GENESIS if e.seq == 1 else before.get(e.seq - 1)
        if e.prev_hash != expected:
            return (f"{where} does not chain to entry #{e.seq - 1}: inserted or rewritten "
                    "behind the program's back")
    return None


def history(engine: Engine, alert_id: int) -> list[Any]:
    """Every trail entry of one alert, oldest first."""
    with engine.connect() as conn:
        return list(conn.execute(select(TrailEntry).where(TrailEntry.alert_id == alert_id)
                                 .order_by(TrailEntry.seq)))
