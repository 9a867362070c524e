"""End to end in real headless Chromium (Debian's chromium, driven by Playwright) against the dashboard served by
uvicorn on 127.0.0.1: a technician registers a simulated ONVIF camera, a grid worker walks an incident to 办结,
a supervisor opens the retention page and the printable report. Screenshots go to tests/artifacts/."""

from __future__ import annotations

import dataclasses
import re
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvicorn
from jifang.sim.camera import SimCamera

from tests.dashboard.world import GRID_A, PASSWORD, World

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"
pytestmark = [pytest.mark.integration,
              pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="needs chromium (apt-get install chromium)")]


@pytest.fixture
def server(world: World) -> Iterator[str]:
    # the simulated cameras these flows register listen on loopback, which the default camera networks refuse
    world.options = dataclasses.replace(world.options, camera_networks=("127.0.0.0/8",))
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    config = uvicorn.Config(world.app(), host="127.0.0.1", port=port, log_level="warning")
    instance = uvicorn.Server(config)
    thread = threading.Thread(target=instance.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not instance.started and time.monotonic() < deadline:
        time.sleep(0.05)
    assert instance.started
    yield f"http://127.0.0.1:{port}"
    instance.should_exit = True
    thread.join(10)


@pytest.fixture
def browser() -> Iterator[object]:
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as playwright:
        instance = playwright.chromium.launch(executable_path=CHROMIUM, headless=True)
        yield instance
        instance.close()


def log_in(browser, base: str, username: str):  # type: ignore[no-untyped-def]
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.goto(f"{base}/login")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_load_state("networkidle")
    return page


def shot(page, name: str) -> None:  # type: ignore[no-untyped-def]
    page.screenshot(path=str(ARTIFACTS / f"dashboard-{name}.png"), full_page=True)


@pytest.mark.skipif(shutil.which("ffprobe") is None, reason="needs ffprobe")
def test_technician_registers_a_simulated_camera(server: str, browser, world: World) -> None:  # type: ignore[no-untyped-def]
    camera = SimCamera(path="webcam", onvif_port=0)
    camera.start()
    try:
        page = log_in(browser, server, "tech")
        assert page.url.endswith("/cameras")
        shot(page, "cameras")
        page.click("#register-link")
        page.fill("input[name=endpoint]", f"127.0.0.1:{camera.onvif_port}")
        page.fill("input[name=username]", "admin")
        page.fill("input[name=password]", "admin")
        page.fill("input[name=id]", "33100200001320000009")
        page.fill("input[name=name]", "南门卡口")
        page.select_option("select[name=grid]", GRID_A)
        page.select_option("select[name=tier]", "key")
        page.check("input[name=signage]")
        page.fill("input[name=purpose]", "治安防控")
        shot(page, "camera-register")
        page.click("#register-form button[type=submit]")
        page.wait_for_url(re.compile(r".*/cameras\?registered=.*"), timeout=30_000)
        row = page.locator("tr[data-camera='33100200001320000009']")
        assert "南门卡口" in row.inner_text()
        shot(page, "camera-registered")
    finally:
        camera.stop()
    row = world.catalog.session().get(__import__("jifang.db.models", fromlist=["CameraRow"]).CameraRow,
                                      "33100200001320000009")
    assert row.onvif_endpoint.endswith(str(camera.onvif_port)) and row.tier == "key" and row.password_encrypted


def test_grid_worker_walks_an_incident_to_closed(server: str, browser, world: World) -> None:  # type: ignore[no-untyped-def]
    page = log_in(browser, server, "worker")
    assert page.url.endswith("/incidents")
    assert page.locator("#incidents tbody tr").count() == 1
    shot(page, "inbox")
    page.click(f"a[href='/incidents/{world.incidents[GRID_A]}'] >> nth=0")
    assert page.locator("img.evidence-crop").evaluate("img => img.naturalWidth >= 0")
    shot(page, "incident")
    for step in ("受理", "分派", "处置", "反馈", "办结"):
        page.fill("textarea[name=note]", f"{step} 备注")
        page.click("#advance")
        page.wait_for_load_state("networkidle")
        assert page.locator("#state").inner_text() == step
    assert page.locator("#steps tbody tr").count() == 6
    shot(page, "incident-closed")
    page.emulate_media(media="print")
    shot(page, "incident-print")


def test_supervisor_opens_retention_and_the_printed_report(server: str, browser) -> None:  # type: ignore[no-untyped-def]
    page = log_in(browser, server, "sup")
    assert page.url.endswith("/retention")
    assert page.locator("#points tbody tr").count() == 1  # only the point of grid A
    shot(page, "retention")
    with page.context.expect_page() as report_info:
        page.click("#report-link")
    report = report_info.value
    report.wait_for_load_state()
    assert "33100200001320000001" in report.content() and "33100200001320000002" not in report.content()
    report.emulate_media(media="print")
    shot(report, "retention-report")


def test_camera_page_live_view_and_timeline(server: str, browser) -> None:  # type: ignore[no-untyped-def]
    page = log_in(browser, server, "worker")
    page.goto(f"{server}/cameras/33100200001320000001/live")
    page.wait_for_load_state("networkidle")
    live = page.locator("#live")
    assert live.evaluate("img => img.complete && img.naturalWidth > 0")  # the decoded last frame
    first = live.get_attribute("src")
    page.wait_for_function("src => document.getElementById('live').src.indexOf(src) === -1 || "
                           "document.getElementById('live').src.indexOf('?t=') > 0", arg=first, timeout=8_000)
    assert "?t=" in (live.get_attribute("src") or "")  # polled every 5 s
    shot(page, "camera-live")
    page = log_in(browser, server, "sup")
    page.click("a[href='/retention/points/33100200001320000001']")
    page.wait_for_load_state("networkidle")
    # one row per day of the required window, which starts at the point's registration (2 h ago in this world)
    assert page.locator("#timeline tbody tr").count() >= 1
    shot(page, "retention-timeline")
