"""Control center benchmark: ``python bench/web.py [--db PATH] [--requests N] [--seconds S]``.

1. Setup, not timed: the 1,000,000-case store of bench/evaluate.py (made with
   ``bench/report.py 1000000 --keep DIR``: every shipped rule evaluated, about 79,000
   alerts), with a county office (two tier-2 monitors) and a leader added to its catalog,
   escalation run a week after the audit (most alerts at tier 2 under a supervision order,
   as in a county that let them lie), and passwords set. ``--db`` reuses that file.
2. The server: ``permit-monitor web``'s application under uvicorn, in a child process on
   127.0.0.1 and a free port, its clock starting the morning after the escalation.
3. Latency: for each page, ``--requests`` requests one after another by a signed-in
   browser session (HTTP keep-alive): the board and the queue as a tier-2 monitor (the
   whole county) and as a department monitor, the alert page on random alerts, an API
   page. p50/p95/max in ms.
4. Load: 20 sessions (threads, each signed in as itself) cycling through board, queue and
   alert pages for ``--seconds`` seconds; every answer must be 200. Requests go to
   127.0.0.1 only, and the run stops by itself.

Targets: board and queue p95 ≤ 200 ms, alert page p95 ≤ 300 ms, 20 sessions × 60 s with no
errors.
"""

from __future__ import annotations

import argparse
import http.client
import json
import random
import re
import socket
import statistics
import subprocess
import sys
import threading
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

ESCALATED_AT = datetime(2026, 2, 9, 10, 0, tzinfo=timezone.utc)   # a week after the audit
CLOCK = datetime(2026, 2, 10, 1, 0, tzinfo=timezone.utc)          # 09:00 local, next day
PASSWORD = "bench-password-1"
SESSIONS = 20


def setup(db: Path) -> dict:
    """The county office, a leader, escalation and passwords (idempotent)."""
    from sqlalchemy import func, select

    from monitor import accounts
    from monitor.catalog import CatalogData, apply_catalog
    from monitor.config import Config
    from monitor.db import open_store
    from monitor.escalation import escalate
    from monitor.models import Account, Alert, User
    from monitor.config import SHIPPED_RULES
    from monitor.rules.loader import load_rules
    from monitor.supervision import policy_for

    started = time.perf_counter()
    engine = open_store(f"sqlite:///{db}")  # upgrades the schema (migration 0011's indexes)
    apply_catalog(engine, CatalogData(
        [{"code": "JW", "name": "县纪委监委"}],
        [{"id": f"jw-monitor-{k}", "name": f"县监察{k}", "department": "JW",
          "roles": ["monitor_l2"], "phone": None, "email": None} for k in (1, 2)]
        + [{"id": "leader", "name": "县领导", "department": "JW", "roles": ["leader"],
            "phone": None, "email": None}], []))
    config = Config(path=None, base_dir=db.parent, rules_dir=SHIPPED_RULES)
    with engine.connect() as conn:
        escalated = conn.scalar(select(func.count()).select_from(Alert).where(Alert.tier == 2))
    if not escalated:
        escalate(engine, policy_for(config, load_rules([SHIPPED_RULES])), ESCALATED_AT)
    with engine.connect() as conn:
        monitors = conn.scalars(select(User.id).where(User.id.like("%-4"))
                                .order_by(User.id)).all()
        have = set(conn.scalars(select(Account.user_id)))
        counts = dict(conn.execute(select(Alert.tier, func.count()).group_by(Alert.tier)).all())
    users = ["jw-monitor-1", "jw-monitor-2", "leader", *monitors]
    for user in users:
        if user not in have:
            accounts.set_password(engine, user, PASSWORD, ESCALATED_AT, "bench",
                                  must_change=False)
    engine.dispose()
    return {"seconds": round(time.perf_counter() - started, 1), "tier1_monitors": monitors,
            "alerts_by_tier": counts}


def serve(db: Path, port: int) -> None:
    """Child process: the application under uvicorn until killed."""
    import uvicorn

    from monitor.config import Config
    from monitor.db import open_store
    from monitor.config import SHIPPED_RULES
    from monitor.web import create_app

    began = time.monotonic()
    app = create_app(open_store(f"sqlite:///{db}"),
                     Config(path=None, base_dir=db.parent, rules_dir=SHIPPED_RULES),
                     lambda: CLOCK + timedelta(seconds=time.monotonic() - began))
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False,
                timeout_keep_alive=30)


class Browser:
    """One signed-in session over one keep-alive connection to 127.0.0.1."""

    def __init__(self, port: int, user: str):
        self.port, self.cookies = port, {}
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        page = self.get("/login")[1]
        token = re.search(r'name="csrf" value="([^"]+)"', page)[1]
        status, _ = self.request("POST", "/login", urlencode(
            {"csrf": token, "user_id": user, "password": PASSWORD, "next": "/board"}),
            {"Content-Type": "application/x-www-form-urlencoded"})
        if status != 303 or "pm_session" not in self.cookies:
            raise SystemExit(f"login as {user} failed: {status}")

    def request(self, method: str, path: str, body: str | None = None,
                headers: dict | None = None) -> tuple[int, str]:
        headers = dict(headers or {})
        if self.cookies:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        try:
            self.conn.request(method, path, body=body, headers=headers)
            response = self.conn.getresponse()
        except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError):
            self.conn.close()  # the server closed an idle keep-alive connection: reconnect
            self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
            self.conn.request(method, path, body=body, headers=headers)
            response = self.conn.getresponse()
        text = response.read().decode("utf-8", "replace")
        for header in response.msg.get_all("Set-Cookie") or []:
            name, _, rest = header.partition("=")
            self.cookies[name] = rest.split(";", 1)[0]
        return response.status, text

    def get(self, path: str) -> tuple[int, str]:
        return self.request("GET", path)

    def timed(self, path: str) -> tuple[int, float]:
        started = time.perf_counter()
        status, _ = self.get(path)
        return status, (time.perf_counter() - started) * 1000


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(db: Path) -> tuple[subprocess.Popen, int]:
    port = free_port()
    proc = subprocess.Popen([sys.executable, __file__, "--serve", str(port), "--db", str(db)])
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


def summary(ms: list[float]) -> dict:
    ms = sorted(ms)
    return {"n": len(ms), "p50": round(statistics.median(ms), 1),
            "p95": round(ms[max(0, int(len(ms) * 0.95) - 1)], 1), "max": round(ms[-1], 1)}


def latency(port: int, tier1: str, alert_ids: list[int], n: int) -> dict:
    office, monitor = Browser(port, "jw-monitor-1"), Browser(port, tier1)
    rng = random.Random(15)
    plan = {"board (tier 2, county)": (office, lambda: "/board"),
            "queue (tier 2, county)": (office, lambda: "/queue"),
            "queue page 20 (tier 2)": (office, lambda: "/queue?page=20"),
            "board (tier 1)": (monitor, lambda: "/board"),
            "queue (tier 1)": (monitor, lambda: "/queue"),
            "alert page": (office, lambda: f"/alerts/{rng.choice(alert_ids)}"),
            "api alerts list": (office, lambda: "/api/v1/alerts?level=red")}
    out = {}
    for name, (browser, path) in plan.items():
        browser.get(path())  # warm
        times = []
        for _ in range(n):
            status, ms = browser.timed(path())
            if status != 200:
                raise SystemExit(f"{name}: HTTP {status}")
            times.append(ms)
        out[name] = summary(times)
    return out


def load(port: int, users: list[str], visible: dict[str, list[int]], seconds: float) -> dict:
    """``visible``: user → the alert ids their pages may open."""
    results: list[tuple[int, float]] = []
    errors: list[str] = []
    lock = threading.Lock()
    browsers = [Browser(port, u) for u in users]
    stop = time.monotonic() + seconds

    def session(b: Browser, user: str, seed: int) -> None:
        rng = random.Random(seed)
        paths = ["/board", "/queue", None]
        while time.monotonic() < stop:
            path = rng.choice(paths) or f"/alerts/{rng.choice(visible[user])}"
            try:
                status, ms = b.timed(path)
            except (OSError, http.client.HTTPException) as exc:
                with lock:
                    errors.append(f"{path}: {exc}")
                continue
            with lock:
                results.append((status, ms))
                if status != 200:
                    errors.append(f"{path}: HTTP {status}")

    threads = [threading.Thread(target=session, args=(b, u, i))
               for i, (b, u) in enumerate(zip(browsers, users))]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    took = time.perf_counter() - started
    return {"sessions": len(browsers), "seconds": round(took, 1), "requests": len(results),
            "per_second": round(len(results) / took, 1), "errors": len(errors),
            "first_errors": errors[:5], "latency": summary([ms for _, ms in results]),
            "status": {str(s): sum(1 for x, _ in results if x == s)
                       for s in sorted({x for x, _ in results})}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", type=Path, default=Path("/tmp/i15-web-bench/evaluate.db"),
                        help="the 1M-case store of bench/report.py --keep (reused)")
    parser.add_argument("--requests", type=int, default=100, help="requests per page")
    parser.add_argument("--seconds", type=float, default=60, help="length of the load phase")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        return serve(args.db, args.serve)
    if not args.db.exists():
        raise SystemExit(f"{args.db} does not exist: python bench/report.py 1000000 --keep "
                         f"{args.db.parent} makes it (about 8 minutes)")
    made = setup(args.db)
    import sqlite3

    with sqlite3.connect(args.db) as conn:
        by_dept: dict[str, list[int]] = {}
        for i, dept in conn.execute("SELECT id, department FROM alerts ORDER BY id"):
            by_dept.setdefault(dept, []).append(i)
        department = dict(conn.execute("SELECT id, department FROM users"))
    alert_ids = [i for ids in by_dept.values() for i in ids]
    proc, port = start_server(args.db)
    try:
        lat = latency(port, made["tier1_monitors"][0], alert_ids, args.requests)
        users = (["jw-monitor-1", "jw-monitor-2", "leader"] + made["tier1_monitors"])[:SESSIONS]
        users += [users[i % len(users)] for i in range(SESSIONS - len(users))]
        visible = {u: alert_ids if u.startswith(("jw-", "leader")) else by_dept[department[u]]
                   for u in users}
        under_load = load(port, users, visible, args.seconds)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    result = {"setup": made, "alerts": len(alert_ids), "latency_ms": lat, "load": under_load}
    if args.json:
        print(json.dumps(result, ensure_ascii=False))
        return
    print(f"store: {args.db} · {len(alert_ids):,} alerts · by tier {made['alerts_by_tier']}")
    print(f"{'page':<26}{'n':>5}{'p50 ms':>9}{'p95 ms':>9}{'max ms':>9}")
    for name, s in lat.items():
        print(f"{name:<26}{s['n']:>5}{s['p50']:>9}{s['p95']:>9}{s['max']:>9}")
    u = under_load
    print(f"load: {u['sessions']} sessions × {u['seconds']} s: {u['requests']:,} requests "
          f"({u['per_second']}/s), errors {u['errors']}, p50 {u['latency']['p50']} ms, "
          f"p95 {u['latency']['p95']} ms, max {u['latency']['max']} ms, status {u['status']}")
    for e in u["first_errors"]:
        print(f"  {e}")


if __name__ == "__main__":
    main()
