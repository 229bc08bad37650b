"""An XES file read in parts by several processes (monitor.ingest.xes_scan.trace_ranges,
scan_range; pipeline._from_parts): the parts' records, in order, are the whole log's;
an ingestion stores exactly the events and quarantine one stream stores, with the same
lines, on SQLite and PostgreSQL; where a part is not read whole the rest is read as one
stream; a run stopped half-way is finished by a re-run without duplicates."""

from __future__ import annotations

import dataclasses
import io
import multiprocessing
from pathlib import Path

import pytest

from conftest import NOW
from monitor.errors import IngestError
from monitor.ingest import ingest_events, parts as parts_module, xes_scan
from monitor.ingest.xes_scan import scan_range, trace_ranges
from test_mapping import XES as MAPPING_XES
from test_pipeline import snapshot, wipe
from test_xes import LOG, MAPPING
from test_xes_scan import (EVENT, EVENT_KEYS, FALLS_BACK, READ_WHOLE, TRACE_KEYS, by_expat,
                           generated, log_of, trace_of)


def by_parts(data: bytes, size: int, trace_keys=TRACE_KEYS, event_keys=EVENT_KEYS):
    """(records of the parts read whole, in order, whether every part was, how many)."""
    stream = io.BytesIO(data)
    parts = trace_ranges(stream, size)
    got: list = []
    for part in parts:
        try:
            got.extend(r for batch in scan_range(stream, part, trace_keys, event_keys)
                       for r in batch)
        except xes_scan.Unsure:
            return got, False, len(parts)
    return got, True, len(parts)


def agree_in_parts(data: bytes, size: int, **keys) -> bool:
    """The parts' records equal expat's, or a prefix of them where a part is unsure (the
    records of an unsure part are not used: only the parts before it count)."""
    expected = by_expat(data, **keys)
    got, whole, _ = by_parts(data, size, **keys)
    if whole:
        assert got == expected
    elif isinstance(expected, list):
        assert got == expected[:len(got)]
    return whole


def several(*events: str) -> bytes:
    """A log of four traces, the second holding ``events``, with CRLF in the third."""
    return log_of(trace_of(EVENT.format(name="A"))
                  + trace_of(EVENT.format(name="B"), *events, EVENT.format(name="C"),
                             case='<string key="concept:name" value="C-2"/>\n')
                  + trace_of(EVENT.format(name="D")).replace("\n", "\r\n")
                  + trace_of(EVENT.format(name="E"), case=""))


@pytest.mark.parametrize("size", [1, 40, 200, 1 << 20])
def test_the_parts_of_the_bench_log_are_the_whole_log(tmp_path, size):
    data = generated(300, tmp_path)
    got, whole, count = by_parts(data, size)
    assert whole and got == by_expat(data)
    assert count > 1 if size < 1 << 20 else count == 1
    assert agree_in_parts(data, size, trace_keys=frozenset({"trace_attr_3"}),
                          event_keys=EVENT_KEYS | {"attr_0", "attr_1"})


@pytest.mark.parametrize("size", [1, 100])
def test_the_suites_logs_in_parts(size):
    assert not agree_in_parts(LOG.encode(), size)  # nested attributes: unsure, as a whole
    assert agree_in_parts(MAPPING_XES.replace("{long}", "Beoordelen " * 9).encode(), size)


@pytest.mark.parametrize("name", sorted(READ_WHOLE))
def test_adversarial_logs_read_whole_in_parts(name):
    data = several(READ_WHOLE[name])
    assert agree_in_parts(data, 1), name
    assert by_parts(data, 1)[2] == 4


@pytest.mark.parametrize("name", sorted(FALLS_BACK))
def test_adversarial_logs_a_part_leaves_to_one_stream(name):
    data = several(FALLS_BACK[name])
    assert not agree_in_parts(data, 1), name
    got, _, _ = by_parts(data, 1)
    assert len(got) == 1  # the first trace's event; the part at fault gives none


@pytest.mark.parametrize("name,data", [
    ("a <trace> quoted in a comment between traces", log_of(
        trace_of(EVENT.format(name="A")) + "<!-- <trace> -->\n" + trace_of(EVENT.format(name="B")))),
    ("a <trace> in a comment after the log", log_of(
        trace_of(EVENT.format(name="A")), tail="</log>\n<!-- <trace> -->\n")),
    ("an unclosed trace before a cut", log_of(
        "<trace>\n" + EVENT.format(name="A") + trace_of(EVENT.format(name="B")))),
    ("a trace tag with an attribute", log_of(
        trace_of(EVENT.format(name="A")) + '<trace id="x">\n' + EVENT.format(name="B")
        + "</trace>\n")),
    ("a malformed end", log_of(trace_of(EVENT.format(name="A")) * 3, tail="</log\n")),
    ("text after the log", log_of(trace_of(EVENT.format(name="A")) * 3, tail="</log>x\n")),
])
def test_cuts_where_trace_is_not_a_tag_leave_to_one_stream(name, data):
    assert not agree_in_parts(data, 1), name


# What an ingestion of parts must store as one stream does: contract breaches (a bad
# timestamp, an over-long unmapped activity, no activity), skipped lifecycles, a
# duplicate trace and a conflict (same derived id, other actor), lines after CRLF ends.
ODD_EVENTS = [
    '<event><string key="concept:name" value="Registreren"/>'
    '<date key="time:timestamp" value="2025-13-45T99:00:00"/></event>\n',
    '<event><string key="concept:name" value="{long}"/>'
    '<date key="time:timestamp" value="2025-09-30T10:00:00+08:00"/></event>\n'.format(
        long="Beoordelen uitgebreid " * 5),
    '<event><date key="time:timestamp" value="2025-09-30T10:00:00+08:00"/></event>\n',
    '<event><string key="concept:name" value="Beoordelen"/><string key="lifecycle:transition"'
    ' value="start"/><date key="time:timestamp" value="2025-09-30T10:00:00+08:00"/></event>\n',
]


def odd_log(path: Path, traces: int, middle: str = "") -> Path:
    """``traces`` traces of the suite's mapping, every fifth with an odd event, trace 7
    twice (a duplicate), trace 9 twice with another actor (conflicts), ``middle``
    written half-way."""
    body = []
    for t in range(traces):
        events = [f'<event><string key="concept:name" value="{("Registreren", "Beoordelen")[k % 2]}"/>'
                  f'<string key="org:resource" value="u{1 + (t + k) % 3}"/>'
                  f'<date key="time:timestamp" value="2025-09-{1 + t % 28:02d}T1{k}:00:00+08:00"/>'
                  '</event>\n' for k in range(4)]
        if t % 5 == 2:
            events.insert(2, ODD_EVENTS[t // 5 % len(ODD_EVENTS)])
        trace = trace_of(*events, case=f'<string key="concept:name" value="C-{t}"/>\n')
        body.append(trace.replace("\n", "\r\n") if t % 4 == 1 else trace)
        if t in (7, 9):
            body.append(trace if t == 7 else trace.replace('value="u', 'value="x'))
        if t == traces // 2:
            body.append(middle)
    path.write_bytes(log_of("".join(body)))
    return path


@pytest.fixture
def parted(monkeypatch):
    """The sources read in parts during the test, with how many processes."""
    seen: list[tuple[int, int]] = []
    real = parts_module.in_children

    def spy(parts, work, jobs, label):
        seen.append((len(parts), jobs))
        return real(parts, work, jobs, label)

    monkeypatch.setattr(parts_module, "in_children", spy)
    return seen


def both_ways(store, config, path: Path, parted, jobs: int = 2):
    """(outcome as one stream, outcome in parts by ``jobs`` processes)."""
    outcomes = []
    for parallel in (False, True):
        wipe(store)
        parted.clear()
        conf = dataclasses.replace(config, parallel_ingest=parallel, ingest_jobs=jobs)
        try:
            got = [r.tally.as_dict() for r in ingest_events(store, conf, [str(path)], NOW)]
        except IngestError as exc:
            got = str(exc)
        outcomes.append((got, snapshot(store)))
        assert bool(parted) == parallel
    return outcomes


@pytest.fixture
def xconfig(config):
    return dataclasses.replace(config, mapping=MAPPING, batch_size=20)


@pytest.mark.parametrize("jobs", [2, 3])
def test_parts_store_what_one_stream_stores(store, xconfig, tmp_path, parted, jobs):
    path = odd_log(tmp_path / "odd.xes", 200)
    one, two = both_ways(store, xconfig, path, parted, jobs)
    assert one == two
    assert parted[0][0] > 5 and parted[0][1] == jobs
    tally = one[0][0]
    assert tally["quarantined"] > 0 and tally["duplicates"] > 0 \
        and tally["by_reason"].get("conflict")
    lines = [row.line for row in one[1][1]]
    assert len(lines) == tally["quarantined"] and min(lines) > 3


def test_a_part_the_fast_path_cannot_read_leaves_the_rest_to_one_stream(
        store, xconfig, tmp_path, parted):
    path = odd_log(tmp_path / "odd.xes", 200, middle="<!-- a comment between traces -->\n")
    one, two = both_ways(store, xconfig, path, parted)
    assert one == two and parted and one[0][0]["inserted"] > 500


def test_a_malformed_log_in_parts_fails_at_the_same_line(store, xconfig, tmp_path, parted):
    path = odd_log(tmp_path / "odd.xes", 200, middle="<trace><event></trace>\n")
    one, two = both_ways(store, xconfig, path, parted)
    assert one == two
    assert one[0].endswith("mismatched tag") and "not well-formed XES at line" in one[0]
    assert len(one[1][0]) > 100  # the events before it are stored


def test_the_suites_log_in_parts_is_read_as_one_stream(store, xconfig, tmp_path, parted):
    path = tmp_path / "log.xes"
    path.write_text(LOG * 1, encoding="utf-8")
    conf = dataclasses.replace(xconfig, batch_size=1)
    one, two = both_ways(store, conf, path, parted)
    assert one == two and one[0][0]["inserted"] > 3


def test_a_gzipped_log_is_read_as_one_stream(store, xconfig, tmp_path, parted):
    import gzip

    plain = odd_log(tmp_path / "odd.xes", 200)
    path = tmp_path / "odd.xes.gz"
    path.write_bytes(gzip.compress(plain.read_bytes()))
    [result] = ingest_events(store, dataclasses.replace(xconfig, ingest_jobs=2), [str(path)], NOW)
    assert parted == [] and result.tally.inserted > 500


def test_a_run_stopped_half_way_is_finished_by_a_rerun(store, xconfig, tmp_path, parted):
    path = odd_log(tmp_path / "odd.xes", 300)
    conf = dataclasses.replace(xconfig, ingest_jobs=2)
    [expected] = ingest_events(store, conf, [str(path)], NOW)
    want = snapshot(store)[:2]
    wipe(store)
    batches = []

    def stop_after_three(position: int) -> None:
        batches.append(position)
        if len(batches) == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        list(ingest_events(store, conf, [str(path)], NOW,
                           progress=lambda name, size: stop_after_three))
    assert multiprocessing.active_children() == []
    stored = len(snapshot(store)[0])
    assert 0 < stored < expected.tally.inserted
    [rerun] = ingest_events(store, conf, [str(path)], NOW)
    assert rerun.tally.inserted == expected.tally.inserted - stored
    assert snapshot(store)[:2] == want


def test_a_reader_that_dies_stops_the_run(store, xconfig, tmp_path, parted):
    path = odd_log(tmp_path / "odd.xes", 300)

    def kill_the_readers(position: int) -> None:
        for child in multiprocessing.active_children():
            child.kill()

    with pytest.raises(IngestError, match=r"odd.xes: the reading process stopped "
                                          r"unexpectedly \(exit code -9\)"):
        list(ingest_events(store, dataclasses.replace(xconfig, ingest_jobs=2), [str(path)],
                           NOW, progress=lambda name, size: kill_the_readers))
    assert multiprocessing.active_children() == []


def test_the_setting_and_its_default(tmp_path, config, monkeypatch):
    from monitor.config import load_config
    from monitor.errors import ConfigError
    from monitor.ingest.parts import reading_jobs

    path = tmp_path / "config.yaml"
    path.write_text("ingest_jobs: 3\n")
    assert reading_jobs(load_config(path)) == 3
    path.write_text("ingest_jobs: -1\n")
    with pytest.raises(ConfigError, match="config.yaml:1: 'ingest_jobs' must be 0"):
        load_config(path)
    for cpus, readers in ((1, 1), (2, 1), (8, 7)):  # the writer keeps a CPU
        monkeypatch.setattr("os.sched_getaffinity", lambda _: set(range(cpus)))
        assert reading_jobs(config) == readers


def test_the_jobs_flag_overrides_the_setting_for_one_run(tmp_path, catalog_file, parted):
    from test_xes import run_cli

    path = odd_log(tmp_path / "odd.xes", 200)
    (tmp_path / "config.yaml").write_text(
        "timezone: Asia/Shanghai\nbatch_size: 20\ningest_jobs: 1\nmapping:\n"
        "  item_code: D04-XK-001\n  steps: {Registreren: accept, Beoordelen: review}\n",
        encoding="utf-8")
    assert run_cli(tmp_path, "ingest", "catalog", str(catalog_file)).exit_code == 0
    result = run_cli(tmp_path, "ingest", "events", "--json", "--jobs", "3", str(path))
    assert result.exit_code == 0, result.output
    assert parted and parted[0][1] == 3 and '"inserted"' in result.stdout
    parted.clear()
    again = run_cli(tmp_path, "ingest", "events", str(path))  # the setting: one reader
    assert again.exit_code == 0 and parted == []
    bad = run_cli(tmp_path, "ingest", "events", "--jobs", "-1", str(path))
    assert bad.exit_code == 2 and "Invalid value for '--jobs': -1 is not in the range x>=0" \
        in bad.stderr
    assert "--jobs N" in run_cli(tmp_path, "ingest", "events", "--help").stdout
