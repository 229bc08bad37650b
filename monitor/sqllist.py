"""A list of values bound as one parameter: ``column`` is one of them.

``IN (:a, :b, …)`` with one bind per value costs the client per value and per execution
(SQLAlchemy expands the list, psycopg parses every placeholder; on PostgreSQL a few ms for
500 values) and compiles a new statement per length. :func:`one_of` binds the list once:
PostgreSQL ``= ANY(array)``, SQLite an ``IN`` over ``json_each``. Used by the detectors
(monitor/rules/sql.py) and by the look-ups that store a run's alerts (issue 19).
"""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import BigInteger, Integer, String, bindparam
from sqlalchemy.dialects import postgresql
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import QueryableAttribute
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.sql.functions import FunctionElement
from sqlalchemy.types import NullType, TypeDecorator, TypeEngine


class member_of(FunctionElement):
    """``member_of(column, values)``: ``column`` is one of ``values`` (a list bound as one
    parameter, whatever its length, so the statement is compiled once): PostgreSQL
    ``= ANY(array)``, which the planner answers with one index lookup per value; SQLite an
    ``IN`` over ``json_each``, which it answers the same way."""

    type = NullType()  # a condition as is: a Boolean would get "= 1" on SQLite, hiding the IN
    inherit_cache = True
    name = "member_of"


@compiles(member_of, "sqlite")
def _member_sqlite(element, compiler, **kw):
    column, values = (compiler.process(c, **kw) for c in element.clauses)
    return f"{column} IN (SELECT value FROM json_each({values}))"


@compiles(member_of, "postgresql")
def _member_pg(element, compiler, **kw):
    column, values = (compiler.process(c, **kw) for c in element.clauses)
    return f"{column} = ANY({values})"


class ListParam(TypeDecorator):
    """A list of values bound as one parameter: a PostgreSQL array (of bigint or text), JSON
    text on SQLite."""

    impl = String
    cache_ok = True

    def __init__(self, numbers: bool = False):
        super().__init__()
        self.numbers = numbers

    def load_dialect_impl(self, dialect):
        if dialect.name == "postgresql":
            element: type[TypeEngine[Any]] = BigInteger if self.numbers else String
            return dialect.type_descriptor(postgresql.ARRAY(element))
        return dialect.type_descriptor(String())

    def process_bind_param(self, value, dialect):
        return list(value) if dialect.name == "postgresql" else json.dumps(list(value))


def one_of(column: ColumnElement[Any] | QueryableAttribute[Any], values) -> ColumnElement:
    """WHERE ``column`` (text, or an integer id) is one of ``values`` (see
    :class:`member_of`)."""
    numbers = isinstance(column.type, Integer)
    return member_of(column, bindparam(None, tuple(values), type_=ListParam(numbers)))
