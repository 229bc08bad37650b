"""Regions: administrative division codes (行政区划代码, GB/T 2260) and how they nest.

A code is six digits ``PPCCXX``: ``PP0000`` a province (省级), ``PPCC00`` a city (地级),
``PPCCXX`` a county (县级: county, district, county-level city). Every record of the
store carries the code of its county (docs/scale.md); a city or province office's scope
is the counties it covers (:func:`covers`), and reports roll counties up to their city
and province.

Two codes are not plain digits:

* ``000000`` (:data:`UNNAMED`) is the store's region before ``region`` is set in
  config.yaml: a county not yet named. It is its own county, with no parent.
* ``PP90XX`` is a county-level unit the province administers directly (省直辖县级行政
  单位, e.g. ``429004`` 仙桃): ``PP9000`` names no city, so its parent is the province.

This module only reads codes: it imports nothing of the project.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

UNNAMED = "000000"
PROVINCE, CITY, COUNTY = "province", "city", "county"
LEVELS = (PROVINCE, CITY, COUNTY)
LEVEL_NAMES = {PROVINCE: "省级", CITY: "市级", COUNTY: "县级"}

# GB/T 2260's first two digits: the provinces, autonomous regions and municipalities
PROVINCES = frozenset({
    "11", "12", "13", "14", "15", "21", "22", "23", "31", "32", "33", "34", "35", "36",
    "37", "41", "42", "43", "44", "45", "46", "50", "51", "52", "53", "54", "61", "62",
    "63", "64", "65", "71", "81", "82"})
DIRECT = "90"  # middle digits of a county-level unit under the province itself


class RegionCodeError(ValueError):
    """Not a region code; the message says why, in Chinese, for the person who typed it."""


@dataclass(frozen=True, order=True)
class Region:
    """One checked code."""

    code: str

    @property
    def level(self) -> str:
        return level(self.code)

    @property
    def parent(self) -> str | None:
        return parent(self.code)


def problem(code: object) -> str | None:
    """Why ``code`` is not a region code, in Chinese; None if it is one."""
    if not isinstance(code, str):
        return f"行政区划代码须为 6 位数字字符串（如 330102），而非 {type(code).__name__} {code!r}"
    if code == UNNAMED:
        return None
    if len(code) != 6 or not code.isascii() or not code.isdigit():
        return f"行政区划代码须为 6 位数字（如 330102），而非 {code!r}"
    if code[:2] not in PROVINCES:
        return f"行政区划代码 {code} 的前两位 {code[:2]} 不是省级代码（如 33 浙江省）"
    if code[2:4] == "00" and code[4:] != "00":
        return f"行政区划代码 {code} 的县级位 {code[4:]} 须在市级位之下（市级位为 00）"
    return None


def check(code: object) -> str:
    """``code`` if it is a region code; else :class:`RegionCodeError` saying why."""
    reason = problem(code)
    if reason:
        raise RegionCodeError(reason)
    assert isinstance(code, str)
    return code


def parse(code: object) -> Region:
    """The checked :class:`Region` of ``code`` (:class:`RegionCodeError` if it is none)."""
    return Region(check(code))


def level(code: str) -> str:
    """province, city or county (``000000`` counts as a county: the store's own)."""
    check(code)
    if code == UNNAMED or code[4:] != "00":
        return COUNTY
    if code[2:4] != "00":
        return CITY
    return PROVINCE


def parent(code: str) -> str | None:
    """The code one level up: a county's city (its province when the province runs it
    directly, ``PP90XX``), a city's province; None for a province and for ``000000``."""
    kind = level(code)
    if code == UNNAMED or kind == PROVINCE:
        return None
    if kind == COUNTY and code[2:4] != DIRECT:
        return code[:4] + "00"
    return code[:2] + "0000"


def ancestors(code: str) -> tuple[str, ...]:
    """``code``'s parent, its parent's parent …, nearest first."""
    found = []
    up = parent(code)
    while up is not None:
        found.append(up)
        up = parent(up)
    return tuple(found)


def covers(scope: str, code: str) -> bool:
    """Whether an office of region ``scope`` sees records of region ``code``: a county
    only its own, a city its counties, a province its cities and counties."""
    return scope == check(code) or check(scope) in ancestors(code)


def covered_prefix(scope: str) -> str | None:
    """The leading digits every code ``scope`` covers starts with (``33`` for a province,
    ``3301`` for a city), or None when it covers only itself (a county, ``000000``, and
    ``PP9000``, which is no city: its counties are the province's)."""
    kind = level(scope)
    if kind == COUNTY or scope[2:4] == DIRECT:
        return None
    return scope[:2] if kind == PROVINCE else scope[:4]


def children_level(scope: str) -> str | None:
    """The level one below ``scope`` (what a city's 督办 reaches: its counties); None
    for a county."""
    kind = level(scope)
    return None if kind == COUNTY else LEVELS[LEVELS.index(kind) + 1]


def within(scope: str, codes: Iterable[str]) -> list[str]:
    """The codes among ``codes`` that ``scope`` covers, sorted."""
    return sorted(c for c in set(codes) if covers(scope, c))


def rollup(code: str, to_level: str) -> str:
    """The region of ``to_level`` that ``code`` belongs to (itself when it is already at
    or above that level): a county rolled up to its city or province."""
    if to_level not in LEVELS:
        raise RegionCodeError(f"级别须为 {'、'.join(LEVELS)} 之一，而非 {to_level!r}")
    want = LEVELS.index(to_level)
    current = code
    while LEVELS.index(level(current)) > want:
        up = parent(current)
        if up is None or LEVELS.index(level(up)) < want:
            break  # a county the province runs directly has no city to roll up to
        current = up
    return current
