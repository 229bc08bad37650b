"""The control center (``permit-monitor web``): sign-in and pages — the ``web`` section."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..errors import ConfigError
from .settings import Setting, declared, read_section, section

WEB_SETTINGS: tuple[Setting, ...] = (
    Setting("idle_minutes", 30, int,
            "A signed-in browser not used for this long is signed out (its session ends)."),
    Setting("lockout_attempts", 5, int,
            "Failed logins in a row that lock an account (logged in the monitoring log)."),
    Setting("lockout_minutes", 15, int, "How long a locked account stays locked."),
    Setting("page_size", 50, int, "Alerts per page in the queue, the lists and the API."),
)


@dataclass(frozen=True)
class WebConfig:
    idle_minutes: int = declared(WEB_SETTINGS, "idle_minutes")
    lockout_attempts: int = declared(WEB_SETTINGS, "lockout_attempts")
    lockout_minutes: int = declared(WEB_SETTINGS, "lockout_minutes")
    page_size: int = declared(WEB_SETTINGS, "page_size")


def load_web(raw: Any, where: str) -> WebConfig:
    values = read_section(section(raw, "web", where), WEB_SETTINGS, where)
    for name, value in values.items():
        if value < 1:
            raise ConfigError(where, raw.line_of(name), f"'web.{name}' must be at least 1")
    return WebConfig(**values)
