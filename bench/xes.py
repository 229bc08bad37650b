"""XES benchmark: ``python bench/xes.py N [--attrs A] [--json]``.

Generates an XES log of N events (~6 per trace, A attributes per event — ``concept:name``,
``org:resource``, ``time:timestamp``, ``lifecycle:transition`` and A−4 more strings,
ints, floats and dates, as process-mining exports carry — and 8 trace attributes), then
times, each in this process:

1. ``parse``  — reading it into rows of contract fields (``xes_rows`` with the legacy
   ``mapping:``), events per second;
2. ``ingest`` — the whole path into a fresh SQLite store (``ingest_events``: parse,
   validate, de-duplicate, store), events per second.

The script uses only the public entry points, so the same file run against another
checkout (``PYTHONPATH=/path/to/other python bench/xes.py …``) gives a before/after in one
session. See bench/README.md for targets and results.
"""

from __future__ import annotations

import argparse
import io
import json
import random
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

ACTIVITIES = ["Registreren", "Beoordelen", "Besluiten", "Verzenden", "Controle", "Archiveren"]


def generate(path: Path, events: int, attrs: int) -> int:
    """An XES log of ``events`` events; returns its size in bytes."""
    rnd = random.Random(19)
    start = datetime(2025, 1, 6, 9, tzinfo=timezone(timedelta(hours=1)))
    with open(path, "w", encoding="utf-8") as f:
        f.write('<?xml version="1.0" encoding="UTF-8"?>\n<log xes.version="1.0">\n')
        n, case = 0, 0
        while n < events:
            case += 1
            f.write(f'  <trace>\n    <string key="concept:name" value="case-{case}"/>\n')
            for k in range(7):
                f.write(f'    <string key="trace_attr_{k}" value="value {k} of {case}"/>\n')
            at = start + timedelta(minutes=case)
            for step in range(min(6, events - n)):
                at += timedelta(seconds=rnd.randint(10, 86400))
                f.write("    <event>\n"
                        f'      <string key="concept:name" value="{ACTIVITIES[step]}"/>\n'
                        f'      <string key="org:resource" value="Resource{rnd.randint(1, 48):02d}"/>\n'
                        f'      <date key="time:timestamp" value="{at.isoformat(timespec="milliseconds")}"/>\n'
                        '      <string key="lifecycle:transition" value="complete"/>\n')
                for k in range(attrs - 4):
                    kind = k % 4
                    if kind == 0:
                        f.write(f'      <string key="attr_{k}" value="text {rnd.randint(0, 999)}"/>\n')
                    elif kind == 1:
                        f.write(f'      <int key="attr_{k}" value="{rnd.randint(0, 99999)}"/>\n')
                    elif kind == 2:
                        f.write(f'      <float key="attr_{k}" value="{rnd.random():.6f}"/>\n')
                    else:
                        f.write(f'      <date key="attr_{k}" value="{at.isoformat()}"/>\n')
                f.write("    </event>\n")
                n += 1
            f.write("  </trace>\n")
        f.write("</log>\n")
    return path.stat().st_size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("events", type=int)
    parser.add_argument("--attrs", type=int, default=25)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    from monitor.catalog import ingest_catalog
    from monitor.config import Config, XesMapping
    from monitor.db import open_store
    from monitor.ingest import ingest_events
    from monitor.ingest.sources import Source
    from monitor.ingest.xes import xes_rows

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        log = folder / "log.xes"
        size = generate(log, args.events, args.attrs)
        mapping = XesMapping(item_code="BENCH-1",
                             steps={"Registreren": "accept", "Beoordelen": "review",
                                    "Besluiten": "approve", "Verzenden": "complete"})
        data = log.read_bytes()
        began = time.perf_counter()
        rows = sum(1 for _ in xes_rows(Source("log.xes", size, io.BytesIO(data),
                                              io.BytesIO(data), "xes"), mapping))
        parse = time.perf_counter() - began
        (folder / "catalog.yaml").write_text(
            "departments: [{code: B, name: Bench}]\nitems:\n  - {code: BENCH-1, name: b, "
            "department: B, category: license, promised_days: 20, legal_days: 20}\n",
            encoding="utf-8")
        engine = open_store(f"sqlite:///{folder / 'bench.db'}")
        ingest_catalog(engine, folder / "catalog.yaml")
        config = Config(path=None, base_dir=folder, mapping=mapping, parallel_ingest=False)
        began = time.perf_counter()
        [result] = ingest_events(engine, config, [str(log)], datetime.now(timezone.utc))
        ingest = time.perf_counter() - began
        engine.dispose()
    figures = {"events": rows, "attrs": args.attrs, "mb": round(size / 1e6, 1),
               "parse_s": round(parse, 2), "parse_events_per_s": round(rows / parse),
               "ingest_s": round(ingest, 2), "ingest_events_per_s": round(rows / ingest),
               "inserted": result.tally.inserted}
    if args.json:
        print(json.dumps(figures))
    else:
        for k, v in figures.items():
            print(f"{k:>20}: {v:,}" if isinstance(v, int) else f"{k:>20}: {v}")


if __name__ == "__main__":
    main()
