"""Load on the dashboard: concurrent logged-in sessions (loopback only) against the incident inbox and the
compliance API; prints p50/p99 latency per endpoint, requests/s and the CPU each side used. Bounded in time.

The server runs in its own process(es) (--workers), apart from the load generator, as in production; the
compliance audit refreshes in the background every --audit-refresh seconds during the run. Users send requests
back to back (--think-ms 0, the harshest case: latency is then mostly queueing once the CPUs are saturated) or
pause about --think-ms between requests.

    .venv/bin/python bench/dashboard_bench.py --cameras 1000 --incidents 100000 --users 50 --seconds 30 \
        --db-url 'postgresql+psycopg2://jifang:jifang@127.0.0.1:5432/jifang_test?options=-csearch_path%3Dbench'
    (the schema must exist and be empty; default database: a SQLite file in a temporary folder)
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import random
import re
import resource
import socket
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import uvicorn
from sqlalchemy import insert, text

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from jifang.dashboard.app import create_app
from jifang.dashboard.options import DashboardOptions
from jifang.dashboard.users import Users

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
    if catalog.engine.dialect.name == "postgresql":  # what autovacuum does soon after a bulk load
        with catalog.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("VACUUM ANALYZE incidents"))
            conn.execute(text("ANALYZE"))
    users = Users(catalog)
    users.add("bench-admin", PASSWORD, "admin", "", now, "bench")
    for g, code in enumerate(codes):
        users.add(f"bench-sup{g}", PASSWORD, "supervisor", code, now, "bench")
    return codes


async def login(client: httpx.AsyncClient, username: str) -> None:
    page = await client.get("/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)  # type: ignore[union-attr]
    response = await client.post("/login", data={"username": username, "password": PASSWORD, "csrf_token": token})
    assert response.status_code in (200, 303), response.status_code


async def session_loop(client: httpx.AsyncClient, measure_from: float, deadline: float, think: float,
                       samples: list[tuple[str, float, int]]) -> None:
    """Requests back to back (or with a random pause around ``think``) until ``deadline``; only those started
    after ``measure_from`` (the end of the warm-up) are recorded. With a pause, users start staggered."""
    if think:
        await asyncio.sleep(random.uniform(0, think))
    while time.monotonic() < deadline:
        path = random.choice(["/api/incidents", "/api/incidents?state=上报&page=2", "/api/retention/compliance"])
        measured = time.monotonic() >= measure_from
        started = time.perf_counter()
        response = await client.get(path)
        if measured:
            samples.append((path.split("?")[0], time.perf_counter() - started, response.status_code))
        if think:
            await asyncio.sleep(random.uniform(0.5, 1.5) * think)


def cpu_seconds(who: int) -> float:
    usage = resource.getrusage(who)
    return usage.ru_utime + usage.ru_stime


def serve(url: str, folder: Path, sock: socket.socket, refresh: float) -> None:
    """One server process (forked): the app on the shared listening socket."""
    settings = parse_settings({"version": 1, "database": {"url": url},
                               "storage": {"kind": "filesystem", "path": str(folder / "store")}}, "bench", environ={})
    server = uvicorn.Server(uvicorn.Config(create_app(
        settings, options=DashboardOptions(compliance_refresh_seconds=refresh), warm_compliance=True),
        log_level="warning"))
    server.run(sockets=[sock])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cameras", type=int, default=1000)
    parser.add_argument("--incidents", type=int, default=100_000)
    parser.add_argument("--grids", type=int, default=50)
    parser.add_argument("--users", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--workers", type=int, default=1,
                        help="server processes (forked, sharing one socket); the load generator is another process")
    parser.add_argument("--warmup", type=float, default=3,
                        help="seconds of load before measuring (connection pools, threads)")
    parser.add_argument("--audit-refresh", type=float, default=10,
                        help="seconds between the background compliance audits (the dashboard's default is 60; "
                        "shorter here so that refreshes fall inside the measured window)")
    parser.add_argument("--think-ms", type=float, default=0,
                        help="mean pause of each user between requests (0: back to back, the harshest case)")
    parser.add_argument("--db-url", default=None, help="catalog URL (default: a SQLite file in a temporary folder); "
                        "for PostgreSQL give a private schema, e.g. ...?options=-csearch_path%%3Dbench")
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="jifang-dashboard-bench-"))
    url = args.db_url or f"sqlite:///{folder / 'bench.db'}"
    os.environ.setdefault("JIFANG_REGISTRY_KEY", SecretBox.new_key())
    started = time.monotonic()
    codes = seed(url, args.cameras, args.incidents, args.grids)
    print(f"seeded {args.cameras} cameras, {args.incidents} incidents, {len(codes)} grids in "
          f"{time.monotonic() - started:.1f} s ({url.split('://')[0]})")
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(1024)
    port = sock.getsockname()[1]
    context = multiprocessing.get_context("fork")
    servers = [context.Process(target=serve, args=(url, folder, sock, args.audit_refresh),
                                  daemon=True) for _ in range(args.workers)]
    for process in servers:
        process.start()
    samples: list[tuple[str, float, int]] = []
    users = [f"bench-sup{i % len(codes)}" if i % 10 else "bench-admin" for i in range(args.users)]

    async def run() -> float:
        limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
        clients = [httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30, limits=limits) for _ in users]
        for _ in range(600):  # until the servers answer
            try:
                if (await clients[0].get("/healthz")).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.1)
        await asyncio.gather(*(login(c, u) for c, u in zip(clients, users, strict=True)))
        warm = [await c.get("/api/retention/compliance") for c in clients[:1]]  # waits for the first audit
        assert warm[0].status_code == 200, warm[0].text
        began = time.monotonic() + args.warmup
        deadline = began + args.seconds
        await asyncio.gather(*(session_loop(c, began, deadline, args.think_ms / 1000, samples) for c in clients))
        elapsed = time.monotonic() - began
        for c in clients:
            await c.aclose()
        return elapsed

    client_cpu = cpu_seconds(resource.RUSAGE_SELF)
    elapsed = asyncio.run(run())
    client_cpu = cpu_seconds(resource.RUSAGE_SELF) - client_cpu
    for process in servers:
        process.terminate()
        process.join(10)
    server_cpu = cpu_seconds(resource.RUSAGE_CHILDREN)  # the whole life of the server processes, startup included
    errors = sum(1 for _, _, status in samples if status != 200)
    print(f"{args.users} sessions, {args.workers} server process(es), think {args.think_ms:.0f} ms, "
          f"warm-up {args.warmup:.0f} s, "
          f"{elapsed:.1f} s, {len(samples)} requests, {len(samples) / elapsed:.0f} req/s, "
          f"{errors} errors")
    print(f"  CPU: load generator {client_cpu:.1f} s, server {server_cpu:.1f} s "
          f"({server_cpu / max(1, len(samples)) * 1000:.1f} ms per request at most), on {os.cpu_count()} CPUs")
    for path in sorted({p for p, _, _ in samples}):
        times = sorted(t for p, t, _ in samples if p == path)
        p99 = times[min(len(times) - 1, int(len(times) * 0.99))]
        print(f"  {path:32s} n={len(times):6d} p50={statistics.median(times) * 1000:7.1f} ms "
              f"p99={p99 * 1000:7.1f} ms")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
