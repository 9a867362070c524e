"""Live view and health history of one camera.

The live view is the last frame of the camera's newest uploaded segment: one cheap decode
(``ffmpeg -sseof -1 -i <segment> -frames:v 1``), no transcoding, cached per camera for a few seconds and
reused as long as no newer segment has arrived. The page polls it every 5 s (static/app.js).
"""

from __future__ import annotations

import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from jifang.dashboard.state import AppState
from sqlalchemy import select

from jifang.db.models import GapRow, SegmentRow
from jifang.errors import JifangError
from jifang.tiers import MediaKind

AUDIT_EVERY_SECONDS = 300.0  # a user watching a camera's live view is audited once per 5 minutes, not per poll
HEALTH_ROWS = 200
_locks: dict[str, threading.Lock] = {}
_locks_guard = threading.Lock()


class NoSnapshot(Exception):
    """No uploaded segment, the segment is missing from the store, or no frame could be decoded."""


@dataclass(frozen=True)
class LiveFrame:
    jpeg: bytes
    segment_id: int
    taken_at: datetime  # the end of the segment the frame comes from


def _lock(camera_id: str) -> threading.Lock:
    with _locks_guard:
        return _locks.setdefault(camera_id, threading.Lock())


def newest_segment(state: AppState, camera_id: str) -> SegmentRow | None:
    with state.catalog.session() as session:  # ix_segments_camera_start
        return session.scalar(select(SegmentRow).where(
            SegmentRow.camera_id == camera_id, SegmentRow.deleted_at.is_(None),
            SegmentRow.uploaded_at.is_not(None)).order_by(SegmentRow.start_at.desc()).limit(1))


def last_frame(ffmpeg: str, video: bytes, timeout: float = 10.0) -> bytes:
    """The last frame of an MP4 segment as JPEG (a one-frame decode from the last second)."""
    with tempfile.TemporaryDirectory(prefix="jifang-snapshot-") as folder:
        source = Path(folder) / "segment.mp4"
        source.write_bytes(video)
        try:
            done = subprocess.run([ffmpeg, "-nostdin", "-v", "error", "-sseof", "-1", "-i", str(source),
                                   "-frames:v", "1", "-f", "image2", "-c:v", "mjpeg", "-"],
                                  capture_output=True, timeout=timeout, check=False)
        except (OSError, subprocess.TimeoutExpired):
            raise NoSnapshot("no frame could be decoded") from None
    if done.returncode != 0 or not done.stdout.startswith(b"\xff\xd8"):
        raise NoSnapshot("no frame could be decoded")
    return done.stdout


def snapshot(state: AppState, camera_id: str) -> LiveFrame:
    """The camera's latest frame; cached for ``snapshot_cache_seconds`` and while no newer segment exists.
    One decode at a time per camera (concurrent viewers wait for it and share the result)."""
    cached = state.snapshots.get(camera_id)
    if cached is not None and time.monotonic() - cached[0] < state.options.snapshot_cache_seconds:
        return cached[1]  # type: ignore[no-any-return]
    with _lock(camera_id):
        cached = state.snapshots.get(camera_id)
        if cached is not None and time.monotonic() - cached[0] < state.options.snapshot_cache_seconds:
            return cached[1]  # type: ignore[no-any-return]
        row = newest_segment(state, camera_id)
        if row is None:
            raise NoSnapshot("no video recorded yet")
        if cached is not None and cached[1].segment_id == row.id:  # same segment: same frame
            state.snapshots[camera_id] = (time.monotonic(), cached[1])
            return cached[1]  # type: ignore[no-any-return]
        try:
            video = state.store.read(MediaKind.VIDEO, row.key)
        except (FileNotFoundError, JifangError):
            raise NoSnapshot("the newest segment is missing from the store") from None
        shot = LiveFrame(last_frame(state.settings.recorder.ffmpeg, video), row.id, row.end_at)
        state.snapshots[camera_id] = (time.monotonic(), shot)
        return shot


def should_audit(state: AppState, user_id: int, camera_id: str) -> bool:
    """Whether this live view starts a new viewing (none by this user of this camera in the last 5 minutes)."""
    key = (user_id, camera_id)
    now = time.monotonic()
    last = state.live_audited.get(key)
    if last is not None and now - last < AUDIT_EVERY_SECONDS:
        return False
    state.live_audited[key] = now
    return True


def health(state: AppState, camera_id: str, limit: int = HEALTH_ROWS) -> list[GapRow]:
    """The camera's gap ledger, newest first: outages with their causes (an open one has no end)."""
    with state.catalog.session() as session:  # ix_gaps_camera_start
        return list(session.scalars(select(GapRow).where(GapRow.camera_id == camera_id)
                                    .order_by(GapRow.start_at.desc()).limit(limit)))
