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


def test_missing_models_are_one_line_and_exit_2(tmp_path: Path) -> None:
    # an empty models folder (a fresh machine before `jifang models fetch`): what to run, not a traceback
    plate = tmp_path / "plate.jpg"
    cv2.imwrite(str(plate), make_scene(random.Random(3), style="blue").image)
    for kind in ("plate", "face"):
        done = subprocess.run([sys.executable, "-m", "jifang.cli", "recognize", str(plate), "--kind", kind,
                               "--models", str(tmp_path / "none")], capture_output=True, text=True, cwd=REPO,
                              timeout=120)
        assert done.returncode == 2, done.stderr
        lines = [line for line in done.stderr.splitlines() if line.startswith("jifang: error:")]
        assert len(lines) == 1 and "jifang models fetch --dir" in lines[0], done.stderr
        assert "Traceback" not in done.stderr and len(done.stderr.strip().splitlines()) == 1, done.stderr


def test_models_commands_share_one_default(tmp_path: Path) -> None:
    # `models list` reads the folder the configuration names (the same setting `recognize` uses)
    config = tmp_path / "jifang.yaml"
    config.write_text(f"recognition:\n  models_dir: {tmp_path / 'm'}\n", encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if k != "JIFANG_MODELS_DIR"}
    done = subprocess.run([sys.executable, "-m", "jifang.cli", "models", "list", "--config", str(config), "--json"],
                          capture_output=True, text=True, cwd=tmp_path, timeout=120, env=env)
    assert done.returncode == 0, done.stderr
    rows = json.loads(done.stdout)
    assert rows and not any(row["present"] for row in rows)
    from jifang.config import default_models_dir

    assert default_models_dir() == Path(os.environ.get("JIFANG_MODELS_DIR") or ".models")
