"""Writing rows to the store: batched, idempotent, and accounted for.

Each batch is one transaction that inserts the new rows, quarantines the bad ones and
advances the run's counters together, so a process killed mid-file leaves a consistent
database and a re-run completes the job: rows already stored come back as duplicates,
rows already quarantined are not quarantined twice (natural key on source and line).

For every run: read = inserted + replaced + duplicates + quarantined.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from itertools import islice
from typing import Any

from sqlalchemy import (Column, Connection, Dialect, Engine, MetaData, Table, insert, select,
                        update)
from sqlalchemy.dialects import postgresql, sqlite

from ..models import Event, IngestRun, Quarantine
from ..types import bulk_bind_processor
from .events import ROW
from .sources import SourceRow

IN_CHUNK = 500  # bound parameters per IN (...) lookup; safe on every SQLite build
# Columns written by insert_events, in order: everything but the surrogate key.
EVENT_COLUMNS = tuple(c.name for c in Event.__table__.columns if not c.primary_key)
_INSERT_EVENT = (f"INSERT INTO {Event.__tablename__} ({', '.join(EVENT_COLUMNS)}) "
                 "VALUES ({values})")
_PLACEHOLDER = {"qmark": "?", "format": "%s", "pyformat": "%s"}
# Where insert_events' value tuples hold what classify_events looks at.
EVENT_ID, CONTENT_HASH, SOURCE_LINE, REGION = (
    EVENT_COLUMNS.index(name) for name in ("event_id", "content_hash", "source_line", "region"))
# The events table without types: Core inserts already-bound values through it unchanged.
_BOUND_EVENTS = Table(Event.__tablename__, MetaData(), *(Column(name) for name in EVENT_COLUMNS))


@dataclass
class Tally:
    """What became of the rows read from one source (or several, added up)."""

    read: int = 0
    inserted: int = 0
    replaced: int = 0
    duplicates: int = 0
    quarantined: int = 0
    by_reason: Counter = field(default_factory=Counter)

    def __iadd__(self, other: "Tally") -> "Tally":
        for name in ("read", "inserted", "replaced", "duplicates", "quarantined"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.by_reason.update(other.by_reason)
        return self

    def as_dict(self) -> dict[str, Any]:
        out = {"read": self.read, "inserted": self.inserted, "duplicates": self.duplicates,
               "quarantined": self.quarantined, "by_reason": dict(sorted(self.by_reason.items()))}
        if self.replaced:
            out["replaced"] = self.replaced
        return out


@dataclass(frozen=True)
class Bad:
    """A row to set aside, and why."""

    row: SourceRow
    reason: str
    detail: str


def batches(rows: Iterable, size: int) -> Iterator[list]:
    it = iter(rows)
    while chunk := list(islice(it, size)):
        yield chunk


def insert_ignoring_conflicts(conn: Connection, table: Table, rows: list[dict],
                              keys: list[str]) -> None:
    """INSERT … ON CONFLICT (keys) DO NOTHING, on SQLite and PostgreSQL alike."""
    if not rows:
        return
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    conn.execute(dialect.insert(table).on_conflict_do_nothing(index_elements=keys), rows)


def raw_text(fields: dict[str, Any]) -> str:
    return json.dumps(fields, ensure_ascii=False, sort_keys=True)


def quarantine_rows(conn: Connection, kind: str, source: str, bad: list[Bad], run_id: int | None,
                    now: datetime, region: str) -> None:
    """Set ``bad`` aside, of ``region`` (the run's)."""
    rows = []
    for b in bad:
        raw = raw_text(b.row.fields)
        rows.append({"kind": kind, "source": source, "line": b.row.line, "raw": raw,
                     "raw_hash": hashlib.blake2b(raw.encode(), digest_size=16).hexdigest(),
                     "reason": b.reason, "detail": b.detail, "run_id": run_id,
                     "created_at": now, "region": region})
    insert_ignoring_conflicts(conn, Quarantine.__table__, rows,
                              ["kind", "source", "line", "raw_hash"])


def _placeholders(conn: Connection, n: int) -> str | None:
    """``n`` positional DBAPI placeholders, or None if the driver uses another paramstyle."""
    mark = _PLACEHOLDER.get(conn.dialect.paramstyle)
    return ", ".join([mark] * n) if mark else None


def stored_hashes(conn: Connection, ids: list[str]) -> dict[str, str]:
    """event_id → content_hash of the events already stored, for the given ids.

    Plain DBAPI SQL where the driver allows: this runs for every batch, and Core's
    expanding ``IN`` cost ten times more than the lookups themselves. PostgreSQL gets the
    whole batch as one array (``= ANY``), which is faster there than any ``IN`` list.
    """
    if not ids:
        return {}
    select_sql = f"SELECT event_id, content_hash FROM {Event.__tablename__} WHERE event_id"
    mark = _placeholders(conn, 1)
    if conn.dialect.name == "postgresql" and mark:
        return dict(conn.exec_driver_sql(f"{select_sql} = ANY({mark})", (ids,)).tuples().all())
    found: dict[str, str] = {}
    for start in range(0, len(ids), IN_CHUNK):
        chunk = ids[start:start + IN_CHUNK]
        marks = _placeholders(conn, len(chunk))
        if marks is None:
            found.update(conn.execute(select(Event.event_id, Event.content_hash)
                                      .where(Event.event_id.in_(chunk))).tuples().all())
        else:
            found.update(conn.exec_driver_sql(f"{select_sql} IN ({marks})", tuple(chunk))
                         .tuples().all())
    return found


def event_binder(dialect: Dialect) -> Callable[[dict[str, Any]], tuple]:
    """row dict → the tuple of values the driver gets for :data:`EVENT_COLUMNS`.

    Each column goes through its type's bind processing (as ``insert(Event)`` would do),
    except for the timestamps on SQLite, which take the exact fast path of
    :func:`monitor.types.bulk_bind_processor`. Binding needs the dialect, not a
    connection, so it can run in the reading process.

    This runs for every row, so the tuple is built by one generated expression (a
    subscript per column) rather than a loop; a processor that maps None to None (checked
    here) is not called for None.
    """
    return _binder(dialect, "row", lambda name: f"row[{name!r}]")


def values_binder(dialect: Dialect) -> Callable[[tuple, int | None, int, str], tuple]:
    """``bind(values, run_id, source_line, region)``: :func:`event_binder`'s tuple, from
    the contract's values in :data:`monitor.ingest.events.ROW` order
    (:func:`~monitor.ingest.events.event_values`) — the ingestion's hot path, with no
    dict per row."""
    given = {"run_id": "run_id", "source_line": "line", "region": "region"}
    return _binder(dialect, "values, run_id, line, region",
                   lambda name: given.get(name) or f"values[{ROW.index(name)}]")


def _binder(dialect: Dialect, arguments: str, value_of: Callable[[str], str]
            ) -> Callable[..., tuple]:
    names: dict[str, Any] = {}
    parts = []
    for i, name in enumerate(EVENT_COLUMNS):
        process = bulk_bind_processor(Event.__table__.c[name].type, dialect)
        value = value_of(name)
        if process is None:
            parts.append(value)
            continue
        names[f"p{i}"] = process
        if process(None) is None:
            parts.append(f"(None if (v := {value}) is None else p{i}(v))")
        else:
            parts.append(f"p{i}({value})")
    source = f"def bind({arguments}):\n    return ({', '.join(parts)},)\n"
    exec(compile(source, f"<event_binder {dialect.name}>", "exec"), names)  # noqa: S102
    return names["bind"]


def insert_events(conn: Connection, rows: list[tuple]) -> None:
    """Insert events, given as :func:`event_binder` tuples, in one ``executemany``.

    This is the ingestion hot path, so it goes to the DBAPI cursor with values already in
    their stored form (same values as ``conn.execute(insert(Event), rows)``, about three
    times less overhead per row). On PostgreSQL psycopg runs ``executemany`` pipelined.
    A driver with named parameters gets the same values through Core, untyped.
    """
    if not rows:
        return
    marks = _placeholders(conn, len(EVENT_COLUMNS))
    if marks is None:
        conn.execute(insert(_BOUND_EVENTS), [dict(zip(EVENT_COLUMNS, row)) for row in rows])
        return
    conn.exec_driver_sql(_INSERT_EVENT.format(values=marks), rows)


STAGE = "pm_events_stage"  # per connection (a temporary table), emptied at every commit
_COLUMN_LIST = ", ".join(EVENT_COLUMNS)
_STAGE_DDL = (f"CREATE TEMPORARY TABLE IF NOT EXISTS {STAGE} ON COMMIT DELETE ROWS AS "
              f"SELECT 0 AS pos, {_COLUMN_LIST} FROM {Event.__tablename__} WITH NO DATA")
# One statement classifies every staged row and inserts the new ones, in batch order (so
# ids follow the source): a row is new if its event_id is neither stored (looked up in the
# unique index, row by row) nor earlier in the batch; a duplicate if its content hash is
# the stored one, else the batch's first; a conflict otherwise. Returns the positions of
# the duplicates and conflicts only. On events partitioned by county (monitor/partitions.py)
# an event_id is unique within its county: the lookup names the row's region too, so it
# reads that county's partition only (pruned as each row's lookup starts), and the new
# rows are routed to their partitions by the INSERT.
_MERGE_SQL = """
WITH staged AS MATERIALIZED (
    SELECT s.*, (SELECT e.content_hash FROM {events} e
                 WHERE e.event_id = s.event_id{same_region}) AS stored,
           first_value(s.content_hash) OVER same AS first_hash,
           row_number() OVER same AS k
    FROM {stage} s WINDOW same AS (PARTITION BY {key} ORDER BY s.pos)),
new AS (
    INSERT INTO {events} ({columns})
    SELECT {columns} FROM staged WHERE stored IS NULL AND k = 1 ORDER BY pos)
SELECT pos, coalesce(stored, first_hash) = content_hash FROM staged
WHERE stored IS NOT NULL OR k > 1"""
_MERGE = {by_region: _MERGE_SQL.format(
    events=Event.__tablename__, stage=STAGE, columns=_COLUMN_LIST,
    same_region=" AND e.region = s.region" if by_region else "",
    key="s.region, s.event_id" if by_region else "s.event_id") for by_region in (False, True)}
_CODE = re.compile(r"\d{6}\Z")


def _merge(rows: list[tuple], by_region: bool) -> str:
    """The merge for a batch: a batch of one county (the usual case) names its region as a
    constant when the events are partitioned, so the plan reads that partition alone
    instead of choosing a partition again for every row (measured: bench/README.md)."""
    if by_region and len(regions := {row[REGION] for row in rows}) == 1 \
            and _CODE.match(code := regions.pop()):
        return _MERGE_SQL.format(events=Event.__tablename__, stage=STAGE, columns=_COLUMN_LIST,
                                 same_region=f" AND e.region = '{code}'",
                                 key="s.event_id")
    return _MERGE[by_region]


def copy_events(conn: Connection, rows: list[tuple], by_region: bool = False
                ) -> tuple[list[int], list[int], list[int]]:
    """PostgreSQL: classify and store :func:`event_binder` tuples with ``COPY`` into a
    staging table and one set-based merge (see ``_MERGE``); positions in ``rows`` of the
    new events, the duplicates and the conflicts, as :func:`classify_events` gives them.
    ``by_region``: the events are partitioned by county, an event_id unique per county."""
    if not rows:
        return [], [], []
    # psycopg's own connection, for COPY (no DBAPI verb); Any: psycopg types queries as
    # LiteralString, and these are composed from the model's column names
    driver: Any = conn.connection.driver_connection
    with driver.cursor() as cur:
        # every batch: a batch rolled back takes a table it created with it
        cur.execute(_STAGE_DDL)
        with cur.copy(f"COPY {STAGE} (pos, {_COLUMN_LIST}) FROM STDIN") as copy:
            for k, row in enumerate(rows):
                copy.write_row((k, *row))
        cur.execute(_merge(rows, by_region))
        seen = cur.fetchall()
    duplicates = sorted(k for k, same in seen if same)
    conflicts = sorted(k for k, same in seen if not same)
    taken = {k for k, _ in seen}
    return [k for k in range(len(rows)) if k not in taken], duplicates, conflicts


def classify_events(conn: Connection, rows: list[tuple]
                    ) -> tuple[list[int], list[int], list[int]]:
    """Positions in ``rows`` (:func:`event_binder` tuples) of the new events, the
    duplicates and the conflicts (an id already stored, or earlier in ``rows``, with
    other content)."""
    existing = stored_hashes(conn, [row[EVENT_ID] for row in rows])
    new: list[int] = []
    duplicates: list[int] = []
    conflicts: list[int] = []
    for k, row in enumerate(rows):
        eid = row[EVENT_ID]
        known = existing.get(eid)
        if known is None:
            existing[eid] = row[CONTENT_HASH]
            new.append(k)
        elif known == row[CONTENT_HASH]:
            duplicates.append(k)
        else:
            conflicts.append(k)
    return new, duplicates, conflicts


def start_run(engine: Engine, kind: str, source: str, now: datetime, region: str) -> int:
    with engine.begin() as conn:
        return conn.execute(insert(IngestRun).values(kind=kind, source=source, started_at=now,
                                                     status="running", region=region)
                            .returning(IngestRun.id)).scalar_one()


def add_to_run(conn: Connection, run_id: int, t: Tally) -> None:
    r = IngestRun
    conn.execute(update(r).where(r.id == run_id).values(
        read=r.read + t.read, inserted=r.inserted + t.inserted, replaced=r.replaced + t.replaced,
        duplicates=r.duplicates + t.duplicates, quarantined=r.quarantined + t.quarantined))


def finish_run(engine: Engine, run_id: int, status: str, now: datetime) -> None:
    with engine.begin() as conn:
        conn.execute(update(IngestRun).where(IngestRun.id == run_id)
                     .values(status=status, finished_at=now))


Progress = Callable[[int], None]
