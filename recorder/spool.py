"""The local spool: validated segments wait here, each with a manifest, until the store has them.

A segment enters the spool by writing its manifest, then renaming the video file next to it (both atomic).
It leaves only after the store confirmed the upload and the catalog recorded it. Nothing in the spool is
ever deleted for space: a full spool raises an alarm, recording continues.
"""

from __future__ import annotations

import contextlib
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
        self._camera_folders: dict[str, Path] = {}

    def _paths(self, segment: Segment) -> tuple[Path, Path]:
        folder = self.segments_dir / segment.camera_id
        stem = utc_stamp(segment.capture_start)
        return folder / f"{stem}.mp4", folder / f"{stem}.json"

    def admit(self, segment: Segment, recorded_file: Path) -> SpooledSegment:
        """Move a validated file into the spool with its manifest (idempotent across crashes)."""
        video, manifest = self._paths(segment)
        video.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=video.parent)
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            json.dump(_segment_to_json(segment), out)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, manifest)
        os.replace(recorded_file, video)
        dir_fd = os.open(video.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
        return SpooledSegment(segment, video, manifest)

    def pending(self) -> list[SpooledSegment]:
        """Every spooled segment whose video is present, oldest capture first."""
        found = [item for camera_id, (complete, _orphans) in self.inventory().items() for stem in complete
                 if (item := self.load(camera_id, stem)) is not None]
        return sorted(found, key=lambda item: item.segment.capture_start)

    def inventory(self) -> dict[str, tuple[set[str], set[str]]]:
        """camera -> (stems with video and manifest, stems with a manifest only), from one directory listing
        per camera: no stat or read per file, so a spool of 100,000 segments is listed in a moment."""
        found: dict[str, tuple[set[str], set[str]]] = {}
        with os.scandir(self.segments_dir) as cameras:
            for camera in cameras:
                if not camera.is_dir():
                    continue
                videos, manifests = set(), set()
                with os.scandir(camera.path) as entries:
                    for entry in entries:
                        if entry.name.endswith(".mp4"):
                            videos.add(entry.name[:-4])
                        elif entry.name.endswith(".json"):
                            manifests.add(entry.name[:-5])
                found[camera.name] = (videos & manifests, manifests - videos)
        return found

    def spooled(self, segment: Segment, stem: str) -> SpooledSegment:
        """``segment`` (known from its catalog row, its manifest not read) as listed by ``inventory`` under
        ``stem``; the camera's folder is built once, as building paths is most of the cost of a large spool."""
        folder = self._camera_folders.get(segment.camera_id)
        if folder is None:
            folder = self._camera_folders[segment.camera_id] = self.segments_dir / segment.camera_id
        video = folder / f"{stem}.mp4"
        return SpooledSegment(segment, video, video.with_name(f"{stem}.json"))

    def load(self, camera_id: str, stem: str) -> SpooledSegment | None:
        """The spooled segment as its manifest describes it; None (and logged) when the manifest is unreadable."""
        manifest = self.segments_dir / camera_id / f"{stem}.json"
        video = manifest.with_suffix(".mp4")
        try:
            segment = _segment_from_json(json.loads(manifest.read_text(encoding="utf-8")))
        except FileNotFoundError:
            return None
        except (ValueError, KeyError) as exc:
            log.error("spool manifest %s is unreadable (%s); its video %s stays in the spool", manifest, exc, video)
            return None
        return SpooledSegment(segment, video, manifest)

    def orphan_manifests(self) -> list[Path]:
        """Manifests whose video is gone: uploads that finished just before a crash."""
        return [m for m in self.segments_dir.glob("*/*.json") if not m.with_suffix(".mp4").exists()]

    def release(self, item: SpooledSegment) -> None:
        """The store and the catalog have the segment: free its spool space."""
        item.video.unlink(missing_ok=True)
        item.manifest.unlink(missing_ok=True)

    def quarantine(self, camera_id: str, path: Path) -> Path:
        target = self.quarantine_dir / camera_id / f"{path.parent.name}-{path.name}"
        target.parent.mkdir(parents=True, exist_ok=True)
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
