"""Acceptance (fleet): two edge agents share four cameras through leases in PostgreSQL; when one is
SIGKILLed the other records its cameras again within two lease periods, the hole is in the gap ledger, and
no camera is ever recorded twice."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from pathlib import Path

import pytest
import sqlalchemy
import yaml
from jifang.sim.camera import SimCamera

from .agent import Agent, wait_for

pytestmark = pytest.mark.integration
LEASE = 6
CAMERAS = [f"3310020000132000001{i}" for i in range(4)]
GRID = "331002001001001"


def config(folder: Path, url: str, pg_url: str) -> Path:
    folder.mkdir(parents=True)
    path = folder / "jifang.yaml"
    path.write_text(yaml.safe_dump({
        "version": 1, "site": "jiaojiang", "database": {"url": pg_url},
        "storage": {"kind": "filesystem", "path": str(folder.parent / "store")},
        "recorder": {"segment_seconds": 2, "spool_dir": str(folder / "spool"), "lease_seconds": LEASE},
        "grids": [{"code": GRID, "name": "g"}],
        "cameras": [{"id": c, "name": c[-2:], "grid": GRID, "tier": "general", "rtsp_url": url} for c in CAMERAS],
    }))
    return path


def owners(engine: sqlalchemy.Engine) -> dict[str, str]:
    with engine.connect() as conn:
        return dict(conn.execute(sqlalchemy.text("SELECT camera_id, agent_id FROM camera_leases")).all())


def test_two_agents_share_cameras_and_fail_over(tmp_path: Path, sim_camera: SimCamera, pg_url: str) -> None:
    engine = sqlalchemy.create_engine(pg_url)
    first = Agent(config(tmp_path / "a", sim_camera.url, pg_url), env={"JIFANG_AGENT_ID": "edge-a"}).start()
    second = Agent(config(tmp_path / "b", sim_camera.url, pg_url), env={"JIFANG_AGENT_ID": "edge-b"}).start()
    try:
        def balanced() -> bool:
            held = list(owners(engine).values())
            return len(held) == 4 and held.count("edge-a") == 2 and held.count("edge-b") == 2

        assert wait_for(balanced, 6 * LEASE), owners(engine)
        time.sleep(2 * LEASE)  # record a while on both
        orphaned = [c for c, agent in owners(engine).items() if agent == "edge-a"]
        first.kill()
        killed = datetime.now(UTC)
        assert wait_for(lambda: set(owners(engine).values()) == {"edge-b"}, 2 * LEASE, interval=0.2), owners(engine)
        taken_over = (datetime.now(UTC) - killed).total_seconds()
        assert taken_over <= 2 * LEASE

        def recorded_again() -> bool:
            catalog = second.catalog()
            return all(any(row.start_at > killed for row in catalog.segments(c)) for c in orphaned)

        assert wait_for(recorded_again, 20), f"{second.log()}\n{sim_camera.health()}"
        assert second.stop() == 0, second.log()
    finally:
        for agent in (first, second):
            if agent.process and agent.process.poll() is None:
                agent.kill()
    catalog = second.catalog()
    for camera in CAMERAS:
        rows = catalog.segments(camera)
        overlaps = [(a.key, b.key) for a, b in pairwise(rows) if b.start_at < a.end_at - timedelta(seconds=1)]
        assert overlaps == [], f"camera {camera} recorded twice: {overlaps}"
    for camera in orphaned:
        gaps = [g for g in catalog.gaps(camera) if g.end_at and g.start_at <= killed + timedelta(seconds=2)]
        assert gaps, f"the failover hole of {camera} is not in the gap ledger"
        assert (gaps[-1].end_at - gaps[-1].start_at).total_seconds() <= 2 * LEASE + 10
    engine.dispose()
