"""Ingestion: catalog, workflow events (CSV, JSON Lines, Excel, XES), fiscal receipts and
the monitoring log (CSV, Excel).

Rows that break the contract are quarantined with file, line and reason — never dropped;
see :mod:`monitor.ingest.store` for the accounting and crash-safety guarantees.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import partial
from datetime import datetime, timezone
from pathlib import Path
from types import MappingProxyType

from sqlalchemy import Engine

from ..config import DEFAULT_CONFIG_NAME, Config
from ..config.mappings import EventMapping, load_mapping_file
from ..errors import ConfigError, IngestError, did_you_mean
from .activity import ACTIVITY_COLUMNS, ingest_activity_rows
from .events import REQUIRED
from .mapping import mapped_rows
from .pipeline import RECEIPT_COLUMNS, ingest_event_rows, ingest_receipt_rows
from .sources import FORMATS, Source, SourceRow, csv_rows, jsonl_rows, open_source
from .store import Tally
from .validate import guarded
from .voice import SPECS as VOICE_SPECS, ingest_voice_rows
from .xlsx import xlsx_rows

# A part of an XES file read by one process holds about this many bytes per row of a
# batch: at 25 attributes an event (~1.4 kB) a part of about a batch's rows.
PART_BYTES_PER_ROW = 1024
UTC = timezone.utc

# Called once per source with (name, size in bytes or None); returns a callback taking
# the raw bytes read so far, or None for no progress display.
ProgressFactory = Callable[[str, int | None], Callable[[int], None] | None]


@dataclass(frozen=True)
class SourceResult:
    source: str
    tally: Tally


def _event_rows(source: Source, config: Config,
                mapping: EventMapping | None = None) -> Iterator[SourceRow]:
    if mapping is not None:
        return _mapped_rows(source, config, mapping)
    if source.format == "csv":
        return csv_rows(source, REQUIRED)
    if source.format == "jsonl":
        return jsonl_rows(source, config.limits.max_json_depth)
    if source.format == "xlsx":
        return xlsx_rows(source, REQUIRED)
    if source.format == "xes":
        from .xes import xes_rows

        return xes_rows(source, config.mapping)
    raise IngestError(f"{source.name}: unknown format '{source.format}' "
                      f"(one of {', '.join(FORMATS)})")


def _mapped_rows(source: Source, config: Config, mapping: EventMapping
                 ) -> Iterator[SourceRow]:
    """A source read through a declarative mapping (any format). Table headers are read
    case- and space-insensitively, so the mapping's column names are compared the same
    way."""
    if source.format == "xes":
        from .xes import xes_rows

        return xes_rows(source, mapping, config.tz)
    readers: dict[str, Callable[[Source], Iterator[SourceRow]]] = {
        "csv": csv_rows, "jsonl": partial(jsonl_rows, max_depth=config.limits.max_json_depth),
        "xlsx": xlsx_rows}
    if source.format not in readers:
        raise IngestError(f"{source.name}: unknown format '{source.format}' "
                          f"(one of {', '.join(FORMATS)})")
    folded = dataclasses.replace(mapping, fields=MappingProxyType(
        {k: v.strip().lower() for k, v in mapping.fields.items()}))
    return mapped_rows(folded, readers[source.format](source), config.tz, source.name,
                       check=source.format != "jsonl")


def _xes_parts(source: Source, config: Config, mapping: EventMapping | None):
    """An uncompressed XES file, cut into parts that several processes can read (None:
    another format, or a file read as one stream); the parts' rows are guarded as
    :func:`_ingest` guards the whole file's."""
    if source.format != "xes":
        return None
    from .xes import xes_parts

    guard = partial(guarded, limits=config.limits, source=source.name,
                    encoding=source.encoding)
    return xes_parts(source, mapping or config.mapping, config.tz if mapping else UTC,
                     config.batch_size * PART_BYTES_PER_ROW, guard)


def resolve_mapping(config: Config, name: str) -> EventMapping:
    """``--mapping NAME``: an entry of config.yaml's ``mappings``, or a YAML file of one."""
    if name in config.mappings:
        return config.mappings[name]
    path = Path(name)
    if path.suffix in (".yaml", ".yml") and path.is_file():
        return load_mapping_file(path)
    known = sorted(config.mappings)
    raise ConfigError(str(config.path or DEFAULT_CONFIG_NAME), None,
                      f"no mapping '{name}' under 'mappings:'{did_you_mean(name, known)} "
                      f"(mappings: {', '.join(known) or 'none'}; or give a mapping .yaml file)")


def _table_rows(source: Source, what: str, columns: tuple[str, ...], jsonl: bool = False
                ) -> Iterator[SourceRow]:
    """Rows of a file of ``what`` (receipts, activity, ratings…): CSV or Excel, and JSON
    Lines where ``jsonl``."""
    if source.format == "xlsx":
        return xlsx_rows(source, columns)
    if jsonl and source.format == "jsonl":
        return jsonl_rows(source)
    if source.format != "csv":
        formats = "CSV, JSON Lines or Excel (.xlsx)" if jsonl else "CSV or Excel (.xlsx)"
        raise IngestError(f"{source.name}: {what} must be {formats} ({', '.join(columns)})")
    return csv_rows(source, columns)


def _ingest(kind: str, engine: Engine, config: Config, names: list[str], now: datetime,
            fmt: str | None, encoding: str | None, progress: ProgressFactory | None,
            mapping: EventMapping | None = None) -> Iterator[SourceResult]:
    if mapping is not None:
        fmt = fmt or mapping.format
        encoding = encoding or mapping.encoding
    for name in names:
        with open_source(name, fmt, encoding or config.encoding) as source:
            store: Callable[..., Tally]
            if kind == "events":
                rows = _event_rows(source, config, mapping)
                store = partial(ingest_event_rows, parts=_xes_parts(source, config, mapping))
            elif kind == "activity":
                rows = _table_rows(source, "activity", ACTIVITY_COLUMNS)
                store = ingest_activity_rows
            elif kind in VOICE_SPECS:
                rows = _table_rows(source, kind, VOICE_SPECS[kind].columns, jsonl=True)
                store = partial(ingest_voice_rows, kind)
            else:
                rows = _table_rows(source, "receipts", RECEIPT_COLUMNS)
                store = ingest_receipt_rows
            report = progress(source.name, source.size) if progress else None
            rows = guarded(rows, config.limits, source.name, source.encoding)
            tally = store(engine, source, rows, config=config, now=now, progress=report)
            yield SourceResult(source.name, tally)


def ingest_events(engine: Engine, config: Config, names: list[str], now: datetime, *,
                  fmt: str | None = None, encoding: str | None = None,
                  progress: ProgressFactory | None = None,
                  mapping: str | None = None) -> Iterator[SourceResult]:
    """Ingest event files (``-`` = stdin), yielding one result per source as it completes.

    Lazy: nothing happens until the results are iterated, so a caller can report each
    file before a later one fails. ``encoding`` (a checked name, or ``auto``) defaults to
    the mapping's, else the configured one; a CSV or JSON Lines file that does not decode
    is refused whole. ``mapping``: the name of a declarative mapping (config.yaml's
    ``mappings``) or a YAML file of one; the files' own columns are then read through it.
    """
    spec = resolve_mapping(config, mapping) if mapping else None
    return _ingest("events", engine, config, names, now, fmt, encoding, progress, spec)


def ingest_receipts(engine: Engine, config: Config, names: list[str], now: datetime, *,
                    encoding: str | None = None,
                    progress: ProgressFactory | None = None) -> Iterator[SourceResult]:
    """Ingest fiscal receipts (CSV or Excel), lazily like :func:`ingest_events`; a
    department-month already stored is replaced."""
    return _ingest("receipts", engine, config, names, now, None, encoding, progress)


def ingest_activity(engine: Engine, config: Config, names: list[str], now: datetime, *,
                    encoding: str | None = None,
                    progress: ProgressFactory | None = None) -> Iterator[SourceResult]:
    """Ingest monitoring logs (CSV or Excel: user_id, at, action), lazily like
    :func:`ingest_events`."""
    return _ingest("activity", engine, config, names, now, None, encoding, progress)


def ingest_voice(kind: str, engine: Engine, config: Config, names: list[str], now: datetime,
                 *, fmt: str | None = None, encoding: str | None = None,
                 progress: ProgressFactory | None = None) -> Iterator[SourceResult]:
    """Ingest ratings (好差评) or complaints (投诉) — ``kind`` — from CSV, JSON Lines or
    Excel, lazily like :func:`ingest_events`; an id already stored is a duplicate."""
    return _ingest(kind, engine, config, names, now, fmt, encoding, progress)
