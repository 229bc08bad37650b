"""``serve``: the daemon that runs the jobs of config.yaml's ``schedule`` with APScheduler 3.

* Cron expressions in the configured timezone (5 fields; a 6th in front gives seconds).
* Jobs live in the same database (SQLAlchemyJobStore, table ``apscheduler_jobs``), so a
  restarted daemon knows when each job was next due: a run that should have happened
  while it was down still starts if it is at most ``schedule.misfire_grace_seconds`` late
  (once, however many were missed: ``coalesce``), else it is recorded as ``missed`` and
  raises an operational alert.
* ``max_instances=1``; every job also takes the database lease (monitor/lease.py), so a
  cron ``nightly`` or a hand-started ``run`` never evaluates at the same time.
* SIGTERM / SIGINT: no new job starts, the job in flight finishes, the daemon exits 0
  (1 if that job failed).

APScheduler's BackgroundScheduler is used rather than BlockingScheduler so that the
signal handler only sets an event: the main thread then calls ``shutdown(wait=True)``
outside the handler, never re-entering the scheduler's loop while it holds its locks.
"""

from __future__ import annotations

import logging
import signal
import threading
from datetime import datetime, timezone
from typing import Any

from apscheduler.events import EVENT_JOB_MAX_INSTANCES, EVENT_JOB_MISSED
from sqlalchemy import Engine, MetaData, Table, func, inspect, select

from . import runs
from .crontab import cron_trigger
from .jobs import Runner, run_job
from .lease import LeaseBusy
from .models import OutboxMessage
from .outbox import DUE
from .supervision import policy_for

log = logging.getLogger(__name__)
JOBSTORE_TABLE = "apscheduler_jobs"
JOB_FUNC = "monitor.scheduling:run_scheduled"
# The running daemon's Runner and tallies: jobs in the store name run_scheduled by
# reference and carry only the job's name, so nothing about the process is pickled.
_DAEMON: dict[str, Any] = {}


def _due_messages(runner: Runner) -> int:
    with runner.engine.connect() as conn:
        return conn.scalar(select(func.count()).select_from(OutboxMessage).where(
            OutboxMessage.status.in_(DUE), OutboxMessage.next_attempt_at <= runner.clock())) or 0


def run_scheduled(job: str) -> str:
    """What the scheduler calls: one job under the lease, with its run record."""
    runner: Runner = _DAEMON["runner"]
    if job == "flush" and not _due_messages(runner):
        return "idle"  # every minute: no run record when there is nothing to deliver
    try:
        result = run_job(runner, job, wait_seconds=0 if job == "flush" else None)
    except LeaseBusy as exc:
        log.warning("%s skipped this time: %s", job, exc)
        return "busy"
    except Exception:
        log.exception("%s failed", job)
        _DAEMON["failed"].append(job)
        raise
    log.info("%s: run %s %s in %.1f s", job, result.run_id, result.status, result.seconds)
    if result.status != "ok":
        _DAEMON["failed"].append(job)
        log.error("%s failed: %s", job, "; ".join(result.errors))
    return result.status


def stored_next_runs(engine: Engine) -> dict[str, datetime]:
    """When each job in the job store was next due (kept across restarts)."""
    if not inspect(engine).has_table(JOBSTORE_TABLE):
        return {}
    table = Table(JOBSTORE_TABLE, MetaData(), autoload_with=engine)
    with engine.connect() as conn:
        return {i: datetime.fromtimestamp(t, timezone.utc) for i, t in
                conn.execute(select(table.c.id, table.c.next_run_time))
                if t is not None}


def _drop_unscheduled(engine: Engine, keep: list[str]) -> None:
    """Jobs switched off (or renamed) in config.yaml leave the job store before it starts."""
    if inspect(engine).has_table(JOBSTORE_TABLE):
        table = Table(JOBSTORE_TABLE, MetaData(), autoload_with=engine)
        with engine.begin() as conn:
            conn.execute(table.delete().where(table.c.id.not_in(keep)))


def _on_missed(runner: Runner, event) -> None:
    late = runner.clock() - event.scheduled_run_time
    reason = (f"scheduled for {event.scheduled_run_time.isoformat(timespec='seconds')}, "
              f"{int(late.total_seconds())} s late: the daemon was down or busy past the "
              f"misfire grace ({runner.config.schedule.misfire_grace_seconds} s)")
    log.error("%s missed: %s", event.job_id, reason)
    runs.record_missed(runner.engine, policy_for(runner.config), event.job_id,
                       event.scheduled_run_time, runner.clock(), reason)


def build_scheduler(runner: Runner):
    """A scheduler with the configured jobs, each due when the job store last said."""
    from apscheduler.executors.pool import ThreadPoolExecutor
    from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
    from apscheduler.schedulers.background import BackgroundScheduler

    config, tz = runner.config, runner.config.tz
    grace = config.schedule.misfire_grace_seconds
    scheduler = BackgroundScheduler(
        timezone=tz,
        jobstores={"default": SQLAlchemyJobStore(engine=runner.engine,
                                                 tablename=JOBSTORE_TABLE)},
        executors={"default": ThreadPoolExecutor(4)},
        job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": grace})
    stored = stored_next_runs(runner.engine)
    _drop_unscheduled(runner.engine, [j for j, e in config.schedule.jobs.items() if e != "off"])
    for job, expr in config.schedule.jobs.items():
        if expr == "off":
            continue
        extra = {"next_run_time": stored[job]} if job in stored else {}
        scheduler.add_job(JOB_FUNC, trigger=cron_trigger(expr, tz), args=[job], id=job,
                          name=job, replace_existing=True, coalesce=True, max_instances=1,
                          misfire_grace_time=grace, **extra)
    scheduler.add_listener(lambda e: _on_missed(runner, e), EVENT_JOB_MISSED)
    scheduler.add_listener(lambda e: log.warning("%s still running; this run skipped",
                                                 e.job_id), EVENT_JOB_MAX_INSTANCES)
    return scheduler


def serve(runner: Runner, stop: threading.Event | None = None) -> int:
    """Run the scheduler until SIGTERM/SIGINT (or ``stop``); the exit code."""
    stop = stop or threading.Event()
    _DAEMON.update(runner=runner, failed=[])
    scheduler = build_scheduler(runner)
    previous = {s: signal.signal(s, lambda *_: stop.set())
                for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        scheduler.start()
        for job in sorted(scheduler.get_jobs(), key=lambda j: j.id):
            log.info("job %-9s next %s (%s)", job.id, job.next_run_time, job.trigger)
        log.info("serve: scheduler started, %d job(s); SIGTERM or Ctrl-C to stop",
                    len(scheduler.get_jobs()))
        while not stop.wait(1):
            pass
        failed_before = len(_DAEMON["failed"])
        log.info("serve: stopping; waiting for the job in flight")
        scheduler.shutdown(wait=True)
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
    failed = _DAEMON["failed"][failed_before:]
    (log.error if failed else log.info)(
        "serve: stopped%s", f" ({', '.join(failed)} failed)" if failed else "")
    return 1 if failed else 0
