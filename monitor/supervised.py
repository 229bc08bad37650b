"""Supervised records: the rows the trail must account for, and the one way to change them.

The hash chain (monitor/trail.py) proves the trail was not edited; this module makes the
trail prove the *state*. Every supervised table is one entry of :data:`SUPERVISED` (its
model and the columns whose values matter to the supervision: status, level, tier,
assignee, disposition, exemption …). A change to such a row rides on the trail entry that
records it: :class:`~monitor.trail.Entry` ``changes`` is a list of :func:`change` payloads
— table, id, the supervised columns' new values, and ``new`` for an inserted row — which
:func:`monitor.trail.append` writes into the entry's ``detail["state"]``, under its hash,
in the caller's transaction.

**The one path.** Code that changes a supervised row does, in one transaction::

    trail.lock(conn)                                  # first: appenders in turn
    row_id = conn.execute(insert(Model)...)           # a new row: insert it, then
    ch = change("holds", row_id, values, new=True)    # … trace all its supervised columns
    ch = update(conn, "alerts", alert_id, status=…)   # an existing row: write and trace
    trail.append(conn, at, [Entry(..., changes=[ch])])

:func:`update` is the write for existing rows; inserts stay with their callers (the
database assigns the id) and are traced with ``new=True``. A new supervised column or
table is one entry in :data:`SUPERVISED`; a new code path that changes a row without an
entry is caught by ``audit verify`` (tests replay the demo county through every action).

:func:`check` (``audit verify``) replays the trail's state payloads in order and compares
the result with every row of every supervised table: a row edited, deleted or inserted
behind the program's back is reported with its table, id and what the trail says it
should be. Stores created before this (migration 0015) start with a **baseline**: one
snapshot of every supervised row, appended once by :func:`ensure_baseline`
(``trail_head.state_since`` records where); the state before it is what it was.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, Engine, func, select, update as sql_update

from . import trail
from .errors import MonitorError
from .models import (Alert, Disposition, Exemption, Grant, Hold, SpotCheck,
                     SupervisionOrder, TrailEntry, TrailHead, User)
from .trail import SYSTEM, Entry


@dataclass(frozen=True)
class Spec:
    model: Any
    columns: tuple[str, ...]
    key: str = "id"  # the primary key (users: their id, text)

    @property
    def pk(self) -> Any:
        return getattr(self.model, self.key)


SUPERVISED: dict[str, Spec] = {
    "alerts": Spec(Alert, ("status", "level", "tier", "department", "assigned_to", "due_on",
                           "disposition", "exemption_id")),
    "holds": Spec(Hold, ("alert_id", "case_id", "status", "released_by", "acked_by")),
    "supervision_orders": Spec(SupervisionOrder, ("alert_id", "issued_by", "reason",
                                                  "to_users", "due_on")),
    "dispositions": Spec(Disposition, ("alert_id", "by_user", "tier", "kind", "verdict",
                                       "reviewed_by")),
    "exemptions": Spec(Exemption, ("rule_id", "scope", "approved_by", "until", "revoked_by")),
    "spot_checks": Spec(SpotCheck, ("case_id", "department", "result", "by_user")),
    # powers: who is tier 1 or tier 2 of which department (catalog loads, grants)
    "users": Spec(User, ("department", "roles")),
    "grants": Spec(Grant, ("user_id", "kind", "roles", "department", "status", "decided_by")),
}
BASELINE_CHUNK = 1000  # rows per baseline entry
REPLAY_CHUNK = 5000  # trail entries read at a time by replay()
MAX_PROBLEMS = 50      # lines reported; the rest counted


class StateMismatch(MonitorError):
    """``audit verify``: supervised rows differ from what the trail says they are."""


_AS_IS = (str, int, list, bool, float)


def plain(value: Any) -> Any:
    """A column's value as the trail holds it (JSON): dates ISO 8601, times UTC."""
    if value is None or type(value) in _AS_IS:  # most values: checked once, not five times
        return value
    if isinstance(value, datetime):
        return value.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, tuple):
        return list(value)
    if isinstance(value, Mapping):
        return dict(value)
    return value


def change(table: str, row_id: int | str, values: Mapping[str, Any], new: bool = False
           ) -> dict[str, Any]:
    """The trail's record of a change to one supervised row: for a ``new`` row every
    supervised column (absent ones are NULL), else those of ``values`` that are supervised."""
    spec = SUPERVISED[table]
    if new:
        state = {c: plain(values.get(c)) for c in spec.columns}
    else:
        state = {c: plain(values[c]) for c in spec.columns if c in values}
    out: dict[str, Any] = {"table": table, "id": row_id, "set": state}
    if new:
        out["new"] = True
    return out


def update(conn: Connection, table: str, row_id: int | str, **values: Any) -> dict[str, Any]:
    """UPDATE one supervised row and return the :func:`change` to append with its entry."""
    spec = SUPERVISED[table]
    conn.execute(sql_update(spec.model).where(spec.pk == row_id).values(**values))
    return change(table, row_id, values)


# ------------------------------------------------------------------ the baseline


def _state_since(conn: Connection) -> int | None:
    return conn.scalar(select(TrailHead.state_since).where(trail.HOME))


def ensure_baseline(engine: Engine, at: datetime) -> int:
    """On a store upgraded from before migration 0015, snapshot every supervised row onto
    the trail once (entries ``baseline``); the number of rows. Nothing on any other store."""
    with engine.connect() as conn:
        if _state_since(conn) is not None:
            return 0
    rows = 0
    with engine.begin() as conn:
        head = trail.lock(conn)
        if _state_since(conn) is not None:  # another process did it meanwhile
            return 0
        entries = []
        for table, spec in SUPERVISED.items():
            for chunk in _chunks(conn, spec):
                entries.append(Entry("baseline", None, SYSTEM, {"table": table, "rows": len(chunk)},
                                     changes=[{**change(table, r[0], r._mapping, new=True),
                                               "baseline": True} for r in chunk]))
                rows += len(chunk)
        trail.append(conn, at, entries)
        conn.execute(sql_update(TrailHead).where(trail.HOME)
                     .values(state_since=head.seq))
    return rows


def _rows(conn: Connection, spec: Spec, size: int) -> Iterator[Sequence[Any]]:
    """A table's rows (key first, then the supervised columns) in key order, ``size`` at
    a time."""
    query = select(spec.pk.label("pk"), *(getattr(spec.model, c) for c in spec.columns))
    last = None
    while True:
        page = query if last is None else query.where(spec.pk > last)
        batch = conn.execute(page.order_by(spec.pk).limit(size)).all()
        if batch:
            yield batch
        if len(batch) < size:
            return
        last = batch[-1][0]


def _chunks(conn: Connection, spec: Spec) -> Iterator[Sequence[Any]]:
    return _rows(conn, spec, BASELINE_CHUNK)


# ------------------------------------------------------------------ replay and compare


@dataclass
class Replayed:
    """What the trail says every supervised row is: table → id → (values, last entry)."""

    rows: dict[str, dict[Any, tuple[dict[str, Any], int]]] = field(
        default_factory=lambda: {t: {} for t in SUPERVISED})
    problems: list[str] = field(default_factory=list)

    def visit(self, entry: Any) -> None:
        """Fold one trail entry (anything with ``seq`` and ``detail``): pass this to
        :func:`monitor.trailcheck.verify` to replay in the chain's own pass."""
        for ch in (entry.detail or {}).get("state") or ():
            _fold(self, entry.seq, ch)


def replay(engine: Engine) -> Replayed:
    """Fold the state payloads of the whole trail, each region's chain oldest first (a
    row's changes are all on its region's chain)."""
    out = Replayed()
    with engine.connect() as conn:
        for region in trail.regions(conn):
            last = -1
            while True:
                batch = conn.execute(select(TrailEntry.seq, TrailEntry.detail)
                                     .where(TrailEntry.region == region, TrailEntry.seq > last)
                                     .order_by(TrailEntry.seq).limit(REPLAY_CHUNK)).all()
                for entry in batch:
                    out.visit(entry)
                if len(batch) < REPLAY_CHUNK:
                    break
                last = batch[-1].seq
    return out


def _fold(out: Replayed, seq: int, ch: Mapping[str, Any]) -> None:
    table, row_id, values = ch.get("table"), ch.get("id"), ch.get("set") or {}
    if table not in out.rows:
        out.problems.append(f"trail entry #{seq} changes unknown table {table!r}")
        return
    known = out.rows[table].get(row_id)
    if ch.get("new"):
        if known is not None and not ch.get("baseline"):  # a baseline re-states rows
            out.problems.append(f"trail entry #{seq} creates {table} #{row_id} again (last "
                                f"changed by entry #{known[1]})")
        out.rows[table][row_id] = (dict(values), seq)
    elif known is None:
        out.problems.append(f"trail entry #{seq} changes {table} #{row_id}, which no entry "
                            "created")
    else:
        known[0].update(values)
        out.rows[table][row_id] = (known[0], seq)


def _shown(values: Mapping[str, Any]) -> str:
    return ", ".join(f"{k}={v!r}" for k, v in values.items())


def _compare(conn: Connection, table: str, spec: Spec,
             expected: dict[Any, tuple[dict[str, Any], int]], problems: list[str]) -> int:
    seen, count = set(), 0
    for batch in _rows(conn, spec, 5000):
        for row in batch:
            count += 1
            row_id = row[0]
            seen.add(row_id)
            want = expected.get(row_id)
            if want is None:
                problems.append(f"{table} #{row_id} is not on the trail: inserted behind the "
                                "program's back")
                continue
            values, seq = want
            for c in spec.columns:
                have = plain(getattr(row, c))
                if c in values and have != values[c]:
                    problems.append(f"{table} #{row_id}: {c} is {have!r} but the trail (entry "
                                    f"#{seq}) says {values[c]!r}: changed behind the "
                                    "program's back")
    for row_id in sorted(set(expected) - seen):
        values, seq = expected[row_id]
        problems.append(f"{table} #{row_id} is missing; the trail (entry #{seq}) says it is "
                        f"{_shown(values)}: deleted behind the program's back")
    return count


@dataclass(frozen=True)
class Checked:
    rows: int
    tables: int


def check(engine: Engine, replayed: Replayed | None = None) -> Checked:
    """Replay the trail (or take ``replayed``, folded during the chain's check) and compare
    every supervised row with it; :class:`StateMismatch` lists what differs (the first
    :data:`MAX_PROBLEMS`, then how many more)."""
    replayed = replay(engine) if replayed is None else replayed
    problems = list(replayed.problems)
    if _baseline_runs(engine) > 1:
        problems.append("the trail has more than one baseline: the state was re-recorded "
                        "after the first (trail_head.state_since was reset)")
    rows = 0
    with engine.connect() as conn:
        for table, spec in SUPERVISED.items():
            rows += _compare(conn, table, spec, replayed.rows[table], problems)
    if problems:
        more = len(problems) - MAX_PROBLEMS
        lines = problems[:MAX_PROBLEMS] + ([f"… and {more:,} more"] if more > 0 else [])
        raise StateMismatch("\n".join(lines))
    return Checked(rows, len(SUPERVISED))


def _baseline_runs(engine: Engine) -> int:
    """How many distinct moments a baseline was appended at."""
    with engine.connect() as conn:
        return conn.scalar(select(func.count(func.distinct(TrailEntry.at)))
                           .where(TrailEntry.action == "baseline")) or 0
