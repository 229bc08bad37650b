"""The command line as a user meets it: exit codes, one-line errors, JSON summaries."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from click.testing import CliRunner

from cli import cli
from conftest import CATALOG, event, fresh_database
from monitor.db import create_store_engine, current_revision, head_revision, safe_url


@pytest.fixture
def run(db_url, tmp_path, monkeypatch):
    """run(*args) → click Result, with the test database and an empty working folder."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MONITOR_DATABASE_URL", raising=False)
    monkeypatch.delenv("MONITOR_CONFIG", raising=False)
    runner = CliRunner()

    def invoke(*args, input=None):
        return runner.invoke(cli, ["--db", db_url, *map(str, args)], input=input)

    return invoke


def test_ingest_catalog_events_and_json_summary(run, catalog_file, write_events):
    result = run("ingest", "catalog", catalog_file)
    assert result.exit_code == 0, result.output
    assert "items: added 2 · updated 0 · unchanged 0" in result.stdout
    path = write_events([event("e1"), event("e2"), event("e3", item_code="X")])
    result = run("ingest", "events", "--json", path)
    assert result.exit_code == 0
    summary = json.loads(result.stdout)  # exactly one JSON object
    assert {k: summary[k] for k in ("read", "inserted", "duplicates", "quarantined")} == \
        {"read": 3, "inserted": 2, "duplicates": 0, "quarantined": 1}
    assert summary["by_reason"] == {"unknown_item": 1}
    result = run("ingest", "events", path)
    assert result.stdout.splitlines()[0] == \
        f"{path}: read 3 · inserted 0 · duplicates 2 · quarantined 1"
    result = run("quarantine", "list")
    assert result.stdout.startswith(f"{path}:4: unknown_item: item_code 'X' is not in the catalog")


def test_stdin_dash(run, catalog_file):
    run("ingest", "catalog", catalog_file)
    data = "event_id,case_id,item_code,step,occurred_at\ne1,c1,D04-XK-001,accept,2025-09-30 10:00\n"
    result = run("ingest", "events", "-", input=data)
    assert result.exit_code == 0 and "<stdin>: read 1 · inserted 1" in result.stdout


@pytest.mark.parametrize("args, message", [
    (["ingest", "events", "missing.csv"], "Error: missing.csv: file not found"),
    (["ingest", "catalog", "missing.yaml"], "Error: missing.yaml: file not found"),
    (["--config", "nope.yaml", "ingest", "events", "x.csv"], "Error: nope.yaml: config file not found"),
])
def test_user_errors_are_one_line(run, args, message):
    result = run(*args)
    assert result.exit_code == 1
    assert result.stderr.strip() == message
    assert "Traceback" not in result.output


@pytest.mark.parametrize("command, header, missing", [
    ("events", "id,case,step,when", "columns event_id, case_id, item_code, occurred_at"),
    ("events", "event_id,case_id,item,step,occurred_at", "column item_code"),
    ("receipts", "dept,month,amount", "columns department, period"),
])
def test_a_header_without_required_columns_is_one_line_and_stores_nothing(
        run, catalog_file, tmp_path, command, header, missing):
    run("ingest", "catalog", catalog_file)
    path = tmp_path / "wrong.csv"
    path.write_text(header + "\n" + ",".join(["x"] * (header.count(",") + 1)) + "\n",
                    encoding="utf-8")
    result = run("ingest", command, path)
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert result.stderr.startswith(f"Error: {path}:1: the header lacks the required {missing}")
    assert run("quarantine", "list", "--all").stdout.strip() in ("", "no quarantined rows")


def test_bad_catalog_yaml_is_located(run, tmp_path):
    (tmp_path / "c.yaml").write_text("departments:\n  - {code: D04, name: [x\n")
    result = run("ingest", "catalog", "c.yaml")
    assert result.exit_code == 1
    assert result.stderr.startswith("Error: c.yaml:3: invalid YAML")


def test_an_empty_database_gets_the_schema_on_first_use(tmp_path):
    """The other tests start from a copy of a database migrated once per session; this
    one starts from nothing, as a new user does."""
    (tmp_path / "catalog.yaml").write_text(CATALOG, encoding="utf-8")
    with fresh_database(tmp_path) as url:
        first = CliRunner().invoke(cli, ["--db", url, "ingest", "catalog",
                                         str(tmp_path / "catalog.yaml")])
        assert first.exit_code == 0, first.output
        assert "items: added 2 · updated 0 · unchanged 0" in first.stdout
        again = CliRunner().invoke(cli, ["--db", url, "init"])  # nothing left to do
        assert (again.exit_code, again.stdout) == (0, f"database ready: {safe_url(url)}\n")
        engine = create_store_engine(url)
        try:
            assert current_revision(engine) == head_revision()
        finally:
            engine.dispose()


def test_unreachable_database_is_one_line(tmp_path):
    url = "postgresql+psycopg://monitor:s3cret@127.0.0.1:1/permit"
    result = CliRunner().invoke(cli, ["--db", url, "init"])
    assert result.exit_code == 1
    [line] = result.stderr.strip().splitlines()
    assert line.startswith("Error: cannot use database postgresql+psycopg://monitor:***@127.0.0.1:1/permit")
    assert "s3cret" not in result.output


@pytest.mark.parametrize("url, message", [
    ("nonsense", "Error: not a database URL: 'nonsense'"),
    ("mysql://x@y/z", "Error: unsupported database"),
    ("sqlite:////no/such/folder/x.db", "Error: cannot open database sqlite:////no/such/folder/x.db"),
])
def test_bad_database_urls(url, message):
    result = CliRunner().invoke(cli, ["--db", url, "init"])
    assert result.exit_code == 1 and result.stderr.startswith(message)


def test_usage_errors_exit_2(run):
    assert run("ingest", "events").exit_code == 2
    assert run("no-such-command").exit_code == 2


def test_every_command_has_help():
    def walk(group, prefix):
        for name, command in group.commands.items():
            yield [*prefix, name], command
            if hasattr(command, "commands"):
                yield from walk(command, [*prefix, name])

    for path, command in walk(cli, []):
        assert command.help, f"{' '.join(path)} has no help text"
        result = CliRunner().invoke(cli, [*path, "--help"])
        assert result.exit_code == 0 and "Usage:" in result.stdout


@pytest.mark.slow
def test_python_dash_m_monitor(tmp_path):
    result = subprocess.run([sys.executable, "-m", "monitor", "--version"], capture_output=True,
                            text=True, cwd=tmp_path)
    assert result.returncode == 0 and result.stdout.startswith("permit-monitor, version")
