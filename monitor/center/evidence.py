"""An alert's evidence written for a person: sentences, not JSON.

One function per rule kind reads the evidence that kind stores (monitor/rules/kinds/) and
says what it shows, with times in the county's zone, steps by their names and money in
yuan. A kind without its own function (or evidence missing a field) falls back to one
plain sentence per fact, never to a raw dump.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, tzinfo
from typing import Any

from .labels import labeler


class Writer:
    """Sentence helpers bound to a language and time zone."""

    def __init__(self, language: str, tz: tzinfo):
        self.zh = language == "zh"
        self.tz = tz
        self.label = labeler(language)

    def say(self, zh: str, en: str) -> str:
        return zh if self.zh else en

    def step(self, name: Any) -> str:
        return self.label(f"s_{name}") if name else "-"

    def time(self, text: Any) -> str:
        if not text:
            return "-"
        try:
            at = datetime.fromisoformat(str(text))
        except ValueError:
            return str(text)
        return at.astimezone(self.tz).strftime("%Y-%m-%d %H:%M:%S") if at.tzinfo else str(text)

    def span(self, seconds: Any) -> str:
        s = round(float(seconds or 0))
        d, rest = divmod(s, 86400)
        h, rest = divmod(rest, 3600)
        m, s = divmod(rest, 60)
        units = (("天", " d"), ("小时", " h"), ("分", " min"), ("秒", " s"))
        parts = [f"{v}{u[0] if self.zh else u[1]}" for v, u in zip((d, h, m, s), units) if v]
        return ("" if self.zh else " ").join(parts) or self.say("0秒", "0 s")

    def yuan(self, amount: Any) -> str:
        return f"{amount} 元" if self.zh else f"{amount} yuan"


def _step_too_fast(w: Writer, e: dict) -> list[str]:
    return [w.say(f"{w.step(g.get('previous_step'))}（{w.time(g.get('previous_at'))}）到"
                  f"{w.step(g.get('step'))}（{w.time(g.get('at'))}）仅隔 {w.span(g.get('gap_seconds'))}，"
                  f"低于该环节最短合理用时 {g.get('limit_minutes'):g} 分钟；经办人 {g.get('actor') or '-'}。",
                  f"{w.step(g.get('previous_step'))} at {w.time(g.get('previous_at'))} to "
                  f"{w.step(g.get('step'))} at {w.time(g.get('at'))} took only "
                  f"{w.span(g.get('gap_seconds'))}, under the plausible minimum of "
                  f"{g.get('limit_minutes'):g} minutes; by {g.get('actor') or '-'}.")
            for g in e.get("gaps", [])]


def _case_too_fast(w: Writer, e: dict) -> list[str]:
    return [w.say(f"受理于 {w.time(e.get('accepted_at'))}，{w.step(e.get('end_step'))}于 "
                  f"{w.time(e.get('ended_at'))}，全程仅用 {w.span(e.get('seconds'))}，"
                  f"低于该事项最短合理用时 {e.get('limit_minutes')} 分钟。",
                  f"Accepted at {w.time(e.get('accepted_at'))}, {w.step(e.get('end_step'))} at "
                  f"{w.time(e.get('ended_at'))}: the whole case took {w.span(e.get('seconds'))}, "
                  f"under the item's minimum of {e.get('limit_minutes')} minutes.")]


def _late_entry(w: Writer, e: dict) -> list[str]:
    limit = e.get("max_hours_allowed")
    return [w.say(f"{w.step(x.get('step'))}于 {w.time(x.get('occurred_at'))} 办理，却在 "
                  f"{w.time(x.get('recorded_at'))} 才录入系统，延迟 {x.get('delay_hours')} 小时"
                  f"（允许 {limit:g} 小时）；经办人 {x.get('actor') or '-'}。",
                  f"{w.step(x.get('step'))} done at {w.time(x.get('occurred_at'))} was keyed in "
                  f"at {w.time(x.get('recorded_at'))}, {x.get('delay_hours')} hours later "
                  f"(allowed {limit:g}); by {x.get('actor') or '-'}.")
            for x in e.get("entries", [])]


def _same_actor(w: Writer, e: dict) -> list[str]:
    out = []
    for actor, steps in (e.get("actors") or {}).items():
        names = "、".join(w.step(s.get("step")) for s in steps) if w.zh else \
            ", ".join(w.step(s.get("step")) for s in steps)
        out.append(w.say(f"同一人 {actor} 在本案中办理了 {len(steps)} 个审批环节：{names}，"
                         "违反岗位分离要求。",
                         f"One person, {actor}, performed {len(steps)} approval roles in this "
                         f"case: {names} (segregation of duties)."))
    return out


def _batch_entry(w: Writer, e: dict) -> list[str]:
    cases = e.get("case_ids") or []
    return [w.say(f"{e.get('actor')} 于 {w.time(e.get('recorded_from'))} 至 "
                  f"{w.time(e.get('recorded_to'))} 的 {w.span(e.get('seconds'))} 内集中录入 "
                  f"{e.get('count')} 条记录，涉及 {len(cases)} 个案件（阈值：{e.get('window_minutes'):g} "
                  f"分钟内 {e.get('min_events')} 条）。",
                  f"{e.get('actor')} keyed in {e.get('count')} entries of {len(cases)} cases "
                  f"within {w.span(e.get('seconds'))}, {w.time(e.get('recorded_from'))} to "
                  f"{w.time(e.get('recorded_to'))} (threshold: {e.get('min_events')} within "
                  f"{e.get('window_minutes'):g} minutes)."),
            *(w.say(f"{x.get('case_id')}：{w.step(x.get('step'))}实际办理于 "
                    f"{w.time(x.get('occurred_at'))}，录入于 {w.time(x.get('recorded_at'))}。",
                    f"{x.get('case_id')}: {w.step(x.get('step'))} done at "
                    f"{w.time(x.get('occurred_at'))}, keyed in at {w.time(x.get('recorded_at'))}.")
              for x in (e.get("entries") or [])[:20])]


def _missing_attachment(w: Writer, e: dict) -> list[str]:
    sep = "、" if w.zh else ", "
    return [w.say(f"{w.step(x.get('step'))}（{w.time(x.get('occurred_at'))}，"
                  f"{x.get('actor') or '-'}）缺少必备附件：{sep.join(x.get('missing') or [])}。",
                  f"{w.step(x.get('step'))} at {w.time(x.get('occurred_at'))} by "
                  f"{x.get('actor') or '-'} lacks the required "
                  f"{sep.join(x.get('missing') or [])}.")
            for x in e.get("events", [])]


def _payments(w: Writer, rows: list[dict]) -> str:
    return ("；" if w.zh else "; ").join(
        w.say(f"{w.time(p.get('at'))} {w.yuan(p.get('amount'))}（{p.get('channel') or '-'}）",
              f"{w.yuan(p.get('amount'))} at {w.time(p.get('at'))} ({p.get('channel') or '-'})")
        for p in rows)


def _unpaid_fee(w: Writer, e: dict) -> list[str]:
    reached = e.get("reached") or {}
    out = [w.say(f"本案于 {w.time(reached.get('at'))} 已{w.step(reached.get('step'))}，应缴 "
                 f"{w.yuan(e.get('due'))}，但没有网上缴费记录。",
                 f"The case reached {w.step(reached.get('step'))} at {w.time(reached.get('at'))}"
                 f" owing {w.yuan(e.get('due'))}, with no online payment.")]
    if e.get("payments_not_online"):
        out.append(w.say(f"仅有网下缴费：{_payments(w, e['payments_not_online'])}。",
                         f"Paid offline only: {_payments(w, e['payments_not_online'])}."))
    return out


def _fee_waiver(w: Writer, e: dict) -> list[str]:
    out = [w.say(f"应缴 {w.yuan(e.get('due'))}（标准 {w.yuan(e.get('standard'))}，有权减免 "
                 f"{w.yuan(e.get('authorised_waived'))}），网上实缴 {w.yuan(e.get('paid_online'))}，"
                 f"少收 {w.yuan(e.get('shortfall'))}。",
                 f"Due {w.yuan(e.get('due'))} (standard {w.yuan(e.get('standard'))}, authorised "
                 f"waivers {w.yuan(e.get('authorised_waived'))}); paid online "
                 f"{w.yuan(e.get('paid_online'))}: {w.yuan(e.get('shortfall'))} short.")]
    if e.get("payments"):
        out.append(w.say(f"缴费记录：{_payments(w, e['payments'])}。",
                         f"Payments: {_payments(w, e['payments'])}."))
    for x in e.get("waivers") or []:
        out.append(w.say(f"{x.get('actor') or '-'} 于 {w.time(x.get('at'))} 减免 "
                         f"{w.yuan(x.get('amount'))}，但其无减免权限。",
                         f"{x.get('actor') or '-'} waived {w.yuan(x.get('amount'))} at "
                         f"{w.time(x.get('at'))} without the authority to."))
    return out


def _reconciliation(w: Writer, e: dict) -> list[str]:
    more = e.get("direction") == "receipts_exceed_online"
    return [w.say(f"{e.get('period')} 网上收费 {w.yuan(e.get('online_total'))}（"
                  f"{e.get('online_payments')} 笔），财政入库 {w.yuan(e.get('receipts'))}，相差 "
                  f"{w.yuan(str(e.get('online_minus_receipts', '')).lstrip('-'))}"
                  + ("：入库多于网上收费，疑似网下收费、体外循环。" if more else
                     "：网上收费未足额入库。"),
                  f"{e.get('period')}: {w.yuan(e.get('online_total'))} collected online "
                  f"({e.get('online_payments')} payments), {w.yuan(e.get('receipts'))} received "
                  "by the treasury"
                  + (": more reached the treasury than was paid online (fees taken offline)."
                     if more else ": online fees did not all reach the treasury."))]


def _overdue(w: Writer, e: dict) -> list[str]:
    out = [w.say(f"受理于 {w.time(e.get('accepted_at'))}，"
                 + (f"{w.step(e.get('end_step'))}于 {w.time(e.get('ended_at'))}"
                    if e.get("ended_at") else "截至目前尚未作出决定")
                 + f"；已用 {e.get('used_days')} 个工作日（暂停计时 {e.get('suspended_days')} 日不计）。",
                 f"Accepted at {w.time(e.get('accepted_at'))}; "
                 + (f"{w.step(e.get('end_step'))} at {w.time(e.get('ended_at'))}"
                    if e.get("ended_at") else "not decided yet")
                 + f": {e.get('used_days')} working days used ({e.get('suspended_days')} "
                   "suspended days not counted).")]
    out.append(w.say(f"承诺期限 {e.get('promised_days')} 个工作日（{e.get('promised_deadline')} 届满），"
                     f"法定期限 {e.get('legal_days')} 个工作日（{e.get('legal_deadline')} 届满）"
                     + (f"，含延期 {e.get('extension_days')} 日" if e.get("extension_days") else "")
                     + "。",
                     f"Promised limit {e.get('promised_days')} working days (ends "
                     f"{e.get('promised_deadline')}), legal {e.get('legal_days')} (ends "
                     f"{e.get('legal_deadline')})"
                     + (f", with {e.get('extension_days')} days of extension"
                        if e.get("extension_days") else "") + "."))
    if e.get("over_days"):
        out.append(w.say(f"超期 {e['over_days']} 个工作日。", f"{e['over_days']} working days over."))
    return out


def _inactive(w: Writer, e: dict) -> list[str]:
    return [w.say(f"一级监察员 {e.get('user_id')} 最后登录于 {w.time(e.get('last_login'))}，"
                  f"此后 {e.get('working_days_without_login')} 个工作日未登录（允许 "
                  f"{e.get('days_allowed')} 个），本部门有 {e.get('open_alerts')} 条告警待处置。",
                  f"Tier-1 monitor {e.get('user_id')} last logged in at "
                  f"{w.time(e.get('last_login'))}: {e.get('working_days_without_login')} working "
                  f"days without a login (allowed {e.get('days_allowed')}), while "
                  f"{e.get('open_alerts')} alerts of the department wait.")]


SENTENCES: dict[str, Callable[[Writer, dict], list[str]]] = {
    "step_too_fast": _step_too_fast, "case_too_fast": _case_too_fast,
    "late_entry": _late_entry, "same_actor_roles": _same_actor, "batch_entry": _batch_entry,
    "missing_attachment": _missing_attachment, "unpaid_fee": _unpaid_fee,
    "fee_waiver": _fee_waiver, "fee_reconciliation": _reconciliation, "overdue": _overdue,
    "inactive_monitor": _inactive,
}


def _plain(w: Writer, evidence: dict) -> list[str]:
    """One sentence per scalar fact, for a kind without its own sentences."""
    out = []
    for key, value in evidence.items():
        if isinstance(value, (str, int, float)) and value not in ("", None):
            out.append(f"{w.label(key)}：{value}。" if w.zh else f"{w.label(key)}: {value}.")
    return out


def sentences(kind: str, evidence: dict | None, language: str, tz: tzinfo) -> list[str]:
    """What ``evidence`` of an alert of ``kind`` shows, as sentences."""
    w, evidence = Writer(language, tz), evidence or {}
    write = SENTENCES.get(kind)
    if write is not None:
        try:
            out = write(w, evidence)
        except (TypeError, ValueError, AttributeError):  # evidence of an older rule version
            out = []
        if out:
            return out
    return _plain(w, evidence)
