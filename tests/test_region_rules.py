"""Rules over a store holding several counties (issue 21): a kind that compares
departments with each other compares each county's departments among their own county."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from cli import cli
from conftest import event
from monitor.db import create_store_engine
from monitor.models import Alert

RULES = Path(__file__).resolve().parent.parent / "rules"


def _county(prefix: str) -> str:
    """Three departments handling cases, one clerk each."""
    lines = ["departments:"]
    lines += [f"  - {{code: {prefix}{k}, name: {prefix}{k}局}}" for k in (1, 2, 3)]
    lines.append("users:")
    lines += [f'  - {{id: {prefix.lower()}{k}, name: 办事员{k}, department: {prefix}{k}, '
              f'roles: [clerk], phone: "1380000000{k}"}}' for k in (1, 2, 3)]
    lines.append("items:")
    for k in (1, 2, 3):
        lines += [f"  - code: {prefix}{k}-XK-001", f"    name: 许可{prefix}{k}",
                  f"    department: {prefix}{k}", "    category: license",
                  "    promised_days: 10", "    legal_days: 20", "    fee: 0"]
    return "\n".join(lines) + "\n"


def _cases(prefix: str, late: int) -> list[dict]:
    """A case a month per department in September and October; department 1's ``late``
    cases a month are keyed in three days after the site survey (late_entry)."""
    rows = []
    for month in ("09", "10"):
        for k in (1, 2, 3):
            for n in range(late if k == 1 else 1):
                case = f"{prefix}{k}-{month}-{n}"
                common = dict(item_code=f"{prefix}{k}-XK-001", actor=f"{prefix.lower()}{k}")
                rows.append(event(f"{case}a", case, occurred_at=f"2025-{month}-14 09:00",
                                  **common))
                rows.append(event(f"{case}s", case, "survey",
                                  occurred_at=f"2025-{month}-14 14:00",
                                  recorded_at=(f"2025-{month}-17 15:00" if k == 1
                                               else f"2025-{month}-14 14:00"), **common))
    return rows


def test_ranking_last_ranks_each_county_among_its_own(db_url, tmp_path, monkeypatch,
                                                       write_events):
    """330102's A1 (one case keyed late a month) is last among A1–A3; 330106's B1 (two a
    month) is last among B1–B3 and, across the store, below A1 — which a store-wide
    ranking would have left unflagged."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MONITOR_DATABASE_URL", raising=False)
    (tmp_path / "rules").mkdir()
    for name in ("late_entry.yaml", "ranking_last.yaml"):
        shutil.copy(RULES / name, tmp_path / "rules" / name)
    (tmp_path / "config.yaml").write_text("region: 330102\nrules_dir: rules\n",
                                          encoding="utf-8")
    runner = CliRunner()

    def run(*args):
        result = runner.invoke(cli, ["--db", db_url, *map(str, args)])
        assert result.exit_code in (0, 3), result.output
        return result

    for region, prefix, late in (("330102", "A", 1), ("330106", "B", 2)):
        (tmp_path / f"{prefix}.yaml").write_text(_county(prefix), encoding="utf-8")
        run("ingest", "catalog", "--region", region, tmp_path / f"{prefix}.yaml")
        run("ingest", "events", "--region", region,
            write_events(_cases(prefix, late), f"{prefix}.csv"))
    run("run", "--as-of", "2025-11-03T09:00:00+08:00")

    engine = create_store_engine(db_url)
    with engine.connect() as conn:
        found = conn.execute(select(Alert.subject, Alert.region, Alert.message)
                             .where(Alert.kind == "ranking_last")).all()
    engine.dispose()
    assert sorted((a.subject, a.region) for a in found) == [
        ("A1|2025-10", "330102"), ("B1|2025-10", "330106")]
    assert all("第 3/3 名" in a.message for a in found)  # ranked among three, not six
