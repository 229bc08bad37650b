"""The application: FastAPI (on Starlette) with the pages and the API, the request's
context (store, settings, clock, rules, the signed-in actor), errors, security headers.

This is an entry point, like cli.py: it reads the clock (``clock``, injectable) and passes
``now`` down; everything below it takes time as an argument.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from jinja2 import Environment, PackageLoader, select_autoescape
from sqlalchemy import Engine
from starlette.exceptions import HTTPException as StarletteHTTPException

from ..config import Config
from ..errors import InvalidTransition, MonitorError, NotAllowed, NotFound
from ..rules.loader import load_rules
from ..rules.model import Rule
from ..center.act import FieldError
from ..center.labels import labeler
from .render import filters

log = logging.getLogger(__name__)
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


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


@dataclass
class Rules:
    """The rules of ``rules_dir``, loaded again when a file there changes."""

    directory: Path
    _stamp: tuple = ()
    _rules: list[Rule] = field(default_factory=list)

    def current(self) -> list[Rule]:
        files = sorted(self.directory.glob("*.y*ml")) if self.directory.is_dir() else []
        stamp = tuple((str(f), f.stat().st_mtime_ns) for f in files)
        if stamp != self._stamp:
            self._rules, self._stamp = load_rules([self.directory]), stamp
        return self._rules


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


def create_app(engine: Engine, config: Config, clock: Callable[[], datetime] = utcnow) -> FastAPI:
    """The control center over ``engine`` (its schema already current) and ``config``."""
    from . import api, pages

    app = FastAPI(title="permit-monitor API", version="1",
                  description="The control center's API (行权控制中心): alerts and the actions "
                              "on them, under the same permissions as the web pages and the CLI.",
                  openapi_url="/api/v1/openapi.json", docs_url=None, redoc_url=None)
    templates = Environment(loader=PackageLoader("monitor.web", "templates"),
                            autoescape=select_autoescape(default=True), trim_blocks=True,
                            lstrip_blocks=True)
    templates.filters.update(filters(config))
    templates.globals["t"] = labeler(config.language)
    app.state.site = Site(engine, config, clock, Rules(config.rules_dir), templates)
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    app.include_router(api.router)
    app.include_router(pages.router)

    @app.middleware("http")
    async def headers(request: Request, call_next):
        response = await call_next(request)
        for name, value in SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)
        return response

    @app.exception_handler(MonitorError)
    async def monitor_error(request: Request, exc: MonitorError):
        return error_page(request, status_of(exc), str(exc))

    @app.exception_handler(Redirect)
    async def redirect(request: Request, exc: Redirect):
        return RedirectResponse(exc.url, status_code=303)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException):
        response = error_page(request, exc.status_code, str(exc.detail))
        response.headers.update(exc.headers or {})
        return response

    @app.exception_handler(FieldError)
    async def field_error(request: Request, exc: FieldError):
        if wants_json(request):
            return JSONResponse({"detail": [{"loc": ["body", exc.field], "msg": exc.message,
                                             "type": "value_error"}]}, status_code=422)
        return error_page(request, 422, f"{exc.field}: {exc.message}")

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError):
        errors = [{"loc": list(e.get("loc", ())), "msg": e.get("msg", ""),
                   "type": e.get("type", "value_error")} for e in exc.errors()]
        if wants_json(request):
            return JSONResponse({"detail": errors}, status_code=422)
        text = "; ".join(f"{'.'.join(map(str, e['loc'][1:]))}: {e['msg']}" for e in errors)
        return error_page(request, 422, text)

    @app.exception_handler(Exception)
    async def crash(request: Request, exc: Exception):
        error_id = uuid.uuid4().hex[:10]
        log.error("internal error %s on %s %s", error_id, request.method, request.url.path,
                  exc_info=exc)
        response = error_page(request, 500, f"internal error {error_id}", error_id=error_id)
        response.headers.update(SECURITY_HEADERS)
        return response

    return app


__all__ = ["Site", "create_app", "render", "site", "status_of", "error_page"]
