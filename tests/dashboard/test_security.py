"""CSRF on every unsafe route, session fixation, login brute force, grant expiry, path traversal, no secrets."""

from __future__ import annotations

import json
import time
from datetime import timedelta

from fastapi.testclient import TestClient
from jifang.dashboard.options import DashboardOptions
from jifang.dashboard.security import SESSION_COOKIE

from tests.dashboard.test_authz_matrix import EXPECTED, concrete
from tests.dashboard.world import CAMERA_A, GRID_A, NOW, PASSWORD, World, login, login_csrf


def test_every_unsafe_route_needs_the_csrf_token(world: World, app) -> None:  # type: ignore[no-untyped-def]
    client = TestClient(app)
    login(client, "admin")
    unsafe = [(m, p) for (m, p) in EXPECTED if m not in ("GET", "HEAD")]
    assert len(unsafe) >= 9
    for method, path in unsafe:
        url = concrete(world, app, "admin", path, True)
        for headers in ({}, {"x-csrf-token": "forged"}):
            response = client.request(method, url, headers=headers, data={"csrf_token": "forged"}
                                      if headers else {}, follow_redirects=False)
            assert response.status_code == 403, (method, path, response.status_code)
    assert client.get("/api/session").status_code == 200  # still logged in: logout refused without token


def test_login_form_needs_its_csrf_token(client: TestClient) -> None:
    response = client.post("/login", data={"username": "admin", "password": PASSWORD}, follow_redirects=False)
    assert response.status_code == 403


def test_login_issues_a_new_session_id(client: TestClient, world: World) -> None:
    client.cookies.set(SESSION_COOKIE, "attacker-chosen-session-id", domain="testserver.local")
    login(client, "worker")
    issued = client.cookies.get(SESSION_COOKIE)
    assert issued and issued != "attacker-chosen-session-id"
    login(client, "worker")  # logging in again replaces the session, the old one is dead
    again = client.cookies.get(SESSION_COOKIE)
    assert again != issued
    other = TestClient(client.app)
    other.cookies.set(SESSION_COOKIE, issued, domain="testserver.local")
    assert other.get("/api/session").status_code == 401


def test_cookie_flags(world: World) -> None:
    world.options = DashboardOptions(secure_cookies=True)
    client = TestClient(world.app(), base_url="https://testserver")
    csrf = login_csrf(client)
    response = client.post("/login", data={"username": "admin", "password": PASSWORD, "csrf_token": csrf},
                           follow_redirects=False)
    cookie = next(v for k, v in response.headers.multi_items() if k == "set-cookie" and SESSION_COOKIE in v)
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Secure" in cookie


def test_brute_force_is_limited(client: TestClient) -> None:
    for _ in range(5):
        response = client.post("/login", data={"username": "admin", "password": "wrong-password",
                                               "csrf_token": login_csrf(client)})
        assert response.status_code == 401
    response = client.post("/login", data={"username": "admin", "password": PASSWORD,
                                           "csrf_token": login_csrf(client)}, follow_redirects=False)
    assert response.status_code == 429  # even the right password, until the window has passed
    assert client.get("/api/session").status_code == 401


def test_disabled_user_and_new_password_end_sessions(client: TestClient, world: World, app) -> None:  # type: ignore[no-untyped-def]
    login(client, "worker")
    state = app.state.jifang
    state.users.set_password("worker", "another-long-password", state.now(), "test")
    assert client.get("/api/session").status_code == 401
    login(client, "worker", "another-long-password")
    state.users.disable("worker", state.now(), "test")
    assert client.get("/api/session").status_code == 401


def test_footage_grant_expires_and_is_personal(world: World) -> None:
    now = [NOW]  # the world's segment time: module import may be minutes before this test runs
    world.options = DashboardOptions(footage_grant_seconds=1)
    app = world.app()
    worker, sup = TestClient(app), TestClient(app)
    token = login(worker, "worker")
    login(sup, "sup")
    start = (now[0] - timedelta(minutes=5)).isoformat()
    grant = worker.post(f"/api/footage/{CAMERA_A}", json={"start": start, "end": now[0].isoformat(),
                                                           "purpose": "核查案情"}, headers={"x-csrf-token": token})
    assert grant.status_code == 200, grant.text
    url = grant.json()["segments"][0]["url"]
    assert worker.get(url).status_code == 200
    assert sup.get(url).status_code == 404  # a grant is for the user it was issued to
    time.sleep(2.2)
    assert worker.get(url).status_code == 404


def test_file_routes_refuse_traversal(client: TestClient, world: World) -> None:
    login(client, "admin")
    incident = world.incidents[GRID_A]
    for url in (f"/api/incidents/{incident}/images/..%2F..%2Fetc%2Fpasswd", f"/api/incidents/{incident}/images/x",
                "/api/footage/grants/..%2F..%2F/segments/1", "/static/..%2F..%2Fapp.py", "/static/../app.py",
                f"/api/cameras/{CAMERA_A}%2F..", "/api/footage/grants/x/segments/..%2F1"):
        response = client.get(url)
        assert response.status_code in (404, 422), (url, response.status_code)
        assert b"root:" not in response.content and b"create_app" not in response.content


def test_no_secret_in_any_response(client: TestClient, world: World, registry_key: str, app) -> None:  # type: ignore[no-untyped-def]
    token = login(client, "tech")
    bodies = [client.get(u).text for u in ("/cameras", "/api/cameras", f"/api/cameras/{CAMERA_A}", "/openapi.json",
                                          "/metrics", "/healthz", f"/cameras/{CAMERA_A}")]
    session_cookie = client.cookies.get(SESSION_COOKIE)
    hashes = [u.password_hash for u in app.state.jifang.users.list()]
    for body in bodies:
        for secret in (registry_key, PASSWORD, session_cookie, *hashes):
            assert secret not in body
    assert token not in client.get("/cameras").text.replace(f'value="{token}"', "")  # only in the form field


def test_every_footage_view_is_audited(client: TestClient, world: World) -> None:
    login(client, "worker")
    incident = world.incidents[GRID_A]
    assert client.get(f"/api/incidents/{incident}/images/crop").status_code == 200
    client.post("/logout", data={"csrf_token": client.get("/api/session").json()["csrf_token"]})
    login(client, "admin")
    entries = client.get("/api/audit?action=view_image").json()
    assert entries and entries[0]["actor"] == "worker" and entries[0]["purpose"] == f"incident {incident} handling"
    assert entries[0]["grid"] == GRID_A
    # the source is validated before it is logged: the test client's "testclient" is no IP address
    assert entries[0]["source_ip"] == "" and "testclient" not in json.dumps(entries[0])
