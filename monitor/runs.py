"""Run records: every run of a job (start, end, status, counts, error), and the
operational alerts that tell the operators when one failed, was interrupted or was
missed.

Statuses: ``running`` → ``ok`` | ``failed``; ``interrupted`` for a run whose process died
(found by the next runner that takes the lease); ``missed`` for a scheduled run that did
not happen (the daemon was down past the misfire grace). Each of the last three raises a
red operational alert (kind ``operational``, tier 2, to the county office's monitors) with
a notification, in the same transaction as the record, so neither is lost.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, CursorResult, Engine, insert, select, update

from . import lease, trail
from .masking import mask, mask_value
from .models import Alert, Run
from .regionstore import store_region
from .supervision import Policy, monitors, tell
from .supervised import change
from .trail import SYSTEM, Entry

OPERATIONAL = "operational"
PROBLEMS = {"failed": "运行失败", "interrupted": "运行中断", "missed": "未按计划运行"}


def _new_id(result: CursorResult) -> int:
    """The id a one-row INSERT gave its row."""
    key = result.inserted_primary_key
    assert key is not None  # a single-row insert without executemany
    return key[0]


def start(engine: Engine, job: str, trigger: str, now: datetime, holder: str | None,
          scheduled_for: datetime | None = None) -> int:
    with engine.begin() as conn:
        return _new_id(conn.execute(insert(Run).values(
            job=job, trigger=trigger, scheduled_for=scheduled_for, started_at=now,
            status="running", counts={}, holder=holder)))


def finish(engine: Engine, policy: Policy, run_id: int, now: datetime, counts: dict[str, Any],
           error: str | None = None) -> None:
    """Close a run: ``ok``, or ``failed`` with ``error`` and an operational alert."""
    status = "failed" if error else "ok"
    error, counts = (mask(error) if error else None), mask_value(counts)
    with engine.begin() as conn:
        lease.fence(conn)
        conn.execute(update(Run).where(Run.id == run_id).values(
            finished_at=now, status=status, counts=counts, error=error))
        if error:
            _alert(conn, policy, now, run_id)


def amend(engine: Engine, policy: Policy, run_id: int, now: datetime, counts: dict[str, Any],
          error: str | None = None) -> None:
    """Add to a finished run what it did after letting go of the main lease (its
    deliveries): its counts, and an error, which makes it ``failed`` (with the
    operational alert, if it was ``ok``)."""
    error, counts = (mask(error) if error else None), mask_value(counts)
    with engine.begin() as conn:
        lease.fence(conn)
        run = conn.execute(select(Run.status, Run.error).where(Run.id == run_id)).one()
        values: dict[str, Any] = {"counts": counts, "finished_at": now}
        if error:
            values.update(status="failed",
                          error="; ".join(e for e in (run.error, error) if e)[:4000])
        conn.execute(update(Run).where(Run.id == run_id).values(**values))
        if error and run.status == "ok":
            _alert(conn, policy, now, run_id)


def record_missed(engine: Engine, policy: Policy, job: str, scheduled_for: datetime,
                  now: datetime, reason: str) -> int:
    """A scheduled run that did not happen: a ``missed`` record and an operational alert."""
    reason = mask(reason)
    with engine.begin() as conn:
        run_id = _new_id(conn.execute(insert(Run).values(
            job=job, trigger="serve", scheduled_for=scheduled_for, started_at=now,
            finished_at=now, status="missed", counts={}, error=reason)))
        _alert(conn, policy, now, run_id)
    return run_id


def mark_interrupted(engine: Engine, policy: Policy, holder: str, now: datetime) -> list[int]:
    """Runs left ``running`` by ``holder``, a runner that died holding the lease."""
    with engine.begin() as conn:
        ids = conn.scalars(select(Run.id).where(Run.status == "running", Run.holder == holder)
                           .order_by(Run.id)).all()
        for run_id in ids:
            conn.execute(update(Run).where(Run.id == run_id).values(
                status="interrupted", finished_at=now,
                error="the process died before the run finished (killed, or the machine "
                      "stopped); the next run took over and redid its work"))
            _alert(conn, policy, now, run_id)
    return list(ids)


def _alert(conn: Connection, policy: Policy, now: datetime, run_id: int) -> None:
    run = conn.execute(select(Run).where(Run.id == run_id)).one()
    when = (run.scheduled_for or run.started_at).astimezone(policy.tz)
    message = (f"{PROBLEMS[run.status]}：任务 {run.job}（{run.trigger}，{when:%Y-%m-%d %H:%M}）"
               f"{'：' + run.error if run.error else ''}")
    _raise(conn, policy, now, f"ops:run:{run.id}", f"ops.run_{run.status}", f"run {run.id}",
           message, {"run_id": run.id, "job": run.job, "trigger": run.trigger,
                     "status": run.status, "error": run.error,
                     "scheduled_for": run.scheduled_for.isoformat()
                     if run.scheduled_for else None},
           f"（运行记录 {run.id}，permit-monitor runs list）")


def rules_alert(engine: Engine, policy: Policy, now: datetime, problem: str) -> None:
    """Rule files an edit made invalid (the last good version keeps running): one
    operational alert per distinct problem, however many runs meet it."""
    key = "ops:rules:" + hashlib.sha256(problem.encode()).hexdigest()[:32]
    with engine.begin() as conn:
        trail.lock(conn)
        if conn.scalar(select(Alert.id).where(Alert.dedupe_key == key)) is None:
            _raise(conn, policy, now, key, "ops.rules_invalid", "rules",
                   f"规则文件有误，仍按上一版有效规则运行：{problem}", {"problem": problem},
                   "（请修正规则文件）")


def _raise(conn: Connection, policy: Policy, now: datetime, key: str, rule_id: str,
           subject: str, message: str, evidence: dict[str, Any], hint: str) -> None:
    """A red operational alert at tier 2, traced, with a notice to tier 2's monitors."""
    home = store_region(conn)  # a run's alert is the store's own county's
    _, tier2 = monitors(conn, home)
    row = {"dedupe_key": key, "rule_id": rule_id, "kind": OPERATIONAL, "subject": subject,
           "level": "red", "status": "open", "tier": 2, "action": "alert", "case_id": None,
           "case_ids": [], "actor": None, "department": None, "item_code": None,
           "period": None, "raised_at": now, "updated_at": now, "message": message[:2000],
           "evidence": evidence, "event_ids": [], "rule_version": "1", "assigned_to": tier2,
           "due_on": policy.due(now, rule_id), "region": home}
    trail.lock(conn)
    alert_id = _new_id(conn.execute(insert(Alert).values(**row)))
    trail.append(conn, now, [Entry("raised", alert_id, SYSTEM, {
        "rule_id": rule_id, "subject": subject, "level": "red", "tier": 2,
        "department": None, "assigned_to": tier2},
        changes=[change("alerts", alert_id, row, new=True)])])
    tell(conn, policy, now, alert_id, tier2, OPERATIONAL, f"【电子监察·运维】{message[:300]}{hint}")


def list_runs(engine: Engine, *, job: str | None = None, status: str | None = None,
              limit: int | None = None) -> Iterator[Any]:
    query = select(Run).order_by(Run.id.desc())
    if job:
        query = query.where(Run.job == job)
    if status:
        query = query.where(Run.status == status)
    if limit:
        query = query.limit(limit)
    with engine.connect() as conn:
        yield from conn.execute(query)


def last_run(engine: Engine, job: str, statuses: tuple[str, ...] = ("ok",)) -> Any:
    with engine.connect() as conn:
        return conn.execute(select(Run).where(Run.job == job, Run.status.in_(statuses))
                            .order_by(Run.id.desc()).limit(1)).one_or_none()
