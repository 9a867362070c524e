"""The demo's recognition cameras: a clip of the sample photo inside the insightface wheel (faces) and a clip
of a rendered plate, and a demo watchlist that matches both."""

from __future__ import annotations

import random
import subprocess
from pathlib import Path

from jifang.config import default_models_dir
from jifang.db import Catalog
from jifang.errors import ConfigError

DEMO_PLATE = "浙J5A7B2"
FACE_CAMERA = ("33100200001320000003", "demo-face", "important", "示范入口 (人脸识别)")
PLATE_CAMERA = ("33100200001320000004", "demo-plate", "key", "示范卡口 (车牌识别)")


def models_dir(data: Path) -> Path:
    """Where the demo finds its models: the default every command uses ($JIFANG_MODELS_DIR, else .models, where
    scripts/install.sh fetches them), or DATA/models."""
    for candidate in (default_models_dir(), data / "models"):
        if (candidate / "packs" / "jifang_sface" / "manifest.json").exists():
            return candidate.resolve()
    raise ConfigError(f"no recognition models: run `jifang models fetch --dir {default_models_dir()}` "
                      "(scripts/install.sh does)")


def _clip(image: Path, out: Path, seconds: int = 8) -> Path:
    if not out.exists():
        subprocess.run(["ffmpeg", "-v", "error", "-y", "-loop", "1", "-i", str(image), "-t", str(seconds), "-r", "10",
                        "-vf", "scale=trunc(iw/2)*2:trunc(ih/2)*2", "-pix_fmt", "yuv420p", str(out)], check=True)
    return out


def prepare_media(data: Path) -> dict[str, Path]:
    """The two demo clips and the photo the demo person is enrolled from (made here, from registry packages)."""
    import cv2
    from insightface import data as insightface_data
    from jifang.recognition.plates.render import make_scene

    media = data / "demo-media"
    media.mkdir(parents=True, exist_ok=True)
    people = Path(insightface_data.__file__).parent / "images" / "t1.jpg"
    plate_frame = media / "plate.png"
    if not plate_frame.exists():
        cv2.imwrite(str(plate_frame), make_scene(random.Random(7), style="blue", text=DEMO_PLATE,
                                                 blur_range=(0.3, 0.5)).image)
    return {"face": _clip(people, media / "faces.mp4"), "plate": _clip(plate_frame, media / "plate.mp4"),
            "people": people}


def enrol_demo_watchlist(catalog: Catalog, models: Path, people: Path) -> None:
    """A demo person (the largest face of the sample photo) and a demo vehicle on the watchlist; idempotent."""
    from datetime import UTC, datetime

    import cv2
    from jifang.recognition.faces.engine import FaceEngine
    from jifang.recognition.watchlist import Watchlist

    watchlist = Watchlist(catalog)
    names = {entry.name for entry in watchlist.entries()}
    now = datetime.now(UTC)
    if "示范车辆" not in names:
        watchlist.add(kind="plate", name="示范车辆", plate=DEMO_PLATE, category="案事件",
                      subcategory="治安刑事案件", reason="示范: 违法犯罪可疑的车辆", owner="demo", at=now)
    if "示范人员" not in names:
        photo = cv2.imread(str(people))
        face = max(FaceEngine(models / "packs" / "jifang_sface").detect(photo),
                   key=lambda f: (f.box[2] - f.box[0]) * (f.box[3] - f.box[1]))
        watchlist.add(kind="face", name="示范人员", category="人员管理", subcategory="重点人员",
                      reason="示范: 重点人员", owner="demo", at=now, embeddings=[(face.embedding, people.name)])
