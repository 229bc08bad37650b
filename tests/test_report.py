"""The audit report (通报): figures cross-checked against the store with independent SQL,
every format written and read back, and the HTML opened in a real headless Chromium."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import date, datetime, time, timedelta, timezone
from html.parser import HTMLParser
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import create_engine, text

from cli import cli
from conftest import database_copy, template
from monitor.calendar import WorkCalendar
from monitor.config import Config
from monitor.db import open_store
from monitor.demo import AS_OF, load_demo
from monitor.engine import evaluate
from monitor.report import build_report, parse_period
from monitor.report.period import PeriodError
from monitor.report.render import render

NOW = datetime(2026, 2, 2, 1, 0, tzinfo=timezone.utc)
TZ = timezone(timedelta(hours=8))
PERIOD = "2026-01"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def _audited_county(url: str, folder: Path) -> Config:
    """A demo county of 400 cases, audited as of the log's end: the config it was loaded with."""
    loaded = load_demo(folder, seed=11, cases=400, now=NOW, database_url=url)
    engine = open_store(url)
    evaluate(engine, loaded.config, AS_OF)
    engine.dispose()
    return loaded.config


@contextmanager
def county_copy(directory: Path) -> Iterator[tuple[str, Config]]:
    """A copy of the session's audited demo county (on SQLite or PostgreSQL) for the
    ``with`` block: (its URL, its config)."""
    url, config = template("audited-county", _audited_county)
    with database_copy(url, directory) as copy:
        yield copy, replace(config, database_url=copy)


@pytest.fixture(scope="module")
def county(tmp_path_factory):
    """The audited demo county, this module's own copy: url, engine, config."""
    with county_copy(tmp_path_factory.mktemp("county")) as (url, config):
        engine = open_store(url)
        yield {"url": url, "engine": engine, "config": config}
        engine.dispose()


def utc(day: date) -> datetime:
    return datetime.combine(day, time(), TZ).astimezone(timezone.utc)


def truth(url: str, start: date, end: date) -> dict:
    """The figures of [start, end) worked out again from raw SQL, independently of the
    report's code: per department accepted, completed, findings by level."""
    lo, hi = utc(start), utc(end)
    engine = create_engine(url)
    with engine.connect() as conn:
        events = conn.execute(text("SELECT case_id, step, department, occurred_at FROM events"
                                   )).all()
        alerts = conn.execute(text("SELECT id, case_id, department, level, period, raised_at "
                                   "FROM alerts")).all()
    engine.dispose()

    def aware(v):
        v = datetime.fromisoformat(v) if isinstance(v, str) else v
        return v if v.tzinfo else v.replace(tzinfo=timezone.utc)

    first: dict[tuple[str, str], tuple] = {}
    began: dict[str, datetime] = {}
    for case_id, step, dept, at in events:
        at = aware(at)
        began[case_id] = min(began.get(case_id, at), at)
        if step in ("accept", "complete"):
            key = (case_id, step)
            if key not in first or at < first[key][1]:
                first[key] = (dept, at)
    out: Counter = Counter()
    for (case_id, step), (dept, at) in first.items():
        if lo <= at < hi:
            out[(dept, step)] += 1
    reds = 0
    for _id, case_id, dept, level, period, raised in alerts:
        if case_id is None and period:
            inside = f"{start:%Y-%m}" <= period < f"{end:%Y-%m}"
        else:
            inside = lo <= (began.get(case_id) or aware(raised)) < hi
        if inside:
            out[(dept, level)] += 1
            out[(dept, "findings")] += 1
            reds += level == "red"
    out["reds"] = reds
    return out


def test_periods():
    p = parse_period("2026-01")
    assert (p.start, p.end, p.previous().label, p.year_before().label) == (
        date(2026, 1, 1), date(2026, 2, 1), "2025-12", "2025-01")
    q = parse_period("2026-q1")
    assert (q.label, q.end, q.previous().label) == ("2026-Q1", date(2026, 4, 1), "2025-Q4")
    r = parse_period(None, "2026-01-10", "2026-01-19")
    assert (r.previous().start, r.previous().last) == (date(2025, 12, 31), date(2026, 1, 9))
    assert parse_period(None, today=date(2026, 3, 15)).label == "2026-02"
    for bad in ("2026-13", "Q1", "2026-Q5"):
        with pytest.raises(PeriodError):
            parse_period(bad)
    with pytest.raises(PeriodError, match="--from and --to go together"):
        parse_period(None, "2026-01-01")


def test_figures_equal_the_database(county):
    rep = build_report(county["engine"], county["config"], parse_period(PERIOD), NOW)
    want = truth(county["url"], date(2026, 1, 1), date(2026, 2, 1))
    cases = {r["department"]: r for r in rep.tables["t_cases"].rows}
    found = {r["department"]: r for r in rep.tables["t_findings"].rows}
    assert sum(r["completed"] for r in cases.values()) > 20  # the month is not empty
    assert rep.summary["findings"] > 0 and rep.summary["red"] > 0
    for d in cases:
        assert cases[d]["accepted"] == want[(d, "accept")], d
        assert cases[d]["completed"] == want[(d, "complete")], d
        for level in ("warning", "yellow", "red", "findings"):
            assert found[d][level] == want[(d, level)], (d, level)
    assert len(rep.tables["t_red"].rows) == want["reds"]
    assert rep.tables["t_cases"].total["completed"] == sum(
        want[(d, "complete")] for d in cases)
    # 环比: December's completions, counted the same independent way
    dec = truth(county["url"], date(2025, 12, 1), date(2026, 1, 1))
    total_dec = sum(dec[(d, "complete")] for d in cases)
    assert rep.tables["t_cases"].total["completed_mom"] == round(
        (rep.summary["completed"] - total_dec) / total_dec, 4)
    assert rep.tables["t_cases"].total["completed_yoy"] is None  # no data a year earlier


def test_working_days_and_on_time(county):
    """Average working days from acceptance to completion, from the raw events."""
    rep = build_report(county["engine"], county["config"], parse_period(PERIOD), NOW)
    engine = create_engine(county["url"])
    with engine.connect() as conn:
        rows = conn.execute(text(
            "SELECT case_id, step, department, occurred_at FROM events "
            "WHERE step IN ('accept', 'complete')")).all()
        late = {c for (c,) in conn.execute(text(
            "SELECT case_id FROM alerts WHERE kind = 'overdue' AND level IN ('yellow','red')"))}
    engine.dispose()
    acc, comp = {}, {}
    for case_id, step, dept, at in rows:
        at = datetime.fromisoformat(at) if isinstance(at, str) else at
        at = (at if at.tzinfo else at.replace(tzinfo=timezone.utc)).astimezone(TZ)
        target = acc if step == "accept" else comp
        if case_id not in target or at < target[case_id][1]:
            target[case_id] = (dept, at)
    cal, days, on_time, n = WorkCalendar(), [], 0, 0
    for case_id, (dept, at) in comp.items():
        if at.strftime("%Y-%m") == PERIOD:
            n += 1
            on_time += case_id not in late
            if case_id in acc:
                days.append(cal.workdays_between(acc[case_id][1].date(), at.date()))
    total = rep.tables["t_cases"].total
    assert total["avg_days"] == round(sum(days) / len(days), 1)
    assert total["on_time_rate"] == round(on_time / n, 4)


def test_every_format(county, tmp_path):
    runner = CliRunner()
    base = ["--db", county["url"], "report", "--period", PERIOD]
    result = runner.invoke(cli, base)
    assert result.exit_code == 0, result.output
    assert "电子监察通报" in result.output and "全县合计" in result.output
    doc = json.loads(runner.invoke(cli, base + ["--format", "json"]).output)
    assert doc["period"] == {"label": PERIOD, "from": "2026-01-01", "to": "2026-01-31"}
    assert doc["tables"]["t_findings"]["total"]["red"] == doc["summary"]["red"]
    csv_dir = tmp_path / "csv"
    assert runner.invoke(cli, base + ["--format", "csv", "--out", str(csv_dir)]).exit_code == 0
    header = (csv_dir / "findings.csv").read_text(encoding="utf-8-sig").splitlines()[0]
    assert header.startswith("department,name,warning,yellow,red,findings")
    xlsx = tmp_path / "r.xlsx"
    assert runner.invoke(cli, base + ["--format", "xlsx", "--out", str(xlsx)]).exit_code == 0
    from openpyxl import load_workbook

    wb = load_workbook(xlsx)
    ws = wb["监察发现"]
    assert ws.freeze_panes == "A2"
    assert [c.value for c in ws[1]][:3] == ["部门代码", "部门", "预警"]
    assert ws.cell(ws.max_row, 2).value == "全县合计"
    assert ws.cell(ws.max_row, 5).value == doc["summary"]["red"]
    assert wb["办件情况"]["G2"].number_format == "0.0%"
    red = wb["红牌发现清单"]
    assert red.max_row - 1 == len(doc["tables"]["t_red"]["rows"])
    assert red["E2"].number_format == "yyyy-mm-dd" and red["E2"].is_date
    result = runner.invoke(cli, base + ["--format", "html"])
    assert result.exit_code == 2 and "needs --out FILE" in result.output
    result = runner.invoke(cli, base + ["--department", "NOPE"])
    assert result.exit_code == 2 and "no department 'NOPE'" in result.output
    one = json.loads(runner.invoke(cli, base + ["--department", "ZRJ", "--format", "json"]).stdout)
    rows = one["tables"]["t_findings"]["rows"]
    assert [r["department"] for r in rows] == ["ZRJ"]
    assert one["tables"]["t_findings"]["total"]["name"] == "合计"  # not the county's total


def test_english_labels(county, tmp_path):
    config = Config(path=None, base_dir=tmp_path, language="en")
    rep = build_report(county["engine"], config, parse_period(PERIOD), NOW)
    out, _ = render(rep, "text", None)
    assert "County total" in out and "Findings" in out and "全县" not in out


class Cells(HTMLParser):
    """Every figure cell of the report: (table, row, column) → text shown."""

    def __init__(self):
        super().__init__()
        self.cells, self.summary, self.at, self.red_count = {}, {}, None, None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if "data-col" in a:
            self.at = ("cell", (a["data-table"], a["data-row"], a["data-col"]))
        elif "data-summary" in a:
            self.at = ("summary", a["data-summary"])
        if "data-red-count" in a:
            self.red_count = int(a["data-red-count"])

    def handle_data(self, data):
        if self.at:
            kind, key = self.at
            (self.cells if kind == "cell" else self.summary)[key] = data
            self.at = None


def open_in_chromium(url: str, tmp_path: Path) -> tuple[str, list[str]]:
    """(the DOM as Chromium built it, the console messages it logged)."""
    profile = tmp_path / f"profile-{len(list(tmp_path.iterdir()))}"
    proc = subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--no-first-run", f"--user-data-dir={profile}", "--enable-logging=stderr", "--v=0",
         "--dump-dom", url],
        capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    console = [line for line in proc.stderr.splitlines() if ":CONSOLE" in line]
    return proc.stdout, console


@pytest.mark.slow
@pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed here "
                    "(apt-get install chromium; .ci/run installs it)")
def test_html_in_a_real_browser(county, tmp_path):
    page = tmp_path / "report.html"
    result = CliRunner().invoke(cli, ["--db", county["url"], "report", "--period", PERIOD,
                                      "--format", "html", "--out", str(page)])
    assert result.exit_code == 0, result.output
    assert page.stat().st_size < 2_000_000
    html = page.read_text(encoding="utf-8")
    assert "<script" not in html and "http" not in html.split("<body>", 1)[1]
    dom, console = open_in_chromium(page.as_uri(), tmp_path)
    assert console == []
    assert "<svg" in dom and "电子监察通报" in dom
    cells = Cells()
    cells.feed(dom)
    want = truth(county["url"], date(2026, 1, 1), date(2026, 2, 1))
    depts = {row for (t, row, _) in cells.cells if t == "t_cases" and row != "total"}
    assert len(depts) >= 10
    number = lambda s: int(s.replace(",", ""))  # noqa: E731
    for d in depts:
        assert number(cells.cells[("t_cases", d, "accepted")]) == want[(d, "accept")]
        assert number(cells.cells[("t_cases", d, "completed")]) == want[(d, "complete")]
        for level in ("warning", "yellow", "red", "findings"):
            assert number(cells.cells[("t_findings", d, level)]) == want[(d, level)]
    assert number(cells.summary["red"]) == want["reds"] == cells.red_count
    assert number(cells.cells[("t_findings", "total", "findings")]) == sum(
        want[(d, "findings")] for d in depts)


@pytest.mark.slow
@pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed here")
def test_the_console_check_can_fail(tmp_path):
    page = tmp_path / "broken.html"
    page.write_text("<html><body><script>missingFunction();</script></body></html>")
    _, console = open_in_chromium(page.as_uri(), tmp_path)
    assert any("missingFunction" in line for line in console)


def test_the_demo_ends_with_the_monthly_report(tmp_path):
    out = CliRunner().invoke(cli, ["demo", "--dir", str(tmp_path), "--cases", "200"])
    assert out.exit_code == 0, out.output
    lines = out.output.splitlines()
    assert lines[-5].startswith("monthly report (通报) 2026-01: 受理件数 ")
    assert lines[-3] == f"  html: {tmp_path / 'report-2026-01.html'}"
    assert (tmp_path / "report-2026-01.html").stat().st_size > 10_000
    assert (tmp_path / "report-2026-01.xlsx").exists()
    assert lines[-1].endswith("scores --period 2026-01")


def test_an_empty_store_says_so_instead_of_a_silent_all_zero_report(county, db_url):
    """A new user who runs `report` outside the demo's folder gets a fresh, empty store."""
    for command in (["report", "--period", PERIOD], ["scores", "--period", PERIOD]):
        empty = CliRunner().invoke(cli, ["--db", db_url, *command])
        assert empty.exit_code == 0, empty.output
        assert "holds no events: is it the one you meant?" in empty.stderr
        full = CliRunner().invoke(cli, ["--db", county["url"], *command])
        assert full.exit_code == 0 and full.stderr == ""


LABEL_COLUMNS = {"t_red": ("rule_id", "status"), "t_by_kind": ("kind",)}


def test_a_chinese_report_shows_words_not_ids(county, tmp_path):
    """The 通报 showed `open` and English rule ids: every stored id is shown as its word
    (a rule id as its rule's title, a status as 待处置 …), while JSON and CSV keep the ids
    for tools; the time it was generated is the county's."""
    from monitor.rulenames import titles
    from monitor.rules.loader import load_rules
    from monitor.vocabulary import VALUES

    rep = build_report(county["engine"], county["config"], parse_period(PERIOD), NOW,
                       titles=titles(county["config"]))
    html, _ = render(rep, "html", tmp_path / "r.html")
    cells = Cells()
    cells.feed((tmp_path / "r.html").read_text(encoding="utf-8"))
    titles = {r.id: r.title for r in load_rules([county["config"].rules_dir])}
    shown = {(t, c): [] for t, cols in LABEL_COLUMNS.items() for c in cols}
    for (table, _, column), text in cells.cells.items():
        if (table, column) in shown:
            shown[(table, column)].append(text)
    assert all(shown.values()), shown
    assert set(shown[("t_red", "rule_id")]) <= set(titles.values())
    assert set(shown[("t_red", "status")]) <= {zh for zh, _ in VALUES.values()}
    assert "待处置" in shown[("t_red", "status")]
    for texts in shown.values():
        assert not [t for t in texts if t.isascii()], texts
    raw = json.loads(render(rep, "json", None)[0])
    assert {r["status"] for r in raw["tables"]["t_red"]["rows"]} <= set(VALUES)
    assert {r["rule_id"] for r in raw["tables"]["t_red"]["rows"]} <= set(titles)
    assert "生成时间: 2026-02-02 09:00 (Asia/Shanghai)" in \
        (tmp_path / "r.html").read_text(encoding="utf-8")


def test_the_xlsx_carries_the_htmls_charts(county, tmp_path):
    """Native Excel charts, drawn from the sheets' cells: findings per department stacked
    by level, completed cases and findings per day, the on-time rate per department."""
    from openpyxl import load_workbook

    rep = build_report(county["engine"], county["config"], parse_period(PERIOD), NOW)
    render(rep, "xlsx", tmp_path / "r.xlsx")
    wb = load_workbook(tmp_path / "r.xlsx")
    findings, cases, trend = wb["监察发现"], wb["办件情况"], wb["期间趋势"]
    n = len(rep.tables["t_findings"].rows)
    [bars] = findings._charts
    assert (bars.type, bars.grouping) == ("col", "stacked")
    assert [s.val.numRef.f for s in bars.series] == [
        f"'监察发现'!${c}$2:${c}${n + 1}" for c in "CDE"]  # 预警, 黄牌, 红牌; not the total
    assert [findings[f"{c}1"].value for c in "CDE"] == ["预警", "黄牌", "红牌"]
    assert [s.graphicalProperties.solidFill.srgbClr for s in bars.series] == \
        ["f0b400", "e07b00", "c00000"]  # the HTML's colours
    [on_time] = cases._charts
    assert on_time.type == "bar"
    assert on_time.series[0].val.numRef.f == f"'办件情况'!$G$2:$G${n + 1}"
    assert cases["G1"].value == "按时办结率"
    [daily] = trend._charts
    days = len(rep.charts["trend"])
    assert [type(c).__name__ for c in daily._charts] == ["BarChart", "LineChart"]
    assert trend.max_row == days + 1 == 32 and trend["A1"].value == "日期"
    assert [trend.cell(2 + i, 3).value for i in range(days)] == \
        [f for _, _, f in rep.charts["trend"]]
    assert sum(trend.cell(2 + i, 2).value for i in range(days)) == \
        rep.tables["t_cases"].total["completed"]


@pytest.mark.slow
@pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed here")
def test_the_report_draws_chinese_in_a_cjk_font(county, tmp_path):
    """On a stock machine without a CJK font the 通报 showed boxes. The report names CJK
    font stacks, and in a real Chromium (fonts-noto-cjk installed, as .ci/run and
    docs/deploy.md do) the title, a table header, a status word and a chart label are
    drawn with Noto Sans CJK: CDP's CSS.getPlatformFontsForNode says which font drew each
    glyph."""
    sync_api = pytest.importorskip("playwright.sync_api")
    from web_county import BROWSER_ARGS

    rep = build_report(county["engine"], county["config"], parse_period(PERIOD), NOW)
    render(rep, "html", tmp_path / "r.html")
    css = (tmp_path / "r.html").read_text(encoding="utf-8").split("<style>")[1]
    assert '"Noto Sans CJK SC", "Source Han Sans SC", "Microsoft YaHei", "PingFang SC"' in css
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=BROWSER_ARGS)
        try:
            page = browser.new_page()
            page.goto((tmp_path / "r.html").as_uri())
            cdp = page.context.new_cdp_session(page)
            cdp.send("DOM.enable")
            cdp.send("CSS.enable")
            root = cdp.send("DOM.getDocument", {"depth": -1})["root"]["nodeId"]
            for selector in ("h1", "#t_findings th", 'td[data-col="status"]',
                             "#t_findings svg text:last-of-type"):
                node = cdp.send("DOM.querySelector", {"nodeId": root,
                                                      "selector": selector})["nodeId"]
                assert node, selector
                text = cdp.send("DOM.getOuterHTML", {"nodeId": node})["outerHTML"]
                fonts = cdp.send("CSS.getPlatformFontsForNode", {"nodeId": node})["fonts"]
                cjk = [f for f in fonts if f["familyName"].startswith("Noto Sans CJK")]
                assert cjk and cjk[0]["glyphCount"] >= 2, (selector, text, fonts)
        finally:
            browser.close()
