"""Acting on an alert from the web or the API: one entry for every action, so a page's
form and an API call take the same path as the CLI's ``alerts ack|resolve|…``.

The actor's permission is checked here first (a service token or a leader is refused
before anything else), then again by the supervision function itself against the user's
current catalog roles, which also enforces the alert's state; everything is traced with
the channel the actor came through.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import Engine, select

from .. import authz, exemptions, holds, supervision
from ..authz import Actor
from ..config import Config
from ..errors import NotFound
from ..models import Alert, Hold
from ..regionrules import RuleSets, county_policy, ids_seen
from ..rules.model import Rule
from ..supervision import Done

ACTIONS = ("ack", "resolve", "order", "escalate", "confirm", "reject")
EXEMPT_SCOPES = ("case", "department", "item", "actor")


class FieldError(ValueError):
    """A field of the request is missing or wrong: (field, message) for a 422 answer."""

    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field, self.message = field, message


def alert_row(engine: Engine, alert_id: int) -> Any:
    """The alert's row; :class:`NotFound` if there is none."""
    with engine.connect() as conn:
        row = conn.execute(select(Alert).where(Alert.id == alert_id)).one_or_none()
    if row is None:
        raise NotFound(f"no alert with id {alert_id}")
    return row


def required(field: str, value: str | None) -> str:
    if not value or not value.strip():
        raise FieldError(field, "required")
    return value.strip()


def _policy(config: Config, rules: list[Rule] | RuleSets) -> supervision.Policy:
    """The deadlines of the rules in force: each county's own rules' too, given the sets."""
    return county_policy(config, rules) if isinstance(rules, RuleSets) \
        else supervision.policy_for(config, rules)


def act(engine: Engine, config: Config, rules: list[Rule] | RuleSets, actor: Actor,
        alert_id: int, action: str, at: datetime, note: str | None = None,
        disposition: str | None = None) -> Done:
    """Do ``action`` (one of :data:`ACTIONS`) on an alert as ``actor``."""
    if action not in ACTIONS:
        raise NotFound(f"no action '{action}'; actions: {', '.join(ACTIONS)}")
    authz.check(actor, action, alert_row(engine, alert_id))
    if action == "resolve":
        if disposition not in supervision.DISPOSITIONS:
            raise FieldError("disposition", "one of " + ", ".join(supervision.DISPOSITIONS))
        note = required("note", note)
    if action == "reject":
        note = required("note", note)
    policy = _policy(config, rules)
    by, channel = actor.id, actor.channel
    if action == "ack":
        return supervision.acknowledge(engine, alert_id, by, at, note, channel=channel)
    if action == "resolve":
        return supervision.resolve(engine, alert_id, by, at, disposition, note, channel=channel)
    if action == "confirm":
        return supervision.confirm(engine, alert_id, by, at, note, channel=channel)
    if action == "reject":
        return supervision.reject(engine, policy, alert_id, by, at, note, channel=channel)
    if action == "order":
        return supervision.order(engine, policy, alert_id, by, at, note, channel=channel)
    return supervision.escalate(engine, policy, alert_id, by, at, note, channel=channel)


@dataclass(frozen=True)
class Exempted:
    exemption_id: int
    scope: dict


def exempt(engine: Engine, config: Config, rules: list[Rule] | RuleSets, actor: Actor,
           alert_id: int, at: datetime, scope_key: str | None, reason: str | None,
           until: date | None) -> Exempted:
    """Approve an exemption of the findings of this alert's rule, scoped by one fact of the
    alert (its case, department, item or actor), as a tier-2 monitor: the CLI's
    ``exemptions add`` (the rule one in force in the approving office's county, which is
    the alert's), channel web or api."""
    alert = alert_row(engine, alert_id)
    authz.check(actor, "exempt", alert)
    if scope_key not in EXEMPT_SCOPES:
        raise FieldError("scope", "one of " + ", ".join(EXEMPT_SCOPES))
    value = {"case": alert.case_id, "department": alert.department,
             "item": alert.item_code, "actor": alert.actor}[scope_key]
    if not value:
        raise FieldError("scope", f"this alert has no {scope_key}")
    reason = required("reason", reason)
    if until is None:
        raise FieldError("until", "required")
    scope = exemptions.parse_scope([f"{scope_key}={value}"], config.tz)
    ex_id = exemptions.add(engine, ids_seen(rules), alert.rule_id, scope, reason,
                           actor.id, until, at, config.tz, channel=actor.channel)
    return Exempted(ex_id, scope)


def hold_alert(engine: Engine, hold_id: int) -> int:
    """The id of the alert a hold belongs to; :class:`NotFound` if there is no such hold."""
    with engine.connect() as conn:
        alert_id = conn.scalar(select(Hold.alert_id).where(Hold.id == hold_id))
    if alert_id is None:
        raise NotFound(f"no hold with id {hold_id}")
    return alert_id


def release_hold(engine: Engine, config: Config, rules: list[Rule] | RuleSets, actor: Actor,
                 hold_id: int, at: datetime, note: str | None) -> Any:
    """Release a hold (中止流程) as ``actor``: the CLI's ``holds release``, with the
    channel the actor came through; the hold's row after."""
    alert_id = hold_alert(engine, hold_id)
    authz.check(actor, "release", alert_row(engine, alert_id), f"release hold {hold_id} of")
    note = required("note", note)
    return holds.release(engine, _policy(config, rules), hold_id, actor.id, at,
                         note, channel=actor.channel)
