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
import hashlib
from collections.abc import Iterator
from xml.parsers import expat

from ..config import XesMapping
from ..errors import IngestError
from .sources import Source, SourceRow

CHUNK = 1 << 16
TRACE_PREFIX = "case:"
LIFECYCLE_KEY = "lifecycle:transition"
SKIPPED_LIFECYCLE = "skipped_lifecycle"
# Value-carrying attribute elements of XES 1.0/2.0 (list and container hold no value).
VALUE_TAGS = frozenset({"string", "date", "int", "float", "boolean", "id"})
# Contract fields taken from XES attributes, with the mapping setting naming each.
ATTRIBUTE_FIELDS = ("event_id", "case_id", "step", "actor", "occurred_at")


class _NotXes(Exception):
    """The document is XML but not an XES log; the message says why."""


def derived_event_id(case_id: str | None, ordinal: int, activity: str | None,
                     timestamp: str | None) -> str:
    """A stable id for an event without one: same log, same ids, on every re-import."""
    text = "\x1f".join("" if v is None else str(v) for v in (case_id, ordinal, activity,
                                                              timestamp))
    return "xes-" + hashlib.blake2b(text.encode(), digest_size=12).hexdigest()


class _Reader:
    """Expat callbacks that turn traces and events into rows, trace by trace."""

    def __init__(self, parser: expat.XMLParserType, mapping: XesMapping):
        self.parser, self.mapping = parser, mapping
        self.lifecycle = frozenset(v.strip().lower() for v in mapping.lifecycle)
        self.trace_keys = frozenset(
            key[len(TRACE_PREFIX):] for key in (getattr(mapping, f) for f in ATTRIBUTE_FIELDS)
            if key and key.startswith(TRACE_PREFIX))
        self.stack: list[str] = []        # kind of each open element
        self.trace: dict[str, str] = {}   # direct attributes of the current trace
        self.event: dict[str, str] = {}   # direct attributes of the current event
        self.event_line = 0
        self.ordinal = 0                  # position of the event within its trace
        self.held: list[tuple[int, int, dict[str, str]]] = []  # events awaiting trace attrs
        self.ready: list[SourceRow] = []  # rows to hand out after the current chunk

    def start(self, name: str, attrs: dict[str, str]) -> None:
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
        if kind == "event":
            self.held.append((self.event_line, self.ordinal, self.event))
            self.ordinal += 1
            if self.trace_keys <= self.trace.keys() or self.stack[-1] == "log":
                self._flush()
        elif kind == "trace":
            self._flush()

    def _flush(self) -> None:
        """Emit held events; standard XES puts trace attributes first, so this is at once."""
        for line, ordinal, event in self.held:
            self.ready.append(self._row(line, ordinal, event))
        self.held = []

    def _value(self, key: str | None, event: dict[str, str]) -> str | None:
        if not key:
            return None
        if key.startswith(TRACE_PREFIX):
            return self.trace.get(key[len(TRACE_PREFIX):])
        return event.get(key)

    def _row(self, line: int, ordinal: int, event: dict[str, str]) -> SourceRow:
        m = self.mapping
        values = {f: self._value(getattr(m, f), event) for f in ATTRIBUTE_FIELDS}
        activity = values["step"]
        name = activity.strip() if activity is not None else None
        step = m.steps.get(name, name) if name is not None else None
        event_id = values["event_id"] if m.event_id else derived_event_id(
            values["case_id"], ordinal, activity, values["occurred_at"])
        fields: dict[str, str | None] = {
            "event_id": event_id, "case_id": values["case_id"], "item_code": m.item_code,
            "department": m.department, "step": step, "actor": values["actor"],
            "occurred_at": values["occurred_at"],
            "note": name if step != name else None,
        }
        transition = event.get(LIFECYCLE_KEY)
        if transition is not None and transition.strip().lower() not in self.lifecycle:
            fields["lifecycle"] = transition
            wanted = ", ".join(m.lifecycle) or "none"
            return SourceRow(line, fields,
                             f"lifecycle:transition '{transition}' is not imported "
                             f"(mapping: lifecycle: {wanted})", SKIPPED_LIFECYCLE)
        return SourceRow(line, fields)


def xes_rows(source: Source, mapping: XesMapping) -> Iterator[SourceRow]:
    """One row per ``<event>`` of an XES log, in file order, with the line of its start tag.

    Raises :class:`IngestError` at once when ``mapping.item_code`` is unset, and while
    reading when the document is not well-formed XES.
    """
    if not mapping.item_code:
        raise IngestError(f"{source.name}: XES events need a catalog item: set "
                          "'mapping: item_code:' in config.yaml (e.g. item_code: WABO-RECEIPT)")
    return _rows(source, mapping)


def _rows(source: Source, mapping: XesMapping) -> Iterator[SourceRow]:
    parser = expat.ParserCreate()
    reader = _Reader(parser, mapping)
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
