"""Retention compliance (supervisors, admins): per point coverage, gaps with causes, lock margins, legal holds
and the printable audit report of retention.report."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import HTMLResponse, Response
from jifang.dashboard import compliance, timeline
from jifang.dashboard.access import CAMERA_ID
from jifang.dashboard.audit import record
from jifang.dashboard.i18n import pick
from jifang.dashboard.security import require, same_origin
from jifang.dashboard.state import state_of
from jifang.dashboard.templating import page
from jifang.dashboard.users import Principal
from jifang.retention.coverage import PointAudit
from jifang.retention.report import render, summary

router = APIRouter()
AUDITORS = ("admin", "supervisor")
REPORT_CSP = ("default-src 'none'; style-src 'unsafe-inline'; img-src data:; frame-ancestors 'none'; "
              "base-uri 'none'; form-action 'none'")


@router.get("/api/retention/compliance", tags=["retention"], response_class=Response,
            responses={200: {"content": {"application/json": {}}}})
def api_compliance(request: Request, principal: Annotated[Principal, Depends(require(*AUDITORS))]) -> Response:
    """The retention audit of the user's points, as of ``generated_at`` (recomputed in the background at most
    every few minutes: see dashboard.compliance)."""
    return Response(compliance.document(state_of(request), principal), media_type="application/json")


@router.get("/retention", include_in_schema=False)
def retention_page(request: Request, principal: Annotated[Principal, Depends(require(*AUDITORS))]) -> Response:
    state = state_of(request)
    scoped = compliance.audit(state, principal)
    return page(request, "retention.html", audits=scoped.audits, summary=summary(scoped.audits),
                holds=compliance.holds(state, principal), audited_at=scoped.at)


def _point(request: Request, principal: Principal, camera_id: str) -> PointAudit:
    found = compliance.point(state_of(request), principal, camera_id)
    if found is None:
        raise HTTPException(404, "not found")
    return found


@router.get("/api/retention/points/{camera_id}/timeline", tags=["retention"])
def api_timeline(request: Request, principal: Annotated[Principal, Depends(require(*AUDITORS))],
                 camera_id: str = CAMERA_ID) -> dict:
    """The point's coverage timeline: days x hours (China Standard Time), each hour recorded, explained_gap,
    violation or outside_window, over its required window (at most the last 92 days), newest day first."""
    found = _point(request, principal, camera_id)
    return timeline.to_json(found, timeline.timeline(found))


@router.get("/retention/points/{camera_id}", include_in_schema=False)
def point_page(request: Request, principal: Annotated[Principal, Depends(require(*AUDITORS))],
               camera_id: str = CAMERA_ID) -> Response:
    found = _point(request, principal, camera_id)
    return page(request, "retention_point.html", audit=found, days=timeline.timeline(found),
                max_days=timeline.MAX_DAYS)


@router.get("/retention/report", include_in_schema=False, dependencies=[Depends(same_origin)])
def printable_report(request: Request, principal: Annotated[Principal, Depends(require(*AUDITORS))]) -> Response:
    """The retention issue's printable HTML report, for the points of the user's scope (an audited export)."""
    state = state_of(request)
    scoped = compliance.audit(state, principal)
    record(request, principal, "export", "retention report", detail=f"{len(scoped.audits)} points")
    html = render(scoped.audits, "html", scoped.at, scoped.settings, pick(request))
    return HTMLResponse(html, headers={"content-security-policy": REPORT_CSP})
