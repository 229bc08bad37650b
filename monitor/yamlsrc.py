"""Safe YAML loading that remembers line numbers, for ``path:line: message`` errors.

Only ``yaml.SafeLoader`` is used: a file can never construct Python objects. Mappings
come back as :class:`LineDict` (a plain dict that also knows the line of each key) and
sequences as :class:`LineList` (knows the line of each element).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from .errors import SourceError, did_you_mean


class LineDict(dict):
    """A dict with ``.line`` (where it starts) and ``.key_lines`` (line of each key)."""

    def __init__(self, *args, line: int = 0, **kwargs):
        super().__init__(*args, **kwargs)
        self.line = line
        self.key_lines: dict = {}

    def line_of(self, key: str) -> int:
        return self.key_lines.get(key, self.line)


class LineList(list):
    """A list with ``.line`` and ``.item_lines``."""

    line: int = 0
    item_lines: list


class _Loader(yaml.SafeLoader):
    pass


def _construct_mapping(loader: _Loader, node: yaml.MappingNode) -> LineDict:
    loader.flatten_mapping(node)
    result = LineDict(line=node.start_mark.line + 1)
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        if not isinstance(key, (str, int, float, bool)) and key is not None:
            raise yaml.constructor.ConstructorError(
                None, None, "a key must be a plain value", key_node.start_mark
            )
        if key in result:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key '{key}'", key_node.start_mark
            )
        result[key] = loader.construct_object(value_node, deep=True)
        result.key_lines[key] = key_node.start_mark.line + 1
    return result


def _construct_sequence(loader: _Loader, node: yaml.SequenceNode) -> LineList:
    result = LineList(loader.construct_object(child, deep=True) for child in node.value)
    result.line = node.start_mark.line + 1
    result.item_lines = [child.start_mark.line + 1 for child in node.value]
    return result


def _construct_timestamp(loader: _Loader, node: yaml.ScalarNode):
    try:
        return yaml.SafeLoader.construct_yaml_timestamp(loader, node)
    except ValueError as exc:
        raise yaml.constructor.ConstructorError(
            None, None, f"'{node.value}' is not a valid date ({exc})", node.start_mark) from None


_Loader.add_constructor("tag:yaml.org,2002:timestamp", _construct_timestamp)
_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)
_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_SEQUENCE_TAG, _construct_sequence)


def load_yaml(path: Path | str, error: type[SourceError] = SourceError) -> Any:
    """Parse one YAML file safely; a syntax error becomes ``path:line: message``."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise error(str(path), None, "file not found") from None
    except IsADirectoryError:
        raise error(str(path), None, "is a directory, expected a YAML file") from None
    except UnicodeDecodeError:
        raise error(str(path), None, "is not UTF-8 text") from None
    except OSError as exc:
        raise error(str(path), None, exc.strerror or str(exc)) from None
    try:
        return yaml.load(text, Loader=_Loader)  # noqa: S506 - _Loader is a SafeLoader
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else None
        raise error(str(path), line, f"invalid YAML: {exc.problem or exc.context}") from None
    except yaml.YAMLError as exc:
        raise error(str(path), None, f"invalid YAML: {exc}") from None


def check_keys(
    mapping: LineDict, allowed: set[str] | frozenset[str], path: str, error: type[SourceError],
    required: tuple[str, ...] = (),
) -> None:
    """Reject unknown keys with a "did you mean" and report missing required ones."""
    for key in mapping:
        if key not in allowed:
            raise error(
                path, mapping.line_of(key), f"unknown key '{key}'{did_you_mean(str(key), allowed)}"
            )
    for key in required:
        if key not in mapping or mapping[key] in (None, ""):
            raise error(path, mapping.line, f"missing required key '{key}'")
