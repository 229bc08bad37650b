"""Column types that behave the same on SQLite and PostgreSQL.

* :class:`Money` — ``Decimal`` yuan in Python, an exact integer number of fen (分) in the
  database, so sums in SQL are exact on every backend and nothing is ever a float.
* :class:`UTCDateTime` — aware datetimes in Python, UTC in the database.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

from sqlalchemy import BigInteger, DateTime, Dialect, Integer
from sqlalchemy.types import TypeDecorator, TypeEngine

FEN = Decimal("0.01")

# The id of a table that grows with the store: 64-bit. On SQLite an INTEGER already is
# (and only an INTEGER primary key is the rowid, numbered by the database).
BigId = BigInteger().with_variant(Integer(), "sqlite")


class Money(TypeDecorator):
    impl = BigInteger
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        if not isinstance(value, Decimal):
            raise TypeError(f"Money needs Decimal, got {type(value).__name__}")
        return int(value.quantize(FEN) * 100)

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        return (Decimal(int(value)) / 100).quantize(FEN)


class UTCDateTime(TypeDecorator):
    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the store; convert to UTC first")
        value = value.astimezone(timezone.utc)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=timezone.utc)
        return value.astimezone(timezone.utc)


def to_fen(amount: Decimal) -> int:
    """Yuan → integer fen (used by the bulk insert path, which bypasses the ORM types)."""
    return int(amount.quantize(FEN) * 100)


def _utc_sqlite_text(value: datetime | None) -> str | None:
    """UTCDateTime then SQLAlchemy's SQLite DATETIME (its storage format), in one step."""
    if value is None:
        return None
    if value.tzinfo is not timezone.utc:  # the ingest path always gives UTC already
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the store; convert to UTC first")
        value = value.astimezone(timezone.utc)
    return "%04d-%02d-%02d %02d:%02d:%02d.%06d" % (
        value.year, value.month, value.day, value.hour, value.minute, value.second,
        value.microsecond)


_PROBES = (datetime(2025, 9, 30, 10, 0, tzinfo=timezone.utc),
           datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=timezone.utc),
           datetime(999, 1, 2, 3, 4, 5, 6, tzinfo=timezone(-timedelta(hours=5))), None)


def bulk_bind_processor(type_: TypeEngine, dialect: Dialect) -> Callable[[Any], Any] | None:
    """The bind processing of ``type_`` on ``dialect``, for sending many rows at once.

    Same values as SQLAlchemy's own processing (TypeDecorator, then the dialect's type),
    which costs a few microseconds per value through its generic wrappers. The fast
    paths, UTC timestamps as text (SQLite's storage format; PostgreSQL's input, for
    ``COPY``), are checked against SQLAlchemy's own processor on a few values and dropped
    if one ever disagrees.
    """
    generic = type_.dialect_impl(dialect).bind_processor(dialect)
    if isinstance(type_, UTCDateTime) and dialect.name == "sqlite" and generic is not None:
        if all(_utc_sqlite_text(v) == generic(v) for v in _PROBES):
            return _utc_sqlite_text
    if isinstance(type_, UTCDateTime) and dialect.name == "postgresql" and generic is not None:
        if all(_same_instant(_utc_pg_text(v), generic(v)) for v in _PROBES):
            return _utc_pg_text
    return generic


def _utc_pg_text(value: datetime | None) -> str | None:
    """A UTC timestamp as the text PostgreSQL's ``timestamptz`` input (and ``COPY``) reads:
    text crosses from the reading process as cheaply as the SQLite form, a datetime not."""
    text = _utc_sqlite_text(value)
    return None if text is None else text + "+00"


def _same_instant(text: str | None, value: datetime | None) -> bool:
    if text is None or value is None:
        return text is None and value is None
    return datetime.fromisoformat(text + ":00") == value
