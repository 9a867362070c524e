"""Shared fixtures: databases (SQLite and a real PostgreSQL), a real S3 server (moto) on loopback, and
simulated RTSP cameras."""

from __future__ import annotations

import os
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
import sqlalchemy
from jifang.sim.camera import SimCamera

# A user's clone has no ../shared (benchmark photos, the optional y5fu model): a test that opens anything there
# would pass here and fail for them, so opening it fails the test (in this process; .ci/run runs the suite in a
# clone with no ../shared at all, which covers subprocesses too).
SHARED = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "shared")


def _refuse_shared(event: str, args: tuple) -> None:
    if event == "open" and args and isinstance(args[0], str | bytes | os.PathLike):
        path = os.fsdecode(args[0])
        # cheap on the hot path (every open): a relative name reaches ../shared only through ".." (names relative
        # to a directory descriptor, as rmtree opens them, stay inside that directory)
        if not os.path.isabs(path):
            if ".." not in path:
                return
            path = os.path.abspath(path)
        if path == SHARED or path.startswith(SHARED + os.sep):
            raise PermissionError(f"tests must not read {path}: a fresh clone has no ../shared")


sys.addaudithook(_refuse_shared)

PG_URL = os.environ.get("JIFANG_TEST_PG_URL", "postgresql+psycopg2://jifang:jifang@127.0.0.1:5432/jifang_test")


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh catalog database: a SQLite file, or a private schema in the test PostgreSQL."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'catalog.db'}"
        return
    yield from pg_schema_url()


def pg_schema_url() -> Iterator[str]:
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = sqlalchemy.create_engine(PG_URL)
    with admin.begin() as conn:
        conn.execute(sqlalchemy.text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield f"{PG_URL}?options=-csearch_path%3D{schema}"
    finally:
        with admin.begin() as conn:
            conn.execute(sqlalchemy.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture
def pg_url() -> Iterator[str]:
    yield from pg_schema_url()


class S3Server:
    """moto's S3 server on 127.0.0.1; stop() and start() keep the port (and, in-process, the data)."""

    def __init__(self) -> None:
        from moto.server import ThreadedMotoServer

        self._factory = ThreadedMotoServer
        self.port = 0
        self.server = None
        self.start()

    def start(self) -> None:
        self.server = self._factory(ip_address="127.0.0.1", port=self.port, verbose=False)
        self.server.start()
        self.port = self.server.get_host_and_port()[1]

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()
            self.server = None

    @property
    def endpoint(self) -> str:
        return f"127.0.0.1:{self.port}"

    def reset(self) -> None:
        requests.post(f"http://{self.endpoint}/moto-api/reset", timeout=10).raise_for_status()


@pytest.fixture(scope="session")
def s3_session() -> Iterator[S3Server]:
    server = S3Server()
    yield server
    server.stop()


@pytest.fixture
def s3(s3_session: S3Server) -> Iterator[S3Server]:
    if s3_session.server is None:
        s3_session.start()
    s3_session.reset()
    yield s3_session
    if s3_session.server is None:
        s3_session.start()


@pytest.fixture
def minio_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JIFANG_MINIO_ACCESS_KEY", "test-access")
    monkeypatch.setenv("JIFANG_MINIO_SECRET_KEY", "test-secret")


@pytest.fixture
def sim_camera() -> Iterator[SimCamera]:
    camera = SimCamera(path="cam1")
    camera.start()
    yield camera
    camera.stop()


@pytest.fixture
def mqtt_broker(tmp_path: Path) -> Iterator[int]:
    """A private Mosquitto broker on 127.0.0.1 (a real one, as users run), on a free port."""
    import socket
    import subprocess
    import time

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    conf = tmp_path / "mosquitto.conf"
    conf.write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n")
    process = subprocess.Popen(["mosquitto", "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            break
        except OSError:
            time.sleep(0.1)
    yield port
    process.terminate()
    process.wait(10)
