"""The recognition runtime without models: one vehicle in view over many frames is one sighting and one
incident; a vehicle that leaves and comes back within the cooldown joins the same incident."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from jifang.recognition.metrics import RecognitionMetrics
from jifang.recognition.reporting import IncidentReporter
from jifang.recognition.runtime import CameraRecognizer
from jifang.recognition.watchlist import Watchlist

from jifang.config import parse_settings
from jifang.db import Catalog
from jifang.db.models import Sighting
from jifang.incidents.inbox import incidents
from jifang.store import FilesystemStore

GRID = "331002001001001"


@dataclass
class Read:
    text: str
    raw: str
    valid: bool
    problem: str | None
    color: str
    confidence: float
    box: tuple[int, int, int, int]
    corners: list


class ScriptedReader:
    """Plays back which plate is in view at each frame."""

    def __init__(self, script: dict[int, str]) -> None:
        self.script, self.calls = script, 0

    def read(self, _image: np.ndarray) -> list[Read]:
        text = self.script.get(self.calls)
        self.calls += 1
        return [Read(text, text, True, None, "blue", 0.8 + 0.01 * (self.calls % 5), (100, 300, 260, 350), [])] \
            if text else []


def test_one_pass_one_incident_and_cooldown(tmp_path: Path) -> None:
    settings = parse_settings({
        "version": 1, "database": {"url": f"sqlite:///{tmp_path / 'c.db'}"},
        "storage": {"kind": "filesystem", "path": str(tmp_path / "store")},
        "grids": [{"code": GRID, "name": "g"}],
        "cameras": [{"id": "33100200001320000001", "name": "gate", "grid": GRID, "tier": "key",
                     "rtsp_url": "rtsp://127.0.0.1/x", "recognize": ["plate"]}],
    }, "t", environ={})
    catalog = Catalog(settings.database.url)
    catalog.migrate()
    store = FilesystemStore(settings.storage.path)
    store.ensure_ready()
    watchlist = Watchlist(catalog)
    watchlist.add(kind="plate", name="wanted", plate="浙J12345", category="案事件", subcategory="治安刑事案件",
                  reason="r", owner="o", at=datetime(2026, 1, 1, tzinfo=UTC))
    reporter = IncidentReporter(settings, catalog, store, lambda: datetime.now(UTC))
    # in view for frames 0-39 (10 s at 4 fps), gone, back at frames 60-63, and an unlisted car at 70-75
    script = {i: "浙J12345" for i in range(40)} | {i: "浙J12345" for i in range(60, 64)} | \
        {i: "浙A88888" for i in range(70, 76)}
    metrics = RecognitionMetrics()
    recognizer = CameraRecognizer(settings.cameras[0], "rtsp://unused", settings, reporter, watchlist, metrics,
                                  plate_reader=ScriptedReader(script))
    frame = np.zeros((480, 640, 3), np.uint8)
    start = datetime.now(UTC).timestamp()
    for index in range(100):
        recognizer.process(start + index * 0.25, frame)
    with catalog.session() as session:
        sightings = session.query(Sighting).order_by(Sighting.id).all()
    assert [(s.text, s.entry_id is not None) for s in sightings] == [
        ("浙J12345", True), ("浙J12345", True), ("浙A88888", False)]
    rows = incidents(catalog)
    assert len(rows) == 1, "the second pass within the cooldown joins the first incident"
    assert sightings[0].incident_id == sightings[1].incident_id == rows[0].id
    assert metrics.metrics_registry.get_sample_value("jifang_recognition_frames_total",
                                             {"camera": "33100200001320000001", "kind": "plate"}) == 100
    assert metrics.metrics_registry.get_sample_value("jifang_recognition_hits_total",
                                             {"kind": "plate", "category": "案事件"}) == 2
    assert metrics.metrics_registry.get_sample_value("jifang_incidents_total",
                                                     {"category": "案事件", "state": "上报"}) == 1
