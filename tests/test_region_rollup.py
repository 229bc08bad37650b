"""Rollups (issue 21 item 2): the 通报 and scores of one county, and of a city or province
with its counties ranked, from three counties in one store: 330102 and 330106 under the
city 330100, and 330203 under 330200, all in the province 330000."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from cli import cli
from conftest import CATALOG, event

COUNTY = """\
departments:
  - {{code: {d}, name: {name}}}
users:
  - {{id: {u}, name: 王五, department: {d}, roles: [clerk], phone: "13800000011"}}
items:
  - code: {d}-XK-001
    name: 危险化学品安全生产许可
    department: {d}
    category: license
    promised_days: 10
    legal_days: 20
    fee: 0
"""
PERIOD = "2025-09"


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """One store, three counties, audited as of 2026-01-05 (made once: read-only)."""
    from conftest import database_copy, events_writer, migrated_template

    folder = tmp_path_factory.mktemp("rollup")
    with database_copy(migrated_template(), folder) as url:
        (folder / "config.yaml").write_text("region: 330102\n", encoding="utf-8")
        runner = CliRunner()

        def invoke(*args):
            return runner.invoke(cli, ["--config", str(folder / "config.yaml"), "--db", url,
                                       *map(str, args)])

        def run(*args):
            result = invoke(*args)
            assert result.exit_code in (0, 3), result.output
            return result

        write = events_writer(folder)
        (folder / "home.yaml").write_text(CATALOG, encoding="utf-8")
        run("ingest", "catalog", folder / "home.yaml")
        rows = []
        for k in range(3):  # 330102: three cases, one decided late, two still open
            rows.append(event(f"h{k}a", f"h{k}", occurred_at="2025-09-01 09:00"))
        rows.append(event("h0d", "h0", "decide", occurred_at="2025-12-30 09:00"))
        run("ingest", "events", write(rows, "home.csv"))
        for region, dept, user, cases in (("330106", "N04", "n1", 2), ("330203", "M04", "m1", 1)):
            (folder / f"{dept}.yaml").write_text(
                COUNTY.format(d=dept, name=f"{dept}局", u=user), encoding="utf-8")
            run("ingest", "catalog", "--region", region, folder / f"{dept}.yaml")
            rows = [event(f"{dept}{k}", f"{dept}c{k}", item_code=f"{dept}-XK-001", actor=user,
                          occurred_at="2025-09-02 09:00") for k in range(cases)]
            run("ingest", "events", "--region", region, write(rows, f"{dept}.csv"))
        run("run", "--as-of", "2026-01-05T00:00:00+08:00")

        def report(*args):
            return json.loads(run(*args, "--period", PERIOD, "--format", "json").stdout)

        report.invoke = invoke
        yield report


def _departments(doc, table="t_cases"):
    return sorted(r["department"] for r in doc["tables"][table]["rows"])


def test_a_county_report_is_its_own_departments_only(store):
    doc = store("report", "--region", "330102")
    assert doc["region"] == "330102"
    assert _departments(doc) == ["D04", "D07"]
    assert "t_regions" not in doc["tables"]
    assert doc["summary"]["accepted"] == 3


def test_a_city_report_rolls_its_counties_up_and_they_add_up(store):
    doc = store("report", "--region", "330100")
    assert _departments(doc) == ["D04", "D07", "N04"]
    counties = {r["region"]: r for r in doc["tables"]["t_regions"]["rows"]}
    assert sorted(counties) == ["330102", "330106"]
    assert counties["330102"]["accepted"] == 3 and counties["330106"]["accepted"] == 2
    assert counties["330102"]["level"] == "县级"
    total = doc["tables"]["t_regions"]["total"]
    assert total["accepted"] == doc["summary"]["accepted"] == 5
    assert total["findings"] == doc["summary"]["findings"]
    for code in counties:  # each county's row is its own report's totals
        own = store("report", "--region", code)["summary"]
        assert (counties[code]["accepted"], counties[code]["findings"],
                counties[code]["red"]) == (own["accepted"], own["findings"], own["red"])


def test_the_province_sees_every_county_and_the_whole_store_is_unchanged(store):
    province = store("report", "--region", "330000")
    assert _departments(province) == ["D04", "D07", "M04", "N04"]
    everything = store("report")
    assert everything["region"] is None and "t_regions" not in everything["tables"]
    assert everything["summary"] == province["summary"]


def test_scores_rank_the_counties_of_a_city(store):
    doc = store("scores", "--region", "330100")
    ranked = doc["tables"]["t_region_scores"]["rows"]
    assert [r["region"] for r in ranked] == sorted(
        (r["region"] for r in ranked), key=lambda c: -next(
            x["score"] for x in ranked if x["region"] == c))
    assert {r["region"] for r in ranked} == {"330102", "330106"}
    assert [r["rank"] for r in ranked] in ([1, 2], [1, 1])
    departments = doc["tables"]["t_scores"]["rows"]
    assert sorted(r["department"] for r in departments) == ["D04", "D07", "N04"]
    home = next(r for r in ranked if r["region"] == "330102")
    totals = {r["department"]: r["total"] for r in departments}
    assert home["score"] == round((totals["D04"] + totals["D07"]) / 2, 2)
    assert home["departments"] == 2
    assert totals["D04"] < 100  # its late decision and open cases cost it points
    assert "t_region_scores" not in store("scores", "--region", "330106")["tables"]


def test_a_region_without_departments_says_so(store):
    result = store.invoke("report", "--region", "110101", "--period", PERIOD)
    assert result.exit_code == 1
    assert result.stderr == ("Error: no department of region 110101 (or of a county it "
                             "covers) in the catalog: ingest its catalog with `ingest catalog "
                             "--region`\n")
    result = store.invoke("scores", "--region", "11010", "--period", PERIOD)
    assert result.exit_code == 2 and "6 位数字" in result.stderr


def test_alerts_list_by_region(store):
    def cases(*args):
        rows = json.loads(store.invoke("alerts", "list", "--format", "json", *args).stdout)
        return sorted({r["case_id"] for r in rows if r["kind"] == "overdue"})

    assert cases("--region", "330106") == ["N04c0", "N04c1"]
    assert cases("--region", "330200") == ["M04c0"]
    assert cases("--region", "330100") == sorted(cases("--region", "330102")
                                                  + cases("--region", "330106"))
    assert cases() == sorted(cases("--region", "330100") + cases("--region", "330200"))
