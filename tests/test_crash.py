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
from sqlalchemy import func, select

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


@pytest.mark.slow
def test_sigkill_mid_file_then_rerun(db_url, tmp_path, catalog_file):
    engine = open_store(db_url)
    ingest_catalog(engine, catalog_file)
    path = tmp_path / "big.csv"
    good, bad = write_big_csv(path)
    (tmp_path / "config.yaml").write_text("batch_size: 2000\n")
    command = [sys.executable, "-m", "monitor", "--config", str(tmp_path / "config.yaml"),
               "--db", db_url, "ingest", "events", "--json", str(path)]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}

    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        stored = counts(engine)[0]
        if stored >= 10_000:
            break
        time.sleep(0.02)
    assert proc.poll() is None, "ingestion finished before it could be killed; raise ROWS"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    events, distinct, quarantined = counts(engine)
    assert 0 < events < good, "the kill must land mid-file"
    assert events == distinct  # consistent: no half-written batch, no duplicate

    rerun = subprocess.run(command, capture_output=True, text=True, env=env, timeout=300)
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
