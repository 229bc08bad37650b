"""Rule evaluation benchmark: ``python bench/evaluate.py N [--keep DIR] [--json]``.

1. Generates N permit cases (≈ 8 events each: accept … complete, with back-fills, late
   entries, one-person approvals, offline fees and open cases planted at low rates)
   straight into a fresh SQLite store — setup, not timed: values go in their stored form
   through ``sqlite3.executemany`` on a schema created by ``open_store``.
2. ``full``        — all shipped rules, evaluated in full, in a child process (peak RSS is
   the evaluation's alone).
3. ``incremental`` — 1 % more events (new cases) are added, then the same rules run
   incrementally, in another child process.

Targets (this 2-core machine, SQLite): 1,000,000 cases fully evaluated in ≤ 90 s; the 1 %
incremental run ≤ 5 % of the full run's time; peak RSS ≤ 500 MB.
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

AS_OF = datetime(2026, 1, 31, 16, 0, tzinfo=timezone.utc)
START = datetime(2025, 2, 1, 1, 0, tzinfo=timezone.utc)
DEPARTMENTS = [f"D{i:02d}" for i in range(1, 13)]
STEPS = ["accept", "survey", "review", "approve", "decide", "fee_paid", "certificate_printed",
         "complete"]
COLUMNS = ("event_id", "case_id", "item_code", "department", "step", "actor", "occurred_at",
           "recorded_at", "amount", "channel", "attachments", "days", "note", "content_hash",
           "run_id", "source_line")


CASES_PER_TEAM = 20_000  # a team (clerk, chief, deputy, principal, monitor) per 20k cases


def teams(cases: int) -> int:
    """Teams per department: staff grow with the caseload, as in a real county (one clerk
    keying a whole department's million cases would be one endless burst)."""
    return max(1, cases // (CASES_PER_TEAM * len(DEPARTMENTS)) or 1)


def catalog(cases: int = CASES_PER_TEAM):
    from monitor.catalog import CatalogData

    departments = [{"code": d, "name": f"部门{d}"} for d in DEPARTMENTS]
    users = [{"id": f"{d}-{t}-{k}", "name": f"{d}{t}{k}", "department": d, "roles": [role],
              "phone": None} for d in DEPARTMENTS for t in range(teams(cases))
             for k, role in enumerate(["clerk", "chief", "deputy", "principal", "monitor_l1"])]
    items = [{"code": f"{d}-XK-{j:03d}", "name": f"许可事项{j}", "department": d,
              "category": "license" if j < 4 else "penalty", "promised_days": 10,
              "legal_days": 20, "fee": Decimal(200 if j % 2 else 0),
              "min_minutes": {"survey": 30}, "min_case_minutes": 60,
              "required_attachments": {"survey": ["现场踏勘意见书"]} if j == 1 else {}}
             for d in DEPARTMENTS for j in range(1, 6)]
    return CatalogData(departments, users, items), items


def text(t: datetime) -> str:
    return t.strftime("%Y-%m-%d %H:%M:%S.%f")


def case_events(rng: random.Random, n: int, items: list[dict], prefix: str, team_count: int = 1):
    """Rows of case ``n`` in stored form: accept … complete, with the fee steps of a fee
    item, and at low rates every pattern a shipped rule looks for — a suspension with its
    resumption (3 %), an extension (2 %), a waiver (2 %, half by a principal), back-fills,
    late entries, one-person approvals, offline payments, a missing survey report, cases
    still open. Entries of one department's clerk crowd into bursts now and then, as real
    ones do."""
    item = items[n % len(items)]
    dept, team = item["department"], n // len(items) % team_count
    fee = int(item["fee"] * 100) or (50000 if item["category"] == "penalty" else 0)
    t = START + timedelta(minutes=rng.randrange(0, 60 * 24 * 330))
    odd = rng.random()
    steps = list(STEPS if fee else [s for s in STEPS if s != "fee_paid"])
    if fee:
        steps.insert(steps.index("fee_paid"), "fee_assessed")
        if 0.95 <= odd < 0.97:
            steps.insert(steps.index("fee_paid"), "fee_waived")
    if 0.90 <= odd < 0.93:
        steps[steps.index("approve"):steps.index("approve")] = ["suspend", "resume"]
    if 0.93 <= odd < 0.95:
        steps.insert(steps.index("decide"), "extend")
    if odd < 0.01:
        steps = steps[:3]  # still open
    for k, step in enumerate(steps):
        if k:
            fast = 0.010 <= odd < 0.013 or (odd < 0.02 and step == "survey")
            gap = (timedelta(days=rng.randrange(3, 15)) if step == "resume" else
                   timedelta(seconds=58) if fast else timedelta(minutes=rng.randrange(40, 4320)))
            t += gap
        role = {"review": 1, "approve": 2, "decide": 3, "fee_waived": 3}.get(step, 0)
        if step == "fee_waived" and odd < 0.96:
            role = 0  # waived by a clerk: unauthorised
        actor = f"{dept}-{team}-{0 if odd < 0.005 else role}"
        recorded = t + timedelta(hours=60) if odd > 0.99 else t + timedelta(seconds=30)
        amount = (fee if step in ("fee_assessed", "fee_paid") else
                  fee // 2 if step == "fee_waived" else None)
        if step == "fee_paid" and 0.95 <= odd < 0.97:
            amount = fee // 2
        channel = ("offline" if odd > 0.985 else "online") if step == "fee_paid" else None
        attach = "现场踏勘意见书" if step == "survey" and odd < 0.97 else None
        days = 10 if step == "extend" else None
        yield (f"{prefix}{n}-{k}", f"{prefix}C{n}", item["code"], dept, step, actor, text(t),
               text(recorded), amount, channel, attach, days, None, "0" * 32, None, None)


def receipts(db: Path) -> int:
    """The treasury's receipts: each department-month's online payments, except that one
    department remits less than it collected online and another collects more offline."""
    conn = sqlite3.connect(db)
    rows = conn.execute(
        "SELECT department, strftime('%Y-%m', occurred_at, '+8 hours'), sum(amount)"
        " FROM events WHERE step = 'fee_paid' AND channel = 'online'"
        " GROUP BY 1, 2").fetchall()
    adjust = {"D01": 0.97, "D02": 1.05}
    conn.executemany("INSERT INTO receipts (department, period, amount, event_mark)"
                     " VALUES (?, ?, ?, (SELECT max(id) FROM events))",
                     [(d, p, int(a * adjust.get(d, 1))) for d, p, a in rows])
    conn.commit()
    conn.close()
    return len(rows)


def generate(db: Path, cases: int, first: int = 0, prefix: str = "E", seed: int = 7,
             total: int | None = None) -> int:
    _, items = catalog(total or cases)
    rng = random.Random(seed + first)
    conn = sqlite3.connect(db)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=OFF")
    sql = f"INSERT INTO events ({', '.join(COLUMNS)}) VALUES ({', '.join('?' * len(COLUMNS))})"
    total = 0
    for start in range(first, first + cases, 20_000):
        rows = [row for n in range(start, min(start + 20_000, first + cases))
                for row in case_events(rng, n, items, prefix, teams(total or cases))]
        conn.executemany(sql, rows)
        conn.commit()
        total += len(rows)
    conn.close()
    return total


def phase(db: Path, full: bool) -> dict:
    """Child process: evaluate the shipped rules; report time, RSS and findings."""
    from monitor.config import SHIPPED_RULES, Config
    from monitor.db import open_store
    from monitor.engine import context, evaluate_rule

    from monitor.rules.loader import load_rules

    engine = open_store(f"sqlite:///{db}")
    config = Config(path=None, base_dir=db.parent, rules_dir=SHIPPED_RULES)
    rules, result, cache = load_rules([SHIPPED_RULES]), {}, {}
    ctx = context(config, AS_OF)
    started, cpu_started = time.perf_counter(), time.process_time()
    for rule in rules:  # one rule at a time, to time each, as evaluate() runs them
        began, cpu = time.perf_counter(), time.process_time()
        o = evaluate_rule(engine, rule, ctx, full=full, cache=cache)
        result[o.rule.id] = {"findings": len(o.findings), "error": o.error,
                             "incremental": o.incremental,
                             "seconds": round(time.perf_counter() - began, 2),
                             "cpu_seconds": round(time.process_time() - cpu, 2)}
    seconds = time.perf_counter() - started
    return {"seconds": round(seconds, 2),
            "cpu_seconds": round(time.process_time() - cpu_started, 2),
            "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
            "rules": result}


def child(db: Path, full: bool) -> dict:
    out = subprocess.run([sys.executable, __file__, "0", "--phase", "full" if full else "inc",
                          "--db", str(db)], capture_output=True, text=True)
    if out.returncode:
        sys.exit(f"evaluation failed:\n{out.stderr}")
    return json.loads(out.stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("n", type=int, nargs="?", default=100_000, help="number of cases")
    parser.add_argument("--keep", type=Path, help="keep the database in this folder")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--phase", choices=["full", "inc"], help=argparse.SUPPRESS)
    parser.add_argument("--db", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.phase:
        print(json.dumps(phase(args.db, args.phase == "full")))
        return

    from monitor.catalog import apply_catalog
    from monitor.db import open_store

    folder = args.keep or Path(tempfile.mkdtemp(prefix="bench-evaluate-"))
    folder.mkdir(parents=True, exist_ok=True)
    db = folder / "evaluate.db"
    for suffix in ("", "-wal", "-shm"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)
    engine = open_store(f"sqlite:///{db}")
    apply_catalog(engine, catalog(args.n)[0])
    engine.dispose()
    started = time.perf_counter()
    events = generate(db, args.n)
    receipts(db)
    generated = time.perf_counter() - started
    full = child(db, True)
    added = generate(db, max(args.n // 100, 1), first=args.n, prefix="N", total=args.n)
    inc = child(db, False)
    result = {"cases": args.n, "events": events, "generated_s": round(generated, 1),
              "full": full, "added_events": added, "incremental": inc,
              "incremental_ratio": round(inc["seconds"] / max(full["seconds"], 1e-9), 3),
              "incremental_cpu_ratio": round(inc["cpu_seconds"]
                                             / max(full["cpu_seconds"], 1e-9), 3)}
    if args.json:
        print(json.dumps(result, ensure_ascii=False))
    else:
        print(f"cases:            {args.n:,} ({events:,} events; generated in {generated:.1f} s)")
        print(f"full evaluation:  {full['seconds']:.2f} s (CPU {full['cpu_seconds']:.2f} s), "
              f"peak RSS {full['peak_rss_mb']} MB")
        for rule, r in full["rules"].items():
            print(f"  {rule:<22} {r['findings']:>8,} findings {r['seconds']:>7.2f} s"
                  f" (CPU {r['cpu_seconds']:.2f} s)"
                  + (f"  ERROR {r['error']}" if r["error"] else ""))
        print(f"incremental:      {inc['seconds']:.2f} s (CPU {inc['cpu_seconds']:.2f} s) after "
              f"{added:,} new events ({result['incremental_ratio']:.1%} of full; CPU "
              f"{result['incremental_cpu_ratio']:.1%}), peak RSS {inc['peak_rss_mb']} MB")
        for rule, r in inc["rules"].items():
            mode = "incremental" if r["incremental"] else "full"
            print(f"  {rule:<22} {r['findings']:>8,} findings {r['seconds']:>7.2f} s"
                  f" (CPU {r['cpu_seconds']:.2f} s, {mode})")
    if not args.keep:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
