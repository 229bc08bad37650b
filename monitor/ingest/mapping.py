"""Applying a declarative mapping: rows of any export in, event-contract fields out.

A reader (CSV, JSON Lines, XES, or any iterable of ``(line, dict)``) gives each source row
as a dict of its own column or attribute names; :func:`mapped_rows` turns it into a
:class:`SourceRow` of contract fields, which the pipeline validates and stores like any
other. What a mapping says is declared in :mod:`monitor.config.mappings`.

Beyond the contract's columns a mapped row carries

* ``precision``: ``second``, ``minute``, ``hour`` or ``day`` — the finest unit its
  ``occurred_at`` was written in (a date-only stamp is ``day``); rules never rest a
  finding on a span finer than this;
* ``system``: ``true`` for an activity listed in ``system_events`` — stored under its own
  name, flagged, and never taken for a workflow step.
"""

from __future__ import annotations

import hashlib
import re
from hashlib import blake2b
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime, timedelta, tzinfo
from decimal import Decimal, InvalidOperation
from zoneinfo import ZoneInfo

from ..config.mappings import EventMapping
from ..errors import IngestError, did_you_mean
from .sources import SourceRow

SKIPPED_LIFECYCLE = "skipped_lifecycle"
LIFECYCLE_KEY = "lifecycle:transition"
TRACE_PREFIX = "case:"
ORDINAL = "_ordinal"      # an XES event's position in its trace (for derived ids)
STEP_WIDTH = 64           # the store's width for step names
# What a stamp of each precision can be off by, in seconds (used by the rules).
SLACK_SECONDS = {"second": 1, "minute": 60, "hour": 3600, "day": 86400}
EXCEL_EPOCH = datetime(1899, 12, 30)
_ISO = re.compile(r"^\d{4}-\d{2}-\d{2}(?:[T ](\d{2})(?::(\d{2})(?::(\d{2}))?)?)?")
_OFFSET = re.compile(r"(?:Z|[+-]\d{2}:?\d{2})$")
# The usual stamp of an export, to the second with its offset: read_stamp passes it as
# written with precision second (a narrower form of what _ISO and _OFFSET accept)
_ISO_SECONDS = re.compile(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(?:\.\d+)?"
                          r"(?:Z|[+-]\d{2}:?\d{2})\Z")


class _BadValue(Exception):
    pass


def derived_event_id(case_id: str | None, ordinal: int, activity: str | None,
                     timestamp: str | None) -> str:
    """A stable id for an XES event without one: same log, same ids, on every re-import."""
    text = (("" if case_id is None else str(case_id)) + "\x1f" + str(ordinal) + "\x1f"
            + ("" if activity is None else str(activity)) + "\x1f"
            + ("" if timestamp is None else str(timestamp)))
    return "xes-" + blake2b(text.encode(), digest_size=12).hexdigest()


def row_event_id(*values: str | None) -> str:
    """A stable id for a table row without one, from what the row says (case, activity,
    time, actor): re-importing the export finds the same ids; two identical rows are one
    event."""
    text = "\x1f".join("" if v is None else v for v in values)
    return "row-" + hashlib.blake2b(text.encode(), digest_size=12).hexdigest()


def short_step(name: str) -> str:
    """An activity name that fits the store: long names keep their start and a digest."""
    if len(name) <= STEP_WIDTH:
        return name
    digest = hashlib.blake2b(name.encode(), digest_size=4).hexdigest()
    return name[:STEP_WIDTH - 10] + "~" + digest


def read_stamp(text: str, mapping: EventMapping, tz: tzinfo) -> tuple[str, str]:
    """``text`` read by the mapping's formats (first that fits) → (ISO 8601 with offset,
    precision). Raises :class:`_BadValue` when no format fits."""
    precision: str | None
    for fmt in mapping.formats:
        try:
            if fmt.pattern == "iso":
                match = _ISO.match(text)
                if match and _OFFSET.search(text, 19):
                    # with its offset: passed as written, the contract parses it once
                    return text, _precision(match)
                value, precision = _iso(text)
            elif fmt.pattern == "excel":
                value, precision = _excel(text)
            else:
                value, precision = datetime.strptime(text, fmt.pattern), fmt.precision
        except ValueError:
            continue
        if value.tzinfo is None:
            value = value.replace(tzinfo=tz)
        elif fmt.pattern == "iso":
            return text, precision or "second"  # as written: the contract reads it so
        return value.isoformat(), precision or "second"
    tried = ", ".join(f.pattern for f in mapping.formats)
    raise _BadValue(f"'{text}' fits none of the timestamp formats ({tried})")


def _precision(match: re.Match) -> str:
    hour, minute, second = match.groups()
    return ("day" if hour is None else "hour" if minute is None
            else "minute" if second is None else "second")


def _iso(text: str) -> tuple[datetime, str]:
    match = _ISO.match(text)
    if not match:
        raise ValueError(text)
    value = datetime.fromisoformat(text.replace(" ", "T", 1) if match.group(1) else text[:10])
    return value, _precision(match)


def _excel(text: str) -> tuple[datetime, str]:
    days = float(text)
    if not 1 <= days < 2958466:  # 1900-01-01 … 9999-12-31
        raise ValueError(text)
    whole = days == int(days)
    value = EXCEL_EPOCH + timedelta(days=days)
    return value.replace(microsecond=0) + timedelta(seconds=round(value.microsecond / 1e6)), \
        "day" if whole else "second"


def _amount(text: str, scale: int) -> str:
    if scale == 1:
        return text
    try:
        value = Decimal(text.replace(",", "")) / scale
    except InvalidOperation:
        return text  # the contract says why it is not an amount
    return str(value.quantize(Decimal("0.01")))


def check_header(mapping: EventMapping, header: Iterable[str], source: str) -> None:
    """Every column the mapping reads must be in the header: else one line, nothing read."""
    have = list(header)
    for target, column in mapping.fields.items():
        if column not in have:
            raise IngestError(
                f"{source}:1: mapping '{mapping.name}' reads {target} from column '{column}', "
                f"which the header lacks{did_you_mean(column, have)} (it has: "
                f"{', '.join(h for h in have if h) or 'nothing'}); nothing was read")


def mapped_rows(mapping: EventMapping, records: Iterable[tuple[int, dict] | SourceRow],
                tz: tzinfo, source: str, check: bool = True) -> Iterator[SourceRow]:
    """Each ``(line, row)`` of a source as a :class:`SourceRow` of contract fields (a
    reader's :class:`SourceRow` is taken too: one it could not split passes as it is).

    ``check``: the first row's keys are the file's header, checked against the mapping
    (tables; not XES or JSON Lines, whose rows need not all have the same keys)."""
    mapper = row_mapper(mapping, ZoneInfo(mapping.timezone) if mapping.timezone else tz)
    first = True
    for record in records:
        if isinstance(record, SourceRow):
            if record.problem:
                yield record
                continue
            line, raw = record.line, record.fields
        else:
            line, raw = record
        if first and check:
            check_header(mapping, raw.keys(), source)
        first = False
        yield mapper(line, raw)


def map_row(mapping: EventMapping, line: int, raw: dict, tz: tzinfo) -> SourceRow:
    """One source row → contract fields (or the row set aside, with why)."""
    return row_mapper(mapping, tz)(line, raw)


def row_mapper(mapping: EventMapping, tz: tzinfo) -> Callable[[int, dict], SourceRow]:
    """:func:`map_row` for every row of one source: what the mapping says is looked up
    once here, not per row (this runs for every event read)."""
    constants: dict[str, str | None] = dict(mapping.constants)
    columns = mapping.fields
    pairs = tuple(columns.items())
    system_events, steps = mapping.system_events, mapping.steps
    derive = "event_id" not in columns
    case_column, step_column, time_column = (columns.get(name, "") for name in
                                             ("case_id", "step", "occurred_at"))
    given = {*constants, *columns}
    stamps = tuple(name for name in ("occurred_at", "recorded_at") if name in given)
    fast_iso = bool(mapping.formats) and mapping.formats[0].pattern == "iso"
    amounts, channels = "amount" in given, "channel" in given and bool(mapping.channels)
    lifecycle = mapping.lifecycle

    def mapper(line: int, raw: dict) -> SourceRow:
        get = raw.get
        fields: dict[str, str | None] = constants.copy()
        for target, column in pairs:
            value = get(column)
            fields[target] = value.strip() if value.__class__ is str else value
        activity = fields.get("step")
        if activity:
            if activity in system_events:
                fields["step"], fields["system"] = short_step(activity), "true"
            else:
                fields["step"] = short_step(steps.get(activity, activity))
            if fields["step"] != activity and not fields.get("note"):
                fields["note"] = activity
        if derive and not fields.get("event_id"):
            fields["event_id"] = (  # from the values as written
                derived_event_id(get(case_column), raw[ORDINAL], get(step_column),
                                 get(time_column))
                if ORDINAL in raw
                else row_event_id(fields.get("case_id"), activity, fields.get("occurred_at"),
                                  fields.get("actor")))
        for name in stamps:
            text = fields.get(name)
            if text:
                if fast_iso and _ISO_SECONDS.match(text):  # what read_stamp gives it
                    continue  # as written, precision second
                try:
                    fields[name], precision = read_stamp(text, mapping, tz)
                except _BadValue as exc:
                    return SourceRow(line, fields, f"{name}: {exc}", "bad_timestamp")
                if name == "occurred_at" and precision != "second":
                    fields["precision"] = precision
        if amounts and (amount := fields.get("amount")):
            fields["amount"] = _amount(amount, mapping.amount_scale)
        if channels and (channel := fields.get("channel")):
            fields["channel"] = mapping.channels.get(channel.lower(), channel)
        transition = get(LIFECYCLE_KEY)
        if lifecycle is not None and transition is not None \
                and transition.strip().lower() not in lifecycle:
            fields["lifecycle"] = transition
            wanted = ", ".join(lifecycle) or "none"
            return SourceRow(line, fields, f"lifecycle:transition '{transition}' is not "
                                           f"imported (mapping: lifecycle: {wanted})",
                             SKIPPED_LIFECYCLE)
        return SourceRow(line, fields)

    return mapper
