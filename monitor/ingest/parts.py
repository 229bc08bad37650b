"""Reading an XES file in parts, in several processes at once, stored in file order.

One process reading a log of 25 attributes an event reaches about 50,000 events per CPU
second in the fast reader (:mod:`monitor.ingest.xes_scan`), and then maps and validates
them at about 30 µs an event: that process, not the store, bounds an ingestion. Here
the file is cut just before ``<trace`` tags (:func:`~monitor.ingest.xes_scan.trace_ranges`)
and each part is read, mapped, validated and bound by one of ``jobs`` children
(:func:`~monitor.ingest.worker.in_children`); this process stores what they prepared.

Nothing of one stream's guarantees changes:

* Rows come back in file order and are stored in batches of exactly the rows one
  stream's batches hold (parts are cut and joined again, :func:`rebatched`), one
  transaction each: the same events, ids in the same order, quarantine at the same
  lines, and the same rows stored when a run stops half-way — a re-run finishes it
  with the rest and no duplicates (duplicates are found by event id, as ever).
* A part the fast reader is not sure of (anything :mod:`~monitor.ingest.xes_scan`
  leaves to expat, or a cut where ``<trace`` was not a tag) ends the parts: the
  batches before it are kept and the rest is read as one stream, skipping the rows
  already stored — so a malformed log fails with expat's line after the same rows.
* Gzipped files and stdin are read as one stream (a part of a gzip stream cannot be
  decompressed without all before it).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterator
from contextlib import closing

from ..config import Config
from .batch import (EventBatch, cut_event_batch, join_event_batches, pack_event_batch,
                    unpack_event_batch)
from .sources import SourceRow
from .store import batches
from .worker import in_children
from .xes import XesParts
from .xes_scan import Range, Unsure

log = logging.getLogger(__name__)
Prepared = Iterator[tuple[EventBatch, int]]  # batches, with the bytes of the file read


def reading_jobs(config: Config) -> int:
    """How many processes read an XES file's parts: the ``ingest_jobs`` setting, or (0)
    one per CPU this process may use but one, which the storing process needs — on two
    CPUs one reader, as before: there two readers and the writer measured no faster
    (bench/README.md, "Fourth pass")."""
    if config.ingest_jobs:
        return config.ingest_jobs
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (
        os.cpu_count() or 1)
    return max(1, cpus - 1)


def from_parts(parts: XesParts, prepare: Callable[[list[SourceRow]], EventBatch], size: int,
               jobs: int, serial: Callable[[int], Prepared]) -> Prepared:
    """Batches of ``size`` rows of ``parts``, in file order, prepared by ``jobs``
    children; where a part is unsure, ``serial(n)`` prepares the rest after the first
    ``n`` rows (see the module docstring)."""
    def work(part: Range) -> tuple[list[bytes], int, str | None]:
        try:
            return ([pack_event_batch(prepare(batch)) for batch in batches(parts.rows(part), size)],
                    parts.end(part), None)
        except Unsure as exc:
            return [], 0, str(exc)

    given = 0
    results = in_children(parts.ranges, work, jobs, parts.name)
    with closing(results):  # type: ignore[type-var]
        for batch, position in rebatched(_unpacked(results), size):
            if batch is None:  # a part the fast reader was unsure of: the rest, one stream
                log.info("%s: read as one stream from event %d (%s)", parts.name, given + 1,
                         position)
                break
            assert isinstance(position, int)  # a batch comes with the bytes read
            given += batch.read
            yield batch, position
        else:
            return
    yield from serial(given)


def _unpacked(results: Iterator[tuple[list[bytes], int, str | None]]
              ) -> Iterator[tuple[EventBatch | None, int | str]]:
    for packed, position, doubt in results:
        if doubt is not None:
            yield None, doubt
            return
        for data in packed:
            yield unpack_event_batch(data), position


def rebatched(prepared: Iterator[tuple[EventBatch | None, int | str]], size: int
              ) -> Iterator[tuple[EventBatch | None, int | str]]:
    """``prepared`` as batches of ``size`` rows (the last one fewer), cut and joined; a
    ``None`` batch passes at once, and the rows held for the next batch are dropped."""
    held: list[EventBatch] = []
    count = 0
    position: int | str = 0
    for batch, position in prepared:
        if batch is None:
            yield None, position
            return
        while batch.read:
            if count + batch.read < size:
                held.append(batch)
                count += batch.read
                break
            head, batch = cut_event_batch(batch, size - count)
            yield join_event_batches([*held, head]), position
            held, count = [], 0
    if held:
        yield join_event_batches(held), position
