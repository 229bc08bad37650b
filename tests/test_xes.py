"""XES import: streamed parsing, the mapping, derived ids, lifecycle accounting, real data."""

from __future__ import annotations

import dataclasses
import gzip
import io
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import func, select

from cli import cli
from conftest import NOW
from monitor.catalog import STEPS, ingest_catalog
from monitor.config import MAPPING_SETTINGS, XesMapping, load_config
from monitor.errors import IngestError
from monitor.ingest import ingest_events
from monitor.ingest.quarantine import list_quarantine, retry_quarantine
from monitor.ingest.sources import Source
from monitor.ingest.xes import derived_event_id, xes_rows
from monitor.models import Event, Quarantine

ROOT = Path(__file__).resolve().parents[1]
WABO_LOG = Path(__file__).resolve().parents[2] / "shared" / "data" / "wabo_receipt.xes.gz"
WABO_EXAMPLE = ROOT / "docs" / "examples" / "wabo"

MAPPING = XesMapping(item_code="D04-XK-001",
                     steps={"Registreren": "accept", "Beoordelen": "review"})

# Trace C-1: nested attributes that must be ignored, a start+complete pair, an unmapped
# activity. C-2: an event without timestamp and one without activity. C-3: its
# concept:name comes after its event (not standard XES, still imported with its case).
LOG = """\
<?xml version="1.0" encoding="UTF-8"?>
<log xes.version="1.0" xes.features="nested-attributes" xmlns="http://www.xes-standard.org/">
  <extension name="Concept" prefix="concept" uri="http://www.xes-standard.org/concept.xesext"/>
  <global scope="trace">
    <string key="concept:name" value="GLOBAL-CASE"/>
  </global>
  <global scope="event">
    <string key="concept:name" value="GLOBAL-ACTIVITY"/>
    <string key="lifecycle:transition" value="UNKNOWN"/>
  </global>
  <classifier name="Activity" keys="concept:name lifecycle:transition"/>
  <string key="concept:name" value="LOG-NAME"/>
  <float key="meta:duration" value="2.5"><float key="concept:name" value="9"/></float>
  <trace>
    <string key="owner" value="u9"><string key="concept:name" value="NESTED-CASE"/></string>
    <string key="concept:name" value="C-1"/>
    <string key="responsible" value="u2"/>
    <event>
      <string key="concept:name" value="Registreren"/>
      <string key="org:resource" value="u1"/>
      <date key="time:timestamp" value="2025-09-30T10:00:00.000+08:00"/>
      <string key="lifecycle:transition" value="complete"/>
    </event>
    <event>
      <string key="concept:name" value="Beoordelen"/>
      <string key="org:resource" value="u2"/>
      <date key="time:timestamp" value="2025-09-30T11:00:00.000+08:00"/>
      <string key="lifecycle:transition" value="start"/>
    </event>
    <event>
      <list key="extra"><values><string key="org:resource" value="NESTED-ACTOR"/></values></list>
      <string key="concept:name" value="Beoordelen"/>
      <string key="org:resource" value="u2"/>
      <date key="time:timestamp" value="2025-09-30T11:30:00.000+08:00"/>
      <string key="lifecycle:transition" value="COMPLETE"/>
    </event>
    <event>
      <string key="concept:name" value="Archiveren"/>
      <date key="time:timestamp" value="2025-09-30T12:00:00+08:00"/>
    </event>
  </trace>
  <trace>
    <string key="concept:name" value="C-2"/>
    <event>
      <string key="concept:name" value="Registreren"/>
    </event>
    <event>
      <date key="time:timestamp" value="2025-09-30T13:00:00+08:00"/>
    </event>
  </trace>
  <trace>
    <event>
      <string key="concept:name" value="Registreren"/>
      <date key="time:timestamp" value="2025-10-01T09:00:00+08:00"/>
    </event>
    <string key="concept:name" value="C-3"/>
  </trace>
</log>
"""


def event_lines(text: str) -> list[int]:
    return [n for n, line in enumerate(text.splitlines(), 1) if line.strip() == "<event>"]


def rows_of(text: str, mapping: XesMapping = MAPPING, name: str = "t.xes") -> list:
    data = text.encode()
    source = Source(name, len(data), io.BytesIO(data), io.BytesIO(data), "xes")
    return list(xes_rows(source, mapping))


@pytest.fixture
def xes_config(config):
    return dataclasses.replace(config, mapping=MAPPING)


@pytest.fixture
def log_file(tmp_path):
    path = tmp_path / "log.xes"
    path.write_text(LOG, encoding="utf-8")
    return path


def ingest(engine, config, path):
    [result] = ingest_events(engine, config, [str(path)], NOW)
    return result.tally


def stored(engine) -> dict:
    with engine.connect() as conn:
        return {(e.case_id, e.source_line): e for e in conn.execute(select(Event)).all()}


def test_rows_follow_the_mapping_and_ignore_nested_attributes():
    rows = rows_of(LOG)
    lines = event_lines(LOG)
    assert [r.line for r in rows] == lines
    first, start, complete, unmapped, no_time, no_activity, late = rows
    assert first.fields == {
        "event_id": derived_event_id("C-1", 0, "Registreren", "2025-09-30T10:00:00.000+08:00"),
        "case_id": "C-1", "item_code": "D04-XK-001", "step": "accept",
        "actor": "u1", "occurred_at": "2025-09-30T10:00:00.000+08:00", "note": "Registreren"}
    assert (start.problem_reason, start.fields["lifecycle"]) == ("skipped_lifecycle", "start")
    assert start.problem == ("lifecycle:transition 'start' is not imported "
                             "(mapping: lifecycle: complete)")
    assert complete.problem is None and complete.fields["actor"] == "u2"  # not NESTED-ACTOR
    assert (unmapped.fields["step"], unmapped.fields.get("note")) == ("Archiveren", None)
    assert unmapped.fields["actor"] is None
    assert no_time.fields["occurred_at"] is None and no_activity.fields["step"] is None
    assert late.fields["case_id"] == "C-3"
    assert len({r.fields["event_id"] for r in rows}) == len(rows)
    assert all(r.fields["event_id"].startswith("xes-") and len(r.fields["event_id"]) == 28
               for r in rows)


def test_mapping_can_name_trace_attributes_and_an_id_attribute():
    mapping = dataclasses.replace(MAPPING, actor="case:responsible", event_id="org:resource",
                                  department="D04", lifecycle=("start", "complete"))
    rows = rows_of(LOG, mapping)
    assert [r.fields["actor"] for r in rows[:4]] == ["u2"] * 4
    assert [r.fields["event_id"] for r in rows[:4]] == ["u1", "u2", "u2", None]
    assert rows[1].problem is None and rows[0].fields["department"] == "D04"


def test_ingest_stores_quarantines_at_the_event_line_and_accounts_for_every_row(
        store, xes_config, log_file):
    tally = ingest(store, xes_config, log_file)
    lines = event_lines(LOG)
    assert (tally.read, tally.inserted, tally.duplicates, tally.quarantined) == (7, 4, 0, 3)
    assert tally.by_reason == {"skipped_lifecycle": 1, "missing_field": 1, "empty_step": 1}
    got = stored(store)
    assert sorted(got) == [("C-1", lines[0]), ("C-1", lines[2]), ("C-1", lines[3]),
                           ("C-3", lines[6])]
    review = got[("C-1", lines[2])]
    assert (review.step, review.actor, review.note) == ("review", "u2", "Beoordelen")
    assert review.occurred_at.isoformat() == "2025-09-30T03:30:00+00:00"
    assert got[("C-1", lines[0])].department == "D04"  # from the item
    quarantined = {q.line: q.reason for q in list_quarantine(store)}
    assert quarantined == {lines[1]: "skipped_lifecycle", lines[4]: "missing_field",
                           lines[5]: "empty_step"}
    assert all(q.source == str(log_file) for q in list_quarantine(store))


def test_reimport_is_idempotent_and_skipped_rows_are_never_retried(store, xes_config,
                                                                   log_file):
    first = ingest(store, xes_config, log_file)
    second = ingest(store, xes_config, log_file)
    assert (second.read, second.inserted, second.duplicates, second.quarantined) == (
        7, 0, first.inserted, first.quarantined)
    with store.connect() as conn:
        assert conn.scalar(select(func.count()).select_from(Event)) == 4
        assert conn.scalar(select(func.count()).select_from(Quarantine)) == 3
    retried = retry_quarantine(store, xes_config, NOW)
    assert retried.read == 2  # missing_field and empty_step; skipped_lifecycle is final


def test_gzip_is_read_transparently_with_the_same_event_ids(store, xes_config, log_file,
                                                           tmp_path):
    packed = tmp_path / "copy.xes.gz"
    packed.write_bytes(gzip.compress(LOG.encode()))
    first = ingest(store, xes_config, packed)
    assert (first.read, first.inserted, first.quarantined) == (7, 4, 3)
    again = ingest(store, xes_config, log_file)
    assert (again.inserted, again.duplicates) == (0, 4)


def write_config(tmp_path: Path, mapping: str) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(f"timezone: Asia/Shanghai\nmapping:\n{mapping}", encoding="utf-8")
    return path


def run_cli(tmp_path: Path, *args: str):
    runner = CliRunner()
    return runner.invoke(cli, ["--config", str(tmp_path / "config.yaml"),
                               "--db", f"sqlite:///{tmp_path / 'cli.db'}", *args])


def test_cli_without_item_code_says_what_to_set(tmp_path, log_file):
    write_config(tmp_path, "  steps: {Registreren: accept}\n")
    result = run_cli(tmp_path, "ingest", "events", str(log_file))
    assert result.exit_code == 1
    assert result.stderr == (f"Error: {log_file}: XES events need a catalog item: set "
                             "'mapping: item_code:' in config.yaml "
                             "(e.g. item_code: WABO-RECEIPT)\n")


def test_cli_malformed_xml_is_one_line_with_its_line_number(tmp_path):
    bad = tmp_path / "bad.xes"
    bad.write_text('<?xml version="1.0"?>\n<log>\n  <trace>\n    <event>\n  </trace>\n</log>\n',
                   encoding="utf-8")
    write_config(tmp_path, "  item_code: D04-XK-001\n")
    result = run_cli(tmp_path, "ingest", "events", str(bad))
    assert result.exit_code == 1
    assert result.stderr == f"Error: {bad}: not well-formed XES at line 5: mismatched tag\n"


@pytest.mark.parametrize("text, message", [
    ("", "t.xes: not well-formed XES at line 1: no element found"),
    ("<log><trace>\n<event>", "t.xes: not well-formed XES at line 2: no element found"),
    ("<log>\n<trace a='1' a='2'/></log>",
     "t.xes: not well-formed XES at line 2: duplicate attribute"),
    ("<rss><channel/></rss>", "t.xes: not an XES log (root element is <rss>, expected <log>)"),
    ('<!DOCTYPE log [<!ENTITY a "aaaa">]>\n<log>&a;</log>',
     "t.xes: not an XES log (it declares the XML entity 'a')"),
])
def test_unreadable_documents_are_one_line_errors(text, message):
    with pytest.raises(IngestError) as err:
        rows_of(text)
    assert str(err.value) == message


def test_missing_item_code_fails_before_reading():
    with pytest.raises(IngestError, match=r"^t\.xes: .*set 'mapping: item_code:' in config"):
        rows_of("not even xml", XesMapping())


@pytest.mark.skipif(not WABO_LOG.exists(), reason="shared WABO log not present")
def test_wabo_log_is_imported_in_full(engine, tmp_path):
    config = dataclasses.replace(load_config(WABO_EXAMPLE / "config.yaml"), base_dir=tmp_path)
    ingest_catalog(engine, WABO_EXAMPLE / "catalog.yaml")
    tally = ingest(engine, config, WABO_LOG)
    assert tally.read == 8577
    assert tally.read == tally.inserted + tally.duplicates + tally.quarantined
    assert (tally.inserted, tally.quarantined) == (8577, 0)
    with engine.connect() as conn:
        assert conn.scalar(select(func.count(func.distinct(Event.case_id)))) == 1434
        steps = dict(conn.execute(select(Event.step, func.count()).group_by(Event.step)).all())
    assert (steps["accept"], steps["review"], steps["approve"],
            steps["complete"]) == (1434, 1368, 1307, 1300)
    assert len(steps) == 27
    again = ingest(engine, config, WABO_LOG)
    assert (again.inserted, again.duplicates) == (0, 8577)


def test_example_config_documents_its_mapping():
    config = load_config(WABO_EXAMPLE / "config.yaml")
    assert config.mapping.item_code == "WABO-RECEIPT" and config.timezone == "Europe/Amsterdam"
    doc = (ROOT / "docs" / "xes.md").read_text(encoding="utf-8")
    assert [s.name for s in MAPPING_SETTINGS if f"`{s.name}`" not in doc] == []
    assert set(config.mapping.steps.values()) <= set(STEPS)


def test_attributes_in_any_order_and_only_the_mapped_ones_kept():
    """The reader's fast path takes ``key`` then ``value`` as most exports write them;
    any other order, or a value-less attribute, reads the same. Only the attributes a
    mapping reads are kept per event (and the lifecycle it filters on)."""
    from monitor.ingest.xes import xes_records

    text = """<log><trace><string key="concept:name" value="T-1"/>
      <event><string value="Registreren" key="concept:name"/><string key="org:resource"/>
        <date key="time:timestamp" value="2025-09-30T10:00:00+08:00"/>
        <string key="noise" value="x"/><string key="concept:name" value="second"/></event>
    </trace></log>"""
    [row] = rows_of(text)
    assert (row.fields["case_id"], row.fields["step"], row.fields["actor"]) == ("T-1", "accept", "")
    data = text.encode()
    [(_, kept)] = xes_records(Source("t.xes", len(data), io.BytesIO(data), io.BytesIO(data),
                                     "xes"), frozenset({"concept:name"}),
                              frozenset({"concept:name", "time:timestamp"}))
    assert kept == {"concept:name": "Registreren", "time:timestamp": "2025-09-30T10:00:00+08:00",
                    "case:concept:name": "T-1", "_ordinal": 0}
