"""Incidents: the inbox (grid workers, supervisors, admins; within scope), the Appendix A report page and the
workflow 受理 → 分派 → 处置 → 反馈 → 办结 (grid workers and admins)."""

from __future__ import annotations

import math
from typing import Annotated

from fastapi import APIRouter, Depends, Form, HTTPException, Query, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response
from jifang.dashboard.access import incident_access
from jifang.dashboard.security import require, scope_grids
from jifang.dashboard.state import state_of
from jifang.dashboard.templating import page
from jifang.dashboard.users import Principal
from pydantic import BaseModel, Field

from jifang.db.models import IncidentRow
from jifang.errors import ConfigError
from jifang.incidents import CATEGORIES, State, next_state
from jifang.incidents.inbox import inbox, incident_document, summary_json, team
from jifang.incidents.workflow import advance

router = APIRouter()
READERS = ("admin", "supervisor", "grid_worker")
HANDLERS = ("admin", "grid_worker")
STATES = [str(s) for s in State]


class AdvanceIn(BaseModel):
    to: str = Field(description="the next state: 受理, 分派, 处置, 反馈 or 办结")
    note: str = Field("", max_length=1000)
    assignee: str = Field("", max_length=64)


def _advance(request: Request, principal: Principal, row: IncidentRow, body: AdvanceIn) -> dict:
    state = state_of(request)
    if body.to not in STATES:
        raise ConfigError(f"unknown state {body.to!r}")
    if body.assignee and body.assignee not in {m.name for m in team(state.catalog, row.grid)}:
        raise ConfigError(f"{body.assignee} is not a member of grid {row.grid}'s team")
    advance(state.catalog, row.id, body.to, principal.username, state.now(), body.note.strip(), body.assignee)
    return incident_document(state.catalog, row.id)


def _inbox(request: Request, principal: Principal, category: str | None, status: str | None,
           page_no: int) -> tuple[list, int, bool]:
    """One inbox page within the principal's scope; the count is capped (``DashboardOptions.inbox_count_cap``)."""
    state = state_of(request)
    return inbox(state.catalog, scope_grids(state, principal), category, status, page_no, state.options.page_size,
                 state.options.inbox_count_cap)


def _next(current: str) -> str | None:
    following = next_state(current)
    return str(following) if following else None


@router.get("/api/incidents", tags=["incidents"], response_class=JSONResponse)
def api_inbox(*, request: Request, category: str | None = Query(None, max_length=16),
              state: str | None = Query(None, max_length=8), page_no: int = Query(1, ge=1, le=100_000, alias="page"),
              principal: Annotated[Principal, Depends(require(*READERS))]) -> JSONResponse:
    """The scope's incidents newest first, one page; ``total`` counts at most a cap (``total_is_lower_bound``)."""
    size = state_of(request).options.page_size
    rows, total, capped = _inbox(request, principal, category, state, page_no)
    # a JSONResponse of plain str/int values: no jsonable_encoder pass over every item
    return JSONResponse({"total": total, "total_is_lower_bound": capped, "page": page_no, "page_size": size,
                         "items": [summary_json(r) for r in rows]})


@router.get("/incidents", include_in_schema=False)
def inbox_page(*, request: Request, category: str = Query("", max_length=16), state: str = Query("", max_length=8),
               page_no: int = Query(1, ge=1, le=100_000, alias="page"),
               principal: Annotated[Principal, Depends(require(*READERS))]) -> Response:
    size = state_of(request).options.page_size
    rows, total, capped = _inbox(request, principal, category or None, state or None, page_no)
    return page(request, "incidents.html", incidents=rows, total=total, capped=capped, page_no=page_no,
                pages=max(1, math.ceil(total / size)), category=category, state=state, categories=list(CATEGORIES),
                states=STATES)


@router.get("/api/incidents/{incident_id}", tags=["incidents"])
def api_incident(request: Request,
                 scoped: Annotated[tuple[Principal, IncidentRow], Depends(incident_access(*READERS))]) -> dict:
    return incident_document(state_of(request).catalog, scoped[1].id)


@router.get("/incidents/{incident_id}", include_in_schema=False)
def incident_page(request: Request,
                  scoped: Annotated[tuple[Principal, IncidentRow], Depends(incident_access(*READERS))]) -> Response:
    principal, row = scoped
    state = state_of(request)
    document = incident_document(state.catalog, row.id)
    return page(request, "incident.html", doc=document, row=row, next_state=_next(row.state),
                team=team(state.catalog, row.grid), can_handle=principal.role in HANDLERS)


@router.post("/api/incidents/{incident_id}/advance", tags=["incidents"])
def api_advance(request: Request, body: AdvanceIn,
                scoped: Annotated[tuple[Principal, IncidentRow], Depends(incident_access(*HANDLERS))]) -> dict:
    """Move the incident one step; 400 when the step is not the next one."""
    return _advance(request, scoped[0], scoped[1], body)


@router.post("/incidents/{incident_id}/advance", include_in_schema=False)
def advance_submit(*, request: Request, to: str = Form(...), note: str = Form(""), assignee: str = Form(""),
                   scoped: Annotated[tuple[Principal, IncidentRow], Depends(incident_access(*HANDLERS))]) -> Response:
    try:
        _advance(request, scoped[0], scoped[1], AdvanceIn(to=to, note=note, assignee=assignee))
    except ConfigError as exc:
        raise HTTPException(400, str(exc)) from None
    return RedirectResponse(f"/incidents/{scoped[1].id}", status_code=303)
