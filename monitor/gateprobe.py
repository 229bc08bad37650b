"""Where the gate puts the candidate while the detectors look: a look that writes nothing.

In a run, the detectors read the table ``events``. The gate shows them the case's stored
history plus the candidate by one of two means:

- **A shadowed connection** (SQLite, the web app's gate, :func:`shadowed`): the connection
  has a TEMP table ``gate_probe`` (the candidate, one row for the length of a look) and a
  TEMP view ``events`` — which SQLite resolves before the stored table of that name, on
  that connection alone — made of the stored rows of the candidate's case and the
  candidate (``UNION ALL``). Nothing is written to the database file, so a look takes no
  write lock: the looks of a process's gate threads no longer wait for each other, or for
  a run or an ingest, in SQLite's busy handler. The view holds the candidate's case alone
  and reads it by the ``(case_id, occurred_at, id)`` index, because SQLite (3.40) does not
  push a detector's case filter into both arms of a ``UNION ALL`` under a join or a
  ``GROUP BY`` (``EXPLAIN QUERY PLAN``: missing_attachment's and same_actor_roles'
  statements would scan every stored event); a look only ever asks about the candidate's
  case (``Context.changed_case_ids``), so what the detectors see of it is the same.
- **The stored table** (otherwise: PostgreSQL, where writers do not wait for each other,
  and ``gate check``'s own connection): the candidate is inserted into ``events`` in the
  look's transaction, which is rolled back.

Either way the candidate's ``id`` is the one an insert would give it at that moment (the
largest stored id plus one on the shadowed connection), so it sorts after every stored event.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, Engine, MetaData, Table, event, insert, literal_column
from sqlalchemy.sql.expression import ColumnClause

from .db import create_store_engine
from .models import Event

SHADOW = "gate_shadow"  # the key of a shadowed connection's info

_SETUP = (
    "PRAGMA temp_store = MEMORY",  # first: changing it drops the TEMP objects made so far
    "CREATE TEMP TABLE gate_probe AS SELECT * FROM main.events WHERE 0",
    "CREATE TEMP VIEW events AS SELECT * FROM main.events WHERE case_id = "
    "(SELECT case_id FROM temp.gate_probe) UNION ALL SELECT * FROM temp.gate_probe",
)

_PROBE_TABLE = Event.__table__.to_metadata(MetaData(), schema="temp", name="gate_probe")
_NEXT_ID: ColumnClause[int] = literal_column("(SELECT coalesce(max(id), 0) + 1 FROM main.events)")
_SHADOWED = insert(_PROBE_TABLE).values(id=_NEXT_ID).returning(_PROBE_TABLE.c.id)
_STORED = insert(Event).returning(Event.id)  # built once: values come with each execution
_MAIN_EVENTS = Event.__table__.to_metadata(MetaData(), schema="main")  # past the TEMP view


def shadowed(engine: Engine) -> Engine:
    """SQLite: an engine of its own on the same file whose every connection is shadowed
    (see the module's docstring); it must serve gate looks only — ``events`` on it is a
    view of one case. Other databases: ``engine``."""
    if engine.dialect.name != "sqlite":
        return engine
    own = create_store_engine(engine.url.render_as_string(hide_password=False), create=False)
    event.listen(own, "connect", _shadow)
    return own


def _shadow(dbapi_conn, record) -> None:
    cur = dbapi_conn.cursor()
    for statement in _SETUP:
        cur.execute(statement)
    cur.close()
    record.info[SHADOW] = True


def put(conn: Connection, row: dict[str, Any]) -> int:
    """The candidate ``row`` where this connection's detectors will see it, in the open
    look (rolled back by the caller); its id."""
    if conn.connection.info.get(SHADOW):
        return conn.execute(_SHADOWED, row).scalar_one()
    return conn.execute(_STORED, row).scalar_one()


def stored_events(conn: Connection) -> Table:
    """The stored ``events`` table as ``conn`` must name it outside a look: on a shadowed
    connection ``events`` is the TEMP view of the (absent) candidate's case, so the stored
    table is ``main.events`` there."""
    if conn.connection.info.get(SHADOW):
        return _MAIN_EVENTS
    return Event.__table__


__all__ = ["SHADOW", "put", "shadowed", "stored_events"]
