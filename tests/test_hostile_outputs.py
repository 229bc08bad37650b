"""Hostile conditions, part 8: atomic outputs and honest re-runs — reports written whole
or not at all, readable by their owner only; ``run --as-of`` into the past refused unless
``--rewind``; amounts with thousands separators read per ``limits.amount_format`` or
refused ("1,0,0" was read as 100 yuan)."""

from __future__ import annotations

import os
import re
import shutil
import stat
from decimal import Decimal
from dataclasses import replace
from pathlib import Path

import pytest
from click.testing import CliRunner

from conftest import NOW, event
from cli import cli
from monitor.config import Limits
from monitor.files import write_atomic
from monitor.ingest import ingest_events

SHIPPED = Path(__file__).resolve().parent.parent / "rules"


def test_a_write_that_dies_half_way_leaves_the_previous_file(tmp_path):
    target = tmp_path / "report.xlsx"
    write_atomic(target, b"the good copy")

    def dies(tmp: Path) -> None:
        tmp.write_bytes(b"PK\x03\x04 half a zip")
        raise KeyboardInterrupt  # as a kill would, mid-save

    with pytest.raises(KeyboardInterrupt):
        write_atomic(target, dies)
    assert target.read_bytes() == b"the good copy"
    assert os.listdir(tmp_path) == ["report.xlsx"]  # no temporary file left behind
    assert stat.S_IMODE(target.stat().st_mode) == 0o600


def test_reports_and_the_database_are_for_their_owner_only(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MONITOR_DATABASE_URL", raising=False)
    os.umask(0o022)
    db = tmp_path / "monitor.db"
    runner = CliRunner()
    assert runner.invoke(cli, ["--db", f"sqlite:///{db}", "init"]).exit_code == 0
    assert stat.S_IMODE(db.stat().st_mode) == 0o600
    out = tmp_path / "out" / "r.html"
    (tmp_path / "out").mkdir()
    result = runner.invoke(cli, ["--db", f"sqlite:///{db}", "report", "--period", "2025-09",
                                 "--format", "html", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert stat.S_IMODE(out.stat().st_mode) == 0o600


def test_run_as_of_the_past_is_refused_unless_rewind(tmp_path, db_url, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MONITOR_DATABASE_URL", raising=False)
    shutil.copytree(SHIPPED, tmp_path / "rules")
    from conftest import CATALOG

    (tmp_path / "catalog.yaml").write_text(CATALOG, encoding="utf-8")
    runner = CliRunner()

    def run(*args):
        return runner.invoke(cli, ["--db", db_url, *args])

    assert run("ingest", "catalog", "catalog.yaml").exit_code == 0
    assert run("run", "--as-of", "2025-10-10T10:00").exit_code in (0, 3)
    refused = run("run", "--as-of", "2025-10-01T10:00")
    assert refused.exit_code == 2
    assert re.search(r"is earlier than the latest evaluation \(2025-10-10 10:00\) of \d+ "
                     r"rule\(s\) \(.*\): they would be re-evaluated in full", refused.output)
    assert "give --rewind" in refused.output
    assert run("run", "--as-of", "2025-10-01T10:00", "--dry-run").exit_code == 0
    done = run("run", "--as-of", "2025-10-01T10:00", "--rewind")
    assert done.exit_code == 0 and "rewinding: --as-of 2025-10-01 10:00" in done.output
    assert run("run", "--as-of", "2025-10-02T10:00").exit_code == 0  # forward again: fine


@pytest.mark.parametrize("fmt, amount, expected", [
    ("1,234.56", "1,0,0", None), ("1,234.56", "12,34.5", None),
    ("1,234.56", "1,234.50", "1234.50"), ("1,234.56", "200", "200"),
    ("1.234,56", "1.234,56", "1234.56"), ("1.234,56", "200.00", None), ("none", "1,000", None),
    ("1 234,56", "1 234,5", "1234.5"),
])
def test_thousands_separators_follow_the_setting_or_the_row_is_refused(
        store, config, write_events, fmt, amount, expected):
    from sqlalchemy import select

    from monitor.models import Event

    config = replace(config, limits=Limits(amount_format=fmt))
    path = write_events([event("fee", step="fee_paid", amount=amount)])
    [result] = ingest_events(store, config, [str(path)], NOW)
    with store.connect() as conn:
        stored = conn.scalar(select(Event.amount))
    if expected is None:
        assert dict(result.tally.by_reason) == {"bad_amount": 1} and stored is None
    else:
        assert result.tally.inserted == 1 and stored == Decimal(expected)
