"""The application: FastAPI (on Starlette) with the pages and the API, errors and
security headers around them.

This is an entry point, like cli.py: the one place here that reads the wall clock
(``utcnow``, the default ``clock``); everything below takes ``now`` as an argument.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import datetime, timezone

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles
from jinja2 import Environment, PackageLoader, select_autoescape
from sqlalchemy import Engine
from starlette.datastructures import MutableHeaders
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..center.act import FieldError
from ..center.labels import labeler
from ..config import Config
from ..errors import MonitorError
from . import api, gateapi, pages
from .render import filters
from .site import (HERE, SECURITY_HEADERS, Redirect, Rules, Site, error_page, status_of,
                   wants_json)

log = logging.getLogger(__name__)


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


class SecurityHeaders:
    """Every response gets :data:`~monitor.web.site.SECURITY_HEADERS` (unless it set one
    itself). A plain ASGI middleware that edits the response's start message: Starlette's
    ``@app.middleware("http")`` ran each request as a task of its own behind memory
    streams, ~5 % of a gate decision's CPU."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message.setdefault("headers", [])
                headers = MutableHeaders(scope=message)
                for name, value in SECURITY_HEADERS.items():
                    headers.setdefault(name, value)
            await send(message)

        await self.app(scope, receive, send_with_headers)


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """At the server's shutdown the gate's guard, if one was made, is closed: its log
    writer writes every allow and warn line still queued (monitor/gatewriter.py)."""
    yield
    guard = getattr(app.state, "gate_guard", None)
    if guard is not None:
        await asyncio.to_thread(guard.close)


def create_app(engine: Engine, config: Config, clock: Callable[[], datetime] = utcnow) -> FastAPI:
    """The control center over ``engine`` (its schema already current) and ``config``."""
    app = FastAPI(title="permit-monitor API", version="1", lifespan=lifespan,
                  description="The control center's API (行权控制中心): alerts and the actions "
                              "on them, under the same permissions as the web pages and the CLI.",
                  openapi_url="/api/v1/openapi.json", docs_url=None, redoc_url=None)
    templates = Environment(loader=PackageLoader("monitor.web", "templates"),
                            autoescape=select_autoescape(default=True), trim_blocks=True,
                            lstrip_blocks=True)
    templates.filters.update(filters(config))
    templates.globals["t"] = labeler(config.language)
    app.state.site = Site(engine, config, clock, Rules(config.rules_dir, config), templates)
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    app.include_router(api.router)
    app.include_router(gateapi.router)
    app.include_router(pages.router)

    app.add_middleware(SecurityHeaders)

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


