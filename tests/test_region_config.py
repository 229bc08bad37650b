"""Per-county configuration in a store of several counties (issue 21 item 1): each
county's own calendar (config.yaml ``regions: CODE: calendar:``) and rule overrides
(``rules/regions/CODE/``), judged county by county on both databases."""

from __future__ import annotations

import shutil
from datetime import date
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from cli import cli
from conftest import event
from monitor.config import load_config
from monitor.db import create_store_engine
from monitor.errors import ConfigError, RuleError, SourceErrors
from monitor.models import Alert, OutboxMessage, TrailEntry
from monitor.regionrules import Off, load_rule_sets, plan
from test_sinks import hook, no_proxy  # noqa: F401  (fixtures: real local HTTP servers)

RULES = Path(__file__).resolve().parent.parent / "rules"
A, B = "330102", "330106"
AS_OF = "2025-09-16T18:00:00+08:00"  # 11 working days after 1 September, or 10 in B


def _catalog(prefix: str) -> str:
    return (f"departments:\n  - {{code: {prefix}1, name: {prefix}1局}}\n"
            f"users:\n  - {{id: {prefix.lower()}1, name: 办事员, department: {prefix}1, "
            'roles: [clerk], phone: "13800000001"}\n'
            f"  - {{id: {prefix.lower()}m, name: 监察员, department: {prefix}1, "
            'roles: [monitor_l1], phone: "13900000001"}\n'
            f"items:\n  - code: {prefix}1-XK-001\n    name: 许可{prefix}\n"
            f"    department: {prefix}1\n    category: license\n"
            "    promised_days: 10\n    legal_days: 20\n    fee: 0\n")


def _events(prefix: str) -> list[dict]:
    """One open case accepted on Monday 1 September 2025, and a step keyed 50 hours late."""
    common = dict(item_code=f"{prefix}1-XK-001", actor=f"{prefix.lower()}1")
    return [event(f"{prefix}a", f"{prefix}-1", occurred_at="2025-09-01 09:00", **common),
            event(f"{prefix}s", f"{prefix}-1", "survey", occurred_at="2025-09-02 09:00",
                  recorded_at="2025-09-04 11:00", **common)]


@pytest.fixture
def store(db_url, tmp_path, monkeypatch, write_events):
    """Counties A and B in one store, with the shipped overdue and late-entry rules;
    ``store(config_tail, overrides)`` writes config.yaml and B's override files, ingests
    both counties, runs as of 16 September and gives (rule id, region, level) of every
    alert."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MONITOR_DATABASE_URL", raising=False)
    (tmp_path / "rules").mkdir()
    for name in ("overdue.yaml", "late_entry.yaml"):
        shutil.copy(RULES / name, tmp_path / "rules" / name)
    runner = CliRunner()

    def invoke(*args):
        result = runner.invoke(cli, ["--db", db_url, *map(str, args)])
        assert result.exit_code in (0, 3), result.output
        return result

    def make(config_tail: str = "", overrides: dict[str, str] | None = None,
             as_of: str = AS_OF, jobs: int = 1):
        (tmp_path / "config.yaml").write_text(f"region: {A}\nrules_dir: rules\n{config_tail}",
                                              encoding="utf-8")
        for name, text in (overrides or {}).items():
            folder = tmp_path / "rules" / "regions" / B
            folder.mkdir(parents=True, exist_ok=True)
            (folder / name).write_text(text, encoding="utf-8")
        for region, prefix in ((A, "A"), (B, "B")):
            (tmp_path / f"{prefix}.yaml").write_text(_catalog(prefix), encoding="utf-8")
            invoke("ingest", "catalog", "--region", region, tmp_path / f"{prefix}.yaml")
            invoke("ingest", "events", "--region", region,
                   write_events(_events(prefix), f"{prefix}.csv"))
        invoke("run", "--as-of", as_of, "--jobs", jobs)
        engine = create_store_engine(db_url)
        with engine.connect() as conn:
            rows = conn.execute(select(Alert.rule_id, Alert.region, Alert.level)
                                .order_by(Alert.rule_id, Alert.region)).tuples().all()
            trail = conn.scalars(select(TrailEntry.detail)  # the store's own chain
                                 .where(TrailEntry.action == "rules_in_force",
                                        TrailEntry.region == A)
                                 .order_by(TrailEntry.seq)).all()
        engine.dispose()
        return rows, trail, invoke

    make.db_url = db_url  # type: ignore[attr-defined]
    return make


def test_one_county_alike_without_regions(store):
    """No ``regions:``, no override folder: both counties judged alike (as before)."""
    rows, trail, _ = store()
    assert rows == [("late-entry", A, "yellow"), ("late-entry", B, "yellow"),
                    ("overdue", A, "yellow"), ("overdue", B, "yellow")]
    assert "regions" not in trail[-1]  # the entry is a single county's, as before


def test_a_county_holiday_moves_its_clock_only(store):
    """B's local holiday on 10 September: its case is on its deadline day (a warning),
    A's, with the same timing, one working day past it (yellow). B's holiday on 18
    September moves the deadline of B's new alerts (3 working days) a day later."""
    rows, _, invoke = store(f"regions:\n  {B}:\n    calendar:\n"
                            "      extra_holidays: [2025-09-10, 2025-09-18]\n")
    assert [r for r in rows if r[0] == "overdue"] == [("overdue", A, "yellow"),
                                                      ("overdue", B, "warning")]
    engine = create_store_engine(store.db_url)
    with engine.connect() as conn:
        due = conn.execute(select(Alert.region, Alert.due_on)
                           .where(Alert.rule_id == "overdue")).tuples().all()
    assert sorted(due) == [(A, date(2025, 9, 19)), (B, date(2025, 9, 22))]
    invoke("run", "--as-of", AS_OF)  # again, incrementally: nothing changes
    with engine.connect() as conn:
        again = conn.execute(select(Alert.rule_id, Alert.region, Alert.level)
                             .order_by(Alert.rule_id, Alert.region)).tuples().all()
    engine.dispose()
    assert again == rows


def test_a_county_make_up_day_counts(store):
    """A make-up working day of B's own (Saturday 6 September) counts in B only."""
    rows, _, _ = store(f"regions:\n  {B}:\n    calendar:\n"
                       "      extra_workdays: [2025-09-06]\n"
                       "      extra_holidays: [2025-09-10, 2025-09-11]\n")
    assert [r for r in rows if r[0] == "overdue"] == [("overdue", A, "yellow"),
                                                      ("overdue", B, "warning")]


def test_county_rule_overrides(store):
    """B switches overdue off and replaces late-entry with its own (24 hours, red): A
    keeps the base rules; the trail names B's entries."""
    rows, trail, _ = store(overrides={
        "off.yaml": "rules:\n  - {id: overdue, enabled: false}\n",
        "late.yaml": ("rules:\n  - id: late-entry\n    kind: late_entry\n    level: red\n"
                      "    handling_days: 5\n    params: {max_hours: 24}\n")})
    assert rows == [("late-entry", A, "yellow"), ("late-entry", B, "red"),
                    ("overdue", A, "yellow")]
    engine = create_store_engine(store.db_url)
    with engine.connect() as conn:  # B's own rule gives its alert 5 working days, not 3
        due = dict(conn.execute(select(Alert.region, Alert.due_on)
                                .where(Alert.rule_id == "late-entry")).tuples().all())
    engine.dispose()
    assert due == {A: date(2025, 9, 19), B: date(2025, 9, 23)}
    regions = trail[-1]["regions"]
    assert regions[B]["overdue"] == {"file": "off.yaml", "enabled": False}
    assert regions[B]["late-entry"]["file"] == "late.yaml"
    assert trail[-1]["region_changes"][B]["added"] == ["late-entry", "overdue"]


@pytest.mark.slow  # worker processes
def test_jobs_judge_each_county_by_its_own_rule_and_calendar(store):
    """``run --jobs 2``: the worker for B runs B's own late-entry (red, 5 working days in
    B's calendar), the worker for A the base rule; overdue (off in B) runs in the parent.
    The watermarks are the groups' (an incremental serial run after it finds nothing new
    and evaluates late-entry incrementally)."""
    rows, _, invoke = store(f"regions:\n  {B}:\n    calendar:\n"
                            "      extra_holidays: [2025-09-18]\n", overrides={
        "off.yaml": "rules:\n  - {id: overdue, enabled: false}\n",
        "late.yaml": ("rules:\n  - id: late-entry\n    kind: late_entry\n    level: red\n"
                      "    handling_days: 5\n    params: {max_hours: 24}\n")}, jobs=2)
    assert rows == [("late-entry", A, "yellow"), ("late-entry", B, "red"),
                    ("overdue", A, "yellow")]
    engine = create_store_engine(store.db_url)
    with engine.connect() as conn:
        due = dict(conn.execute(select(Alert.region, Alert.due_on)
                                .where(Alert.rule_id == "late-entry")).tuples().all())
    engine.dispose()
    assert due == {A: date(2025, 9, 19), B: date(2025, 9, 24)}  # B: 18 September off
    again = invoke("run", "--as-of", AS_OF)
    assert "late-entry                  0 findings · new 0 · updated 0 (incremental)" \
        in again.output, again.output


def test_override_that_raises_the_threshold_finds_nothing(store):
    """B's late-entry allows 72 hours → B's 50-hour delay is no finding; A's is."""
    rows, _, _ = store(overrides={
        "late.yaml": ("rules:\n  - id: late-entry\n    kind: late_entry\n"
                      "    params: {max_hours: 72}\n")})
    assert [r for r in rows if r[0] == "late-entry"] == [("late-entry", A, "yellow")]


def _config(tmp_path, text: str):
    (tmp_path / "config.yaml").write_text(text, encoding="utf-8")
    return load_config(tmp_path / "config.yaml")


@pytest.mark.parametrize("text, reason", [
    ("regions:\n  330100:\n    calendar: {}\n", "须为县级"),
    ("regions:\n  '33010x': {}\n", "6 位数字"),
    ("regions:\n  330106:\n    calender: {}\n", "did you mean 'calendar'"),
    ("regions:\n  330106:\n    calendar: {extra_holidays: [soon]}\n", "list of dates"),
    ("regions:\n  330106:\n    calendar: {extra_holidays: [2025-09-10], "
     "extra_workdays: [2025-09-10]}\n", "both"),
])
def test_bad_regions_section_is_one_line(tmp_path, text, reason):
    with pytest.raises(ConfigError) as exc:
        _config(tmp_path, text)
    assert reason in str(exc.value)
    assert "config.yaml:" in str(exc.value)


def test_override_errors_name_file_and_line(tmp_path):
    (tmp_path / "rules" / "regions" / B).mkdir(parents=True)
    shutil.copy(RULES / "overdue.yaml", tmp_path / "rules" / "overdue.yaml")
    (tmp_path / "rules" / "regions" / B / "x.yaml").write_text(
        "rules:\n  - {id: overdu, enabled: false}\n  - {id: overdue}\n", encoding="utf-8")
    config = _config(tmp_path, "rules_dir: rules\n")
    with pytest.raises(SourceErrors) as exc:
        load_rule_sets(config)
    text = str(exc.value)
    assert "x.yaml:2: no base rule 'overdu' to switch off (did you mean 'overdue'?)" in text
    (tmp_path / "rules" / "regions" / "nowhere").mkdir()
    with pytest.raises(RuleError, match="不是地区代码"):
        load_rule_sets(config)


def test_plan_groups_counties(tmp_path):
    """Counties sharing the base rule and calendar stay in the base group; the others
    are apart, and the base excludes them."""
    shutil.copy(RULES / "overdue.yaml", tmp_path / "rules.yaml")
    (tmp_path / "rules").mkdir()
    shutil.copy(RULES / "overdue.yaml", tmp_path / "rules" / "overdue.yaml")
    (tmp_path / "rules" / "regions" / "330108").mkdir(parents=True)
    (tmp_path / "rules" / "regions" / "330108" / "off.yaml").write_text(
        "- {id: overdue, enabled: false}\n", encoding="utf-8")
    config = _config(tmp_path, "rules_dir: rules\nregions:\n  330106:\n    calendar:\n"
                               "      extra_holidays: [2025-09-10]\n  330110: {}\n")
    sets = load_rule_sets(config)
    assert isinstance(sets.overrides["330108"][0], Off)
    groups = plan(sets, config.calendar())["overdue"]
    assert [(sorted(g.rule.scope.regions), sorted(g.rule.scope.exclude_regions))
            for g in groups] == [([], ["330106", "330108"]), (["330106"], [])]
    assert groups[0].rule.version == groups[1].rule.version == sets.base[0].version
    assert not groups[0].calendar.is_workday(date(2025, 10, 1))
    assert groups[0].calendar.is_workday(date(2025, 9, 10))
    assert not groups[1].calendar.is_workday(date(2025, 9, 10))


def test_rules_list_and_explain_show_the_county_set(store):
    """`rules list --region` gives each rule's source; `rules explain` judges B's case by
    B's own rule and calendar, A's by the base."""
    _, _, invoke = store(f"regions:\n  {B}:\n    calendar:\n"
                         "      extra_holidays: [2025-09-10]\n",
                         overrides={"late.yaml": ("rules:\n  - id: late-entry\n"
                                                  "    kind: late_entry\n    level: red\n"
                                                  "    params: {max_hours: 24}\n")})
    base = invoke("rules", "list").output.splitlines()
    assert base == ["late-entry  late_entry  yellow  on  base  rules/late_entry.yaml:3",
                    "overdue  overdue  yellow  on  base  rules/overdue.yaml:13"]
    own = invoke("rules", "list", "--region", B).output.splitlines()
    assert own[0] == ("late-entry  late_entry  red  on  regions/330106  "
                      "rules/regions/330106/late.yaml:2")
    assert own[1] == base[1]
    bad = CliRunner().invoke(cli, ["rules", "list", "--region", "33010x"])
    assert bad.exit_code == 2 and "6 位数字" in bad.output
    b = invoke("rules", "explain", "late-entry", "--case", "B-1", "--as-of", AS_OF).output
    assert "region 330106's own rule (rules/regions/330106/late.yaml:2)" in b
    a = invoke("rules", "explain", "late-entry", "--case", "A-1", "--as-of", AS_OF).output
    assert "own rule" not in a.splitlines()[0]
    days = invoke("rules", "explain", "overdue", "--case", "B-1", "--as-of", AS_OF).output
    assert "2025-09-10" in days
    assert "2025-09-10" in days and days.count("working day") != \
        invoke("rules", "explain", "overdue", "--case", "A-1", "--as-of", AS_OF).output \
        .count("working day")


def test_the_worked_example_in_docs_regions_is_true(tmp_path, monkeypatch):
    """docs/regions.md's config.yaml and override file load, and `rules list` prints the
    lines it shows; 西湖区's calendar gives the example's 10 working days, 上城区's 11."""
    doc = (RULES.parent / "docs" / "regions.md").read_text(encoding="utf-8")
    blocks = doc.split("```")[1::2]
    config_text, override = (b.split("\n", 1)[1] for b in blocks[:2])
    shown = [line for line in blocks[2].splitlines()[1:]
             if not line.startswith(("$", "…", "late-entry (late_entry"))]
    monkeypatch.chdir(tmp_path)
    shutil.copytree(RULES, tmp_path / "rules")
    (tmp_path / "rules" / "regions" / "330105").mkdir(parents=True)
    (tmp_path / "rules" / "regions" / "330105" / "overrides.yaml").write_text(
        override, encoding="utf-8")
    config = _config(tmp_path, config_text)
    listed = CliRunner().invoke(cli, ["--config", str(tmp_path / "config.yaml"), "rules",
                                      "list", "--region", "330105"])
    assert listed.exit_code == 0, listed.output
    assert shown and all(line in listed.output.splitlines() for line in shown), listed.output
    cal = config.calendar()
    assert cal.for_region("330106").workdays_between(date(2025, 9, 1), date(2025, 9, 16)) == 10
    assert cal.for_region("330102").workdays_between(date(2025, 9, 1), date(2025, 9, 16)) == 11
    assert cal.for_region("330106").is_workday(date(2025, 9, 20))
    assert dict(config.regions["330106"].channels) == {"sms": "xihu-sms", "email": "xihu-mail"}
    assert config.notify.sinks["xihu-mail"].type == "smtp"


def test_a_county_has_its_own_channels(store, hook, monkeypatch):  # noqa: F811
    """B's SMS leave by B's own webhook (its token from the environment), A's by the
    province's; the trail names the sink each took."""
    province, xihu = hook(), hook()
    monkeypatch.setenv("PM_XIHU_TOKEN", "xihu-secret-token")
    tail = ("notify:\n  sinks:\n"
            f"    province: {{type: webhook, url: '{province.url}'}}\n"
            f"    xihu: {{type: webhook, url: '{xihu.url}', token_env: PM_XIHU_TOKEN}}\n"
            "  channels: {sms: province}\n"
            f"regions:\n  {B}:\n    channels: {{sms: xihu}}\n")
    _, _, invoke = store(tail)
    flushed = invoke("notify", "flush")
    assert flushed.exit_code == 0, flushed.output
    assert {m["recipient"] for m in province.delivered} == {"am"}
    assert {m["recipient"] for m in xihu.delivered} == {"bm"}
    assert all(r["headers"]["Authorization"] == "Bearer xihu-secret-token"
               for r in xihu.requests)
    assert not any("Authorization" in r["headers"] for r in province.requests)
    engine = create_store_engine(store.db_url)
    with engine.connect() as conn:
        sinks = conn.execute(select(OutboxMessage.recipient, OutboxMessage.sink)
                             .distinct()).tuples().all()
    engine.dispose()
    assert sorted(sinks) == [("am", "province"), ("bm", "xihu")]


def test_a_county_channel_must_name_a_declared_sink(tmp_path):
    with pytest.raises(ConfigError) as exc:
        _config(tmp_path, "regions:\n  330106:\n    channels: {sms: xihu}\n")
    assert str(exc.value).endswith("config.yaml:3: channel 'sms': no sink named 'xihu'; "
                                   "define it under notify.sinks")


def test_every_kind_that_reads_the_calendar_says_so():
    """A kind whose module, or a helper module it imports, reads ``ctx.calendar`` must
    declare ``WORKING_DAYS`` — else a county's own calendar would silently not count."""
    import re

    from monitor.rules.kinds import KINDS, working_days

    folder = RULES.parent / "monitor" / "rules" / "kinds"

    def reads(name: str, seen: set[str]) -> bool:
        text = (folder / f"{name}.py").read_text(encoding="utf-8")
        seen.add(name)
        helpers = set(re.findall(r"from \.(_\w+) import|from \. import (_\w+)", text))
        names = {h for pair in helpers for h in pair if h} - seen
        return "ctx.calendar" in text or any(reads(h, seen) for h in names)

    for name, kind in KINDS.items():
        assert working_days(kind) == reads(name, set()), name


def test_rules_check_checks_the_county_folders(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "rules" / "regions" / B).mkdir(parents=True)
    shutil.copy(RULES / "late_entry.yaml", tmp_path / "rules" / "late_entry.yaml")
    (tmp_path / "config.yaml").write_text("rules_dir: rules\n", encoding="utf-8")
    folder = tmp_path / "rules" / "regions" / B
    (folder / "off.yaml").write_text("- {id: late-entry, enabled: false}\n", encoding="utf-8")
    run = lambda: CliRunner().invoke(cli, ["--db", f"sqlite:///{tmp_path}/x.db",  # noqa: E731
                                           "rules", "check"])
    good = run()
    assert good.exit_code == 0 and f"OK rules/regions/{B}" in good.stdout
    (folder / "off.yaml").write_text("- {id: late-entri, enabled: false}\n", encoding="utf-8")
    bad = run()
    assert bad.exit_code == 1
    assert "off.yaml:1: no base rule 'late-entri' to switch off (did you mean 'late-entry'?)" \
        in bad.stdout


def test_incremental_runs_on_later_dates_agree_with_full(store):
    """overdue carries its open cases from run to run: with the counties judged apart,
    each group keeps its own counties' part, so a run on a later date with no new events
    moves both counties' clocks as a full run does."""
    _, _, invoke = store(f"regions:\n  {B}:\n    calendar:\n      extra_holidays: [2025-09-10]\n",
                         as_of="2025-09-12T18:00:00+08:00")
    engine = create_store_engine(store.db_url)

    def overdue():
        with engine.connect() as conn:
            return conn.execute(select(Alert.region, Alert.level).where(
                Alert.rule_id == "overdue").order_by(Alert.region)).tuples().all()

    assert overdue() == [(A, "warning")]  # A: 1 working day left; B: 2
    invoke("run", "--as-of", AS_OF)  # a later date, incrementally: no new events
    incremental = overdue()
    invoke("run", "--full", "--as-of", AS_OF)
    engine.dispose()
    assert incremental == overdue() == [(A, "yellow"), (B, "warning")]
