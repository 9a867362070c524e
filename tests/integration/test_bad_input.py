"""Acceptance: a wrong RTSP password and an unreachable MinIO at start are reported clearly, exit 2, and
leave nothing behind."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import pytest
from jifang.sim.camera import SimCamera

from .agent import CAMERA, REPO, Agent, wait_for, write_config

pytestmark = pytest.mark.integration


def edge_run(config: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    import os

    return subprocess.run([sys.executable, "-m", "jifang.cli", "edge", "run", "--config", str(config),
                           "--metrics-port", "0"], capture_output=True, text=True, timeout=120, cwd=REPO,
                          env={**os.environ, **(env or {})})


def test_wrong_rtsp_password_is_a_401(tmp_path: Path) -> None:
    with SimCamera(path="cam1", user="admin", password="right-password") as camera:
        config = write_config(tmp_path / "site", camera.url, username="admin", password_env="CAM_PW")
        done = edge_run(config, {"CAM_PW": "wrong-password"})
    assert done.returncode == 2
    last = done.stderr.strip().splitlines()[-1]
    assert last == ("jifang: error: camera 33100200001320000001: RTSP 401 unauthorized — "
                    "check the user name and password")
    assert "wrong-password" not in done.stderr + done.stdout
    assert sorted(p.name for p in (tmp_path / "site").iterdir()) == ["jifang.yaml"]


def test_right_rtsp_password_records(tmp_path: Path) -> None:
    with SimCamera(path="cam1", user="admin", password="right-password") as camera:
        from .agent import Agent, wait_for

        agent = Agent(write_config(tmp_path, camera.url, username="admin", password_env="CAM_PW"),
                      env={"CAM_PW": "right-password"}).start()
        ok = wait_for(lambda: agent.metric("jifang_segments_uploaded_total", camera="33100200001320000001") >= 1, 40)
        assert agent.stop() == 0
        assert ok, agent.log()
        assert "right-password" not in agent.log()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_unreachable_minio_at_start_warns_and_records_into_the_spool(tmp_path: Path, sim_camera: SimCamera) -> None:
    endpoint = f"127.0.0.1:{free_port()}"
    config = write_config(tmp_path / "site", sim_camera.url, s3_endpoint=endpoint, connect_retries=2)
    agent = Agent(config).start()  # the spool exists for exactly this: a store outage must not stop recording
    try:
        assert wait_for(lambda: agent.metric("jifang_segments_recorded_total", camera=CAMERA) >= 1, 60), agent.log()
        assert any(f"object store {endpoint} unreachable" in line and "uploads start as soon as it answers" in line
                   for line in agent.output), agent.log()
        assert "Traceback" not in agent.log()
        assert list((tmp_path / "site" / "spool" / "segments").glob("*/*.mp4"))
    finally:
        agent.kill()


def test_unset_camera_password_variable(tmp_path: Path) -> None:
    config = write_config(tmp_path / "site", "rtsp://127.0.0.1:9/x", username="admin", password_env="NOT_SET_PW")
    done = edge_run(config)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines()[-1] == (
        "jifang: error: camera 33100200001320000001 password: environment variable NOT_SET_PW is not set")
