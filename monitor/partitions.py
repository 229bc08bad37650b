"""``events`` partitioned by county on PostgreSQL (``permit-monitor db partition``).

A store of several counties can hold its events in one partition per county
(``PARTITION BY LIST (region)``: ``events_330102``, …) and a DEFAULT partition
(``events_default``) for any region that has none yet, so no row is ever refused. A
county's statements then read its partition only: a per-county worker's view
(``… WHERE region = 'CODE'``, monitor/parallel.py) is pruned when it is planned. It is
the native analogue of the distribution docs/scale.md designs for Citus, with the same
rule for keys: every unique key includes the region, so the events are unique by
``(event_id, region)`` and keyed ``(id, region)``, and ingestion looks a row up in its
own county's partition (monitor/ingest/store.py).

Partitioning is a command, not a migration: it rewrites the table under an exclusive
lock, and a one-county store gains nothing from it. :func:`partition` converts in one
transaction (rows counted and their ids summed before and after, ids and the sequence
kept, every index made again on the parent); :func:`unpartition` is the way back, refused
while two counties share an ``event_id`` (the plain table's key is the id alone).
:func:`ensure` gives a county its partition when its first events or catalog arrive,
moving any of its rows the DEFAULT partition holds. SQLite has no partitions: every
function here leaves it alone.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, Engine, text

from . import trail
from .errors import StoreError

TABLE = "events"
DEFAULT = f"{TABLE}_default"
_NEW = f"{TABLE}_converting"
_CODE = re.compile(r"\d{6}\Z")
_LOCK = "SELECT pg_advisory_xact_lock(hashtext('permit-monitor events partitions'))"
_SCHEMA = "c.relnamespace = current_schema()::regnamespace"
_KIND = text(f"SELECT c.relkind FROM pg_class c WHERE {_SCHEMA} AND c.relname = '{TABLE}'")
# which of the regions have no partition of their own
_MISSING = text(f"""SELECT r FROM unnest(CAST(:regions AS text[])) r WHERE NOT EXISTS (
    SELECT 1 FROM pg_class c WHERE {_SCHEMA} AND c.relname = '{TABLE}_' || r)""")
# the table's indexes other than its primary and unique keys, as CREATE INDEX statements
_INDEXES = text(f"""SELECT pg_get_indexdef(i.indexrelid) FROM pg_index i
    JOIN pg_class c ON c.oid = i.indrelid WHERE {_SCHEMA} AND c.relname = '{TABLE}'
    AND NOT i.indisunique AND NOT i.indisprimary ORDER BY i.indexrelid""")
_CENSUS = f"SELECT count(*), coalesce(sum(id), 0), min(id), max(id) FROM {{table}}"
# keys per form: plain (as the models declare) and partitioned (each including the region)
_KEYS = {
    False: (f"{TABLE}_pkey PRIMARY KEY (id)", f"{TABLE}_event_id_key UNIQUE (event_id)"),
    True: (f"{TABLE}_pkey PRIMARY KEY (id, region)",
           f"{TABLE}_event_id_region_key UNIQUE (event_id, region)"),
}
_FOREIGN = f"{TABLE}_run_id_fkey FOREIGN KEY (run_id) REFERENCES ingest_runs(id)"


@dataclass(frozen=True)
class Converted:
    """What a conversion did: the rows it moved and the partitions it made."""

    rows: int
    partitions: tuple[str, ...]


def is_partitioned(conn: Connection) -> bool:
    """Whether the store's events are partitioned (always False on SQLite)."""
    return conn.dialect.name == "postgresql" and conn.execute(_KIND).scalar() == "p"


def partition_name(code: str) -> str:
    return f"{TABLE}_{code}"


def ensure(conn: Connection, regions: Iterable[str]) -> bool:
    """Give each county in ``regions`` its partition if the events are partitioned and it
    has none yet, in ``conn``'s transaction; whether the events are partitioned.

    A new partition takes over the county's rows the DEFAULT partition held, then is
    attached (under a check constraint, so the attach does not scan it; the parent is
    locked SHARE UPDATE EXCLUSIVE only, so other counties' reads and writes go on). A code
    that is not six digits stays in the DEFAULT partition."""
    if not is_partitioned(conn):
        return False
    wanted = sorted({r for r in regions if r and _CODE.match(r)})
    if wanted and conn.execute(_MISSING, {"regions": wanted}).first() is not None:
        conn.exec_driver_sql(_LOCK)  # two ingests meeting one new county make one partition
        for code in conn.execute(_MISSING, {"regions": wanted}).scalars().all():
            _attach(conn, code)
    return True


def _attach(conn: Connection, code: str) -> None:
    name = partition_name(code)
    for statement in (
            f"CREATE TABLE {name} (LIKE {TABLE} INCLUDING DEFAULTS INCLUDING CONSTRAINTS)",
            f"ALTER TABLE {name} ADD CONSTRAINT {name}_region CHECK (region = '{code}')",
            f"WITH moved AS (DELETE FROM {DEFAULT} WHERE region = '{code}' RETURNING *) "
            f"INSERT INTO {name} SELECT * FROM moved",
            f"ALTER TABLE {TABLE} ATTACH PARTITION {name} FOR VALUES IN ('{code}')",
            f"ALTER TABLE {name} DROP CONSTRAINT {name}_region"):
        conn.exec_driver_sql(statement)


def partition(engine: Engine, at: datetime, by: str) -> Converted:
    """Convert the store's ``events`` to one partition per county present (in the events,
    the ingest runs or the catalog) and a DEFAULT partition, in one transaction, on the
    trail (``events_partitioned``) as ``by`` at ``at``."""
    _postgresql(engine, "partition")
    with engine.begin() as conn:
        trail.lock(conn)
        done = partition_in(conn)
        trail.append(conn, at, [trail.Entry("events_partitioned", None, by, {
            "rows": done.rows, "partitions": list(done.partitions)})])
        return done


def partition_in(conn: Connection) -> Converted:
    """:func:`partition`'s conversion in ``conn``'s transaction, with no trail entry (a
    test suite's template store is partitioned so)."""
    conn.exec_driver_sql(f"LOCK TABLE {TABLE} IN ACCESS EXCLUSIVE MODE")
    if is_partitioned(conn):
        raise StoreError("the events are partitioned already (permit-monitor db unpartition "
                         "makes them one table again)")
    codes = [c for c in _regions(conn) if _CODE.match(c)]
    conn.exec_driver_sql(f"CREATE TABLE {_NEW} (LIKE {TABLE} INCLUDING DEFAULTS "
                         "INCLUDING CONSTRAINTS) PARTITION BY LIST (region)")
    for code in codes:
        conn.exec_driver_sql(f"CREATE TABLE {partition_name(code)} PARTITION OF {_NEW} "
                             f"FOR VALUES IN ('{code}')")
    conn.exec_driver_sql(f"CREATE TABLE {DEFAULT} PARTITION OF {_NEW} DEFAULT")
    return Converted(_swap(conn, partitioned=True),
                     tuple(partition_name(c) for c in codes) + (DEFAULT,))


def unpartition(engine: Engine, at: datetime, by: str) -> Converted:
    """Make the partitioned ``events`` one table again, in one transaction, on the trail
    (``events_unpartitioned``); refused while an ``event_id`` is stored for two counties."""
    _postgresql(engine, "unpartition")
    with engine.begin() as conn:
        trail.lock(conn)
        done = unpartition_in(conn)
        trail.append(conn, at, [trail.Entry("events_unpartitioned", None, by,
                                            {"rows": done.rows})])
        return done


def unpartition_in(conn: Connection) -> Converted:
    """:func:`unpartition`'s conversion in ``conn``'s transaction, with no trail entry."""
    conn.exec_driver_sql(f"LOCK TABLE {TABLE} IN ACCESS EXCLUSIVE MODE")
    if not is_partitioned(conn):
        raise StoreError("the events are not partitioned")
    shared = conn.exec_driver_sql(
        f"SELECT event_id, string_agg(region, ', ' ORDER BY region) FROM {TABLE} "
        "GROUP BY event_id HAVING count(*) > 1 ORDER BY event_id LIMIT 3").all()
    if shared:
        raise StoreError("cannot make the events one table: an event_id names one event "
                         "store-wide there, and " + "; ".join(
                             f"'{i}' is stored for {r}" for i, r in shared))
    conn.exec_driver_sql(f"CREATE TABLE {_NEW} (LIKE {TABLE} INCLUDING DEFAULTS "
                         "INCLUDING CONSTRAINTS)")
    return Converted(_swap(conn, partitioned=False), ())


def _swap(conn: Connection, *, partitioned: bool) -> int:
    """Copy every row into the new table, check them, and put it in the old one's place:
    its sequence, keys, foreign key and indexes. The number of rows."""
    indexes = conn.execute(_INDEXES).scalars().all()
    before = conn.exec_driver_sql(_CENSUS.format(table=TABLE)).one()
    conn.exec_driver_sql(f"INSERT INTO {_NEW} SELECT * FROM {TABLE}")
    after = conn.exec_driver_sql(_CENSUS.format(table=_NEW)).one()
    if tuple(after) != tuple(before):
        raise StoreError(f"the events copied do not match: {tuple(before)} before, "
                         f"{tuple(after)} after (count, sum, min and max of the ids); "
                         "nothing changed")
    sequence = conn.exec_driver_sql(f"SELECT pg_get_serial_sequence('{TABLE}', 'id')").scalar()
    if sequence:
        conn.exec_driver_sql(f"ALTER SEQUENCE {sequence} OWNED BY {_NEW}.id")
    conn.exec_driver_sql(f"DROP TABLE {TABLE}")  # refused if anything else depends on it
    conn.exec_driver_sql(f"ALTER TABLE {_NEW} RENAME TO {TABLE}")
    for constraint in (*_KEYS[partitioned], _FOREIGN):
        conn.exec_driver_sql(f"ALTER TABLE {TABLE} ADD CONSTRAINT {constraint}")
    for definition in indexes:  # each on the parent: PostgreSQL makes it on every partition
        conn.exec_driver_sql(definition)
    conn.exec_driver_sql(f"ANALYZE {TABLE}")
    return int(before[0])


def _regions(conn: Connection) -> list[str]:
    return list(conn.exec_driver_sql(
        "SELECT region FROM ingest_runs UNION SELECT region FROM departments "
        "UNION SELECT region FROM items UNION SELECT region FROM users "
        f"UNION SELECT DISTINCT region FROM {TABLE} ORDER BY 1").scalars())


def _postgresql(engine: Engine, what: str) -> None:
    if engine.dialect.name != "postgresql":
        raise StoreError(f"db {what}: only a PostgreSQL store's events are partitioned "
                         f"(this store is {engine.dialect.name})")
