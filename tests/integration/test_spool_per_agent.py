"""Two agents on one machine with one configuration: named agents get a spool each and share the cameras
without a FileNotFoundError or a false gap; a second unnamed agent on the same spool is refused at start with a
clear message."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest
import sqlalchemy
import yaml
from jifang.sim.camera import SimCamera

from .agent import REPO, Agent, wait_for

pytestmark = pytest.mark.integration
GRID = "331002001001001"
CAMERAS = [f"3310020000132000005{i}" for i in range(2)]


def test_two_agents_one_configuration(tmp_path: Path, sim_camera: SimCamera, pg_url: str) -> None:
    config = tmp_path / "jifang.yaml"
    config.write_text(yaml.safe_dump({
        "version": 1, "site": "s1", "database": {"url": pg_url},
        "storage": {"kind": "filesystem", "path": str(tmp_path / "store")},
        "recorder": {"segment_seconds": 2, "spool_dir": str(tmp_path / "spool"), "lease_seconds": 6},
        "grids": [{"code": GRID, "name": "g"}],
        "cameras": [{"id": c, "name": c[-2:], "grid": GRID, "tier": "general", "rtsp_url": sim_camera.url}
                    for c in CAMERAS],
    }))
    first = Agent(config, env={"JIFANG_AGENT_ID": "edge-a"}).start()
    second = Agent(config, env={"JIFANG_AGENT_ID": "edge-b"}).start()
    engine = sqlalchemy.create_engine(pg_url)
    try:
        def owners() -> dict[str, str]:
            with engine.connect() as conn:
                return dict(conn.execute(sqlalchemy.text("SELECT camera_id, agent_id FROM camera_leases")).all())

        assert wait_for(lambda: sorted(owners().values()) == ["edge-a", "edge-b"], 60), owners()
        time.sleep(12)  # several segments on both
        assert (tmp_path / "spool" / "edge-a" / "agent.lock").exists()
        assert (tmp_path / "spool" / "edge-b" / "agent.lock").exists()

        # an unnamed agent would share a spool with another unnamed one: the second is refused
        unnamed = Agent(config).start()
        refused = subprocess.run([sys.executable, "-m", "jifang.cli", "edge", "run", "--config", str(config),
                                  "--metrics-port", "0"], capture_output=True, text=True, cwd=REPO, timeout=120)
        assert refused.returncode == 2, refused.stderr
        assert "is in use by agent" in refused.stderr and "--agent-id" in refused.stderr
        assert "Traceback" not in refused.stderr
        assert unnamed.stop() == 0, unnamed.log()
        assert first.stop() == 0 and second.stop() == 0
        logs = first.log() + second.log() + unnamed.log()
        assert "FileNotFoundError" not in logs and "Traceback" not in logs, logs
        with engine.connect() as conn:
            gaps = conn.execute(sqlalchemy.text("SELECT camera_id, cause FROM gaps WHERE cause = 'camera_offline'")
                                ).all()
        assert gaps == [], gaps
    finally:
        for agent in (first, second):
            if agent.process and agent.process.poll() is None:
                agent.kill()
        engine.dispose()
