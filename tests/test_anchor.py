"""Anchors: signed checkpoints of the trail kept outside the database. A trail cut short,
wiped and reset, rolled back or rewritten and re-hashed still verifies as a chain; against
an anchor it fails, naming the anchor and what no longer holds."""

from __future__ import annotations

import http.server
import json
import threading
from datetime import datetime, timezone

import pytest
from click.testing import CliRunner
from sqlalchemy import delete, select, update

from cli import cli
from monitor import anchor, chainhash, trail
from monitor.anchor import AnchorError
from monitor.models import TrailEntry, TrailHead
from monitor.trail import Entry, entry_hash
from monitor.trailcheck import verify

KEY = "0f" * 32  # 64 hex digits: a valid HMAC secret and Ed25519 seed alike
AT = datetime(2025, 10, 9, 2, 0, tzinfo=timezone.utc)


def add(engine, n: int, start: int = 0) -> None:
    for i in range(start, start + n):
        with engine.begin() as conn:
            trail.append(conn, AT, [Entry("note", None, "k1", {"i": i})])


@pytest.fixture
def cmd(db_url, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MONITOR_AUDIT_KEY", KEY)
    monkeypatch.delenv("MONITOR_AUDIT_PUBLIC_KEY", raising=False)
    monkeypatch.delenv("MONITOR_DATABASE_URL", raising=False)
    monkeypatch.delenv("MONITOR_CONFIG", raising=False)
    runner = CliRunner()
    return lambda *args: runner.invoke(cli, ["--db", db_url, *map(str, args)])


def truncate(conn, keep: int) -> None:
    """What a database owner does to hide the newest entries: delete them, move the head."""
    conn.execute(delete(TrailEntry).where(TrailEntry.seq > keep))
    last = conn.scalar(select(TrailEntry.hash).where(TrailEntry.seq == keep)) \
        if keep else trail.GENESIS
    conn.execute(update(TrailHead).values(seq=keep, hash=last))


def rehash(conn) -> None:
    """Rewrite entry #2's content and re-hash the chain from there: a valid chain again."""
    rows = conn.execute(select(TrailEntry).order_by(TrailEntry.seq)).all()
    prev = trail.GENESIS
    for r in rows:
        detail = {"i": 99} if r.seq == 2 else r.detail
        digest = entry_hash(r.seq, r.at, r.alert_id, r.action, r.actor, detail, prev)
        conn.execute(update(TrailEntry).where(TrailEntry.seq == r.seq)
                     .values(detail=detail, prev_hash=f"x{r.seq}"))  # prev_hash is unique
        conn.execute(update(TrailEntry).where(TrailEntry.seq == r.seq)
                     .values(prev_hash=prev, hash=digest))
        prev = digest
    conn.execute(update(TrailHead).values(hash=prev))


@pytest.mark.parametrize("tamper, message", [
    (lambda c: truncate(c, 3), "the trail now ends at entry #3: anchored entries were "
                               "removed (truncation, a wipe and reset, or a rollback to a "
                               "backup)"),
    (lambda c: truncate(c, 0), "the trail now ends at entry #0: anchored entries were removed"),
    (rehash, "trail entry #5 now has hash "),
])
def test_a_trail_changed_behind_the_anchor_fails(cmd, engine, tmp_path, tamper, message):
    add(engine, 5)
    made = cmd("audit", "anchor", "--out", tmp_path / "a.json")
    assert made.exit_code == 0, made.output
    head = verify(engine).head
    assert made.stdout == (f"anchored entry #5 · head {head} · sha256 · hmac-sha256 → "
                           f"{tmp_path / 'a.json'}\n")
    ok = cmd("audit", "verify", "--anchor", tmp_path / "a.json")
    assert ok.exit_code == 0 and ok.stdout.splitlines()[1].startswith(
        "anchors hold: 1 · newest entry #5 at ")
    with engine.begin() as conn:
        tamper(conn)
    assert cmd("audit", "verify").exit_code == 0  # still a valid chain on its own
    broken = cmd("audit", "verify", "--anchor", tmp_path / "a.json")
    assert broken.exit_code == 1
    assert broken.stderr.startswith(f"Error: {tmp_path / 'a.json'} (anchored ")
    assert message in broken.stderr


def test_a_sqlite_backup_restored_fails_against_a_later_anchor(cmd, engine, db_url, tmp_path):
    if not db_url.startswith("sqlite"):
        pytest.skip("SQLite's backup API: on PostgreSQL the truncation cases above are the "
                    "same rollback")
    import sqlite3

    def copy(source, target):
        with sqlite3.connect(source) as src, sqlite3.connect(target) as dst:
            src.backup(dst)

    add(engine, 2)
    path = db_url.removeprefix("sqlite:///")
    copy(path, tmp_path / "backup.db")
    add(engine, 2, start=2)
    assert cmd("audit", "anchor", "--out", tmp_path / "later.json").exit_code == 0
    copy(tmp_path / "backup.db", path)
    assert verify(engine).entries == 2
    broken = cmd("audit", "verify", "--anchor", tmp_path / "later.json")
    assert broken.exit_code == 1 and "the trail now ends at entry #2" in broken.stderr


def test_every_anchor_of_a_directory_is_checked_and_every_failure_named(engine, tmp_path):
    env = {"MONITOR_AUDIT_KEY": KEY}
    folder = tmp_path / "anchors"
    folder.mkdir()
    for n in (1, 2):
        add(engine, 2, start=2 * n)
        anchor.anchor(engine, AT.replace(hour=n), "hmac", directory=folder, environ=env)
    assert len(anchor.check(engine, [folder], env).anchors) == 2
    with engine.begin() as conn:
        truncate(conn, 1)
    with pytest.raises(AnchorError) as err:
        anchor.check(engine, [folder], env)
    lines = str(err.value).splitlines()
    assert [line.split(" (anchored")[0] for line in lines] == [
        str(folder / "anchor-20251009T010000Z-2.json"),
        str(folder / "anchor-20251009T020000Z-4.json")]


def test_an_edited_anchor_or_another_key_is_refused(engine, tmp_path):
    env = {"MONITOR_AUDIT_KEY": KEY}
    add(engine, 3)
    path = anchor.anchor(engine, AT, "hmac", out=tmp_path / "a.json", environ=env).written[0]
    data = json.loads(open(path).read())
    data["entries"] = 2
    (tmp_path / "edited.json").write_text(json.dumps(data))
    forged = "the signature does not match: the anchor was altered, forged, or signed with " \
             "another key"
    with pytest.raises(AnchorError, match=forged):
        anchor.check(engine, [tmp_path / "edited.json"], env)
    with pytest.raises(AnchorError, match=forged):
        anchor.check(engine, [tmp_path / "a.json"], {"MONITOR_AUDIT_KEY": "1" * 64})


def test_the_key_must_be_set_and_long_enough(cmd, engine, tmp_path, monkeypatch):
    monkeypatch.setenv("MONITOR_AUDIT_KEY", "short")
    result = cmd("audit", "anchor", "--out", tmp_path / "a.json")
    assert result.exit_code == 1
    assert result.stderr == ("Error: MONITOR_AUDIT_KEY is too short: anchors are signed with "
                             "it (HMAC-SHA256); give it at least 32 characters, e.g. the "
                             "output of `openssl rand -hex 32`\n")
    monkeypatch.delenv("MONITOR_AUDIT_KEY")
    assert "MONITOR_AUDIT_KEY is not set" in cmd("audit", "anchor", "--out", "a.json").stderr
    assert not (tmp_path / "a.json").exists()


def test_anchor_without_a_destination_is_a_usage_error(cmd):
    result = cmd("audit", "anchor")
    assert result.exit_code == 2
    assert "give --out FILE, or set audit.anchor_dir or audit.anchor_webhook" in result.stderr


def test_ed25519_anchors_verify_with_the_public_key_alone(engine, tmp_path):
    add(engine, 2)
    signer = {"MONITOR_AUDIT_KEY": KEY}
    public = anchor.public_key(signer)
    anchor.anchor(engine, AT, "ed25519", out=tmp_path / "a.json", environ=signer)
    checked = anchor.check(engine, [tmp_path / "a.json"], {"MONITOR_AUDIT_PUBLIC_KEY": public})
    assert checked.anchors[0]["signature_type"] == "ed25519"
    other = anchor.public_key({"MONITOR_AUDIT_KEY": "1" * 64})
    with pytest.raises(AnchorError, match="signed with another Ed25519 key"):
        anchor.check(engine, [tmp_path / "a.json"], {"MONITOR_AUDIT_PUBLIC_KEY": other})
    with pytest.raises(AnchorError, match="the key inside the anchor proves nothing"):
        anchor.check(engine, [tmp_path / "a.json"], {})


def test_an_sm3_chain_is_anchored_with_its_hash_named(engine, tmp_path):
    env = {"MONITOR_AUDIT_KEY": KEY}
    trail.adopt(engine, "sm3")
    add(engine, 2)
    made = anchor.anchor(engine, AT, "hmac", out=tmp_path / "a.json", environ=env).anchor
    assert made["algorithm"] == "sm3"
    assert anchor.check(engine, [tmp_path / "a.json"], env).verified.algorithm == "sm3"
    empty = {**made, "entries": 0, "head": chainhash.genesis("sm3")}
    signed = anchor.sign({k: v for k, v in empty.items() if k not in (
        "signature", "signature_type", "key_id")}, "hmac", env)
    (tmp_path / "zero.json").write_text(json.dumps(signed))
    anchor.check(engine, [tmp_path / "zero.json"], env)  # every chain holds its genesis


class _Hook(http.server.BaseHTTPRequestHandler):
    received: list = []

    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        _Hook.received.append((self.headers["Idempotency-Key"], json.loads(body)))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args):
        pass


def test_an_anchor_is_posted_to_the_webhook(engine):
    server = http.server.HTTPServer(("127.0.0.1", 0), _Hook)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        add(engine, 1)
        url = f"http://127.0.0.1:{server.server_port}/anchors"
        done = anchor.anchor(engine, AT, "hmac", webhook=url,
                             environ={"MONITOR_AUDIT_KEY": KEY})
    finally:
        server.shutdown()
    assert done.written == [url]
    [(key, body)] = _Hook.received
    assert body == done.anchor and key == f"permit-monitor-anchor-1-{body['head'][:16]}"


def test_nightly_anchors_when_configured(tmp_path, db_url, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MONITOR_AUDIT_KEY", KEY)
    monkeypatch.delenv("MONITOR_DATABASE_URL", raising=False)
    (tmp_path / "anchors").mkdir()
    (tmp_path / "config.yaml").write_text("lease_wait_seconds: 0\naudit: {anchor_dir: anchors}\n")
    result = CliRunner().invoke(cli, ["--config", str(tmp_path / "config.yaml"), "--db", db_url,
                                      "nightly", "--as-of", "2025-10-01T18:00", "--json"])
    assert result.exit_code == 0, result.output
    counts = json.loads(result.stdout)["counts"]
    [written] = (tmp_path / "anchors").iterdir()
    assert counts["anchor"]["written"] == [str(written)]
    data = json.loads(written.read_text())
    assert (data["entries"], data["algorithm"]) == (counts["anchor"]["entries"], "sha256")


def test_the_monthly_report_prints_the_trail_head(cmd, engine):
    add(engine, 3)
    head = verify(engine).head
    result = cmd("report", "--period", "2025-10")
    assert result.exit_code == 0, result.output
    assert result.stdout.rstrip().splitlines()[-1] == \
        f"监察留痕：第 3 条，链头哈希 {head}（sha256）"
