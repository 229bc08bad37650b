"""Guards every input row passes before its kind's contract: one row → stored or
quarantined with a reason, never a crash that loses the rest of the file.

:func:`guarded` wraps any reader's rows (CSV, JSON Lines, XES, and the readers to come):
a row carrying what no store or report can take is turned into a row with a problem,
which the pipeline quarantines with its file, line and reason:

``control_character``  NUL or another C0 control character (tab, line feed and carriage
                       return aside): PostgreSQL refuses NUL, an XLSX cell refuses the rest
``undecodable``        bytes that are not text in the file's encoding (a file whose first
                       row is already undecodable is in another encoding: one error)
``too_long``           a field over ``limits.max_field_chars``
``bad_timestamp``      a timestamp outside ``limits.earliest_year`` … ``latest_year``

The quarantined copy of such a row is cut to the limit and escaped (:func:`printable`):
quarantine never holds more of a file than the offending line, within the limit.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import replace
from typing import Any

from ..config import Limits
from ..errors import IngestError
from .sources import SourceRow

CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
SURROGATE = re.compile(r"[\udc80-\udcff]")  # an undecodable byte, as surrogateescape keeps it
TIMESTAMP_FIELDS = ("occurred_at", "recorded_at", "at")
YEAR = re.compile(r"\s*([+-]?\d+)-")


ANY_BAD = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\udc80-\udcff]")


def row_problem(fields: dict[str, Any], limits: Limits) -> tuple[str, str] | None:
    """(reason, detail) of the first guard ``fields`` break, or None. The detail names the
    field and the position, never the value (it may be what broke the row).

    This runs for every row read, so a good row costs one scan of its text joined (and
    a length per field); only a row with a hit is looked at field by field."""
    try:
        text = "\n".join([*fields, *fields.values()])
    except TypeError:  # a None (JSON null) among the values
        text = "\n".join(v for v in (*fields, *fields.values()) if isinstance(v, str))
    longest = max(map(len, text.split("\n"))) if len(text) > limits.max_field_chars else 0
    if ANY_BAD.search(text) is None and longest <= limits.max_field_chars:
        return _year_problem(fields, limits)
    for name, value in fields.items():
        for text, what in ((name, "column name"), (value, "field")):
            if not isinstance(text, str):
                continue
            label = f"{what} '{printable(str(name), 40)}'"
            if SURROGATE.search(text):
                return "undecodable", f"{label} has bytes that are not text in the file's " \
                                      "encoding (see --encoding)"
            if (m := CONTROL.search(text)):
                return "control_character", (f"{label} has the control character "
                                             f"U+{ord(m.group()):04X} at position {m.start() + 1}")
            if len(text) > limits.max_field_chars:
                return "too_long", (f"{label} has {len(text)} characters, more than "
                                    f"limits.max_field_chars ({limits.max_field_chars})")
    return _year_problem(fields, limits)


def _year_problem(fields: dict[str, Any], limits: Limits) -> tuple[str, str] | None:
    for name in TIMESTAMP_FIELDS:
        value = fields.get(name)
        if not value or not isinstance(value, str):
            continue
        if value[:4].isdigit() and value[4:5] == "-" and \
                limits.earliest_year <= int(value[:4]) <= limits.latest_year:
            continue  # the usual case, without a regular expression
        if (m := YEAR.match(value)):
            year = int(m.group(1))
            if not limits.earliest_year <= year <= limits.latest_year:
                return "bad_timestamp", (f"{name}: year {year} is outside "
                                         f"{limits.earliest_year}–{limits.latest_year} "
                                         "(limits.earliest_year, limits.latest_year)")
    return None


def guarded(rows: Iterable[SourceRow], limits: Limits, source: str,
            encoding: str = "utf-8-sig") -> Iterator[SourceRow]:
    """``rows`` with every row that breaks a guard turned into a problem row (its fields
    cut and escaped for the quarantine). If the first row is undecodable, the whole file
    is in another encoding: one :class:`IngestError` rather than every row set aside."""
    seen_good = False
    for row in rows:
        found = None if row.problem else row_problem(row.fields, limits)
        if found is None:
            if row.problem:
                yield replace(row, fields=_cut(row.fields, limits))
            else:
                seen_good = True
                yield row
            continue
        reason, detail = found
        if reason == "undecodable" and not seen_good:
            getattr(rows, "close", lambda: None)()  # the reader, while its file is open
            raise IngestError(f"{source}:{row.line}: not {encoding} text; re-run with "
                              "--encoding (e.g. --encoding gbk for files saved by Chinese "
                              "Excel)")
        yield SourceRow(row.line, _cut(row.fields, limits), detail, reason)


def printable(text: str, limit: int) -> str:
    """``text`` with control characters and undecodable bytes escaped, cut to ``limit``."""
    if len(text) > limit:
        text = text[:limit] + f"…[{len(text) - limit} more characters]"
    text = SURROGATE.sub(lambda m: f"\\x{ord(m.group()) - 0xDC00:02x}", text)
    return CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


def _cut(fields: dict[str, Any], limits: Limits) -> dict[str, Any]:
    return {printable(str(k), 200): (printable(v, limits.max_field_chars)
                                     if isinstance(v, str) else v)
            for k, v in fields.items()}
