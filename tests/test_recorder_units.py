"""Recorder pieces without a camera: ffmpeg diagnostics, the spool and the uploader's ordering and retries."""

from __future__ import annotations

import hashlib
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from jifang.recorder import RecorderMetrics, Spool, Uploader
from jifang.recorder.camera import stall_timeout
from jifang.recorder.ffmpeg import classify_failure, redact, url_with_credentials

from jifang.db import Catalog
from jifang.domain import Segment, video_key
from jifang.errors import (
    CameraError,
    CameraStreamNotFoundError,
    CameraUnauthorizedError,
    CameraUnreachableError,
    StoreUnavailableError,
)
from jifang.store import FilesystemStore
from jifang.tiers import MediaKind, Tier, retain_until

CAMERA = "33100200001320000001"
T0 = datetime(2026, 11, 27, 8, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("lines", "kind", "text"),
    [
        (["[rtsp @ 0x55] method DESCRIBE failed: 401 Unauthorized", "rtsp://a: Server returned 401 Unauthorized"],
         CameraUnauthorizedError, "RTSP 401 unauthorized — check the user name and password"),
        (["[rtsp @ 0x5] method DESCRIBE failed: 404 Not Found"], CameraStreamNotFoundError, "RTSP 404"),
        (["[tcp @ 0x5] Connection to tcp://10.0.0.9:554?timeout=5000000 failed: Connection refused",
          "rtsp://10.0.0.9/x: Connection refused"], CameraUnreachableError, "unreachable (Connection refused)"),
        (["frame=  10 fps=0.0", "rtsp://h/x: End of file"], CameraError, "stream stopped: rtsp://h/x: End of file"),
    ],
)
def test_ffmpeg_failures_are_classified(lines: list[str], kind: type, text: str) -> None:
    error = classify_failure(CAMERA, lines)
    assert type(error) is kind
    assert text in str(error)
    assert str(error).startswith(f"camera {CAMERA}: ")


def test_credentials_are_quoted_and_redacted() -> None:
    url = url_with_credentials("rtsp://10.1.2.3:554/Streaming/101", "admin", "p@ss:w/rd")
    assert url == "rtsp://admin:p%40ss%3Aw%2Frd@10.1.2.3:554/Streaming/101"
    assert redact(f"opening {url} failed") == "opening rtsp://***@10.1.2.3:554/Streaming/101 failed"


def test_stall_timeout_follows_segment_length() -> None:
    assert stall_timeout(10) == 60
    assert stall_timeout(30) == 90


def make_segment(tmp_path: Path, start: datetime, camera: str = CAMERA) -> tuple[Segment, Path]:
    content = f"{camera}-{start.isoformat()}".encode() * 50
    path = tmp_path / f"rec-{camera}-{start.timestamp()}.mp4"
    path.write_bytes(content)
    end = start + timedelta(seconds=10)
    segment = Segment(camera, video_key(camera, start), start, end, len(content), hashlib.sha256(content).hexdigest(),
                      Tier.IMPORTANT, "331002001001001", retain_until(end, Tier.IMPORTANT, MediaKind.VIDEO))
    return segment, path


class FlakyStore(FilesystemStore):
    """A filesystem store that is 'down' while ``down`` is set, and records the order of writes."""

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self.down = threading.Event()
        self.written: list[str] = []

    def stat(self, kind, key):  # type: ignore[no-untyped-def]
        if self.down.is_set():
            raise StoreUnavailableError("store down (test)")
        return super().stat(kind, key)

    def _write(self, kind, key, source, meta, until):  # type: ignore[no-untyped-def]
        self.written.append(key)
        super()._write(kind, key, source, meta, until)

    _write_handed_over = _write  # the uploader hands its files over; record those writes the same way


def wait_until(predicate, timeout: float = 20.0) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False


def test_uploader_keeps_the_spool_through_an_outage_and_uploads_in_capture_order(tmp_path: Path) -> None:
    store = FlakyStore(tmp_path / "store")
    store.ensure_ready()
    catalog = Catalog(f"sqlite:///{tmp_path / 'c.db'}")
    catalog.migrate()
    spool = Spool(tmp_path / "spool")
    metrics = RecorderMetrics()
    uploader = Uploader(store, catalog, spool, metrics, lambda: T0 + timedelta(minutes=5), spool_limit=1,
                        backoff_cap=0.2)
    store.down.set()
    uploader.start()
    starts = [T0 + timedelta(seconds=10 * i) for i in (3, 0, 2, 1)]  # arrive out of order
    for start in starts:
        segment, path = make_segment(tmp_path, start)
        item = spool.admit(segment, path)
        catalog.add_segment(segment, recorded_at=T0)
        uploader.enqueue(item)
    assert wait_until(lambda: metrics.upload_failures.labels(CAMERA)._value.get() >= 2)
    assert len(spool.pending()) == 4  # nothing left the spool while the store was down
    assert metrics.spool_full._value.get() == 1  # the 1-byte limit is exceeded: alarm, nothing deleted
    assert metrics.upload_lag.labels(CAMERA)._value.get() == pytest.approx(290)
    store.down.clear()
    assert wait_until(lambda: uploader.backlog() == 0)
    assert store.written == [video_key(CAMERA, s) for s in sorted(starts)]
    assert spool.pending() == [] and spool.orphan_manifests() == []
    assert all(row.uploaded_at is not None for row in catalog.segments(CAMERA))
    assert metrics.uploaded.labels(CAMERA)._value.get() == 4
    assert metrics.upload_lag.labels(CAMERA)._value.get() == 0
    assert uploader.stop(drain_seconds=1) == 0


def test_uploader_stop_leaves_unuploaded_segments_spooled(tmp_path: Path) -> None:
    store = FlakyStore(tmp_path / "store")
    store.down.set()
    catalog = Catalog(f"sqlite:///{tmp_path / 'c.db'}")
    catalog.migrate()
    spool = Spool(tmp_path / "spool")
    uploader = Uploader(store, catalog, spool, RecorderMetrics(), lambda: T0, spool_limit=10**9, backoff_cap=0.2)
    uploader.start()
    segment, path = make_segment(tmp_path, T0)
    catalog.add_segment(segment, recorded_at=T0)
    uploader.enqueue(spool.admit(segment, path))
    assert uploader.stop(drain_seconds=0.5) == 1
    assert [item.segment.key for item in spool.pending()] == [segment.key]


def test_backoff_is_capped_and_never_overflows() -> None:
    from jifang.supervision import Backoff

    backoff = Backoff(initial=1.0, cap=60.0)
    delays = [backoff.next_delay() for _ in range(5000)]
    assert delays[:7] == [1, 2, 4, 8, 16, 32, 60]
    assert max(delays) == 60
    backoff.reset()
    assert backoff.next_delay() == 1


def test_a_segment_that_can_never_upload_is_set_aside_not_blocking(tmp_path: Path) -> None:
    store = FlakyStore(tmp_path / "store")
    store.ensure_ready()
    catalog = Catalog(f"sqlite:///{tmp_path / 'c.db'}")
    catalog.migrate()
    spool = Spool(tmp_path / "spool")
    metrics = RecorderMetrics()
    # the store already holds other content under the first segment's key
    first, first_path = make_segment(tmp_path, T0)
    other = tmp_path / "other.mp4"
    other.write_bytes(b"different")
    from dataclasses import replace

    store.put(MediaKind.VIDEO, first.key, other, replace(first, sha256=hashlib.sha256(b"different").hexdigest()).meta(),
              first.retain_until)
    second, second_path = make_segment(tmp_path, T0 + timedelta(seconds=10))
    uploader = Uploader(store, catalog, spool, metrics, lambda: T0, spool_limit=10**9, backoff_cap=0.2)
    uploader.start()
    for segment, path in ((first, first_path), (second, second_path)):
        catalog.add_segment(segment, recorded_at=T0)
        uploader.enqueue(spool.admit(segment, path))
    assert wait_until(lambda: uploader.backlog() == 0)
    uploader.stop(drain_seconds=1)
    assert catalog.segment(second.key).uploaded_at is not None
    assert metrics.quarantined.labels(CAMERA)._value.get() == 1
    assert len(list((tmp_path / "spool" / "quarantine" / CAMERA).iterdir())) == 1
    assert [(g.cause, g.start_at) for g in catalog.gaps(CAMERA)] == [("upload_failed", first.capture_start)]


class SlowStore(FilesystemStore):
    """Each write takes a while and records which writes overlapped."""

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self.lock = threading.Lock()
        self.in_flight: dict[str, str] = {}  # key -> camera
        self.overlaps: list[list[str]] = []  # cameras in flight at each write's start
        self.written: list[str] = []

    def _write(self, kind, key, source, meta, until):  # type: ignore[no-untyped-def]
        with self.lock:
            self.in_flight[key] = meta.camera_id
            self.overlaps.append(list(self.in_flight.values()))
        time.sleep(0.1)
        super()._write(kind, key, source, meta, until)
        with self.lock:
            del self.in_flight[key]
            self.written.append(key)

    _write_handed_over = _write


def test_workers_upload_cameras_in_parallel_each_in_capture_order(tmp_path: Path) -> None:
    store = SlowStore(tmp_path / "store")
    store.ensure_ready()
    catalog = Catalog(f"sqlite:///{tmp_path / 'c.db'}")
    catalog.migrate()
    spool = Spool(tmp_path / "spool")
    metrics = RecorderMetrics()
    cameras = [CAMERA, "33100200001320000002", "33100200001320000003"]
    uploader = Uploader(store, catalog, spool, metrics, lambda: T0, spool_limit=10**9, backoff_cap=0.2, workers=3)
    expected: dict[str, list[str]] = {}
    for i in (4, 0, 3, 1, 2):  # out of order, interleaved cameras
        for camera in cameras:
            segment, path = make_segment(tmp_path, T0 + timedelta(seconds=10 * i), camera)
            catalog.add_segment(segment, recorded_at=T0)
            uploader.enqueue(spool.admit(segment, path))
            expected.setdefault(camera, []).append(segment.key)
    assert uploader.backlog() == 15
    uploader.start()
    assert wait_until(lambda: uploader.backlog() == 0)
    assert uploader.stop(drain_seconds=1) == 0
    for camera in cameras:
        assert [key for key in store.written if f"/{camera}/" in key] == sorted(expected[camera])
        assert metrics.uploaded.labels(camera)._value.get() == 5
        assert metrics.upload_lag.labels(camera)._value.get() == 0
    assert max(len(cams) for cams in store.overlaps) >= 2  # cameras were uploaded at the same time
    assert all(len(cams) == len(set(cams)) for cams in store.overlaps)  # never two of one camera
    assert spool.pending() == []
