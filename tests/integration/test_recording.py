"""Acceptance: a camera served by ``jifang sim camera`` is recorded for over two minutes into the MinIO path
(real S3 over HTTP) and the filesystem path at the same time."""

from __future__ import annotations

import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from jifang.tiers import Tier

from .agent import REPO, Agent, write_config
from .checks import assert_catalog_matches_store, holes

pytestmark = pytest.mark.integration

RECORD_SECONDS = 130


@pytest.fixture
def cli_sim_camera():  # type: ignore[no-untyped-def]
    process = subprocess.Popen([sys.executable, "-m", "jifang.cli", "sim", "camera", "--pattern", "--port", "0",
                                "--path", "gate"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                               cwd=REPO)
    line = process.stdout.readline()
    match = re.match(r"serving (rtsp://\S+)", line)
    assert match, line
    yield match.group(1)
    process.terminate()
    assert process.wait(15) == 0


def test_two_minutes_to_minio_and_filesystem(tmp_path: Path, cli_sim_camera: str, s3, pg_url: str) -> None:  # type: ignore[no-untyped-def]
    to_minio = Agent(write_config(tmp_path / "minio", cli_sim_camera, tier="key", segment_seconds=10,
                                  db_url=pg_url, s3_endpoint=s3.endpoint)).start()
    to_disk = Agent(write_config(tmp_path / "disk", cli_sim_camera, tier="important", segment_seconds=10)).start()
    time.sleep(RECORD_SECONDS)
    assert to_minio.metric("jifang_camera_up", camera="33100200001320000001") == 1
    assert to_minio.stop() == 0, to_minio.log()
    assert to_disk.stop() == 0, to_disk.log()

    for agent, tier in ((to_minio, Tier.KEY), (to_disk, Tier.IMPORTANT)):
        rows = assert_catalog_matches_store(agent.catalog(), agent.store(), tier)
        covered = (rows[-1].end_at - rows[0].start_at).total_seconds()
        assert covered >= RECORD_SECONDS - 15, agent.log()
        assert len(rows) >= 12
        assert all(abs(hole) <= 1.0 for hole in holes(rows)), holes(rows)
        assert all(row.end_at > row.start_at for row in rows)
        assert agent.catalog().gaps() == []
        assert not list((agent.config.parent / "spool" / "segments").glob("*/*.mp4")), "spool not drained"
