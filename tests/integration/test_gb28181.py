"""GB/T 28181 end to end on loopback: the simulated device registers to the platform with digest auth, its
Catalog fills the channel list, assigned channels are recorded through the recorder's own path (real ffmpeg,
S3 over HTTP with COMPLIANCE locks, catalog with sha256), the device going offline becomes `device_offline`
gaps, and bad input is counted while the server stays up."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml
from fastapi.testclient import TestClient
from jifang.cli.gb28181 import attach_to_agent
from jifang.dashboard.app import create_app
from jifang.dashboard.users import Users
from jifang.edge.agent import EdgeAgent
from jifang.gb28181.service import GbPlatform
from jifang.sim.gb28181_device import SimDeviceError, SimGbDevice
from prometheus_client import CollectorRegistry

from jifang.config import Gb28181Config, parse_settings
from jifang.crypto import SecretBox
from jifang.db import Catalog
from jifang.domain import GapCause
from jifang.registry import Registry, open_registry
from jifang.store import FilesystemStore
from jifang.store.base import utc_now
from jifang.tiers import MediaKind, Tier
from tests.dashboard.world import login

from .agent import REPO, Agent, wait_for
from .checks import holes

pytestmark = pytest.mark.integration

DEVICE = "33100200001180000001"
GRID = "331002001001001"
PASSWORD = "s3cret-sip"
RECORD_SECONDS = 120  # the 2 minutes of consecutive segments


def metric(registry: CollectorRegistry, name: str, **labels: str) -> float:
    return registry.get_sample_value(name, labels) or 0.0


@pytest.fixture
def platform(tmp_path: Path):  # type: ignore[no-untyped-def]
    catalog = Catalog(f"sqlite:///{tmp_path / 'catalog.db'}")
    catalog.migrate()
    config = Gb28181Config(host="127.0.0.1", port=0, keepalive_interval=1, keepalive_count=3)
    registry = CollectorRegistry()
    gb = GbPlatform(config, catalog, SecretBox(SecretBox.new_key()), registry, utc_now)
    gb.start()
    gb.store.add_device(DEVICE, PASSWORD, "nvr", utc_now())
    yield gb, registry
    gb.stop()
    catalog.dispose()


@pytest.mark.parametrize("transport", ["udp", "tcp"])
def test_register_catalog_keepalive_and_bad_input(platform, transport: str) -> None:  # type: ignore[no-untyped-def]
    gb, registry = platform
    server = ("127.0.0.1", gb.sip.port)
    cfg = gb.config
    wrong = SimGbDevice(DEVICE, "not-the-password", server, cfg.platform_id, cfg.domain, transport=transport)
    with pytest.raises(SimDeviceError, match="403"):
        wrong.start(wait=3)
    wrong.stop()
    assert metric(registry, "jifang_gb28181_registration_failures_total", reason="bad_password") == 1
    stranger = SimGbDevice("33100200001180000999", PASSWORD, server, cfg.platform_id, cfg.domain, transport=transport)
    with pytest.raises(SimDeviceError, match="403"):
        stranger.start(wait=3)
    stranger.stop()
    assert metric(registry, "jifang_gb28181_registration_failures_total", reason="unknown_device") == 1

    # junk: a 64 KiB datagram, a malformed message, a truncated body over TCP
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as junk:
        junk.sendto(os.urandom(65000), server)
        junk.sendto(b"INVITE nonsense\r\n\r\n", server)
    with socket.create_connection(server) as tcp_junk:
        tcp_junk.sendall(b"MESSAGE sip:x SIP/2.0\r\nContent-Length: 999999\r\n\r\n")
    assert wait_for(lambda: metric(registry, "jifang_gb28181_bad_input_total", kind="malformed")
                    + metric(registry, "jifang_gb28181_bad_input_total", kind="oversize") >= 3, 10)

    device = SimGbDevice(DEVICE, PASSWORD, server, cfg.platform_id, cfg.domain, transport=transport, split=3,
                         keepalive_interval=0.5)
    device.start()
    try:
        assert wait_for(lambda: metric(registry, "jifang_gb28181_registrations_total", kind="new") == 1, 5)
        assert wait_for(lambda: len(gb.store.channels(DEVICE)) == 4, 15), "catalog (3 MESSAGEs) not collected"
        channels = gb.store.channels(DEVICE)
        assert {c.id for c in channels} == set(device.channel_ids)
        assert channels[0].name == "模拟通道1" and channels[0].ptz_type == 3  # GB2312 body decoded
        assert wait_for(lambda: gb.store.device(DEVICE).model == "sim-nvr", 10)  # DeviceInfo
        row = gb.store.device(DEVICE)
        assert row.online and row.transport == transport and row.host == "127.0.0.1" and row.port == device.local[1]
        assert metric(registry, "jifang_gb28181_devices_online") == 1
        assert device.register() == 200  # same Call-ID: a renewal, not a new registration
        assert wait_for(lambda: metric(registry, "jifang_gb28181_registrations_total", kind="renewal") == 1, 5)
        assert metric(registry, "jifang_gb28181_registrations_total", kind="new") == 1

        device.fault.drop_keepalives = True  # 3 x 1 s without keepalive: offline
        assert wait_for(lambda: not gb.sip.is_online(DEVICE), 15)
        assert metric(registry, "jifang_gb28181_devices_online") == 0
        assert not gb.store.device(DEVICE).online
        device.fault.drop_keepalives = False
        assert wait_for(lambda: gb.sip.is_online(DEVICE), 10)

        assert device.register(expires=0) == 200  # unregister
        assert wait_for(lambda: not gb.sip.is_online(DEVICE), 5)
        assert wait_for(lambda: metric(registry, "jifang_gb28181_registrations_total", kind="unregister") == 1, 5)
        assert device.register() == 200  # and back; the server survived everything above
        assert gb.sip.is_online(DEVICE)
    finally:
        device.stop()


# recording through the edge agent process


def write_config(folder: Path, db_url: str, s3_endpoint: str, transport: str = "tcp") -> Path:
    config = {
        "version": 1,
        "database": {"url": db_url},
        "storage": {"kind": "minio", "minio": {"endpoint": s3_endpoint, "secure": False}},
        "recorder": {"segment_seconds": 4, "spool_dir": str(folder / "spool")},
        "grids": [{"code": GRID, "name": "test grid"}],
        "gb28181": {"enabled": True, "host": "127.0.0.1", "port": 0, "media_transport": transport,
                    "keepalive_interval": 2, "keepalive_count": 3, "media_timeout": 8},
    }
    path = folder / "jifang.yaml"
    path.write_text(yaml.safe_dump(config, allow_unicode=True))
    return path


class TechnicianView:
    """The dashboard a technician opens, on the database the agent writes: what /api/gb28181/devices says."""

    def __init__(self, config: Path, catalog: Catalog, folder: Path) -> None:
        settings = parse_settings(yaml.safe_load(config.read_text()), "test")
        store = FilesystemStore(folder / "dashboard-store")  # the page under test reads only the catalog
        store.ensure_ready()
        Users(catalog).add("tech", "correct-horse-battery", "technician", "", utc_now(), "test")
        self.client = TestClient(create_app(settings, catalog=catalog, store=store))
        login(self.client, "tech", "correct-horse-battery")

    def device(self) -> dict:
        return next(d for d in self.client.get("/api/gb28181/devices").json() if d["id"] == DEVICE)

    def media(self) -> dict[str, tuple[str, str | None]]:
        return {c["id"]: (c["media"], c["cause"]) for c in self.device()["channels"]}

    def page(self) -> str:
        return self.client.get("/cameras").text


def cli(config: Path, env: dict[str, str], *args: str) -> str:
    done = subprocess.run([sys.executable, "-m", "jifang.cli", *args[:2], "--config", str(config), *args[2:]],
                          capture_output=True, text=True, env=env, cwd=REPO, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_two_assigned_channels_recorded_to_s3_and_offline_gaps(tmp_path: Path, s3, pg_url: str,  # type: ignore[no-untyped-def]
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    key = SecretBox.new_key()
    monkeypatch.setenv("JIFANG_REGISTRY_KEY", key)
    env = {**os.environ, "JIFANG_REGISTRY_KEY": key, "SIP_PASSWORD": PASSWORD}
    config = write_config(tmp_path, pg_url, s3.endpoint)
    catalog = Catalog(pg_url)
    catalog.migrate()
    Registry(catalog).add_grid(GRID, "test grid", "城市社区")
    cli(config, env, "gb28181", "add-device", DEVICE, "--password-env", "SIP_PASSWORD")
    agent = Agent(config, env={"JIFANG_REGISTRY_KEY": key}).start()
    device = None
    try:
        port = next(int(m.group(1)) for line in agent.output if (m := re.match(r"gb28181: sip \S+:(\d+)", line)))
        settings = parse_settings(yaml.safe_load(config.read_text()), "test")
        device = SimGbDevice(DEVICE, PASSWORD, ("127.0.0.1", port), settings.gb28181.platform_id,
                             settings.gb28181.domain, transport="tcp", keepalive_interval=1)
        device.start()
        assert wait_for(lambda: "unassigned" in cli(config, env, "gb28181", "channels")
                        and cli(config, env, "gb28181", "channels").count("unassigned") == 4, 30), agent.log()
        recorded, unassigned = device.channel_ids[:2], device.channel_ids[2:]
        for channel, tier in zip(recorded, ("key", "important"), strict=True):
            args = ["gb28181", "assign", channel, "--grid", GRID, "--tier", tier]
            if tier == "key":
                args += ["--signage", "yes", "--purpose", "gate"]
            cli(config, env, *args)
        assert wait_for(lambda: all(catalog.segments(c) for c in recorded), 60), agent.log()
        time.sleep(RECORD_SECONDS)
        assert agent.metric("jifang_gb28181_devices_online") == 1
        assert agent.metric("jifang_gb28181_invites_total", result="ok") >= 2
        # the technician's cameras page: the device online with a recent keepalive, two channels receiving
        view = TechnicianView(config, catalog, tmp_path)
        seen = view.device()
        assert seen["online"] and seen["keepalive_age_seconds"] < 2 * 3 and seen["transport"] == "tcp", seen
        media = view.media()
        assert all(media[c] == ("receiving", None) for c in recorded), media
        assert all(media[c] == ("unassigned", None) for c in unassigned), media
        assert f'data-device="{DEVICE}" data-online="true"' in view.page()

        # the device stops its keepalives for 3 intervals: offline, BYE, device_offline gaps
        device.fault.drop_keepalives = True
        assert wait_for(lambda: all(catalog.has_open_gap(c) for c in recorded), 40), agent.log()
        for channel in recorded:
            gap = next(g for g in catalog.gaps(channel) if g.end_at is None)
            assert gap.cause == GapCause.DEVICE_OFFLINE, gap
        assert not view.device()["online"]
        assert all(view.media()[c] == ("down", "device_offline") for c in recorded), view.media()
        assert f'data-device="{DEVICE}" data-online="false"' in view.page()
        assert wait_for(lambda: not device.streams, 10), "the platform did not BYE the streams"
        back = time.monotonic()
        device.fault.drop_keepalives = False
        assert wait_for(lambda: not any(catalog.has_open_gap(c) for c in recorded), 60), agent.log()
        resumed_after = time.monotonic() - back
        print(f"recording resumed {resumed_after:.1f} s after the keepalives returned")
        assert view.device()["online"] and all(view.media()[c] == ("receiving", None) for c in recorded)
        time.sleep(6)
        assert agent.stop() == 0, agent.log()
    finally:
        if device is not None:
            device.stop()
        if agent.process and agent.process.poll() is None:
            agent.kill()

    store = agent.store()
    for channel, tier in zip(recorded, (Tier.KEY, Tier.IMPORTANT), strict=True):
        rows = catalog.segments(channel)
        stored = {o.key for o in store.list(MediaKind.VIDEO, f"video/{channel}/")}
        assert stored == {r.key for r in rows}
        for row in rows:
            obj = store.stat(MediaKind.VIDEO, row.key)
            assert obj is not None and obj.lock_mode == "COMPLIANCE" and obj.meta.sha256 == row.sha256
            assert obj.meta.tier is tier and row.uploaded_at is not None
        gaps = catalog.gaps(channel)
        assert [g.cause for g in gaps] == [GapCause.DEVICE_OFFLINE]
        before = [r for r in rows if r.end_at <= gaps[0].start_at]
        covered = (before[-1].end_at - before[0].start_at).total_seconds()
        assert covered >= RECORD_SECONDS, covered
        assert all(abs(hole) <= 1.0 for hole in holes(before)), holes(before)
        assert any(r.start_at >= gaps[0].end_at for r in rows), "recording did not resume"
    for channel in unassigned:
        assert catalog.segments(channel) == [] and not list(store.list(MediaKind.VIDEO, f"video/{channel}/"))
    assert resumed_after < 40, resumed_after
    catalog.dispose()


# UDP with loss and reordering, H.265, an SSRC the device makes up: recorded by an in-process agent


def record_first_channel(agent: EdgeAgent, gb: GbPlatform, device: SimGbDevice) -> str:
    """The device registers and reports its 4 channels; the first is assigned a grid and the agent starts."""
    device.start()
    assert wait_for(lambda: len(gb.store.channels(DEVICE)) == 4, 15)
    registry = open_registry(agent.settings, agent.catalog)
    registry.add_grid(GRID, "g", "城市社区")
    channel = device.channel_ids[0]
    gb.store.assign(registry, channel, GRID, "general", "test", datetime.now(UTC))
    agent.start()
    return channel


@pytest.mark.parametrize("codec", ["h264", "h265"])
def test_udp_reordered_lossy_media_and_h265(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, codec: str) -> None:
    monkeypatch.setenv("JIFANG_REGISTRY_KEY", SecretBox.new_key())
    settings = parse_settings({
        "version": 1, "database": {"url": f"sqlite:///{tmp_path / 'db.sqlite'}"},
        "storage": {"kind": "filesystem", "path": str(tmp_path / "store")},
        "recorder": {"segment_seconds": 4, "spool_dir": str(tmp_path / "spool")},
        "gb28181": {"enabled": True, "host": "127.0.0.1", "port": 0, "media_transport": "udp",
                    "keepalive_interval": 2, "keepalive_count": 3, "media_timeout": 8,
                    "rtp_port_min": 31000, "rtp_port_max": 31999}}, "test")
    agent = EdgeAgent(settings, preflight=False)
    agent.open()
    gb = attach_to_agent(agent)
    gb.store.add_device(DEVICE, PASSWORD, "nvr", utc_now())
    device = SimGbDevice(DEVICE, PASSWORD, ("127.0.0.1", gb.sip.port), settings.gb28181.platform_id,
                         settings.gb28181.domain, transport="udp", keepalive_interval=1, codec=codec)
    device.fault.udp_reorder, device.fault.udp_loss = 0.02, 0.005
    if codec == "h265":
        device.fault.answer_ssrc = "0999990001"  # the device answers with an SSRC of its own and sends it
    try:
        channel = record_first_channel(agent, gb, device)
        assert wait_for(lambda: len(agent.catalog.segments(channel)) >= 4, 90)
    finally:
        agent.shutdown()
        gb.stop()
        device.stop()
    rows = Catalog(settings.database.url).segments(channel)
    assert all(abs(hole) <= 1.0 for hole in holes(rows)), holes(rows)
    for row in rows:
        probe = subprocess.run(["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries",
                                "stream=codec_name", "-of", "csv=p=0",
                                str(tmp_path / "store" / "jifang-video" / row.key)],
                               capture_output=True, text=True, check=True)
        assert probe.stdout.strip() == ("hevc" if codec == "h265" else "h264")
    reg = agent.metrics.metrics_registry
    assert metric(reg, "jifang_gb28181_rtp_reordered_total", channel=channel) > 0
    assert metric(reg, "jifang_gb28181_rtp_lost_total", channel=channel) > 0
    if codec == "h265":
        assert metric(reg, "jifang_gb28181_bad_input_total", kind="ssrc_answer_mismatch") >= 1


@pytest.mark.parametrize("fault", ["refuse_invite", "wrong_ssrc"])
def test_refused_invite_and_foreign_ssrc_become_gaps_then_recording_resumes(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fault: str) -> None:
    monkeypatch.setenv("JIFANG_REGISTRY_KEY", SecretBox.new_key())
    settings = parse_settings({
        "version": 1, "database": {"url": f"sqlite:///{tmp_path / 'db.sqlite'}"},
        "storage": {"kind": "filesystem", "path": str(tmp_path / "store")},
        "recorder": {"segment_seconds": 4, "spool_dir": str(tmp_path / "spool"), "backoff_max_seconds": 4},
        "gb28181": {"enabled": True, "host": "127.0.0.1", "port": 0, "keepalive_interval": 2, "media_timeout": 5,
                    "rtp_port_min": 32000, "rtp_port_max": 32999}}, "test")
    agent = EdgeAgent(settings, preflight=False)
    agent.open()
    gb = attach_to_agent(agent)
    gb.store.add_device(DEVICE, PASSWORD, "nvr", utc_now())
    device = SimGbDevice(DEVICE, PASSWORD, ("127.0.0.1", gb.sip.port), settings.gb28181.platform_id,
                         settings.gb28181.domain, transport="tcp", keepalive_interval=1)
    if fault == "refuse_invite":
        device.fault.refuse_invite = 486
    else:
        device.fault.send_ssrc = 1234567  # RTP that is not the stream the platform asked for
    reg = agent.metrics.metrics_registry
    try:
        channel = record_first_channel(agent, gb, device)
        assert wait_for(lambda: agent.catalog.has_open_gap(channel), 60)
        gap = agent.catalog.gaps(channel)[0]
        if fault == "refuse_invite":
            assert gap.cause == GapCause.INVITE_REFUSED and "SIP 486" in gap.detail, gap.detail
            assert metric(reg, "jifang_gb28181_invites_total", result="486") >= 1
            device.fault.refuse_invite = 0
        else:
            assert gap.cause == GapCause.MEDIA_TIMEOUT, gap.detail
            assert metric(reg, "jifang_gb28181_bad_input_total", kind="ssrc_mismatch") > 10
            device.fault.send_ssrc = None
        assert wait_for(lambda: not agent.catalog.has_open_gap(channel), 60), "recording did not resume"
        assert agent.catalog.segments(channel)
        assert gb.sip.is_online(DEVICE)  # the server stayed up throughout
    finally:
        agent.shutdown()
        gb.stop()
        device.stop()


def test_simulator_cli_registers_and_reports_its_channels(platform) -> None:  # type: ignore[no-untyped-def]
    gb, _registry = platform
    process = subprocess.Popen([sys.executable, "-m", "jifang.cli", "sim", "gb28181-device", "--server",
                                f"127.0.0.1:{gb.sip.port}", "--password-env", "SIP_PW", "--transport", "tcp",
                                "--channels", "3", "--split", "2", "--keepalive-interval", "1"],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=REPO,
                               env={**os.environ, "SIP_PW": PASSWORD})
    try:
        line = process.stdout.readline()
        assert line.startswith(f"registered {DEVICE} over TCP"), line
        assert wait_for(lambda: len(gb.store.channels(DEVICE)) == 3, 15)
        assert set(line.split("channels ", 1)[1].split()) == {c.id for c in gb.store.channels(DEVICE)}
    finally:
        process.terminate()
        assert process.wait(15) == 0
