"""``jifang recognize`` on still images made here: a rendered plate and the sample photo of the insightface
wheel, with the documented JSON shape."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from pathlib import Path

import cv2
from jifang.recognition.plates.render import make_scene

REPO = Path(__file__).resolve().parents[1]


def test_recognize_reports_plates_and_faces_as_json(tmp_path: Path) -> None:
    from insightface import data as insightface_data

    assert os.environ.get("JIFANG_MODELS_DIR"), "run through scripts/test.sh (it sets JIFANG_MODELS_DIR)"
    plate = tmp_path / "plate.jpg"
    cv2.imwrite(str(plate), make_scene(random.Random(3), style="green", text="浙JD12345").image)
    people = Path(insightface_data.__file__).parent / "images" / "t1.jpg"
    done = subprocess.run([sys.executable, "-m", "jifang.cli", "recognize", str(plate), str(people), "--json"],
                          capture_output=True, text=True, cwd=REPO, timeout=120)
    assert done.returncode == 0, done.stderr
    results = json.loads(done.stdout)
    assert [r["image"] for r in results] == [str(plate), str(people)]
    assert results[0]["plates"][0]["text"] == "浙JD12345" and results[0]["plates"][0]["valid"] is True
    assert set(results[0]["plates"][0]) == {"text", "valid", "color", "confidence", "box"}
    assert results[0]["faces"] == []
    assert results[1]["plates"] == [] and len(results[1]["faces"]) == 6
    assert set(results[1]["faces"][0]) == {"box", "score", "match"} and results[1]["faces"][0]["match"] is None
    bad = subprocess.run([sys.executable, "-m", "jifang.cli", "recognize", str(tmp_path / "missing.jpg")],
                         capture_output=True, text=True, cwd=REPO, timeout=120)
    assert bad.returncode == 2 and "not an image file" in bad.stderr
