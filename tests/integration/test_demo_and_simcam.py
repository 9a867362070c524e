"""The README's first command (``jifang demo``) and the simulated camera's video-file mode."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from jifang.sim.camera import SimCamera

from jifang.config import load_settings
from jifang.db import Catalog

from .agent import REPO

pytestmark = pytest.mark.integration


def test_demo_records_its_cameras_reports_incidents_and_writes_its_config(tmp_path: Path) -> None:
    assert os.environ.get("JIFANG_MODELS_DIR"), "the demo's recognition cameras need the models (scripts/test.sh)"
    data = tmp_path / "jifang-data"
    done = subprocess.run([sys.executable, "-m", "jifang.cli", "demo", "--data", str(data), "--for", "30",
                           "--metrics-port", "0"], capture_output=True, text=True, timeout=180, cwd=REPO)
    assert done.returncode == 0, done.stderr
    assert "metrics:           http://127.0.0.1:" in done.stdout
    settings = load_settings(data / "jifang.yaml", environ={})
    assert [c.tier for c in settings.cameras] == ["key", "important", "important", "key"]
    assert [c.recognize for c in settings.cameras] == [[], [], ["face"], ["plate"]]
    assert "[人员管理/重点人员]" in done.stdout
    assert "[案事件/治安刑事案件] 示范卡口 (车牌识别): 车牌 浙J5A7B2" in done.stdout
    rows = Catalog(settings.database.url).segments()
    assert {row.camera_id for row in rows} == {c.id for c in settings.cameras}
    assert all(row.uploaded_at is not None for row in rows)
    assert len(list((data / "store" / "jifang-video" / "video").rglob("*.mp4"))) == len(rows) >= 4
    # other commands can be pointed at the demo's configuration
    listed = subprocess.run([sys.executable, "-m", "jifang.cli", "catalog", "segments", "--config",
                             str(data / "jifang.yaml"), "--json"], capture_output=True, text=True, cwd=REPO)
    assert listed.returncode == 0 and '"camera": "33100200001320000001"' in listed.stdout


def test_video_file_is_looped_forever(tmp_path: Path) -> None:
    clip = tmp_path / "clip.mp4"  # a 3-second clip made here: the camera must keep serving past its end
    subprocess.run(["ffmpeg", "-v", "error", "-f", "lavfi", "-i", "testsrc=size=320x240:rate=10", "-t", "3",
                    "-pix_fmt", "yuv420p", str(clip)], check=True)
    with SimCamera(path="clip", video=clip) as camera:
        out = tmp_path / "pulled.mp4"
        subprocess.run(["ffmpeg", "-v", "error", "-rtsp_transport", "tcp", "-i", camera.url, "-t", "8",
                        "-c", "copy", str(out)], check=True, timeout=60)
    probe = subprocess.run(["ffprobe", "-v", "error", "-show_entries", "format=duration", "-of", "csv=p=0",
                            str(out)], capture_output=True, text=True, check=True)
    assert float(probe.stdout) >= 7.0
