"""Helpers shared by detectors."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from itertools import groupby

from ...timeutil import aware
from ..finding import Context

__all__ = ["aware", "by_case", "local"]


def by_case(rows: Iterable) -> Iterator[tuple[str, list]]:
    """Group result rows (ordered by case_id) into (case_id, rows)."""
    for case_id, group in groupby(rows, key=lambda r: r.case_id):
        yield case_id, list(group)




def local(value, ctx: Context) -> str:
    """A stored UTC timestamp as local ISO text, for evidence and messages."""
    return aware(value).astimezone(ctx.tz).isoformat()
