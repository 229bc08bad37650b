"""The citizens' voice: ratings (好差评, GB/T 39734-2020) and complaints (效能投诉).

CSV or JSON Lines, through the same path as the other inputs: a run per file, a
transaction per batch, bad rows quarantined (kind ``ratings`` / ``complaints``) with line
and reason. The natural key is the source's own id (``rating_id``, ``complaint_id``): a row
whose id is already stored is a duplicate, so loading a file twice changes nothing. What
the department records later (an appeal, a complaint's stages) is never overwritten by a
re-load.

Ratings: ``rating_id, case_id, item_code, department, rated_at, channel, score, tags,
text`` — ``score`` 1 (非常不满意) … 5 (非常满意), ``tags`` the 差评 reasons separated by
``;`` (or ``；``, or a JSON list in JSON Lines). ``case_id`` and ``item_code`` may be empty
(a rating of a service, not of one case); the department must be in the catalog.

Complaints: ``complaint_id, received_at, channel, department, case_id, category, text`` —
``case_id`` optional.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, tzinfo
from typing import Any

from sqlalchemy import Connection, Engine, select

from ..config import Config
from ..models import Complaint, Department, Rating
from ..timeutil import ValueProblem, parse_timestamp
from .events import Codes, Rejected, refuse
from .sources import Source, SourceRow
from .store import Bad, Progress, Tally, insert_ignoring_conflicts, quarantine_rows

RATING_COLUMNS = ("rating_id", "department", "rated_at", "score")
COMPLAINT_COLUMNS = ("complaint_id", "received_at", "department")
SCORES = {1: "非常不满意", 2: "不满意", 3: "基本满意", 4: "满意", 5: "非常满意"}
MAX_TEXT = 4000  # characters of free text kept (a longer text is cut, and says so)


def _text(fields: dict[str, Any], key: str, limit: int = 128) -> str | None:
    value = fields.get(key)
    if isinstance(value, list):
        return None
    value = ("" if value is None else str(value)).strip()
    if len(value) > limit:
        raise Rejected("field_too_long", f"{key}: {len(value)} characters, at most {limit}")
    return value or None


def _free_text(fields: dict[str, Any]) -> str | None:
    value = ("" if fields.get("text") is None else str(fields["text"])).strip()
    if len(value) > MAX_TEXT:
        value = value[:MAX_TEXT] + "…（截断）"
    return value or None


def _required(fields: dict[str, Any], columns: tuple[str, ...]) -> None:
    missing = [c for c in columns if not _text(fields, c, 10_000)]
    if missing:
        raise Rejected("missing_field", f"missing required field {', '.join(missing)}")


def _department(fields: dict[str, Any], departments: frozenset[str]) -> str:
    code = _text(fields, "department", 64) or ""
    if code not in departments:
        raise refuse(departments, "部门", code, "unknown_department",
                     f"department '{code}' is not in the catalog")
    return code


def _moment(fields: dict[str, Any], key: str, tz: tzinfo) -> datetime:
    try:
        return parse_timestamp(_text(fields, key, 64) or "", tz)
    except ValueProblem as exc:
        raise Rejected("bad_timestamp", f"{key}: {exc}") from None


def _tags(value: Any) -> list[str]:
    if isinstance(value, list):
        parts = [str(v) for v in value]
    else:
        parts = str(value or "").replace("；", ";").split(";")
    return [p.strip() for p in parts if p.strip()][:20]


def normalize_rating(fields: dict[str, Any], departments: frozenset[str], tz: tzinfo
                     ) -> dict[str, Any]:
    _required(fields, RATING_COLUMNS)
    try:
        score = int(str(fields["score"]).strip())
    except ValueError:
        score = 0
    if score not in SCORES:
        raise Rejected("bad_score", f"score must be 1–5 (1 非常不满意 … 5 非常满意), "
                                    f"got '{fields['score']}'")
    return {"rating_id": _text(fields, "rating_id"), "case_id": _text(fields, "case_id"),
            "item_code": _text(fields, "item_code", 64),
            "department": _department(fields, departments),
            "rated_at": _moment(fields, "rated_at", tz),
            "channel": _text(fields, "channel", 32), "score": score,
            "tags": _tags(fields.get("tags")), "text": _free_text(fields)}


def normalize_complaint(fields: dict[str, Any], departments: frozenset[str], tz: tzinfo
                        ) -> dict[str, Any]:
    _required(fields, COMPLAINT_COLUMNS)
    return {"complaint_id": _text(fields, "complaint_id"),
            "received_at": _moment(fields, "received_at", tz),
            "channel": _text(fields, "channel", 32),
            "department": _department(fields, departments),
            "case_id": _text(fields, "case_id"), "category": _text(fields, "category", 64),
            "text": _free_text(fields)}


@dataclass(frozen=True)
class Spec:
    kind: str                  # the ingest run's and the quarantine's kind
    table: Any
    key: str
    columns: tuple[str, ...]   # required header columns
    normalize: Callable[[dict[str, Any], frozenset[str], tzinfo], dict[str, Any]]


SPECS = {
    "ratings": Spec("ratings", Rating.__table__, "rating_id", RATING_COLUMNS, normalize_rating),
    "complaints": Spec("complaints", Complaint.__table__, "complaint_id", COMPLAINT_COLUMNS,
                       normalize_complaint),
}


def process_batch(conn: Connection, spec: Spec, rows: list[SourceRow],
                  departments: frozenset[str], tz: tzinfo, run_id: int | None, *,
                  region: str) -> tuple[Tally, list[SourceRow], list[Bad]]:
    """Store the rows not stored yet; returns the tally, the rows now stored (or
    already), and the rows set aside."""
    tally, bad, fresh = Tally(read=len(rows)), [], {}
    for r in rows:
        try:
            if r.problem:
                raise Rejected(r.problem_reason, r.problem)
            rec = spec.normalize(r.fields, departments, tz)
        except Rejected as exc:
            bad.append(Bad(r, exc.reason, exc.detail))
            continue
        if rec[spec.key] in fresh:
            tally.duplicates += 1
            continue
        fresh[rec[spec.key]] = (r, dict(rec, run_id=run_id, source_line=r.line, region=region))
    key = spec.table.c[spec.key]
    stored = set(conn.scalars(select(key).where(key.in_(list(fresh))))) if fresh else set()
    new = [rec for k, (_, rec) in fresh.items() if k not in stored]
    insert_ignoring_conflicts(conn, spec.table, new, [spec.key])
    tally.inserted = len(new)
    tally.duplicates += len(fresh) - len(new)
    tally.quarantined = len(bad)
    tally.by_reason = Counter(b.reason for b in bad)
    return tally, [r for r, _ in fresh.values()], bad


def ingest_voice_rows(kind: str, engine: Engine, source: Source, rows: Iterable[SourceRow],
                      *, config: Config, now: datetime, progress: Progress | None = None
                      ) -> Tally:
    from .pipeline import _in_this_process, _run

    spec = SPECS[kind]
    with engine.connect() as conn:
        departments = Codes.load(conn, Department.code, config.region)

    def step(conn: Connection, batch: list[SourceRow], run_id: int) -> Tally:
        tally, _, bad = process_batch(conn, spec, batch, departments, config.tz, run_id,
                                      region=config.region)
        quarantine_rows(conn, spec.kind, source.name, bad, run_id, now, config.region)
        return tally

    return _run(engine, spec.kind, source.name, now, progress,
                lambda _: _in_this_process(rows, source, config.batch_size), step,
                region=config.region)
