"""Acceptance: simulated cameras stream a clip with a watch-listed plate and one with an enrolled face; within
seconds each becomes an incident in the database, on MQTT (a real Mosquitto) and at a signed webhook, with its
evidence under legal hold. Test media are made here: a rendered plate and the sample photo inside the
insightface wheel."""

from __future__ import annotations

import hashlib
import hmac
import http.server
import json
import os
import random
import subprocess
import threading
import time
from pathlib import Path
from typing import ClassVar

import cv2
import paho.mqtt.client as mqtt
import pytest
import yaml
from jifang.sim.camera import SimCamera

from jifang.crypto import SecretBox
from jifang.tiers import MediaKind

from .agent import Agent, cli_runner, wait_for

pytestmark = pytest.mark.integration
GRID = "331002001001001"
PLATE_CAMERA, FACE_CAMERA = "33100200001320000021", "33100200001320000022"
PLATE = "浙JA7B29"


def models_dir() -> Path:
    value = os.environ.get("JIFANG_MODELS_DIR")
    assert value, "set JIFANG_MODELS_DIR to a folder filled by 'jifang models fetch' (scripts/install.sh does)"
    return Path(value).resolve()


def clip_from(image_path: Path, out: Path, seconds: int = 6) -> Path:
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-loop", "1", "-i", str(image_path), "-t", str(seconds), "-r", "10",
                    "-vf", "scale=trunc(iw/2)*2:trunc(ih/2)*2", "-pix_fmt", "yuv420p", str(out)], check=True)
    return out


class Hook(http.server.BaseHTTPRequestHandler):
    received: ClassVar[list[tuple[bytes, str, str]]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        Hook.received.append((body, self.headers["X-Jifang-Signature"], self.headers["X-Jifang-Timestamp"]))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *_args: object) -> None:
        pass


def test_plate_and_face_hits_become_delivered_incidents(tmp_path: Path, mqtt_broker: int) -> None:
    from insightface import data as insightface_data
    from jifang.recognition.faces.engine import FaceEngine
    from jifang.recognition.plates.render import make_scene

    models = models_dir()
    scene = make_scene(random.Random(7), style="blue", text=PLATE, blur_range=(0.3, 0.5))
    cv2.imwrite(str(tmp_path / "plate.png"), scene.image)
    people = Path(insightface_data.__file__).parent / "images" / "t1.jpg"
    photo = cv2.imread(str(people))
    faces = FaceEngine(models / "packs" / "jifang_sface").detect(photo)
    largest = max(faces, key=lambda f: (f.box[2] - f.box[0]) * (f.box[3] - f.box[1]))
    x1, y1, x2, y2 = largest.box
    pad = (x2 - x1) // 2
    cv2.imwrite(str(tmp_path / "enrol.jpg"), photo[max(0, y1 - pad):y2 + pad, max(0, x1 - pad):x2 + pad])

    Hook.received = []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Hook)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    messages: list[dict] = []
    subscriber = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
    subscriber.on_message = lambda _c, _u, msg: messages.append(json.loads(msg.payload))
    subscriber.connect("127.0.0.1", mqtt_broker)
    subscriber.subscribe(f"jifang/grid/{GRID}/incident", qos=1)
    subscriber.loop_start()

    plate_cam = SimCamera(path="plate", video=clip_from(tmp_path / "plate.png", tmp_path / "plate.mp4"))
    face_cam = SimCamera(path="face", video=clip_from(people, tmp_path / "face.mp4"), width=640, height=480)
    env = {"JIFANG_REGISTRY_KEY": SecretBox.new_key(), "HOOK_SECRET": "hook-secret"}
    agent = None
    try:
        plate_cam.start()
        face_cam.start()
        config = tmp_path / "jifang.yaml"
        config.write_text(yaml.safe_dump({
            "version": 1, "database": {"url": f"sqlite:///{tmp_path / 'jifang.db'}"},
            "storage": {"kind": "filesystem", "path": str(tmp_path / "store")},
            "recorder": {"segment_seconds": 2, "spool_dir": str(tmp_path / "spool")},
            "recognition": {"models_dir": str(models), "evidence_seconds": 4,
                            "mqtt": {"host": "127.0.0.1", "port": mqtt_broker},
                            "webhooks": [{"url": f"http://127.0.0.1:{server.server_port}/in",
                                          "secret": {"env": "HOOK_SECRET"}}]},
            "grids": [{"code": GRID, "name": "东山社区第一网格"}],
            "cameras": [
                {"id": PLATE_CAMERA, "name": "东门卡口", "grid": GRID, "tier": "key", "rtsp_url": plate_cam.url,
                 "recognize": ["plate"]},
                {"id": FACE_CAMERA, "name": "广场", "grid": GRID, "tier": "important", "rtsp_url": face_cam.url,
                 "recognize": ["face"]},
            ],
        }, allow_unicode=True))
        jifang = cli_runner(config, env)

        jifang("grid", "add", "--code", GRID, "--name", "东山社区第一网格")
        jifang("team", "add", "--grid", GRID, "--name", "王芳", "--role", "网格长")
        jifang("team", "add", "--grid", GRID, "--name", "陈静", "--role", "专职网格员")
        jifang("watchlist", "add", "--kind", "plate", "--name", "涉案车辆", "--plate", PLATE, "--category", "案事件",
               "--subcategory", "治安刑事案件", "--reason", "协查通报 2026-118", "--owner", "椒江派出所")
        jifang("watchlist", "add", "--kind", "face", "--name", "张某", "--image", str(tmp_path / "enrol.jpg"),
               "--category", "人员管理", "--subcategory", "重点人员", "--reason", "在逃", "--owner", "椒江派出所")

        agent = Agent(config, env=env).start(timeout=120)
        started = time.monotonic()  # the agent is up: cameras checked, store and catalog open

        def incidents() -> list[dict]:
            done = jifang("incident", "list", "--json")
            return json.loads(done.stdout)

        from jifang.incidents.inbox import incidents as incident_rows

        catalog = agent.catalog()
        assert wait_for(lambda: len(incident_rows(catalog)) >= 2, 60, interval=0.2), agent.log()
        took = time.monotonic() - started
        # watch-listed subjects are reported at once: each incident is written within seconds of the frame that
        # hit. The time from the agent's start (models loading on a loaded machine) is printed, not asserted.
        lag = max((row.created_at - row.occurred_at).total_seconds() for row in incident_rows(catalog))
        assert lag <= 5, f"an incident was written {lag:.1f} s after its frame"
        found = {row["camera"]: row for row in incidents()}
        assert found[PLATE_CAMERA]["category"] == "案事件" and found[PLATE_CAMERA]["subcategory"] == "治安刑事案件"
        assert found[FACE_CAMERA]["subcategory"] == "重点人员"
        print(f"both incidents in the database {took:.1f} s after the agent was up (models loaded in that time), "
              f"each within {lag:.1f} s of its frame")

        assert wait_for(lambda: len(messages) >= 2 and len(Hook.received) >= 2, 20), agent.log()
        assert {m["camera"] for m in messages} == {PLATE_CAMERA, FACE_CAMERA}
        for body, signature, timestamp in Hook.received:
            digest = hmac.new(b"hook-secret", timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
            expected = "sha256=" + digest
            assert hmac.compare_digest(signature, expected)
        plate_doc = json.loads(jifang("incident", "show", str(found[PLATE_CAMERA]["id"])).stdout)
        assert plate_doc["recognition"]["text"] == PLATE
        assert [r["role"] for r in plate_doc["recipients"]] == ["专职网格员", "网格长"]
        store = agent.store()
        for doc in (plate_doc, json.loads(jifang("incident", "show", str(found[FACE_CAMERA]["id"])).stdout)):
            for key in (doc["evidence"]["crop"], doc["evidence"]["frame"]):
                assert store.stat(MediaKind.IMAGE, key).legal_hold

        def video_held() -> bool:
            rows = [r for r in agent.catalog().segments(PLATE_CAMERA) if r.held and r.uploaded_at]
            return bool(rows) and all(store.stat(MediaKind.VIDEO, r.key).legal_hold for r in rows)

        assert wait_for(video_held, 20), "the video around the hit is not under legal hold"
        assert agent.stop() == 0, agent.log()
    finally:
        subscriber.loop_stop()
        server.shutdown()
        if agent is not None and agent.process and agent.process.poll() is None:
            agent.kill()
        plate_cam.stop()
        face_cam.stop()
