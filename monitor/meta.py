"""Facts about the store itself (table ``meta``, key → text), read and written here only.

``audit_as_of``: the moment the data describe, for a database that is a snapshot rather
than a live feed — the demo county, whose log ends on 1 February 2026. Commands whose
``--as-of`` defaults to now use it instead when it is set, and say so (cli.py), so the
demo is never audited as of today by accident (172 overdue alerts that are not real).
"""

from __future__ import annotations

from datetime import datetime, timezone

from sqlalchemy import Engine, delete, insert, select

from .models import Meta

AUDIT_AS_OF = "audit_as_of"


def audit_moment(engine: Engine) -> datetime | None:
    """The stored audit moment (UTC), or None for a live database."""
    with engine.connect() as conn:
        value = conn.scalar(select(Meta.value).where(Meta.key == AUDIT_AS_OF))
    return datetime.fromisoformat(value) if value else None


def pin_audit_moment(engine: Engine, at: datetime | None) -> None:
    """Store ``at`` as the moment the data describe; None removes it (a live database)."""
    with engine.begin() as conn:
        conn.execute(delete(Meta).where(Meta.key == AUDIT_AS_OF))
        if at is not None:
            conn.execute(insert(Meta).values(
                key=AUDIT_AS_OF, value=at.astimezone(timezone.utc).isoformat()))
