"""Per-county configuration benchmark: ``python bench/regions_config.py [N] [--json]``.

What judging each county by its own rule set and calendar (docs/regions.md) costs. One
SQLite store of N cases (``bench/evaluate.py``'s generator), its departments — with
their staff, items and events — split between two counties, 330102 and 330106; then a
full evaluation of every shipped rule, each on its own copy of the store:

* ``alike``: no ``regions:`` — one group per rule, the run as before;
* ``calendar``: 330106 has a holiday of its own — two groups per rule (each county in
  its calendar);
* ``overrides``: 330106's folder holds a copy of every shipped rule file — two groups
  per rule with the same rules, so the findings must be **exactly** those of ``alike``
  (the check that splitting a run by county loses and doubles nothing).

Prints wall and CPU seconds and findings per variant (``--json``: one object). SQLite
only: it times the grouping, which is the same code on both databases.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from datetime import date
from pathlib import Path
from types import MappingProxyType

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))
sys.path.insert(0, str(BENCH.parent))

import evaluate  # noqa: E402

A, B = "330102", "330106"


def split(url: str) -> int:
    """Every other department (by code) and what is its to county B, the rest to A;
    how many departments B got."""
    from sqlalchemy import select, update

    from monitor.db import open_store
    from monitor.models import Department, Event, Item, User

    engine = open_store(url)
    with engine.begin() as conn:
        codes = sorted(conn.scalars(select(Department.code)))
        ours = codes[1::2]
        for table, column in ((Department, Department.code), (User, User.department),
                              (Item, Item.department), (Event, Event.department)):
            conn.execute(update(table).values(region=A))
            conn.execute(update(table).where(column.in_(ours)).values(region=B))
    engine.dispose()
    return len(ours)


def variant(url: str, name: str, folder: Path) -> dict:
    """A full evaluation of ``url`` (a copy of the split store) under ``name``'s config."""
    from monitor.config import SHIPPED_RULES, Config, RegionConfig
    from monitor.db import open_store
    from monitor.engine import evaluate as run

    rules = folder / f"rules-{name}"
    shutil.copytree(SHIPPED_RULES, rules)
    regions = {}
    if name == "calendar":
        regions = {B: RegionConfig(B, frozenset({date(2025, 9, 10)}))}
    elif name == "overrides":
        shutil.copytree(SHIPPED_RULES, rules / "regions" / B)
    config = Config(path=None, base_dir=folder, rules_dir=rules,
                    regions=MappingProxyType(regions))
    engine = open_store(url)
    started, cpu = time.perf_counter(), time.process_time()
    outcomes = run(engine, config, evaluate.AS_OF, full=True, keep=False)
    out = {"seconds": round(time.perf_counter() - started, 2),
           "cpu_seconds": round(time.process_time() - cpu, 2),
           "findings": {o.rule.id: o.found for o in outcomes},
           "errors": {o.rule.id: o.error for o in outcomes if o.error}}
    engine.dispose()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("n", type=int, nargs="?", default=30_000, help="number of cases")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        base = folder / "split.db"
        made = evaluate.prepare(f"sqlite:///{base}", args.n)
        moved = split(f"sqlite:///{base}")
        result = {"cases": args.n, "events": made["events"], "departments_in_b": moved}
        for name in ("alike", "calendar", "overrides"):
            copy = folder / f"{name}.db"
            shutil.copy(base, copy)
            result[name] = variant(f"sqlite:///{copy}", name, folder)
    result["overrides_same_findings"] = \
        result["overrides"]["findings"] == result["alike"]["findings"]
    if args.json:
        print(json.dumps(result, ensure_ascii=False))
        return
    print(f"{args.n:,} cases, {result['events']:,} events; county B: "
          f"{moved} departments")
    for name in ("alike", "calendar", "overrides"):
        r = result[name]
        print(f"  {name:10} full {r['seconds']:6.2f} s  CPU {r['cpu_seconds']:6.2f} s  "
              f"findings {sum(r['findings'].values()):,}"
              + (f"  ERRORS {r['errors']}" if r["errors"] else ""))
    print(f"  overrides find exactly what alike finds: {result['overrides_same_findings']}")


if __name__ == "__main__":
    main()
