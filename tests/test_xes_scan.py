"""The XES fast path (monitor.ingest.xes_scan) against the expat reader: on every XES log
the tests know, and on small adversarial ones, the fast path gives exactly what expat
gives, or says it is unsure and the reader falls back to expat with the same result."""

from __future__ import annotations

import gzip
import io
import sys
from pathlib import Path

import pytest

from monitor.errors import IngestError
from monitor.ingest import xes_scan
from monitor.ingest.sources import Source
from monitor.ingest.xes import _expat_records, xes_records
from test_mapping import XES as MAPPING_XES
from test_xes import LOG, WABO_LOG

ROOT = Path(__file__).resolve().parents[1]
TRACE_KEYS = frozenset({"concept:name", "responsible", "item"})
EVENT_KEYS = frozenset({"concept:name", "org:resource", "time:timestamp",
                        "lifecycle:transition"})


def source(data: bytes) -> Source:
    return Source("t.xes", len(data), io.BytesIO(data), io.BytesIO(data), "xes")


def by_expat(data: bytes, trace_keys=TRACE_KEYS, event_keys=EVENT_KEYS):
    try:
        return list(_expat_records(source(data), trace_keys, event_keys))
    except IngestError as exc:
        return str(exc)


def by_reader(data: bytes, trace_keys=TRACE_KEYS, event_keys=EVENT_KEYS):
    try:
        return list(xes_records(source(data), trace_keys, event_keys))
    except IngestError as exc:
        return str(exc)


def by_scan(data: bytes, trace_keys=TRACE_KEYS, event_keys=EVENT_KEYS):
    """(records, whether the fast path read the whole log without doubt)."""
    got: list = []
    try:
        for record in xes_scan.scan_records(io.BytesIO(data), trace_keys, event_keys):
            got.append(record)
    except xes_scan.Unsure:
        return got, False
    return got, True


def agree(data: bytes, trace_keys=TRACE_KEYS, event_keys=EVENT_KEYS) -> bool:
    """The reader equals expat; the fast path equals it or stops unsure after a prefix of
    it. Returns whether the fast path read it all."""
    expected = by_expat(data, trace_keys, event_keys)
    assert by_reader(data, trace_keys, event_keys) == expected
    got, whole = by_scan(data, trace_keys, event_keys)
    if whole:
        assert got == expected
    elif isinstance(expected, list):
        assert got == expected[:len(got)]
    return whole


def generated(events: int, tmp: Path) -> bytes:
    """bench/xes.py's log: 25 attributes an event, 8 a trace."""
    sys.path.insert(0, str(ROOT / "bench"))
    try:
        from xes import generate
    finally:
        sys.path.pop(0)
    generate(tmp / "log.xes", events, 25)
    return (tmp / "log.xes").read_bytes()


@pytest.mark.skipif(not WABO_LOG.exists(), reason="shared WABO log not present")
def test_the_wabo_log_is_read_whole_by_the_fast_path_with_expat_s_records():
    data = gzip.decompress(WABO_LOG.read_bytes())
    for trace_keys, event_keys in ((TRACE_KEYS, EVENT_KEYS),
                                   (frozenset({"concept:name", "department", "group"}),
                                    EVENT_KEYS | {"org:group", "concept:instance"})):
        assert agree(data, trace_keys, event_keys)
    assert len(by_expat(data)) == 8577


def test_the_bench_log_is_read_whole_by_the_fast_path(tmp_path):
    data = generated(3000, tmp_path)
    assert agree(data)
    assert agree(data, frozenset({"trace_attr_3"}), EVENT_KEYS | {"attr_0", "attr_1"})


def test_the_test_suites_logs_agree():
    # nested attributes in a trace, a list in an event, a trace attribute after its event:
    # the fast path is unsure there, and the reader falls back
    assert not agree(LOG.encode())
    assert agree(MAPPING_XES.replace("{long}", "Beoordelen " * 9).encode())


@pytest.mark.parametrize("chunk", [1, 7, 64, 1 << 20])
def test_chunk_boundaries_anywhere(monkeypatch, tmp_path, chunk):
    monkeypatch.setattr(xes_scan, "CHUNK", chunk)
    text = (HEAD + '<trace><string key="concept:name" value="Zoë &amp; 中文"/>\r\n'
            + EVENT.format(name="Registreren") * 5 + "</trace>\r\n</log>\r\n")
    assert agree(text.encode())
    data = generated(40, tmp_path)
    assert agree(data)


HEAD = '<?xml version="1.0" encoding="UTF-8"?>\n<log xes.version="1.0">\n'
EVENT = ('<event>\n <string key="concept:name" value="{name}"/>\n'
         ' <date key="time:timestamp" value="2025-09-30T10:00:00+08:00"/>\n</event>\n')


def log_of(body: str, head: str = HEAD, tail: str = "</log>\n") -> bytes:
    return (head + body + tail).encode()


def trace_of(*events: str, case: str = '<string key="concept:name" value="C-1"/>\n') -> str:
    return "<trace>\n" + case + "".join(events) + "</trace>\n"


READ_WHOLE = {
    "entities and character references": EVENT.format(
        name="A &amp; B &lt;x&gt; &quot;q&quot; &apos;a&apos; &#233;&#x4e2d; &#10;&#13;"),
    "single quotes": "<event><string key='concept:name' value='Regis\"treren'/></event>\n",
    "whitespace and new lines inside tags": (
        '<event >\n<string\n  key = "concept:name"\r\n\tvalue=\n"Registreren"\n/>\n'
        '</event\n>\n'),
    "a key that only starts like a mapped one": (
        '<event><string key="concept:name2" value="no"/>'
        '<string key="concept:name" value="yes"/><string key="xconcept:name" value="no"/>'
        '</event>\n'),
    "a mapped key twice: the first counts": (
        '<event><string key="concept:name" value="first"/>'
        '<string key="concept:name" value="second"/></event>\n'),
    "unmapped attributes of every type": (
        '<event><int key="n" value="1"/><float key="f" value="1.5"/>'
        '<boolean key="b" value="true"/><id key="i" value="x"/><date key="d" value="2025"/>'
        '<string key="s" value="&#x4e2d;"/></event>\n'),
    "non-ASCII text": EVENT.format(name="受理 — Zoë"),
}


@pytest.mark.parametrize("name", sorted(READ_WHOLE))
def test_adversarial_logs_the_fast_path_reads_whole(name):
    data = log_of(trace_of(READ_WHOLE[name], EVENT.format(name="Besluiten")))
    assert agree(data), name


FALLS_BACK = {
    "value before key": '<event><string value="Registreren" key="concept:name"/></event>\n',
    "a third attribute": '<event><string key="concept:name" value="R" x="1"/></event>\n',
    "a nested attribute": ('<event><string key="x" value="y"><string key="concept:name" '
                           'value="NESTED"/></string></event>\n'),
    "a list": ('<event><list key="l"><values><string key="concept:name" value="N"/>'
               '</values></list></event>\n'),
    "a container": ('<event><container key="c"><string key="org:resource" value="N"/>'
                    '</container></event>\n'),
    "a comment in the body": '<event><!-- <string key="concept:name" value="N"/> --></event>\n',
    "CDATA": "<event><![CDATA[ <event> ]]></event>\n",
    "a processing instruction": "<event><?pi x?></event>\n",
    "text content": "<event>text</event>\n",
    "a tab in a value": '<event><string key="concept:name" value="A\tB"/></event>\n',
    "a new line in a value": '<event><string key="concept:name" value="A\nB"/></event>\n',
    "a lone carriage return": "<event>\r</event>\n",
    "an entity in a key": '<event><string key="concept&amp;name" value="A"/></event>\n',
    "an undefined entity": '<event><string key="x" value="&nbsp;"/></event>\n',
    "a character reference to no XML character": '<event><string key="x" value="&#0;"/></event>\n',
    "a control character": '<event><string key="x" value="a\x01b"/></event>\n',
    "a namespace prefix": '<xes:event><string key="concept:name" value="A"/></xes:event>\n',
    "an empty event tag": "<event/>\n",
    "an event inside an event": "<event><event></event></event>\n",
    "a mismatched end": "<event></trace>\n",
    "an unclosed attribute": '<event><string key="concept:name" value="A"></event>\n',
    "a missing value": '<event><string key="concept:name"/></event>\n',
}


@pytest.mark.parametrize("name", sorted(FALLS_BACK))
def test_adversarial_logs_the_fast_path_leaves_to_expat(name):
    data = log_of(trace_of(EVENT.format(name="Registreren"), FALLS_BACK[name],
                           EVENT.format(name="Besluiten")))
    assert not agree(data), name


@pytest.mark.parametrize("name,data", [
    ("trace attributes after events", log_of(trace_of(
        EVENT.format(name="A"), '<string key="responsible" value="u2"/>\n', EVENT.format(name="B"),
        case="") + trace_of(EVENT.format(name="C")))),
    ("an event outside a trace", log_of('<event></event>\n' + trace_of(EVENT.format(name="A")))),
    ("log attributes between traces", log_of(
        trace_of(EVENT.format(name="A")) + '<string key="concept:name" value="LOG"/>\n'
        + trace_of(EVENT.format(name="B")))),
    ("no trace at all", log_of("")),
    ("latin-1", ('<?xml version="1.0" encoding="ISO-8859-1"?>\n<log>'
                 + trace_of(EVENT.format(name="Zoë")) + "</log>").encode("latin-1")),
    ("utf8 declared, which expat reads otherwise", (
        '<?xml version="1.0" encoding="utf8"?>\n<log>' + trace_of(EVENT.format(name="Zoë"))
        + "</log>").encode()),
    ("not UTF-8 as declared", log_of(trace_of(EVENT.format(name="Zoë"))).replace(
        "Zoë".encode(), "Zoë".encode("latin-1"))),
    ("a DOCTYPE declaring an entity", log_of(
        trace_of(EVENT.format(name="&e;")),
        head='<?xml version="1.0"?>\n<!DOCTYPE log [<!ENTITY e "x">]>\n<log>\n')),
    ("a root that is not log", log_of(trace_of(EVENT.format(name="A")), head="<logs>\n",
                                      tail="</logs>\n")),
    ("truncated", log_of(trace_of(EVENT.format(name="A")), tail="")),
    ("junk after the end", log_of(trace_of(EVENT.format(name="A")), tail="</log>\n<x/>")),
    ("a nested header", log_of(trace_of(EVENT.format(name="A")), head=HEAD + (
        '<global scope="event"><string key="concept:name" value="G"/></global>\n'
        '<float key="m" value="1"><float key="concept:name" value="9"/></float>\n'
        "<!-- a comment with <trace> in it -->\n"))),
    ("a whole trace in a comment of the header", log_of(
        trace_of(EVENT.format(name="A")), head=HEAD + "<!-- " + trace_of(
            EVENT.format(name="IN A COMMENT")) + " -->\n")),
    ("a whole trace in CDATA of the header", log_of(
        trace_of(EVENT.format(name="A")), head=HEAD + "<![CDATA[ " + trace_of(
            EVENT.format(name="IN CDATA")) + " ]]>\n")),
    ("CRLF throughout", log_of(trace_of(EVENT.format(name="A"), EVENT.format(name="B")))
     .replace(b"\n", b"\r\n")),
])
def test_adversarial_logs_agree(name, data):
    agree(data)


def records_before_the_error(read, data: bytes) -> tuple[list, str]:
    records: list = []
    with pytest.raises(IngestError) as caught:
        for record in read(source(data), TRACE_KEYS, EVENT_KEYS):
            records.append(record)
    return records, str(caught.value)


def test_a_malformed_log_says_expat_s_line_after_the_same_records(monkeypatch):
    """The records before the error are the log's own (the fast path may give more of
    them than expat, which drops the chunk it fails in), then expat's line."""
    monkeypatch.setattr(xes_scan, "CHUNK", 4096)  # the fast path hands out records first
    events = "".join(EVENT.format(name=f"S{i}") for i in range(2000))
    good = trace_of(events) + trace_of(events)
    data = log_of(good + "<trace><event></trace>\n")
    got, whole = by_scan(data)
    assert not whole and len(got) == 4000
    by_expat_alone = records_before_the_error(_expat_records, data)
    assert by_expat_alone[1] == "t.xes: not well-formed XES at line 16009: mismatched tag"
    records, error = records_before_the_error(xes_records, data)
    assert error == by_expat_alone[1]
    assert records == by_expat(log_of(good))
    assert by_expat_alone[0] == records[:len(by_expat_alone[0])]


def test_a_gzipped_file_falls_back_from_the_fast_path_by_rewinding_it(tmp_path):
    """Real sources are files, often gzipped: the reader rewinds the decompressed stream
    and expat reads it from the start, as it reads the plain text."""
    from monitor.ingest.sources import open_source

    plain = LOG.encode()
    path = tmp_path / "log.xes.gz"
    path.write_bytes(gzip.compress(plain))
    with open_source(str(path)) as opened:
        assert list(xes_records(opened, TRACE_KEYS, EVENT_KEYS)) == by_expat(plain)
