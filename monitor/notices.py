"""What people are told: the SMS texts of supervision, in Chinese, from templates.

One SMS segment holds 70 Chinese characters; every text is fitted to it (the rule title,
then the department name are shortened first). Fields: ``dept`` (department name),
``id`` (alert id), ``title`` (the rule's title), ``due`` (a deadline, e.g. 11月26日).
"""

from __future__ import annotations

from datetime import date

SMS_LIMIT = 70

TEMPLATES = {
    # to the department's tier-1 monitors
    "order": "【督办】{dept}第{id}号告警（{title}）县监察办已督办，请于{due}前处置并回复。",
    "escalated": "【督办】{dept}第{id}号告警（{title}）逾期未处置，已升级县监察办督办，"
                 "请于{due}前处置。",
    "red": "【督办】{dept}第{id}号红牌告警（{title}）已直接转县监察办督办，请于{due}前处置。",
    "rejected": "【退回】{dept}第{id}号告警处置意见未获县监察办认可，请于{due}前重新处置。",
    "reminder": "【提醒】{dept}第{id}号告警（{title}）已超过督办期限{due}，请尽快处置。",
    # told at once (monitor/tier1.py): a new alert, a level risen, an alert reopened
    "raised": "【告警】{dept}第{id}号{level}告警（{title}），请于{due}前处置。",
    "rose": "【告警】{dept}第{id}号告警（{title}）升为{level}，请于{due}前处置。",
    "reopened": "【重开】{dept}第{id}号告警（{title}）升为{level}，已重新打开，请于{due}前处置。",
    # to the case's handler (经办人) of a 临期预警
    "handler": "【临期预警】{dept}第{id}号：案件{case}（{title}）将于{due}超过承诺时限，请抓紧办理。",
    # to the county office's tier-2 monitors
    "escalated_l2": "【二级监察】{dept}第{id}号告警（{title}）一级逾期未处置，已督办，期限{due}。",
    "red_l2": "【二级监察】{dept}第{id}号红牌告警（{title}）已转二级监察督办，期限{due}。",
}

# One SMS per recipient when one run has several alerts of the same kind for them.
DIGESTS = {
    "escalated": "【督办】{dept}{n}件告警逾期未处置，已升级县监察办督办（第{ids}号等），"
                 "请于{due}前处置。",
    "red": "【督办】{dept}{n}件红牌告警已直接转县监察办督办（第{ids}号等），请于{due}前处置。",
    "reminder": "【提醒】{dept}{n}件督办告警已超过期限（第{ids}号等，最早{due}到期），请尽快处置。",
    "daily": "【每日汇总】{dept}{n}件告警待处置（第{ids}号等，最早{due}到期），请登录系统处置。",
    "told": "【告警】{dept}{n}件告警新发现或升级（第{ids}号等，最早{due}到期），请登录系统处置。",
    "handler": "【临期预警】{dept}{n}件案件即将超过承诺时限（第{ids}号告警等，最早{due}届满），"
               "请抓紧办理。",
    "escalated_l2": "【二级监察】{n}件告警一级逾期未处置，已督办（{depts}等{k}个部门），"
                    "最早期限{due}。",
    "red_l2": "【二级监察】{n}件红牌告警已转二级监察督办（{depts}等{k}个部门），最早期限{due}。",
}


def _short(text: str, n: int) -> str:
    return text if len(text) <= n else text[:max(n - 1, 0)] + "…"


def _when(due: date) -> str:
    return f"{due.month}月{due.day}日"


def digest(template: str, *, depts: list[str], alert_ids: list[int], due: date) -> str:
    """The digest of ``template`` over several alerts, at most :data:`SMS_LIMIT` characters."""
    fmt = DIGESTS[template]
    for shown, d in ((3, 10), (2, 8), (1, 6), (1, 4)):
        text = fmt.format(dept=_short(depts[0], d) if len(depts) == 1 else "", n=len(alert_ids),
                          ids="、".join(map(str, alert_ids[:shown])), due=_when(due),
                          depts="、".join(_short(x, d) for x in depts[:shown]), k=len(depts))
        if len(text) <= SMS_LIMIT:
            return text
    return _short(text, SMS_LIMIT)


LEVEL_CN = {"warning": "临期预警", "yellow": "黄牌", "red": "红牌"}


def sms(template: str, *, dept: str, alert_id: int, title: str, due: date,
        level: str = "", case: str = "") -> str:
    """The text of ``template``, at most :data:`SMS_LIMIT` characters."""
    fmt = TEMPLATES[template]
    title = title.split("（")[0] or title  # 办件超期（超过承诺…）→ 办件超期
    when = _when(due)
    for t, d in ((12, 10), (10, 8), (8, 6), (6, 4), (4, 2)):
        text = fmt.format(dept=_short(dept, d), id=alert_id, title=_short(title, t), due=when,
                          level=LEVEL_CN.get(level, level), case=_short(case, 2 * d))
        if len(text) <= SMS_LIMIT:
            return text
    return _short(text, SMS_LIMIT)


# E-mail (channel email, smtp sink): the subject by the outbox message's subject (the
# template it came from); the body is the same Chinese text as the SMS, with a footer.
EMAIL_SUBJECTS = {
    "escalated": "【督办】告警逾期未处置，已升级县监察办督办",
    "red": "【督办】红牌告警已直接转县监察办督办",
    "reminder": "【提醒】督办告警已超过期限，请尽快处置",
    "escalated_l2": "【二级监察】告警一级逾期未处置，已督办",
    "red_l2": "【二级监察】红牌告警已转二级监察督办",
    "order:manual": "【督办】县监察办督办告警，请按期处置",
    "order:rejected": "【退回】告警处置意见未获认可，请重新处置",
    "order:escalated": "【督办】告警逾期未处置，已升级县监察办督办",
    "order:red": "【督办】红牌告警已直接转县监察办督办",
    "raised": "【告警】新告警，请按期处置",
    "rose": "【告警】告警级别升高，请按期处置",
    "reopened": "【重开】告警级别升高，已重新打开，请按期处置",
    "handler": "【临期预警】案件即将超过承诺时限，请抓紧办理",
    "daily": "【每日汇总】待处置告警",
    "told": "【告警】新发现或升级的告警，请按期处置",
    "hold": "【中止流程】案件已中止办理",
    "release": "【恢复流程】案件已恢复办理",
}
EMAIL_FOOTER = ("\n\n——\n{alert}消息编号：{id}（同一编号的邮件重复收到时可忽略）\n"
                "本邮件由电子监察系统（permit-monitor）自动发送，请勿直接回复。\n")


def email(subject: str, text: str, *, message_id: int, alert_id: int | None) -> tuple[str, str]:
    """The (subject, body) of an e-mail for an outbox message of ``subject`` with ``text``."""
    alert = f"告警编号：{alert_id}\n" if alert_id is not None else ""
    return (EMAIL_SUBJECTS.get(subject, "【电子监察】通知"),
            text + EMAIL_FOOTER.format(alert=alert, id=message_id))
