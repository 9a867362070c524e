"""``jifang demo`` as a new user meets it (real Chromium, screenshots in tests/artifacts/): the cameras page lists
every demo camera for every demo role, and each role's story holds: the technician sees every camera online with
its live picture and health history, the grid worker the incidents of their grid with evidence images, the
supervisor "compliant so far" for every healthy point and the printable report; an incident's evidence video link
opens footage whose HLS playlist ffmpeg decodes."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
from datetime import datetime
from pathlib import Path
from urllib.parse import unquote

import pytest
from jifang.demo.run import DEMO_GRID, DEMO_TEAM

from jifang.config import load_settings
from jifang.db import Catalog

from .agent import REPO, wait_for

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = REPO / "tests" / "artifacts"
pytestmark = pytest.mark.integration


def test_demo_cameras_page_lists_every_camera_for_every_role_and_evidence_plays(tmp_path: Path) -> None:
    from playwright.sync_api import sync_playwright

    assert os.environ.get("JIFANG_MODELS_DIR"), "the demo's recognition cameras need the models (scripts/test.sh)"
    data = tmp_path / "jifang-data"
    process = subprocess.Popen([sys.executable, "-m", "jifang.cli", "demo", "--data", str(data), "--for", "240",
                                "--metrics-port", "0"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                               cwd=REPO)
    lines: list[str] = []
    threading.Thread(target=lambda: lines.extend(line.rstrip() for line in process.stdout), daemon=True).start()
    try:
        def dashboard() -> str | None:
            return next((m.group(1) for line in lines if (m := re.match(r"dashboard:\s+(http://\S+)/", line))), None)

        def incident() -> str | None:
            return next((m.group(1) for line in lines if (m := re.match(r"incident (\d+) ", line))), None)

        assert wait_for(lambda: dashboard() is not None, 180), "\n".join(lines[-40:])
        base = dashboard()
        settings = load_settings(data / "jifang.yaml", environ={})
        demo_cameras = {c.id for c in settings.cameras}
        assert len(demo_cameras) == 4
        users = [line.split("\t") for line in (data / "demo-users.txt").read_text(encoding="utf-8").splitlines()]
        assert {role for _name, role, _password in users} == {"admin", "technician", "supervisor", "grid_worker"}
        ARTIFACTS.mkdir(exist_ok=True)
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True)
            pages = {}
            for name, role, password in users:
                page = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
                page.goto(f"{base}/login")
                page.fill("input[name=username]", name)
                page.fill("input[name=password]", password)
                page.click("button[type=submit]")
                page.wait_for_load_state("networkidle")
                page.goto(f"{base}/cameras")
                listed = set(page.locator("#cameras tbody tr[data-camera]").evaluate_all(
                    "rows => rows.map(r => r.dataset.camera)"))
                page.screenshot(path=str(ARTIFACTS / f"demo-cameras-{role}.png"), full_page=True)
                assert listed == demo_cameras, f"{role} sees {sorted(listed)}"
                assert page.locator("#cameras tbody tr[data-managed=file]").count() == 4
                pages[role] = page

            technician_story(pages["technician"], base, demo_cameras)
            assert wait_for(lambda: incident() is not None, 180), "\n".join(lines[-40:])
            grid_worker_story(pages["grid_worker"], base, incident())
            supervisor_story(pages["supervisor"], base, len(demo_cameras))
            page = pages["grid_worker"]
            page.goto(f"{base}/incidents/{incident()}")
            link = page.locator("#open-video")
            assert link.count() == 1, page.content()
            # the evidence window closes evidence_seconds after the hit: let its segments reach the store
            catalog = Catalog(settings.database.url)
            href = link.get_attribute("href")
            camera_id = href.split("/footage/")[1].split("?")[0]
            end = re.search(r"end=([^&]+)", href).group(1)
            until = datetime.fromisoformat(unquote(end))
            assert unquote(end).endswith("+00:00"), "the link must keep the time zone (a bare + reads as a space)"
            assert wait_for(lambda: any(s.end_at >= until and s.uploaded_at for s in catalog.segments(camera_id)),
                            90)
            catalog.dispose()
            link.click()
            page.wait_for_load_state("networkidle")
            assert page.url.split("?")[0].endswith(f"/footage/{camera_id}"), page.url
            page.fill("input[name=purpose]", "核查事件证据")
            page.click("#footage-form button[type=submit]")
            page.wait_for_load_state("networkidle")
            assert page.locator("#hls-link").count() == 1, page.locator(".error").all_inner_texts()
            playlist = page.locator("#hls-link").get_attribute("href")
            page.screenshot(path=str(ARTIFACTS / "demo-evidence-footage.png"), full_page=True)
            cookies = "; ".join(f"{c['name']}={c['value']}" for c in page.context.cookies())
            browser.close()
        decoded = subprocess.run(
            ["ffmpeg", "-v", "error", "-headers", f"Cookie: {cookies}\r\n", "-i", f"{base}{playlist}",
             "-f", "null", "-", "-stats"], capture_output=True, text=True, timeout=120)
        assert decoded.returncode == 0, decoded.stderr[-2000:]
        frames = re.findall(r"frame=\s*(\d+)", decoded.stderr)
        assert frames and int(frames[-1]) > 0, decoded.stderr[-2000:]
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(120)
        except subprocess.TimeoutExpired:
            process.kill()


def shot(page, name: str) -> None:  # type: ignore[no-untyped-def]
    page.screenshot(path=str(ARTIFACTS / f"demo-story-{name}.png"), full_page=True)


def technician_story(page, base: str, cameras: set[str]) -> None:  # type: ignore[no-untyped-def]
    """Every camera online on the cameras page; a camera's page shows its live picture and health history."""
    def all_online() -> bool:
        page.goto(f"{base}/cameras")
        return page.locator("#cameras tbody td.status-online").count() == len(cameras)

    assert wait_for(all_online, 120, interval=3), page.inner_text("#cameras")
    shot(page, "technician-cameras")
    camera = sorted(cameras)[0]

    def live_picture() -> bool:
        page.goto(f"{base}/cameras/{camera}/live")
        page.wait_for_load_state("networkidle")
        return page.evaluate("document.getElementById('live').naturalWidth") > 0

    assert wait_for(live_picture, 90, interval=3), page.content()
    assert "在线" in page.inner_text("#camera-status") and page.locator("#health").count() == 1
    shot(page, "technician-camera")


def grid_worker_story(page, base: str, incident: str) -> None:  # type: ignore[no-untyped-def]
    """The inbox holds the demo grid's incidents; one opens with its Appendix A report and both evidence images."""
    page.goto(f"{base}/incidents")
    grids = page.locator("#incidents tbody tr[data-incident]").evaluate_all("rows => rows.map(r => r.dataset.grid)")
    assert grids and set(grids) == {DEMO_GRID}, grids
    shot(page, "grid-worker-incidents")

    def evidence_shown() -> bool:
        page.goto(f"{base}/incidents/{incident}")
        page.wait_for_load_state("networkidle")
        return page.evaluate("Array.from(document.querySelectorAll('.evidence img'))"
                             ".filter(i => i.complete && i.naturalWidth > 0).length") == 2

    assert wait_for(evidence_shown, 60, interval=3), page.content()
    text = page.inner_text("main")
    assert "事件报告 (附录A)" in text and "证据图片" in text, text
    assert all(name in text for name, _role in DEMO_TEAM), "not routed to the grid's team: " + text
    shot(page, "grid-worker-incident")


def supervisor_story(page, base: str, points: int) -> None:  # type: ignore[no-untyped-def]
    """Every healthy demo point reads "compliant so far" over a window that holds recorded time (an audit from
    before the first segments would pass trivially); the printable report opens in Chinese with each timeline."""
    def all_compliant_so_far() -> bool:
        page.goto(f"{base}/retention")
        rows = page.locator("#points tbody tr[data-verdict]").evaluate_all(
            "rows => rows.map(r => [r.dataset.verdict, Number(r.dataset.requiredSeconds)])")
        return len(rows) == points and all(verdict == "compliant_so_far" and required >= 20
                                           for verdict, required in rows)

    assert wait_for(all_compliant_so_far, 150, interval=5), page.inner_text("#points")
    assert page.inner_text("#points").count("目前合规，窗口未满") == points
    shot(page, "supervisor-retention")
    with page.expect_popup() as opened:
        page.click("#report-link")
    report = opened.value
    report.wait_for_load_state("networkidle")
    text = report.inner_text("body")
    assert "视频图像保存合规审计报告" in text and text.count("目前合规，窗口未满") >= points, text[:2000]
    assert report.locator("svg.timeline").count() == points
    report.emulate_media(media="print")
    shot(report, "supervisor-report")
    report.close()
