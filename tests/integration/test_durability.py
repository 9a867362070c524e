"""Acceptance (issue 14): nothing lost, whatever breaks. Each scenario runs a real ``jifang edge run`` against
a simulated RTSP camera and ends with catalog == store == recorded media and at most 0.1 s per camera that
neither a stored segment nor a gap row explains."""

from __future__ import annotations

import json
import sqlite3
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy
import yaml
from jifang.sim.camera import SimCamera

from jifang.db import Catalog
from jifang.domain import ObjectMeta
from jifang.errors import StoreError
from jifang.store import FilesystemStore
from jifang.tiers import MediaKind, Tier

from .agent import CAMERA, Agent, wait_for, write_config
from .checks import holes
from .faults import TcpProxy, assert_nothing_lost, verify_sha256_on_put

pytestmark = pytest.mark.integration


def uploaded(agent: Agent) -> int:
    return int(agent.metric("jifang_segments_uploaded_total", camera=CAMERA))


def spooled(folder: Path) -> list[Path]:
    return sorted((folder / "spool" / "segments").glob("*/*.mp4"))


def test_database_down_30_s_loses_nothing_and_blames_no_camera(tmp_path: Path, sim_camera: SimCamera,
                                                                pg_url: str) -> None:
    url = sqlalchemy.engine.make_url(pg_url)
    proxy = TcpProxy(url.port or 5432)
    via_proxy = url.set(port=proxy.port).render_as_string(hide_password=False)
    agent = Agent(write_config(tmp_path, sim_camera.url, segment_seconds=2, db_url=via_proxy)).start()
    try:
        assert wait_for(lambda: uploaded(agent) >= 2, 90), agent.log()
        proxy.close()
        down_at = datetime.now(UTC)
        time.sleep(30)
        recorded_during = int(agent.metric("jifang_segments_recorded_total", camera=CAMERA))
        assert agent.metric("jifang_camera_up", camera=CAMERA) == 1, "a database outage must not stop recording"
        assert spooled(tmp_path), "segments recorded during the outage wait in the spool"
        proxy.open()
        assert wait_for(lambda: not spooled(tmp_path) and uploaded(agent) >= recorded_during, 120), agent.log()
        assert agent.metric("jifang_camera_reconnects_total", camera=CAMERA) == 0
        assert agent.stop() == 0, agent.log()
    finally:
        if agent.process and agent.process.poll() is None:
            agent.kill()
        proxy.close()
    catalog = Catalog(pg_url)
    try:
        rows = assert_nothing_lost(catalog, FilesystemStore(tmp_path / "store"), CAMERA)
        assert any(row.start_at > down_at + timedelta(seconds=10) for row in rows)
        assert catalog.gaps(CAMERA) == [], "the database outage was no camera outage"
    finally:
        catalog.dispose()


def test_agent_starts_and_records_with_the_database_down(tmp_path: Path, sim_camera: SimCamera,
                                                         pg_url: str) -> None:
    url = sqlalchemy.engine.make_url(pg_url)
    proxy = TcpProxy(url.port or 5432)
    proxy.close()  # down before the agent starts: it must warn and record, not exit
    via_proxy = url.set(port=proxy.port).render_as_string(hide_password=False)
    agent = Agent(write_config(tmp_path, sim_camera.url, segment_seconds=2, db_url=via_proxy)).start()
    try:
        recorded = lambda: agent.metric("jifang_segments_recorded_total", camera=CAMERA)  # noqa: E731
        assert wait_for(lambda: recorded() >= 4, 90), agent.log()
        assert any("unreachable" in line and "recording the cameras" in line for line in agent.output), agent.log()
        proxy.open()
        assert wait_for(lambda: not spooled(tmp_path) and uploaded(agent) >= recorded(), 120), agent.log()
        assert agent.stop() == 0, agent.log()
    finally:
        if agent.process and agent.process.poll() is None:
            agent.kill()
        proxy.close()
    catalog = Catalog(pg_url)
    try:
        assert_nothing_lost(catalog, FilesystemStore(tmp_path / "store"), CAMERA)
        assert catalog.gaps(CAMERA) == []
    finally:
        catalog.dispose()


def test_sqlite_held_by_another_writer_40_s_loses_nothing(tmp_path: Path, sim_camera: SimCamera) -> None:
    """40 s is longer than the catalog's 30 s SQLite busy timeout: writes fail, not merely wait."""
    config = write_config(tmp_path, sim_camera.url, segment_seconds=2)
    agent = Agent(config).start()
    try:
        assert wait_for(lambda: uploaded(agent) >= 2, 90), agent.log()
        other = sqlite3.connect(tmp_path / "jifang.db", isolation_level=None)
        other.execute("BEGIN EXCLUSIVE")
        time.sleep(40)
        assert agent.metric("jifang_camera_up", camera=CAMERA) == 1, "a locked database must not stop recording"
        other.execute("COMMIT")
        other.close()
        recorded_by_then = int(agent.metric("jifang_segments_recorded_total", camera=CAMERA))
        assert wait_for(lambda: not spooled(tmp_path) and uploaded(agent) >= recorded_by_then, 120), agent.log()
        assert agent.metric("jifang_camera_reconnects_total", camera=CAMERA) == 0
        assert agent.stop() == 0, agent.log()
    finally:
        if agent.process and agent.process.poll() is None:
            agent.kill()
    catalog = agent.catalog()
    assert_nothing_lost(catalog, agent.store(), CAMERA)
    assert catalog.gaps(CAMERA) == [], [(g.cause, g.detail) for g in catalog.gaps(CAMERA)]


def test_five_sigterm_stops_keep_the_last_segment_each_time(tmp_path: Path, sim_camera: SimCamera) -> None:
    config = write_config(tmp_path, sim_camera.url, segment_seconds=2)
    stops: list[datetime] = []
    for _round in range(5):
        agent = Agent(config).start()
        try:
            before = len(agent.catalog().segments(CAMERA))

            def two_more(agent: Agent = agent, before: int = before) -> bool:
                return len(agent.catalog().segments(CAMERA)) >= before + 2

            assert wait_for(two_more, 90), agent.log()
            time.sleep(1.0)  # somewhere inside a segment
            stops.append(datetime.now(UTC))
            assert agent.stop() == 0, agent.log()
        finally:
            if agent.process and agent.process.poll() is None:
                agent.kill()
        rows = agent.catalog().segments(CAMERA)
        last_end = max(row.end_at for row in rows)
        assert last_end >= stops[-1] - timedelta(seconds=1.0), (
            f"round {_round}: the segment being written at SIGTERM was lost (last end {last_end}, stop {stops[-1]})")
    catalog = agent.catalog()
    assert_nothing_lost(catalog, agent.store(), CAMERA, max_hole=None)  # the runs are apart: gaps say so
    assert not [g for g in catalog.gaps(CAMERA) if g.cause != "not_recorded"]
    assert len([g for g in catalog.gaps(CAMERA) if g.cause == "not_recorded"]) == 4  # the time between runs
    assert not list((tmp_path / "spool" / "quarantine").rglob("*.mp4"))


def test_a_corrupt_spool_file_is_quarantined_and_the_queue_moves_on(tmp_path: Path, sim_camera: SimCamera, s3,
                                                                     monkeypatch) -> None:  # type: ignore[no-untyped-def]
    verify_sha256_on_put(monkeypatch)
    agent = Agent(write_config(tmp_path, sim_camera.url, segment_seconds=2, s3_endpoint=s3.endpoint)).start()
    try:
        assert wait_for(lambda: uploaded(agent) >= 2, 90), agent.log()
        row = agent.catalog().segments(CAMERA)[0]
        probe = tmp_path / "probe.bin"
        probe.write_bytes(b"not what the checksum says")
        meta = ObjectMeta(CAMERA, row.grid, Tier(row.tier), row.start_at, row.end_at, row.sha256)
        with pytest.raises(StoreError, match="BadDigest"):  # the test server verifies, like MinIO
            agent.store()._write(MediaKind.VIDEO, "video/probe.mp4", probe, meta, row.retain_until)
        s3.stop()
        assert wait_for(lambda: len(spooled(tmp_path)) >= 4, 60), agent.log()
        victim = spooled(tmp_path)[1]
        data = bytearray(victim.read_bytes())
        data[len(data) // 2] ^= 0xFF  # one flipped byte, same size: only the sha256 can tell
        victim.write_bytes(bytes(data))
        victim_manifest = json.loads(victim.with_suffix(".json").read_text())
        victim_key = victim_manifest["key"]
        s3.start()
        def settled() -> bool:
            return not spooled(tmp_path) and any(g.cause == "spool_corrupt" for g in agent.catalog().gaps())

        assert wait_for(settled, 120), agent.log()
        time.sleep(3)
        assert agent.metric("jifang_segments_quarantined_total", camera=CAMERA) == 1
        assert agent.stop() == 0, agent.log()
    finally:
        if agent.process and agent.process.poll() is None:
            agent.kill()
    catalog = agent.catalog()
    assert_nothing_lost(catalog, agent.store(), CAMERA, max_hole=None)  # the quarantined segment is a hole
    gaps = catalog.gaps(CAMERA)
    assert [(g.cause, g.start_at, g.end_at) for g in gaps] == [
        ("spool_corrupt", datetime.fromisoformat(victim_manifest["capture_start"]),
         datetime.fromisoformat(victim_manifest["capture_end"]))]
    assert "differs from its manifest" in gaps[0].detail
    assert agent.store().stat(MediaKind.VIDEO, victim_key) is None, "the damaged file was never stored"
    assert (tmp_path / "spool" / "quarantine" / CAMERA / f"{CAMERA}-{victim.name}").exists()


def test_damaged_spool_at_start_with_the_store_down(tmp_path: Path, sim_camera: SimCamera, s3) -> None:  # type: ignore[no-untyped-def]
    """A killed agent leaves a spool with a torn manifest, a manifest whose video is gone and a video whose
    manifest is gone; the next agent starts while the store is still down, records, and when the store
    returns everything recoverable is stored and the rest is explained."""
    config = write_config(tmp_path, sim_camera.url, segment_seconds=2, s3_endpoint=s3.endpoint, connect_retries=0)
    agent = Agent(config).start()
    try:
        assert wait_for(lambda: uploaded(agent) >= 2, 90), agent.log()
        s3.stop()
        assert wait_for(lambda: len(spooled(tmp_path)) >= 5, 60), agent.log()
    finally:
        agent.kill()
    videos = spooled(tmp_path)
    torn, lost, bare = videos[0], videos[1], videos[2]
    torn.with_suffix(".json").write_text(torn.with_suffix(".json").read_text()[:40])
    lost_manifest = json.loads(lost.with_suffix(".json").read_text())
    lost.unlink()
    bare.with_suffix(".json").unlink()

    restarted = Agent(config).start()  # the store is still down: it must start and record anyway
    try:
        recorded = lambda: restarted.metric("jifang_segments_recorded_total", camera=CAMERA)  # noqa: E731
        assert wait_for(lambda: recorded() >= 3, 90), restarted.log()
        assert restarted.metric("jifang_spool_orphans_total", kind="manifest") == 1
        assert restarted.metric("jifang_spool_orphans_total", kind="video") == 2
        s3.start()
        assert wait_for(lambda: not spooled(tmp_path), 120), restarted.log()
        assert restarted.stop() == 0, restarted.log()
    finally:
        if restarted.process and restarted.process.poll() is None:
            restarted.kill()
    catalog = restarted.catalog()
    rows = assert_nothing_lost(catalog, restarted.store(), CAMERA, max_hole=None)
    stamp = lambda p: p.name.removesuffix(".mp4")  # noqa: E731
    assert {stamp(torn), stamp(bare)} <= {row.key.rsplit("/", 1)[1].removesuffix(".mp4") for row in rows}
    corrupt = [g for g in catalog.gaps(CAMERA) if g.cause == "spool_corrupt"]
    assert [(g.start_at, g.end_at) for g in corrupt] == [
        (datetime.fromisoformat(lost_manifest["capture_start"]), datetime.fromisoformat(lost_manifest["capture_end"]))]


FAKETIME_LIB = Path("/usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1")


def test_a_wall_clock_step_on_ffmpegs_side_is_detected_and_timed_by_the_monotonic_clock(
        tmp_path: Path, sim_camera: SimCamera) -> None:
    assert FAKETIME_LIB.exists(), "apt-get install faketime (scripts/install.sh installs it)"
    offset = tmp_path / "faketime"
    offset.write_text("+0\n")
    wrapper = tmp_path / "ffmpeg-faketime"
    # only ffmpeg's clock steps (faketime on Python would break time.sleep); its monotonic clock stays true
    wrapper.write_text(f"#!/bin/sh\nexport LD_PRELOAD={FAKETIME_LIB} FAKETIME_TIMESTAMP_FILE={offset} "
                       "FAKETIME_NO_CACHE=1 DONT_FAKE_MONOTONIC=1\nexec ffmpeg \"$@\"\n")
    wrapper.chmod(0o755)
    config = write_config(tmp_path, sim_camera.url, segment_seconds=2)
    data = yaml.safe_load(config.read_text())
    data["recorder"]["ffmpeg"] = str(wrapper)
    config.write_text(yaml.safe_dump(data))
    agent = Agent(config).start()
    recorded = lambda: agent.metric("jifang_segments_recorded_total", camera=CAMERA)  # noqa: E731
    try:
        assert wait_for(lambda: recorded() >= 3, 90), agent.log()
        offset.write_text("-20\n")  # the clock steps back 20 s ...
        assert wait_for(lambda: agent.metric("jifang_clock_steps_total", camera=CAMERA) >= 1, 90), agent.log()
        after_back = recorded()
        assert wait_for(lambda: recorded() >= after_back + 2, 60), agent.log()
        offset.write_text("+40\n")  # ... then 60 s forward
        assert wait_for(lambda: agent.metric("jifang_clock_steps_total", camera=CAMERA) >= 2, 90), agent.log()
        after_forward = recorded()
        assert wait_for(lambda: recorded() >= after_forward + 2, 60), agent.log()
        stopped = datetime.now(UTC)
        assert agent.stop() == 0, agent.log()
    finally:
        if agent.process and agent.process.poll() is None:
            agent.kill()
    catalog = agent.catalog()
    rows = assert_nothing_lost(catalog, agent.store(), CAMERA)
    # no overlap beyond a frame or two either (the issue saw 275 s)
    assert all(hole >= -0.25 for hole in holes(rows)), holes(rows)
    assert abs((rows[-1].end_at - stopped).total_seconds()) <= 3, "the timeline must follow the true clock"
    steps = [g for g in catalog.gaps(CAMERA) if g.cause == "clock_step"]
    assert len(steps) == 2 and all("stepped by" in g.detail for g in steps), [(g.cause, g.detail) for g in steps]
    assert max(row.end_at - row.start_at for row in rows) < timedelta(seconds=30)
