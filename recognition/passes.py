"""Passes: one vehicle or person passing a camera is seen in many frames but reported once, with its best
frame. Items are grouped by a key (the plate text, or a face track); a pass ends when its key has not been
seen for ``gap_seconds``, and a long pass is also handed out after ``max_seconds`` (so a car parked in view
or a looping demo clip is still reported), then kept open but not handed out again."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class Pass:
    key: str
    first_seen: float
    last_seen: float
    best: Any
    best_score: float
    best_frame: Any = field(default=None, repr=False)
    frames: int = 1
    handed_out: bool = False


class PassTracker:
    def __init__(self, gap_seconds: float = 2.0, max_seconds: float = 5.0) -> None:
        self.gap = gap_seconds
        self.max = max_seconds
        self.open: dict[str, Pass] = {}

    def update(self, t: float, items: list[tuple[str, float, Any]], frame: Any = None) -> list[Pass]:
        """Add this frame's (key, score, item) triples; return passes that ended or matured."""
        for key, score, item in items:
            current = self.open.get(key)
            if current is None:
                self.open[key] = Pass(key, t, t, item, score, frame)
                continue
            current.last_seen, current.frames = t, current.frames + 1
            if score > current.best_score:
                current.best, current.best_score, current.best_frame = item, score, frame
        out = []
        for key, current in list(self.open.items()):
            if t - current.last_seen > self.gap:
                del self.open[key]
                if not current.handed_out:
                    out.append(current)
            elif not current.handed_out and t - current.first_seen >= self.max:
                current.handed_out = True
                out.append(current)
        return out

    def flush(self) -> list[Pass]:
        out = [p for p in self.open.values() if not p.handed_out]
        self.open.clear()
        return out


def iou(a: tuple[int, int, int, int], b: tuple[int, int, int, int]) -> float:
    x1, y1, x2, y2 = max(a[0], b[0]), max(a[1], b[1]), min(a[2], b[2]), min(a[3], b[3])
    inter = max(0, x2 - x1) * max(0, y2 - y1)
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


class FaceKeys:
    """Gives each face a track key by overlap with the faces of the previous frames."""

    def __init__(self, min_iou: float = 0.3, forget_seconds: float = 2.0) -> None:
        self.min_iou = min_iou
        self.forget = forget_seconds
        self.tracks: dict[str, tuple[float, tuple[int, int, int, int]]] = {}
        self._next = 0

    def key(self, t: float, box: tuple[int, int, int, int]) -> str:
        self.tracks = {k: v for k, v in self.tracks.items() if t - v[0] <= self.forget}
        best = max(self.tracks.items(), key=lambda kv: iou(kv[1][1], box), default=None)
        if best is not None and iou(best[1][1], box) >= self.min_iou:
            key = best[0]
        else:
            self._next += 1
            key = f"face-{self._next}"
        self.tracks[key] = (t, box)
        return key
