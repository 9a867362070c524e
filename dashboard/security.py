"""Who may do what: the session cookie, CSRF tokens, roles and grid scope.

Every route declares its access with one of the dependencies below; tests/dashboard/test_authz_matrix.py
enumerates the routes and checks each against each role and scope.
"""

from __future__ import annotations

import hmac
import secrets
import time
from collections.abc import Callable
from functools import lru_cache
from typing import Annotated

from fastapi import Depends, HTTPException, Request
from jifang.dashboard.state import AppState, state_of
from jifang.dashboard.users import Principal
from sqlalchemy import select

from jifang.db.models import AreaRow, GridRow

SESSION_COOKIE = "jifang_session"
LOGIN_CSRF_COOKIE = "jifang_login_csrf"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"
UNSAFE = {"POST", "PUT", "PATCH", "DELETE"}


class LoginRequired(Exception):
    """Raised for anonymous requests: pages redirect to the login page, the API answers 401."""


def optional_principal(request: Request) -> Principal | None:
    cached = getattr(request.state, "principal", False)
    if cached is not False:
        return cached  # type: ignore[no-any-return]
    token = request.cookies.get(SESSION_COOKIE)
    state = state_of(request)
    principal = state.users.principal(token, state.now()) if token else None
    request.state.principal = principal
    return principal


def current_principal(request: Request,
                      principal: Annotated[Principal | None, Depends(optional_principal)]) -> Principal:
    if principal is None:
        raise LoginRequired()
    return principal


def require(*roles: str) -> Callable[..., Principal]:
    """A dependency admitting only the given roles (403 for the others, 401/login for anonymous)."""

    def check(principal: Annotated[Principal, Depends(current_principal)]) -> Principal:
        if principal.role not in roles:
            raise HTTPException(403, "forbidden")
        return principal

    check.roles = roles  # type: ignore[attr-defined]
    return check


async def csrf_protect(request: Request) -> None:
    """Global dependency: every unsafe request carries the session's CSRF token (form field or header).
    Before login, the login form's token is checked against its double-submit cookie."""
    if request.method not in UNSAFE:
        return
    principal = optional_principal(request)  # who is asking is settled before a byte of the body is parsed
    expected = principal.csrf_token if principal else request.cookies.get(LOGIN_CSRF_COOKIE)
    if not expected:
        raise HTTPException(403, "CSRF token missing or wrong")
    sent = request.headers.get(CSRF_HEADER)
    if sent is None and request.headers.get("content-type", "").startswith(
            ("application/x-www-form-urlencoded", "multipart/form-data")):
        form = await request.form(max_files=0, max_fields=32)  # no route takes a file (dashboard/limits.py)
        value = form.get(CSRF_FIELD)
        sent = value if isinstance(value, str) else None
    if not sent or not expected or not hmac.compare_digest(sent, expected):
        raise HTTPException(403, "CSRF token missing or wrong")


def same_origin(request: Request) -> None:
    """For GET routes that write an audit entry (an export, an evidence image, a live frame): a cross-site
    navigation or embed would write one in the user's name (SameSite=Lax cookies ride along), so a request a
    browser marks as coming from another site is refused. ``none`` is the user's own address bar or bookmark;
    clients that send no Sec-Fetch-Site (scripts, old browsers) carry no ambient cross-site intent."""
    site = request.headers.get("sec-fetch-site")
    if site is not None and site not in ("same-origin", "none"):
        raise HTTPException(403, "cross-site request refused: open this from the dashboard")


def new_login_csrf() -> str:
    return secrets.token_urlsafe(32)


def _scope_tree(state: AppState) -> tuple[dict[str, str | None], dict[str, str | None]]:
    """grid -> village and area -> parent, read at most every ``scope_cache_seconds`` (two small queries)."""
    cached = state.scope_tree
    if cached is not None and time.monotonic() - cached[0] < state.options.scope_cache_seconds:
        return cached[1], cached[2]
    with state.catalog.session() as session:
        grids = {code: village for code, village in session.execute(select(GridRow.code, GridRow.village))}
        parents = {code: parent for code, parent in session.execute(select(AreaRow.code, AreaRow.parent))}
    state.scope_tree = (time.monotonic(), grids, parents)
    return grids, parents


@lru_cache(maxsize=1024)
def _expand(wanted: frozenset[str], grids: tuple[tuple[str, str | None], ...],
            parents: tuple[tuple[str, str | None], ...]) -> frozenset[str]:
    up = dict(parents)
    allowed = set(wanted)  # grid codes match directly (also grids only in the configuration file)
    for code, village in grids:
        area, seen = village, 0
        while area and seen < 5:
            if area in wanted:
                allowed.add(code)
                break
            area, seen = up.get(area), seen + 1
    return frozenset(allowed)


def scope_grids(state: AppState, principal: Principal) -> frozenset[str] | None:
    """The grid codes a principal may see: None for every grid (admin, technician). A scope entry is a grid code
    or an area code (county, township, village): an area covers every grid below it. The grid/area tree is
    cached for a few seconds (DashboardOptions.scope_cache_seconds); the principal's scope is always fresh."""
    if principal.role not in ("supervisor", "grid_worker"):
        return None
    grids, parents = _scope_tree(state)
    wanted = frozenset(principal.scope)
    if not any(code in parents for code in wanted):  # only grid codes: nothing to expand
        return wanted
    return _expand(wanted, tuple(sorted(grids.items(), key=lambda kv: kv[0])),
                   tuple(sorted(parents.items(), key=lambda kv: kv[0])))


def in_scope(state: AppState, principal: Principal, grid: str) -> bool:
    grids = scope_grids(state, principal)
    return grids is None or grid in grids
