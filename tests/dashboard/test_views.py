"""Live view, health history, coverage timeline, the cached compliance audit and the bounded inbox count."""

from __future__ import annotations

import threading
import time
from dataclasses import replace
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from jifang.dashboard import compliance, live, timeline
from jifang.dashboard.options import DashboardOptions
from jifang.dashboard.state import state_of
from jifang.retention.coverage import Gap, PointAudit
from sqlalchemy import select, update

from jifang.db.models import AuditEntry, SegmentRow
from jifang.domain import GapCause
from tests.dashboard.world import CAMERA_A, CAMERA_B, NOW, World, login


def audits(world: World, action: str) -> list[AuditEntry]:
    with world.catalog.session() as session:
        return list(session.scalars(select(AuditEntry).where(AuditEntry.action == action)))


def test_live_snapshot_is_the_last_frame_cached_and_audited_once(client: TestClient, world: World,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    decodes = []
    real = live.last_frame
    monkeypatch.setattr(live, "last_frame", lambda *a, **k: decodes.append(1) or real(*a, **k))
    login(client, "worker")
    first = client.get(f"/api/cameras/{CAMERA_A}/snapshot.jpg")
    assert first.status_code == 200 and first.headers["content-type"] == "image/jpeg"
    assert first.content.startswith(b"\xff\xd8") and first.headers["cache-control"] == "private, no-store"
    second = client.get(f"/api/cameras/{CAMERA_A}/snapshot.jpg?t=1")
    assert second.content == first.content and len(decodes) == 1  # cached: one decode
    views = audits(world, "view_live")
    assert len(views) == 1 and views[0].actor == "worker" and views[0].target == f"camera {CAMERA_A}"
    assert client.get(f"/api/cameras/{CAMERA_B}/snapshot.jpg").status_code == 404  # out of scope
    page = client.get(f"/cameras/{CAMERA_A}/live")
    assert page.status_code == 200 and f'data-live="/api/cameras/{CAMERA_A}/snapshot.jpg"' in page.text


def test_live_snapshot_without_video_is_404(client: TestClient, world: World) -> None:
    with world.catalog.session() as session:
        session.execute(update(SegmentRow).values(deleted_at=NOW))
        session.commit()
    login(client, "admin")
    assert client.get(f"/api/cameras/{CAMERA_A}/snapshot.jpg").status_code == 404
    assert audits(world, "view_live") == []


def test_health_history_lists_the_gap_ledger(client: TestClient, world: World) -> None:
    world.catalog.add_gap(CAMERA_A, NOW - timedelta(hours=5), NOW - timedelta(hours=4), GapCause.CAMERA_OFFLINE,
                          "rtsp timeout")
    world.catalog.open_gap(CAMERA_A, NOW - timedelta(minutes=5), GapCause.CAMERA_OFFLINE, "no route to host")
    world.catalog.add_gap(CAMERA_B, NOW - timedelta(hours=1), NOW, GapCause.CAMERA_OFFLINE, "grid B secret")
    login(client, "worker")
    health = client.get(f"/api/cameras/{CAMERA_A}/health").json()
    assert [g["detail"] for g in health["gaps"]] == ["no route to host", "rtsp timeout"]
    assert health["gaps"][0]["end"] is None and health["gaps"][1]["cause"] == "camera_offline"
    assert "status" in health
    page = client.get(f"/cameras/{CAMERA_A}/live").text
    assert "rtsp timeout" in page and "grid B secret" not in page
    assert client.get(f"/api/cameras/{CAMERA_B}/health").status_code == 404


def test_timeline_cells() -> None:
    end = NOW.replace(minute=30, second=0)
    audit = PointAudit(camera=CAMERA_A, grid="g", tier="important", window_start=end - timedelta(days=200),
                       window_end=end, covered_seconds=0, required_seconds=1,
                       gaps=[Gap(end - timedelta(days=200), end - timedelta(days=100), GapCause.BEFORE_REGISTRATION),
                             Gap(end - timedelta(hours=3, minutes=10), end - timedelta(hours=3),
                                 GapCause.NOT_RECORDED),
                             Gap(end - timedelta(hours=6), end - timedelta(hours=5), GapCause.CAMERA_OFFLINE)])
    days = timeline.timeline(audit)
    assert 92 <= len(days) <= 93 and all(len(d.cells) == 24 for d in days)
    cells = [c for d in reversed(days) for c in d.cells]  # oldest first
    assert cells.count(timeline.VIOLATION) == 1
    assert timeline.EXPLAINED in cells and timeline.RECORDED in cells
    first_hour = (end - timedelta(days=92)).astimezone(timeline.CST).hour
    assert set(days[-1].cells[:first_hour]) <= {timeline.OUTSIDE} and days[-1].cells[first_hour] != timeline.OUTSIDE
    flat = [(d.date, h, c) for d in days for h, c in enumerate(d.cells)]
    assert all(c != timeline.VIOLATION or h == (end - timedelta(hours=3, minutes=10)).astimezone(
        timeline.CST).hour for _, h, c in flat)
    # a window of 92 days: nothing older than 92 days is shown (the before-registration part is cut off)
    assert days[-1].date >= (end - timedelta(days=93)).astimezone(timeline.CST).date().isoformat()


def test_timeline_route_is_scoped(client: TestClient) -> None:
    login(client, "sup")
    body = client.get(f"/api/retention/points/{CAMERA_A}/timeline").json()
    assert body["camera"] == CAMERA_A and 1 <= len(body["days"]) <= 93
    today = body["days"][0]["hours"]
    assert timeline.VIOLATION in today or timeline.RECORDED in today  # registered 2 hours ago, hardly recorded
    assert client.get(f"/api/retention/points/{CAMERA_B}/timeline").status_code == 404
    page = client.get(f"/retention/points/{CAMERA_A}")
    assert page.status_code == 200 and 'id="timeline"' in page.text
    assert f'href="/retention/points/{CAMERA_A}"' in client.get("/retention").text


def test_compliance_audit_is_single_flight_and_served_stale_while_refreshing(
        world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    world.options = replace(world.options, compliance_refresh_seconds=3600)
    app = world.app()
    state = state_of(type("R", (), {"app": app})())  # type: ignore[arg-type]
    calls = []
    real = compliance.compute
    gate = threading.Event()

    def slow(state_, generation):  # type: ignore[no-untyped-def]
        calls.append(generation)
        gate.wait(10)
        return real(state_, generation)

    monkeypatch.setattr(compliance, "compute", slow)
    results = []
    threads = [threading.Thread(target=lambda: results.append(compliance.snapshot(state))) for _ in range(8)]
    for thread in threads:
        thread.start()
    time.sleep(0.2)
    gate.set()
    for thread in threads:
        thread.join(10)
    assert calls == [1] and len(results) == 8 and len({id(r) for r in results}) == 1
    gate.clear()
    assert compliance.start_refresh(state, force=True)
    assert not compliance.start_refresh(state, force=True)  # one refresh at a time
    assert compliance.snapshot(state).generation == 1  # the old audit is served while the new one runs
    gate.set()
    deadline = time.monotonic() + 10
    while compliance.snapshot(state).generation != 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert compliance.snapshot(state).generation == 2 and calls == [1, 2]


def test_compliance_api_is_scoped_from_the_cached_audit(client: TestClient) -> None:
    login(client, "sup")
    points = client.get("/api/retention/compliance").json()["points"]
    assert [p["camera"] for p in points] == [CAMERA_A]


def test_inbox_count_is_bounded(world: World) -> None:
    world.options = DashboardOptions(inbox_count_cap=1, page_size=1)
    client = TestClient(world.app())
    login(client, "admin")
    body = client.get("/api/incidents").json()
    assert body["total"] == 1 and body["total_is_lower_bound"] is True and len(body["items"]) == 1
    body = client.get("/api/incidents?page=2").json()  # a later page counts at least up to itself
    assert body["total"] == 2 and body["total_is_lower_bound"] is False and len(body["items"]) == 1
    assert "(1+)" in client.get("/incidents").text
