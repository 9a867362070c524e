"""The camera registry: areas, grids, their 3+X+Y teams (§6) and camera points, in the catalog database.

Camera passwords are encrypted at rest (jifang.crypto) and only decrypted for the recorder; no listing or
export ever contains them in clear. The whole registry round-trips through YAML exactly.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import yaml
from pydantic import ValidationError
from sqlalchemy import func, select

from jifang.config import CameraConfig, GridConfig, SecretRef, Settings
from jifang.crypto import SecretBox
from jifang.db import Catalog
from jifang.db.models import AreaRow, CameraRow, GridRow, SegmentRow, TeamMemberRow
from jifang.domain import GridType, camera_id_problem
from jifang.errors import ConfigError, ManagedByFileError
from jifang.tiers import Tier

log = logging.getLogger("jifang.registry")

TEAM_ROLES = ("网格长", "网格指导员", "专职网格员", "网格业务指导员", "兼职网格员")
AREA_LEVELS = ("county", "township", "village")
STATUSES = ("unknown", "online", "auth_failed", "unreachable", "clock_skew")
EXPORT_VERSION = 1
MANAGED_BY_FILE = "file"

# what the agent's health checks write; everything else in a camera row is its configuration
STATE_COLUMNS = ("status", "status_detail", "status_at", "updated_at")
CAMERA_FIELDS = tuple(c.name for c in CameraRow.__table__.columns if c.name not in STATE_COLUMNS)
# CameraConfig field -> registry column where the names differ; every other field has a column of its name
ROW_NAMES = {"rtsp_url": "main_rtsp_url", "password": "password_ref"}
# built once: every agent runs it every poll, and building a statement costs more than SQLite runs it
REVISION_QUERY = select(func.count(CameraRow.id), func.max(CameraRow.updated_at))


def camera_from_row(row: CameraRow) -> CameraConfig:
    """The one camera type (jifang.config.CameraConfig) of a registry row: what the agent, retention and the
    dashboard's API see. A password stored encrypted in the registry shows as an empty SecretRef."""
    values: dict[str, Any] = {}
    for name in CameraConfig.model_fields:
        column = ROW_NAMES.get(name, name)
        values[name] = getattr(row, column)
    values["username"] = row.username or None
    values["sub_rtsp_url"] = row.sub_rtsp_url or None
    values["recognize"] = [kind for kind in (row.recognize or "").split(",") if kind]
    if row.password_ref:
        values["password"] = SecretRef.model_validate_json(row.password_ref)
    else:
        values["password"] = SecretRef() if row.password_encrypted else None
    return CameraConfig(**values)


def camera_row_values(camera: CameraConfig) -> dict[str, Any]:
    """The registry columns of ``camera`` (the inverse of camera_from_row; the encrypted password aside)."""
    values: dict[str, Any] = {}
    for name in CameraConfig.model_fields:
        values[ROW_NAMES.get(name, name)] = getattr(camera, name)
    values["tier"] = str(camera.tier)
    values["username"] = camera.username or ""
    values["sub_rtsp_url"] = camera.sub_rtsp_url or ""
    values["recognize"] = ",".join(camera.recognize)
    ref = camera.password
    values["password_ref"] = ref.model_dump_json(exclude_none=True) if ref is not None and (ref.env or ref.file) \
        else ""
    return values


@dataclass
class NewCamera:
    """What a technician registers (from an ONVIF probe or by hand): a CameraConfig still being filled in,
    with the password in clear (encrypted on the way into the registry) and the probe's clock offset."""

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
    site: str | None = None
    recognize: list[str] = field(default_factory=list)
    clock_offset_seconds: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def config(self, actor: str, at: datetime) -> CameraConfig:
        """The camera as the one camera type; raises ConfigError naming the field on bad input."""
        try:
            return CameraConfig(
                id=self.id, name=self.name, grid=self.grid, tier=self.tier, rtsp_url=self.main_rtsp_url,
                username=self.username or None, sub_rtsp_url=self.sub_rtsp_url or None, site=self.site or None,
                recognize=self.recognize, registered_at=at, location=self.location, signage=self.signage,
                purpose=self.purpose, onvif_endpoint=self.onvif_endpoint, snapshot_uri=self.snapshot_uri,
                manufacturer=self.manufacturer, model=self.model, firmware=self.firmware, serial=self.serial,
                registered_by=actor)
        except ValidationError as exc:
            raise ConfigError(_problem(f"camera {self.id}", exc)) from None


def _problem(what: str, exc: ValidationError) -> str:
    first = exc.errors()[0]
    where = ".".join(str(part) for part in first["loc"])
    return f"{what}: {where + ': ' if where else ''}{first['msg'].removeprefix('Value error, ')}"


@dataclass
class SyncReport:
    """What ``Registry.sync`` changed."""

    grids: int = 0
    team: int = 0
    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    released: list[str] = field(default_factory=list)  # declared before, no longer in the file: disabled


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

    def add_grid(self, code: str, name: str, type: str, village: str | None = None, managed_by: str = "") -> None:
        try:
            GridConfig(code=code, name=name, type=type)
        except ValidationError as exc:
            raise ConfigError(_problem(f"grid {code}", exc)) from None
        with self.catalog.session() as session:
            existing = session.get(GridRow, code)
            if existing is not None and existing.managed_by == MANAGED_BY_FILE and not managed_by:
                raise ManagedByFileError(f"grid {code} is declared in the configuration file: change it there and "
                                         "run 'jifang registry sync'")
            session.merge(GridRow(code=code, name=name, type=type, village=village, managed_by=managed_by))
            session.commit()

    def add_member(self, grid: str, name: str, role: str, phone: str = "", channels: str = "",
                   managed_by: str = "") -> None:
        if role not in TEAM_ROLES:
            raise ConfigError(f"team member {name}: role must be one of {', '.join(TEAM_ROLES)}, got {role!r}")
        with self.catalog.session() as session:
            if session.get(GridRow, grid) is None:
                raise ConfigError(f"grid {grid} is not registered")
            session.add(TeamMemberRow(grid=grid, name=name, role=role, phone=phone, channels=channels,
                                      managed_by=managed_by))
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
        config = camera.config(actor, at)  # the same checks as the configuration file
        with self.catalog.session() as session:
            if session.get(GridRow, camera.grid) is None:
                raise ConfigError(f"grid {camera.grid} is not registered: add it first (jifang grid add)")
            if session.get(CameraRow, camera.id) is not None:
                raise ConfigError(f"camera {camera.id} is already registered")
            row = CameraRow(
                **camera_row_values(config),
                password_encrypted=self._box().encrypt(camera.password) if camera.password else "",
                status="unknown", status_detail="", clock_offset_seconds=camera.clock_offset_seconds,
                managed_by="", updated_at=at,
            )
            session.add(row)
            session.commit()
            return row

    def update_camera(self, camera_id: str, at: datetime, **changes: Any) -> tuple[CameraRow, dict[str, tuple]]:
        """Change configuration fields of a registered point (CameraConfig names: tier, grid, enabled, recognize,
        sub_rtsp_url, site, signage, purpose, ...); returns the row and {field: (old, new)} of what changed.

        A point declared in the configuration file is refused: the next start or 'jifang registry sync' would
        overwrite the edit, so it must be made in the file."""
        with self.catalog.session() as session:
            row = session.get(CameraRow, camera_id)
            if row is None:
                raise ConfigError(f"camera {camera_id} is not registered")
            before = camera_from_row(row)
            try:
                after = CameraConfig.model_validate({**before.model_dump(), **changes})
            except ValidationError as exc:
                raise ConfigError(_problem(f"camera {camera_id}", exc)) from None
            diff = {name: (getattr(before, name), getattr(after, name)) for name in changes
                    if getattr(before, name) != getattr(after, name)}
            if not diff:
                return row, {}
            if row.managed_by == MANAGED_BY_FILE:
                raise ManagedByFileError(f"camera {camera_id} is declared in the configuration file: change it "
                                         "there and run 'jifang registry sync' (an edit here would be overwritten)")
            if after.tier is Tier.KEY and not (after.signage and after.purpose.strip()):
                raise ConfigError(f"camera {camera_id}: a key-tier point needs signage posted and its purpose "
                                  "recorded")
            if "grid" in diff and session.get(GridRow, after.grid) is None:
                raise ConfigError(f"grid {after.grid} is not registered")
            for column, value in camera_row_values(after).items():
                if column != "password_ref":
                    setattr(row, column, value)
            row.updated_at = at
            session.commit()
            return row, diff

    def remove_camera(self, camera_id: str, at: datetime) -> None:
        """Forget a point (its recordings stay catalogued and keep their retention)."""
        with self.catalog.session() as session:
            row = session.get(CameraRow, camera_id)
            if row is None:
                raise ConfigError(f"camera {camera_id} is not registered")
            if row.managed_by == MANAGED_BY_FILE:
                raise ManagedByFileError(f"camera {camera_id} is declared in the configuration file: remove it "
                                         "there and run 'jifang registry sync'")
            session.delete(row)
            session.commit()

    def revision(self) -> tuple[int, datetime | None]:
        """A cheap fingerprint of what the agents record: one indexed aggregate, polled every few seconds.
        Every configuration change sets updated_at; a removal changes the count."""
        with self.catalog.connect() as connection:
            count, newest = connection.execute(REVISION_QUERY).one()
        # func.max bypasses the column type: normalise to aware UTC
        if isinstance(newest, datetime) and newest.tzinfo is None:
            newest = newest.replace(tzinfo=UTC)
        elif isinstance(newest, str):
            newest = datetime.fromisoformat(newest).replace(tzinfo=UTC)
        return int(count), newest

    # the configuration file is a declarative seed of the registry

    def sync(self, settings: Settings, at: datetime, prune: bool = False) -> SyncReport:
        """Upsert the grids, teams and cameras the file declares, marked as managed by the file. Run at every
        agent and dashboard start and by 'jifang registry sync'.

        With ``prune`` (only on request: sites may each keep their own file against one registry), a camera
        the file declared before and no longer does is disabled and handed to the registry; nothing is
        deleted, its recordings keep their retention."""
        report = SyncReport()
        declared = {camera.id for camera in settings.cameras}
        with self.catalog.session() as session:
            for grid in settings.grids:
                row = session.get(GridRow, grid.code) or GridRow(code=grid.code)
                row.name, row.type, row.managed_by = grid.name, str(grid.type), MANAGED_BY_FILE
                row.village = grid.village if grid.village is not None else row.village
                session.merge(row)
                report.grids += 1
                if grid.team:  # the file's team replaces what the file declared before; registry additions stay
                    for member in session.scalars(select(TeamMemberRow).where(
                            TeamMemberRow.grid == grid.code, TeamMemberRow.managed_by == MANAGED_BY_FILE)):
                        session.delete(member)
                    for member in grid.team:
                        session.add(TeamMemberRow(grid=grid.code, name=member.name, role=member.role,
                                                  phone=member.phone, channels=member.channels,
                                                  managed_by=MANAGED_BY_FILE))
                        report.team += 1
            session.flush()
            for camera in settings.cameras:
                values = camera_row_values(camera)
                row = session.get(CameraRow, camera.id)
                if row is None:
                    if camera.registered_at is None:  # first video, else now: coverage is owed from then on
                        first = session.scalar(select(func.min(SegmentRow.start_at))
                                               .where(SegmentRow.camera_id == camera.id))
                        values["registered_at"] = first.replace(tzinfo=UTC) if first is not None else at
                    values["registered_by"] = values["registered_by"] or "configuration file"
                    session.add(CameraRow(**values, password_encrypted="", status="unknown", status_detail="",
                                          managed_by=MANAGED_BY_FILE, updated_at=at))
                    report.added.append(camera.id)
                    continue
                if camera.registered_at is None:
                    values["registered_at"] = row.registered_at
                if not values["registered_by"]:
                    values["registered_by"] = row.registered_by
                if values["password_ref"] == "" and row.password_encrypted:
                    values.pop("password_ref")  # onboarded with an encrypted password, now declared: keep it
                changed = any(getattr(row, column) != value for column, value in values.items()) \
                    or row.managed_by != MANAGED_BY_FILE
                if changed:
                    for column, value in values.items():
                        setattr(row, column, value)
                    row.managed_by, row.updated_at = MANAGED_BY_FILE, at
                    report.updated.append(camera.id)
            stale = select(CameraRow).where(CameraRow.managed_by == MANAGED_BY_FILE) if prune else None
            for row in session.scalars(stale) if stale is not None else ():
                if row.id not in declared:
                    row.enabled, row.managed_by, row.updated_at = False, "", at
                    report.released.append(row.id)
            session.commit()
        for camera_id in report.released:
            log.warning("camera %s is no longer in the configuration file: disabled (its recordings are kept)",
                        camera_id)
        return report

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

    # the edge agent, retention and the dashboard read cameras from here only

    def merge_into(self, settings: Settings, with_passwords: bool = True) -> tuple[Settings, dict[str, str | None]]:
        """``settings`` with the registry's grids and enabled cameras (the registry is the source of truth; the
        file's declarations reach it through ``sync``), and the cameras' passwords: decrypted from the
        registry, or read from the file's {env|file} reference."""
        grids = {row.code: GridConfig(code=row.code, name=row.name, type=GridType(row.type), village=row.village)
                 for row in self.grids()}
        for grid in settings.grids:  # declared but not synced yet (a read-only command before the first start)
            grids.setdefault(grid.code, grid)
        cameras: dict[str, CameraConfig] = {}
        passwords: dict[str, str | None] = {}
        for row in self.cameras(enabled_only=True):
            camera = camera_from_row(row)
            cameras[row.id] = camera
            passwords[row.id] = self.camera_password(row, camera) if with_passwords else None
        registered = {row.id for row in self.cameras()}
        for camera in settings.cameras:
            if camera.id not in registered and camera.enabled:
                cameras[camera.id] = camera
                passwords[camera.id] = (camera.password.read(f"camera {camera.id} password")
                                        if with_passwords and camera.password else None)
        merged = settings.model_copy(update={"grids": list(grids.values()), "cameras": list(cameras.values())})
        return merged, passwords

    def camera_password(self, row: CameraRow, camera: CameraConfig | None = None) -> str | None:
        if row.password_encrypted:
            return self.password(row)
        ref = (camera or camera_from_row(row)).password
        return ref.read(f"camera {row.id} password") if ref is not None and (ref.env or ref.file) else None

    # YAML round trip

    def export_yaml(self) -> str:
        with self.catalog.session() as session:
            areas = list(session.scalars(select(AreaRow).order_by(AreaRow.code)))
        data = {
            "version": EXPORT_VERSION,
            "areas": [{"code": a.code, "name": a.name, "level": a.level, "parent": a.parent} for a in areas],
            "grids": [{"code": g.code, "name": g.name, "type": g.type, "village": g.village,
                       "managed_by": g.managed_by} for g in self.grids()],
            "team": [{"grid": m.grid, "name": m.name, "role": m.role, "phone": m.phone, "channels": m.channels,
                      "managed_by": m.managed_by} for m in self.team()],
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
                self.add_grid(grid["code"], grid["name"], grid["type"], grid.get("village"),
                              managed_by=grid.get("managed_by") or "")
            for member in data.get("team") or []:
                self.add_member(member["grid"], member["name"], member["role"], member.get("phone", ""),
                                member.get("channels", ""), managed_by=member.get("managed_by") or "")
            with self.catalog.session() as session:
                for camera in data.get("cameras") or []:
                    problem = camera_id_problem(str(camera["id"]))
                    if problem:
                        raise ConfigError(f"{source}: camera {camera['id']}: {problem}")
                    # an older export lacks the newer fields: their column defaults apply
                    values = {name: camera[name] for name in CAMERA_FIELDS if name in camera}
                    values["registered_at"] = datetime.fromisoformat(camera["registered_at"])
                    session.add(CameraRow(**values, status="unknown", status_detail="", updated_at=datetime.now(UTC)))
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
