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
    from monitor import regionrules
    from monitor.config import SHIPPED_RULES, Config, RegionConfig
    from monitor.db import open_store
    from monitor.engine import context, evaluate_rule
    from monitor.rules.kinds import KINDS, after_others
    from monitor.supervision import policy_for

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
    sets = regionrules.load_rule_sets(config)
    ctx = context(config, evaluate.AS_OF)
    plans, policy = regionrules.plan(sets, ctx.calendar), policy_for(config, sets.base)
    order = sorted(plans, key=lambda i: after_others(KINDS[plans[i][0].rule.kind]))
    per_rule, findings, errors = {}, {}, {}
    started, cpu = time.perf_counter(), time.process_time()
    for rule_id in order:  # as engine.evaluate runs them, each timed
        began = time.process_time()
        o = evaluate_rule(engine, plans[rule_id][0].rule, ctx, full=True, keep=False,
                          policy=policy, groups=plans[rule_id])
        per_rule[rule_id] = round(time.process_time() - began, 2)
        findings[rule_id] = o.found
        if o.error:
            errors[rule_id] = o.error
    out = {"seconds": round(time.perf_counter() - started, 2),
           "cpu_seconds": round(time.process_time() - cpu, 2),
           "groups": max(len(g) for g in plans.values()),
           "findings": findings, "errors": errors, "rule_cpu_seconds": per_rule}
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
    print("  CPU seconds per rule (alike → calendar → overrides):")
    for rule_id in result["alike"]["rule_cpu_seconds"]:
        print(f"    {rule_id:22} " + " → ".join(
            f"{result[n]['rule_cpu_seconds'].get(rule_id, 0):5.2f}"
            for n in ("alike", "calendar", "overrides")))
    print(f"  overrides find exactly what alike finds: {result['overrides_same_findings']}")


if __name__ == "__main__":
    main()
