"""Settings: defaults, the database URL precedence, and the settings table."""

from __future__ import annotations

from pathlib import Path

from monitor.config import SETTINGS, load_config, resolve_database_url


def test_defaults_without_a_config_file(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    config = load_config(None)
    assert config.path is None and config.timezone == "Asia/Shanghai"
    assert resolve_database_url(config, environ={}) == f"sqlite:///{tmp_path.resolve()}/monitor.db"


def test_database_url_precedence(tmp_path):
    path = tmp_path / "conf" / "config.yaml"
    path.parent.mkdir()
    path.write_text("timezone: Asia/Urumqi\n")
    config = load_config(path)
    assert resolve_database_url(config, environ={}) == f"sqlite:///{path.parent}/monitor.db"
    path.write_text("database_url: sqlite:///from-config.db\n")
    config = load_config(path)
    assert resolve_database_url(config, environ={}) == "sqlite:///from-config.db"
    env = {"MONITOR_DATABASE_URL": "sqlite:///from-env.db"}
    assert resolve_database_url(config, environ=env) == "sqlite:///from-env.db"
    assert resolve_database_url(config, "sqlite:///from-cli.db", env) == "sqlite:///from-cli.db"


def test_paths_are_relative_to_the_config_file(tmp_path):
    path = tmp_path / "config.yaml"
    path.write_text("rules_dir: my-rules\nmapping:\n  item_code: X\n  steps: {A: accept}\n")
    config = load_config(path)
    assert config.rules_dir == tmp_path / "my-rules"
    assert config.mapping.item_code == "X" and dict(config.mapping.steps) == {"A": "accept"}


def test_every_setting_has_help_and_a_type():
    for s in SETTINGS:
        assert s.help and s.type in (str, int, dict, list, bool)


def test_empty_config_file_means_defaults(tmp_path):
    path = Path(tmp_path / "config.yaml")
    path.write_text("# nothing yet\n")
    assert load_config(path).batch_size == 5000


def test_calendar_overrides(tmp_path):
    from datetime import date

    path = tmp_path / "config.yaml"
    path.write_text("calendar:\n  extra_holidays: [2025-10-10]\n  extra_workdays: [2025-10-12]\n")
    calendar = load_config(path).calendar()
    assert not calendar.is_workday(date(2025, 10, 10))
    assert calendar.is_workday(date(2025, 10, 12))
