"""Assembling a report: the figures of :mod:`.figures` into the tables of :mod:`.model`."""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from datetime import datetime
from statistics import mean

from sqlalchemy import Engine

from ..config import Config
from ..stats import supervision_counts
from . import figures as fg
from .labels import labeler
from .model import Column, Report, Table, change, rate
from .period import Period

RED_LIST_HTML = 300  # the HTML lists this many red findings; the other formats all of them
TOP = 10


def build_report(engine: Engine, config: Config, period: Period, now: datetime,
                 department: str | None = None) -> Report:
    """The report for ``period`` (and one department, or all), as of ``now``."""
    tz, cal, label = config.tz, config.calendar(), labeler(config.language)
    scope = fg.Scope(period, tz, department)
    rep = Report(label("report"), period, period.previous(), period.year_before(), department,
                 now, config.language)
    with engine.connect() as conn:
        depts = fg.departments(conn, scope)
        if department and department not in depts:
            from ..errors import NotFound

            raise NotFound(f"no department '{department}' in the catalog")
        cases = fg.case_counts(conn, scope)
        done = fg.completions(conn, scope, cal)
        alerts = fg.alert_counts(conn, scope)
        open_esc = fg.open_escalated(conn, scope)
        per_day = fg.findings_per_day(conn, scope)
        items = fg.top(conn, scope, "item_code", TOP)
        actors = fg.top(conn, scope, "actor", TOP)
        item_names = fg.item_names(conn, [r[0] for r in items])
        actor_names = fg.user_names(conn, [r[0] for r in actors])
        reds = list(fg.red_alerts(conn, scope))
        online = fg.online_rates(conn, scope, cal)
        spot = fg.spot_checks(conn, scope)
    sup = _supervision(engine, tz, period, department)
    codes = sorted(set(depts) | {d for d, *_ in alerts if d in depts or d == "-"} - {"-"})
    rows = [{"department": d, "name": depts.get(d, d)} for d in codes]

    def by_dept(fill):
        out = [dict(r, **fill(r["department"])) for r in rows]
        return out

    def finding_n(d, bucket, level=None):
        return sum(n for (dd, _, lvl, b), n in alerts.items()
                   if dd == d and b == bucket and (level is None or lvl == level))

    def cases_row(d):
        c = done.get(d, fg.Completion())
        return {"accepted": cases.get((d, "accept", "cur"), 0), "completed": c.completed,
                "completed_mom": change(c.completed, cases.get((d, "complete", "prev"))),
                "completed_yoy": change(c.completed, cases.get((d, "complete", "yoy"))),
                "on_time_rate": rate(c.on_time, c.completed),
                "avg_days": round(c.days_total / c.days_cases, 1) if c.days_cases else None}

    def findings_row(d):
        n = finding_n(d, "cur")
        o, x = open_esc.get(d, (0, 0))
        return {**{lvl: finding_n(d, "cur", lvl) for lvl in fg.LEVELS}, "findings": n,
                "findings_mom": change(n, finding_n(d, "prev")),
                "findings_yoy": change(n, finding_n(d, "yoy")), "open": o, "escalated": x}

    def sup_row(d):
        s = sup.get(d)
        times = s["times"] if s else []
        return {"reminders": s["reminders"] if s else 0, "orders": s["orders"] if s else 0,
                **{k: (s["dispositions"][k] if s else 0)
                   for k in ("rectified", "explained", "false_positive")},
                "median_resolve_hours": _median_hours(times)}

    t_cases = Table("t_cases", [Column("department", "text"), Column("name", "text"),
                                Column("accepted"), Column("completed"),
                                Column("completed_mom", "change"), Column("completed_yoy", "change"),
                                Column("on_time_rate", "pct"), Column("avg_days", "num")],
                    by_dept(cases_row))
    all_done = fg.Completion()
    for c in done.values():
        all_done.completed += c.completed
        all_done.on_time += c.on_time
        all_done.days_total += c.days_total
        all_done.days_cases += c.days_cases
    t_cases.total = {"department": "", "name": label("county"),
                     "accepted": sum(r["accepted"] for r in t_cases.rows),
                     "completed": all_done.completed,
                     "completed_mom": change(all_done.completed, _sum(cases, "complete", "prev")),
                     "completed_yoy": change(all_done.completed, _sum(cases, "complete", "yoy")),
                     "on_time_rate": rate(all_done.on_time, all_done.completed),
                     "avg_days": round(all_done.days_total / all_done.days_cases, 1)
                     if all_done.days_cases else None}
    t_find = Table("t_findings", [Column("department", "text"), Column("name", "text"),
                                  *(Column(lvl) for lvl in fg.LEVELS), Column("findings"),
                                  Column("findings_mom", "change"),
                                  Column("findings_yoy", "change"),
                                  Column("open"), Column("escalated")], by_dept(findings_row))
    t_find.total = _totals(t_find, label)
    total_n = {b: sum(n for (_, _, _, bb), n in alerts.items() if bb == b) for b in fg.BUCKETS}
    t_find.total.update(findings_mom=change(total_n["cur"], total_n["prev"]),
                        findings_yoy=change(total_n["cur"], total_n["yoy"]))
    t_sup = Table("t_supervision", [Column("department", "text"), Column("name", "text"),
                                    Column("reminders"), Column("orders"), Column("rectified"),
                                    Column("explained"), Column("false_positive"),
                                    Column("median_resolve_hours", "num")], by_dept(sup_row))
    t_sup.total = _totals(t_sup, label)
    t_sup.total["median_resolve_hours"] = _median_hours(
        [t for s in sup.values() for t in s["times"]])
    kinds: dict[tuple[str, str], Counter] = defaultdict(Counter)
    for (d, k, lvl, b), n in alerts.items():
        if b == "cur":
            kinds[(d, k)][lvl] += n
    t_kind = Table("t_by_kind", [Column("department", "text"), Column("name", "text"),
                                 Column("kind", "text"), *(Column(lvl) for lvl in fg.LEVELS),
                                 Column("findings")],
                   [{"department": d, "name": depts.get(d, d), "kind": k,
                     **{lvl: c[lvl] for lvl in fg.LEVELS}, "findings": sum(c.values())}
                    for (d, k), c in sorted(kinds.items())])
    t_kind.total = _totals(t_kind, label)
    t_items = Table("t_items", [Column("item_code", "text"), Column("item_name", "text"),
                                Column("department", "text"), Column("findings"), Column("red")],
                    [{"item_code": v, "item_name": item_names.get(v, ""), "department": d,
                      "findings": n, "red": int(r or 0)} for v, d, n, r in items])
    t_actors = Table("t_actors", [Column("actor", "text"), Column("actor_name", "text"),
                                  Column("department", "text"), Column("findings"),
                                  Column("red")],
                     [{"actor": v, "actor_name": actor_names.get(v, ""), "department": d,
                       "findings": n, "red": int(r or 0)} for v, d, n, r in actors])
    t_red = Table("t_red", [Column("alert_id"), Column("department", "text"),
                            Column("rule_id", "text"), Column("case_id", "text"),
                            Column("raised_on", "date"), Column("status", "text"),
                            Column("message", "text"), Column("evidence", "text")],
                  [{"alert_id": a.id, "department": a.department or "", "rule_id": a.rule_id,
                    "case_id": a.case_id or "", "raised_on": a.raised_at.astimezone(tz).date(),
                    "status": a.status, "message": a.message,
                    "evidence": evidence_summary(a.evidence)} for a in reds])
    rep.tables = {t.key: t for t in (t_cases, t_find, t_sup, t_kind, t_items, t_actors, t_red)}
    rep.tables.update(_online_tables(online, rows, label))
    rep.tables["t_spot"] = _spot_table(spot, rows, label)
    rep.summary = {"accepted": t_cases.total["accepted"], "completed": all_done.completed,
                   "on_time_rate": t_cases.total["on_time_rate"],
                   "findings": total_n["cur"], "red": t_find.total["red"],
                   "open": t_find.total["open"], "escalated": t_find.total["escalated"],
                   "orders": t_sup.total["orders"],
                   "pass_rate": rep.tables["t_spot"].total["pass_rate"]}
    days = period.days()
    completed_per_day: Counter = Counter()
    for c in done.values():
        completed_per_day.update(c.per_day)
    rep.charts = {"trend": [(d, completed_per_day[d], per_day[d]) for d in days]}
    return rep


def _sum(cases: dict, step: str, bucket: str) -> int:
    return sum(n for (_, s, b), n in cases.items() if s == step and b == bucket)


def _totals(table: Table, label) -> dict:
    total = {c.key: None for c in table.columns}
    for c in table.columns:
        if c.fmt == "int":
            total[c.key] = sum(r[c.key] or 0 for r in table.rows)
    total.update(department="", name=label("county"))
    return total


def _median_hours(times) -> float | None:
    from statistics import median

    return round(median(times).total_seconds() / 3600, 1) if times else None


def _supervision(engine, tz, period: Period, department):
    out: dict[str, dict] = {}
    for dp in supervision_counts(engine, tz, period.start, period.end, "month"):
        if department and dp.department != department:
            continue
        s = out.setdefault(dp.department, {"reminders": 0, "orders": 0,
                                           "dispositions": Counter(), "times": []})
        s["reminders"] += dp.reminders
        s["orders"] += dp.orders
        s["dispositions"].update(dp.dispositions)
        s["times"] += dp.resolve_times
    return out


def _online_tables(online, rows, label) -> dict[str, Table]:
    avg = {key: round(mean(v.values()), 4) if v else None for key, v in online.items()}
    t = Table("t_online", [Column("department", "text"), Column("name", "text"),
                           Column("handlers_online", "pct"), Column("monitors_online", "pct")],
              [dict(r, handlers_online=avg.get((r["department"], "handlers")),
                    monitors_online=avg.get((r["department"], "monitors"))) for r in rows])
    t.total = {"department": "", "name": label("county")}
    for group, key in (("handlers", "handlers_online"), ("monitors", "monitors_online")):
        values = [x for (d, g), v in online.items() if g == group for x in v.values()]
        t.total[key] = round(mean(values), 4) if values else None
    if not online:
        t.note = label("no_data")
    days = sorted({day for v in online.values() for day in v})
    daily = Table("t_online_daily", [Column("date", "date"), Column("department", "text"),
                                     Column("handlers_online", "pct"),
                                     Column("monitors_online", "pct")],
                  [{"date": day, "department": r["department"],
                    "handlers_online": online.get((r["department"], "handlers"), {}).get(day),
                    "monitors_online": online.get((r["department"], "monitors"), {}).get(day)}
                   for day in days for r in rows])
    return {"t_online": t, "t_online_daily": daily}


def _spot_table(spot, rows, label) -> Table:
    def fill(d):
        n, p, f = spot.get(d, (0, 0, 0))
        return {"drawn": n, "checked": p + f, "passed": p, "failed": f,
                "pass_rate": rate(p, p + f)}

    t = Table("t_spot", [Column("department", "text"), Column("name", "text"), Column("drawn"),
                         Column("checked"), Column("passed"), Column("failed"),
                         Column("pass_rate", "pct")],
              [dict(r, **fill(r["department"])) for r in rows])
    t.total = _totals(t, label)
    t.total["pass_rate"] = rate(t.total["passed"], t.total["checked"])
    return t


def evidence_summary(evidence: dict, limit: int = 160) -> str:
    """The scalar facts of an alert's evidence, one line, cut at ``limit`` characters."""
    parts = [f"{k}={v}" for k, v in (evidence or {}).items()
             if isinstance(v, (str, int, float)) and v not in ("", None)]
    text = "; ".join(parts) or json.dumps(evidence, ensure_ascii=False)[:limit]
    return text if len(text) <= limit else text[:limit - 1] + "…"
