"""Reading in a second process: the same stored rows, quarantine, counts and errors as in
one process; it is used only where it can help; it never outlives the ingestion."""

from __future__ import annotations

import csv
import dataclasses
import gzip
import io
import multiprocessing
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import delete, select

from conftest import EVENT_COLUMNS, FIXTURES, NOW
from monitor.config import load_config
from monitor.errors import ConfigError, IngestError
from monitor.ingest import ingest_events, pipeline
from monitor.ingest import store as store_module
from monitor.models import Event, IngestRun, Quarantine

BATCH = 50  # 2 × 50 rows × 100 bytes: files over 10 kB are read in a second process
# Every contract breach: the fixture's bad rows (one is too short to be a row).
BAD_LINES = [line for line in (FIXTURES / "events_bad.csv").read_text("utf-8").splitlines()[1:]
             if not line.startswith("ok-")]
LONG_STEP = "T07-3 Draft intern advice hold for aspect 3 and a further long description"


def good_row(i: int) -> list[str]:
    """A valid event; the optional fields vary with i."""
    row = dict.fromkeys(EVENT_COLUMNS, "")
    row.update(event_id=f"e{i}", case_id=f"c{i // 6}", item_code="D04-XK-001",
               step=("accept", "survey", "review", "fee_paid")[i % 4], actor=f"u{1 + i % 2}",
               occurred_at=f"2025-09-{1 + i % 28:02d}T10:{i % 60:02d}:00+08:00")
    if i % 3:
        row["recorded_at"] = f"2025-09-{1 + i % 28:02d} 11:00:{i % 60:02d}.{i:06d}"
    if row["step"] == "fee_paid":
        row.update(amount=f"{i % 500}.{i % 100:02d}", channel=("Online", "offline")[i % 2])
    if i % 5 == 0:
        row.update(department=" D04 ", attachments="现场踏勘意见书; ;照片", days=str(i % 9),
                   note=f"第{i}条 备注")
    return [row[c] for c in EVENT_COLUMNS]


def write_mixed(path: Path, n: int) -> Path:
    """Valid rows, every kind of bad row, and duplicates and conflicts in the same batch
    and across batches."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(EVENT_COLUMNS)
    for i in range(n):
        writer.writerow(good_row(i))
        if i % 7 == 3:
            buf.write(BAD_LINES[i // 7 % len(BAD_LINES)] + "\n")
        if i % 13 == 5:
            writer.writerow(good_row(i - 2))             # duplicate, same batch
        if i % 17 == 16 and i > 80:
            writer.writerow(good_row(i - 80))            # duplicate, an earlier batch
        if i % 19 == 7 and i > 30:
            changed = good_row(i - 30)
            changed[EVENT_COLUMNS.index("note")] = "changed"
            writer.writerow(changed)                     # conflict
        if i == n // 2:
            writer.writerow(["e-long", "c1", "D04-XK-001", "", LONG_STEP, "u1",
                             "2025-09-30 10:00", "", "", "", "", "", ""])
    path.write_text(buf.getvalue(), encoding="utf-8")
    return path


@pytest.fixture
def spawned(monkeypatch):
    """The sources read in a second process during the test, by name."""
    names: list[str] = []
    real = pipeline.prepared_in_child

    def spy(rows, prepare, size, position, label):
        names.append(label)
        return real(rows, prepare, size, position, label)

    monkeypatch.setattr(pipeline, "prepared_in_child", spy)
    return names


@pytest.fixture
def pconfig(config):
    return dataclasses.replace(config, batch_size=BATCH)


def snapshot(engine) -> tuple:
    """Everything an ingestion stores, less surrogate keys."""
    ev = [c for c in Event.__table__.c if c.name not in ("id", "run_id")]
    q = [c for c in Quarantine.__table__.c if c.name not in ("id", "run_id")]
    r = IngestRun
    with engine.connect() as conn:
        return (conn.execute(select(*ev).order_by(Event.event_id)).all(),
                conn.execute(select(*q).order_by(Quarantine.source, Quarantine.line,
                                                  Quarantine.raw_hash)).all(),
                conn.execute(select(r.kind, r.source, r.status, r.read, r.inserted, r.replaced,
                                    r.duplicates, r.quarantined).order_by(r.id)).all())


def wipe(engine) -> None:
    with engine.begin() as conn:
        for model in (Event, Quarantine, IngestRun):
            conn.execute(delete(model))


def ingest_both_ways(store, config, paths, spawned, **kw):
    """(outcome in one process, outcome with a second process); an outcome is the
    tallies or the error message, and the snapshot."""
    outcomes = []
    for parallel in (False, True):
        wipe(store)
        spawned.clear()
        try:
            results = list(ingest_events(store, dataclasses.replace(config,
                                                                    parallel_ingest=parallel),
                                         [str(p) for p in paths], NOW, **kw))
            got = [r.tally.as_dict() for r in results]
        except IngestError as exc:
            got = str(exc)
        assert bool(spawned) == parallel
        outcomes.append((got, snapshot(store)))
    return outcomes


def test_same_rows_quarantine_and_counts_as_one_process(store, pconfig, tmp_path, spawned):
    earlier = tmp_path / "earlier.csv"  # small: read in this process
    with open(earlier, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(EVENT_COLUMNS)
        writer.writerow(good_row(7))                      # stored before: a duplicate
        changed = good_row(9)
        changed[EVENT_COLUMNS.index("actor")] = "u9"
        writer.writerow(changed)                          # stored before: a conflict
    mixed = write_mixed(tmp_path / "mixed.csv", 600)
    one, two = ingest_both_ways(store, pconfig, [earlier, mixed], spawned)
    assert one == two
    [_, tally] = two[0]
    assert tally["read"] == tally["inserted"] + tally["duplicates"] + tally["quarantined"]
    assert tally["duplicates"] > 40 and tally["by_reason"]["conflict"] > 20
    assert set(tally["by_reason"]) >= {"missing_field", "empty_step", "bad_timestamp",
                                       "bad_amount", "unknown_item", "unknown_department",
                                       "bad_channel", "bad_days", "malformed_row", "too_long"}


def test_named_parameter_drivers_store_the_same_values(store, pconfig, tmp_path, spawned,
                                                       monkeypatch):
    mixed = write_mixed(tmp_path / "mixed.csv", 300)
    [_, expected] = ingest_both_ways(store, pconfig, [mixed], spawned)
    monkeypatch.setattr(store_module, "_PLACEHOLDER", {})  # as for a paramstyle "named"
    assert ingest_both_ways(store, pconfig, [mixed], spawned) == [expected, expected]


def _bad_encoding(path: Path) -> str:
    write_mixed(path, 400)
    with open(path, "ab") as f:
        f.write("e-gbk,c1,D04-XK-001,,受理,u1,2025-09-30 10:00,,,,,,\n".encode("gbk"))
    return "byte 0xCA is not UTF-8, though the lines before it are UTF-8 text"


def _bad_csv(path: Path) -> str:
    write_mixed(path, 400)
    with open(path, "a", encoding="utf-8") as f:
        f.write('e-big,c1,D04-XK-001,,accept,u1,2025-09-30 10:00,,,,,,"' + "x" * 140_000 + '"\n')
        f.write("e-after,c1,D04-XK-001,,accept,u1,2025-09-30 10:00,,,,,,\n")
    return "too_long", "field larger than field limit"


def test_a_row_that_cannot_be_split_is_quarantined_and_reading_goes_on(
        store, pconfig, tmp_path, spawned):
    """A field over the csv module's limit: once a whole-file error that lost the batch
    being read and every row after it."""
    path = tmp_path / "big.csv"
    reason, detail = _bad_csv(path)
    one, two = ingest_both_ways(store, pconfig, [path], spawned)
    assert one == two
    [tally] = one[0]
    assert [q.reason for q in two[1][1] if detail in q.detail] == [reason]
    assert tally["read"] == tally["inserted"] + tally["duplicates"] + tally["quarantined"]
    events, quarantined, runs = two[1]
    assert [run.status for run in runs] == ["done"]
    assert "e-after" in [e.event_id for e in events]
    assert quarantined and len(quarantined) == tally["quarantined"]


def _bad_gzip(path: Path) -> str:
    data = gzip.compress(write_mixed(path.with_suffix(""), 1500).read_bytes())
    path.write_bytes(data[:len(data) * 2 // 3])
    return "cannot read (Compressed file ended before the end-of-stream marker was reached)"


@pytest.mark.parametrize("name, damage", [("enc.csv", _bad_encoding), ("cut.csv.gz", _bad_gzip)])
def test_a_file_that_does_not_decode_is_refused_before_any_batch(store, pconfig, tmp_path,
                                                                  spawned, name, damage):
    """The whole file is decoded once when it is opened (to decide its encoding): a bad
    byte or a cut gzip stream stops it before a run starts or a row is stored."""
    path = tmp_path / name
    message = damage(path)
    with pytest.raises(IngestError) as raised:
        list(ingest_events(store, pconfig, [str(path)], NOW))
    assert str(raised.value).startswith(f"{path}:") and message in str(raised.value)
    assert snapshot(store) == ([], [], [])


def test_malformed_xes_is_the_same_line(store, pconfig, tmp_path, spawned):
    from test_xes import MAPPING

    events = "".join(
        f'<event><string key="concept:name" value="Registreren"/>'
        f'<date key="time:timestamp" value="2025-09-30T10:{i % 60:02d}:00+08:00"/></event>\n'
        for i in range(2000))
    path = tmp_path / "log.xes"
    path.write_text(f'<log>\n<trace><string key="concept:name" value="C-1"/>\n{events}'
                    "</trace>\n<trace><event></trace>\n</log>\n", encoding="utf-8")
    one, two = ingest_both_ways(store, dataclasses.replace(pconfig, mapping=MAPPING), [path],
                                spawned)
    assert one == two
    assert one[0] == f"{path}: not well-formed XES at line 2004: mismatched tag"
    # the batches read before the error are stored (the XES fast path reads all 2,000
    # good events before it meets the bad trace; expat alone, fewer)
    assert 0 < len(two[1][0]) <= 2000


def test_stdin_with_a_file_descriptor(store, pconfig, tmp_path, spawned, monkeypatch):
    path = write_mixed(tmp_path / "mixed.csv", 300)
    [expected] = ingest_events(store, dataclasses.replace(pconfig, parallel_ingest=False),
                               [str(path)], NOW)
    wipe(store)
    fd = os.open(path, os.O_RDONLY)
    stdin = open(fd, encoding="utf-8", closefd=False)  # noqa: SIM115 - like CPython's stdin
    monkeypatch.setattr("sys.stdin", stdin)
    try:
        [result] = ingest_events(store, pconfig, ["-"], NOW)
    finally:
        os.close(fd)
    assert spawned == ["<stdin>"]
    assert result.tally.as_dict() == expected.tally.as_dict()


def test_progress_advances_with_each_batch(store, pconfig, tmp_path, spawned):
    path = write_mixed(tmp_path / "mixed.csv", 600)
    seen: list[int] = []
    [result] = ingest_events(store, pconfig, [str(path)], NOW,
                             progress=lambda name, size: seen.append)
    assert spawned and len(seen) == -(-result.tally.read // BATCH)
    assert seen == sorted(seen) and seen[0] > 0 and seen[-1] == path.stat().st_size


def test_the_setting_is_a_boolean(tmp_path):
    path = tmp_path / "config.yaml"
    path.write_text("parallel_ingest: false\n")
    assert load_config(path).parallel_ingest is False
    path.write_text("parallel_ingest: 2\n")
    with pytest.raises(ConfigError, match="'parallel_ingest' must be bool, got int 2"):
        load_config(path)


def _one_cpu(monkeypatch):
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0}, raising=False)
    monkeypatch.setattr(os, "cpu_count", lambda: 1)


@pytest.mark.parametrize("why", ["small", "setting", "one_cpu", "threads"])
def test_one_process_where_a_second_cannot_help(store, pconfig, tmp_path, spawned, why,
                                                monkeypatch):
    path = write_mixed(tmp_path / "mixed.csv", 600 if why != "small" else 15)
    config = dataclasses.replace(pconfig, parallel_ingest=why != "setting")
    if why == "one_cpu":
        _one_cpu(monkeypatch)
    stop = threading.Event()
    other = threading.Thread(target=stop.wait)
    if why == "threads":
        other.start()
    try:
        [result] = ingest_events(store, config, [str(path)], NOW)
    finally:
        stop.set()
    assert result.tally.read > 0 and spawned == []


def test_a_bug_in_the_reader_keeps_its_traceback(store, pconfig, tmp_path, spawned,
                                                 monkeypatch):
    real = pipeline.event_values

    def broken(fields, catalog, tz, *rest):
        if fields["event_id"] == "e300":
            raise ZeroDivisionError("planted")
        return real(fields, catalog, tz, *rest)

    monkeypatch.setattr(pipeline, "event_values", broken)
    with pytest.raises(RuntimeError, match=r"(?s)reading process failed:\n.*Traceback.*"
                                           r"ZeroDivisionError: planted"):
        list(ingest_events(store, pconfig, [str(write_mixed(tmp_path / "m.csv", 600))], NOW))
    assert spawned and multiprocessing.active_children() == []
    assert [run.status for run in snapshot(store)[2]] == ["failed"]


def test_a_reader_that_dies_stops_the_run_and_a_rerun_finishes(store, pconfig, tmp_path,
                                                               spawned):
    path = write_mixed(tmp_path / "mixed.csv", 600)

    def kill_the_reader(position: int) -> None:
        for child in multiprocessing.active_children():
            child.kill()

    with pytest.raises(IngestError, match=r"mixed.csv: the reading process stopped "
                                          r"unexpectedly \(exit code -9\)"):
        list(ingest_events(store, pconfig, [str(path)], NOW,
                           progress=lambda name, size: kill_the_reader))
    stored = len(snapshot(store)[0])
    [rerun] = ingest_events(store, pconfig, [str(path)], NOW)
    t = rerun.tally
    assert stored > 0 and t.read == t.inserted + t.duplicates + t.quarantined
    wipe(store)
    [fresh] = ingest_events(store, pconfig, [str(path)], NOW)
    assert t.inserted + stored == fresh.tally.inserted


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        try:
            stat = (entry / "stat").read_text()
        except (OSError, ValueError):
            continue
        if entry.name.isdigit() and int(stat.rpartition(")")[2].split()[1]) == pid:
            found.append(int(entry.name))
    return found


def _alive(pid: int) -> bool:
    try:
        return (Path("/proc") / str(pid) / "stat").read_text().rpartition(")")[2].split()[0] != "Z"
    except OSError:
        return False


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc (Linux)")
def test_the_reader_dies_with_a_killed_parent(store, db_url, tmp_path):
    path = write_mixed(tmp_path / "mixed.csv", 60_000)
    (tmp_path / "config.yaml").write_text("batch_size: 500\n")
    command = [sys.executable, "-m", "monitor", "--config", str(tmp_path / "config.yaml"),
               "--db", db_url, "ingest", "events", "--json", str(path)]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            env=env)
    deadline = time.monotonic() + 60
    while not (readers := _children(proc.pid)) and proc.poll() is None:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    assert proc.poll() is None, "ingestion finished before it could be killed"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    deadline = time.monotonic() + 10
    while any(_alive(pid) for pid in readers) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not any(_alive(pid) for pid in readers), "the reading process outlived its parent"
