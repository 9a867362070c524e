"""Load on the dashboard: concurrent logged-in sessions (loopback only) against the incident inbox and the
compliance API; prints p50/p99 latency and requests/s. Bounded in time (--seconds).

    .venv/bin/python bench/dashboard_bench.py --cameras 1000 --incidents 100000 --users 50 --seconds 20
    (add --db-url postgresql+psycopg2://... for PostgreSQL; default: a SQLite file in a temporary folder)
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import re
import socket
import statistics
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import uvicorn
from sqlalchemy import insert

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dashboard.app import create_app
from dashboard.users import Users
from jifang.config import parse_settings
from jifang.crypto import SecretBox
from jifang.db import Catalog
from jifang.db.models import CameraRow, GridRow, IncidentRow

PASSWORD = "bench-password-123"


def seed(url: str, cameras: int, incidents: int, grids: int) -> list[str]:
    catalog = Catalog(url)
    catalog.migrate()
    now = datetime.now(UTC)
    codes = [f"331002001{g:03d}001" for g in range(grids)]
    with catalog.engine.begin() as conn:
        conn.execute(insert(GridRow), [{"code": c, "name": c, "type": "城市社区", "village": None} for c in codes])
        conn.execute(insert(CameraRow), [{
            "id": f"3310020000132{i:07d}", "name": f"点位{i}", "grid": codes[i % grids], "tier": "general",
            "location": "", "onvif_endpoint": "", "main_rtsp_url": "rtsp://127.0.0.1/x", "sub_rtsp_url": "",
            "snapshot_uri": "", "username": "", "password_encrypted": "", "manufacturer": "", "model": "",
            "firmware": "", "serial": "", "signage": False, "purpose": "", "registered_by": "bench",
            "registered_at": now - timedelta(days=1), "enabled": True, "status": "online", "status_detail": ""}
            for i in range(cameras)])
        for start in range(0, incidents, 10_000):
            conn.execute(insert(IncidentRow), [{
                "category": "案事件", "subcategory": "治安刑事案件", "gbt31000_code": None, "grid": codes[i % grids],
                "camera_id": f"3310020000132{i % cameras:07d}", "occurred_at": now - timedelta(seconds=i * 30),
                "kind": "plate", "summary": f"bench {i}", "details": json.dumps({}), "state": "上报",
                "created_at": now} for i in range(start, min(incidents, start + 10_000))])
    users = Users(catalog)
    users.add("bench-admin", PASSWORD, "admin", "", now, "bench")
    for g, code in enumerate(codes):
        users.add(f"bench-sup{g}", PASSWORD, "supervisor", code, now, "bench")
    return codes


async def session_loop(base: str, username: str, deadline: float, samples: list[tuple[str, float, int]]) -> None:
    async with httpx.AsyncClient(base_url=base, timeout=30) as client:
        page = await client.get("/login")
        token = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)  # type: ignore[union-attr]
        await client.post("/login", data={"username": username, "password": PASSWORD, "csrf_token": token})
        while time.monotonic() < deadline:
            path = random.choice(["/api/incidents", "/api/incidents?state=上报&page=2", "/api/retention/compliance"])
            started = time.perf_counter()
            response = await client.get(path)
            samples.append((path.split("?")[0], time.perf_counter() - started, response.status_code))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cameras", type=int, default=1000)
    parser.add_argument("--incidents", type=int, default=100_000)
    parser.add_argument("--grids", type=int, default=50)
    parser.add_argument("--users", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--workers", type=int, default=1, help="uvicorn worker threads are not forked: one process")
    parser.add_argument("--db-url", default=None)
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="jifang-dashboard-bench-"))
    url = args.db_url or f"sqlite:///{folder / 'bench.db'}"
    os.environ.setdefault("JIFANG_REGISTRY_KEY", SecretBox.new_key())
    started = time.monotonic()
    codes = seed(url, args.cameras, args.incidents, args.grids)
    print(f"seeded {args.cameras} cameras, {args.incidents} incidents, {len(codes)} grids in "
          f"{time.monotonic() - started:.1f} s ({url.split('://')[0]})")
    settings = parse_settings({"version": 1, "database": {"url": url},
                               "storage": {"kind": "filesystem", "path": str(folder / "store")}}, "bench", environ={})
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(create_app(settings), host="127.0.0.1", port=port, log_level="warning"))
    threading.Thread(target=server.run, daemon=True).start()
    while not server.started:
        time.sleep(0.05)
    samples: list[tuple[str, float, int]] = []
    users = [f"bench-sup{i % len(codes)}" if i % 10 else "bench-admin" for i in range(args.users)]
    deadline = time.monotonic() + args.seconds

    async def run() -> None:
        await asyncio.gather(*(session_loop(f"http://127.0.0.1:{port}", u, deadline, samples) for u in users))

    began = time.monotonic()
    asyncio.run(run())
    elapsed = time.monotonic() - began
    server.should_exit = True
    errors = sum(1 for _, _, status in samples if status != 200)
    print(f"{args.users} sessions, {elapsed:.1f} s, {len(samples)} requests, {len(samples) / elapsed:.0f} req/s, "
          f"{errors} errors")
    for path in sorted({p for p, _, _ in samples}):
        times = sorted(t for p, t, _ in samples if p == path)
        p99 = times[min(len(times) - 1, int(len(times) * 0.99))]
        print(f"  {path:32s} n={len(times):6d} p50={statistics.median(times) * 1000:7.1f} ms "
              f"p99={p99 * 1000:7.1f} ms")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
