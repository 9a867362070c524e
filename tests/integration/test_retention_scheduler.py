"""Acceptance: two ``jifang retention run`` processes against one PostgreSQL: only one runs the jobs; kill
it and the other takes over within one lease period."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import sqlalchemy
import yaml

from .agent import REPO, wait_for

pytestmark = pytest.mark.integration
LEASE_SECONDS = 6


def start(config: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "jifang.cli", "retention", "run", "--config", str(config)],
                            cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def holder(engine: sqlalchemy.Engine) -> str | None:
    with engine.connect() as conn:
        return conn.execute(sqlalchemy.text("SELECT holder FROM leases WHERE name='retention-scheduler'")).scalar()


def job_successes(engine: sqlalchemy.Engine) -> dict[str, object]:
    with engine.connect() as conn:
        return dict(conn.execute(sqlalchemy.text("SELECT job, last_success FROM job_runs")).all())


def test_one_active_scheduler_and_failover(tmp_path: Path, pg_url: str) -> None:
    config = tmp_path / "jifang.yaml"
    config.write_text(yaml.safe_dump({
        "version": 1, "database": {"url": pg_url},
        "storage": {"kind": "filesystem", "path": str(tmp_path / "store")},
        "retention": {"lease_seconds": LEASE_SECONDS,
                      "jobs": {"enforce_seconds": 10, "reconcile_seconds": 10, "audit_seconds": 10}},
        "grids": [{"code": "331002001001001", "name": "g"}],
        "cameras": [{"id": "33100200001320000001", "name": "c", "grid": "331002001001001", "tier": "key",
                     "rtsp_url": "rtsp://127.0.0.1:9/x"}],
    }))
    engine = sqlalchemy.create_engine(pg_url)
    first = start(config)
    try:
        assert wait_for(lambda: holder(engine) is not None and f":{first.pid}:" in holder(engine), 30)
        assert wait_for(lambda: {"enforce", "reconcile", "audit"} <= set(job_successes(engine)), 30)
        second = start(config)
        time.sleep(2 * LEASE_SECONDS)  # the follower keeps asking; the leader keeps renewing
        assert f":{first.pid}:" in holder(engine), "the lease changed hands while its holder was alive"
        first.send_signal(signal.SIGKILL)
        first.wait(10)
        killed = time.monotonic()
        assert wait_for(lambda: f":{second.pid}:" in (holder(engine) or ""), 2 * LEASE_SECONDS, interval=0.1)
        takeover = time.monotonic() - killed
        assert takeover <= LEASE_SECONDS, f"takeover took {takeover:.1f} s"
        before = job_successes(engine)["enforce"]
        assert wait_for(lambda: job_successes(engine)["enforce"] != before, 20)
        second.send_signal(signal.SIGTERM)
        assert second.wait(30) == 0
        assert holder(engine) is None  # a clean stop hands the lease back at once
    finally:
        for process in (first, locals().get("second")):
            if process is not None and process.poll() is None:
                os.kill(process.pid, signal.SIGKILL)
        engine.dispose()
