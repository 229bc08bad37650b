"""The catalog: departments, users and power items (权力事项), from one YAML file.

Loading validates everything and reports problems as ``path:line: message``; applying
upserts by code, so re-ingesting a changed catalog updates it without touching events.
Each county (region) has its own catalog under the same codes (migration 0029): a load
writes one region's rows and reads only that region's; a user id, which names one person
store-wide (accounts, sessions, the trail's actors), stays with the region that first
loaded it.
Entries missing from a later file are kept (events may still refer to them).

Applying is on the trail as a diff (``catalog_loaded``: what was added, and each changed
field from what to what), and a load never grants tier 2 or moves a monitor by itself:
those wait for a tier-2 monitor's approval (monitor/grants.py).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Set
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timezone
from decimal import Decimal
from pathlib import Path
from types import MappingProxyType
from typing import Any

from sqlalchemy import Connection, Engine, insert, select
from sqlalchemy.orm import Session

from . import grants, partitions, trail
from .errors import CatalogError, SourceErrors, did_you_mean
from .models import Department, Item, User
from .regionstore import store_region
from .supervised import change, plain
from .timeutil import ValueProblem, parse_amount
from .yamlsrc import LineDict, LineList, YamlLimits, check_keys, load_yaml

# leader (领导): reads every page and alert, acts on nothing (monitor/authz.py)
ROLES = ("clerk", "chief", "deputy", "principal", "monitor_l1", "monitor_l2", "leader")
CATEGORIES = ("license", "penalty", "other")
STEPS = ("accept", "survey", "review", "approve", "decide", "fee_assessed", "fee_paid",
         "fee_waived", "certificate_printed", "complete", "suspend", "resume", "extend",
         "return", "refuse", "withdraw", "transfer")

DEPARTMENT_KEYS = {"code", "name"}
USER_KEYS = {"id", "name", "department", "roles", "phone", "email"}
ITEM_KEYS = {"code", "name", "department", "category", "promised_days", "legal_days", "fee",
             "min_minutes", "min_case_minutes", "required_attachments", "step_days",
             "four_eyes", "decision_steps", "end_steps", "limit_unit", "limits", "no_limit"}
LIMIT_UNITS = ("working_days", "calendar_days")
# What an item's rules go by beyond its limits (stored in items.policy; absent: defaults):
#   after: {step: the step its min_minutes run from}  (min_minutes: {s: {after:, minutes:}})
#   four_eyes: [[step, step], …] pairs one person may not both do (四眼原则); [] = none
#   decision_steps / end_steps: how a case is decided (decide, refuse …) and ends
#   (complete, withdraw, transfer …), for case_too_fast and overdue
POLICY_LISTS = ("decision_steps", "end_steps")
# the workflow steps an item may give a working-day limit (step_days), in their order
LIMITED_STEPS = ("survey", "review", "approve", "decide")


@dataclass(frozen=True)
class CatalogData:
    departments: list[dict[str, Any]] = field(default_factory=list)
    users: list[dict[str, Any]] = field(default_factory=list)
    items: list[dict[str, Any]] = field(default_factory=list)


@dataclass(frozen=True)
class ApplyResult:
    added: dict[str, int]
    updated: dict[str, int]
    unchanged: dict[str, int]
    pending: list[int] = field(default_factory=list)  # grants waiting for approval
    bootstrapped: list[str] = field(default_factory=list)  # first tier-2 users, if any


class _Checker:
    """Collects located problems so one run reports all of them."""

    def __init__(self, path: str):
        self.path = path
        self.errors: list[CatalogError] = []

    def fail(self, line: int, message: str) -> None:
        self.errors.append(CatalogError(self.path, line, message))

    def entries(self, raw: LineDict, section: str) -> list[tuple[int, LineDict]]:
        value = raw.get(section)
        if value is None:
            return []
        if not isinstance(value, LineList):
            self.fail(raw.line_of(section), f"'{section}' must be a list")
            return []
        out = []
        for line, entry in zip(value.item_lines, value):
            if isinstance(entry, LineDict):
                out.append((line, entry))
            else:
                self.fail(line, f"each entry of '{section}' must be a mapping")
        return out

    def keys(self, entry: LineDict, allowed: set[str], required: tuple[str, ...]) -> bool:
        try:
            check_keys(entry, allowed, self.path, CatalogError, required)
        except CatalogError as exc:
            self.errors.append(exc)
            return False
        return True

    def text(self, entry: LineDict, key: str) -> str | None:
        value = entry.get(key)
        if value is None:
            return None
        if isinstance(value, (dict, list, bool)):
            self.fail(entry.line_of(key), f"'{key}' must be text, got {value!r}")
            return None
        return str(value).strip()

    def whole(self, entry: LineDict, key: str, default: int | None = None) -> int | None:
        value = entry.get(key, default)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            self.fail(entry.line_of(key), f"'{key}' must be a whole number ≥ 0, got {value!r}")
            return default
        return value


def _department(c: _Checker, line: int, e: LineDict) -> dict[str, Any] | None:
    if not c.keys(e, DEPARTMENT_KEYS, ("code", "name")):
        return None
    return {"code": c.text(e, "code"), "name": c.text(e, "name")}


def _user(c: _Checker, line: int, e: LineDict, departments: set[str]) -> dict[str, Any] | None:
    if not c.keys(e, USER_KEYS, ("id", "name")):
        return None
    roles = e.get("roles") or []
    if isinstance(roles, str):
        roles = [roles]
    if not isinstance(roles, list):
        c.fail(e.line_of("roles"), "'roles' must be a list")
        roles = []
    for role in roles:
        if role not in ROLES:
            c.fail(e.line_of("roles"), f"unknown role '{role}'{did_you_mean(str(role), ROLES)}"
                                       f"; roles are {', '.join(ROLES)}")
    dept = c.text(e, "department")
    if dept is not None and dept not in departments:
        c.fail(e.line_of("department"),
               f"user '{e.get('id')}': unknown department '{dept}'{did_you_mean(dept, departments)}")
    return {"id": c.text(e, "id"), "name": c.text(e, "name"), "department": dept,
            "roles": sorted({str(r) for r in roles if r in ROLES}), "phone": c.text(e, "phone"),
            "email": _email(c, e)}


# One address, no display name, no spaces or separators (nothing to inject into a header).
EMAIL = re.compile(r"[^@\s<>()\[\],;:\"]+@[^@\s<>()\[\],;:\"]+\.[^@\s<>()\[\],;:\".]+")


def _email(c: _Checker, e: LineDict) -> str | None:
    value = c.text(e, "email")
    if value and not EMAIL.fullmatch(value):
        c.fail(e.line_of("email"), f"user '{e.get('id')}': '{value}' is not an e-mail address "
                                   "(one address like name@example.gov.cn)")
        return None
    return value or None


def _step_map(c: _Checker, e: LineDict, key: str) -> dict[str, Any]:
    value = e.get(key) or {}
    if not isinstance(value, dict):
        c.fail(e.line_of(key), f"'{key}' must be a mapping of step → value")
        return {}
    return dict(value)


def _item(c: _Checker, line: int, e: LineDict, departments: set[str]) -> dict[str, Any] | None:
    required = ("code", "name", "department", "category", "promised_days", "legal_days")
    if not c.keys(e, ITEM_KEYS, required):
        return None
    code = c.text(e, "code")
    dept = c.text(e, "department")
    if dept not in departments:
        c.fail(e.line_of("department"),
               f"item '{code}': unknown department '{dept}'{did_you_mean(str(dept), departments)}")
    category = e.get("category")
    if category not in CATEGORIES:
        c.fail(e.line_of("category"), f"category must be one of {', '.join(CATEGORIES)}, "
                                      f"got {category!r}{did_you_mean(str(category), CATEGORIES)}")
    promised, legal = c.whole(e, "promised_days"), c.whole(e, "legal_days")
    if promised is not None and legal is not None and legal > 0 and promised > legal:
        c.fail(e.line_of("promised_days"), f"item '{code}': promised_days {promised} exceeds "
                                           f"legal_days {legal}")
    try:
        fee = parse_amount(str(e.get("fee", 0)))
    except ValueProblem as exc:
        c.fail(e.line_of("fee"), f"item '{code}': fee {exc}")
        fee = Decimal(0)
    min_minutes, after = _min_minutes(c, e, code)
    attachments = _step_map(c, e, "required_attachments")
    for step, names in attachments.items():
        if isinstance(names, str):
            attachments[step] = names = [names]
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            c.fail(e.line_of("required_attachments"),
                   f"item '{code}': required_attachments.{step} must be a list of names")
    return {"code": code, "name": c.text(e, "name"), "department": dept, "category": category,
            "promised_days": promised, "legal_days": legal, "fee": fee,
            "min_minutes": min_minutes, "min_case_minutes": c.whole(e, "min_case_minutes"),
            "required_attachments": attachments, "step_days": _step_days(c, e, code, legal),
            "policy": _policy(c, e, code, after)}


def _min_minutes(c: _Checker, e: LineDict, code: str | None) -> tuple[dict, dict]:
    """``min_minutes``: {step: minutes} or {step: {after: step, minutes: n}} → (minutes,
    {step: the step its gap runs from})."""
    minutes, after = {}, {}
    for step, value in _step_map(c, e, "min_minutes").items():
        if isinstance(value, dict):
            unknown = set(value) - {"after", "minutes"}
            if unknown or not isinstance(value.get("after"), str):
                c.fail(e.line_of("min_minutes"),
                       f"item '{code}': min_minutes.{step} must be minutes or "
                       f"{{after: STEP, minutes: N}}, got {dict(value)!r}")
                continue
            if value["after"] not in STEPS:
                c.fail(e.line_of("min_minutes"), f"item '{code}': min_minutes.{step}.after: "
                       f"unknown step '{value['after']}'{did_you_mean(value['after'], STEPS)}")
            after[str(step)], value = value["after"], value.get("minutes")
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
            c.fail(e.line_of("min_minutes"), f"item '{code}': min_minutes.{step} must be a "
                                             f"number of minutes ≥ 0, got {value!r}")
            continue
        minutes[str(step)] = value
    return minutes, after


def _policy(c: _Checker, e: LineDict, code: str | None, after: dict) -> dict | None:
    """The item's rule policy (``items.policy``), or None when it states none."""
    policy: dict[str, Any] = {"after": after} if after else {}
    if "four_eyes" in e:
        pairs = e.get("four_eyes") or []
        ok = isinstance(pairs, list) and all(
            isinstance(p, list) and len(p) == 2 and all(isinstance(s, str) for s in p)
            for p in pairs)
        if not ok:
            c.fail(e.line_of("four_eyes"), f"item '{code}': four_eyes must be a list of step "
                                           "pairs, e.g. [[review, approve]] ([] for none)")
        else:
            for step in (s for p in pairs for s in p if s not in STEPS):
                c.fail(e.line_of("four_eyes"), f"item '{code}': four_eyes: unknown step "
                                               f"'{step}'{did_you_mean(step, STEPS)}")
            policy["four_eyes"] = [list(p) for p in pairs]
    for key in POLICY_LISTS:
        if key in e:
            steps = e.get(key) or []
            if isinstance(steps, str):
                steps = [steps]
            if not isinstance(steps, list) or not steps:
                c.fail(e.line_of(key), f"item '{code}': {key} must be a list of steps")
                continue
            for step in steps:
                if step not in STEPS:
                    c.fail(e.line_of(key), f"item '{code}': {key}: unknown step '{step}'"
                                           f"{did_you_mean(str(step), STEPS)}")
            policy[key] = [str(s) for s in steps]
    _limits(c, e, code, policy)
    return policy or None


def _limits(c: _Checker, e: LineDict, code: str | None, policy: dict) -> None:
    """``limit_unit`` (working_days, calendar_days), ``limits`` in force from a date, and
    ``no_limit`` (an item with no time limit), into ``policy``."""
    unit = e.get("limit_unit")
    if unit is not None:
        if unit not in LIMIT_UNITS:
            c.fail(e.line_of("limit_unit"), f"item '{code}': limit_unit must be one of "
                   f"{', '.join(LIMIT_UNITS)}, got {unit!r}{did_you_mean(str(unit), LIMIT_UNITS)}")
        elif unit == "calendar_days":
            policy["limit_unit"] = unit
    if e.get("no_limit") is True:
        policy["no_limit"] = True
    elif e.get("no_limit") not in (None, False):
        c.fail(e.line_of("no_limit"), f"item '{code}': no_limit must be true or false")
    periods = e.get("limits")
    if periods is None:
        return
    out = []
    for period in periods if isinstance(periods, list) else [None]:
        if not (isinstance(period, dict) and set(period) == {"from", "promised_days",
                                                             "legal_days"}
                and type(period["from"]) is date
                and all(isinstance(period[k], int) and not isinstance(period[k], bool)
                        and period[k] >= 0 for k in ("promised_days", "legal_days"))):
            c.fail(e.line_of("limits"), f"item '{code}': limits must be a list of "
                   "{from: DATE, promised_days: N, legal_days: N} (the limits in force for "
                   "cases accepted from that date)")
            return
        out.append({"from": period["from"].isoformat(), "promised_days": period["promised_days"],
                    "legal_days": period["legal_days"]})
    policy["limits"] = sorted(out, key=lambda x: x["from"])


def _step_days(c: _Checker, e: LineDict, code: str | None, legal: int | None) -> dict[str, int]:
    """``step_days``: working days each limited workflow step may take (环节时限)."""
    limits, raw = _step_map(c, e, "step_days"), e.get("step_days")
    for step, days in limits.items():
        line = raw.line_of(step) if isinstance(raw, LineDict) else e.line_of("step_days")
        if step not in LIMITED_STEPS:
            c.fail(line, f"item '{code}': step_days: '{step}' is not a step with a time limit"
                         f"{did_you_mean(str(step), LIMITED_STEPS)}; limited steps are "
                         f"{', '.join(LIMITED_STEPS)}")
        elif isinstance(days, bool) or not isinstance(days, int) or days < 0:
            c.fail(line, f"item '{code}': step_days.{step} must be a whole number of working "
                         f"days ≥ 0, got {days!r}")
        elif legal and days > legal:
            c.fail(line, f"item '{code}': step_days.{step} {days} exceeds legal_days {legal}")
    return {str(k): v for k, v in limits.items()}


def _unique(c: _Checker, rows: list[tuple[int, dict]], key: str, what: str) -> None:
    seen: dict[str, int] = {}
    for line, row in rows:
        if row[key] in seen:
            c.fail(line, f"duplicate {what} '{row[key]}' (first at line {seen[row[key]]})")
        seen.setdefault(row[key], line)


def _taken(c: _Checker, users: list[tuple[int, dict]], taken: Mapping[str, str]) -> None:
    for line, row in users:
        if (other := taken.get(row["id"])) is not None:
            c.fail(line, f"user '{row['id']}' belongs to region {other}: a user id names one "
                         f"person in the store (load it with --region {other}, or give this "
                         "person another id)")


def load_catalog(path: str | Path, known_departments: Set[str] = frozenset(),
                 limits: YamlLimits = YamlLimits(),
                 taken: Mapping[str, str] = MappingProxyType({})) -> CatalogData:
    """Parse and validate a catalog file, read within ``limits`` (a catalog dropped in the
    inbox is input like any other); every problem is reported, each as path:line.
    ``taken``: user ids another region holds (id → region), refused."""
    return parse_catalog(load_yaml(path, CatalogError, limits), str(path), known_departments,
                         taken)


def parse_catalog(raw: Any, where: str, known_departments: Set[str] = frozenset(),
                  taken: Mapping[str, str] = MappingProxyType({})) -> CatalogData:
    """Validate a catalog already read from YAML (e.g. a fragment of a golden test file)."""
    if not isinstance(raw, LineDict):
        raise CatalogError(where, getattr(raw, "line", 1), "expected a mapping with departments, users and items")
    c = _Checker(where)
    c.keys(raw, {"departments", "users", "items"}, ())
    depts = [(line, d) for line, e in c.entries(raw, "departments")
             if (d := _department(c, line, e))]
    _unique(c, depts, "code", "department")
    dept_codes = set(known_departments) | {d["code"] for _, d in depts}
    users = [(line, u) for line, e in c.entries(raw, "users")
             if (u := _user(c, line, e, dept_codes))]
    _unique(c, users, "id", "user")
    _taken(c, users, taken)
    items = [(line, i) for line, e in c.entries(raw, "items")
             if (i := _item(c, line, e, dept_codes))]
    _unique(c, items, "code", "item")
    if c.errors:
        raise SourceErrors(c.errors)
    return CatalogData([d for _, d in depts], [u for _, u in users], [i for _, i in items])


def apply_catalog(engine: Engine, data: CatalogData, at: datetime | None = None,
                  source: str = "catalog", by: str = trail.SYSTEM, *,
                  region: str | None = None) -> ApplyResult:
    """Upsert the catalog in one transaction, on the trail; events are never touched.
    ``at``: when (default: the Unix epoch, for a scratch store such as a golden test's);
    ``region``: the county its rows are of (None: the store's own); only that region's rows
    are read and changed, and a user id another region holds is refused; its entries go
    on that county's own trail chain (a grant of its users' powers is decided there too,
    monitor/grants.py)."""
    at = at or datetime(1970, 1, 1, tzinfo=timezone.utc)
    added, updated, unchanged = {}, {}, {}
    diff: dict[str, Any] = {"source": source, "added": {}, "changed": []}
    users_changed: list[dict[str, Any]] = []
    chain = region  # a load for a named county goes on that county's own chain
    with Session(engine) as session, session.begin():
        conn = session.connection()
        trail.lock(conn, chain)  # SQLite's write lock too, before anything is read
        region = region or store_region(conn)
        partitions.ensure(conn, [region])  # a county's first catalog: its events' partition
        if taken := _users_elsewhere(conn, region, [u["id"] for u in data.users]):
            raise CatalogError(source, None, "; ".join(
                f"user '{i}' belongs to region {r}" for i, r in sorted(taken.items())))
        bootstrap = not grants.has_tier2(conn)
        held: list[grants.Held] = []
        for name, model, key, rows in (("departments", Department, "code", data.departments),
                                       ("users", User, "id", data.users),
                                       ("items", Item, "code", data.items)):
            existing = {getattr(o, key): o for o in session.scalars(
                select(model).where(model.region == region))}
            added[name] = updated[name] = unchanged[name] = 0
            fresh: dict[tuple[str, ...], list[dict]] = {}
            for row in rows:
                row = {**row, "region": region}
                current = existing.get(row[key])
                if name == "users" and not bootstrap:
                    hold = grants.withheld(current, row)
                    if hold is not None:
                        held.append(hold)
                        row = grants.safe_part(current, row, hold)
                if current is None:
                    # only the catalog's own columns: what it does not know (a user's
                    # choice of delivery, monitor/tier1.py) it never writes
                    fresh.setdefault(tuple(sorted(row)), []).append(row)
                    added[name] += 1
                    diff["added"].setdefault(name, []).append(row[key])
                    if name == "users":
                        users_changed.append(change("users", row[key], row, new=True))
                    continue
                fields = {k: [plain(getattr(current, k)), plain(v)] for k, v in row.items()
                          if getattr(current, k) != v}
                if not fields:
                    unchanged[name] += 1
                    continue
                for k, v in row.items():
                    setattr(current, k, v)
                updated[name] += 1
                diff["changed"].append({name: row[key], "fields": fields})
                if name == "users":
                    users_changed.append(change("users", row[key], row))
            for same_keys in fresh.values():
                session.execute(insert(model), same_keys)
        session.flush()
        entries = []
        if added_or_changed := (diff["added"] or diff["changed"]):
            entries.append(trail.Entry("catalog_loaded", None, by, diff,
                                       changes=users_changed))
        pending, more = grants.record_pending(conn, held, source, by, at)
        first = sorted(u["id"] for u in data.users
                       if bootstrap and grants.TIER2 in (u.get("roles") or ()))
        if first:
            entries.append(trail.Entry("grants_bootstrapped", None, by, {
                "source": source, "tier2": first}))
        if added_or_changed or more or first:
            trail.append(conn, at, [replace(e, region=chain) for e in entries + more])
    return ApplyResult(added, updated, unchanged, pending, first)


def _users_elsewhere(conn: Connection, region: str, ids: Iterable[str] | None = None
                     ) -> dict[str, str]:
    """User ids held by a region other than ``region`` (all of them, or of ``ids``) → theirs."""
    query = select(User.id, User.region).where(User.region != region)
    if ids is not None:
        query = query.where(User.id.in_(sorted(set(ids))))
    return dict(conn.execute(query).tuples().all())


def known_department_codes(engine: Engine, region: str | None = None) -> set[str]:
    """The department codes of ``region``'s catalog (None: the store's own region)."""
    with engine.connect() as conn:
        return set(conn.scalars(select(Department.code).where(
            Department.region == (region or store_region(conn)))))


def ingest_catalog(engine: Engine, path: str | Path, at: datetime | None = None,
                   by: str = trail.SYSTEM, source: str | None = None, *,
                   limits: YamlLimits = YamlLimits(), region: str | None = None) -> ApplyResult:
    """Validate ``path`` against what the store already knows, then apply it (on the
    trail at ``at``: default, the file's modification time; ``source``: how the trail
    names the file, default its path; ``limits``: bounds on the YAML)."""
    if at is None:
        at = datetime.fromtimestamp(Path(path).stat().st_mtime, timezone.utc)
    with engine.connect() as conn:
        region = region or store_region(conn)
        taken = _users_elsewhere(conn, region)
    return apply_catalog(engine, load_catalog(path, known_department_codes(engine, region),
                                              limits, taken),
                         at, source or str(path), by, region=region)
