"""Web logins for the demo county: a department monitor whose department has red alerts,
and a tier-2 monitor of the county office, with one fresh random password (printed by
the demo; no change required at first login, as it is a demo)."""

from __future__ import annotations

import secrets
from datetime import datetime

from ..accounts import set_password
from ..db import open_store

LOGINS = (("shj-monitor", "一级监察员 · 生态环境局"), ("jw-monitor-1", "二级监察员 · 县纪委监委"))
WEB_AS_OF = "2026-02-02T09:00"  # the first working morning after the audit


def demo_logins(database_url: str, now: datetime) -> tuple[tuple[tuple[str, str], ...], str]:
    """Set the demo's logins; ((user id, role), …) and the password."""
    password = secrets.token_urlsafe(9)
    engine = open_store(database_url)
    try:
        for user, _ in LOGINS:
            set_password(engine, user, password, now, "demo", must_change=False)
    finally:
        engine.dispose()
    return LOGINS, password
