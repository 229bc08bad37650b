"""One trail chain per region (issue 21 item 3): each region's entries chain on their own,
from a genesis bound to the region; the store's own chain (an entry naming no region)
keeps the unbound genesis, so a single county's hashes are what they always were; the
existing chain survives the upgrade and takes the configured region's code; and on
PostgreSQL an append to one region never waits on another region's transaction."""

from __future__ import annotations

import threading
import time
from datetime import datetime, timezone

import pytest
from click.testing import CliRunner
from sqlalchemy import JSON, column, create_engine, insert, select, table, text, update

from cli import cli
from conftest import PG_URL
from monitor import anchor, chainhash, trail, trailcheck
from monitor.anchor import AnchorError
from monitor.db import _alembic_config, open_store
from monitor.errors import UsageProblem
from monitor.models import TrailEntry, TrailHead
from monitor.types import UTCDateTime
from monitor.trail import ChainRegionError, Entry, TrailBroken, entry_hash

AT = datetime(2025, 10, 9, 2, 0, tzinfo=timezone.utc)
A, B = "330102", "330103"
KEY = "0f" * 32


def add(engine, n: int, region: str | None = None, start: int = 0) -> list[int]:
    seqs = []
    for i in range(start, start + n):
        with engine.begin() as conn:
            seqs += trail.append(conn, AT, [Entry("note", None, "k1", {"i": i}, region=region)])
    return seqs


def test_an_entry_naming_no_region_goes_on_the_stores_own_chain_hashed_as_before(engine):
    add(engine, 2)
    first = entry_hash(1, AT, None, "note", "k1", {"i": 0}, trail.GENESIS)
    with engine.connect() as conn:
        rows = conn.execute(select(TrailEntry).order_by(TrailEntry.seq)).all()
    assert [(r.region, r.seq, r.prev_hash) for r in rows] == [
        ("000000", 1, trail.GENESIS), ("000000", 2, first)]
    assert rows[0].hash == first  # the hashed bytes did not change: no region in them
    assert trailcheck.verify(engine) == trailcheck.Verified(2, rows[1].hash, "sha256", "000000")


def test_each_region_counts_its_own_entries_from_a_genesis_bound_to_it(engine):
    add(engine, 2)
    assert add(engine, 3, A) == [1, 2, 3]
    assert add(engine, 1, B) == [1]
    head = trail.head_of(engine, A)
    assert head.genesis == chainhash.genesis("sha256", A) != trail.GENESIS
    with engine.connect() as conn:
        first = conn.scalar(select(TrailEntry.prev_hash).where(TrailEntry.region == A,
                                                               TrailEntry.seq == 1))
        assert trail.regions(conn) == ["000000", A, B]
    assert first == chainhash.genesis("sha256", A)
    assert [(v.region, v.entries) for v in trailcheck.verify_all(engine)] == [
        ("000000", 2), (A, 3), (B, 1)]
    assert trailcheck.verify(engine, region=A).entries == 3
    assert trailcheck.verify_all(engine, only=[B])[0].entries == 1


def test_one_append_may_go_to_several_chains_each_in_order(engine):
    with engine.begin() as conn:
        seqs = trail.append(conn, AT, [Entry("a", None, region=B), Entry("b", None),
                                       Entry("c", None, region=B), Entry("d", None, region=A)])
    assert seqs == [1, 1, 2, 1]
    with engine.connect() as conn:
        assert conn.execute(select(TrailEntry.region, TrailEntry.seq, TrailEntry.action)
                            .order_by(TrailEntry.region, TrailEntry.seq)).all() == [
            ("000000", 1, "b"), (A, 1, "d"), (B, 1, "a"), (B, 2, "c")]
    assert len(trailcheck.verify_all(engine)) == 3


def test_a_chain_relabelled_as_another_regions_fails_at_its_first_entry(engine):
    add(engine, 2, A)
    with engine.begin() as conn:  # region A's chain passed off as region B's
        conn.execute(update(TrailEntry).where(TrailEntry.region == A).values(region=B))
        conn.execute(update(TrailHead).where(TrailHead.region == A).values(region=B))
    with pytest.raises(TrailBroken, match=f"region {B}: trail entry #1 .* does not chain to "
                                          "entry #0"):
        trailcheck.verify_all(engine)


def test_a_broken_chain_is_named_by_region_and_the_others_still_verify(engine):
    add(engine, 2, A)
    add(engine, 2, B)
    with engine.begin() as conn:
        conn.execute(update(TrailEntry).where(TrailEntry.region == B, TrailEntry.seq == 2)
                     .values(actor="m9"))
    with pytest.raises(TrailBroken, match=f"region {B}: trail entry #2 .* was changed"):
        trailcheck.verify_all(engine)
    assert trailcheck.verify_all(engine, only=[A])[0].entries == 2
    with engine.begin() as conn:  # a region's head deleted: its entries are no chain's
        conn.execute(TrailHead.__table__.delete().where(TrailHead.region == B))
    with pytest.raises(TrailBroken, match=f"region {B} has trail entries but no head row"):
        trailcheck.verify_all(engine)


def test_a_regions_head_for_its_report_is_its_chains_or_its_genesis(engine):
    add(engine, 2)
    add(engine, 1, A)
    assert trail.head_for(engine, None) == trail.head_of(engine)
    assert trail.head_for(engine, A) == trail.head_of(engine, A)
    assert trail.head_for(engine, B) == trail.Head(
        0, chainhash.genesis("sha256", B), "sha256", B, chainhash.genesis("sha256", B))
    with engine.connect() as conn:
        assert B not in trail.regions(conn)  # asking begins no chain


def test_an_unknown_region_is_a_usage_error_with_a_suggestion(engine):
    add(engine, 1, A)
    with pytest.raises(UsageProblem, match=r"'--region': no region with a trail chain in "
                                           r"this store '330120' \(did you mean '330102'\?\)"):
        trailcheck.verify_all(engine, only=["330120"])
    with engine.begin() as conn, pytest.raises(ChainRegionError, match="6 位数字"):
        trail.append(conn, AT, [Entry("note", None, region="33010")])


def test_the_stores_own_chain_takes_the_configured_region_once(engine):
    add(engine, 2)
    before = trailcheck.verify(engine)
    trail.adopt(engine, "sha256", A)
    after = trailcheck.verify(engine)
    assert (after.region, after.entries, after.head) == (A, 2, before.head)
    add(engine, 1)  # naming no region: the store's own chain, now A's
    assert trailcheck.verify(engine, region=A).entries == 3
    trail.adopt(engine, "sha256", A)  # the same: nothing to do
    with pytest.raises(ChainRegionError, match=f"this store's trail is region {A}'s"):
        trail.adopt(engine, "sha256", B)


def test_the_configured_region_cannot_take_over_another_regions_chain(engine):
    add(engine, 1, A)
    with pytest.raises(ChainRegionError, match="already has its own trail chain"):
        trail.adopt(engine, "sha256", A)


def test_a_chain_begun_per_region_takes_the_stores_hash_function(engine):
    trail.adopt(engine, "sm3")
    add(engine, 1, A)
    head = trail.head_of(engine, A)
    assert (head.algorithm, head.genesis) == ("sm3", chainhash.genesis("sm3", A))
    assert trailcheck.verify(engine, region=A).algorithm == "sm3"


def test_an_alerts_history_is_checked_against_its_own_regions_chain(engine):
    with engine.begin() as conn:
        trail.append(conn, AT, [Entry("raised", 7, region=A)])
    add(engine, 1, B)
    with engine.begin() as conn:
        trail.append(conn, AT, [Entry("acknowledged", 7, "m1", region=A)])
    history = trail.history(engine, 7)
    assert [(e.region, e.seq) for e in history] == [(A, 1), (A, 2)]
    assert trailcheck.check_entries(engine, history) is None
    with engine.begin() as conn:
        conn.execute(update(TrailHead).where(TrailHead.region == A)
                     .values(genesis=chainhash.genesis("sha256", B)))
    assert "does not chain to entry #0" in trailcheck.check_entries(engine, history)


@pytest.mark.parametrize("handed", [None, A])
def test_a_chain_from_before_0027_verifies_after_and_takes_the_region(empty_db_url, handed):
    """The single chain of a store at 0025 becomes the store's own chain with every hash
    as it was: under the region open_store hands the migration (config.yaml's), or under
    000000 and the configured region's on the next start."""
    from alembic import command

    old = create_engine(empty_db_url)
    with old.begin() as conn:
        command.upgrade(_alembic_config(conn), "0025")
    before = table("trail", column("seq"), column("at", UTCDateTime()), column("alert_id"),
                   column("action"), column("actor"), column("detail", JSON()),
                   column("prev_hash"), column("hash"))  # 0025's columns: no region
    with old.begin() as conn:  # two entries, as 0025's program wrote them
        prev = trail.GENESIS
        for seq in (1, 2):
            digest = entry_hash(seq, AT, None, "note", "k1", {"i": seq}, prev)
            conn.execute(insert(before).values(seq=seq, at=AT, alert_id=None, action="note",
                                               actor="k1", detail={"i": seq},
                                               prev_hash=prev, hash=digest))
            prev = digest
        conn.execute(text("UPDATE trail_head SET seq = 2, hash = :h"), {"h": prev})
    old.dispose()
    engine = open_store(empty_db_url, region=handed)
    try:
        assert trailcheck.verify(engine) == trailcheck.Verified(2, prev, "sha256",
                                                                handed or "000000")
        assert trail.head_of(engine).genesis == trail.GENESIS
        trail.adopt(engine, "sha256", A)
        assert trailcheck.verify_all(engine) == [trailcheck.Verified(2, prev, "sha256", A)]
    finally:
        engine.dispose()


# ------------------------------------------------------------------ the command and anchors


@pytest.fixture
def cmd(db_url, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MONITOR_AUDIT_KEY", KEY)
    for name in ("MONITOR_AUDIT_PUBLIC_KEY", "MONITOR_DATABASE_URL", "MONITOR_CONFIG"):
        monkeypatch.delenv(name, raising=False)
    runner = CliRunner()
    return lambda *args: runner.invoke(cli, ["--db", db_url, *map(str, args)])


def test_audit_verify_reports_one_chain_as_before_and_several_by_region(cmd, engine):
    add(engine, 2)
    head = trail.head_of(engine).hash
    one = cmd("audit", "verify")
    assert one.exit_code == 0, one.output
    assert one.output.splitlines()[0] == f"trail intact: 2 entries · head {head}"
    add(engine, 3, A)
    several = cmd("audit", "verify")
    assert several.exit_code == 0, several.output
    lines = several.output.splitlines()
    assert lines[:3] == [f"trail of region 000000 intact: 2 entries · head {head}",
                         f"trail of region {A} intact: 3 entries · head "
                         f"{trail.head_of(engine, A).hash}",
                         "trail intact: 2 regions · 5 entries"]
    assert lines[3].startswith("records match the trail:")
    only = cmd("audit", "verify", "--region", A)
    assert only.exit_code == 0 and only.output.startswith(f"trail of region {A} intact: 3 ")
    unknown = cmd("audit", "verify", "--region", "330199")
    assert unknown.exit_code == 2
    assert "no region with a trail chain in this store '330199'" in unknown.stderr


def test_an_anchor_holds_every_regions_head_and_a_cut_chain_is_named(engine, tmp_path):
    env = {"MONITOR_AUDIT_KEY": KEY}
    add(engine, 2)
    add(engine, 3, A)
    made = anchor.anchor(engine, AT, "hmac", out=tmp_path / "a.json", environ=env).anchor
    assert (made["region"], made["entries"]) == ("000000", 2)
    assert made["chains"] == {A: {"entries": 3, "head": trail.head_of(engine, A).hash,
                                  "algorithm": "sha256"}}
    checked = anchor.check(engine, [tmp_path / "a.json"], env)
    assert [(v.region, v.entries) for v in checked.chains] == [("000000", 2), (A, 3)]
    with engine.begin() as conn:  # region A's newest entry removed, its head moved back
        conn.execute(TrailEntry.__table__.delete().where(TrailEntry.region == A,
                                                         TrailEntry.seq == 3))
        last = conn.scalar(select(TrailEntry.hash).where(TrailEntry.region == A,
                                                         TrailEntry.seq == 2))
        conn.execute(update(TrailHead).where(TrailHead.region == A).values(seq=2, hash=last))
    with pytest.raises(AnchorError, match=f"region {A}: the trail now ends at entry #2"):
        anchor.check(engine, [tmp_path / "a.json"], env)
    with engine.begin() as conn:  # the whole chain of A gone
        conn.execute(TrailEntry.__table__.delete().where(TrailEntry.region == A))
        conn.execute(TrailHead.__table__.delete().where(TrailHead.region == A))
    with pytest.raises(AnchorError, match=f"region {A} has no trail chain any more"):
        anchor.check(engine, [tmp_path / "a.json"], env)


# ------------------------------------------------------------------ PostgreSQL: no waiting


def _append_in_thread(engine, region, done: threading.Event, out: list) -> threading.Thread:
    def run():
        with engine.begin() as conn:
            out.extend(trail.append(conn, AT, [Entry("note", None, region=region)]))
        done.set()
    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


@pytest.mark.skipif(not PG_URL, reason="PostgreSQL only ($MONITOR_TEST_DATABASE_URL)")
def test_on_postgresql_an_append_waits_only_for_its_own_regions_transaction(engine):
    """Real transactions on a real server: while one holds region A's head (appended, not
    committed), an append to region B commits at once, and another append to A waits
    until the first commits, then follows it in A's chain."""
    add(engine, 1, A)
    add(engine, 1, B)  # both chains exist: beginning one is not what is measured
    holder = engine.connect()
    tx = holder.begin()
    assert trail.append(holder, AT, [Entry("note", None, "k1", {"hold": 1}, region=A)]) == [2]
    try:
        other, other_done = [], threading.Event()
        _append_in_thread(engine, B, other_done, other)
        assert other_done.wait(10), "an append to region B waited on region A's transaction"
        assert other == [2]
        same, same_done = [], threading.Event()
        thread = _append_in_thread(engine, A, same_done, same)
        assert not same_done.wait(1.0), "an append to region A did not wait for A's head"
        with engine.connect() as conn:  # it waits on the head row's lock, nothing else
            waiting = conn.exec_driver_sql(
                "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                "AND query LIKE 'UPDATE trail_head%%'").scalar()
        assert waiting == 1
        tx.commit()
        assert same_done.wait(10)
        thread.join(10)
        assert same == [3]
    finally:
        if tx.is_active:
            tx.rollback()
        holder.close()
    assert [(v.region, v.entries) for v in trailcheck.verify_all(engine)] == [
        ("000000", 0), (A, 3), (B, 2)]


def test_the_state_replay_reads_every_regions_chain(engine, monkeypatch):
    """Each region's chain is folded in its own order; seq alone orders nothing across
    chains (two chains each have an entry #1), so paging by it would skip one."""
    from monitor import supervised
    from monitor.supervised import replay

    monkeypatch.setattr(supervised, "REPLAY_CHUNK", 1)

    def new(row_id):
        return [{"table": "exemptions", "id": row_id, "set": {"active": True}, "new": True}]

    with engine.begin() as conn:
        trail.append(conn, AT, [Entry("exemption_added", None, changes=new(1), region=A),
                                Entry("exemption_added", None, changes=new(2), region=B)])
    replayed = replay(engine)
    assert replayed.problems == []
    assert {k: v[1] for k, v in replayed.rows["exemptions"].items()} == {1: 1, 2: 1}


@pytest.mark.skipif(not PG_URL, reason="PostgreSQL only ($MONITOR_TEST_DATABASE_URL)")
def test_on_postgresql_two_transactions_beginning_one_regions_chain_make_one(engine):
    """The second waits for the first's head row, then appends after its entry."""
    holder = engine.connect()
    tx = holder.begin()
    assert trail.append(holder, AT, [Entry("note", None, region=A)]) == [1]  # begins A
    try:
        second, done = [], threading.Event()
        thread = _append_in_thread(engine, A, done, second)
        assert not done.wait(1.0)
        tx.commit()
        assert done.wait(10)
        thread.join(10)
    finally:
        if tx.is_active:
            tx.rollback()
        holder.close()
    assert second == [2]
    assert trailcheck.verify(engine, region=A).entries == 2


NEIGHBOUR = """\
departments:
  - {code: N04, name: 邻县应急管理局}
users:
  - {id: n1, name: 王五, department: N04, roles: [clerk], phone: "13800000011"}
items:
  - code: N04-XK-001
    name: 危险化学品安全生产许可
    department: N04
    category: license
    promised_days: 10
    legal_days: 20
    fee: 0
"""


def test_an_alerts_entries_go_on_its_regions_chain_and_verify_reports_both(
        db_url, tmp_path, monkeypatch, write_events):
    """Two counties in one store (config.yaml's 330102, and 330106 ingested with
    --region): each alert's entries are on its own county's chain, and audit verify,
    the state replay included, holds for both."""
    from conftest import CATALOG, event

    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MONITOR_DATABASE_URL", raising=False)
    (tmp_path / "config.yaml").write_text("region: 330102\n", encoding="utf-8")
    (tmp_path / "catalog.yaml").write_text(CATALOG, encoding="utf-8")
    (tmp_path / "neighbour.yaml").write_text(NEIGHBOUR, encoding="utf-8")
    runner = CliRunner()

    def run(*args):
        result = runner.invoke(cli, ["--db", db_url, *map(str, args)])
        assert result.exit_code in (0, 3), result.output + result.stderr
        return result

    run("ingest", "catalog", "catalog.yaml")
    run("ingest", "catalog", "--region", "330106", "neighbour.yaml")
    run("ingest", "events", write_events([
        event("e1", "c1", occurred_at="2025-09-01 09:00"),
        event("e2", "c1", "decide", occurred_at="2025-12-30 09:00")], "home.csv"))
    run("ingest", "events", "--region", "330106", write_events([
        event("n1", "k1", item_code="N04-XK-001", actor="n1", occurred_at="2025-09-01 09:00"),
        event("n2", "k1", "decide", item_code="N04-XK-001", actor="n1",
              occurred_at="2025-12-30 09:00")], "away.csv"))
    run("run", "--as-of", "2026-01-05T00:00:00+08:00")
    engine = create_engine(db_url)
    try:
        with engine.connect() as conn:
            from monitor.models import Alert

            placed = conn.execute(select(Alert.region, TrailEntry.region).join(
                TrailEntry, TrailEntry.alert_id == Alert.id)).all()
            chains = trail.regions(conn)
    finally:
        engine.dispose()
    assert {"330102", "330106"} <= {a for a, _ in placed}
    assert all(a == t for a, t in placed), placed
    assert chains == ["330102", "330106"]
    verified = run("audit", "verify").output.splitlines()
    assert verified[0].startswith("trail of region 330102 intact: ")
    assert verified[1].startswith("trail of region 330106 intact: ")
    assert verified[2].startswith("trail intact: 2 regions · ")
    assert verified[3].startswith("records match the trail: ")
    # a county's report names its own chain's head
    engine = create_engine(db_url)
    try:
        away = trail.head_of(engine, "330106")
    finally:
        engine.dispose()
    report = run("report", "--period", "2025-12", "--region", "330106").stdout
    assert report.rstrip().splitlines()[-1] == \
        f"监察留痕：第 {away.seq} 条，链头哈希 {away.hash}（sha256）"


def _alert_in(engine, region: str, key: str) -> int:
    from monitor.models import Alert

    with engine.begin() as conn:
        return conn.execute(insert(Alert).values(
            region=region, dedupe_key=key, rule_id="r", kind="overdue", subject=key,
            level="red", raised_at=AT, updated_at=AT, message="m", rule_version="v")
            .returning(Alert.id)).scalar_one()


def _act_in_thread(engine, alert_id, done: threading.Event) -> threading.Thread:
    def run():
        with engine.begin() as conn:
            trail.lock_alert(conn, alert_id)
            trail.append(conn, AT, [Entry("acknowledged", alert_id, "m1")])
        done.set()
    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


@pytest.mark.skipif(not PG_URL, reason="PostgreSQL only ($MONITOR_TEST_DATABASE_URL)")
def test_on_postgresql_actions_on_two_counties_alerts_do_not_wait_on_each_other(engine):
    """An action on an alert (supervision.begin_action) locks its alert's region's head
    only: while one on county A's alert is open, one on county B's commits, and so does an
    append to the store's own chain; a second action in A waits."""
    in_a, in_b = _alert_in(engine, A, "a"), _alert_in(engine, B, "b")
    holder = engine.connect()
    tx = holder.begin()
    trail.lock_alert(holder, in_a)
    assert trail.append(holder, AT, [Entry("acknowledged", in_a, "m1")]) == [1]
    try:
        other = threading.Event()
        _act_in_thread(engine, in_b, other)
        assert other.wait(10), "an action in county B waited on county A's"
        own, own_done = [], threading.Event()
        _append_in_thread(engine, None, own_done, own)
        assert own_done.wait(10), "the store's own chain waited on county A's action"
        same = threading.Event()
        thread = _act_in_thread(engine, in_a, same)
        assert not same.wait(1.0)
        tx.commit()
        assert same.wait(10)
        thread.join(10)
    finally:
        if tx.is_active:
            tx.rollback()
        holder.close()
    assert {(v.region, v.entries) for v in trailcheck.verify_all(engine)} == {
        ("000000", 1), (A, 2), (B, 1)}
    assert [e.region for e in trail.history(engine, in_a)] == [A, A]
