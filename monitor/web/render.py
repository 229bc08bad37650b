"""Template filters: times in the county's zone, numbers, report cells, day strip labels."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from ..center.labels import holiday_name, labeler
from ..config import Config
from ..report.model import fmt_value


def filters(config: Config) -> dict[str, Any]:
    tz, t = config.tz, labeler(config.language)

    def local(value: Any, pattern: str = "%Y-%m-%d %H:%M") -> str:
        """An aware moment in the county's zone (never the server's)."""
        if value is None or value == "":
            return "—"
        if isinstance(value, str):
            value = datetime.fromisoformat(value)
        if isinstance(value, datetime):
            return value.astimezone(tz).strftime(pattern)
        if isinstance(value, date):
            return value.isoformat()
        return str(value)

    def cell(value: Any, fmt: str) -> str:
        return fmt_value(value, fmt)

    def day_label(d: Any) -> str:
        text = t(f"d_{d.kind}")
        name = holiday_name(d.holiday, config.language)
        if name and d.kind in ("holiday", "makeup"):
            text += f"（{name}）" if config.language == "zh" else f" ({name})"
        if d.suspended:
            text += " · " + t("d_suspended")
        elif d.counted:
            text += " · " + t("d_counted", n=d.counted)
        return text

    def days_left(n: int | None) -> str:
        if n is None:
            return ""
        if n < 0:
            return t("days_over", n=-n)
        return t("due_today") if n == 0 else t("days_to_go", n=n)

    def step(name: Any) -> str:
        return t(f"s_{name}") if name else "—"

    return {"local": local, "cell": cell, "day_label": day_label, "days_left": days_left,
            "step": step}
