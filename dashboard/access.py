"""Dependencies that load one object and check it is in the principal's scope: 404 otherwise, so that a user
cannot even learn whether another grid's object exists."""

# no "from __future__ import annotations": FastAPI must evaluate the dependency annotations of the closures
from collections.abc import Callable
from typing import Annotated

from fastapi import Depends, HTTPException, Path, Request
from jifang.dashboard.security import in_scope, require
from jifang.dashboard.state import state_of
from jifang.dashboard.users import Principal

from jifang.db.models import CameraRow, IncidentRow

CAMERA_ID = Path(..., pattern=r"^[0-9]{20}$")

MAX_ID = 2**31 - 1  # ids are 32-bit INTEGER columns: a larger number is a 422, never a database overflow (500)


def camera_access(*roles: str) -> Callable[..., tuple[Principal, CameraRow]]:
    def load(*, request: Request, camera_id: str = CAMERA_ID,
             principal: Annotated[Principal, Depends(require(*roles))]) -> tuple[Principal, CameraRow]:
        state = state_of(request)
        with state.catalog.session() as session:
            row = session.get(CameraRow, camera_id)
        if row is None or not in_scope(state, principal, row.grid):
            raise HTTPException(404, "not found")
        return principal, row

    return load


def incident_access(*roles: str) -> Callable[..., tuple[Principal, IncidentRow]]:
    def load(*, request: Request, incident_id: int = Path(..., ge=1, le=MAX_ID),
             principal: Annotated[Principal, Depends(require(*roles))]) -> tuple[Principal, IncidentRow]:
        state = state_of(request)
        with state.catalog.session() as session:
            row = session.get(IncidentRow, incident_id)
        if row is None or not in_scope(state, principal, row.grid):
            raise HTTPException(404, "not found")
        return principal, row

    return load
