"""``report`` and ``scores`` of a whole store whose counties share department codes (issue
21 item 1): without ``--region`` every table row is one county's department, keyed
``REGION:CODE`` and named by that county's catalog, and its figures are that county's own
— the same as the row of ``--region CODE`` for that county. Before, the rows were keyed by
code alone: one D04 row summing both counties, under one of their names."""

from __future__ import annotations

import json

import pytest

from test_region_departments import AS_OF, A, B, _catalog, _store

PERIOD = ("--period", "2025-09")
B_D04 = "西湖区应急管理局"  # B's own name for its D04


@pytest.fixture
def store(db_url, tmp_path, monkeypatch, write_events):
    run = _store(db_url, tmp_path, monkeypatch, write_events, (A, B))
    (tmp_path / "b.yaml").write_text(_catalog("b").replace("应急管理局", B_D04),
                                     encoding="utf-8")
    run("ingest", "catalog", "--region", B, "b.yaml")
    run("run", "--as-of", AS_OF)
    return run


def _tables(run, command: str, *args: str) -> dict:
    return json.loads(run(command, *PERIOD, "--format", "json", *args).stdout)["tables"]


def _rows(table: dict) -> dict[str, dict]:
    return {r["department"]: r for r in table["rows"]}


def test_the_report_keys_each_countys_department_apart(store):
    whole = _tables(store, "report")
    cases = _rows(whole["t_cases"])
    assert {d: (r["name"], r["accepted"]) for d, r in cases.items()} == {
        f"{A}:D04": ("应急管理局", 1), f"{A}:D07": ("城市管理局", 3),
        f"{B}:D04": (B_D04, 1), f"{B}:D07": ("城市管理局", 1)}
    assert whole["t_cases"]["total"]["accepted"] == 6
    # every department row is its county's own row, as the county's own report has it
    compared = set()
    for county in (A, B):
        own = _tables(store, "report", "--region", county)
        for name, table in own.items():
            if not table["rows"] or "department" not in table["rows"][0] \
                    or name in ("t_top_items", "t_top_actors", "t_red"):
                continue
            mine = {d.split(":")[1]: r for d, r in _rows(whole[name]).items()
                    if d.startswith(f"{county}:")}
            theirs = _rows(table)
            assert mine.keys() == theirs.keys(), name
            for code, row in theirs.items():
                assert {**mine[code], "department": code} == row, (name, county, code)
            compared.add(name)
    assert {"t_cases", "t_findings", "t_supervision", "t_by_kind"} <= compared, compared


def test_the_scores_rank_each_countys_department_apart(store):
    whole = _rows(_tables(store, "scores")["t_scores"])
    assert {d: r["name"] for d, r in whole.items()} == {
        f"{A}:D04": "应急管理局", f"{A}:D07": "城市管理局",
        f"{B}:D04": B_D04, f"{B}:D07": "城市管理局"}
    for county in (A, B):
        own = _rows(_tables(store, "scores", "--region", county)["t_scores"])
        for code, row in own.items():
            mine = whole[f"{county}:{code}"]
            assert {k: v for k, v in mine.items() if k not in ("rank", "department")} \
                == {k: v for k, v in row.items() if k not in ("rank", "department")}
    # the deductions are listed under the county's department too
    deductions = _tables(store, "scores")["t_deductions"]["rows"]
    assert deductions and all(r["department"].split(":")[0] in (A, B) for r in deductions)
