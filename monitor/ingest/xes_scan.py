"""A fast path for reading XES logs: compiled regular expressions over the decompressed
text, touching only trace and event boundaries and the attributes a mapping reads.

Why: the expat reader (:mod:`monitor.ingest.xes`) calls Python for every element, and a
log of 25 attributes an event has 27 elements an event, so it cannot go faster than
Python's per-call cost allows (~10k events/s). Here the regular-expression engine (C)
does the per-element work: one ``fullmatch`` proves a chunk is made only of what this
path understands, and one ``finditer`` hands Python the few tags it needs (the event and
trace tags, and the attributes whose key the mapping reads: about 7 an event, not 27).

Strict, never approximate: this path understands the body of a flat XES log — between
``<log …>``'s header and ``</log>``, only ``<trace>``, ``<event>``, their end tags, and
attribute elements written ``<TYPE key="K" value="V"/>`` (TYPE a value-carrying type,
either quote, whitespace as XML allows, the predefined entities and character
references in values), with nothing else than whitespace between tags. The header (XML
declaration, comments, ``<extension>``, ``<global>``, ``<classifier>``, log attributes,
nested or not) and the end are checked by expat itself. Anything else — a nested, list
or container attribute in a trace or event, a comment or CDATA in the body, a value
spread over lines, ``value`` before ``key``, an event outside a trace, a namespace
prefix, another encoding than UTF-8, a DOCTYPE, a malformed document — raises
:class:`Unsure`, and :func:`monitor.ingest.xes.xes_records` reads the log again with
expat, skipping the records already handed out (the two agree on them: a test runs both
over every XES log the tests know and asserts identical output).
"""

from __future__ import annotations

import codecs
import re
from collections.abc import Iterator
from typing import BinaryIO
from xml.parsers import expat

from .mapping import ORDINAL, TRACE_PREFIX

CHUNK = 1 << 20
HEADER_LIMIT = 1 << 22  # a header longer than this (4 MB before the first trace): expat
_WS = "[ \t\r\n]"
_TYPES = "(?:string|date|int|float|boolean|id)"
_REF = "&(?:lt|gt|amp|quot|apos|#[0-9]+|#x[0-9a-fA-F]+);"
# What a quoted key or value may hold: no markup, no control character (nor the tab and
# line ends that XML would turn into spaces), and in a value only well-formed references.
_DQ_CHARS, _SQ_CHARS = '[^"<&\x00-\x1f\ufffe\uffff]', "[^'<&\x00-\x1f\ufffe\uffff]"
_DQ = f'{_DQ_CHARS}*+(?:{_REF}{_DQ_CHARS}*+)*+'
_SQ = f"{_SQ_CHARS}*+(?:{_REF}{_SQ_CHARS}*+)*+"
_KEY = "<" + _TYPES + _WS + "+key" + _WS + "*=" + _WS + "*"
_VALUE = _WS + "+value" + _WS + "*=" + _WS + "*"
_TAG = f"<(/?)(event|trace){_WS}*>"
_CHAR_REF = re.compile("&#(x?)([0-9a-fA-F]+);")
_ENTITIES = {"lt": "<", "gt": ">", "amp": "&", "quot": '"', "apos": "'"}
_NAMED_REF = re.compile("&(lt|gt|amp|quot|apos);")
_DECLARED = re.compile(rb"^(?:\xef\xbb\xbf)?<\?xml[^>]*?encoding[ \t\r\n]*=[ \t\r\n]*"
                       rb"[\"']([^\"']*)[\"']")


class Unsure(Exception):
    """The log holds something this path does not fully understand: read it with expat."""


def _tokens(keys: frozenset[str]) -> re.Pattern[str]:
    """From where the last match ended: any run of whitespace and attribute elements the
    mapping does not read, then a trace or event tag (group 1: '/' for an end tag, group
    2: which) or an attribute element whose key is one of ``keys`` (group 3 or 4: the key,
    5 or 6: the value). Successive matches must touch: a gap is something not understood.
    """
    names = "|".join(re.escape(k) for k in sorted(keys, key=len, reverse=True)) or "(?!)"
    skipped = (f"{_KEY}(?:\"(?!(?:{names})\"){_DQ_CHARS}*\"|'(?!(?:{names})'){_SQ_CHARS}*')"
               f"{_VALUE}(?:\"{_DQ}\"|'{_SQ}'){_WS}*/>")
    read = (f"{_KEY}(?:\"({names})\"|'({names})'){_VALUE}(?:\"({_DQ})\"|'({_SQ})')"
            f"{_WS}*/>")
    return re.compile(f"(?:{_WS}*+{skipped})*+{_WS}*+(?:{_TAG}|{read})")


# The end of a body: attribute elements the mapping does not read, and whitespace.
_ATTR = f"{_KEY}(?:\"{_DQ_CHARS}*\"|'{_SQ_CHARS}*'){_VALUE}(?:\"{_DQ}\"|'{_SQ}'){_WS}*/>"
_REST = re.compile(f"(?:{_WS}*+{_ATTR})*+{_WS}*+")


def _char(m: re.Match[str]) -> str:
    """A character reference's character (Unsure: none that XML allows; expat says so)."""
    code = int(m[2], 16 if m[1] else 10)
    if not (code in (9, 10, 13) or 0x20 <= code <= 0xD7FF or 0xE000 <= code <= 0xFFFD
            or 0x10000 <= code <= 0x10FFFF):
        raise Unsure(f"character reference {m[0]} is not an XML character")
    return chr(code)


def _unescaped(value: str) -> str:
    """A value as XML reads it: its entity and character references replaced."""
    return _NAMED_REF.sub(lambda m: _ENTITIES[m[1]], _CHAR_REF.sub(_char, value))


class _Header:
    """Expat over the log's header and end: the XML declaration, comments, extensions,
    globals, classifiers and log attributes, then ``</log>`` and what follows."""

    def __init__(self) -> None:
        self.parser = expat.ParserCreate()
        self.depth, self.root = 0, ""
        self.parser.StartElementHandler = self._start
        self.parser.EndElementHandler = self._end
        self.parser.EntityDeclHandler = self._refuse
        self.parser.StartDoctypeDeclHandler = self._refuse

    def _start(self, name: str, _attrs: object) -> None:
        if name.rpartition(":")[2] in ("event", "trace"):  # records: the body's business
            raise Unsure(f"<{name}> before the first <trace>")
        self.root = self.root or name
        self.depth += 1

    def _end(self, _name: str) -> None:
        self.depth -= 1

    @staticmethod
    def _refuse(*_: object) -> None:
        raise Unsure("a DOCTYPE or entity declaration")

    def feed(self, data: bytes, final: bool = False) -> None:
        try:
            self.parser.Parse(data, final)
        except expat.ExpatError as exc:
            raise Unsure(str(exc)) from None


def scan_records(stream: BinaryIO, trace_keys: frozenset[str], event_keys: frozenset[str]
                 ) -> Iterator[tuple[int, dict]]:
    """``(line, attributes)`` per event, as :func:`monitor.ingest.xes.xes_records` gives
    them; raises :class:`Unsure` (possibly after some records) where it cannot be sure."""
    data = b""
    while (at := data.find(b"<trace")) < 0:
        more = stream.read(CHUNK)
        if not more or len(data) > HEADER_LIMIT:
            raise Unsure("no <trace> near the start")
        data += more
    head, data = data[:at], data[at:]
    declared = _DECLARED.match(head)
    if declared and declared[1].lower() not in (b"utf-8", b"utf8"):
        raise Unsure(f"encoding {declared[1]!r}")
    if b"\r" in head and head.count(b"\r") != head.count(b"\r\n"):
        raise Unsure("a carriage return that does not end a line")
    header = _Header()
    header.feed(head)
    if header.depth != 1 or header.root.rpartition(":")[2] != "log":
        raise Unsure("the header does not leave <log> open")
    yield from _body(stream, data, head.count(b"\n") + 1, header, trace_keys, event_keys)


def _body(stream: BinaryIO, data: bytes, line: int, header: _Header,
          trace_keys: frozenset[str], event_keys: frozenset[str]
          ) -> Iterator[tuple[int, dict]]:
    decoder = codecs.getincrementaldecoder("utf-8")()
    tokens = _tokens(trace_keys | event_keys).finditer
    rest = _REST.fullmatch
    carry = ""
    where = 0                     # 0: in <log>, 1: in a <trace>, 2: in an <event>
    trace: dict[str, str] = {}
    event: dict[str, str] = {}
    held: list[tuple[int, int, dict]] = []
    ordinal = event_line = 0
    ready: list[tuple[int, dict]] = []
    complete = trace_keys.issubset

    def flush() -> None:
        given = {TRACE_PREFIX + k: trace[k] for k in trace_keys if k in trace}
        for at, place, attributes in held:
            attributes.update(given)
            attributes[ORDINAL] = place
            ready.append((at, attributes))
        held.clear()

    while True:
        try:
            text = carry + decoder.decode(data, not data)
        except UnicodeDecodeError:
            raise Unsure("not UTF-8") from None
        end = text.find("</log")
        cut = end if end >= 0 else text.rfind("<") if data else len(text)
        if cut < 0:
            cut = 0
        segment, carry = text[:cut], text[cut:]
        if "\r" in segment and segment.count("\r") != segment.count("\r\n"):
            raise Unsure("a carriage return that does not end a line")
        if "&#" in segment:  # in any value, read or not, as expat would check them
            for ref in _CHAR_REF.finditer(segment):
                _char(ref)
        counted = touched = 0
        for m in tokens(segment):
            if m.start() != touched:
                raise Unsure(f"line {line}+: the body holds what the fast path does not read")
            touched = m.end()
            tag = m[2]
            if tag is None:                    # an attribute the mapping reads
                if where == 0:
                    continue
                key = m[3] if m[3] is not None else m[4]
                value = m[5] if m[5] is not None else m[6]
                if "&" in value:
                    value = _unescaped(value)
                if where == 2:
                    if key in event_keys and key not in event:
                        event[key] = value
                elif key in trace_keys and key not in trace:
                    trace[key] = value
            elif m[1]:                         # an end tag
                if tag == "event":
                    if where != 2:
                        raise Unsure("</event> outside an event")
                    held.append((event_line, ordinal, event))
                    ordinal += 1
                    where = 1
                    if complete(trace):
                        flush()
                else:
                    if where != 1:
                        raise Unsure("</trace> outside a trace")
                    flush()
                    where = 0
            elif tag == "event":
                if where != 1:
                    raise Unsure("<event> outside a trace")
                start = m.start(1)  # just after the '<'
                line += segment.count("\n", counted, start)
                counted, event_line, event, where = start, line, {}, 2
            else:
                if where != 0:
                    raise Unsure("<trace> inside a trace")
                trace, ordinal, where = {}, 0, 1
                held.clear()
        if rest(segment, touched) is None:
            raise Unsure(f"line {line}+: the body holds what the fast path does not read")
        line += segment.count("\n", counted)
        if ready:
            yield from ready
            ready.clear()
        if end >= 0:
            break
        if not data:
            raise Unsure("the log ends before </log>")
        data = stream.read(CHUNK)
    if where != 0:
        raise Unsure("</log> inside a trace")
    header.feed(carry.encode() + decoder.getstate()[0])
    while data:
        data = stream.read(CHUNK)
        header.feed(data)
    header.feed(b"", True)
