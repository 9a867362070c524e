"""Security finding 6 (the lower ones): a footage grant ends with its session, huge integers are a 422 and
not a 500, and HSTS is sent when the dashboard is served over https."""

from __future__ import annotations

from datetime import timedelta

from fastapi.testclient import TestClient
from jifang.dashboard.options import DashboardOptions

from tests.dashboard.world import CAMERA_A, NOW, World, login


def test_footage_grant_ends_at_logout(world: World, app) -> None:  # type: ignore[no-untyped-def]
    client = TestClient(app)
    token = login(client, "worker")
    now = NOW  # the world's segment time: module import may be minutes before this test runs
    grant = client.post(f"/api/footage/{CAMERA_A}", json={"start": (now - timedelta(minutes=5)).isoformat(),
                                                           "end": now.isoformat(), "purpose": "核查案情"},
                        headers={"x-csrf-token": token})
    assert grant.status_code == 200, grant.text
    url = grant.json()["segments"][0]["url"]
    assert client.get(url).status_code == 200
    client.post("/logout", data={"csrf_token": token}, follow_redirects=False)
    login(client, "worker")  # the same user, a new session
    assert client.get(url).status_code == 404


def test_unbounded_integers_are_refused_not_a_server_error(world: World, app) -> None:  # type: ignore[no-untyped-def]
    client = TestClient(app, raise_server_exceptions=False)
    login(client, "admin")
    for url in (f"/api/footage/grants/x/segments/{10**20}", f"/api/footage/grants/x/segments/{10**20}/init.mp4",
                f"/api/audit?before={2**70}", f"/audit?before={2**70}", f"/api/incidents/{10**20}"):
        assert client.get(url).status_code == 422, url


def test_hsts_only_over_https(world: World) -> None:
    plain = TestClient(world.app()).get("/login")
    assert "strict-transport-security" not in plain.headers
    world.options = DashboardOptions(secure_cookies=True)
    secure = TestClient(world.app(), base_url="https://testserver").get("/login")
    assert secure.headers["strict-transport-security"] == "max-age=31536000"


def test_audited_get_routes_refuse_cross_site_requests(world: World, app) -> None:  # type: ignore[no-untyped-def]
    from sqlalchemy import func, select

    from jifang.db.models import AuditEntry
    from tests.dashboard.world import GRID_A

    client = TestClient(app)
    login(client, "admin")
    count = lambda: world.catalog.session().scalar(select(func.count(AuditEntry.id)))  # noqa: E731
    urls = [f"/api/incidents/{world.incidents[GRID_A]}/images/crop", "/retention/report"]
    before = count()
    for url in urls:  # a link or <img> on another site: refused, and no entry written in the admin's name
        assert client.get(url, headers={"sec-fetch-site": "cross-site"}).status_code == 403, url
    assert count() == before
    for url in urls:
        assert client.get(url, headers={"sec-fetch-site": "same-origin"}).status_code == 200, url
    assert count() == before + len(urls)


def test_metrics_token_and_allowed_hosts(world: World) -> None:
    assert TestClient(world.app()).get("/metrics").status_code == 200  # public unless a token is set
    world.options = DashboardOptions(metrics_token="scrape-secret", allowed_hosts=("testserver",))
    client = TestClient(world.app())
    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics", headers={"authorization": "Bearer wrong"}).status_code == 401
    assert client.get("/metrics", headers={"authorization": "Bearer scrape-secret"}).status_code == 200
    assert client.get("/healthz", headers={"host": "rebound.attacker.example"}).status_code == 400


def test_camera_registration_probes_only_camera_networks_with_one_generic_error(world: World) -> None:
    import socket
    import threading
    from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

    client = TestClient(world.app())
    token = login(client, "tech")
    body = {"username": "admin", "password": "pw", "id": "33100200001320000099", "name": "x",
            "grid": "331002001001001", "tier": "important"}

    def register(endpoint: str):  # type: ignore[no-untyped-def]
        return client.post("/api/cameras", json={**body, "endpoint": endpoint}, headers={"x-csrf-token": token})

    refused = register("127.0.0.1:5432")  # the dashboard's own database: loopback is not a camera network
    assert refused.status_code == 400 and "outside the camera networks" in refused.json()["detail"]
    assert register("169.254.169.254:80").status_code == 400  # nor the cloud metadata service

    world.options = DashboardOptions(camera_networks=("127.0.0.0/8",))  # a lab whose cameras are on loopback
    client = TestClient(world.app(), raise_server_exceptions=False)
    token = login(client, "tech")
    web = ThreadingHTTPServer(("127.0.0.1", 0), SimpleHTTPRequestHandler)  # answers HTTP, not ONVIF
    threading.Thread(target=web.serve_forever, daemon=True).start()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed = sock.getsockname()[1]
    try:
        answers = [register(f"127.0.0.1:{port}") for port in (web.server_address[1], closed)]
    finally:
        web.shutdown()
    assert [a.status_code for a in answers] == [400, 400]
    details = [a.json()["detail"].split(": ", 1)[1] for a in answers]
    assert details[0] == details[1] and "no ONVIF camera answered" in details[0]  # no port-scan oracle
