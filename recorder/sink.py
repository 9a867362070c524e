"""Where a finished segment file goes: validated, hashed, spooled, queued for upload, catalogued.

Used by live recording and by crash recovery alike, so both follow the same path and the same rules. A file
that fails validation is quarantined and counted, never deleted silently. The spool is the write-ahead log:
once a segment is in it (file and manifest fsynced) it is queued, and the uploader catalogs it (idempotently)
before it uploads it. Cataloguing here as well is only a head start; when the database is down or locked the
segment waits in the spool and recording goes on.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path

from jifang.recorder.metrics import RecorderMetrics
from jifang.recorder.mp4 import validate_segment
from jifang.recorder.spool import Spool, SpooledSegment, file_identity, sha256_of

from jifang.config import CameraConfig
from jifang.db import Catalog
from jifang.domain import Segment, video_key
from jifang.tiers import MediaKind, retain_until

log = logging.getLogger("jifang.recorder")

EMPTY_FILE_BYTES = 1024  # an fMP4 header without a single frame; no video is lost by discarding it
# after a failed catalog write, leave cataloguing to the uploader for this long: a locked SQLite makes every
# attempt wait its 30 s busy timeout, and the camera thread must keep draining ffmpeg's segments meanwhile
CATALOG_HOLDOFF_SECONDS = 10.0

__all__ = ["EMPTY_FILE_BYTES", "SegmentSink", "sha256_of"]


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
        self._catalog_retry_at = 0.0  # monotonic

    def accept(self, camera: CameraConfig, grid: str, path: Path, start: datetime,
               end: datetime | None = None) -> Segment | None:
        """Spool ``path`` as the segment starting at ``start``; ``end`` None means "start + probed duration"."""
        if not path.exists():
            if self.spool.holds(camera.id, start) or self._catalogued(video_key(camera.id, start)):
                return None  # spooled before a crash; recovery re-reads the list
            log.error("camera %s: segment %s vanished before it was spooled", camera.id, path.name)
            self.metrics.dropped.labels(camera.id).inc()
            return None
        probe = validate_segment(self.ffprobe, path)
        if probe is None:
            size = path.stat().st_size
            if size < EMPTY_FILE_BYTES:
                log.info("camera %s: %s holds no frames (%d bytes); discarded", camera.id, path.name, size)
                path.unlink()
            else:
                target = self.spool.quarantine(camera.id, path)
                self.metrics.quarantined.labels(camera.id).inc()
                log.error("camera %s: segment %s failed validation; kept in %s", camera.id, path.name, target)
            return None
        if end is None or end <= start:
            end = start + timedelta(seconds=probe.duration)
        identity = file_identity(path)
        segment = Segment(
            camera_id=camera.id, key=video_key(camera.id, start), capture_start=start, capture_end=end,
            size=identity[1], sha256=sha256_of(path), tier=camera.tier, grid=grid,
            retain_until=retain_until(end, camera.tier, MediaKind.VIDEO),
        )
        # durable from here on: everything below may fail and retry
        item = self.spool.admit(segment, path, hashed_as=identity)
        self.metrics.recorded.labels(camera.id).inc()
        self.metrics.recorded_seconds.labels(camera.id).inc(segment.duration)
        # catalogued before it is queued, so an upload worker knows whether its own catalog write is needed
        if self._catalog(segment):
            item = dataclasses.replace(item, catalogued=True)
        self.enqueue(item)
        return segment

    def _catalogued(self, key: str) -> bool:
        try:
            return self.catalog.segment(key) is not None
        except Exception:  # database down: the spool answered already; count it as not seen
            return False

    def _catalog(self, segment: Segment) -> bool:
        """Catalog now if the database answers (True); otherwise the uploader does it from the spool."""
        if time.monotonic() < self._catalog_retry_at:
            return False
        try:
            self.catalog.add_segment(segment, recorded_at=self.clock())
            return True
        except Exception as exc:  # database down, locked or inconsistent: the spool holds the segment
            self._catalog_retry_at = time.monotonic() + CATALOG_HOLDOFF_SECONDS
            log.warning("camera %s: catalog unavailable for %s (%s); it stays in the spool and is catalogued "
                        "by the uploader", segment.camera_id, segment.key, type(exc).__name__)
            return False
