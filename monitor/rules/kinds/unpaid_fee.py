"""unpaid_fee (网下收费): a fee-bearing case reached ``certificate_printed`` or ``complete``
(as of ``ctx.as_of``) with no **online** ``fee_paid``.

The seed's answer to offline fees was to make every fee payable online only and to refuse
the certificate without an online payment; this kind finds the cases that got through.

* Fee-bearing: the item's catalog fee is above 0, or the item is a penalty (its fine is
  the ``fee_assessed`` amount).
* An offline ``fee_paid`` (or one with no channel) counts as not paid online; the alert
  names it. A payment whose channel the source does not say (``unknown``) is its own
  value: not shown to be online, and the message says its channel is unknown rather than
  calling it offline (``unknown_channel: online`` counts it as online). An online payment of any amount clears this kind (paying too little is
  ``fee_waiver``'s business).
* Nothing is owed — so nothing is flagged — when the latest ``fee_assessed`` (else the
  catalog fee) minus the waivers keyed by a user holding an ``authorising_roles`` role is
  0 or less (a penalty closed without a fine records ``fee_assessed`` 0). A penalty with
  no assessment at all is flagged: its fine is unknown, and not even assessed online.
* Cleared (复查销号, monitor/clearing.py) when an online payment is recorded for the
  case after the alert was raised (or nothing is owed any more: an authorised waiver).
* A finding on a penalty item (catalog category ``penalty``) is titled and worded as a
  fine (``VARIANTS``: 罚没款未经网上缴纳), not as a fee.
* One alert per case; evidence: the first certificate/complete event, every payment that
  was not online, the assessment and any waivers (authorised or not).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from sqlalchemy import Connection, or_, select

from ..finding import Context, Finding
from ..sql import bound, built
from ._fees import (CHUNK, REACHED, authorised_users, case_fees, describe_event, fee_events,
                    first_end, latest_assessment, money, waivers, yuan)

TITLE = "网下收费（收费事项未经网上缴费即制证或办结）"
REGIONAL = True  # one county at a time: its events alone (run --jobs)
DEFAULT_MESSAGE = "案件 {case_id}：已{reached}，应缴 {due}，未见网上缴费（{payment}）"
FIELDS = ("reached", "due", "payment", "offline_amount")
# a finding on a penalty item (catalog category penalty) is a fine not paid online, not a fee
VARIANTS = {"fine": ("罚没款未经网上缴纳（罚没事项未经网上缴纳即办结）",
                     "案件 {case_id}：已{reached}，应缴罚没款 {due}，未见网上缴纳（{payment}）")}
BY_CASE = True  # per case, from its events alone (see kinds.Kind)
# An online payment recorded after the alert (late data: paid online before the
# certificate, keyed in afterwards) answers the finding: the alert is cleared.
CLEARED = "复查：已有网上缴费记录，网下收费情形不再成立，复查销号"
GATE = ("deny", "warn")  # the workflow gate may refuse a step on it (see kinds.Kind)


@dataclass(frozen=True)
class Params:
    authorising_roles: tuple[str, ...] = ("principal",)  # whose fee_waived reduce what is owed
    # a fee_paid with channel 'unknown' (the source does not say): not_online (the default:
    # not shown to be paid online; the evidence names it unknown) or online
    unknown_channel: str = "not_online"

    @staticmethod
    def check_unknown_channel(value: str) -> None:
        if value not in ("not_online", "online"):
            raise ValueError(f"'unknown_channel' must be not_online or online, got '{value}'")


def _query(rule, ctx: Context):
    fees = case_fees(rule, ctx)
    owed = fees.c.standard_fen - fees.c.waived_fen
    return (select(fees)
            .where(fees.c.online_payments == 0,
                   or_(fees.c.item_fee_fen > 0, fees.c.category == "penalty"),
                   or_(fees.c.standard_fen.is_(None), owed > 0))
            .order_by(fees.c.case_id))


def detect(conn: Connection, rule, ctx: Context) -> Iterator[Finding]:
    authorised = authorised_users(conn, rule.params.authorising_roles, ctx)
    allowed = set(authorised)
    # a round of flagged cases at a time: memory holds one round, not every finding
    for found in conn.execute(built(rule, "unpaid", ctx, lambda: _query(rule, ctx)),
                              bound(ctx, authorised=authorised)).partitions(CHUNK):
        events = fee_events(conn, [r.case_id for r in found], ctx)
        for r in found:
            rows = events.get(r.case_id, [])
            end = first_end(rows)
            paid = [x for x in rows if x.step == "fee_paid"]  # none of them online
            paid_total = sum((x.amount for x in paid if x.amount is not None), yuan(0))
            assessed = latest_assessment(rows)
            due = None if r.standard_fen is None else yuan(r.standard_fen - r.waived_fen)
            unknown = [x for x in paid if x.channel == "unknown"]
            payment = ("无任何缴费记录" if not paid else
                       f"仅有网下缴费 {money(paid_total)} 元" if not unknown else
                       f"缴费 {money(paid_total)} 元，其中 {len(unknown)} 笔缴费渠道不明")
            yield Finding(
                subject=r.case_id, case_id=r.case_id, department=r.department,
                item_code=r.item_code, actor=end.actor if end else None,
                variant="fine" if r.category == "penalty" else None,
                fields={"reached": REACHED.get(end.step if end else "", "办结"),
                        "due": "未核定金额" if due is None else f"{money(due)} 元",
                        "payment": payment, "offline_amount": money(paid_total)},
                evidence={
                    "reached": describe_event(end, ctx) if end else None,
                    "standard": None if r.standard_fen is None else money(yuan(r.standard_fen)),
                    "standard_from": ("fee_assessed" if assessed is not None else
                                      "catalog" if r.standard_fen is not None else None),
                    "assessment": describe_event(assessed, ctx) if assessed else None,
                    "authorised_waived": money(yuan(r.waived_fen)),
                    "due": money(due), "online_payments": 0,
                    "payments_not_online": [describe_event(x, ctx) for x in paid],
                    "paid_not_online": money(paid_total),
                    "waivers": waivers(rows, allowed, ctx),
                    "authorising_roles": list(rule.params.authorising_roles)},
                event_ids=tuple(x.event_id for x in rows
                                if x is end or x is assessed or x.step in ("fee_paid", "fee_waived")))
