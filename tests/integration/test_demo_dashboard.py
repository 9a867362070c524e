"""``jifang demo`` as a new user meets it: the cameras page lists every demo camera for every demo role (real
Chromium, screenshots in tests/artifacts/), and an incident's evidence video link opens footage whose HLS
playlist ffmpeg decodes."""

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

            assert wait_for(lambda: incident() is not None, 180), "\n".join(lines[-40:])
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
