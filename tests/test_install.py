"""An install as an operator makes it works from anywhere: .ci/install-smoke builds the
sdist and wheel, installs the wheel in a fresh virtualenv and runs the demo, the smoke
commands and the web server from a directory with no checkout in sight (CI runs the same
script as a step of its own)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / ".ci" / "install-smoke"


@pytest.mark.slow
def test_the_built_wheel_runs_every_command_from_anywhere(tmp_path, empty_db_url):
    env = {**os.environ, "PYTHON": sys.executable, "SMOKE_DIR": str(tmp_path / "smoke")}
    if empty_db_url.startswith("postgresql"):  # the second pass: migrate PostgreSQL too
        env["SMOKE_DATABASE_URL"] = empty_db_url
    for name in ("MONITOR_CONFIG", "MONITOR_DATABASE_URL"):
        env.pop(name, None)
    done = subprocess.run([str(SCRIPT)], env=env, capture_output=True, text=True,
                          timeout=900)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert done.stdout.rstrip().endswith("install smoke: OK")
    site = next((tmp_path / "smoke" / "venv" / "lib").glob("python*/site-packages"))
    shipped = {p.name for p in (site / "monitor" / "shipped_rules").glob("*.yaml")}
    assert shipped == {p.name for p in (ROOT / "rules").glob("*.yaml")}
    shipped_code_and_data = {p.relative_to(ROOT) for p in (ROOT / "monitor").rglob("*")
                             if p.is_file() and "__pycache__" not in p.parts}
    assert {p for p in shipped_code_and_data if not (site / p).is_file()} == set()
    assert not (site / "rules").exists()  # nothing lands at the top of site-packages
    if "SMOKE_DATABASE_URL" in env:
        assert "database ready: postgresql" in done.stdout
