"""The supervision trail (全留痕): an append-only log where each entry carries the hash of
the one before it.

An entry's hash is SHA-256 (or SM3, the ``audit.hash`` setting: monitor/chainhash.py) over
a canonical JSON serialisation of its fields (keys
sorted, no whitespace, UTF-8, timestamps as ISO 8601 UTC with microseconds) including the
previous entry's hash; the first entry chains to the hash of a fixed seed (:data:`GENESIS`
for SHA-256). The chain records its hash function in ``trail_head.algorithm``: chosen while
the trail is empty (:func:`adopt`), never changed after. ``channel`` (how a
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
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import Connection, Engine, insert, select, update

from . import chainhash, lease
from .masking import mask_value
from .errors import MonitorError
from .models import TrailEntry, TrailHead

GENESIS = hashlib.sha256(chainhash.GENESIS_SEED).hexdigest()
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
    # supervised rows this entry changes (monitor/supervised.py ``change``): stored in
    # ``detail["state"]``, so the trail can be replayed into the state it claims
    changes: list[dict[str, Any]] = field(default_factory=list)

    def stored_detail(self) -> dict[str, Any]:
        return {**self.detail, "state": self.changes} if self.changes else self.detail


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
               detail: dict[str, Any], prev_hash: str, channel: str | None = None,
               algorithm: str = chainhash.DEFAULT) -> str:
    return chainhash.digest(algorithm)(canonical(seq, at, alert_id, action, actor, detail,
                                                 prev_hash, channel))


@dataclass(frozen=True)
class Head:
    """The trail's head row: the newest entry's number and hash, and the chain's hash."""

    seq: int
    hash: str
    algorithm: str


def _head(conn: Connection) -> Head:
    row = conn.execute(select(TrailHead.seq, TrailHead.hash, TrailHead.algorithm)
                       .where(TrailHead.id == HEAD_ID)).one_or_none()
    if row is None:
        raise TrailBroken("the trail has no head row: it was deleted behind the program's back")
    return Head(row.seq, row.hash, row.algorithm)


def head_of(engine: Engine) -> Head:
    """The head row as it is (not verified: :func:`verify` does that)."""
    with engine.connect() as conn:
        return _head(conn)


def lock(conn: Connection) -> Head:
    """Take the trail's write lock (the head row) and return it.

    Call it first in a transaction that will append: on SQLite the write lock is then taken
    before anything is read, on PostgreSQL concurrent appenders wait here in turn.
    """
    conn.execute(update(TrailHead).where(TrailHead.id == HEAD_ID)
                 .values(seq=TrailHead.seq))
    return _head(conn)


def adopt(engine: Engine, algorithm: str) -> None:
    """Make ``algorithm`` (the ``audit.hash`` setting) the chain's hash function.

    A trail with no entries takes it (its head moves to that function's genesis hash); a
    trail with entries keeps the one it was started with, and a different setting is an
    error rather than a silent mix: one chain, one hash function.
    """
    genesis = chainhash.genesis(algorithm)  # fails early where SM3 is not available
    with engine.connect() as conn:  # the usual case reads only: no write lock taken
        if _head(conn).algorithm == algorithm:
            return
    with engine.begin() as conn:
        head = lock(conn)
        if head.algorithm == algorithm:
            return
        if head.seq:
            raise TrailBroken(
                f"the trail is chained with {head.algorithm} and has {head.seq:,} entries; "
                f"audit.hash: {algorithm} applies only to a new trail (set it back to "
                f"{head.algorithm})")
        conn.execute(update(TrailHead).where(TrailHead.id == HEAD_ID)
                     .values(hash=genesis, algorithm=algorithm))


def append(conn: Connection, at: datetime, entries: list[Entry]) -> list[int]:
    """Append ``entries`` (in order) in the caller's transaction; their sequence numbers.

    This is the one path by which anything reaches the trail. A change to a supervised row
    (monitor/supervised.py ``SUPERVISED``) must be written in the same transaction and ride
    on its entry's ``changes``; ``audit verify`` replays them against the tables.
    """
    if not entries:
        return []
    lease.fence(conn)  # a runner that lost its lease writes no more entries
    head = lock(conn)
    seq, prev = head.seq, head.hash
    rows: list[dict[str, Any]] = []
    entries = [replace(e, detail=mask_value(e.detail)) for e in entries]  # no secret kept
    for e in entries:
        seq += 1
        detail = e.stored_detail()
        digest = entry_hash(seq, at, e.alert_id, e.action, e.actor, detail, prev, e.channel,
                            head.algorithm)
        rows.append({"seq": seq, "at": at, "alert_id": e.alert_id, "action": e.action,
                     "actor": e.actor, "detail": detail, "prev_hash": prev, "hash": digest,
                     "channel": e.channel})
        prev = digest
    conn.execute(insert(TrailEntry), rows)
    conn.execute(update(TrailHead).where(TrailHead.id == HEAD_ID).values(seq=seq, hash=prev))
    return [r["seq"] for r in rows]


@dataclass(frozen=True)
class Verified:
    entries: int
    head: str
    algorithm: str = chainhash.DEFAULT


def _rows(conn: Connection, chunk: int = 5000) -> Iterator[Any]:
    last = -1
    while True:
        batch = conn.execute(select(TrailEntry).where(TrailEntry.seq > last)
                             .order_by(TrailEntry.seq).limit(chunk)).all()
        yield from batch
        if len(batch) < chunk:
            return
        last = batch[-1].seq


def verify(engine: Engine, visit: Callable[[Any], None] | None = None) -> Verified:
    """Recompute the whole chain; :class:`TrailBroken` names the first broken entry.
    ``visit`` sees each entry once it is checked (the state replay folds them in the same
    pass: monitor/supervised.py)."""
    with engine.connect() as conn:
        recorded = _head(conn)
        algorithm = recorded.algorithm
        expected_seq, prev, count = 1, chainhash.genesis(algorithm), 0
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
                                row.detail, row.prev_hash, row.channel, algorithm)
            if digest != row.hash:
                raise TrailBroken(f"{where} was changed: its content no longer matches its hash")
            if visit is not None:
                visit(row)
            prev, expected_seq, count = row.hash, expected_seq + 1, count + 1
        head = conn.execute(select(TrailHead.seq, TrailHead.hash)
                            .where(TrailHead.id == HEAD_ID)).one_or_none()
    if head is None:
        raise TrailBroken("the trail has no head row: it was deleted behind the program's back")
    if (head.seq, head.hash) != (count, prev):
        raise TrailBroken(f"the trail ends at entry #{count} but its head records entry "
                          f"#{head.seq}: the newest entries were deleted or added behind "
                          "the program's back")
    return Verified(count, prev, algorithm)


def check_entries(engine: Engine, entries: Sequence[Any]) -> str | None:
    """Check some entries (one alert's history) without walking the whole chain: each one's
    content must match its hash and its ``prev_hash`` the hash of the entry before it.
    ``None`` when they hold, else the first problem, worded as :func:`verify` words it."""
    if not entries:
        return None
    with engine.connect() as conn:
        algorithm = _head(conn).algorithm
        before = dict(conn.execute(select(TrailEntry.seq, TrailEntry.hash).where(
            TrailEntry.seq.in_([e.seq - 1 for e in entries if e.seq > 1]))).tuples().all())
    for e in entries:
        where = f"trail entry #{e.seq} ({e.action}, alert {e.alert_id})"
        if entry_hash(e.seq, e.at, e.alert_id, e.action, e.actor, e.detail, e.prev_hash,
                      e.channel, algorithm) != e.hash:
            return f"{where} was changed: its content no longer matches its hash"
        expected = chainhash.genesis(algorithm) if e.seq == 1 else before.get(e.seq - 1)
        if e.prev_hash != expected:
            return (f"{where} does not chain to entry #{e.seq - 1}: inserted or rewritten "
                    "behind the program's back")
    return None


def history(engine: Engine, alert_id: int) -> list[Any]:
    """Every trail entry of one alert, oldest first."""
    with engine.connect() as conn:
        return list(conn.execute(select(TrailEntry).where(TrailEntry.alert_id == alert_id)
                                 .order_by(TrailEntry.seq)))
