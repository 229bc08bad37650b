"""Inserting many rows of one table at once: ``COPY`` on PostgreSQL, one ``executemany``
elsewhere.

Why: a first run stores every alert with its trail entries and notices in one pass
(issue 19: storing must cost at most a fifth of evaluating). Through ``insert(table)``
SQLAlchemy renders and binds every row as parameters of a multi-row INSERT, and
PostgreSQL parses them; ``COPY`` streams the rows as text (psycopg adapts each value),
about half the client's and the server's work per row. The values are the ones
``insert(table)`` would send: each column's own bind processing
(:func:`monitor.types.bulk_bind_processor`), and a column a row omits takes its Python
default (``default=``) as Core would, or the server's. Rows are inserted in order, so
identity keys follow it as before.
"""

from __future__ import annotations

from collections.abc import Callable
from operator import itemgetter
from typing import Any

from sqlalchemy import Column, Connection, Table, insert

from .types import bulk_bind_processor


def insert_many(conn: Connection, table: Table, rows: list[dict[str, Any]]) -> None:
    """Insert ``rows`` (dicts of column values, all with the same keys) into ``table``
    in the caller's transaction."""
    if not rows:
        return
    if conn.dialect.name != "postgresql":
        conn.execute(insert(table), rows)
        return
    # the columns sent as they are first, taken by one itemgetter; then those with bind
    # processing, then the defaults of omitted columns (COPY names its columns' order)
    columns = [table.c[name] for name in rows[0]]
    plain = {c.name for c in columns if bulk_bind_processor(c.type, conn.dialect) is None}
    as_is = [c for c in columns if c.name in plain]
    processed = [c for c in columns if c.name not in plain]
    defaults = [c for c in table.columns if c.name not in rows[0] and c.default is not None]
    take = _taker([c.name for c in as_is])
    makers = [_value(c, conn) for c in processed] + [_default(c, conn) for c in defaults]
    names = ", ".join(f'"{c.name}"' for c in [*as_is, *processed, *defaults])
    driver: Any = conn.connection.driver_connection  # psycopg's own, for COPY
    with driver.cursor() as cur, cur.copy(f"COPY {table.name} ({names}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row((*take(row), *[make(row) for make in makers]))


def _taker(names: list[str]) -> Callable[[dict[str, Any]], tuple[Any, ...]]:
    """The values of ``names`` of a row, as a tuple."""
    if not names:
        return lambda row: ()
    if len(names) == 1:
        name = names[0]
        return lambda row: (row[name],)
    return itemgetter(*names)


def _value(column: Column, conn: Connection) -> Callable[[dict[str, Any]], Any]:
    process = bulk_bind_processor(column.type, conn.dialect)
    name = column.name
    if process is None:
        return lambda row: row[name]
    if process(None) is None:  # as Core: a processor that keeps None is not called for it
        return lambda row: None if (v := row[name]) is None else process(v)
    return lambda row: process(row[name])


def _default(column: Column, conn: Connection) -> Callable[[dict[str, Any]], Any]:
    process = bulk_bind_processor(column.type, conn.dialect) or (lambda v: v)
    default: Any = column.default
    if default.is_scalar:
        fixed = process(default.arg)
        return lambda row: fixed
    if default.is_callable:
        make = default.arg
        return lambda row: process(make(None))
    raise ValueError(f"{column}: a default that is not a value or a function")
