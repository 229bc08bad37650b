"""Who is asking: the session cookie of a browser, or a bearer token of an API client.

The cookie holds a random token (the store keeps its SHA-256); it is HttpOnly,
SameSite=Strict, and Secure when the page was served over HTTPS. Every form carries the
session's CSRF token and is refused without it; the login form, before any session, is
protected the same way by a token in a short-lived cookie of its own (double submit).
An API call with the session cookie instead of a token must send the CSRF token in the
``X-CSRF-Token`` header to change anything.
"""

from __future__ import annotations

import secrets
from datetime import datetime
from urllib.parse import quote

from fastapi import HTTPException, Request
from fastapi.responses import Response

from .. import accounts
from ..accounts import Session
from ..authz import Actor
from ..center.labels import labeler
from .site import Redirect, site

COOKIE = "pm_session"
LOGIN_COOKIE = "pm_login"
SAFE = ("GET", "HEAD", "OPTIONS")


def now(request: Request) -> datetime:
    """The request's moment (the entry point's clock), the same for the whole request."""
    if not hasattr(request.state, "now"):
        request.state.now = site(request).clock()
    return request.state.now


def _t(request: Request):
    return labeler(site(request).config.language)


def _session(request: Request, view: bool) -> Session | None:
    s = site(request)
    return accounts.session_of(s.engine, request.cookies.get(COOKIE), now(request),
                               s.config.web, view=view)


def _remember(request: Request, session: Session) -> Session:
    request.state.session, request.state.csrf = session, session.csrf
    return session


def page_session(request: Request) -> Session:
    """A signed-in browser for a page (a view, written to the monitoring log); else to
    the login page, or to the password page while the first-login change is due."""
    session = _session(request, view=True)
    if session is None:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        raise Redirect(f"/login?next={quote(target, safe='')}")
    if session.must_change and request.url.path != "/password":
        raise Redirect("/password")
    return _remember(request, session)


async def form_session(request: Request) -> tuple[Session, dict[str, str]]:
    """A signed-in browser posting a form with its CSRF token; (session, the fields)."""
    session = _session(request, view=False)
    if session is None:
        raise Redirect("/login")
    _remember(request, session)
    form = {k: v for k, v in (await request.form()).items() if isinstance(v, str)}
    if not secrets.compare_digest(form.get("csrf", ""), session.csrf):
        raise HTTPException(403, _t(request)("csrf"))
    if session.must_change and request.url.path not in ("/password", "/logout"):
        raise Redirect("/password")
    return session, form


def login_token(request: Request) -> str:
    """The login form's CSRF token: the one in its cookie, or a new one."""
    return request.cookies.get(LOGIN_COOKIE) or secrets.token_urlsafe(24)


def check_login_token(request: Request, form: dict[str, str]) -> None:
    cookie = request.cookies.get(LOGIN_COOKIE, "")
    if not cookie or not secrets.compare_digest(form.get("csrf", ""), cookie):
        raise HTTPException(403, _t(request)("csrf"))


def start_session(request: Request, response: Response, session: Session) -> None:
    response.set_cookie(COOKIE, session.token or "", httponly=True, samesite="strict",
                        secure=request.url.scheme == "https", path="/")
    response.delete_cookie(LOGIN_COOKIE, path="/login")


def end_session(response: Response) -> None:
    response.delete_cookie(COOKIE, path="/")


def api_actor(request: Request) -> Actor:
    """The API's caller: a bearer token, or a browser's session (with ``X-CSRF-Token`` to
    change anything). 401 without valid credentials."""
    s = site(request)
    header = request.headers.get("authorization")
    if header:
        scheme, _, token = header.partition(" ")
        actor = (accounts.token_actor(s.engine, token.strip(), now(request))
                 if scheme.lower() == "bearer" else None)
        if actor is None:
            raise HTTPException(401, "invalid or expired token",
                                headers={"WWW-Authenticate": 'Bearer error="invalid_token"'})
        return actor
    session = _session(request, view=False)
    if session is None:
        raise HTTPException(401, "authentication required: a bearer token or a session",
                            headers={"WWW-Authenticate": "Bearer"})
    if session.must_change:
        raise HTTPException(403, "change the password an administrator set first (/password)")
    if request.method not in SAFE and not secrets.compare_digest(
            request.headers.get("x-csrf-token", ""), session.csrf):
        raise HTTPException(403, "a session needs the X-CSRF-Token header to change anything")
    return _remember(request, session).actor()
