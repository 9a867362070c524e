"""One camera, one truth: the file's declarations enter the registry, and a camera keeps every field on its way
file -> registry -> agent view -> API -> export -> import."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from jifang.dashboard.cameras import to_json
from jifang.edge.spoollock import SpoolLock, spool_path

from jifang.config import CameraConfig, parse_settings
from jifang.crypto import SecretBox
from jifang.db import Catalog
from jifang.db.models import CameraRow
from jifang.errors import ManagedByFileError, SpoolInUseError
from jifang.registry import CAMERA_FIELDS, ROW_NAMES, NewCamera, Registry, camera_from_row

AT = datetime(2026, 11, 27, 8, 30, tzinfo=UTC)
GRID = "331002001001001"
FULL = {  # every CameraConfig field set to something other than its default
    "id": "33100200001320000007", "name": "东门卡口", "grid": GRID, "tier": "key",
    "rtsp_url": "rtsp://10.0.0.11:554/Streaming/101", "username": "admin", "password": {"env": "CAM7_PASSWORD"},
    "enabled": True, "site": "jiaojiang", "sub_rtsp_url": "rtsp://10.0.0.11:554/Streaming/102",
    "recognize": ["plate", "face"], "registered_at": "2026-01-01T00:00:00+08:00", "location": "东门 3号杆",
    "signage": True, "purpose": "出入口车辆通行记录", "onvif_endpoint": "10.0.0.11:80",
    "snapshot_uri": "http://10.0.0.11/snap.jpg", "manufacturer": "HIKVISION", "model": "DS-2CD",
    "firmware": "V5.7", "serial": "SN123", "registered_by": "ops repo",
}


def settings_with(cameras: list[dict], team: bool = True):  # type: ignore[no-untyped-def]
    grid: dict = {"code": GRID, "name": "东山社区第一网格", "type": "城市社区", "village": "331002001001"}
    if team:
        grid["team"] = [{"name": "陈静", "role": "专职网格员", "phone": "13800000000", "channels": "mqtt"}]
    return parse_settings({"version": 1, "site": "jiaojiang", "grids": [grid], "cameras": cameras}, "t", environ={})


def registry(db_url: str) -> Registry:
    catalog = Catalog(db_url)
    catalog.migrate()
    return Registry(catalog, SecretBox(SecretBox.new_key()))


def test_every_camera_field_has_a_registry_column() -> None:
    columns = set(CAMERA_FIELDS)
    assert {ROW_NAMES.get(name, name) for name in CameraConfig.model_fields} <= columns
    defaults = CameraConfig(id=FULL["id"], name="x", grid=GRID, tier="general", rtsp_url="rtsp://h/x")
    full = CameraConfig.model_validate(FULL)
    assert all(getattr(full, name) != getattr(defaults, name) for name in CameraConfig.model_fields
               if name not in ("id", "grid", "enabled")), "FULL must exercise every field"


def test_file_to_registry_to_agent_to_api_to_export_drops_nothing(db_url: str, tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CAM7_PASSWORD", "s3cret!")
    settings = settings_with([FULL])
    declared = settings.cameras[0]
    reg = registry(db_url)
    report = reg.sync(settings, AT)
    assert report.added == [declared.id] and report.grids == 1 and report.team == 1
    # the agent's view
    merged, passwords = reg.merge_into(settings_with([], team=False))
    assert merged.cameras == [declared]
    assert passwords == {declared.id: "s3cret!"}
    assert [(g.code, g.village) for g in merged.grids] == [(GRID, "331002001001")]
    assert [(m.name, m.role, m.managed_by) for m in reg.team(GRID)] == [("陈静", "专职网格员", "file")]
    # the API model
    row = reg.camera(declared.id)
    api = to_json(row, technical=True)
    assert CameraConfig.model_validate({k: v for k, v in api.items() if k in CameraConfig.model_fields}) == \
        declared.model_copy(update={"password": None})
    assert api["managed_by"] == "file" and api["has_password"] and "s3cret" not in str(api)
    public = to_json(row, technical=False)
    assert "rtsp_url" not in public and "username" not in public and public["recognize"] == ["plate", "face"]
    # export, import into an empty registry, export again
    exported = reg.export_yaml()
    assert "s3cret" not in exported
    second = registry(f"sqlite:///{tmp_path / 'second.db'}")
    second.import_yaml(exported)
    assert second.export_yaml() == exported
    assert camera_from_row(second.camera(declared.id)) == declared


def test_sync_is_idempotent_and_follows_the_file(db_url: str) -> None:
    reg = registry(db_url)
    first = reg.sync(settings_with([FULL]), AT)
    revision = reg.revision()
    again = reg.sync(settings_with([FULL]), AT + timedelta(minutes=1))
    assert first.added and not again.added and not again.updated
    assert reg.revision() == revision, "an unchanged file must not wake the agents"
    assert [m.name for m in reg.team(GRID)] == ["陈静"], "the file's team replaces itself, no duplicates"
    changed = reg.sync(settings_with([{**FULL, "tier": "important", "recognize": []}]), AT + timedelta(minutes=2))
    assert changed.updated == [FULL["id"]]
    row = reg.camera(FULL["id"])
    assert (row.tier, row.recognize) == ("important", "")
    assert row.registered_at == datetime(2026, 1, 1, tzinfo=UTC) - timedelta(hours=8)
    assert reg.revision() != revision
    # a camera the file no longer declares is disabled only on request (sites may keep their own files)
    assert reg.sync(settings_with([]), AT).released == []
    assert reg.sync(settings_with([]), AT, prune=True).released == [FULL["id"]]
    assert reg.camera(FULL["id"]).enabled is False and reg.camera(FULL["id"]).managed_by == ""


def test_edits_the_file_would_overwrite_are_refused(db_url: str) -> None:
    reg = registry(db_url)
    reg.sync(settings_with([FULL]), AT)
    with pytest.raises(ManagedByFileError, match="declared in the configuration file"):
        reg.update_camera(FULL["id"], AT, enabled=False)
    with pytest.raises(ManagedByFileError):
        reg.remove_camera(FULL["id"], AT)
    with pytest.raises(ManagedByFileError):
        reg.add_grid(GRID, "renamed", "城市社区")
    _row, diff = reg.update_camera(FULL["id"], AT, tier="key")  # no change: nothing to refuse
    assert diff == {}


def test_onboarded_cameras_keep_sub_stream_site_and_recognition(db_url: str) -> None:
    reg = registry(db_url)
    reg.add_grid(GRID, "g", "城市社区")
    reg.add_camera(NewCamera(id="33100200001320000009", name="卡口", grid=GRID, tier="important",
                             main_rtsp_url="rtsp://10.0.0.9/main", sub_rtsp_url="rtsp://10.0.0.9/sub",
                             username="admin", password="pw", site="jiaojiang", recognize=["plate"]),
                   actor="tech1", at=AT)
    revision = reg.revision()
    merged, passwords = reg.merge_into(settings_with([], team=False))
    camera = merged.cameras[0]
    assert (camera.sub_rtsp_url, camera.site, camera.recognize, camera.registered_by) == (
        "rtsp://10.0.0.9/sub", "jiaojiang", ["plate"], "tech1")
    assert passwords == {camera.id: "pw"}
    row, diff = reg.update_camera(camera.id, AT + timedelta(seconds=5), enabled=False, recognize=["plate", "face"])
    assert set(diff) == {"enabled", "recognize"} and row.recognize == "plate,face"
    assert reg.revision() != revision
    assert reg.merge_into(settings_with([], team=False))[0].cameras == []
    reg.remove_camera(camera.id, AT)
    assert reg.revision()[0] == 0


def test_a_second_agent_cannot_open_the_same_spool(tmp_path: Path) -> None:
    assert spool_path(tmp_path, None) == tmp_path
    assert spool_path(tmp_path, "edge a:1") == tmp_path / "edge_a_1"
    first = SpoolLock(tmp_path, "edge-a")
    first.acquire()
    with pytest.raises(SpoolInUseError, match=r"in use by agent edge-a \(pid \d+\).*--agent-id"):
        SpoolLock(tmp_path, "edge-b").acquire()
    first.release()
    second = SpoolLock(tmp_path, "edge-b")
    second.acquire()  # released with the first agent: the next one may take it
    second.release()


def test_camera_row_columns_are_covered() -> None:
    """A new registry column must be classified: configuration (CameraConfig), secret or state."""
    config_columns = {ROW_NAMES.get(name, name) for name in CameraConfig.model_fields}
    other = {c.name for c in CameraRow.__table__.columns} - config_columns
    assert other == {"password_encrypted", "clock_offset_seconds", "managed_by", "status", "status_detail",
                     "status_at", "updated_at"}
