"""Simulated cameras: a real GStreamer RTSP server (H.264) serving a test pattern or a looped video file.

The server needs Debian's GStreamer Python bindings (``python3-gi``, ``gir1.2-gst-rtsp-server-1.0``), which
live in the system interpreter, not in a virtualenv, so it runs as a subprocess of ``/usr/bin/python3``.
"""

from __future__ import annotations

import collections
import os
import shutil
import subprocess
import threading
from dataclasses import dataclass, field
from pathlib import Path

from jifang.errors import JifangError

SERVER_SCRIPT = Path(__file__).with_name("gst_rtsp_server.py")
SYSTEM_PYTHON = os.environ.get("JIFANG_GST_PYTHON", "/usr/bin/python3")
PASSWORD_ENV = "JIFANG_SIMCAM_PASSWORD"


class SimCameraError(JifangError):
    """The simulated camera could not start."""


@dataclass
class SimCamera:
    path: str = "cam1"
    port: int = 0
    host: str = "127.0.0.1"
    video: Path | None = None
    pattern: str = "ball"
    width: int = 640
    height: int = 360
    fps: int = 10
    bitrate_kbps: int = 1000
    user: str | None = None
    password: str | None = None
    auth: str = "basic"  # or "digest", like most IP cameras
    onvif_port: int | None = None  # also speak ONVIF on this HTTP port (0: any free port)
    discovery_port: int | None = None  # and answer WS-Discovery probes (unicast) on this UDP port
    clock_offset_seconds: float = 0.0  # the simulated camera's clock error
    url: str = ""
    process: subprocess.Popen | None = field(default=None, repr=False)
    onvif: object | None = field(default=None, repr=False)
    # the server's last words (GStreamer warnings, a crash): kept for health(), which a failing test quotes
    stderr_tail: collections.deque[str] = field(default_factory=lambda: collections.deque(maxlen=40), repr=False)

    def command(self) -> list[str]:
        command = [SYSTEM_PYTHON, str(SERVER_SCRIPT), "--host", self.host, "--port", str(self.port),
                   "--path", self.path, "--width", str(self.width), "--height", str(self.height),
                   "--fps", str(self.fps), "--bitrate", str(self.bitrate_kbps)]
        if self.video:
            command += ["--video", str(Path(self.video).resolve())]
        else:
            command += ["--pattern", self.pattern]
        if self.user:
            command += ["--user", self.user, "--password-env", PASSWORD_ENV, "--auth", self.auth]
        return command

    def start(self, timeout: float = 20.0) -> str:
        """Start the server and return its URL once it listens."""
        if not Path(SYSTEM_PYTHON).exists() or shutil.which("gst-inspect-1.0") is None:
            raise SimCameraError(
                "the simulated camera needs GStreamer: apt-get install python3-gi gir1.2-gst-rtsp-server-1.0 "
                "gstreamer1.0-plugins-{base,good,ugly,bad} gstreamer1.0-libav gstreamer1.0-x"
            )
        if self.video and not Path(self.video).is_file():
            raise SimCameraError(f"video file {self.video} not found")
        env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV"))}
        if self.password is not None:
            env[PASSWORD_ENV] = self.password
        self.process = subprocess.Popen(self.command(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                        text=True, env=env, start_new_session=True)
        ready: list[str] = []

        def read_ready() -> None:
            assert self.process and self.process.stdout
            line = self.process.stdout.readline()
            ready.append(line.strip())

        reader = threading.Thread(target=read_ready, daemon=True)
        reader.start()
        reader.join(timeout)
        if not ready or not ready[0].startswith("READY "):
            self.stop()
            err = self.process.stderr.read().strip() if self.process.stderr else ""
            raise SimCameraError(f"simulated camera did not start: {err.splitlines()[-1] if err else 'no answer'}")
        self.url = ready[0].split(" ", 1)[1]
        # keep draining so the server never blocks
        threading.Thread(target=_drain, args=(self.process.stdout, None), daemon=True).start()
        threading.Thread(target=_drain, args=(self.process.stderr, self.stderr_tail), daemon=True).start()
        if self.onvif_port is not None:
            from jifang.sim.onvif import OnvifSimulator

            # ONVIF clients get the stream URL without credentials, like from a real camera
            simulator = OnvifSimulator(rtsp_url=self.url, host=self.host, port=self.onvif_port,
                                       username=self.user or "admin", password=self.password or "admin",
                                       clock_offset_seconds=self.clock_offset_seconds,
                                       discovery_port=self.discovery_port, serial=f"SIM-{self.path}")
            simulator.start()
            self.onvif = simulator
            self.onvif_port = simulator.port
            self.discovery_port = simulator.discovery_port
        self.port = int(self.url.rsplit(":", 1)[1].split("/", 1)[0])
        return self.url

    def stop(self) -> None:
        if self.onvif is not None:
            self.onvif.stop()  # type: ignore[attr-defined]
            self.onvif = None
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)

    def kill(self) -> None:
        """Die like a camera losing power: no goodbye to clients."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(5)

    def wait(self) -> int:
        assert self.process is not None
        return self.process.wait()

    def health(self) -> str:
        """Whether the server still runs, with its last stderr lines: what a test says when recording fails."""
        if self.process is None:
            return f"simulated camera {self.url or self.path}: not started"
        state = "running" if self.process.poll() is None else f"exited with status {self.process.returncode}"
        tail = "\n".join(self.stderr_tail)
        return f"simulated camera {self.url}: {state}" + (f"; its stderr:\n{tail}" if tail else "; no stderr")

    def __enter__(self) -> SimCamera:
        self.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop()


def _drain(pipe, tail: collections.deque[str] | None) -> None:  # type: ignore[no-untyped-def]
    for line in pipe:
        if tail is not None:
            tail.append(line.rstrip())
