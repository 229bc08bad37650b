"""Ingestion: catalog, workflow events (CSV, JSON Lines, XES) and fiscal receipts.

Rows that break the contract are quarantined with file, line and reason — never dropped;
see :mod:`monitor.ingest.store` for the accounting and crash-safety guarantees.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import partial
from datetime import datetime

from sqlalchemy import Engine

from ..config import Config
from ..errors import IngestError
from .activity import ACTIVITY_COLUMNS, ingest_activity_rows
from .events import REQUIRED
from .pipeline import RECEIPT_COLUMNS, ingest_event_rows, ingest_receipt_rows
from .sources import FORMATS, Source, SourceRow, csv_rows, jsonl_rows, open_source
from .store import Tally
from .voice import SPECS as VOICE_SPECS, ingest_voice_rows

# Called once per source with (name, size in bytes or None); returns a callback taking
# the raw bytes read so far, or None for no progress display.
ProgressFactory = Callable[[str, int | None], Callable[[int], None] | None]


@dataclass(frozen=True)
class SourceResult:
    source: str
    tally: Tally


def _event_rows(source: Source, config: Config, encoding: str) -> Iterator[SourceRow]:
    if source.format == "csv":
        return csv_rows(source, encoding, REQUIRED)
    if source.format == "jsonl":
        return jsonl_rows(source, encoding)
    if source.format == "xes":
        from .xes import xes_rows

        return xes_rows(source, config.mapping)
    raise IngestError(f"{source.name}: unknown format '{source.format}' "
                      f"(one of {', '.join(FORMATS)})")


def _ingest(kind: str, engine: Engine, config: Config, names: list[str], now: datetime,
            fmt: str | None, encoding: str, progress: ProgressFactory | None
            ) -> Iterator[SourceResult]:
    for name in names:
        with open_source(name, fmt) as source:
            if kind == "events":
                rows, store = _event_rows(source, config, encoding), ingest_event_rows
            elif kind == "activity":
                if source.format != "csv":
                    raise IngestError(f"{source.name}: activity must be CSV "
                                      "(user_id, at, action)")
                rows = csv_rows(source, encoding, ACTIVITY_COLUMNS)
                store = ingest_activity_rows
            elif kind in VOICE_SPECS:
                if source.format not in ("csv", "jsonl"):
                    raise IngestError(f"{source.name}: {kind} must be CSV or JSON Lines "
                                      f"({', '.join(VOICE_SPECS[kind].columns)} …)")
                rows = (csv_rows(source, encoding, VOICE_SPECS[kind].columns)
                        if source.format == "csv" else jsonl_rows(source, encoding))
                store = partial(ingest_voice_rows, kind)
            else:
                if source.format != "csv":
                    raise IngestError(f"{source.name}: receipts must be CSV "
                                      "(department, period, amount)")
                rows, store = csv_rows(source, encoding, RECEIPT_COLUMNS), ingest_receipt_rows
            report = progress(source.name, source.size) if progress else None
            tally = store(engine, source, rows, config=config, now=now, progress=report)
            yield SourceResult(source.name, tally)


def ingest_events(engine: Engine, config: Config, names: list[str], now: datetime, *,
                  fmt: str | None = None, encoding: str = "utf-8-sig",
                  progress: ProgressFactory | None = None) -> Iterator[SourceResult]:
    """Ingest event files (``-`` = stdin), yielding one result per source as it completes.

    Lazy: nothing happens until the results are iterated, so a caller can report each
    file before a later one fails.
    """
    return _ingest("events", engine, config, names, now, fmt, encoding, progress)


def ingest_receipts(engine: Engine, config: Config, names: list[str], now: datetime, *,
                    encoding: str = "utf-8-sig",
                    progress: ProgressFactory | None = None) -> Iterator[SourceResult]:
    """Ingest fiscal receipt CSVs, lazily like :func:`ingest_events`; a department-month
    already stored is replaced."""
    return _ingest("receipts", engine, config, names, now, "csv", encoding, progress)


def ingest_activity(engine: Engine, config: Config, names: list[str], now: datetime, *,
                    encoding: str = "utf-8-sig",
                    progress: ProgressFactory | None = None) -> Iterator[SourceResult]:
    """Ingest monitoring-log CSVs (user_id, at, action), lazily like :func:`ingest_events`."""
    return _ingest("activity", engine, config, names, now, "csv", encoding, progress)


def ingest_voice(kind: str, engine: Engine, config: Config, names: list[str], now: datetime,
                 *, fmt: str | None = None, encoding: str = "utf-8-sig",
                 progress: ProgressFactory | None = None) -> Iterator[SourceResult]:
    """Ingest ratings (好差评) or complaints (投诉) — ``kind`` — from CSV or JSON Lines,
    lazily like :func:`ingest_events`; an id already stored is a duplicate."""
    return _ingest(kind, engine, config, names, now, fmt, encoding, progress)
