"""Times in the county's zone wherever a person reads them: log lines (text and JSON, one
formatter) and ``alerts show``. The report's 生成时间 is checked in test_report.py."""

from __future__ import annotations

import json
import logging
from datetime import datetime, timezone
from zoneinfo import ZoneInfo

import pytest
from click.testing import CliRunner

from cli import cli
from monitor.logs import CountyTime, use_zone

AT = datetime(2026, 2, 1, 10, 0, 3, tzinfo=timezone.utc)  # 18:00:03 in Beijing


@pytest.fixture(autouse=True)
def utc_again():
    """The zone is process-wide (any CLI test that read a config set it): UTC around each."""
    use_zone(timezone.utc)
    yield
    use_zone(timezone.utc)


def record() -> logging.LogRecord:
    r = logging.LogRecord("monitor.jobs", logging.WARNING, __file__, 1, "run %s failed",
                          (7,), None)
    r.created = AT.timestamp()
    return r


def test_log_lines_carry_the_county_time_with_its_offset():
    assert CountyTime().format(record()).startswith("2026-02-01T10:00:03+00:00 WARNING")
    use_zone(ZoneInfo("Asia/Shanghai"))
    assert CountyTime().format(record()) == \
        "2026-02-01T18:00:03+08:00 WARNING monitor.jobs: run 7 failed"
    assert json.loads(CountyTime(json_lines=True).format(record())) == {
        "time": "2026-02-01T18:00:03+08:00", "level": "warning", "logger": "monitor.jobs",
        "message": "run 7 failed"}


def test_reading_the_config_sets_the_zone_and_alerts_show_uses_it(db_url, store, tmp_path,
                                                                   monkeypatch):
    from conftest import event, events_writer
    from monitor.config import Config
    from monitor.engine import evaluate
    from monitor.ingest import ingest_events
    from monitor.rules.loader import load_rules

    monkeypatch.chdir(tmp_path)
    config = Config(path=None, base_dir=tmp_path)
    path = events_writer(tmp_path)([event("e1", "c1", "accept", "2025-09-30 10:00:00"),
                                    event("e2", "c1", "survey", "2025-09-30 10:00:58")])
    list(ingest_events(store, config, [str(path)], AT))
    rules = tmp_path / "fast.yaml"
    rules.write_text("- {id: fast, kind: step_too_fast, level: red}\n", encoding="utf-8")
    evaluate(store, config, AT, rules=load_rules([rules]))
    shown = CliRunner().invoke(cli, ["--db", db_url, "alerts", "show", "1"])
    assert shown.exit_code == 0, shown.output
    assert CountyTime.zone == ZoneInfo("Asia/Shanghai")
    alert = json.loads(shown.stdout)
    assert alert["raised_at"] == "2026-02-01T18:00:03+08:00"
