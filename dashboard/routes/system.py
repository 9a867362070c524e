"""Health, metrics and the home page."""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response
from jifang.dashboard.security import current_principal
from jifang.dashboard.state import state_of
from jifang.dashboard.users import Principal
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import text

from jifang.tiers import MediaKind

router = APIRouter()
HOME = {"admin": "/incidents", "technician": "/cameras", "supervisor": "/retention", "grid_worker": "/incidents"}


@router.get("/", include_in_schema=False)
def home(principal: Annotated[Principal, Depends(current_principal)]) -> RedirectResponse:
    return RedirectResponse(HOME[principal.role], status_code=303)


@router.get("/healthz", tags=["system"])
def healthz(request: Request) -> JSONResponse:
    """Database and object store reachable (no details that could leak configuration)."""
    state = state_of(request)
    checks = {}
    try:
        with state.catalog.session() as session:
            session.execute(text("SELECT 1"))
        checks["database"] = "ok"
    except Exception:
        checks["database"] = "unreachable"
    try:
        state.store.stat(MediaKind.VIDEO, "healthz/probe")
        checks["store"] = "ok"
    except Exception:
        checks["store"] = "unreachable"
    healthy = all(v == "ok" for v in checks.values())
    return JSONResponse({"status": "ok" if healthy else "failing", **checks}, status_code=200 if healthy else 503)


@router.get("/metrics", tags=["system"])
def metrics(request: Request) -> Response:
    token = state_of(request).options.metrics_token
    if token:  # the counters (logins, footage views) are not for everyone who can reach the port
        sent = request.headers.get("authorization", "")
        if not hmac.compare_digest(sent.encode(), f"Bearer {token}".encode()):
            return Response("bearer token required\n", status_code=401, headers={"www-authenticate": "Bearer"})
    return Response(generate_latest(state_of(request).metrics.metrics_registry), media_type=CONTENT_TYPE_LATEST)
