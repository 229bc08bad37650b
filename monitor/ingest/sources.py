"""Opening input files: paths or ``-`` (stdin), ``.gz`` read transparently, streamed.

Every reader yields :class:`SourceRow` — the line number where the row starts and its
fields as text — so validation and quarantine are the same whatever the format: CSV and
JSON Lines here (their encoding decided once per file, :mod:`.encoding`), Excel
workbooks in :mod:`.xlsx`, XES in :mod:`.xes`.
"""

from __future__ import annotations

import codecs
import csv
import gzip
import io
import json
import shutil
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from ..errors import IngestError
from .encoding import AUTO, decide_encoding

FORMATS = ("csv", "jsonl", "xes", "xlsx")
TEXT_FORMATS = ("csv", "jsonl")  # read with the file's encoding (XES declares its own)
_SUFFIXES = {".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "jsonl",
             ".xes": "xes", ".txt": "csv", ".xlsx": "xlsx", ".xlsm": "xlsx"}
ZIP_MAGIC = b"PK\x03\x04"  # an .xlsx workbook is a zip archive
Buffered = io.BufferedReader | io.BufferedRandom  # an opened file, or stdin's copy


@dataclass(frozen=True, slots=True)
class SourceRow:
    line: int
    fields: dict[str, str | None]
    problem: str | None = None  # set when the row could not even be split into fields
    problem_reason: str = "malformed_row"  # quarantine reason used when problem is set


@dataclass
class Source:
    """An opened input: ``stream`` is decompressed bytes, ``position()`` counts raw bytes read."""

    name: str
    size: int | None
    stream: BinaryIO
    raw: BinaryIO
    format: str
    # False for a stdin without a file descriptor (tests): a forked process could not read it.
    forkable: bool = True
    # The codec of a CSV or JSON Lines file, decided from its whole content.
    encoding: str = "utf-8-sig"

    def position(self) -> int:
        try:
            return self.raw.tell()
        except (OSError, ValueError):
            return 0


def _detect(name: str, peek: bytes) -> str:
    suffixes = [s.lower() for s in Path(name).suffixes]
    if suffixes and suffixes[-1] == ".gz":
        suffixes.pop()
    if suffixes and suffixes[-1] in _SUFFIXES:
        return _SUFFIXES[suffixes[-1]]
    if peek.startswith(ZIP_MAGIC):
        return "xlsx"
    head = peek.lstrip(codecs.BOM_UTF8).lstrip()
    if head.startswith(b"{"):
        return "jsonl"
    if head.startswith(b"<"):
        return "xes"
    return "csv"


@contextmanager
def open_source(name: str, fmt: str | None = None, encoding: str = AUTO) -> Iterator[Source]:
    """Open ``name`` (``-`` = stdin); a missing or unreadable file is an :class:`IngestError`.

    A CSV or JSON Lines file is decoded once to the end first, to decide its encoding
    (``auto``: UTF-8, else GB18030) or check the one given: a file that does not decode
    is refused whole, naming its first bad line, before any of its rows is read. Stdin is
    copied to a temporary file for that (it cannot be read twice)."""
    raw: Buffered
    if name == "-":
        size, label = None, "<stdin>"
        raw = tempfile.TemporaryFile()  # noqa: SIM115 - closed below
        stdin = getattr(sys.stdin, "buffer", sys.stdin)
        shutil.copyfileobj(stdin, raw)
        raw.seek(0)
    else:
        path = Path(name)
        if path.is_dir():
            raise IngestError(f"{name}: is a directory, expected a file")
        try:
            raw = open(path, "rb")  # noqa: SIM115 - closed below
        except FileNotFoundError:
            raise IngestError(f"{name}: file not found") from None
        except OSError as exc:
            raise IngestError(f"{name}: cannot open ({exc.strerror})") from None
        size, label = path.stat().st_size, str(name)
    try:
        stream, peek = _decompressed(raw, label)
        fmt = fmt or _detect(label, peek)
        codec = "utf-8-sig"
        if fmt in TEXT_FORMATS:
            codec = _decided(stream, encoding, label)
            raw.seek(0)
            stream, _ = _decompressed(raw, label)
        yield Source(label, size, stream, raw, fmt, encoding=codec)
    finally:
        raw.close()


def _decompressed(raw: Buffered, label: str) -> tuple[Buffered, bytes]:
    """The stream (gunzipped if it is gzip) and its first bytes, for format detection."""
    stream: Buffered = raw
    if raw.peek(2)[:2] == b"\x1f\x8b":
        stream = io.BufferedReader(gzip.GzipFile(fileobj=raw))
    try:
        return stream, stream.peek(512)[:512]
    except (OSError, EOFError, gzip.BadGzipFile) as exc:
        raise IngestError(f"{label}: not a readable gzip file ({exc})") from None


def _decided(stream: BinaryIO, encoding: str, label: str) -> str:
    try:
        return decide_encoding(stream, encoding, label)
    except (EOFError, gzip.BadGzipFile, OSError) as exc:
        raise IngestError(f"{label}: cannot read ({exc})") from None


@contextmanager
def _text(source: Source, encoding: str) -> Iterator[io.TextIOWrapper]:
    """The stream as text. It stays open afterwards, so ``position()`` still counts the
    bytes read once the last row has been."""
    # undecodable bytes are kept (as surrogates) for monitor.ingest.validate to set the
    # row aside, instead of one bad byte failing the whole file
    text = io.TextIOWrapper(source.stream, encoding=encoding, errors="surrogateescape",
                            newline="")
    try:
        yield text
    finally:
        text.detach()


def _guard(source: Source, rows: Iterator[SourceRow]) -> Iterator[SourceRow]:
    """Turn whole-file read failures into one clear line (the encoding was checked on
    the whole file when it was opened, so a decode error here is not the file's)."""
    try:
        yield from rows
    except (EOFError, gzip.BadGzipFile, OSError) as exc:
        raise IngestError(f"{source.name}: cannot read ({exc})") from None
    except csv.Error as exc:
        raise IngestError(f"{source.name}: malformed CSV ({exc})") from None


def csv_rows(source: Source, required: tuple[str, ...] = ()) -> Iterator[SourceRow]:
    """Rows of a CSV file with a header; header names are case- and space-insensitive.

    A header without one of the ``required`` columns stops the file before any row is
    read: every row would be set aside for the same reason, which says nothing a single
    line cannot (most often the wrong file, or another system's column names)."""

    def rows() -> Iterator[SourceRow]:
        with _text(source, source.encoding) as text:
            reader = csv.reader(text)
            header = next(reader, None)
            if header is None:
                return
            header = header_names(source, header, required)
            yield from _csv_records(reader, header)

    return _guard(source, rows())


def header_names(source: Source, header: list[Any], required: tuple[str, ...]) -> list[str]:
    """The header's column names, case- and space-insensitive; an :class:`IngestError`
    when one of ``required`` is missing."""
    names = ["" if h is None else str(h).strip().lower().lstrip("\ufeff") for h in header]
    missing = [c for c in required if c not in names]
    if missing:
        raise IngestError(
            f"{source.name}:1: the header lacks the required column"
            f"{'s' if len(missing) > 1 else ''} {', '.join(missing)} (it has: "
            f"{', '.join(h for h in names if h) or 'nothing'}); nothing was read "
            "— see the input contract in docs/input-contract.md")
    return names


def _csv_records(reader: Any, header: list[str]) -> Iterator[SourceRow]:
    """The records after the header; one the csv module cannot split (a field over its
    limit, a stray quote) is a problem row, and reading goes on at the next line."""
    width = len(header)
    start = reader.line_num + 1
    while True:
        try:
            values = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            line, start = start, reader.line_num + 1
            too_long = "field larger than field limit" in str(exc)
            yield SourceRow(line, {}, f"malformed CSV ({exc})",
                            "too_long" if too_long else "malformed_row")
            continue
        line, start = start, reader.line_num + 1
        if not values or (len(values) == 1 and not values[0].strip()):
            continue
        if len(values) != width:
            fields = dict(zip(header, values))
            if len(values) > width:
                fields["_extra"] = ",".join(values[width:])
            yield SourceRow(line, fields, f"row has {len(values)} fields, header has {width}")
            continue
        yield SourceRow(line, dict(zip(header, values)))


def jsonl_rows(source: Source, max_depth: int | None = None) -> Iterator[SourceRow]:
    """One JSON object per line; values other than text are kept as their JSON text. A
    row nested deeper than ``max_depth`` is a problem row (``too_deep``)."""

    def rows() -> Iterator[SourceRow]:
        with _text(source, source.encoding) as lines:
            yield from _json_records(lines, max_depth)

    return _guard(source, rows())


def _depth(value: object, limit: int) -> bool:
    """True if ``value`` nests arrays and objects deeper than ``limit``."""
    todo = [(value, 1)]
    while todo:
        item, depth = todo.pop()
        if isinstance(item, (dict, list)):
            if depth > limit:
                return True
            todo.extend((v, depth + 1) for v in (item.values() if isinstance(item, dict)
                                                 else item))
    return False


def _json_records(lines: Iterator[str], max_depth: int | None = None) -> Iterator[SourceRow]:
    for line, text in enumerate(lines, start=1):
        if not text.strip():
            continue
        try:
            obj = json.loads(text, parse_float=str, parse_int=str)
        except json.JSONDecodeError as exc:
            yield SourceRow(line, {"_raw": text.rstrip("\r\n")}, f"invalid JSON: {exc.msg}")
            continue
        except RecursionError:
            yield SourceRow(line, {"_raw": text[:200]}, "JSON nested too deeply to read",
                            "too_deep")
            continue
        if max_depth is not None and _depth(obj, max_depth):
            yield SourceRow(line, {"_raw": text[:200]}, f"JSON nested deeper than "
                            f"limits.max_json_depth ({max_depth})", "too_deep")
            continue
        if not isinstance(obj, dict):
            yield SourceRow(line, {"_raw": text.rstrip("\r\n")}, "expected a JSON object")
            continue
        yield SourceRow(line, {str(k).strip().lower(): _as_text(v) for k, v in obj.items()})


def _as_text(value: object) -> str | None:
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, list):
        return ";".join(str(v) for v in value)
    return str(value)
