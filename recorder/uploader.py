"""Uploads spooled segments to the object store, oldest capture first, retrying until the store has them.

An upload is idempotent (same key, same sha256 is a no-op in the store port), so a crash between the store
accepting a segment and the catalog recording it only costs one extra HEAD at the next start.

The spool is the write-ahead log: each item is first catalogued (idempotent; the recorder's own attempt may
have failed while the database was down), then verified (the file's sha256 must equal its manifest's, so a
damaged file is never sent, and never blocks the queue: it goes to the quarantine with a ``spool_corrupt``
gap row), uploaded with its checksum, and checked after the upload (size as the store reports it; for the
filesystem store, which checks nothing itself, a read-back of the content).
"""

from __future__ import annotations

import contextlib
import hashlib
import heapq
import logging
import threading
import time
from collections.abc import Callable
from datetime import datetime

from jifang.recorder.metrics import RecorderMetrics
from jifang.recorder.spool import Spool, SpooledSegment, sha256_of

from jifang.db import Catalog
from jifang.domain import GapCause
from jifang.errors import JifangError, ObjectConflictError, StoreError
from jifang.store import FilesystemStore, ObjectStore
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

    def _verify_spooled(self, item: SpooledSegment) -> str | None:
        """Why the spooled file is not the segment its manifest describes, or None when it is."""
        seg = item.segment
        size = item.video.stat().st_size
        if size != seg.size:
            return f"spooled file holds {size} bytes, its manifest says {seg.size}"
        actual = sha256_of(item.video)
        if actual != seg.sha256:
            return f"spooled file sha256 {actual[:16]}... differs from its manifest's {seg.sha256[:16]}..."
        return None

    def _verify_stored(self, item: SpooledSegment) -> None:
        """After the upload: what the store holds is what was sent (ObjectConflictError otherwise)."""
        seg = item.segment
        stored = self.store.stat(MediaKind.VIDEO, seg.key)
        if stored is None:
            raise StoreError(f"{seg.key}: not found in the store right after its upload")
        if stored.size != seg.size:
            raise ObjectConflictError(f"{seg.key}: the store holds {stored.size} bytes, {seg.size} were sent")
        if isinstance(getattr(self.store, "inner", self.store), FilesystemStore):
            # S3/MinIO verified x-amz-checksum-sha256 on the way in; the filesystem store checks nothing
            content = self.store.read(MediaKind.VIDEO, seg.key)
            if hashlib.sha256(content).hexdigest() != seg.sha256:
                raise ObjectConflictError(f"{seg.key}: the stored copy's sha256 differs from the segment's")

    def _upload(self, item: SpooledSegment) -> bool:
        seg = item.segment
        try:
            problem = self._verify_spooled(item)
        except FileNotFoundError as exc:
            self._set_aside(item, exc)
            return True
        except OSError as exc:
            self.metrics.upload_failures.labels(seg.camera_id).inc()
            log.warning("spooled %s cannot be read, retried: %s", seg.key, exc)
            return False
        if problem is not None:
            self._quarantine_corrupt(item, problem)
            return True
        try:
            self.catalog.add_segment(seg, recorded_at=self.clock())
            self.store.put(MediaKind.VIDEO, seg.key, item.video, seg.meta(), seg.retain_until)
            self._verify_stored(item)
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

    def _quarantine_corrupt(self, item: SpooledSegment, problem: str) -> None:
        """A damaged spool file: kept in the quarantine, never uploaded, its interval explained as
        ``spool_corrupt``; the queue moves on."""
        seg = item.segment
        log.error("%s is damaged in the spool (%s); moved to the quarantine, recorded as spool_corrupt",
                  seg.key, problem)
        self.metrics.quarantined.labels(seg.camera_id).inc()
        with contextlib.suppress(FileNotFoundError):
            self.spool.quarantine(seg.camera_id, item.video)
        with contextlib.suppress(FileNotFoundError):
            self.spool.quarantine(seg.camera_id, item.manifest)
        self._record_gap(seg.camera_id, seg.capture_start, seg.capture_end, GapCause.SPOOL_CORRUPT,
                         f"{seg.key}: {problem}")

    def _record_gap(self, camera_id: str, start: datetime, end: datetime, cause: GapCause, detail: str) -> None:
        """Write a gap row, retrying while the database is down (the item itself has left the queue)."""
        delay = 1.0
        while True:
            try:
                self.catalog.add_gap(camera_id, start, end, cause, detail[:500])
                return
            except Exception as exc:
                if self._stop.is_set():
                    log.error("could not record the %s gap of %s before stopping: %s", cause, camera_id, exc)
                    return
                log.warning("recording the %s gap of %s waits for the database (%s)", cause, camera_id,
                            type(exc).__name__)
                self._stop.wait(delay)
                delay = min(delay * 2, 30.0)

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
        self._record_gap(seg.camera_id, seg.capture_start, seg.capture_end, GapCause.UPLOAD_FAILED,
                         f"{seg.key}: {exc}")
