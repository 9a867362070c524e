"""Reading incidents: the inbox page of a set of grids (filtered, paged and counted in the database), the plain
list ``jifang incident list`` prints, a grid's team, and the JSON document an incident is delivered and
exported as."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import func, select

from jifang.db import Catalog
from jifang.db.models import IncidentRecipient, IncidentRow, IncidentStep, TeamMemberRow

# the inbox's columns (not the details document): plain rows, no ORM objects
SUMMARY = (IncidentRow.id, IncidentRow.category, IncidentRow.subcategory, IncidentRow.grid, IncidentRow.camera_id,
           IncidentRow.occurred_at, IncidentRow.kind, IncidentRow.summary, IncidentRow.state)


def inbox(catalog: Catalog, grids: frozenset[str] | set[str] | None, category: str | None, status: str | None,
          page: int, size: int, count_cap: int) -> tuple[list[Any], int, bool]:
    """One page of the incidents of ``grids`` (None: every grid), newest first, how many match counted up to a cap
    (at least ``count_cap``, and the whole of the pages before this one), and whether the count hit the cap (the
    total then means "at least that many"). Served by the index (grid, occurred_at) within a scope and by
    (occurred_at) across every grid."""
    query = select(*SUMMARY)
    if grids is not None:
        query = query.where(IncidentRow.grid.in_(sorted(grids)))
    if category:
        query = query.where(IncidentRow.category == category)
    if status:
        query = query.where(IncidentRow.state == status)
    cap = max(count_cap, page * size)
    with catalog.session() as session:
        # bounded count: at most ``cap`` + 1 matching rows are touched ("at least cap" beyond that)
        total = session.scalar(select(func.count()).select_from(
            query.with_only_columns(IncidentRow.id).limit(cap + 1).subquery())) or 0
        rows = list(session.execute(query.order_by(IncidentRow.occurred_at.desc(), IncidentRow.id.desc())
                                    .limit(size).offset((page - 1) * size)))
    return rows, min(total, cap), total > cap


def summary_json(row: Any) -> dict:
    """An inbox row (an IncidentRow or a row of SUMMARY columns) as JSON."""
    return {"id": row.id, "category": row.category, "subcategory": row.subcategory, "grid": row.grid,
            "camera": row.camera_id, "occurred_at": row.occurred_at.isoformat(), "kind": row.kind,
            "summary": row.summary, "state": row.state}


def incidents(catalog: Catalog, grid: str | None = None, state: str | None = None,
              category: str | None = None) -> list[IncidentRow]:
    """Every incident matching the filters, newest first (the CLI's list; the dashboard pages with ``inbox``)."""
    with catalog.session() as session:
        query = select(IncidentRow).order_by(IncidentRow.occurred_at.desc(), IncidentRow.id.desc())
        if grid:
            query = query.where(IncidentRow.grid == grid)
        if state:
            query = query.where(IncidentRow.state == state)
        if category:
            query = query.where(IncidentRow.category == category)
        return list(session.scalars(query))


def team(catalog: Catalog, grid: str) -> list[TeamMemberRow]:
    """The grid's team members, in the order they were added."""
    with catalog.session() as session:
        return list(session.scalars(select(TeamMemberRow).where(TeamMemberRow.grid == grid)
                                    .order_by(TeamMemberRow.id)))


def incident_document(catalog: Catalog, incident_id: int) -> dict:
    """The JSON an incident is delivered and exported as; KeyError when it does not exist."""
    with catalog.session() as session:
        row = session.get(IncidentRow, incident_id)
        if row is None:
            raise KeyError(incident_id)
        steps = list(session.scalars(select(IncidentStep).where(IncidentStep.incident_id == incident_id)
                                     .order_by(IncidentStep.id)))
        recipients = list(session.scalars(select(IncidentRecipient).where(
            IncidentRecipient.incident_id == incident_id).order_by(IncidentRecipient.rank)))
    return {
        "id": row.id, "category": row.category, "subcategory": row.subcategory, "gbt31000_code": row.gbt31000_code,
        "grid": row.grid, "camera": row.camera_id, "occurred_at": row.occurred_at.isoformat(), "kind": row.kind,
        "summary": row.summary, "state": row.state, **json.loads(row.details),
        "steps": [{"state": s.state, "at": s.at.isoformat(), "actor": s.actor, "note": s.note,
                   "assignee": s.assignee} for s in steps],
        "recipients": [{"name": r.name, "role": r.role, "rank": r.rank} for r in recipients],
    }
