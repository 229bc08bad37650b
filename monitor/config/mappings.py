"""The ``mappings`` section: named declarative mappings from any export to the event contract.

One mapping says, for CSV, XLSX, JSON Lines and XES alike, where each contract field
comes from (a column or attribute, or a constant), how activity names become workflow
steps (and which activities are system events: kept, flagged, never workflow steps), and
how values are read (timestamp formats incl. date-only and Excel serials, the time zone,
amount units, channel values). ``ingest events --mapping NAME`` applies one
(:mod:`monitor.ingest.mapping`); NAME is a key of this section or a YAML file holding one
mapping. See docs/mappings.md.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from ..errors import ConfigError, did_you_mean
from ..yamlsrc import LineDict, check_keys, load_yaml

# The event contract's fields (monitor.ingest.events.COLUMNS, repeated here: config sits
# below ingest; and the optional ``region``, monitor.ingest.eventregion) and the workflow
# steps a mapping may name (monitor.catalog.STEPS).
FIELDS = ("event_id", "case_id", "item_code", "department", "step", "actor", "occurred_at",
          "recorded_at", "amount", "channel", "attachments", "days", "note", "region")
STEPS = ("accept", "survey", "review", "approve", "decide", "fee_assessed", "fee_paid",
         "fee_waived", "certificate_printed", "complete", "suspend", "resume", "extend",
         "return", "refuse", "withdraw", "transfer")
FORMATS = ("csv", "jsonl", "xes", "xlsx")
CHANNEL_VALUES = ("online", "offline", "unknown")
AMOUNT_UNITS = {"yuan": 1, "fen": 100, "cent": 100, "jiao": 10}
MAPPING_KEYS = {"format", "encoding", "fields", "constants", "steps", "system_events",
                "timestamp", "amount_unit", "channels", "lifecycle"}
TIMESTAMP_KEYS = {"formats", "timezone"}
# Format names besides strptime patterns: ISO 8601 and Excel serial day numbers (1900
# date system; a fraction is the time of day), both with the precision of what is written.
NAMED_FORMATS = ("iso", "excel")
_DIRECTIVE = re.compile(r"%(.)")


@dataclass(frozen=True)
class TimestampFormat:
    """One way to read a timestamp; ``precision`` is what a value read this way can tell
    (``None``: from the value itself, for ``iso``)."""

    pattern: str
    precision: str | None


@dataclass(frozen=True)
class EventMapping:
    name: str
    where: str                     # file the mapping was read from, for messages
    format: str | None = None
    encoding: str | None = None
    fields: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    constants: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    steps: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    system_events: frozenset[str] = frozenset()
    formats: tuple[TimestampFormat, ...] = (TimestampFormat("iso", None),)
    timezone: str | None = None
    amount_scale: int = 1          # source units per yuan
    channels: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    # XES lifecycle:transition values imported (others set aside); None: every event
    lifecycle: tuple[str, ...] | None = None


def pattern_precision(pattern: str) -> str:
    """second, minute or day: the finest unit a strptime pattern reads."""
    directives = set(_DIRECTIVE.findall(pattern))
    if directives & {"S", "f", "T", "X", "c"}:
        return "second"
    if directives & {"M", "R"}:
        return "minute"
    if directives & {"H", "I"}:
        return "hour"
    return "day"


def load_mappings(raw: Any, where: str) -> dict[str, EventMapping]:
    """The ``mappings`` section: name → mapping, each validated (``where:line`` errors)."""
    if not raw:
        return {}
    if not isinstance(raw, LineDict):
        raise ConfigError(where, getattr(raw, "line", None), "'mappings' must be a mapping "
                          "of name → mapping")
    return {str(name): parse_mapping(spec, str(name), where, raw.line_of(name))
            for name, spec in raw.items()}


def load_mapping_file(path: str | Path) -> EventMapping:
    """A mapping of its own in a YAML file (the same keys as one entry of ``mappings``)."""
    raw = load_yaml(path, ConfigError)
    return parse_mapping(raw, Path(path).stem, str(path), getattr(raw, "line", 1))


def _text_map(spec: LineDict, key: str, where: str) -> dict[str, str]:
    value = spec.get(key)
    if value is None:
        return {}
    if not isinstance(value, LineDict):
        raise ConfigError(where, spec.line_of(key), f"'{key}' must be a mapping")
    for k, v in value.items():
        if v is None or isinstance(v, (dict, list)):
            raise ConfigError(where, value.line_of(k), f"'{key}.{k}' must be a single value")
    return {str(k).strip(): str(v).strip() for k, v in value.items()}


def _text_list(spec: LineDict, key: str, where: str) -> list[str]:
    value = spec.get(key) or []
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or any(isinstance(v, (dict, list)) for v in value):
        raise ConfigError(where, spec.line_of(key), f"'{key}' must be a list of names")
    return [str(v).strip() for v in value]


def _keyed(values: dict[str, str], allowed: tuple[str, ...], spec: LineDict, key: str,
           where: str, what: str) -> None:
    section = spec.get(key)
    for name in values:
        if name not in allowed:
            raise ConfigError(where, section.line_of(name) if isinstance(section, LineDict)
                              else spec.line_of(key),
                              f"'{key}': unknown {what} '{name}'{did_you_mean(name, allowed)}; "
                              f"one of {', '.join(allowed)}")


def parse_mapping(spec: Any, name: str, where: str, line: int | None) -> EventMapping:
    """One mapping, validated; every error is ``where:line: reason (did you mean …)``."""
    if not isinstance(spec, LineDict):
        raise ConfigError(where, line, f"mapping '{name}' must be a mapping of settings")
    check_keys(spec, MAPPING_KEYS, where, ConfigError)
    fields = _text_map(spec, "fields", where)
    _keyed(fields, FIELDS, spec, "fields", where, "contract field")
    constants = _text_map(spec, "constants", where)
    _keyed(constants, FIELDS, spec, "constants", where, "contract field")
    for both in sorted(fields.keys() & constants.keys()):
        raise ConfigError(where, spec["constants"].line_of(both),
                          f"'{both}' is given both as a column (fields) and as a constant")
    given = fields.keys() | constants.keys()
    for required in ("case_id", "item_code", "step", "occurred_at"):
        if required not in given:
            raise ConfigError(where, line or spec.line, f"mapping '{name}': no source for the required "
                              f"field '{required}' (give it under fields: or constants:)")
    steps = _text_map(spec, "steps", where)
    for activity, step in steps.items():
        if step not in STEPS:
            raise ConfigError(where, spec["steps"].line_of(activity),
                              f"'steps': '{activity}' → unknown step '{step}'"
                              f"{did_you_mean(step, STEPS)}; steps are {', '.join(STEPS)}")
    system = _text_list(spec, "system_events", where)
    for activity in system:
        if activity in steps:
            raise ConfigError(where, spec.line_of("system_events"),
                              f"'{activity}' is both a system event and mapped to step "
                              f"'{steps[activity]}': a system event is never a workflow step")
    fmt = spec.get("format")
    if fmt is not None and fmt not in FORMATS:
        raise ConfigError(where, spec.line_of("format"), f"unknown format '{fmt}'"
                          f"{did_you_mean(str(fmt), FORMATS)}; one of {', '.join(FORMATS)}")
    formats, zone = _timestamp(spec, where)
    unit = spec.get("amount_unit", "yuan")
    if unit not in AMOUNT_UNITS:
        raise ConfigError(where, spec.line_of("amount_unit"), f"unknown amount_unit '{unit}'"
                          f"{did_you_mean(str(unit), AMOUNT_UNITS)}; one of "
                          f"{', '.join(AMOUNT_UNITS)}")
    channels = _text_map(spec, "channels", where)
    for value, meaning in channels.items():
        if meaning not in CHANNEL_VALUES:
            raise ConfigError(where, spec["channels"].line_of(value),
                              f"'channels': '{value}' → '{meaning}' is not a channel"
                              f"{did_you_mean(meaning, CHANNEL_VALUES)}; one of "
                              f"{', '.join(CHANNEL_VALUES)}")
    encoding = spec.get("encoding")
    if encoding is not None:
        import codecs

        try:
            codecs.lookup(str(encoding))
        except LookupError:
            raise ConfigError(where, spec.line_of("encoding"),
                              f"unknown encoding '{encoding}' (e.g. utf-8, gbk, gb18030)") from None
    return EventMapping(
        name=name, where=where, format=fmt, encoding=encoding,
        fields=MappingProxyType(fields),
        constants=MappingProxyType(constants), steps=MappingProxyType(steps),
        system_events=frozenset(system), formats=formats, timezone=zone,
        amount_scale=AMOUNT_UNITS[unit],
        channels=MappingProxyType({k.lower(): v for k, v in channels.items()}),
        lifecycle=(tuple(v.lower() for v in _text_list(spec, "lifecycle", where))
                   if "lifecycle" in spec else None))


def _timestamp(spec: LineDict, where: str) -> tuple[tuple[TimestampFormat, ...], str | None]:
    section = spec.get("timestamp")
    if section is None:
        return (TimestampFormat("iso", None),), None
    if not isinstance(section, LineDict):
        raise ConfigError(where, spec.line_of("timestamp"), "'timestamp' must be a mapping "
                          "with formats and timezone")
    check_keys(section, TIMESTAMP_KEYS, where, ConfigError)
    patterns = _text_list(section, "formats", where) or ["iso"]
    formats = []
    for pattern in patterns:
        if pattern in NAMED_FORMATS:
            formats.append(TimestampFormat(pattern, None))
            continue
        if "%" not in pattern:
            raise ConfigError(where, section.line_of("formats"),
                              f"timestamp format '{pattern}' has no % directive"
                              f"{did_you_mean(pattern, NAMED_FORMATS)}; give a strptime "
                              "pattern like '%Y/%m/%d %H:%M', or iso, or excel")
        formats.append(TimestampFormat(pattern, pattern_precision(pattern)))
    zone = section.get("timezone")
    if zone is not None:
        try:
            ZoneInfo(str(zone))
        except (ZoneInfoNotFoundError, ValueError):
            raise ConfigError(where, section.line_of("timezone"),
                              f"unknown timezone '{zone}' (e.g. Asia/Shanghai)") from None
    return tuple(formats), zone
