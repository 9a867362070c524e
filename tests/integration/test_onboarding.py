"""Acceptance: a technician probes and registers a simulated ONVIF camera; bad cameras are refused with a
specific message and nothing registered; the edge agent then records the registered camera."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from jifang.sim.camera import SimCamera

from jifang.crypto import SecretBox

from .agent import REPO, Agent, wait_for

pytestmark = pytest.mark.integration
GRID = "331002001001001"
CAMERA = "33100200001320000007"


@pytest.fixture
def site(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    config = tmp_path / "jifang.yaml"
    config.write_text(yaml.safe_dump({
        "version": 1, "database": {"url": f"sqlite:///{tmp_path / 'jifang.db'}"},
        "storage": {"kind": "filesystem", "path": str(tmp_path / "store")},
        "recorder": {"segment_seconds": 2, "spool_dir": str(tmp_path / "spool")},
        "grids": [], "cameras": [],
    }))
    env = {**os.environ, "JIFANG_REGISTRY_KEY": SecretBox.new_key(), "CAM_PW": "Cam3ra!pw"}
    return config, env


def jifang(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "jifang.cli", *args], capture_output=True, text=True, cwd=REPO,
                          env=env, timeout=120)


def test_probe_register_and_record(site) -> None:  # type: ignore[no-untyped-def]
    config, env = site
    with SimCamera(path="gate", user="admin", password="Cam3ra!pw", onvif_port=0) as camera:
        endpoint = f"127.0.0.1:{camera.onvif_port}"
        probed = jifang(env, "camera", "probe", endpoint, "--user", "admin", "--password-env", "CAM_PW", "--json")
        assert probed.returncode == 0, probed.stderr
        info = json.loads(probed.stdout)
        assert info["main_stream_uri"] == camera.url
        assert abs(info["clock_offset_seconds"]) < 2

        grid = jifang(env, "grid", "add", "--config", str(config), "--code", GRID, "--name", "东山社区第一网格")
        assert grid.returncode == 0, grid.stderr
        refused = jifang(env, "camera", "add", "--config", str(config), "--from-probe", endpoint, "--user", "admin",
                         "--password-env", "CAM_PW", "--id", CAMERA, "--name", "东门", "--grid", GRID, "--tier", "key")
        assert refused.returncode == 2 and "needs signage posted" in refused.stderr
        added = jifang(env, "camera", "add", "--config", str(config), "--from-probe", endpoint, "--user", "admin",
                       "--password-env", "CAM_PW", "--id", CAMERA, "--name", "东门", "--grid", GRID, "--tier", "key",
                       "--signage", "yes", "--purpose", "出入口通行记录", "--by", "tech1")
        assert added.returncode == 0, added.stderr
        listed = json.loads(jifang(env, "camera", "list", "--config", str(config), "--json").stdout)
        assert [(c["id"], c["tier"], c["main_rtsp_url"], c["registered_by"]) for c in listed] == [
            (CAMERA, "key", camera.url, "tech1")]
        assert "Cam3ra!pw" not in (config.parent / "jifang.db").read_bytes().decode("latin-1")

        # the edge agent records the registered camera with its decrypted password
        agent = Agent(config, env={"JIFANG_REGISTRY_KEY": env["JIFANG_REGISTRY_KEY"]}).start()
        ok = wait_for(lambda: agent.metric("jifang_segments_uploaded_total", camera=CAMERA) >= 2, 40)
        assert agent.stop() == 0
        assert ok, agent.log()
        assert "Cam3ra!pw" not in agent.log()
        listed = json.loads(jifang(env, "camera", "list", "--config", str(config), "--json").stdout)
        assert listed[0]["status"] == "online"


@pytest.mark.parametrize("case", ["wrong_password", "unreachable", "not_onvif", "clock_offset"])
def test_bad_cameras_are_refused_with_specific_messages(site, case: str) -> None:  # type: ignore[no-untyped-def]
    config, env = site
    assert jifang(env, "grid", "add", "--config", str(config), "--code", GRID, "--name", "g").returncode == 0
    offset = 300.0 if case == "clock_offset" else 0.0
    with SimCamera(path="cam", user="admin", password="Cam3ra!pw", onvif_port=0, clock_offset_seconds=offset) as cam:
        endpoint = f"127.0.0.1:{cam.onvif_port}"
        if case == "wrong_password":
            env = {**env, "CAM_PW": "wrong"}
        elif case == "unreachable":
            cam.stop()
        elif case == "not_onvif":
            endpoint = "127.0.0.1:1"  # replaced below by a plain HTTP server
        if case == "not_onvif":
            server = subprocess.Popen([sys.executable, "-m", "http.server", "--bind", "127.0.0.1", "0"],
                                      stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=config.parent)
            line = server.stdout.readline()
            endpoint = "127.0.0.1:" + line.split("port ")[1].split()[0]
        try:
            done = jifang(env, "camera", "add", "--config", str(config), "--from-probe", endpoint, "--user", "admin",
                          "--password-env", "CAM_PW", "--id", CAMERA, "--name", "x", "--grid", GRID,
                          "--tier", "important")
        finally:
            if case == "not_onvif":
                server.terminate()
    expected = {"wrong_password": "401", "unreachable": "connection refused", "not_onvif": "ONVIF",
                "clock_offset": "clock is +300 s off"}[case]
    assert done.returncode == 2, done.stdout + done.stderr
    message = done.stderr.strip().splitlines()[-1]
    assert message.startswith("jifang: error: ") and expected in message, message
    assert "Cam3ra!pw" not in done.stderr
    assert json.loads(jifang(env, "camera", "list", "--config", str(config), "--json").stdout) == []


def test_discovery_finds_two_cameras_and_marks_the_registered_one(site) -> None:  # type: ignore[no-untyped-def]
    config, env = site
    assert jifang(env, "grid", "add", "--config", str(config), "--code", GRID, "--name", "g").returncode == 0
    with SimCamera(path="a", onvif_port=0, discovery_port=0) as first, \
            SimCamera(path="b", onvif_port=0, discovery_port=0) as second:
        env = {**env, "ADMIN_PW": "admin"}
        added = jifang(env, "camera", "add", "--config", str(config), "--from-probe", f"127.0.0.1:{first.onvif_port}",
                       "--user", "admin", "--password-env", "ADMIN_PW", "--id", CAMERA, "--name", "a", "--grid", GRID,
                       "--tier", "general")
        assert added.returncode == 0, added.stderr
        found = jifang(env, "camera", "discover", "--no-multicast", "--timeout", "2", "--config", str(config), "--json",
                       "--host", f"127.0.0.1:{first.discovery_port}", "--host", f"127.0.0.1:{second.discovery_port}")
    assert found.returncode == 0, found.stderr
    devices = {d["endpoint"]: d["registered"] for d in json.loads(found.stdout)}
    assert devices == {f"127.0.0.1:{first.onvif_port}": True, f"127.0.0.1:{second.onvif_port}": False}
