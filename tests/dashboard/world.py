"""A small world for dashboard tests: two grids (A in scope, B out of scope), a camera, an incident with evidence
images and a recorded segment in each, and one user per role."""

from __future__ import annotations

import functools
import hashlib
import json
import re
import subprocess
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from fastapi.testclient import TestClient
from jifang.dashboard.app import create_app
from jifang.dashboard.options import DashboardOptions
from jifang.dashboard.users import Users

from jifang.config import Settings, parse_settings
from jifang.crypto import SecretBox
from jifang.db import Catalog
from jifang.db.models import IncidentRow, IncidentStep, SegmentRow
from jifang.domain import GapCause, ObjectMeta, video_key
from jifang.registry import NewCamera, Registry
from jifang.store import FilesystemStore
from jifang.tiers import MediaKind, Tier, retain_until

GRID_A, GRID_B = "331002001001001", "331002001002001"
CAMERA_A, CAMERA_B = "33100200001320000001", "33100200001320000002"
PASSWORD = "correct-horse-battery"
ROLES = {"admin": ("admin", ""), "tech": ("technician", ""), "sup": ("supervisor", GRID_A),
         "worker": ("grid_worker", GRID_A)}
NOW = datetime.now(UTC).replace(microsecond=0)
JPEG = b"\xff\xd8\xff\xe0" + b"jifang-test-image" + b"\xff\xd9"


@dataclass
class World:
    settings: Settings
    catalog: Catalog
    store: FilesystemStore
    incidents: dict[str, int] = field(default_factory=dict)  # grid -> incident id
    segments: dict[str, int] = field(default_factory=dict)  # camera -> segment id
    options: DashboardOptions = field(default_factory=DashboardOptions)

    def app(self):  # type: ignore[no-untyped-def]
        return create_app(self.settings, options=self.options, catalog=self.catalog, store=self.store)


def build_world(tmp_path: Path, registry_key: str) -> World:
    settings = parse_settings({"version": 1, "database": {"url": f"sqlite:///{tmp_path / 'c.db'}"},
                               "storage": {"kind": "filesystem", "path": str(tmp_path / "store")},
                               "recorder": {"spool_dir": str(tmp_path / "spool")}}, "test", environ={})
    catalog = Catalog(settings.database.url)
    catalog.migrate()
    store = FilesystemStore(tmp_path / "store")
    store.ensure_ready()
    registry = Registry(catalog, SecretBox(registry_key))
    world = World(settings, catalog, store)
    for grid, camera, name in ((GRID_A, CAMERA_A, "东门"), (GRID_B, CAMERA_B, "西门")):
        registry.add_grid(grid, f"网格{grid[-4:]}", "城市社区")
        registry.add_member(grid, f"张三{grid[-4:]}", "专职网格员")
        registry.add_camera(NewCamera(id=camera, name=name, grid=grid, tier="important",
                                      main_rtsp_url="rtsp://127.0.0.1:1/x"), actor="test", at=NOW - timedelta(hours=2))
        world.incidents[grid] = add_incident(world, grid, camera)
        world.segments[camera] = add_segment(world, grid, camera, tmp_path)
    users = Users(catalog)
    for username, (role, scope) in ROLES.items():
        users.add(username, PASSWORD, role, scope, NOW, "test")
    return world


def put_image(world: World, camera: str, grid: str, key: str, tmp_path: Path) -> None:
    source = tmp_path / "img.jpg"
    source.write_bytes(JPEG)
    meta = ObjectMeta(camera, grid, Tier.IMPORTANT, NOW, NOW, hashlib.sha256(JPEG).hexdigest())
    world.store.put(MediaKind.IMAGE, key, source, meta, retain_until(NOW, Tier.IMPORTANT, MediaKind.IMAGE))


def add_incident(world: World, grid: str, camera: str) -> int:
    crop = f"images/{camera}/{NOW:%Y/%m/%d}/{NOW:%Y%m%dT%H%M%S}.000Z-plate-crop.jpg"
    frame = crop.replace("crop", "frame")
    for key in (crop, frame):
        put_image(world, camera, grid, key, Path(world.settings.recorder.spool_dir).parent)
    details = {"evidence": {"crop": crop, "frame": frame, "bucket": "jifang-images",
                            "video": {"camera": camera, "from": (NOW - timedelta(minutes=1)).isoformat(),
                                      "to": (NOW + timedelta(minutes=1)).isoformat()}},
               "camera": {"id": camera, "name": "点位", "tier": "important"}}
    with world.catalog.session() as session:
        row = IncidentRow(category="案事件", subcategory="治安刑事案件", gbt31000_code="CaseType:04", grid=grid,
                          camera_id=camera, occurred_at=NOW, kind="plate", summary=f"{camera}: 车牌 浙J12345",
                          details=json.dumps(details, ensure_ascii=False), state="上报", created_at=NOW)
        session.add(row)
        session.flush()
        session.add(IncidentStep(incident_id=row.id, state="上报", at=NOW, actor="system",
                                 note="识别命中：车牌 浙J12345", assignee=""))
        session.commit()
        return row.id


@functools.cache
def tiny_segment() -> bytes:
    """A real 2-second fragmented MP4 (as the recorder writes them), made once per test run."""
    done = subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-f", "lavfi", "-i", "testsrc=size=64x48:rate=5",
                           "-t", "2", "-c:v", "libx264", "-pix_fmt", "yuv420p", "-movflags",
                           "+frag_keyframe+empty_moov+default_base_moof", "-f", "mp4", "-"],
                          capture_output=True, check=True, timeout=60)
    return done.stdout


def add_segment(world: World, grid: str, camera: str, tmp_path: Path) -> int:
    start = NOW - timedelta(seconds=30)
    key = video_key(camera, start)
    data = tiny_segment() + camera.encode()  # trailing bytes make each camera's file distinct
    source = tmp_path / "seg.mp4"
    source.write_bytes(data)
    until = retain_until(start + timedelta(seconds=10), Tier.IMPORTANT, MediaKind.VIDEO)
    world.store.put(MediaKind.VIDEO, key, source, ObjectMeta(camera, grid, Tier.IMPORTANT, start,
                    start + timedelta(seconds=10), hashlib.sha256(data).hexdigest()), until)
    with world.catalog.session() as session:
        row = SegmentRow(camera_id=camera, key=key, start_at=start, end_at=start + timedelta(seconds=10),
                         bytes=len(data), sha256=hashlib.sha256(data).hexdigest(), tier="important", grid=grid,
                         retain_until=until, recorded_at=start, uploaded_at=start, held=False)
        session.add(row)
        session.commit()
        return row.id


def login_csrf(client: TestClient) -> str:
    page = client.get("/login")
    match = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert match, page.text
    return match.group(1)


def login(client: TestClient, username: str, password: str = PASSWORD) -> str:
    """Log in; returns the session's CSRF token."""
    response = client.post("/login", data={"username": username, "password": password,
                                           "csrf_token": login_csrf(client)}, follow_redirects=False)
    assert response.status_code == 303, response.text
    return client.get("/api/session").json()["csrf_token"]


GB_DEVICE_UP, GB_DEVICE_GONE = "33100200001180000001", "33100200001180000002"
GB_RECEIVING, GB_UNASSIGNED, GB_DOWN = "33100200001310000001", "33100200001310000002", "33100200001310000003"


def add_gb28181_devices(world: World, registry_key: str) -> None:
    """Two GB/T 28181 devices as the SIP server leaves them: one registered with a fresh keepalive (a channel
    being recorded, one not assigned), one whose keepalives stopped 15 minutes ago although its row still says
    online (its agent died) with an assigned channel whose gap is open with ``device_offline``."""
    from jifang.gb28181.devices import DeviceStore  # a test may reach across parts; dashboard code may not
    from jifang.gb28181.manscdp import ChannelItem

    store = DeviceStore(world.catalog, SecretBox(registry_key))
    registry = Registry(world.catalog, SecretBox(registry_key))
    now = datetime.now(UTC)  # the dashboard judges keepalives by the real clock, not the module's NOW
    for device, channels, seen in ((GB_DEVICE_UP, (GB_RECEIVING, GB_UNASSIGNED), now - timedelta(seconds=5)),
                                   (GB_DEVICE_GONE, (GB_DOWN,), now - timedelta(minutes=15))):
        store.add_device(device, "gb-password", "村口球机", now - timedelta(hours=3))
        store.registered(device, "127.0.0.1", 5062, "udp", now - timedelta(hours=1), now + timedelta(hours=1))
        store.set_online(device, True, seen)
        store.device_info(device, "海康威视", "DS-2DE", "V5.7")
        store.update_channels(device, [ChannelItem(id=c, name=f"通道{c[-2:]}", status="ON") for c in channels], now)
    for channel in (GB_RECEIVING, GB_DOWN):
        store.assign(registry, channel, GRID_A, "key", "test", now - timedelta(hours=1), signage=True,
                     purpose="治安防控")
    registry.set_status(GB_RECEIVING, "online", "", now - timedelta(minutes=50))
    registry.set_status(GB_DOWN, "unreachable", f"camera {GB_DOWN}: GB/T 28181 device went offline",
                        now - timedelta(minutes=14))
    world.catalog.open_gap(GB_DOWN, now - timedelta(minutes=14), GapCause.DEVICE_OFFLINE,
                           f"camera {GB_DOWN}: GB/T 28181 device {GB_DEVICE_GONE} went offline")
