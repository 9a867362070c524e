"""Build a simulated recording history (catalog + store) with an injected clock, for the retention tests."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from jifang.config import Settings, parse_settings
from jifang.db import Catalog
from jifang.domain import Segment, video_key
from jifang.store import ObjectStore
from jifang.tiers import MediaKind, Tier, retain_until

GRID = "331002001001001"


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def settings_for(tmp_path: Path, cameras: list[dict], db_url: str | None = None, **retention: object) -> Settings:
    return parse_settings({
        "version": 1,
        "database": {"url": db_url or f"sqlite:///{tmp_path / 'catalog.db'}"},
        "storage": {"kind": "filesystem", "path": str(tmp_path / "store")},
        "retention": retention,
        "grids": [{"code": GRID, "name": "示范网格"}],
        "cameras": [{"name": c["id"][-4:], "grid": GRID, "rtsp_url": "rtsp://127.0.0.1/x", **c} for c in cameras],
    }, "test", environ={})


@dataclass
class History:
    catalog: Catalog
    store: ObjectStore
    work: Path

    def record(self, camera: str, tier: Tier | str, start: datetime, seconds: float, *, upload: bool = True,
               recorded_at: datetime | None = None) -> Segment:
        end = start + timedelta(seconds=seconds)
        content = f"{camera}-{start.isoformat()}".encode()
        path = self.work / "segment.bin"
        path.write_bytes(content)
        segment = Segment(camera, video_key(camera, start), start, end, len(content),
                          hashlib.sha256(content).hexdigest(), Tier(tier), GRID,
                          retain_until(end, tier, MediaKind.VIDEO))
        self.catalog.add_segment(segment, recorded_at=recorded_at or end)
        if upload:
            self.store.put(MediaKind.VIDEO, segment.key, path, segment.meta(), segment.retain_until)
            self.catalog.mark_uploaded(segment.key, end)
        return segment

    def record_range(self, camera: str, tier: Tier | str, start: datetime, end: datetime,
                     seconds: float = 3600, skip: set[datetime] | None = None) -> list[Segment]:
        out = []
        cursor = start
        while cursor < end:
            if not skip or cursor not in skip:
                out.append(self.record(camera, tier, cursor, min(seconds, (end - cursor).total_seconds())))
            cursor += timedelta(seconds=seconds)
        return out
