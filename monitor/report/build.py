"""Assembling a report: the figures of :mod:`.figures` into the tables of :mod:`.model`."""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from statistics import mean
from typing import Any

from sqlalchemy import Engine

from ..config import Config
from ..stats import supervision_counts
from ..trail import head_for
from ..vocabulary import value_names
from . import figures as fg
from . import rollup, voice
from .labels import labeler
from .model import Column, Report, Table, change, rate
from .period import Period

RED_LIST_HTML = 300  # the HTML lists this many red findings; the other formats all of them
TOP = 10


@dataclass
class Figures:
    """Everything a report shows, as read from the store (monitor/report/figures.py)."""

    depts: dict[str, str]
    cases: dict
    done: dict[str, fg.Completion]
    alerts: dict
    open_esc: dict
    per_day: Counter
    items: list
    actors: list
    names: dict[str, str]
    reds: list
    online: dict
    spot: dict
    sup: dict
    suppressed: dict[str, int] = field(default_factory=dict)  # exempted, not counted
    dismissed: dict[str, tuple[int, int]] = field(default_factory=dict)  # pending, confirmed
    voice: dict[str, Table] = field(default_factory=dict)  # ratings, complaints, volume
    of_region: dict[str, str] | None = None  # department → county, in a city's report
    # county → its own figures, in a city's report whose counties share department codes
    by_county: dict[str, Any] | None = None

    @property
    def rows(self) -> list[dict]:
        return [{"department": d, "name": n} for d, n in sorted(self.depts.items())]

    def by_dept(self, fill) -> list[dict]:
        return [dict(r, **fill(r["department"])) for r in self.rows]

    def findings(self, dept: str | None, bucket: str, level: str | None = None) -> int:
        return sum(n for (d, _, lvl, b), n in self.alerts.items()
                   if (d == dept if dept else d in self.depts) and b == bucket
                   and (level is None or lvl == level))


def gather(engine: Engine, config: Config, period: Period,
           department: str | None = None, region: str | None = None) -> Figures:
    cal = config.calendar()
    with engine.connect() as conn:
        scope = fg.Scope(period, config.tz, department, region,
                         fg.keyed_by_region(conn, department, region))
        depts = fg.departments(conn, scope)
        if region and not depts:
            from ..errors import NotFound

            raise NotFound(f"no department of region {region} (or of a county it covers) in "
                           "the catalog: ingest its catalog with `ingest catalog --region`")
        if department and department not in depts:
            from ..errors import NotFound

            raise NotFound(f"no department '{department}' in the catalog")
        items = fg.top(conn, scope, "item_code", TOP)
        actors = fg.top(conn, scope, "actor", TOP)
        names = {**fg.item_names(conn, [r[0] for r in items]),
                 **fg.user_names(conn, [r[0] for r in actors])}
        figures = Figures(depts, fg.case_counts(conn, scope), fg.completions(conn, scope, cal),
                          fg.alert_counts(conn, scope), fg.open_escalated(conn, scope),
                          fg.findings_per_day(conn, scope), items, actors, names,
                          list(fg.red_alerts(conn, scope)), fg.online_rates(conn, scope, cal),
                          fg.spot_checks(conn, scope), {})
        figures.suppressed = fg.suppressed_counts(conn, scope)
        figures.dismissed = fg.dismissals(conn, scope)
        # the 好差评 and complaints sections only where such data was loaded for the period
        figures.voice = {t.key: t for t in (
            voice.ratings_table(conn, scope, figures.rows),
            voice.complaints_table(conn, scope, figures.rows),
            voice.volume_table(conn, scope, figures.cases, figures.rows))
            if t.total is None or any(t.total.get(k) for k in ("rated", "received"))}
    figures.sup = {d: s for d, s in _supervision(engine, config.tz, period, department,
                                                 scope.by_region).items() if d in depts}
    if rollup.rolls_up(region):
        with engine.connect() as conn:
            figures.of_region = rollup.department_regions(conn, depts)
            split = (rollup.counties(conn, region)
                     if region and rollup.shared_codes(conn, region) else [])
        if split:
            figures.by_county = {code: f for code in split
                                 if (f := _own(engine, config, period, department, code))}
    return figures


def _own(engine: Engine, config: Config, period: Period, department: str | None,
         county: str) -> Figures | None:
    """A county's own figures, or None when it has no such department."""
    from ..errors import NotFound

    try:
        return gather(engine, config, period, department, county)
    except NotFound:
        return None


def build_report(engine: Engine, config: Config, period: Period, now: datetime,
                 department: str | None = None,
                 titles: Mapping[str, str] | None = None, region: str | None = None) -> Report:
    """The report for ``period`` (and one department, or all), as of ``now``; ``titles``
    (:func:`monitor.rulenames.titles`) shows rule ids and kinds as their titles;
    ``region``: a county's, or a city's or province's with a table of its counties."""
    label = labeler(config.language)
    with engine.connect() as conn:
        several = fg.keyed_by_region(conn, department, region)
    if department or rollup.rolls_up(region) or several:  # its total row is not one county's
        county = label
        label = lambda key: county("total_row" if key == "county" else key)  # noqa: E731
    f = gather(engine, config, period, department, region)
    rep = Report(label("report"), period, period.previous(), period.year_before(), department,
                 now.astimezone(config.tz), config.language, region=region)
    tables = [_cases_table(f, label), _findings_table(f, label), _supervision_table(f, label),
              _kind_table(f, label), *_top_tables(f), _red_table(f, config.tz)]
    known = rollup.region_names(engine, config, region, f.of_region, f.by_county or ())
    rep.region_label = rollup.region_label(config, region, known)
    if f.of_region is not None:
        tables.insert(0, rollup.regions_table(f, f.of_region, label, known))
    names = value_names(config.language, titles)
    for table in tables:
        table.names = names
    rep.tables = {t.key: t for t in tables}
    head = head_for(engine, None if rollup.rolls_up(region) else region)  # its chain
    rep.trail = (head.seq, head.hash, head.algorithm)
    rep.tables.update(_online_tables(f.online, f.rows, label))
    rep.tables["t_spot"] = _spot_table(f.spot, f.rows, label)
    rep.tables.update(f.voice)
    t = {key: table.total or {} for key, table in rep.tables.items()}  # the county rows
    rep.summary = {"accepted": t["t_cases"]["accepted"],
                   "completed": t["t_cases"]["completed"],
                   "on_time_rate": t["t_cases"]["on_time_rate"],
                   "findings": t["t_findings"]["findings"],
                   "red": t["t_findings"]["red"], "open": t["t_findings"]["open"],
                   "escalated": t["t_findings"]["escalated"],
                   "orders": t["t_supervision"]["orders"],
                   "tier1_messages": t["t_supervision"]["tier1_messages"],
                   "tier2_messages": t["t_supervision"]["tier2_messages"],
                   "pass_rate": t["t_spot"]["pass_rate"]}
    completed_per_day: Counter = Counter()
    for c in f.done.values():
        completed_per_day.update(c.per_day)
    rep.charts = {"trend": [(d, completed_per_day[d], f.per_day[d]) for d in period.days()]}
    return rep


def _completion_cells(c: fg.Completion, prev: int | None, yoy: int | None) -> dict:
    return {"completed": c.completed, "completed_mom": change(c.completed, prev),
            "completed_yoy": change(c.completed, yoy), "on_time_rate": rate(c.on_time, c.completed),
            "avg_days": round(c.days_total / c.days_cases, 1) if c.days_cases else None}


def _cases_table(f: Figures, label) -> Table:
    def fill(d):
        return {"accepted": f.cases.get((d, "accept", "cur"), 0),
                **_completion_cells(f.done.get(d, fg.Completion()),
                                    f.cases.get((d, "complete", "prev")),
                                    f.cases.get((d, "complete", "yoy")))}

    t = Table("t_cases", [Column("department", "text"), Column("name", "text"),
                          Column("accepted"), Column("completed"),
                          Column("completed_mom", "change"), Column("completed_yoy", "change"),
                          Column("on_time_rate", "pct"), Column("avg_days", "num")],
              f.by_dept(fill))
    county = fg.Completion()
    for c in f.done.values():
        county.completed += c.completed
        county.on_time += c.on_time
        county.days_total += c.days_total
        county.days_cases += c.days_cases
    t.total = {"department": "", "name": label("county"),
               "accepted": sum(r["accepted"] for r in t.rows),
               **_completion_cells(county, _sum(f.cases, "complete", "prev"),
                                   _sum(f.cases, "complete", "yoy"))}
    return t


def _findings_table(f: Figures, label) -> Table:
    def fill(d):
        n = f.findings(d, "cur")
        o, x = f.open_esc.get(d, (0, 0))
        return {**{lvl: f.findings(d, "cur", lvl) for lvl in fg.LEVELS}, "findings": n,
                "findings_mom": change(n, f.findings(d, "prev")),
                "findings_yoy": change(n, f.findings(d, "yoy")), "open": o, "escalated": x,
                "suppressed": f.suppressed.get(d, 0),
                "dismissed_pending": f.dismissed.get(d, (0, 0))[0],
                "dismissed_confirmed": f.dismissed.get(d, (0, 0))[1]}

    t = Table("t_findings", [Column("department", "text"), Column("name", "text"),
                             *(Column(lvl) for lvl in fg.LEVELS), Column("findings"),
                             Column("findings_mom", "change"), Column("findings_yoy", "change"),
                             Column("open"), Column("escalated"), Column("suppressed"),
                             Column("dismissed_pending"), Column("dismissed_confirmed")],
              f.by_dept(fill))
    t.total = _totals(t, label)
    t.total.update(findings_mom=change(t.total["findings"], f.findings(None, "prev")),
                   findings_yoy=change(t.total["findings"], f.findings(None, "yoy")))
    return t


def _supervision_table(f: Figures, label) -> Table:
    def fill(d):
        s = f.sup.get(d) or {"reminders": 0, "orders": 0, "tier1_messages": 0,
                             "tier2_messages": 0, "dispositions": Counter(), "times": []}
        return {"reminders": s["reminders"], "orders": s["orders"],
                "tier1_messages": s["tier1_messages"], "tier2_messages": s["tier2_messages"],
                **{k: s["dispositions"][k] for k in ("rectified", "explained", "false_positive")},
                "median_resolve_hours": _median_hours(s["times"])}

    t = Table("t_supervision", [Column("department", "text"), Column("name", "text"),
                                Column("reminders"), Column("orders"),
                                Column("tier1_messages"), Column("tier2_messages"),
                                Column("rectified"),
                                Column("explained"), Column("false_positive"),
                                Column("median_resolve_hours", "num")], f.by_dept(fill))
    t.total = _totals(t, label)
    t.total["median_resolve_hours"] = _median_hours(
        [x for d, s in f.sup.items() if d in f.depts for x in s["times"]])
    return t


def _kind_table(f: Figures, label) -> Table:
    kinds: dict[tuple[str, str], Counter] = defaultdict(Counter)
    for (d, k, lvl, b), n in f.alerts.items():
        if b == "cur" and d in f.depts:
            kinds[(d, k)][lvl] += n
    t = Table("t_by_kind", [Column("department", "text"), Column("name", "text"),
                            Column("kind", "label"), *(Column(lvl) for lvl in fg.LEVELS),
                            Column("findings")],
              [{"department": d, "name": f.depts[d], "kind": k,
                **{lvl: c[lvl] for lvl in fg.LEVELS}, "findings": sum(c.values())}
               for (d, k), c in sorted(kinds.items())])
    t.total = _totals(t, label)
    return t


def _top_tables(f: Figures) -> list[Table]:
    out = []
    for key, col, name, rows in (("t_items", "item_code", "item_name", f.items),
                                 ("t_actors", "actor", "actor_name", f.actors)):
        out.append(Table(key, [Column(col, "text"), Column(name, "text"),
                               Column("department", "text"), Column("findings"), Column("red")],
                         [{col: v, name: f.names.get(v, ""), "department": d, "findings": n,
                           "red": int(r or 0)} for v, d, n, r in rows]))
    return out


def _red_table(f: Figures, tz) -> Table:
    return Table("t_red", [Column("alert_id"), Column("department", "text"),
                           Column("rule_id", "label"), Column("case_id", "text"),
                           Column("raised_on", "date"), Column("status", "label"),
                           Column("alert_title", "text"), Column("message", "text"),
                           Column("evidence", "text")],
                 [{"alert_id": a.id, "department": a.department or "", "rule_id": a.rule_id,
                   "alert_title": a.title or "",
                   "case_id": a.case_id or "", "raised_on": a.raised_at.astimezone(tz).date(),
                   "status": a.status, "message": a.message,
                   "evidence": evidence_summary(a.evidence)} for a in f.reds])


def _sum(cases: dict, step: str, bucket: str) -> int:
    return sum(n for (_, s, b), n in cases.items() if s == step and b == bucket)


def _totals(table: Table, label) -> dict:
    total: dict[str, Any] = {c.key: None for c in table.columns}
    for c in table.columns:
        if c.fmt == "int":
            total[c.key] = sum(r[c.key] or 0 for r in table.rows)
    total.update(department="", name=label("county"))
    return total


def _median_hours(times) -> float | None:
    from statistics import median

    return round(median(times).total_seconds() / 3600, 1) if times else None


def _supervision(engine, tz, period: Period, department, by_region: bool = False):
    out: dict[str, dict] = {}
    for dp in supervision_counts(engine, tz, period.start, period.end, "month", by_region):
        if department and dp.department != department:
            continue
        s = out.setdefault(dp.department, {"reminders": 0, "orders": 0, "tier1_messages": 0,
                                           "tier2_messages": 0, "dispositions": Counter(),
                                           "times": []})
        s["reminders"] += dp.reminders
        s["orders"] += dp.orders
        s["tier1_messages"] += dp.tier1_messages
        s["tier2_messages"] += dp.tier2_messages
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
