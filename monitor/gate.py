"""The workflow gate (事前拦截): may the workflow system record this event?

The workflow system asks before it records a step (``POST /api/v1/gate``; ``permit-monitor
gate check EVENT.json`` asks the same from the command line). The answer is ``allow``,
``warn`` or ``deny`` with the reasons, from the rules that opt in with ``gate: deny`` or
``gate: warn`` — of the kinds that support it (``kinds.gate_effects``): step_too_fast,
same_actor_roles, unpaid_fee, missing_attachment, and overdue (warn only).

**How**: the detectors themselves decide — there is no second implementation of any
rule. In one transaction on one connection the candidate is put where the detectors read
``events`` (under an event id of its own, ``gate:…``; monitor/gateprobe.py: on the web
app's SQLite connections a TEMP view of the case and the candidate, so the look writes
nothing and takes no write lock; else inserted into ``events``), each gated rule's
detector runs over that case alone (``Context.changed_case_ids``, as an incremental run
over that one case, with ``Context.probe`` set so that no detector keeps state), and the
transaction is rolled back: nothing the gate does is ever seen by another connection.

**Which findings count**: those that cite the candidate event (it is one of the
finding's events: the 58-second survey, the approval by a person who also accepted, the
certificate without an online payment, the step without its attachment); for
``overdue``, any finding on the case (the case is past its limit as the step is taken:
a warning, never a refusal); for ``unpaid_fee``, a finding on the case when the
candidate is a certificate or a completion (a second print is refused like the first). A finding covered by an exemption in force does not count
(it is listed under ``exempted``). A rule that is not ``stable`` (``status``) only warns,
as such a rule does not halt a case in a run either. Scope is each rule's own, as in a
run. The moment is the later of the candidate's ``occurred_at`` and now.

**Whose rules**: the candidate's county judges it (docs/regions.md) — the county of its
case as stored, else of its item (or its department) when one county of the store has
that code, else the store's own; that county's rule set (the base with its overrides)
and calendar, and its catalog validates the candidate.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import Connection, Engine, select

from . import gateprobe

from .alerts import render
from .catalogmemo import CatalogMemo
from .config import Config
from .errors import MonitorError
from .exemptions import Matcher
from .ingest.events import COLUMNS, CatalogIndex, Rejected, normalize_event
from .models import Department, Item
from .regionrules import RuleSets, county_rules
from .rules.finding import Context, Finding, catalog_read
from .rules.kinds import KINDS, gate_effects
from .rules.kinds._fees import REACHED
from .rules.model import Rule
from .supervision import policy_for

DECISIONS = ("allow", "warn", "deny")
PROBE_PREFIX = "gate:"  # the event id the candidate is looked at under (never stored)


class GateInputError(MonitorError):
    """The candidate event breaks the input contract (the reason is its sentence)."""

    def __init__(self, reason: str, detail: str):
        super().__init__(f"candidate event: {detail}")
        self.reason, self.detail = reason, detail


@dataclass(frozen=True)
class Verdict:
    """The gate's answer: ``decision`` and the ``reasons`` behind it (rule_id, kind, level,
    message, effect), the exemptions that set findings aside, the rule versions consulted."""

    decision: str
    reasons: tuple[dict[str, Any], ...]
    evaluated_at: datetime
    candidate: dict[str, Any]
    rule_versions: dict[str, str] = field(default_factory=dict)
    exempted: tuple[dict[str, Any], ...] = ()
    degraded: bool = False

    def answer(self) -> dict[str, Any]:
        """The JSON the workflow system gets."""
        out: dict[str, Any] = {"decision": self.decision, "reasons": list(self.reasons),
                               "evaluated_at": self.evaluated_at.isoformat()}
        if self.exempted:
            out["exempted"] = list(self.exempted)
        if self.degraded:
            out["degraded"] = True
        return out


def gated_rules(rules: list[Rule]) -> list[Rule]:
    """The enabled rules that opted in (``gate:``), of kinds the gate supports."""
    return [r for r in rules if r.enabled and r.gate and gate_effects(KINDS[r.kind])]


def candidate_fields(raw: Any) -> dict[str, str]:
    """The body's fields as the contract's text values (numbers as text, a list of
    attachments joined with ';'); unknown keys are an error with a did-you-mean."""
    from .errors import did_you_mean

    if not isinstance(raw, dict):
        raise GateInputError("not_an_object", "the body must be a JSON object of the "
                                              "event's fields")
    out: dict[str, str] = {}
    for key, value in raw.items():
        if key not in COLUMNS:
            raise GateInputError("unknown_field", f"unknown field '{key}'"
                                 f"{did_you_mean(str(key), COLUMNS)}; fields: "
                                 f"{', '.join(COLUMNS)}")
        if value is None:
            continue
        if isinstance(value, list):
            value = ";".join(str(v) for v in value)
        elif isinstance(value, bool) or not isinstance(value, (str, int, float)):
            raise GateInputError("bad_value", f"'{key}' must be text or a number")
        out[key] = str(value)
    return out


def read_candidate(path: str) -> Any:
    """The candidate event of a JSON file (``gate check``): bad JSON is one
    ``path:line: reason`` error."""
    import json

    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except OSError as exc:
        raise GateInputError("unreadable", f"{path}: {exc.strerror}") from None
    except json.JSONDecodeError as exc:
        raise GateInputError("bad_json", f"{path}:{exc.lineno}: not JSON: {exc.msg}") from None


def _catalog_for(conn: Connection, fields: dict[str, str], region: str,
                 memo: dict[Any, Any] | None) -> CatalogIndex:
    """What validating this one candidate needs of its county's catalog (its item, its
    department): the whole index from the memo at this catalog version, else two key
    lookups (a code only another county has is then simply unknown)."""
    if memo is not None:
        return catalog_read(conn, memo, ("index", region),
                            lambda c: CatalogIndex.load(c, region))
    code, dept = fields.get("item_code", "").strip(), fields.get("department", "").strip()
    items: dict[str, str] = {c: d for c, d in conn.execute(
        select(Item.code, Item.department).where(Item.region == region, Item.code == code))}
    departments = frozenset(conn.scalars(select(Department.code).where(
        Department.region == region, Department.code == dept))) if dept else frozenset()
    return CatalogIndex(items, departments, region=region)


_CODES = (("item_code", Item.region, Item.code), ("department", Department.region,
                                                  Department.code))


def _owners(conn: Connection) -> tuple[frozenset[str], dict[tuple[str, str], str | None]]:
    """The catalog's counties, and (field, code) → the county that has it (None: several)."""
    counties: set[str] = set()
    owners: dict[tuple[str, str], str | None] = {}
    for key, column, code in _CODES:
        for region, value in conn.execute(select(column, code)):
            counties.add(region)
            owners[(key, value)] = region if owners.get((key, value), region) == region \
                else None
    return frozenset(counties), owners


def county_of(conn: Connection, fields: dict[str, str], home: str,
              memo: dict[Any, Any] | None = None) -> str:
    """The candidate's county: its case's as stored, else its item's, else its
    department's when exactly one county has that code, else ``home`` (the store's).
    ``memo`` (the catalog read at its version): a catalog of one county answers at once,
    and the codes' counties are read from it, not asked for."""
    known = catalog_read(conn, memo, ("counties",), _owners) if memo is not None else None
    if known is not None and known[0] <= {home}:
        return home  # a single county's store: nothing to look up
    case_id = fields.get("case_id", "").strip()
    if case_id:
        events = gateprobe.stored_events(conn)
        stored = conn.scalar(select(events.c.region).where(events.c.case_id == case_id).limit(1))
        if stored is not None:
            return stored
    for key, column, code in _CODES:
        value = fields.get(key, "").strip()
        if not value:
            continue
        if known is not None:
            owner = known[1].get((key, value))
        else:
            found = conn.scalars(select(column).where(code == value).distinct().limit(2)).all()
            owner = found[0] if len(found) == 1 else None
        if owner is not None:
            return owner
    return home


def _candidate(conn: Connection, raw: Any, config: Config,
               memo: dict[Any, Any] | None) -> tuple[dict[str, Any], str]:
    """(the stored row of the candidate, with its county, its own event id or '')."""
    fields = candidate_fields(raw)
    own_id = fields.get("event_id", "").strip()
    fields["event_id"] = PROBE_PREFIX + uuid.uuid4().hex
    region = county_of(conn, fields, config.region, memo)
    try:
        row = normalize_event(fields, _catalog_for(conn, fields, region, memo), config.tz)
    except Rejected as exc:
        raise GateInputError(exc.reason, exc.detail) from None
    row["region"] = region  # the candidate's county: judged by its catalog and rules
    return row, own_id


def check(engine: Engine, config: Config, rules: list[Rule] | RuleSets, raw: Any,
          at: datetime, before: Any = None) -> Verdict:
    """The gate's verdict on the candidate event ``raw`` (a JSON object of the contract's
    fields) as of ``at``; ``before(conn)`` runs first on the same connection (the budget's
    statement timeout). Nothing is written."""
    with engine.connect() as conn:
        return judge(conn, config, rules, raw, at, before)


def judge(conn: Connection, config: Config, rules: list[Rule] | RuleSets, raw: Any,
          at: datetime, before: Any = None, memo: CatalogMemo | None = None) -> Verdict:
    """:func:`check` on a connection of the caller's (in no transaction): the look is
    rolled back, and the connection is left in no transaction. ``rules``: the rule sets
    (each county's overrides on the base), or the base alone (no county differs).
    ``memo``: what earlier decisions read of the catalog whole, used while the catalog's
    version is the same."""
    gated: list[Rule] = []
    reasons: list[dict[str, Any]] = []
    exempted: list[dict[str, Any]] = []
    try:  # the look: one transaction, rolled back
        if before is not None:
            before(conn)
        catalog = memo.current(conn) if memo is not None else None
        row, own_id = _candidate(conn, raw, config, catalog)
        as_of = max(at, row["occurred_at"])
        shown = {k: v for k, v in row.items() if k not in ("content_hash", "region")}
        shown["event_id"] = own_id or None
        if row["recorded_at"] is None:
            row["recorded_at"] = at
        own = county_rules(rules, row["region"])  # the candidate's county's set in force
        gated = gated_rules(own)
        _look(conn, config, gated, policy_for(config, own), row, as_of, catalog, reasons,
              exempted)
    finally:
        conn.rollback()
    decision = ("deny" if any(r["effect"] == "deny" for r in reasons) else
                "warn" if reasons else "allow")
    return Verdict(decision, tuple(reasons), at, _jsonable(shown),
                   {r.id: r.version for r in gated}, tuple(exempted))


def _look(conn: Connection, config: Config, gated: list[Rule], policy: Any,
          row: dict[str, Any], as_of: datetime, catalog: dict[Any, Any] | None,
          reasons: list[dict[str, Any]], exempted: list[dict[str, Any]]) -> None:
    """The probe inserted and each gated rule's detector run over its case: the reasons
    (and the exempted ones) appended to the lists given."""
    probe = gateprobe.put(conn, row)
    ctx = Context(as_of=as_of, tz=config.tz,
                  calendar=config.calendar().for_region(row["region"]),
                  since_event_id=probe - 1, since_as_of=as_of, deferred_ids=(),
                  changed_case_ids=(row["case_id"],), probe=True,
                  stale_days=config.stale_days, catalog=catalog)
    for rule in gated:
        found = _implicated(rule, row, KINDS[rule.kind].detect(conn, rule, ctx))
        if not found:
            continue
        exempt = Matcher.load(conn, rule.id, as_of, config.tz)
        for finding in found:
            # the finding's county: the candidate's, unless it names its own (a department's)
            exemption = exempt.match(finding, finding.region or row["region"])
            reason = _reason(rule, finding, policy.status_of(rule.id))
            if exemption is None:
                reasons.append(reason)
            else:
                exempted.append({**reason, "exemption_id": exemption})


def _implicated(rule: Rule, row: dict[str, Any], findings) -> list[Finding]:
    """The findings the candidate takes part in (see the module's docstring)."""
    on_case = _ON_CASE.get(rule.kind)
    return [f for f in findings if row["event_id"] in f.event_ids
            or (on_case is not None and f.case_id == row["case_id"] and on_case(row))]


# Kinds whose finding on the case counts whether or not it cites the candidate: overdue
# (the case is past its limit as the step is taken), and unpaid_fee for a certificate or a
# completion (the finding cites the first of those; printing again is refused as well)
_ON_CASE = {"overdue": lambda row: True,
            "unpaid_fee": lambda row: row["step"] in REACHED}


def _reason(rule: Rule, finding: Finding, status: str) -> dict[str, Any]:
    level, message = render(rule, finding)
    effect = rule.gate if status == "stable" else "warn"
    return {"rule_id": rule.id, "kind": rule.kind, "level": level, "message": message,
            "effect": effect, "rule_version": rule.version}


def _jsonable(row: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for key, value in row.items():
        if isinstance(value, datetime):
            value = value.astimezone(timezone.utc).isoformat()
        elif value is not None and not isinstance(value, (str, int, float, bool)):
            value = str(value)
        out[key] = value
    return out


def degraded(fail: str, at: datetime, candidate: Any = None) -> Verdict:
    """The answer when the store cannot answer in time: ``allow`` (``gate.fail: open``) or
    ``deny`` (``closed``), marked degraded."""
    decision = "allow" if fail == "open" else "deny"
    reasons = () if decision == "allow" else ({
        "rule_id": None, "kind": "gate", "level": None, "effect": "deny",
        "message": "监察系统暂时无法作出判断，按配置（gate.fail: closed）拒绝"},)
    return Verdict(decision, reasons, at, candidate if isinstance(candidate, dict) else {},
                   degraded=True)


__all__ = ["DECISIONS", "GateInputError", "Verdict", "check", "degraded", "gated_rules",
           "judge"]
