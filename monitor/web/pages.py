"""The pages: parse the request, call one ``monitor.center`` function, render a template.

Who may see or do what is never decided here (monitor/authz.py does, through the center
functions); a form's fields are checked by the same functions the API calls.
"""

from __future__ import annotations

import io
import tempfile
from types import SimpleNamespace
from datetime import date
from pathlib import Path
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import RedirectResponse, Response

from .. import accounts, authz, regionnames, regions, tier1
from ..accounts import AccountError, LoginFailed, Session
from ..center import act as acting
from ..center.board import board
from ..center.detail import alert_view, case_view
from ..center.labels import labeler
from ..center.listing import LEVELS, STATUSES, Filters, alerts_page
from ..center.overview import rules_overview
from ..errors import InvalidTransition, MonitorError, NotAllowed
from ..report import build_report, parse_period
from ..rulenames import titles
from ..regionrules import rules_seen
from ..rules.model import Rule
from ..scores import scorecard
from .site import Redirect, render, site, status_of
from .auth import (LOGIN_COOKIE, check_login_token, end_session, form_session, login_token,
                   now, page_session, start_session)

router = APIRouter(include_in_schema=False)


def _choice(value: str | None, choices, field: str) -> str | None:
    if value in (None, ""):
        return None
    if value not in choices:
        raise acting.FieldError(field, "one of " + ", ".join(map(str, choices)))
    return value


def _local_next(target: str | None) -> str:
    """Where to go after login: a path of this site only (never another host)."""
    if target and target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return "/board"


@router.get("/")
def home() -> RedirectResponse:
    return RedirectResponse("/board", status_code=303)


@router.get("/login")
def login_page(request: Request, next: str | None = None) -> Response:
    return _login_form(request, login_token(request), next=_local_next(next))


def _login_form(request: Request, token: str, status: int = 200, **values) -> Response:
    """The login page with its CSRF token, also set in the login form's own cookie."""
    response = render(request, "login.html", status=status, login_csrf=token, **values)
    response.set_cookie(LOGIN_COOKIE, token, max_age=3600, httponly=True, samesite="strict",
                        secure=request.url.scheme == "https", path="/login")
    return response


@router.post("/login")
async def login_post(request: Request) -> Response:
    form = {k: v for k, v in (await request.form()).items() if isinstance(v, str)}
    check_login_token(request, form)
    s = site(request)
    target = _local_next(form.get("next"))
    try:
        session = accounts.login(s.engine, form.get("user_id", ""), form.get("password", ""),
                                 now(request), s.config.web,
                                 request.client.host if request.client else "-")
    except LoginFailed as exc:
        return _login_form(request, form.get("csrf", ""), status=401, error=str(exc),
                           next=target, user_id=form.get("user_id", ""))
    response = RedirectResponse("/password" if session.must_change else target, status_code=303)
    start_session(request, response, session)
    return response


@router.post("/logout")
def logout(request: Request, posted=Depends(form_session)) -> Response:
    s = site(request)
    accounts.logout(s.engine, request.cookies.get("pm_session"), now(request))
    response = RedirectResponse("/login", status_code=303)
    end_session(response)
    return response


@router.get("/password")
def password_page(request: Request, session: Session = Depends(page_session)) -> Response:
    return render(request, "password.html",
                  delivery=tier1.delivery_of(site(request).engine, session.user.id))


@router.post("/delivery")
def delivery_post(request: Request, posted=Depends(form_session)) -> Response:
    """The person's own choice: a message per alert, or one daily digest (on the trail)."""
    session, form = posted
    mode = form.get("delivery", "")
    if mode not in tier1.MODES:
        t = labeler(site(request).config.language)
        return render(request, "password.html", status=422, error=t("delivery_unknown"),
                      delivery=tier1.delivery_of(site(request).engine, session.user.id))
    tier1.set_delivery(site(request).engine, session.user.id, mode, now(request),
                       session.user.id, "web")
    return RedirectResponse("/board?done=delivery_saved", status_code=303)


@router.post("/password")
def password_post(request: Request, posted=Depends(form_session)) -> Response:
    session, form = posted
    t = labeler(site(request).config.language)
    new = form.get("new", "")
    try:
        if new != form.get("repeat", ""):
            raise AccountError(t("passwords_differ"))
        accounts.change_password(site(request).engine, session.user.id, form.get("old", ""),
                                 new, now(request))
    except AccountError as exc:
        return render(request, "password.html", status=422, error=str(exc))
    return RedirectResponse("/board?done=password_changed", status_code=303)


@router.get("/board")
def board_page(request: Request, session: Session = Depends(page_session)) -> Response:
    s = site(request)
    reading = _reading(request, session.actor())
    data = board(s.engine, reading, now(request), s.config.tz)
    return render(request, "board.html", board=data, titles=_titles(request, reading, data),
                  done=request.query_params.get("done"), **_counties(request, session))


def _seen(request: Request, actor: authz.Actor) -> list[Rule]:
    """The rules in force in the counties the page shows (``?region=``, else the actor's
    own; docs/regions.md): a county's own rule ids are offered and titled there."""
    return rules_seen(site(request).rules.sets(),
                      authz.visible_region(_reading(request, actor)))


def _titles(request: Request, reading: authz.Actor, data) -> dict[str, dict[str, str]]:
    """County → rule id → title, for the board's lights: each its county's rules (a light
    of no county, those of the counties shown)."""
    sets = site(request).rules.sets()
    return {code: {r.id: r.title for r in rules_seen(
                sets, code or authz.visible_region(reading))}
            for code in {d.region for d in data.departments}}


def _filters(request: Request, queue: bool) -> Filters:
    q = request.query_params
    tier = _choice(q.get("tier"), ("1", "2"), "tier")
    return Filters(rule=q.get("rule") or None, level=_choice(q.get("level"), LEVELS, "level"),
                   status=_choice(q.get("status"), STATUSES, "status"),
                   department=None if queue else (q.get("department") or None),
                   tier=int(tier) if tier else None, overdue=q.get("overdue") == "1",
                   queue=queue)


def _page_number(request: Request) -> int:
    text = request.query_params.get("page") or "1"
    if not text.isdigit() or int(text) < 1:
        raise acting.FieldError("page", "a page number, 1 or more")
    return int(text)


def _list(request: Request, session: Session, queue: bool) -> Response:
    s = site(request)
    f = _filters(request, queue)
    page = alerts_page(s.engine, _reading(request, session.actor()), f,
                       now(request).astimezone(s.config.tz).date(), s.config.calendar(),
                       _page_number(request), s.config.web.page_size)
    query = {k: v for k, v in request.query_params.items() if k != "page" and v}
    return render(request, "alerts.html", page=page, filters=f, queue=queue,
                  levels=LEVELS, statuses=STATUSES, query=urlencode(query),
                  rules=_seen(request, session.actor()),
                  # the county chosen (?region=, checked above): a filter keeps it
                  chosen=request.query_params.get("region") or "")


@router.get("/queue")
def queue_page(request: Request, session: Session = Depends(page_session)) -> Response:
    return _list(request, session, queue=True)


@router.get("/alerts")
def alerts_list_page(request: Request, session: Session = Depends(page_session)) -> Response:
    return _list(request, session, queue=False)


def _alert_page(request: Request, session: Session, alert_id: int, status: int = 200,
                **values) -> Response:
    s = site(request)
    view = alert_view(s.engine, s.config, s.rules.sets(), session.actor(), alert_id,
                      now(request))
    return render(request, "alert.html", status=status, view=view, a=view.alert,
                  dispositions=list(acting.supervision.DISPOSITIONS),
                  scopes=acting.EXEMPT_SCOPES, **values)


@router.get("/alerts/{alert_id}")
def alert_page(request: Request, alert_id: int,
               session: Session = Depends(page_session)) -> Response:
    return _alert_page(request, session, alert_id, done=request.query_params.get("done"))


@router.post("/alerts/{alert_id}/{action}")
def alert_action(request: Request, alert_id: int, action: str,
                 posted=Depends(form_session)) -> Response:
    session, form = posted
    s = site(request)
    actor = session.actor()
    try:
        if action == "exempt":
            until = form.get("until") or None
            acting.exempt(s.engine, s.config, s.rules.sets(), actor, alert_id, now(request),
                          form.get("scope"), form.get("reason"),
                          _date(until) if until else None)
        else:
            acting.act(s.engine, s.config, s.rules.sets(), actor, alert_id, action,
                       now(request), form.get("note") or None, form.get("disposition") or None)
    except acting.FieldError as exc:
        return _alert_page(request, session, alert_id, status=422, action=action,
                           field_error=(exc.field, exc.message), form=form)
    except (InvalidTransition, MonitorError) as exc:
        if isinstance(exc, NotAllowed) or status_of(exc) == 404:
            raise
        return _alert_page(request, session, alert_id, status=status_of(exc), action=action,
                           error=str(exc), form=form)
    return RedirectResponse(f"/alerts/{alert_id}?done={action}", status_code=303)


@router.post("/holds/{hold_id}/release")
def hold_release(request: Request, hold_id: int, posted=Depends(form_session)) -> Response:
    """Release a hold from its alert's page: the CLI's ``holds release``, channel web."""
    session, form = posted
    s = site(request)
    alert_id = acting.hold_alert(s.engine, hold_id)
    try:
        acting.release_hold(s.engine, s.config, s.rules.sets(), session.actor(), hold_id,
                            now(request), form.get("note") or None)
    except acting.FieldError as exc:
        return _alert_page(request, session, alert_id, status=422, action="release",
                           field_error=(exc.field, exc.message), form=form)
    except (InvalidTransition, MonitorError) as exc:
        if isinstance(exc, NotAllowed) or status_of(exc) == 404:
            raise
        return _alert_page(request, session, alert_id, status=status_of(exc),
                           action="release", error=str(exc), form=form)
    return RedirectResponse(f"/alerts/{alert_id}?done=release", status_code=303)


def _date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise acting.FieldError("until", "a date like 2026-12-31") from None


@router.get("/cases")
def case_search(request: Request, session: Session = Depends(page_session)) -> Response:
    case_id = (request.query_params.get("case_id") or "").strip()
    if case_id:
        raise Redirect(f"/cases/{case_id}")
    return render(request, "case.html", view=None)


@router.get("/cases/{case_id}")
def case_page(request: Request, case_id: str,
              session: Session = Depends(page_session)) -> Response:
    s = site(request)
    view = case_view(s.engine, session.actor(), case_id)
    return render(request, "case.html", view=view)


def _report_scope(request: Request, session: Session):
    s = site(request)
    actor = session.actor()
    today = now(request).astimezone(s.config.tz).date()
    period = parse_period(request.query_params.get("period") or None, today=today)
    department = None if authz.sees_county(actor) else actor.department
    if department is not None or not authz.sees_county(actor):  # one department's report
        authz.check(actor, authz.READ, SimpleNamespace(
            id=department, department=department, what=f"the report of {department or '-'}"))
    # a county office's report is its county's; a city's or province's rolls its counties
    # up, or (?region=) one of them
    return s, period, department, authz.visible_region(_reading(request, actor))


def _reading(request: Request, actor: authz.Actor) -> authz.Actor:
    """The actor a read-only page shows for: narrowed to ``?region=`` if given (400 for
    a code that is none, 403 for a region outside theirs)."""
    region = request.query_params.get("region")
    if not region:
        return actor
    try:
        return authz.narrowed(actor, region)
    except regions.RegionCodeError as exc:
        raise HTTPException(400, str(exc)) from None


def _counties(request: Request, session: Session) -> dict:
    """The region picker's choices (the counties the actor's office covers, by name) and
    the one chosen (``?region=``)."""
    return {"counties": regionnames.choices(site(request).engine,
                                            authz.visible_region(session.actor())),
            "chosen": request.query_params.get("region") or ""}


@router.get("/reports")
def reports_page(request: Request, session: Session = Depends(page_session)) -> Response:
    s, period, department, region = _report_scope(request, session)
    names = titles(s.config, _seen(request, session.actor()))
    report = build_report(s.engine, s.config, period, now(request), department, names, region)
    scores = scorecard(s.engine, s.config, period, now(request), department, names, region)
    return render(request, "reports.html", report=report, scores=scores, period=period,
                  **_counties(request, session))


@router.get("/reports/download/{fmt}")
def report_download(request: Request, fmt: str,
                    session: Session = Depends(page_session)) -> Response:
    from ..report.html import to_html
    from ..report.xlsx import write_xlsx

    if fmt not in ("html", "xlsx"):
        raise HTTPException(404, "no such format: html or xlsx")
    s, period, department, region = _report_scope(request, session)
    report = build_report(s.engine, s.config, period, now(request), department,
                          titles(s.config, _seen(request, session.actor())), region)
    name = f"report-{period.label}" + (f"-{department}" if department else "")
    if fmt == "html":
        return Response(to_html(report), media_type="text/html; charset=utf-8", headers={
            "Content-Disposition": f'attachment; filename="{name}.html"'})
    with tempfile.TemporaryDirectory(prefix="permit-monitor-web-") as folder:
        path = Path(folder) / f"{name}.xlsx"
        write_xlsx(report, path)
        data = io.BytesIO(path.read_bytes()).getvalue()
    return Response(data, headers={"Content-Disposition": f'attachment; filename="{name}.xlsx"'},
                    media_type="application/vnd.openxmlformats-officedocument."
                               "spreadsheetml.sheet")


@router.get("/rules")
def rules_page(request: Request, session: Session = Depends(page_session)) -> Response:
    s = site(request)
    rows, exemptions = rules_overview(s.engine, session.actor(),
                                      _seen(request, session.actor()), now(request),
                                      s.config.tz)
    return render(request, "rules.html", rows=rows, exemptions=exemptions)
