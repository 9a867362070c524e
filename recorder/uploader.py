"""Uploads spooled segments to the object store, oldest capture first, retrying until the store has them.

An upload is idempotent (same key, same sha256 is a no-op in the store port), so a crash between the store
accepting a segment and the catalog recording it only costs one extra HEAD at the next start.

A pool of workers (``recorder.upload_workers``) uploads in parallel across cameras; one camera has at most one
upload in flight, so each camera's segments reach the store in capture order and its upload lag is the age of
its oldest waiting segment. The queue keeps a heap per camera and counters updated on every enqueue and
upload, so neither costs more with a large backlog (a recovered spool of 100,000 segments).

The spool is the write-ahead log: each item is first catalogued (idempotent; the recorder's own attempt may
have failed while the database was down), then verified (the file's sha256 must equal its manifest's, so a
damaged file is never sent, and never blocks the queue: it goes to the quarantine with a ``spool_corrupt``
gap row), uploaded with its checksum, and checked after the upload (size as the store reports it; the content
was checked by the store on the way in). A segment this process hashed when it spooled it is not hashed again
while its file is unchanged (same inode, size and mtime), and one the recorder catalogued is not catalogued
again.

A spool recovered at start is queued as ``SpoolEntry`` items, named but not read: a worker reads the manifest
when it takes the entry. A manifest found unreadable then is handed to ``on_unreadable_manifest`` (the agent
rebuilds it from the video or quarantines the video, as recovery does for a video without a manifest), and the
worker moves on. Until an entry is read its capture end is unknown, so the upload lag counts from its capture
start: overstated by at most one segment length, never understated.
"""

from __future__ import annotations

import contextlib
import heapq
import logging
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from jifang.recorder.metrics import RecorderMetrics
from jifang.recorder.spool import ManifestError, Spool, SpooledSegment, SpoolEntry, file_identity, sha256_of

from jifang.db import Catalog
from jifang.domain import GapCause
from jifang.errors import JifangError, ObjectConflictError, StoreError
from jifang.store import ObjectStore
from jifang.supervision import Backoff
from jifang.tiers import MediaKind

log = logging.getLogger("jifang.uploader")
SPOOL_WALK_SECONDS = 2.0
# An idle worker sleeps until an enqueue, a freed camera or stop() notifies it; this is only a safety net (each
# timed wake-up of every worker costs the agent CPU, and recording cameras never leave the queue idle for long)
IDLE_WAIT_SECONDS = 30.0
SPOOL_WALK_SHARE = 0.05  # walking the spool may take at most this share of the uploader's time

QueueItem = SpooledSegment | SpoolEntry  # an entry is resolved into a spooled segment when a worker takes it


def _end_of(item: QueueItem) -> datetime:
    """The capture end the lag counts from; an unread entry's is not known yet, its start is a safe stand-in."""
    return item.segment.capture_end if isinstance(item, SpooledSegment) else item.capture_start


@dataclass
class _CameraQueue:
    """One camera's waiting segments (by capture start) and the capture ends of all it has queued."""

    waiting: list[tuple[datetime, str, QueueItem]] = field(default_factory=list)
    ends: list[tuple[datetime, str]] = field(default_factory=list)  # lazily pruned of uploaded keys
    queued: int = 0  # waiting + in flight
    busy: bool = False  # an upload of this camera is in flight


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
        workers: int = 2,
        on_unreadable_manifest: Callable[[Path], None] | None = None,
    ) -> None:
        self.store = store
        self.catalog = catalog
        self.spool = spool
        self.metrics = metrics
        self.clock = clock
        self.spool_limit = spool_limit
        self._cameras: dict[str, _CameraQueue] = {}
        # (head capture start, camera) of cameras that may be served; stale entries are skipped when popped
        self._ready: list[tuple[datetime, str]] = []
        self._queued_keys: set[str] = set()
        self._cond = threading.Condition()
        self._stop = threading.Event()
        self._drain_until: float | None = None
        self._backoff_cap = backoff_cap
        self._on_unreadable_manifest = on_unreadable_manifest
        self._threads = [threading.Thread(target=self._run, name=f"uploader-{i}", daemon=True)
                         for i in range(max(1, workers))]
        self._spool_alarm = False
        self._spool_walked_at = -SPOOL_WALK_SECONDS
        self._spool_walk_every = SPOOL_WALK_SECONDS
        self._gauge_lock = threading.Lock()
        self.metrics.spool_limit.set(spool_limit)

    # queue

    def enqueue(self, item: QueueItem) -> None:
        self.enqueue_many((item,))

    def enqueue_many(self, items: Iterable[QueueItem]) -> None:
        """Queue items under one hold of the lock (a recovered spool queues 100,000 at once); an item already
        queued is skipped."""
        oldest: dict[str, datetime] = {}  # camera -> the capture end its lag now counts from
        with self._cond:
            for item in items:
                if self._push_locked(item):
                    oldest[item.camera_id] = _end_of(item)
        for camera_id, end in oldest.items():
            self._set_lag(camera_id, end)

    def _push_locked(self, item: QueueItem) -> bool:
        """Queue one item (caller holds the lock); True when it is now its camera's oldest (its lag changes)."""
        key, start = item.key, item.capture_start
        if key in self._queued_keys:
            return False
        self._queued_keys.add(key)
        queue = self._cameras.get(item.camera_id)
        if queue is None:
            queue = self._cameras[item.camera_id] = _CameraQueue()
        heapq.heappush(queue.waiting, (start, key, item))
        heapq.heappush(queue.ends, (_end_of(item), key))
        queue.queued += 1
        if not queue.busy and queue.waiting[0][1] == key:
            heapq.heappush(self._ready, (start, item.camera_id))
            self._cond.notify()
        return queue.ends[0][1] == key

    def backlog(self) -> int:
        with self._cond:
            return len(self._queued_keys)

    def _oldest_end(self, queue: _CameraQueue) -> datetime | None:
        """The capture end of the camera's oldest queued segment (caller holds the lock)."""
        while queue.ends and queue.ends[0][1] not in self._queued_keys:
            heapq.heappop(queue.ends)
        return queue.ends[0][0] if queue.ends else None

    def _take(self) -> QueueItem | None:
        """The oldest waiting segment of a camera with no upload in flight; marks that camera busy."""
        while self._ready:
            start, camera_id = heapq.heappop(self._ready)
            queue = self._cameras.get(camera_id)
            if queue is None or queue.busy or not queue.waiting or queue.waiting[0][0] != start:
                continue  # stale: served already, or a newer head was pushed
            queue.busy = True
            return heapq.heappop(queue.waiting)[2]
        return None

    def _release(self, item: QueueItem, uploaded: bool) -> None:
        """The camera's upload finished: forget the segment (or put it back first in line) and free the
        camera for the next worker."""
        with self._cond:
            if uploaded:
                self._forget_locked(item)
            else:
                heapq.heappush(self._cameras[item.camera_id].waiting, (item.capture_start, item.key, item))
            self._free_locked(item.camera_id)

    def _forget_locked(self, item: QueueItem) -> None:
        """The item has left the queue for good (caller holds the lock)."""
        self._queued_keys.discard(item.key)
        self._cameras[item.camera_id].queued -= 1

    def _free_locked(self, camera_id: str) -> None:
        """No upload of the camera is in flight any more: serve its next item (caller holds the lock)."""
        queue = self._cameras[camera_id]
        queue.busy = False
        if queue.waiting:
            heapq.heappush(self._ready, (queue.waiting[0][0], camera_id))
            self._cond.notify()
        elif not queue.queued:
            del self._cameras[camera_id]
        self._cond.notify_all()  # a draining stop() waits for the backlog to empty

    def refresh_gauges(self) -> None:
        try:
            self._refresh_gauges()
        except Exception:  # metrics must never stop recording or uploading
            log.exception("refreshing spool metrics failed")

    def _set_lag(self, camera_id: str, oldest_end: datetime | None) -> None:
        lag = 0.0 if oldest_end is None else max(0.0, (self.clock() - oldest_end).total_seconds())
        self.metrics.upload_lag.labels(camera_id).set(lag)

    def _refresh_gauges(self) -> None:
        with self._cond:
            oldest = {camera_id: self._oldest_end(queue) for camera_id, queue in self._cameras.items()}
        for camera_id, end in oldest.items():
            if end is not None:
                self._set_lag(camera_id, end)
        # walking the spool costs O(files): not once per segment, and with a large backlog (a walk of 100,000
        # files takes a while) seldom enough that it stays a small share of the uploader's time
        if not self._gauge_lock.acquire(blocking=False):
            return
        try:
            if time.monotonic() - self._spool_walked_at < self._spool_walk_every:
                return
            began = time.monotonic()
            used = self.spool.bytes_used()
            self._spool_walked_at = time.monotonic()
            self._spool_walk_every = max(SPOOL_WALK_SECONDS, (self._spool_walked_at - began) / SPOOL_WALK_SHARE)
            self.metrics.spool_bytes.set(used)
            full = used > self.spool_limit
            self.metrics.spool_full.set(1 if full else 0)
            if full and not self._spool_alarm:
                log.warning("spool holds %d bytes, above its limit of %d: the object store is not keeping up; "
                            "nothing is deleted, recording continues", used, self.spool_limit)
            elif self._spool_alarm and not full:
                log.info("spool back under its limit (%d bytes)", used)
            self._spool_alarm = full
        finally:
            self._gauge_lock.release()

    def _clear_lag(self, camera_id: str) -> None:
        with self._cond:
            queue = self._cameras.get(camera_id)
            oldest_end = self._oldest_end(queue) if queue is not None else None
        self._set_lag(camera_id, oldest_end)

    # workers

    def start(self) -> None:
        for thread in self._threads:
            thread.start()

    def stop(self, drain_seconds: float) -> int:
        """Stop after uploading what is queued, waiting at most ``drain_seconds``; returns what is left."""

        with self._cond:
            self._drain_until = time.monotonic() + drain_seconds
            self._cond.notify_all()
        deadline = time.monotonic() + drain_seconds + 5
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        self._stop.set()
        with self._cond:
            self._cond.notify_all()
        deadline = time.monotonic() + 10
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        return self.backlog()

    def _draining_done(self) -> bool:

        return self._drain_until is not None and (not self._queued_keys or time.monotonic() > self._drain_until)

    def _idle_wait(self) -> float:
        """How long an idle worker sleeps (caller holds the lock): until notified, or a draining stop's deadline."""
        if self._drain_until is None:
            return IDLE_WAIT_SECONDS
        return max(0.05, self._drain_until - time.monotonic())

    def _run(self) -> None:
        backoff = Backoff(initial=1.0, cap=self._backoff_cap)  # per worker: one failing camera paces only it
        while not self._stop.is_set():
            with self._cond:
                item = self._take()
                while item is None and not self._stop.is_set() and not self._draining_done():
                    self._cond.wait(self._idle_wait())
                    item = self._take()
                if item is None:
                    return
                if self._stop.is_set() or (self._drain_until is not None
                                           and time.monotonic() > self._drain_until):
                    self._release_locked(item)
                    return
            if isinstance(item, SpoolEntry):
                resolved = self._resolve(item)
                if resolved is None:
                    self._clear_lag(item.camera_id)
                    continue
                item = resolved
            if self._upload(item):
                self._release(item, uploaded=True)
                backoff.reset()
                self._clear_lag(item.segment.camera_id)
                self.refresh_gauges()
            else:
                self.refresh_gauges()
                # the camera stays busy while this worker waits, so no other worker retries it sooner
                retry_at = time.monotonic() + backoff.next_delay()
                with self._cond:
                    while (not self._stop.is_set() and not self._draining_done()
                           and (remaining := retry_at - time.monotonic()) > 0):
                        self._cond.wait(remaining)
                self._release(item, uploaded=False)

    def _release_locked(self, item: QueueItem) -> None:
        """Put an untried segment back (caller holds the lock)."""
        queue = self._cameras[item.camera_id]
        queue.busy = False
        heapq.heappush(queue.waiting, (item.capture_start, item.key, item))

    def _resolve(self, entry: SpoolEntry) -> SpooledSegment | None:
        """Read a recovered entry's manifest. An unreadable one leaves the queue and goes the way of a video
        without a manifest (rebuilt and queued again, or quarantined); None then, and the worker moves on."""
        try:
            return self.spool.resolve(entry)
        except ManifestError as exc:
            problem = exc
        with self._cond:
            # forgotten before the hand-over, so the rebuilt segment (same key) is queued anew; the camera
            # stays busy meanwhile: the rebuilt segment is its oldest and must go first
            self._forget_locked(entry)
        try:
            if self._on_unreadable_manifest is None:
                log.error("spool manifest %s is unreadable (%s); it stays in the spool for the next start",
                          entry.manifest, problem)
            else:
                log.warning("spool manifest %s is unreadable (%s); recovered like a video without one",
                            entry.manifest, problem)
                self._on_unreadable_manifest(entry.video)
        except Exception:  # one bad item never stops the uploader
            log.exception("recovering %s, whose manifest is unreadable, failed; it stays in the spool for the "
                          "next start", entry.video)
        finally:
            with self._cond:
                self._free_locked(entry.camera_id)
        return None

    def _verify_spooled(self, item: SpooledSegment) -> str | None:
        """Why the spooled file is not the segment its manifest describes, or None when it is."""
        seg = item.segment
        identity = file_identity(item.video)
        if identity[1] != seg.size:
            return f"spooled file holds {identity[1]} bytes, its manifest says {seg.size}"
        if item.hashed_as is not None and identity == item.hashed_as:
            return None  # hashed by this process when it was spooled, and not written to since
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
        # the content itself was checked on the way in: S3/MinIO verify x-amz-checksum-sha256, the filesystem
        # store hashes what it copies (or links the very file verified above)

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
            if not item.catalogued:
                self.catalog.add_segment(seg, recorded_at=self.clock())
            # handed over: the spool only deletes its copy after this, so the filesystem store may link it
            self.store.put(MediaKind.VIDEO, seg.key, item.video, seg.meta(), seg.retain_until, handover=True)
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
