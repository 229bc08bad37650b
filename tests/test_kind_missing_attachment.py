"""missing_attachment (控制节点): an event of a step whose attachments lack a name its item
requires (catalog required_attachments) → one alert per case, missing names per step."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest
from sqlalchemy import select

from conftest import CATALOG, NOW, event, stored_alerts
from monitor.catalog import ingest_catalog
from monitor.engine import evaluate
from monitor.ingest import ingest_events
from monitor.models import Alert
from monitor.rules.loader import load_rules
from monitor.trail import history

AS_OF = datetime(2025, 11, 1, tzinfo=timezone.utc)
REPORT = "现场踏勘意见书"
# An item with two control nodes, names holding LIKE wildcards and a space.
EXTRA_ITEM = """\
  - code: D04-XK-002
    name: 烟花爆竹经营许可
    department: D04
    category: license
    promised_days: 10
    legal_days: 20
    fee: 0
    required_attachments:
      survey: [现场照片, "100%_核查表"]
      review: [审核意见 表]
"""


@pytest.fixture
def rule_list(tmp_path):
    path = tmp_path / "rules.yaml"
    path.write_text("- {id: attach, kind: missing_attachment, action: halt}\n", encoding="utf-8")
    return load_rules([path])


@pytest.fixture
def catalog(store, tmp_path):
    path = tmp_path / "catalog2.yaml"
    path.write_text(CATALOG + EXTRA_ITEM, encoding="utf-8")
    ingest_catalog(store, path)
    return store


def run(store, config, write_events, rows, rule_list, name="events.csv", **kw):
    if rows:
        list(ingest_events(store, config, [str(write_events(rows, name))], NOW))
    [outcome] = evaluate(store, config, AS_OF, rules=rule_list, **kw)
    assert outcome.error is None
    return outcome


def survey(event_id: str, case_id: str, attachments: str | None, **extra) -> dict:
    return event(event_id, case_id, "survey", "2025-09-30 14:00:00",
                 **({"attachments": attachments} if attachments is not None else {}), **extra)


def test_required_attachment_present_missing_or_only_similar(store, config, write_events,
                                                             rule_list):
    rows = [survey("ok1", "ok", f"申请表;{REPORT};照片"),
            survey("ok2", "spaced", f" 照片 ; {REPORT} "),         # ingest trims each name
            survey("m1", "none", None),
            survey("m2", "other", "申请表;照片"),
            survey("m3", "longer", f"{REPORT}（草稿）;旧{REPORT}"),   # similar is not the same
            event("r1", "ok", "review", "2025-09-30 15:00:00"),     # review requires nothing
            event("p1", "pen", "survey", "2025-09-30 15:00:00", item_code="D07-CF-001")]
    outcome = run(store, config, write_events, rows, rule_list)
    assert [f.case_id for f in outcome.findings] == ["longer", "none", "other"]
    none = outcome.findings[1]
    assert none.fields["missing"] == f"survey 缺 {REPORT}" and none.event_ids == ("m1",)
    assert none.evidence["events"][0]["attachments"] == []
    longer = outcome.findings[0]
    assert longer.evidence["events"][0]["attachments"] == [f"{REPORT}（草稿）", f"旧{REPORT}"]


def test_one_alert_per_case_listing_missing_names_per_step(catalog, config, write_events,
                                                           rule_list):
    item = {"item_code": "D04-XK-002"}
    rows = [survey("a1", "c1", "现场照片;100x_核查表", **item),       # LIKE would match: _ and %
            event("a2", "c1", "review", "2025-09-30 15:00:00", attachments="审核意见", **item),
            survey("b1", "c2", "100%_核查表;现场照片;其他", **item),
            event("b2", "c2", "review", "2025-09-30 15:00:00", attachments="审核意见 表", **item)]
    outcome = run(catalog, config, write_events, rows, rule_list)
    [f] = outcome.findings
    assert f.case_id == "c1" and f.fields["count"] == 2
    assert f.fields["missing"] == "survey 缺 100%_核查表；review 缺 审核意见 表"
    assert f.evidence["missing_by_step"] == {"survey": ["100%_核查表"], "review": ["审核意见 表"]}
    assert f.event_ids == ("a1", "a2")


def test_a_later_complete_survey_does_not_undo_the_first(store, config, write_events,
                                                         rule_list):
    rows = [survey("s1", "redo", "照片"),
            event("s2", "redo", "survey", "2025-10-08 14:00:00", attachments=REPORT)]
    [f] = run(store, config, write_events, rows, rule_list).findings
    assert f.event_ids == ("s1",) and f.fields["count"] == 1


def test_cured_by_later_clears_the_alert_when_the_attachment_is_supplied(
        store, reference, config, write_events, tmp_path):
    """补正: with cured_by_later the survey recorded again with the report supplies it; the
    alert raised before is cleared (复查销号), on the trail, in full and incremental runs
    alike; without the parameter (above) the first survey stands."""
    path = tmp_path / "cured.yaml"
    path.write_text("- {id: attach, kind: missing_attachment, params: {cured_by_later: true}}\n",
                    encoding="utf-8")
    rules = load_rules([path])
    first = [survey("s1", "redo", "照片"), survey("t1", "other", "照片")]
    later = [event("s2", "redo", "survey", "2025-10-08 14:00:00", attachments=REPORT)]
    outcomes = []
    for engine, full in ((store, False), (reference, True)):
        run(engine, config, write_events, first, rules, full=full)
        outcomes.append(run(engine, config, write_events, later, rules, name="later.csv",
                            full=full))
    inc, whole = outcomes
    assert inc.incremental and (inc.stored.cleared, whole.stored.cleared) == (1, 1)
    # the incremental run looks at "redo" alone (its new event); "other" stays as it was
    assert ([f.case_id for f in inc.findings], [f.case_id for f in whole.findings]) == \
        ([], ["other"])
    assert stored_alerts(store) == stored_alerts(reference)
    with store.connect() as conn:
        statuses = dict(conn.execute(select(Alert.case_id, Alert.status)).all())
        alert_id = conn.scalar(select(Alert.id).where(Alert.case_id == "redo"))
    assert statuses == {"redo": "cleared", "other": "open"}
    [entry] = [e for e in history(store, alert_id) if e.action == "cleared"]
    assert entry.detail["reason"].startswith("复查：缺少的必备附件已在同一环节补录")
    assert [e["event_id"] for e in entry.detail["events"]] == ["s2"]


def test_scope_as_of_and_catalog_change(catalog, config, write_events, tmp_path):
    path = tmp_path / "scoped.yaml"
    path.write_text("- {id: only2, kind: missing_attachment, "
                    "scope: {include: {items: [D04-XK-002]}}}\n", encoding="utf-8")
    rows = [survey("x1", "c1", None), survey("y1", "c2", None, item_code="D04-XK-002"),
            event("z1", "c3", "survey", "2025-11-05 10:00:00")]  # after AS_OF
    outcome = run(catalog, config, write_events, rows, load_rules([path]))
    assert [f.case_id for f in outcome.findings] == ["c2"]
    assert outcome.findings[0].fields["missing"] == "survey 缺 100%_核查表、现场照片"


def test_incremental_and_idempotent(catalog, config, write_events, rule_list):
    item = {"item_code": "D04-XK-002"}
    first = run(catalog, config, write_events, [survey("a1", "c1", "100%_核查表", **item)],
                rule_list)
    assert first.stored.new == 1
    # new events in another, complete case: c1 is not looked at again
    quiet = run(catalog, config, write_events, [survey("b1", "c2", REPORT)], rule_list,
                name="b.csv")
    assert quiet.incremental and quiet.findings == []
    grown = run(catalog, config, write_events,
                [event("a2", "c1", "review", "2025-10-08 14:00:00", **item)], rule_list,
                name="c.csv")
    assert grown.incremental and (grown.stored.new, grown.stored.changed) == (0, 1)
    assert grown.findings[0].fields["missing"] == "survey 缺 现场照片；review 缺 审核意见 表"
    full = run(catalog, config, write_events, [], rule_list, full=True)
    assert (full.stored.new, full.stored.changed, full.stored.unchanged) == (0, 0, 1)
    with catalog.connect() as conn:
        [alert] = conn.execute(select(Alert)).all()
    assert (alert.case_id, alert.action, alert.subject) == ("c1", "halt", "c1")
    assert alert.event_ids == ["a1", "a2"]
