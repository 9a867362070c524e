"""Every route x every role x an in-scope and an out-of-scope object -> the expected status.

The routes are enumerated from the application: a route without an expectation here fails the test, so a new
route cannot be added without deciding who may call it. Unsafe routes are called with a valid CSRF token and an
empty body, so an authorised call stops at validation (422) and nothing changes between cases.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from jifang.dashboard.footage import session_tag
from jifang.dashboard.state import state_of
from starlette.routing import Mount, Route

from tests.dashboard.world import CAMERA_A, CAMERA_B, GRID_A, GRID_B, NOW, ROLES, World, login, login_csrf

ALL = frozenset(ROLES)
TECH = frozenset({"admin", "tech"})
READERS = frozenset({"admin", "sup", "worker"})
HANDLERS = frozenset({"admin", "worker"})
AUDITORS = frozenset({"admin", "sup"})
SCOPED_USERS = {"sup", "worker"}


@dataclass(frozen=True)
class Expect:
    roles: frozenset[str] | None  # None: public, anonymous included
    ok: int
    scoped: bool = False


EXPECTED: dict[tuple[str, str], Expect] = {
    ("GET", "/"): Expect(ALL, 303),
    ("GET", "/healthz"): Expect(None, 200),
    ("GET", "/metrics"): Expect(None, 200),
    ("GET", "/openapi.json"): Expect(None, 200),
    ("GET", "/login"): Expect(None, 200),
    ("POST", "/login"): Expect(None, 422),
    ("POST", "/logout"): Expect(ALL, 303),
    ("GET", "/api/session"): Expect(ALL, 200),
    ("GET", "/cameras"): Expect(ALL, 200),
    ("GET", "/api/cameras"): Expect(ALL, 200),
    ("GET", "/api/gb28181/devices"): Expect(TECH, 200),
    ("GET", "/api/cameras/{camera_id}"): Expect(ALL, 200, scoped=True),
    ("GET", "/api/cameras/{camera_id}/snapshot.jpg"): Expect(ALL, 200, scoped=True),
    ("GET", "/api/cameras/{camera_id}/health"): Expect(ALL, 200, scoped=True),
    ("GET", "/cameras/{camera_id}/live"): Expect(ALL, 200, scoped=True),
    ("POST", "/api/cameras"): Expect(TECH, 422),
    ("GET", "/cameras/new"): Expect(TECH, 200),
    ("POST", "/cameras/new"): Expect(TECH, 422),
    ("GET", "/cameras/{camera_id}"): Expect(TECH, 200, scoped=True),
    ("POST", "/cameras/{camera_id}"): Expect(TECH, 422, scoped=True),
    ("PATCH", "/api/cameras/{camera_id}"): Expect(TECH, 422, scoped=True),
    ("GET", "/api/incidents"): Expect(READERS, 200),
    ("GET", "/incidents"): Expect(READERS, 200),
    ("GET", "/api/incidents/{incident_id}"): Expect(READERS, 200, scoped=True),
    ("GET", "/incidents/{incident_id}"): Expect(READERS, 200, scoped=True),
    ("POST", "/api/incidents/{incident_id}/advance"): Expect(HANDLERS, 422, scoped=True),
    ("POST", "/incidents/{incident_id}/advance"): Expect(HANDLERS, 422, scoped=True),
    ("GET", "/api/incidents/{incident_id}/images/{which}"): Expect(READERS, 200, scoped=True),
    ("POST", "/api/footage/{camera_id}"): Expect(READERS, 422, scoped=True),
    ("GET", "/footage/{camera_id}"): Expect(READERS, 200, scoped=True),
    ("POST", "/footage/{camera_id}"): Expect(READERS, 422, scoped=True),
    ("GET", "/api/footage/grants/{grant}/segments/{segment_id}"): Expect(READERS, 200, scoped=True),
    ("GET", "/api/footage/grants/{grant}/playlist.m3u8"): Expect(READERS, 200, scoped=True),
    ("GET", "/api/footage/grants/{grant}/segments/{segment_id}/init.mp4"): Expect(READERS, 200, scoped=True),
    ("GET", "/api/footage/grants/{grant}/segments/{segment_id}/media.m4s"): Expect(READERS, 200, scoped=True),
    ("GET", "/api/retention/compliance"): Expect(AUDITORS, 200),
    ("GET", "/retention"): Expect(AUDITORS, 200),
    ("GET", "/retention/report"): Expect(AUDITORS, 200),
    ("GET", "/api/retention/points/{camera_id}/timeline"): Expect(AUDITORS, 200, scoped=True),
    ("GET", "/retention/points/{camera_id}"): Expect(AUDITORS, 200, scoped=True),
    ("GET", "/api/audit"): Expect(AUDITORS, 200),
    ("GET", "/audit"): Expect(AUDITORS, 200),
}


def app_routes(app) -> set[tuple[str, str]]:  # type: ignore[no-untyped-def]
    """(method, path) of every route, included routers flattened (FastAPI >= 0.160 wraps them)."""
    found: set[tuple[str, str]] = set()

    def walk(routes, prefix: str) -> None:  # type: ignore[no-untyped-def]
        for route in routes:
            if isinstance(route, Mount):
                assert route.path == "/static", f"unexpected mount {route.path}"
            elif isinstance(route, APIRoute | Route):
                found.update((m, prefix + route.path) for m in route.methods or () if m != "HEAD")
            elif hasattr(route, "original_router"):
                context = getattr(route, "include_context", None)
                walk(route.original_router.routes, prefix + (getattr(context, "prefix", "") or ""))
            else:
                raise AssertionError(f"unknown kind of route {route!r}")

    walk(app.routes, "")
    return found


def test_every_route_has_an_expectation(app) -> None:  # type: ignore[no-untyped-def]
    routes = app_routes(app)
    assert routes - set(EXPECTED) == set(), "routes without an authorisation expectation"
    assert set(EXPECTED) - routes == set(), "expectations for routes that do not exist"


def concrete(world: World, app, role: str, path: str, inside: bool,  # type: ignore[no-untyped-def]
             csrf: str = "") -> str:
    grid, camera = (GRID_A, CAMERA_A) if inside else (GRID_B, CAMERA_B)
    state = state_of_app(app)
    user_id = {u.username: u.id for u in state.users.list()}.get(role, 1)
    grant = state.signer.dumps([user_id, camera, NOW.replace(year=NOW.year - 1).isoformat(),
                                NOW.replace(year=NOW.year + 1).isoformat(), session_tag(csrf)])
    return (path.replace("{camera_id}", camera).replace("{incident_id}", str(world.incidents[grid]))
            .replace("{which}", "crop").replace("{grant}", grant)
            .replace("{segment_id}", str(world.segments[camera])))


def state_of_app(app):  # type: ignore[no-untyped-def]
    class Fake:
        pass

    fake = Fake()
    fake.app = app  # type: ignore[attr-defined]
    return state_of(fake)  # type: ignore[arg-type]


def expected_status(expect: Expect, role: str, path: str, method: str, inside: bool) -> int:
    if expect.roles is None:
        return expect.ok
    if role == "anon":
        if method != "GET":
            return 403  # the CSRF check comes first: an anonymous client has no session token
        return 401 if path.startswith("/api/") else 303
    if role not in expect.roles:
        return 403
    if expect.scoped and not inside and role in SCOPED_USERS:
        return 404
    return expect.ok


@pytest.mark.parametrize("role", ["anon", *ROLES])
def test_authorisation_matrix(world: World, app, role: str) -> None:  # type: ignore[no-untyped-def]
    client = TestClient(app)
    token = login(client, role) if role != "anon" else login_csrf(client)
    failures = []
    for (method, path), expect in sorted(EXPECTED.items()):
        for inside in (True, False) if "{" in path else (True,):
            url = concrete(world, app, role, path, inside, token)
            response = client.request(method, url, headers={"x-csrf-token": token}, follow_redirects=False)
            want = expected_status(expect, role, path, method, inside)
            if response.status_code != want:
                failures.append(f"{role} {method} {path} ({'in' if inside else 'out of'} scope): "
                                f"{response.status_code}, expected {want}")
            if path == "/logout" and role != "anon" and response.status_code == 303:
                token = login(client, role)
            if path == "/login" and role == "anon":
                token = login_csrf(client)
    assert failures == []


# the audit log by scope: each entry is readable by whoever may see the object it is about

AUDIT_READERS = {"admin": {GRID_A, GRID_B, None}, "sup": {GRID_A}}


def test_audit_log_is_scoped_by_the_grid_of_its_object(world: World, app) -> None:  # type: ignore[no-untyped-def]
    from jifang import audit

    state = state_of_app(app)
    for grid in (GRID_A, GRID_B, None):
        audit.record(state.catalog, NOW, "someone", "view_video", f"camera in {grid}", grid=grid,
                     purpose=f"purpose for {grid}", source_ip="10.0.0.9")
    for role in ("anon", *ROLES):
        client = TestClient(app)
        if role != "anon":
            login(client, role)
        response = client.get("/api/audit", params={"action": "view_video"}, follow_redirects=False)
        if role not in AUDIT_READERS:
            assert response.status_code == (401 if role == "anon" else 403), role
            continue
        assert response.status_code == 200
        assert {e["grid"] for e in response.json()} == AUDIT_READERS[role], role
        everything = client.get("/api/audit", params={"limit": 1000}).json()
        assert all(e["grid"] in AUDIT_READERS[role] for e in everything), role  # logins, user admin: admins only
        page = client.get("/audit").text
        assert ("purpose for " + GRID_B in page) == (role == "admin"), role
