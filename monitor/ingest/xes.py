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
from collections.abc import Iterator
from datetime import timezone, tzinfo
from types import MappingProxyType
from xml.parsers import expat

from ..config import XesMapping
from ..config.mappings import EventMapping
from ..errors import IngestError
from .mapping import (ORDINAL, SKIPPED_LIFECYCLE, TRACE_PREFIX, derived_event_id,
                      mapped_rows)
from .sources import Source, SourceRow

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
    event's own attributes, its trace's as ``case:KEY``, and its position in the trace."""

    def __init__(self, parser: expat.XMLParserType, trace_keys: frozenset[str]):
        self.parser, self.trace_keys = parser, trace_keys
        self.stack: list[str] = []        # kind of each open element
        self.trace: dict[str, str] = {}   # direct attributes of the current trace
        self.event: dict = {}             # direct attributes of the current event
        self.event_line = 0
        self.ordinal = 0                  # position of the event within its trace
        self.held: list[tuple[int, int, dict]] = []  # events awaiting trace attrs
        self.ready: list[tuple[int, dict]] = []  # records to hand out after the chunk

    def start(self, name: str, attrs: dict[str, str]) -> None:
        stack = self.stack
        if stack and name in VALUE_TAGS:  # the hot path: an attribute, unprefixed
            owner = stack[-1]
            key = attrs.get("key")
            if key is not None and (owner == "event" or owner == "trace"):
                target = self.event if owner == "event" else self.trace
                if key not in target:
                    target[key] = attrs.get("value", "")
                stack.append("attr")
                return
        tag = name.rpartition(":")[2]
        parent = self.stack[-1] if self.stack else None
        if parent is None:
            if tag != "log":
                raise _NotXes(f"root element is <{tag}>, expected <log>")
            kind = "log"
        elif parent == "log" and tag == "trace":
            kind, self.trace, self.ordinal, self.held = "trace", {}, 0, []
        elif parent in ("trace", "log") and tag == "event":
            kind, self.event = "event", {}
            self.event_line = self.parser.CurrentLineNumber
            if parent == "log":  # not XES, but never drop a row: it lands without a case
                self.trace, self.ordinal = {}, 0
        elif parent in ("trace", "event") and tag in VALUE_TAGS and "key" in attrs:
            kind = "attr"
            target = self.trace if parent == "trace" else self.event
            target.setdefault(attrs["key"], attrs.get("value", ""))
        else:
            kind = "other"
        self.stack.append(kind)

    @staticmethod
    def entity(name: str, *_: object) -> None:
        # XES never declares entities; refusing them rules out entity-expansion bombs.
        raise _NotXes(f"it declares the XML entity '{name}'")

    def end(self, name: str) -> None:
        kind = self.stack.pop()
        if kind == "attr":
            return
        if kind == "event":
            self.held.append((self.event_line, self.ordinal, self.event))
            self.ordinal += 1
            if self.trace_keys <= self.trace.keys() or self.stack[-1] == "log":
                self._flush()
        elif kind == "trace":
            self._flush()

    def _flush(self) -> None:
        """Emit held events; standard XES puts trace attributes first, so this is at once."""
        trace = {TRACE_PREFIX + k: self.trace[k] for k in self.trace_keys if k in self.trace}
        for line, ordinal, event in self.held:
            event.update(trace)
            event[ORDINAL] = ordinal
            self.ready.append((line, event))
        self.held = []


def legacy_mapping(m: XesMapping) -> EventMapping:
    """The ``mapping:`` section of config.yaml (XES only) as a declarative mapping."""
    fields = {f: getattr(m, f) for f in ATTRIBUTE_FIELDS if getattr(m, f)}
    constants = {"item_code": m.item_code or ""}
    if m.department:
        constants["department"] = m.department
    return EventMapping(name="mapping", where="config.yaml", format="xes",
                        fields=MappingProxyType(fields), constants=MappingProxyType(constants),
                        steps=m.steps, lifecycle=tuple(v.strip().lower() for v in m.lifecycle))


def xes_records(source: Source, trace_keys: frozenset[str] = frozenset()
                ) -> Iterator[tuple[int, dict]]:
    """``(line, attributes)`` per ``<event>`` of an XES log, in file order: the event's own
    attributes and, as ``case:KEY``, the ``trace_keys`` of its trace (the trace
    attributes a mapping reads; held for should a trace state them after its events)."""
    return _records(source, trace_keys)


def xes_rows(source: Source, mapping: XesMapping | EventMapping, tz: tzinfo = UTC
             ) -> Iterator[SourceRow]:
    """One row of contract fields per ``<event>`` of an XES log, in file order, with the
    line of its start tag.

    Raises :class:`IngestError` at once when the (legacy) ``mapping.item_code`` is unset,
    and while reading when the document is not well-formed XES.
    """
    if isinstance(mapping, XesMapping):
        if not mapping.item_code:
            raise IngestError(f"{source.name}: XES events need a catalog item: set "
                              "'mapping: item_code:' in config.yaml (e.g. item_code: "
                              "WABO-RECEIPT)")
        mapping = legacy_mapping(mapping)
    trace_keys = frozenset(v[len(TRACE_PREFIX):] for v in mapping.fields.values()
                           if v.startswith(TRACE_PREFIX))
    return mapped_rows(mapping, xes_records(source, trace_keys), tz, source.name, check=False)


def _records(source: Source, trace_keys: frozenset[str]) -> Iterator[tuple[int, dict]]:
    parser = expat.ParserCreate()
    reader = _Reader(parser, trace_keys)
    parser.StartElementHandler = reader.start
    parser.EndElementHandler = reader.end
    parser.EntityDeclHandler = reader.entity
    try:
        while True:
            chunk = source.stream.read(CHUNK)
            parser.Parse(chunk, not chunk)
            yield from reader.ready
            reader.ready = []
            if not chunk:
                return
    except expat.ExpatError as exc:
        raise IngestError(f"{source.name}: not well-formed XES at line {exc.lineno}: "
                          f"{expat.ErrorString(exc.code)}") from None
    except _NotXes as exc:
        raise IngestError(f"{source.name}: not an XES log ({exc})") from None
    except (EOFError, gzip.BadGzipFile, OSError) as exc:
        raise IngestError(f"{source.name}: cannot read ({exc})") from None
