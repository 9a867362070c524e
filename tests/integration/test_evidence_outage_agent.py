"""Acceptance, end to end: S3 (moto over HTTP) is stopped for 60 s while a watch-listed face is in view of a
camera added to the running agent. The incident exists during the outage; once S3 returns, its evidence images
reach the store with the image floor and a legal hold; the agent's log has no traceback."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

import cv2
import pytest
import yaml
from jifang.sim.camera import SimCamera

from jifang.crypto import SecretBox
from jifang.tiers import MediaKind, retain_until

from .agent import REPO, Agent, wait_for
from .test_recognition_e2e import clip_from, models_dir

pytestmark = pytest.mark.integration
GRID = "331002001001001"
FACE_CAMERA = "33100200001320000061"
OUTAGE_SECONDS = 60


def test_face_hit_while_s3_is_down(tmp_path: Path, s3, minio_env) -> None:  # type: ignore[no-untyped-def]
    from insightface import data as insightface_data
    from jifang.recognition.faces.engine import FaceEngine

    models = models_dir()
    people = Path(insightface_data.__file__).parent / "images" / "t1.jpg"
    photo = cv2.imread(str(people))
    largest = max(FaceEngine(models / "packs" / "jifang_sface").detect(photo),
                  key=lambda f: (f.box[2] - f.box[0]) * (f.box[3] - f.box[1]))
    x1, y1, x2, y2 = largest.box
    pad = (x2 - x1) // 2
    cv2.imwrite(str(tmp_path / "enrol.jpg"), photo[max(0, y1 - pad):y2 + pad, max(0, x1 - pad):x2 + pad])
    face_cam = SimCamera(path="face", video=clip_from(people, tmp_path / "face.mp4"), width=640, height=480)
    agent = None
    try:
        face_cam.start()
        config = tmp_path / "jifang.yaml"
        config.write_text(yaml.safe_dump({
            "version": 1, "database": {"url": f"sqlite:///{tmp_path / 'jifang.db'}"},
            "storage": {"kind": "minio", "minio": {"endpoint": s3.endpoint, "secure": False}},
            "recorder": {"segment_seconds": 2, "spool_dir": str(tmp_path / "spool")},
            "recognition": {"models_dir": str(models), "evidence_seconds": 4},
            "grids": [{"code": GRID, "name": "东山社区第一网格"}], "cameras": [],
        }, allow_unicode=True))
        env = {"JIFANG_REGISTRY_KEY": SecretBox.new_key(), "JIFANG_MINIO_ACCESS_KEY": "test-access",
               "JIFANG_MINIO_SECRET_KEY": "test-secret"}
        run_env = {**os.environ, **env}

        def jifang(*args: str) -> subprocess.CompletedProcess[str]:
            done = subprocess.run([sys.executable, "-m", "jifang.cli", *args, "--config", str(config)],
                                  capture_output=True, text=True, cwd=REPO, env=run_env, timeout=120)
            assert done.returncode == 0, done.stderr
            return done

        jifang("watchlist", "add", "--kind", "face", "--name", "张某", "--image", str(tmp_path / "enrol.jpg"),
               "--category", "人员管理", "--subcategory", "重点人员", "--reason", "在逃", "--owner", "椒江派出所")
        agent = Agent(config, env=env).start(timeout=120)
        s3.stop()
        stopped = time.monotonic()
        jifang("camera", "add", "--rtsp-url", face_cam.url, "--id", FACE_CAMERA, "--name", "广场", "--grid", GRID,
               "--tier", "important", "--recognize", "face")

        def listed() -> list[dict]:
            return json.loads(jifang("incident", "list", "--json").stdout)

        assert wait_for(lambda: len(listed()) >= 1, OUTAGE_SECONDS - 5, interval=1), agent.log()
        incident = listed()[0]
        doc = json.loads(jifang("incident", "show", str(incident["id"])).stdout)
        keys = [doc["evidence"]["crop"], doc["evidence"]["frame"]]
        assert list((tmp_path / "spool" / "evidence").glob("*.jpg")), "the evidence waits in the spool"
        time.sleep(max(0.0, OUTAGE_SECONDS - (time.monotonic() - stopped)))
        s3.start()
        store = agent.store()
        floor = retain_until(datetime.fromisoformat(doc["occurred_at"]), "important",
                             MediaKind.IMAGE)

        def arrived() -> bool:
            stored = [store.stat(MediaKind.IMAGE, key) for key in keys]
            return all(s is not None and s.legal_hold and s.retain_until == floor for s in stored)

        assert wait_for(arrived, 90, interval=1), agent.log()
        assert agent.stop() == 0, agent.log()
        log = "\n".join(agent.output)
        assert "Traceback" not in log, log[-4000:]
        assert "evidence images stay spooled" in log
    finally:
        if agent is not None and agent.process and agent.process.poll() is None:
            agent.kill()
        face_cam.stop()
