"""How a setting is declared: once, in a table that validates, supplies defaults and documents.

Each section of config.yaml has a table of :class:`Setting` (name, default, type, help).
The same table

* validates a section of the file and fills in what it leaves out (:func:`read_section`);
* gives the frozen dataclass the section loads into its defaults: each field is
  ``declared(TABLE, "name")``, which takes the table's default (frozen: a list becomes a
  tuple, a mapping read-only) and records the setting in the field's metadata, so a test
  can tell that no field carries a default of its own (tests/test_config.py);
* is printed by ``permit-monitor settings`` and checked against the README
  (tests/test_docs.py).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any

from ..errors import ConfigError
from ..yamlsrc import LineDict, check_keys

SETTING = "setting"  # the key of a declared field's metadata: its Setting


@dataclass(frozen=True)
class Setting:
    name: str
    default: Any
    type: type
    help: str


def find(table: tuple[Setting, ...], name: str) -> Setting:
    """The setting called ``name`` in ``table``."""
    for setting in table:
        if setting.name == name:
            return setting
    raise KeyError(f"no setting '{name}' in its table")


def frozen(value: Any) -> Any:
    """A table's default as a frozen dataclass holds it: lists as tuples, mappings read-only."""
    if isinstance(value, list):
        return tuple(value)
    if isinstance(value, dict):
        return MappingProxyType(dict(value))
    return value


_IMMUTABLE = (type(None), str, int, float, bool, tuple, frozenset, Path)


def declared(table: tuple[Setting, ...], name: str,
             convert: Callable[[Any], Any] = frozen, required: bool = False) -> Any:
    """A dataclass field for the setting ``name`` of ``table``: its default is the table's,
    passed through ``convert`` (how the loader stores the value: a Path, a nested section);
    ``required``: no default (the section exists only when this is set)."""
    setting = find(table, name)
    metadata = {SETTING: setting}
    if required:
        return dataclasses.field(metadata=metadata)
    value = convert(setting.default)
    if isinstance(value, _IMMUTABLE):
        return dataclasses.field(default=value, metadata=metadata)
    return dataclasses.field(default_factory=lambda: convert(setting.default), metadata=metadata)


def typed(value: Any, setting: Setting, where: str, line: int | None) -> Any:
    """``value`` as read from the file, checked against the setting's type; the default
    if absent."""
    if value is None:
        return setting.default
    expected = setting.type
    ok = isinstance(value, expected) and not (expected is int and isinstance(value, bool))
    if not ok:
        raise ConfigError(where, line, f"'{setting.name}' must be {expected.__name__}, "
                                        f"got {type(value).__name__} {value!r}")
    return value


def read_section(raw: LineDict, table: tuple[Setting, ...], where: str) -> dict[str, Any]:
    """Every setting of ``table``: its value in ``raw`` (type-checked) or its default; a key
    the table does not declare is an error with a did-you-mean."""
    check_keys(raw, {s.name for s in table}, where, ConfigError)
    return {s.name: typed(raw.get(s.name), s, where, raw.line_of(s.name)) for s in table}


def section(raw: Any, name: str, where: str) -> LineDict:
    """``raw`` if it is a mapping; else the error that section ``name`` must be one."""
    if not isinstance(raw, LineDict):
        raise ConfigError(where, getattr(raw, "line", None), f"'{name}' must be a mapping")
    return raw


def line(mapping: Any, key: str) -> int | None:
    """The line of ``key`` in a mapping read from the file (None if it was not)."""
    return mapping.line_of(key) if isinstance(mapping, LineDict) else None
