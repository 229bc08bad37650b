"""A real process killed mid-file (SIGKILL): the store stays consistent and a re-run
finishes the job with no duplicates and nothing missing."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.engine import make_url

from conftest import EVENT_COLUMNS
from monitor.catalog import ingest_catalog
from monitor.db import open_store
from monitor.models import Event, IngestRun, Quarantine

ROWS = 60_000
BAD_EVERY = 997


def write_big_csv(path) -> tuple[int, int]:
    good = bad = 0
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(EVENT_COLUMNS)
        for i in range(ROWS):
            item = "NOPE" if i % BAD_EVERY == 0 else "D04-XK-001"
            bad, good = (bad + 1, good) if item == "NOPE" else (bad, good + 1)
            minute = i % 50
            writer.writerow([f"e{i}", f"c{i // 6}", item, "", "survey", "u1",
                             f"2025-09-30 10:{minute:02d}:00", "", "", "", "", "", ""])
    return good, bad


def counts(engine):
    with engine.connect() as conn:
        events = conn.scalar(select(func.count()).select_from(Event))
        distinct = conn.scalar(select(func.count(func.distinct(Event.event_id))))
        quarantined = conn.scalar(select(func.count()).select_from(Quarantine))
    return events, distinct, quarantined


KILLED = "permit-monitor-killed"  # application_name of the killed run's PostgreSQL session


def killed_url(db_url: str) -> str:
    """The URL the run to be killed uses: on PostgreSQL its session is named, to be
    waited for (see :func:`settle`)."""
    url = make_url(db_url)
    if url.get_backend_name() != "postgresql":
        return db_url
    return url.update_query_dict({"application_name": KILLED}).render_as_string(
        hide_password=False)


def settle(engine) -> None:
    """Wait until the killed run's session has ended on the server. A COMMIT the client
    sent before SIGKILL still completes after the client is gone, so the store can gain a
    batch after the kill; only once the session is gone is the count final."""
    if engine.dialect.name != "postgresql":
        return
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        with engine.connect() as conn:
            if not conn.scalar(text("SELECT count(*) FROM pg_stat_activity "
                                    "WHERE application_name = :name"), {"name": KILLED}):
                return
        time.sleep(0.05)
    raise AssertionError("the killed run's session did not end within 60 s")


@pytest.mark.slow
def test_sigkill_mid_file_then_rerun(db_url, tmp_path, catalog_file):
    engine = open_store(db_url)
    ingest_catalog(engine, catalog_file)
    path = tmp_path / "big.csv"
    good, bad = write_big_csv(path)
    (tmp_path / "config.yaml").write_text("batch_size: 2000\n")
    def command(url):
        return [sys.executable, "-m", "monitor", "--config", str(tmp_path / "config.yaml"),
                "--db", url, "ingest", "events", "--json", str(path)]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}

    proc = subprocess.Popen(command(killed_url(db_url)), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=env)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        stored = counts(engine)[0]
        if stored >= 10_000:
            break
        time.sleep(0.02)
    assert proc.poll() is None, "ingestion finished before it could be killed; raise ROWS"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    settle(engine)
    events, distinct, quarantined = counts(engine)
    assert 0 < events < good, "the kill must land mid-file"
    assert events == distinct  # consistent: no half-written batch, no duplicate

    rerun = subprocess.run(command(db_url), capture_output=True, text=True, env=env, timeout=300)
    assert rerun.returncode == 0, rerun.stderr
    summary = json.loads(rerun.stdout)
    assert summary["read"] == ROWS
    assert summary["duplicates"] == events  # what the killed run stored counts as duplicate
    assert summary["inserted"] == good - events
    assert summary["quarantined"] == bad
    assert counts(engine) == (good, good, bad)  # nothing missing, nothing twice
    with engine.connect() as conn:
        statuses = list(conn.scalars(select(IngestRun.status).order_by(IngestRun.id)))
    assert statuses == ["running", "done"]  # the killed run is visible as never finished
    engine.dispose()
