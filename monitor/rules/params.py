"""Typed rule parameters: each kind declares a frozen dataclass; YAML values are checked
against its field types here, with one clear line per problem."""

from __future__ import annotations

import collections.abc
import dataclasses
import types
import typing
from decimal import Decimal, InvalidOperation
from typing import Any

from ..errors import RuleError, did_you_mean
from ..yamlsrc import LineDict


def _check(value: Any, hint: Any, name: str) -> Any:
    """Convert ``value`` to ``hint`` (int, float, Decimal, str, bool, tuple[str, ...],
    Mapping[str, int|float]) or raise ValueError saying what was expected."""
    origin = typing.get_origin(hint)
    if hint is bool:
        if isinstance(value, bool):
            return value
        raise ValueError(f"'{name}' must be true or false, got {value!r}")
    if hint in (int, float):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
            raise ValueError(f"'{name}' must be a number ≥ 0, got {value!r}")
        if hint is int and value != int(value):
            raise ValueError(f"'{name}' must be a whole number, got {value!r}")
        return hint(value)
    if hint is Decimal:
        try:
            result = Decimal(str(value))
        except InvalidOperation:
            raise ValueError(f"'{name}' must be an amount in yuan, got {value!r}") from None
        if isinstance(value, bool) or not result.is_finite() or result < 0:
            raise ValueError(f"'{name}' must be an amount ≥ 0, got {value!r}")
        return result
    if hint is str:
        if not isinstance(value, str) or not value:
            raise ValueError(f"'{name}' must be text, got {value!r}")
        return value
    if origin is tuple:
        (inner, _) = typing.get_args(hint)
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list):
            raise ValueError(f"'{name}' must be a list, got {value!r}")
        return tuple(_check(v, inner, name) for v in value)
    if origin in (dict, collections.abc.Mapping) or hint is dict:
        _, inner = typing.get_args(hint) or (str, Any)
        if not isinstance(value, dict):
            raise ValueError(f"'{name}' must be a mapping, got {value!r}")
        return types.MappingProxyType({str(k): _check(v, inner, f"{name}.{k}")
                                       for k, v in value.items()})
    raise TypeError(f"unsupported parameter type {hint!r}")  # a bug in a kind, not user input


def build_params(params_type: type, raw: LineDict | None, path: str, line: int) -> Any:
    """The kind's Params from a rule's ``params:`` mapping; unknown keys get a did-you-mean."""
    raw = raw or LineDict(line=line)
    if not isinstance(raw, dict):
        raise RuleError(path, line, "'params' must be a mapping")
    hints = typing.get_type_hints(params_type)
    names = [f.name for f in dataclasses.fields(params_type)]
    values = {}
    for key, value in raw.items():
        where = raw.line_of(key) if isinstance(raw, LineDict) else line
        if key not in names:
            raise RuleError(path, where, f"unknown parameter '{key}'{did_you_mean(str(key), names)}"
                                         f"; this kind takes {', '.join(names) or 'none'}")
        try:
            values[key] = _check(value, hints[key], key)
            check = getattr(params_type, "check_" + key, None)
            if check is not None:  # a kind's own check of one parameter's value
                check(values[key])
        except ValueError as exc:
            raise RuleError(path, where, str(exc)) from None
    try:  # a kind may check its params together (a ``__post_init__`` raising ValueError)
        return params_type(**values)
    except ValueError as exc:
        raise RuleError(path, line, str(exc)) from None


def describe(params_type: type) -> list[tuple[str, str, Any]]:
    """(name, type, default) of each parameter, for docs and ``rules kinds``."""
    hints = typing.get_type_hints(params_type)
    out = []
    for f in dataclasses.fields(params_type):
        default = f.default if f.default_factory is dataclasses.MISSING else f.default_factory()
        if isinstance(default, types.MappingProxyType):
            default = dict(default)
        out.append((f.name, getattr(hints[f.name], "__name__", str(hints[f.name])), default))
    return out
