"""Region names (issue 21 item 1/2): ``regions load`` fills the ``regions`` reference
table from a CSV of ``code,name`` rows, all or nothing, on the trail; reports, scores
and the web show a region as ``330106 西湖区``, a code with no name bare."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from cli import cli
from conftest import CATALOG
from monitor import regionnames
from monitor.models import RegionName, TrailEntry

OTHER = """\
departments:
  - {code: N04, name: N04局}
users:
  - {id: n1, name: 王五, department: N04, roles: [clerk], phone: "13800000011"}
items:
  - code: N04-XK-001
    name: 危险化学品安全生产许可
    department: N04
    category: license
    promised_days: 10
    legal_days: 20
    fee: 0
"""
NAMES = "code,name\n330106,西湖区\n330100,杭州市\n"


@pytest.fixture
def store(tmp_path):
    """Two counties of the city 330100: the store's own 330102 and 330106."""
    from conftest import database_copy, migrated_template

    with database_copy(migrated_template(), tmp_path) as url:
        (tmp_path / "config.yaml").write_text("region: 330102\n", encoding="utf-8")
        runner = CliRunner()

        def invoke(*args):
            return runner.invoke(cli, ["--config", str(tmp_path / "config.yaml"), "--db", url,
                                       *map(str, args)])

        (tmp_path / "home.yaml").write_text(CATALOG, encoding="utf-8")
        (tmp_path / "other.yaml").write_text(OTHER, encoding="utf-8")
        assert invoke("ingest", "catalog", tmp_path / "home.yaml").exit_code == 0
        assert invoke("ingest", "catalog", "--region", "330106",
                      tmp_path / "other.yaml").exit_code == 0
        invoke.folder = tmp_path
        invoke.url = url
        yield invoke


def _write(store, name, text):
    path = store.folder / name
    path.write_text(text, encoding="utf-8")
    return path


def _named(store):
    from monitor.db import create_store_engine

    engine = create_store_engine(store.url)
    try:
        with engine.connect() as conn:
            names = dict(conn.execute(select(RegionName.code, RegionName.name)).tuples().all())
            loads = conn.scalars(select(TrailEntry.detail).where(
                TrailEntry.action == "regions_loaded").order_by(TrailEntry.seq)).all()
        return names, loads
    finally:
        engine.dispose()


def test_a_bad_file_names_every_bad_line_and_loads_nothing(store):
    bad = _write(store, "bad.csv", "330106,西湖区\n33010X,坏\n330106,又一个\n"
                                   "000000,未命名\n330107,\n330108,两,列多\n")
    result = store("regions", "load", bad)
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        f"Error: {bad}:2: 行政区划代码须为 6 位数字（如 330102），而非 '33010X'",
        f"Error: {bad}:3: 代码 330106 重复（第 1 行已有）",
        f"Error: {bad}:4: 000000 表示尚未命名的县，不能起名",
        f"Error: {bad}:5: 代码 330107 缺少名称",
        f"Error: {bad}:6: 须为两列“代码,名称”，此行有 3 列"]
    assert _named(store) == ({}, [])  # nothing half loaded, nothing on the trail


def test_load_list_rename_and_the_trail(store):
    first = store("regions", "load", _write(store, "r.csv", NAMES))
    assert first.stdout == "regions: added 2 · renamed 0 · unchanged 0\n"
    again = store("regions", "load", store.folder / "r.csv")
    assert again.stdout == "regions: added 0 · renamed 0 · unchanged 2\n"
    renamed = store("regions", "load", _write(store, "s.csv", "330106,西湖区（新）\n"))
    assert renamed.stdout == "regions: added 0 · renamed 1 · unchanged 0\n"
    assert store("regions", "list").stdout == ("330100\t杭州市\tcity\t330000\n"
                                               "330106\t西湖区（新）\tcounty\t330100\n")
    names, loads = _named(store)
    assert names == {"330100": "杭州市", "330106": "西湖区（新）"}
    assert [(d["added"], d["renamed"]) for d in loads] == [
        (["330106", "330100"], []),
        ([], [{"code": "330106", "name": ["西湖区", "西湖区（新）"]}])]
    assert store("audit", "verify").exit_code == 0


def test_reports_and_scores_show_names_beside_codes_and_bare_codes_without(store):
    store("regions", "load", _write(store, "r.csv", NAMES))
    doc = json.loads(store("report", "--region", "330100", "--format", "json").stdout)
    counties = {r["region"]: r["name"] for r in doc["tables"]["t_regions"]["rows"]}
    assert counties == {"330102": "", "330106": "西湖区"}  # 330102 has no name: bare
    text = store("report", "--region", "330100").stdout
    assert "330100 杭州市" in text.splitlines()[0]
    assert any("330106" in line and "西湖区" in line for line in text.splitlines())
    scores = json.loads(store("scores", "--region", "330100", "--format", "json").stdout)
    ranked = {r["region"]: r["name"] for r in scores["tables"]["t_region_scores"]["rows"]}
    assert ranked == {"330102": "", "330106": "西湖区"}
    assert "330106" in store("report", "--region", "330106").stdout.splitlines()[0]
    # the store's own county is named in its plain report once it has a name
    assert "行政区划" not in store("report").stdout.splitlines()[0]
    store("regions", "load", _write(store, "own.csv", "330102,上城区\n"))
    assert "330102 上城区" in store("report").stdout.splitlines()[0]
    verified = store("audit", "verify", "--region", "330102")
    assert verified.stdout.startswith("trail of region 330102 上城区 intact: ")


def test_label_falls_back_to_the_bare_code():
    assert regionnames.label("330106", {"330106": "西湖区"}) == "330106 西湖区"
    assert regionnames.label("330107", {"330106": "西湖区"}) == "330107"
    assert regionnames.label("", {}) == ""


def test_the_web_reports_page_escapes_a_region_name(config, tmp_path, monkeypatch):
    from dataclasses import replace
    from datetime import datetime, timezone

    from argon2 import PasswordHasher
    from fastapi.testclient import TestClient

    from monitor import accounts
    from monitor.regionstore import adopt_region
    from monitor.web import create_app
    from web_county import AT, PASSWORD, clock, county_copy

    monkeypatch.setattr(accounts, "HASHER", PasswordHasher(time_cost=1, memory_cost=8192,
                                                           parallelism=1))
    accounts._DUMMY.clear()
    with county_copy(tmp_path / "county", config) as county:
        adopt_region(county.engine, "330106")  # its first start with a region configured
        regionnames.apply(county.engine, [("330106", "西湖<script>alert(1)</script>区")],
                          datetime(2026, 1, 1, tzinfo=timezone.utc), "os:test", "test")
        app = create_app(county.engine, replace(county.config, region="330106"), clock())
        client = TestClient(app, base_url="http://testserver", follow_redirects=False)
        session = accounts.login(county.engine, "k1", PASSWORD, AT, county.config.web)
        client.cookies.set("pm_session", session.token)
        page = client.get("/reports")
        assert page.status_code == 200, page.text[:300]
        assert "<script>alert(1)</script>" not in page.text
        assert "330106 西湖&lt;script&gt;alert(1)&lt;/script&gt;区" in page.text


def test_config_names_the_store_own_county_once(store):
    config = store.folder / "config.yaml"
    config.write_text("region: 330102\nregion_name: 上城区\n", encoding="utf-8")
    assert "330102 上城区" in store("report").stdout.splitlines()[0]
    store("report")  # an unchanged name is not written again
    names, loads = _named(store)
    assert names == {"330102": "上城区"}
    assert [d["source"] for d in loads] == ["config.yaml region_name"]
    config.write_text("region_name: 上城区\n", encoding="utf-8")
    result = store("report")
    assert result.exit_code == 1
    assert result.stderr == (f"Error: {config}:1: region_name 须与 region（本县的行政区划代码）"
                             "一起设置\n")



CITY_OFFICE = """\
departments:
  - {code: C00, name: 市监察办}
users:
  - {id: c1, name: 钱市, department: C00, roles: [leader], phone: "13800000021"}
items: []
"""


def test_a_city_office_picks_a_county_by_name_on_the_reports_page(store, monkeypatch):
    from datetime import datetime, timezone

    from argon2 import PasswordHasher
    from fastapi.testclient import TestClient

    from monitor import accounts
    from monitor.config import load_config
    from monitor.db import create_store_engine
    from monitor.web import create_app
    from web_county import clock

    monkeypatch.setattr(accounts, "HASHER", PasswordHasher(time_cost=1, memory_cost=8192,
                                                           parallelism=1))
    accounts._DUMMY.clear()
    assert store("ingest", "catalog", "--region", "330100",
                 _write(store, "city.yaml", CITY_OFFICE)).exit_code == 0
    store("regions", "load", _write(store, "r.csv", NAMES))
    at = datetime(2025, 10, 9, 1, 30, tzinfo=timezone.utc)
    engine = create_store_engine(store.url)
    try:
        accounts.set_password(engine, "c1", "Hangzhou-2025-city", at, "admin:test",
                              must_change=False)
        config = load_config(store.folder / "config.yaml")
        client = TestClient(create_app(engine, config, clock(at)),
                            base_url="http://testserver", follow_redirects=False)
        session = accounts.login(engine, "c1", "Hangzhou-2025-city", at, config.web)
        client.cookies.set("pm_session", session.token)
        page = client.get("/reports", params={"period": "2025-09"}).text
        assert '<option value="330102">330102</option>' in page  # no name: bare
        assert '<option value="330106">330106 西湖区</option>' in page
        assert 'data-region="330100">330100 杭州市<' in page
        one = client.get("/reports", params={"period": "2025-09", "region": "330106"}).text
        assert '<option value="330106" selected>330106 西湖区</option>' in one
        assert 'data-region="330106">330106 西湖区<' in one
        assert "/reports/download/html?period=2025-09&amp;region=330106" in one
        board = client.get("/board", params={"region": "330106"}).text
        assert '<option value="330106" selected>330106 西湖区</option>' in board
    finally:
        engine.dispose()
