"""Region codes (monitor/regions.py) and the `region` setting."""

from __future__ import annotations

import pytest

from monitor import regions
from monitor.config import load_config
from monitor.errors import ConfigError
from monitor.regions import CITY, COUNTY, PROVINCE, UNNAMED, RegionCodeError


@pytest.mark.parametrize("code, level, parent", [
    ("330000", PROVINCE, None),
    ("330100", CITY, "330000"),
    ("330102", COUNTY, "330100"),
    ("110101", COUNTY, "110100"),      # a district of a municipality: under 市辖区
    ("429004", COUNTY, "420000"),      # 仙桃: a county-level city the province runs
    (UNNAMED, COUNTY, None),
])
def test_level_and_parent(code, level, parent):
    assert regions.level(code) == level
    assert regions.parent(code) == parent
    assert regions.parse(code).level == level


@pytest.mark.parametrize("code, says", [
    ("33010", "6 位数字"),
    ("3301020", "6 位数字"),
    ("33O102", "6 位数字"),
    ("３３０１０２", "6 位数字"),       # full-width digits are digits to str.isdigit
    ("990102", "前两位 99"),
    ("330012", "县级位 12"),
    (330102, "字符串"),
    (None, "字符串"),
])
def test_a_code_that_is_none_says_why(code, says):
    with pytest.raises(RegionCodeError, match=says):
        regions.check(code)
    assert says in regions.problem(code)


def test_covers_follows_the_levels_down_and_never_up_or_across():
    assert regions.covers("330000", "330102")
    assert regions.covers("330000", "330100")
    assert regions.covers("330100", "330102")
    assert regions.covers("330102", "330102")
    assert not regions.covers("330102", "330100")      # a county does not see its city
    assert not regions.covers("330100", "330000")
    assert not regions.covers("330100", "330203")      # nor a city its neighbour's county
    assert not regions.covers("330000", "320102")
    assert regions.covers("420000", "429004")
    assert not regions.covers("429000", "429004")      # 429000 is no city
    assert regions.covers(UNNAMED, UNNAMED)
    assert not regions.covers(UNNAMED, "330102")
    with pytest.raises(RegionCodeError):
        regions.covers("330000", "33")


def test_rollup_and_within():
    assert regions.rollup("330102", CITY) == "330100"
    assert regions.rollup("330102", PROVINCE) == "330000"
    assert regions.rollup("330100", COUNTY) == "330100"  # already above: itself
    assert regions.rollup("429004", CITY) == "429004"    # no city above it
    assert regions.rollup("429004", PROVINCE) == "420000"
    assert regions.within("330100", ["330102", "330203", "330106", "330102"]) == [
        "330102", "330106"]
    assert regions.children_level("330100") == COUNTY
    assert regions.children_level("330102") is None


def test_region_setting_defaults_to_unnamed_and_reads_a_bare_number(tmp_path):
    assert load_config(None).region == UNNAMED
    path = tmp_path / "config.yaml"
    path.write_text("region: 330102\n")
    assert load_config(path).region == "330102"
    path.write_text("timezone: Asia/Shanghai\nregion: '330100'\n")
    assert load_config(path).region == "330100"


def test_a_bad_region_setting_names_its_line(tmp_path):
    path = tmp_path / "config.yaml"
    path.write_text("timezone: Asia/Shanghai\n\nregion: 3301\n")
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert str(err.value) == (f"{path}:3: 行政区划代码 003301 的前两位 00 不是省级代码"
                              "（如 33 浙江省）")
