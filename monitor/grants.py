"""Powers granted by someone who holds them (层级监察的授权): catalog loads on the trail,
and the grants a load may not give itself.

A catalog load (monitor/catalog.py) is recorded on the trail as a diff — which
departments, users and items it added, and for each changed one which fields went from
what to what (items' limits, users' roles, departments, phones) — by whom, from which
file. Two changes are not applied by the load itself:

* making a user tier 2 (``monitor_l2``), and
* moving a monitor (``monitor_l1`` or ``monitor_l2``) to another department.

Those wait in ``grants`` as **pending** until an existing tier-2 monitor approves them
(``permit-monitor grants approve ID --by USER``) or rejects them; nobody approves their own.
Everything else in the same load applies at once. So a department monitor who edits the
catalog to make himself tier 2 gets a pending grant, not the power.

**Bootstrap.** A store with no tier-2 monitor yet (a new county) has nobody to approve:
its first load's tier-2 users and moves apply at once, recorded on the trail as
``grants_bootstrapped`` with the users it made tier 2 — explicit in the record, once, and
never again once a tier-2 monitor exists. Users' roles and departments and the grants are
supervised tables (monitor/supervised.py): an edit of ``users.roles`` behind the
program's back is reported by ``audit verify``.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine, insert, select

from . import trail
from .authz import TIER1, TIER2
from .errors import InvalidTransition, NotAllowed, NotFound
from .models import Grant, User
from .regionstore import store_region
from .supervised import change, update as traced_update
from .trail import Entry

MONITORS = (TIER1, TIER2)


@dataclass(frozen=True)
class Held:
    """What a load asked for a user that needs approval: the fields withheld."""

    user_id: str
    kind: str
    roles: list[str]
    department: str | None
    was: dict[str, Any]


def withheld(current: Any, row: dict[str, Any]) -> Held | None:
    """Does applying ``row`` (a user from a catalog file) to ``current`` (the stored user,
    or None) grant tier 2 or move a monitor? Then what is withheld."""
    before_roles = set(current.roles or ()) if current is not None else set()
    after_roles = set(row.get("roles") or ())
    tier2 = TIER2 in after_roles and TIER2 not in before_roles
    moved = (current is not None and row.get("department") != current.department
             and bool((before_roles | after_roles) & set(MONITORS)))
    if not (tier2 or moved):
        return None
    kind = "+".join(k for k, on in (("tier2", tier2), ("move", moved)) if on)
    was = {"roles": sorted(before_roles),
           "department": current.department if current is not None else None}
    return Held(row["id"], kind, sorted(after_roles), row.get("department"), was)


def safe_part(current: Any, row: dict[str, Any], held: Held) -> dict[str, Any]:
    """``row`` without what ``held`` withholds: the roles stay as they were (a new user gets
    those asked for but tier 2); a monitor stays where he is."""
    out = dict(row)
    if "tier2" in held.kind:
        out["roles"] = list(current.roles or []) if current is not None else \
            sorted(set(row.get("roles") or ()) - {TIER2})
    if "move" in held.kind:
        out["department"] = current.department
    return out


def has_tier2(conn: Connection) -> bool:
    return any(TIER2 in (roles or ()) for roles in conn.scalars(select(User.roles)))


def record_pending(conn: Connection, held: list[Held], source: str, by: str,
                   at: datetime) -> tuple[list[int], list[Entry]]:
    """Store the pending grants; their ids and trail entries."""
    ids, entries = [], []
    for h in held:
        row = {"user_id": h.user_id, "kind": h.kind, "roles": h.roles,
               "department": h.department, "was": h.was, "source": source,
               "requested_at": at, "requested_by": by, "status": "pending"}
        grant_id = conn.execute(insert(Grant).values(**row).returning(Grant.id)).scalar_one()
        ids.append(grant_id)
        entries.append(Entry("grant_requested", None, by, {
            "grant_id": grant_id, "user_id": h.user_id, "kind": h.kind, "roles": h.roles,
            "department": h.department, "was": h.was, "source": source},
            changes=[change("grants", grant_id, row, new=True)]))
    return ids, entries


# ---------------------------------------------------------------- deciding


def list_grants(engine: Engine, include_all: bool = False) -> Iterator[Any]:
    query = select(Grant).order_by(Grant.id)
    if not include_all:
        query = query.where(Grant.status == "pending")
    with engine.connect() as conn:
        yield from conn.execute(query)


def _decide(conn: Connection, grant_id: int, by: str, channel: str) -> Any:
    trail.lock(conn)
    user = conn.execute(select(User).where(User.id == by)).one_or_none()
    if user is None:
        raise NotAllowed(f"unknown user '{by}': --by takes a user id from the catalog")
    grant = conn.execute(select(Grant).where(Grant.id == grant_id)).one_or_none()
    if grant is None:
        raise NotFound(f"no grant with id {grant_id}")
    if TIER2 not in (user.roles or ()):
        raise NotAllowed(f"{by} may not decide grant {grant_id}: only a tier-2 monitor "
                         "(monitor_l2) grants powers")
    if grant.user_id == by:
        raise NotAllowed(f"{by} may not decide grant {grant_id}: it is {by}'s own")
    if grant.status != "pending":
        raise InvalidTransition(f"grant {grant_id} was already {grant.status} by "
                                f"{grant.decided_by}")
    return grant


def _chain(conn: Connection, region: str | None) -> str | None:
    """The chain a decision on a user's powers goes on: the user's county's, where a load
    of its catalog put the user (None: the store's own, whose county it is)."""
    return None if region is None or region == store_region(conn) else region


def approve(engine: Engine, grant_id: int, by: str, at: datetime, note: str | None = None,
            channel: str = "cli") -> Any:
    """Apply a pending grant: the user gets the roles and department asked for."""
    with engine.begin() as conn:
        grant = _decide(conn, grant_id, by, channel)
        target = conn.execute(select(User).where(User.id == grant.user_id)).one_or_none()
        if target is None:
            raise NotFound(f"grant {grant_id}: user {grant.user_id} is no longer in the catalog")
        states = [traced_update(conn, "users", grant.user_id, roles=grant.roles,
                                department=grant.department),
                  traced_update(conn, "grants", grant_id, status="approved", decided_by=by,
                                decided_at=at, note=note)]
        trail.append(conn, at, [Entry("grant_approved", None, by, {
            "grant_id": grant_id, "user_id": grant.user_id, "kind": grant.kind,
            "roles": grant.roles, "department": grant.department, "was": grant.was,
            "note": note}, channel, states, region=_chain(conn, target.region))])
        return conn.execute(select(Grant).where(Grant.id == grant_id)).one()


def reject(engine: Engine, grant_id: int, by: str, at: datetime, note: str | None,
           channel: str = "cli") -> Any:
    if not note or not note.strip():
        raise InvalidTransition(f"cannot reject grant {grant_id} without a note (--note)")
    with engine.begin() as conn:
        grant = _decide(conn, grant_id, by, channel)
        state = traced_update(conn, "grants", grant_id, status="rejected", decided_by=by,
                              decided_at=at, note=note.strip())
        region = conn.scalar(select(User.region).where(User.id == grant.user_id))
        trail.append(conn, at, [Entry("grant_rejected", None, by, {
            "grant_id": grant_id, "user_id": grant.user_id, "kind": grant.kind,
            "note": note.strip()}, channel, [state], region=_chain(conn, region))])
        return conn.execute(select(Grant).where(Grant.id == grant_id)).one()

