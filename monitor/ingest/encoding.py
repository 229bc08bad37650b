"""The text encoding of an input file, decided once per file before any row is read.

Offices export CSV from Chinese Excel in GBK (or GB18030, which contains it); systems
write UTF-8, with or without a byte-order mark. The default, ``auto``, reads a file as
UTF-8 if the whole file decodes as UTF-8, else as GB18030. A file that decodes in neither
(or not in the encoding given) is refused before anything of it is stored, naming the
first line that does not decode — never half a file committed and then an error.
"""

from __future__ import annotations

import codecs
from dataclasses import dataclass
from typing import BinaryIO

from ..config import AUTO_ENCODING as AUTO
from ..errors import IngestError

UTF8 = "utf-8-sig"  # UTF-8 with or without a byte-order mark
FALLBACK = "gb18030"  # a superset of GBK and GB2312: what Chinese Excel saves
CHUNK = 1 << 20


def decide_encoding(stream: BinaryIO, name: str, label: str) -> str:
    """The codec to read the whole of ``stream`` with (it is read to the end: rewind it).

    ``name`` is ``auto`` or a checked codec name; an undecodable byte is an
    :class:`IngestError` naming the file and line. With ``auto``, a file whose lines
    before its first non-UTF-8 byte hold UTF-8 Chinese is refused too, not read as
    GB18030: such a file mixes encodings, and GB18030 would garble its UTF-8 part."""
    if name != AUTO:
        bad = _first_bad_byte(stream, name)
        if bad is None:
            return name
        raise IngestError(f"{label}:{bad.line}: byte 0x{bad.byte:02X} is not {name} text; "
                          "nothing of the file was read (try --encoding auto: UTF-8, else "
                          "GB18030, which covers GBK)")
    start = stream.tell()
    bad = _first_bad_byte(stream, UTF8)
    if bad is None:
        return UTF8
    if bad.utf8_before:
        raise IngestError(f"{label}:{bad.line}: byte 0x{bad.byte:02X} is not UTF-8, though "
                          "the lines before it are UTF-8 text: the file mixes encodings (a "
                          "row pasted from a GBK file?); nothing of the file was read")
    stream.seek(start)
    bad = _first_bad_byte(stream, FALLBACK)
    if bad is None:
        return FALLBACK
    raise IngestError(f"{label}:{bad.line}: byte 0x{bad.byte:02X} is neither UTF-8 nor GB18030 "
                      "text; nothing of the file was read (name its encoding with --encoding, "
                      "or config.yaml's encoding)")


@dataclass(frozen=True)
class BadByte:
    line: int
    byte: int
    utf8_before: bool  # a line before it held non-ASCII text that decoded


def _first_bad_byte(stream: BinaryIO, encoding: str) -> BadByte | None:
    """The first byte ``encoding`` cannot decode, or None. Whole chunks are decoded
    (fast); the line is looked for only once a chunk fails."""
    start = stream.tell()
    decoder = codecs.getincrementaldecoder(encoding)()
    while chunk := stream.read(CHUNK):
        try:
            decoder.decode(chunk)
        except UnicodeDecodeError:
            break
    else:
        try:
            decoder.decode(b"", final=True)
            return None
        except UnicodeDecodeError:
            pass
    stream.seek(start)  # a bad byte somewhere: find its line, one line at a time
    decoder = codecs.getincrementaldecoder(encoding)()
    line, non_ascii = 0, False
    for line, text in enumerate(stream, start=1):
        try:
            decoder.decode(text)
        except UnicodeDecodeError as exc:
            return BadByte(line, exc.object[exc.start], non_ascii)
        non_ascii = non_ascii or not text.isascii()
    try:
        decoder.decode(b"", final=True)
    except UnicodeDecodeError as exc:
        return BadByte(max(line, 1), exc.object[exc.start], non_ascii)
    return None  # pragma: no cover - the chunked pass failed, so this one does
