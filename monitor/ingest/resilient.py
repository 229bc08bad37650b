"""Storing a batch the database refuses: halve it until the row at fault is alone,
quarantine that row (``store_error``, with the database's reason), store the rest.

Validation (monitor/ingest/validate.py) keeps known poison out — NUL, control characters,
over-long fields, impossible timestamps — but a value a database still cannot take must
cost one row, not the batch: before, a single such row rolled back its whole batch (up to
``batch_size`` good rows) and failed the run, and the night's pass with it. A batch that
fails for the database's own sake (connection lost, database locked) is not split: the run
fails as before, and a re-run completes it.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine
from sqlalchemy.exc import StatementError

from .sources import SourceRow
from .store import Bad, Tally, add_to_run, quarantine_rows
from .validate import printable

log = logging.getLogger(__name__)
REASON = "store_error"
Split = Callable[[Any], list]  # a batch → its two halves, or [] for a single row
Refuse = Callable[[Connection, Any, str, int], Tally]  # quarantine a lone refused row


def store_batch(engine: Engine, run_id: int, batch: Any,
          step: Callable[[Connection, Any, int], Tally],
          split: tuple[Split, Refuse] | None) -> Tally:
    """``step`` in one transaction with the run's counters; see the module docstring."""
    try:
        with engine.begin() as conn:
            tally = step(conn, batch, run_id)
            add_to_run(conn, run_id, tally)
        return tally
    except Exception as exc:
        problem = _data_fault(engine, exc)
        if split is None or problem is None:
            raise
    halve, refuse = split
    parts = halve(batch)
    if not parts:
        log.warning("the database refused one row; quarantined (%s): %s", REASON, problem)
        with engine.begin() as conn:
            tally = refuse(conn, batch, problem, run_id)
            add_to_run(conn, run_id, tally)
        return tally
    total = Tally()
    for part in parts:
        total += store_batch(engine, run_id, part, step, split)
    return total


def _data_fault(engine: Engine, exc: Exception) -> str | None:
    """The database's reason if ``exc`` is a fault of the data it was given (a value out
    of range, a byte it refuses), None if it is the database's own (connection, lock)."""
    dbapi = engine.dialect.loaded_dbapi
    orig = exc.orig if isinstance(exc, StatementError) else exc
    # OverflowError: sqlite3 refuses an integer over 64 bits before SQLAlchemy sees it
    if not isinstance(exc, (StatementError, dbapi.Error, OverflowError)):
        return None
    if isinstance(orig, (dbapi.OperationalError, dbapi.InterfaceError)):
        return None
    lines = str(orig).strip().splitlines() or [type(orig).__name__]
    return printable(lines[0], 300)


def refused(conn: Connection, kind: str, source: str, rows: list[SourceRow], problem: str,
            run_id: int, now: datetime, region: str) -> Tally:
    """Quarantine ``rows`` (a lone row the database refused) with the database's reason;
    the copy kept is escaped so the quarantine itself cannot be refused."""
    bad = [Bad(SourceRow(r.line, {k: printable(str(v), 2000) if v is not None else None
                                  for k, v in r.fields.items()}),
               REASON, f"the database refused the row: {problem}") for r in rows]
    quarantine_rows(conn, kind, source, bad, run_id, now, region)
    return Tally(read=len(rows), quarantined=len(bad), by_reason=Counter(b.reason for b in bad))


def halves(rows: list) -> list[list]:
    """A list batch's two halves, or none for a single row."""
    return [rows[:len(rows) // 2], rows[len(rows) // 2:]] if len(rows) > 1 else []


def row_splitter(kind: str, source: str, now: datetime, region: str) -> tuple[Split, Refuse]:
    """``split`` for :func:`store_batch` over batches that are lists of source rows."""
    def refuse(conn: Connection, rows: list[SourceRow], problem: str, run_id: int) -> Tally:
        return refused(conn, kind, source, rows, problem, run_id, now, region)

    return halves, refuse
