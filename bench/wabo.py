"""A first run on a real log: ``python bench/wabo.py [PATH.xes.gz]``.

Loads the shared WABO log (default ``../shared/data/wabo_receipt.xes.gz``) as the docs say
(docs/examples/wabo: the ``wabo`` mapping, the catalog, the shipped rules) into a fresh
SQLite store, then evaluates as of 2012-02-01 twice on copies of that store: as a dry run
(evaluation only) and as a first real run (evaluation and storing every alert). The
difference is what storing a first run's alerts costs; the target is ≤ 0.2 × evaluation.
See bench/README.md.
"""

from __future__ import annotations

import shutil
import sys
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

    log = Path(sys.argv[1]) if len(sys.argv) > 1 else \
        ROOT.parent / "shared" / "data" / "wabo_receipt.xes.gz"
    config = load_config(ROOT / "docs" / "examples" / "wabo" / "config.yaml")
    as_of = datetime(2012, 2, 1, tzinfo=ZoneInfo("Europe/Amsterdam"))
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp) / "base.db"
        engine = open_store(f"sqlite:///{base}")
        ingest_catalog(engine, ROOT / "docs" / "examples" / "wabo" / "catalog.yaml")
        began = time.perf_counter()
        list(ingest_events(engine, config, [str(log)], datetime.now(timezone.utc),
                           mapping="wabo"))
        ingest = time.perf_counter() - began
        engine.dispose()
        timings = {}
        for mode in ("dry run", "first run"):
            copy = Path(tmp) / f"{mode.replace(' ', '-')}.db"
            shutil.copy(base, copy)
            engine = open_store(f"sqlite:///{copy}")
            began = time.perf_counter()
            outcomes = evaluate(engine, config, as_of, dry_run=mode == "dry run", full=True)
            timings[mode] = time.perf_counter() - began
            found = sum(o.found for o in outcomes)
            engine.dispose()
    dry, first = timings["dry run"], timings["first run"]
    print(f"ingest {ingest:.2f} s; findings {found:,}; evaluation (dry run) {dry:.2f} s; "
          f"first run storing them {first:.2f} s; storing {first - dry:+.2f} s = "
          f"{(first - dry) / dry:+.2f} × evaluation")


if __name__ == "__main__":
    main()
