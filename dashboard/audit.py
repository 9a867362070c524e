"""The append-only audit log, as the dashboard writes it: who, when, what, from where and why."""

from __future__ import annotations

from fastapi import Request
from jifang.dashboard.state import client_ip, state_of
from jifang.dashboard.users import Principal
from sqlalchemy import select

from jifang.db.models import AuditEntry


def record(request: Request, principal: Principal, action: str, target: str, purpose: str = "",
           detail: str = "") -> None:
    """Write one audit entry; callers write it before the data leaves the server."""
    state = state_of(request)
    parts = [f"from {client_ip(request)}"]
    if purpose:
        parts.append(f"purpose: {purpose}")
    if detail:
        parts.append(detail)
    with state.catalog.session() as session:
        session.add(AuditEntry(at=state.now(), actor=principal.username, action=action, target=target[:255],
                               detail="; ".join(parts)[:1000]))
        session.commit()


def entries(request: Request, action: str | None, actor: str | None, limit: int, before: int | None) \
        -> list[AuditEntry]:
    state = state_of(request)
    query = select(AuditEntry).order_by(AuditEntry.id.desc()).limit(limit)
    if action:
        query = query.where(AuditEntry.action == action)
    if actor:
        query = query.where(AuditEntry.actor == actor)
    if before:
        query = query.where(AuditEntry.id < before)
    with state.catalog.session() as session:
        return list(session.scalars(query))
