"""The supervision trail (全留痕): an append-only log where each entry carries the hash of
the one before it.

An entry's hash is SHA-256 (or SM3, the ``audit.hash`` setting: monitor/chainhash.py) over
a canonical JSON serialisation of its fields (keys
sorted, no whitespace, UTF-8, timestamps as ISO 8601 UTC with microseconds) including the
previous entry's hash. The chain records its hash function in ``trail_head.algorithm``:
chosen while the trail is empty (:func:`adopt`), never changed after. ``channel`` (how a
person acted: ``web``, ``api``, ``cli``; migration 0011) is one of those fields only when
it is set: entries written before it existed, and the program's own, have none and hash
exactly as they always did, while setting or clearing it on any entry breaks the chain.

There is one chain per region (migration 0027; docs/scale.md): ``trail`` is keyed
``(region, seq)`` and ``trail_head`` holds one row per region, the newest entry's number
and hash. An append locks its region's head row first (appends to one region are
serialised on every backend, appends to two regions never wait on each other) and moves
it in the same transaction as the state change the entry records. The region is not
among the hashed fields: it is bound in through the chain's genesis. A chain begun for a
region chains to the hash of the seed and the region's code (``chainhash.genesis``), so a
chain relabelled as another region's fails at entry 1; the store's own chain (the
deployment's region, ``home``: where an :class:`Entry` naming no region goes) chains to
the hash of the seed alone (:data:`GENESIS` for SHA-256), as every chain did before, so a
single county's hashes and anchors are what they always were.

:func:`monitor.trailcheck.verify` recomputes the chain: an entry edited, deleted or
inserted behind the program's back (plain SQL) breaks it, and the first broken entry is
reported. This module appends; that one checks.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import Connection, Engine, insert, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from . import chainhash, lease, regions as codes
from .bulkcopy import insert_many
from .masking import mask_value
from .errors import MonitorError
from .models import Alert, TrailEntry, TrailHead
from .sqllist import one_of

GENESIS = hashlib.sha256(chainhash.GENESIS_SEED).hexdigest()
SYSTEM = "system"  # the actor of entries the program itself makes (raised, escalated …)
UNNAMED = codes.UNNAMED  # the store's own chain before config.yaml names its region
HOME = TrailHead.home.is_(True)  # the store's own chain: the deployment's region
ALERT_CHUNK = 5000  # alert ids looked up at a time for their regions


class TrailBroken(MonitorError):
    """``audit verify`` found an entry that does not follow from the one before it."""


class ChainRegionError(MonitorError):
    """A region's chain cannot be named or begun as asked (config.yaml's ``region``)."""


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
    # the chain it goes on: the region of the rows it changes; None: the store's own
    # chain (the deployment's region), so a single county never names one
    region: str | None = None
    # when it happened, when not the append's ``at`` (the gate's log writer appends the
    # denies of several requests, each at its own time, in one transaction)
    at: datetime | None = None

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
    """A region's head row: the newest entry's number and hash, the chain's hash function
    and what its entry 1 chains to."""

    seq: int
    hash: str
    algorithm: str
    region: str = UNNAMED
    genesis: str = GENESIS


def _which(region: str | None):
    return HOME if region is None else TrailHead.region == region


def _head(conn: Connection, region: str | None = None) -> Head:
    row = conn.execute(select(TrailHead.seq, TrailHead.hash, TrailHead.algorithm,
                              TrailHead.region, TrailHead.genesis)
                       .where(_which(region))).one_or_none()
    if row is None:
        raise TrailBroken(
            "the trail has no head row: it was deleted behind the program's back"
            if region is None else f"region {region} has no trail chain")
    return Head(row.seq, row.hash, row.algorithm, row.region, row.genesis)


def head_of(engine: Engine, region: str | None = None) -> Head:
    """A region's head row (None: the store's own chain) as it is (not verified:
    :func:`verify` does that)."""
    with engine.connect() as conn:
        return _head(conn, region)


def head_for(engine: Engine, region: str | None) -> Head:
    """The head a county's report names: its region's chain's, or entry #0 at its genesis
    while it has none; None: the store's own chain's."""
    with engine.connect() as conn:
        if region is None or conn.scalar(select(TrailHead.region)
                                         .where(TrailHead.region == region)):
            return _head(conn, region)
        algorithm = _head(conn).algorithm
    genesis = chainhash.genesis(algorithm, region)
    return Head(0, genesis, algorithm, region, genesis)


def regions(conn: Connection) -> list[str]:
    """The regions that have a chain, the store's own first."""
    return list(conn.scalars(select(TrailHead.region)
                             .order_by(TrailHead.home.desc(), TrailHead.region)))


def _begin_chain(conn: Connection, region: str) -> None:
    """A head row for a region that has no chain yet: its genesis is bound to the region,
    its hash function is the store's own chain's. Two transactions beginning the same
    region's chain make one row (the second waits for the first, then finds it)."""
    reason = codes.problem(region)
    if reason:
        raise ChainRegionError(reason)
    algorithm = _head(conn).algorithm
    genesis = chainhash.genesis(algorithm, region)
    values = {"region": region, "seq": 0, "hash": genesis, "algorithm": algorithm,
              "genesis": genesis, "home": False}
    if conn.dialect.name == "postgresql":
        conn.execute(pg_insert(TrailHead).values(values).on_conflict_do_nothing())
    else:
        conn.execute(sqlite_insert(TrailHead).values(values).on_conflict_do_nothing())


def lock(conn: Connection, region: str | None = None) -> Head:
    """Take a region's write lock (its head row; None: the store's own chain) and return
    the head, beginning the region's chain if it has none.

    Call it first in a transaction that will append: on SQLite the write lock is then taken
    before anything is read, on PostgreSQL concurrent appenders to the same region wait
    here in turn, and appenders to other regions do not wait at all.
    """
    touch = update(TrailHead).where(_which(region)).values(seq=TrailHead.seq)
    if conn.execute(touch).rowcount == 0:
        if region is None:
            raise TrailBroken("the trail has no head row: it was deleted behind the "
                              "program's back")
        _begin_chain(conn, region)
        conn.execute(touch)
    return _head(conn, region)


def lock_alert(conn: Connection, alert_id: int) -> Head:
    """Take the write lock an action on one alert needs, first in its transaction: on
    PostgreSQL the head of the alert's region's chain, where its entries go, so actions on
    two counties' alerts never wait on each other; on SQLite, which has one writer at a
    time whatever the chains, the store's own head (:func:`lock`), so the write lock is
    taken before anything is read."""
    if conn.dialect.name != "postgresql":
        return lock(conn)
    return lock(conn, conn.scalar(select(Alert.region).where(Alert.id == alert_id)))


def adopt(engine: Engine, algorithm: str, region: str | None = None) -> None:
    """Make ``algorithm`` (the ``audit.hash`` setting) the hash function of the store's own
    chain, and ``region`` (config.yaml's ``region``) its region.

    A chain with no entries takes the hash function (its head moves to that function's
    genesis hash); a chain with entries keeps the one it was started with, and a different
    setting is an error rather than a silent mix: one chain, one hash function.

    The store's own chain is ``000000`` (not yet named) until a region is configured, and
    then takes that code, entries and all, once: its genesis is bound to no region, so the
    hashes do not change. A chain named already is never renamed (an error).
    """
    genesis = chainhash.genesis(algorithm)  # fails early where SM3 is not available
    with engine.connect() as conn:  # the usual case reads only: no write lock taken
        head = _head(conn)
        if head.algorithm == algorithm and region in (None, head.region):
            return
    with engine.begin() as conn:
        head = lock(conn)
        if region not in (None, head.region):
            _name_home(conn, head, region)
        if head.algorithm == algorithm:
            return
        if head.seq:
            raise TrailBroken(
                f"the trail is chained with {head.algorithm} and has {head.seq:,} entries; "
                f"audit.hash: {algorithm} applies only to a new trail (set it back to "
                f"{head.algorithm})")
        conn.execute(update(TrailHead).where(HOME)
                     .values(hash=genesis, genesis=genesis, algorithm=algorithm))


def _name_home(conn: Connection, head: Head, region: str) -> None:
    if head.region != UNNAMED:
        raise ChainRegionError(
            f"config.yaml's region is {region}, but this store's trail is region "
            f"{head.region}'s: a store keeps the region it was named with (set region: "
            f"{head.region})")
    if conn.scalar(select(TrailHead.region).where(TrailHead.region == region)):
        raise ChainRegionError(
            f"config.yaml's region is {region}, which already has its own trail chain in "
            "this store: the store's own chain (000000) cannot take its code")
    conn.execute(update(TrailEntry).where(TrailEntry.region == UNNAMED).values(region=region))
    conn.execute(update(TrailHead).where(HOME).values(region=region))


def _chain(conn: Connection, head: Head, at: datetime, entries: list[Entry]) -> list[int]:
    """Append ``entries`` to the chain of ``head`` (locked by the caller)."""
    region, seq, prev = head.region, head.seq, head.hash
    rows: list[dict[str, Any]] = []
    for e in entries:
        seq += 1
        detail = e.stored_detail()
        when = e.at or at
        digest = entry_hash(seq, when, e.alert_id, e.action, e.actor, detail, prev, e.channel,
                            head.algorithm)
        rows.append({"region": region, "seq": seq, "at": when, "alert_id": e.alert_id,
                     "action": e.action, "actor": e.actor, "detail": detail,
                     "prev_hash": prev, "hash": digest, "channel": e.channel})
        prev = digest
    insert_many(conn, TrailEntry.__table__, rows)
    conn.execute(update(TrailHead).where(TrailHead.region == region)
                 .values(seq=seq, hash=prev))
    return [r["seq"] for r in rows]


def _alert_regions(conn: Connection, entries: list[Entry]) -> dict[int | None, str]:
    """The region of each alert an entry naming no region is about: its entry goes on
    that region's chain (the alert's rows are that region's)."""
    ids = sorted({e.alert_id for e in entries if e.region is None and e.alert_id is not None})
    found: dict[int | None, str] = {}
    for start in range(0, len(ids), ALERT_CHUNK):
        found.update(conn.execute(select(Alert.id, Alert.region).where(
            one_of(Alert.id, ids[start:start + ALERT_CHUNK]))).tuples().all())
    return found


def append(conn: Connection, at: datetime, entries: list[Entry]) -> list[int]:
    """Append ``entries`` in the caller's transaction, each to its region's chain (in
    order within it); their sequence numbers, each within its region.

    This is the one path by which anything reaches the trail. A change to a supervised row
    (monitor/supervised.py ``SUPERVISED``) must be written in the same transaction and ride
    on its entry's ``changes``; ``audit verify`` replays them against the tables. An entry
    naming no region goes on its alert's region's chain when it is about an alert, else on
    the store's own. Only the head rows of the regions appended to are locked: the store's
    own first when an entry goes there (on SQLite, whenever one names no region), then the
    others in code order.
    """
    if not entries:
        return []
    lease.fence(conn)  # a runner that lost its lease writes no more entries
    entries = [replace(e, detail=mask_value(e.detail)) for e in entries]  # no secret kept
    # SQLite has one writer whatever the chains: take its write lock before reading
    first = conn.dialect.name != "postgresql" and any(e.region is None for e in entries)
    home = lock(conn) if first else None
    of_alert = _alert_regions(conn, entries)
    if home is None and any(e.region is None and e.alert_id not in of_alert for e in entries):
        home = lock(conn)
    own = home.region if home else None  # where an entry naming no region goes
    chains: dict[str, list[int]] = {}
    for i, e in enumerate(entries):
        chains.setdefault(e.region or of_alert.get(e.alert_id) or own or UNNAMED,
                          []).append(i)
    seqs = [0] * len(entries)
    for region in sorted(chains, key=lambda r: (r != own, r)):  # the store's own first
        head = home if home and region == own else lock(conn, region)
        positions = chains[region]
        for i, seq in zip(positions, _chain(conn, head, at, [entries[i] for i in positions])):
            seqs[i] = seq
    return seqs


def history(engine: Engine, alert_id: int) -> list[Any]:
    """Every trail entry of one alert, oldest first (on its region's chain)."""
    with engine.connect() as conn:
        return list(conn.execute(select(TrailEntry).where(TrailEntry.alert_id == alert_id)
                                 .order_by(TrailEntry.region, TrailEntry.seq)))
