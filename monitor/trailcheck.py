"""Checking the supervision trail (monitor/trail.py appends to it): :func:`verify`
recomputes a region's chain from its genesis and names the first entry edited, deleted or
inserted behind the program's back; :func:`verify_all` does so for every chain (``audit
verify``); :func:`check_entries` checks a few entries (one alert's history) against their
hashes and the entries before them, without walking the chain.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Engine, select

from . import chainhash
from .errors import UsageProblem
from .models import TrailEntry, TrailHead
from .trail import UNNAMED, Head, TrailBroken, _head, entry_hash, regions


@dataclass(frozen=True)
class Verified:
    entries: int
    head: str
    algorithm: str = chainhash.DEFAULT
    region: str = UNNAMED


def _rows(conn: Connection, region: str, chunk: int = 5000) -> Iterator[Any]:
    last = -1
    while True:
        batch = conn.execute(select(TrailEntry).where(TrailEntry.region == region,
                                                      TrailEntry.seq > last)
                             .order_by(TrailEntry.seq).limit(chunk)).all()
        yield from batch
        if len(batch) < chunk:
            return
        last = batch[-1].seq


def _start(head: Head) -> str:
    """What entry 1 of a chain must chain to: its recorded genesis, which must be its hash
    function's, bound to its own region or (the store's own chain, an imported county's)
    to none. A chain relabelled as another region's, or as another hash function's, begins
    nowhere: then the unbound genesis, which its entry 1 does not chain to."""
    allowed = (chainhash.genesis(head.algorithm),
               chainhash.genesis(head.algorithm, head.region))
    return head.genesis if head.genesis in allowed else allowed[0]


def verify(engine: Engine, visit: Callable[[Any], None] | None = None,
           region: str | None = None) -> Verified:
    """Recompute one region's chain (None: the store's own); :class:`TrailBroken` names
    the first broken entry. ``visit`` sees each entry once it is checked (the state replay
    folds them in the same pass: monitor/supervised.py)."""
    with engine.connect() as conn:
        recorded = _head(conn, region)
        algorithm, region = recorded.algorithm, recorded.region
        expected_seq, prev, count = 1, _start(recorded), 0
        for row in _rows(conn, region):
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
                            .where(TrailHead.region == region)).one_or_none()
    if head is None:
        raise TrailBroken("the trail has no head row: it was deleted behind the program's back")
    if (head.seq, head.hash) != (count, prev):
        raise TrailBroken(f"the trail ends at entry #{count} but its head records entry "
                          f"#{head.seq}: the newest entries were deleted or added behind "
                          "the program's back")
    return Verified(count, prev, algorithm, region)


def verify_all(engine: Engine, visit: Callable[[Any], None] | None = None,
               only: Sequence[str] = ()) -> list[Verified]:
    """Recompute the chain of every region that has one (or of the regions ``only``
    names), the store's own first; one :class:`Verified` per chain. A failure names its
    region when the store has more than one chain or regions were named; entries of a
    region with no head row are a failure too."""
    with engine.connect() as conn:
        chains = regions(conn)
        if not only:  # every entry must be on some chain that has a head
            stray = conn.scalars(select(TrailEntry.region).distinct().where(
                TrailEntry.region.not_in(chains))).all() if chains else []
            if stray:
                raise TrailBroken(f"region {stray[0]} has trail entries but no head row: "
                                  "its head was deleted behind the program's back")
    for code in only:
        if code not in chains:
            raise UsageProblem("--region", code, "region with a trail chain in this store",
                               chains)
    named = bool(only) or len(chains) > 1
    out = []
    for code in (list(only) or chains):
        try:
            out.append(verify(engine, visit, code))
        except TrailBroken as exc:
            if not named:
                raise
            raise TrailBroken(f"region {code}: {exc}") from None
    return out


def check_entries(engine: Engine, entries: Sequence[Any]) -> str | None:
    """Check some entries (one alert's history) without walking the whole chain: each one's
    content must match its hash and its ``prev_hash`` the hash of the entry before it on
    its region's chain. ``None`` when they hold, else the first problem, worded as
    :func:`verify` words it."""
    if not entries:
        return None
    heads: dict[str, Head] = {}
    before: dict[tuple[str, int], str] = {}
    with engine.connect() as conn:
        for code in {e.region for e in entries}:
            heads[code] = _head(conn, code)
            seqs = [e.seq - 1 for e in entries if e.region == code and e.seq > 1]
            before.update(((code, seq), h) for seq, h in conn.execute(
                select(TrailEntry.seq, TrailEntry.hash).where(
                    TrailEntry.region == code, TrailEntry.seq.in_(seqs))).tuples())
    for e in entries:
        head = heads[e.region]
        where = f"trail entry #{e.seq} ({e.action}, alert {e.alert_id})"
        if entry_hash(e.seq, e.at, e.alert_id, e.action, e.actor, e.detail, e.prev_hash,
                      e.channel, head.algorithm) != e.hash:
            return f"{where} was changed: its content no longer matches its hash"
        expected = _start(head) if e.seq == 1 else before.get((e.region, e.seq - 1))
        if e.prev_hash != expected:
            return (f"{where} does not chain to entry #{e.seq - 1}: inserted or rewritten "
                    "behind the program's back")
    return None
