"""Registry changes reach a running agent without a restart: a camera disabled in the web UI stops recording
within 10 s, a camera added to the registry starts, and the untouched camera records on without a hole."""

from __future__ import annotations

import itertools
import re
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from jifang.dashboard.app import create_app
from jifang.dashboard.users import Users
from jifang.edge.agent import EdgeAgent
from jifang.sim.camera import SimCamera

from jifang.config import parse_settings
from jifang.db import Catalog
from jifang.registry import NewCamera, open_registry

from .agent import wait_for

pytestmark = pytest.mark.integration
GRID = "331002001001001"
STAYS, DISABLED, ADDED = "33100200001320000021", "33100200001320000022", "33100200001320000023"


def test_disable_in_the_web_ui_stops_within_10_s_and_others_record_on(tmp_path: Path, sim_camera: SimCamera) -> None:
    settings = parse_settings({
        "version": 1, "site": "s1", "database": {"url": f"sqlite:///{tmp_path / 'c.db'}"},
        "storage": {"kind": "filesystem", "path": str(tmp_path / "store")},
        "recorder": {"segment_seconds": 2, "spool_dir": str(tmp_path / "spool")},
        "grids": [{"code": GRID, "name": "g"}], "cameras": [],
    }, "test", environ={})
    catalog = Catalog(settings.database.url)
    catalog.migrate()
    registry = open_registry(settings, catalog)
    registry.sync(settings, datetime.now(UTC))
    for camera_id in (STAYS, DISABLED):
        registry.add_camera(NewCamera(id=camera_id, name=camera_id[-2:], grid=GRID, tier="general",
                                      main_rtsp_url=sim_camera.url), actor="tech", at=datetime.now(UTC))
    Users(catalog).add("tech", "Tech-pass-1234", "technician", "", datetime.now(UTC), "test")

    agent = EdgeAgent(settings, preflight=False)
    agent.open()
    stop = threading.Event()
    runner = threading.Thread(target=agent.run, args=(stop,), daemon=True)
    runner.start()
    try:
        assert wait_for(lambda: {s.camera_id for s in agent.catalog.segments()} >= {STAYS, DISABLED}, 90)
        stays_recorder = agent.recorders[STAYS]

        with TestClient(create_app(settings, catalog=catalog)) as client:
            login = client.get("/login")
            token = re.search(r'name="csrf_token" value="([^"]+)"', login.text).group(1)
            assert client.post("/login", data={"username": "tech", "password": "Tech-pass-1234",
                                               "csrf_token": token}, follow_redirects=False).status_code == 303
            form = client.get(f"/cameras/{DISABLED}")
            token = re.search(r'name="csrf_token" value="([^"]+)"', form.text).group(1)
            assert 'name="enabled" value="yes" checked' in form.text
            disabled_at = time.monotonic()
            saved = client.post(f"/cameras/{DISABLED}", data={"csrf_token": token, "tier": "general", "grid": GRID,
                                                              "purpose": ""}, follow_redirects=False)
            assert saved.status_code == 303, saved.text
        assert wait_for(lambda: DISABLED not in agent.recorders, 10, interval=0.2)
        took = time.monotonic() - disabled_at
        assert took <= 10, f"disabled camera still recording after {took:.1f} s"
        print(f"disabled camera stopped {took:.1f} s after the form was saved")
        stopped_at = datetime.now(UTC)

        # a camera added to the registry starts without a restart as well
        registry.add_camera(NewCamera(id=ADDED, name="new", grid=GRID, tier="important",
                                      main_rtsp_url=sim_camera.url), actor="tech", at=datetime.now(UTC))
        assert wait_for(lambda: ADDED in agent.recorders, 10, interval=0.2)
        assert wait_for(lambda: any(s.camera_id == ADDED for s in agent.catalog.segments()), 60)
        time.sleep(6)  # three more segment lengths

        late = [s for s in agent.catalog.segments(DISABLED) if s.start_at > stopped_at]
        assert late == [], "the disabled camera went on recording"
        assert agent.recorders[STAYS] is stays_recorder, "the untouched camera was restarted"
        stays = agent.catalog.segments(STAYS)
        assert stays[-1].end_at > stopped_at
        holes = [(a.end_at, b.start_at) for a, b in itertools.pairwise(stays)
                 if (b.start_at - a.end_at).total_seconds() > 1.0]
        assert holes == [], f"the untouched camera has holes: {holes}"
        assert agent.catalog.gaps(STAYS) == []
        assert [s.tier for s in agent.catalog.segments(ADDED)][:1] == ["important"]
    finally:
        stop.set()
        runner.join(120)
