"""The local spool: validated segments wait here, each with a manifest, until the store has them.

The spool is the recorder's write-ahead log. A segment enters it by writing its manifest, then renaming the
video file next to it (both fsynced, both atomic): from then on it is durable, and the catalog and the store
are brought up to date from the spool by retrying workers, so neither a database nor a store outage loses a
second. It leaves only after the store confirmed the upload and the catalog recorded it. Nothing in the
spool is ever deleted for space: a full spool raises an alarm, recording continues.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import tempfile
import threading
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from jifang.domain import Segment, utc_stamp
from jifang.tiers import Tier

log = logging.getLogger("jifang.spool")
TMP_PREFIX = ".tmp-"


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _fsync_path(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class ManifestError(ValueError):
    """A manifest that cannot be read back into a segment (truncated, edited, wrong types)."""


@dataclass(frozen=True)
class SpooledSegment:
    segment: Segment
    video: Path
    manifest: Path


def _segment_to_json(segment: Segment) -> dict:
    return {
        "camera_id": segment.camera_id, "key": segment.key, "grid": segment.grid, "tier": str(segment.tier),
        "capture_start": segment.capture_start.isoformat(), "capture_end": segment.capture_end.isoformat(),
        "size": segment.size, "sha256": segment.sha256, "retain_until": segment.retain_until.isoformat(),
    }


def _segment_from_json(data: dict) -> Segment:
    if not isinstance(data, dict):
        raise ManifestError("not a JSON object")
    return Segment(
        camera_id=data["camera_id"], key=data["key"], grid=data["grid"], tier=Tier(data["tier"]),
        capture_start=datetime.fromisoformat(data["capture_start"]),
        capture_end=datetime.fromisoformat(data["capture_end"]),
        size=int(data["size"]), sha256=data["sha256"], retain_until=datetime.fromisoformat(data["retain_until"]),
    )


class Spool:
    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.segments_dir = self.root / "segments"
        self.recording_dir = self.root / "recording"
        self.quarantine_dir = self.root / "quarantine"
        for folder in (self.segments_dir, self.recording_dir, self.quarantine_dir):
            folder.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._remove_temporary_manifests()

    def _remove_temporary_manifests(self) -> None:
        """A crash between writing a manifest and renaming it leaves a temporary file: it holds nothing the
        video and its (absent) manifest do not, so it goes."""
        for tmp in self.segments_dir.glob(f"*/{TMP_PREFIX}*"):
            log.info("removing %s, a manifest a crash left half-written", tmp)
            tmp.unlink(missing_ok=True)

    def _paths(self, segment: Segment) -> tuple[Path, Path]:
        folder = self.segments_dir / segment.camera_id
        stem = utc_stamp(segment.capture_start)
        return folder / f"{stem}.mp4", folder / f"{stem}.json"

    def admit(self, segment: Segment, recorded_file: Path) -> SpooledSegment:
        """Move a validated file into the spool with its manifest (idempotent across crashes)."""
        video, manifest = self._paths(segment)
        video.parent.mkdir(parents=True, exist_ok=True)
        _fsync_path(recorded_file)  # ffmpeg closed it, but its pages may still be only in the page cache
        fd, tmp = tempfile.mkstemp(prefix=TMP_PREFIX, dir=video.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as out:
                json.dump(_segment_to_json(segment), out)
                out.flush()
                os.fsync(out.fileno())
            os.replace(tmp, manifest)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
        os.replace(recorded_file, video)
        _fsync_path(video.parent)
        _fsync_path(recorded_file.parent)
        return SpooledSegment(segment, video, manifest)

    def holds(self, camera_id: str, start: datetime) -> bool:
        """Whether the segment of ``camera_id`` starting at ``start`` is waiting in the spool."""
        folder, stem = self.segments_dir / camera_id, utc_stamp(start)
        return (folder / f"{stem}.mp4").exists() or (folder / f"{stem}.json").exists()

    def read_manifest(self, manifest: Path) -> Segment:
        """The segment a manifest describes; ManifestError when it is unreadable or inconsistent."""
        try:
            segment = _segment_from_json(json.loads(manifest.read_text(encoding="utf-8")))
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            raise ManifestError(f"{type(exc).__name__}: {exc}") from None
        if self._paths(segment)[1] != manifest:
            raise ManifestError(f"describes {segment.key}, which is not this file's segment")
        return segment

    def pending(self) -> list[SpooledSegment]:
        """Every spooled segment whose video and readable manifest are present, oldest capture first. The rest
        is for recovery: ``orphan_manifests`` and ``orphan_videos``."""
        found = []
        for manifest in self.segments_dir.glob("*/*.json"):
            video = manifest.with_suffix(".mp4")
            if not video.exists():
                continue
            try:
                segment = self.read_manifest(manifest)
            except ManifestError:
                continue  # an orphan video: recovery rebuilds or quarantines it
            found.append(SpooledSegment(segment, video, manifest))
        return sorted(found, key=lambda item: item.segment.capture_start)

    def orphan_manifests(self) -> list[Path]:
        """Manifests whose video is gone: uploads that finished just before a crash, or a lost video."""
        return [m for m in self.segments_dir.glob("*/*.json") if not m.with_suffix(".mp4").exists()]

    def orphan_videos(self) -> list[Path]:
        """Videos without a readable manifest (lost, truncated or edited by hand)."""
        found = []
        for video in self.segments_dir.glob("*/*.mp4"):
            manifest = video.with_suffix(".json")
            try:
                self.read_manifest(manifest)
            except (ManifestError, OSError):
                found.append(video)
        return sorted(found)

    def release(self, item: SpooledSegment) -> None:
        """The store and the catalog have the segment: free its spool space."""
        item.video.unlink(missing_ok=True)
        item.manifest.unlink(missing_ok=True)

    def quarantine(self, camera_id: str, path: Path) -> Path:
        """Set a file aside (kept for inspection, never uploaded); a name already there gets a suffix."""
        target = self.quarantine_dir / camera_id / f"{path.parent.name}-{path.name}"
        target.parent.mkdir(parents=True, exist_ok=True)
        counter = 1
        while target.exists():
            target = target.with_name(f"{path.parent.name}-{path.stem}.{counter}{path.suffix}")
            counter += 1
        os.replace(path, target)
        return target

    def bytes_used(self) -> int:
        """Bytes of video in the spool; files that vanish while counted (uploaded, run folder removed) are
        skipped."""
        total = 0
        for folder in (self.segments_dir, self.recording_dir):
            for dirpath, _dirnames, filenames in os.walk(folder, onerror=lambda _err: None):
                for name in filenames:
                    if name.endswith(".mp4"):
                        with contextlib.suppress(FileNotFoundError):
                            total += os.stat(os.path.join(dirpath, name)).st_size
        return total
