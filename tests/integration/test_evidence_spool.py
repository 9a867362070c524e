"""Evidence survives an object-store outage: with S3 (moto over HTTP) stopped, a watch-listed face still becomes
an incident at once, its evidence images wait in the spool, and they reach the store with their image floor and
a legal hold once S3 returns, with no traceback in the log."""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
from jifang.recognition.evidence import EvidenceSpool
from jifang.recognition.reporting import IncidentReporter, Observation
from jifang.recognition.watchlist import Watchlist

from jifang.config import parse_settings
from jifang.db import Catalog
from jifang.incidents.inbox import incident_document
from jifang.registry import Registry
from jifang.store.minio_store import MinioStore
from jifang.tiers import MediaKind, retain_until

from .agent import wait_for

pytestmark = pytest.mark.integration
GRID = "331002001001001"
CAMERA = "33100200001320000031"
OUTAGE_SECONDS = 20  # the 60 s changes nothing but the wait: the spool holds images for any outage


def test_face_hit_during_s3_outage_is_reported_and_its_evidence_uploads_later(
        tmp_path: Path, s3, caplog: pytest.LogCaptureFixture) -> None:  # type: ignore[no-untyped-def]
    caplog.set_level(logging.INFO)
    settings = parse_settings({
        "version": 1, "database": {"url": f"sqlite:///{tmp_path / 'c.db'}"},
        "grids": [{"code": GRID, "name": "g"}],
        "cameras": [{"id": CAMERA, "name": "东门", "grid": GRID, "tier": "key", "rtsp_url": "rtsp://h/x",
                     "recognize": ["face"]}],
    }, "test", environ={})
    catalog = Catalog(settings.database.url)
    catalog.migrate()
    Registry(catalog).sync(settings, datetime.now(UTC))
    store = MinioStore(s3.endpoint, "k", "s", secure=False)
    store.ensure_ready()
    watchlist = Watchlist(catalog)
    person = np.random.default_rng(7).normal(size=128).astype(np.float32)
    watchlist.add(kind="face", name="重点人员甲", category="人员管理", subcategory="重点人员", reason="协查",
                  owner="派出所", at=datetime.now(UTC), embeddings=[(person, "photo.jpg")])
    spool = EvidenceSpool(tmp_path / "spool" / "evidence", store, retry_seconds=1.0)
    holds: list[tuple] = []
    reporter = IncidentReporter(settings, catalog, store, lambda: datetime.now(UTC),
                                hold=lambda *args: holds.append(args), evidence=spool)
    spool.start()
    s3.stop()
    try:
        seen = datetime.now(UTC)
        hit = watchlist.match_face(person, seen, settings.recognition.face_threshold)
        assert hit is not None
        sighting = reporter.record(Observation("face", settings.cameras[0], seen, b"\xff\xd8crop", b"\xff\xd8frame"),
                                   hit)
        assert sighting.incident_id is not None, "the incident is written at once, during the outage"
        evidence = incident_document(catalog, sighting.incident_id)["evidence"]
        keys = [evidence["crop"], evidence["frame"]]
        assert len(spool.pending()) == 2
        time.sleep(OUTAGE_SECONDS)
        assert len(spool.pending()) == 2, "nothing may leave the spool before the store has it"
    finally:
        s3.start()
    floor = retain_until(seen, "key", MediaKind.IMAGE)

    def uploaded() -> bool:
        stored = [store.stat(MediaKind.IMAGE, key) for key in keys]
        return all(s is not None and s.legal_hold and s.retain_until == floor for s in stored)

    assert wait_for(uploaded, 60), [store.stat(MediaKind.IMAGE, key) for key in keys]
    assert wait_for(lambda: spool.pending() == [], 10)
    assert store.read(MediaKind.IMAGE, evidence["frame"]) == b"\xff\xd8frame"
    spool.stop()
    assert holds and holds[0][0] == CAMERA
    assert not [r for r in caplog.records if r.exc_info], "no traceback in the log"
    assert any("evidence images stay spooled" in r.getMessage() for r in caplog.records)
