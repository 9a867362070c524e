"""Acceptance: camera outage, object-store outage and a SIGKILLed agent lose nothing and leave a truthful
gap ledger."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from jifang.sim.camera import SimCamera
from minio import Minio

from jifang.tiers import Tier

from .agent import CAMERA, Agent, wait_for, write_config
from .checks import assert_catalog_matches_store, holes

pytestmark = pytest.mark.integration


def uploaded(agent: Agent) -> int:
    return int(agent.metric("jifang_segments_uploaded_total", camera=CAMERA))


def test_camera_outage_is_one_gap_and_recording_resumes(tmp_path: Path) -> None:
    camera = SimCamera(path="cam1")
    url = camera.start()
    agent = Agent(write_config(tmp_path, url, tier="important", segment_seconds=2)).start()
    try:
        assert wait_for(lambda: uploaded(agent) >= 3, 60), agent.log()
        camera.kill()  # power cut: no RTSP teardown
        killed_at = datetime.now(UTC)
        assert wait_for(lambda: agent.metric("jifang_camera_up", camera=CAMERA) == 0, 15)
        time.sleep(30 - (datetime.now(UTC) - killed_at).total_seconds())
        camera = SimCamera(path="cam1", port=camera.port)
        camera.start()
        restarted_at = datetime.now(UTC)

        def resumed() -> bool:
            return any(row.start_at >= restarted_at - timedelta(seconds=1) for row in agent.catalog().segments())

        assert wait_for(resumed, 40), agent.log()
        assert wait_for(lambda: agent.metric("jifang_camera_up", camera=CAMERA) == 1, 10)
        assert agent.metric("jifang_camera_reconnects_total", camera=CAMERA) >= 1
        time.sleep(5)
        assert agent.stop() == 0, agent.log()
    finally:
        camera.stop()
        if agent.process and agent.process.poll() is None:
            agent.kill()

    catalog = agent.catalog()
    rows = catalog.segments()
    first_after = next(row for row in rows if row.start_at >= restarted_at - timedelta(seconds=1))
    assert (first_after.start_at - restarted_at).total_seconds() <= 15, "recording did not resume within 15 s"
    gaps = catalog.gaps()
    assert len(gaps) == 1, [(g.start_at, g.end_at, g.cause) for g in gaps]
    gap = gaps[0]
    assert gap.cause == "camera_offline"
    last_before = max((row for row in rows if row.end_at <= gap.start_at + timedelta(seconds=1)),
                      key=lambda row: row.end_at)
    assert gap.start_at == last_before.end_at
    assert gap.end_at == first_after.start_at
    assert gap.start_at <= killed_at + timedelta(seconds=1)
    assert (gap.end_at - gap.start_at).total_seconds() >= 29
    # every other pair of consecutive segments is contiguous
    outside = [hole for hole in holes(rows) if hole > 1.0]
    assert len(outside) == 1 and abs(outside[0] - (gap.end_at - gap.start_at).total_seconds()) < 0.01
    assert_catalog_matches_store(catalog, agent.store(), Tier.IMPORTANT)


def test_object_store_outage_loses_nothing(tmp_path: Path, sim_camera: SimCamera, s3, pg_url: str) -> None:  # type: ignore[no-untyped-def]
    agent = Agent(write_config(tmp_path, sim_camera.url, tier="key", segment_seconds=2, db_url=pg_url,
                               s3_endpoint=s3.endpoint)).start()
    try:
        assert wait_for(lambda: uploaded(agent) >= 2, 60), agent.log()
        s3.stop()
        time.sleep(60)
        before = uploaded(agent)
        assert agent.metric("jifang_segment_upload_failures_total", camera=CAMERA) >= 1
        assert agent.metric("jifang_upload_lag_seconds", camera=CAMERA) >= 30
        assert agent.metric("jifang_spool_bytes") > 0
        spooled = len(list((tmp_path / "spool" / "segments").glob("*/*.mp4")))
        assert spooled >= 20, "segments recorded during the outage should wait in the spool"
        s3.start()
        assert wait_for(lambda: uploaded(agent) >= before + spooled, 90), agent.log()
        assert agent.metric("jifang_segments_dropped_total", camera=CAMERA) == 0
        assert agent.stop() == 0, agent.log()
    finally:
        if s3.server is None:
            s3.start()
        if agent.process and agent.process.poll() is None:
            agent.kill()
    rows = assert_catalog_matches_store(agent.catalog(), agent.store(), Tier.KEY)
    assert all(abs(hole) <= 1.0 for hole in holes(rows)), "recording must not stop while the store is down"
    assert agent.catalog().gaps() == []
    assert not list((tmp_path / "spool" / "segments").glob("*/*.mp4"))


def test_sigkilled_agent_uploads_its_spool_once_after_restart(tmp_path: Path, sim_camera: SimCamera, s3) -> None:  # type: ignore[no-untyped-def]
    config = write_config(tmp_path, sim_camera.url, tier="key", segment_seconds=2, s3_endpoint=s3.endpoint)
    agent = Agent(config).start()
    assert wait_for(lambda: uploaded(agent) >= 2, 60), agent.log()
    s3.stop()  # let a backlog build up in the spool, then kill the agent mid-run
    time.sleep(8)
    agent.kill()
    s3.start()
    spool = tmp_path / "spool"
    spooled = {p.stem for p in (spool / "segments").glob("*/*.mp4")}
    partial = list((spool / "recording").glob("*/run-*/seg-*.mp4"))
    assert spooled, "the test needs segments waiting in the spool at the kill"

    restarted = Agent(config).start()
    assert wait_for(lambda: not list((spool / "segments").glob("*/*.mp4")), 60), restarted.log()
    time.sleep(4)
    assert restarted.stop() == 0, restarted.log()

    catalog, store = restarted.catalog(), restarted.store()
    rows = assert_catalog_matches_store(catalog, store, Tier.KEY)
    stamps = {row.key.rsplit("/", 1)[1].removesuffix(".mp4") for row in rows}
    assert spooled <= stamps, "a segment that reached the spool was not uploaded"
    client: Minio = store.client
    versions: dict[str, int] = {}
    for obj in client.list_objects("jifang-video", prefix="video/", recursive=True, include_version=True):
        versions[obj.object_name] = versions.get(obj.object_name, 0) + 1
    assert set(versions.values()) == {1}, "every segment is uploaded exactly once"
    assert len(versions) == len(rows)
    if partial:  # the segment being written at the kill was recovered from its fragmented MP4
        assert len(rows) >= len(spooled) + 1
    restart_gaps = [gap for gap in catalog.gaps() if gap.cause == "not_recorded"]
    assert len(restart_gaps) <= 1
