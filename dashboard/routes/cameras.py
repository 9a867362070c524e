"""Cameras: list (every role, within scope), register from an ONVIF probe and edit (technician, admin)."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Form, HTTPException, Request
from fastapi.responses import RedirectResponse, Response
from jifang.dashboard import cameras, devices, live
from jifang.dashboard.access import camera_access
from jifang.dashboard.audit import record
from jifang.dashboard.security import require, same_origin
from jifang.dashboard.state import client_ip, state_of
from jifang.dashboard.templating import page
from jifang.dashboard.users import Principal
from pydantic import BaseModel, Field

from jifang.db.models import CameraRow
from jifang.errors import JifangError, ManagedByFileError

router = APIRouter()
EVERYONE = ("admin", "technician", "supervisor", "grid_worker")
TECH = ("admin", "technician")
TECHNICAL = {"admin", "technician"}


class CameraIn(BaseModel):
    endpoint: str = Field(max_length=200, description="ONVIF HOST:PORT")
    username: str = Field("", max_length=64)
    password: str = Field("", max_length=256)
    id: str = Field(pattern=r"^[0-9]{20}$")
    name: str = Field(min_length=1, max_length=100)
    grid: str = Field(min_length=1, max_length=32)
    tier: str
    location: str = Field("", max_length=200)
    signage: bool = False
    purpose: str = Field("", max_length=500)
    recognize: list[Literal["plate", "face"]] = Field(default_factory=list, description="recognition kinds")
    site: str = Field("", max_length=64, description="only agents of this site record it ('': any)")


class CameraPatch(BaseModel):
    tier: str | None = None
    grid: str | None = Field(None, max_length=32)
    signage: bool | None = None
    purpose: str | None = Field(None, max_length=500)
    enabled: bool | None = Field(None, description="record the point (running agents apply it within seconds)")
    recognize: list[Literal["plate", "face"]] | None = None
    sub_rtsp_url: str | None = Field(None, max_length=500, description="sub-stream for recognition ('': main)")
    site: str | None = Field(None, max_length=64)


@router.get("/cameras", include_in_schema=False)
def camera_list(request: Request, principal: Annotated[Principal, Depends(require(*EVERYONE))]) -> Response:
    technical = principal.role in TECHNICAL
    state = state_of(request)
    return page(request, "cameras.html", cameras=cameras.visible(state, principal), technical=technical,
                devices=devices.devices(state) if technical else [])


@router.get("/api/gb28181/devices", tags=["cameras"])
def api_gb28181_devices(request: Request, principal: Annotated[Principal, Depends(require(*TECH))]) -> list[dict]:
    """GB/T 28181 devices with their online state (from the last keepalive), address, registration and channels,
    each with its grid and tier once assigned and its media state (unassigned, disabled, receiving, waiting, or
    down with the cause of its open gap)."""
    return [devices.to_json(view) for view in devices.devices(state_of(request))]


@router.get("/api/cameras", tags=["cameras"])
def api_cameras(request: Request, principal: Annotated[Principal, Depends(require(*EVERYONE))]) -> list[dict]:
    technical = principal.role in TECHNICAL
    return [cameras.to_json(row, technical) for row in cameras.visible(state_of(request), principal)]


@router.get("/api/cameras/{camera_id}/snapshot.jpg", tags=["cameras"], response_class=Response,
            dependencies=[Depends(same_origin)],
            responses={200: {"content": {"image/jpeg": {}}}, 404: {"description": "no recent frame"}})
def api_snapshot(request: Request,
                 scoped: Annotated[tuple[Principal, CameraRow], Depends(camera_access(*EVERYONE))]) -> Response:
    """The live view: the last frame of the camera's newest uploaded segment (cached a few seconds, no
    transcoding). A viewing is audited (once per user and camera every 5 minutes of polling)."""
    principal, row = scoped
    state = state_of(request)
    try:
        shot = live.snapshot(state, row.id)
    except live.NoSnapshot as exc:
        raise HTTPException(404, str(exc)) from None
    if live.should_audit(state, principal.user_id, row.id):
        record(request, principal, "view_live", f"camera {row.id}", purpose="live view",
               detail=f"segment {shot.segment_id}", grid=row.grid)
        state.metrics.footage.labels("live").inc()
    return Response(shot.jpeg, media_type="image/jpeg",
                    headers={"cache-control": "private, no-store", "x-frame-time": shot.taken_at.isoformat()})


@router.get("/cameras/{camera_id}/live", include_in_schema=False)
def camera_page(request: Request,
                scoped: Annotated[tuple[Principal, CameraRow], Depends(camera_access(*EVERYONE))]) -> Response:
    """The camera page: live snapshot (polled every 5 s), registry status and health history (gap ledger)."""
    principal, row = scoped
    return page(request, "camera.html", camera=row, gaps=live.health(state_of(request), row.id),
                technical=principal.role in TECHNICAL)


@router.get("/api/cameras/{camera_id}/health", tags=["cameras"])
def api_health(request: Request,
               scoped: Annotated[tuple[Principal, CameraRow], Depends(camera_access(*EVERYONE))]) -> dict:
    """Current registry status and the gap ledger (outages with causes), newest first."""
    row = scoped[1]
    return {"camera": row.id, "status": row.status, "status_detail": row.status_detail,
            "status_at": row.status_at.isoformat() if row.status_at else None,
            "gaps": [{"start": g.start_at.isoformat(), "end": g.end_at.isoformat() if g.end_at else None,
                      "cause": g.cause, "detail": g.detail} for g in live.health(state_of(request), row.id)]}


@router.get("/api/cameras/{camera_id}", tags=["cameras"])
def api_camera(scoped: Annotated[tuple[Principal, CameraRow], Depends(camera_access(*EVERYONE))]) -> dict:
    principal, row = scoped
    return cameras.to_json(row, principal.role in TECHNICAL)


def _register(request: Request, principal: Principal, body: CameraIn) -> CameraRow:
    row = cameras.register(state_of(request), principal, cameras.Registration(**body.model_dump()))
    record(request, principal, "camera_add", f"camera {row.id}",
           detail=f"tier {row.tier}; onvif {row.onvif_endpoint}", grid=row.grid)
    return row


@router.post("/api/cameras", tags=["cameras"], status_code=201)
def api_register(request: Request, body: CameraIn, principal: Annotated[Principal, Depends(require(*TECH))]) -> dict:
    """Probe over ONVIF, check stream and clock, register. 400 with the reason when a check fails."""
    return cameras.to_json(_register(request, principal, body), True)


@router.get("/cameras/new", include_in_schema=False)
def register_form(request: Request, principal: Annotated[Principal, Depends(require(*TECH))]) -> Response:
    return page(request, "camera_new.html", grids=cameras.grid_codes(state_of(request)), tiers=cameras.TIERS,
                kinds=cameras.KINDS, form={}, error="")


@router.post("/cameras/new", include_in_schema=False)
def register_submit(*, request: Request, endpoint: str = Form(..., max_length=200), username: str = Form(""),
                    password: str = Form(""), id: str = Form(...), name: str = Form(...), grid: str = Form(...),
                    tier: str = Form(...), location: str = Form(""), signage: str = Form(""),
                    purpose: str = Form(""), recognize: Annotated[list[str] | None, Form()] = None,
                    site: str = Form("", max_length=64),
                    principal: Annotated[Principal, Depends(require(*TECH))]) -> Response:
    form = {"endpoint": endpoint, "username": username, "id": id, "name": name, "grid": grid, "tier": tier,
            "location": location, "signage": signage == "yes", "purpose": purpose, "recognize": recognize or [],
            "site": site}
    try:
        body = CameraIn(password=password, **form)
        row = _register(request, principal, body)
    except (JifangError, ValueError) as exc:
        message = str(exc).splitlines()[0] if isinstance(exc, JifangError) else "invalid input: " + "; ".join(
            f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors())  # type: ignore[attr-defined]
        return page(request, "camera_new.html", status_code=400, grids=cameras.grid_codes(state_of(request)),
                    tiers=cameras.TIERS, kinds=cameras.KINDS, form=form, error=message)
    return RedirectResponse(f"/cameras?registered={row.id}", status_code=303)


@router.get("/cameras/{camera_id}", include_in_schema=False)
def edit_form(request: Request,
              scoped: Annotated[tuple[Principal, CameraRow], Depends(camera_access(*TECH))]) -> Response:
    return _edit_page(request, scoped[1])


def _edit_page(request: Request, row: CameraRow, error: str = "", status_code: int = 200) -> Response:
    return page(request, "camera_edit.html", status_code=status_code, camera=row,
                view=cameras.to_json(row, True), grids=cameras.grid_codes(state_of(request)), tiers=cameras.TIERS,
                kinds=cameras.KINDS, error=error)


@router.post("/cameras/{camera_id}", include_in_schema=False)
def edit_submit(*, request: Request, tier: str = Form(...), grid: str = Form(...), signage: str = Form(""),
                purpose: str = Form(""), enabled: str = Form(""),
                recognize: Annotated[list[str] | None, Form()] = None,
                sub_rtsp_url: str = Form("", max_length=500), site: str = Form("", max_length=64),
                scoped: Annotated[tuple[Principal, CameraRow], Depends(camera_access(*TECH))]) -> Response:
    principal, row = scoped
    state = state_of(request)
    try:
        cameras.update(state, principal, row.id, state.now(), client_ip(request), tier=tier, grid=grid,
                       signage=signage == "yes", purpose=purpose, enabled=enabled == "yes",
                       recognize=[k for k in cameras.KINDS if k in (recognize or [])], sub_rtsp_url=sub_rtsp_url,
                       site=site)
    except JifangError as exc:
        return _edit_page(request, row, str(exc), 409 if isinstance(exc, ManagedByFileError) else 400)
    return RedirectResponse("/cameras", status_code=303)


@router.patch("/api/cameras/{camera_id}", tags=["cameras"],
              responses={409: {"description": "the point is declared in the configuration file"}})
def api_edit(request: Request, body: CameraPatch,
             scoped: Annotated[tuple[Principal, CameraRow], Depends(camera_access(*TECH))]) -> dict:
    """Change a point; running agents apply it within seconds. 409 when the configuration file declares the
    point (change the file and run 'jifang registry sync')."""
    principal, row = scoped
    state = state_of(request)
    try:
        updated = cameras.update(state, principal, row.id, state.now(), client_ip(request), **body.model_dump())
    except ManagedByFileError as exc:
        raise HTTPException(409, str(exc)) from None
    return cameras.to_json(updated, True)
