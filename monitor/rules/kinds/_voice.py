"""What the citizens'-voice kinds share: working-day deadlines after a local date, and the
state of the alert a previous run raised for a subject (核实 = acknowledged, 整改 = resolved)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import Connection, select

from ...models import Alert
from ...timeutil import aware
from ..finding import Context

IN_CHUNK = 500


def local_day(value: datetime, ctx: Context) -> date:
    return aware(value).astimezone(ctx.tz).date()


def deadline(start: datetime, days: int, ctx: Context) -> date:
    """The last local day of ``days`` working days after the day of ``start``."""
    return ctx.calendar.add_workdays(local_day(start, ctx), days)


def lapsed(done: datetime | None, by: date, ctx: Context) -> bool:
    """Whether a step due by the end of local day ``by`` was not done in time, as of
    ``ctx.as_of`` (a step not yet done lapses once the day is over)."""
    if done is not None and aware(done) <= ctx.as_of:
        return local_day(done, ctx) > by
    return local_day(ctx.as_of, ctx) > by


def alert_states(conn: Connection, rule_id: str, subjects: list[str]) -> dict[str, Any]:
    """subject → (acknowledged_at, resolved_at, status) of the rule's alerts on them."""
    keys = [f"{rule_id}|{s}" for s in subjects]
    out: dict[str, Any] = {}
    for i in range(0, len(keys), IN_CHUNK):
        for row in conn.execute(select(Alert.subject, Alert.acknowledged_at,
                                       Alert.resolved_at, Alert.status)
                                .where(Alert.dedupe_key.in_(keys[i:i + IN_CHUNK]))):
            out[row.subject] = row
    return out


def in_scope(rule, department: str | None, item_code: str | None) -> bool:
    scope = rule.scope
    if scope.departments and department not in scope.departments:
        return False
    if department in scope.exclude_departments:
        return False
    if item_code is not None:
        if scope.items and item_code not in scope.items:
            return False
        if item_code in scope.exclude_items:
            return False
    return True
