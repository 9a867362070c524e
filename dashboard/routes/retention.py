"""Retention compliance (supervisors, admins): per point coverage, gaps with causes, lock margins, legal holds
and the printable audit report of retention.report."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, Response

from dashboard import compliance
from dashboard.audit import record
from dashboard.security import require
from dashboard.state import state_of
from dashboard.templating import page
from dashboard.users import Principal
from retention.report import render, summary, to_data

router = APIRouter()
AUDITORS = ("admin", "supervisor")
REPORT_CSP = ("default-src 'none'; style-src 'unsafe-inline'; img-src data:; frame-ancestors 'none'; "
              "base-uri 'none'; form-action 'none'")


@router.get("/api/retention/compliance", tags=["retention"])
def api_compliance(request: Request, principal: Annotated[Principal, Depends(require(*AUDITORS))]) -> dict:
    state = state_of(request)
    return to_data(compliance.audit(state, principal).audits, state.now())


@router.get("/retention", include_in_schema=False)
def retention_page(request: Request, principal: Annotated[Principal, Depends(require(*AUDITORS))]) -> Response:
    state = state_of(request)
    scoped = compliance.audit(state, principal)
    return page(request, "retention.html", audits=scoped.audits, summary=summary(scoped.audits),
                holds=compliance.holds(state, principal))


@router.get("/retention/report", include_in_schema=False)
def printable_report(request: Request, principal: Annotated[Principal, Depends(require(*AUDITORS))]) -> Response:
    """The retention issue's printable HTML report, for the points of the user's scope (an audited export)."""
    state = state_of(request)
    scoped = compliance.audit(state, principal)
    record(request, principal, "export", "retention report", detail=f"{len(scoped.audits)} points")
    html = render(scoped.audits, "html", state.now(), scoped.settings)
    return HTMLResponse(html, headers={"content-security-policy": REPORT_CSP})
