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
import re
import tempfile
import threading
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from jifang.domain import Segment, stamp_video_key, utc_stamp, video_key
from jifang.durable import fsync_path
from jifang.tiers import Tier

log = logging.getLogger("jifang.spool")
TMP_PREFIX = ".tmp-"
STAMP = re.compile(r"\d{8}T\d{6}\.\d{3}Z")  # the shape of utc_stamp: 20261127T075301.218Z


HASH_CHUNK = 64 * 1024  # under malloc's mmap threshold: the buffer comes from the heap and is reused


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    buffer = memoryview(bytearray(HASH_CHUNK))
    with path.open("rb", buffering=0) as handle:
        while n := handle.readinto(buffer):  # type: ignore[attr-defined]
            digest.update(buffer[:n])
    return digest.hexdigest()


def file_identity(path: Path) -> tuple[int, int, int]:
    """(inode, size, mtime in ns): what changes when a file is replaced, truncated or written to."""
    st = os.stat(path)
    return st.st_ino, st.st_size, st.st_mtime_ns


class ManifestError(ValueError):
    """A manifest that cannot be read back into a segment (truncated, edited, wrong types)."""


def stamp_time(stem: str) -> datetime | None:
    """The capture start a spool file name encodes (``utc_stamp``, e.g. 20261127T075301.218Z), None when the
    name is not one. Only utc_stamp's exact shape counts (no time formatted back: 100,000 strftime calls
    would cost seconds), so a renamed or hand-made file is never mistaken for a segment of another time."""
    if STAMP.fullmatch(stem) is None:
        return None
    try:
        return datetime.fromisoformat(stem)  # with its Z: UTC
    except ValueError:  # digits in the shape but no date (month 13)
        return None


@dataclass(frozen=True)
class SpooledSegment:
    """A spooled segment whose manifest has been read.

    ``hashed_as`` is set only for a segment this process hashed and spooled itself: the video's (inode, size,
    mtime in ns) when its sha256 was taken. While the file still shows them, that hash stands and the uploader
    need not read the file again; a recovered segment has None and is hashed again before it is sent.
    ``catalogued`` says the recorder's own catalog write succeeded, so the uploader's is not needed.
    """

    segment: Segment
    video: Path
    manifest: Path
    hashed_as: tuple[int, int, int] | None = None
    catalogued: bool = False

    @property
    def camera_id(self) -> str:
        return self.segment.camera_id

    @property
    def key(self) -> str:
        return self.segment.key

    @property
    def capture_start(self) -> datetime:
        return self.segment.capture_start


@dataclass(frozen=True, slots=True)
class SpoolEntry:
    """A spooled video and its manifest as found at start, before the manifest is read: the file names give the
    camera and the capture start, enough to queue it in order; the uploader reads the manifest when it takes the
    entry (``Spool.resolve``), so recovering a large spool costs one directory listing per camera. The paths
    are built on use: 200,000 Path objects would cost seconds at start."""

    camera_id: str
    stamp: str  # the file names without their suffix: utc_stamp(capture_start)
    capture_start: datetime
    key: str
    folder: Path

    @classmethod
    def of(cls, folder: Path, camera_id: str, stamp: str) -> SpoolEntry | None:
        """The entry of ``<folder>/<stamp>.mp4`` and ``.json`` (folder: ``segments/<camera_id>``); None when
        ``stamp`` is no capture time."""
        start = stamp_time(stamp)
        if start is None:
            return None
        return cls(camera_id, stamp, start, stamp_video_key(camera_id, stamp), folder)

    @property
    def video(self) -> Path:
        return self.folder / f"{self.stamp}.mp4"

    @property
    def manifest(self) -> Path:
        return self.folder / f"{self.stamp}.json"


@dataclass
class SpoolScan:
    """What one pass over the spool found. ``pending`` is oldest capture first; the orphans are for recovery."""

    pending: list[SpoolEntry] = field(default_factory=list)
    orphan_manifests: list[Path] = field(default_factory=list)  # no video beside them
    orphan_videos: list[Path] = field(default_factory=list)  # no manifest beside them, or no capture time in the name


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

    def _paths(self, segment: Segment) -> tuple[Path, Path]:
        folder = self.segments_dir / segment.camera_id
        stem = utc_stamp(segment.capture_start)
        return folder / f"{stem}.mp4", folder / f"{stem}.json"

    def admit(self, segment: Segment, recorded_file: Path,
              hashed_as: tuple[int, int, int] | None = None) -> SpooledSegment:
        """Move a validated file into the spool with its manifest (idempotent across crashes). ``hashed_as``:
        the file's identity when the caller took the sha256 in ``segment``; kept when the file still has it."""
        video, manifest = self._paths(segment)
        video.parent.mkdir(parents=True, exist_ok=True)
        fsync_path(recorded_file)  # ffmpeg closed it, but its pages may still be only in the page cache
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
        fsync_path(video.parent)
        fsync_path(recorded_file.parent)
        if hashed_as is not None and file_identity(video) != hashed_as:
            hashed_as = None  # written to since it was hashed: the uploader hashes it again
        return SpooledSegment(segment, video, manifest, hashed_as)

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
        if segment.key != video_key(segment.camera_id, segment.capture_start):
            # the uploader queues an entry under the key its name gives: a manifest must agree with it
            raise ManifestError(f"holds the key {segment.key}, not the one of its camera and capture start")
        return segment

    def resolve(self, entry: SpoolEntry) -> SpooledSegment:
        """Read an entry's manifest; ManifestError when it is unreadable (the video is then an orphan)."""
        return SpooledSegment(self.read_manifest(entry.manifest), entry.video, entry.manifest)

    def scan(self, remove_temporary: bool = False) -> SpoolScan:
        """One pass over the spool: a directory listing per camera, no manifest read, no stat per file.

        ``remove_temporary`` (at start only, never while recording: an admit may be writing one) removes
        the ``.tmp-*`` manifests a crash left half-written; they hold nothing the video and its (absent)
        manifest do not."""
        found = SpoolScan()
        for camera_id in sorted(self._camera_folders()):
            self._scan_folder(camera_id, found, remove_temporary)
        found.pending.sort(key=lambda entry: entry.capture_start)
        return found

    def _camera_folders(self) -> list[str]:
        with os.scandir(self.segments_dir) as entries:
            return [entry.name for entry in entries if entry.is_dir(follow_symlinks=False)]

    def _scan_folder(self, camera_id: str, found: SpoolScan, remove_temporary: bool) -> None:
        folder = self.segments_dir / camera_id
        with os.scandir(folder) as entries:
            names = [entry.name for entry in entries]
        videos, manifests = set(), set()
        for name in names:
            if name.endswith(".mp4"):
                videos.add(name[:-4])
            elif name.endswith(".json"):
                manifests.add(name[:-5])
            elif remove_temporary and name.startswith(TMP_PREFIX):
                log.info("removing %s, a manifest a crash left half-written", folder / name)
                (folder / name).unlink(missing_ok=True)
        found.orphan_manifests.extend(folder / f"{stem}.json" for stem in sorted(manifests - videos))
        found.orphan_videos.extend(folder / f"{stem}.mp4" for stem in sorted(videos - manifests))
        for stem in videos & manifests:
            entry = SpoolEntry.of(folder, camera_id, stem)
            if entry is None:  # not a name the spool gives: the orphan path sets it aside
                found.orphan_videos.append(folder / f"{stem}.mp4")
            else:
                found.pending.append(entry)

    def pending(self) -> list[SpooledSegment]:
        """Every spooled segment whose video and readable manifest are present, oldest capture first (reads
        every manifest: for inspection and tests; the agent's recovery uses ``scan``)."""
        found = []
        for entry in self.scan().pending:
            with contextlib.suppress(ManifestError):
                found.append(self.resolve(entry))
        return found

    def orphan_manifests(self) -> list[Path]:
        """Manifests whose video is gone: uploads that finished just before a crash, or a lost video."""
        return self.scan().orphan_manifests

    def orphan_videos(self) -> list[Path]:
        """Videos without a readable manifest (lost, truncated or edited by hand); reads every manifest."""
        found = self.scan()
        unreadable = []
        for entry in found.pending:
            try:
                self.resolve(entry)
            except ManifestError:
                unreadable.append(entry.video)
        return sorted(found.orphan_videos + unreadable)

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
