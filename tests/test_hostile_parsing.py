"""Hostile input, part 3: bounded parsing. A rule, catalog or config file cannot make the
service use unbounded memory or time, and each refusal is one ``file:line`` line.

Before: a 572-byte alias bomb in a rule's value drove ``run`` to 22 GB; a 50 MB rule file
took 722 s; a message width ``{duration:>30000000}`` passed ``rules check``."""

from __future__ import annotations

import time

import pytest
from click.testing import CliRunner

from cli import cli
from monitor.errors import CatalogError, ConfigError, RuleError, SourceErrors
from monitor.config import load_config
from monitor.catalog import load_catalog
from monitor.rules.loader import load_rules
from monitor.yamlsrc import YamlLimits, load_yaml

BOMB = "".join(
    f"{name}: &{name} [{', '.join([f'*{prev}'] * 9 if prev else ['lol'] * 9)}]\n"
    for prev, name in zip([None, *"abcdefgh"], "abcdefghi"))
RULE_HEAD = "rules:\n  - id: bomb\n    kind: step_too_fast\n"


def test_an_alias_bomb_in_a_rule_is_refused_fast_with_its_line(tmp_path):
    path = tmp_path / "bomb.yaml"
    path.write_text(RULE_HEAD + "    params:\n      min_minutes:\n        survey: 30\n"
                    "    references:\n      - &r0 [" + ", ".join(["lol"] * 9) + "]\n" +
                    "".join(f"      - &r{i} [{', '.join([f'*r{i - 1}'] * 9)}]\n"
                            for i in range(1, 10)), encoding="utf-8")
    assert len(path.read_bytes()) < 1000
    started = time.monotonic()
    result = CliRunner().invoke(cli, ["rules", "check", str(path)])
    assert time.monotonic() - started < 5
    assert result.exit_code == 1
    assert f"{path}:" in result.output and "limits.max_yaml_nodes" in result.output
    with pytest.raises(Exception, match="limits.max_yaml_nodes"):
        load_rules([path])


def test_alias_uses_are_counted(tmp_path):
    path = tmp_path / "many.yaml"
    path.write_text("a: &a 1\nb: [" + ", ".join(["*a"] * 150) + "]\n", encoding="utf-8")
    with pytest.raises(RuleError, match=r"many.yaml:2: more than 100 alias uses"):
        load_yaml(path, RuleError)
    assert len(load_yaml(path, RuleError, YamlLimits(max_aliases=200))["b"]) == 150


def test_deep_nesting_is_refused(tmp_path):
    path = tmp_path / "deep.yaml"
    path.write_text("a: " + "[" * 60 + "]" * 60 + "\n", encoding="utf-8")
    with pytest.raises(RuleError, match=r"deep.yaml:1: nested deeper than 40 levels"):
        load_yaml(path, RuleError)
    path.write_text("a: " + "[" * 5000 + "]" * 5000 + "\n", encoding="utf-8")
    with pytest.raises(RuleError, match=r"deep.yaml.*nested"):
        load_yaml(path, RuleError)


def test_a_file_over_the_size_limit_is_not_read(tmp_path):
    path = tmp_path / "big.yaml"
    path.write_text("rules:\n" + "# padding\n" * 250_000, encoding="utf-8")
    with pytest.raises(SourceErrors, match=r"big.yaml: is 2500007 bytes, more than the 2000000"):
        load_rules([path])
    config = tmp_path / "config.yaml"
    config.write_text("timezone: Asia/Shanghai\n" + "#\n" * 1_100_000, encoding="utf-8")
    with pytest.raises(ConfigError, match="limits.max_yaml_bytes"):
        load_config(config)


def test_a_catalog_bomb_is_refused(tmp_path):
    path = tmp_path / "catalog.yaml"
    path.write_text(BOMB, encoding="utf-8")
    with pytest.raises(CatalogError, match="limits.max_yaml_nodes"):
        load_catalog(path)


def test_the_limits_are_settings(tmp_path):
    (tmp_path / "config.yaml").write_text(
        "limits: {max_yaml_aliases: 500, max_format_width: 10, file_mode: '0640'}\n")
    config = load_config(tmp_path / "config.yaml")
    assert (config.limits.max_yaml_aliases, config.limits.file_mode) == (500, 0o640)
    (tmp_path / "config.yaml").write_text("limits: {file_mode: rw}\n")
    with pytest.raises(ConfigError, match="config.yaml:1: 'limits.file_mode' must be octal"):
        load_config(tmp_path / "config.yaml")


@pytest.mark.parametrize("spec", [">30000000", "030000000", ".30000000f", "x^201"])
def test_a_huge_format_width_is_refused_by_rules_check(tmp_path, spec):
    path = tmp_path / "wide.yaml"
    path.write_text(RULE_HEAD.replace("step_too_fast", "case_too_fast") +
                    f"    title: 太快\n    message: \"{{duration:{spec}}} 案件\"\n",
                    encoding="utf-8")
    result = CliRunner().invoke(cli, ["rules", "check", str(path)])
    assert result.exit_code == 1
    assert f"{path}:5: message format {{duration:{spec}}} asks for" in result.output
    assert "limits.max_format_width (200)" in result.output


def test_a_modest_width_is_fine(tmp_path):
    path = tmp_path / "ok.yaml"
    path.write_text(RULE_HEAD + "    message: \"{steps:>20} {case_id}\"\n", encoding="utf-8")
    [rule] = load_rules([path])
    assert rule.message == "{steps:>20} {case_id}"
