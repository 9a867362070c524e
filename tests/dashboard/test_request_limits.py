"""Security finding 2: every request body is bounded, and refused before it is read.

The requests go straight to the ASGI app with a ``receive`` that counts what the app pulls, so "refused
before reading" is measured, not inferred from the status code.
"""

from __future__ import annotations

import asyncio

from fastapi.testclient import TestClient
from jifang.dashboard.limits import ANONYMOUS_LIMIT, BODY_LIMIT
from jifang.dashboard.security import LOGIN_CSRF_COOKIE, SESSION_COOKIE

from tests.dashboard.world import World, login, login_csrf

CHUNK = 1024 * 1024
HUGE = 512 * CHUNK  # the penetration test's 512 MiB body; at most a few chunks of it may ever be pulled


def call(app, method: str, path: str, headers: dict[str, str], total: int = HUGE,  # type: ignore[no-untyped-def]
         declare: bool = True) -> tuple[int, int]:
    """Send ``total`` bytes of body (declared in Content-Length or streamed); (status, bytes the app pulled)."""
    pulled = 0
    status = 0
    if declare:
        headers = {**headers, "content-length": str(total)}

    async def receive() -> dict:
        nonlocal pulled
        if pulled >= total:
            return {"type": "http.disconnect"}
        size = min(CHUNK, total - pulled)
        pulled += size
        return {"type": "http.request", "body": b"{" * size, "more_body": pulled < total}

    async def send(message: dict) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]

    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": method, "path": path,
             "raw_path": path.encode(), "query_string": b"", "scheme": "http", "server": ("testserver", 80),
             "client": ("127.0.0.1", 50000), "root_path": "",
             "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()]}
    asyncio.run(app(scope, receive, send))
    return status, pulled


def session_headers(client: TestClient, token: str, content_type: str = "application/json") -> dict[str, str]:
    return {"cookie": f"{SESSION_COOKIE}={client.cookies.get(SESSION_COOKIE)}", "x-csrf-token": token,
            "content-type": content_type}


def test_anonymous_bodies_are_refused_unread(world: World, app) -> None:  # type: ignore[no-untyped-def]
    client = TestClient(app)
    csrf = login_csrf(client)
    for declare in (True, False):
        status, pulled = call(app, "POST", "/api/cameras", {"content-type": "application/json"}, declare=declare)
        assert (status, pulled) == (403, 0)
        # the login form is the one anonymous body: a small limit, and a 400 MiB multipart never reaches disk
        status, pulled = call(app, "POST", "/login", {"content-type": "multipart/form-data; boundary=x",
                                                      "cookie": f"{LOGIN_CSRF_COOKIE}={csrf}"}, declare=declare)
        assert status == 413
        assert pulled == (0 if declare else CHUNK)


def test_logged_in_bodies_are_bounded(world: World, app) -> None:  # type: ignore[no-untyped-def]
    client = TestClient(app)
    token = login(client, "admin")
    headers = session_headers(client, token)
    assert call(app, "POST", "/api/cameras", headers) == (413, 0)  # declared: refused before reading
    status, pulled = call(app, "POST", "/api/cameras", headers, declare=False)  # streamed: cut at the limit
    assert status == 413 and pulled <= BODY_LIMIT + CHUNK
    form = session_headers(client, token, "application/x-www-form-urlencoded")
    status, pulled = call(app, "POST", "/cameras/new", form, declare=False)
    assert status == 413 and pulled <= BODY_LIMIT + CHUNK
    # a body within the limit is served as before
    response = client.post("/api/cameras", headers={"x-csrf-token": token}, json={"endpoint": "x"})
    assert response.status_code == 422
    assert client.post("/api/cameras", headers={"x-csrf-token": token, "content-length": "abc"},
                       content=b"{}").status_code == 400
    assert ANONYMOUS_LIMIT < BODY_LIMIT
