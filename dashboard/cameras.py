"""Camera points as the dashboard shows and changes them (registration goes through edge.onboarding)."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime

from jifang.dashboard.security import scope_grids
from jifang.dashboard.state import AppState
from jifang.dashboard.users import Principal
from jifang.edge.onboarding import camera_target, from_probe
from jifang.edge.onboarding import register as store
from sqlalchemy import select

from jifang import audit
from jifang.db.models import CameraRow, GridRow
from jifang.errors import CameraError, ConfigError
from jifang.registry import NewCamera, camera_from_row
from jifang.tiers import Tier

TIERS = tuple(str(t) for t in Tier)
KINDS = ("plate", "face")
# what every role sees of a point; the rest (stream URLs, device, site) is for technicians
PUBLIC_FIELDS = {"id", "name", "grid", "tier", "location", "enabled", "signage", "purpose", "registered_at",
                 "registered_by", "recognize"}
log = logging.getLogger("jifang.dashboard")


@dataclass
class Registration:
    endpoint: str
    username: str
    password: str
    id: str
    name: str
    grid: str
    tier: str
    location: str = ""
    signage: bool = False
    purpose: str = ""
    recognize: list[str] = field(default_factory=list)
    site: str = ""


def visible(state: AppState, principal: Principal) -> list[CameraRow]:
    grids = scope_grids(state, principal)
    query = select(CameraRow).order_by(CameraRow.grid, CameraRow.id)
    if grids is not None:
        query = query.where(CameraRow.grid.in_(sorted(grids)))
    with state.catalog.session() as session:
        return list(session.scalars(query))


def grid_codes(state: AppState) -> list[str]:
    with state.catalog.session() as session:
        registered = list(session.scalars(select(GridRow.code).order_by(GridRow.code)))
    return sorted({*registered, *(g.code for g in state.settings.grids)})


def to_json(row: CameraRow, technical: bool) -> dict:
    """The API model: the one camera type (jifang.config.CameraConfig, via the registry) plus its status.
    Never a password: a technician sees only whether one is stored."""
    camera = camera_from_row(row)
    data = camera.model_dump(mode="json", include=None if technical else PUBLIC_FIELDS, exclude={"password"})
    data.update({"status": row.status, "status_detail": row.status_detail,
                 "status_at": row.status_at.isoformat() if row.status_at else None,
                 "managed_by": row.managed_by or "registry"})
    if technical:
        data.update({"main_rtsp_url": camera.rtsp_url, "clock_offset_seconds": row.clock_offset_seconds,
                     "has_password": bool(row.password_encrypted or row.password_ref)})
    return data


def register(state: AppState, principal: Principal, form: Registration) -> CameraRow:
    """Probe the camera over ONVIF, check its stream and clock, store it (edge.onboarding does the checks)."""
    target = camera_target(form.endpoint, state.options.camera_networks)
    try:
        camera: NewCamera = from_probe(target, form.username, form.password)
    except Exception as exc:  # any failure, a parser's on a non-ONVIF answer too, reads the same (never a 500)
        # one answer for every failure: the web form must not tell a user which ports are open (a port scan);
        # the specific reason is in the dashboard's log for the technician
        log.warning("camera registration: ONVIF probe of %s failed: %s", form.endpoint, exc)
        raise CameraError(f"{form.endpoint}: no ONVIF camera answered with these credentials — check the "
                          "address, the ONVIF port and the user name and password (details in the dashboard "
                          "log)") from None
    camera.id, camera.name, camera.grid, camera.tier = form.id, form.name, form.grid, form.tier
    camera.location, camera.signage, camera.purpose = form.location, form.signage, form.purpose
    camera.recognize, camera.site = [k for k in KINDS if k in form.recognize], form.site or None
    store(state.registry(), camera, actor=principal.username, at=state.now(),
          ffprobe=state.settings.recorder.ffprobe)
    row = state.registry().camera(form.id)
    assert row is not None
    return row


def update(state: AppState, principal: Principal, camera_id: str, at: datetime, ip: str,
           **changes: object) -> CameraRow:
    """Change a point (tier, grid, enabled, recognition, sub-stream, site, signage, purpose) through the
    registry: running agents apply it within seconds. A point the configuration file declares is refused
    (ManagedByFileError): the file would overwrite the edit."""
    changes = {name: value for name, value in changes.items() if value is not None}
    if "tier" in changes and changes["tier"] not in TIERS:
        raise ConfigError(f"tier must be one of {', '.join(TIERS)}, got {changes['tier']!r}")
    if "grid" in changes and changes["grid"] not in grid_codes(state):
        raise ConfigError(f"grid {changes['grid']} is not registered")
    if isinstance(changes.get("purpose"), str):
        changes["purpose"] = str(changes["purpose"]).strip()[:500]
    for name in ("sub_rtsp_url", "site"):
        if changes.get(name) == "":
            changes[name] = None
    row, diff = state.registry().update_camera(camera_id, at, **changes)
    if diff:
        detail = ", ".join(f"{name} {old!r} -> {new!r}" for name, (old, new) in diff.items())
        audit.record(state.catalog, at, principal.username, "camera_edit", f"camera {camera_id}", grid=row.grid,
                     source_ip=ip, detail=detail[:1000])
    return row
