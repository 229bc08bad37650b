"""Hostile conditions, part 5: leases and flushers.

Containers sharing a host name must not steal each other's lease; a runner that lost its
lease (paused past its lifetime) must not write again; two ``notify flush`` processes
never send a message twice; a failed message can be queued again."""

from __future__ import annotations

import os
import subprocess
import sys
from collections import Counter
from datetime import timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import func, select, update

from cli import cli
from conftest import NOW
from monitor import lease, runs, trail
from monitor.lease import MAIN, OUTBOX, LeaseBusy, LeaseLost, acquire, machine
from monitor.models import OutboxMessage, Run, TrailEntry
from monitor.supervision import Policy
from test_sinks import SECRET, T0, hook, no_proxy, queued  # noqa: F401 - fixtures

TTL = timedelta(seconds=120)
ROOT = Path(__file__).resolve().parent.parent


def at(seconds: float):
    return lambda: NOW + timedelta(seconds=seconds)


def test_a_container_with_the_same_host_name_does_not_steal_the_lease(engine):
    host, boot, ns = machine().split(":")
    gone = 2 ** 22 + 12345  # no such pid here
    other_box = f"{host}:{'f' * 12}:{ns}:{gone}:x"  # same name, another kernel boot
    acquire(engine, MAIN, other_box, at(0), TTL, 0)
    with pytest.raises(LeaseBusy):
        acquire(engine, MAIN, "me", at(1), TTL, 0)
    other_ns = f"{host}:{boot}:1:{gone}:x"  # same boot, another pid namespace
    acquire(engine, OUTBOX, other_ns, at(0), TTL, 0)
    with pytest.raises(LeaseBusy):
        acquire(engine, OUTBOX, "me", at(1), TTL, 0)
    here = f"{machine()}:{gone}:x"  # this very machine: the pid is gone, taken at once
    acquire(engine, "third", here, at(0), TTL, 0)
    assert acquire(engine, "third", "me", at(1), TTL, 0).previous == here


def test_a_runner_that_lost_its_lease_commits_nothing_more(engine):
    with lease.hold(engine, MAIN, "paused", at(0), TTL, 0) as held:
        run_id = runs.start(engine, "nightly", "cli", NOW, "paused")
        # the runner sleeps past its lease; another takes over
        taker = acquire(engine, MAIN, "taker", at(200), TTL, 0)
        assert taker.token == held.token + 1 and taker.previous == "paused"
        with pytest.raises(LeaseLost, match="taken over by another run"):
            with engine.begin() as conn:
                trail.append(conn, NOW, [trail.Entry("notified", None, trail.SYSTEM, {})])
        with pytest.raises(LeaseLost):
            runs.finish(engine, Policy(None, None), run_id, NOW, {})
        assert held.lost.is_set()
    assert lease.current(engine).holder == "taker"  # the loser's release left it alone
    with engine.connect() as conn:
        assert conn.scalar(select(Run.status).where(Run.id == run_id)) == "running"
        assert conn.scalar(select(func.count()).select_from(TrailEntry)) == 0


def test_a_failed_message_can_be_queued_again(engine, tmp_path, queued, monkeypatch, db_url):
    with engine.begin() as conn:
        conn.execute(update(OutboxMessage).where(OutboxMessage.id == 1).values(
            status="failed", attempts=5, last_error="no phone"))
    result = CliRunner().invoke(cli, ["--db", db_url, "notify", "retry", "1", "2", "--by", "ops"])
    assert result.exit_code == 1
    assert result.output.splitlines() == [
        "message 1: queued again", "message 2: not a failed message (see notify list)"]
    with engine.connect() as conn:
        row = conn.execute(select(OutboxMessage).where(OutboxMessage.id == 1)).one()
    assert (row.status, row.attempts) == ("pending", 0)
    with engine.connect() as conn:  # who asked is on the trail
        entry = conn.execute(select(TrailEntry).order_by(TrailEntry.seq.desc()).limit(1)).one()
    assert (entry.action, entry.actor, entry.detail["message_id"]) == ("message_requeued", "ops", 1)


@pytest.mark.slow
def test_two_concurrent_notify_flush_never_send_twice(engine, tmp_path, hook, queued, db_url):
    server = hook(delay=0.7)  # each delivery takes a while: the flushes overlap
    config = tmp_path / "config.yaml"
    config.write_text(
        "lease_wait_seconds: 30\nnotify:\n  sinks:\n    gw:\n      type: webhook\n"
        f"      url: {server.url}\n      token_env: PM_WEBHOOK_TOKEN\n"
        "  channels: {sms: gw}\n", encoding="utf-8")
    with engine.connect() as conn:
        due = set(conn.scalars(select(OutboxMessage.id).where(
            OutboxMessage.status == "pending")))
    assert due
    env = {**os.environ, "PM_WEBHOOK_TOKEN": SECRET, "PYTHONPATH": str(ROOT)}
    env.pop("MONITOR_DATABASE_URL", None)
    procs = [subprocess.Popen([sys.executable, "-m", "monitor", "--config", str(config),
                               "--db", db_url, "notify", "flush"], cwd=tmp_path, env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(2)]
    outs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    ids = Counter(r["body"]["id"] for r in server.requests)
    with engine.connect() as conn:
        statuses = conn.execute(select(OutboxMessage.status).where(
            OutboxMessage.id.in_(due))).scalars().all()
    assert set(statuses) == {"sent"}
    assert set(ids) == due and set(ids.values()) == {1}, ids  # each once, none twice
    sent = sorted(int(o.split("sent ")[1].split(" ")[0]) for o, _ in outs)
    assert sent == [0, len(due)]
