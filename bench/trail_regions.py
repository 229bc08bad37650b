"""Trail appends from several regions at once:
``python bench/trail_regions.py --url URL [--workers 2] [--seconds 5] [--work-ms 0 2]
[--code DIR] [--json]``.

Issue 21 item 3: one chain per region, so that appends of different counties never wait
on each other. ``--workers`` processes append to the trail for ``--seconds`` each, one
entry per transaction, as people and runs append, in two modes:

``one``  every worker appends to the same chain: what every append did before chains per
         region (one ``trail_head`` row that each append locks until it commits);
``own``  each worker appends to its own region's chain (its own head row).

``--work-ms`` holds the transaction that long (``pg_sleep``) between taking the head's lock
and appending, for the state change an entry records in the same transaction (a
disposition, a hold, an alert's status): the lock is held for the whole of it, so that is
where one head costs most. Each value is a run of both modes.

``--code DIR`` imports the ``monitor`` package of another checkout (``/work/main``: one
head row), which runs the ``one`` mode only: the same figure measured on the code before
the change, in the same session. The store is a fresh database on the server of
``--url`` (PostgreSQL; SQLite has one writer at a time, whatever the chains), dropped
after.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import sys
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path

HERE = Path(__file__).resolve().parent
AT = datetime(2026, 1, 5, 2, 0, tzinfo=timezone.utc)
REGIONS = ["330102", "330103", "330104", "330105", "330106", "330108", "330109", "330110"]


def _worker(url: str, region: str | None, work_ms: float, start: float, seconds: float,
            out) -> None:
    from sqlalchemy import text

    from monitor import trail
    from monitor.db import create_store_engine

    engine = create_store_engine(url, create=False)
    named = {"region": region} if region else {}
    count = 0
    while time.time() < start:
        time.sleep(0.001)
    end = start + seconds
    while time.time() < end:
        with engine.begin() as conn:
            trail.lock(conn, **named)
            if work_ms:
                conn.execute(text("SELECT pg_sleep(:s)"), {"s": work_ms / 1000})
            trail.append(conn, AT, [trail.Entry("note", None, "bench", {"n": count},
                                                **named)])
        count += 1
    engine.dispose()
    out.put(count)


def run(url: str, mode: str, workers: int, seconds: float, work_ms: float) -> dict:
    """Appends per second of ``workers`` processes in ``mode`` (one | own)."""
    ctx = multiprocessing.get_context("fork")
    out = ctx.Queue()
    start = time.time() + 1.0  # every process connected before the clock starts
    procs = [ctx.Process(target=_worker, args=(
        url, None if mode == "one" else REGIONS[i], work_ms, start, seconds, out))
        for i in range(workers)]
    for p in procs:
        p.start()
    counts = [out.get() for _ in procs]
    for p in procs:
        p.join()
    return {"mode": mode, "workers": workers, "work_ms": work_ms, "appends": sum(counts),
            "per_worker": counts, "appends_per_s": round(sum(counts) / seconds, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", required=True, help="a PostgreSQL server (a role that may "
                        "create databases); the bench makes its own database there")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--work-ms", type=float, nargs="+", default=[0.0, 2.0])
    parser.add_argument("--code", type=Path, default=HERE.parent,
                        help="the checkout whose monitor package runs (default: this one)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if not 1 <= args.workers <= len(REGIONS):
        parser.error(f"--workers: 1 to {len(REGIONS)}")
    sys.path.insert(0, str(args.code.resolve()))
    sys.path.insert(1, str(HERE))
    from benchlib import drop_store, fresh_store, is_postgres
    from sqlalchemy.engine import make_url

    from monitor import trail
    from monitor.db import open_store

    if not is_postgres(args.url):
        parser.error("--url: a PostgreSQL server (SQLite has one writer at a time)")
    url = make_url(args.url).set(database=f"pm_bench_trail_{uuid.uuid4().hex[:8]}") \
        .render_as_string(hide_password=False)
    per_region = hasattr(trail, "verify_all")  # chains per region (migration 0027)
    fresh_store(url)
    try:
        open_store(url).dispose()
        results = [run(url, mode, args.workers, args.seconds, work)
                   for work in args.work_ms
                   for mode in (("one", "own") if per_region else ("one",))]
    finally:
        drop_store(url)
    report = {"code": str(args.code.resolve()), "chains_per_region": per_region,
              "seconds": args.seconds, "results": results}
    if args.json:
        print(json.dumps(report, ensure_ascii=False))
        return
    print(f"code {report['code']} · chains per region: {per_region} · "
          f"{args.workers} workers × {args.seconds:g} s")
    for r in results:
        print(f"  {r['mode']:<4} work {r['work_ms']:>4g} ms: {r['appends_per_s']:>8,.1f} "
              f"appends/s  ({', '.join(map(str, r['per_worker']))} per worker)")


if __name__ == "__main__":
    main()
