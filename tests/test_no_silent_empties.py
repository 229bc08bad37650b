"""No silent empties: a command that would answer from nothing says so instead.

A reading command refuses a database that does not exist (it used to create an empty
``monitor.db`` and print ``no alerts``); a typo'd filter is a usage error with a "did you
mean"; ``rules check`` checks scope against the stored catalog, or says it could not; an
empty input file is an error, as a file of blank lines already was.
"""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from cli import cli
from monitor.db import safe_url


@pytest.fixture
def cwd(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MONITOR_DATABASE_URL", raising=False)
    monkeypatch.delenv("MONITOR_CONFIG", raising=False)
    return tmp_path


def invoke(*args):
    return CliRunner().invoke(cli, [*map(str, args)])


@pytest.mark.parametrize("args", [
    ["alerts", "list"], ["run"], ["report", "--period", "2025-10"], ["quarantine", "list"],
    ["audit", "verify"], ["notify", "list"], ["runs", "list"]])
def test_a_reading_command_refuses_a_missing_database_and_creates_none(cwd, args):
    result = invoke(*args)
    assert result.exit_code == 1
    url = f"sqlite:///{cwd / 'monitor.db'}"
    assert result.stderr == (
        f"Error: no database at {url}: create one with `permit-monitor init` (or "
        "`permit-monitor demo`), or point to one with --db URL or MONITOR_DATABASE_URL\n")
    assert not (cwd / "monitor.db").exists()


def test_a_zero_byte_database_file_is_missing_too(cwd):
    (cwd / "monitor.db").write_bytes(b"")
    result = invoke("alerts", "list")
    assert result.exit_code == 1 and "Error: no database at sqlite:///" in result.stderr
    assert (cwd / "monitor.db").stat().st_size == 0


def test_a_database_without_the_schema_is_refused(cwd, empty_db_url):
    if empty_db_url.startswith("sqlite"):  # a file of some other program's
        import sqlite3

        with sqlite3.connect(empty_db_url.removeprefix("sqlite:///")) as conn:
            conn.execute("CREATE TABLE other (x)")
    result = invoke("--db", empty_db_url, "alerts", "list")
    assert result.exit_code == 1
    assert "has no permit-monitor schema: create one with `permit-monitor init`" in result.stderr


def test_the_commands_that_create_a_store_still_do(cwd, catalog_file):
    assert invoke("init").exit_code == 0
    assert (cwd / "monitor.db").is_file()
    (cwd / "monitor.db").unlink()
    assert invoke("ingest", "catalog", catalog_file).exit_code == 0
    listed = invoke("alerts", "list")
    assert (listed.exit_code, listed.stderr) == (0, "no alerts\n")


@pytest.mark.parametrize("args, message", [
    (["--status", "opne"], "Invalid value for '--status': no status 'opne' (did you mean 'open'?)"),
    (["--department", "D4"], "Invalid value for '--department': no department 'D4' "
                             "(did you mean 'D04'?); known: D04, D07"),
    (["--kind", "case-too-fast"], "Invalid value for '--kind': no kind 'case-too-fast' "
                                  "(did you mean 'case_too_fast'?)"),
    (["--rule", "overdeu"], "Invalid value for '--rule': no rule 'overdeu'; known: none yet"),
])
def test_a_typo_in_a_filter_is_a_usage_error(db_url, store, cwd, args, message):
    result = invoke("--db", db_url, "alerts", "list", *args)
    assert result.exit_code == 2
    assert result.stderr.startswith(f"Error: {message}")


def test_known_values_without_alerts_still_pass(db_url, store, cwd):
    for args in (["--status", "confirmed"], ["--department", "D07"], ["--kind", "overdue"]):
        result = invoke("--db", db_url, "alerts", "list", *args)
        assert (result.exit_code, result.stderr) == (0, "no alerts\n")


def test_report_and_sample_check_the_department(db_url, store, cwd):
    for args in (["report", "--period", "2025-10"], ["scores", "--period", "2025-10"],
                 ["sample", "--period", "2025-10"]):
        result = invoke("--db", db_url, *args, "--department", "d04")
        assert result.exit_code == 2, args
        assert "no department 'd04' (did you mean 'D04'?)" in result.stderr


SCOPED = """\
rules:
  - id: slow_shj
    kind: overdue
    level: yellow
    title: 超期
    message: "{case_id} 超期"
    scope:
      include: {departments: [SHJ], items: [D04-XK-001]}
"""


def test_rules_check_checks_scope_against_the_stored_catalog(db_url, store, cwd):
    path = cwd / "rules.yaml"
    path.write_text(SCOPED, encoding="utf-8")
    result = invoke("--db", db_url, "rules", "check", path)
    assert result.exit_code == 1
    assert "unknown department 'SHJ'" in result.stdout
    assert result.stderr == (f"scope checked against the catalog in {safe_url(db_url)} "
                             "(2 departments, 2 items)\n")


def test_rules_check_says_when_it_could_not_check_scope(cwd):
    path = cwd / "rules.yaml"
    path.write_text(SCOPED, encoding="utf-8")
    result = invoke("rules", "check", path)
    assert result.exit_code == 0, result.output
    assert result.stderr.startswith("scope departments and items not checked: no database at ")
    assert not (cwd / "monitor.db").exists()


@pytest.mark.parametrize("command", ["events", "receipts", "activity"])
@pytest.mark.parametrize("content", [b"", b"\n\n\n"])
def test_an_empty_file_is_an_error_like_a_blank_one(db_url, store, cwd, command, content):
    (cwd / "in.csv").write_bytes(content)
    result = invoke("--db", db_url, "ingest", command, "in.csv")
    assert result.exit_code == 1
    assert result.stderr.startswith("Error: in.csv") and "nothing was read" in result.stderr


def test_a_jsonl_file_of_blank_lines_is_an_error(db_url, store, cwd):
    (cwd / "in.jsonl").write_bytes(b"\n \n")
    result = invoke("--db", db_url, "ingest", "events", "in.jsonl")
    assert result.exit_code == 1
    assert result.stderr == ("Error: in.jsonl: only blank lines, no JSON object; nothing was "
                             "read — see the input contract in docs/input-contract.md\n")


def test_runs_list_checks_the_job(db_url, store, cwd):
    result = invoke("--db", db_url, "runs", "list", "--job", "nightlyy")
    assert result.exit_code == 2
    assert result.stderr.startswith("Error: Invalid value for '--job': no job 'nightlyy' "
                                    "(did you mean 'nightly'?)")
    known = invoke("--db", db_url, "runs", "list", "--job", "nightly")
    assert (known.exit_code, known.stderr) == (0, "no runs\n")


def test_explaining_an_unknown_rule_is_a_usage_error(db_url, store, cwd):
    from monitor.config import SHIPPED_RULES

    (cwd / "config.yaml").write_text(f"rules_dir: {SHIPPED_RULES}\n", encoding="utf-8")
    result = invoke("--db", db_url, "rules", "explain", "overdeu", "--case", "c1")
    assert result.exit_code == 2
    assert result.stderr.endswith("no rule with id 'overdeu' (did you mean 'overdue'?)\n")
