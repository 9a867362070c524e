"""One ffmpeg run's working folder: the segment files ffmpeg writes, its segment list and its time anchor.

The anchor (wall-clock capture time of the run's first packet) is written to a file as soon as ffmpeg prints
it, so a run left behind by a crash can still be turned into correctly timed segments at the next start.

ffmpeg stamps packets with ITS wall clock, so a wall-clock step (NTP stepping, a bad RTC, a manual date)
would silently corrupt the catalog: a segment listed as lasting 302 s, or 57 s of video squeezed into 3.8 s.
Every listed segment is therefore checked against the monotonic clock: the agent notes when ffmpeg opens each
segment file (its stderr says so), and a segment whose listed duration differs from the monotonic time between
its opening and the next one's by more than ``STEP_TOLERANCE_SECONDS`` is re-timed by the monotonic clock
(contiguous with the previous segment) and reported as a clock step; the run's later segments are shifted by
the step, so the timeline stays continuous and nothing overlaps.
"""

from __future__ import annotations

import re
import shutil
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from jifang.recorder.ffmpeg import SEGMENT_LIST

ANCHOR_FILE = "anchor"
STEP_TOLERANCE_SECONDS = 3.0  # listed vs monotonic duration; scheduling delays on a loaded box stay far below
SEGMENT_OPENED = re.compile(r"Opening '[^']*seg-(\d+)\.mp4' for writing")


@dataclass(frozen=True)
class ListedSegment:
    path: Path
    start: datetime
    end: datetime
    clock_step: float = 0.0  # seconds ffmpeg's clock stepped inside this segment (0: none seen)


class RunFolder:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._consumed = 0  # bytes of the segment list already read
        self._taken = 0  # segments taken from the list
        self.last_listed_end: datetime | None = None
        self._opened: dict[int, float] = {}  # segment number -> monotonic time ffmpeg opened its file
        self._offset = timedelta(0)  # how far ffmpeg's clock has stepped away from the run's timeline
        self._after_step = False  # the previous segment was re-timed

    def note_line(self, line: str, monotonic: float) -> bool:
        """Feed one ffmpeg stderr line, read at ``monotonic``: segment openings time the segments. True when the
        line opened a segment file, so the one before it is finished and listed."""
        if match := SEGMENT_OPENED.search(line):
            self._opened.setdefault(int(match.group(1)), monotonic)
            return True
        return False

    def awaiting_list(self) -> bool:
        """Whether a segment's successor has opened but the segment was not yet taken from the list."""
        return len(self._opened) - 1 > self._taken

    def _real_seconds(self, name: str) -> float | None:
        """Monotonic duration of segment ``name`` (opening to the next opening), when both were seen."""
        number = _number(name)
        if number is None:
            return None
        if number in self._opened and number + 1 in self._opened:
            return self._opened[number + 1] - self._opened[number]
        return None

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

    def new_listed(self, finished: bool = False) -> list[ListedSegment]:
        """Segments ffmpeg has finished since the last call (complete list lines only). While ffmpeg runs, a
        segment waits until the next one's opening was seen, so that its monotonic duration is known."""
        list_path = self.path / SEGMENT_LIST
        try:
            if list_path.stat().st_size <= self._consumed:
                return []  # nothing new listed: the common case of a poll (every camera, twice a second)
        except FileNotFoundError:
            return []
        anchor = self.anchor()
        if anchor is None:
            return []
        with list_path.open("rb") as handle:
            handle.seek(self._consumed)
            data = handle.read()
        complete = data[: data.rfind(b"\n") + 1]
        found = []
        for raw in complete.splitlines(keepends=True):
            name, start, end = raw.decode("utf-8", "replace").strip().rsplit(",", 2)
            real = self._real_seconds(name)
            if real is None and not finished and self._opened:
                break  # the next opening is a moment away: time this one at the next call
            self._consumed += len(raw)
            listed_start = anchor + timedelta(seconds=float(start)) - self._offset
            listed_end = anchor + timedelta(seconds=float(end)) - self._offset
            step = 0.0
            if self._after_step and self.last_listed_end is not None \
                    and abs((listed_start - self.last_listed_end).total_seconds()) < STEP_TOLERANCE_SECONDS:
                # ffmpeg's own times around a step are off by a frame or so: keep the re-timed line contiguous
                listed_start = self.last_listed_end
            self._after_step = False
            # the run's first segment is not judged: ffmpeg opens its file only after probing the input, while
            # the packets it buffered meanwhile keep their earlier times (seconds with a slow H.265 or PS probe)
            first = bool(self._opened) and _number(name) == min(self._opened)
            if real is not None and not first \
                    and abs((listed_end - listed_start).total_seconds() - real) > STEP_TOLERANCE_SECONDS:
                step = (listed_end - listed_start).total_seconds() - real
                listed_start = self.last_listed_end or listed_start
                listed_end = listed_start + timedelta(seconds=real)
                self._offset += timedelta(seconds=step)
                self._after_step = True
            found.append(ListedSegment(self.path / name, listed_start, listed_end, step))
            self._taken += 1
            self.last_listed_end = listed_end
        return found

    def leftovers(self) -> list[Path]:
        """Segment files still in the folder after every listed one was taken: the one being written when
        ffmpeg died or was killed."""
        return sorted(self.path.glob("seg-*.mp4"))

    def remove(self) -> None:
        shutil.rmtree(self.path, ignore_errors=True)


def _number(name: str) -> int | None:
    """The segment number in a file name ``seg-000012.mp4``."""
    try:
        return int(name.removeprefix("seg-").removesuffix(".mp4"))
    except ValueError:
        return None
