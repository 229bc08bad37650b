"""The words stored values are shown as, one vocabulary for the web pages and the reports:
alert statuses, levels, dispositions, rule kinds and the reasons of a score deduction, in
Chinese (the default) and English (``language: en``).

A Chinese report or page never shows ``open``, ``step_too_fast`` or ``overdue`` where a
person reads: the web's labels (monitor/center/labels.py) include these, and a report's
columns of stored ids (format ``label``, monitor/report/model.py) are shown through
:func:`value_names`, rule ids and kinds as their titles (monitor/rulenames.py). CSV and
JSON keep the ids, for tools.
"""

from __future__ import annotations

from collections.abc import Mapping

from .config import LANGUAGES

VALUES: dict[str, tuple[str, str]] = {
    # alert statuses
    "open": ("待处置", "open"),
    "acknowledged": ("已签收", "acknowledged"),
    "resolved": ("已办结", "resolved"),
    "confirmed": ("已确认", "confirmed"),
    "suppressed": ("已豁免", "suppressed"),
    "cleared": ("复查销号", "cleared"),
    # levels
    "warning": ("预警", "warning"),
    "yellow": ("黄牌", "yellow"),
    "red": ("红牌", "red"),
    # dispositions
    "rectified": ("整改", "rectified"),
    "explained": ("说明", "explained"),
    "false_positive": ("误报", "false positive"),
    # why a score was deducted (monitor/scores.py)
    "finding:warning": ("发现（预警）", "finding (warning)"),
    "finding:yellow": ("发现（黄牌）", "finding (yellow)"),
    "finding:red": ("发现（红牌）", "finding (red)"),
    "unresolved": ("未处置", "unresolved"),
    "escalated": ("升级二级", "escalated"),
    "failed_spot_check": ("抽检不合格", "failed spot check"),
    # the kind of the alerts raised by failed runs (monitor/runs.py)
    "operational": ("运行故障", "operational"),
}


def value_names(language: str, titles: Mapping[str, str] | None = None) -> dict[str, str]:
    """Stored value → the word shown for it in ``language``: the statuses, levels,
    dispositions and deduction reasons above, and in a Chinese report ``titles`` (rule ids
    and kinds → their titles, from :func:`monitor.rulenames.titles`: handed in, as the
    report sits below the rules)."""
    k = LANGUAGES.index(language)
    names = {value: words[k] for value, words in VALUES.items()}
    if language == "zh":
        names.update(titles or {})
    return names
