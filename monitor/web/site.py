"""What every request of the control center shares: the site (store, settings, clock,
rules, templates), rendering a page, the error page, the security headers."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from jinja2 import Environment
from sqlalchemy import Engine

from ..config import Config
from ..errors import InvalidTransition, MonitorError, NotAllowed, NotFound
from ..regionrules import RuleSets, load_rule_sets, override_dirs
from ..rules.loader import load_rules
from ..rules.model import Rule

HERE = Path(__file__).parent
SECURITY_HEADERS = {
    # no script at all, nothing from elsewhere, no framing, forms post only here
    "Content-Security-Policy": "default-src 'none'; style-src 'self'; img-src 'self' data:; "
                               "form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


class Redirect(Exception):
    """Raised by a dependency to send the browser elsewhere (303), e.g. to the login."""

    def __init__(self, url: str):
        super().__init__(url)
        self.url = url


def _stamp(directory: Path) -> tuple:
    files = sorted(directory.glob("*.y*ml")) if directory.is_dir() else []
    return tuple((str(f), f.stat().st_mtime_ns) for f in files)


RECHECK = 1.0  # seconds between two looks at the rule files' stamps


@dataclass
class Rules:
    """The rules of ``rules_dir``, loaded again when a file there changes; with
    ``config``, each county's overrides too (:meth:`sets`, monitor/regionrules.py).

    The files' stamps (a glob and a stat of every rule file, base and overrides) are
    looked at :data:`RECHECK` seconds apart at most, by ``monotonic`` (injectable for
    tests), not on every request: an edited rule file is in force within that long."""

    directory: Path
    config: Config | None = None
    monotonic: Callable[[], float] = time.monotonic
    recheck: float = RECHECK
    _stamp: tuple = ()
    _rules: list[Rule] = field(default_factory=list)
    _sets_stamp: tuple = ()
    _sets: RuleSets | None = None
    _looked: float | None = None  # when the stamps were last looked at (monotonic)
    _sets_looked: float | None = None

    def _due(self, looked: float | None) -> tuple[bool, float]:
        now = self.monotonic()
        return looked is None or now - looked >= self.recheck, now

    def current(self) -> list[Rule]:
        due, now = self._due(self._looked)
        if due:
            stamp = _stamp(self.directory)
            if stamp != self._stamp:
                self._rules, self._stamp = load_rules([self.directory]), stamp
            self._looked = now
        return self._rules

    def sets(self) -> RuleSets:
        """The base and every county's overrides, read again when a file of either
        changes (the base alone without ``config``)."""
        base = self.current()
        if self.config is None:
            return RuleSets(tuple(base))
        due, now = self._due(self._sets_looked)
        sets = self._sets
        if sets is None or due or self._sets_stamp[:1] != (self._stamp,):  # base reread
            folders = override_dirs(self.config)
            stamp = (self._stamp, tuple((code, _stamp(f)) for code, f in folders.items()))
            if sets is None or stamp != self._sets_stamp:
                sets = self._sets = load_rule_sets(self.config, base)
                self._sets_stamp = stamp
            self._sets_looked = now
        return sets


@dataclass
class Site:
    """What every request needs: the store, the settings, the clock, the rules, templates."""

    engine: Engine
    config: Config
    clock: Callable[[], datetime]
    rules: Rules
    templates: Environment


def site(request: Request) -> Site:
    return request.app.state.site


STATUS = {NotFound: 404, NotAllowed: 403, InvalidTransition: 409}


def status_of(exc: MonitorError) -> int:
    for kind, code in STATUS.items():
        if isinstance(exc, kind):
            return code
    return 400


def wants_json(request: Request) -> bool:
    return request.url.path.startswith("/api/")


def render(request: Request, template: str, status: int = 200, **values: Any) -> HTMLResponse:
    s = site(request)
    page = s.templates.get_template(template)
    context = {"request": request, "language": s.config.language,
               "session": getattr(request.state, "session", None),
               "csrf": getattr(request.state, "csrf", ""), **values}
    return HTMLResponse(page.render(**context), status_code=status)


def error_page(request: Request, status: int, message: str, **extra: Any) -> Response:
    if wants_json(request):
        return JSONResponse({"detail": message, **extra}, status_code=status)
    return render(request, "error.html", status=status, status_code=status, message=message,
                  **extra)


__all__ = ["Redirect", "Site", "error_page", "render", "site", "status_of"]
