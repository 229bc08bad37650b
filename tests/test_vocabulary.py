"""One vocabulary across the commands: --format table|json|csv on every list, --by for
every acting user, usage errors exit 2, exit codes in --help."""

from __future__ import annotations

import csv
import io
import json

import pytest
from click.testing import CliRunner

from cli import cli

LISTS = [["alerts", "list"], ["quarantine", "list"], ["notify", "list"], ["holds", "list"],
         ["exemptions", "list"], ["runs", "list"], ["users", "list", "--all"],
         ["tokens", "list"], ["ratings", "list"], ["complaints", "list"]]


@pytest.fixture
def run(db_url, store, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MONITOR_DATABASE_URL", raising=False)
    monkeypatch.delenv("MONITOR_CONFIG", raising=False)
    return lambda *args: CliRunner().invoke(cli, ["--db", db_url, *map(str, args)])


def test_every_list_command_offers_the_same_formats():
    for args in LISTS:
        command = cli
        for name in args[:2]:
            command = command.commands[name]
        formats = [p for p in command.params if p.name == "fmt"]
        assert formats and list(formats[0].type.choices) == ["table", "json", "csv"], args
        old = [p for p in command.params if "--json" in p.opts]
        assert all(p.hidden for p in old), args


def test_json_and_csv_of_a_list(run):
    """users list --all on the test catalog: the same rows as a JSON array and as CSV."""
    as_json = run("users", "list", "--all", "--format", "json")
    assert as_json.exit_code == 0, as_json.output
    users = json.loads(as_json.stdout)
    assert [u["id"] for u in users] == ["u1", "u2"]
    assert users[1]["roles"] == ["chief", "deputy"] and users[1]["has_password"] is False
    as_csv = run("users", "list", "--all", "--format", "csv")
    rows = list(csv.DictReader(io.StringIO(as_csv.stdout)))
    assert [r["id"] for r in rows] == ["u1", "u2"] and rows[1]["roles"] == '["chief", "deputy"]'
    assert set(rows[0]) == set(users[0])


def test_an_empty_list_prints_an_empty_array_and_no_csv_rows(run):
    assert json.loads(run("holds", "list", "--format", "json").stdout) == []
    result = run("runs", "list", "--format", "csv")
    assert result.exit_code == 0 and result.stdout == "" and result.stderr == ""


def test_the_old_json_flag_still_prints_one_object_per_line(run, tmp_path):
    (tmp_path / "bad.csv").write_text("event_id,case_id,item_code,step,occurred_at\n"
                                      "e1,c1,NOPE,accept,2025-10-09 09:00\n", encoding="utf-8")
    run("ingest", "events", tmp_path / "bad.csv")
    result = run("quarantine", "list", "--json")
    assert result.exit_code == 0
    [line] = result.stdout.splitlines()
    assert json.loads(line)["reason"] == "unknown_item"


def test_no_token_secret_in_a_listing(run):
    run("tokens", "create", "--service", "oa", "--scope", "read")
    listed = run("tokens", "list", "--format", "json").stdout
    assert "token_hash" not in listed and json.loads(listed)[0]["service"] == "oa"


def test_by_for_every_acting_user_and_the_old_spelling_hidden():
    for group, command in (("alerts", "ack"), ("alerts", "resolve"), ("holds", "release"),
                           ("exemptions", "add"), ("exemptions", "revoke"), ("sample", "record")):
        params = {o: p for p in cli.commands[group].commands[command].params for o in p.opts}
        assert "--by" in params and not params["--by"].hidden, (group, command)
    add = {o: p for p in cli.commands["exemptions"].commands["add"].params for o in p.opts}
    assert add["--approved-by"].hidden


@pytest.mark.parametrize("by", [["--by", "u2"], ["--approved-by", "u2"]])
def test_exemptions_add_takes_by_or_approved_by(run, by):
    result = run("exemptions", "add", "--rule", "nope", "--scope", "department=D04",
                 "--reason", "试点", *by, "--until", "2099-01-01")
    assert result.exit_code == 2  # an unknown rule id: a usage error, after --by was read
    assert "no rule with id 'nope'" in result.stderr


def test_exemptions_add_without_by_is_a_usage_error(run):
    result = run("exemptions", "add", "--rule", "x", "--scope", "department=D04",
                 "--reason", "r", "--until", "2099-01-01")
    assert result.exit_code == 2 and "Missing option '--by'." in result.stderr


@pytest.mark.parametrize("args, message", [
    (["report", "--period", "2026-13x"], "is not a month (2026-01) or a quarter"),
    (["report", "--period", "2026-01", "--format", "html"], "--format html needs --out FILE"),
    (["tokens", "create", "--service", "oa", "--scope", "read", "--expires", "soon"],
     "bad --expires 'soon'"),
    (["exemptions", "add", "--rule", "x", "--scope", "dept=D04", "--reason", "r", "--by", "u2",
      "--until", "2099-01-01"], "bad --scope 'dept=D04'"),
    (["sample", "record", "c1", "--by", "u2", "--fail"], "--note is required"),
])
def test_usage_errors_exit_2(run, args, message):
    result = run(*args)
    assert result.exit_code == 2, result.output
    assert message in result.stderr


def test_exit_codes_are_in_the_help():
    text = CliRunner().invoke(cli, ["--help"]).stdout
    assert "Exit codes: 0 ok · 1 error" in text and "2 usage error" in text
    assert "3 only with\n  `nightly --exit-code`" in text
