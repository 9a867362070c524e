"""The audit log's one owner: every writer (dashboard, CLI, retention jobs) records through here.

An entry says who (``actor``), when, what (``action`` on ``target``), why (``purpose``, its own column: the
legal reason a person gave for viewing footage), from where (``source_ip``, validated) and in which grid the
object lies (``grid``). The grid is what scopes reading: a supervisor sees the entries of their grids only;
entries about no grid (logins, user administration, the watchlist) are for admins.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Collection
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from jifang.db import Catalog
from jifang.db.models import AuditEntry

SYSTEM = "system"


def valid_ip(text: str | None) -> str:
    """An IP address as text, or "" when ``text`` is not one (a forged header never reaches the log)."""
    try:
        return str(ipaddress.ip_address((text or "").strip()))
    except ValueError:
        return ""


def entry(at: datetime, actor: str, action: str, target: str, *, grid: str | None = None, purpose: str = "",
          source_ip: str = "", detail: str = "") -> AuditEntry:
    return AuditEntry(at=at, actor=(actor or "-")[:64], action=action[:32], target=target[:255],
                      grid=grid[:32] if grid else None, purpose=purpose.strip()[:500],
                      source_ip=valid_ip(source_ip), detail=detail[:1000])


def add(session: Session, at: datetime, actor: str, action: str, target: str, **fields: str | None) -> None:
    """Add an entry to the caller's transaction (it is written together with the change it records)."""
    session.add(entry(at, actor, action, target, **fields))  # type: ignore[arg-type]


def record(catalog: Catalog, at: datetime, actor: str, action: str, target: str, **fields: str | None) -> None:
    """Write one entry in its own transaction (views and exports: written before the data leaves)."""
    with catalog.session() as session:
        add(session, at, actor, action, target, **fields)
        session.commit()


def entries(catalog: Catalog, grids: Collection[str] | None, *, action: str | None = None,
            actor: str | None = None, limit: int = 100, before: int | None = None) -> list[AuditEntry]:
    """Newest first. ``grids`` None: every entry (admins); otherwise only entries of those grids."""
    query = select(AuditEntry).order_by(AuditEntry.id.desc()).limit(limit)
    if grids is not None:
        query = query.where(AuditEntry.grid.in_(sorted(grids)))
    if action:
        query = query.where(AuditEntry.action == action)
    if actor:
        query = query.where(AuditEntry.actor == actor)
    if before:
        query = query.where(AuditEntry.id < before)
    with catalog.session() as session:
        return list(session.scalars(query))
