"""The monitoring log (监察日志): who logged in, out, or handled something, and when.

CSV with ``user_id, at, action`` (login | logout | handle), through the same path as the
other inputs: a run per file, a transaction per batch, bad rows quarantined (kind
``activity``) with line and reason, retried by ``quarantine retry`` after a catalog fix.
A row already stored (same user, moment and action) is a duplicate.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from datetime import datetime, tzinfo
from typing import Any

from sqlalchemy import Connection, Engine, select

from ..config import Config
from ..models import Activity, User
from ..timeutil import ValueProblem, parse_timestamp
from .events import Codes, Rejected, refuse
from .resilient import row_splitter
from .sources import Source, SourceRow
from .store import Bad, Progress, Tally, insert_ignoring_conflicts, quarantine_rows

ACTIVITY_COLUMNS = ("user_id", "at", "action")
ACTIONS = ("login", "logout", "handle")


def normalize_activity(fields: dict[str, Any], users: frozenset[str], tz: tzinfo
                       ) -> dict[str, Any]:
    values = {k: (fields.get(k) or "").strip() for k in ACTIVITY_COLUMNS}
    missing = [k for k, v in values.items() if not v]
    if missing:
        raise Rejected("missing_field", f"missing required field {', '.join(missing)}")
    if values["user_id"] not in users:
        raise refuse(users, "用户", values["user_id"], "unknown_user",
                     f"user '{values['user_id']}' is not in the catalog")
    if values["action"] not in ACTIONS:
        raise Rejected("bad_action", f"action must be one of {', '.join(ACTIONS)}, "
                                     f"got '{values['action']}'")
    try:
        at = parse_timestamp(values["at"], tz)
    except ValueProblem as exc:
        raise Rejected("bad_timestamp", f"at: {exc}") from None
    return {"user_id": values["user_id"], "at": at, "action": values["action"]}


def process_activity_batch(conn: Connection, rows: list[SourceRow], users: frozenset[str],
                           tz: tzinfo, run_id: int | None, *, region: str
                           ) -> tuple[Tally, list[SourceRow], list[Bad]]:
    """Store what is new; returns the tally, the rows now stored (or already), the bad."""
    tally, bad, fresh = Tally(read=len(rows)), [], {}
    for r in rows:
        try:
            if r.problem:
                raise Rejected(r.problem_reason, r.problem)
            rec = normalize_activity(r.fields, users, tz)
        except Rejected as exc:
            bad.append(Bad(r, exc.reason, exc.detail))
            continue
        key = (rec["user_id"], rec["at"], rec["action"])
        if key in fresh:
            tally.duplicates += 1
            continue
        fresh[key] = (r, dict(rec, run_id=run_id, source_line=r.line, region=region))
    stored: set = set()
    if fresh:
        lo, hi = min(k[1] for k in fresh), max(k[1] for k in fresh)
        stored = set(conn.execute(
            select(Activity.user_id, Activity.at, Activity.action)
            .where(Activity.user_id.in_({k[0] for k in fresh}), Activity.at >= lo,
                   Activity.at <= hi)).all())
    new = [rec for key, (_, rec) in fresh.items() if key not in stored]
    insert_ignoring_conflicts(conn, Activity.__table__, new, ["user_id", "at", "action"])
    tally.inserted = len(new)
    tally.duplicates += len(fresh) - len(new)
    tally.quarantined = len(bad)
    tally.by_reason = Counter(b.reason for b in bad)
    return tally, [r for r, _ in fresh.values()], bad


def ingest_activity_rows(engine: Engine, source: Source, rows: Iterable[SourceRow], *,
                         config: Config, now: datetime, progress: Progress | None = None
                         ) -> Tally:
    from .pipeline import _in_this_process, _run

    with engine.connect() as conn:
        users = Codes.load(conn, User.id, config.region)

    def step(conn: Connection, batch: list[SourceRow], run_id: int) -> Tally:
        tally, _, bad = process_activity_batch(conn, batch, users, config.tz, run_id,
                                               region=config.region)
        quarantine_rows(conn, "activity", source.name, bad, run_id, now, config.region)
        return tally

    return _run(engine, "activity", source.name, now, progress,
                lambda _: _in_this_process(rows, source, config.batch_size), step,
                row_splitter("activity", source.name, now, config.region), region=config.region)
