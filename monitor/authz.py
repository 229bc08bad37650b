"""Who may see and do what: one permission function for the CLI, every page and every API
route (in the spirit of datasette's ``permission_allowed(actor, action, resource)``).

An :class:`Actor` is a catalog user acting through a channel (``cli``, ``web``, ``api``),
or a machine holding a service token. The catalog's roles decide:

- ``monitor_l1`` (一级监察员): sees and acts on the alerts of their own department only;
  acknowledges, resolves, releases holds.
- ``monitor_l2`` (二级监察员, the county office): sees the whole county and may do
  everything tier 1 may, and also order (督办), escalate, confirm, reject, and approve or
  revoke exemptions.
- ``leader`` (领导): reads everything, acts on nothing.
- a service token with scope ``read`` reads the whole county, ``read:DEPT`` one
  department; it never acts. One with scope ``gate`` (the workflow system) asks the
  workflow gate and acknowledges holds (:data:`GATE`), and nothing else; no person may.
- anyone else (clerks, chiefs …) sees nothing here.

Regions (issue 21; codes in monitor/regions.py): a person's scope is also their
region, the ``region`` of their ``users`` row. A county office sees and acts in its
county; a city office (a user whose region is a city's code) reads the alerts of its
counties and may issue a supervision order (督办) one level down, on the alerts of the
counties directly under it, and nothing else there; a province office reads the whole
province and orders its cities' own alerts. :func:`visible_region` is that rule for
lists (``None``: every region); service tokens are not bound to a region.

:func:`why_not` gives the refusal as the sentence a person reads (``None``: allowed);
:func:`allowed` is its yes/no; :func:`check` raises :class:`NotAllowed`;
:func:`visible_departments` is the same rule for lists (``None``: every department).
Nothing here touches the database: the caller loads the actor and the resource.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from . import regions
from .errors import NotAllowed

TIER1, TIER2, LEADER = "monitor_l1", "monitor_l2", "leader"
CHANNELS = ("cli", "web", "api")
SCOPES = ("read", "read:DEPT", "gate")

READ = "view"  # see an alert, its case, the board, reports, rules
GATE = "gate"  # ask the workflow gate, acknowledge a hold: the workflow system's token
# action → (verb in a refusal, tier 2 only)
ACTS: dict[str, tuple[str, bool]] = {
    "ack": ("acknowledge", False),
    "resolve": ("resolve", False),
    "release": ("release a hold of", False),
    "order": ("issue an order on", True),
    "escalate": ("escalate", True),
    "confirm": ("confirm", True),
    "reject": ("reject", True),
    "exempt": ("approve", True),
    "revoke_exemption": ("revoke", True),
    "spot_check": ("record", False),  # a monitor of the case's department, or tier 2
    "appeal": ("appeal", False),              # a 差评 (申诉), by its department
    "decide_appeal": ("decide the appeal of", True),
    "advance": ("record a stage of", False),  # a complaint's 受理 → 调查 → 处置 → 反馈
}
ACTIONS = (READ, GATE, *ACTS)


@dataclass(frozen=True)
class Actor:
    """Who is acting: a catalog user (``id`` their user id), or a machine (``service``)."""

    id: str
    name: str
    roles: frozenset[str]
    department: str | None
    channel: str = "cli"
    service: str | None = None  # a service token's name; then ``scope`` says what it reads
    scope: str | None = None
    region: str | None = None  # the office's region; None: not bound to one

    @classmethod
    def of_user(cls, user: Any, channel: str) -> "Actor":
        """The actor of a catalog ``users`` row."""
        return cls(user.id, user.name, frozenset(user.roles or ()), user.department, channel,
                   region=getattr(user, "region", None))

    @classmethod
    def of_service(cls, name: str, scope: str) -> "Actor":
        return cls(f"service:{name}", name, frozenset(), None, "api", name, scope)

    @property
    def label(self) -> str:
        return f"{self.id} ({self.name})" if self.service is None else f"service {self.name}"

    @property
    def is_leader(self) -> bool:
        return LEADER in self.roles and TIER2 not in self.roles and TIER1 not in self.roles


def visible_departments(actor: Actor) -> frozenset[str] | None:
    """The departments whose alerts ``actor`` may see; ``None``: all of them."""
    if actor.service is not None:
        scope = actor.scope or ""
        if scope == "read":
            return None
        return frozenset([scope.partition(":")[2]]) if scope.startswith("read:") else frozenset()
    if TIER2 in actor.roles or LEADER in actor.roles:
        return None
    if TIER1 in actor.roles and actor.department:
        return frozenset([actor.department])
    return frozenset()


def sees_county(actor: Actor) -> bool:
    return visible_departments(actor) is None


def visible_region(actor: Actor) -> str | None:
    """The region whose records ``actor`` may see, with everything it covers (a city:
    its counties); ``None``: every region (a service token, unless narrowed)."""
    return actor.region


def narrowed(actor: Actor, region: str) -> Actor:
    """``actor`` reading one region they see (``?region=`` on the board, lists and
    reports: one county under a city office). For reading only: acts are judged on the
    actor as they are (:func:`why_not`). :class:`~monitor.regions.RegionCodeError` for a
    code that is none, :class:`NotAllowed` for a region outside theirs."""
    regions.check(region)
    scope = visible_region(actor)
    if scope is not None and not regions.covers(scope, region):
        raise NotAllowed(f"{actor.label} may not see region {region}: outside {scope}")
    return replace(actor, region=region)


def _region_refusal(actor: Actor, action: str, resource: Any, what: str) -> str | None:
    """Why ``actor``'s region keeps them from ``action`` on ``resource``; None if it
    does not: the same region, or an order (督办) one level down from a tier-2 office."""
    region = getattr(resource, "region", None)
    scope = visible_region(actor)
    if scope is None or region is None or region == scope:
        return None
    if not regions.covers(scope, region):
        return f"{actor.label} may not {what}: it belongs to region {region}, outside {scope}"
    if action == READ:
        return None
    if action == "order" and TIER2 in actor.roles and regions.parent(region) == scope:
        return None
    return (f"{actor.label} may not {what}: it belongs to region {region}; the office of "
            f"region {scope} reads it and orders (督办) only one level down")


def _name(resource: Any) -> str:
    """How a sentence names a resource: an alert row, or anything with ``what``."""
    return getattr(resource, "what", None) or f"alert {resource.id}"


def _what(resource: Any, verb: str) -> str:
    if resource is None:
        return f"{verb} an exemption" if verb in ("approve", "revoke") else verb
    return f"{verb} {_name(resource)}"


def why_not(actor: Actor, action: str, resource: Any = None, verb: str | None = None
            ) -> str | None:
    """Why ``actor`` may not do ``action`` on ``resource`` (an alert row, or ``None`` for
    the county as a whole); ``None`` when they may. ``verb`` overrides the action's verb in
    the sentence (e.g. "release hold 3 of")."""
    if action != READ and action != GATE and action not in ACTS:
        raise ValueError(f"unknown action {action!r}; actions: {', '.join(ACTIONS)}")
    if action == GATE:
        if actor.service is not None and actor.scope == "gate":
            return None
        return (f"{actor.label} may not {verb or 'ask the workflow gate'}: only the workflow "
                "system's service token (scope gate) may")
    department = getattr(resource, "department", None)
    seen = visible_departments(actor)
    if resource is not None:
        refusal = _region_refusal(actor, action, resource,
                                  f"see {_name(resource)}" if action == READ else
                                  _what(resource, verb or ACTS[action][0]))
        if refusal is not None:
            return refusal
        region = getattr(resource, "region", None)
        if action == "order" and None not in (region, visible_region(actor)) \
                and region != actor.region:
            return None  # a city office's 督办 one level down (checked just above)
    if action == READ:
        if seen is None or (resource is not None and department in seen):
            return None
        if resource is None:
            return None if seen else f"{actor.label} may not see alerts: not a monitor or leader"
        return (f"{actor.label} may not see {_name(resource)}: it belongs to department "
                f"{department or '-'}")
    default_verb, tier2_only = ACTS[action]
    what = _what(resource, verb or default_verb)
    if actor.service is not None:
        return f"{actor.label} may not {what}: a service token reads, it does not act"
    if TIER2 in actor.roles:
        return None
    if tier2_only:
        return f"{actor.label} may not {what}: only a tier-2 monitor (monitor_l2) may"
    if TIER1 not in actor.roles:
        if LEADER in actor.roles:
            return f"{actor.label} may not {what}: a leader account reads, it does not act"
        return f"{actor.label} may not {what}: not a monitor (monitor_l1 or monitor_l2)"
    if resource is not None and actor.department != department:
        return (f"{actor.label} may not {what}: it belongs to department {department or '-'}, "
                f"{actor.id} monitors {actor.department or 'no department'}")
    return None


def allowed(actor: Actor, action: str, resource: Any = None) -> bool:
    return why_not(actor, action, resource) is None


def check(actor: Actor, action: str, resource: Any = None, verb: str | None = None) -> None:
    """Refuse with :class:`NotAllowed` (its sentence) unless ``actor`` may."""
    reason = why_not(actor, action, resource, verb)
    if reason is not None:
        raise NotAllowed(reason)


def actions_on(actor: Actor, alert: Any) -> list[str]:
    """The acts ``actor`` may take on ``alert`` by role and department (its state decides
    the rest: see monitor/supervision.py), in the order a page offers them."""
    return [a for a in ("ack", "resolve", "order", "escalate", "confirm", "reject", "exempt")
            if allowed(actor, a, alert)]
