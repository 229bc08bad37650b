"""A batch of event rows prepared for the store (validated and bound), how it crosses a
pipe between processes, and how batches are cut and joined again: rows prepared in parts
by several processes are stored in batches of exactly the rows one stream's batches hold
(:mod:`monitor.ingest.parts`), so that each transaction, and what a failed run leaves
stored, is the same."""

from __future__ import annotations

import marshal
import pickle
from bisect import bisect_left
from collections.abc import Sequence
from typing import Any, NamedTuple

from .sources import SourceRow
from .store import Bad


class EventBatch(NamedTuple):
    """A batch of event rows, validated and bound."""

    read: int
    rows: list[tuple]       # column values of each valid row, as insert_events takes them
    # position in the batch of each valid row; the name hides tuple.index, never used on a batch
    index: list[int]  # type: ignore[assignment]
    fields: Sequence[dict[str, Any]]  # the fields read for each valid row (for a conflict)
    bad: list[tuple[int, Bad]]  # the rows that break the contract, with their position


# A prepared batch crosses the pipe as bytes: marshal, cheaper than pickle to write and to
# read for tuples of text and numbers (~1.4× for the rows of a batch; the pipe is between
# two processes of the same interpreter, which is all marshal's format promises), or
# pickle when a value is not one marshal knows (e.g. the datetimes bound for PostgreSQL).
_MARSHAL, _PICKLE = b"M", b"P"
_SEP = "\x00"


def pack_event_batch(batch: EventBatch) -> bytes:
    """``batch`` as bytes for :func:`unpack_event_batch`.

    The fields of the valid rows are only read back for a conflict, so they travel as one
    text (all values joined by NUL, with the header of each run of rows) instead of a
    dozen objects per row, unless a value is not text or contains NUL itself.
    """
    runs: list[list] = []  # [count, names] for each run of rows with the same header
    values: list[Any] = []
    names: tuple[str, ...] = ()
    for f in batch.fields:
        keys = tuple(f)
        if keys != names or not runs:
            names = keys
            runs.append([0, names])
        runs[-1][0] += 1
        values.extend(f.values())
    fields: Any
    try:
        text = _SEP.join(values)
        fields = (runs, text) if text.count(_SEP) == len(values) - 1 or not values else None
    except TypeError:  # a None (JSON null) among the values
        fields = None
    if fields is None:
        fields = [dict(f) for f in batch.fields]
    bad = [(i, b.row.line, b.row.fields, b.row.problem, b.row.problem_reason, b.reason,
            b.detail) for i, b in batch.bad]
    message = (batch.read, batch.rows, batch.index, fields, bad)
    try:
        return _MARSHAL + marshal.dumps(message)
    except ValueError:  # a value of a type marshal does not write
        return _PICKLE + pickle.dumps(message, pickle.HIGHEST_PROTOCOL)


def unpack_event_batch(data: bytes) -> EventBatch:
    body = memoryview(data)[1:]
    read, rows, index, fields, bad = (marshal.loads(body) if data[:1] == _MARSHAL
                                      else pickle.loads(body))
    return EventBatch(read, rows, index,
                      _JoinedFields(*fields) if isinstance(fields, tuple) else fields,
                      [(i, Bad(SourceRow(line, f, problem, problem_reason), reason, detail))
                       for i, line, f, problem, problem_reason, reason, detail in bad])


class _JoinedFields(Sequence):
    """The fields of a batch's valid rows, split out of their joined text when first read."""

    def __init__(self, runs: list[list], text: str):
        self._runs, self._text = runs, text
        self._rows: list[dict[str, Any]] | None = None

    def __len__(self) -> int:
        return sum(count for count, _ in self._runs)

    def __getitem__(self, k):
        if self._rows is None:
            values, rows, start = self._text.split(_SEP), [], 0
            for count, names in self._runs:
                width = len(names)
                for _ in range(count):
                    rows.append(dict(zip(names, values[start:start + width])))
                    start += width
            self._rows = rows
        return self._rows[k]


def cut_event_batch(batch: EventBatch, n: int) -> tuple[EventBatch, EventBatch]:
    """The first ``n`` rows of ``batch`` (by position) and the others."""
    v = bisect_left(batch.index, n)
    w = bisect_left([i for i, _ in batch.bad], n)
    fields = batch.fields
    return (EventBatch(n, batch.rows[:v], batch.index[:v], _Spliced([(fields, 0, v)]),
                       batch.bad[:w]),
            EventBatch(batch.read - n, batch.rows[v:], [i - n for i in batch.index[v:]],
                       _Spliced([(fields, v, len(batch.rows))]),
                       [(i - n, b) for i, b in batch.bad[w:]]))


def join_event_batches(parts: list[EventBatch]) -> EventBatch:
    """One batch of ``parts``' rows, in order."""
    if len(parts) == 1:
        return parts[0]
    joined = EventBatch(0, [], [], _Spliced([]), [])
    base = 0
    for part in parts:
        joined.rows.extend(part.rows)
        joined.index.extend([i + base for i in part.index] if base else part.index)
        joined.fields.pieces.append((part.fields, 0, len(part.rows)))  # type: ignore[attr-defined]
        joined.bad.extend([(i + base, b) for i, b in part.bad] if base else part.bad)
        base += part.read
    return joined._replace(read=base)


class _Spliced(Sequence):
    """Pieces (sequence, start, stop) of other batches' fields, read as one sequence."""

    def __init__(self, pieces: list[tuple[Sequence, int, int]]):
        self.pieces = pieces

    def __len__(self) -> int:
        return sum(stop - start for _, start, stop in self.pieces)

    def __getitem__(self, k):
        if k < 0:
            k += len(self)
        for seq, start, stop in self.pieces:
            if k < stop - start:
                return seq[start + k]
            k -= stop - start
        raise IndexError(k)
