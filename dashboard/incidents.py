"""The incident inbox: a scope's incidents newest first, filtered and paged in the database."""

from __future__ import annotations

from sqlalchemy import func, select

from dashboard.security import scope_grids
from dashboard.state import AppState
from dashboard.users import Principal
from jifang.db.models import IncidentRow, TeamMemberRow
from jifang.incidents import NEXT_STATE, State


def inbox(state: AppState, principal: Principal, category: str | None, status: str | None, page: int,
          size: int) -> tuple[list[IncidentRow], int]:
    grids = scope_grids(state, principal)
    query = select(IncidentRow)
    if grids is not None:
        query = query.where(IncidentRow.grid.in_(sorted(grids)))
    if category:
        query = query.where(IncidentRow.category == category)
    if status:
        query = query.where(IncidentRow.state == status)
    with state.catalog.session() as session:
        total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
        rows = list(session.scalars(query.order_by(IncidentRow.occurred_at.desc(), IncidentRow.id.desc())
                                    .limit(size).offset((page - 1) * size)))
    return rows, total


def summary_json(row: IncidentRow) -> dict:
    return {"id": row.id, "category": row.category, "subcategory": row.subcategory, "grid": row.grid,
            "camera": row.camera_id, "occurred_at": row.occurred_at.isoformat(), "kind": row.kind,
            "summary": row.summary, "state": row.state}


def next_state(current: str) -> str | None:
    following = NEXT_STATE.get(State(current))
    return str(following) if following else None


def team(state: AppState, grid: str) -> list[TeamMemberRow]:
    with state.catalog.session() as session:
        return list(session.scalars(select(TeamMemberRow).where(TeamMemberRow.grid == grid)
                                    .order_by(TeamMemberRow.id)))
