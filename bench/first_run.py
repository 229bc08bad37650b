"""What storing a first run's alerts costs: ``python bench/first_run.py N [--url URL] [--json]``.

Generates N cases with bench/evaluate.py's generator (setup, not timed), copies the store
(SQLite: the file; PostgreSQL: ``CREATE DATABASE … TEMPLATE``), then runs every shipped
rule in full as of evaluate.py's AS_OF on each copy, each in a child process, in turns:

* ``dry``   — ``evaluate(…, dry_run=True)``: detection only, nothing written;
* ``first`` — ``evaluate(…)`` as a first real run: detection, and every alert stored with
  its trail entry and deadline, the rules' watermarks advanced.

``store = first − dry`` is what storing costs; the target (issue 19) is store ≤ 0.2 × dry.
Wall and CPU time (client, and on PostgreSQL the server's backends) are printed; on this
shared VM compare CPU. ``--rounds R`` repeats the pair on fresh copies.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

from sqlalchemy.engine import make_url

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(1, str(HERE))


def phase(url: str, mode: str) -> dict:
    """Child process: the shipped rules in full, as a dry run or a first run."""
    from benchlib import ServerMeter
    from evaluate import AS_OF, ROOT
    from monitor.config import SHIPPED_RULES, Config
    from monitor.db import open_store
    from monitor.engine import evaluate

    engine = open_store(url)
    config = Config(path=None, base_dir=ROOT, rules_dir=SHIPPED_RULES)
    with ServerMeter(url) as server:
        wall, cpu = time.perf_counter(), time.process_time()
        outcomes = evaluate(engine, config, AS_OF, dry_run=mode == "dry", full=True,
                            keep=False)
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    engine.dispose()
    return {"seconds": round(wall, 2), "cpu_seconds": round(cpu, 2), **server.figures(),
            "findings": sum(o.found for o in outcomes),
            "errors": [o.error for o in outcomes if o.error]}


def copy_store(url: str, copy: str) -> None:
    from benchlib import _admin, drop_store, is_postgres

    drop_store(copy)
    if is_postgres(url):
        _admin(url, f'CREATE DATABASE "{make_url(copy).database}" '
                    f'TEMPLATE "{make_url(url).database}"')
    else:
        shutil.copy(make_url(url).database, make_url(copy).database)


def child(url: str, mode: str) -> dict:
    out = subprocess.run([sys.executable, __file__, "0", "--phase", mode, "--url", url],
                         capture_output=True, text=True)
    if out.returncode:
        sys.exit(f"{mode} failed:\n{out.stderr}")
    return json.loads(out.stdout)


def cpu_of(figures: dict) -> float:
    return figures["cpu_seconds"] + figures.get("server_cpu_seconds", 0.0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("n", type=int, nargs="?", default=100_000, help="number of cases")
    parser.add_argument("--url", help="a PostgreSQL database (dropped and created afresh, "
                        "with a copy beside it named …_copy)")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--phase", choices=["dry", "first"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.phase:
        print(json.dumps(phase(args.url, args.phase)))
        return
    from benchlib import drop_store, store_url
    from evaluate import prepare

    folder = Path(tempfile.mkdtemp(prefix="bench-first-run-"))
    url = store_url(args.url, folder, "base.db")
    copy = (str(make_url(url).set(database=make_url(url).database + "_copy")) if args.url
            else f"sqlite:///{folder / 'copy.db'}")
    rounds = []
    try:
        made = prepare(url, args.n)
        for _ in range(args.rounds):
            pair = {}
            for mode in ("dry", "first"):
                copy_store(url, copy)
                pair[mode] = child(copy, mode)
            rounds.append(pair)
    finally:
        drop_store(copy)
        drop_store(url)
        shutil.rmtree(folder, ignore_errors=True)
    result = {"cases": args.n, "events": made.get("events"), "store": "postgresql"
              if args.url else "sqlite", "at": datetime.now().isoformat(timespec="seconds"),
              "rounds": rounds}
    for pair in rounds:
        dry, first = pair["dry"], pair["first"]
        pair["store_seconds"] = round(first["seconds"] - dry["seconds"], 2)
        pair["store_cpu_seconds"] = round(cpu_of(first) - cpu_of(dry), 2)
        pair["store_cpu_ratio"] = round(pair["store_cpu_seconds"] / cpu_of(dry), 3)
    if args.json:
        print(json.dumps(result))
        return
    print(f"{args.n:,} cases ({made.get('events', 0):,} events), {result['store']}")
    for k, pair in enumerate(rounds, 1):
        dry, first = pair["dry"], pair["first"]
        print(f"round {k}: dry run {dry['seconds']:.2f} s (CPU {cpu_of(dry):.2f} s), "
              f"first run storing {first['findings']:,} findings {first['seconds']:.2f} s "
              f"(CPU {cpu_of(first):.2f} s): storing {pair['store_seconds']:+.2f} s, CPU "
              f"{pair['store_cpu_seconds']:+.2f} s = {pair['store_cpu_ratio']:+.3f} × "
              "evaluation")


if __name__ == "__main__":
    main()
