"""``ingest pull``: events read straight from a workflow system's own database.

A source (``sources:`` in config.yaml) gives a SQLAlchemy URL (through an environment
variable, ``url_env``, so a password never sits in a file), a ``query`` whose columns are
the input contract's (event_id, case_id, item_code, step, occurred_at, …) plus a
``watermark`` column that grows with every new row (an id or a change sequence). A pull
wraps the query as ``SELECT * FROM (query) WHERE watermark > :last ORDER BY watermark``,
with the last value bound as a parameter, streams the rows through the same validation
and quarantine as a file, and stores the new watermark only after they are stored. A pull
killed half-way is redone from the old watermark; rows already stored come back as
duplicates.
"""

from __future__ import annotations

import io
import re
from collections.abc import Callable, Iterator
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Engine, create_engine, select, text, update
from sqlalchemy.exc import ArgumentError, NoSuchModuleError

from .config import Config
from .db import safe_url
from .masking import register_url
from .errors import ConfigError, IngestError, MonitorError
from .ingest.pipeline import ingest_event_rows
from .ingest.validate import guarded
from .ingest.sources import Source, SourceRow
from .ingest.store import Tally
from .models import SourceWatermark

IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def _encode(value: Any) -> str:
    """A watermark value as text that keeps its type: i:42, t:2025-01-01T00:00:00, s:abc."""
    if isinstance(value, bool) or value is None:
        raise IngestError(f"watermark value {value!r} is not a number, time or text")
    if isinstance(value, int):
        return f"i:{value}"
    if isinstance(value, datetime):
        return f"t:{value.isoformat()}"
    if isinstance(value, date):
        return f"d:{value.isoformat()}"
    if isinstance(value, Decimal):
        return f"n:{value}"
    return f"s:{value}"


def _decode(stored: str) -> Any:
    kind, _, value = stored.partition(":")
    decoders: dict[str, Callable[[str], Any]] = {
        "i": int, "t": datetime.fromisoformat, "d": date.fromisoformat, "n": Decimal}
    return decoders.get(kind, str)(value)


def _text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.isoformat(sep=" ")
    return str(value)


def _rows(result, watermark: str, seen: list) -> Iterator[SourceRow]:
    for n, row in enumerate(result.mappings(), start=1):
        fields = {k: _text(v) for k, v in row.items() if k != watermark}
        seen[0] = row[watermark]
        yield SourceRow(line=n, fields=fields)


def stored_watermark(engine: Engine, name: str) -> Any:
    with engine.connect() as conn:
        value = conn.scalar(select(SourceWatermark.value).where(SourceWatermark.source == name))
    return None if value is None else _decode(value)


def _save(engine: Engine, name: str, value: Any, now: datetime) -> None:
    encoded = _encode(value)
    with engine.begin() as conn:
        if conn.execute(update(SourceWatermark).where(SourceWatermark.source == name)
                        .values(value=encoded, updated_at=now)).rowcount == 0:
            conn.execute(SourceWatermark.__table__.insert().values(
                source=name, value=encoded, updated_at=now))


def _source_engine(name: str, url: str) -> Engine:
    """An engine on the source database, which is only read (no settings changed)."""
    register_url(url)
    try:
        return create_engine(url)
    except (ArgumentError, NoSuchModuleError, ImportError) as exc:
        raise IngestError(f"source '{name}': cannot use database URL {safe_url(url)}: "
                          f"{str(exc).splitlines()[0]}") from None


def pull(engine: Engine, config: Config, name: str, now: datetime) -> Tally:
    """Fetch and store the rows of source ``name`` past its watermark."""
    spec = config.sources.get(name)
    if spec is None:
        known = ", ".join(config.sources) or "none configured"
        raise ConfigError(str(config.path or "config.yaml"), None,
                          f"no source named '{name}' (sources: {known})")
    if not IDENTIFIER.match(spec.watermark):
        raise ConfigError(str(config.path), None, f"source '{name}': watermark must be a "
                          f"column name, got '{spec.watermark}'")
    url = spec.resolved_url()
    last = stored_watermark(engine, name)
    if last is None and spec.start is not None:
        last = spec.start
    query = f"SELECT * FROM ({spec.query.strip().rstrip(';')}) AS pulled"
    if last is not None:
        query += f" WHERE pulled.{spec.watermark} > :last"
    query += f" ORDER BY pulled.{spec.watermark}"
    source_engine = _source_engine(name, url)
    seen: list = [None]
    try:
        with source_engine.connect() as conn:
            result = conn.execution_options(stream_results=True, yield_per=1000).execute(
                text(query), {"last": last} if last is not None else {})
            if spec.watermark not in result.keys():
                raise ConfigError(str(config.path), None, f"source '{name}': the query "
                                  f"returns no column '{spec.watermark}' (the watermark)")
            source = Source(f"pull:{name}", None, io.BytesIO(), io.BytesIO(), "pull",
                            forkable=False)
            rows = guarded(_rows(result, spec.watermark, seen), config.limits, source.name)
            tally = ingest_event_rows(engine, source, rows, config=config, now=now)
    except MonitorError:
        raise
    except Exception as exc:  # the source database refused: one line, not a traceback
        from sqlalchemy.exc import DBAPIError

        if not isinstance(exc, DBAPIError):
            raise
        reason = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
        raise IngestError(f"source '{name}' ({safe_url(url)}): {reason}") from None
    finally:
        source_engine.dispose()
    if seen[0] is not None:
        _save(engine, name, seen[0], now)
    return tally
