"""Drive a real ``jifang edge run`` process and read its catalog, store and metrics."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import requests
import yaml
from prometheus_client.parser import text_string_to_metric_families

from jifang.config import load_settings
from jifang.db import Catalog
from jifang.store import ObjectStore, open_store

REPO = Path(__file__).resolve().parents[2]


def cli_runner(config: Path, env: dict[str, str]) -> Callable[..., subprocess.CompletedProcess[str]]:
    """``jifang ARGS --config CONFIG`` as a user runs it, in a child with ``env`` over this environment; a non-zero
    exit fails the test with the command's stderr."""
    run_env = {**os.environ, **env}

    def jifang(*args: str) -> subprocess.CompletedProcess[str]:
        done = subprocess.run([sys.executable, "-m", "jifang.cli", *args, "--config", str(config)],
                              capture_output=True, text=True, cwd=REPO, env=run_env, timeout=120)
        assert done.returncode == 0, done.stderr
        return done

    return jifang
GRID = "331002001001001"
CAMERA = "33100200001320000001"


def write_config(folder: Path, rtsp_url: str, *, tier: str = "key", segment_seconds: int = 2,
                 db_url: str | None = None, s3_endpoint: str | None = None, username: str | None = None,
                 password_env: str | None = None, connect_retries: int = 5) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    camera: dict = {"id": CAMERA, "name": "test gate", "grid": GRID, "tier": tier, "rtsp_url": rtsp_url}
    if username:
        camera.update(username=username, password={"env": password_env})
    storage: dict = {"kind": "filesystem", "path": str(folder / "store")}
    if s3_endpoint:
        storage = {"kind": "minio", "minio": {"endpoint": s3_endpoint, "secure": False,
                                              "connect_retries": connect_retries}}
    config = {
        "version": 1,
        "database": {"url": db_url or f"sqlite:///{folder / 'jifang.db'}"},
        "storage": storage,
        "recorder": {"segment_seconds": segment_seconds, "spool_dir": str(folder / "spool")},
        "grids": [{"code": GRID, "name": "test grid"}],
        "cameras": [camera],
    }
    path = folder / "jifang.yaml"
    path.write_text(yaml.safe_dump(config, allow_unicode=True))
    return path


class Agent:
    def __init__(self, config: Path, env: dict[str, str] | None = None) -> None:
        self.config = config
        self.env = {**os.environ, "JIFANG_MINIO_ACCESS_KEY": "k", "JIFANG_MINIO_SECRET_KEY": "s", **(env or {})}
        self.process: subprocess.Popen | None = None
        self.metrics_url: str | None = None
        self.output: list[str] = []

    def start(self, timeout: float = 60) -> Agent:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "jifang.cli", "edge", "run", "--config", str(self.config), "--metrics-port", "0"],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=self.env, cwd=REPO,
        )
        threading.Thread(target=self._read, daemon=True).start()
        assert wait_for(lambda: self.metrics_url is not None or self.process.poll() is not None, timeout)
        assert self.metrics_url, f"agent did not start:\n{self.log()}"
        return self

    def _read(self) -> None:
        assert self.process and self.process.stdout
        for line in self.process.stdout:
            self.output.append(line.rstrip())
            if match := re.match(r"metrics: (http://\S+)", line):
                self.metrics_url = match.group(1)

    def log(self) -> str:
        return "\n".join(self.output[-60:])

    def stop(self, timeout: float = 90) -> int:
        assert self.process
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout)

    def kill(self) -> None:
        assert self.process
        self.process.kill()
        self.process.wait(10)

    def metric(self, name: str, **labels: str) -> float:
        text = requests.get(self.metrics_url, timeout=5).text
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                    return sample.value
        return 0.0

    def catalog(self) -> Catalog:
        return Catalog(load_settings(self.config, environ={}).database.url)

    def store(self) -> ObjectStore:
        os.environ.setdefault("JIFANG_MINIO_ACCESS_KEY", "k")
        os.environ.setdefault("JIFANG_MINIO_SECRET_KEY", "s")
        return open_store(load_settings(self.config, environ={}).storage)


def wait_for(predicate: Callable[[], bool], timeout: float, interval: float = 0.5) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if predicate():
                return True
        except Exception:  # the thing polled may not be up yet
            pass
        time.sleep(interval)
    return False
