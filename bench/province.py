"""Province benchmark: ``python bench/province.py [--regions N] [--cases M] [--url URL] [--json]``.

A province's store on PostgreSQL, and one county's on SQLite beside it, in one run:

1. **Ingest** — ``--ingest-events`` contract events (default 200,000) through the real
   ingestion path into a fresh database ``<name>_ingest`` (COPY into a staging table, one
   merge per batch), against a bare ``COPY`` of the same rows into the same table and
   indexes (``<name>_ingest_floor``): ``bench/ingest.py``'s run.
2. **Evaluate** — N regions × M cases generated straight into the PostgreSQL database of
   ``--url`` (dropped and created afresh): **one store of N × M cases** (staff, items and
   departments as one county of that size: ``bench/evaluate.py``'s generator), its
   departments dealt out to N counties (``evaluate.label_regions``). ``--jobs J``
   evaluates through ``run --jobs J`` (one county per worker process) instead of rule by
   rule. Every shipped rule in full as of the
   log's end; 1 % more cases (accepted in the 3 days before the new as-of) and the rules
   incrementally with the clock moved 24 h, as the nightly job moves it; 1 % more and
   again at that instant. Wall and CPU time (client, and the server's backends), peak
   RSS of client and server.
3. The same for **one region** (M cases) on SQLite.

``--json`` prints one object; its top-level keys are PostgreSQL's figures
(``ingest_events_per_s``, ``copy_floor_rows_per_s``, ``full_seconds``,
``full_cpu_seconds`` (client + server), ``incremental_seconds`` …), the details under
``postgresql`` and ``sqlite``. The server runs with whatever settings it has (the shared
one here: fsync off, 128 MB shared buffers): say so beside any figure.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from pathlib import Path

from sqlalchemy.engine import make_url

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

import evaluate  # noqa: E402
import ingest  # noqa: E402
from benchlib import drop_store, is_postgres  # noqa: E402


def _named(url: str, suffix: str) -> str:
    parsed = make_url(url)
    return parsed.set(database=f"{parsed.database}{suffix}").render_as_string(
        hide_password=False)


def _cpu(phase: dict) -> float:
    return round(phase["cpu_seconds"] + phase.get("server_cpu_seconds", 0.0), 2)


def summary(ingested: dict, evaluated: dict) -> dict:
    full, inc, same = (evaluated["full"], evaluated["incremental"],
                       evaluated["incremental_same_instant"])
    return {
        "ingest_events_per_s": ingested["ingest"]["events_per_second"],
        "copy_floor_rows_per_s": ingested["floor"]["rows_per_second"],
        "ingest_ratio_to_floor": ingested["ratio_to_floor"],
        "full_seconds": full["seconds"], "full_cpu_seconds": _cpu(full),
        "incremental_seconds": inc["seconds"], "incremental_cpu_seconds": _cpu(inc),
        "incremental_ratio": round(inc["seconds"] / full["seconds"], 4),
        "incremental_cpu_ratio": round(_cpu(inc) / max(_cpu(full), 1e-9), 4),
        "incremental_same_instant_seconds": same["seconds"],
        "client_peak_rss_mb": max(p["peak_rss_mb"] for p in (full, inc, same)),
        "server_peak_rss_mb": max((p.get("server_peak_rss_mb", 0) for p in (full, inc, same)),
                                  default=0),
        "events": evaluated["events"], "added_events": evaluated["added_events"],
    }


def run(url: str, regions: int, cases: int, ingest_events: int, folder: Path,
        jobs: int = 0) -> dict:
    ingest_url = _named(url, "_ingest")
    pg_ingest = ingest.bench(ingest_events, 5000, folder, 2025, ingest_url)
    drop_store(ingest_url)
    pg_eval = evaluate.run(url, regions * cases, regions=regions, jobs=jobs)
    drop_store(url)
    sqlite_ingest = ingest.bench(ingest_events, 5000, folder, 2025)
    sqlite_url = f"sqlite:///{folder / 'region.db'}"
    sqlite_eval = evaluate.run(sqlite_url, cases)
    drop_store(sqlite_url)
    postgresql = summary(pg_ingest, pg_eval)
    return {"regions": regions, "cases": cases, "jobs": jobs,
            "store": "one store of regions × cases",
            **postgresql,
            "postgresql": {**postgresql, "ingest": pg_ingest, "evaluate": pg_eval},
            "sqlite": {"regions": 1, "cases": cases, **summary(sqlite_ingest, sqlite_eval),
                       "ingest": sqlite_ingest, "evaluate": sqlite_eval}}


def _line(name: str, s: dict) -> None:
    print(f"{name}: ingest {s['ingest_events_per_s']:,} events/s = "
          f"{s['ingest_ratio_to_floor']:.2f} × bare floor ({s['copy_floor_rows_per_s']:,} rows/s)")
    print(f"  full {s['full_seconds']:.1f} s (CPU {s['full_cpu_seconds']:.1f} s) · incremental, "
          f"clock +24 h: {s['incremental_seconds']:.2f} s (CPU {s['incremental_cpu_seconds']:.2f}"
          f" s) = {s['incremental_ratio']:.1%} of full (CPU {s['incremental_cpu_ratio']:.1%}) · "
          f"same instant {s['incremental_same_instant_seconds']:.2f} s")
    print(f"  peak RSS: client {s['client_peak_rss_mb']} MB"
          + (f", server {s['server_peak_rss_mb']} MB" if s["server_peak_rss_mb"] else ""))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--regions", type=int, default=10)
    parser.add_argument("--cases", type=int, default=100_000, help="cases per region")
    parser.add_argument("--url", default="postgresql+psycopg://postgres@127.0.0.1:55432/"
                        "bench_province", help="the PostgreSQL database to use (dropped and "
                        "created afresh; NAME_ingest and NAME_ingest_floor too)")
    parser.add_argument("--ingest-events", type=int, default=200_000)
    parser.add_argument("--jobs", type=int, default=0,
                        help="evaluate PostgreSQL's store through run --jobs N (0: rule by "
                        "rule in one process, each rule timed)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()
    if not is_postgres(args.url):
        parser.error("--url must name a PostgreSQL database (SQLite runs beside it by itself)")
    folder = Path(tempfile.mkdtemp(prefix="bench-province-"))
    try:
        result = run(args.url, args.regions, args.cases, args.ingest_events, folder, args.jobs)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    if args.json:
        print(json.dumps(result, ensure_ascii=False))
        return
    print(f"{args.regions} regions × {args.cases:,} cases, as one store of "
          f"{args.regions * args.cases:,} cases ({result['events']:,} events)")
    _line("PostgreSQL", result)
    _line(f"SQLite, one region ({args.cases:,} cases)", result["sqlite"])


if __name__ == "__main__":
    main()
