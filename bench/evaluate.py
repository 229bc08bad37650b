"""Rule evaluation benchmark: ``python bench/evaluate.py N [--url URL] [--keep DIR] [--json]``.

1. Generates N permit cases (≈ 8.6 events each: accept … complete, with back-fills, late
   entries, one-person approvals, offline fees, open cases and bursts of back-filled
   entries planted at low rates; staff within the catalog) straight into a fresh store —
   SQLite (``sqlite3.executemany``) or PostgreSQL (``COPY``), values in their stored form
   on a schema created by ``open_store``. Setup, not timed.
2. ``full``        — all shipped rules, evaluated in full as of AS_OF, in a child process
   (peak RSS is the evaluation's alone; on PostgreSQL the server's CPU and peak RSS too).
3. ``incremental`` — 1 % more cases (accepted in the 3 days before the new as-of, as a
   night brings them; ``--scattered``: at any moment of the year), then the same rules
   incrementally with the clock moved 24 h, as the nightly job moves it; then 1 % more
   and again at that same instant.

Targets (this 2-core machine): 1,000,000 cases fully evaluated in ≤ 60 s on SQLite and on
PostgreSQL; the 1 % incremental run ≤ 3 % of the full run; peak RSS flat in cases.
"""

from __future__ import annotations

import argparse
import inspect
import json
import random
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
sys.path.insert(1, str(Path(__file__).resolve().parent))

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


YEAR = (START, timedelta(days=330))  # when the generated cases are accepted: a year …
RECENT_DAYS = 3                      # … or, for an increment, the days before the as-of


def case_events(rng: random.Random, n: int, items: list[dict], prefix: str, team_count: int = 1,
                accepted: tuple[datetime, timedelta] = YEAR):
    """Rows of case ``n`` in stored form: accept … complete, with the fee steps of a fee
    item, and at low rates every pattern a shipped rule looks for — a suspension with its
    resumption (3 %), an extension (2 %), a waiver (2 %, half by a principal), back-fills,
    late entries, one-person approvals, offline payments, a missing survey report, cases
    still open. Entries of one department's clerk crowd into bursts now and then, as real
    ones do."""
    item = items[n % len(items)]
    dept, team = item["department"], n // len(items) % team_count
    fee = int(item["fee"] * 100) or (50000 if item["category"] == "penalty" else 0)
    t = accepted[0] + timedelta(minutes=rng.randrange(0, int(accepted[1].total_seconds() // 60)))
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


BLOCK = 20_000     # cases generated (and written) at a time
BURST = 12         # entries in a planted burst (batch_entry's default needs 10 in 5 minutes)


def plant_bursts(rng: random.Random, rows: list[list]) -> int:
    """Back-filled batches, as the seed found them: in each block of cases, one clerk per
    department types in ``BURST`` acceptances done on paper over the day or so before,
    all within three minutes (their ``recorded_at`` rewritten). Returns how many."""
    planted = 0
    by_actor: dict[str, list[list]] = {}
    for row in rows:
        if row[4] == "accept":
            by_actor.setdefault(row[5], []).append(row)
    for dept in DEPARTMENTS:
        accepts = sorted(by_actor.get(f"{dept}-0-0", []), key=lambda r: r[6])
        if len(accepts) < BURST:
            continue
        first = rng.randrange(len(accepts) - BURST + 1)
        chosen = accepts[first:first + BURST]
        if (datetime.fromisoformat(chosen[-1][6])
                - datetime.fromisoformat(chosen[0][6])) > timedelta(hours=36):
            continue  # paper work of a day or so, not of weeks
        typed = datetime.fromisoformat(max(r[6] for r in chosen)) + timedelta(minutes=10)
        for k, row in enumerate(chosen):
            row[7] = text(typed + timedelta(seconds=15 * k))
        planted += 1
    return planted


class Writer:
    """Rows in stored form into the events table: ``sqlite3.executemany`` or, on
    PostgreSQL, ``COPY`` (timestamps are UTC text)."""

    def __init__(self, url: str):
        from benchlib import is_postgres, psycopg_dsn

        self.postgres = is_postgres(url)
        if self.postgres:
            import psycopg

            self.conn = psycopg.connect(psycopg_dsn(url))
        else:
            from sqlalchemy.engine import make_url

            self.conn = sqlite3.connect(make_url(url).database)
            self.conn.execute("PRAGMA journal_mode=WAL")
            self.conn.execute("PRAGMA synchronous=OFF")

    def events(self, rows: list) -> None:
        if self.postgres:
            with self.conn.cursor() as cur, cur.copy(
                    f"COPY events ({', '.join(COLUMNS)}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row([f"{v}+00" if k in (6, 7) and v else v
                                    for k, v in enumerate(row)])
        else:
            self.conn.executemany(f"INSERT INTO events ({', '.join(COLUMNS)}) VALUES "
                                  f"({', '.join('?' * len(COLUMNS))})", rows)
        self.conn.commit()

    def receipts(self, totals: dict[tuple[str, str], int]) -> None:
        """The treasury's receipts per department-month: the online payments, except that
        one department remits less than it collected online and another more."""
        adjust = {"D01": 0.97, "D02": 1.05}
        rows = [(d, p, int(a * adjust.get(d, 1))) for (d, p), a in sorted(totals.items())]
        mark = "%s" if self.postgres else "?"
        cur = self.conn.cursor()
        cur.executemany("INSERT INTO receipts (department, period, amount, event_mark) VALUES"
                        f" ({mark}, {mark}, {mark}, (SELECT max(id) FROM events))", rows)
        self.conn.commit()

    def close(self) -> None:
        self.conn.close()


LOCAL = timedelta(hours=8)  # the store's receipts are per local (Asia/Shanghai) month


def generate(url: str, cases: int, first: int = 0, prefix: str = "E", seed: int = 7,
             total: int | None = None, receipts: bool = True,
             accepted: tuple[datetime, timedelta] = YEAR) -> dict:
    """Cases ``first`` … ``first + cases - 1``, accepted at random moments of ``accepted``
    (start, length), into the store at ``url``, for a store of ``total`` cases in all (its
    staff: see :func:`teams`), with bursts planted; then, if ``receipts``, the treasury's
    receipts for the online payments. Counts of what went in."""
    _, items = catalog(total or cases)
    team_count = teams(total or cases)
    rng = random.Random(seed + first)
    writer = Writer(url)
    written = bursts = 0
    online: dict[tuple[str, str], int] = {}
    for start in range(first, first + cases, BLOCK):
        rows = [list(row) for n in range(start, min(start + BLOCK, first + cases))
                for row in case_events(rng, n, items, prefix, team_count, accepted)]
        bursts += plant_bursts(rng, rows)
        for row in rows:
            if row[4] == "fee_paid" and row[9] == "online":
                key = (row[3], (datetime.fromisoformat(row[6]) + LOCAL).strftime("%Y-%m"))
                online[key] = online.get(key, 0) + row[8]
        writer.events(rows)
        written += len(rows)
    if receipts:
        writer.receipts(online)
    writer.close()
    return {"events": written, "bursts": bursts, "receipts": len(online) if receipts else 0}


COUNTIES = ("330102", "330106", "330108", "330109", "330110", "330111", "330112", "330113",
            "330114", "330122")  # Hangzhou's districts and counties: GB/T 2260 codes


def partition_events(url: str) -> None:
    """The store's events partitioned by county (monitor/partitions.py), then analyzed."""
    from monitor.db import create_store_engine
    from monitor.partitions import partition_in

    engine = create_store_engine(url)
    with engine.begin() as conn:
        partition_in(conn)
    engine.dispose()
    analyze(url)


def label_regions(url: str, regions: int) -> None:
    """With ``regions`` > 1: the store as that many counties — each department (and its
    items, staff and events) in county ``k mod regions`` — as ``ingest --region`` would
    have stamped them. Events not yet labelled only (the increments come unlabelled)."""
    if regions < 2:
        return
    from sqlalchemy import text

    from monitor.db import create_store_engine

    cases = " ".join(f"WHEN '{d}' THEN '{COUNTIES[k % regions]}'"
                     for k, d in enumerate(DEPARTMENTS))
    engine = create_store_engine(url)
    with engine.begin() as conn:
        for table, column in (("departments", "code"), ("items", "department"),
                              ("users", "department"), ("events", "department")):
            conn.execute(text(f"UPDATE {table} SET region = CASE {column} {cases} END "
                              f"WHERE region NOT IN ({', '.join(repr(c) for c in COUNTIES)})"))
    engine.dispose()


def phase_jobs(url: str, kind: str, as_of: datetime, jobs: int) -> dict:
    """Child process: the shipped rules through ``run --jobs``'s path (monitor/parallel.py),
    one county per worker; CPU of this process and its workers (and of the server)."""
    import resource

    from benchlib import ServerMeter, peak_rss_mb
    from monitor.config import SHIPPED_RULES, Config
    from monitor.db import open_store
    from monitor.parallel import evaluate_regions

    engine = open_store(url)
    config = Config(path=None, base_dir=ROOT, rules_dir=SHIPPED_RULES)
    with ServerMeter(url) as server:
        started, cpu_started = time.perf_counter(), time.process_time()
        outcomes = evaluate_regions(engine, config, as_of, jobs=jobs, full=kind == "full")
        seconds = time.perf_counter() - started
        cpu_seconds = time.process_time() - cpu_started
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    engine.dispose()
    return {"seconds": round(seconds, 2),
            "cpu_seconds": round(cpu_seconds + children.ru_utime + children.ru_stime, 2),
            "workers_cpu_seconds": round(children.ru_utime + children.ru_stime, 2),
            "jobs": jobs, **server.figures(), "peak_rss_mb": peak_rss_mb(),
            "rules": {o.rule.id: {"findings": o.found, "error": o.error,
                                  "incremental": o.incremental, "seconds": 0.0,
                                  "cpu_seconds": 0.0} for o in outcomes}}


def phase(url: str, kind: str, as_of: datetime) -> dict:
    """Child process: evaluate the shipped rules (``full``, or incrementally) as of
    ``as_of``; report time (wall, CPU of this process and of the server), peak RSS and
    findings per rule."""
    from benchlib import ServerMeter, peak_rss_mb
    from monitor.config import SHIPPED_RULES, Config
    from monitor.db import open_store
    from monitor.engine import context, evaluate_rule
    from monitor.rules.loader import load_rules

    engine = open_store(url)
    config = Config(path=None, base_dir=ROOT, rules_dir=SHIPPED_RULES)
    rules, result, cache = load_rules([SHIPPED_RULES]), {}, {}
    rules = sorted(rules, key=lambda r: r.kind == "inactive_monitor")
    ctx = context(config, as_of)
    # as the scheduled passes run: findings stored as they come, not kept (older engines
    # held them all)
    streamed = {"keep": False} if "keep" in inspect.signature(evaluate_rule).parameters else {}
    with ServerMeter(url) as server:
        started, cpu_started = time.perf_counter(), time.process_time()
        for rule in rules:  # one rule at a time, to time each, as evaluate() runs them
            began, cpu = time.perf_counter(), time.process_time()
            o = evaluate_rule(engine, rule, ctx, full=kind == "full", cache=cache, **streamed)
            result[o.rule.id] = {"findings": found(o), "error": o.error,
                                 "incremental": o.incremental,
                                 "seconds": round(time.perf_counter() - began, 2),
                                 "cpu_seconds": round(time.process_time() - cpu, 2)}
        seconds = time.perf_counter() - started
        cpu_seconds = time.process_time() - cpu_started
    engine.dispose()
    return {"seconds": round(seconds, 2), "cpu_seconds": round(cpu_seconds, 2),
            **server.figures(),
            "peak_rss_mb": peak_rss_mb(), "rules": result}


def found(outcome) -> int:
    """Findings of one rule's run (held in a list by engines before they were streamed)."""
    return outcome.found if hasattr(outcome, "found") else len(outcome.findings)


def child(url: str, kind: str, as_of: datetime, jobs: int = 0) -> dict:
    """``jobs``: 0, rule by rule in one process (each timed); N, through ``run --jobs N``."""
    out = subprocess.run([sys.executable, __file__, "0", "--phase", kind, "--url", url,
                          "--as-of", as_of.isoformat(), "--jobs", str(jobs)],
                         capture_output=True, text=True)
    if out.returncode:
        sys.exit(f"evaluation failed:\n{out.stderr}")
    return json.loads(out.stdout)


def prepare(url: str, cases: int) -> dict:
    """A fresh store at ``url`` holding ``cases`` cases, their catalog and receipts."""
    from benchlib import fresh_store
    from monitor.catalog import apply_catalog
    from monitor.db import open_store

    engine = open_store(fresh_store(url))
    apply_catalog(engine, catalog(cases)[0])
    engine.dispose()
    started = time.perf_counter()
    made = generate(url, cases)
    made["generated_s"] = round(time.perf_counter() - started, 1)
    analyze(url)
    return made


def analyze(url: str) -> None:
    """PostgreSQL: the planner's statistics of the freshly loaded tables, as autovacuum
    would gather them shortly after such a load (not after the 1 % increments: autovacuum
    waits for 10 % of a table to change)."""
    from benchlib import is_postgres, psycopg_dsn

    if is_postgres(url):
        import psycopg

        with psycopg.connect(psycopg_dsn(url), autocommit=True) as conn:
            conn.execute("VACUUM ANALYZE")


def increment(url: str, cases: int, first: int, prefix: str, as_of: datetime,
              scattered: bool) -> dict:
    """1 % more cases: accepted in the ``RECENT_DAYS`` before ``as_of`` (a night's new work:
    the later steps of some are still to come), or, ``scattered``, at any moment of the
    year (every month, actor and department-month of the history is touched)."""
    recent = (as_of - timedelta(days=RECENT_DAYS), timedelta(days=RECENT_DAYS))
    return generate(url, max(cases // 100, 1), first=first, prefix=prefix, total=cases,
                    receipts=False, accepted=YEAR if scattered else recent)


MID_MONTH = AS_OF + timedelta(days=14)  # 15 February, local: a night inside a month


def run(url: str, cases: int, scattered: bool = False, as_of: datetime = AS_OF,
        regions: int = 1, jobs: int = 0, partition: bool = False) -> dict:
    """Full evaluation as of ``as_of``; 1 % more cases; incremental with the clock moved
    24 h (as the nightly job moves it); 1 % more; incremental again at that instant.
    ``regions`` > 1: the store as that many counties; ``jobs``: see :func:`child`;
    ``partition``: PostgreSQL's events partitioned by county first (``db partition``)."""
    made = prepare(url, cases)
    if regions > 1:  # every row rewritten: the planner's statistics and a vacuum, again
        label_regions(url, regions)
        analyze(url)
    if partition:
        partition_events(url)
    full = child(url, "full", as_of, jobs)
    moved = as_of + timedelta(hours=24)
    extra = max(cases // 100, 1)
    added = increment(url, cases, cases, "N", moved, scattered)
    label_regions(url, regions)
    inc = child(url, "inc", moved, jobs)
    again = increment(url, cases, cases + extra, "M", moved, scattered)
    label_regions(url, regions)
    same = child(url, "inc", moved, jobs)
    return {"cases": cases, **made, "increment": "scattered" if scattered else "recent",
            "as_of": as_of.isoformat(), "regions": regions, "jobs": jobs,
            "full": full, "added_events": added["events"],
            "incremental": inc, "incremental_ratio": ratio(inc, full, "seconds"),
            "incremental_cpu_ratio": ratio(inc, full, "cpu_seconds"),
            "added_again_events": again["events"], "incremental_same_instant": same,
            "incremental_same_instant_ratio": ratio(same, full, "seconds")}


def ratio(part: dict, whole: dict, key: str) -> float:
    return round(part[key] / max(whole[key], 1e-9), 4)


def describe(phase_: dict) -> str:
    server = (f", server CPU {phase_['server_cpu_seconds']:.2f} s, server peak RSS "
              f"{phase_['server_peak_rss_mb']} MB" if "server_cpu_seconds" in phase_ else "")
    return (f"{phase_['seconds']:.2f} s (CPU {phase_['cpu_seconds']:.2f} s{server}), "
            f"peak RSS {phase_['peak_rss_mb']} MB")


def report(result: dict) -> None:
    full, inc, same = (result["full"], result["incremental"],
                       result["incremental_same_instant"])
    print(f"cases:            {result['cases']:,} ({result['events']:,} events, "
          f"{result['bursts']:,} bursts planted; generated in {result['generated_s']:.1f} s)")
    print(f"full evaluation:  {describe(full)}")
    for rule, r in full["rules"].items():
        print(f"  {rule:<22} {r['findings']:>8,} findings {r['seconds']:>7.2f} s"
              f" (CPU {r['cpu_seconds']:.2f} s)" + (f"  ERROR {r['error']}" if r["error"] else ""))
    print(f"incremental, clock +24 h, after {result['added_events']:,} new events: "
          f"{describe(inc)}; {result['incremental_ratio']:.1%} of full "
          f"(CPU {result['incremental_cpu_ratio']:.1%})")
    for rule, r in inc["rules"].items():
        mode = "incremental" if r["incremental"] else "full"
        print(f"  {rule:<22} {r['findings']:>8,} findings {r['seconds']:>7.2f} s"
              f" (CPU {r['cpu_seconds']:.2f} s, {mode})"
              + (f"  ERROR {r['error']}" if r["error"] else ""))
    print(f"incremental, same instant, after {result['added_again_events']:,} more: "
          f"{describe(same)}; {result['incremental_same_instant_ratio']:.1%} of full")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("n", type=int, nargs="?", default=100_000, help="number of cases")
    parser.add_argument("--url", help="the store: a SQLite URL or a PostgreSQL database, "
                        "dropped and created afresh (default: a SQLite file in a temporary "
                        "folder, or in --keep)")
    parser.add_argument("--keep", type=Path, help="keep the store (SQLite: in this folder)")
    parser.add_argument("--scattered", action="store_true",
                        help="the 1 %% increments accepted at any moment of the year (default: "
                        f"in the {RECENT_DAYS} days before the as-of, as a night brings them)")
    parser.add_argument("--mid-month", action="store_true",
                        help="evaluate as of 15 February (local) rather than the first night "
                        "of February: there the 1 %% increments fall partly in January, a month "
                        "just over, which volume_drop and ranking_last must judge again")
    parser.add_argument("--regions", type=int, default=1,
                        help="the store as this many counties (departments dealt out in turn)")
    parser.add_argument("--jobs", type=int, default=0,
                        help="evaluate through run --jobs N (one county per worker; 1: the "
                        "same path in one process) rather than rule by rule, each timed")
    parser.add_argument("--partition", action="store_true",
                        help="PostgreSQL: partition the events by county before evaluating "
                        "(permit-monitor db partition)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--phase", choices=["full", "inc"], help=argparse.SUPPRESS)
    parser.add_argument("--as-of", type=datetime.fromisoformat, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.phase:
        print(json.dumps(phase_jobs(args.url, args.phase, args.as_of, args.jobs) if args.jobs
                         else phase(args.url, args.phase, args.as_of)))
        return
    from benchlib import drop_store, store_url

    folder = args.keep or Path(tempfile.mkdtemp(prefix="bench-evaluate-"))
    folder.mkdir(parents=True, exist_ok=True)
    url = store_url(args.url, folder, "evaluate.db")
    try:
        result = run(url, args.n, args.scattered, MID_MONTH if args.mid_month else AS_OF,
                     args.regions, args.jobs, args.partition)
    finally:
        if not args.keep:
            drop_store(url)
            shutil.rmtree(folder, ignore_errors=True)
    if args.json:
        print(json.dumps(result, ensure_ascii=False))
    else:
        report(result)


if __name__ == "__main__":
    main()
