"""The documentation cannot drift: every command and setting is in the README, and the
example files in docs/ are ingested exactly as the docs say."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from cli import cli
from conftest import NOW
from monitor.catalog import ingest_catalog
from monitor.config import (AUDIT_SETTINGS, INBOX_SETTINGS, MAPPING_SETTINGS, NOTIFY_SETTINGS,
                            SCHEDULE_SETTINGS, SETTINGS, WEB_SETTINGS)
from monitor.ingest import ingest_events, ingest_receipts

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")
CONTRACT = (ROOT / "docs" / "input-contract.md").read_text(encoding="utf-8")
EXAMPLES = ROOT / "docs" / "examples" / "county"


def commands(group, prefix=("permit-monitor",)):
    for name, command in group.commands.items():
        if hasattr(command, "commands"):
            yield from commands(command, (*prefix, name))
        else:
            yield " ".join((*prefix, name))


def test_every_command_is_in_the_readme():
    for command in commands(cli):
        assert f"`{command}" in README, f"README does not document {command}"


def test_every_setting_is_in_the_readme():
    for setting in SETTINGS:
        assert f"`{setting.name}`" in README, setting.name
    for setting in MAPPING_SETTINGS:
        assert f"`{setting.name}`" in README, f"mapping.{setting.name}"
    for setting in NOTIFY_SETTINGS:
        assert f"| `{setting.name}` |" in README, f"notify.{setting.name}"
    for setting in INBOX_SETTINGS + SCHEDULE_SETTINGS + WEB_SETTINGS + AUDIT_SETTINGS:
        assert f"| `{setting.name}` |" in README, setting.name


def test_readme_opens_with_the_two_commands():
    first_block = README.split("```")[1]
    assert "pip install -e . && permit-monitor demo" in first_block
    assert "pip install -e '.[test]' && pytest" in first_block


def test_the_quick_loop_is_documented_and_ci_runs_every_test():
    developers = README.split("## For developers", 1)[1]
    assert 'pytest -m "not slow"' in developers.split("```")[1]
    ini = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    ini = ini["tool"]["pytest"]["ini_options"]
    assert any(m.startswith("slow: ") for m in ini["markers"])
    assert "-m" not in ini["addopts"].split()  # plain pytest selects every test
    ci = [line for line in (ROOT / ".ci" / "run").read_text().splitlines()
          if re.search(r"\bpytest\b", line) and not line.lstrip().startswith(("#", "echo"))]
    assert len(ci) == 2 and not any(" -m " in line or " -k " in line for line in ci), ci


def test_every_quarantine_reason_is_documented():
    sources = "".join(p.read_text(encoding="utf-8")
                      for p in (ROOT / "monitor" / "ingest").glob("*.py"))
    reasons = set(re.findall(r'Rejected\("([a-z_]+)"', sources)) | {"malformed_row", "conflict"}
    for reason in reasons:
        assert f"`{reason}`" in CONTRACT, f"reason {reason} missing from docs/input-contract.md"


def test_the_documented_examples_ingest_cleanly(engine, config):
    ingest_catalog(engine, EXAMPLES / "catalog.yaml")
    results = ingest_events(engine, config, [str(EXAMPLES / "events.csv"),
                                             str(EXAMPLES / "events.jsonl")], NOW)
    assert [(r.tally.read, r.tally.inserted) for r in results] == [(13, 13), (4, 4)]
    [receipts] = ingest_receipts(engine, config, [str(EXAMPLES / "receipts.csv")], NOW)
    assert receipts.tally.inserted == 2
