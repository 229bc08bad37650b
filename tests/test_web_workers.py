"""``permit-monitor web --workers N``: N worker processes on one port, each building the
application from what the parent resolved (monitor/web/workers.py) — the real program in
real processes: the pages and the gate answer from two distinct workers, whose clock is
the parent's ``--as-of``; SIGTERM (``kill``, systemd's stop) and Ctrl-C (SIGINT to the
terminal's process group) stop it cleanly; and an impossible number is a usage error."""

from __future__ import annotations

import json
import logging
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from click.testing import CliRunner

from cli import cli
from conftest import event, ingest_rows
from monitor import accounts
from monitor.config import Config
from monitor.web.workers import ENV as WORKER_ENV
from monitor.web.workers import Origin, app_from_environment

ENV = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
AS_OF = datetime(2025, 9, 30, 3, 0, tzinfo=timezone.utc)  # 11:00 local
SURVEY_58S = {"case_id": "c1", "item_code": "D04-XK-001", "step": "survey", "actor": "u2",
              "occurred_at": "2025-09-30 10:00:58", "attachments": ["现场踏勘意见书"]}


@pytest.mark.parametrize("workers", ["0", "33", "two"])
def test_an_impossible_number_of_workers_is_a_usage_error(workers):
    result = CliRunner().invoke(cli, ["web", "--workers", workers])
    assert result.exit_code == 2, result.output
    assert "Invalid value for '--workers'" in result.output
    assert "Traceback" not in result.output


def test_a_worker_builds_its_app_from_what_the_parent_resolved(monkeypatch, tmp_path, db_url):
    (tmp_path / "config.yaml").write_text("gate:\n  budget_ms: 1234\n", encoding="utf-8")
    monkeypatch.setenv(WORKER_ENV, "")  # restored when the test ends
    Origin.starting(db_url, str(tmp_path / "config.yaml"), AS_OF, logging.INFO).export()
    site = app_from_environment().state.site
    try:
        assert site.engine.url.render_as_string(hide_password=False) == db_url
        assert (site.config.path, site.config.gate.budget_ms) == (tmp_path / "config.yaml", 1234)
        assert AS_OF <= site.clock() <= AS_OF + timedelta(minutes=1)  # the parent's --as-of
    finally:
        site.engine.dispose()


def test_a_worker_that_cannot_reach_the_store_says_why_in_one_line_and_exits_1(monkeypatch,
                                                                              caplog):
    monkeypatch.setenv(WORKER_ENV, "")
    Origin.starting("postgresql+psycopg://pm:Secr3t-pw@127.0.0.1:1/gone", None, None,
                    logging.WARNING).export()
    with pytest.raises(SystemExit) as stopped:
        app_from_environment()
    assert stopped.value.code == 1
    [line] = [r.getMessage() for r in caplog.records if r.name == "monitor.web.workers"]
    assert re.fullmatch(r"web worker \d+ cannot start: cannot use database "
                        r"postgresql\+psycopg://pm:\*\*\*@127\.0\.0\.1:1/gone: .+", line)
    assert "Secr3t-pw" not in caplog.text


def cpu_ticks(pid: int) -> int:
    """User and system CPU time of a process, in clock ticks (/proc/PID/stat)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


def children(pid: int) -> set[int]:
    return {int(c) for task in Path(f"/proc/{pid}/task").glob("*/children")
            for c in task.read_text().split()}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def ask_gate(port: int, token: str) -> dict:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/api/v1/gate", json.dumps(SURVEY_58S).encode(), method="POST",
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=60) as response:
        return json.loads(response.read())


@pytest.mark.slow
@pytest.mark.parametrize("stop", [
    (signal.SIGTERM, False),  # kill PID: the main process alone
    (signal.SIGTERM, True),  # systemd's stop: every process of the service
    (signal.SIGINT, True),  # Ctrl-C in a terminal: the whole foreground process group
], ids=["kill", "systemd-stop", "ctrl-c"])
def test_two_workers_answer_the_pages_and_the_gate_and_stop_cleanly(stop, tmp_path, db_url,
                                                                       store, write_events):
    ingest_rows(store, Config(path=None, base_dir=tmp_path), write_events,
                [event("a1", "c1", "accept", "2025-09-30 10:00:00")])
    _, token = accounts.create_token(store, AS_OF, "admin:test", service="oa", scope="gate")
    store.dispose()
    (tmp_path / "rules").mkdir()
    (tmp_path / "rules" / "gate.yaml").write_text(
        "- {id: fast, kind: step_too_fast, level: yellow, gate: deny}\n", encoding="utf-8")
    (tmp_path / "config.yaml").write_text("gate:\n  budget_ms: 20000\n", encoding="utf-8")
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "monitor", "--config", str(tmp_path / "config.yaml"), "--db",
         db_url, "web", "--port", str(port), "--workers", "2", "--as-of", AS_OF.isoformat()],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=ENV,
        start_new_session=True)
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(proc.stdout), daemon=True)
    reader.start()
    try:
        deadline = time.monotonic() + 120
        while sum("Application startup complete" in line for line in lines) < 2:
            assert proc.poll() is None and time.monotonic() < deadline, "".join(lines)
            time.sleep(0.2)
        workers = {int(p) for p in re.findall(r"Started server process \[(\d+)\]",
                                              "".join(lines))}
        assert len(workers) == 2 and workers <= children(proc.pid), "".join(lines)
        before = {pid: cpu_ticks(pid) for pid in workers}

        with urllib.request.urlopen(f"http://127.0.0.1:{port}/login", timeout=60) as page:
            assert page.status == 200 and "<form" in page.read().decode()
        answers: list[dict] = []

        def client() -> None:
            for _ in range(8):  # a new connection each: either worker may take it
                answers.append(ask_gate(port, token))

        threads = [threading.Thread(target=client) for _ in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert len(answers) == 48
        assert {a["decision"] for a in answers} == {"deny"}, answers[0]
        assert not any(a.get("degraded") for a in answers)
        for a in answers:  # each worker's clock runs from the parent's --as-of
            assert AS_OF <= datetime.fromisoformat(a["evaluated_at"]) <= AS_OF + \
                timedelta(minutes=10)
        worked = {pid for pid in workers if cpu_ticks(pid) > before[pid]}
        assert worked == workers, "a worker took no request"
    finally:
        number, group = stop
        if group:
            os.killpg(proc.pid, number)
        else:
            proc.send_signal(number)
        proc.wait(timeout=60)
        reader.join(timeout=10)
    out = "".join(lines)
    assert proc.returncode == 0, out
    assert "Traceback" not in out and "ERROR" not in out, out
    for pid in workers:
        assert not Path(f"/proc/{pid}").exists(), f"worker {pid} outlived the server"
