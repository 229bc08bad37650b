"""The JSON API under /api/v1, described by /api/v1/openapi.json.

Authenticated by ``Authorization: Bearer TOKEN`` or a browser's session; the same
permission function and the same supervision functions as the pages and the CLI.
401 without credentials, 403 outside the caller's scope, 404 for no such alert or action,
409 for an action the alert's state does not allow, 422 with field errors.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, Literal

from fastapi import APIRouter, Depends, Path, Query, Request
from pydantic import BaseModel, Field

from .. import authz
from ..alerts import jsonable
from ..authz import Actor
from ..center import act as acting
from ..center.listing import Filters, alerts_page
from .site import site
from .auth import api_actor, now

router = APIRouter(prefix="/api/v1", tags=["alerts"])

Level = Literal["warning", "yellow", "red"]
Status = Literal["open", "acknowledged", "resolved", "confirmed", "suppressed", "cleared"]
Disposition = Literal["rectified", "explained", "false_positive"]


class AlertOut(BaseModel):
    """An alert: the fields of ``permit-monitor alerts list --format json``."""

    id: int
    rule_id: str
    kind: str
    level: str
    status: str
    tier: int
    action: str
    case_id: str | None
    case_ids: list[str]
    actor: str | None
    department: str | None
    item_code: str | None
    period: str | None
    raised_at: datetime
    updated_at: datetime
    message: str
    evidence: dict[str, Any]
    rule_version: str
    assigned_to: list[str]
    due_on: date | None
    disposition: str | None
    resolved_at: datetime | None
    exemption_id: int | None


class AlertPage(BaseModel):
    items: list[AlertOut]
    page: int
    per_page: int
    total: int


class ActionIn(BaseModel):
    """The body of an action: a note (required to resolve and to reject) and, to resolve,
    a disposition (整改 rectified, 说明 explained, 误报 false_positive)."""

    note: str | None = Field(None, max_length=2000)
    disposition: Disposition | None = None


class Done(BaseModel):
    alert_id: int
    action: str
    status: str
    tier: int
    due_on: date | None = None
    order_id: int | None = None


@router.get("/alerts", response_model=AlertPage, summary="List alerts",
            description="The filters of `permit-monitor alerts list`, one page at a time, "
                        "among the alerts the caller may see (newest first).")
def list_alerts(request: Request, actor: Actor = Depends(api_actor),
                kind: str | None = None, level: Level | None = None,
                department: str | None = None, status: Status | None = None,
                rule: str | None = None, tier: int | None = Query(None, ge=1, le=2),
                overdue: bool = False, page: int = Query(1, ge=1),
                per_page: int | None = Query(None, ge=1, le=200)) -> AlertPage:
    s = site(request)
    authz.check(actor, authz.READ)
    f = Filters(rule=rule, level=level, status=status, department=department, kind=kind,
                tier=tier, overdue=overdue)
    result = alerts_page(s.engine, actor, f, now(request).astimezone(s.config.tz).date(),
                         s.config.calendar(), page, per_page or s.config.web.page_size)
    return AlertPage(items=[AlertOut(**jsonable(r)) for r in result.rows], page=result.page,
                     per_page=result.per_page, total=result.total)


@router.get("/alerts/{alert_id}", response_model=AlertOut, summary="One alert",
            responses={403: {"description": "outside the caller's scope"},
                       404: {"description": "no such alert"}})
def get_alert(request: Request, alert_id: int = Path(ge=1),
              actor: Actor = Depends(api_actor)) -> AlertOut:
    s = site(request)
    row = acting.alert_row(s.engine, alert_id)
    authz.check(actor, authz.READ, row)
    return AlertOut(**jsonable(row))


@router.post("/alerts/{alert_id}/{action}", response_model=Done, summary="Act on an alert",
             responses={403: {"description": "the caller may not take this action here"},
                        404: {"description": "no such alert"},
                        409: {"description": "the alert's state does not allow it"},
                        422: {"description": "a missing or wrong field"}})
def act_on_alert(request: Request, body: ActionIn, alert_id: int = Path(ge=1),
                 action: str = Path(description="ack | resolve | order | escalate | confirm "
                                                "| reject; another is 404"),
                 actor: Actor = Depends(api_actor)) -> Done:
    s = site(request)
    done = acting.act(s.engine, s.config, s.rules.sets(), actor, alert_id, action,
                      now(request), body.note, body.disposition)
    return Done(alert_id=done.alert_id, action=done.action, status=done.status, tier=done.tier,
                due_on=done.due_on, order_id=done.order_id)


class ReleaseIn(BaseModel):
    """Why the case may go on: required, as for ``holds release --note``."""

    note: str | None = Field(None, max_length=2000)


class Released(BaseModel):
    hold_id: int
    case_id: str
    alert_id: int
    status: str


@router.post("/holds/{hold_id}/release", response_model=Released,
             summary="Release a hold (恢复流程)",
             description="`permit-monitor holds release`: tier 1 of the alert's department or "
                         "tier 2, with a note; traced with channel api.",
             responses={403: {"description": "the caller may not release this hold"},
                        404: {"description": "no such hold"},
                        409: {"description": "the hold was released already"},
                        422: {"description": "no note"}})
def release_hold(request: Request, body: ReleaseIn, hold_id: int = Path(ge=1),
                 actor: Actor = Depends(api_actor)) -> Released:
    s = site(request)
    hold = acting.release_hold(s.engine, s.config, s.rules.sets(), actor, hold_id,
                               now(request), body.note)
    return Released(hold_id=hold.id, case_id=hold.case_id, alert_id=hold.alert_id,
                    status=hold.status)
