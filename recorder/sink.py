"""Where a finished segment file goes: validated, hashed, spooled, catalogued, queued for upload.

Used by live recording and by crash recovery alike, so both follow the same path and the same rules. A file
that fails validation is quarantined and counted, never deleted silently.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path

from jifang.recorder.metrics import RecorderMetrics
from jifang.recorder.mp4 import validate_segment
from jifang.recorder.spool import Spool, SpooledSegment

from jifang.config import CameraConfig
from jifang.db import Catalog
from jifang.domain import Segment, video_key
from jifang.tiers import MediaKind, retain_until

log = logging.getLogger("jifang.recorder")

EMPTY_FILE_BYTES = 1024  # an fMP4 header without a single frame; no video is lost by discarding it


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


class SegmentSink:
    def __init__(
        self,
        spool: Spool,
        catalog: Catalog,
        metrics: RecorderMetrics,
        enqueue: Callable[[SpooledSegment], None],
        ffprobe: str,
        clock: Callable[[], datetime],
    ) -> None:
        self.spool = spool
        self.catalog = catalog
        self.metrics = metrics
        self.enqueue = enqueue
        self.ffprobe = ffprobe
        self.clock = clock

    def accept(self, camera: CameraConfig, grid: str, path: Path, start: datetime,
               end: datetime | None = None) -> Segment | None:
        """Spool ``path`` as the segment starting at ``start``; ``end`` None means "start + probed duration"."""
        if not path.exists():
            if self.catalog.segment(video_key(camera.id, start)) is not None:
                return None  # spooled before a crash; recovery re-reads the list
            log.error("camera %s: segment %s vanished before it was spooled", camera.id, path.name)
            self.metrics.dropped.labels(camera.id).inc()
            return None
        probe = validate_segment(self.ffprobe, path)
        if probe is None:
            size = path.stat().st_size
            if size < EMPTY_FILE_BYTES:
                log.debug("camera %s: %s holds no frames (%d bytes); discarded", camera.id, path.name, size)
                path.unlink()
            else:
                target = self.spool.quarantine(camera.id, path)
                self.metrics.quarantined.labels(camera.id).inc()
                log.error("camera %s: segment %s failed validation; kept in %s", camera.id, path.name, target)
            return None
        if end is None or end <= start:
            end = start + timedelta(seconds=probe.duration)
        segment = Segment(
            camera_id=camera.id, key=video_key(camera.id, start), capture_start=start, capture_end=end,
            size=path.stat().st_size, sha256=sha256_of(path), tier=camera.tier, grid=grid,
            retain_until=retain_until(end, camera.tier, MediaKind.VIDEO),
        )
        item = self.spool.admit(segment, path)
        self.catalog.add_segment(segment, recorded_at=self.clock())
        self.metrics.recorded.labels(camera.id).inc()
        self.metrics.recorded_seconds.labels(camera.id).inc(segment.duration)
        self.enqueue(item)
        return segment
