"""The camera registry: areas, grids, their 3+X+Y teams (§6) and camera points, in the catalog database.

Camera passwords are encrypted at rest (jifang.crypto) and only decrypted for the recorder; no listing or
export ever contains them in clear. The whole registry round-trips through YAML exactly.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import yaml
from sqlalchemy import select

from jifang.config import CameraConfig, GridConfig, SecretRef, Settings
from jifang.crypto import SecretBox
from jifang.db import Catalog
from jifang.db.models import AreaRow, CameraRow, GridRow, TeamMemberRow
from jifang.domain import GridType, camera_id_problem
from jifang.errors import ConfigError
from jifang.tiers import Tier

TEAM_ROLES = ("网格长", "网格指导员", "专职网格员", "网格业务指导员", "兼职网格员")
AREA_LEVELS = ("county", "township", "village")
STATUSES = ("unknown", "online", "auth_failed", "unreachable", "clock_skew")
EXPORT_VERSION = 1

CAMERA_FIELDS = ("id", "name", "grid", "tier", "location", "onvif_endpoint", "main_rtsp_url", "sub_rtsp_url",
                 "snapshot_uri", "username", "password_encrypted", "manufacturer", "model", "firmware", "serial",
                 "signage", "purpose", "registered_by", "registered_at", "enabled")


@dataclass
class NewCamera:
    """What a technician registers (from an ONVIF probe or by hand)."""

    id: str
    name: str
    grid: str
    tier: str
    main_rtsp_url: str
    username: str = ""
    password: str | None = None
    location: str = ""
    onvif_endpoint: str = ""
    sub_rtsp_url: str = ""
    snapshot_uri: str = ""
    manufacturer: str = ""
    model: str = ""
    firmware: str = ""
    serial: str = ""
    signage: bool = False
    purpose: str = ""
    clock_offset_seconds: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)


class Registry:
    def __init__(self, catalog: Catalog, box: SecretBox | None = None) -> None:
        self.catalog = catalog
        self.box = box

    def _box(self) -> SecretBox:
        if self.box is None:
            raise ConfigError("no registry key: set JIFANG_REGISTRY_KEY (or registry.key in the configuration); "
                              "generate one with 'jifang registry new-key'")
        return self.box

    # areas, grids, teams

    def add_area(self, code: str, name: str, level: str, parent: str | None = None) -> None:
        if level not in AREA_LEVELS:
            raise ConfigError(f"area {code}: level must be one of {', '.join(AREA_LEVELS)}, got {level!r}")
        with self.catalog.session() as session:
            session.merge(AreaRow(code=code, name=name, level=level, parent=parent))
            session.commit()

    def add_grid(self, code: str, name: str, type: str, village: str | None = None) -> None:
        GridConfig(code=code, name=name, type=GridType(type) if type in GridType._value2member_map_ else type)
        with self.catalog.session() as session:
            session.merge(GridRow(code=code, name=name, type=type, village=village))
            session.commit()

    def add_member(self, grid: str, name: str, role: str, phone: str = "", channels: str = "") -> None:
        if role not in TEAM_ROLES:
            raise ConfigError(f"team member {name}: role must be one of {', '.join(TEAM_ROLES)}, got {role!r}")
        with self.catalog.session() as session:
            if session.get(GridRow, grid) is None:
                raise ConfigError(f"grid {grid} is not registered")
            session.add(TeamMemberRow(grid=grid, name=name, role=role, phone=phone, channels=channels))
            session.commit()

    def grids(self) -> list[GridRow]:
        with self.catalog.session() as session:
            return list(session.scalars(select(GridRow).order_by(GridRow.code)))

    def team(self, grid: str | None = None) -> list[TeamMemberRow]:
        with self.catalog.session() as session:
            query = select(TeamMemberRow).order_by(TeamMemberRow.grid, TeamMemberRow.id)
            if grid:
                query = query.where(TeamMemberRow.grid == grid)
            return list(session.scalars(query))

    # cameras

    def add_camera(self, camera: NewCamera, actor: str, at: datetime) -> CameraRow:
        problem = camera_id_problem(camera.id)
        if problem:
            raise ConfigError(f"camera ID {camera.id}: {problem}")
        try:
            tier = Tier(camera.tier)
        except ValueError:
            raise ConfigError(f"tier must be key, important or general, got {camera.tier!r}") from None
        if tier is Tier.KEY and not (camera.signage and camera.purpose.strip()):
            raise ConfigError(f"camera {camera.id}: a key-tier point needs signage posted (--signage yes) and its "
                              "purpose recorded (--purpose) before it can be registered")
        # the same URL checks as the configuration file
        CameraConfig(id=camera.id, name=camera.name, grid=camera.grid, tier=tier, rtsp_url=camera.main_rtsp_url)
        with self.catalog.session() as session:
            if session.get(GridRow, camera.grid) is None:
                raise ConfigError(f"grid {camera.grid} is not registered: add it first (jifang grid add)")
            if session.get(CameraRow, camera.id) is not None:
                raise ConfigError(f"camera {camera.id} is already registered")
            row = CameraRow(
                id=camera.id, name=camera.name, grid=camera.grid, tier=str(tier), location=camera.location,
                onvif_endpoint=camera.onvif_endpoint, main_rtsp_url=camera.main_rtsp_url,
                sub_rtsp_url=camera.sub_rtsp_url, snapshot_uri=camera.snapshot_uri, username=camera.username,
                password_encrypted=self._box().encrypt(camera.password) if camera.password else "",
                manufacturer=camera.manufacturer, model=camera.model, firmware=camera.firmware,
                serial=camera.serial, signage=camera.signage, purpose=camera.purpose, registered_by=actor,
                registered_at=at, enabled=True, status="unknown", status_detail="",
                clock_offset_seconds=camera.clock_offset_seconds,
            )
            session.add(row)
            session.commit()
            return row

    def cameras(self, enabled_only: bool = False) -> list[CameraRow]:
        with self.catalog.session() as session:
            query = select(CameraRow).order_by(CameraRow.id)
            if enabled_only:
                query = query.where(CameraRow.enabled.is_(True))
            return list(session.scalars(query))

    def camera(self, camera_id: str) -> CameraRow | None:
        with self.catalog.session() as session:
            return session.get(CameraRow, camera_id)

    def password(self, row: CameraRow) -> str | None:
        return self._box().decrypt(row.password_encrypted) if row.password_encrypted else None

    def set_status(self, camera_id: str, status: str, detail: str, at: datetime,
                   clock_offset_seconds: float | None = None) -> None:
        if status not in STATUSES:
            raise ValueError(status)
        with self.catalog.session() as session:
            row = session.get(CameraRow, camera_id)
            if row is None:
                return
            if (row.status, row.status_detail) != (status, detail[:500]):
                row.status, row.status_detail, row.status_at = status, detail[:500], at
            if clock_offset_seconds is not None:
                row.clock_offset_seconds = clock_offset_seconds
            session.commit()

    def rotate_key(self, new_box: SecretBox) -> int:
        """Re-encrypt every password with ``new_box``'s newest key (it must also hold the old key)."""
        count = 0
        with self.catalog.session() as session:
            for row in session.scalars(select(CameraRow).where(CameraRow.password_encrypted != "")):
                row.password_encrypted = new_box.rotate(row.password_encrypted)
                count += 1
            session.commit()
        self.box = new_box
        return count

    # the edge agent and retention read cameras from here as well as from the configuration file

    def merge_into(self, settings: Settings, with_passwords: bool = True) -> tuple[Settings, dict[str, str | None]]:
        """``settings`` with the registry's grids and enabled cameras added (the file wins on conflicts), and
        the decrypted passwords of the registry's cameras."""
        grids = {g.code: g for g in settings.grids}
        for row in self.grids():
            grids.setdefault(row.code, GridConfig(code=row.code, name=row.name, type=GridType(row.type)))
        cameras = {c.id: c for c in settings.cameras}
        passwords: dict[str, str | None] = {}
        for row in self.cameras(enabled_only=True):
            if row.id in cameras:
                continue
            cameras[row.id] = CameraConfig(id=row.id, name=row.name, grid=row.grid, tier=Tier(row.tier),
                                           rtsp_url=row.main_rtsp_url, username=row.username or None,
                                           password=SecretRef() if row.password_encrypted else None,
                                           registered_at=row.registered_at)
            passwords[row.id] = self.password(row) if with_passwords else None
        merged = settings.model_copy(update={"grids": list(grids.values()), "cameras": list(cameras.values())})
        return merged, passwords

    # YAML round trip

    def export_yaml(self) -> str:
        with self.catalog.session() as session:
            areas = list(session.scalars(select(AreaRow).order_by(AreaRow.code)))
        data = {
            "version": EXPORT_VERSION,
            "areas": [{"code": a.code, "name": a.name, "level": a.level, "parent": a.parent} for a in areas],
            "grids": [{"code": g.code, "name": g.name, "type": g.type, "village": g.village} for g in self.grids()],
            "team": [{"grid": m.grid, "name": m.name, "role": m.role, "phone": m.phone, "channels": m.channels}
                     for m in self.team()],
            "cameras": [{name: (getattr(c, name).isoformat() if name == "registered_at" else getattr(c, name))
                         for name in CAMERA_FIELDS} for c in self.cameras()],
        }
        return yaml.safe_dump(data, allow_unicode=True, sort_keys=False, width=1000)

    def import_yaml(self, text: str, source: str = "registry") -> dict[str, int]:
        try:
            data = yaml.safe_load(text) or {}
        except yaml.YAMLError as exc:
            raise ConfigError(f"{source}: malformed YAML: {getattr(exc, 'problem', exc)}") from None
        if not isinstance(data, dict) or data.get("version") != EXPORT_VERSION:
            raise ConfigError(f"{source}: not a jifang registry export (version {EXPORT_VERSION})")
        with self.catalog.session() as session:
            if session.scalar(select(CameraRow.id).limit(1)) or session.scalar(select(GridRow.code).limit(1)):
                raise ConfigError("the registry is not empty: import into an empty database")
        try:
            for area in data.get("areas") or []:
                self.add_area(area["code"], area["name"], area["level"], area.get("parent"))
            for grid in data.get("grids") or []:
                self.add_grid(grid["code"], grid["name"], grid["type"], grid.get("village"))
            for member in data.get("team") or []:
                self.add_member(member["grid"], member["name"], member["role"], member.get("phone", ""),
                                member.get("channels", ""))
            with self.catalog.session() as session:
                for camera in data.get("cameras") or []:
                    problem = camera_id_problem(str(camera["id"]))
                    if problem:
                        raise ConfigError(f"{source}: camera {camera['id']}: {problem}")
                    values = {name: camera.get(name) for name in CAMERA_FIELDS}
                    values["registered_at"] = datetime.fromisoformat(camera["registered_at"])
                    session.add(CameraRow(**values, status="unknown", status_detail=""))
                session.commit()
        except (KeyError, TypeError) as exc:
            raise ConfigError(f"{source}: missing or malformed field {exc}") from None
        return {"areas": len(data.get("areas") or []), "grids": len(data.get("grids") or []),
                "team": len(data.get("team") or []), "cameras": len(data.get("cameras") or [])}


def open_registry(settings: Settings, catalog: Catalog) -> Registry:
    """The registry, with its key when one is configured (needed only to store or read passwords)."""
    ref = settings.registry.key
    configured = (ref.env and ref.env in os.environ) or (ref.file and ref.file.exists())
    return Registry(catalog, SecretBox(ref.read("registry.key")) if configured else None)
