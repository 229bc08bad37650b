"""The words of ``rules explain``'s checks, in English (the CLI's, pinned by its tests and
the README) and Chinese (the alert page's, for ``language: zh``): one template per check,
filled with the same values, so the two never compute differently."""

from __future__ import annotations

# key → (en, zh)
PHRASES: dict[str, tuple[str, str]] = {
    "system_left_out": ("{n} system event(s) left out: never the previous step",
                        "{n} 个系统事件不计入：不作为上一环节"),
    "no_earlier": ("{step}: no earlier {prev} to measure from (catalog min_minutes after) → ok",
                   "{step}：此前没有{prev}，无从计量（目录 min_minutes after）→ 正常"),
    "step_gap": ("{prev} → {step}: {gap}{reading} vs minimum {limit} min ({source}) → {verdict}",
                 "{prev} → {step}：{gap}{reading}，最短 {limit} 分钟（{source}）→ {verdict}"),
    "reading": (" (stamps to the {precision}: up to {upto})", "（时间精确到{precision}：最多 {upto}）"),
    "src_rule_item": ("rule item_min_minutes", "规则 item_min_minutes"),
    "src_catalog": ("catalog min_minutes", "目录 min_minutes"),
    "src_rule": ("rule min_minutes", "规则 min_minutes"),
    "on_the_spot": ("on-the-spot item (legal_days 0): exempt from this rule",
                    "即办件（legal_days 0）：不适用本规则"),
    "case_gap": ("{accept} → {end}: {gap}{reading} vs minimum {limit} min → {verdict}",
                 "{accept} → {end}：{gap}{reading}，最短 {limit} 分钟 → {verdict}"),
    "case_reading": (" (+ up to {upto} from the stamps' precision)", "（时间精度另计最多 {upto}）"),
    "before_accepted": ("decided before accepted: a data-quality finding, not a fast case",
                        "决定早于受理：属数据质量问题，不是超快审批"),
    "nothing_to_measure": ("no acceptance and decision (or completion) yet: nothing to measure",
                           "尚无受理和决定（或办结）：无从计量"),
    "late": ("{step}: keyed in {delay} after it happened vs maximum {hours} h → {verdict}",
             "{step}：发生后 {delay} 才录入，最长 {hours} 小时 → {verdict}"),
    "roles": ("{actor}: {steps} ({n} of the roles; {min} or more is a finding)",
              "{actor}：{steps}（兼任 {n} 个环节；{min} 个及以上即告警）"),
    "no_accept": ("no acceptance (accept) yet: the clock has not started",
                  "尚未受理：期限尚未起算"),
    "clock": ("accepted {accepted}; counting starts the next day; clock ends {end}{why}",
              "{accepted} 受理，次日起算；计时截至 {end}{why}"),
    "why_decision": (" (decision)", "（作出决定）"),
    "why_completion": (" (completion)", "（办结）"),
    "why_open": (" (as of, still open)", "（截至查看时，尚未办结）"),
    "limits": ("limits: promised {promised} + extension {ext} = {promised_total}, legal {legal} "
               "+ {ext} = {legal_total} working days; suspended {suspended} not counted",
               "时限：承诺 {promised} + 延期 {ext} = {promised_total}，法定 {legal} + {ext} = "
               "{legal_total} 个工作日；中止 {suspended} 个工作日不计"),
    "deadlines": ("deadlines: promised {promised}, legal {legal}; used {used} working days",
                  "期限：承诺 {promised}，法定 {legal}；已用 {used} 个工作日"),
    "extension": ("extension {id} at {at}: {days} days, {counted}",
                  "延期 {id}（{at}）：{days} 天，{counted}"),
    "ext_counted": ("counted", "计入"),
    "ext_not_counted": ("NOT counted (after the legal limit had run out)",
                        "不计入（法定期限届满后才延期）"),
    "stale": ("stale: no event since {last}, more than stale_days {days} calendar days: left to "
              "the data-quality rule (an overdue alert raised before the silence and not "
              "disposed of stays)",
              "停滞：{last} 以来没有办理记录，超过 stale_days {days} 个自然日：交由数据质量规则"
              "（停滞前已发出且未处置的超期告警保留）"),
    "step_span": ("step {step} (limit {limit} working days, step_days): from {start} {accepted} "
                  "to {end}; used {used}, suspended {suspended} not counted; deadline "
                  "{deadline} → {verdict}",
                  "环节 {step}（时限 {limit} 个工作日，step_days）：自{start} {accepted} 至 {end}；"
                  "已用 {used}，中止 {suspended} 不计；期限 {deadline} → {verdict}"),
    "pending": (" (as of, pending)", "（截至查看时，未完成）"),
    "TOO FAST": ("TOO FAST", "过快"),
    "LATE": ("LATE", "超时录入"),
    "OVER": ("OVER", "超期"),
    "ok": ("ok", "正常"),
    "pattern": ("pattern {pattern}: {shown}", "模式 {pattern}：{shown}"),
    "precedence": ("{then} never before {first}", "{then}不得早于{first}"),
    "response": ("{then} within {days} {unit} days after {first}",
                 "{first}后 {days} 个{unit}日内应有{then}"),
    "absence": ("no {step}", "不应有{step}"),
    "existence": ("{step} once the case has {when}", "已{when}即应有{step}"),
    "first_at": ("first {step}: {at}", "首次{step}：{at}"),
    "to_the": (" (to the {precision})", "（精确到{precision}）"),
    "none": ("none", "无"),
    "d": ("{n} d", "{n} 天"), "h": ("{n} h", "{n} 小时"), "min": ("{n} min", "{n} 分钟"),
    "s": ("{n} s", "{n} 秒"),
    "day": ("day", "日"), "hour": ("hour", "小时"), "minute": ("minute", "分钟"),
    "second": ("second", "秒"), "working": ("working", "工作"), "calendar": ("calendar", "自然"),
}


def phrase(language: str, key: str, **values: object) -> str:
    """The check ``key`` in ``language`` (``zh`` or ``en``), filled with ``values``."""
    en, zh = PHRASES[key]
    return (zh if language == "zh" else en).format(**values)
