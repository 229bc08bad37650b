"""The types are checked: plain ``mypy`` (configured in pyproject.toml: monitor/ and cli.py,
the migrations left out) reports no error. Run in-process through mypy's API, from the
project root so that the configuration and its cache (.mypy_cache) are the ones a developer's
``mypy`` uses: about 10 s of CPU on a cold cache here, under a second after that."""

from __future__ import annotations

import tomllib
from pathlib import Path

from mypy import api as mypy_api

ROOT = Path(__file__).resolve().parent.parent


def test_mypy_reports_no_error(monkeypatch):
    monkeypatch.chdir(ROOT)
    out, err, status = mypy_api.run([])
    errors = [line for line in out.splitlines() if ": error:" in line]
    assert status == 0 and not errors, "mypy found problems:\n" + (out + err)[-6000:]


def test_mypy_checks_the_package_and_the_cli():
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["mypy"]
    assert set(config["files"]) == {"monitor", "cli.py"}
    assert config["check_untyped_defs"] is True
