"""An incident walked through 受理 → 分派 → 处置 → 反馈 → 办结 over the JSON API, with who and when."""

from __future__ import annotations

from fastapi.testclient import TestClient

from tests.dashboard.world import GRID_A, GRID_B, World, login

STEPS = ["受理", "分派", "处置", "反馈", "办结"]


def test_grid_worker_walks_an_incident_to_closed(client: TestClient, world: World) -> None:
    token = login(client, "worker")
    inbox = client.get("/api/incidents").json()
    assert [i["grid"] for i in inbox["items"]] == [GRID_A]  # grid B's incident is not in the inbox
    incident = world.incidents[GRID_A]
    url = f"/api/incidents/{incident}/advance"
    assert client.post(url, json={"to": "处置"}, headers={"x-csrf-token": token}).status_code == 400  # out of order
    assert client.post(url, json={"to": "受理", "assignee": "not-a-member"},
                       headers={"x-csrf-token": token}).status_code == 400
    for step in STEPS:
        body = {"to": step, "note": f"{step}完成"}
        if step == "分派":
            body["assignee"] = f"张三{GRID_A[-4:]}"
        response = client.post(url, json=body, headers={"x-csrf-token": token})
        assert response.status_code == 200, response.text
    document = client.get(f"/api/incidents/{incident}").json()
    assert document["state"] == "办结"
    assert [s["state"] for s in document["steps"]] == ["上报", *STEPS]
    assert all(s["actor"] == "worker" for s in document["steps"][1:])
    assert document["steps"][2]["assignee"] == f"张三{GRID_A[-4:]}"
    assert client.post(url, json={"to": "办结"}, headers={"x-csrf-token": token}).status_code == 400
    assert client.get("/api/incidents?state=办结").json()["total"] == 1
    assert client.post(f"/api/incidents/{world.incidents[GRID_B]}/advance", json={"to": "受理"},
                       headers={"x-csrf-token": token}).status_code == 404


def test_inbox_filters_and_english(client: TestClient) -> None:
    login(client, "admin")
    assert client.get("/api/incidents?category=隐患点").json()["total"] == 0
    assert client.get("/api/incidents?category=案事件").json()["total"] == 2
    assert "事件" in client.get("/incidents").text
    page = client.get("/incidents?lang=en")
    assert "Incidents" in page.text
    assert "Incidents" in client.get("/incidents").text  # the cookie keeps English
