"""Security finding 6 (the lower ones): a footage grant ends with its session, huge integers are a 422 and
not a 500, and HSTS is sent when the dashboard is served over https."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from fastapi.testclient import TestClient
from jifang.dashboard.options import DashboardOptions

from tests.dashboard.world import CAMERA_A, World, login


def test_footage_grant_ends_at_logout(world: World, app) -> None:  # type: ignore[no-untyped-def]
    client = TestClient(app)
    token = login(client, "worker")
    now = datetime.now(UTC)
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
