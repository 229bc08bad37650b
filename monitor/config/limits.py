"""Limits on hostile or broken input — the ``limits`` section of config.yaml.

Each limit bounds what one file, row or rule may make the service do (memory, time, a
crash); see docs/security.md ("Limits on hostile input") for what each one protects.
The YAML bounds apply to rule and catalog files with these values; config.yaml itself is
read with the defaults (it cannot loosen the bounds it is read under).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..errors import ConfigError
from ..yamlsrc import YamlLimits
from .settings import Setting, declared, read_section, section

AMOUNT_FORMATS = ("1,234.56", "1.234,56", "1 234,56", "none")

LIMIT_SETTINGS: tuple[Setting, ...] = (
    Setting("earliest_year", 1990, int,
            "An input timestamp (occurred_at, recorded_at, at) before 1 January of this year "
            "is quarantined as bad_timestamp (a 0001-01-01 from a broken export)."),
    Setting("latest_year", 2100, int,
            "An input timestamp after this year is quarantined as bad_timestamp."),
    Setting("max_field_chars", 4000, int,
            "Longest value of one field of an input row (a note, the attachments); a longer "
            "row is quarantined as too_long, its text cut in the quarantine."),
    Setting("max_json_depth", 32, int,
            "Deepest nesting of arrays and objects in a JSON Lines row; a deeper row is "
            "quarantined as too_deep."),
    Setting("max_yaml_bytes", YamlLimits.max_bytes, int,
            "Largest rule or catalog file read, in bytes."),
    Setting("max_yaml_aliases", YamlLimits.max_aliases, int,
            "Most YAML alias uses (*name) in one rule or catalog file (an alias bomb "
            "expands a few hundred bytes to gigabytes)."),
    Setting("max_yaml_depth", YamlLimits.max_depth, int,
            "Deepest nesting of mappings and lists in one rule or catalog file."),
    Setting("max_yaml_nodes", YamlLimits.max_nodes, int,
            "Most values (scalars, mappings, lists) a rule or catalog file may hold once its "
            "aliases are expanded."),
    Setting("max_format_width", 200, int,
            "Largest width or precision in a rule's message format ({duration:>20}); a rule "
            "asking more is refused by `rules check` and at load."),
    Setting("file_mode", "0600", str,
            "Permissions of the files permit-monitor creates (reports, the SQLite database, "
            "files moved out of the inbox and their .reason files), octal."),
    Setting("dir_mode", "0700", str,
            "Permissions of the directories permit-monitor creates (reports/, the inbox's "
            "done/ and failed/), octal."),
    Setting("amount_format", AMOUNT_FORMATS[0], str,
            "How an amount with thousands separators is read: '1,234.56' (comma groups of "
            "three, dot decimals), '1.234,56', '1 234,56', or 'none' (refuse any separator). "
            "An amount that does not follow it is quarantined as bad_amount, never guessed."),
)


def _mode(text: str) -> int:
    return int(text, 8)


@dataclass(frozen=True)
class Limits:
    earliest_year: int = declared(LIMIT_SETTINGS, "earliest_year")
    latest_year: int = declared(LIMIT_SETTINGS, "latest_year")
    max_field_chars: int = declared(LIMIT_SETTINGS, "max_field_chars")
    max_json_depth: int = declared(LIMIT_SETTINGS, "max_json_depth")
    max_yaml_bytes: int = declared(LIMIT_SETTINGS, "max_yaml_bytes")
    max_yaml_aliases: int = declared(LIMIT_SETTINGS, "max_yaml_aliases")
    max_yaml_depth: int = declared(LIMIT_SETTINGS, "max_yaml_depth")
    max_yaml_nodes: int = declared(LIMIT_SETTINGS, "max_yaml_nodes")
    max_format_width: int = declared(LIMIT_SETTINGS, "max_format_width")
    file_mode: int = declared(LIMIT_SETTINGS, "file_mode", _mode)
    dir_mode: int = declared(LIMIT_SETTINGS, "dir_mode", _mode)
    amount_format: str = declared(LIMIT_SETTINGS, "amount_format")

    @property
    def yaml(self) -> YamlLimits:
        return YamlLimits(self.max_yaml_bytes, self.max_yaml_aliases, self.max_yaml_depth,
                          self.max_yaml_nodes)


def load_limits(raw: Any, where: str) -> Limits:
    raw = section(raw, "limits", where)
    values = read_section(raw, LIMIT_SETTINGS, where)
    for name in ("max_field_chars", "max_json_depth", "max_yaml_bytes", "max_yaml_depth",
                 "max_yaml_nodes", "max_format_width"):
        if values[name] < 1:
            raise ConfigError(where, raw.line_of(name), f"'limits.{name}' must be at least 1")
    if values["max_yaml_aliases"] < 0:
        raise ConfigError(where, raw.line_of("max_yaml_aliases"),
                          "'limits.max_yaml_aliases' must be at least 0")
    if values["earliest_year"] >= values["latest_year"] or values["earliest_year"] < 1:
        raise ConfigError(where, raw.line_of("latest_year"),
                          "'limits.latest_year' must be after 'limits.earliest_year'")
    for name in ("file_mode", "dir_mode"):
        try:
            mode = _mode(str(values[name]))
        except ValueError:
            mode = -1
        if not 0 <= mode <= 0o777:
            raise ConfigError(where, raw.line_of(name),
                              f"'limits.{name}' must be octal permissions like 0600, "
                              f"got {values[name]!r}")
        values[name] = mode
    if values["amount_format"] not in AMOUNT_FORMATS:
        raise ConfigError(where, raw.line_of("amount_format"),
                          f"'limits.amount_format' must be one of "
                          f"{', '.join(repr(f) for f in AMOUNT_FORMATS)}")
    return Limits(**values)
