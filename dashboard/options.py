"""Options of the dashboard that are not part of the shared configuration file."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

from jifang.edge.onboarding import PRIVATE_NETWORKS

ROLES = ("admin", "technician", "supervisor", "grid_worker")
SCOPED_ROLES = ("supervisor", "grid_worker")


@dataclass(frozen=True)
class DashboardOptions:
    secure_cookies: bool = False  # set when the dashboard is served over https (directly or behind a proxy)
    session_idle: timedelta = timedelta(hours=2)
    session_max: timedelta = timedelta(hours=12)
    login_failures_per_user: int = 5  # failed logins per user name and address within the window -> 429
    login_failures_per_ip: int = 30  # failed logins per address within the window, whatever the user name
    login_window: timedelta = timedelta(minutes=15)
    footage_grant_seconds: int = 300  # how long a footage grant (playlist and segment URLs) stays valid
    page_size: int = 50
    inbox_count_cap: int = 10_000  # the inbox counts at most this many matching incidents (then shows "N+")
    compliance_refresh_seconds: float = 60.0  # the compliance audit is recomputed in the background this often
    scope_cache_seconds: float = 10.0  # how long the grid/area tree behind scopes is cached (scope checks)
    snapshot_cache_seconds: float = 4.0  # how long a camera's live snapshot (last frame) is cached
    metrics_token: str | None = field(default=None, repr=False)  # when set, /metrics needs "Bearer <token>"
    allowed_hosts: tuple[str, ...] = ()  # when set, other Host headers get 400 (no DNS rebinding)
    # networks whose addresses camera registration may probe (edge.onboarding.PRIVATE_NETWORKS by default)
    camera_networks: tuple[str, ...] = PRIVATE_NETWORKS
