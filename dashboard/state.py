"""What every request needs: settings, catalog, store, clock, users and the footage signer."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from itsdangerous import URLSafeTimedSerializer
from jifang.dashboard.options import DashboardOptions
from jifang.dashboard.users import Users
from prometheus_client import CollectorRegistry, Counter, Histogram
from starlette.requests import Request

from jifang.audit import valid_ip
from jifang.config import Settings
from jifang.db import Catalog
from jifang.registry import Registry, open_registry
from jifang.store import ObjectStore


@dataclass
class Metrics:
    metrics_registry: CollectorRegistry = field(default_factory=CollectorRegistry)  # Prometheus's, not the cameras'

    def __post_init__(self) -> None:
        self.requests = Counter("jifang_dashboard_requests_total", "HTTP requests by route and status",
                                ["method", "route", "status"], registry=self.metrics_registry)
        self.latency = Histogram("jifang_dashboard_request_seconds", "HTTP request latency by route",
                                 ["route"], registry=self.metrics_registry,
                                 buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.5, 1, 2, 5))
        self.logins = Counter("jifang_dashboard_logins_total", "login attempts by outcome", ["outcome"],
                              registry=self.metrics_registry)
        self.footage = Counter("jifang_dashboard_footage_views_total", "footage and image views by kind", ["kind"],
                               registry=self.metrics_registry)


@dataclass
class AppState:
    settings: Settings
    catalog: Catalog
    store: ObjectStore
    clock: Callable[[], datetime]
    options: DashboardOptions
    users: Users
    metrics: Metrics
    # signs footage grants; a new key per process: grants last minutes and die with a restart
    signer: URLSafeTimedSerializer = field(
        default_factory=lambda: URLSafeTimedSerializer(secrets.token_bytes(32), salt="jifang-footage"))
    audit_cache: Any = None  # dashboard.compliance.AuditCache (set by create_app)
    scope_tree: Any = None  # (monotonic time, grid -> village, area -> parent), see dashboard.security
    snapshots: dict = field(default_factory=dict)  # camera id -> (monotonic time, dashboard.live.LiveFrame)
    live_audited: dict = field(default_factory=dict)  # (user id, camera id) -> monotonic time of the audit entry

    def registry(self) -> Registry:
        return open_registry(self.settings, self.catalog)

    def now(self) -> datetime:
        return self.clock()


def state_of(request: Request) -> AppState:
    return request.app.state.jifang  # type: ignore[no-any-return]


def client_ip(request: Request) -> str:
    """The client's address (uvicorn resolved X-Forwarded-For from trusted proxies only), or "-" when it is not
    an IP address: a forged value is neither logged nor used as a login-limit key."""
    return valid_ip(request.client.host if request.client else "") or "-"
