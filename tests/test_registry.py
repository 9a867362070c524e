"""The camera registry: validation, encrypted passwords, key rotation, exact YAML round trip."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from jifang.config import parse_settings
from jifang.crypto import SecretBox
from jifang.db import Catalog
from jifang.errors import ConfigError
from jifang.registry import NewCamera, Registry

AT = datetime(2026, 11, 27, 8, 30, tzinfo=UTC)
GRID = "331002001001001"
PASSWORD = "Hik12345!plain"


def registry(db_url: str, key: str | None = None) -> Registry:
    catalog = Catalog(db_url)
    catalog.migrate()
    return Registry(catalog, SecretBox(key or SecretBox.new_key()))


def populate(reg: Registry) -> None:
    reg.add_area("331002", "椒江区", "county")
    reg.add_area("331002001", "海门街道", "township", "331002")
    reg.add_area("331002001001", "东山社区", "village", "331002001")
    reg.add_grid(GRID, "东山社区第一网格", "城市社区", "331002001001")
    for name, role in (("王芳", "网格长"), ("李强", "网格指导员"), ("陈静", "专职网格员"), ("赵磊", "网格业务指导员"),
                       ("孙丽", "兼职网格员")):
        reg.add_member(GRID, name, role, phone="13800000000", channels="mqtt")
    reg.add_camera(NewCamera(id="33100200001320000001", name="东门卡口", grid=GRID, tier="key",
                             main_rtsp_url="rtsp://10.0.0.11:554/Streaming/101", username="admin", password=PASSWORD,
                             onvif_endpoint="10.0.0.11:80", manufacturer="HIKVISION", signage=True,
                             purpose="出入口人员车辆通行记录"), actor="tech1", at=AT)
    reg.add_camera(NewCamera(id="33100200001320000002", name="广场", grid=GRID, tier="important",
                             main_rtsp_url="rtsp://10.0.0.12:554/live"), actor="tech1", at=AT)


def test_export_import_export_is_byte_identical(db_url: str, tmp_path: Path) -> None:
    key = SecretBox.new_key()
    first = registry(db_url, key)
    populate(first)
    exported = first.export_yaml()
    assert PASSWORD not in exported and "password_encrypted: gAAAA" in exported
    second = registry(f"sqlite:///{tmp_path / 'empty.db'}", key)
    counts = second.import_yaml(exported)
    assert counts == {"areas": 3, "grids": 1, "team": 5, "cameras": 2}
    assert second.export_yaml() == exported
    assert second.password(second.camera("33100200001320000001")) == PASSWORD
    with pytest.raises(ConfigError, match="not empty"):
        second.import_yaml(exported)


def test_passwords_are_encrypted_in_the_database_file(tmp_path: Path) -> None:
    db = tmp_path / "registry.db"
    reg = registry(f"sqlite:///{db}")
    populate(reg)
    reg.catalog.dispose()
    raw = b"".join(p.read_bytes() for p in tmp_path.glob("registry.db*"))
    assert PASSWORD.encode() not in raw
    assert b"33100200001320000001" in raw  # the file is the right one


def test_key_rotation_keeps_passwords_readable(tmp_path: Path) -> None:
    old = SecretBox.new_key()
    reg = registry(f"sqlite:///{tmp_path / 'r.db'}", old)
    populate(reg)
    token_before = reg.camera("33100200001320000001").password_encrypted
    new = SecretBox.new_key()
    assert reg.rotate_key(SecretBox(f"{new},{old}")) == 1
    row = reg.camera("33100200001320000001")
    assert row.password_encrypted != token_before
    assert Registry(reg.catalog, SecretBox(new)).password(row) == PASSWORD  # the old key is no longer needed
    with pytest.raises(ConfigError, match="cannot be decrypted"):
        Registry(reg.catalog, SecretBox(old)).password(row)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"tier": "key", "signage": False}, "needs signage posted"),
        ({"tier": "key", "signage": True, "purpose": " "}, "purpose recorded"),
        ({"id": "3310020000132000003"}, "must be 20 digits"),
        ({"grid": "999"}, "grid 999 is not registered"),
        ({"tier": "vip"}, "tier must be key, important or general"),
        ({"main_rtsp_url": "rtsp:///x"}, "has no host"),
        ({"id": "33100200001320000001"}, "already registered"),
    ],
)
def test_registration_refuses_bad_points(tmp_path: Path, change: dict, message: str) -> None:
    reg = registry(f"sqlite:///{tmp_path / 'r.db'}")
    populate(reg)
    camera = NewCamera(id="33100200001320000003", name="x", grid=GRID, tier="general",
                       main_rtsp_url="rtsp://10.0.0.13/x")
    for name, value in change.items():
        setattr(camera, name, value)
    with pytest.raises(Exception, match=message):
        reg.add_camera(camera, actor="tech1", at=AT)
    assert len(reg.cameras()) == 2


def test_team_roles_follow_the_standard(tmp_path: Path) -> None:
    reg = registry(f"sqlite:///{tmp_path / 'r.db'}")
    populate(reg)
    assert [m.role for m in reg.team(GRID)] == ["网格长", "网格指导员", "专职网格员", "网格业务指导员", "兼职网格员"]
    with pytest.raises(ConfigError, match="role must be one of"):
        reg.add_member(GRID, "x", "队长")


def test_edge_settings_include_registered_cameras(tmp_path: Path) -> None:
    reg = registry(f"sqlite:///{tmp_path / 'r.db'}")
    populate(reg)
    settings = parse_settings({"version": 1, "grids": [], "cameras": []}, "t", environ={})
    merged, passwords = reg.merge_into(settings)
    assert [c.id for c in merged.cameras] == ["33100200001320000001", "33100200001320000002"]
    assert merged.cameras[0].tier == "key" and merged.cameras[0].username == "admin"
    assert passwords == {"33100200001320000001": PASSWORD, "33100200001320000002": None}
    assert [g.code for g in merged.grids] == [GRID]
