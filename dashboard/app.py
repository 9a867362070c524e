"""The dashboard application: ``create_app(settings)`` wires the catalog, the store, auth and every route."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from jifang.dashboard import compliance
from jifang.dashboard.limits import BodyLimit
from jifang.dashboard.options import DashboardOptions
from jifang.dashboard.routes import audit_log, cameras, footage, incidents, retention, session, system
from jifang.dashboard.security import SESSION_COOKIE, LoginRequired, csrf_protect
from jifang.dashboard.state import AppState, Metrics
from jifang.dashboard.templating import page
from jifang.dashboard.users import Users
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from jifang.config import Settings
from jifang.db import Catalog
from jifang.errors import JifangError
from jifang.registry import open_registry
from jifang.store import ObjectStore, open_store
from jifang.store.base import utc_now

log = logging.getLogger("jifang.dashboard")
STATIC = Path(__file__).with_name("static")
CSP = ("default-src 'self'; img-src 'self' data:; media-src 'self' blob:; style-src 'self'; script-src 'self'; "
       "object-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'")
SECURITY_HEADERS = [(b"x-content-type-options", b"nosniff"), (b"x-frame-options", b"DENY"),
                    (b"referrer-policy", b"same-origin")]
HSTS = b"max-age=31536000"  # one year; no includeSubDomains: other hosts of the domain are not ours to bind


class HeadersAndMetrics:
    """Pure ASGI middleware: security headers on every response, per-route request counts and latency."""

    def __init__(self, app: ASGIApp, metrics: Metrics, hsts: bool = False) -> None:
        self.app = app
        self.metrics = metrics
        self.hsts = hsts  # served over https (--https): browsers must never fall back to plain http

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def wrapped(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = list(message.get("headers", []))
                names = {name.lower() for name, _ in headers}
                headers += [(k, v) for k, v in SECURITY_HEADERS if k not in names]
                if b"content-security-policy" not in names:
                    headers.append((b"content-security-policy", CSP.encode()))
                if self.hsts and b"strict-transport-security" not in names:
                    headers.append((b"strict-transport-security", HSTS))
                if b"cache-control" not in names:
                    headers.append((b"cache-control", b"no-store"))
                message["headers"] = headers
            await send(message)

        try:
            await self.app(scope, receive, wrapped)
        finally:
            route = getattr(scope.get("route"), "path", None) or ("static" if scope["path"].startswith("/static/")
                                                                   else "unmatched")
            self.metrics.requests.labels(scope["method"], route, str(status)).inc()
            self.metrics.latency.labels(route).observe(time.perf_counter() - started)


def wants_json(request: Request) -> bool:
    return request.url.path.startswith("/api/") or request.url.path in ("/healthz",)


def create_app(settings: Settings, clock: Callable[[], datetime] = utc_now, options: DashboardOptions | None = None,
               catalog: Catalog | None = None, store: ObjectStore | None = None,
               warm_compliance: bool = False) -> FastAPI:
    """The app; ``warm_compliance`` starts the first retention audit at startup (``jifang dashboard`` and the
    bench), instead of at the first request that needs it."""
    options = options or DashboardOptions()
    if catalog is None:
        catalog = Catalog(settings.database.url)
        catalog.migrate()
    # the file's grids, teams and cameras enter the registry, which every page reads
    open_registry(settings, catalog).sync(settings, clock())
    store = store or open_store(settings.storage, clock=clock)
    metrics = Metrics()

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        if warm_compliance:
            compliance.start_refresh(state)
        yield

    app = FastAPI(title="jifang dashboard", version="0.1.0", dependencies=[Depends(csrf_protect)],
                  docs_url=None, redoc_url=None, lifespan=lifespan)
    state = AppState(settings=settings, catalog=catalog, store=store, clock=clock, options=options,
                     users=Users(catalog, options), metrics=metrics, audit_cache=compliance.AuditCache())
    app.state.jifang = state
    for module in (system, session, cameras, incidents, footage, retention, audit_log):
        app.include_router(module.router)
    app.mount("/static", StaticFiles(directory=str(STATIC)), name="static")
    if options.allowed_hosts:
        app.add_middleware(TrustedHostMiddleware, allowed_hosts=list(options.allowed_hosts))
    app.add_middleware(BodyLimit, session_cookie=SESSION_COOKIE)  # inside: its 413s get the security headers
    app.add_middleware(HeadersAndMetrics, metrics=metrics, hsts=options.secure_cookies)

    @app.exception_handler(LoginRequired)
    async def login_required(request: Request, _exc: LoginRequired) -> Response:
        if wants_json(request):
            return JSONResponse({"detail": "login required"}, status_code=401)
        return RedirectResponse(f"/login?next={request.url.path}", status_code=303)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> Response:
        if wants_json(request):
            return JSONResponse({"detail": exc.detail}, status_code=exc.status_code, headers=exc.headers)
        return page(request, "error.html", status_code=exc.status_code, detail=str(exc.detail))

    @app.exception_handler(JifangError)
    async def bad_input(request: Request, exc: JifangError) -> Response:
        message = str(exc)
        if wants_json(request):
            return JSONResponse({"detail": message}, status_code=400)
        return page(request, "error.html", status_code=400, detail=message)

    return app


def json_safe(value: Any) -> Any:
    """Datetimes as ISO 8601 strings (for hand-built JSON answers)."""
    return value.isoformat() if isinstance(value, datetime) else value
