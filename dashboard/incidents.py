"""The incident inbox: a scope's incidents newest first, filtered and paged in the database."""

from __future__ import annotations

from typing import Any

from jifang.dashboard.security import scope_grids
from jifang.dashboard.state import AppState
from jifang.dashboard.users import Principal
from sqlalchemy import func, select

from jifang.db.models import IncidentRow, TeamMemberRow
from jifang.incidents import NEXT_STATE, State


def inbox(state: AppState, principal: Principal, category: str | None, status: str | None, page: int,
          size: int) -> tuple[list[Any], int, bool]:
    """One page of the scope's incidents, newest first, and how many match (counted up to a cap: a total above
    ``DashboardOptions.inbox_count_cap`` means "at least that many").
    Served by the index (grid, occurred_at) within a scope and by (occurred_at) across every grid."""
    grids = scope_grids(state, principal)
    query = select(*SUMMARY)
    if grids is not None:
        query = query.where(IncidentRow.grid.in_(sorted(grids)))
    if category:
        query = query.where(IncidentRow.category == category)
    if status:
        query = query.where(IncidentRow.state == status)
    cap = max(state.options.inbox_count_cap, page * size)
    with state.catalog.session() as session:
        # bounded count: at most ``cap`` + 1 matching rows are touched ("at least cap" beyond that)
        total = session.scalar(select(func.count()).select_from(
            query.with_only_columns(IncidentRow.id).limit(cap + 1).subquery())) or 0
        rows = list(session.execute(query.order_by(IncidentRow.occurred_at.desc(), IncidentRow.id.desc())
                                    .limit(size).offset((page - 1) * size)))
    return rows, min(total, cap), total > cap


# the inbox's columns (not the details document): plain rows, no ORM objects
SUMMARY = (IncidentRow.id, IncidentRow.category, IncidentRow.subcategory, IncidentRow.grid, IncidentRow.camera_id,
           IncidentRow.occurred_at, IncidentRow.kind, IncidentRow.summary, IncidentRow.state)


def summary_json(row: Any) -> dict:
    """An inbox row (an IncidentRow or a row of SUMMARY columns) as JSON."""
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
