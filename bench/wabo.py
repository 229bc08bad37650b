"""A first run on a real log: ``python bench/wabo.py [PATH.xes.gz] [--rounds R]``.

Loads the shared WABO log (default ``../shared/data/wabo_receipt.xes.gz``) as the docs say
(docs/examples/wabo: the ``wabo`` mapping, the catalog, the shipped rules) into a fresh
SQLite store, then evaluates as of 2012-02-01 twice on copies of that store: as a dry run
(evaluation only) and as a first real run (evaluation and storing every alert). The
difference is what storing a first run's alerts costs; the target is ≤ 0.2 × evaluation.
Wall and CPU time (``process_time``) of each; a dry run first warms the process up
(imports, rule loading) and is not counted; then R rounds of a dry run and a first run.
See bench/README.md.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    from monitor.catalog import ingest_catalog
    from monitor.config import load_config
    from monitor.db import open_store
    from monitor.engine import evaluate
    from monitor.ingest import ingest_events

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("log", nargs="?", type=Path,
                        default=ROOT.parent / "shared" / "data" / "wabo_receipt.xes.gz")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    config = load_config(ROOT / "docs" / "examples" / "wabo" / "config.yaml")
    as_of = datetime(2012, 2, 1, tzinfo=ZoneInfo("Europe/Amsterdam"))
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp) / "base.db"
        engine = open_store(f"sqlite:///{base}")
        ingest_catalog(engine, ROOT / "docs" / "examples" / "wabo" / "catalog.yaml")
        began = time.perf_counter()
        list(ingest_events(engine, config, [str(args.log)], datetime.now(timezone.utc),
                           mapping="wabo"))
        ingest = time.perf_counter() - began
        engine.dispose()

        def timed(mode: str, n: int) -> tuple[float, float, int]:
            copy = Path(tmp) / f"{mode.replace(' ', '-')}-{n}.db"
            shutil.copy(base, copy)
            engine = open_store(f"sqlite:///{copy}")
            wall, cpu = time.perf_counter(), time.process_time()
            outcomes = evaluate(engine, config, as_of, dry_run=mode == "dry run", full=True)
            wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
            engine.dispose()
            return wall, cpu, sum(o.found for o in outcomes)

        timed("dry run", 0)  # warm-up
        print(f"ingest {ingest:.2f} s")
        for n in range(1, args.rounds + 1):
            dry, first = timed("dry run", n), timed("first run", n)
            print(f"round {n}: findings {first[2]:,}; evaluation (dry run) {dry[0]:.2f} s "
                  f"(CPU {dry[1]:.2f} s); first run storing them {first[0]:.2f} s (CPU "
                  f"{first[1]:.2f} s); storing {first[0] - dry[0]:+.2f} s = "
                  f"{(first[0] - dry[0]) / dry[0]:+.2f} × evaluation, CPU "
                  f"{first[1] - dry[1]:+.2f} s = {(first[1] - dry[1]) / dry[1]:+.2f} ×")


if __name__ == "__main__":
    main()
