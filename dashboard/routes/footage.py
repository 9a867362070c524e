"""Footage and evidence images: streamed by the server after the scope check and an audit entry."""

from __future__ import annotations

import json
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Form, HTTPException, Path, Query, Request
from fastapi.responses import Response
from jifang.dashboard import footage
from jifang.dashboard.access import MAX_ID, camera_access, incident_access
from jifang.dashboard.audit import record
from jifang.dashboard.security import current_principal, in_scope, same_origin
from jifang.dashboard.state import AppState, state_of
from jifang.dashboard.templating import page
from jifang.dashboard.users import Principal
from pydantic import BaseModel, Field

from jifang.db.models import CameraRow, IncidentRow
from jifang.errors import JifangError
from jifang.tiers import MediaKind

router = APIRouter()
VIEWERS = ("admin", "supervisor", "grid_worker")


class FootageIn(BaseModel):
    start: str = Field(max_length=40, description="ISO 8601; without a zone: China Standard Time")
    end: str = Field(max_length=40)
    purpose: str = Field(min_length=2, max_length=300, description="why this footage is opened (audited)")


def _grant(request: Request, principal: Principal, camera: CameraRow, body: FootageIn) -> dict:
    state = state_of(request)
    start, end = footage.parse_moment(body.start), footage.parse_moment(body.end)
    footage.check_range(start, end, body.purpose)
    rows = footage.segments(state, camera.id, start, end)
    record(request, principal, "view_video", f"camera {camera.id}", purpose=body.purpose.strip(),
           detail=f"{start.isoformat()}..{end.isoformat()} ({len(rows)} segments)", grid=camera.grid)
    state.metrics.footage.labels("video").inc()
    token = footage.issue(state, principal, camera.id, start, end)
    return {"camera": camera.id, "start": start.isoformat(), "end": end.isoformat(),
            "expires_in": state.options.footage_grant_seconds,
            "playlist": f"/api/footage/grants/{token}/playlist.m3u8",
            "segments": [{"id": r.id, "start": r.start_at.isoformat(), "end": r.end_at.isoformat(),
                          "url": f"/api/footage/grants/{token}/segments/{r.id}"} for r in rows]}


@router.post("/api/footage/{camera_id}", tags=["footage"])
def api_open(request: Request, body: FootageIn,
             scoped: Annotated[tuple[Principal, CameraRow], Depends(camera_access(*VIEWERS))]) -> dict:
    """Open a time range of a camera's video (at most 2 hours) with a purpose; the answer lists segment URLs
    valid for a few minutes, for this user only."""
    return _grant(request, scoped[0], scoped[1], body)


@router.get("/footage/{camera_id}", include_in_schema=False)
def open_form(*, request: Request, start: str = Query("", max_length=40), end: str = Query("", max_length=40),
              scoped: Annotated[tuple[Principal, CameraRow], Depends(camera_access(*VIEWERS))]) -> Response:
    return page(request, "footage.html", camera=scoped[1], start=start, end=end, grant=None, error="")


@router.post("/footage/{camera_id}", include_in_schema=False)
def open_submit(*, request: Request, start: str = Form(...), end: str = Form(...), purpose: str = Form(...),
                scoped: Annotated[tuple[Principal, CameraRow], Depends(camera_access(*VIEWERS))]) -> Response:
    try:
        grant = _grant(request, scoped[0], scoped[1], FootageIn(start=start, end=end, purpose=purpose))
    except (JifangError, ValueError) as exc:
        message = str(exc) if isinstance(exc, JifangError) else "state the purpose of viewing this footage"
        return page(request, "footage.html", status_code=400, camera=scoped[1], start=start, end=end, grant=None,
                    error=message)
    return page(request, "footage.html", camera=scoped[1], start=start, end=end, grant=grant,
                segments_json=json.dumps([s["url"] for s in grant["segments"]]), error="")


def _scoped_grant(state: AppState, principal: Principal, token: str) -> footage.Grant:
    grant = footage.open_grant(state, principal, token)
    if grant is None:
        raise HTTPException(404, "not found or expired")
    with state.catalog.session() as session:
        camera = session.get(CameraRow, grant.camera_id)
    if camera is None or not in_scope(state, principal, camera.grid):  # scope can shrink while a grant lives
        raise HTTPException(404, "not found")
    return grant


def _segment_bytes(request: Request, principal: Principal, grant: str, segment_id: int) -> bytes:
    state = state_of(request)
    if principal.role not in VIEWERS:
        raise HTTPException(403, "forbidden")
    row = footage.segment_of(state, _scoped_grant(state, principal, grant), segment_id)
    if row is None:
        raise HTTPException(404, "not found")
    try:
        return state.store.read(MediaKind.VIDEO, row.key)
    except (FileNotFoundError, JifangError):
        raise HTTPException(404, "segment missing from the store") from None


PRIVATE = {"cache-control": "private, no-store"}


@router.get("/api/footage/grants/{grant}/segments/{segment_id}", tags=["footage"],
            response_class=Response, responses={200: {"content": {"video/mp4": {}}}})
def segment(*, request: Request, grant: str = Path(..., max_length=400), segment_id: int = Path(..., ge=1, le=MAX_ID),
            principal: Annotated[Principal, Depends(current_principal)]) -> Response:
    return Response(_segment_bytes(request, principal, grant, segment_id), media_type="video/mp4", headers=PRIVATE)


@router.get("/api/footage/grants/{grant}/playlist.m3u8", tags=["footage"],
            response_class=Response, responses={200: {"content": {"application/vnd.apple.mpegurl": {}}}})
def hls_playlist(*, request: Request, grant: str = Path(..., max_length=400),
                 principal: Annotated[Principal, Depends(current_principal)]) -> Response:
    """The grant's segments as an HLS playlist (EXT-X-VERSION 7, fMP4: an EXT-X-MAP per segment), for players
    with HLS support; valid as long as the grant."""
    state = state_of(request)
    if principal.role not in VIEWERS:
        raise HTTPException(403, "forbidden")
    opened = _scoped_grant(state, principal, grant)
    rows = footage.segments(state, opened.camera_id, opened.start, opened.end)
    return Response(footage.playlist(rows), media_type="application/vnd.apple.mpegurl", headers=PRIVATE)


def _part(request: Request, principal: Principal, grant: str, segment_id: int, which: int) -> bytes:
    parts = footage.split_fragmented(_segment_bytes(request, principal, grant, segment_id))
    if parts is None:
        raise HTTPException(404, "not a fragmented MP4 segment")
    return parts[which]


@router.get("/api/footage/grants/{grant}/segments/{segment_id}/init.mp4", tags=["footage"],
            response_class=Response, responses={200: {"content": {"video/mp4": {}}}})
def hls_init(*, request: Request, grant: str = Path(..., max_length=400), segment_id: int = Path(..., ge=1, le=MAX_ID),
             principal: Annotated[Principal, Depends(current_principal)]) -> Response:
    """The segment's initialisation part (ftyp + moov): the playlist's EXT-X-MAP."""
    return Response(_part(request, principal, grant, segment_id, 0), media_type="video/mp4", headers=PRIVATE)


@router.get("/api/footage/grants/{grant}/segments/{segment_id}/media.m4s", tags=["footage"],
            response_class=Response, responses={200: {"content": {"video/iso.segment": {}}}})
def hls_media(*, request: Request, grant: str = Path(..., max_length=400), segment_id: int = Path(..., ge=1, le=MAX_ID),
              principal: Annotated[Principal, Depends(current_principal)]) -> Response:
    """The segment's media part (moof/mdat fragments)."""
    return Response(_part(request, principal, grant, segment_id, 1), media_type="video/iso.segment",
                    headers=PRIVATE)


@router.get("/api/incidents/{incident_id}/images/{which}", tags=["footage"], dependencies=[Depends(same_origin)],
            response_class=Response, responses={200: {"content": {"image/jpeg": {}}}})
def evidence_image(request: Request, which: Literal["crop", "frame"],
                   scoped: Annotated[tuple[Principal, IncidentRow], Depends(incident_access(*VIEWERS))]) -> Response:
    principal, row = scoped
    state = state_of(request)
    try:
        key = json.loads(row.details).get("evidence", {}).get(which) or ""
    except (ValueError, AttributeError):
        key = ""
    if not footage.valid_image_key(key, row.camera_id):
        raise HTTPException(404, "no such evidence image")
    record(request, principal, "view_image", key, purpose=f"incident {row.id} handling", grid=row.grid)
    state.metrics.footage.labels("image").inc()
    try:
        data = state.store.read(MediaKind.IMAGE, key)
    except (FileNotFoundError, JifangError):
        raise HTTPException(404, "image missing from the store") from None
    return Response(data, media_type="image/jpeg", headers={"cache-control": "private, no-store"})

