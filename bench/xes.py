"""XES benchmark: ``python bench/xes.py N [--attrs A] [--log PATH] [--url URL] [--serial] [--jobs J] [--skip-parse] [--json]``.

Generates an XES log of N events (~6 per trace, A attributes per event — ``concept:name``,
``org:resource``, ``time:timestamp``, ``lifecycle:transition`` and A−4 more strings,
ints, floats and dates, as process-mining exports carry — and 8 trace attributes), then
times, each in this process:

1. ``parse``  — reading it into rows of contract fields (``xes_rows`` with the legacy
   ``mapping:``), events per second of wall time and of this process's CPU time (on a
   shared machine the second moves less);
2. ``ingest`` — the whole path into a fresh store (``ingest_events``: parse, validate,
   de-duplicate, store), events per second: SQLite, or the PostgreSQL database ``--url``
   names (dropped and created afresh). The configuration's default ``parallel_ingest``
   unless ``--serial``, and ``ingest_jobs`` (processes reading parts of the file while
   this one stores) as ``--jobs`` says (1: one process reads the whole file).

``--log PATH`` keeps the generated log there and reuses it when it exists (generating
200,000 events takes longer than reading them), so two checkouts read the same bytes.

The script uses only the public entry points, so the same file run against another
checkout (``PYTHONPATH=/path/to/other python bench/xes.py …``) gives a before/after in one
session. See bench/README.md for targets and results.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
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


def _children_cpu() -> float:
    """CPU seconds of this process's finished children (the readers, once joined)."""
    t = os.times()
    return t.children_user + t.children_system


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("events", type=int)
    parser.add_argument("--attrs", type=int, default=25)
    parser.add_argument("--log", type=Path, help="where to keep (or find) the generated log")
    parser.add_argument("--url", help="a PostgreSQL database to ingest into (recreated)")
    parser.add_argument("--serial", action="store_true", help="parallel_ingest: false")
    parser.add_argument("--jobs", type=int, help="ingest_jobs (default: the setting's)")
    parser.add_argument("--skip-parse", action="store_true", help="time the ingestion only")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    from monitor.catalog import ingest_catalog
    from monitor.config import Config, XesMapping
    from monitor.db import open_store
    from monitor.ingest import ingest_events
    from monitor.ingest.xes import xes_rows

    from monitor.ingest.sources import open_source
    from benchlib import fresh_store, store_url

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        log = args.log or folder / "log.xes"
        if not log.exists():
            generate(log, args.events, args.attrs)
        size = log.stat().st_size
        mapping = XesMapping(item_code="BENCH-1",
                             steps={"Registreren": "accept", "Beoordelen": "review",
                                    "Besluiten": "approve", "Verzenden": "complete"})
        began, cpu = time.perf_counter(), time.process_time()
        with open_source(str(log)) as source:
            rows = 0 if args.skip_parse else sum(1 for _ in xes_rows(source, mapping))
        parse, parse_cpu = time.perf_counter() - began, time.process_time() - cpu
        (folder / "catalog.yaml").write_text(
            "departments: [{code: B, name: Bench}]\nitems:\n  - {code: BENCH-1, name: b, "
            "department: B, category: license, promised_days: 20, legal_days: 20}\n",
            encoding="utf-8")
        engine = open_store(fresh_store(store_url(args.url, folder, "bench.db")))
        ingest_catalog(engine, folder / "catalog.yaml")
        config = Config(path=None, base_dir=folder, mapping=mapping)
        if args.serial:
            config = dataclasses.replace(config, parallel_ingest=False)
        if args.jobs is not None and hasattr(config, "ingest_jobs"):  # main has no such setting
            config = dataclasses.replace(config, ingest_jobs=args.jobs)
        began, cpu, kids = time.perf_counter(), time.process_time(), _children_cpu()
        [result] = ingest_events(engine, config, [str(log)], datetime.now(timezone.utc))
        ingest = time.perf_counter() - began
        writer_cpu, readers_cpu = time.process_time() - cpu, _children_cpu() - kids
        engine.dispose()
    rows = rows or result.tally.read
    figures = {"events": rows, "attrs": args.attrs, "store": "postgresql" if args.url else "sqlite",
               "parallel_ingest": config.parallel_ingest,
               "ingest_jobs": getattr(config, "ingest_jobs", None), "mb": round(size / 1e6, 1),
               **({} if args.skip_parse else {
                   "parse_s": round(parse, 2), "parse_events_per_s": round(rows / parse),
                   "parse_cpu_s": round(parse_cpu, 2),
                   "parse_events_per_cpu_s": round(rows / parse_cpu)}),
               "ingest_s": round(ingest, 2), "ingest_events_per_s": round(rows / ingest),
               # CPU of this process (it stores) and of the reading children: what the
               # ingestion would reach with a core for each, whatever the machine's load
               "writer_cpu_s": round(writer_cpu, 2), "readers_cpu_s": round(readers_cpu, 2),
               "writer_bound_events_per_s": round(rows / max(writer_cpu, 1e-9)),
               "inserted": result.tally.inserted}
    if args.json:
        print(json.dumps(figures))
    else:
        for k, v in figures.items():
            print(f"{k:>20}: {v:,}" if isinstance(v, int) and not isinstance(v, bool) else f"{k:>20}: {v}")


if __name__ == "__main__":
    main()
