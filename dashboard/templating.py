"""Server-rendered pages: Jinja2 with autoescaping, the language, the user and the CSRF token in every page."""

from __future__ import annotations

from datetime import timedelta, timezone
from pathlib import Path
from typing import Any

from fastapi.templating import Jinja2Templates
from jifang.dashboard.i18n import LANG_COOKIE, pick, translator
from jifang.dashboard.security import CSRF_FIELD, optional_principal
from starlette.requests import Request
from starlette.responses import HTMLResponse

TEMPLATES = Jinja2Templates(directory=str(Path(__file__).with_name("templates")))


def local_time(moment: Any) -> str:
    """China Standard Time, as users read it."""
    if moment is None:
        return "-"
    return moment.astimezone(timezone(timedelta(hours=8))).strftime("%Y-%m-%d %H:%M:%S")


TEMPLATES.env.filters["local"] = local_time


def page(request: Request, name: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    lang = pick(request)
    principal = optional_principal(request)
    response = TEMPLATES.TemplateResponse(request, name, {
        "t": translator(lang), "lang": lang, "user": principal, "csrf_field": CSRF_FIELD,
        "csrf_token": principal.csrf_token if principal else context.pop("login_csrf", ""), **context,
    }, status_code=status_code)
    if request.query_params.get("lang") in ("zh", "en"):
        response.set_cookie(LANG_COOKIE, lang, max_age=365 * 86400, samesite="lax", httponly=True)
    return response
