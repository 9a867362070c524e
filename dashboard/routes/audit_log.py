"""The audit log, newest first: logins, footage and image views, exports, deletions, holds, user and camera
changes. Admins read every entry; a supervisor only the entries whose object lies in a grid of their scope."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response
from jifang.dashboard import audit
from jifang.dashboard.access import MAX_ID
from jifang.dashboard.security import require
from jifang.dashboard.templating import page
from jifang.dashboard.users import Principal

router = APIRouter()
AUDITORS = ("admin", "supervisor")


def as_json(entry) -> dict:  # type: ignore[no-untyped-def]
    return {"id": entry.id, "at": entry.at.isoformat(), "actor": entry.actor, "action": entry.action,
            "target": entry.target, "grid": entry.grid, "purpose": entry.purpose, "source_ip": entry.source_ip,
            "detail": entry.detail}


@router.get("/api/audit", tags=["audit"])
def api_audit(*, request: Request, action: str | None = Query(None, max_length=32),
              actor: str | None = Query(None, max_length=64), before: int | None = Query(None, ge=1, le=MAX_ID),
              limit: int = Query(100, ge=1, le=1000),
              principal: Annotated[Principal, Depends(require(*AUDITORS))]) -> list:
    return [as_json(e) for e in audit.entries(request, principal, action, actor, limit, before)]


@router.get("/audit", include_in_schema=False)
def audit_page(*, request: Request, action: str = Query("", max_length=32), actor: str = Query("", max_length=64),
               before: int | None = Query(None, ge=1, le=MAX_ID),
               principal: Annotated[Principal, Depends(require(*AUDITORS))]) -> Response:
    entries = audit.entries(request, principal, action or None, actor or None, 100, before)
    return page(request, "audit.html", entries=entries, action=action, actor=actor,
                older=entries[-1].id if len(entries) == 100 else None)
