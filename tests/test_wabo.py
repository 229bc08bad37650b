"""The proof on real data: the shared WABO log, loaded as the docs say (the example
mapping and catalog, the shipped rules), floods no rule — no rule flags more than 20 % of
the cases in its scope — and each rule's figures are the ones docs/xes.md quotes."""

from __future__ import annotations

import re
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from monitor.catalog import ingest_catalog
from monitor.config import load_config
from monitor.engine import evaluate
from monitor.ingest import ingest_events
from monitor.ruletools.flood import floods

ROOT = Path(__file__).resolve().parents[1]
WABO = ROOT / "docs" / "examples" / "wabo"
LOG = ROOT.parent / "shared" / "data" / "wabo_receipt.xes.gz"
if not LOG.exists():  # a worktree beside the shared folder, or CI's copy beside the clone
    LOG = Path("/work/shared/data/wabo_receipt.xes.gz")
AS_OF = datetime(2012, 2, 1, tzinfo=ZoneInfo("Europe/Amsterdam"))
NOW = datetime(2026, 1, 1, tzinfo=ZoneInfo("UTC"))


@pytest.mark.slow  # ~10 s: the whole log, every shipped rule
@pytest.mark.skipif(not LOG.exists(), reason="the shared WABO log is not here")
def test_the_wabo_log_with_the_docs_mapping_and_catalog_floods_no_rule(engine):
    config = load_config(WABO / "config.yaml")
    ingest_catalog(engine, WABO / "catalog.yaml")
    [result] = ingest_events(engine, config, [str(LOG)], NOW, mapping="wabo")
    assert (result.tally.read, result.tally.inserted, result.tally.quarantined) == (8577, 8577, 0)
    outcomes = evaluate(engine, config, AS_OF, dry_run=True, full=True)
    assert not [o.error for o in outcomes if o.error]
    flagged = {o.rule.id: len({f.case_id for f in o.findings if f.case_id}) for o in outcomes}
    with engine.connect() as conn:
        assert floods(conn, [o.rule for o in outcomes], flagged, AS_OF, 0.2) == []
    found = {o.rule.id: len(o.findings) for o in outcomes if o.findings}
    quoted = dict(re.findall(r"^\| `([a-z-]+)` \| ([\d,]+) \|",
                             (ROOT / "docs" / "xes.md").read_text(encoding="utf-8"), re.M))
    assert found == {rule: int(n.replace(",", "")) for rule, n in quoted.items()
                     if int(n.replace(",", ""))}
