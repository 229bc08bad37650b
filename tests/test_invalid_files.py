"""Every invalid catalog or config fixture produces exactly the error its first line states."""

from __future__ import annotations

import pytest

from conftest import FIXTURES
from monitor.catalog import load_catalog
from monitor.config import load_config
from monitor.errors import MonitorError


def cases(folder: str):
    return sorted(p.name for p in (FIXTURES / folder).glob("*.yaml"))


def expected(folder: str, name: str) -> str:
    first = (FIXTURES / folder / name).read_text(encoding="utf-8").splitlines()[0]
    assert first.startswith("# expect: "), f"{name} must state its error on line 1"
    return first.removeprefix("# expect: ")


@pytest.mark.parametrize("name", cases("catalog_invalid"))
def test_invalid_catalog(name, monkeypatch):
    monkeypatch.chdir(FIXTURES / "catalog_invalid")
    with pytest.raises(MonitorError) as err:
        load_catalog(name)
    assert str(err.value).splitlines()[0] == expected("catalog_invalid", name)


@pytest.mark.parametrize("name", cases("config_invalid"))
def test_invalid_config(name, monkeypatch):
    monkeypatch.chdir(FIXTURES / "config_invalid")
    with pytest.raises(MonitorError) as err:
        load_config(name)
    assert str(err.value) == expected("config_invalid", name)


def test_catalog_reports_every_problem_at_once(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("departments:\n  - {code: D04, name: 局}\nitems:\n"
                    "  - {code: A, name: 甲, department: D05, category: x, promised_days: 1,"
                    " legal_days: 2}\n", encoding="utf-8")
    with pytest.raises(MonitorError) as err:
        load_catalog(path)
    lines = str(err.value).splitlines()
    assert len(lines) == 2 and all(line.startswith(f"{path}:4: ") for line in lines)


def test_shipped_config_and_example_catalogs_are_valid():
    root = FIXTURES.parent.parent
    config = load_config(root / "config.yaml")
    assert config.timezone == "Asia/Shanghai"
    for catalog in root.glob("docs/examples/**/catalog.yaml"):
        load_catalog(catalog)
