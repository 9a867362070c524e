"""Acceptance (security finding 1): no camera password is readable by another local user while a camera is
registered (its stream checked by ffprobe) and recorded (ffmpeg), and the loopback relay the children use
serves only this uid. Every child's ``/proc/<pid>/cmdline`` is read as ``nobody``, its environment as its owner.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
from pathlib import Path
from urllib.parse import quote

import pytest
import yaml
from jifang.sim.camera import SimCamera
from sqlalchemy import select

from jifang.crypto import SecretBox
from jifang.db.models import AuditEntry

from .agent import REPO, Agent, wait_for

pytestmark = pytest.mark.integration
GRID = "331002001001001"
CAMERA = "33100200001320000011"
PASSWORD = "Relay-S3cret!pw"
FORMS = (PASSWORD.encode(), quote(PASSWORD, safe="").encode())
NOBODY = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]


def as_nobody(*command: str, timeout: float = 30) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([*NOBODY, *command], capture_output=True, timeout=timeout, check=False)


class ChildWatcher:
    """Polls /proc for every descendant of ``root`` and reads what another user could read of it."""

    def __init__(self, root: int) -> None:
        self.root = root
        self.seen: dict[int, dict[str, bytes | bool]] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> ChildWatcher:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join(10)

    def _descendants(self) -> list[int]:
        parents: dict[int, int] = {}
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                try:
                    stat = (entry / "stat").read_text()
                except OSError:
                    continue
                parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
        found, frontier = [], [self.root]
        while frontier:
            parent = frontier.pop()
            children = [pid for pid, ppid in parents.items() if ppid == parent]
            found += children
            frontier += children
        return found

    def _run(self) -> None:
        while not self._stop.wait(0.02):
            for pid in self._descendants():
                if pid in self.seen:
                    continue
                cmdline = as_nobody("cat", f"/proc/{pid}/cmdline")
                environ_by_nobody = as_nobody("cat", f"/proc/{pid}/environ")
                try:
                    environ = Path(f"/proc/{pid}/environ").read_bytes()
                except OSError:
                    environ = b""
                if cmdline.returncode != 0:  # already gone: try again if it shows up once more
                    continue
                self.seen[pid] = {"cmdline": cmdline.stdout, "environ": environ,
                                  "environ_by_nobody": environ_by_nobody.returncode == 0 and
                                  bool(environ_by_nobody.stdout)}


def check_no_secret(watcher: ChildWatcher, program: str) -> list[bytes]:
    lines = [info["cmdline"] for info in watcher.seen.values()
             if Path(info["cmdline"].split(b"\0")[0].decode()).name == program]  # type: ignore[union-attr]
    assert lines, f"no {program} child was seen: {[i['cmdline'] for i in watcher.seen.values()]}"
    for info in watcher.seen.values():
        for form in FORMS:  # as typed, and as it appears inside a URL
            assert form not in info["cmdline"], info["cmdline"]  # type: ignore[operator]
            assert form not in info["environ"], info["cmdline"]  # type: ignore[operator]
        assert info["environ_by_nobody"] is False
    return lines  # type: ignore[return-value]


@pytest.fixture
def site(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    if shutil.which("setpriv") is None or os.getuid() != 0:
        pytest.fail("this test reads /proc as another uid: it needs setpriv (util-linux) and to run as root")
    tmp_path.chmod(0o755)  # nobody runs ffprobe from here
    config = tmp_path / "jifang.yaml"
    config.write_text(yaml.safe_dump({
        "version": 1, "database": {"url": f"sqlite:///{tmp_path / 'jifang.db'}"},
        "storage": {"kind": "filesystem", "path": str(tmp_path / "store")},
        "recorder": {"segment_seconds": 2, "spool_dir": str(tmp_path / "spool")},
        "grids": [{"code": GRID, "name": "g"}], "cameras": [],
    }))
    env = {**os.environ, "JIFANG_REGISTRY_KEY": SecretBox.new_key(), "CAM_PW": PASSWORD}
    return config, env


def test_no_camera_password_in_any_child_while_registering_and_recording(site) -> None:  # type: ignore[no-untyped-def]
    config, env = site
    grid = subprocess.run([sys.executable, "-m", "jifang.cli", "grid", "add", "--config", str(config), "--code", GRID,
                           "--name", "g"], capture_output=True, text=True, cwd=REPO, env=env, timeout=120)
    assert grid.returncode == 0, grid.stderr
    with SimCamera(path="gate", user="admin", password=PASSWORD) as camera:
        add = subprocess.Popen(
            [sys.executable, "-m", "jifang.cli", "camera", "add", "--config", str(config), "--rtsp-url", camera.url,
             "--user", "admin", "--password-env", "CAM_PW", "--id", CAMERA, "--name", "gate", "--grid", GRID,
             "--tier", "important"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO, env=env)
        with ChildWatcher(add.pid) as onboarding:
            out, err = add.communicate(timeout=120)
        assert add.returncode == 0, out + err
        assert PASSWORD not in out + err
        check_no_secret(onboarding, "ffprobe")  # the stream check of the registration
        with Agent(config).catalog().session() as session:  # the CLI registration is audited, in its grid
            added = session.scalars(select(AuditEntry).where(AuditEntry.action == "camera_add")).all()
        assert [(e.target, e.grid) for e in added] == [(f"camera {CAMERA}", GRID)]

        agent = Agent(config, env=env)
        agent.start()
        try:
            with ChildWatcher(agent.process.pid) as recording:  # type: ignore[union-attr]
                ok = wait_for(lambda: agent.metric("jifang_segments_uploaded_total", camera=CAMERA) >= 1, 60)
                assert ok, agent.log()
                assert wait_for(lambda: any(b"ffmpeg" in i["cmdline"] for i in recording.seen.values()), 10)
            ffmpeg = check_no_secret(recording, "ffmpeg")[0].split(b"\0")
            relay_url = ffmpeg[ffmpeg.index(b"-i") + 1].decode()
            assert relay_url.startswith("rtsp://127.0.0.1:") and "@" not in relay_url

            # the token in the argv is no key: the relay serves only the agent's own uid
            probe = ["ffprobe", "-v", "error", "-rtsp_transport", "tcp", "-timeout", "5000000", "-show_entries",
                     "stream=codec_name", "-of", "json", relay_url]
            stolen = as_nobody(*probe)
            assert stolen.returncode != 0 and b"h264" not in stolen.stdout
            own = subprocess.run(probe, capture_output=True, timeout=30, check=False)
            assert own.returncode == 0 and json.loads(own.stdout)["streams"][0]["codec_name"] == "h264", own.stderr
        finally:
            assert agent.stop() == 0
        assert PASSWORD not in agent.log()
        assert "RTSP relay: refused a connection from another user" in agent.log()
