"""The audit log as the dashboard writes and reads it (through ``jifang.audit``, its one owner)."""

from __future__ import annotations

from fastapi import Request
from jifang.dashboard.security import scope_grids
from jifang.dashboard.state import client_ip, state_of
from jifang.dashboard.users import Principal

from jifang import audit
from jifang.db.models import AuditEntry


def record(request: Request, principal: Principal, action: str, target: str, purpose: str = "",
           detail: str = "", grid: str | None = None) -> None:
    """Write one audit entry; callers write it before the data leaves the server. ``grid``: the object's grid,
    which decides who may read the entry (None: admins only)."""
    state = state_of(request)
    audit.record(state.catalog, state.now(), principal.username, action, target, grid=grid, purpose=purpose,
                 source_ip=client_ip(request), detail=detail)


def readable_grids(request: Request, principal: Principal) -> frozenset[str] | None:
    """None (every entry) for admins; a supervisor reads the entries of the grids in their scope only."""
    if principal.role == "admin":
        return None
    return scope_grids(state_of(request), principal) or frozenset()


def entries(request: Request, principal: Principal, action: str | None, actor: str | None, limit: int,
            before: int | None) -> list[AuditEntry]:
    return audit.entries(state_of(request).catalog, readable_grids(request, principal), action=action,
                         actor=actor, limit=limit, before=before)
