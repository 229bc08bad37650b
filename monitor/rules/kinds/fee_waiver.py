"""fee_waiver (擅自减免): a case paid online less than it owed, without authority.

Fees are an integrity risk point (廉政风险点): the seed's complaints were of handlers
reducing licence fees on their own.

* Standard: the amount of the case's latest ``fee_assessed`` (else the item's catalog fee).
* Due: the standard minus the ``fee_waived`` amounts keyed by a user holding one of
  ``authorising_roles`` (default: the principal, 主要负责人). Waivers by anyone else do not
  reduce what is due; the alert names them.
* Paid: the sum of the case's **online** ``fee_paid`` amounts.
* Finding: due − paid > ``tolerance`` (yuan).

Which cases are judged: those that reached ``certificate_printed`` or ``complete`` (by
then everything owed must have been paid, even in instalments — 行政处罚法第六十六条)
**and** have at least one online payment, all as of ``ctx.as_of``. A case with no online
payment at all is ``unpaid_fee``'s (网下收费), so one problem raises one alert. Open cases
are judged when they end. A finding on a penalty item (catalog category ``penalty``) is
titled and worded as a fine (``VARIANTS``: 罚款减免未经批准).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy import Connection, func, select

from ..finding import Context, Finding
from ..sql import bound
from ._fees import (CHUNK, authorised_users, case_fees, describe_event, fee_events, fen_floor,
                    first_end, latest_assessment, money, unauthorised_text, waivers, yuan)

TITLE = "擅自减免（实缴低于应缴且无有权减免）"
REGIONAL = True  # one county at a time: its events alone (run --jobs)
DEFAULT_MESSAGE = "案件 {case_id}：应缴 {due} 元，网上实缴 {paid} 元，少收 {shortfall} 元（{waivers}）"
FIELDS = ("standard", "waived", "due", "paid", "shortfall", "waivers")
# a finding on a penalty item (catalog category penalty) is a fine reduced, not a fee
VARIANTS = {"fine": ("罚款减免未经批准（实缴罚没款低于处罚决定且无有权减免）",
                     "案件 {case_id}：应缴罚没款 {due} 元，网上实缴 {paid} 元，少缴 {shortfall} 元"
                     "（{waivers}）")}
BY_CASE = True  # per case, from its events alone (see kinds.Kind)


@dataclass(frozen=True)
class Params:
    tolerance: Decimal = Decimal("0.01")               # yuan; a shortfall above it is a finding
    authorising_roles: tuple[str, ...] = ("principal",)  # whose fee_waived reduce what is due
    # a fee_paid with channel 'unknown' (the source does not say): not_online (the default:
    # not shown to be paid online; the evidence names it unknown) or online
    unknown_channel: str = "not_online"

    @staticmethod
    def check_unknown_channel(value: str) -> None:
        if value not in ("not_online", "online"):
            raise ValueError(f"'unknown_channel' must be not_online or online, got '{value}'")


def detect(conn: Connection, rule, ctx: Context) -> Iterator[Finding]:
    authorised = authorised_users(conn, rule.params.authorising_roles, ctx)
    fees = case_fees(rule, ctx)
    due = func.coalesce(fees.c.standard_fen, 0) - fees.c.waived_fen
    shortfall = due - fees.c.online_fen
    query = (select(fees, due.label("due_fen"), shortfall.label("shortfall_fen"))
             .where(fees.c.online_payments > 0, shortfall > fen_floor(rule.params.tolerance))
             .order_by(fees.c.case_id))
    allowed = set(authorised)
    # a round of flagged cases at a time: memory holds one round, not every finding
    for found in conn.execute(query, bound(ctx, authorised=authorised)).partitions(CHUNK):
        events = fee_events(conn, [r.case_id for r in found], ctx)
        for r in found:
            rows = events.get(r.case_id, [])
            assessed, end = latest_assessment(rows), first_end(rows)
            payments = [x for x in rows if x.step == "fee_paid"]
            named = unauthorised_text(rows, allowed)
            culprit = next((x.actor for x in rows
                            if x.step == "fee_waived" and x.actor not in allowed),
                           end.actor if end else None)
            yield Finding(
                subject=r.case_id, case_id=r.case_id, department=r.department,
                item_code=r.item_code, actor=culprit,
                variant="fine" if r.category == "penalty" else None,
                fields={"standard": money(yuan(r.standard_fen)), "waived": money(yuan(r.waived_fen)),
                        "due": money(yuan(r.due_fen)), "paid": money(yuan(r.online_fen)),
                        "shortfall": money(yuan(r.shortfall_fen)),
                        "waivers": f"未经授权减免：{named}" if named else "无有权人员的减免批准"},
                evidence={
                    "standard": money(yuan(r.standard_fen)),
                    "standard_from": "fee_assessed" if assessed is not None else "catalog",
                    "assessment": describe_event(assessed, ctx) if assessed else None,
                    "authorised_waived": money(yuan(r.waived_fen)), "due": money(yuan(r.due_fen)),
                    "paid_online": money(yuan(r.online_fen)), "online_payments": r.online_payments,
                    "shortfall": money(yuan(r.shortfall_fen)),
                    "tolerance": str(rule.params.tolerance),
                    "payments": [describe_event(x, ctx) for x in payments],
                    "waivers": waivers(rows, allowed, ctx),
                    "authorising_roles": list(rule.params.authorising_roles),
                    "reached": describe_event(end, ctx) if end else None},
                event_ids=tuple(x.event_id for x in rows
                                if x is assessed or x is end or x.step in ("fee_paid", "fee_waived")))
