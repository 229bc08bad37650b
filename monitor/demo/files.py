"""The files: catalog.yaml, events.csv (with its broken rows), receipts.csv, activity.csv
(the monitoring log), planted.json."""

from __future__ import annotations

import csv
import json
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import yaml

from ..ingest.events import COLUMNS
from .catalog import ALL_IN_ONE, CENT, DEPARTMENTS, SURVEY_REPORT, Item, P
from .activity import write_activity
from .voice import write_voice
from .county import County
from .scenarios import SCENARIOS
from .timeline import generate
from .window import AS_OF, FIRST_DAY, LAST_DAY


def _catalog_yaml(items: list[Item], users: list[dict]) -> str:
    doc = {
        "departments": [{"code": c, "name": n} for c, n in DEPARTMENTS],
        "users": users,
        "items": [{"code": i.code, "name": i.name, "department": i.department,
                   "category": i.category, "promised_days": i.promised, "legal_days": i.legal,
                   "fee": int(i.fee), "min_minutes": i.min_minutes,
                   "min_case_minutes": i.min_case_minutes,
                   "required_attachments": i.attachments} for i in items],
    }
    head = ("# Demo county catalog (permit-monitor demo): departments, staff, power items.\n"
            "# promised_days / legal_days are working days; fee in yuan; min_minutes: the least\n"
            "# time a step may follow the previous one; required_attachments: control nodes.\n")
    return head + yaml.safe_dump(doc, allow_unicode=True, sort_keys=False,
                                 default_flow_style=None, width=120)


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.isoformat(timespec="seconds")
    if isinstance(value, Decimal):
        return str(value.quantize(CENT))
    return str(value)


def _csv_rows(events: list[dict[str, Any]]) -> tuple[list[dict[str, str]], list[dict[str, Any]]]:
    """The log as CSV rows, with three broken rows and two rows exported twice."""
    rows = [{c: _text(e.get(c)) for c in COLUMNS} for e in events]
    n = len(rows)
    fee_row = next(r for r in rows[n // 2:] + rows if r["step"] == "fee_paid" and r["amount"])
    bad = [dict(rows[n // 4], event_id=rows[n // 4]["case_id"] + "-91",
                occurred_at="09/10/2025 9:30"),  # day or month first? refused
           dict(rows[n // 2], event_id=rows[n // 2]["case_id"] + "-92",
                item_code=rows[n // 2]["item_code"][:-1]),
           dict(fee_row, event_id=fee_row["case_id"] + "-93", amount="-" + fee_row["amount"])]
    twice = [dict(rows[n // 3]), dict(rows[2 * n // 3])]  # the export overlapped
    for at, row in sorted(zip((n // 4, n // 2, 3 * n // 4), bad), reverse=True):
        rows.insert(at, row)
    rows += twice
    line = {r["event_id"]: k for k, r in enumerate(rows, start=2) if r["event_id"].endswith(
        ("-91", "-92", "-93"))}
    quarantined = [{"line": line[b["event_id"]], "event_id": b["event_id"], "reason": r}
                   for b, r in zip(bad, ("bad_timestamp", "unknown_item", "bad_amount"))]
    return rows, quarantined


def _receipts(county: County, events: list[dict[str, Any]]) -> list[dict[str, str]]:
    """Treasury receipts = online payments per department-month; CGJ's exceed them."""
    periods = [f"{y}-{m:02d}" for y, m in ((2025, 8), (2025, 9), (2025, 10), (2025, 11),
                                            (2025, 12), (2026, 1))]
    paying = [d for d, _ in DEPARTMENTS
              if any(i.department == d and (i.fee or i.category == P) for i in county.items)]
    total = {(d, p): Decimal(0) for d in paying for p in periods}
    for e in events:
        if e["step"] == "fee_paid" and e.get("channel") == "online":
            total[e["department"], e["occurred_at"].strftime("%Y-%m")] += e["amount"]
    gap = Decimal(county.rng.randint(130_000_000, 139_999_999)) / 100  # like the county's 1.3 M
    shares = [county.rng.randint(50, 150) for _ in periods]
    gaps = [(gap * s / sum(shares)).quantize(CENT) for s in shares]
    gaps[-1] += gap - sum(gaps)
    for p, g in zip(periods, gaps):
        total["CGJ", p] += g
    county.details["offline_penalties"] = {
        "department": "CGJ", "total_gap": str(gap),
        "gap_by_period": {p: str(g) for p, g in zip(periods, gaps)}}
    return [{"department": d, "period": p, "amount": str(total[d, p].quantize(CENT))}
            for d in paying for p in periods]


def _ground_truth(county: County, quarantined: list[dict[str, Any]]) -> dict[str, Any]:
    ids = {k: sorted(c.case_id for c in cases) for k, cases in county.planted.items()}
    first = {k: cases[0].case_id for k, cases in county.planted.items() if cases}
    batch = [c.opts["batch_recorded"] for c in county.planted["batch_entry"]]
    details = {
        "too_fast_step": {"case_id": first["too_fast_step"], "step": "survey",
                          "after": "accept", "seconds": 58},
        "one_person_approval": {"case_id": first["one_person_approval"], "actor": ALL_IN_ONE,
                                "accept_to_decide_seconds": 153},
        "batch_entry": {"actor": county.batch_clerk, "events": len(batch),
                        "recorded_from": min(batch).isoformat(),
                        "recorded_to": max(batch).isoformat()},
        "overdue_promised": {"case_id": first["overdue_promised"], "accepted": "2025-09-30",
                             "decided_on_working_day": county.planted["overdue_promised"][0]
                             .opts["day"], "note": "overdue only because Saturday 2025-10-11 "
                             "is a make-up working day"},
        "holiday_not_overdue": {"case_id": first["holiday_not_overdue"],
                                "accepted": "2025-09-30"},
        "missing_attachment": {"case_id": first["missing_attachment"], "step": "survey",
                               "missing": SURVEY_REPORT},
        **county.details,
    }
    anomalies = {k: ids[k] for k, s in SCENARIOS.items() if s.anomaly}
    anomalies["offline_penalties"] = []  # run offline: the cases are not in the log at all
    return {
        "as_of": AS_OF.isoformat(), "window": [FIRST_DAY.isoformat(), LAST_DAY.isoformat()],
        "anomalies": anomalies,
        "controls": {k: ids[k] for k, s in SCENARIOS.items() if not s.anomaly},
        "details": details,
        "descriptions": {**{k: s.description for k, s in SCENARIOS.items()},
                         "offline_penalties": "CGJ's treasury receipts exceed its online "
                                              "penalties every month (网下运行)"},
        "quarantined": quarantined,
    }


def write_files(directory: Path, county: County) -> tuple[dict[str, Path], dict[str, Any]]:
    files = {name: directory / f"{name}.{ext}" for name, ext in
             (("catalog", "yaml"), ("events", "csv"), ("receipts", "csv"), ("planted", "json"))}
    files["catalog"].write_text(_catalog_yaml(county.items, county.users), encoding="utf-8")
    events = generate(county)
    rows, quarantined = _csv_rows(events)
    for name, table, header in (("events", rows, COLUMNS),
                                ("receipts", _receipts(county, events),
                                 ("department", "period", "amount"))):
        with open(files[name], "w", encoding="utf-8", newline="") as out:
            writer = csv.DictWriter(out, header, lineterminator="\n")
            writer.writeheader()
            writer.writerows(table)
    files["activity"] = directory / "activity.csv"
    absence = write_activity(files["activity"], county)  # last: the rest stays as it was
    voice_files, voice = write_voice(directory, county, events, county.seed)
    files.update(voice_files)
    truth = _ground_truth(county, quarantined)
    truth["anomalies"]["inactive_monitor"] = [absence["user_id"]]
    truth["details"]["inactive_monitor"] = absence
    truth["descriptions"]["inactive_monitor"] = ("a department's monitor not logged in for "
                                                 "the log's last working days")
    truth["anomalies"].update(voice["anomalies"])
    truth["details"]["not_contradictions"] = voice["controls"]
    truth["descriptions"].update({
        "bad_rating": "差评 (score 1–2) to be verified and rectified",
        "rating_contradiction": "a 差评 or fee complaint the log contradicts",
        "complaint": "efficiency complaints (12345, 窗口, 信访)"})
    files["planted"].write_text(json.dumps(truth, ensure_ascii=False, indent=2) + "\n",
                                encoding="utf-8")
    return files, truth
