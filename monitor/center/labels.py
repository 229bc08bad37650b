"""Every label the control center shows, in Chinese (the default) and English
(``language: en``); a key it does not know is looked up among the report's labels. The
words for stored values (statuses, levels, dispositions) come from monitor/vocabulary.py,
which the reports use too."""

from __future__ import annotations

from ..report.labels import LABELS as REPORT_LABELS
from ..report.labels import LANGUAGES
from ..vocabulary import VALUES

LABELS: dict[str, tuple[str, str]] = {
    "app": ("行权控制中心", "Control center"),
    "product": ("电子监察", "Electronic supervision"),
    # navigation and pages
    "board": ("总览", "Board"),
    "queue": ("待办", "My queue"),
    "alerts": ("告警", "Alerts"),
    "alert": ("告警", "Alert"),
    "case": ("案件", "Case"),
    "reports": ("报表", "Reports"),
    "rules": ("规则", "Rules"),
    "login": ("登录", "Log in"),
    "logout": ("退出", "Log out"),
    "user_id": ("用户名", "User id"),
    "password": ("密码", "Password"),
    "current_password": ("当前密码", "Current password"),
    "new_password": ("新密码", "New password"),
    "repeat_password": ("再次输入新密码", "New password again"),
    "change_password": ("修改密码", "Change password"),
    "must_change": ("首次登录，请先修改管理员设置的密码。", "First login: change the password an "
                    "administrator set before you go on."),
    "password_changed": ("密码已修改。", "Password changed."),
    "delivery": ("告警通知方式", "How I am told of alerts"),
    "delivery_immediate": ("逐条即时通知（夜间静默时段顺延至早晨，红牌除外）",
                           "A message per alert (held during quiet hours, except red)"),
    "delivery_digest": ("每日汇总一条（红牌仍即时通知）",
                        "One daily digest (red alerts still at once)"),
    "save_delivery": ("保存", "Save"),
    "delivery_saved": ("通知方式已保存。", "Delivery saved."),
    "delivery_unknown": ("请选择逐条即时通知或每日汇总。", "Choose a message per alert or a daily digest."),
    "passwords_differ": ("两次输入的新密码不一致", "the two new passwords differ"),
    "signed_in_as": ("当前用户", "Signed in as"),
    "search_case": ("按案件编号查找", "Find a case by its id"),
    "search": ("查找", "Find"),
    "filter": ("筛选", "Filter"),
    "all": ("全部", "all"),
    "page": ("第 {page} / {pages} 页，共 {total} 条", "page {page} of {pages}, {total} in all"),
    "previous_page": ("上一页", "Previous"),
    "next_page": ("下一页", "Next"),
    "nothing": ("暂无", "none"),
    "read_only": ("领导账户：只读，不能处置。", "Leader account: read only."),
    # board
    "county_totals": ("全县合计", "County totals"),
    "light_red": ("红灯", "red"),
    "light_yellow": ("黄灯", "yellow"),
    "light_green": ("绿灯", "green"),
    "active": ("待处置", "To act on"),
    "overdue": ("逾期", "Overdue"),
    "awaiting_review": ("待二级审核", "Awaiting tier-2 review"),
    "trend_30": ("近 30 天新增告警", "New alerts, last 30 days"),
    "by_rule": ("按规则", "By rule"),
    "departments": ("部门", "Departments"),
    "as_of": ("截至", "As of"),
    # alert fields
    "id": ("编号", "Id"),
    "level": ("级别", "Level"),
    "tier": ("层级", "Tier"),
    "tier1": ("一级（部门监察员）", "Tier 1 (department monitor)"),
    "tier2": ("二级（县监察办）", "Tier 2 (county office)"),
    "due_on": ("处置期限", "Due"),
    "days_left": ("剩余工作日", "Working days left"),
    "days_over": ("已逾期 {n} 个工作日", "{n} working days overdue"),
    "days_to_go": ("剩 {n} 个工作日", "{n} working days left"),
    "due_today": ("今日到期", "due today"),
    "raised_at": ("发现时间", "Raised"),
    "assigned_to": ("处置人", "Assigned to"),
    "subject": ("对象", "Subject"),
    "disposition": ("处置结论", "Disposition"),
    "note": ("说明", "Note"),
    "rule_version": ("规则版本", "Rule version"),
    "evidence_title": ("证据", "Evidence"),
    "timeline": ("办理过程", "Case timeline"),
    "occurred_at": ("办理时间", "Occurred"),
    "recorded_at": ("录入时间", "Recorded"),
    "step": ("环节", "Step"),
    "gap": ("间隔", "Gap"),
    "workdays": ("工作日推算", "Working days"),
    "checks": ("计算过程", "The computation"),
    "trail": ("留痕记录", "Trail"),
    "trail_ok": ("留痕链完整：{n} 条记录，校验通过", "Trail intact: {n} entries verified"),
    "trail_broken": ("留痕链校验失败：{error}", "Trail broken: {error}"),
    "actions": ("处置", "Actions"),
    "no_actions": ("当前状态下您无可执行的处置。", "Nothing you may do on this alert now."),
    "holds": ("中止流程", "Holds"),
    "spot_checks": ("抽检", "Spot checks"),
    "ratings": ("好差评", "Ratings"),
    "complaints": ("效能投诉", "Complaints"),
    "appeal": ("申诉", "Appeal"),
    "appeal_pending": ("待复核", "pending"),
    "appeal_upheld": ("维持差评", "upheld"),
    "appeal_voided": ("已撤销", "voided"),
    "answered": ("已反馈", "answered"),
    "not_answered": ("未反馈", "not answered"),
    "bad_ratings_30": ("近30天差评", "Bad ratings, 30 days"),
    "open_complaints": ("未办结投诉", "Open complaints"),
    "events": ("办理记录", "Events"),
    "amount": ("金额", "Amount"),
    "channel": ("渠道", "Channel"),
    "attachments": ("附件", "Attachments"),
    "by": ("操作人", "By"),
    "at": ("时间", "When"),
    "what": ("事项", "What"),
    "held_at": ("中止时间", "Held"),
    "released": ("已恢复", "Released"),
    "result": ("结果", "Result"),
    "no_case": ("没有该案件的办理记录：{case}", "No events of case {case}"),
    "case_help": ("输入案件编号，查看其全部办理记录、告警、中止和抽检。",
                  "A case id shows every event, alert, hold and spot check of the case."),
    # actions
    "act_ack": ("签收", "Acknowledge"),
    "act_resolve": ("办结", "Resolve"),
    "act_order": ("督办", "Order"),
    "act_escalate": ("升级二级", "Escalate"),
    "act_confirm": ("确认", "Confirm"),
    "act_reject": ("退回", "Reject"),
    "act_exempt": ("豁免", "Exempt"),
    "done_ack": ("已签收。", "Acknowledged."),
    "done_resolve": ("已办结。", "Resolved."),
    "done_order": ("已督办。", "Supervision order issued."),
    "done_escalate": ("已升级二级。", "Escalated to tier 2."),
    "done_confirm": ("已确认。", "Confirmed."),
    "done_reject": ("已退回并重新督办。", "Rejected; a new order was issued."),
    "done_exempt": ("豁免已登记。", "Exemption recorded."),
    "scope": ("范围", "Scope"),
    "scope_case": ("本案件", "this case"),
    "scope_department": ("本部门", "this department"),
    "scope_item": ("本事项", "this item"),
    "scope_actor": ("本经办人", "this actor"),
    "until": ("有效期至", "Until"),
    "reason_field": ("理由", "Reason"),
    "approved_by": ("批准人", "Approved by"),
    "exemptions": ("豁免登记", "Exemptions"),
    "required": ("必填", "required"),
    # states, levels and dispositions: the shared vocabulary (also the reports')
    **VALUES,
    # trail actions
    "raised": ("发现", "raised"),
    "level_changed": ("级别变化", "level changed"),
    "escalated": ("升级二级", "escalated"),
    "order_issued": ("督办", "order issued"),
    "reminded": ("催办", "reminded"),
    "rejected": ("退回", "rejected"),
    "held": ("中止流程", "held"),
    "notified": ("已通知", "notified"),
    "assigned": ("分派", "assigned"),
    "unsuppressed": ("豁免失效", "unsuppressed"),
    "reopened": ("重新打开", "reopened"),
    "delivery_set": ("通知方式", "delivery set"),
    # steps
    "s_accept": ("受理", "accept"),
    "s_survey": ("现场踏勘", "survey"),
    "s_review": ("审核", "review"),
    "s_approve": ("审批", "approve"),
    "s_decide": ("决定", "decide"),
    "s_fee_assessed": ("核定收费", "fee assessed"),
    "s_fee_paid": ("缴费", "fee paid"),
    "s_fee_waived": ("减免", "fee waived"),
    "s_certificate_printed": ("制证", "certificate printed"),
    "s_complete": ("办结", "complete"),
    "s_suspend": ("暂停计时", "suspend"),
    "s_resume": ("恢复计时", "resume"),
    "s_extend": ("延期", "extend"),
    "s_return": ("退回", "return"),
    # the working-day strip
    "d_weekday": ("工作日", "weekday"),
    "d_weekend": ("周末", "weekend"),
    "d_holiday": ("法定节假日", "holiday"),
    "d_makeup": ("调休上班", "make-up working day"),
    "d_config_holiday": ("放假（本地配置）", "holiday (config)"),
    "d_config_workday": ("上班（本地配置）", "working day (config)"),
    "d_suspended": ("暂停计时，不计", "suspended, not counted"),
    "d_counted": ("第 {n} 个工作日", "working day {n}"),
    "m_promised deadline": ("承诺期限", "promised deadline"),
    "m_legal deadline": ("法定期限", "legal deadline"),
    "m_clock ends": ("计时终止", "clock ends"),
    # rules page
    "rule_status": ("状态", "Status"),
    "version": ("版本", "Version"),
    "last_run": ("最近运行（截至）", "Last run (as of)"),
    "alerts_total": ("告警总数", "Alerts"),
    "alerts_active": ("待处置", "To act on"),
    "enabled": ("启用", "enabled"),
    "disabled": ("停用", "disabled"),
    "title": ("名称", "Title"),
    # reports page
    "period_field": ("统计期间", "Period"),
    "download_html": ("下载 HTML", "Download HTML"),
    "download_xlsx": ("下载 XLSX", "Download XLSX"),
    "t_scores_explained": ("扣分明细", "Every deduction"),
    "online_rates": ("监察日志：在线率", "Monitoring log: online rates"),
    # errors
    "error": ("出错了", "Something went wrong"),
    "error_id": ("内部错误，编号 {id}。请把编号告诉管理员。", "Internal error {id}: tell an "
                 "administrator this number."),
    "forbidden": ("您无权查看或执行此操作。", "You may not see or do this."),
    "not_found": ("没有找到。", "Not found."),
    "csrf": ("表单已失效，请刷新页面后重试。", "This form has expired: reload the page and try "
             "again."),
    "field_errors": ("请修改以下内容：", "Please correct:"),
}

HOLIDAYS = {"New Year's Day": "元旦", "Spring Festival": "春节", "Tomb-sweeping Day": "清明节",
            "Labour Day": "劳动节", "Dragon Boat Festival": "端午节",
            "National Day": "国庆节", "Mid-autumn Festival": "中秋节"}


def labeler(language: str):
    """key → label in ``language`` (report labels as a fallback, else the key)."""
    k = LANGUAGES.index(language)

    def label(key: str, **fields) -> str:
        texts = LABELS.get(key) or REPORT_LABELS.get(key)
        text = texts[k] if texts else key
        return text.format(**fields) if fields else text

    return label


def holiday_name(name: str | None, language: str) -> str:
    if not name:
        return ""
    return HOLIDAYS.get(name, name) if language == "zh" else name
