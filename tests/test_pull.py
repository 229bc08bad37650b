"""`ingest pull` against a real second database (a second SQLite file; on the PostgreSQL
pass a second PostgreSQL database): only rows past the watermark, same validation."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner
from sqlalchemy import create_engine, select, text

from cli import cli
from conftest import fresh_database
from monitor.models import SourceWatermark
from monitor.config import SHIPPED_RULES
from monitor.rules.loader import load_rules

SHIPPED_COUNT = len(load_rules([SHIPPED_RULES]))  # every shipped rule runs

QUERY = ("SELECT seq, evt AS event_id, case_no AS case_id, item AS item_code, step, "
         "happened AS occurred_at, who AS actor FROM wf_log")


@pytest.fixture
def source(tmp_path):
    """The workflow system's own database, with its log table."""
    folder = tmp_path / "workflow"
    folder.mkdir()
    with fresh_database(folder) as url:
        engine = create_engine(url)
        with engine.begin() as conn:
            conn.execute(text("CREATE TABLE wf_log (seq INTEGER PRIMARY KEY, evt VARCHAR(40), "
                              "case_no VARCHAR(40), item VARCHAR(40), step VARCHAR(20), "
                              "happened TIMESTAMP, who VARCHAR(20))"))

        def add(*rows):
            with engine.begin() as conn:
                conn.execute(text("INSERT INTO wf_log VALUES (:seq, :evt, :case_no, :item, "
                                  ":step, :happened, :who)"), [dict(zip(
                                      ("seq", "evt", "case_no", "item", "step", "happened",
                                       "who"), r)) for r in rows])
        add.url = url
        yield add
        engine.dispose()


@pytest.fixture
def pull(tmp_path, db_url, catalog_file, source, monkeypatch):
    monkeypatch.setenv("PM_WORKFLOW_URL", source.url)
    (tmp_path / "config.yaml").write_text(
        f"sources:\n  wf:\n    url_env: PM_WORKFLOW_URL\n    query: \"{QUERY}\"\n"
        "    watermark: seq\n")
    runner = CliRunner()

    def invoke(*args):
        return runner.invoke(cli, ["--config", str(tmp_path / "config.yaml"), "--db", db_url,
                                   *args])

    assert invoke("ingest", "catalog", str(catalog_file)).exit_code == 0
    return invoke


def test_pull_reads_only_rows_past_the_watermark(pull, source, db_url):
    from datetime import datetime

    at = datetime(2025, 9, 30, 10, 0)
    source((1, "w1", "c1", "D04-XK-001", "accept", at, "u1"),
           (2, "w2", "c1", "D04-XK-001", "review", at.replace(hour=11), "u2"),
           (3, "w3", "c2", "NO-SUCH-ITEM", "accept", at, "u1"))
    first = pull("ingest", "pull", "--json")
    assert first.exit_code == 0, first.output
    tally = json.loads(first.stdout)
    assert (tally["read"], tally["inserted"], tally["quarantined"]) == (3, 2, 1)
    assert "pull:wf:3: unknown_item" in pull("quarantine", "list").stdout

    source((4, "w4", "c1", "D04-XK-001", "decide", at.replace(hour=15), "u2"))
    second = pull("ingest", "pull", "wf")
    assert second.stdout.splitlines()[0] == \
        "pull:wf: read 1 · inserted 1 · duplicates 0 · quarantined 0"
    third = pull("ingest", "pull")
    assert third.stdout.splitlines()[0].startswith("pull:wf: read 0 · inserted 0")

    from monitor.db import open_store

    engine = open_store(db_url)
    with engine.connect() as conn:
        assert conn.scalar(select(SourceWatermark.value)) == "i:4"
    engine.dispose()


def test_pull_errors_are_one_line(pull, monkeypatch):
    assert pull("ingest", "pull", "nope").stderr.strip().endswith(
        "no source named 'nope' (sources: wf)")
    monkeypatch.delenv("PM_WORKFLOW_URL")
    result = pull("ingest", "pull")
    assert result.exit_code == 1
    assert result.stderr.strip() == ("Error: config.yaml: source 'wf': environment variable "
                                     "PM_WORKFLOW_URL (url_env) is not set")
    monkeypatch.setenv("PM_WORKFLOW_URL", "sqlite:////nonexistent/dir/x.db")
    result = pull("ingest", "pull")
    assert result.exit_code == 1
    [line] = result.stderr.strip().splitlines()
    assert line.startswith("Error: source 'wf' (sqlite:////nonexistent/dir/x.db): unable to open")


def test_nightly_pulls_too_and_a_source_that_is_down_does_not_stop_the_audit(
        pull, source, monkeypatch):
    from datetime import datetime

    source((1, "w1", "c1", "D04-XK-001", "accept", datetime(2025, 9, 30, 10), "u1"))
    result = pull("nightly", "--json", "--as-of", "2025-12-31T18:00")
    record = json.loads(result.stdout)
    assert record["counts"]["pulled"]["wf"]["inserted"] == 1
    assert record["counts"]["new_alerts"] >= 1  # c1, never decided, is overdue
    monkeypatch.setenv("PM_WORKFLOW_URL", "sqlite:////nonexistent/dir/x.db")
    result = pull("nightly", "--json", "--as-of", "2026-01-05T18:00")
    assert result.exit_code == 1
    record = json.loads(result.stdout)
    assert record["status"] == "failed" and record["counts"]["rules"] == SHIPPED_COUNT
    assert record["errors"][0].startswith("pull wf: source 'wf' (sqlite:////nonexistent")
