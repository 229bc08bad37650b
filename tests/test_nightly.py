"""`permit-monitor nightly` as cron meets it: the inbox, exit codes, run records,
operational alerts, and catch-up after downtime."""

from __future__ import annotations

import csv
import json
import os
import shutil
import time
from datetime import datetime, timezone

import pytest
from click.testing import CliRunner
from sqlalchemy import delete, func, insert, select, update

from cli import cli
from conftest import CATALOG, EVENT_COLUMNS, event, fresh_database
from monitor.db import open_store
from monitor.models import Alert, RuleState, Run, TrailEntry
from monitor.rules.kinds._common import aware

SHIPPED = os.path.join(os.path.dirname(__file__), "..", "rules")


@pytest.fixture
def site(tmp_path, db_url, monkeypatch):
    """A working folder: config.yaml with an inbox, the shipped rules, and a runner."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MONITOR_DATABASE_URL", raising=False)
    (tmp_path / "inbox").mkdir()
    shutil.copytree(SHIPPED, tmp_path / "rules")
    (tmp_path / "config.yaml").write_text(
        "inbox: {dir: inbox, settle_seconds: 30, trusted_catalog_dir: inbox}\n"
        "rules_dir: rules\nlease_wait_seconds: 0\n")  # this inbox is trusted with catalogs
    runner = CliRunner()

    def invoke(*args):
        return runner.invoke(cli, ["--config", str(tmp_path / "config.yaml"), "--db", db_url,
                                   *map(str, args)])

    return invoke


def drop(folder, name: str, text: str, age: float = 60) -> None:
    """Put a file in the inbox as if it had been written ``age`` seconds ago."""
    path = folder / name
    path.write_text(text, encoding="utf-8")
    then = time.time() - age
    os.utime(path, (then, then))


def events_csv(rows: list[dict]) -> str:
    from io import StringIO

    out = StringIO()
    writer = csv.DictWriter(out, fieldnames=EVENT_COLUMNS)
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()


def test_inbox_files_are_ingested_then_moved_or_rejected_with_a_reason(site, tmp_path):
    inbox = tmp_path / "inbox"
    drop(inbox, "catalog.yaml", CATALOG)
    drop(inbox, "events-1.csv", events_csv([event("e1"), event("e2", item_code="NOPE")]))
    drop(inbox, "events-broken.csv", "event_id,case_id\ne9,c9\n")      # no required columns
    drop(inbox, "notes.docx", "not an input file")
    drop(inbox, "events-2.csv.part", events_csv([event("e3")]))        # still being written
    drop(inbox, "events-3.csv", events_csv([event("e4")]), age=0)      # just copied in

    result = site("nightly", "--as-of", "2025-10-01T18:00")
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("nightly as of 2025-10-01 18:00 (Asia/Shanghai): inbox 4 "
                                    "file(s), 2 rejected, 2 left for the next pass (still "
                                    "being written);")
    assert sorted(p.name for p in (inbox / "done").iterdir()) == ["catalog.yaml", "events-1.csv"]
    assert sorted(p.name for p in (inbox / "failed").iterdir()) == [
        "events-broken.csv", "events-broken.csv.reason", "notes.docx", "notes.docx.reason"]
    reason = (inbox / "failed" / "events-broken.csv.reason").read_text()
    assert "events-broken.csv:1: the header lacks the required columns item_code" in reason
    assert "matches no inbox pattern" in (inbox / "failed" / "notes.docx.reason").read_text()
    assert sorted(p.name for p in inbox.iterdir() if p.is_file()) == \
        ["events-2.csv.part", "events-3.csv"]  # left for a later pass
    listed = site("quarantine", "list").stdout
    assert "events-1.csv:3: unknown_item" in listed  # a bad row does not fail its file

    (inbox / "events-2.csv.part").rename(inbox / "events-2.csv")      # the writer's rename
    old = time.time() - 60
    os.utime(inbox / "events-2.csv", (old, old))
    os.utime(inbox / "events-3.csv", (old, old))
    drop(inbox, "activity-1001.csv", "user_id,at,action\nu1,2025-10-01T08:30:00+08:00,login\n")
    result = site("nightly", "--as-of", "2025-10-01T19:00", "--json")
    record = json.loads(result.stdout)
    assert record["counts"]["inbox_files"] == 3 and record["status"] == "ok"
    assert [f["file"] for f in record["counts"]["inbox"]] == \
        ["events-2.csv", "events-3.csv", "activity-1001.csv"]  # the monitoring log, not events
    assert "inserted 1" in record["counts"]["inbox"][2]["detail"]
    assert sorted(p.name for p in (inbox / "done").iterdir()) == \
        ["activity-1001.csv", "catalog.yaml", "events-1.csv", "events-2.csv", "events-3.csv"]


@pytest.mark.slow  # four passes, one catching up on three months of nightly slots
def test_exit_code_3_only_when_the_pass_raised_new_red_alerts(site, tmp_path):
    drop(tmp_path / "inbox", "catalog.yaml", CATALOG)
    drop(tmp_path / "inbox", "events.csv", events_csv([event("e1")]))  # never decided
    early = site("nightly", "--exit-code", "--as-of", "2025-10-02T18:00")
    assert early.exit_code == 0, early.output  # not overdue yet
    late = site("nightly", "--exit-code", "--as-of", "2025-12-31T18:00")
    assert late.exit_code == 3, late.output  # past the legal limit: red
    assert "1 new red" in late.stdout
    again = site("nightly", "--exit-code", "--as-of", "2026-01-05T18:00")
    assert again.exit_code == 0, again.output  # the same red alert is not new
    assert site("nightly", "--as-of", "2026-01-06T18:00").exit_code == 0
    listed = site("runs", "list").stdout.splitlines()
    assert len(listed) == 4 and all(" nightly " in line and " ok " in line for line in listed)


def test_a_failed_pass_is_recorded_and_raises_an_operational_alert(site, tmp_path, db_url):
    (tmp_path / "rules" / "overdue.yaml").write_text("rules:\n  - id: overdue\n    kindd: x\n")
    result = site("nightly", "--as-of", "2025-10-02T18:00")
    assert result.exit_code == 1
    assert "FAILED (evaluate: " in result.stdout and "overdue.yaml:3:" in result.stdout
    [line] = site("runs", "list", "--status", "failed").stdout.splitlines()
    assert "nightly" in line and "overdue.yaml:3: unknown key 'kindd'" in line
    engine = open_store(db_url)
    with engine.connect() as conn:
        [alert] = conn.execute(select(Alert).where(Alert.kind == "operational")).all()
    engine.dispose()
    assert (alert.level, alert.tier, alert.rule_id) == ("red", 2, "ops.run_failed")
    assert alert.message.startswith("运行失败：任务 nightly（cli，")


def test_a_run_left_running_by_a_dead_process_is_marked_interrupted(site, db_url):
    engine = open_store(db_url)
    with engine.begin() as conn:
        conn.execute(insert(Run).values(job="nightly", trigger="cli", status="running",
                                        started_at=datetime(2025, 10, 1, tzinfo=timezone.utc),
                                        counts={}, holder="elsewhere:4242:dead"))
    assert site("nightly", "--as-of", "2025-10-02T18:00").exit_code == 0
    with engine.connect() as conn:
        statuses = conn.execute(select(Run.status).order_by(Run.id)).scalars().all()
        ops = conn.execute(select(Alert.rule_id).where(Alert.kind == "operational")).all()
    engine.dispose()
    assert statuses == ["interrupted", "ok"]
    assert ops == [("ops.run_interrupted",)]
    shown = site("alerts", "list", "--kind", "operational").stdout
    assert "运行中断：任务 nightly" in shown


def test_lease_busy_is_one_clear_line(site, db_url):
    from monitor.lease import MAIN, acquire
    from datetime import timedelta

    engine = open_store(db_url)
    acquire(engine, MAIN, "otherhost:1:abc", lambda: datetime.now(timezone.utc),
            timedelta(seconds=60), 0)
    result = site("run")
    engine.dispose()
    assert result.exit_code == 1
    [line] = result.stderr.splitlines()
    assert line.startswith("Error: another run holds the lock 'monitor' (otherhost:1:abc, until ")


def test_catch_up_after_downtime_misses_nothing_and_duplicates_nothing(site, tmp_path,
                                                                       db_url):
    """Passes on Oct 1; the machine is down until Dec 31 while events keep arriving; the
    next pass finds everything a single full audit of all events as of Dec 31 finds."""
    inbox = tmp_path / "inbox"
    first = [event("a1", "c1"), event("a2", "c2")]
    later = [event("b1", "c1", "decide", "2025-10-09 10:00:00"),        # c1 decided in time
             event("b2", "c3", "accept", "2025-10-20 09:00:00")]        # c3 never decided
    drop(inbox, "catalog.yaml", CATALOG)
    drop(inbox, "events-1.csv", events_csv(first))
    assert site("nightly", "--as-of", "2025-10-01T18:00").exit_code == 0
    drop(inbox, "events-2.csv", events_csv(later))
    assert site("nightly", "--as-of", "2025-12-31T18:00").exit_code == 0

    engine = open_store(db_url)
    with engine.connect() as conn:
        caught_up = conn.execute(select(Alert.dedupe_key, Alert.level)
                                 .where(Alert.kind != "operational")).all()
    engine.dispose()
    (tmp_path / "full").mkdir()
    with fresh_database(tmp_path / "full") as full_url:
        runner = CliRunner()
        for args in (["ingest", "catalog", str(inbox / "done" / "catalog.yaml")],
                     ["ingest", "events", str(inbox / "done" / "events-1.csv"),
                      str(inbox / "done" / "events-2.csv")],
                     ["run", "--as-of", "2025-12-31T18:00"]):
            assert runner.invoke(cli, ["--config", str(tmp_path / "config.yaml"),
                                       "--db", full_url, *args]).exit_code == 0
        engine = open_store(full_url)
        with engine.connect() as conn:
            full = conn.execute(select(Alert.dedupe_key, Alert.level)).all()
        engine.dispose()
    assert len(caught_up) == len(set(caught_up))
    assert sorted(caught_up) == sorted(full)
    assert ("overdue|c3", "red") in caught_up  # accepted while the machine was down
    assert ("overdue|c2", "red") in caught_up


def test_catch_up_evaluates_as_of_each_missed_nightly_slot(site, tmp_path, db_url):
    """w1, accepted Mon Nov 3, promised 10 working days (deadline Mon Nov 17): at the 02:00
    pass of Fri Nov 14 it is open with one working day left — a warning (临期预警) — and it
    is decided that morning. The machine is down from Nov 10 to Nov 20: the catch-up pass
    evaluates as of each missed 02:00 slot, so the warning is raised as of Nov 14, and an
    event is visible at a slot only once it happened (and, for late keying, was keyed in)."""
    inbox = tmp_path / "inbox"
    drop(inbox, "catalog.yaml", CATALOG)
    drop(inbox, "events-1.csv", events_csv([event("w-acc", "w1", occurred_at="2025-11-03 09:00:00"),
                                            event("k-acc", "k1", occurred_at="2025-11-10 01:00:00")]))
    assert site("nightly", "--as-of", "2025-11-10T02:00").exit_code == 0
    drop(inbox, "events-2.csv", events_csv([
        event("w-dec", "w1", "decide", "2025-11-14 10:00:00"),              # in time
        event("k-rev", "k1", "review", "2025-11-12 10:00:00",               # keyed in 5 days
              recorded_at="2025-11-17 10:00:00")]))                       # later: late entry
    result = site("nightly", "--as-of", "2025-11-20T02:00")
    assert result.exit_code == 0, result.output
    assert "caught up 9 missed slot(s) (2025-11-11 02:00 … 2025-11-19 02:00)" in result.stdout

    engine = open_store(db_url)

    def alerts():
        with engine.connect() as conn:
            return conn.execute(select(Alert.dedupe_key, Alert.level, Alert.raised_at)
                                .where(Alert.kind != "operational")
                                .order_by(Alert.dedupe_key)).all()

    def at(text):  # a local moment (Asia/Shanghai) in UTC
        return datetime.fromisoformat(text + "+08:00").astimezone(timezone.utc)

    caught_up = {k: (level, aware(raised)) for k, level, raised in alerts()}
    # the warning of Nov 14 (Nov 13: two working days left; the decision is after 02:00)
    assert caught_up["overdue|w1"] == ("warning", at("2025-11-14T02:00"))
    # keyed in on Nov 17 10:00: not visible at the Nov 17 slot, flagged as of Nov 18
    assert caught_up["late-entry|k1"][1] == at("2025-11-18T02:00")
    # evaluating once as of the catch-up moment (the old behaviour) would not see the warning
    with engine.connect() as conn:
        runs = conn.execute(select(Run.counts).where(Run.job == "nightly")
                            .order_by(Run.id)).scalars().all()
    assert runs[-1]["catch_up"]["skipped"] == 0 and len(runs[-1]["catch_up"]["slots"]) == 9

    # escalation is not replayed per slot: once, as of the catch-up, for the alerts whose
    # deadline (3 working days from the slot they were raised at) ran out during the
    # downtime; late-entry|k1, raised as of Nov 18, is due Nov 21 and stays at tier 1;
    # overdue|w1 was a warning heeded (decided within the limit): cleared, not escalated
    def escalations():
        with engine.connect() as conn:
            return conn.execute(select(Alert.dedupe_key, TrailEntry.at)
                                .join(Alert, Alert.id == TrailEntry.alert_id)
                                .where(TrailEntry.action == "escalated")
                                .order_by(Alert.dedupe_key)).all()

    assert [(k, aware(t)) for k, t in escalations()] == [
        (k, at("2025-11-20T02:00"))
        for k in ("same-actor-roles|k1", "same-actor-roles|w1")]
    with engine.connect() as conn:
        assert conn.scalar(select(Alert.status).where(Alert.dedupe_key == "overdue|w1")) \
            == "cleared"

    # a catch-up done again over the same slots (its record and the rules' watermarks lost)
    # raises nothing twice
    with engine.begin() as conn:
        conn.execute(update(Run).where(Run.id == conn.scalar(select(func.max(Run.id))))
                     .values(status="failed"))
        conn.execute(delete(RuleState))
    again = site("nightly", "--as-of", "2025-11-20T02:00")
    assert again.exit_code == 0, again.output
    assert "caught up 9 missed slot(s)" in again.stdout and " 0 new alert(s)" in again.stdout
    assert [tuple(r[:2]) for r in alerts()] == [(k, v[0]) for k, v in sorted(caught_up.items())]
    assert len(escalations()) == 2
    with engine.connect() as conn:  # the replay found the warning again, as of before it
        assert conn.scalar(select(Alert.status).where(  # was cleared: it stays cleared
            Alert.dedupe_key == "overdue|w1")) == "cleared"
    # the next night has nothing to catch up; k1 (accepted Nov 10) enters its warning
    nxt = site("nightly", "--as-of", "2025-11-21T02:00:05")
    assert "caught up" not in nxt.stdout
    assert {r[0] for r in alerts()} - set(caught_up) == {"overdue|k1"}  # its warning day
    engine.dispose()


def test_catch_up_is_bounded_by_catch_up_max_slots(site, tmp_path, caplog):
    """Ten nights down with catch_up_max_slots 3: the three most recent slots are evaluated
    one by one, the first of them covering the older ones, and the summary says so."""
    with open(tmp_path / "config.yaml", "a") as f:
        f.write("catch_up_max_slots: 3\n")
    drop(tmp_path / "inbox", "catalog.yaml", CATALOG)
    drop(tmp_path / "inbox", "events.csv", events_csv([event("e1")]))
    assert site("nightly", "--as-of", "2025-11-10T02:00").exit_code == 0
    result = site("nightly", "--as-of", "2025-11-20T02:00")
    assert result.exit_code == 0, result.output
    assert ("caught up 3 missed slot(s) (2025-11-17 02:00 … 2025-11-19 02:00), 6 older "
            "one(s) beyond catch_up_max_slots covered by the first") in result.stdout
    assert ("9 missed slot(s) since 2025-11-09T18:00:00+00:00; catch_up_max_slots 3: the 6 "
            "older one(s) are covered by the evaluation as of 2025-11-17T02:00:00+08:00"
            in caplog.text)


def test_run_by_hand_takes_the_lease_and_escalates_once(site, tmp_path):
    drop(tmp_path / "inbox", "catalog.yaml", CATALOG)
    drop(tmp_path / "inbox", "events.csv", events_csv([event("e1")]))
    assert site("nightly", "--as-of", "2025-10-01T18:00").exit_code == 0
    result = site("run", "--as-of", "2025-12-31T18:00")
    assert result.exit_code == 0, result.output
    assert sum(line.startswith("supervision:") for line in result.stdout.splitlines()) == 1


def test_the_pass_writes_the_month_to_date_report_beside_the_config(site, tmp_path):
    drop(tmp_path / "inbox", "catalog.yaml", CATALOG)
    drop(tmp_path / "inbox", "events.csv", events_csv([event("e1")]))  # accepted 2025-10-01
    result = site("nightly", "--as-of", "2025-11-01T02:00")  # closes October
    assert result.exit_code == 0, result.output
    html = tmp_path / "reports" / "report-2025-10.html"
    assert html.exists() and (tmp_path / "reports" / "report-2025-10.xlsx").exists()
    assert f"report: {html}" in result.stdout
    assert "电子监察通报" in html.read_text(encoding="utf-8")


def test_a_missing_inbox_folder_is_created_and_said_so(site, tmp_path, caplog):
    (tmp_path / "inbox").rmdir()
    result = site("nightly", "--as-of", "2025-10-01T18:00")
    assert result.exit_code == 0, result.output
    assert (tmp_path / "inbox").is_dir()
    assert [r.getMessage() for r in caplog.records if "inbox: created" in r.getMessage()] == [
        f"inbox: created {tmp_path / 'inbox'} (it did not exist); drop files there"]
    caplog.clear()
    site("nightly", "--as-of", "2025-10-01T19:00")
    assert not [r for r in caplog.records if "inbox: created" in r.getMessage()]


def test_a_catalog_dropped_into_an_untrusted_inbox_is_refused(tmp_path, db_url, monkeypatch):
    """A catalog file in the inbox created a tier-2 account and changed a monitor's phone,
    with nothing on the trail (issue 17): now it is not taken at all, unless the inbox names
    a trusted catalog directory."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MONITOR_DATABASE_URL", raising=False)
    (tmp_path / "inbox").mkdir()
    (tmp_path / "trusted").mkdir()
    (tmp_path / "config.yaml").write_text(
        "inbox: {dir: inbox, settle_seconds: 30}\nlease_wait_seconds: 0\n")
    drop(tmp_path / "inbox", "catalog.yaml", CATALOG)
    runner = CliRunner()
    result = runner.invoke(cli, ["--config", str(tmp_path / "config.yaml"), "--db", db_url,
                                 "nightly", "--as-of", "2025-10-01T18:00"])
    assert result.exit_code == 0, result.output
    reason = (tmp_path / "inbox" / "failed" / "catalog.yaml.reason").read_text()
    assert reason.startswith("catalog.yaml: a catalog carries powers (roles, departments) "
                             "and is not taken from the inbox")
    (tmp_path / "config.yaml").write_text(
        "inbox: {dir: inbox, settle_seconds: 30, trusted_catalog_dir: trusted}\n"
        "lease_wait_seconds: 0\n")
    drop(tmp_path / "trusted", "catalog.yaml", CATALOG)
    again = runner.invoke(cli, ["--config", str(tmp_path / "config.yaml"), "--db", db_url,
                                "nightly", "--as-of", "2025-10-01T19:00"])
    assert again.exit_code == 0, again.output
    assert (tmp_path / "trusted" / "done" / "catalog.yaml").exists()
