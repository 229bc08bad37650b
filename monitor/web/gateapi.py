"""The workflow system's routes: ``POST /api/v1/gate`` (may this event be recorded?) and
``POST /api/v1/holds/{id}/ack`` (a hold has been applied).

Both take only the workflow system's bearer token (scope ``gate``). The gate answers within
``gate.budget_ms`` whatever the store does (monitor/gateguard.py): 200 with the decision,
401 for a bad token, 403 for a token of another scope, 422 for a candidate that breaks the
input contract, 503 when the store cannot check a token it has not seen lately.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from fastapi import APIRouter, Body, Depends, HTTPException, Path, Request
from pydantic import BaseModel, Field

from ..errors import NotAllowed
from ..gate import GateInputError
from ..authz import Actor
from ..gateguard import Guard, Unauthenticated, Unverified
from ..holdsync import acknowledge
from .auth import api_actor, now
from .site import site

router = APIRouter(prefix="/api/v1", tags=["workflow"])


class Reason(BaseModel):
    rule_id: str | None
    kind: str
    level: str | None
    message: str
    effect: Literal["deny", "warn"]
    rule_version: str | None = None


class GateAnswer(BaseModel):
    decision: Literal["allow", "warn", "deny"]
    reasons: list[Reason]
    evaluated_at: datetime
    exempted: list[dict[str, Any]] | None = None
    degraded: bool | None = None


def bearer(request: Request) -> str:
    scheme, _, token = (request.headers.get("authorization") or "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise HTTPException(401, "the workflow system's bearer token is required",
                            headers={"WWW-Authenticate": "Bearer"})
    return token.strip()


def guard(request: Request) -> Guard:
    """The app's one :class:`Guard`, made on first use."""
    state = request.app.state
    if getattr(state, "gate_guard", None) is None:
        s = site(request)
        state.gate_guard = Guard(s.engine, s.config, s.rules.sets)
    return state.gate_guard


@router.post("/gate", response_model=GateAnswer, response_model_exclude_none=True,
             summary="May this event be recorded?",
             description="The candidate event in the input contract's fields (case_id, "
                         "item_code, step, actor, occurred_at, attachments, amount, channel "
                         "…); the rules with `gate: deny|warn` judge the case's history plus "
                         "it. Answered within gate.budget_ms: degraded per gate.fail if the "
                         "store cannot answer in time.",
             responses={401: {"description": "no valid token"},
                        403: {"description": "not the workflow system's token (scope gate)"},
                        422: {"description": "the candidate breaks the input contract"},
                        503: {"description": "the store cannot check the token now"}})
async def ask_gate(request: Request, candidate: dict[str, Any] = Body(...)) -> dict[str, Any]:
    token = bearer(request)  # async: the request waits for the guard's pool on the loop
    try:
        return (await guard(request).answer_async(token, candidate, now(request))).answer()
    except Unauthenticated as exc:
        raise HTTPException(401, str(exc), headers={"WWW-Authenticate": "Bearer"}) from None
    except NotAllowed as exc:
        raise HTTPException(403, str(exc)) from None
    except GateInputError as exc:
        raise HTTPException(422, exc.detail) from None
    except Unverified as exc:
        raise HTTPException(503, str(exc)) from None


class AckIn(BaseModel):
    """What the workflow system says about the stop (optional)."""

    note: str | None = Field(None, max_length=2000)


class AckOut(BaseModel):
    hold_id: int
    case_id: str
    acked_at: datetime
    acked_by: str
    already: bool


@router.post("/holds/{hold_id}/ack", response_model=AckOut,
             summary="The workflow system has stopped the case of a hold",
             description="Records the acknowledgement and its time (the hold is pending, and "
                         "sent again, until then); acknowledging again changes nothing "
                         "(`already: true`).",
             responses={401: {"description": "no valid token"},
                        403: {"description": "not the workflow system's token (scope gate)"},
                        404: {"description": "no such hold"}})
def ack_hold(request: Request, body: AckIn | None = None, hold_id: int = Path(ge=1),
             actor: Actor = Depends(api_actor)) -> AckOut:
    done = acknowledge(site(request).engine, hold_id, actor, now(request),
                       body.note if body else None)
    return AckOut(hold_id=done.hold_id, case_id=done.case_id, acked_at=done.acked_at,
                  acked_by=done.acked_by, already=done.already)
