"""Excel workbooks (.xlsx): the first sheet, its first row the header, like a CSV file.

Read with openpyxl in read-only mode, row by row, so memory stays flat whatever the
size. A row's line is its row number in Excel. Cell values become the text a CSV export
would hold: whole numbers without ``.0``, date cells as ``YYYY-MM-DD HH:MM:SS`` (Excel
stores them without a zone: the county's, like any naive timestamp), other numbers as
written; a timestamp column that holds Excel serial numbers (45939.395833) is read by
:func:`monitor.timeutil.parse_timestamp` too.
"""

from __future__ import annotations

import zipfile
from collections.abc import Iterator
from datetime import date, datetime, time

from openpyxl import load_workbook
from openpyxl.utils.exceptions import InvalidFileException

from ..errors import IngestError
from ..timeutil import whole_second
from .sources import Source, SourceRow, header_names


def xlsx_rows(source: Source, required: tuple[str, ...] = ()) -> Iterator[SourceRow]:
    """Rows of the workbook's first sheet; see the module docstring."""
    try:
        book = load_workbook(source.stream, read_only=True, data_only=True)
    except (zipfile.BadZipFile, InvalidFileException, KeyError, OSError, ValueError) as exc:
        raise IngestError(f"{source.name}: not a readable Excel workbook (.xlsx) ({exc})"
                          ) from None
    try:
        rows = book.worksheets[0].iter_rows(min_row=1, values_only=True)
        header = next(rows, None)
        if header is None:
            return
        names = header_names(source, list(header), required)
        width = len(names)
        for line, values in enumerate(rows, start=2):
            texts = [cell_text(v) for v in values]
            if not any(t and t.strip() for t in texts):
                continue
            fields = {n: t for n, t in zip(names, texts) if n}
            extra = [t for t in texts[width:] if t]
            if extra:
                fields["_extra"] = ",".join(extra)
                yield SourceRow(line, fields, f"row has values beyond the header's {width} "
                                              "columns")
                continue
            yield SourceRow(line, fields)
    finally:
        book.close()


def cell_text(value: object) -> str | None:
    """A cell's value as the text a CSV export of it would hold."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else repr(value)
    if isinstance(value, datetime):
        return whole_second(value).strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(value, (date, time)):
        return value.isoformat()
    return str(value)
