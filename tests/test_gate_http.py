"""The workflow gate through the real HTTP server (uvicorn on 127.0.0.1 and a free port):
the issue's proof — the 58-second survey denied, a certificate without online payment
denied, a normal step allowed, an exemption turning a deny into an allow, a deny then
ingested raising an alert that cites the gate, and the store unable to answer giving
the configured degraded answer within the budget."""

from __future__ import annotations

import json
import logging
import sqlite3
import time
import urllib.error
import urllib.request
from concurrent.futures import CancelledError
from dataclasses import replace
from datetime import date, datetime, timedelta, timezone

import pytest
from sqlalchemy import create_engine, func, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError

from conftest import CATALOG, event, ingest_rows
from monitor import accounts, exemptions
from monitor.alerts import GATE_REFUSED
from monitor.catalog import ingest_catalog
from monitor.config.gate import GateConfig
from monitor.engine import evaluate
from monitor.models import Alert, GateLog, TrailEntry, User
from monitor.rules.loader import load_rules
from monitor.web.app import create_app
from monitor.web.site import SECURITY_HEADERS
from web_county import Server

AT = datetime(2025, 9, 30, 3, 0, tzinfo=timezone.utc)  # 11:00 local
RULES = """
- {id: fast, kind: step_too_fast, level: yellow, gate: deny}
- {id: unpaid, kind: unpaid_fee, level: red, gate: deny}
- {id: attach, kind: missing_attachment, gate: warn}
"""
SURVEY_58S = {"event_id": "w-2", "case_id": "c1", "item_code": "D04-XK-001", "step": "survey",
              "actor": "u2", "occurred_at": "2025-09-30 10:00:58",
              "attachments": ["现场踏勘意见书"]}


@pytest.fixture
def county(store, config, write_events, tmp_path):
    (tmp_path / "rules").mkdir()
    (tmp_path / "rules" / "gate.yaml").write_text(RULES, encoding="utf-8")
    config = replace(config, rules_dir=tmp_path / "rules",
                     gate=GateConfig(budget_ms=10_000, fail="open", workers=4))
    ingest_rows(store, config, write_events, [event("a1", "c1", "accept", "2025-09-30 10:00:00")])
    with store.begin() as conn:
        conn.execute(User.__table__.insert().values(region=config.region, id="k1", name="县监察",
                                                    roles=["monitor_l2"]))
    _, token = accounts.create_token(store, AT, "admin:test", service="oa", scope="gate")
    return store, config, token


@pytest.fixture
def server(county):
    store, config, _ = county
    running = Server(create_app(store, config, lambda: AT), lifespan="on").start()
    yield running
    running.stop()


def post(server, token, body, path="/api/v1/gate"):
    request = urllib.request.Request(server.url + path, json.dumps(body).encode(), method="POST",
                                     headers={"Authorization": f"Bearer {token}",
                                              "Content-Type": "application/json"})
    started = time.monotonic()
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read()), time.monotonic() - started
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}"), time.monotonic() - started


def test_the_58_second_survey_is_denied_and_logged_and_on_the_trail(county, server):
    store, _, token = county
    status, answer, _ = post(server, token, SURVEY_58S)
    assert status == 200 and answer["decision"] == "deny"
    assert [(r["rule_id"], r["kind"], r["level"]) for r in answer["reasons"]] == \
        [("fast", "step_too_fast", "yellow")]
    assert datetime.fromisoformat(answer["evaluated_at"]) == AT
    with store.connect() as conn:
        [row] = conn.execute(select(GateLog)).all()
        [entry] = conn.execute(select(TrailEntry).where(TrailEntry.action == "gate_denied")).all()
    assert (row.asked_by, row.channel, row.decision, row.event_id, row.case_id) == \
        ("service:oa", "api", "deny", "w-2", "c1")
    assert set(row.rule_versions) == {"fast", "unpaid", "attach"}
    assert (entry.actor, entry.detail["gate_log_id"], entry.channel) == ("service:oa", row.id, "api")


def test_a_normal_step_is_allowed(county, server):
    _, _, token = county
    status, answer, _ = post(server, token, {**SURVEY_58S, "occurred_at": "2025-09-30 10:45:00"})
    assert (status, answer["decision"], answer["reasons"]) == (200, "allow", [])


def test_every_answered_decision_is_in_the_gate_log_after_a_normal_shutdown(county,
                                                                            monkeypatch):
    """Allows and warns are logged after their answer, in batches (monitor/gatewriter.py);
    a deny before it. 60 decisions from 6 clients at once, each batch's write slowed by
    0.3 s (a busy store: lines are still queued when the server stops), the server stopped
    as ``permit-monitor web`` stops (its lifespan's shutdown closes the guard): each answer
    has its gate_log row, each deny its trail entry, none twice."""
    from concurrent.futures import ThreadPoolExecutor

    from monitor.gatewriter import LogWriter

    write = LogWriter._write

    def slow(self, batch, tries):
        time.sleep(0.3)
        return write(self, batch, tries)

    monkeypatch.setattr(LogWriter, "_write", slow)
    store, config, token = county
    running = Server(create_app(store, config, lambda: AT), lifespan="on").start()
    bodies = [{**SURVEY_58S, "event_id": f"s-{i}",
               "occurred_at": "2025-09-30 10:00:58" if i % 3 == 0 else "2025-09-30 10:45:00"}
              for i in range(60)]
    try:
        with ThreadPoolExecutor(6) as pool:
            answers = list(pool.map(lambda body: post(running, token, body), bodies))
    finally:
        running.stop()
    assert all(status == 200 for status, _, _ in answers)
    decided = {body["event_id"]: answer["decision"]
               for body, (_, answer, _) in zip(bodies, answers)}
    assert sorted(set(decided.values())) == ["allow", "deny"]
    with store.connect() as conn:
        logged = {r.event_id: r.decision for r in conn.execute(select(GateLog))}
        trailed = sorted(d["event_id"] for d in conn.execute(
            select(TrailEntry.detail).where(TrailEntry.action == "gate_denied")).scalars())
        count = conn.scalar(select(func.count()).select_from(GateLog))
    assert logged == decided and count == len(bodies)
    assert trailed == sorted(i for i, d in decided.items() if d == "deny")


def test_the_log_writer_keeps_no_thread_while_idle_and_loses_no_line(store, monkeypatch):
    """The writer's thread starts with a line and ends when idle (a process with one
    thread may fork its ingest reader), and a line queued after that starts another."""
    from monitor import gatewriter
    from monitor.gate import Verdict

    monkeypatch.setattr(gatewriter, "IDLE", 0.1)
    writer = gatewriter.LogWriter(store)
    allow = Verdict("allow", (), AT, {"case_id": "c1", "event_id": "x-1", "step": "survey"})
    writer.put(allow, "service:oa", "api", AT, 3)
    first = writer.thread
    assert first is not None
    deadline = time.monotonic() + 10
    while writer.thread is not None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert writer.thread is None and writer.written == 1
    first.join(10)  # let go under the lock, it may still be returning from its last line
    assert not first.is_alive()  # (other tests' guards may still hold writers of their own)
    writer.put(replace(allow, candidate={**allow.candidate, "event_id": "x-2"}),
               "service:oa", "api", AT, 4)
    writer.close()
    with store.connect() as conn:
        assert sorted(conn.scalars(select(GateLog.event_id))) == ["x-1", "x-2"]


def test_a_deny_is_answered_only_once_its_line_and_trail_entry_are_committed(store, tmp_path):
    """A deny's line goes through the writer's batches like the others (group commit),
    but its future — what its answer waits for — is set only after the transaction holding
    its gate_log row and its trail entry has committed; a deny given up on before its batch
    is not written, and one the store refuses carries the store's error."""
    from sqlalchemy.exc import OperationalError

    from monitor import gatewriter
    from monitor.gate import Verdict

    writer = gatewriter.LogWriter(store)
    deny = Verdict("deny", ({"rule_id": "r1", "kind": "step_too_fast", "level": "red",
                             "message": "太快", "effect": "deny"},), AT,
                   {"case_id": "c1", "event_id": "d-1", "step": "survey"})
    seen: list[tuple[int, int]] = []

    def look(_) -> None:  # another connection, the moment the answer may go out
        with store.connect() as conn:
            seen.append((conn.scalar(select(func.count()).select_from(GateLog)),
                         conn.scalar(select(func.count()).select_from(TrailEntry).where(
                             TrailEntry.action == "gate_denied"))))

    try:
        done = writer.put(deny, "service:oa", "api", AT, 5, answer_waits=True)
        assert done is not None
        done.add_done_callback(look)
        done.result(timeout=30)
        deadline = time.monotonic() + 10
        while not seen and time.monotonic() < deadline:
            time.sleep(0.01)
        assert seen == [(1, 1)]  # committed before the future was set
        dropped = writer.put(replace(deny, candidate={**deny.candidate, "event_id": "d-2"}),
                             "service:oa", "api", AT, 5, answer_waits=True,
                             wanted=lambda: False)
        assert dropped is not None
        with pytest.raises(CancelledError):
            dropped.result(timeout=30)
    finally:
        writer.close()
    with store.connect() as conn:
        assert list(conn.scalars(select(GateLog.event_id))) == ["d-1"]
    broken = gatewriter.LogWriter(create_engine(f"sqlite:///{tmp_path}/no-such-folder/x.db"))
    try:
        failed = broken.put(deny, "service:oa", "api", AT, 5, answer_waits=True)
        assert failed is not None
        with pytest.raises(OperationalError):
            failed.result(timeout=30)
    finally:
        broken.close()


def test_a_batch_of_denies_is_one_append_each_at_its_own_time(store):
    """The writer's batch of several denies (gatelog.record_many): one gate_log row each,
    and one trail entry each naming its row, at its own request's time; the chain holds."""
    from monitor import gatelog, trailcheck
    from monitor.gate import Verdict

    lines = [(Verdict("deny", ({"rule_id": "r1", "kind": "step_too_fast", "level": "red",
                                "message": "太快", "effect": "deny"},), AT,
                      {"case_id": f"c{i}", "event_id": f"d-{i}", "step": "survey"}),
              "service:oa", "api", AT + timedelta(seconds=i), i) for i in range(3)]
    allow = (replace(lines[0][0], decision="allow", reasons=(),
                     candidate={"case_id": "c9", "event_id": "a-9"}), "service:oa", "api", AT, 1)
    with store.begin() as conn:
        ids = gatelog.record_many(conn, [lines[0], allow, lines[1], lines[2]])
    with store.connect() as conn:
        logged = dict(conn.execute(select(GateLog.event_id, GateLog.id)).tuples().all())
        entries = conn.execute(select(TrailEntry.at, TrailEntry.detail).where(
            TrailEntry.action == "gate_denied").order_by(TrailEntry.seq)).all()
    assert ids == [logged["d-0"], logged["a-9"], logged["d-1"], logged["d-2"]]
    assert [(e.detail["event_id"], e.detail["gate_log_id"]) for e in entries] == \
        [(f"d-{i}", logged[f"d-{i}"]) for i in range(3)]
    assert [e.at.replace(tzinfo=timezone.utc) if e.at.tzinfo is None else e.at
            for e in entries] == [AT + timedelta(seconds=i) for i in range(3)]
    trailcheck.verify(store)  # raises TrailBroken if an entry's hash does not follow


def test_a_catalog_reloaded_while_serving_is_seen_by_the_next_decision(county, server,
                                                                     tmp_path):
    """The gate keeps what it reads of the catalog whole between decisions
    (monitor/catalogmemo.py): a reload through another engine moves the store's catalog
    version, and the next answer follows the new catalog — the item's survey minimum
    raised from 30 to 60 minutes makes the 45-minute survey too fast; the item added
    makes a candidate of it valid."""
    store, _, token = county
    survey_45 = {**SURVEY_58S, "occurred_at": "2025-09-30 10:45:00"}
    new_item = {**SURVEY_58S, "event_id": "n-1", "case_id": "c9", "item_code": "D04-XK-009",
                "step": "accept"}
    for body in (survey_45, survey_45):  # the second answer is the memo's
        assert post(server, token, body)[1]["decision"] == "allow"
    status, answer, _ = post(server, token, new_item)
    assert status == 422 and "D04-XK-009" in answer["detail"]
    path = tmp_path / "catalog-reloaded.yaml"
    path.write_text(CATALOG.replace("survey: 30,", "survey: 60,") + """\
  - {code: D04-XK-009, name: 新增事项, department: D04, category: license,
     promised_days: 5, legal_days: 10}
""", encoding="utf-8")
    other = create_engine(store.url)
    try:
        ingest_catalog(other, path)
    finally:
        other.dispose()
    status, answer, _ = post(server, token, {**survey_45, "event_id": "w-3"})
    assert (status, answer["decision"]) == (200, "deny")
    assert [r["rule_id"] for r in answer["reasons"]] == ["fast"]
    status, answer, _ = post(server, token, new_item)
    assert (status, answer["decision"]) == (200, "allow")


def test_a_certificate_without_online_payment_is_denied(county, server, write_events):
    store, config, token = county
    ingest_rows(store, config, write_events, [
        event("a2", "c1", "decide", "2025-09-30 10:50:00", actor="u2"),
        event("a3", "c1", "fee_paid", "2025-09-30 10:55:00", amount="200", channel="offline")],
        name="more.csv")
    status, answer, _ = post(server, token, {
        "case_id": "c1", "item_code": "D04-XK-001", "step": "certificate_printed",
        "actor": "u1", "occurred_at": "2025-09-30 10:58:00"})
    assert (status, answer["decision"]) == (200, "deny")
    assert [r["rule_id"] for r in answer["reasons"]] == ["unpaid"]
    assert "未见网上缴费" in answer["reasons"][0]["message"]


def test_an_exemption_turns_the_deny_into_an_allow(county, server):
    store, config, token = county
    exemptions.add(store, ["fast"], "fast", {"case": ["c1"]}, "纸质办件集中补录，已备案", "k1",
                   date(2025, 12, 31), AT, config.tz)
    status, answer, _ = post(server, token, SURVEY_58S)
    assert (status, answer["decision"], answer["reasons"]) == (200, "allow", [])
    assert [e["rule_id"] for e in answer["exempted"]] == ["fast"]


def test_a_denied_event_ingested_anyway_raises_an_alert_citing_the_gate(county, server,
                                                                      write_events):
    store, config, token = county
    assert post(server, token, SURVEY_58S)[1]["decision"] == "deny"
    ingest_rows(store, config, write_events, [event("w-2", "c1", "survey", "2025-09-30 10:00:58",
                                                    actor="u2", attachments="现场踏勘意见书")],
                name="anyway.csv")
    evaluate(store, config, AT + timedelta(hours=1), rules=load_rules([config.rules_dir]))
    with store.connect() as conn:
        [alert] = conn.execute(select(Alert).where(Alert.rule_id == "fast")).all()
        log_id = conn.scalar(select(GateLog.id))
    assert alert.message.startswith(GATE_REFUSED) and alert.level == "red"
    [refusal] = alert.evidence["gate_refused"]
    assert (refusal["gate_log_id"], refusal["event_id"], refusal["asked_by"]) == \
        (log_id, "w-2", "service:oa")


def test_tokens_of_other_scopes_and_bad_bodies_are_refused(county, server):
    store, _, token = county
    _, reader = accounts.create_token(store, AT, "admin:test", service="bi", scope="read")
    assert post(server, reader, SURVEY_58S)[0] == 403
    assert post(server, "pm_not-a-token", SURVEY_58S)[0] == 401
    status, body, _ = post(server, token, {**SURVEY_58S, "steps": "survey"})
    assert status == 422 and "did you mean 'step'" in json.dumps(body, ensure_ascii=False)


def test_answers_and_refusals_carry_the_security_headers(county, server):
    _, _, token = county
    for bearer, status in ((token, 200), ("pm_not-a-token", 401)):
        request = urllib.request.Request(
            server.url + "/api/v1/gate", json.dumps(SURVEY_58S).encode(), method="POST",
            headers={"Authorization": f"Bearer {bearer}", "Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                got, headers = response.status, response.headers
        except urllib.error.HTTPError as exc:
            got, headers = exc.code, exc.headers
        assert got == status
        assert {name: headers[name] for name in SECURITY_HEADERS} == SECURITY_HEADERS
        assert headers.get_all("Cache-Control") == ["no-store"]  # once, not twice


@pytest.mark.parametrize("fail, decision", [("open", "allow"), ("closed", "deny")])
def test_a_store_that_cannot_answer_gets_the_degraded_answer_within_budget(
        county, fail, decision, caplog):
    store, config, token = county
    config = replace(config, gate=GateConfig(budget_ms=300, fail=fail, workers=4))
    running = Server(create_app(store, config, lambda: AT), lifespan="on").start()
    try:
        for _ in range(20):  # the first answers on a busy machine may miss 0.3 s themselves
            # (a 503 too: the token not yet checked in time — it must be, before the lock)
            status, answer, _ = post(running, token, {**SURVEY_58S, "event_id": "w-0"})
            if status == 200 and not answer.get("degraded"):
                break
        with _locked(store), caplog.at_level(logging.WARNING, "monitor.gateguard"):
            status, answer, took = post(running, token, SURVEY_58S)
        assert (status, answer["decision"], answer.get("degraded")) == (200, decision, True)
        assert took < 1.0, f"answered in {took:.2f} s, budget 0.3 s"
        assert any("degraded answer" in r.getMessage() for r in caplog.records)
        deadline = time.monotonic() + 30  # logged once the store takes writes again
        while time.monotonic() < deadline:
            with store.connect() as conn:
                rows = conn.execute(select(GateLog).where(GateLog.degraded.is_(True),
                                                          GateLog.event_id == "w-2")).all()
            if rows:
                break
            time.sleep(0.1)
        assert [(r.decision, r.asked_by, r.event_id) for r in rows] == \
            [(decision, "service:oa", "w-2")]
    finally:
        running.stop()


class _locked:
    """The store unable to write events: another connection holds its lock (SQLite's
    exclusive lock; PostgreSQL's ACCESS EXCLUSIVE on events)."""

    def __init__(self, engine):
        self.url = make_url(engine.url)

    def __enter__(self):
        if self.url.get_backend_name() == "sqlite":
            self.conn = sqlite3.connect(self.url.database, timeout=5, isolation_level=None)
            self.conn.execute("BEGIN EXCLUSIVE")
        else:
            self.engine = create_engine(self.url)
            self.conn = self.engine.connect()
            self.conn.execute(text("LOCK TABLE events IN ACCESS EXCLUSIVE MODE"))
        return self

    def __exit__(self, *exc):
        if self.url.get_backend_name() == "sqlite":
            self.conn.execute("ROLLBACK")
            self.conn.close()
        else:
            self.conn.rollback()
            self.conn.close()
            self.engine.dispose()


class _Partition:
    """A TCP relay between the application and the PostgreSQL server that can be cut:
    while cut, nothing passes either way (queries hang as on a network partition); when
    restored, what waited goes through."""

    def __init__(self, host: str, port: int):
        import socket
        import threading

        self.upstream = (host, port)
        self.open = threading.Event()
        self.open.set()
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(16)
        self.port = self.listener.getsockname()[1]
        self.acceptor = threading.Thread(target=self._accept, daemon=True)
        self.acceptor.start()

    def _accept(self) -> None:
        import socket
        import threading

        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            self.open.wait()
            server = socket.create_connection(self.upstream)
            for a, b in ((client, server), (server, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    def _pump(self, source, target) -> None:
        import socket

        while True:
            try:
                data = source.recv(65536)
            except OSError:
                data = b""
            if not data:  # shut down, not only closed: the other direction's thread is
                for s in (source, target):  # in recv() on them, and a close alone sends
                    try:  # no FIN while it is: the application would wait forever
                        s.shutdown(socket.SHUT_RDWR)
                    except OSError:
                        pass
                    s.close()
                return
            self.open.wait()
            try:
                target.sendall(data)
            except OSError:
                return

    def close(self) -> None:
        """Restore, and end the accepting thread: a listening socket closed while another
        thread is in accept() does not wake it on Linux — shut down first, then join, so no
        thread of this relay outlives the test (ingest reads in child processes only from
        a single-threaded process: a leftover thread turned test_pipeline's off)."""
        import socket

        self.open.set()
        try:
            self.listener.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.listener.close()
        self.acceptor.join(timeout=5)
        assert not self.acceptor.is_alive(), "the relay's accepting thread did not end"


@pytest.mark.skipif(not __import__("conftest").PG_URL, reason="a network partition needs a "
                    "database server (MONITOR_TEST_DATABASE_URL)")
def test_a_database_cut_off_by_the_network_gets_the_degraded_answer_within_budget(county):
    store, config, token = county
    from monitor.db import create_store_engine

    url = make_url(store.url)
    partition = _Partition(url.host, url.port)
    relayed = create_store_engine(url.set(host="127.0.0.1", port=partition.port)
                                  .render_as_string(hide_password=False))
    config = replace(config, gate=GateConfig(budget_ms=300, fail="closed", workers=4))
    app = create_app(relayed, config, lambda: AT)
    running = Server(app, lifespan="on").start()
    try:
        # the token is checked once while the store answers: the first answers may come
        # too late (cold connections: a degraded deny, or a 503 before the token is known)
        for _ in range(20):
            status, answer, _ = post(running, token, {**SURVEY_58S, "event_id": "w-0"})
            if status == 200 and not answer.get("degraded"):
                break
        else:
            pytest.fail("the store never answered within the budget")
        # a degraded deny of the warm-up is logged, on the trail, after its answer: let it
        # commit before the cut (the cut itself mid-write: the test below)
        app.state.gate_guard.later.submit(lambda: None).result(timeout=30)
        partition.open.clear()
        status, answer, took = post(running, token, SURVEY_58S)
        assert (status, answer["decision"], answer.get("degraded")) == (200, "deny", True)
        assert took < 1.0, f"answered in {took:.2f} s, budget 0.3 s"
        assert "gate.fail: closed" in answer["reasons"][0]["message"]
        _, stranger = accounts.create_token(store, AT, "admin:test", service="x", scope="gate")
        assert post(running, stranger, SURVEY_58S)[0] == 503  # a token it cannot check now
    finally:
        partition.close()
        running.stop()
        relayed.dispose()


@pytest.mark.skipif(not __import__("conftest").PG_URL, reason="a network partition needs a "
                    "database server (MONITOR_TEST_DATABASE_URL)")
def test_a_guard_cut_off_while_holding_the_trail_lock_does_not_stop_the_trail(county,
                                                                             monkeypatch):
    """A deny's log line takes the trail's write lock; a guard cut off by the network
    before its commit left the server holding the lock for as long as it kept the
    connection (hours), and every other append (here a token made) waited on it. The
    server now ends such a transaction after IDLE_IN_TRANSACTION_MS."""
    import threading

    from monitor import gateguard, trail
    from monitor.db import create_store_engine

    monkeypatch.setattr(gateguard, "IDLE_IN_TRANSACTION_MS", 500)
    store, config, _ = county
    url = make_url(store.url)
    partition = _Partition(url.host, url.port)
    relayed = create_store_engine(url.set(host="127.0.0.1", port=partition.port)
                                  .render_as_string(hide_password=False))
    guard = gateguard.Guard(relayed, config, lambda: [])
    made = []
    try:
        with guard.writes.connect() as cut:
            cut.begin()
            trail.lock(cut)  # held, as by a deny's line being written
            partition.open.clear()
            try:
                maker = threading.Thread(target=lambda: made.append(accounts.create_token(
                    store, AT, "admin:test", service="y", scope="gate")), daemon=True)
                maker.start()
                maker.join(timeout=15)
            finally:
                partition.open.set()  # else leaving the block waits on the cut connection
            assert made, "a token could not be made: the trail's lock is still held"
            with pytest.raises(DBAPIError, match="idle-in-transaction"):
                cut.execute(text("select 1"))  # the server ended that transaction
    finally:
        partition.close()
        guard.close()
        relayed.dispose()
