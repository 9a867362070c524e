"""The demo's dashboard: demo users (one per role, passwords generated and written to a private file) and
the web app served on 127.0.0.1 in the demo's process."""

from __future__ import annotations

import os
import secrets
import socket
import threading
from datetime import UTC, datetime
from pathlib import Path

from jifang.config import Settings
from jifang.db import Catalog

DEMO_USERS = (("admin", "admin", ""), ("tech", "technician", ""), ("supervisor", "supervisor", "{grid}"),
              ("worker", "grid_worker", "{grid}"))


def demo_users(catalog: Catalog, data: Path, grid: str) -> list[tuple[str, str, str]]:
    """Create the demo users once; returns (user, role, password) from DATA/demo-users.txt (mode 600)."""
    from jifang.dashboard.users import Users

    file = data / "demo-users.txt"
    if file.exists():
        return [tuple(line.split("\t")) for line in file.read_text(encoding="utf-8").splitlines()]  # type: ignore[misc]
    users = Users(catalog)
    rows = []
    for name, role, scope in DEMO_USERS:
        password = secrets.token_urlsafe(9)
        users.add(name, password, role, scope.format(grid=grid), datetime.now(UTC), "demo")
        rows.append((name, role, password))
    fd = os.open(file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write("".join(f"{name}\t{role}\t{password}\n" for name, role, password in rows))
    return rows


def serve_dashboard(settings: Settings, port: int = 8080) -> tuple[str, object]:
    """Serve the dashboard on 127.0.0.1 in a thread; returns its URL and the server (to stop it)."""
    import uvicorn
    from jifang.dashboard.app import create_app
    from jifang.dashboard.options import DashboardOptions

    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    # the demo's points are minutes old: a compliance audit every 15 s lets its supervisor watch the window grow
    app = create_app(settings, options=DashboardOptions(compliance_refresh_seconds=15), warm_compliance=True)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", server_header=False))
    threading.Thread(target=server.run, name="dashboard", daemon=True).start()
    return f"http://127.0.0.1:{port}/", server
