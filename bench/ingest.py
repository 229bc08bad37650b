"""Ingestion benchmark: ``python bench/ingest.py N [--url URL] [--batch-size B] [--keep DIR]
[--other-county | --two-counties] [--json]``.

Generates N events in the contract format (CSV, ~6 events per case, +08:00 timestamps)
and a small catalog, streaming to disk; then, each in its own child process so that peak
RSS is the ingestion's alone:

1. ``ingest``   — the catalog, then the CSV into a fresh store (a SQLite file, or the
   PostgreSQL database of ``--url``, dropped and created afresh) through the real code
   path (``open_store`` + ``monitor.ingest.ingest_events``);
2. ``reingest`` — the same CSV again into that database: every row is a duplicate;
3. ``floor``    — the same rows, pre-parsed untimed into the values the store holds (fen,
   UTC text, content hash), written bare into a fresh store's events table (same table,
   indexes and pragmas), one transaction per batch of the same size: SQLite
   ``sqlite3.executemany``, PostgreSQL ``COPY``. Only the write + commit is timed.

CPU per event is given for the client (both of its processes) and, on PostgreSQL, the
server's backends (read from /proc: the server must run on this machine).

See bench/README.md for targets and results.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import random
import resource
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))
TWO_COUNTIES = ("000000", "330106")  # the store's own (config region unset), a neighbour
NOW = datetime(2026, 1, 5, 2, 0, tzinfo=timezone.utc)
CST = timezone(timedelta(hours=8))
COLUMNS = ["event_id", "case_id", "item_code", "department", "step", "actor", "occurred_at",
           "recorded_at", "amount", "channel", "attachments", "days", "note"]

DEPARTMENTS = [("D01", "市场监督管理局"), ("D02", "住房和城乡建设局"), ("D04", "应急管理局"),
               ("D07", "城市管理局"), ("D09", "交通运输局"), ("D12", "自然资源和规划局")]
ITEM_NAMES = ["食品经营许可", "建筑工程施工许可", "危险化学品安全生产许可", "户外广告设置许可",
              "道路运输经营许可", "建设用地规划许可", "特种设备使用登记", "城市道路占用许可"]
NOTES = ["", "", "", "", "材料齐全", "申请人补正材料", "专家评审", "现场核查无异常",
         "已电话告知申请人", "系统补录"]


# ---------------------------------------------------------------- generation


def _items() -> list[dict]:
    items = []
    for i, (dept, _) in enumerate(DEPARTMENTS):
        for j in range(4):
            license_ = j < 3
            items.append({
                "code": f"{dept}-{'XK' if license_ else 'CF'}-{j + 1:03d}",
                "name": ITEM_NAMES[(i + j) % len(ITEM_NAMES)],
                "department": dept, "category": "license" if license_ else "penalty",
                "promised_days": 10 if license_ else 5, "legal_days": 20 if license_ else 5,
                "fee": [0, 200, 1350.5][j % 3] if license_ else 0})
    return items


def write_catalog(path: Path) -> list[dict]:
    items = _items()
    lines = ["departments:"]
    lines += [f"  - {{code: {code}, name: {name}}}" for code, name in DEPARTMENTS]
    lines.append("users:")
    for n in range(60):
        dept = DEPARTMENTS[n % len(DEPARTMENTS)][0]
        role = ["clerk", "clerk", "chief", "deputy", "principal"][n % 5]
        lines.append(f"  - {{id: u{n:04d}, name: 用户{n:04d}, department: {dept}, "
                     f"roles: [{role}], phone: \"138{n:08d}\"}}")
    lines.append("items:")
    for it in items:
        lines += [f"  - code: {it['code']}", f"    name: {it['name']}",
                  f"    department: {it['department']}", f"    category: {it['category']}",
                  f"    promised_days: {it['promised_days']}",
                  f"    legal_days: {it['legal_days']}", f"    fee: {it['fee']}"]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return items


def _case_events(rng: random.Random, n: int, items: list[dict], start: datetime) -> list[list]:
    """One case's events (5–8, ~6 on average), in the order the source system logs them."""
    item = items[rng.randrange(len(items))]
    dept = item["department"]
    case_id = f"{start:%Y}{dept}{n:08d}"
    steps = ["accept", "review", "approve", "decide", "complete"]
    if rng.random() < 0.4:
        steps.insert(1, "survey")
    if item["fee"]:
        steps[-1:-1] = ["fee_assessed", "fee_paid"]
    if rng.random() < 0.05:
        steps.insert(2, "extend")
    at = start
    rows = []
    for k, step in enumerate(steps):
        at += timedelta(minutes=rng.randrange(3, 2000), seconds=rng.randrange(60))
        recorded = "" if rng.random() < 0.2 else \
            (at + timedelta(seconds=rng.randrange(5, 900))).isoformat()
        fee = step in ("fee_assessed", "fee_paid")
        rows.append([
            f"EV{n:09d}{k:02d}", case_id, item["code"],
            dept if rng.random() < 0.7 else "", step, f"u{rng.randrange(60):04d}",
            at.isoformat(), recorded,
            f"{item['fee']:.2f}" if fee else "",
            ("online" if rng.random() < 0.8 else "offline") if fee else "",
            "现场踏勘意见书;照片" if step == "survey" else "",
            str(rng.randrange(5, 20)) if step == "extend" else "",
            NOTES[rng.randrange(len(NOTES))]])
    return rows


def write_events(path: Path, n: int, items: list[dict], seed: int,
                 regions: tuple[str, ...] = ()) -> None:
    """Exactly ``n`` rows, written case by case: memory stays flat whatever ``n`` is.
    ``regions``: a ``region`` column, the cases dealt to them in turn (a province-wide
    file); the rows are the same."""
    rng = random.Random(seed)
    base = datetime(2025, 1, 2, 8, 30, tzinfo=CST)
    written = case = 0
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(COLUMNS + (["region"] if regions else []))
        while written < n:
            start = base + timedelta(seconds=case * 37 + rng.randrange(3600))
            rows = _case_events(rng, case, items, start)[:n - written]
            if regions:
                rows = [row + [regions[case % len(regions)]] for row in rows]
            w.writerows(rows)
            written += len(rows)
            case += 1


# ---------------------------------------------------------------- children


NEIGHBOUR = """\
departments:
  - {code: NB01, name: 邻县局}
items:
  - {code: NB01-XK-001, name: 邻县许可, department: NB01, category: license,
     promised_days: 10, legal_days: 20, fee: 0}
"""


def _child_ingest(url: str, catalog: str, events: str, batch_size: int, reingest: bool,
                  other_county: str = "0", partition: bool = False) -> dict:
    sys.path.insert(0, str(ROOT))
    from benchlib import ServerMeter
    from monitor.catalog import ingest_catalog
    from monitor.config import Config
    from monitor.db import open_store
    from monitor.ingest import ingest_events

    engine = open_store(url)
    if not reingest:
        ingest_catalog(engine, catalog)
        neighbour = Path(events).parent / "neighbour.yaml"
        if other_county == "1":  # a second county's catalog: every row's county is checked
            neighbour.write_text(NEIGHBOUR, encoding="utf-8")
            ingest_catalog(engine, neighbour, region="330106")
        elif other_county == "2":  # the same items in a second county (no users: a user
            text = Path(catalog).read_text(encoding="utf-8")  # id stays with one county)
            users, items = text.index("users:"), text.index("items:")
            neighbour.write_text(text[:users] + "users: []\n" + text[items:], encoding="utf-8")
            ingest_catalog(engine, neighbour, region=TWO_COUNTIES[1])
        if partition:  # events LIST-partitioned by county (permit-monitor db partition)
            from monitor.partitions import partition as partition_events
            partition_events(engine, NOW, "bench")
    config = Config(path=None, base_dir=Path(events).parent, batch_size=batch_size)
    with ServerMeter(url) as server:
        t0, cpu = time.perf_counter(), _cpu()
        [result] = ingest_events(engine, config, [events], NOW)
        seconds, cpu = time.perf_counter() - t0, _cpu() - cpu
    engine.dispose()
    return {"seconds": seconds, "cpu_seconds": cpu, **server.figures(),
            "tally": result.tally.as_dict()}


def _cpu() -> float:
    """CPU seconds of this process and its finished children (the reading process)."""
    me, kids = (resource.getrusage(w) for w in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN))
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def _db_value(row: dict, name: str):
    """What the store holds for one column: fen, UTC text as SQLAlchemy writes it to SQLite."""
    value = row[name]
    if value is None:
        return None
    if name == "amount":
        return int(value * 100)
    if isinstance(value, datetime):
        return value.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S.%f")
    return value


def _floor_db(path: str, schema: list[str]) -> sqlite3.Connection:
    from monitor.db import _sqlite_pragmas

    conn = sqlite3.connect(path)
    _sqlite_pragmas(conn, None)
    for sql in schema:
        conn.execute(sql)
    conn.execute("INSERT INTO ingest_runs (id, kind, source, started_at, status, read, "
                 "inserted, replaced, duplicates, quarantined) VALUES "
                 "(1, 'events', 'floor', '2026-01-05 02:00:00.000000', 'done', 0, 0, 0, 0, 0)")
    conn.commit()
    return conn


def _child_floor(db: str, ingested_db: str, events: str, batch_size: int) -> dict:
    """Bare executemany into two fresh files: the store's events table with all its indexes,
    and the same table with only its unique index on event_id."""
    sys.path.insert(0, str(ROOT))
    from monitor.config import Config
    from monitor.ingest.events import CatalogIndex, normalize_event

    src = sqlite3.connect(ingested_db)
    tables = [sql for (sql,) in src.execute(
        "SELECT sql FROM sqlite_master WHERE type = 'table' "
        "AND name IN ('events', 'ingest_runs') ORDER BY name = 'events'")]
    indexes = [sql for (sql,) in src.execute(
        "SELECT sql FROM sqlite_master WHERE type = 'index' AND tbl_name = 'events' "
        "AND sql IS NOT NULL ORDER BY name")]
    items = dict(src.execute("SELECT code, department FROM items"))
    departments = frozenset(d for (d,) in src.execute("SELECT code FROM departments"))
    src.close()
    catalog_index = CatalogIndex(items, departments)
    tz = Config(path=None, base_dir=Path(db).parent).tz
    unique_db = str(Path(db).with_name("floor-unique.db"))
    targets = {"floor": _floor_db(db, tables + indexes),
               "floor_unique": _floor_db(unique_db, tables)}
    names = COLUMNS + ["content_hash", "run_id", "source_line"]
    sql = (f"INSERT INTO events ({', '.join(names)}) "
           f"VALUES ({', '.join('?' for _ in names)})")
    seconds = dict.fromkeys(targets, 0.0)
    rows = 0

    def flush(batch: list[tuple]) -> None:
        for name, conn in targets.items():
            t0 = time.perf_counter()
            conn.executemany(sql, batch)
            conn.commit()
            seconds[name] += time.perf_counter() - t0

    with open(events, newline="", encoding="utf-8") as f:
        batch: list[tuple] = []
        for line, fields in enumerate(csv.DictReader(f), start=2):
            row = normalize_event(fields, catalog_index, tz)
            row["run_id"], row["source_line"] = 1, line
            batch.append(tuple(_db_value(row, n) for n in names))
            if len(batch) == batch_size:
                flush(batch)
                rows += len(batch)
                batch = []
        if batch:
            flush(batch)
            rows += len(batch)
    for conn in targets.values():
        conn.close()
    return {"seconds": seconds, "rows": rows}


def _child_copy_floor(url: str, ingested_url: str, events: str, batch_size: int) -> dict:
    """PostgreSQL: the same rows, turned untimed into the values the store holds, sent with
    a bare ``COPY`` into a fresh store's events table (its indexes, no staging, no merge),
    one transaction per batch of the same size; only COPY + commit are timed."""
    sys.path.insert(0, str(ROOT))
    import psycopg

    from benchlib import ServerMeter, psycopg_dsn
    from monitor.config import Config
    from monitor.db import open_store
    from monitor.ingest.events import CatalogIndex, normalize_event
    from monitor.ingest.store import EVENT_COLUMNS, event_binder
    from monitor.regionstore import store_region

    with open_store(ingested_url).connect() as conn:
        catalog_index = CatalogIndex.load(conn, store_region(conn))
    engine = open_store(url)  # the schema, indexes included
    bind = event_binder(engine.dialect)
    engine.dispose()
    tz = Config(path=None, base_dir=Path(events).parent).tz
    seconds, rows = 0.0, 0
    with psycopg.connect(psycopg_dsn(url)) as conn, ServerMeter(url) as server:
        conn.execute("INSERT INTO ingest_runs (id, kind, source, started_at, status, read, "
                     "inserted, replaced, duplicates, quarantined) VALUES (1, 'events', "
                     "'floor', now(), 'done', 0, 0, 0, 0, 0)")
        conn.commit()

        def flush(batch: list[tuple]) -> None:
            nonlocal seconds
            t0 = time.perf_counter()
            with conn.cursor() as cur, cur.copy(
                    f"COPY events ({', '.join(EVENT_COLUMNS)}) FROM STDIN") as copy:
                for row in batch:
                    copy.write_row(row)
            conn.commit()
            seconds += time.perf_counter() - t0

        with open(events, newline="", encoding="utf-8") as f:
            batch: list[tuple] = []
            for line, fields in enumerate(csv.DictReader(f), start=2):
                row = normalize_event(fields, catalog_index, tz)
                row["run_id"], row["source_line"], row["region"] = 1, line, "000000"
                batch.append(bind(row))
                if len(batch) == batch_size:
                    flush(batch)
                    rows += len(batch)
                    batch = []
            if batch:
                flush(batch)
                rows += len(batch)
    return {"seconds": {"floor": seconds}, "rows": rows, **server.figures()}


def _run_child(*args: str) -> tuple[dict, int]:
    """Run this file as a child; returns its JSON answer and its peak RSS in bytes."""
    proc = subprocess.Popen([sys.executable, __file__, "--child", *args],
                            stdout=subprocess.PIPE, cwd=ROOT)
    out = proc.stdout.read()
    proc.stdout.close()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode:
        raise SystemExit(f"benchmark child {args[0]} failed (exit {proc.returncode})")
    return json.loads(out), usage.ru_maxrss * 1024  # Linux reports KiB


# ---------------------------------------------------------------- main


def bench(n: int, batch_size: int, workdir: Path, seed: int, url: str | None = None,
          other_county: bool = False, two_counties: bool = False, partition: bool = False
          ) -> dict:
    """Generate, ingest, re-ingest and the bare floor. ``url``: a PostgreSQL database to
    ingest into (dropped and created afresh; its floor goes to ``<name>_floor``), else
    SQLite files in ``workdir``."""
    from benchlib import drop_store, fresh_store, is_postgres

    catalog, events = workdir / "catalog.yaml", workdir / "events.csv"
    postgres = bool(url) and is_postgres(url)
    db_url = url if postgres else f"sqlite:///{workdir / 'ingest.db'}"
    floor_url = (str(make_url(url).set(database=make_url(url).database + "_floor"))
                 if postgres else f"sqlite:///{workdir / 'floor.db'}")
    fresh_store(db_url)
    fresh_store(floor_url)
    Path(f"{workdir / 'floor-unique.db'}").unlink(missing_ok=True)
    t0 = time.perf_counter()
    items = write_catalog(catalog)
    write_events(events, n, items, seed, TWO_COUNTIES if two_counties else ())
    generated = time.perf_counter() - t0

    other = "2" if two_counties else "1" if other_county else "0"
    parted = "1" if partition else "0"
    first, rss = _run_child("ingest", db_url, str(catalog), str(events), str(batch_size), "0",
                            other, parted)
    again, rss_again = _run_child("ingest", db_url, str(catalog), str(events),
                                  str(batch_size), "1", other, parted)
    if postgres:
        floor, _ = _run_child("copy-floor", floor_url, db_url, str(events), str(batch_size))
        drop_store(floor_url)
    else:
        floor, _ = _run_child("floor", make_url(floor_url).database,
                              make_url(db_url).database, str(events), str(batch_size))
    rate = n / first["seconds"]
    floor_rate = floor["rows"] / floor["seconds"]["floor"]
    out = {
        "database": "postgresql" if postgres else "sqlite", "other_county": other_county,
        "two_counties": two_counties, "partitioned": partition,
        "events": n, "batch_size": batch_size, "csv_bytes": events.stat().st_size,
        "generate_seconds": round(generated, 2),
        "ingest": {"seconds": round(first["seconds"], 3), "events_per_second": round(rate),
                   **_cost(first, n), "peak_rss_mb": round(rss / 2**20, 1),
                   "tally": first["tally"]},
        "reingest": {"seconds": round(again["seconds"], 3),
                     "events_per_second": round(n / again["seconds"]), **_cost(again, n),
                     "peak_rss_mb": round(rss_again / 2**20, 1), "tally": again["tally"]},
        "floor": {"kind": "COPY" if postgres else "executemany",
                  "seconds": round(floor["seconds"]["floor"], 3), "rows": floor["rows"],
                  "rows_per_second": round(floor_rate),
                  **({"server_cpu_us_per_event": round(floor["server_cpu_seconds"]
                                                       / floor["rows"] * 1e6, 1)}
                     if "server_cpu_seconds" in floor else {})},
        "ratio_to_floor": round(rate / floor_rate, 3),
    }
    if not postgres:
        unique_rate = floor["rows"] / floor["seconds"]["floor_unique"]
        out["floor_unique_only"] = {"seconds": round(floor["seconds"]["floor_unique"], 3),
                                    "rows_per_second": round(unique_rate)}
        out["ratio_to_floor_unique_only"] = round(rate / unique_rate, 3)
    return out


def _cost(child: dict, n: int) -> dict:
    """CPU per event of the client (both processes) and, on PostgreSQL, of the server."""
    out = {"client_cpu_us_per_event": round(child["cpu_seconds"] / n * 1e6, 1)}
    if "server_cpu_seconds" in child:
        out["server_cpu_us_per_event"] = round(child["server_cpu_seconds"] / n * 1e6, 1)
    return out


def _print(r: dict) -> None:
    i, a, f = r["ingest"], r["reingest"], r["floor"]
    print(f"events:           {r['events']:,} ({r['csv_bytes'] / 2**20:.1f} MiB CSV, "
          f"batch {r['batch_size']:,}; generated in {r['generate_seconds']:.1f} s) "
          f"into {r['database']}")
    for name, x in (("ingest", i), ("re-ingest", a)):
        server = (f", server {x['server_cpu_us_per_event']} µs" if "server_cpu_us_per_event"
                  in x else "")
        print(f"{name + ':':<17} {x['events_per_second']:,} events/s, wall {x['seconds']:.2f} s, "
              f"CPU per event: client {x['client_cpu_us_per_event']} µs{server}; "
              f"peak RSS {x['peak_rss_mb']:.0f} MB")
        print(f"  tally:          {x['tally']}")
    print(f"bare {f['kind']}: {f['rows_per_second']:,} rows/s ({f['seconds']:.2f} s), "
          "same events table and indexes"
          + (f"; server {f['server_cpu_us_per_event']} µs per row"
             if "server_cpu_us_per_event" in f else ""))
    print(f"ratio:            {r['ratio_to_floor']:.2f} × bare {f['kind']}")
    if "floor_unique_only" in r:
        u = r["floor_unique_only"]
        print(f"  unique index only: {u['rows_per_second']:,} rows/s ({u['seconds']:.2f} s), "
              f"ratio {r['ratio_to_floor_unique_only']:.2f}")


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "--child":
        kind, *args = argv[1:]
        if kind == "ingest":
            out = _child_ingest(args[0], args[1], args[2], int(args[3]), args[4] == "1",
                                args[5], args[6] == "1")
        elif kind == "copy-floor":
            out = _child_copy_floor(args[0], args[1], args[2], int(args[3]))
        else:
            out = _child_floor(args[0], args[1], args[2], int(args[3]))
        print(json.dumps(out))
        return
    p = argparse.ArgumentParser(prog="bench/ingest.py", description=__doc__.splitlines()[0])
    p.add_argument("n", type=int, help="number of events to generate")
    p.add_argument("--url", help="a PostgreSQL database to ingest into, dropped and created "
                   "afresh (its bare-COPY floor goes to a second one, NAME_floor); default: "
                   "SQLite files in the work folder")
    p.add_argument("--batch-size", type=int, default=5000,
                   help="rows per transaction (default: the config default, 5000)")
    p.add_argument("--keep", metavar="DIR", help="write files here and keep them")
    p.add_argument("--seed", type=int, default=2025)
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--other-county", action="store_true",
                   help="load a second county's catalog first (a store of several counties): "
                        "each row's county is then checked against the run's")
    p.add_argument("--two-counties", action="store_true",
                   help="a province-wide file: a region column dealing the cases to two "
                        "counties that hold the same catalog (each row's own county, and a "
                        "case's county checked per batch)")
    p.add_argument("--partition", action="store_true",
                   help="PostgreSQL: partition the events by county before ingesting "
                        "(permit-monitor db partition; the floor stays one table)")
    opts = p.parse_args(argv)
    if opts.keep:
        workdir = Path(opts.keep)
        workdir.mkdir(parents=True, exist_ok=True)
    else:
        workdir = Path(tempfile.mkdtemp(prefix="bench-ingest-"))
    try:
        result = bench(opts.n, opts.batch_size, workdir, opts.seed, opts.url,
                       opts.other_county, opts.two_counties, opts.partition)
    finally:
        if not opts.keep:
            shutil.rmtree(workdir, ignore_errors=True)
            if opts.url:
                from benchlib import drop_store

                drop_store(opts.url)
    if opts.json:
        print(json.dumps(result, indent=2))
    else:
        _print(result)


if __name__ == "__main__":
    main()
