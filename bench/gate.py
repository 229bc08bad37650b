"""Workflow gate benchmark: ``python bench/gate.py N [--url URL] [--reuse] [--concurrency C |
--rate R [--arrivals fixed|poisson]] [--seconds S] [--workers W] [--gate-workers G]
[--drawn D] [--code DIR] [--http auto|h11] [--hold MS] [--looks THREADS] [--json]``.

1. Setup, not timed: the N-case store of bench/evaluate.py (SQLite file in a temporary
   folder, or the PostgreSQL database ``--url`` names; ``--reuse``: the store at ``--url``
   as it is), a service token with scope ``gate``, and the cases of D events (default 3,000)
   drawn from it at random, with their item and latest event: the cases the workflow
   system asks about, so D sets how much of the store the load touches (3,000 cases' pages
   fit in PostgreSQL's shared buffers; 30,000 spread over a million-case store are more
   than the 128 MB the shared server here has).
2. The server: ``permit-monitor web``'s application, built by its factory
   (monitor/web/workers.py), under uvicorn in a child process on 127.0.0.1 and a free port
   (``--workers W``: W worker processes on the one socket, as ``permit-monitor web
   --workers W`` serves it), the shipped rules (step_too_fast, unpaid_fee and
   missing_attachment with ``gate: deny``, same_actor_roles with ``gate: warn``), the
   default budget (``gate.budget_ms`` 300). No access log (the product's has one).
3. Load, one of two kinds; a candidate is one of the drawn cases' next step: a survey
   58 s after its latest event, a review two hours after it, or a certificate an hour
   after it (no actor, so segregation of duties stays out of it). Every answer is logged
   by the server (``gate_log``), every deny on the trail, as in production. A short
   warm-up first, not counted.

   - ``--concurrency C`` (closed loop): C client threads (keep-alive connections) each
     posting one candidate after another for S seconds. The offered load follows the
     server: a slow answer delays the next question, so the latencies say how a server
     does with C requests always in flight, not at a given rate.
   - ``--rate R`` (open loop, bounded load): R candidates a second for S seconds, the
     arrival times fixed in advance (every 1/R s, or ``--arrivals poisson``: exponential
     gaps of mean 1/R s), whatever the server does; a pool of ``--clients`` threads
     (default 64, each its own keep-alive connection) sends each at its time. A latency
     is measured from the candidate's *intended* send time, so a request that waited
     for a free client thread (the server being slow to answer the earlier ones) counts
     its wait: no coordinated omission. The figures say whether the offered rate was
     sustained (decisions — answers not degraded — at ≥ 95 % of it over the run, every
     candidate answered by the end plus 1 s) and how late the generator itself sent
     (``send lag``: if its p99 is large while the server's answers are fast, the
     generator was the limit).

Printed: per decision (allow, warn, deny) n, p50, p99 and p99.9 in ms as the client saw
them; decisions per second; degraded answers and errors (must be 0); the CPU the
application process(es), the PostgreSQL backends and this load generator spent per
decision, and the decisions/s the server's CPU allows on two cores of its own (on a
shared machine the wall-clock figures say more about the neighbours than about the gate);
the load average (1 min) before and after the load; the look itself as the server
logged it (``gate_log.elapsed_ms``, p50 and p99: the latency without the waits for a gate
thread, for the event loop and, a deny, for its batch's commit). ``--code DIR``: serve the
``monitor`` package of another checkout (main's, for before/after figures on one store
with one load generator). ``--hold MS`` (SQLite): another connection holds the write lock
MS ms of every second while the load runs, as an ingest or a run does. ``--looks THREADS``:
no server — THREADS threads of the generator make the gate's look itself (``judge`` on the
guard's own engine, ``gateguard.limited``) one after another for S seconds: looks/s, p50
and p99 per look and CPU per look, the look alone without HTTP, token or log line.
Target (2 cores, 1 M cases): p99 ≤ 50 ms and ≥ 200 decisions/s.
"""

from __future__ import annotations

import argparse
import http.client
import json
import math
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(1, str(Path(__file__).resolve().parent))

CLOCK = datetime(2026, 1, 31, 16, 0, tzinfo=timezone.utc)  # bench/evaluate.py's AS_OF
DRAWN = 3000


def serve(url: str, config: str, port: int, workers: int, http: str = "auto") -> None:
    """Child process: the application under uvicorn until killed, built by the factory
    ``permit-monitor web --workers`` uses (monitor/web/workers.py), its clock starting at
    CLOCK; ``workers`` > 1: that many worker processes on the one socket. ``http``:
    ``auto`` as uvicorn chooses (httptools and uvloop, installed with the package), ``h11``
    with h11 and asyncio (as served before they were)."""
    import logging

    import uvicorn

    from monitor.web.workers import FACTORY, Origin

    Origin.starting(url, config, CLOCK, logging.WARNING).export()
    plain = {"http": "h11", "loop": "asyncio"} if http == "h11" else {}
    uvicorn.run(FACTORY, factory=True, workers=workers, host="127.0.0.1", port=port,
                log_level="warning", access_log=False, timeout_keep_alive=30, **plain)


def write_config(folder: str, gate_workers: int | None = None) -> str:
    """A config.yaml with the shipped rules (and every other setting at its default but
    ``gate.workers``, when given)."""
    from monitor.config import SHIPPED_RULES

    path = Path(folder) / "config.yaml"
    text = f"rules_dir: {json.dumps(str(SHIPPED_RULES))}\n"
    if gate_workers is not None:
        text += f"gate:\n  workers: {gate_workers}\n"
    path.write_text(text, encoding="utf-8")
    return str(path)


def setup(url: str, drawn: int = DRAWN) -> tuple[str, list[dict]]:
    """(a gate token, the drawn cases: case id, item, latest event time)."""
    from sqlalchemy import func, select

    from monitor import accounts
    from monitor.db import open_store
    from monitor.models import Event

    engine = open_store(url)
    _, token = accounts.create_token(engine, CLOCK, "admin:bench", service="bench-oa",
                                     scope="gate")
    e = Event.__table__
    with engine.connect() as conn:
        top = conn.scalar(select(func.max(e.c.id)))
        rng = random.Random(16)
        ids = sorted(rng.sample(range(1, top + 1), min(drawn, top)))
        cases = sorted(set(conn.scalars(select(e.c.case_id).where(e.c.id.in_(ids)))))
        rows = conn.execute(select(e.c.case_id, func.min(e.c.item_code),
                                   func.max(e.c.occurred_at))
                            .where(e.c.case_id.in_(cases)).group_by(e.c.case_id)).all()
    engine.dispose()
    drawn = [{"case_id": c, "item_code": item,
              "last": (t if t.tzinfo else t.replace(tzinfo=timezone.utc))} for c, item, t in rows]
    return token, drawn


def candidate(rng: random.Random, case: dict) -> dict:
    step, after = rng.choice([("survey", timedelta(seconds=58)), ("review", timedelta(hours=2)),
                              ("certificate_printed", timedelta(hours=1))])
    at = case["last"] + after
    return {"event_id": f"bench-{rng.getrandbits(48):x}", "case_id": case["case_id"],
            "item_code": case["item_code"], "step": step, "occurred_at": at.isoformat()}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(url: str, config: str, workers: int, code: str | None = None,
                 http: str = "auto") -> tuple[subprocess.Popen, int]:
    port = free_port()
    proc = subprocess.Popen([sys.executable, __file__, "0", "--serve", str(port), "--url", url,
                             "--config", config, "--workers", str(workers), "--http", http,
                             *(("--code", code) if code else ())])
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return proc, port
        except OSError:
            if proc.poll() is not None:
                raise SystemExit("the server did not start")
            time.sleep(0.2)
    proc.kill()
    raise SystemExit("the server did not start in 120 s")


class Client:
    """One keep-alive connection to 127.0.0.1 posting candidates with the gate token."""

    def __init__(self, port: int, token: str):
        self.port, self.token = port, token
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)

    def ask(self, body: dict) -> tuple[int, dict, float]:
        data = json.dumps(body)
        headers = {"Authorization": f"Bearer {self.token}", "Content-Type": "application/json"}
        started = time.perf_counter()
        try:
            self.conn.request("POST", "/api/v1/gate", body=data, headers=headers)
            response = self.conn.getresponse()
        except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError):
            self.conn.close()
            self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
            self.conn.request("POST", "/api/v1/gate", body=data, headers=headers)
            response = self.conn.getresponse()
        answer = json.loads(response.read() or b"{}")
        return response.status, answer, (time.perf_counter() - started) * 1000


def load(port: int, token: str, drawn: list[dict], concurrency: int, seconds: float) -> dict:
    results: list[tuple[str, float, bool]] = []
    errors: list[str] = []
    lock = threading.Lock()
    stop = time.monotonic() + seconds

    def worker(seed: int) -> None:
        rng, client = random.Random(seed), Client(port, token)
        while time.monotonic() < stop:
            try:
                status, answer, ms = client.ask(candidate(rng, rng.choice(drawn)))
            except (OSError, http.client.HTTPException, ValueError) as exc:
                with lock:
                    errors.append(str(exc))
                continue
            with lock:
                if status != 200:
                    errors.append(f"HTTP {status}: {answer}")
                else:
                    results.append((answer["decision"], ms, bool(answer.get("degraded"))))

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(concurrency)]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    took = time.perf_counter() - started
    return {"mode": "concurrency", "concurrency": concurrency,
            **_figures(results, errors, took)}


def paced(port: int, token: str, drawn: list[dict], rate: float, seconds: float,
          clients: int = 64, arrivals: str = "fixed") -> dict:
    """Open loop: ``rate`` candidates a second for ``seconds``, each sent at its intended
    time by the first free one of ``clients`` threads; latency from the intended time."""
    rng = random.Random(16)
    gaps = ((rng.expovariate(rate) for _ in iter(int, 1)) if arrivals == "poisson"
            else (1 / rate for _ in iter(int, 1)))
    offsets, t = [], 0.0
    for gap in gaps:
        if t >= seconds:
            break
        offsets.append(t)
        t += gap
    bodies = [candidate(rng, rng.choice(drawn)) for _ in offsets]
    results: list[tuple[str, float, bool]] = []
    lags: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()
    taken = iter(range(len(offsets)))
    start = time.perf_counter() + 0.2  # every thread ready before the first arrival

    def worker() -> None:
        client = Client(port, token)
        while True:
            with lock:
                k = next(taken, None)
            if k is None:
                return
            intended = start + offsets[k]
            early = intended - time.perf_counter()
            if early > 0:
                time.sleep(early)
            sent = time.perf_counter()
            try:
                status, answer, _ = client.ask(bodies[k])
            except (OSError, http.client.HTTPException, ValueError) as exc:
                with lock:
                    errors.append(str(exc))
                continue
            ms = (time.perf_counter() - intended) * 1000
            with lock:
                lags.append((sent - intended) * 1000)
                if status != 200:
                    errors.append(f"HTTP {status}: {answer}")
                else:
                    results.append((answer["decision"], ms, bool(answer.get("degraded"))))

    threads = [threading.Thread(target=worker) for _ in range(clients)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    took = time.perf_counter() - start
    decided = sum(1 for *_, degraded in results if not degraded)
    sustained = (decided >= 0.95 * rate * took and not errors
                 and took <= seconds + 1.0 and len(results) == len(offsets))
    out = _figures(results, errors, took)
    out.update({"mode": "rate", "offered_per_second": rate, "arrivals": arrivals,
                "clients": clients, "offered": len(offsets), "sustained": sustained,
                "send_lag": summary(lags)})
    return out


def _figures(results: list[tuple[str, float, bool]], errors: list[str], took: float) -> dict:
    by = {d: summary([ms for x, ms, _ in results if x == d])
          for d in ("allow", "warn", "deny") if any(x == d for x, _, _ in results)}
    return {"seconds": round(took, 1), "decisions": len(results),
            "per_second": round(len(results) / took, 1),
            "degraded": sum(1 for *_, g in results if g), "errors": len(errors),
            "first_errors": errors[:5], "all": summary([ms for _, ms, _ in results]),
            "by_decision": by}


def looks(url: str, drawn: list[dict], threads: int, seconds: float, hold: int) -> dict:
    """``--looks``: the look alone, as the web app's guard makes it (its engine, its
    catalog memo), in ``threads`` threads for ``seconds``: no HTTP, no token, no log line."""
    from monitor.catalogmemo import CatalogMemo
    from monitor.config import SHIPPED_RULES, load_config
    from monitor.db import open_store
    from monitor.gate import judge
    from monitor.gateguard import limited
    from monitor.rules.loader import load_rules

    config, rules, memo = load_config(None), load_rules([SHIPPED_RULES]), CatalogMemo()
    store = open_store(url)
    engine = limited(store, config.gate.budget_ms)
    latencies: list[float] = []
    lock = threading.Lock()
    stop = time.monotonic() + seconds

    def worker(seed: int) -> None:
        rng = random.Random(seed)
        while time.monotonic() < stop:
            started = time.perf_counter()
            with engine.connect() as conn:
                judge(conn, config, rules, candidate(rng, rng.choice(drawn)), CLOCK, memo=memo)
            with lock:
                latencies.append((time.perf_counter() - started) * 1000)

    pool = [threading.Thread(target=worker, args=(k,)) for k in range(threads)]
    cpu, started = time.process_time(), time.perf_counter()
    with Writer(url, hold):
        for t in pool:
            t.start()
        for t in pool:
            t.join()
    took, cpu = time.perf_counter() - started, time.process_time() - cpu
    engine.dispose()
    store.dispose()
    s = summary(latencies)
    import monitor

    return {"looks": s["n"], "per_second": round(s["n"] / took, 1), "p50": s["p50"],
            "p99": s["p99"], "cpu_ms_per_look": round(cpu * 1000 / s["n"], 2),
            "threads": threads, "hold_ms": hold, "load_average": load_average(),
            "code": str(Path(monitor.__file__).resolve().parent.parent)}


class Writer:
    """``--hold MS``: a thread holding the SQLite store's write lock (``BEGIN IMMEDIATE``)
    for MS ms of every second, as an ingest's or a run's transactions do, rolled back."""

    def __init__(self, url: str, hold_ms: int):
        self.path = url.split("sqlite:///", 1)[1] if hold_ms and "sqlite" in url else None
        self.hold, self.stop, self.held = hold_ms / 1000, threading.Event(), 0

    def __enter__(self) -> "Writer":
        if self.path:
            self.thread = threading.Thread(target=self._run, daemon=True)
            self.thread.start()
        return self

    def _run(self) -> None:
        import sqlite3

        conn = sqlite3.connect(self.path, timeout=30, isolation_level=None)
        while not self.stop.wait(1 - self.hold):
            conn.execute("BEGIN IMMEDIATE")
            time.sleep(self.hold)
            conn.execute("ROLLBACK")
            self.held += 1
        conn.close()

    def __exit__(self, *exc) -> None:
        self.stop.set()
        if self.path:
            self.thread.join()


def last_log_id(url: str) -> int:
    from sqlalchemy import create_engine, func, select

    from monitor.models import GateLog

    engine = create_engine(url)
    with engine.connect() as conn:
        last = conn.scalar(select(func.max(GateLog.id))) or 0
    engine.dispose()
    return last


def looked(url: str, after: int) -> dict:
    """The server's own time per decision, as logged (``gate_log.elapsed_ms``: from the
    gate thread taking it up to its verdict — neither the wait for a gate thread nor a
    deny's wait for its batch's commit), over the load's answers not degraded: how much
    of the latency the client saw was the look itself."""
    from sqlalchemy import create_engine, select

    from monitor.models import GateLog

    engine = create_engine(url)
    with engine.connect() as conn:
        ms = list(conn.scalars(select(GateLog.elapsed_ms).where(
            GateLog.id > after, GateLog.degraded.is_(False),
            GateLog.elapsed_ms.is_not(None))))
    engine.dispose()
    return summary([float(m) for m in ms])


def load_average() -> float:
    return float(Path("/proc/loadavg").read_text().split()[0])


def tree_cpu(pid: int) -> float:
    """CPU seconds of a process and its live descendants (the uvicorn workers)."""
    from benchlib import _proc

    total, todo = 0.0, [pid]
    while todo:
        p = todo.pop()
        figures = _proc(p)
        total += figures[0] if figures else 0.0
        for task in Path(f"/proc/{p}/task").glob("*/children"):
            todo += [int(c) for c in task.read_text().split()]
    return total


def summary(ms: list[float]) -> dict:
    if not ms:
        return {"n": 0}
    ms = sorted(ms)
    return {"n": len(ms), "p50": round(statistics.median(ms), 1),
            "p99": _rank(ms, 0.99), "p99_9": _rank(ms, 0.999), "max": round(ms[-1], 1)}


def _rank(ordered: list[float], q: float) -> float:
    """The q-quantile by nearest rank (the smallest value ≥ q of the sample)."""
    return round(ordered[min(len(ordered), max(1, math.ceil(len(ordered) * q))) - 1], 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("n", type=int, nargs="?", default=100_000, help="number of cases")
    parser.add_argument("--url", help="the store: a PostgreSQL database (dropped and made "
                                      "again unless --reuse) or a SQLite URL")
    parser.add_argument("--reuse", action="store_true", help="use the store at --url as is")
    parser.add_argument("--concurrency", type=int, default=8,
                        help="closed loop: client threads, each asking again on an answer")
    parser.add_argument("--rate", type=float,
                        help="open loop: candidates offered per second (instead of "
                             "--concurrency), latency from each one's intended send time")
    parser.add_argument("--arrivals", choices=("fixed", "poisson"), default="fixed",
                        help="--rate's arrival times: evenly spaced, or exponential gaps")
    parser.add_argument("--clients", type=int, default=64,
                        help="--rate's sending threads (each a keep-alive connection)")
    parser.add_argument("--code", help="the checkout whose monitor package is served "
                                       "(default: this one; e.g. main's, for before/after)")
    parser.add_argument("--seconds", type=float, default=30, help="length of the load phase")
    parser.add_argument("--workers", type=int, default=1,
                        help="uvicorn worker processes serving the application")
    parser.add_argument("--gate-workers", type=int, metavar="N",
                        help="the server's gate.workers (default: the setting's default)")
    parser.add_argument("--drawn", type=int, default=DRAWN,
                        help="events drawn at random from the store: their cases are the ones asked about")
    parser.add_argument("--http", choices=("auto", "h11"), default="auto",
                        help="uvicorn's HTTP parser and loop: as it chooses (httptools, "
                             "uvloop), or h11 and asyncio (as main served before them)")
    parser.add_argument("--looks", type=int, default=0, metavar="THREADS",
                        help="no server: THREADS threads of this process ask the gate's look "
                             "itself (monitor.gate.judge on the guard's own connections) one "
                             "candidate after another; looks/s, latency, CPU per look")
    parser.add_argument("--hold", type=int, default=0, metavar="MS",
                        help="SQLite: another connection holds the store's write lock for MS "
                             "ms of every second during the load (an ingest's or a run's "
                             "transactions)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--config", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.rate is not None and args.rate <= 0:
        parser.error("--rate must be above 0")
    if args.code:
        sys.path.insert(0, str(Path(args.code).resolve()))
    if args.serve:
        return serve(args.url, args.config, args.serve, args.workers, args.http)
    folder = tempfile.mkdtemp(prefix="pm-gate-bench-")
    url = args.url or f"sqlite:///{folder}/gate.db"
    made = {}
    if not args.reuse:
        from evaluate import prepare

        made = prepare(url, args.n)
    token, drawn = setup(url, args.drawn)
    if args.looks:
        out = looks(url, drawn, args.looks, args.seconds, args.hold)
        print(json.dumps(out) if args.json else
              f"looks: {args.looks} threads × {args.seconds} s"
              f"{f' (write lock held {args.hold} ms/s)' if args.hold else ''}: "
              f"{out['per_second']} looks/s, p50 {out['p50']} ms, p99 {out['p99']} ms, "
              f"CPU {out['cpu_ms_per_look']} ms per look ({out['code']})")
        return
    proc, port = start_server(url, write_config(folder, args.gate_workers), args.workers,
                              args.code, args.http)
    try:
        from benchlib import ServerMeter

        warm = load(port, token, drawn, 2, 3)
        time.sleep(0.5)  # the warm-up's log lines committed (the writer's batches: ms)
        logged_before = last_log_id(url)
        app_cpu, own_cpu, load_before = tree_cpu(proc.pid), time.process_time(), load_average()
        with ServerMeter(url) as server, Writer(url, args.hold):
            result = (paced(port, token, drawn, args.rate, args.seconds, args.clients,
                            args.arrivals) if args.rate is not None else
                      load(port, token, drawn, args.concurrency, args.seconds))
        result["app_cpu_s"] = round(tree_cpu(proc.pid) - app_cpu, 2)
        result["db_cpu_s"] = round(server.cpu_seconds, 2) if server.figures() else None
        result["generator_cpu_s"] = round(time.process_time() - own_cpu, 2)
        result["load_average"] = [load_before, load_average()]
        cpu = result["app_cpu_s"] + (result["db_cpu_s"] or 0)
        n = max(result["decisions"], 1)
        result["cpu_ms_per_decision"] = round(cpu * 1000 / n, 1)
        result["generator_cpu_ms_per_decision"] = round(result["generator_cpu_s"] * 1000 / n, 1)
        result["two_core_capacity_per_s"] = round(2000 / max(result["cpu_ms_per_decision"],
                                                             0.1))
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    result["look_ms"] = looked(url, logged_before)  # the server stopped: every line written
    out = {"cases": args.n, "store": url.split("@")[-1], "workers": args.workers,
           "gate_workers": args.gate_workers,
           "hold_ms": args.hold,
           "drawn": len(drawn), "setup": made, "http": args.http,
           "code": str(Path(args.code or ROOT).resolve()),
           "warm_up": warm["decisions"], "load": result}
    if args.json:
        print(json.dumps(out, ensure_ascii=False))
        return
    r = result
    print(f"store: {out['store']} · {args.n:,} cases · {len(drawn):,} cases drawn · "
          f"{args.workers} server process(es)"
          f"{f' · write lock held {args.hold} ms of every second' if args.hold else ''}")
    if r["mode"] == "rate":
        lag = r["send_lag"]
        print(f"load: {r['offered_per_second']}/s offered ({r['arrivals']} arrivals, "
              f"{r['offered']:,} candidates, {r['clients']} client threads) × "
              f"{args.seconds} s: {r['decisions']:,} decisions in {r['seconds']} s "
              f"({r['per_second']}/s), {'sustained' if r['sustained'] else 'NOT sustained'}; "
              f"degraded {r['degraded']}, errors {r['errors']}; send lag p50 "
              f"{lag.get('p50', '-')} / p99 {lag.get('p99', '-')} ms")
    else:
        print(f"load: {r['concurrency']} clients × {r['seconds']} s: {r['decisions']:,} "
              f"decisions ({r['per_second']}/s), degraded {r['degraded']}, "
              f"errors {r['errors']}")
    print(f"{'decision':<10}{'n':>7}{'p50 ms':>9}{'p99 ms':>9}{'p99.9 ms':>10}{'max ms':>9}")
    for name, s in [*r["by_decision"].items(), ("all", r["all"])]:
        print(f"{name:<10}{s['n']:>7}{s.get('p50', '-'):>9}{s.get('p99', '-'):>9}"
              f"{s.get('p99_9', '-'):>10}{s.get('max', '-'):>9}")
    if r.get("look_ms", {}).get("n"):
        print(f"the look itself, as the server logged it: p50 {r['look_ms']['p50']} / p99 "
              f"{r['look_ms']['p99']} ms over {r['look_ms']['n']:,} decisions")
    print(f"CPU: application {r['app_cpu_s']} s, database {r['db_cpu_s']} s = "
          f"{r['cpu_ms_per_decision']} ms per decision: at most "
          f"{r['two_core_capacity_per_s']} decisions/s on 2 cores of its own; load "
          f"generator {r['generator_cpu_ms_per_decision']} ms per decision")
    print(f"load average (1 min): {r['load_average'][0]} before, "
          f"{r['load_average'][1]} after")
    for e in r["first_errors"]:
        print(f"  {e}")


if __name__ == "__main__":
    main()
