"""The exemptions registry: approved, scoped, time-limited exceptions to one rule.

Instead of silencing a rule, the county office records *who* approved *which* findings of
*which* rule to be set aside, *why* and *until when* — e.g. a one-person township office
exempt from ``same_actor_roles``, or a declared system outage window exempt from
``late_entry``. A finding in the scope of an exemption in force is still stored, as an
alert with status ``suppressed`` (``alerts list --suppressed``): never assigned, held or
escalated, never silently dropped. An exemption stops applying after its ``until`` date
(local, inclusive) or when revoked; a suppressed alert found again after that becomes an
open alert like any other. An exemption covers findings raised while it is in force: an
alert already open when it is added stays open (a person disposes of it).

Scope (every key given must match; several values of one key: any of them):

- ``department=D1,D2``, ``item=CODE``, ``case=CASE``, ``actor=USER``: the finding's own
  department, item, case (any of a multi-case finding's cases) or actor;
- ``window=FROM/TO`` (ISO 8601, naive = configured timezone): every event behind the
  finding happened within the window (a system outage: entries keyed in late).

Adding and revoking are appended to the hash-chained trail (monitor/trail.py) in the same
transaction. Only a tier-2 monitor (``monitor_l2``) may approve or revoke an exemption.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date, datetime, timezone, tzinfo
from typing import Any

from sqlalchemy import Connection, Engine, insert, or_, select, update

from . import authz, regions, trail
from .authz import Actor
from .errors import InvalidTransition, MonitorError, NotFound, did_you_mean, usage
from .models import Event, Exemption, User
from .rules.finding import Finding
from .supervised import change, update as traced_update
from .trail import Entry

SCOPE_KEYS = ("department", "item", "case", "actor", "window")


class ExemptionError(MonitorError):
    """An exemption cannot be added or revoked as asked (bad scope, rule, date, approver)."""


def parse_scope(specs: Iterable[str], tz: tzinfo) -> dict[str, Any]:
    """``["department=D1,D2", "window=2025-10-08T08:00/2025-10-08T18:00"]`` → scope dict."""
    from .timeutil import ValueProblem, parse_timestamp

    scope: dict[str, Any] = {}
    for spec in specs:
        key, sep, value = spec.partition("=")
        key, value = key.strip(), value.strip()
        if not sep or key not in SCOPE_KEYS or not value:
            raise usage(ExemptionError(f"bad --scope '{spec}'{did_you_mean(key, SCOPE_KEYS)}: "
                                       "use KEY=VALUE with KEY one of " + ", ".join(SCOPE_KEYS)))
        if key == "window":
            start, slash, end = value.partition("/")
            try:
                bounds = [parse_timestamp(t.strip(), tz) for t in (start, end)] if slash else []
            except ValueProblem as exc:
                raise usage(ExemptionError(f"bad --scope window: {exc}")) from None
            if not bounds or bounds[0] >= bounds[1]:
                raise usage(ExemptionError(f"bad --scope window '{value}': use FROM/TO, FROM "
                                           "before TO, e.g. 2025-10-08T08:00/2025-10-08T18:00"))
            scope["window"] = [b.astimezone(timezone.utc).isoformat() for b in bounds]
        else:
            values = scope.setdefault(key, [])
            values += [v.strip() for v in value.split(",") if v.strip()]
    if not scope:
        raise usage(ExemptionError("an exemption needs at least one --scope (to set a whole rule "
                                   "aside, disable it in its rule file)"))
    return {k: sorted(set(v)) if k != "window" else v for k, v in scope.items()}


def _approver(conn: Connection, user_id: str, action: str, channel: str | None) -> Any:
    """The approving user's row, once they are allowed ``action``."""
    user = conn.execute(select(User).where(User.id == user_id)).one_or_none()
    if user is None:
        known = conn.scalars(select(User.id)).all()
        raise NotFound(f"unknown user '{user_id}'{did_you_mean(user_id, known)}: a user id "
                       "from the catalog")
    authz.check(Actor.of_user(user, channel or "cli"), action)
    return user


def add(engine: Engine, rules_of: Callable[[str], Iterable[str]] | Iterable[str],
        rule_id: str, scope: dict[str, Any], reason: str, approved_by: str, until: date,
        at: datetime, tz: tzinfo, channel: str | None = None) -> int:
    """Record an exemption (traced); its id. ``rules_of``: region → the ids of the rules
    in force there (:func:`monitor.regionrules.ids_seen`, as ``exemptions add`` and the
    control center pass it), or the ids of every region's: ``rule_id`` must be one of the
    approving office's region's — a county's own rule as well as a base rule it keeps."""
    with engine.begin() as conn:
        region = conn.scalar(select(User.region).where(User.id == approved_by))
        if not callable(rules_of):
            rule_ids = list(rules_of)
        else:  # an unknown approver is said below
            rule_ids = [rule_id] if region is None else list(rules_of(region))
        if rule_id not in rule_ids:
            raise usage(ExemptionError(f"no rule with id '{rule_id}'"
                                       f"{did_you_mean(rule_id, rule_ids)}"))
        if not reason or not reason.strip():
            raise usage(ExemptionError("an exemption needs a reason (--reason)"))
        if until < at.astimezone(tz).date():
            raise usage(ExemptionError(f"--until {until} is already past"))
        trail.lock(conn)
        office = _approver(conn, approved_by, "exempt", channel)
        row = {"rule_id": rule_id, "scope": scope, "reason": reason.strip(),
               "approved_by": approved_by, "created_at": at, "until": until}
        # of the approving office's region (not a supervised column: not on the trail)
        ex_id = conn.execute(insert(Exemption).values(**row, region=office.region)
                             .returning(Exemption.id)).scalar_one()
        trail.append(conn, at, [Entry("exemption_added", None, approved_by, {
            "exemption_id": ex_id, "rule_id": rule_id, "scope": scope,
            "reason": reason.strip(), "until": until.isoformat()}, channel,
            [change("exemptions", ex_id, row, new=True)])])
    return ex_id


def revoke(engine: Engine, exemption_id: int, by: str, reason: str | None,
           at: datetime, channel: str | None = None) -> None:
    if not reason or not reason.strip():
        raise InvalidTransition(f"cannot revoke exemption {exemption_id} without a reason "
                                "(--reason)")
    with engine.begin() as conn:
        trail.lock(conn)
        _approver(conn, by, "revoke_exemption", channel)
        row = conn.execute(select(Exemption).where(Exemption.id == exemption_id)).one_or_none()
        if row is None:
            raise NotFound(f"no exemption with id {exemption_id}")
        if row.revoked_at is not None:
            raise InvalidTransition(f"exemption {exemption_id} was already revoked")
        state = traced_update(conn, "exemptions", exemption_id, revoked_at=at, revoked_by=by,
                              revoke_reason=reason.strip())
        trail.append(conn, at, [Entry("exemption_revoked", None, by, {
            "exemption_id": exemption_id, "rule_id": row.rule_id, "reason": reason.strip()},
            channel, [state])])


def list_exemptions(engine: Engine, at: datetime, tz: tzinfo, include_all: bool = False
                    ) -> list[Any]:
    """Exemptions in force at ``at`` (``include_all``: expired and revoked ones too)."""
    query = select(Exemption).order_by(Exemption.id)
    if not include_all:
        query = query.where(*_in_force(at, tz))
    with engine.connect() as conn:
        return list(conn.execute(query))


def _in_force(at: datetime, tz: tzinfo) -> list:
    return [Exemption.until >= at.astimezone(tz).date(),
            or_(Exemption.revoked_at.is_(None), Exemption.revoked_at > at)]


@dataclass
class Matcher:
    """The exemptions of one rule in force at one moment, matched against findings.

    An exemption sets aside findings of its approving office's region only: its own
    county's, or — approved by a city or province office — its counties'
    (:func:`monitor.regions.covers`). Counties of one store may share department codes
    (migration 0029), so ``department=D04`` of one county never reaches another's D04."""

    conn: Connection
    rows: list[Any]

    @classmethod
    def load(cls, conn: Connection, rule_id: str, at: datetime, tz: tzinfo) -> "Matcher":
        return cls(conn, list(conn.execute(select(Exemption).where(
            Exemption.rule_id == rule_id, *_in_force(at, tz)).order_by(Exemption.id))))

    def match(self, finding: Finding, region: str) -> int | None:
        """The id of the first exemption covering ``finding`` of county ``region`` (the
        region its alert has or gets), or None."""
        for row in self.rows:
            if regions.covers(row.region, region) and _covers(self.conn, row.scope, finding):
                return row.id
        return None


def _covers(conn: Connection, scope: dict[str, Any], f: Finding) -> bool:
    cases = set(f.case_ids) | ({f.case_id} if f.case_id else set())
    checks = {"department": lambda v: f.department in v, "item": lambda v: f.item_code in v,
              "actor": lambda v: f.actor in v, "case": lambda v: bool(cases & set(v))}
    for key, check in checks.items():
        if key in scope and not check(scope[key]):
            return False
    if "window" in scope:
        start, end = (datetime.fromisoformat(t) for t in scope["window"])
        if not f.event_ids:
            return False
        times = conn.scalars(select(Event.occurred_at)
                             .where(Event.event_id.in_(list(f.event_ids)))).all()
        return bool(times) and all(start <= t <= end for t in times)
    return True
