"""A fast path for reading XES logs: compiled regular expressions over the decompressed
text, touching only trace and event boundaries and the attributes a mapping reads.

Why: the expat reader (:mod:`monitor.ingest.xes`) calls Python for every element, and a
log of 25 attributes an event has 27 elements an event, so it cannot go faster than
Python's per-call cost allows (~10-25k events/s here). Here the regular-expression
engine (C) does the per-element work: one match takes a whole event, proving every
attribute of it is of a form understood and capturing the values of the keys the mapping
reads (the first of each key, as expat's reader keeps); Python sees one match an event,
one a trace tag, one a run of trace attributes. Each match must start where the last
ended, so nothing in the body goes unexamined.

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
from typing import BinaryIO, NamedTuple
from xml.parsers import expat

from .mapping import ORDINAL, TRACE_PREFIX

CHUNK = 1 << 20
HEADER_LIMIT = 1 << 22  # a header longer than this (4 MB before the first trace): expat
CARRY_LIMIT = 1 << 22   # an event longer than this: expat
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
_CHAR_REF = re.compile("&#(x?)([0-9a-fA-F]+);")
_ENTITIES = {"lt": "<", "gt": ">", "amp": "&", "quot": '"', "apos": "'"}
_NAMED_REF = re.compile("&(lt|gt|amp|quot|apos);")
_DECLARED = re.compile(rb"^(?:\xef\xbb\xbf)?<\?xml[^>]*?encoding[ \t\r\n]*=[ \t\r\n]*"
                       rb"[\"']([^\"']*)[\"']")


class Unsure(Exception):
    """The log holds something this path does not fully understand: read it with expat."""


class Range(NamedTuple):
    """A part of a log for one process to read (:func:`scan_range`): bytes ``start`` to
    ``end`` (None: to the end of the file), ``start`` at a ``<trace`` (or 0, with the
    header) and ``line`` its line; ``head``: where the first ``<trace`` starts."""

    start: int
    end: int | None
    line: int
    head: int


_CUT = re.compile(rb"<trace[ \t\r\n>]")


def trace_ranges(stream: BinaryIO, size: int) -> list[Range]:
    """The log in ``stream`` (uncompressed, seekable) cut into parts of about ``size``
    bytes, each cut just before a ``<trace``, with the line each part starts on (the
    newlines before it, counted here). A cut can fall where ``<trace`` is not a tag (in
    a comment after the first trace): the part before it is then not read whole by
    :func:`scan_range`, which says so (Unsure). No ``<trace`` near the start: one part."""
    stream.seek(0)
    head = stream.read(HEADER_LIMIT).find(b"<trace")
    total = stream.seek(0, 2)
    if head < 0:
        return [Range(0, None, 1, 0)]
    cuts = [0]
    target = max(size, head + 1)
    while target < total:
        stream.seek(target)
        window = stream.read(CHUNK)
        found = _CUT.search(window)
        while found is None and len(window) < size and target + len(window) < total:
            window += stream.read(CHUNK)  # a trace longer than a chunk
            found = _CUT.search(window)
        if found is None:
            target += len(window)
            continue
        cuts.append(target + found.start())
        target = cuts[-1] + size
    ranges, line = [], 1
    stream.seek(0)
    for start, end in zip(cuts, [*cuts[1:], None]):
        ranges.append(Range(start, end, line, head))
        if end is not None:
            line += _newlines(stream, end - start)
    stream.seek(0)
    return ranges


def _newlines(stream: BinaryIO, n: int) -> int:
    """Newlines in the next ``n`` bytes of ``stream``."""
    count = 0
    while n > 0 and (data := stream.read(min(n, CHUNK << 3))):
        count += data.count(b"\n")
        n -= len(data)
    return count


class _Window:
    """A stream read up to an offset, as if the file ended there."""

    def __init__(self, stream: BinaryIO, end: int):
        self.stream, self.left = stream, end - stream.tell()

    def read(self, n: int) -> bytes:
        data = self.stream.read(max(0, min(n, self.left)))
        self.left -= len(data)
        return data


_ATTR = f"{_KEY}(?:\"{_DQ_CHARS}*\"|'{_SQ_CHARS}*'){_VALUE}(?:\"{_DQ}\"|'{_SQ}'){_WS}*/>"


def _tokens(event_keys: tuple[str, ...]) -> re.Pattern[str]:
    """The body's tokens, each matched where the last one ended (so that a gap — anything
    else — stops the fast path):

    * a whole event with its attributes — group 1 (empty) just after its '<', then for
      each of ``event_keys`` in order two groups: the value of its first attribute of that
      key, double- or single-quoted (a conditional group skips a key's later attributes,
      so the first counts, as in expat's reader);
    * a trace tag — group ``2k+2``: '/' for an end tag;
    * a run of trace (or log) attributes — group ``2k+3``.
    """
    captures = []
    for n, key in enumerate(event_keys):
        name, dq, sq = re.escape(key), 2 + 2 * n, 3 + 2 * n
        captures.append(f"(?({dq})(?!)|(?({sq})(?!)|(?:\"{name}\"|'{name}'){_VALUE}"
                        f"(?:\"({_DQ})\"|'({_SQ})'){_WS}*/>))")
    other = f"(?:\"{_DQ_CHARS}*\"|'{_SQ_CHARS}*'){_VALUE}(?:\"{_DQ}\"|'{_SQ}'){_WS}*/>"
    attribute = f"{_KEY}(?:{'|'.join([*captures, other])})"
    return re.compile(
        f"{_WS}*+(?:<()event{_WS}*>(?:{_WS}*+{attribute})*+{_WS}*+</event{_WS}*>"
        f"|<(/?)trace{_WS}*>|((?:{_ATTR}{_WS}*+)++))")


def _picker(keys: frozenset[str]) -> re.Pattern[str]:
    """The attribute elements whose key is one of ``keys``, in a run of attributes the
    body's tokens matched: (key in double quotes, in single quotes, value in double
    quotes, in single quotes)."""
    names = "|".join(re.escape(k) for k in sorted(keys, key=len, reverse=True)) or "(?!)"
    return re.compile(f"{_KEY}(?:\"({names})\"|'({names})'){_VALUE}"
                      f"(?:\"([^\"]*)\"|'([^']*)')")


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
    for batch in scan_batches(stream, trace_keys, event_keys):
        yield from batch


def scan_batches(stream: BinaryIO, trace_keys: frozenset[str], event_keys: frozenset[str],
                 end: int | None = None) -> Iterator[list[tuple[int, dict]]]:
    """:func:`scan_records`' records, a list of them per chunk read; with ``end``, only
    those before that offset (the start of a ``<trace``, see :func:`trace_ranges`)."""
    if end is not None:
        stream = _Window(stream, end)  # type: ignore[assignment]
    data = b""
    while (at := data.find(b"<trace")) < 0:
        more = stream.read(CHUNK)
        if not more or len(data) > HEADER_LIMIT:
            raise Unsure("no <trace> near the start")
        data += more
    head, data = data[:at], data[at:]
    header = _checked_header(head)
    yield from _body(stream, data, head.count(b"\n") + 1, header if end is None else None,
                     trace_keys, event_keys)


def _checked_header(head: bytes) -> _Header:
    """Expat over the bytes before the first ``<trace``, left open in ``<log>``."""
    declared = _DECLARED.match(head)
    if declared and declared[1].lower() != b"utf-8":  # expat reads others its own way
        raise Unsure(f"encoding {declared[1]!r}")
    if b"\r" in head and head.count(b"\r") != head.count(b"\r\n"):
        raise Unsure("a carriage return that does not end a line")
    header = _Header()
    header.feed(head)
    if header.depth != 1 or header.root.rpartition(":")[2] != "log":
        raise Unsure("the header does not leave <log> open")
    try:  # and the first "<trace" is markup, not inside a comment, CDATA or instruction
        expat.ParserCreate().Parse(head + f"</{header.root}>".encode(), True)
    except expat.ExpatError:
        raise Unsure("the first <trace> is not where the header ends") from None
    return header


def scan_range(stream: BinaryIO, part: Range, trace_keys: frozenset[str],
               event_keys: frozenset[str]) -> Iterator[list[tuple[int, dict]]]:
    """The records of one of :func:`trace_ranges`' parts of a log, as :func:`scan_batches`
    gives them over the whole log (the same lines, ordinals and trace attributes): the
    first part checks the header, the last the end of the log, each its body; Unsure
    where the whole log's reading would be, or where a part does not hold whole traces."""
    stream.seek(0)
    if part.start == 0:
        yield from scan_batches(stream, trace_keys, event_keys, part.end)
        return
    header = None
    if part.end is None:  # the end of the log is checked as a whole log's is
        stream.seek(0)
        header = _checked_header(stream.read(part.head))
    stream.seek(part.start)
    if part.end is not None:
        stream = _Window(stream, part.end)  # type: ignore[assignment]
    yield from _body(stream, stream.read(CHUNK), part.line, header, trace_keys, event_keys)


def _body(stream: BinaryIO, data: bytes, line: int, header: _Header | None,
          trace_keys: frozenset[str], event_keys: frozenset[str]
          ) -> Iterator[list[tuple[int, dict]]]:
    decoder = codecs.getincrementaldecoder("utf-8")()
    keys = tuple(sorted(event_keys))
    token = _tokens(keys).match
    values = range(2, 2 + 2 * len(keys))
    doubled = [k for key in keys for k in (key, key)]  # the key of each value group
    given: dict[str, str] | None = None  # the trace's attributes, once all are known
    slash, run = 2 + 2 * len(keys), 3 + 2 * len(keys)
    pick = _picker(trace_keys).findall
    carry = ""
    where = 0                     # 0: in <log>, 1: in a <trace>
    trace: dict[str, str] = {}
    ordinal = 0
    ready: list[tuple[int, dict]] = []
    append = ready.append
    held: list[tuple[int, int, dict]] = []  # events awaiting their trace's attributes
    complete = trace_keys.issubset

    def flush() -> dict[str, str]:
        """Hand out the held events with their trace's attributes (returned)."""
        given = {TRACE_PREFIX + k: trace[k] for k in trace_keys if k in trace}
        for at, place, attributes in held:
            attributes.update(given)
            attributes[ORDINAL] = place
            append((at, attributes))
        held.clear()
        return given

    while True:
        try:
            text = carry + decoder.decode(data, not data)
        except UnicodeDecodeError:
            raise Unsure("not UTF-8") from None
        cr = "\r" if data and text.endswith("\r") else ""  # its "\n" may come next
        if cr:
            text = text[:-1]
        if "\r" in text and text.count("\r") != text.count("\r\n"):
            raise Unsure("a carriage return that does not end a line")
        if "&#" in text:  # in any value, read or not, as expat checks them
            for ref in _CHAR_REF.finditer(text):
                _char(ref)
        pos = counted = 0
        while m := token(text, pos):
            pos, at = m.end(), m.start(1)
            if at >= 0:                        # an event, whole
                if where != 1:
                    raise Unsure("<event> outside a trace")
                line += text.count("\n", counted, at)
                counted = at
                event = {k: v for k, v in zip(doubled, m.group(*values)) if v is not None}
                if text.find("&", at, pos) >= 0:
                    event = {k: _unescaped(v) if "&" in v else v for k, v in event.items()}
                if given is None:
                    held.append((line, ordinal, event))
                    if complete(trace):
                        given = flush()
                else:  # the trace's attributes are known: the event goes out at once
                    event.update(given)
                    event[ORDINAL] = ordinal
                    append((line, event))
                ordinal += 1
            elif m.start(run) >= 0:            # trace (or log) attributes
                if where == 1:
                    for key_dq, key_sq, value_dq, value_sq in pick(text, m.start(run), pos):
                        key = key_dq or key_sq
                        if key not in trace:
                            value = value_dq or value_sq
                            trace[key] = _unescaped(value) if "&" in value else value
            elif m[slash]:                     # </trace>
                if where != 1:
                    raise Unsure("</trace> outside a trace")
                flush()
                where = 0
            else:                              # <trace>
                if where != 0:
                    raise Unsure("<trace> inside a trace")
                trace, ordinal, where, given = {}, 0, 1, None
        line += text.count("\n", counted, pos)
        carry = text[pos:] + cr
        if ready:
            yield ready
            ready = []
            append = ready.append
        if carry.lstrip(" \t\r\n").startswith("</log"):
            if header is None:
                raise Unsure("</log> before the end of a part")
            break
        if header is None and not data and where == 0 and not carry.strip(" \t\r\n"):
            return  # a part ends where the next one's <trace> starts
        if not data or len(carry) > CARRY_LIMIT:  # not a token cut by the chunk's end
            raise Unsure(f"line {line}: the body holds what the fast path does not read")
        data = stream.read(CHUNK)
    if where != 0 or header is None:
        raise Unsure("</log> inside a trace")
    header.feed(carry.encode() + decoder.getstate()[0])
    while data:
        data = stream.read(CHUNK)
        header.feed(data)
    header.feed(b"", True)
