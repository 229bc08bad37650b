"""The quarantine: rows set aside with source, line and reason; listed and retried."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from dataclasses import replace
from datetime import datetime

from sqlalchemy import Engine, Row, func, select, update

from ..config import Config
from ..models import Department, Quarantine
from .eventregion import EventRegions
from .events import Codes
from .pipeline import process_event_batch, process_receipt_batch
from .sources import SourceRow
from .store import Tally

# Rows that no catalog fix can make valid: they are shown, never retried.
NOT_RETRYABLE = ("malformed_row", "skipped_lifecycle")


def list_quarantine(engine: Engine, *, reason: str | None = None, source: str | None = None,
                    include_resolved: bool = False, limit: int | None = None
                    ) -> Iterator[Row]:
    """Quarantined rows (open ones unless ``include_resolved``), oldest first."""
    query = select(Quarantine).order_by(Quarantine.id)
    if reason:
        query = query.where(Quarantine.reason == reason)
    if source:
        query = query.where(Quarantine.source == source)
    if not include_resolved:
        query = query.where(Quarantine.resolved_at.is_(None))
    if limit:
        query = query.limit(limit)
    with engine.connect() as conn:
        yield from conn.execute(query)


def quarantine_counts(engine: Engine) -> dict[str, int]:
    with engine.connect() as conn:
        return dict(conn.execute(select(Quarantine.reason, func.count())
                                 .where(Quarantine.resolved_at.is_(None))
                                 .group_by(Quarantine.reason)).tuples().all())


def retry_quarantine(engine: Engine, config: Config, now: datetime) -> Tally:
    """Re-validate every open quarantined row; those that now pass are stored.

    Rows stored (or found already stored) are marked resolved; the rest stay, with their
    reason updated if it changed (say from unknown_item to bad_timestamp).
    """
    catalogs: dict[str, EventRegions] = {}  # each region's, read once
    total = Tally()
    last_id = 0
    while True:
        with engine.begin() as conn:
            batch = conn.execute(
                select(Quarantine).where(Quarantine.resolved_at.is_(None),
                                         Quarantine.reason.not_in(NOT_RETRYABLE),
                                         Quarantine.id > last_id)
                .order_by(Quarantine.id).limit(config.batch_size)).all()
            if not batch:
                return total
            last_id = batch[-1].id
            for kind in ("events", "receipts", "activity", "ratings", "complaints"):
                for region in sorted({q.region for q in batch if q.kind == kind}):
                    entries = [q for q in batch if q.kind == kind and q.region == region]
                    # a row set aside is retried as of the region its run was of
                    if region not in catalogs:
                        catalogs[region] = EventRegions.load(conn, region, config.regions)
                    total += _retry_kind(conn, kind, entries, catalogs[region],
                                         replace(config, region=region), now)


def _retry_kind(conn, kind: str, entries: list[Row], regions: EventRegions,
                config: Config, now: datetime) -> Tally:
    rows = [SourceRow(q.line, json.loads(q.raw)) for q in entries]
    if kind == "events":
        stored = process_event_batch(conn, rows, regions, config.tz, None,
                                     config.limits.amount_format)
        bad = stored.bad
        tally = Tally(read=len(rows), inserted=len(stored.inserted),
                      duplicates=len(stored.duplicates), quarantined=len(bad),
                      by_reason=Counter(b.reason for _, b in bad))
        resolved = ([(i, "inserted") for i in stored.inserted]
                    + [(i, "duplicate") for i in stored.duplicates])
    else:
        position = {id(r): i for i, r in enumerate(rows)}
        if kind == "activity":
            from ..models import User
            from .activity import process_activity_batch

            users = Codes.load(conn, User.id, config.region)
            tally, stored_rows, set_aside = process_activity_batch(
                conn, rows, users, config.tz, None, region=config.region)
        elif kind in ("ratings", "complaints"):
            from .voice import SPECS, process_batch

            tally, stored_rows, set_aside = process_batch(
                conn, SPECS[kind], rows, Codes.load(conn, Department.code, config.region),
                config.tz, None,
                region=config.region)
        else:
            tally, stored_rows, set_aside = process_receipt_batch(
                conn, rows, Codes.load(conn, Department.code, config.region), {}, None,
                config.limits.amount_format,
                region=config.region)
        resolved = [(position[id(r)], "inserted") for r in stored_rows]
        bad = [(position[id(b.row)], b) for b in set_aside]
    for i, resolution in resolved:
        conn.execute(update(Quarantine).where(Quarantine.id == entries[i].id)
                     .values(resolved_at=now, resolution=resolution))
    for i, b in bad:
        conn.execute(update(Quarantine).where(Quarantine.id == entries[i].id)
                     .values(reason=b.reason, detail=b.detail))
    return tally
