"""Camera points as the dashboard shows and changes them (registration goes through edge.onboarding)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from jifang.dashboard.security import scope_grids
from jifang.dashboard.state import AppState
from jifang.dashboard.users import Principal
from jifang.edge.onboarding import from_probe
from jifang.edge.onboarding import register as store
from sqlalchemy import select

from jifang.db.models import AuditEntry, CameraRow, GridRow
from jifang.errors import ConfigError
from jifang.registry import NewCamera
from jifang.tiers import Tier

TIERS = tuple(str(t) for t in Tier)


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
    data = {"id": row.id, "name": row.name, "grid": row.grid, "tier": row.tier, "location": row.location,
            "status": row.status, "status_detail": row.status_detail,
            "status_at": row.status_at.isoformat() if row.status_at else None, "enabled": row.enabled,
            "signage": row.signage, "purpose": row.purpose, "registered_at": row.registered_at.isoformat(),
            "registered_by": row.registered_by}
    if technical:  # never a password: only its presence
        data.update({"onvif_endpoint": row.onvif_endpoint, "main_rtsp_url": row.main_rtsp_url,
                     "sub_rtsp_url": row.sub_rtsp_url, "manufacturer": row.manufacturer, "model": row.model,
                     "firmware": row.firmware, "serial": row.serial,
                     "clock_offset_seconds": row.clock_offset_seconds,
                     "has_password": bool(row.password_encrypted)})
    return data


def register(state: AppState, principal: Principal, form: Registration) -> CameraRow:
    """Probe the camera over ONVIF, check its stream and clock, store it (edge.onboarding does the checks)."""
    camera: NewCamera = from_probe(form.endpoint, form.username, form.password)
    camera.id, camera.name, camera.grid, camera.tier = form.id, form.name, form.grid, form.tier
    camera.location, camera.signage, camera.purpose = form.location, form.signage, form.purpose
    store(state.registry(), camera, actor=principal.username, at=state.now(),
          ffprobe=state.settings.recorder.ffprobe)
    row = state.registry().camera(form.id)
    assert row is not None
    return row


def update(state: AppState, principal: Principal, camera_id: str, at: datetime, ip: str, *, tier: str | None,
           grid: str | None, signage: bool | None, purpose: str | None) -> CameraRow:
    """Change a point's tier, grid, signage or purpose; a key point keeps needing signage and a purpose."""
    if tier is not None and tier not in TIERS:
        raise ConfigError(f"tier must be one of {', '.join(TIERS)}, got {tier!r}")
    if grid is not None and grid not in grid_codes(state):
        raise ConfigError(f"grid {grid} is not registered")
    with state.catalog.session() as session:
        row = session.get(CameraRow, camera_id)
        if row is None:
            raise ConfigError(f"camera {camera_id} is not registered")
        before = (row.tier, row.grid, row.signage, row.purpose)
        row.tier = tier if tier is not None else row.tier
        row.grid = grid if grid is not None else row.grid
        row.signage = signage if signage is not None else row.signage
        row.purpose = purpose.strip()[:500] if purpose is not None else row.purpose
        if row.tier == str(Tier.KEY) and not (row.signage and row.purpose.strip()):
            raise ConfigError(f"camera {camera_id}: a key-tier point needs signage posted and its purpose recorded")
        after = (row.tier, row.grid, row.signage, row.purpose)
        if after != before:
            changes = ", ".join(f"{name} {old!r} -> {new!r}" for name, old, new
                                in zip(("tier", "grid", "signage", "purpose"), before, after, strict=True)
                                if old != new)
            session.add(AuditEntry(at=at, actor=principal.username, action="camera_edit",
                                   target=f"camera {camera_id}", detail=f"from {ip}; {changes}"[:1000]))
        session.commit()
        return row
