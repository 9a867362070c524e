"""The demo's recognition cameras: a clip of the sample photo inside the insightface wheel (faces) and a clip
of a rendered plate, a demo watchlist that matches both, and the demo grid's team to receive the incidents."""

from __future__ import annotations

import random
import subprocess
from pathlib import Path

from jifang.config import default_models_dir
from jifang.db import Catalog
from jifang.errors import ConfigError

DEMO_PLATE = "浙J5A7B2"
FACE_CAMERA = ("33100200001320000003", "demo-face", "important", "Demo entrance (faces)")
PLATE_CAMERA = ("33100200001320000004", "demo-plate", "key", "Demo checkpoint (plates)")
TEAM = (("陈静", "专职网格员"), ("王芳", "网格长"), ("李强", "网格指导员"))


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


def enrol_demo_watchlist(catalog: Catalog, models: Path, people: Path, grid: str) -> None:
    """A demo person (the largest face of the sample photo) and a demo vehicle; the grid's team; idempotent."""
    from datetime import UTC, datetime

    import cv2
    from jifang.recognition.faces.engine import FaceEngine
    from jifang.recognition.watchlist import Watchlist

    from jifang.registry import Registry

    registry = Registry(catalog)
    if not any(g.code == grid for g in registry.grids()):
        registry.add_grid(grid, "示范网格 Demo grid", "城市社区")
        for name, role in TEAM:
            registry.add_member(grid, name, role, channels="dashboard")
    watchlist = Watchlist(catalog)
    names = {entry.name for entry in watchlist.entries()}
    now = datetime.now(UTC)
    if "示范车辆 demo vehicle" not in names:
        watchlist.add(kind="plate", name="示范车辆 demo vehicle", plate=DEMO_PLATE, category="案事件",
                      subcategory="治安刑事案件", reason="demo: 违法犯罪可疑的车辆", owner="demo", at=now)
    if "示范人员 demo person" not in names:
        photo = cv2.imread(str(people))
        face = max(FaceEngine(models / "packs" / "jifang_sface").detect(photo),
                   key=lambda f: (f.box[2] - f.box[0]) * (f.box[3] - f.box[1]))
        watchlist.add(kind="face", name="示范人员 demo person", category="人员管理", subcategory="重点人员",
                      reason="demo: 重点人员", owner="demo", at=now, embeddings=[(face.embedding, people.name)])
