"""Acceptance: a simulated ONVIF camera with two profiles is onboarded with ``--recognize plate`` while the edge
agent runs. Without a restart, the agent records the main stream, runs plate recognition on the sub-stream
(only the sub-stream shows the plate), and the watch-listed plate becomes an incident."""

from __future__ import annotations

import json
import random
import subprocess
import time
from pathlib import Path

import cv2
import pytest
import yaml
from jifang.sim.camera import SimCamera
from jifang.sim.onvif import OnvifSimulator

from jifang.crypto import SecretBox
from jifang.tiers import MediaKind

from .agent import Agent, cli_runner, wait_for
from .test_recognition_e2e import clip_from, models_dir

pytestmark = pytest.mark.integration
GRID = "331002001001001"
CAMERA = "33100200001320000041"
PLATE = "浙JD8K31"


def test_onvif_two_profiles_recognize_plate_without_restart(tmp_path: Path) -> None:
    from jifang.recognition.plates.render import make_scene

    models = models_dir()
    scene = make_scene(random.Random(11), style="blue", text=PLATE, blur_range=(0.3, 0.5))
    cv2.imwrite(str(tmp_path / "plate.png"), scene.image)
    main = SimCamera(path="main", width=960, height=540)  # a test pattern: no plate on the main stream
    sub = SimCamera(path="sub", video=clip_from(tmp_path / "plate.png", tmp_path / "plate.mp4"))
    onvif = None
    agent = None
    try:
        main.start()
        sub.start()
        onvif = OnvifSimulator(rtsp_url=main.url, sub_rtsp_url=sub.url, host="127.0.0.1", port=0,
                               username="admin", password="Cam3ra!pw")
        onvif.start()
        config = tmp_path / "jifang.yaml"
        config.write_text(yaml.safe_dump({
            "version": 1, "database": {"url": f"sqlite:///{tmp_path / 'jifang.db'}"},
            "storage": {"kind": "filesystem", "path": str(tmp_path / "store")},
            "recorder": {"segment_seconds": 2, "spool_dir": str(tmp_path / "spool")},
            "recognition": {"models_dir": str(models), "evidence_seconds": 4},
            "grids": [{"code": GRID, "name": "东山社区第一网格"}], "cameras": [],
        }, allow_unicode=True))
        env = {"JIFANG_REGISTRY_KEY": SecretBox.new_key(), "CAM_PW": "Cam3ra!pw"}
        jifang = cli_runner(config, env)

        agent = Agent(config, env=env).start(timeout=120)  # nothing to record yet
        pid = agent.process.pid
        jifang("watchlist", "add", "--kind", "plate", "--name", "涉案车辆", "--plate", PLATE, "--category", "案事件",
               "--subcategory", "治安刑事案件", "--reason", "协查通报", "--owner", "椒江派出所")
        adding = time.monotonic()
        added = jifang("camera", "add", "--from-probe", f"127.0.0.1:{onvif.port}", "--user", "admin",
                       "--password-env", "CAM_PW", "--id", CAMERA, "--name", "东门卡口", "--grid", GRID,
                       "--tier", "important", "--recognize", "plate")
        assert f"recognition (plate) on {sub.url}" in added.stdout, added.stdout
        listed = json.loads(jifang("camera", "list", "--json").stdout)
        assert [(c["rtsp_url"], c["sub_rtsp_url"], c["recognize"]) for c in listed] == [
            (main.url, sub.url, ["plate"])]

        catalog = agent.catalog()
        from jifang.incidents.inbox import incidents

        assert wait_for(lambda: len(incidents(catalog)) >= 1, 90, interval=0.5), agent.log()
        print(f"incident {time.monotonic() - adding:.1f} s after 'camera add' started (models loaded in that time)")
        assert agent.process.pid == pid and agent.process.poll() is None, "the agent was restarted"
        row = incidents(catalog)[0]
        assert row.camera_id == CAMERA and PLATE in row.summary
        assert wait_for(lambda: any(s.uploaded_at for s in catalog.segments(CAMERA)), 60), agent.log()
        segment = next(s for s in catalog.segments(CAMERA) if s.uploaded_at)
        video = tmp_path / "segment.mp4"
        video.write_bytes(agent.store().read(MediaKind.VIDEO, segment.key))
        size = subprocess.run(["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries",
                               "stream=width,height", "-of", "csv=p=0", str(video)],
                              capture_output=True, text=True, check=True).stdout.strip()
        assert size == "960,540", f"recorded {size}: not the main stream"
        assert agent.stop() == 0, agent.log()
    finally:
        if agent is not None and agent.process and agent.process.poll() is None:
            agent.kill()
        if onvif is not None:
            onvif.stop()
        main.stop()
        sub.stop()
