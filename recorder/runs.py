"""One ffmpeg run's working folder: the segment files ffmpeg writes, its segment list and its time anchor.

The anchor (wall-clock capture time of the run's first packet) is written to a file as soon as ffmpeg prints
it, so a run left behind by a crash can still be turned into correctly timed segments at the next start.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from jifang.recorder.ffmpeg import SEGMENT_LIST

ANCHOR_FILE = "anchor"


@dataclass(frozen=True)
class ListedSegment:
    path: Path
    start: datetime
    end: datetime


class RunFolder:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._consumed = 0  # bytes of the segment list already read
        self.last_listed_end: datetime | None = None

    @classmethod
    def create(cls, camera_dir: Path, now: datetime) -> RunFolder:
        path = camera_dir / now.astimezone(UTC).strftime("run-%Y%m%dT%H%M%S%f")
        path.mkdir(parents=True, exist_ok=False)
        return cls(path)

    def set_anchor(self, epoch_seconds: float) -> None:
        (self.path / ANCHOR_FILE).write_text(f"{epoch_seconds:.6f}\n", encoding="utf-8")

    def anchor(self) -> datetime | None:
        try:
            return datetime.fromtimestamp(float((self.path / ANCHOR_FILE).read_text().strip()), UTC)
        except (FileNotFoundError, ValueError):
            return None

    def new_listed(self) -> list[ListedSegment]:
        """Segments ffmpeg has finished since the last call (complete list lines only)."""
        anchor = self.anchor()
        list_path = self.path / SEGMENT_LIST
        if anchor is None or not list_path.exists():
            return []
        with list_path.open("rb") as handle:
            handle.seek(self._consumed)
            data = handle.read()
        complete = data[: data.rfind(b"\n") + 1]
        self._consumed += len(complete)
        found = []
        for line in complete.decode("utf-8", "replace").splitlines():
            name, start, end = line.rsplit(",", 2)
            found.append(ListedSegment(
                self.path / name,
                anchor + timedelta(seconds=float(start)),
                anchor + timedelta(seconds=float(end)),
            ))
            self.last_listed_end = found[-1].end
        return found

    def leftovers(self) -> list[Path]:
        """Segment files still in the folder after every listed one was taken: the one being written when
        ffmpeg died or was killed."""
        return sorted(self.path.glob("seg-*.mp4"))

    def remove(self) -> None:
        shutil.rmtree(self.path, ignore_errors=True)
