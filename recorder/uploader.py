"""Uploads spooled segments to the object store, oldest capture first, retrying until the store has them.

An upload is idempotent (same key, same sha256 is a no-op in the store port), so a crash between the store
accepting a segment and the catalog recording it only costs one extra HEAD at the next start.
"""

from __future__ import annotations

import heapq
import logging
import threading
import time
from collections.abc import Callable
from datetime import datetime

from jifang.recorder.metrics import RecorderMetrics
from jifang.recorder.spool import Spool, SpooledSegment

from jifang.db import Catalog
from jifang.domain import GapCause
from jifang.errors import JifangError, ObjectConflictError
from jifang.store import ObjectStore
from jifang.supervision import Backoff
from jifang.tiers import MediaKind

log = logging.getLogger("jifang.uploader")
SPOOL_WALK_SECONDS = 2.0


class Uploader:
    def __init__(
        self,
        store: ObjectStore,
        catalog: Catalog,
        spool: Spool,
        metrics: RecorderMetrics,
        clock: Callable[[], datetime],
        spool_limit: int,
        backoff_cap: float = 30.0,
    ) -> None:
        self.store = store
        self.catalog = catalog
        self.spool = spool
        self.metrics = metrics
        self.clock = clock
        self.spool_limit = spool_limit
        self._queue: list[tuple[datetime, str, SpooledSegment]] = []
        self._queued_keys: set[str] = set()
        self._cond = threading.Condition()
        self._stop = threading.Event()
        self._drain_until: float | None = None
        self._backoff = Backoff(initial=1.0, cap=backoff_cap)
        self._thread = threading.Thread(target=self._run, name="uploader", daemon=True)
        self._spool_alarm = False
        self._spool_walked_at = -SPOOL_WALK_SECONDS
        self.metrics.spool_limit.set(spool_limit)

    # queue

    def enqueue(self, item: SpooledSegment) -> None:
        with self._cond:
            if item.segment.key in self._queued_keys:
                return
            self._queued_keys.add(item.segment.key)
            heapq.heappush(self._queue, (item.segment.capture_start, item.segment.key, item))
            self._cond.notify()
        self.refresh_gauges()

    def backlog(self) -> int:
        with self._cond:
            return len(self._queued_keys)

    def _peek(self) -> SpooledSegment | None:
        """The oldest segment still to upload (entries already uploaded are dropped lazily)."""
        while self._queue and self._queue[0][1] not in self._queued_keys:
            heapq.heappop(self._queue)
        return self._queue[0][2] if self._queue else None

    def refresh_gauges(self) -> None:
        try:
            self._refresh_gauges()
        except Exception:  # metrics must never stop recording or uploading
            log.exception("refreshing spool metrics failed")

    def _refresh_gauges(self) -> None:
        now = self.clock()
        with self._cond:
            oldest: dict[str, datetime] = {}
            for _start, key, item in self._queue:
                if key not in self._queued_keys:
                    continue
                seg = item.segment
                if seg.camera_id not in oldest or seg.capture_end < oldest[seg.camera_id]:
                    oldest[seg.camera_id] = seg.capture_end
        for camera_id, end in oldest.items():
            self.metrics.upload_lag.labels(camera_id).set(max(0.0, (now - end).total_seconds()))
        # walking the spool costs O(files): at most once per SPOOL_WALK_SECONDS, not once per segment, so a
        # large backlog does not make every upload slower
        if time.monotonic() - self._spool_walked_at < SPOOL_WALK_SECONDS:
            return
        self._spool_walked_at = time.monotonic()
        used = self.spool.bytes_used()
        self.metrics.spool_bytes.set(used)
        full = used > self.spool_limit
        self.metrics.spool_full.set(1 if full else 0)
        if full and not self._spool_alarm:
            log.warning("spool holds %d bytes, above its limit of %d: the object store is not keeping up; "
                        "nothing is deleted, recording continues", used, self.spool_limit)
        elif self._spool_alarm and not full:
            log.info("spool back under its limit (%d bytes)", used)
        self._spool_alarm = full

    def _clear_lag(self, camera_id: str) -> None:
        with self._cond:
            if any(item.segment.camera_id == camera_id and key in self._queued_keys
                   for _s, key, item in self._queue):
                return
        self.metrics.upload_lag.labels(camera_id).set(0)

    # worker

    def start(self) -> None:
        self._thread.start()

    def stop(self, drain_seconds: float) -> int:
        """Stop after uploading what is queued, waiting at most ``drain_seconds``; returns what is left."""

        with self._cond:
            self._drain_until = time.monotonic() + drain_seconds
            self._cond.notify_all()
        self._thread.join(drain_seconds + 5)
        self._stop.set()
        with self._cond:
            self._cond.notify_all()
        self._thread.join(10)
        return self.backlog()

    def _draining_done(self) -> bool:

        return self._drain_until is not None and (not self._queued_keys or time.monotonic() > self._drain_until)

    def _run(self) -> None:
        while not self._stop.is_set():
            with self._cond:
                while self._peek() is None and not self._stop.is_set() and not self._draining_done():
                    self._cond.wait(1.0)
                if self._stop.is_set() or self._draining_done():
                    return
                item = self._peek()
            assert item is not None
            if self._upload(item):
                with self._cond:
                    self._queued_keys.discard(item.segment.key)
                self._backoff.reset()
                self._clear_lag(item.segment.camera_id)
                self.refresh_gauges()
            else:
                self.refresh_gauges()
                delay = self._backoff.next_delay()
                with self._cond:
                    if not self._draining_done():
                        self._cond.wait(delay)

    def _upload(self, item: SpooledSegment) -> bool:
        seg = item.segment
        try:
            self.store.put(MediaKind.VIDEO, seg.key, item.video, seg.meta(), seg.retain_until)
            if self.catalog.held_over(seg.camera_id, seg.capture_start, seg.capture_end):
                # evidence held before this segment reached the store (an incident while it was spooled)
                self.store.set_legal_hold(MediaKind.VIDEO, seg.key, True)
                self.catalog.mark_held(seg.key)
            self.catalog.mark_uploaded(seg.key, self.clock())
        except (ObjectConflictError, FileNotFoundError) as exc:
            # retrying cannot help: set it aside (kept, counted, in the gap ledger) so others are not blocked
            self._set_aside(item, exc)
            return True
        except (JifangError, OSError) as exc:
            self.metrics.upload_failures.labels(seg.camera_id).inc()
            log.warning("upload of %s failed, kept in the spool and retried: %s", seg.key, exc)
            return False
        except Exception as exc:  # a database outage must not kill the uploader
            self.metrics.upload_failures.labels(seg.camera_id).inc()
            log.warning("upload of %s failed (%s), kept in the spool and retried", seg.key, type(exc).__name__)
            return False
        self.spool.release(item)
        self.metrics.uploaded.labels(seg.camera_id).inc()
        return True

    def _set_aside(self, item: SpooledSegment, exc: Exception) -> None:
        seg = item.segment
        log.error("upload of %s cannot succeed (%s); set aside in the quarantine and recorded as upload_failed",
                  seg.key, exc)
        self.metrics.quarantined.labels(seg.camera_id).inc()
        if item.video.exists():
            self.spool.quarantine(seg.camera_id, item.video)
        else:
            self.metrics.dropped.labels(seg.camera_id).inc()
        item.manifest.unlink(missing_ok=True)
        try:
            self.catalog.add_gap(seg.camera_id, seg.capture_start, seg.capture_end, GapCause.UPLOAD_FAILED,
                                 f"{seg.key}: {exc}"[:500])
        except Exception:
            log.exception("could not record the upload_failed gap of %s", seg.key)
