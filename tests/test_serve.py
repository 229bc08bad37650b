"""The serve daemon: cron defaults on a fixed clock, config errors, rule files re-read
with the last good version kept, and a real daemon process stopped by SIGTERM and
restarted after missing a run."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from conftest import event
from monitor.config import SHIPPED_RULES, Config, load_config
from monitor.crontab import cron_trigger
from monitor.db import open_store
from monitor.errors import ConfigError, MonitorError
from monitor.jobs import RuleCache
from monitor.models import Alert, Run
from monitor.scheduling import JOBSTORE_TABLE
from monitor.rules.loader import load_rules

SHIPPED_COUNT = len(load_rules([SHIPPED_RULES]))  # every shipped rule runs

TZ = ZoneInfo("Asia/Shanghai")
ENV = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
SHIPPED = os.path.join(os.path.dirname(__file__), "..", "rules")


def local(*args) -> datetime:
    return datetime(*args, tzinfo=TZ)


@pytest.mark.parametrize("job, now, expected", [
    ("evaluate", local(2025, 11, 7, 18, 30), local(2025, 11, 10, 8, 0)),  # Fri eve → Mon 8:00
    ("evaluate", local(2025, 11, 10, 9, 0, 1), local(2025, 11, 10, 10, 0)),
    ("escalate", local(2025, 11, 10, 9, 10), local(2025, 11, 10, 9, 30)),
    ("nightly", local(2025, 11, 3, 2, 0, 1), local(2025, 11, 4, 2, 0)),
    ("inbox", local(2025, 11, 3, 2, 3), local(2025, 11, 3, 2, 10)),
    ("flush", local(2025, 11, 3, 2, 3, 5), local(2025, 11, 3, 2, 4)),
])
def test_default_jobs_fire_in_the_configured_timezone(job, now, expected):
    config = Config(path=None, base_dir=".")
    trigger = cron_trigger(config.schedule.jobs[job], config.tz)
    fire = trigger.get_next_fire_time(None, now)
    assert fire == expected and fire.utcoffset() == timedelta(hours=8)


@pytest.mark.parametrize("text, message", [
    ("schedule:\n  jobs:\n    evaluate: '0 25 * * *'\n",
     "config.yaml:3: job 'evaluate': bad cron expression '0 25 * * *': "),
    ("schedule:\n  jobs:\n    nightly: '0 2 * * 1-5'\n",
     "config.yaml:3: job 'nightly': bad cron expression '0 2 * * 1-5': write weekdays as names"),
    ("schedule:\n  jobs:\n    evaluat: '0 * * * *'\n",
     "config.yaml:3: unknown job 'evaluat' (did you mean 'evaluate'?)"),
    ("schedule:\n  misfire_grace: 5\n",
     "config.yaml:2: unknown key 'misfire_grace' (did you mean 'misfire_grace_seconds'?)"),
    ("sources:\n  wf: {url: 'postgresql://u:secret@h/db', query: 'SELECT 1', watermark: id}\n",
     "config.yaml:2: source 'wf': a password does not belong in config.yaml"),
])
def test_schedule_and_source_errors_are_located(tmp_path, text, message):
    path = tmp_path / "config.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert str(err.value).startswith(str(tmp_path / message))


def test_an_invalid_rule_edit_keeps_the_last_good_version(tmp_path):
    shutil.copytree(SHIPPED, tmp_path / "rules")
    config = Config(path=None, base_dir=tmp_path, rules_dir=tmp_path / "rules")
    cache = RuleCache()
    good, problem = cache.load(config)
    assert problem is None and "overdue" in {r.id for r in good.base}
    (tmp_path / "rules" / "overdue.yaml").write_text("rules:\n  - id: overdue\n    kindd: x\n")
    kept, problem = cache.load(config)
    assert kept is good
    assert "overdue.yaml:3: unknown key 'kindd'" in problem
    with pytest.raises(MonitorError, match="kindd"):  # a process that never had a good version says so
        RuleCache().load(config)
    # a county's override broken (docs/regions.md): the last good sets keep running too
    shutil.copy(f"{SHIPPED}/overdue.yaml", tmp_path / "rules" / "overdue.yaml")
    good, problem = cache.load(config)
    (tmp_path / "rules" / "regions" / "330106").mkdir(parents=True)
    (tmp_path / "rules" / "regions" / "330106" / "x.yaml").write_text("- {id: overdu, enabled: false}\n")
    kept, problem = cache.load(config)
    assert kept is good and "x.yaml:1: no base rule 'overdu'" in problem


def start_serve(tmp_path, db_url, jobs: str, grace: int = 600,
                extra: str = "") -> subprocess.Popen:
    (tmp_path / "config.yaml").write_text(
        f"{extra}schedule:\n  misfire_grace_seconds: {grace}\n  jobs:\n{jobs}")
    return subprocess.Popen(
        [sys.executable, "-m", "monitor", "-v", "--config", str(tmp_path / "config.yaml"),
         "--db", db_url, "serve"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        text=True, env=ENV)


def wait_line(proc, needle: str, timeout: float = 30) -> list[str]:
    lines, deadline = [], time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        lines.append(line)
        if needle in line:
            return lines
    raise AssertionError(f"no {needle!r} in:\n{''.join(lines)}")


OFF = "".join(f"    {j}: 'off'\n" for j in ("inbox", "pull", "escalate", "nightly", "flush"))


def nightly_only(hour: int) -> str:
    """The jobs of a daemon running nightly alone, at ``hour`` o'clock county time: the
    default inbox, flush and evaluate jobs fire on the wall clock's minutes and hours, and
    one firing while the test runs would be a run it did not expect."""
    return f"    nightly: '0 {hour} * * *'\n" + "".join(
        f"    {j}: 'off'\n" for j in ("inbox", "pull", "evaluate", "escalate", "flush"))


@pytest.mark.slow
def test_sigterm_lets_the_job_in_flight_finish(tmp_path, db_url, store, write_events):
    from conftest import ingest_rows

    ingest_rows(store, Config(path=None, base_dir=tmp_path), write_events,
                [event(f"e{i}", f"c{i}") for i in range(300)])
    proc = start_serve(tmp_path, db_url, "    evaluate: '* * * * * *'\n" + OFF)
    wait_line(proc, "monitor.jobs: evaluate: evaluate")  # a job is in flight
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0, out
    assert "serve: stopping; waiting for the job in flight" in out
    with store.connect() as conn:
        done = conn.execute(select(Run.job, Run.status, Run.trigger)).all()
    assert done and set(done) == {("evaluate", "ok", "serve")}  # none left running
    with store.connect() as conn:
        assert conn.scalar(select(Alert.id).limit(1)) is not None


@pytest.mark.slow
def test_a_run_missed_while_the_daemon_was_down_is_recorded(tmp_path, db_url):
    from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore

    # twelve hours from now, so that no run of it falls in the two hours the test moves
    # its due time back (at 02:10 a nightly at 02:00 was the missed run APScheduler named)
    hour = (datetime.now(TZ).hour + 12) % 24
    proc = start_serve(tmp_path, db_url, nightly_only(hour), grace=60)
    wait_line(proc, "serve: scheduler started")
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=30) == 0
    engine = open_store(db_url)
    store = SQLAlchemyJobStore(engine=engine, tablename=JOBSTORE_TABLE)
    job = store.lookup_job("nightly")
    due = job.next_run_time
    assert due.astimezone(TZ).hour == hour  # kept in the database across restarts
    # the machine was off: the 02:00 run is now two hours in the past
    two_hours_ago = datetime.now(timezone.utc).replace(microsecond=0) - timedelta(hours=2)
    job.next_run_time = two_hours_ago
    store.update_job(job)

    proc = start_serve(tmp_path, db_url, nightly_only(hour), grace=60)
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            with engine.connect() as conn:
                missed = conn.execute(select(Run).where(Run.status == "missed")).all()
            if missed:
                break
            time.sleep(0.2)
    finally:
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0, out
    [run] = missed
    assert run.job == "nightly" and run.scheduled_for == two_hours_ago
    assert "past the misfire grace (60 s)" in run.error
    with engine.connect() as conn:
        [alert] = conn.execute(select(Alert).where(Alert.kind == "operational")).all()
        ran = conn.execute(select(Run).where(Run.status != "missed")).all()
    engine.dispose()
    assert alert.rule_id == "ops.run_missed" and alert.message.startswith("未按计划运行：任务 nightly")
    assert ran == []  # too late to run: missed, not run hours late


def test_the_daemon_keeps_evaluating_with_the_last_good_rules_and_says_so_once(
        tmp_path, store):
    """A long-lived runner (as serve has) on a fixed clock: the admin breaks a rule file
    between two runs; both runs evaluate; one operational alert reports the problem."""
    from monitor.jobs import Runner, run_job

    shutil.copytree(SHIPPED, tmp_path / "rules")
    config = Config(path=None, base_dir=tmp_path, rules_dir=tmp_path / "rules")
    clock = iter(datetime(2025, 11, 3, h, tzinfo=timezone.utc) for h in range(1, 20))
    runner = Runner(store, config, clock=lambda: next(clock), wall=time.time, trigger="serve")
    first = run_job(runner, "evaluate")
    assert first.status == "ok" and first.counts["rules"] == SHIPPED_COUNT
    (tmp_path / "rules" / "overdue.yaml").write_text("rules:\n  - id: overdue\n    kindd: x\n")
    for _ in range(2):
        later = run_job(runner, "evaluate")
        assert later.status == "ok" and later.counts["rules"] == SHIPPED_COUNT  # overdue runs on
        assert "overdue.yaml:3: unknown key 'kindd'" in later.counts["rules_problem"]
    with store.connect() as conn:
        ops = conn.execute(select(Alert.rule_id, Alert.message)
                           .where(Alert.kind == "operational")).all()
    assert len(ops) == 1 and ops[0].rule_id == "ops.rules_invalid"
    assert ops[0].message.startswith("规则文件有误，仍按上一版有效规则运行：")


def test_two_jobs_of_one_daemon_exclude_each_other(tmp_path, store):
    """The daemon's jobs share one Runner; while one runs, another must not (it would
    evaluate while the inbox is half ingested) — and one flusher at a time; but a flush
    holds only the outbox lease, so an evaluation runs beside it."""
    from monitor.jobs import Runner, run_job
    from monitor.lease import LeaseBusy

    runner = Runner(store, Config(path=None, base_dir=tmp_path),
                    clock=lambda: datetime.now(timezone.utc), wall=time.time, trigger="serve")
    refused, beside = [], []

    def meanwhile(job: str):
        def attempt(step: str) -> None:
            with pytest.raises(LeaseBusy) as busy:
                run_job(runner, job, wait_seconds=0)
            refused.append(str(busy.value))
        return attempt

    def evaluate_beside(step: str) -> None:
        beside.append(run_job(runner, "evaluate", wait_seconds=0).status)

    assert run_job(runner, "evaluate", phase=meanwhile("inbox")).status == "ok"
    assert run_job(runner, "flush", phase=meanwhile("flush")).status == "ok"
    assert [r.split(" (")[0] for r in refused] == [
        "another run holds the lock 'monitor'", "another run holds the lock 'outbox'"]
    # delivery is outside the main lease: a (slow) flush never keeps an evaluation waiting
    assert run_job(runner, "flush", phase=evaluate_beside).status == "ok"
    assert beside == ["ok"]
    assert run_job(runner, "evaluate", wait_seconds=0).status == "ok"  # free again


@pytest.mark.slow
def test_sigterm_waits_for_a_job_in_flight_that_then_fails_and_exits_1(tmp_path, db_url,
                                                                      monkeypatch):
    """The pull job is in flight against a source database that never answers (a silent
    local server); SIGTERM waits for it, it fails, the daemon exits 1."""
    import socket

    silent = socket.create_server(("127.0.0.1", 0))  # accepts connections, never speaks
    port = silent.getsockname()[1]
    monkeypatch.setenv("PM_SILENT_URL", f"postgresql+psycopg://u@127.0.0.1:{port}/db"
                                        "?connect_timeout=2")
    ENV["PM_SILENT_URL"] = os.environ["PM_SILENT_URL"]
    try:
        proc = start_serve(tmp_path, db_url, "    pull: '* * * * * *'\n" + "".join(
            f"    {j}: 'off'\n" for j in ("inbox", "evaluate", "escalate", "nightly", "flush")),
            extra="sources:\n  wf: {url_env: PM_SILENT_URL, query: 'SELECT 1 AS id', "
                  "watermark: id}\n")
        wait_line(proc, "monitor.jobs: pull: pull")  # in flight, waiting on the source
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=60)
    finally:
        ENV.pop("PM_SILENT_URL", None)
        silent.close()
    assert proc.returncode == 1, out
    assert out.index("serve: stopping") < out.index("pull failed: pull wf: source 'wf'")
    assert "serve: stopped (pull failed)" in out


def test_the_daemons_evaluate_job_catches_up_on_the_runs_it_missed(tmp_path, store):
    """Down from Friday's 18:00 evaluation to Monday 09:00: the next evaluate job evaluates
    as of the weekend's and Monday's 02:00 nightly slots and Monday's 08:00 evaluation
    first (the 09:00 one is its own), and the one after it has nothing to catch up."""
    from monitor.jobs import Runner, run_job

    moments = iter([local(2025, 11, 7, 18, 0, 2), local(2025, 11, 10, 9, 0, 3),
                    local(2025, 11, 10, 10, 0, 1)])
    runner = Runner(store, Config(path=None, base_dir=tmp_path), clock=lambda: now,
                    wall=time.time, trigger="serve")
    results = []
    for now in moments:
        results.append(run_job(runner, "evaluate"))
    assert [r.status for r in results] == ["ok"] * 3
    assert "catch_up" not in results[0].counts and "catch_up" not in results[2].counts
    assert results[1].counts["catch_up"]["slots"] == [
        t.isoformat() for t in (local(2025, 11, 8, 2), local(2025, 11, 9, 2),
                                local(2025, 11, 10, 2), local(2025, 11, 10, 8))]
