"""Integrity benchmark: ``python bench/integrity.py N [--url URL] [--keep DIR] [--json]``.

How long ``audit verify`` takes on a big county, now that it replays the trail against
every supervised record (issue 17), beside the chain check it did before.

1. Setup, not timed: N cases of bench/evaluate.py's generator in a fresh store (SQLite,
   or the PostgreSQL database of ``--url``), every shipped rule evaluated in full as of its
   AS_OF (alerts, holds and their trail entries, state payloads included), a county office
   (two tier-2 monitors) added, escalation a week later (most alerts go to tier 2 with a
   supervision order), then tier 1 resolves 2,000 of them and tier 2 confirms half of
   those (dispositions, verdicts): each action its own transaction, as people act.
2. Timed, each in a child process (its own peak RSS): ``chain`` — the hash chain alone
   (``audit verify`` before this issue); ``state`` — the replay of the trail and the
   comparison with every row of the supervised tables, on its own; ``verify`` — both as
   ``audit verify`` now runs them: the replay folded into the chain's pass over the trail.

Target: ``verify`` ≤ 60 s for the 1,000,000-case store (nightly-able).
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(1, str(Path(__file__).resolve().parent))

ESCALATED_AT = datetime(2026, 2, 9, 10, 0, tzinfo=timezone.utc)  # a week after the audit
ACTED_AT = ESCALATED_AT + timedelta(days=1)
ACTIONS = 2000


def setup(url: str, cases: int) -> dict:
    import evaluate
    from sqlalchemy import func, select

    from monitor import supervision as sv
    from monitor.catalog import CatalogData, apply_catalog
    from monitor.config import SHIPPED_RULES, Config
    from monitor.db import open_store
    from monitor.engine import evaluate as run_rules
    from monitor.escalation import escalate
    from monitor.models import Alert, TrailEntry
    from monitor.rules.loader import load_rules
    from monitor.supervision import policy_for

    made = evaluate.prepare(url, cases)
    engine = open_store(url)
    apply_catalog(engine, CatalogData(
        [{"code": "JW", "name": "县纪委监委"}],
        [{"id": f"jw-monitor-{k}", "name": f"县监察{k}", "department": "JW",
          "roles": ["monitor_l2"], "phone": None, "email": None} for k in (1, 2)], []))
    config = Config(path=None, base_dir=ROOT, rules_dir=SHIPPED_RULES)
    rules = load_rules([SHIPPED_RULES])
    started = time.perf_counter()
    run_rules(engine, config, evaluate.AS_OF, rules=rules)
    evaluated = time.perf_counter() - started
    escalate(engine, policy_for(config, rules), ESCALATED_AT)
    with engine.connect() as conn:
        todo = conn.execute(select(Alert.id, Alert.assigned_to).where(
            Alert.tier == 2, Alert.status == "open").order_by(Alert.id).limit(ACTIONS)).all()
    acted = time.perf_counter()
    for i, (alert_id, to) in enumerate(todo):
        if not to:
            continue
        sv.resolve(engine, alert_id, to[0], ACTED_AT, "rectified", "已整改")
        if i % 2:
            sv.confirm(engine, alert_id, "jw-monitor-1", ACTED_AT, "同意")
    acted = time.perf_counter() - acted
    with engine.connect() as conn:
        entries = conn.scalar(select(func.count()).select_from(TrailEntry))
        alerts = conn.scalar(select(func.count()).select_from(Alert))
    engine.dispose()
    return {**made, "evaluate_s": round(evaluated, 1), "actions": len(todo),
            "actions_s": round(acted, 1), "trail_entries": entries, "alerts": alerts}


def phase(url: str, kind: str) -> dict:
    """Child process: one check, timed."""
    from benchlib import ServerMeter, peak_rss_mb
    from monitor import supervised, trailcheck
    from monitor.db import open_store

    engine = open_store(url)
    out: dict = {}
    with ServerMeter(url) as server:
        started, cpu = time.perf_counter(), time.process_time()
        if kind == "chain":
            out["entries"] = trailcheck.verify(engine).entries
        if kind == "state":
            out["rows"] = supervised.check(engine).rows
        if kind == "verify":  # as audit verify runs them: the replay folded in the chain's pass
            replayed = supervised.Replayed()
            out["entries"] = trailcheck.verify(engine, replayed.visit).entries
            out["rows"] = supervised.check(engine, replayed).rows
        out.update(seconds=round(time.perf_counter() - started, 2),
                   cpu_seconds=round(time.process_time() - cpu, 2))
    engine.dispose()
    return {**out, **server.figures(), "peak_rss_mb": peak_rss_mb()}


def child(url: str, kind: str) -> dict:
    out = subprocess.run([sys.executable, __file__, "0", "--phase", kind, "--url", url],
                         capture_output=True, text=True)
    if out.returncode:
        sys.exit(f"{kind} failed:\n{out.stderr}")
    return json.loads(out.stdout)


def run(url: str, cases: int) -> dict:
    made = setup(url, cases)
    return {"cases": cases, **made,
            **{kind: child(url, kind) for kind in ("chain", "state", "verify")}}


def describe(p: dict) -> str:
    server = (f", server CPU {p['server_cpu_seconds']:.2f} s" if "server_cpu_seconds" in p
              else "")
    return f"{p['seconds']:.2f} s (CPU {p['cpu_seconds']:.2f} s{server}), peak RSS " \
           f"{p['peak_rss_mb']} MB"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("n", type=int, nargs="?", default=100_000, help="number of cases")
    parser.add_argument("--url", help="the store (dropped and created afresh); default: a "
                        "SQLite file in a temporary folder, or in --keep")
    parser.add_argument("--keep", type=Path, help="keep the store (SQLite: in this folder)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--phase", choices=["chain", "state", "verify"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.phase:
        print(json.dumps(phase(args.url, args.phase)))
        return
    from benchlib import drop_store, store_url

    folder = args.keep or Path(tempfile.mkdtemp(prefix="bench-integrity-"))
    folder.mkdir(parents=True, exist_ok=True)
    url = store_url(args.url, folder, "integrity.db")
    try:
        result = run(url, args.n)
    finally:
        if not args.keep:
            drop_store(url)
            shutil.rmtree(folder, ignore_errors=True)
    if args.json:
        print(json.dumps(result, ensure_ascii=False))
        return
    print(f"cases: {result['cases']:,} · alerts {result['alerts']:,} · trail entries "
          f"{result['trail_entries']:,} · {result['actions']:,} alerts resolved (half "
          f"confirmed) in {result['actions_s']} s")
    print(f"chain only (audit verify before):  {describe(result['chain'])}")
    print(f"state replay and comparison:       {describe(result['state'])} · "
          f"{result['state']['rows']:,} rows")
    print(f"audit verify now (both):           {describe(result['verify'])}")


if __name__ == "__main__":
    main()
