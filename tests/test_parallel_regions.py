"""`run --jobs N` over a store of three counties: the regional rules one county per
process, the others in the parent — the same alerts, rule watermarks and trail as the
serial run, on both databases (issue 21 item 4)."""

from __future__ import annotations

from collections import Counter

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from cli import cli
from conftest import database_copy, event, migrated_template
from monitor.db import create_store_engine
from monitor.models import Alert, RuleState, TrailEntry
from monitor.parallel import counties
from test_region_rules import _cases, _county

COUNTIES = (("330102", "A", 1), ("330106", "B", 2), ("330108", "C", 3))


def _catalog(prefix: str) -> str:
    """A county's catalog whose items want a site-survey report (missing_attachment: a kind
    run in the workers that clears its alerts)."""
    return _county(prefix).replace("    fee: 0\n", "    fee: 0\n    required_attachments: "
                                   "{survey: [现场踏勘意见书]}\n")


def _more(prefix: str) -> list[dict]:
    """A night's events: a case accepted and surveyed too fast to be true, keyed late."""
    case, common = f"{prefix}1-11-0", dict(item_code=f"{prefix}1-XK-001",
                                           actor=f"{prefix.lower()}1")
    return [event(f"{case}a", case, occurred_at="2025-11-03 09:00", **common),
            event(f"{case}s", case, "survey", occurred_at="2025-11-03 09:01",
                  recorded_at="2025-11-05 10:00", **common)]


def _state(url: str) -> tuple:
    """What the two runs must agree on: every alert (its key, county, level, message,
    status, tier), every rule's watermark, and each chain's entries by action."""
    engine = create_store_engine(url)
    with engine.connect() as conn:
        alerts = sorted(conn.execute(select(Alert.dedupe_key, Alert.region, Alert.level,
                                            Alert.message, Alert.status, Alert.tier)).all())
        marks = sorted(conn.execute(select(RuleState.rule_id, RuleState.last_event_id,
                                           RuleState.as_of, RuleState.mark)).all())
        chains = Counter(conn.execute(select(TrailEntry.region, TrailEntry.action)).all())
    engine.dispose()
    return alerts, marks, chains


@pytest.mark.slow  # worker processes
def test_jobs_give_what_the_serial_run_gives(db_url, tmp_path, monkeypatch, write_events):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MONITOR_DATABASE_URL", raising=False)
    (tmp_path / "config.yaml").write_text("region: 330102\n", encoding="utf-8")
    runner = CliRunner()

    def run(url, *args):
        result = runner.invoke(cli, ["--db", url, *map(str, args)])
        assert result.exit_code in (0, 3), result.output
        return result

    (tmp_path / "b").mkdir()
    with database_copy(migrated_template(), tmp_path / "b") as other:
        for url in (db_url, other):
            for region, prefix, late in COUNTIES:
                (tmp_path / f"{prefix}.yaml").write_text(_catalog(prefix), encoding="utf-8")
                run(url, "ingest", "catalog", "--region", region, tmp_path / f"{prefix}.yaml")
                run(url, "ingest", "events", "--region", region,
                    write_events(_cases(prefix, late), f"{prefix}.csv"))
        engine = create_store_engine(other)
        assert counties(engine) == [c for c, _, _ in COUNTIES]
        engine.dispose()
        serial = run(db_url, "run", "--as-of", "2025-11-03T09:00:00+08:00")
        parallel = run(other, "run", "--jobs", "2", "--as-of", "2025-11-03T09:00:00+08:00")
        assert serial.output == parallel.output  # the same counts, rule by rule
        assert _state(db_url) == _state(other)
        # a night on: the incremental pass, each county with new events
        for url in (db_url, other):
            for region, prefix, _ in COUNTIES:
                run(url, "ingest", "events", "--region", region,
                    write_events(_more(prefix), f"{prefix}-more.csv"))
        serial = run(db_url, "run", "--as-of", "2025-11-06T09:00:00+08:00")
        parallel = run(other, "run", "--jobs", "2", "--as-of", "2025-11-06T09:00:00+08:00")
        assert serial.output == parallel.output
        alerts, _, chains = after = _state(other)
        assert after == _state(db_url)
        # every county has alerts of a rule run in the workers, on its own chain
        assert {a.region for a in alerts if a.dedupe_key.startswith("late-entry|")} == {
            c for c, _, _ in COUNTIES}
        assert all(chains[(c, "raised")] for c, _, _ in COUNTIES)
        assert {a.region for a in alerts if a.dedupe_key.startswith("missing-attachment|")
                and a.status == "open"} == {c for c, _, _ in COUNTIES}
        # in full: each county's pass clears only that county's alerts
        serial = run(db_url, "run", "--full", "--as-of", "2025-11-07T09:00:00+08:00")
        parallel = run(other, "run", "--full", "--jobs", "3",
                       "--as-of", "2025-11-07T09:00:00+08:00")
        assert serial.output == parallel.output
        assert _state(db_url) == _state(other)
