"""Ingestion runs: read a source, validate each row, store or quarantine it, in batches.

An event batch is handled in two steps. :func:`prepare_event_batch` validates and binds
the rows without touching the database; :func:`store_event_batch` classifies, inserts and
quarantines them in the run's transaction. On a big enough source with a second CPU the
first step runs in a child process (:mod:`monitor.ingest.worker`); the steps are the same.
"""

from __future__ import annotations

import gc
import re
from collections import Counter
from collections.abc import Callable, Generator, Iterable, Iterator
from contextlib import closing, contextmanager
from datetime import datetime, tzinfo
from functools import partial
from itertools import islice
from typing import Any, NamedTuple, TypeVar

from sqlalchemy import Connection, Engine, func, insert, select, update

from .. import partitions
from ..config import Config
from ..models import Department, Event, Receipt
from ..timeutil import ValueProblem, excel_month, parse_amount
from .batch import EventBatch, pack_event_batch, unpack_event_batch
from .eventregion import (EventRegions, batch_regions, split_cross_region,
                          store_has_other_regions)
from .events import Codes, Rejected, event_values, refuse
from .sources import Source, SourceRow
from .store import (EVENT_ID, REGION, SOURCE_LINE, Bad, Progress, Tally, add_to_run, batches,
                    classify_events, copy_events, finish_run, insert_events,
                    quarantine_rows, start_run, values_binder)
from .resilient import Refuse, Split, refused, row_splitter, store_batch
from .parts import from_parts, reading_jobs
from .worker import can_fork, prepared_in_child
from .xes import XesParts

PERIOD = re.compile(r"^\d{4}-(0[1-9]|1[0-2])$")
# Below about two batches of rows a second process has nothing to overlap; a contract CSV
# row is ~120 bytes, so sources under 2 × batch_size × this many bytes stay in one process.
BYTES_PER_ROW = 100
T = TypeVar("T")
# SQLite page cache of a connection that stores events (KiB): a batch's dirty pages fit
SQLITE_CACHE_KIB = 32768


class StoredBatch(NamedTuple):
    """Positions in the batch of the rows inserted and of the duplicates, and the rows set
    aside (contract breaches and conflicts, in line order)."""

    inserted: list[int]
    duplicates: list[int]
    bad: list[tuple[int, Bad]]


def prepare_event_batch(rows: list[SourceRow], regions: EventRegions, tz: tzinfo,
                        bind: Callable[[tuple, int | None, int, str], tuple],
                        run_id: int | None,
                        amount_format: str = "1,234.56") -> EventBatch:
    """Validate and bind one batch, every row stamped with its county (its ``region``
    field, else the run's: :class:`EventRegions`); no database (this runs in the reading
    process)."""
    batch = EventBatch(len(rows), [], [], [], [])
    county, default, catalog = regions.of, regions.default, regions.catalog
    for i, r in enumerate(rows):
        if r.problem:
            batch.bad.append((i, Bad(r, r.problem_reason, r.problem)))
            continue
        try:
            if r.fields.get("region"):  # else the run's county (the usual case: no call)
                region, catalog = county(r.fields)
            else:
                region, catalog = default, regions.catalog
            values = event_values(r.fields, catalog, tz, amount_format)
        except Rejected as exc:
            batch.bad.append((i, Bad(r, exc.reason, exc.detail)))
            continue
        batch.rows.append(bind(values, run_id, r.line, region))
        batch.index.append(i)
        batch.fields.append(r.fields)  # type: ignore[attr-defined]
    return batch


def store_event_batch(conn: Connection, batch: EventBatch, *, cases: bool = False
                      ) -> StoredBatch:
    """Classify a prepared batch against the store and insert its new events: on
    PostgreSQL ``COPY`` and one merge, elsewhere a lookup and an ``executemany``.
    ``cases``: first set aside the events whose case is another county's
    (:func:`split_cross_region`: a store or run of several counties)."""
    # events partitioned by county: each county of the batch has its partition first
    by_region = partitions.ensure(conn, {row[REGION] for row in batch.rows})
    if cases:
        batch = split_cross_region(conn, batch)
    if conn.dialect.name == "postgresql":
        new, duplicates, conflicts = copy_events(conn, batch.rows, by_region)
    else:
        # a batch dirties a page of the events' indexes for about every row (event ids
        # are digests: random places in their index); with SQLite's default 2 MB of page
        # cache they spilled to the WAL mid-transaction, and were written again at commit
        # (bench/README.md, "Fifth pass"; 32 MB did as well as 64 or 128 there)
        conn.exec_driver_sql(f"PRAGMA cache_size=-{SQLITE_CACHE_KIB}")
        new, duplicates, conflicts = classify_events(conn, batch.rows)
        insert_events(conn, [batch.rows[k] for k in new])
    bad = batch.bad + [(batch.index[k], _conflict(batch, k)) for k in conflicts]
    return StoredBatch([batch.index[k] for k in new], [batch.index[k] for k in duplicates],
                       sorted(bad, key=lambda pair: pair[1].row.line))


def _conflict(batch: EventBatch, k: int) -> Bad:
    row = batch.rows[k]
    return Bad(SourceRow(row[SOURCE_LINE], batch.fields[k]), "conflict",
               f"event_id '{row[EVENT_ID]}' is already stored with different content; "
               "the first version is kept")


def process_event_batch(conn: Connection, rows: list[SourceRow], regions: EventRegions,
                        tz: tzinfo, run_id: int | None, amount_format: str = "1,234.56"
                        ) -> StoredBatch:
    """Validate, classify and store one batch in this process, each row of its county."""
    return store_event_batch(conn, prepare_event_batch(
        rows, regions, tz, values_binder(conn.dialect), run_id, amount_format), cases=True)


@contextmanager
def _cyclic_gc_paused() -> Iterator[None]:
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _run(engine: Engine, kind: str, source: str, now: datetime, progress: Progress | None,
         work: Callable[[int], Iterator[tuple[T, int]]],
         step: Callable[[Connection, T, int], Tally],
         split: tuple[Split, Refuse] | None = None, *, region: str) -> Tally:
    """Drive one run: a transaction per batch that stores rows and advances the counters.

    ``work(run_id)`` yields each batch with the bytes of the source read so far. With
    ``split`` (how to halve a batch, how to quarantine a lone row), a batch the database
    refuses (a value it cannot take) is halved until the row at fault is alone, and that
    row is quarantined (:func:`monitor.ingest.resilient.store_batch`): the good rows of the
    batch are stored all the same. The run is of ``region``.
    """
    run_id = start_run(engine, kind, source, now, region)
    total = Tally()
    try:
        # Rows make no reference cycles; the cyclic collector only costs time here (~7 %).
        with _cyclic_gc_paused(), closing(_generator(work(run_id))) as prepared:
            for batch, position in prepared:
                total += store_batch(engine, run_id, batch, step, split)
                if progress:
                    progress(position)
    except BaseException:
        finish_run(engine, run_id, "failed", now)
        raise
    finish_run(engine, run_id, "done", now)
    return total


def _in_this_process(rows: Iterable[T], source: Source, size: int
                     ) -> Iterator[tuple[list[T], int]]:
    for batch in batches(rows, size):
        yield batch, source.position()


def _second_process_helps(source: Source, config: Config) -> bool:
    """Big (or endless: stdin) sources, when the setting allows and :func:`can_fork`."""
    big = source.size is None or source.size >= 2 * config.batch_size * BYTES_PER_ROW
    return config.parallel_ingest and big and source.forkable and can_fork()


def ingest_event_rows(engine: Engine, source: Source, rows: Iterable[SourceRow], *,
                      config: Config, now: datetime, progress: Progress | None = None,
                      parts: XesParts | None = None) -> Tally:
    """Store event rows read from ``source``; see :mod:`monitor.ingest.store` for the
    guarantees. ``progress`` gets the bytes read after each batch is committed.

    ``parts``: the same rows, readable part by part (an XES file); with ``jobs`` above
    one (:func:`reading_jobs`) they are read, mapped and validated by that many child
    processes at once, and stored here in file order (:mod:`monitor.ingest.parts`)."""
    with engine.connect() as conn:
        regions = EventRegions.load(conn, config.region, config.regions)
        # a case belongs to one county: checked once the store or the run holds two
        mixed = [store_has_other_regions(conn, config.region)]
    bind = values_binder(engine.dialect)

    def work(run_id: int) -> Iterator[tuple[EventBatch, int]]:
        prepare = partial(prepare_event_batch, regions=regions, tz=config.tz, bind=bind,
                          run_id=run_id, amount_format=config.limits.amount_format)

        def serial(skip: int) -> Iterator[tuple[EventBatch, int]]:
            rest = islice(rows, skip, None)
            if _second_process_helps(source, config):
                packed = prepared_in_child(rest, lambda batch: pack_event_batch(prepare(batch)),
                                           config.batch_size, source.position, source.name)
                return _unpacked(packed)
            return ((prepare(batch), position)
                    for batch, position in _in_this_process(rest, source, config.batch_size))

        jobs = reading_jobs(config)
        if parts is not None and jobs > 1 and config.parallel_ingest and can_fork():
            return from_parts(parts, prepare, config.batch_size, jobs, serial)
        return serial(0)

    def step(conn: Connection, batch: EventBatch, run_id: int) -> Tally:
        if not mixed[0] and batch_regions(batch) - {config.region}:
            mixed[0] = True
        stored = store_event_batch(conn, batch, cases=mixed[0])
        bad = [b for _, b in stored.bad]
        quarantine_rows(conn, "events", source.name, bad, run_id, now, config.region)
        return Tally(read=batch.read, inserted=len(stored.inserted),
                     duplicates=len(stored.duplicates), quarantined=len(bad),
                     by_reason=_reasons(bad))

    def refuse(conn: Connection, batch: EventBatch, problem: str, run_id: int) -> Tally:
        return refused(conn, "events", source.name, _batch_rows(batch), problem, run_id, now,
                       config.region)

    return _run(engine, "events", source.name, now, progress, work, step,
                (split_event_batch, refuse), region=config.region)


def _batch_rows(batch: EventBatch) -> list[SourceRow]:
    """The source rows of a batch (for a quarantine): its valid ones and its bad ones."""
    return [SourceRow(row[SOURCE_LINE], dict(batch.fields[k]))
            for k, row in enumerate(batch.rows)] + [b.row for _, b in batch.bad]


def split_event_batch(batch: EventBatch) -> list[EventBatch]:
    """Two halves of ``batch`` (the rows to set aside go with the first), or none when it
    holds a single row."""
    n, bad = len(batch.rows), batch.bad
    if n + len(bad) <= 1:
        return []
    if n == 0:
        half = len(bad) // 2
        return [_part(batch, [], bad[:half]), _part(batch, [], bad[half:])]
    if n == 1:
        return [_part(batch, [], bad), _part(batch, [0], [])]
    half = n // 2
    return [_part(batch, list(range(half)), bad), _part(batch, list(range(half, n)), [])]


def _part(batch: EventBatch, ks: list[int], bad: list[tuple[int, Bad]]) -> EventBatch:
    return EventBatch(len(ks) + len(bad), [batch.rows[k] for k in ks],
                      [batch.index[k] for k in ks], [batch.fields[k] for k in ks], bad)


def _generator(it: Iterator[T]) -> Generator[T]:
    """``it``, which a generator function made (so it has close()), typed as one."""
    assert isinstance(it, Generator)
    return it


def _unpacked(packed: Iterator[tuple[bytes, int]]) -> Iterator[tuple[EventBatch, int]]:
    with closing(_generator(packed)):  # closing this generator ends the child too
        for data, position in packed:
            yield unpack_event_batch(data), position


def _reasons(bad: list[Bad]) -> Counter:
    return Counter(b.reason for b in bad)


RECEIPT_COLUMNS = ("department", "period", "amount")


def normalize_receipt(fields: dict[str, Any], departments: frozenset[str],
                      amount_format: str = "1,234.56") -> dict[str, Any]:
    values = {k: (fields.get(k) or "").strip() for k in RECEIPT_COLUMNS}
    missing = [k for k, v in values.items() if not v]
    if missing:
        raise Rejected("missing_field", f"missing required field {', '.join(missing)}")
    if values["department"] not in departments:
        raise refuse(departments, "部门", values["department"], "unknown_department",
                     f"department '{values['department']}' is not in the catalog")
    values["period"] = excel_month(values["period"])
    if not PERIOD.match(values["period"]):
        raise Rejected("bad_period", f"period must be YYYY-MM, got '{values['period']}'")
    try:
        amount = parse_amount(values["amount"], amount_format)
    except ValueProblem as exc:
        raise Rejected("bad_amount", f"amount: {exc}") from None
    return {"department": values["department"], "period": values["period"], "amount": amount}


def process_receipt_batch(conn: Connection, rows: list[SourceRow], departments: frozenset[str],
                          seen: dict[tuple[str, str], tuple[int, Any]], run_id: int | None,
                          amount_format: str = "1,234.56", *, region: str
                          ) -> tuple[Tally, list[SourceRow], list[Bad]]:
    """Upsert receipts by department-month of ``region`` (each county its own rows under
    the same department codes, migration 0033); returns the tally, rows stored, rows to
    set aside.

    ``seen`` spans the whole source: a department-month given twice in one file with
    different amounts is a conflict, not a silent overwrite.
    """
    tally = Tally(read=len(rows))
    bad: list[Bad] = []
    fresh: dict[tuple[str, str], tuple[SourceRow, dict]] = {}
    for r in rows:
        try:
            if r.problem:
                raise Rejected(r.problem_reason, r.problem)
            rec = normalize_receipt(r.fields, departments, amount_format)
        except Rejected as exc:
            bad.append(Bad(r, exc.reason, exc.detail))
            continue
        key = (rec["department"], rec["period"])
        if key in seen:
            first_line, first_amount = seen[key]
            if first_amount == rec["amount"]:
                tally.duplicates += 1
            else:
                bad.append(Bad(r, "conflict",
                               f"{key[0]} {key[1]} already given at line {first_line} "
                               f"with amount {first_amount}"))
            continue
        seen[key] = (r.line, rec["amount"])
        fresh[key] = (r, rec)
    stored = {(d, p): a for d, p, a in conn.execute(  # the county's own rows (0033)
        select(Receipt.department, Receipt.period, Receipt.amount)
        .where(Receipt.region == region, Receipt.department.in_({k[0] for k in fresh})))
        .all() if (d, p) in fresh}
    # read in the writing statement itself, so it is at least any rule run's watermark
    # that could not see this write
    mark = select(func.coalesce(func.max(Event.id), 0)).scalar_subquery()
    for key, (_, rec) in fresh.items():
        if key not in stored:
            conn.execute(insert(Receipt).values(**rec, run_id=run_id, event_mark=mark,
                                                region=region))
            tally.inserted += 1
        elif stored[key] != rec["amount"]:
            conn.execute(update(Receipt).where(Receipt.region == region,
                                               Receipt.department == key[0],
                                               Receipt.period == key[1])
                         .values(amount=rec["amount"], run_id=run_id, event_mark=mark))
            tally.replaced += 1
        else:
            tally.duplicates += 1
    tally.quarantined = len(bad)
    tally.by_reason = _reasons(bad)
    return tally, [r for r, _ in fresh.values()], bad


def ingest_receipt_rows(engine: Engine, source: Source, rows: Iterable[SourceRow], *,
                        config: Config, now: datetime, progress: Progress | None = None
                        ) -> Tally:
    """Store fiscal receipts; re-ingesting a department-month replaces its amount."""
    with engine.connect() as conn:
        departments = Codes.load(conn, Department.code, config.region)
    seen: dict[tuple[str, str], tuple[int, Any]] = {}

    def step(conn: Connection, batch: list[SourceRow], run_id: int) -> Tally:
        before = dict(seen)
        try:
            tally, _, bad = process_receipt_batch(conn, batch, departments, seen, run_id,
                                                  config.limits.amount_format,
                                                  region=config.region)
            quarantine_rows(conn, "receipts", source.name, bad, run_id, now, config.region)
        except BaseException:  # rolled back: the batch's rows were not seen after all
            seen.clear()
            seen.update(before)
            raise
        return tally

    return _run(engine, "receipts", source.name, now, progress,
                lambda _: _in_this_process(rows, source, config.batch_size), step,
                row_splitter("receipts", source.name, now, config.region), region=config.region)
