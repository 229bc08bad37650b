"""The demo's half-year replayed day by day (``permit-monitor demo --replay``): alerts move
through both tiers, the replay is the same for the same seed, and the trail it leaves
passes ``audit verify`` — until any single row of it is changed with plain SQL."""

from __future__ import annotations

import re
from datetime import datetime, time, timedelta, timezone

import pytest
from click.testing import CliRunner
from sqlalchemy import select, text

from cli import cli
from conftest import fresh_database
from monitor.db import open_store
from monitor.demo.replay import RUN_AT, replay_demo
from monitor.models import Alert, Disposition, Event, SupervisionOrder, TrailEntry
from monitor.supervision import DISPOSITIONS
from monitor.trail import SYSTEM, entry_hash, history

NOW = datetime(2026, 2, 2, 1, 0, tzinfo=timezone.utc)
TZ = timezone(timedelta(hours=8))
SEED, CASES = 7, 200  # the smallest the CLI takes is 100; 200 shows every path
pytestmark = pytest.mark.slow  # every test here reads a half-year replayed day by day


@pytest.fixture(scope="module")
def replayed(tmp_path_factory):
    """One replayed county (on PostgreSQL in CI's second pass): (result, engine, url)."""
    directory = tmp_path_factory.mktemp("replay")
    with fresh_database(directory) as url:
        result = replay_demo(directory, seed=SEED, cases=CASES, now=NOW, database_url=url)
        engine = open_store(url)
        yield result, engine, url
        engine.dispose()


def totals(result, field="actions"):
    out = {}
    for m in result.replay.months:
        for k, v in getattr(m, field).items():
            out[k] = out.get(k, 0) + v
    return out


def test_alerts_move_through_both_tiers(replayed):
    result, engine, _ = replayed
    seen = totals(result)
    assert result.replay.days == 126  # working days 2025-08-01 … 2026-01-30
    for action in ("raised", "acknowledged", "resolved", "escalated", "order_issued",
                   "reminded", "confirmed", "rejected", "held", "released"):
        assert seen.get(action, 0) > 0, action
    assert seen["order_issued"] > seen["escalated"]  # rejections and spot checks order too
    assert set(totals(result, "dispositions")) == set(DISPOSITIONS)
    with engine.connect() as conn:
        alerts = {a.id: a for a in conn.execute(select(Alert))}
        dispositions = conn.execute(select(Disposition)).all()
        reasons = {r for (r,) in conn.execute(select(SupervisionOrder.reason))}
    assert len(alerts) == seen["raised"]
    assert {a.status for a in alerts.values()} >= {"confirmed", "resolved"}
    assert reasons == {"escalated", "rejected", "manual"}
    # every disposition carries a note; tier 1 resolved what it resolved by its deadline
    assert all(d.note and d.kind in DISPOSITIONS for d in dispositions)
    tier1 = [d for d in dispositions if d.tier == 1]
    assert tier1 and all(d.at.astimezone(TZ).date() <= alerts[d.alert_id].due_on or
                         alerts[d.alert_id].tier == 2 for d in tier1)
    assert {d.verdict for d in dispositions if d.tier == 2} >= {"confirmed", "rejected"}


def test_a_rejected_alert_reopens_and_is_resolved_again(replayed):
    result, engine, _ = replayed
    steps = [(e.action, e.detail.get("reason")) for e in history(engine, result.replay.example)]
    flow = [a for a, _ in steps if a in ("escalated", "resolved", "rejected", "confirmed")]
    assert steps[0][0] == "raised" and flow[-1] == "confirmed"
    i = steps.index(("rejected", None))
    assert steps[i + 1] == ("order_issued", "rejected")
    assert ("resolved", None) in steps[i + 2:]


def test_the_replay_is_day_by_day_and_never_sees_the_future(replayed):
    """System entries come from the 18:00 runs, people act in office hours, the trail is
    in time order, and no alert cites an event that was not yet in the log."""
    _, engine, _ = replayed
    with engine.connect() as conn:
        trail = conn.execute(select(TrailEntry).order_by(TrailEntry.seq)).all()
        alerts = conn.execute(select(Alert.raised_at, Alert.updated_at, Alert.event_ids)).all()
        events = {e.event_id: e for e in conn.execute(select(Event.event_id, Event.occurred_at,
                                                       Event.recorded_at))}
    assert [e.at for e in trail] == sorted(e.at for e in trail)
    for e in trail:
        local = e.at.astimezone(TZ).time()
        if e.actor == SYSTEM:
            assert local == RUN_AT, e
        else:
            assert time(8, 30) <= local <= time(17, 35) and not time(12) < local < time(14), e
    assert len({a.raised_at.astimezone(TZ).date() for a in alerts}) > 10
    for a in alerts:  # the evidence as of the alert's last update had happened and been keyed in
        for event_id in a.event_ids or []:
            ev = events[event_id]
            assert max(ev.occurred_at, ev.recorded_at or ev.occurred_at) <= a.updated_at


def test_the_cli_replay_is_deterministic_and_summarised(replayed, tmp_path):
    result, _, _ = replayed
    out = CliRunner().invoke(cli, ["demo", "--replay", "--dir", str(tmp_path), "--seed",
                                   str(SEED), "--cases", str(CASES)])
    assert out.exit_code == 0, out.output
    lines = out.output.splitlines()
    assert lines[0] == f"demo county written to {tmp_path}/ (seed {SEED})"
    assert "replayed 126 working days, 2025-08-01 … 2026-01-30: rules, then escalation, " \
           "at 18:00 each; monitors simulated from the seed" in lines
    header = next(line for line in lines if "2025-08" in line and "total" in line)
    assert header.split() == ["2025-08", "2025-09", "2025-10", "2025-11", "2025-12",
                              "2026-01", "total"]
    row = next(line for line in lines if line.strip().startswith("rejected by tier 2"))
    assert row.split()[-1] == str(totals(result)["rejected"])
    head = result.replay.verified.head
    # the same seed and size: the same trail, to the hash (here on SQLite, the fixture's
    # on whichever backend the suite runs on)
    assert f"audit verify: trail intact: {result.replay.verified.entries:,} entries · " \
           f"head {head}" in lines
    assert any("audit show" in line for line in lines)
    # the demo ends with the month's report: its line, the departments with findings (when
    # there are any), the two files and the ranking command
    assert any(line.startswith("monthly report (通报) 2026-01: ") for line in lines[-5:-3])
    assert "replaying" not in out.output  # no progress bar off a terminal


# ------------------------------------------------------------ tampering with the trail


def verify(url):
    return CliRunner().invoke(cli, ["--db", url, "audit", "verify"])


def row_of(engine, seq):
    with engine.connect() as conn:
        return conn.execute(select(TrailEntry).where(TrailEntry.seq == seq)).one()


def positions(engine):
    """The first entry, the first rejection, and the last entry."""
    with engine.connect() as conn:
        last = conn.scalar(select(TrailEntry.seq).order_by(TrailEntry.seq.desc()).limit(1))
        rejected = conn.scalar(select(TrailEntry.seq).where(TrailEntry.action == "rejected")
                               .order_by(TrailEntry.seq).limit(1))
    return {"first": 1, "rejection": rejected, "last": last}


@pytest.fixture
def intact(replayed):
    """The replayed store, checked intact before and after the test (which restores it)."""
    result, engine, url = replayed
    expected = f"trail intact: {result.replay.verified.entries:,} entries · " \
               f"head {result.replay.verified.head}\n"
    before = verify(url)  # the chain, then the records replayed (one line each)
    assert before.exit_code == 0 and before.output.startswith(expected), before.output
    assert before.output.splitlines()[1].startswith("records match the trail: ")
    yield engine, url
    assert verify(url).output == before.output


def restore(engine, row):
    with engine.begin() as conn:
        conn.execute(TrailEntry.__table__.delete().where(TrailEntry.seq == row.seq))
        conn.execute(TrailEntry.__table__.insert().values(**row._mapping))


def broken(url) -> str:
    out = verify(url)
    assert out.exit_code == 1, out.output
    [line] = out.stderr.splitlines()
    return line


COLUMNS = ("at", "alert_id", "action", "actor", "detail", "hash")


@pytest.mark.parametrize("where", ["first", "rejection", "last"])
@pytest.mark.parametrize("column", [*COLUMNS, "prev_hash"])
def test_updating_one_column_of_one_row_breaks_the_chain_there(intact, column, where):
    engine, url = intact
    seq = positions(engine)[where]
    row = row_of(engine, seq)
    with engine.begin() as conn:
        if column == "prev_hash":
            conn.execute(text("UPDATE trail SET prev_hash = upper(prev_hash) WHERE seq = :s"),
                         {"s": seq})
        else:  # another entry's value for that column: plain SQL on every backend
            donor = next(r.seq for r in conn.execute(select(TrailEntry).order_by(TrailEntry.seq))
                         if getattr(r, column) is not None
                         and getattr(r, column) != getattr(row, column))
            conn.execute(text(f"UPDATE trail SET {column} = (SELECT t.{column} FROM trail t "
                              "WHERE t.seq = :d) WHERE seq = :s"), {"d": donor, "s": seq})
    try:
        line = broken(url)
        assert line.startswith(f"Error: trail entry #{seq} (")
        expected = f"does not chain to entry #{seq - 1}" if column == "prev_hash" else \
            "was changed: its content no longer matches its hash"
        assert expected in line
    finally:
        restore(engine, row)


@pytest.mark.parametrize("where", ["first", "rejection", "last"])
def test_deleting_one_row_is_found(intact, where):
    engine, url = intact
    seq = positions(engine)[where]
    row = row_of(engine, seq)
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM trail WHERE seq = :s"), {"s": seq})
    try:
        line = broken(url)
        if where == "last":
            assert line == f"Error: the trail ends at entry #{seq - 1} but its head records " \
                           f"entry #{seq}: the newest entries were deleted or added behind " \
                           "the program's back"
        else:
            assert line.startswith(f"Error: trail entry #{seq} is missing (the next one is "
                                   f"#{seq + 1})")
    finally:
        restore(engine, row)


@pytest.mark.parametrize("forgery", ["chained", "junk", "before_the_first"])
def test_inserting_a_forged_row_is_found(intact, forgery):
    """Even a forger who knows the hash function and chains the row correctly is caught
    by the head row; a row slipped in front of the first is out of sequence."""
    engine, url = intact
    last = row_of(engine, positions(engine)["last"])
    seq, prev = (0, "0" * 64) if forgery == "before_the_first" else (last.seq + 1, last.hash)
    # the forged row copies the last one's time and detail (so the SQL is the same on every
    # backend), and is hashed over exactly what it holds
    digest = entry_hash(seq, last.at, last.alert_id, "confirmed", "jw-monitor-1", last.detail,
                        prev)
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO trail (region, seq, at, alert_id, action, actor, "
                          "detail, prev_hash, hash) VALUES ((SELECT t.region FROM trail t "
                          "WHERE t.seq = :last), :seq, (SELECT t.at FROM trail t WHERE "
                          "t.seq = :last), :alert, 'confirmed', 'jw-monitor-1', (SELECT t.detail "
                          "FROM trail t WHERE t.seq = :last), :prev, :hash)"),
                     {"seq": seq, "last": last.seq, "alert": last.alert_id, "prev": prev,
                      "hash": "f" * 64 if forgery == "junk" else digest})
    try:
        line = broken(url)
        if forgery == "chained":
            assert line.startswith(f"Error: the trail ends at entry #{seq} but its head "
                                   f"records entry #{last.seq}")
        elif forgery == "junk":
            assert re.match(rf"Error: trail entry #{seq} \(confirmed, alert \d+\) was changed",
                            line)
        else:
            assert line.startswith("Error: trail entry #0 (confirmed, alert ") and \
                "comes before entry #1: inserted behind the program's back" in line
    finally:
        with engine.begin() as conn:
            conn.execute(text("DELETE FROM trail WHERE seq = :s"), {"s": seq})
