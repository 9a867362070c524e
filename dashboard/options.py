"""Options of the dashboard that are not part of the shared configuration file."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

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
