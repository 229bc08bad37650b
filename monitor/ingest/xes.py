"""IEEE XES event logs (process mining), streamed into the event contract.

The file is parsed with :mod:`xml.parsers.expat` in fixed-size chunks, so memory stays
flat whatever the size of the log; each ``<event>`` becomes one :class:`SourceRow`
carrying the line of its start tag, so quarantine reports point at ``file:line``.

Only the direct attribute children of ``<trace>`` and ``<event>`` count. Nested
attributes, log-level attributes, ``<global>``, ``<classifier>`` and ``<extension>`` are
ignored. A mapping value ``case:KEY`` names the trace attribute KEY, any other value an
event attribute (see ``MAPPING_SETTINGS`` in :mod:`monitor.config` and ``docs/xes.md``).
"""

from __future__ import annotations

import gzip
from collections.abc import Callable, Iterator
from itertools import islice
from pathlib import Path
from datetime import timezone, tzinfo
from types import MappingProxyType
from xml.parsers import expat

from ..config import XesMapping
from ..config.mappings import EventMapping
from ..errors import IngestError
from .mapping import (LIFECYCLE_KEY, ORDINAL, SKIPPED_LIFECYCLE, TRACE_PREFIX,
                      derived_event_id, mapped_rows)
from .sources import Source, SourceRow
from .xes_scan import Range, Unsure, scan_batches, scan_range, trace_ranges

UTC = timezone.utc

CHUNK = 1 << 16
# Value-carrying attribute elements of XES 1.0/2.0 (list and container hold no value).
VALUE_TAGS = frozenset({"string", "date", "int", "float", "boolean", "id"})
# Contract fields taken from XES attributes, with the mapping setting naming each.
ATTRIBUTE_FIELDS = ("event_id", "case_id", "step", "actor", "occurred_at")
__all__ = ["SKIPPED_LIFECYCLE", "derived_event_id", "legacy_mapping", "xes_records", "xes_rows"]


class _NotXes(Exception):
    """The document is XML but not an XES log; the message says why."""


class _Reader:
    """Expat callbacks that turn traces and events into records, trace by trace: an
    event's own attributes, its trace's as ``case:KEY``, and its position in the trace.

    Speed: 25 of every 27 elements of a typical log are attribute elements, so
    :meth:`handlers` gives expat closures over local state (no attribute lookups on
    ``self``), the parser hands attributes over as a flat list (``ordered_attributes``:
    no dict per element) and an attribute of an event is stored only if the mapping
    reads it (``event_keys``; None: all of them)."""

    def __init__(self, parser: expat.XMLParserType, trace_keys: frozenset[str],
                 event_keys: frozenset[str] | None = None):
        self.parser, self.trace_keys, self.event_keys = parser, trace_keys, event_keys
        self.ready: list[tuple[int, dict]] = []  # records to hand out after the chunk

    def handlers(self):
        """(start, end) element handlers for ``parser.ordered_attributes = True``."""
        parser, trace_keys, wanted = self.parser, self.trace_keys, self.event_keys
        ready = self.ready
        stack: list[str] = []         # kind of each open element
        trace: dict[str, str] = {}    # direct attributes of the current trace
        event: dict[str, str] = {}    # direct attributes of the current event
        held: list[tuple[int, int, dict]] = []  # events awaiting their trace's attributes
        place = [0, 0]                # [line of the current event's tag, its ordinal]
        push, pop, values = stack.append, stack.pop, VALUE_TAGS

        def start(name: str, attrs: list[str]) -> None:
            nonlocal trace, event
            if stack and name in values:  # the hot path: an attribute, unprefixed
                owner = stack[-1]
                if owner == "event" or owner == "trace":
                    if attrs and attrs[0] == "key":
                        key: str | None = attrs[1]
                        value = (attrs[3] if len(attrs) > 3 and attrs[2] == "value"
                                 else _value(attrs))
                    else:
                        key, value = _key(attrs), _value(attrs)
                    if key is not None:
                        if owner == "trace":
                            trace.setdefault(key, value)
                        elif (wanted is None or key in wanted) and key not in event:
                            event[key] = value
                        push("attr")
                        return
            tag = name.rpartition(":")[2]
            parent = stack[-1] if stack else None
            if parent is None:
                if tag != "log":
                    raise _NotXes(f"root element is <{tag}>, expected <log>")
                kind = "log"
            elif parent == "log" and tag == "trace":
                kind, trace, place[1] = "trace", {}, 0
                held.clear()
            elif parent in ("trace", "log") and tag == "event":
                kind, event = "event", {}
                place[0] = parser.CurrentLineNumber
                if parent == "log":  # not XES, but never drop a row: it lands without a case
                    trace, place[1] = {}, 0
            elif parent in ("trace", "event") and tag in values \
                    and (named := _key(attrs)) is not None:
                kind = "attr"
                if parent == "trace":
                    trace.setdefault(named, _value(attrs))
                elif wanted is None or named in wanted:
                    event.setdefault(named, _value(attrs))
            else:
                kind = "other"
            push(kind)

        def flush() -> None:
            """Emit held events; standard XES puts trace attributes first, so at once."""
            given = {TRACE_PREFIX + k: trace[k] for k in trace_keys if k in trace}
            for line, ordinal, attributes in held:
                attributes.update(given)
                attributes[ORDINAL] = ordinal
                ready.append((line, attributes))
            held.clear()

        def end(name: str) -> None:
            kind = pop()
            if kind == "attr":
                return
            if kind == "event":
                held.append((place[0], place[1], event))
                place[1] += 1
                if trace_keys <= trace.keys() or stack[-1] == "log":
                    flush()
            elif kind == "trace":
                flush()

        return start, end

    @staticmethod
    def entity(name: str, *_: object) -> None:
        # XES never declares entities; refusing them rules out entity-expansion bombs.
        raise _NotXes(f"it declares the XML entity '{name}'")


def _key(attrs: list[str]) -> str | None:
    """The ``key`` attribute in expat's flat ``[name, value, …]`` list (None: none)."""
    for i in range(0, len(attrs), 2):
        if attrs[i] == "key":
            return attrs[i + 1]
    return None


def _value(attrs: list[str]) -> str:
    """The ``value`` attribute in expat's flat list ('' when there is none)."""
    for i in range(0, len(attrs), 2):
        if attrs[i] == "value":
            return attrs[i + 1]
    return ""


def legacy_mapping(m: XesMapping) -> EventMapping:
    """The ``mapping:`` section of config.yaml (XES only) as a declarative mapping."""
    fields = {f: getattr(m, f) for f in ATTRIBUTE_FIELDS if getattr(m, f)}
    constants = {"item_code": m.item_code or ""}
    if m.department:
        constants["department"] = m.department
    return EventMapping(name="mapping", where="config.yaml", format="xes",
                        fields=MappingProxyType(fields), constants=MappingProxyType(constants),
                        steps=m.steps, lifecycle=tuple(v.strip().lower() for v in m.lifecycle))


def xes_records(source: Source, trace_keys: frozenset[str] = frozenset(),
                event_keys: frozenset[str] | None = None) -> Iterator[tuple[int, dict]]:
    """``(line, attributes)`` per ``<event>`` of an XES log, in file order: the event's own
    attributes (only ``event_keys``, if given) and, as ``case:KEY``, the ``trace_keys``
    of its trace (the trace attributes a mapping reads; held for should a trace state
    them after its events)."""
    return _records(source, trace_keys, event_keys)


def xes_rows(source: Source, mapping: XesMapping | EventMapping, tz: tzinfo = UTC
             ) -> Iterator[SourceRow]:
    """One row of contract fields per ``<event>`` of an XES log, in file order, with the
    line of its start tag.

    Raises :class:`IngestError` at once when the (legacy) ``mapping.item_code`` is unset,
    and while reading when the document is not well-formed XES.
    """
    mapping, trace_keys, event_keys = _read_by(source, mapping)
    return mapped_rows(mapping, xes_records(source, trace_keys, event_keys), tz, source.name,
                       check=False)


def _read_by(source: Source, mapping: XesMapping | EventMapping
             ) -> tuple[EventMapping, frozenset[str], frozenset[str]]:
    """The mapping (a legacy one converted), and the trace and event attributes it reads."""
    if isinstance(mapping, XesMapping):
        if not mapping.item_code:
            raise IngestError(f"{source.name}: XES events need a catalog item: set "
                              "'mapping: item_code:' in config.yaml (e.g. item_code: "
                              "WABO-RECEIPT)")
        mapping = legacy_mapping(mapping)
    trace_keys = frozenset(v[len(TRACE_PREFIX):] for v in mapping.fields.values()
                           if v.startswith(TRACE_PREFIX))
    # the event attributes the mapping reads (and the lifecycle it filters on): no other
    # is kept, so a log of 25 attributes an event costs a dict of five
    event_keys = frozenset({LIFECYCLE_KEY, *(v for v in mapping.fields.values()
                                             if not v.startswith(TRACE_PREFIX))})
    return mapping, trace_keys, event_keys


class XesParts:
    """An XES file read in parts (:func:`monitor.ingest.xes_scan.trace_ranges`), each by
    whichever process calls :meth:`rows`; the rows of the parts, in order, are those of
    :func:`xes_rows` with ``guard`` applied, unless a part raises ``Unsure``."""

    def __init__(self, name: str, size: int, mapping: EventMapping, tz: tzinfo,
                 keys: tuple[frozenset[str], frozenset[str]], ranges: list[Range],
                 guard: Callable[[Iterator[SourceRow]], Iterator[SourceRow]]):
        self.name, self.size, self.mapping, self.tz = name, size, mapping, tz
        self.keys, self.ranges, self.guard = keys, ranges, guard

    def rows(self, part: Range) -> Iterator[SourceRow]:
        """The rows of ``part``, read from a file of its own (this may run in any process);
        raises ``Unsure`` where the fast path would."""
        with open(self.name, "rb") as stream:
            records = (r for batch in scan_range(stream, part, *self.keys) for r in batch)
            yield from self.guard(mapped_rows(self.mapping, records, self.tz, self.name,
                                              check=False))

    def end(self, part: Range) -> int:
        """The bytes of the file read once ``part`` is (for progress)."""
        return self.size if part.end is None else part.end


def xes_parts(source: Source, mapping: XesMapping | EventMapping, tz: tzinfo, size: int,
              guard: Callable[[Iterator[SourceRow]], Iterator[SourceRow]]
              ) -> XesParts | None:
    """``source`` cut into parts of about ``size`` bytes for several processes to read,
    or None where it must be read as one stream: stdin, a gzipped file (a part cannot be
    decompressed without all before it), a log under two parts."""
    if source.name == "<stdin>" or source.stream is not source.raw or source.size is None \
            or source.size < 2 * size or not Path(source.name).is_file():
        return None
    mapping, trace_keys, event_keys = _read_by(source, mapping)
    ranges = trace_ranges(source.stream, size)
    if len(ranges) < 2:
        return None
    return XesParts(source.name, source.size, mapping, tz, (trace_keys, event_keys), ranges,
                    guard)


def _records(source: Source, trace_keys: frozenset[str],
             event_keys: frozenset[str] | None) -> Iterator[tuple[int, dict]]:
    """The fast path (:mod:`monitor.ingest.xes_scan`) when the mapping names the keys it
    reads and the stream can be read again; where that path is unsure, expat from the
    start, skipping the records the fast path already gave (the same ones)."""
    given = 0
    if event_keys is not None and source.stream.seekable():
        try:
            for batch in scan_batches(source.stream, trace_keys, event_keys):
                yield from batch
                given += len(batch)
            return
        except (Unsure, EOFError, gzip.BadGzipFile, OSError):
            source.stream.seek(0)  # expat says what is wrong, at which line
    yield from islice(_expat_records(source, trace_keys, event_keys), given, None)


def _expat_records(source: Source, trace_keys: frozenset[str],
                   event_keys: frozenset[str] | None) -> Iterator[tuple[int, dict]]:
    parser = expat.ParserCreate()
    parser.ordered_attributes = True
    reader = _Reader(parser, trace_keys, event_keys)
    parser.StartElementHandler, parser.EndElementHandler = reader.handlers()
    parser.EntityDeclHandler = reader.entity
    ready = reader.ready
    try:
        while True:
            chunk = source.stream.read(CHUNK)
            parser.Parse(chunk, not chunk)
            yield from ready
            ready.clear()
            if not chunk:
                return
    except expat.ExpatError as exc:
        raise IngestError(f"{source.name}: not well-formed XES at line {exc.lineno}: "
                          f"{expat.ErrorString(exc.code)}") from None
    except _NotXes as exc:
        raise IngestError(f"{source.name}: not an XES log ({exc})") from None
    except (EOFError, gzip.BadGzipFile, OSError) as exc:
        raise IngestError(f"{source.name}: cannot read ({exc})") from None
