"""Settings: defaults, the database URL precedence, and the settings table."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from monitor.config import (INBOX_SETTINGS, MAPPING_SETTINGS, NOTIFY_SETTINGS,
                            SCHEDULE_SETTINGS, SCORE_SETTINGS, SETTINGS, Config, InboxConfig,
                            NotifyConfig, ScheduleConfig, ScoreWeights, XesMapping,
                            load_config, resolve_database_url)
from monitor.config.settings import SETTING

# Each settings table and the frozen dataclass its section loads into; the fields that are
# not settings (where the file is) apart.
SECTIONS = [(SETTINGS, Config, {"path", "base_dir"}), (NOTIFY_SETTINGS, NotifyConfig, set()),
            (MAPPING_SETTINGS, XesMapping, set()), (SCORE_SETTINGS, ScoreWeights, set()),
            (INBOX_SETTINGS, InboxConfig, set()), (SCHEDULE_SETTINGS, ScheduleConfig, set())]


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


@pytest.mark.parametrize("table, cls, others", SECTIONS, ids=[c.__name__ for _, c, _ in SECTIONS])
def test_each_field_takes_its_default_from_the_settings_table(table, cls, others):
    """A default is declared once: a field with a default of its own (not declared(TABLE,
    name)) could drift from the table the loader, the settings command and the README use."""
    declared = set()
    for f in dataclasses.fields(cls):
        if f.name in others:
            continue
        setting = f.metadata.get(SETTING)
        assert setting is not None, (f"{cls.__name__}.{f.name} has a default of its own: "
                                     "declare it from the settings table with declared()")
        assert any(setting is s for s in table), \
            f"{cls.__name__}.{f.name} is declared from another table ({setting.name})"
        declared.add(setting.name)
    assert declared == {s.name for s in table}, \
        f"settings no field of {cls.__name__} declares: {sorted({s.name for s in table} - declared)}"


def test_the_loader_and_the_dataclasses_agree_on_every_default(tmp_path):
    """What a file leaves out is what a Config built in code has: one set of defaults."""
    path = tmp_path / "config.yaml"
    path.write_text("inbox: {dir: drop}\n")  # an inbox exists only with a dir
    loaded = load_config(path)
    assert loaded == Config(path=path, base_dir=tmp_path, rules_dir=loaded.rules_dir,
                            inbox=InboxConfig(dir=tmp_path / "drop"))
    assert loaded.inbox.events == tuple(next(s for s in INBOX_SETTINGS
                                             if s.name == "events").default)
