"""The dashboard edits cameras through the registry: recognition, sub-stream, site and enabled are in the form
and the API; a point the configuration file declares is marked and its edits are refused, saying why."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient
from sqlalchemy import select

from jifang.db.models import AuditEntry
from jifang.registry import Registry, camera_from_row
from tests.dashboard.world import CAMERA_A, CAMERA_B, GRID_A, GRID_B, NOW, World, login


def declare_camera_b(world: World) -> None:
    """CAMERA_B becomes a point of the configuration file (as at an agent start with it declared)."""
    camera = camera_from_row(Registry(world.catalog).camera(CAMERA_B))
    Registry(world.catalog).sync(world.settings.model_copy(update={"cameras": [camera]}), NOW)


def test_recognition_settings_are_edited_live_through_the_registry(client: TestClient, world: World) -> None:
    token = login(client, "tech")
    form = client.get(f"/cameras/{CAMERA_A}")
    assert 'name="recognize" value="plate"' in form.text and 'name="sub_rtsp_url"' in form.text
    before = Registry(world.catalog).revision()
    response = client.patch(f"/api/cameras/{CAMERA_A}", json={"recognize": ["plate"], "enabled": False,
                                                              "sub_rtsp_url": "rtsp://127.0.0.1:1/sub"},
                            headers={"x-csrf-token": token})
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["recognize"], body["enabled"], body["sub_rtsp_url"]) == (["plate"], False, "rtsp://127.0.0.1:1/sub")
    assert Registry(world.catalog).revision() != before, "running agents must see the change"
    with world.catalog.session() as session:
        edits = list(session.scalars(select(AuditEntry.detail).where(AuditEntry.action == "camera_edit")))
    assert any("recognize [] -> ['plate']" in detail for detail in edits), edits
    # the form posts the same settings
    page = client.get(f"/cameras/{CAMERA_A}")
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
    saved = client.post(f"/cameras/{CAMERA_A}", data={"csrf_token": csrf, "tier": "important", "grid": GRID_A,
                                                      "enabled": "yes", "recognize": ["plate", "face"]},
                        follow_redirects=False)
    assert saved.status_code == 303, saved.text
    row = Registry(world.catalog).camera(CAMERA_A)
    assert (row.enabled, row.recognize, row.sub_rtsp_url) == (True, "plate,face", "")


def test_points_of_the_configuration_file_are_marked_and_not_editable(client: TestClient, world: World) -> None:
    declare_camera_b(world)
    token = login(client, "admin")
    listing = client.get("/cameras")
    assert f'data-camera="{CAMERA_B}" data-managed="file"' in listing.text
    assert f'data-camera="{CAMERA_A}" data-managed' not in listing.text
    assert client.get("/api/cameras").json()[1]["managed_by"] == "file"
    form = client.get(f"/cameras/{CAMERA_B}")
    assert 'id="managed-by-file"' in form.text and "<fieldset disabled" in form.text
    refused = client.patch(f"/api/cameras/{CAMERA_B}", json={"enabled": False}, headers={"x-csrf-token": token})
    assert refused.status_code == 409
    assert "declared in the configuration file" in refused.json()["detail"]
    assert "jifang registry sync" in refused.json()["detail"]
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', form.text).group(1)
    posted = client.post(f"/cameras/{CAMERA_B}", data={"csrf_token": csrf, "tier": "general", "grid": "x"},
                         follow_redirects=False)
    assert posted.status_code == 400  # unknown grid: checked before anything else
    posted = client.post(f"/cameras/{CAMERA_B}", data={"csrf_token": csrf, "tier": "general", "grid": GRID_B,
                                                       "enabled": "yes"}, follow_redirects=False)
    assert posted.status_code == 409 and "configuration file" in posted.text
    assert Registry(world.catalog).camera(CAMERA_B).tier == "important"
