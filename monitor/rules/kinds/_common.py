"""Helpers shared by detectors."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import datetime, timezone
from itertools import groupby

from ..finding import Context


def by_case(rows: Iterable) -> Iterator[tuple[str, list]]:
    """Group result rows (ordered by case_id) into (case_id, rows)."""
    for case_id, group in groupby(rows, key=lambda r: r.case_id):
        yield case_id, list(group)


def aware(value) -> datetime:
    """Timestamps from window functions may come back as naive UTC text on SQLite."""
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)


def local(value, ctx: Context) -> str:
    """A stored UTC timestamp as local ISO text, for evidence and messages."""
    return aware(value).astimezone(ctx.tz).isoformat()
