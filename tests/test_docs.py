"""The documentation cannot drift: every command and setting is in the README, the
example files in docs/ are ingested exactly as the docs say, and the README's printed
demo and replay sessions are what the program prints (figures and hashes included)."""

from __future__ import annotations

import re
import shlex
import tomllib
from pathlib import Path

import pytest
from click.testing import CliRunner

from cli import cli
from conftest import NOW
from monitor.catalog import ingest_catalog
from monitor.config import (AUDIT_SETTINGS, GATE_SETTINGS, INBOX_SETTINGS, LIMIT_SETTINGS,
                            MAPPING_SETTINGS,
                            NOTIFY_SETTINGS, REGION_SETTINGS, SCHEDULE_SETTINGS, SETTINGS,
                            WEB_SETTINGS)
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
    for setting in (INBOX_SETTINGS + SCHEDULE_SETTINGS + WEB_SETTINGS + GATE_SETTINGS
                    + LIMIT_SETTINGS + AUDIT_SETTINGS + REGION_SETTINGS):
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


def deploy_commands() -> list[list[str]]:
    """The permit-monitor command lines of docs/deploy.md's code blocks, as argument lists
    (what follows the program's name, up to a shell operator or the end of the line)."""
    text = (ROOT / "docs" / "deploy.md").read_text(encoding="utf-8")
    found = []
    for block in text.split("```")[1::2]:
        for match in re.finditer(r"bin/permit-monitor ([^'\n]*)", block):
            found.append(shlex.split(re.split(r"\s(?:>>?|&&|\|\|?|;|2>&1)", match[1])[0]))
    return found


def test_every_command_in_the_deploy_guide_parses():
    shown = deploy_commands()
    assert {w[0] for w in shown} >= {"init", "rules", "ingest", "nightly", "serve", "web",
                                     "users", "--db"}
    runner = CliRunner()
    for words in shown:
        result = runner.invoke(cli, [*words, "--help"])
        assert result.exit_code == 0, f"docs/deploy.md: permit-monitor {' '.join(words)}: " \
                                      f"{result.output}"


ARCHITECTURE = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")


def architecture_paths(text: str) -> set[str]:
    """The project paths docs/architecture.md names: ``monitor/…``, ``cli.py``,
    ``tests/…``, ``rules/``, and the dotted ``monitor.x.y`` module names."""
    paths = set(re.findall(r"(?<![\w/.])((?:monitor|tests|rules|bench)/[\w/.-]*|cli\.py)", text))
    for dotted in re.findall(r"(?<![\w/.])(monitor(?:\.[a-z_]+)+)", text):
        parts = dotted.split(".")
        while len(parts) > 1 and not (ROOT.joinpath(*parts).is_dir()
                                      or ROOT.joinpath(*parts).with_suffix(".py").exists()):
            parts.pop()  # monitor.ingest.ingest_events: the module, then a name in it
        paths.add("/".join(parts) + ("/" if ROOT.joinpath(*parts).is_dir() else ".py"))
    return {p.rstrip(".") for p in paths}


def test_architecture_names_only_paths_that_exist():
    named = architecture_paths(ARCHITECTURE)
    assert len(named) > 40  # the check reads the page (it names ~70 paths)
    missing = sorted(p for p in named if not (ROOT / p).exists())
    assert not missing, f"docs/architecture.md names paths that do not exist: {missing}"


def test_architecture_names_every_package_and_module_of_monitor():
    named = architecture_paths(ARCHITECTURE)
    top = sorted(p.relative_to(ROOT).as_posix() + ("/" if p.is_dir() else "")
                 for p in (ROOT / "monitor").iterdir()
                 if (p.is_dir() and (p / "__init__.py").exists())
                 or (p.suffix == ".py" and p.name != "__init__.py"))
    absent = [p for p in top if p not in named]
    assert not absent, f"docs/architecture.md does not place {absent} in a layer"


def test_architecture_path_check_can_fail():
    named = architecture_paths("see `monitor/nowhere.py`, monitor.engine.evaluate and "
                               "`monitor/ingest/`")
    assert named == {"monitor/nowhere.py", "monitor/engine.py", "monitor/ingest/"}
    assert not (ROOT / "monitor/nowhere.py").exists()


def test_the_scale_design_names_only_paths_that_exist():
    """docs/scale.md is a design over today's code: what it cites must be there (its
    table of tables is tests/test_scale_design.py's)."""
    named = architecture_paths((ROOT / "docs" / "scale.md").read_text(encoding="utf-8"))
    assert len(named) > 10
    missing = sorted(p for p in named if not (ROOT / p).exists())
    assert not missing, f"docs/scale.md names paths that do not exist: {missing}"


# --- the README's printed sessions, run as printed ------------------------------------

def readme_block(first_command: str, after: str = "") -> str:
    """The README code block whose first line is ``$ first_command`` (the first one after
    the text ``after``)."""
    text = README[README.index(after):] if after else README
    start = text.index(f"```\n$ {first_command}\n") + 4
    return text[start:text.index("```", start)]


def steps(block: str) -> list[tuple[str, list[str]]]:
    """``(command, the lines it prints)`` for each ``$ `` line of a block."""
    out: list[tuple[str, list[str]]] = []
    for line in block.splitlines():
        if line.startswith("$ "):
            out.append((line[2:], []))
        else:
            out[-1][1].append(line)
    return out


def same_session(block: str, tmp_path, monkeypatch) -> None:
    """Run each ``permit-monitor`` command of ``block`` (``export`` sets the variable) in
    ``tmp_path`` and compare what it prints with what the README shows; a line ``…``
    stands for lines left out. Random passwords and the folder's absolute path aside."""
    import shlex

    from click.testing import CliRunner

    def normal(lines: list[str]) -> list[str]:
        return [re.sub(r"password \S+$", "password …",
                       line.replace(f"sqlite:///{tmp_path}/", "sqlite:///")) for line in lines]

    monkeypatch.chdir(tmp_path)
    for name in ("MONITOR_DATABASE_URL", "MONITOR_CONFIG"):
        monkeypatch.delenv(name, raising=False)
    for command, shown in steps(block):
        if command.startswith("export "):
            name, _, value = command.removeprefix("export ").partition("=")
            monkeypatch.setenv(name, value)
            continue
        args = shlex.split(command)
        assert args[0] == "permit-monitor", command
        result = CliRunner().invoke(cli, args[1:])
        assert result.exception is None or isinstance(result.exception, SystemExit), command
        printed, shown = normal(result.output.splitlines()), normal(shown)
        if "…" in shown:
            cut = shown.index("…")
            head, tail = shown[:cut], shown[cut + 1:]
            assert (printed[:len(head)], printed[len(printed) - len(tail):]) == (head, tail), \
                command
        else:
            assert printed == shown, command


@pytest.mark.slow  # the 5,000-case demo, about 40 s
def test_the_readme_demo_prints_what_the_readme_shows(tmp_path, monkeypatch):
    same_session(readme_block("permit-monitor demo"), tmp_path, monkeypatch)


@pytest.mark.slow  # the 5,000-case replay, a few minutes
def test_the_readme_replay_and_its_session_print_what_the_readme_shows(tmp_path, monkeypatch):
    """The figures of the half-year and the trail's head hash, which the README tells
    auditors to note, are the program's, not a stale copy."""
    same_session(readme_block("permit-monitor demo --replay"), tmp_path, monkeypatch)
    session = readme_block("export MONITOR_DATABASE_URL=sqlite:///permit-monitor-demo/monitor.db",
                           after="A session\nwith what the replay left")
    same_session(session, tmp_path, monkeypatch)
