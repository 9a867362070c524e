"""Login and logout: new session id at every login, CSRF on the login form too, failed logins rate limited."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import RedirectResponse, Response
from jifang.dashboard.audit import record
from jifang.dashboard.i18n import pick, translator
from jifang.dashboard.security import LOGIN_CSRF_COOKIE, SESSION_COOKIE, current_principal, new_login_csrf
from jifang.dashboard.state import client_ip, state_of
from jifang.dashboard.templating import page
from jifang.dashboard.users import LoginBusy, Principal

router = APIRouter()


def safe_next(target: str) -> str:
    """Only local paths: no open redirect to another site."""
    return target if target.startswith("/") and not target.startswith(("//", "/\\")) else "/"


def login_page(request: Request, error: str = "", status_code: int = 200, target: str = "/") -> Response:
    token = new_login_csrf()
    response = page(request, "login.html", status_code=status_code, login_csrf=token, error=error,
                    next=safe_next(target))
    response.set_cookie(LOGIN_CSRF_COOKIE, token, httponly=True, samesite="strict", path="/login",
                        secure=state_of(request).options.secure_cookies)
    return response


@router.get("/login", include_in_schema=False)
def login_form(request: Request, next: str = "/") -> Response:
    return login_page(request, target=next)


@router.post("/login", include_in_schema=False)
def login(request: Request, username: str = Form(..., max_length=64), password: str = Form(..., max_length=256),
          next: str = Form("/")) -> Response:
    state = state_of(request)
    ip, now = client_ip(request), state.now()
    t = translator(pick(request))
    if not state.users.take_login_slot(username, ip, now):
        state.metrics.logins.labels("throttled").inc()
        return login_page(request, t("login_throttled"), 429, next)
    try:
        user = state.users.authenticate(username, password, ip, now)
    except LoginBusy:
        state.metrics.logins.labels("busy").inc()
        return login_page(request, t("login_throttled"), 503, next)
    if user is None:
        state.metrics.logins.labels("failed").inc()
        return login_page(request, t("login_failed"), 401, next)
    state.metrics.logins.labels("ok").inc()
    old = request.cookies.get(SESSION_COOKIE)
    if old:  # no fixation: whatever session the browser brought is ended, a fresh one is issued
        state.users.close_session(old)
    token = state.users.open_session(user, ip, now)
    response = RedirectResponse(safe_next(next), status_code=303)
    response.set_cookie(SESSION_COOKIE, token, httponly=True, samesite="lax", path="/",
                        secure=state.options.secure_cookies,
                        max_age=int(state.options.session_max.total_seconds()))
    response.delete_cookie(LOGIN_CSRF_COOKIE, path="/login")
    return response


@router.post("/logout", include_in_schema=False)
def logout(request: Request, principal: Annotated[Principal, Depends(current_principal)]) -> Response:
    state = state_of(request)
    token = request.cookies.get(SESSION_COOKIE)
    if token:
        state.users.close_session(token)
    record(request, principal, "logout", "dashboard")
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


@router.get("/api/session", tags=["session"])
def whoami(principal: Annotated[Principal, Depends(current_principal)]) -> dict:
    """The logged-in user, role, scope and the CSRF token to send as X-CSRF-Token on unsafe API calls."""
    return {"username": principal.username, "role": principal.role, "scope": list(principal.scope),
            "csrf_token": principal.csrf_token}
