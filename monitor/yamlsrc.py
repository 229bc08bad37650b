"""Safe YAML loading that remembers line numbers, for ``path:line: message`` errors.

Only ``yaml.SafeLoader`` is used: a file can never construct Python objects. Mappings
come back as :class:`LineDict` (a plain dict that also knows the line of each key) and
sequences as :class:`LineList` (knows the line of each element).

Reading is bounded (:class:`YamlLimits`, the ``limits`` section of config.yaml): the
file's size, the number of alias uses, and the size and depth of the document once its
aliases are expanded — a 572-byte "billion laughs" file otherwise expands to gigabytes
in whatever walks it. Each refusal is ``path:line: reason``.
"""

from __future__ import annotations

from dataclasses import dataclass
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


@dataclass(frozen=True)
class YamlLimits:
    """Bounds on one YAML file; the defaults are those of the ``limits`` settings."""

    max_bytes: int = 2_000_000
    max_aliases: int = 100
    max_depth: int = 40
    max_nodes: int = 200_000  # scalars, mappings and lists once aliases are expanded


class _Refused(yaml.MarkedYAMLError):
    pass


class _Loader(yaml.SafeLoader):
    limits = YamlLimits()

    def __init__(self, stream: str):
        super().__init__(stream)
        self.aliases = 0

    def compose_node(self, parent, index):
        if self.check_event(yaml.AliasEvent):
            self.aliases += 1
            if self.aliases > self.limits.max_aliases:
                raise _Refused(problem=f"more than {self.limits.max_aliases} alias uses "
                                       "(limits.max_yaml_aliases)",
                               problem_mark=self.peek_event().start_mark)
        return super().compose_node(parent, index)

    def compose_document(self):
        node = super().compose_document()
        if node is not None:
            _check_expanded(node, self.limits)
        return node


def _check_expanded(root: yaml.Node, limits: YamlLimits) -> None:
    """Refuse a document whose aliases expand past ``max_nodes`` or ``max_depth``: sizes
    and depths are computed once per node (aliases share nodes), so this is linear."""
    sizes: dict[int, tuple[int, int]] = {}  # id(node) → (expanded size, depth)

    def measure(node: yaml.Node, depth: int) -> tuple[int, int]:
        if depth > limits.max_depth:
            raise _Refused(problem=f"nested deeper than {limits.max_depth} levels "
                                   "(limits.max_yaml_depth)", problem_mark=node.start_mark)
        known = sizes.get(id(node))
        if known is not None:
            if depth + known[1] > limits.max_depth:
                measure_children(node, depth)  # raises at the offending node
            return known
        total, deepest = measure_children(node, depth)
        if total > limits.max_nodes:
            raise _Refused(problem=f"expands to more than {limits.max_nodes} values "
                                   "(an alias bomb? limits.max_yaml_nodes)",
                           problem_mark=node.start_mark)
        sizes[id(node)] = (total, deepest)
        return total, deepest

    def measure_children(node: yaml.Node, depth: int) -> tuple[int, int]:
        if isinstance(node, yaml.ScalarNode):
            return 1, 0
        children = ([c for pair in node.value for c in pair]
                    if isinstance(node, yaml.MappingNode) else node.value)
        total, deepest = 1, 0
        for child in children:
            size, below = measure(child, depth + 1)
            total += size
            deepest = max(deepest, below + 1)
            if total > limits.max_nodes:
                raise _Refused(problem=f"expands to more than {limits.max_nodes} values "
                                       "(an alias bomb? limits.max_yaml_nodes)",
                               problem_mark=child.start_mark)
        return total, deepest

    if root is not None:
        measure(root, 0)


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


def load_yaml(path: Path | str, error: type[SourceError] = SourceError,
              limits: YamlLimits = YamlLimits()) -> Any:
    """Parse one YAML file safely and within ``limits``; a syntax error or a refusal
    becomes ``path:line: message``."""
    path = Path(path)
    try:
        size = path.stat().st_size
        if path.is_file() and size > limits.max_bytes:
            raise error(str(path), None, f"is {size} bytes, more than the {limits.max_bytes} "
                                         "a YAML file may have (limits.max_yaml_bytes)")
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise error(str(path), None, "file not found") from None
    except IsADirectoryError:
        raise error(str(path), None, "is a directory, expected a YAML file") from None
    except UnicodeDecodeError:
        raise error(str(path), None, "is not UTF-8 text") from None
    except OSError as exc:
        raise error(str(path), None, exc.strerror or str(exc)) from None
    loader = type("_BoundedLoader", (_Loader,), {"limits": limits})
    try:
        return yaml.load(text, Loader=loader)  # noqa: S506 - _Loader is a SafeLoader
    except RecursionError:
        raise error(str(path), None, "nested too deeply (limits.max_yaml_depth)") from None
    except _Refused as exc:
        mark = exc.problem_mark
        raise error(str(path), mark.line + 1 if mark else None, str(exc.problem)) from None
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
