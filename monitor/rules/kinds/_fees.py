"""What a case owes and what it paid: shared by ``unpaid_fee`` and ``fee_waiver``.

Money stays exact: sums are taken in SQL over the stored integer fen and turned into
``Decimal`` yuan only here, in Python. What a case owes (its *standard*) is the amount of
its latest ``fee_assessed`` event (by ``occurred_at``, then ingestion order), else the
item's catalog fee; a penalty never assessed has no known standard (NULL). Only
``fee_waived`` events keyed by a user holding one of the authorising roles reduce it.
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import ROUND_FLOOR, Decimal

from sqlalchemy import BigInteger, Connection, and_, bindparam, case, func, select, type_coerce
from sqlalchemy.sql import Subquery

from ...models import Event, Item, User
from ...types import FEN
from ..finding import Context, catalog_read
from ..sql import as_of, changed_cases, in_scope
from ._common import local

END_STEPS = ("certificate_printed", "complete")
FEE_STEPS = ("fee_assessed", "fee_waived", "fee_paid", *END_STEPS)
REACHED = {"certificate_printed": "制证", "complete": "办结"}
CHUNK = 500


def fen(column):
    """The raw integer fen behind a Money column, for exact sums in SQL."""
    return type_coerce(column, BigInteger)


def yuan(value) -> Decimal:
    """Integer fen (int, or Decimal from PostgreSQL's SUM) → Decimal yuan."""
    return (Decimal(int(value or 0)) / 100).quantize(FEN)


def fen_floor(amount: Decimal) -> int:
    """The largest whole fen not above ``amount`` yuan: for whole fen s, s > x ⇔ s > floor(x)."""
    return int((amount * 100).to_integral_value(rounding=ROUND_FLOOR))


def authorised_users(conn: Connection, roles: Iterable[str], ctx: Context | None = None
                     ) -> list[str]:
    """Ids of the users holding any of ``roles`` (users.roles is a JSON list; the table is
    small, so membership is checked here rather than with each backend's JSON operators);
    the gate's memo of them at its catalog version with ``ctx``."""
    wanted = frozenset(roles)

    def load(conn: Connection) -> list[str]:
        return sorted(uid for uid, held in conn.execute(_USERS_ROLES)
                      if wanted & set(held or ()))

    memo = None if ctx is None else ctx.catalog
    return catalog_read(conn, memo, ("authorised", wanted), load)


_USERS_ROLES = select(User.id, User.roles)


def case_fees(rule, ctx: Context) -> Subquery:
    """One row per case that reached ``certificate_printed`` or ``complete`` (as of
    ``ctx.as_of``, in the rule's scope, only changed cases on an incremental run), with its
    fee figures in integer fen: ``case_id, item_code, department,
    category, ended_at, online_payments, online_fen, waived_fen`` (authorised waivers),
    ``standard_fen`` (latest assessment, else the catalog fee > 0, else NULL) and
    ``item_fee_fen``. Named parameters (``rules.sql.built``): ``as_of``, the listed cases,
    ``authorised`` (:func:`authorised_users`)."""
    e = Event.__table__
    # The case's fee and end events, materialised once (a few per case): grouping them is
    # far cheaper than grouping all events along the (case_id, occurred_at) index.
    rows = (select(e.c.id, e.c.case_id, e.c.region, e.c.item_code, e.c.department, e.c.step,
                   e.c.actor,
                   e.c.channel, e.c.occurred_at, fen(e.c.amount).label("amount"))
            .where(e.c.step.in_(FEE_STEPS), e.c.occurred_at <= as_of(),
                   in_scope(rule.scope, e.c.department, e.c.item_code),
                   changed_cases(ctx, e.c.case_id))
            .cte("fee_rows").prefix_with("MATERIALIZED"))
    # a payment whose channel the source does not say (``unknown``) counts as online only
    # where the rule says so (``unknown_channel: online``); never as offline by silence
    paid_online = ("online", "unknown") if getattr(rule.params, "unknown_channel",
                                                   "") == "online" else ("online",)
    online = and_(rows.c.step == "fee_paid", rows.c.channel.in_(paid_online))
    waived_ok = and_(rows.c.step == "fee_waived",
                     rows.c.actor.in_(bindparam("authorised", expanding=True)))

    def total(condition):
        return func.coalesce(func.sum(case((condition, rows.c.amount))), 0)

    sums = (select(rows.c.case_id, func.min(rows.c.region).label("region"),
                   func.min(rows.c.item_code).label("item_code"),
                   func.min(rows.c.department).label("department"),
                   func.min(case((rows.c.step.in_(END_STEPS), rows.c.occurred_at)))
                   .label("ended_at"),
                   func.count(case((online, 1))).label("online_payments"),
                   total(online).label("online_fen"), total(waived_ok).label("waived_fen"))
            .group_by(rows.c.case_id).subquery())
    ranked = (select(rows.c.case_id, rows.c.amount.label("assessed_fen"),
                     func.row_number().over(partition_by=rows.c.case_id,
                                            order_by=(rows.c.occurred_at.desc(), rows.c.id.desc()))
                     .label("pos"))
              .where(rows.c.step == "fee_assessed", rows.c.amount.is_not(None)).subquery())
    item_fee = fen(Item.fee)
    standard = func.coalesce(ranked.c.assessed_fen, case((item_fee > 0, item_fee)))
    return (select(sums, Item.category, item_fee.label("item_fee_fen"),
                   standard.label("standard_fen"))
            .join(Item, and_(Item.region == sums.c.region, Item.code == sums.c.item_code))
            .outerjoin(ranked, and_(ranked.c.case_id == sums.c.case_id, ranked.c.pos == 1))
            .where(sums.c.ended_at.is_not(None))
            .subquery("fees"))


def fee_events(conn: Connection, case_ids: list[str], ctx: Context) -> dict[str, list]:
    """case → its fee and end events (as of ``ctx.as_of``), for the few flagged cases."""
    out: dict[str, list] = {}
    for start in range(0, len(case_ids), CHUNK):
        rows = conn.execute(_FEE_EVENTS, {"cases": case_ids[start:start + CHUNK],
                                          "as_of": ctx.as_of})
        for r in rows:
            out.setdefault(r.case_id, []).append(r)
    return out


_E = Event.__table__
_FEE_EVENTS = (select(_E.c.case_id, _E.c.event_id, _E.c.step, _E.c.actor, _E.c.occurred_at,
                      _E.c.amount, _E.c.channel)
               .where(_E.c.case_id.in_(bindparam("cases", expanding=True)),
                      _E.c.step.in_(FEE_STEPS), _E.c.occurred_at <= as_of())
               .order_by(_E.c.case_id, _E.c.occurred_at, _E.c.id))


def money(value: Decimal | None) -> str | None:
    return None if value is None else str(value.quantize(FEN))


def describe_event(r, ctx: Context, **extra) -> dict:
    """An event as evidence: enough to find it in the source system."""
    return {"event_id": r.event_id, "step": r.step, "actor": r.actor,
            "at": local(r.occurred_at, ctx), "amount": money(r.amount),
            **({"channel": r.channel} if r.step == "fee_paid" else {}), **extra}


def waivers(rows: list, authorised: set[str], ctx: Context) -> list[dict]:
    return [describe_event(r, ctx, authorised=r.actor in authorised)
            for r in rows if r.step == "fee_waived"]


def latest_assessment(rows: list):
    """The assessment ``case_fees`` used: the last one with an amount (rows are in order)."""
    assessed = [r for r in rows if r.step == "fee_assessed" and r.amount is not None]
    return assessed[-1] if assessed else None


def first_end(rows: list):
    return next((r for r in rows if r.step in END_STEPS), None)


def unauthorised_text(rows: list, authorised: set[str]) -> str:
    """The waivers keyed without authority, named for a message ('' if none)."""
    return "；".join(f"{r.actor or '（未署名）'} 减免 {money(r.amount) or '?'} 元"
                    for r in rows if r.step == "fee_waived" and r.actor not in authorised)

